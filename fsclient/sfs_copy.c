/*
 * sfs_copy: the data movers of the sfs command, cp and cat.
 *
 * Bandwidth comes from two things. Large chunks: one sfs_pread/pwrite of a
 * whole number of stripes (strip_size * stripe_count, about 16 MiB) reaches
 * every I/O server of the stripe at once. And overlap: a reader thread fills
 * one buffer with chunk i+1 while the calling thread writes chunk i from the
 * other, so the local disk or pipe and the network are busy at the same
 * time (double buffering). Both ends are an "end": a local descriptor read or
 * written sequentially (so pipes work), or an open sfs file.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sfs_cmd.h"
#include "util.h"

#define DEFAULT_CHUNK_BYTES (16u << 20)
#define MAX_AUTO_CHUNK_BYTES (256u << 20)
#define MIN_CHUNK_BYTES 4096u
#define MAX_CHUNK_BYTES (1u << 30)
#define PROGRESS_DELAY_NS 1000000000ull   /* nothing shown for copies under 1 s */
#define PROGRESS_PERIOD_NS 100000000ull   /* at most 10 redraws a second */
#define MIB (1024.0 * 1024.0)

const char cmd_cp_usage[] =
	"usage: sfs cp [--append] [--chunk SIZE] [--json] [-q] SRC DST\n"
	"\n"
	"Copy one file. Paths on the file system are written sfs:/path, local paths\n"
	"plain: local to sfs, sfs to local, or sfs to sfs. If DST is an existing\n"
	"directory the copy goes into it under SRC's base name. DST is created or\n"
	"truncated. On a terminal a progress bar is drawn on stderr; at the end one\n"
	"line gives bytes, seconds and MiB/s. SRC may be a pipe (/dev/stdin).\n"
	"\n"
	"      --append      add to the end of DST instead of truncating it; on sfs\n"
	"                    each chunk lands whole, atomically against every other\n"
	"                    appender of any client (a log several guests write)\n"
	"      --chunk SIZE  bytes per transfer (default: about 16m, a whole number\n"
	"                    of stripes of the sfs file)\n"
	"      --json        print the summary as a JSON object\n"
	"  -q, --quiet       no progress bar and no summary line\n"
	"  -h, --help        show this help\n";

const char cmd_cat_usage[] =
	"usage: sfs cat [--chunk SIZE] PATH...\n"
	"\n"
	"Write files of the file system to stdout, one after another. The sfs:\n"
	"prefix is optional.\n"
	"\n"
	"      --chunk SIZE  bytes per transfer (default: about 16m)\n"
	"  -h, --help        show this help\n";

/* One side of a copy. */
struct end {
	const char *path;       /* as named in messages (no sfs: prefix) */
	int is_sfs;
	int fd;                 /* local: the descriptor, -1 if not open */
	struct sfs_file *file;  /* sfs: the open file */
	uint64_t offset;        /* next byte to read or write */
	int append;             /* a destination written at its end (--append) */
	int err;                /* the failure, negative errno */
	char msg[512];          /* its message, taken in the thread that saw it */
};

static void end_failed(struct end *e, int err, const char *msg)
{
	e->err = err;
	snprintf(e->msg, sizeof(e->msg), "%s", msg && *msg ? msg : strerror(-err));
}

