/* libFuzzer target: the sfs frame header decoder. */
#include <stddef.h>
#include <stdint.h>

#include "sfs_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sfs_hdr hdr;
	char err[256];
	if (size < SFS_HDR_BYTES)
		return 0;
	sfs_hdr_decode(data, 1u << 20, &hdr, err, sizeof(err));
	return 0;
}
