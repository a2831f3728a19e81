/*
 * agent_proto: the codecs of migagent's two protocols. Round trips of every
 * message, and malformed input of every kind refused with a message that
 * names what was wrong (never a crash, never a half-parsed command).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent_proto.h"

static int cmd(const char *text, struct agent_cmd *out, json_t **bad_id, char *err)
{
	return agent_cmd_parse(text, strlen(text), out, bad_id, err, 400);
}

Test(agent_proto, quiesce_resume_ping_parse_with_their_ids)
{
	struct agent_cmd c;
	char err[400];
	cr_assert_eq(cmd("{\"v\":1,\"type\":\"quiesce\",\"id\":7,\"deadline_ms\":2000}", &c, NULL,
			 err), 0, "%s", err);
	cr_assert_eq(c.type, AGENT_CMD_QUIESCE);
	cr_assert_eq(json_integer_value(c.id), 7);
	cr_assert_eq(c.deadline_ms, 2000);
	agent_cmd_clear(&c);
	cr_assert_eq(cmd("{\"v\":1,\"type\":\"resume\",\"id\":\"m-12\"}", &c, NULL, err), 0);
	cr_assert_eq(c.type, AGENT_CMD_RESUME);
	cr_assert_str_eq(json_string_value(c.id), "m-12");
	agent_cmd_clear(&c);
	cr_assert_eq(cmd("{\"v\":1,\"type\":\"ping\",\"id\":0,\"extra\":[1]}", &c, NULL, err), 0);
	cr_assert_eq(c.type, AGENT_CMD_PING);
	agent_cmd_clear(&c);
}

struct bad_case {
	const char *text;
	int rc;
	const char *needle;
};

Test(agent_proto, malformed_commands_are_refused_with_the_reason)
{
	static const struct bad_case cases[] = {
		{ "", -EINVAL, "not JSON" },
		{ "{\"v\":1,", -EINVAL, "not JSON" },
		{ "\"quiesce\"", -EINVAL, "not JSON" }, /* a bare string is not a document */
		{ "[]", -EINVAL, "not a JSON object" },
		{ "{}", -EINVAL, "\"v\"" },
		{ "{\"v\":\"1\",\"type\":\"ping\",\"id\":1}", -EINVAL, "\"v\"" },
		{ "{\"v\":2,\"type\":\"ping\",\"id\":1}", -EPROTONOSUPPORT, "version 2" },
		{ "{\"v\":1,\"id\":1}", -EINVAL, "\"type\"" },
		{ "{\"v\":1,\"type\":5,\"id\":1}", -EINVAL, "\"type\"" },
		{ "{\"v\":1,\"type\":\"reboot\",\"id\":1}", -EINVAL, "unknown type \"reboot\"" },
		{ "{\"v\":1,\"type\":\"ping\"}", -EINVAL, "missing \"id\"" },
		{ "{\"v\":1,\"type\":\"ping\",\"id\":null}", -EINVAL, "\"id\" = null" },
		{ "{\"v\":1,\"type\":\"ping\",\"id\":\"\"}", -EINVAL, "\"id\"" },
		{ "{\"v\":1,\"type\":\"ping\",\"id\":1.5}", -EINVAL, "\"id\" = 1.5" },
		{ "{\"v\":1,\"type\":\"quiesce\",\"id\":1}", -EINVAL, "missing \"deadline_ms\"" },
		{ "{\"v\":1,\"type\":\"quiesce\",\"id\":1,\"deadline_ms\":-1}", -EINVAL,
		  "\"deadline_ms\" = -1" },
		{ "{\"v\":1,\"type\":\"quiesce\",\"id\":1,\"deadline_ms\":0}", -EINVAL,
		  "at least 1" },
		{ "{\"v\":1,\"type\":\"quiesce\",\"id\":1,\"deadline_ms\":99999999999}", -EINVAL,
		  "deadline_ms" },
		{ "{\"v\":1,\"type\":\"quiesce\",\"id\":1,\"deadline_ms\":\"2s\"}", -EINVAL,
		  "\"deadline_ms\" = \"2s\"" },
		{ "{\"v\":1,\"type\":\"ping\",\"id\":1,\"id\":2}", -EINVAL, "not JSON" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct agent_cmd c;
		char err[400] = "";
		int rc = cmd(cases[i].text, &c, NULL, err);
		cr_expect_eq(rc, cases[i].rc, "%s: rc %d", cases[i].text, rc);
		cr_expect(strncmp(err, "bad message: ", 13) == 0, "%s: %s", cases[i].text, err);
		cr_expect(strstr(err, cases[i].needle), "%s: \"%s\" lacks \"%s\"", cases[i].text,
			  err, cases[i].needle);
		cr_expect_null(c.id);
	}
}

