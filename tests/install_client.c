/*
 * install_client: a program of someone else's, built by test_install.sh
 * from the installed sfs.h and libsfs.so with `pkg-config --cflags --libs
 * sfs` only (no include path or library of the build tree): it writes a
 * file over three strips, reads it back and pings every server.
 *
 *   install_client SFS_CONF PATH
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sfs.h>

#define LEN (200 * 1024) /* over three 64 KiB strips: every I/O server */

static int fail(const char *what, int rc)
{
	fprintf(stderr, "install_client: %s: %s (%s)\n", what, sfs_strerror(rc), sfs_last_error());
	return 1;
}

int main(int argc, char **argv)
{
	struct sfs *fs;
	struct sfs_file *f;
	struct sfs_ping_result ping[16];
	static char out[LEN], in[LEN];
	int rc;
	if (argc != 3) {
		fprintf(stderr, "usage: install_client SFS_CONF PATH\n");
		return 2;
	}
	for (size_t i = 0; i < LEN; i++)
		out[i] = (char)('a' + i % 23);
	if ((rc = sfs_connect(argv[1], NULL, &fs)) < 0)
		return fail("sfs_connect", rc);
	if ((rc = sfs_open(fs, argv[2], SFS_O_CREAT | SFS_O_RDWR | SFS_O_TRUNC, 0644, &f)) < 0)
		return fail("sfs_open", rc);
	if ((rc = (int)sfs_pwrite(f, out, LEN, 0)) != LEN)
		return fail("sfs_pwrite", rc);
	if ((rc = (int)sfs_pread(f, in, LEN, 0)) != LEN)
		return fail("sfs_pread", rc);
	if (memcmp(in, out, LEN) != 0) {
		fprintf(stderr, "install_client: read back differs from what was written\n");
		return 1;
	}
	if ((rc = sfs_close(f)) < 0)
		return fail("sfs_close", rc);
	unsigned n = sfs_server_count(fs);
	if (n == 0 || n > 16)
		return fail("sfs_server_count", -22);
	if ((rc = sfs_ping(fs, ping, n)) < 0)
		return fail("sfs_ping", rc);
	for (unsigned i = 0; i < n; i++)
		if (ping[i].status < 0) {
			fprintf(stderr, "install_client: server %s: %s\n", ping[i].name,
				ping[i].error);
			return 1;
		}
	printf("wrote and read back %d bytes of %s; %u servers answered\n", LEN, argv[2], n);
	sfs_disconnect(fs);
	return 0;
}
