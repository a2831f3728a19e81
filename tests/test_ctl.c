/*
 * ctl: libsfs's control point seen from a fake agent, with no servers at
 * all (libsfs connects to servers lazily, and a call held at the gate never
 * reaches one). The test plays migagent on a Unix socket: registration,
 * the gate holding callers until resume or until the agent goes away,
 * errors for lines that are not the protocol, and no thread and no
 * connection when the control point is off or nobody listens.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent_proto.h"
#include "sfs.h"

static char dir[64], conf[128], sock_path[100];
static int listen_fd = -1, agent_fd = -1;
static struct sfs *fs;

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test_ctl_XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(conf, sizeof(conf), "%s/sfs.conf", dir);
	snprintf(sock_path, sizeof(sock_path), "%.60s/agent.sock", dir);
	/* Servers on a port nobody listens on: a call that gets past the gate
	 * fails at once with ECONNREFUSED. */
	FILE *f = fopen(conf, "w");
	cr_assert_not_null(f);
	fprintf(f, "[server meta]\nrole = meta\naddress = 127.0.0.1:9\ndir = /m\n"
		   "[server io0]\nrole = io\naddress = 127.0.0.1:9\ndir = /i\n");
	fclose(f);
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock_path);
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	cr_assert(bind(listen_fd, (struct sockaddr *)&addr, sizeof(addr)) == 0);
	cr_assert(listen(listen_fd, 8) == 0);
	setenv("SFS_AGENT_SOCKET", sock_path, 1);
}

static void teardown(void)
{
	sfs_disconnect(fs);
	fs = NULL;
	if (agent_fd >= 0)
		close(agent_fd);
	if (listen_fd >= 0)
		close(listen_fd);
	agent_fd = listen_fd = -1;
	unlink(sock_path);
	unlink(conf);
	rmdir(dir);
}

TestSuite(ctl, .init = setup, .fini = teardown, .timeout = 60);