Test(agent_proto, oversized_command_is_refused_before_parsing)
{
	size_t len = AGENT_MAX_MSG_BYTES + 1;
	char *text = malloc(len);
	memset(text, ' ', len);
	struct agent_cmd c;
	char err[400];
	cr_assert_eq(agent_cmd_parse(text, len, &c, NULL, err, sizeof(err)), -EMSGSIZE);
	cr_assert(strstr(err, "exceeds the limit"), "%s", err);
	free(text);
}

Test(agent_proto, bad_command_still_yields_its_id_for_the_error)
{
	struct agent_cmd c;
	json_t *id = NULL;
	char err[400];
	cr_assert_lt(cmd("{\"v\":1,\"type\":\"quiesce\",\"id\":\"q1\"}", &c, &id, err), 0);
	cr_assert_str_eq(json_string_value(id), "q1");
	json_t *e = agent_msg_error(id, err);
	cr_assert_str_eq(json_string_value(json_object_get(e, "type")), "error");
	cr_assert_str_eq(json_string_value(json_object_get(e, "id")), "q1");
	json_decref(e);
	json_decref(id);
	id = NULL;
	cr_assert_lt(cmd("not json", &c, &id, err), 0);
	cr_assert_null(id);
	e = agent_msg_error(NULL, err);
	cr_assert_null(json_object_get(e, "id"));
	json_decref(e);
}

Test(agent_proto, commands_built_for_migd_parse_back)
{
	json_t *id = json_integer(42);
	char *text = agent_msg_text(agent_cmd_new(AGENT_CMD_QUIESCE, id, 1500));
	struct agent_cmd c;
	char err[400];
	cr_assert_eq(cmd(text, &c, NULL, err), 0, "%s: %s", text, err);
	cr_assert_eq(c.deadline_ms, 1500);
	cr_assert(json_equal(c.id, id));
	agent_cmd_clear(&c);
	free(text);
	json_decref(id);
}

Test(agent_proto, agent_messages_have_the_contract_fields)
{
	json_t *h = agent_msg_hello("g1", "g1.local", "0.2.0", 99);
	json_t *root;
	const char *type;
	char err[200];
	char *text = agent_msg_text(h);
	cr_assert_eq(agent_envelope_parse(text, strlen(text), AGENT_MAX_MSG_BYTES, &root, &type,
					  err, sizeof(err)), 0);
	cr_assert_str_eq(type, "hello");
	cr_assert_str_eq(json_string_value(json_object_get(root, "guest")), "g1");
	cr_assert_eq(json_integer_value(json_object_get(root, "pid")), 99);
	json_decref(root);
	free(text);

	struct agent_client_activity acts[2] = {
		{ .pid = 10, .comm = "sfs-ior", .read_bps = 5, .write_bps = 100, .inflight = 2 },
		{ .pid = 11, .comm = "sfs", .read_bps = 1, .write_bps = 0, .inflight = 1 },
	};
	json_t *a = agent_msg_activity("g1", 1000, 0, acts, 2);
	cr_assert_eq(json_integer_value(json_object_get(a, "write_bps")), 100);
	cr_assert_eq(json_integer_value(json_object_get(a, "read_bps")), 6);
	cr_assert_eq(json_integer_value(json_object_get(a, "inflight")), 3);
	cr_assert_eq(json_integer_value(json_object_get(a, "interval_ms")), 1000);
	cr_assert(json_is_false(json_object_get(a, "quiesced")));
	cr_assert_eq(json_array_size(json_object_get(a, "clients")), 2);
	cr_assert_str_eq(json_string_value(json_object_get(
				 json_array_get(json_object_get(a, "clients"), 0), "comm")),
			 "sfs-ior");
	json_decref(a);

	json_t *id = json_string("x");
	json_t *ok = agent_msg_reply_ok(id, NULL);
	cr_assert(json_is_true(json_object_get(ok, "ok")));
	cr_assert(json_is_object(json_object_get(ok, "result")));
	json_decref(ok);
	json_t *bad = agent_msg_reply_error(id, json_pack("{s:b}", "missed_deadline", 1),
					    "deadline %d ms missed", 5);
	cr_assert(json_is_false(json_object_get(bad, "ok")));
	cr_assert_str_eq(json_string_value(json_object_get(bad, "error")), "deadline 5 ms missed");
	cr_assert_str_eq(json_string_value(json_object_get(bad, "id")), "x");
	json_decref(bad);
	json_decref(id);
}