/* Fill buf unless the end is reached first. Returns bytes or -errno. */
static ssize_t end_read(struct end *e, char *buf, size_t len)
{
	size_t got = 0;
	if (e->is_sfs) {
		ssize_t n = sfs_pread(e->file, buf, len, e->offset);
		if (n < 0) {
			end_failed(e, (int)n, sfs_last_error());
			return n;
		}
		got = (size_t)n;
	}
	while (!e->is_sfs && got < len) {
		ssize_t n = read(e->fd, buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			end_failed(e, -errno, NULL);
			return e->err;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	e->offset += got;
	return (ssize_t)got;
}

static int end_write(struct end *e, const char *buf, size_t len)
{
	int rc;
	if (e->is_sfs) {
		uint64_t at;
		ssize_t n = e->append ? sfs_append(e->file, buf, len, &at)
				      : sfs_pwrite(e->file, buf, len, e->offset);
		rc = n < 0 ? (int)n : 0;
		if (rc < 0)
			end_failed(e, rc, sfs_last_error());
	} else {
		rc = write_full(e->fd, buf, len);
		if (rc < 0)
			end_failed(e, rc, NULL);
	}
	if (rc == 0)
		e->offset += len;
	return rc;
}

/* ---- progress bar ---- */

struct progress {
	int enabled;
	uint64_t total_bytes;   /* 0 = unknown (a pipe) */
	uint64_t start_ns;
	uint64_t last_draw_ns;
	int drawn;
};

static int terminal_columns(void)
{
	struct winsize ws;
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
		return ws.ws_col;
	return 80;
}

static void progress_draw(struct progress *p, uint64_t done, uint64_t now)
{
	char text[160], done_text[32], total_text[32], bar[256];
	double secs = (double)(now - p->start_ns) / 1e9;
	double rate = secs > 0 ? (double)done / secs : 0;
	format_size(done, done_text, sizeof(done_text));
	if (p->total_bytes == 0) {
		snprintf(text, sizeof(text), "%s  %.1f MiB/s", done_text, rate / MIB);
		fprintf(stderr, "\r%s\033[K", text);
		p->drawn = 1;
		return;
	}
	uint64_t left = p->total_bytes > done ? p->total_bytes - done : 0;
	unsigned eta = rate > 0 ? (unsigned)((double)left / rate + 0.5) : 0;
	double frac = (double)done / (double)p->total_bytes;
	if (frac > 1)
		frac = 1;
	snprintf(text, sizeof(text), " %3d%%  %s / %s  %.1f MiB/s  ETA %u:%02u", (int)(frac * 100),
		 done_text, format_size(p->total_bytes, total_text, sizeof(total_text)),
		 rate / MIB, eta / 60, eta % 60);
	int width = terminal_columns() - (int)strlen(text) - 3;
	if (width > (int)sizeof(bar) - 1)
		width = (int)sizeof(bar) - 1;
	if (width < 0)
		width = 0;
	int filled = (int)(frac * width);
	for (int i = 0; i < width; i++)
		bar[i] = i < filled ? '#' : '.';
	bar[width] = '\0';
	fprintf(stderr, "\r[%s]%s\033[K", bar, text);
	p->drawn = 1;
}

static void progress_update(struct progress *p, uint64_t done)
{
	if (!p->enabled)
		return;
	uint64_t now = now_ns();
	if (now - p->start_ns < PROGRESS_DELAY_NS || now - p->last_draw_ns < PROGRESS_PERIOD_NS)
		return;
	p->last_draw_ns = now;
	progress_draw(p, done, now);
}

static void progress_clear(struct progress *p)
{
	if (p->drawn)
		fprintf(stderr, "\r\033[K");
	p->drawn = 0;
}

/* ---- the double-buffered mover ---- */

struct slot {
	char *buf;
	size_t len;
	int full;
};

struct mover {
	struct end *src, *dst;
	size_t chunk_bytes;
	struct slot slot[2];
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop;               /* the writer failed: the reader gives up */
	uint64_t moved_bytes;
	struct progress *progress;
};

/* Reader thread: fills slot i%2 with chunk i; a short chunk is the last. */
static void *mover_reader(void *arg)
{
	struct mover *m = arg;
	for (unsigned i = 0;; i++) {
		struct slot *s = &m->slot[i & 1];
		pthread_mutex_lock(&m->lock);
		while (s->full && !m->stop)
			pthread_cond_wait(&m->cond, &m->lock);
		int stop = m->stop;
		pthread_mutex_unlock(&m->lock);
		if (stop)
			break;
		ssize_t n = end_read(m->src, s->buf, m->chunk_bytes);
		pthread_mutex_lock(&m->lock);
		s->len = n > 0 ? (size_t)n : 0;
		s->full = 1;
		pthread_cond_broadcast(&m->cond);
		pthread_mutex_unlock(&m->lock);
		if (n < 0 || (size_t)n < m->chunk_bytes)
			break;
	}
	return NULL;
}

/* Writer side, in the calling thread. Returns 0 or a negative errno. */
static int mover_write_all(struct mover *m)
{
	for (unsigned i = 0;; i++) {
		struct slot *s = &m->slot[i & 1];
		pthread_mutex_lock(&m->lock);
		while (!s->full)
			pthread_cond_wait(&m->cond, &m->lock);
		pthread_mutex_unlock(&m->lock);
		size_t len = s->len;
		int rc = len > 0 ? end_write(m->dst, s->buf, len) : 0;
		pthread_mutex_lock(&m->lock);
		s->full = 0;
		m->stop = rc < 0;
		pthread_cond_broadcast(&m->cond);
		pthread_mutex_unlock(&m->lock);
		if (rc < 0)
			return rc;
		m->moved_bytes += len;
		if (m->progress)
			progress_update(m->progress, m->moved_bytes);
		if (len < m->chunk_bytes)
			return m->src->err;
	}
}

/* Copy src to dst to the end of src. Returns 0 or a negative errno; the
 * end that failed has err and msg set. */
static int move_data(struct end *src, struct end *dst, size_t chunk_bytes,
		     struct progress *progress, uint64_t *moved_bytes)
{
	struct mover m = { .src = src, .dst = dst, .chunk_bytes = chunk_bytes,
			   .progress = progress };
	pthread_t reader;
	int rc = -ENOMEM;
	pthread_mutex_init(&m.lock, NULL);
	pthread_cond_init(&m.cond, NULL);
	for (int i = 0; i < 2; i++)
		if (posix_memalign((void **)&m.slot[i].buf, 4096, chunk_bytes) != 0)
			goto out;
	rc = -pthread_create(&reader, NULL, mover_reader, &m);
	if (rc < 0)
		goto out;
	rc = mover_write_all(&m);
	pthread_join(reader, NULL);
	*moved_bytes = m.moved_bytes;
out:
	free(m.slot[0].buf);
	free(m.slot[1].buf);
	pthread_cond_destroy(&m.cond);
	pthread_mutex_destroy(&m.lock);
	return rc;
}

/* A whole number of stripes near 16 MiB, so every transfer is spread evenly
 * over every server of the stripe. */
static size_t auto_chunk(const struct sfs_stat *st)
{
	uint64_t width = (uint64_t)st->strip_size * st->stripe_count;
	if (width == 0 || width > MAX_AUTO_CHUNK_BYTES)
		return DEFAULT_CHUNK_BYTES;
	return (size_t)(((DEFAULT_CHUNK_BYTES + width - 1) / width) * width);
}

/* A buffer no larger than the file needs, when its size is known. */
static size_t fit_chunk(size_t chunk_bytes, uint64_t total_bytes)
{
	if (total_bytes == 0 || total_bytes >= chunk_bytes)
		return chunk_bytes;
	uint64_t need = (total_bytes + 1 + MIN_CHUNK_BYTES - 1) / MIN_CHUNK_BYTES * MIN_CHUNK_BYTES;
	return need < chunk_bytes ? (size_t)need : chunk_bytes;
}

static int parse_chunk(const struct cmd *c, const char *text, size_t *out)
{
	uint64_t v;
	if (parse_size(text, &v) < 0)
		return cmd_usage_error(c, "chunk size \"%s\": expected a size like 16m", text);
	if (v < MIN_CHUNK_BYTES || v > MAX_CHUNK_BYTES)
		return cmd_usage_error(c, "chunk size \"%s\": expected 4k to 1g", text);
	*out = (size_t)v;
	return 0;
}

/* Report the end's failure; returns the exit code. A local file's errno
 * says nothing about reaching servers: that is always exit status 1. */
static int end_fail(const struct cmd *c, const struct end *e)
{
	int code = cmd_fail_msg(c, e->path, e->err, e->msg);
	return e->is_sfs ? code : SFS_EXIT_FAIL;
}

static void end_close(struct end *e)
{
	if (e->is_sfs && e->file)
		sfs_close(e->file);
	else if (!e->is_sfs && e->fd >= 0)
		close(e->fd);
	e->file = NULL;
	e->fd = -1;
}

/* ---- cp ---- */

struct cp_job {
	struct end src, dst;
	char *dst_path;            /* resolved destination (owned) */
	uint32_t mode;
	uint64_t total_bytes;      /* 0 = unknown */
	struct sfs_stat src_stat;  /* sfs source */
	int have_src_stat;
};

static int cp_open_src(struct cmd *c, struct cp_job *j)
{
	struct end *e = &j->src;
	if (!e->is_sfs) {
		struct stat st;
		e->fd = open(e->path, O_RDONLY | O_CLOEXEC);
		if (e->fd < 0 || fstat(e->fd, &st) < 0) {
			cmd_error(c, "%s: %s", e->path, strerror(errno));
			return SFS_EXIT_FAIL;
		}
		if (S_ISDIR(st.st_mode)) {
			cmd_error(c, "%s: is a directory (sfs cp copies one file)", e->path);
			return SFS_EXIT_FAIL;
		}
		j->mode = st.st_mode & 0777;
		j->total_bytes = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
		return 0;
	}
	int rc = sfs_stat(c->fs, e->path, &j->src_stat);
	if (rc == 0 && j->src_stat.type == SFS_STAT_DIR) {
		cmd_error(c, "%s: is a directory (sfs cp copies one file)", e->path);
		return SFS_EXIT_FAIL;
	}
	if (rc == 0)
		rc = sfs_open(c->fs, e->path, SFS_O_RDONLY, 0, &e->file);
	if (rc == 0)
		rc = sfs_fstat(e->file, &j->src_stat);
	if (rc < 0)
		return cmd_fail(c, e->path, rc);
	j->have_src_stat = 1;
	j->mode = j->src_stat.mode & 0777;
	j->total_bytes = j->src_stat.size_bytes;
	return 0;
}

/* DST, or DST/basename(SRC) when DST is an existing directory. For sfs, also
 * refuses to copy a file onto itself (O_TRUNC would destroy it first). */
static int cp_resolve_dst(struct cmd *c, struct cp_job *j, const char *dst_arg)
{
	int is_dir = 0;
	if (j->dst.is_sfs) {
		struct sfs_stat st;
		int rc = sfs_stat(c->fs, dst_arg, &st);
		if (rc < 0 && rc != -ENOENT)
			return cmd_fail(c, dst_arg, rc);
		is_dir = rc == 0 && st.type == SFS_STAT_DIR;
	} else {
		struct stat st;
		is_dir = stat(dst_arg, &st) == 0 && S_ISDIR(st.st_mode);
	}
	if (is_dir) {
		char *base = path_base(j->src.path);
		j->dst_path = base ? path_join(dst_arg, base) : NULL;
		free(base);
	} else {
		j->dst_path = strdup(dst_arg);
	}
	if (!j->dst_path) {
		cmd_error(c, "out of memory");
		return SFS_EXIT_FAIL;
	}
	j->dst.path = j->dst_path;
	if (j->dst.is_sfs && j->src.is_sfs) {
		struct sfs_stat st;
		if (sfs_stat(c->fs, j->dst_path, &st) == 0 && st.fid == j->src_stat.fid) {
			cmd_error(c, "%s and %s are the same file", j->src.path, j->dst_path);
			return SFS_EXIT_FAIL;
		}
	}
	return 0;
}

static int cp_open_dst(struct cmd *c, struct cp_job *j, struct sfs_stat *dst_stat)
{
	struct end *e = &j->dst;
	if (!e->is_sfs) {
		e->fd = open(e->path, O_WRONLY | O_CREAT | O_CLOEXEC |
				     (e->append ? O_APPEND : O_TRUNC), j->mode);
		if (e->fd < 0) {
			cmd_error(c, "%s: %s", e->path, strerror(errno));
			return SFS_EXIT_FAIL;
		}
		return 0;
	}
	int rc = sfs_open(c->fs, e->path, SFS_O_WRONLY | SFS_O_CREAT |
			  (e->append ? SFS_O_APPEND : SFS_O_TRUNC), j->mode, &e->file);
	if (rc == 0)
		rc = sfs_fstat(e->file, dst_stat);
	if (rc < 0)
		return cmd_fail(c, e->path, rc);
	return 0;
}

static int cp_summary(struct cmd *c, const struct cp_job *j, uint64_t bytes, double seconds)
{
	double mib_per_s = seconds > 0 ? (double)bytes / MIB / seconds : 0;
	if (c->json) {
		json_t *o = json_pack("{s:s, s:s, s:I, s:f, s:f}", "source", j->src.path,
				      "destination", j->dst.path, "bytes", (json_int_t)bytes,
				      "seconds", seconds, "mib_per_s", mib_per_s);
		return cmd_print_json(c, o);
	}
	if (!c->quiet) {
		char size[32];
		printf("%" PRIu64 " bytes (%s) in %.3f s: %.1f MiB/s\n", bytes,
		       format_size(bytes, size, sizeof(size)), seconds, mib_per_s);
	}
	return SFS_EXIT_OK;
}

static int cp_run(struct cmd *c, struct cp_job *j, const char *dst_arg, size_t chunk_bytes)
{
	struct sfs_stat dst_stat;
	uint64_t start = now_ns(), moved = 0;
	int rc;
	if ((rc = cp_open_src(c, j)) != 0 || (rc = cp_resolve_dst(c, j, dst_arg)) != 0 ||
	    (rc = cp_open_dst(c, j, &dst_stat)) != 0)
		return rc;
	if (chunk_bytes == 0)
		chunk_bytes = fit_chunk(auto_chunk(j->dst.is_sfs ? &dst_stat : &j->src_stat),
					j->total_bytes);
	struct progress progress = { .enabled = !c->quiet && isatty(STDERR_FILENO),
				     .total_bytes = j->total_bytes, .start_ns = start };
	rc = move_data(&j->src, &j->dst, chunk_bytes, &progress, &moved);
	progress_clear(&progress);
	if (rc == -ENOMEM) {
		cmd_error(c, "out of memory for two %zu-byte buffers (try --chunk)", chunk_bytes);
		return SFS_EXIT_FAIL;
	}
	if (rc < 0)
		return end_fail(c, j->dst.err ? &j->dst : &j->src);
	if (!j->dst.is_sfs && close(j->dst.fd) < 0) {
		j->dst.fd = -1;
		cmd_error(c, "%s: %s", j->dst.path, strerror(errno));
		return SFS_EXIT_FAIL;
	}
	j->dst.fd = -1;
	if (j->dst.is_sfs) {
		rc = sfs_close(j->dst.file);
		j->dst.file = NULL;
		if (rc < 0)
			return cmd_fail(c, j->dst.path, rc);
	}
	return cp_summary(c, j, moved, (double)(now_ns() - start) / 1e9);
}

int cmd_cp(struct cmd *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "chunk", required_argument, NULL, OPT_SUBCMD_BASE },
		{ "append", no_argument, NULL, OPT_SUBCMD_BASE + 1 },
		CMD_COMMON_LONGOPTS,
		{ 0 },
	};
	size_t chunk_bytes = 0;
	int opt, rc, append = 0;
	while ((opt = cmd_getopt(argc, argv, "", longopts)) != -1) {
		if (opt == OPT_SUBCMD_BASE) {
			if ((rc = parse_chunk(c, optarg, &chunk_bytes)) != 0)
				return rc;
		} else if (opt == OPT_SUBCMD_BASE + 1) {
			append = 1;
		} else if ((rc = cmd_option(c, opt, argv, cmd_cp_usage)) != CMD_CONTINUE) {
			return rc;
		}
	}
	if (argc - optind != 2)
		return argc - optind < 2
			       ? cmd_usage_error(c, "expected SRC and DST")
			       : cmd_usage_error(c, "unexpected argument \"%s\"", argv[optind + 2]);
	struct cp_job j = { .src.fd = -1, .dst.fd = -1, .dst.append = append };
	const char *dst_arg = sfs_path_strip(argv[optind + 1], &j.dst.is_sfs);
	j.src.path = sfs_path_strip(argv[optind], &j.src.is_sfs);
	if (!j.src.is_sfs && !j.dst.is_sfs)
		return cmd_usage_error(c, "neither \"%s\" nor \"%s\" is an sfs: path",
				       argv[optind], argv[optind + 1]);
	if (!*j.src.path || !*dst_arg)
		return cmd_usage_error(c, "empty path in \"%s\"", !*j.src.path ? argv[optind]
										 : argv[optind + 1]);
	if ((rc = cmd_connect(c)) != 0)
		return rc;
	rc = cp_run(c, &j, dst_arg, chunk_bytes);
	end_close(&j.src);
	end_close(&j.dst);
	free(j.dst_path);
	return rc;
}

