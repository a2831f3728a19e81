/* libFuzzer target: the reply body decoder for every op and status. */
#include <stdint.h>
#include <stdlib.h>

#include "sfs_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sfs_reply reply;
	char err[256];
	if (size < 3 || size - 3 > SFS_MAX_BODY_BYTES)
		return 0;
	uint16_t op = (uint16_t)(data[0] | data[1] << 8);
	int32_t status = data[2] & 1 ? -(int32_t)(data[2] >> 1) : 0;
	sfs_reply_decode(op, status, data + 3, size - 3, &reply, err, sizeof(err));
	return 0;
}
