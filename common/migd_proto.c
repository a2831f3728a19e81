/* migd_proto: the migd API envelope codec (see migd_proto.h). */
#include "migd_proto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	int err;
	const char *name;
} errno_names[] = {
	{ EINVAL, "EINVAL" }, { ENOENT, "ENOENT" }, { EEXIST, "EEXIST" },
	{ EBUSY, "EBUSY" }, { EPERM, "EPERM" }, { EAGAIN, "EAGAIN" },
	{ ETIMEDOUT, "ETIMEDOUT" }, { EIO, "EIO" }, { ENOSPC, "ENOSPC" },
	{ EOPNOTSUPP, "EOPNOTSUPP" }, { EPROTONOSUPPORT, "EPROTONOSUPPORT" },
	{ EMSGSIZE, "EMSGSIZE" }, { ECANCELED, "ECANCELED" }, { EALREADY, "EALREADY" },
	{ ENOTEMPTY, "ENOTEMPTY" }, { EHOSTUNREACH, "EHOSTUNREACH" }, { ENOMEM, "ENOMEM" },
	{ EACCES, "EACCES" },
};

const char *migd_errno_name(int err)
{
	if (err < 0)
		err = -err;
	for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
		if (errno_names[i].err == err)
			return errno_names[i].name;
	return "EIO";
}

int migd_errno_value(const char *name)
{
	for (size_t i = 0; name && i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
		if (strcmp(errno_names[i].name, name) == 0)
			return errno_names[i].err;
	return EIO;
}

json_t *migd_req_new(const char *cmd, json_t *args)
{
	return json_pack("{s:i, s:s, s:o}", "v", MIGD_API_VERSION, "cmd", cmd, "args",
			 args ? args : json_object());
}

/* Parse text into a JSON object with the right "v". */
static int parse_envelope(const char *text, size_t len, json_t **root, const char *what,
			  char *err, size_t errlen)
{
	json_error_t jerr;
	*root = NULL;
	if (len > MIGD_MAX_MSG_BYTES) {
		snprintf(err, errlen, "%s of %zu bytes exceeds the limit of %u", what, len,
			 MIGD_MAX_MSG_BYTES);
		return -EMSGSIZE;
	}
	*root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!*root) {
		snprintf(err, errlen, "%s is not JSON: %s at byte %d", what, jerr.text,
			 jerr.position);
		return -EINVAL;
	}
	if (!json_is_object(*root)) {
		snprintf(err, errlen, "%s is not a JSON object", what);
		return -EINVAL;
	}
	json_t *v = json_object_get(*root, "v");
	if (!json_is_integer(v)) {
		snprintf(err, errlen, "%s has no integer \"v\" (API version)", what);
		return -EINVAL;
	}
	if (json_integer_value(v) != MIGD_API_VERSION) {
		snprintf(err, errlen, "%s is API version %lld, this side speaks %d", what,
			 (long long)json_integer_value(v), MIGD_API_VERSION);
		return -EPROTONOSUPPORT;
	}
	return 0;
}

int migd_req_parse(const char *text, size_t len, json_t **root, const char **cmd,
		   json_t **args, char *err, size_t errlen)
{
	int rc = parse_envelope(text, len, root, "request", err, errlen);
	if (rc < 0)
		return rc;
	json_t *c = json_object_get(*root, "cmd");
	if (!json_is_string(c)) {
		snprintf(err, errlen, "request has no string \"cmd\"");
		return -EINVAL;
	}
	json_t *a = json_object_get(*root, "args");
	if (a && !json_is_object(a)) {
		snprintf(err, errlen, "\"args\" of %s is not an object", json_string_value(c));
		return -EINVAL;
	}
	if (!a) {
		a = json_object();
		json_object_set_new(*root, "args", a);
	}
	*cmd = json_string_value(c);
	*args = a;
	return 0;
}

json_t *migd_reply_ok(json_t *result)
{
	return json_pack("{s:i, s:b, s:o}", "v", MIGD_API_VERSION, "ok", 1, "result",
			 result ? result : json_object());
}

json_t *migd_reply_error(int err, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:i, s:b, s:s, s:s}", "v", MIGD_API_VERSION, "ok", 0, "error", msg,
			 "code", migd_errno_name(err));
}

int migd_reply_parse(const char *text, size_t len, json_t **root, json_t **result, char *err,
		     size_t errlen)
{
	int rc = parse_envelope(text, len, root, "reply", err, errlen);
	if (rc < 0)
		return rc == -EINVAL ? -EBADMSG : rc;
	json_t *ok = json_object_get(*root, "ok");
	if (!json_is_boolean(ok)) {
		snprintf(err, errlen, "reply has no boolean \"ok\"");
		return -EBADMSG;
	}
	if (json_is_true(ok)) {
		*result = json_object_get(*root, "result");
		if (!*result) {
			snprintf(err, errlen, "reply has no \"result\"");
			return -EBADMSG;
		}
		return 0;
	}
	const char *msg = json_string_value(json_object_get(*root, "error"));
	snprintf(err, errlen, "%s", msg && *msg ? msg : "unspecified error");
	return -migd_errno_value(json_string_value(json_object_get(*root, "code")));
}

json_t *migd_event_new(const char *type, long long ts_ns)
{
	return json_pack("{s:i, s:s, s:I}", "v", MIGD_API_VERSION, "type", type, "ts_ns",
			 (json_int_t)ts_ns);
}

static json_t *arg_get(json_t *args, const char *key, int required, int *rc, char *err,
		       size_t errlen)
{
	json_t *v = json_object_get(args, key);
	*rc = 0;
	if (!v || json_is_null(v)) {
		*rc = required ? -EINVAL : -ENOENT;
		if (required)
			snprintf(err, errlen, "missing argument \"%s\"", key);
		return NULL;
	}
	return v;
}

/* "argument KEY = VALUE: expected WHAT" into err; returns -EINVAL. */
static int arg_bad(const char *key, json_t *v, const char *what, char *err, size_t errlen)
{
	char *text = json_dumps(v, JSON_ENCODE_ANY);
	snprintf(err, errlen, "argument \"%s\" = %s: expected %s", key, text ? text : "?", what);
	free(text);
	return -EINVAL;
}

int migd_arg_str(json_t *args, const char *key, int required, const char **out, char *err,
		 size_t errlen)
{
	int rc;
	json_t *v = arg_get(args, key, required, &rc, err, errlen);
	if (!v)
		return rc;
	if (!json_is_string(v)) {
		snprintf(err, errlen, "argument \"%s\" must be a string", key);
		return -EINVAL;
	}
	*out = json_string_value(v);
	return 0;
}

int migd_arg_u64(json_t *args, const char *key, int required, unsigned long long *out,
		 char *err, size_t errlen)
{
	int rc;
	json_t *v = arg_get(args, key, required, &rc, err, errlen);
	if (!v)
		return rc;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return arg_bad(key, v, "a non-negative integer", err, errlen);
	*out = (unsigned long long)json_integer_value(v);
	return 0;
}

int migd_arg_num(json_t *args, const char *key, int required, double *out, char *err,
		 size_t errlen)
{
	int rc;
	json_t *v = arg_get(args, key, required, &rc, err, errlen);
	if (!v)
		return rc;
	if (!json_is_number(v))
		return arg_bad(key, v, "a number", err, errlen);
	*out = json_number_value(v);
	return 0;
}