/* ---- cat ---- */

static int cat_one(struct cmd *c, const char *path, size_t chunk_bytes)
{
	struct end src = { .path = path, .is_sfs = 1, .fd = -1 };
	struct end out = { .path = "stdout", .fd = STDOUT_FILENO };
	struct sfs_stat st;
	uint64_t moved = 0;
	int rc = sfs_open(c->fs, path, SFS_O_RDONLY, 0, &src.file);
	if (rc == 0)
		rc = sfs_fstat(src.file, &st);
	if (rc < 0) {
		rc = cmd_fail(c, path, rc); /* a directory too: sfs_open refuses it */
		goto out;
	}
	if (chunk_bytes == 0)
		chunk_bytes = fit_chunk(auto_chunk(&st), st.size_bytes);
	rc = move_data(&src, &out, chunk_bytes, NULL, &moved);
	if (rc == -ENOMEM) {
		cmd_error(c, "%s: out of memory for two %zu-byte buffers (try --chunk)", path,
			  chunk_bytes);
		rc = SFS_EXIT_FAIL;
	} else if (rc < 0) {
		rc = end_fail(c, out.err ? &out : &src);
	}
out:
	if (src.file)
		sfs_close(src.file);
	return rc;
}

int cmd_cat(struct cmd *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "chunk", required_argument, NULL, OPT_SUBCMD_BASE },
		CMD_COMMON_LONGOPTS,
		{ 0 },
	};
	size_t chunk_bytes = 0;
	int opt, rc, is_sfs, worst = SFS_EXIT_OK;
	while ((opt = cmd_getopt(argc, argv, "", longopts)) != -1) {
		if (opt == OPT_SUBCMD_BASE) {
			if ((rc = parse_chunk(c, optarg, &chunk_bytes)) != 0)
				return rc;
		} else if ((rc = cmd_option(c, opt, argv, cmd_cat_usage)) != CMD_CONTINUE) {
			return rc;
		}
	}
	if (optind >= argc)
		return cmd_usage_error(c, "PATH is required");
	if ((rc = cmd_connect(c)) != 0)
		return rc;
	for (int i = optind; i < argc; i++) {
		rc = cat_one(c, sfs_path_strip(argv[i], &is_sfs), chunk_bytes);
		worst = rc > worst ? rc : worst;
	}
	return worst;
}
