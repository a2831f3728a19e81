/* libFuzzer target: the capability decoder and verifier (common/sfs_cap.c),
 * what an I/O server runs on bytes anyone can send. A decoded capability
 * must encode back to the same bytes, and no input may pass verification:
 * without the key, a fuzzer cannot forge a signature. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sfs_cap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct sfs_cap_key key = { .bytes = { 0x42, 0x17, 0x99 } };
	struct sfs_cap cap;
	uint8_t again[SFS_CAP_BYTES];
	char err[256];
	if (sfs_cap_decode(data, size, &cap, err, sizeof(err)) != 0)
		return 0;
	sfs_cap_encode(&cap, again);
	if (memcmp(again, data, SFS_CAP_BYTES) != 0)
		abort(); /* decode accepted what encode cannot reproduce */
	uint64_t handle = size > SFS_CAP_BYTES + 8 ? cap.handle ^ data[SFS_CAP_BYTES] : cap.handle;
	unsigned rights = size > SFS_CAP_BYTES ? data[size - 1] & SFS_CAP_RIGHTS_ALL : 1;
	if (sfs_cap_verify(&key, &cap, handle, rights, 0, err, sizeof(err)) == 0)
		abort(); /* a capability not signed with the key was accepted */
	return 0;
}
