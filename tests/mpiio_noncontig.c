/*
 * mpiio_noncontig: non-contiguous independent MPI-IO writes to one shared
 * file, checked byte for byte. Each rank's file view is every NRANKS-th
 * block of BLOCK bytes (MPI_Type_vector), and it writes its whole view in
 * one independent MPI_File_write_at_all-free call, which ROMIO turns into
 * data sieving: read a stretch, change this rank's blocks, write the
 * stretch back, under an fcntl lock of the stretch. Without locks that
 * hold across clients, ranks on different mounts overwrite each other's
 * blocks with stale bytes.
 *
 * usage: mpiio_noncontig PATH_FOR_EVEN_RANKS PATH_FOR_ODD_RANKS
 * (two mounts of one sfs: ranks alternate between them). Exit 0 when the
 * file is exactly what every rank wrote; 1 with the first wrong byte.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 1000
#define BLOCKS_PER_RANK 300

int main(int argc, char **argv)
{
	int rank, nranks, bad = 0;
	MPI_File fh;
	MPI_Datatype filetype;
	MPI_Info info;
	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &nranks);
	if (argc != 3) {
		if (rank == 0)
			fprintf(stderr, "usage: mpiio_noncontig PATH_EVEN PATH_ODD\n");
		MPI_Abort(MPI_COMM_WORLD, 2);
	}
	const char *path = argv[1 + rank % 2];
	size_t mine = (size_t)BLOCK * BLOCKS_PER_RANK;
	char *buf = malloc(mine);
	for (size_t i = 0; i < mine; i++)
		buf[i] = (char)('A' + rank + (char)(i / BLOCK % 7) * 4);
	MPI_Info_create(&info);
	MPI_Info_set(info, "romio_ds_write", "enable");
	MPI_Info_set(info, "romio_cb_write", "disable");
	MPI_Type_vector(BLOCKS_PER_RANK, BLOCK, BLOCK * nranks, MPI_CHAR, &filetype);
	MPI_Type_commit(&filetype);
	int rc = MPI_File_open(MPI_COMM_WORLD, path, MPI_MODE_CREATE | MPI_MODE_RDWR, info, &fh);
	if (rc != MPI_SUCCESS) {
		fprintf(stderr, "rank %d: MPI_File_open %s failed\n", rank, path);
		MPI_Abort(MPI_COMM_WORLD, 1);
	}
	MPI_File_set_view(fh, (MPI_Offset)rank * BLOCK, MPI_CHAR, filetype, "native", info);
	for (int round = 0; round < 3; round++) /* rewrites: more chances to race */
		if (MPI_File_write(fh, buf, (int)mine, MPI_CHAR, MPI_STATUS_IGNORE) != MPI_SUCCESS ||
		    MPI_File_seek(fh, 0, MPI_SEEK_SET) != MPI_SUCCESS)
			bad = 1;
	MPI_File_close(&fh);
	MPI_Barrier(MPI_COMM_WORLD);
	if (rank == 0 && !bad) {
		size_t total = mine * (size_t)nranks;
		char *all = malloc(total + 1);
		FILE *f = fopen(argv[2], "rb"); /* read back through the other mount */
		size_t got = f ? fread(all, 1, total + 1, f) : 0;
		if (f)
			fclose(f);
		if (got != total) {
			fprintf(stderr, "file is %zu bytes, expected %zu\n", got, total);
			bad = 1;
		}
		for (size_t off = 0; !bad && off < total; off++) {
			size_t block = off / BLOCK;
			int owner = (int)(block % (size_t)nranks);
			size_t i = block / (size_t)nranks * BLOCK + off % BLOCK;
			char want = (char)('A' + owner + (char)(i / BLOCK % 7) * 4);
			if (all[off] != want) {
				fprintf(stderr, "byte %zu is 0x%02x, rank %d wrote 0x%02x\n", off,
					(unsigned char)all[off], owner, (unsigned char)want);
				bad = 1;
			}
		}
		if (!bad)
			printf("%d ranks, non-contiguous writes over two mounts: %zu bytes exact\n",
			       nranks, total);
		free(all);
	}
	MPI_Bcast(&bad, 1, MPI_INT, 0, MPI_COMM_WORLD);
	MPI_Type_free(&filetype);
	MPI_Info_free(&info);
	free(buf);
	MPI_Finalize();
	return bad;
}
