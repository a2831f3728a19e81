/* libFuzzer target: the request body decoder for every op. The first two
 * bytes pick the op; a decoded request must encode back to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sfs_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sfs_req req;
	static uint8_t again[SFS_MAX_BODY_BYTES];
	char err[256];
	size_t len;
	if (size < 2 || size - 2 > SFS_MAX_BODY_BYTES)
		return 0;
	uint16_t op = (uint16_t)(data[0] | data[1] << 8);
	if (sfs_req_decode(op, data + 2, size - 2, &req, err, sizeof(err)) != 0)
		return 0;
	if (sfs_req_encode(&req, again, sizeof(again), &len) != 0 || len != size - 2 ||
	    memcmp(again, data + 2, len) != 0)
		abort(); /* decode accepted what encode cannot reproduce */
	return 0;
}
