/* libFuzzer target: the CURVE key-file parser (curve_keys.c), which reads
 * migd's allow-list files and every key a user hands migctl or migagent.
 * Any bytes must parse or be refused with a message; a parsed key must be
 * 40 characters of Z85, and a secret key the public key's own. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "curve_keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct curve_keypair kp;
	enum curve_role role;
	char err[512];
	if (curve_keyfile_parse((const char *)data, size, &kp, &role, err, sizeof(err)) == 0) {
		if (!curve_z85_valid(kp.public_z85) || (*kp.secret_z85 && !curve_z85_valid(kp.secret_z85)))
			abort();
		if ((unsigned)role > CURVE_ROLE_ADMIN)
			abort();
	}
	return 0;
}