/* --- local protocol --- */

static void round_trip(const struct agent_local_msg *m, struct agent_local_msg *back)
{
	char line[AGENT_LINE_MAX + 1], err[300];
	int len = agent_local_format(m, line, sizeof(line));
	cr_assert_gt(len, 0);
	cr_assert_eq(line[len - 1], '\n');
	cr_assert_eq(agent_local_parse(line, (size_t)len, back, err, sizeof(err)), 0, "%s: %s",
		     line, err);
	cr_assert_eq(back->type, m->type);
}

Test(agent_proto, local_messages_round_trip)
{
	struct agent_local_msg m = { .type = AGENT_LOCAL_REGISTER, .pid = 1234 }, b;
	strcpy(m.comm, "sfs-ior");
	round_trip(&m, &b);
	cr_assert_eq(b.pid, 1234);
	cr_assert_str_eq(b.comm, "sfs-ior");

	m = (struct agent_local_msg){ .type = AGENT_LOCAL_STATS, .read_bytes = 1ull << 40,
				      .write_bytes = 5, .inflight = 3, .requests = 9 };
	round_trip(&m, &b);
	cr_assert_eq(b.read_bytes, 1ull << 40);
	cr_assert_eq(b.inflight, 3);
	cr_assert_eq(b.requests, 9);

	m = (struct agent_local_msg){ .type = AGENT_LOCAL_QUIESCED, .id = 4, .ok = 1,
				      .drained_requests = 12, .drained_bytes = 1 << 20,
				      .time_us = 800 };
	round_trip(&m, &b);
	cr_assert(b.ok);
	cr_assert_eq(b.drained_bytes, 1 << 20);
	cr_assert_eq(b.time_us, 800);
	m.ok = 0;
	strcpy(m.error, "syncing file 0x5: no space");
	round_trip(&m, &b);
	cr_assert_not(b.ok);
	cr_assert_str_eq(b.error, "syncing file 0x5: no space");

	enum agent_local_type idonly[] = { AGENT_LOCAL_QUIESCE, AGENT_LOCAL_RESUME,
					   AGENT_LOCAL_RESUMED };
	for (size_t i = 0; i < 3; i++) {
		m = (struct agent_local_msg){ .type = idonly[i], .id = 77 };
		round_trip(&m, &b);
		cr_assert_eq(b.id, 77);
	}
	m = (struct agent_local_msg){ .type = AGENT_LOCAL_ERROR };
	strcpy(m.error, "bad message: x");
	round_trip(&m, &b);
	cr_assert_str_eq(b.error, "bad message: x");
}

