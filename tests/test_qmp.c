/*
 * test_qmp: the QMP client against a real QEMU (a BIOS-only machine, no
 * kernel: it idles in SeaBIOS, which is all QMP needs) and against a fake
 * peer on a socketpair for what a real QEMU never sends (malformed input).
 * The real-QEMU tests skip when qemu-system-x86_64 is not installed.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qmp.h"
#include "util.h"

/* ---- a real QEMU ---- */

struct qemu {
	pid_t pid;
	char dir[64], sock[128];
};

static bool have_qemu(void)
{
	return system("command -v qemu-system-x86_64 >/dev/null 2>&1") == 0;
}

static void qemu_start(struct qemu *q)
{
	if (!have_qemu())
		cr_skip_test("qemu-system-x86_64 is not installed");
	snprintf(q->dir, sizeof(q->dir), "/tmp/test_qmp.XXXXXX");
	cr_assert_not_null(mkdtemp(q->dir));
	snprintf(q->sock, sizeof(q->sock), "%s/qmp.sock", q->dir);
	q->pid = fork();
	cr_assert(q->pid >= 0);
	if (q->pid == 0) {
		char qmp_arg[200];
		snprintf(qmp_arg, sizeof(qmp_arg), "unix:%s,server=on,wait=off", q->sock);
		execlp("qemu-system-x86_64", "qemu-system-x86_64", "-machine", "pc", "-accel", "tcg",
		       "-m", "64", "-nodefaults", "-no-user-config", "-display", "none", "-qmp",
		       qmp_arg, (char *)NULL);
		_exit(127);
	}
}

static void qemu_stop(struct qemu *q)
{
	if (q->pid > 0) {
		kill(q->pid, SIGKILL);
		waitpid(q->pid, NULL, 0);
	}
	unlink(q->sock);
	rmdir(q->dir);
}

Test(qmp_real, connects_and_reads_status)
{
	struct qemu vm;
	struct qmp *q = NULL;
	json_t *r = NULL;
	char err[256] = "";
	qemu_start(&vm);
	int rc = qmp_connect(vm.sock, 10000, &q, err, sizeof(err));
	cr_assert_eq(rc, 0, "connect: %s", err);
	rc = qmp_execute(q, "query-status", NULL, 5000, &r, err, sizeof(err));
	cr_assert_eq(rc, 0, "query-status: %s", err);
	cr_expect_str_eq(json_string_value(json_object_get(r, "status")), "running");
	json_decref(r);
	qmp_close(q);
	qemu_stop(&vm);
}

Test(qmp_real, error_reply_names_command_class_and_desc)
{
	struct qemu vm;
	struct qmp *q = NULL;
	json_t *r = NULL;
	char err[256] = "";
	qemu_start(&vm);
	cr_assert_eq(qmp_connect(vm.sock, 10000, &q, err, sizeof(err)), 0, "%s", err);
	int rc = qmp_execute(q, "no-such-command", NULL, 5000, &r, err, sizeof(err));
	cr_expect_eq(rc, -EREMOTEIO);
	cr_expect_null(r);
	cr_expect(strstr(err, "no-such-command: CommandNotFound: ") == err, "err: %s", err);
	/* bad arguments: GenericError with QEMU's description */
	rc = qmp_execute(q, "migrate-set-parameters", json_pack("{s:i}", "downtime-limit", -1),
			 5000, NULL, err, sizeof(err));
	cr_expect_eq(rc, -EREMOTEIO);
	cr_expect(strstr(err, "migrate-set-parameters: GenericError: ") == err, "err: %s", err);
	/* the connection still works after an error */
	cr_expect_eq(qmp_execute(q, "query-status", NULL, 5000, NULL, err, sizeof(err)), 0);
	qmp_close(q);
	qemu_stop(&vm);
}