static unsigned thread_count(void)
{
	unsigned n = 0;
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	while (d && (e = readdir(d)))
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

/* Connect the client and accept its connection (it connects in sfs_connect). */
static void connect_client(void)
{
	cr_assert_eq(sfs_connect(conf, NULL, &fs), 0, "%s", sfs_last_error());
	agent_fd = accept(listen_fd, NULL, NULL);
	cr_assert_geq(agent_fd, 0, "the client did not connect to the agent socket");
	struct timeval tv = { .tv_sec = 10 };
	setsockopt(agent_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* The next line from the client, parsed (a bounded read: 10 s). */
static void read_msg(struct agent_local_msg *m)
{
	char line[AGENT_LINE_MAX], err[300];
	size_t len = 0;
	while (len < sizeof(line)) {
		ssize_t n = recv(agent_fd, line + len, 1, 0);
		cr_assert_eq(n, 1, "no line from the client");
		if (line[len++] == '\n')
			break;
	}
	cr_assert_eq(agent_local_parse(line, len, m, err, sizeof(err)), 0, "%.*s: %s", (int)len,
		     line, err);
}

/* The next line that is not registration or periodic stats. */
static void read_reply(struct agent_local_msg *m)
{
	do
		read_msg(m);
	while (m->type == AGENT_LOCAL_STATS || m->type == AGENT_LOCAL_REGISTER);
}

static void send_line(const char *line)
{
	cr_assert_eq(send(agent_fd, line, strlen(line), MSG_NOSIGNAL), (ssize_t)strlen(line));
}

struct call {
	pthread_t thread;
	int rc, done;
};

static void *stat_call(void *arg)
{
	struct call *c = arg;
	struct sfs_stat st;
	c->rc = sfs_stat(fs, "/x", &st);
	__atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static int finished_within(struct call *c, int ms)
{
	for (int i = 0; i < ms / 10 && !__atomic_load_n(&c->done, __ATOMIC_ACQUIRE); i++)
		usleep(10000);
	return __atomic_load_n(&c->done, __ATOMIC_ACQUIRE);
}

static void quiesce(unsigned id)
{
	char line[128];
	struct agent_local_msg m;
	snprintf(line, sizeof(line), "{\"v\":1,\"type\":\"quiesce\",\"id\":%u}\n", id);
	send_line(line);
	read_reply(&m);
	cr_assert_eq(m.type, AGENT_LOCAL_QUIESCED);
	cr_assert_eq(m.id, id);
	cr_assert(m.ok, "%s", m.error);
}

Test(ctl, registers_with_pid_and_comm_then_reports_counters)
{
	connect_client();
	struct agent_local_msg m;
	read_msg(&m);
	cr_assert_eq(m.type, AGENT_LOCAL_REGISTER);
	cr_assert_eq(m.pid, getpid());
	cr_assert_str_eq(m.comm, "test_ctl");
	read_msg(&m);
	cr_assert_eq(m.type, AGENT_LOCAL_STATS, "no baseline stats after register");
	cr_assert_eq(m.write_bytes, 0);
	cr_assert_eq(m.inflight, 0);
}

Test(ctl, quiesce_holds_callers_without_error_until_resume)
{
	connect_client();
	quiesce(1);
	struct call c = { 0 };
	pthread_create(&c.thread, NULL, stat_call, &c);
	cr_assert_not(finished_within(&c, 300), "a call got past the closed gate (rc %d)", c.rc);
	send_line("{\"v\":1,\"type\":\"resume\",\"id\":2}\n");
	struct agent_local_msg m;
	read_reply(&m);
	cr_assert_eq(m.type, AGENT_LOCAL_RESUMED);
	cr_assert_eq(m.id, 2);
	pthread_join(c.thread, NULL);
	/* Past the gate it reached the (absent) servers: their error, not ours. */
	cr_assert_eq(c.rc, -ECONNREFUSED, "rc %d", c.rc);
}

Test(ctl, agent_going_away_releases_held_callers)
{
	connect_client();
	quiesce(7);
	struct call c = { 0 };
	pthread_create(&c.thread, NULL, stat_call, &c);
	cr_assert_not(finished_within(&c, 200), "a call got past the closed gate");
	close(agent_fd);
	agent_fd = -1;
	cr_assert(finished_within(&c, 10000), "the gate stayed closed after the agent left");
	pthread_join(c.thread, NULL);
	cr_assert_eq(c.rc, -ECONNREFUSED);
	/* And the client registers again when an agent comes back. */
	agent_fd = -1;
	struct pollfd pfd = { .fd = listen_fd, .events = POLLIN };
	cr_assert_eq(poll(&pfd, 1, 10000), 1, "the client did not come back");
	agent_fd = accept(listen_fd, NULL, NULL);
	struct timeval tv = { .tv_sec = 10 };
	setsockopt(agent_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct agent_local_msg m;
	read_msg(&m);
	cr_assert_eq(m.type, AGENT_LOCAL_REGISTER);
}

Test(ctl, lines_that_are_not_the_protocol_get_errors)
{
	static const struct {
		const char *line, *needle;
	} bad[] = {
		{ "junk\n", "bad message: not JSON" },
		{ "{\"v\":9,\"type\":\"quiesce\",\"id\":1}\n", "version 9" },
		{ "{\"v\":1,\"type\":\"quiesce\"}\n", "missing \"id\"" },
		{ "{\"v\":1,\"type\":\"stats\",\"read_bytes\":0,\"write_bytes\":0,\"inflight\":0,"
		  "\"requests\":0}\n", "not for a client" },
	};
	connect_client();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct agent_local_msg m;
		send_line(bad[i].line);
		read_reply(&m);
		cr_assert_eq(m.type, AGENT_LOCAL_ERROR, "no error for %s", bad[i].line);
		cr_assert(strstr(m.error, bad[i].needle), "%s: %s", bad[i].line, m.error);
	}
	quiesce(3); /* still serving */
	send_line("{\"v\":1,\"type\":\"resume\",\"id\":4}\n");
}

Test(ctl, off_or_nobody_listening_costs_no_thread_and_no_connection)
{
	unsigned threads = thread_count();
	setenv("SFS_AGENT_SOCKET", "off", 1);
	cr_assert_eq(sfs_connect(conf, NULL, &fs), 0);
	cr_assert_eq(accept(listen_fd, NULL, NULL), -1, "connected although off");
	cr_assert_eq(errno, EAGAIN);
	cr_assert_eq(thread_count(), threads);
	sfs_disconnect(fs);
	fs = NULL;
	char nowhere[160];
	snprintf(nowhere, sizeof(nowhere), "%s/nobody.sock", dir);
	setenv("SFS_AGENT_SOCKET", nowhere, 1);
	cr_assert_eq(sfs_connect(conf, NULL, &fs), 0);
	cr_assert_eq(thread_count(), threads);
	struct sfs_stat st;
	cr_assert_eq(sfs_stat(fs, "/x", &st), -ECONNREFUSED);
}
