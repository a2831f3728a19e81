/*
 * agent_link: migd's side of the migagent protocol, against a real DEALER
 * on loopback: hello and activity make an agent known with its version and
 * rates, and say agent.connected; every malformed message is answered with
 * an error naming what was wrong and changes nothing; requests carry ids
 * and their answers are matched to them (an answer from another guest's
 * connection or to a forgotten request is dropped), time out, or fail when
 * the guest's agent reconnects; a request to an unknown guest is refused;
 * 10,000 agents are found by name.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "agent_link.h"
#include "db.h"
#include "util.h"

static char path[128], err[512], endpoint[128];
static struct db *db;
static struct agent_link *al;
static void *zctx;

static int64_t test_clock(void *arg)
{
	return 42;
}

static void setup(void)
{
	/* tmpfs when there is one: 10,000 agents' first messages are 10,000
	 * commits, and on a busy disk their fsyncs alone outlast the timeout */
	const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(path, sizeof(path), "%s/test_agent_link_%d.db", dir, (int)getpid());
	unlink(path);
	cr_assert_eq(db_open(path, &db, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(agent_link_new("tcp://127.0.0.1:*", db, test_clock, NULL, &al, err,
				    sizeof(err)), 0, "%s", err);
	size_t len = sizeof(endpoint);
	zmq_getsockopt(agent_link_socket(al), ZMQ_LAST_ENDPOINT, endpoint, &len);
	zctx = zmq_ctx_new();
}

static void teardown(void)
{
	agent_link_free(al);
	db_close(db);
	zmq_ctx_term(zctx);
	char p[160];
	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
}

/* a guard against hangs, not a speed goal: under ASan on a loaded machine
 * the 40,000-message test takes well over its usual 16 s */
TestSuite(agent_link, .init = setup, .fini = teardown, .timeout = 240);

static void *dealer(void)
{
	void *s = zmq_socket(zctx, ZMQ_DEALER);
	int linger = 0;
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
	cr_assert_eq(zmq_connect(s, endpoint), 0);
	return s;
}

static void say(void *s, const char *text)
{
	cr_assert_eq(zmq_send(s, text, strlen(text), 0), (int)strlen(text));
}

/* Let migd's side read for a while (bounded). */
static void pump(int rounds)
{
	for (int i = 0; i < rounds; i++) {
		agent_link_tick(al);
		usleep(2000);
	}
}

/* The next message migd sent to s, within 2 s (pumping meanwhile). */
static json_t *hear(void *s)
{
	char buf[70000];
	for (int i = 0; i < 400; i++) {
		agent_link_tick(al);
		int n = zmq_recv(s, buf, sizeof(buf) - 1, ZMQ_DONTWAIT);
		if (n >= 0) {
			buf[n] = '\0';
			json_t *o = json_loads(buf, 0, NULL);
			cr_assert(o, "not JSON from migd: %s", buf);
			return o;
		}
		usleep(5000);
	}
	cr_assert_fail("nothing from migd within 2 s");
	return NULL;
}

static int connected(const char *guest)
{
	struct agent_status st;
	return agent_link_status(al, guest, &st) == 0 && st.connected;
}

static void wait_connected(const char *guest)
{
	for (int i = 0; i < 400 && !connected(guest); i++)
		pump(1);
	cr_assert(connected(guest), "agent of %s not connected", guest);
}

static void hello(void *s, const char *guest)
{
	char text[256];
	snprintf(text, sizeof(text), "{\"v\":1,\"type\":\"hello\",\"guest\":\"%s\","
		 "\"hostname\":\"%s\",\"version\":\"9.8.7\",\"pid\":4242}", guest, guest);
	say(s, text);
	wait_connected(guest);
}

Test(agent_link, hello_and_activity_make_an_agent_known_with_its_rates)
{
	void *s = dealer();
	hello(s, "g1");
	struct agent_status st;
	cr_assert_eq(agent_link_status(al, "g1", &st), 0);
	cr_assert_str_eq(st.version, "9.8.7");
	cr_assert_eq(st.pid, 4242);
	cr_assert_eq(st.has_activity, 0);
	say(s, "{\"v\":1,\"type\":\"activity\",\"guest\":\"g1\",\"interval_ms\":1000,"
	       "\"read_bps\":100,\"write_bps\":2048.5,\"inflight\":3,\"quiesced\":false,"
	       "\"clients\":[{\"pid\":7,\"comm\":\"sfs-ior\",\"read_bps\":100,"
	       "\"write_bps\":2048.5,\"inflight\":3}]}");
	for (int i = 0; i < 400 && !st.has_activity; i++) {
		pump(1);
		agent_link_status(al, "g1", &st);
	}
	cr_assert_eq(st.read_bps, 100);
	cr_assert_eq(st.write_bps, 2048.5);
	cr_assert_eq(st.inflight, 3);
	json_t *o = agent_link_json(al, "g1");
	cr_assert(json_is_true(json_object_get(o, "connected")));
	cr_assert_eq(json_array_size(json_object_get(o, "clients")), 1);
	json_decref(o);
	o = agent_link_json(al, "never");
	cr_assert(json_is_false(json_object_get(o, "connected")));
	json_decref(o);
	cr_assert(json_is_null(o = agent_link_json(NULL, "g1")), "agents off: null");
	json_t *events = db_events_take(db);
	cr_assert_eq(json_array_size(events), 1);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(events, 0), "type")),
			 "agent.connected");
	json_decref(events);
	zmq_close(s);
}