Test(agent_proto, malformed_local_lines_are_refused_with_the_reason)
{
	static const struct bad_case cases[] = {
		{ "\n", -EINVAL, "not JSON" },
		{ "garbage\n", -EINVAL, "not JSON" },
		{ "{\"v\":1,\"type\":\"stats\"\n", -EINVAL, "not JSON" },
		{ "[1]\n", -EINVAL, "not a JSON object" },
		{ "{\"type\":\"register\"}\n", -EINVAL, "\"v\"" },
		{ "{\"v\":3,\"type\":\"register\"}\n", -EPROTONOSUPPORT, "version 3" },
		{ "{\"v\":1}\n", -EINVAL, "\"type\"" },
		{ "{\"v\":1,\"type\":\"hello\"}\n", -EINVAL, "unknown type \"hello\"" },
		{ "{\"v\":1,\"type\":\"register\",\"comm\":\"x\"}\n", -EINVAL, "missing \"pid\"" },
		{ "{\"v\":1,\"type\":\"register\",\"pid\":0,\"comm\":\"x\"}\n", -EINVAL,
		  "\"pid\" = 0" },
		{ "{\"v\":1,\"type\":\"register\",\"pid\":-4,\"comm\":\"x\"}\n", -EINVAL,
		  "\"pid\" = -4" },
		{ "{\"v\":1,\"type\":\"register\",\"pid\":4}\n", -EINVAL, "missing \"comm\"" },
		{ "{\"v\":1,\"type\":\"register\",\"pid\":4,\"comm\":7}\n", -EINVAL,
		  "non-string \"comm\"" },
		{ "{\"v\":1,\"type\":\"register\",\"pid\":4,\"comm\":"
		  "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}\n", -EINVAL, "longer than" },
		{ "{\"v\":1,\"type\":\"stats\",\"read_bytes\":1,\"write_bytes\":1,\"inflight\":0}\n",
		  -EINVAL, "missing \"requests\"" },
		{ "{\"v\":1,\"type\":\"stats\",\"read_bytes\":1.5,\"write_bytes\":1,\"inflight\":0,"
		  "\"requests\":0}\n", -EINVAL, "\"read_bytes\" = 1.5" },
		{ "{\"v\":1,\"type\":\"quiesced\",\"id\":1,\"requests\":0,\"bytes\":0,"
		  "\"time_us\":0}\n", -EINVAL, "missing \"ok\"" },
		{ "{\"v\":1,\"type\":\"quiesced\",\"ok\":1,\"id\":1,\"requests\":0,\"bytes\":0,"
		  "\"time_us\":0}\n", -EINVAL, "non-boolean \"ok\"" },
		{ "{\"v\":1,\"type\":\"quiesced\",\"ok\":false,\"id\":1,\"requests\":0,\"bytes\":0,"
		  "\"time_us\":0}\n", -EINVAL, "missing \"error\"" },
		{ "{\"v\":1,\"type\":\"quiesce\"}\n", -EINVAL, "missing \"id\"" },
		{ "{\"v\":1,\"type\":\"resume\",\"id\":\"3\"}\n", -EINVAL, "\"id\" = \"3\"" },
		{ "{\"v\":1,\"type\":\"error\"}\n", -EINVAL, "missing \"error\"" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct agent_local_msg m;
		char err[400] = "";
		int rc = agent_local_parse(cases[i].text, strlen(cases[i].text), &m, err,
					   sizeof(err));
		cr_expect_eq(rc, cases[i].rc, "%s: rc %d", cases[i].text, rc);
		cr_expect(strncmp(err, "bad message: ", 13) == 0, "%s: %s", cases[i].text, err);
		cr_expect(strstr(err, cases[i].needle), "%s: \"%s\" lacks \"%s\"", cases[i].text,
			  err, cases[i].needle);
	}
}

Test(agent_proto, overlong_local_line_is_refused)
{
	char *line = malloc(AGENT_LINE_MAX + 10);
	memset(line, 'x', AGENT_LINE_MAX + 10);
	struct agent_local_msg m;
	char err[300];
	cr_assert_eq(agent_local_parse(line, AGENT_LINE_MAX + 10, &m, err, sizeof(err)),
		     -EMSGSIZE);
	free(line);
	/* and formatting refuses what would not fit */
	struct agent_local_msg big = { .type = AGENT_LOCAL_ERROR };
	memset(big.error, 'e', sizeof(big.error) - 1);
	char small[64];
	cr_assert_eq(agent_local_format(&big, small, sizeof(small)), -EMSGSIZE);
	big.type = 0;
	char buf[AGENT_LINE_MAX];
	cr_assert_eq(agent_local_format(&big, buf, sizeof(buf)), -EINVAL);
}

Test(agent_proto, socket_path_env_conf_and_off)
{
	unsetenv("SFS_AGENT_SOCKET");
	cr_assert_str_eq(agent_socket_path(NULL), AGENT_SOCKET_DEFAULT);
	cr_assert_str_eq(agent_socket_path("/tmp/a.sock"), "/tmp/a.sock");
	cr_assert_null(agent_socket_path("off"));
	cr_assert_null(agent_socket_path(""));
	setenv("SFS_AGENT_SOCKET", "/tmp/env.sock", 1);
	cr_assert_str_eq(agent_socket_path("/tmp/a.sock"), "/tmp/env.sock");
	setenv("SFS_AGENT_SOCKET", "off", 1);
	cr_assert_null(agent_socket_path("/tmp/a.sock"));
	unsetenv("SFS_AGENT_SOCKET");
}

/* resume's optional "reconnect", both protocols: absent is false and is
 * left out of what we send (an ordinary resume is the message it always
 * was), true survives a round trip, anything but a boolean is refused, and
 * on another type it is an unknown key, ignored like every unknown key, so
 * that old and new peers understand each other both ways. */
Test(agent_proto, resume_reconnect_flag_round_trips_and_stays_optional)
{
	struct agent_cmd c;
	char err[400];
	json_t *id = json_string("r-1");
	for (int reconnect = 0; reconnect <= 1; reconnect++) {
		json_t *msg = agent_cmd_resume_new(id, reconnect);
		cr_assert_eq(json_object_get(msg, "reconnect") != NULL, reconnect,
			     "reconnect %d: key present %d", reconnect,
			     json_object_get(msg, "reconnect") != NULL);
		char *text = agent_msg_text(msg);
		cr_assert_eq(cmd(text, &c, NULL, err), 0, "%s: %s", text, err);
		cr_assert_eq(c.type, AGENT_CMD_RESUME);
		cr_assert_eq(c.reconnect, reconnect, "%s", text);
		cr_assert(json_equal(c.id, id));
		agent_cmd_clear(&c);
		free(text);
	}
	json_decref(id);
	cr_assert_eq(cmd("{\"v\":1,\"type\":\"resume\",\"id\":2,\"reconnect\":false}", &c, NULL,
			 err), 0, "%s", err);
	cr_assert_eq(c.reconnect, 0);
	agent_cmd_clear(&c);
	/* an old migd's resume: no flag */
	cr_assert_eq(cmd("{\"v\":1,\"type\":\"resume\",\"id\":2}", &c, NULL, err), 0);
	cr_assert_eq(c.reconnect, 0);
	agent_cmd_clear(&c);
	/* the key on another command is unknown there, hence ignored */
	cr_assert_eq(cmd("{\"v\":1,\"type\":\"ping\",\"id\":3,\"reconnect\":\"x\"}", &c, NULL,
			 err), 0, "%s", err);
	agent_cmd_clear(&c);
	json_t *bad_id = NULL;
	cr_assert_eq(cmd("{\"v\":1,\"type\":\"resume\",\"id\":4,\"reconnect\":1}", &c, &bad_id,
			 err), -EINVAL);
	cr_assert(strstr(err, "\"reconnect\" = 1: expected true or false"), "%s", err);
	cr_assert_eq(json_integer_value(bad_id), 4, "the error names the command's id");
	json_decref(bad_id);
	cr_assert_eq(cmd("{\"v\":1,\"type\":\"resume\",\"id\":4,\"reconnect\":\"yes\"}", &c, NULL,
			 err), -EINVAL);
	cr_assert(strstr(err, "\"reconnect\" = \"yes\""), "%s", err);

	/* the local protocol */
	struct agent_local_msg m = { .type = AGENT_LOCAL_RESUME, .id = 9, .reconnect = 1 }, b;
	char line[AGENT_LINE_MAX + 1];
	round_trip(&m, &b);
	cr_assert_eq(b.id, 9);
	cr_assert_eq(b.reconnect, 1);
	cr_assert_gt(agent_local_format(&m, line, sizeof(line)), 0);
	cr_assert(strstr(line, "\"reconnect\":true"), "%s", line);
	m.reconnect = 0;
	round_trip(&m, &b);
	cr_assert_eq(b.reconnect, 0);
	cr_assert_gt(agent_local_format(&m, line, sizeof(line)), 0);
	cr_assert_null(strstr(line, "reconnect"), "an ordinary resume names no flag: %s", line);
	static const char *const ignored[] = {
		/* what an old libsfs reads from a new agent is tested by its
		 * parser ignoring the key: so does this one, on other types */
		"{\"v\":1,\"type\":\"quiesce\",\"id\":5,\"reconnect\":true}\n",
		"{\"v\":1,\"type\":\"resumed\",\"id\":5,\"reconnect\":7}\n",
	};
	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
		cr_assert_eq(agent_local_parse(ignored[i], strlen(ignored[i]), &b, err,
					       sizeof(err)), 0, "%s: %s", ignored[i], err);
	const char *bad = "{\"v\":1,\"type\":\"resume\",\"id\":5,\"reconnect\":\"true\"}\n";
	cr_assert_eq(agent_local_parse(bad, strlen(bad), &b, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "bad message: \"reconnect\" = \"true\": expected true or false"),
		  "%s", err);
}
