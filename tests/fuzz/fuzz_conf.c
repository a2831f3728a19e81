/* libFuzzer target: the sfs.conf reader (inih plus our option table). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "sfs_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sfs_conf conf;
	static char path[64];
	char err[512];
	if (!path[0])
		snprintf(path, sizeof(path), "/tmp/fuzz_conf_%d.conf", (int)getpid());
	FILE *f = fopen(path, "w");
	if (!f)
		return 0;
	fwrite(data, 1, size, f);
	fclose(f);
	sfs_conf_load(path, &conf, err, sizeof(err));
	return 0;
}