Test(agent_link, malformed_messages_are_answered_naming_the_problem)
{
	static const struct {
		const char *text, *word;
	} bad[] = {
		{ "not json", "bad message" },
		{ "[1]", "not a JSON object" },
		{ "{\"type\":\"hello\",\"guest\":\"g1\"}", "\"v\"" },
		{ "{\"v\":1}", "\"type\"" },
		{ "{\"v\":1,\"type\":\"dance\"}", "unknown type \"dance\"" },
		{ "{\"v\":1,\"type\":\"hello\"}", "\"guest\" is missing" },
		{ "{\"v\":1,\"type\":\"hello\",\"guest\":7}", "\"guest\" is not a string" },
		{ "{\"v\":1,\"type\":\"hello\",\"guest\":\"../etc\"}", "not a guest name" },
		{ "{\"v\":1,\"type\":\"activity\",\"guest\":\"g1\",\"read_bps\":-1}", "read_bps" },
		{ "{\"v\":1,\"type\":\"activity\",\"guest\":\"g1\",\"clients\":5}", "clients" },
		{ "{\"v\":1,\"type\":\"reply\",\"id\":1}", "boolean \"ok\"" },
		{ "{\"v\":1,\"type\":\"reply\",\"id\":2,\"ok\":true,\"result\":[]}", "object" },
	};
	void *s = dealer();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		say(s, bad[i].text);
		json_t *ans = hear(s);
		cr_assert_str_eq(json_string_value(json_object_get(ans, "type")), "error");
		const char *e = json_string_value(json_object_get(ans, "error"));
		cr_assert(e && strstr(e, bad[i].word), "%s: expected \"%s\" in %s", bad[i].text,
			  bad[i].word, e ? e : "(none)");
		json_decref(ans);
	}
	cr_assert(!connected("g1"), "a refused message makes no agent");
	json_t *ev = db_events_take(db);
	cr_assert_eq(json_array_size(ev), 0);
	json_decref(ev);
	zmq_close(s);
}

Test(agent_link, requests_are_matched_to_their_answers)
{
	void *s = dealer(), *other = dealer();
	hello(s, "g1");
	hello(other, "g2");
	uint64_t id;
	cr_assert_eq(agent_link_send(al, "g1", "quiesce", 1500, 5000, &id), 0);
	json_t *q = hear(s);
	cr_assert_str_eq(json_string_value(json_object_get(q, "type")), "quiesce");
	cr_assert_eq(json_integer_value(json_object_get(q, "deadline_ms")), 1500);
	cr_assert_eq((uint64_t)json_integer_value(json_object_get(q, "id")), id);
	cr_assert_eq(json_integer_value(json_object_get(q, "v")), 1);
	json_decref(q);
	struct agent_reply rep;
	cr_assert_eq(agent_link_reply(al, id, &rep), 0, "still waiting");

	char text[256];
	/* another guest's connection cannot answer it */
	snprintf(text, sizeof(text), "{\"v\":1,\"type\":\"reply\",\"id\":%llu,\"ok\":true,"
		 "\"result\":{}}", (unsigned long long)id);
	say(other, text);
	pump(20);
	cr_assert_eq(agent_link_reply(al, id, &rep), 0, "answered by the wrong agent");

	snprintf(text, sizeof(text), "{\"v\":1,\"type\":\"reply\",\"id\":%llu,\"ok\":false,"
		 "\"error\":\"deadline 1500 ms missed: 2 in flight\",\"result\":"
		 "{\"missed_deadline\":true,\"drained_requests\":5}}", (unsigned long long)id);
	say(s, text);
	int rc = 0;
	for (int i = 0; i < 400 && rc == 0; i++) {
		pump(1);
		rc = agent_link_reply(al, id, &rep);
	}
	cr_assert_eq(rc, 1);
	cr_assert_eq(rep.ok, 0);
	cr_assert(strstr(rep.error, "deadline 1500 ms missed"));
	cr_assert(json_is_true(json_object_get(rep.result, "missed_deadline")));
	agent_link_forget(al, id);
	cr_assert_eq(agent_link_reply(al, id, &rep), -ENOENT);
	say(s, text); /* a late duplicate: dropped, nothing breaks */
	pump(20);

	cr_assert_eq(agent_link_send(al, "g2", "ping", 0, 30, &id), 0);
	json_decref(hear(other));
	usleep(40000);
	cr_assert_eq(agent_link_reply(al, id, &rep), -ETIMEDOUT);
	agent_link_forget(al, id);

	cr_assert_eq(agent_link_send(al, "nobody", "resume", 0, 1000, &id), -ENOTCONN);
	cr_assert_eq(agent_link_send(al, "g1", "reboot", 0, 1000, &id), -EINVAL);
	zmq_close(s);
	zmq_close(other);
}