Test(qmp_real, keeps_events_seen_while_waiting)
{
	struct qemu vm;
	struct qmp *q = NULL;
	json_t *r = NULL;
	char err[256] = "";
	qemu_start(&vm);
	cr_assert_eq(qmp_connect(vm.sock, 10000, &q, err, sizeof(err)), 0, "%s", err);
	cr_expect_not(qmp_event_seen(q, "STOP"));
	cr_assert_eq(qmp_execute(q, "stop", NULL, 5000, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(qmp_execute(q, "query-status", NULL, 5000, &r, err, sizeof(err)), 0);
	cr_expect_str_eq(json_string_value(json_object_get(r, "status")), "paused");
	json_decref(r);
	/* QEMU emits STOP before answering "stop" or soon after: within the
	 * next round trips it has been read */
	for (int i = 0; i < 50 && !qmp_event_seen(q, "STOP"); i++) {
		usleep(10000);
		qmp_execute(q, "query-status", NULL, 5000, NULL, err, sizeof(err));
	}
	cr_expect(qmp_event_seen(q, "STOP"));
	cr_assert_eq(qmp_execute(q, "cont", NULL, 5000, NULL, err, sizeof(err)), 0);
	qmp_events_clear(q);
	cr_expect_not(qmp_event_seen(q, "STOP"));
	qmp_close(q);
	qemu_stop(&vm);
}

Test(qmp_real, peer_gone_is_connreset)
{
	struct qemu vm;
	struct qmp *q = NULL;
	char err[256] = "";
	qemu_start(&vm);
	cr_assert_eq(qmp_connect(vm.sock, 10000, &q, err, sizeof(err)), 0, "%s", err);
	kill(vm.pid, SIGKILL);
	waitpid(vm.pid, NULL, 0);
	vm.pid = 0;
	int rc = qmp_execute(q, "query-status", NULL, 5000, NULL, err, sizeof(err));
	cr_expect(rc == -ECONNRESET, "rc %d: %s", rc, err);
	cr_expect(qmp_broken(q));
	cr_expect_eq(qmp_execute(q, "query-status", NULL, 100, NULL, err, sizeof(err)), -ECONNRESET);
	qmp_close(q);
	qemu_stop(&vm);
}

Test(qmp, connect_to_nothing_gives_up_in_time)
{
	struct qmp *q = NULL;
	char err[256] = "";
	uint64_t t0 = now_ms();
	int rc = qmp_connect("/tmp/test_qmp.no-such-socket", 200, &q, err, sizeof(err));
	cr_expect_eq(rc, -ENOENT);
	cr_expect_null(q);
	cr_expect(now_ms() - t0 < 5000);
	cr_expect(strstr(err, "/tmp/test_qmp.no-such-socket") != NULL, "err: %s", err);
}

/* ---- a fake peer: bytes written in advance on a socketpair ---- */

#define GREETING "{\"QMP\":{\"version\":{},\"capabilities\":[]}}\n"
#define CAPS_OK "{\"return\":{},\"id\":1}\n"

struct fake {
	int peer;
	struct qmp *q;
	int rc;
	char err[256];
};

/* Attach a client to a socketpair whose peer has already "sent" script. */
static void fake_attach(struct fake *f, const char *script, int timeout_ms)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	f->peer = sv[1];
	cr_assert_eq(write_full(f->peer, script, strlen(script)), 0);
	f->q = NULL;
	f->rc = qmp_attach(sv[0], "fake", timeout_ms, &f->q, f->err, sizeof(f->err));
}

static void fake_done(struct fake *f)
{
	qmp_close(f->q);
	close(f->peer);
}

Test(qmp_fake, greeting_not_json_is_eproto)
{
	struct fake f;
	fake_attach(&f, "hello there\n", 1000);
	cr_expect_eq(f.rc, -EPROTO);
	cr_expect(strstr(f.err, "not a JSON object") != NULL, "err: %s", f.err);
	fake_done(&f);
}

Test(qmp_fake, greeting_without_qmp_is_eproto)
{
	struct fake f;
	fake_attach(&f, "{\"hello\":1}\n", 1000);
	cr_expect_eq(f.rc, -EPROTO);
	cr_expect(strstr(f.err, "greeting") != NULL, "err: %s", f.err);
	fake_done(&f);
}

Test(qmp_fake, json_that_is_not_an_object_is_eproto)
{
	struct fake f;
	fake_attach(&f, "[1,2,3]\n", 1000);
	cr_expect_eq(f.rc, -EPROTO);
	fake_done(&f);
}

Test(qmp_fake, silence_is_a_timeout)
{
	struct fake f;
	uint64_t t0 = now_ms();
	fake_attach(&f, "", 200);
	cr_expect_eq(f.rc, -ETIMEDOUT);
	cr_expect(now_ms() - t0 < 5000);
	fake_done(&f);
}

Test(qmp_fake, closed_mid_line_is_connreset)
{
	struct fake f;
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	cr_assert_eq(write_full(sv[1], "{\"QMP\":", 7), 0);
	close(sv[1]);
	f.rc = qmp_attach(sv[0], "fake", 1000, &f.q, f.err, sizeof(f.err));
	cr_expect_eq(f.rc, -ECONNRESET);
	cr_expect(strstr(f.err, "closed") != NULL, "err: %s", f.err);
}

Test(qmp_fake, reply_without_return_or_error_is_eproto)
{
	struct fake f;
	fake_attach(&f, GREETING CAPS_OK "{\"id\":2,\"foo\":1}\n", 1000);
	cr_assert_eq(f.rc, 0, "%s", f.err);
	int rc = qmp_execute(f.q, "query-status", NULL, 1000, NULL, f.err, sizeof(f.err));
	cr_expect_eq(rc, -EPROTO);
	cr_expect(strstr(f.err, "query-status") != NULL, "err: %s", f.err);
	fake_done(&f);
}

Test(qmp_fake, message_without_id_is_eproto_and_breaks)
{
	struct fake f;
	fake_attach(&f, GREETING CAPS_OK "{\"return\":{}}\n", 1000);
	cr_assert_eq(f.rc, 0, "%s", f.err);
	cr_expect_eq(qmp_execute(f.q, "stop", NULL, 1000, NULL, f.err, sizeof(f.err)), -EPROTO);
	cr_expect(qmp_broken(f.q));
	fake_done(&f);
}

Test(qmp_fake, error_without_fields_still_names_the_command)
{
	struct fake f;
	fake_attach(&f, GREETING CAPS_OK "{\"error\":{},\"id\":2}\n", 1000);
	cr_assert_eq(f.rc, 0, "%s", f.err);
	cr_expect_eq(qmp_execute(f.q, "cont", NULL, 1000, NULL, f.err, sizeof(f.err)), -EREMOTEIO);
	cr_expect(strncmp(f.err, "cont: (no class): (no description)", 34) == 0, "err: %s", f.err);
	fake_done(&f);
}

Test(qmp_fake, events_and_stale_replies_are_skipped)
{
	struct fake f;
	json_t *r = NULL;
	fake_attach(&f, GREETING CAPS_OK
		    "{\"event\":\"STOP\",\"timestamp\":{}}\n"
		    "{\"return\":{\"status\":\"old\"},\"id\":99}\n"
		    "{\"event\":\"RESUME\",\"timestamp\":{}}\n"
		    "{\"return\":{\"status\":\"running\"},\"id\":2}\n", 1000);
	cr_assert_eq(f.rc, 0, "%s", f.err);
	cr_assert_eq(qmp_execute(f.q, "query-status", NULL, 1000, &r, f.err, sizeof(f.err)), 0,
		     "%s", f.err);
	cr_expect_str_eq(json_string_value(json_object_get(r, "status")), "running");
	cr_expect(qmp_event_seen(f.q, "STOP"));
	cr_expect(qmp_event_seen(f.q, "RESUME"));
	cr_expect_not(qmp_event_seen(f.q, "SHUTDOWN"));
	json_decref(r);
	fake_done(&f);
}

Test(qmp_fake, duplicate_keys_are_rejected)
{
	struct fake f;
	fake_attach(&f, GREETING CAPS_OK "{\"return\":{},\"return\":{},\"id\":2}\n", 1000);
	cr_assert_eq(f.rc, 0, "%s", f.err);
	cr_expect_eq(qmp_execute(f.q, "stop", NULL, 1000, NULL, f.err, sizeof(f.err)), -EPROTO);
	fake_done(&f);
}

static void *flood(void *arg)
{
	int fd = *(int *)arg;
	static char block[65536];
	memset(block, 'x', sizeof(block));
	write_full(fd, "{\"QMP\":\"", 8);
	for (int i = 0; i < (QMP_LINE_MAX / (int)sizeof(block)) + 2; i++)
		if (write_full(fd, block, sizeof(block)) < 0)
			break; /* the client gave up and closed: fine */
	return NULL;
}

Test(qmp_fake, endless_line_is_eproto_not_unbounded_memory)
{
	int sv[2];
	pthread_t t;
	struct qmp *q = NULL;
	char err[256];
	signal(SIGPIPE, SIG_IGN);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pthread_create(&t, NULL, flood, &sv[1]);
	int rc = qmp_attach(sv[0], "fake", 10000, &q, err, sizeof(err));
	cr_expect_eq(rc, -EPROTO);
	cr_expect(strstr(err, "longer than") != NULL, "err: %s", err);
	shutdown(sv[1], SHUT_RDWR);
	pthread_join(t, NULL);
	close(sv[1]);
}
