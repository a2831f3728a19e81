/*
 * migd_proto: good requests parse, every class of malformed request is
 * refused with a message that says what was wrong, replies round-trip with
 * their error codes, and the typed getters name the bad field and value.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "migd_proto.h"

static char err[512];

/* Parse text as a request; the root is released here. */
static int parse(const char *text, const char **cmd_out)
{
	json_t *root = NULL, *args = NULL;
	const char *cmd = NULL;
	err[0] = '\0';
	int rc = migd_req_parse(text, strlen(text), &root, &cmd, &args, err, sizeof(err));
	if (rc == 0) {
		cr_assert(json_is_object(args));
		if (cmd_out)
			*cmd_out = strcmp(cmd, "host.add") == 0 ? "host.add" : "other";
	}
	json_decref(root);
	return rc;
}

Test(proto_request, built_request_parses_back_with_its_args)
{
	json_t *req = migd_req_new("host.add", json_pack("{s:s, s:i}", "name", "n1", "port", 7));
	char *text = json_dumps(req, JSON_COMPACT);
	json_t *root = NULL, *args = NULL;
	const char *cmd = NULL;
	cr_assert_eq(migd_req_parse(text, strlen(text), &root, &cmd, &args, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_str_eq(cmd, "host.add");
	cr_assert_str_eq(json_string_value(json_object_get(args, "name")), "n1");
	cr_assert_eq(json_integer_value(json_object_get(args, "port")), 7);
	cr_assert_eq(json_integer_value(json_object_get(root, "v")), MIGD_API_VERSION);
	json_decref(root);
	json_decref(req);
	free(text);
}

Test(proto_request, missing_args_become_an_empty_object)
{
	const char *cmd;
	cr_assert_eq(parse("{\"v\":1,\"cmd\":\"host.add\"}", &cmd), 0, "%s", err);
	cr_assert_str_eq(cmd, "host.add");
	json_t *req = migd_req_new("status", NULL);
	cr_assert(json_is_object(json_object_get(req, "args")));
	cr_assert_eq(json_object_size(json_object_get(req, "args")), 0);
	json_decref(req);
}

Test(proto_request, not_json_is_refused_with_the_position)
{
	cr_assert_eq(parse("{\"v\":1,", NULL), -EINVAL);
	cr_assert(strstr(err, "not JSON"), "%s", err);
	cr_assert(strstr(err, "byte"), "%s", err);
	cr_assert_eq(parse("", NULL), -EINVAL);
	cr_assert(strstr(err, "not JSON"), "%s", err);
	static const char binary[] = { '\x00', '\xff', '{', '}' };
	json_t *root = NULL, *args;
	const char *cmd;
	cr_assert_eq(migd_req_parse(binary, sizeof(binary), &root, &cmd, &args, err, sizeof(err)),
		     -EINVAL);
	json_decref(root);
}

Test(proto_request, json_that_is_not_an_object_is_refused)
{
	cr_assert_eq(parse("[1,2,3]", NULL), -EINVAL);
	cr_assert(strstr(err, "not a JSON object"), "%s", err);
	cr_assert_eq(parse("{\"v\":1}", NULL), -EINVAL); /* an object, for contrast */
	cr_assert_eq(parse("[{\"v\":1,\"cmd\":\"status\"}]", NULL), -EINVAL);
	cr_assert(strstr(err, "not a JSON object"), "%s", err);
	/* jansson takes only arrays and objects at the top: a bare value is not JSON to it */
	cr_assert_eq(parse("\"status\"", NULL), -EINVAL);
}

Test(proto_request, missing_or_non_integer_version_is_refused)
{
	cr_assert_eq(parse("{\"cmd\":\"status\"}", NULL), -EINVAL);
	cr_assert(strstr(err, "\"v\""), "%s", err);
	cr_assert_eq(parse("{\"v\":\"1\",\"cmd\":\"status\"}", NULL), -EINVAL);
	cr_assert(strstr(err, "\"v\""), "%s", err);
}

Test(proto_request, other_version_is_refused_naming_both_versions)
{
	cr_assert_eq(parse("{\"v\":2,\"cmd\":\"status\"}", NULL), -EPROTONOSUPPORT);
	cr_assert(strstr(err, "version 2"), "%s", err);
	cr_assert(strstr(err, "speaks 1"), "%s", err);
}

Test(proto_request, missing_or_non_string_cmd_is_refused)
{
	cr_assert_eq(parse("{\"v\":1}", NULL), -EINVAL);
	cr_assert(strstr(err, "\"cmd\""), "%s", err);
	cr_assert_eq(parse("{\"v\":1,\"cmd\":5}", NULL), -EINVAL);
	cr_assert(strstr(err, "\"cmd\""), "%s", err);
}

Test(proto_request, args_that_are_not_an_object_are_refused_naming_the_command)
{
	cr_assert_eq(parse("{\"v\":1,\"cmd\":\"host.add\",\"args\":[1]}", NULL), -EINVAL);
	cr_assert(strstr(err, "\"args\""), "%s", err);
	cr_assert(strstr(err, "host.add"), "%s", err);
	cr_assert_eq(parse("{\"v\":1,\"cmd\":\"host.add\",\"args\":\"x\"}", NULL), -EINVAL);
}

Test(proto_request, duplicate_keys_are_refused)
{
	cr_assert_eq(parse("{\"v\":1,\"cmd\":\"a\",\"cmd\":\"b\"}", NULL), -EINVAL);
}

Test(proto_request, oversized_request_is_refused_before_parsing)
{
	size_t len = MIGD_MAX_MSG_BYTES + 1;
	char *big = malloc(len);
	cr_assert_not_null(big);
	memset(big, ' ', len);
	json_t *root = (json_t *)1, *args;
	const char *cmd;
	cr_assert_eq(migd_req_parse(big, len, &root, &cmd, &args, err, sizeof(err)), -EMSGSIZE);
	cr_assert_null(root);
	cr_assert(strstr(err, "exceeds"), "%s", err);
	free(big);
}

/* ---- replies ---- */

Test(proto_reply, ok_reply_round_trips_its_result)
{
	json_t *reply = migd_reply_ok(json_pack("{s:i}", "hosts", 3));
	char *text = json_dumps(reply, JSON_COMPACT);
	json_t *root = NULL, *result = NULL;
	cr_assert_eq(migd_reply_parse(text, strlen(text), &root, &result, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(json_integer_value(json_object_get(result, "hosts")), 3);
	json_decref(root);
	json_decref(reply);
	free(text);
}

Test(proto_reply, ok_reply_without_result_gives_an_empty_object)
{
	json_t *reply = migd_reply_ok(NULL);
	cr_assert(json_is_object(json_object_get(reply, "result")));
	json_decref(reply);
}

Test(proto_reply, error_reply_round_trips_message_and_errno)
{
	static const int codes[] = { ENOENT, EEXIST, EBUSY, EINVAL, EALREADY, EOPNOTSUPP,
				     EPROTONOSUPPORT, EMSGSIZE, ENOSPC };
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		json_t *reply = migd_reply_error(codes[i], "host \"%s\": no such host", "n9");
		char *text = json_dumps(reply, JSON_COMPACT);
		json_t *root = NULL, *result = NULL;
		cr_assert_eq(migd_reply_parse(text, strlen(text), &root, &result, err, sizeof(err)),
			     -codes[i], "%s", text);
		cr_assert_str_eq(err, "host \"n9\": no such host");
		json_decref(root);
		json_decref(reply);
		free(text);
	}
}

Test(proto_reply, malformed_replies_are_bad_messages)
{
	static const char *const bad[] = {
		"nope", "[]", "{\"v\":1}", "{\"v\":1,\"ok\":1}", "{\"v\":1,\"ok\":true}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *root = NULL, *result = NULL;
		cr_assert_eq(migd_reply_parse(bad[i], strlen(bad[i]), &root, &result, err,
					      sizeof(err)), -EBADMSG, "%s", bad[i]);
		json_decref(root);
	}
	json_t *root = NULL, *result = NULL;
	const char *other = "{\"v\":9,\"ok\":true,\"result\":{}}";
	cr_assert_eq(migd_reply_parse(other, strlen(other), &root, &result, err, sizeof(err)),
		     -EPROTONOSUPPORT);
	json_decref(root);
}

Test(proto_reply, errno_names_map_both_ways)
{
	cr_assert_str_eq(migd_errno_name(EINVAL), "EINVAL");
	cr_assert_str_eq(migd_errno_name(-ENOENT), "ENOENT");
	cr_assert_str_eq(migd_errno_name(12345), "EIO");
	cr_assert_eq(migd_errno_value("EBUSY"), EBUSY);
	cr_assert_eq(migd_errno_value("ENOTANERRNO"), EIO);
	cr_assert_eq(migd_errno_value(NULL), EIO);
}

Test(proto_event, event_carries_version_type_and_time)
{
	json_t *ev = migd_event_new("migration.completed", 1234567890123LL);
	cr_assert_eq(json_integer_value(json_object_get(ev, "v")), MIGD_API_VERSION);
	cr_assert_str_eq(json_string_value(json_object_get(ev, "type")), "migration.completed");
	cr_assert_eq(json_integer_value(json_object_get(ev, "ts_ns")), 1234567890123LL);
	json_decref(ev);
}

/* ---- typed getters ---- */

static json_t *args;

static void getters_setup(void)
{
	args = json_pack("{s:s, s:i, s:i, s:f, s:b, s:n}", "name", "g1", "memory_bytes", 4096,
			 "rank", -3, "every_s", 2.5, "flag", 1, "nothing");
}

static void getters_teardown(void)
{
	json_decref(args);
}

TestSuite(proto_args, .init = getters_setup, .fini = getters_teardown);

Test(proto_args, present_values_are_returned)
{
	const char *s;
	unsigned long long u;
	double d;
	cr_assert_eq(migd_arg_str(args, "name", 1, &s, err, sizeof(err)), 0);
	cr_assert_str_eq(s, "g1");
	cr_assert_eq(migd_arg_u64(args, "memory_bytes", 1, &u, err, sizeof(err)), 0);
	cr_assert_eq(u, 4096);
	cr_assert_eq(migd_arg_num(args, "every_s", 1, &d, err, sizeof(err)), 0);
	cr_assert_float_eq(d, 2.5, 1e-12);
	cr_assert_eq(migd_arg_num(args, "memory_bytes", 1, &d, err, sizeof(err)), 0);
	cr_assert_float_eq(d, 4096.0, 1e-12);
}

Test(proto_args, missing_required_argument_is_named)
{
	const char *s;
	cr_assert_eq(migd_arg_str(args, "host", 1, &s, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "\"host\""), "%s", err);
	cr_assert(strstr(err, "missing"), "%s", err);
}

Test(proto_args, missing_or_null_optional_argument_is_enoent)
{
	const char *s = "untouched";
	unsigned long long u = 7;
	cr_assert_eq(migd_arg_str(args, "job", 0, &s, err, sizeof(err)), -ENOENT);
	cr_assert_str_eq(s, "untouched");
	cr_assert_eq(migd_arg_u64(args, "nothing", 0, &u, err, sizeof(err)), -ENOENT);
	cr_assert_eq(u, 7);
}

Test(proto_args, wrong_types_name_the_field_and_value)
{
	const char *s;
	unsigned long long u;
	double d;
	cr_assert_eq(migd_arg_str(args, "memory_bytes", 1, &s, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "\"memory_bytes\""), "%s", err);
	cr_assert(strstr(err, "string"), "%s", err);
	cr_assert_eq(migd_arg_u64(args, "name", 1, &u, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "\"name\" = \"g1\""), "%s", err);
	cr_assert_eq(migd_arg_u64(args, "every_s", 1, &u, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "2.5"), "%s", err);
	cr_assert_eq(migd_arg_num(args, "flag", 1, &d, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "\"flag\" = true"), "%s", err);
}

Test(proto_args, negative_integer_is_not_a_u64)
{
	unsigned long long u;
	cr_assert_eq(migd_arg_u64(args, "rank", 1, &u, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "\"rank\" = -3"), "%s", err);
	cr_assert(strstr(err, "non-negative"), "%s", err);
}
