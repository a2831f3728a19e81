/*
 * Capabilities against a real sfsd: each test tries to reach a datafile on
 * an I/O server without the metadata server's word, speaking raw frames,
 * and must be refused with EACCES (counted in STATS, logged), while the
 * same request with a proper capability is served. A legitimate libsfs
 * client keeps working across its capabilities' expiry (it renews them).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fsfixture.h"
#include "sfs.h"
#include "sfs_cap.h"
#include "sfs_conf.h"
#include "sfs_proto.h"

#define RW (SFS_CAP_READ | SFS_CAP_WRITE)

static struct fsfix fx;
static struct sfs *fs;

static void stop(void)
{
	if (fs)
		sfs_disconnect(fs);
	fs = NULL;
	fsfix_stop(&fx);
}

/* One I/O server: every datafile is on io0 (server 1 of the fixture). */
static void start_with(const char *extra)
{
	fsfix_start(&fx, 1, extra);
	cr_assert_eq(sfs_connect(fx.conf, NULL, &fs), 0, "sfs_connect: %s", sfs_last_error());
}

static void setup(void) { start_with("timeout_ms = 3000\n"); }

/* Each test starts its own file system (some with other settings). */
TestSuite(cap, .fini = stop, .timeout = 120);

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void send_all(int fd, const void *p, size_t n)
{
	cr_assert_eq(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

/*
 * One raw request: header, body, data_len bytes of data; the reply's
 * status, its error message in msg and (for a successful read) its data in
 * data (up to data_cap bytes).
 */
static int32_t raw_call(int fd, uint16_t op, const uint8_t *body, uint32_t body_len,
			const void *data, uint32_t data_len, char *msg, size_t msglen,
			uint8_t *rdata, size_t rdata_cap)
{
	uint8_t raw[SFS_HDR_BYTES], rbody[SFS_MAX_BODY_BYTES];
	char err[256];
	struct sfs_hdr h = { .magic = SFS_PROTO_MAGIC, .version = SFS_PROTO_VERSION, .op = op,
			     .tag = 7, .body_len = body_len, .data_len = data_len };
	sfs_hdr_encode(&h, raw);
	send_all(fd, raw, sizeof(raw));
	if (body_len)
		send_all(fd, body, body_len);
	if (data_len)
		send_all(fd, data, data_len);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	cr_assert_eq(poll(&p, 1, 5000), 1, "no reply within 5 s");
	cr_assert_eq(recv(fd, raw, sizeof(raw), MSG_WAITALL), (ssize_t)sizeof(raw));
	cr_assert_eq(sfs_hdr_decode(raw, 1 << 30, &h, err, sizeof(err)), 0, "%s", err);
	if (h.body_len)
		cr_assert_eq(recv(fd, rbody, h.body_len, MSG_WAITALL), (ssize_t)h.body_len);
	msg[0] = '\0';
	if (h.status < 0 && h.body_len >= 2) {
		size_t n = (size_t)(rbody[0] | rbody[1] << 8);
		if (n >= msglen)
			n = msglen - 1;
		memcpy(msg, rbody + 2, n);
		msg[n] = '\0';
	}
	if (h.data_len) {
		cr_assert_leq(h.data_len, rdata_cap);
		cr_assert_eq(recv(fd, rdata, h.data_len, MSG_WAITALL), (ssize_t)h.data_len);
	}
	return h.status;
}

/* DF_READ/DF_WRITE/DF_TRUNCATE/DF_GETSIZE of handle with capability cap
 * (NULL: none sent, a zeroed field). */
static int32_t df_call(int fd, uint16_t op, const uint8_t *cap, uint64_t handle, uint64_t off,
		       uint64_t len, char *msg, size_t msglen, uint8_t *rdata)
{
	uint8_t body[SFS_CAP_BYTES + 24] = { 0 };
	uint32_t n = SFS_CAP_BYTES + 8;
	if (cap)
		memcpy(body, cap, SFS_CAP_BYTES);
	put_le(body + SFS_CAP_BYTES, handle, 8);
	if (op == SFS_OP_DF_WRITE) {
		put_le(body + n, off, 8);
		n += 8;
	} else if (op == SFS_OP_DF_READ || op == SFS_OP_DF_TRUNCATE) {
		put_le(body + n, off, 8);
		put_le(body + n + 8, len, 8);
		n += 16;
	}
	return raw_call(fd, op, body, n, op == SFS_OP_DF_WRITE ? "forged!!" : NULL,
			op == SFS_OP_DF_WRITE ? (uint32_t)len : 0, msg, msglen, rdata, 4096);
}

/* The I/O server's count of refused capabilities (STATS). */
static uint64_t refusals(void)
{
	char msg[256];
	uint8_t raw[SFS_HDR_BYTES], body[256];
	struct sfs_hdr h = { .magic = SFS_PROTO_MAGIC, .version = SFS_PROTO_VERSION,
			     .op = SFS_OP_STATS, .tag = 1 };
	struct sfs_reply *reply = calloc(1, sizeof(*reply));
	int fd = fsfix_connect(&fx, 1);
	cr_assert_geq(fd, 0);
	sfs_hdr_encode(&h, raw);
	send_all(fd, raw, sizeof(raw));
	cr_assert_eq(recv(fd, raw, sizeof(raw), MSG_WAITALL), (ssize_t)sizeof(raw));
	cr_assert_eq(sfs_hdr_decode(raw, 0, &h, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_leq(h.body_len, sizeof(body));
	cr_assert_eq(recv(fd, body, h.body_len, MSG_WAITALL), (ssize_t)h.body_len);
	cr_assert_eq(sfs_reply_decode(SFS_OP_STATS, 0, body, h.body_len, reply, msg,
				      sizeof(msg)), 0, "%s", msg);
	uint64_t n = reply->cap_refusals;
	free(reply);
	close(fd);
	return n;
}

/* A file written through libsfs (so its datafile exists): its handle. */
static uint64_t make_file(const char *path, const char *text)
{
	struct sfs_file *f;
	struct sfs_stat st;
	cr_assert_eq(sfs_open(fs, path, SFS_O_RDWR | SFS_O_CREAT, 0644, &f), 0, "%s",
		     sfs_last_error());
	cr_assert_eq(sfs_pwrite(f, text, strlen(text), 0), (ssize_t)strlen(text), "%s",
		     sfs_last_error());
	cr_assert_eq(sfs_close(f), 0);
	cr_assert_eq(sfs_stat(fs, path, &st), 0);
	return st.fid;
}

/* The file still holds text (nothing a refused request did stuck). */
static void file_holds(const char *path, const char *text)
{
	struct sfs_file *f;
	char buf[64] = { 0 };
	cr_assert_eq(sfs_open(fs, path, SFS_O_RDONLY, 0, &f), 0, "%s", sfs_last_error());
	cr_assert_eq(sfs_pread(f, buf, sizeof(buf) - 1, 0), (ssize_t)strlen(text), "%s",
		     sfs_last_error());
	cr_assert_str_eq(buf, text);
	sfs_close(f);
}

/* Each of the datafile ops, refused: EACCES with reason in the message. */
static void all_refused(int fd, const uint8_t *cap, uint64_t handle, const char *reason)
{
	static const uint16_t ops[] = { SFS_OP_DF_READ, SFS_OP_DF_WRITE, SFS_OP_DF_TRUNCATE,
					SFS_OP_DF_GETSIZE };
	char msg[256];
	uint8_t data[4096];
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		cr_assert_eq(df_call(fd, ops[i], cap, handle, 0, 8, msg, sizeof(msg), data),
			     -EACCES, "%s was not refused (%s)", sfs_op_name(ops[i]), reason);
		cr_assert(strstr(msg, reason), "%s: the refusal says why: \"%s\", expected \"%s\"",
			  sfs_op_name(ops[i]), msg, reason);
	}
}

Test(cap, no_capability_gets_nothing)
{
	setup();
	uint64_t h = make_file("/secret", "top secret");
	uint64_t before = refusals();
	int fd = fsfix_connect(&fx, 1);
	all_refused(fd, NULL, h, "no capability");
	/* the metadata server's own ops need its capability too */
	char msg[256];
	uint8_t body[SFS_CAP_BYTES + 16] = { 0 };
	put_le(body + SFS_CAP_BYTES, h, 8);
	cr_assert_eq(raw_call(fd, SFS_OP_DF_REMOVE, body, SFS_CAP_BYTES + 8, NULL, 0, msg,
			      sizeof(msg), NULL, 0), -EACCES);
	cr_assert_eq(raw_call(fd, SFS_OP_DF_CREATE, body, SFS_CAP_BYTES + 8, NULL, 0, msg,
			      sizeof(msg), NULL, 0), -EACCES, "DF_CREATE (truncates) served");
	put_le(body + SFS_CAP_BYTES, 9, 8);
	put_le(body + SFS_CAP_BYTES + 8, 1000, 4);
	cr_assert_eq(raw_call(fd, SFS_OP_DF_SNAP_FREEZE, body, SFS_CAP_BYTES + 12, NULL, 0, msg,
			      sizeof(msg), NULL, 0), -EACCES);
	cr_assert_eq(raw_call(fd, SFS_OP_DF_LIST, body, SFS_CAP_BYTES + 16, NULL, 0, msg,
			      sizeof(msg), NULL, 0), -EACCES, "DF_LIST (every handle) served");
	/* the connection stays in step (the refused write's data was read) */
	cr_assert_eq(raw_call(fd, SFS_OP_PING, NULL, 0, NULL, 0, msg, sizeof(msg), NULL, 0), 0);
	close(fd);
	cr_assert_eq(refusals() - before, 8, "refusals counted: %llu",
		     (unsigned long long)(refusals() - before));
	cr_assert(fsfix_log_contains(&fx, 1, "refused DF_READ from 127.0.0.1"),
		  "no log line names the refusal and the peer");
	file_holds("/secret", "top secret");
	fsfix_finish(&fx);
}

Test(cap, a_forged_capability_is_refused)
{
	setup();
	uint64_t h = make_file("/secret", "top secret");
	uint8_t cap[SFS_CAP_BYTES];
	struct sfs_cap_key other = { .bytes = { 0x5a } };
	int fd = fsfix_connect(&fx, 1);
	/* signed with a key that is not the file system's */
	struct sfs_cap c = { .version = SFS_CAP_VERSION, .rights = SFS_CAP_ADMIN, .handle = h,
			     .expiry_ns = INT64_MAX };
	sfs_cap_sign(&other, &c);
	sfs_cap_encode(&c, cap);
	all_refused(fd, cap, h, "bad signature");
	/* a real one with its rights raised, its expiry moved, its handle changed */
	fsfix_cap(&fx, h, SFS_CAP_READ, 60000, cap);
	cap[1] = SFS_CAP_ADMIN;
	all_refused(fd, cap, h, "bad signature");
	fsfix_cap(&fx, h, RW, -1000, cap);
	cap[21] = 0x7f; /* the top byte of expiry_ns */
	all_refused(fd, cap, h, "bad signature");
	fsfix_cap(&fx, h + 1, RW, 60000, cap);
	put_le(cap + 6, h, 8);
	all_refused(fd, cap, h, "bad signature");
	close(fd);
	file_holds("/secret", "top secret");
	fsfix_finish(&fx);
}

Test(cap, an_expired_capability_is_refused)
{
	setup();
	uint64_t h = make_file("/secret", "top secret");
	uint8_t cap[SFS_CAP_BYTES];
	int fd = fsfix_connect(&fx, 1);
	fsfix_cap(&fx, h, RW, -1, cap);
	all_refused(fd, cap, h, SFS_CAP_EXPIRED_MSG);
	fsfix_cap(&fx, 0, SFS_CAP_ADMIN, -60000, cap); /* the metadata server's, too */
	all_refused(fd, cap, h, SFS_CAP_EXPIRED_MSG);
	close(fd);
	file_holds("/secret", "top secret");
	fsfix_finish(&fx);
}

Test(cap, a_capability_for_another_handle_is_refused)
{
	setup();
	uint64_t mine = make_file("/mine", "my data");
	uint64_t theirs = make_file("/theirs", "their data");
	uint8_t cap[SFS_CAP_BYTES], data[4096];
	char msg[256];
	int fd = fsfix_connect(&fx, 1);
	fsfix_cap(&fx, mine, RW, 60000, cap);
	/* positive control: it reads its own file */
	cr_assert_eq(df_call(fd, SFS_OP_DF_READ, cap, mine, 0, 7, msg, sizeof(msg), data), 0,
		     "%s", msg);
	cr_assert_eq(memcmp(data, "my data", 7), 0);
	all_refused(fd, cap, theirs, "used for");
	close(fd);
	file_holds("/theirs", "their data");
	fsfix_finish(&fx);
}

Test(cap, a_read_only_capability_does_not_write)
{
	setup();
	uint64_t h = make_file("/ro", "read me");
	uint8_t cap[SFS_CAP_BYTES], data[4096];
	char msg[256];
	int fd = fsfix_connect(&fx, 1);
	fsfix_cap(&fx, h, SFS_CAP_READ, 60000, cap);
	cr_assert_eq(df_call(fd, SFS_OP_DF_READ, cap, h, 0, 7, msg, sizeof(msg), data), 0, "%s",
		     msg);
	cr_assert_eq(memcmp(data, "read me", 7), 0);
	cr_assert_eq(df_call(fd, SFS_OP_DF_WRITE, cap, h, 0, 8, msg, sizeof(msg), data), -EACCES);
	cr_assert(strstr(msg, "read-only"), "%s", msg);
	cr_assert_eq(df_call(fd, SFS_OP_DF_TRUNCATE, cap, h, 0, 0, msg, sizeof(msg), data),
		     -EACCES);
	/* a client's read-write one is not the metadata server's */
	fsfix_cap(&fx, h, RW, 60000, cap);
	uint8_t body[SFS_CAP_BYTES + 8];
	memcpy(body, cap, SFS_CAP_BYTES);
	put_le(body + SFS_CAP_BYTES, h, 8);
	cr_assert_eq(raw_call(fd, SFS_OP_DF_REMOVE, body, sizeof(body), NULL, 0, msg, sizeof(msg),
			      NULL, 0), -EACCES);
	cr_assert(strstr(msg, "metadata server"), "%s", msg);
	close(fd);
	file_holds("/ro", "read me");
	fsfix_finish(&fx);
}

Test(cap, a_snapshot_file_is_read_with_the_capability_of_its_lookup)
{
	struct sfs_file *f;
	setup();
	make_file("/d", "x");
	cr_assert_eq(sfs_mkdir(fs, "/job", 0755), 0, "%s", sfs_last_error());
	make_file("/job/data", "kept");
	cr_assert_eq(sfs_snapshot_create(fs, "s1", "/job", NULL), 0, "%s", sfs_last_error());
	cr_assert_eq(sfs_open(fs, "/.snapshots/s1/data", SFS_O_RDONLY, 0, &f), 0, "%s",
		     sfs_last_error());
	char buf[8] = { 0 };
	cr_assert_eq(sfs_pread(f, buf, 4, 0), 4, "%s", sfs_last_error());
	cr_assert_str_eq(buf, "kept");
	sfs_close(f);
	fsfix_finish(&fx);
}

/* A client whose capabilities expire between its calls renews them: every
 * call succeeds, and the I/O server saw (and refused) the stale one. */
Test(cap, a_client_renews_an_expired_capability)
{
	start_with("capability_lifetime_ms = 200\n");
	struct sfs_file *f;
	char buf[16] = { 0 };
	cr_assert_eq(sfs_open(fs, "/long", SFS_O_RDWR | SFS_O_CREAT, 0644, &f), 0, "%s",
		     sfs_last_error());
	cr_assert_eq(sfs_pwrite(f, "first", 5, 0), 5, "%s", sfs_last_error());
	uint64_t before = refusals();
	usleep(400 * 1000); /* past the capability's lifetime */
	cr_assert_eq(sfs_pwrite(f, "second", 6, 5), 6, "%s", sfs_last_error());
	cr_assert_geq(refusals() - before, 1, "the expired capability was not refused: the "
		      "test proves nothing");
	usleep(400 * 1000);
	cr_assert_eq(sfs_pread(f, buf, 11, 0), 11, "%s", sfs_last_error());
	cr_assert_str_eq(buf, "firstsecond");
	usleep(400 * 1000);
	struct sfs_stat st;
	cr_assert_eq(sfs_fstat(f, &st), 0, "%s", sfs_last_error());
	cr_assert_eq(st.size_bytes, 11);
	usleep(400 * 1000);
	cr_assert_eq(sfs_ftruncate(f, 5), 0, "%s", sfs_last_error());
	usleep(400 * 1000);
	uint64_t offset;
	cr_assert_eq(sfs_append(f, "!", 1, &offset), 1, "%s", sfs_last_error());
	cr_assert_eq(offset, 5);
	cr_assert_eq(sfs_close(f), 0);
	cr_assert_geq(refusals() - before, 4, "renewals: %llu",
		      (unsigned long long)(refusals() - before));
	file_holds("/long", "first!");
	fsfix_finish(&fx);
}

Test(cap, capabilities_off_checks_nothing_and_says_so)
{
	start_with("capabilities = off\n");
	uint64_t h = make_file("/open", "anyone");
	uint8_t data[4096];
	char msg[256];
	int fd = fsfix_connect(&fx, 1);
	cr_assert_eq(df_call(fd, SFS_OP_DF_READ, NULL, h, 0, 6, msg, sizeof(msg), data), 0,
		     "%s", msg);
	cr_assert_eq(memcmp(data, "anyone", 6), 0);
	close(fd);
	cr_assert(fsfix_log_contains(&fx, 1, "capabilities = off"), "not said loudly");
	fsfix_finish(&fx);
}

/* sfsd with a key others may read: it does not start, and says why. */
Test(cap, a_key_readable_by_others_stops_sfsd)
{
	char dir[] = "/tmp/sfs-cap-XXXXXX", conf[128], key[128], log[128], cmd[600];
	cr_assert_not_null(mkdtemp(dir));
	snprintf(conf, sizeof(conf), "%s/sfs.conf", dir);
	snprintf(key, sizeof(key), "%s/sfs.key", dir);
	snprintf(log, sizeof(log), "%s/sfsd.log", dir);
	FILE *f = fopen(conf, "w");
	cr_assert_not_null(f);
	cr_assert_eq(sfs_conf_write_loopback(f, 1, dir, 23900), 0);
	fclose(f);
	int created;
	char err[512];
	cr_assert_eq(sfs_cap_key_create(key, &created, err, sizeof(err)), 0, "%s", err);
	cr_assert(created);
	struct stat st;
	cr_assert_eq(stat(key, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600, "a new key is 0600, not %o", st.st_mode & 0777);
	cr_assert_eq(chmod(key, 0644), 0);
	snprintf(cmd, sizeof(cmd), "timeout 20 %s -c %s --all >%s 2>&1", fsfix_program("SFSD"),
		 conf, log);
	int status = system(cmd);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 124,
		  "sfsd started (or hung) with a 0644 key: status %d", status);
	snprintf(cmd, sizeof(cmd), "grep -q 'lets others read' %s", log);
	cr_assert_eq(system(cmd), 0, "sfsd did not say why it refused (see %s)", log);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}