Test(agent_link, a_reconnect_fails_what_was_asked_of_the_old_connection)
{
	void *old = dealer();
	hello(old, "g1");
	uint64_t id;
	cr_assert_eq(agent_link_send(al, "g1", "quiesce", 2000, 5000, &id), 0);
	json_decref(hear(old));
	void *fresh = dealer();
	/* activity alone (an agent that outlived a migd restart) takes over */
	say(fresh, "{\"v\":1,\"type\":\"activity\",\"guest\":\"g1\",\"write_bps\":1}");
	struct agent_reply rep;
	int rc = 0;
	for (int i = 0; i < 400 && rc == 0; i++) {
		pump(1);
		rc = agent_link_reply(al, id, &rep);
	}
	cr_assert_eq(rc, -ECONNRESET);
	agent_link_forget(al, id);
	cr_assert_eq(agent_link_send(al, "g1", "resume", 0, 5000, &id), 0);
	json_t *r = hear(fresh);
	cr_assert_str_eq(json_string_value(json_object_get(r, "type")), "resume");
	json_decref(r);
	/* the old connection now speaks for g1 no more */
	say(old, "{\"v\":1,\"type\":\"activity\",\"guest\":\"g2\",\"write_bps\":1}");
	pump(20);
	cr_assert(connected("g2"));
	cr_assert(connected("g1"));
	zmq_close(old);
	zmq_close(fresh);
}

Test(agent_link, ten_thousand_agents_are_found_by_name)
{
	char text[256], rid[16];
	uint64_t t0 = now_ms();
	for (int i = 9999; i >= 0; i--) { /* worst order for a sorted insert */
		int n = snprintf(text, sizeof(text), "{\"v\":1,\"type\":\"activity\",\"guest\":"
				 "\"g%05d\",\"write_bps\":%d}", i, i);
		snprintf(rid, sizeof(rid), "r%05d", i);
		agent_link_feed(al, rid, strlen(rid), text, (size_t)n);
	}
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < 10000; i++) {
			int n = snprintf(text, sizeof(text), "{\"v\":1,\"type\":\"activity\","
					 "\"guest\":\"g%05d\",\"write_bps\":%d}", i, i + round);
			snprintf(rid, sizeof(rid), "r%05d", i);
			agent_link_feed(al, rid, strlen(rid), text, (size_t)n);
		}
	struct agent_status st;
	cr_assert_eq(agent_link_status(al, "g07777", &st), 0);
	cr_assert_eq(st.write_bps, 7777 + 2);
	json_t *list = agent_link_list(al);
	cr_assert_eq(json_array_size(list), 10000);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(list, 0), "guest")),
			 "g00000");
	json_decref(list);
	/* not a timed assertion: a report of what 40,000 messages cost */
	cr_log_info("40,000 activity messages from 10,000 agents: %llu ms",
		    (unsigned long long)(now_ms() - t0));
}

Test(agent_link, resume_carries_reconnect_only_when_asked)
{
	void *s = dealer();
	hello(s, "g1");
	uint64_t id;
	cr_assert_eq(agent_link_send_resume(al, "g1", 1, 5000, &id), 0);
	json_t *m = hear(s);
	cr_assert_str_eq(json_string_value(json_object_get(m, "type")), "resume");
	cr_assert_eq((uint64_t)json_integer_value(json_object_get(m, "id")), id);
	cr_assert(json_is_true(json_object_get(m, "reconnect")), "no reconnect:true");
	cr_assert_null(json_object_get(m, "deadline_ms"));
	json_decref(m);
	char text[256];
	snprintf(text, sizeof(text), "{\"v\":1,\"type\":\"reply\",\"id\":%llu,\"ok\":true,"
		 "\"result\":{\"clients\":2,\"held_ms\":5.0,\"reconnect\":true}}",
		 (unsigned long long)id);
	say(s, text);
	struct agent_reply rep;
	int rc = 0;
	for (int i = 0; i < 400 && rc == 0; i++) {
		pump(1);
		rc = agent_link_reply(al, id, &rep);
	}
	cr_assert_eq(rc, 1);
	cr_assert(rep.ok);
	cr_assert(json_is_true(json_object_get(rep.result, "reconnect")));
	agent_link_forget(al, id);

	/* an ordinary resume, either way it is asked for: no flag at all, so
	 * an agent older than it sees the message it always did */
	cr_assert_eq(agent_link_send_resume(al, "g1", 0, 5000, &id), 0);
	m = hear(s);
	cr_assert_str_eq(json_string_value(json_object_get(m, "type")), "resume");
	cr_assert_null(json_object_get(m, "reconnect"));
	json_decref(m);
	agent_link_forget(al, id);
	cr_assert_eq(agent_link_send(al, "g1", "resume", 0, 5000, &id), 0);
	m = hear(s);
	cr_assert_null(json_object_get(m, "reconnect"));
	json_decref(m);
	agent_link_forget(al, id);
	cr_assert_eq(agent_link_send_resume(al, "nobody", 1, 1000, &id), -ENOTCONN);
	zmq_close(s);
}
