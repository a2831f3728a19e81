/* agent_proto: codecs of migagent's two protocols (see agent_proto.h). */
#include "agent_proto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char *const cmd_names[] = {
	[AGENT_CMD_QUIESCE] = "quiesce",
	[AGENT_CMD_RESUME] = "resume",
	[AGENT_CMD_PING] = "ping",
};

static const char *const local_names[] = {
	[AGENT_LOCAL_REGISTER] = "register", [AGENT_LOCAL_STATS] = "stats",
	[AGENT_LOCAL_QUIESCED] = "quiesced", [AGENT_LOCAL_RESUMED] = "resumed",
	[AGENT_LOCAL_QUIESCE] = "quiesce",   [AGENT_LOCAL_RESUME] = "resume",
	[AGENT_LOCAL_ERROR] = "error",
};

const char *agent_cmd_name(enum agent_cmd_type type)
{
	if ((unsigned)type < ARRAY_SIZE(cmd_names) && cmd_names[type])
		return cmd_names[type];
	return "?";
}

const char *agent_local_type_name(enum agent_local_type type)
{
	if ((unsigned)type < ARRAY_SIZE(local_names) && local_names[type])
		return local_names[type];
	return "?";
}

/* A JSON value as short text for a message ("\"x\"", "12", "[...]"). */
static void value_text(json_t *v, char *buf, size_t len)
{
	char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	snprintf(buf, len, "%.60s%s", text ? text : "?", text && strlen(text) > 60 ? "..." : "");
	free(text);
}

int agent_envelope_parse(const char *text, size_t len, size_t max_bytes, json_t **root,
			 const char **type, char *err, size_t errlen)
{
	json_error_t jerr;
	*root = NULL;
	if (len > max_bytes) {
		snprintf(err, errlen, "message of %zu bytes exceeds the limit of %zu", len,
			 max_bytes);
		return -EMSGSIZE;
	}
	*root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!*root) {
		snprintf(err, errlen, "not JSON: %s at byte %d", jerr.text, jerr.position);
		return -EINVAL;
	}
	if (!json_is_object(*root)) {
		snprintf(err, errlen, "not a JSON object");
		return -EINVAL;
	}
	json_t *v = json_object_get(*root, "v");
	if (!json_is_integer(v)) {
		snprintf(err, errlen, "no integer \"v\" (protocol version)");
		return -EINVAL;
	}
	if (json_integer_value(v) != AGENT_PROTO_VERSION) {
		snprintf(err, errlen, "protocol version %lld, this side speaks %d",
			 (long long)json_integer_value(v), AGENT_PROTO_VERSION);
		return -EPROTONOSUPPORT;
	}
	json_t *t = json_object_get(*root, "type");
	if (!json_is_string(t)) {
		snprintf(err, errlen, "no string \"type\"");
		return -EINVAL;
	}
	*type = json_string_value(t);
	return 0;
}

/* A non-negative integer field no larger than max: 0, -ENOENT when absent
 * (and optional), -EINVAL otherwise, with the reason in err. */
static int get_uint(json_t *obj, const char *key, int required, uint64_t max, uint64_t *out,
		    char *err, size_t errlen)
{
	char text[80];
	json_t *v = json_object_get(obj, key);
	if (!v) {
		if (required)
			snprintf(err, errlen, "missing \"%s\"", key);
		return required ? -EINVAL : -ENOENT;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > max) {
		value_text(v, text, sizeof(text));
		snprintf(err, errlen, "\"%s\" = %s: expected an integer 0..%llu", key, text,
			 (unsigned long long)max);
		return -EINVAL;
	}
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/* An optional boolean: 0 (absent is 0 in *out), or -EINVAL naming the value. */
static int get_opt_bool(json_t *obj, const char *key, int *out, char *err, size_t errlen)
{
	char text[80];
	json_t *v = json_object_get(obj, key);
	*out = 0;
	if (!v)
		return 0;
	if (!json_is_boolean(v)) {
		value_text(v, text, sizeof(text));
		snprintf(err, errlen, "\"%s\" = %s: expected true or false", key, text);
		return -EINVAL;
	}
	*out = json_is_true(v);
	return 0;
}

static int cmd_type_of(const char *type, enum agent_cmd_type *out)
{
	for (size_t i = 1; i < ARRAY_SIZE(cmd_names); i++) {
		if (strcmp(type, cmd_names[i]) == 0) {
			*out = (enum agent_cmd_type)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* The id: a string of 1..128 bytes or an integer. */
static int cmd_id(json_t *root, json_t **id, char *err, size_t errlen)
{
	char text[80];
	json_t *v = json_object_get(root, "id");
	if (!v) {
		snprintf(err, errlen, "missing \"id\"");
		return -EINVAL;
	}
	if (json_is_integer(v) ||
	    (json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= 128)) {
		*id = json_incref(v);
		return 0;
	}
	value_text(v, text, sizeof(text));
	snprintf(err, errlen, "\"id\" = %s: expected an integer or a short string", text);
	return -EINVAL;
}

int agent_cmd_parse(const char *text, size_t len, struct agent_cmd *out, json_t **id_out,
		    char *err, size_t errlen)
{
	char why[300];
	json_t *root = NULL, *id = NULL;
	const char *type;
	memset(out, 0, sizeof(*out));
	if (id_out)
		*id_out = NULL;
	int rc = agent_envelope_parse(text, len, AGENT_MAX_MSG_BYTES, &root, &type, why,
				      sizeof(why));
	if (rc < 0)
		goto out;
	rc = cmd_id(root, &id, why, sizeof(why));
	if (rc < 0)
		goto out;
	if (cmd_type_of(type, &out->type) < 0) {
		snprintf(why, sizeof(why), "unknown type \"%.60s\" (expected quiesce, resume or "
			 "ping)", type);
		rc = -EINVAL;
		goto out;
	}
	if (out->type == AGENT_CMD_QUIESCE) {
		rc = get_uint(root, "deadline_ms", 1, AGENT_DEADLINE_MAX_MS, &out->deadline_ms,
			      why, sizeof(why));
		if (rc == 0 && out->deadline_ms == 0) {
			snprintf(why, sizeof(why), "\"deadline_ms\" = 0: expected at least 1");
			rc = -EINVAL;
		}
		if (rc < 0)
			goto out;
	}
	if (out->type == AGENT_CMD_RESUME) {
		rc = get_opt_bool(root, "reconnect", &out->reconnect, why, sizeof(why));
		if (rc < 0)
			goto out;
	}
	out->id = id;
	id = NULL;
out:
	if (rc < 0) {
		snprintf(err, errlen, "bad message: %s", why);
		if (id_out && !id && root && json_is_object(root)) {
			json_t *v = json_object_get(root, "id");
			if (json_is_integer(v) || json_is_string(v))
				id = json_incref(v);
		}
		if (id_out) {
			*id_out = id;
			id = NULL;
		}
	}
	json_decref(id);
	json_decref(root);
	return rc;
}

void agent_cmd_clear(struct agent_cmd *cmd)
{
	json_decref(cmd->id);
	cmd->id = NULL;
}

json_t *agent_cmd_new(enum agent_cmd_type type, json_t *id, uint64_t deadline_ms)
{
	json_t *msg = json_pack("{s:i, s:s, s:O}", "v", AGENT_PROTO_VERSION, "type",
				agent_cmd_name(type), "id", id);
	if (msg && type == AGENT_CMD_QUIESCE)
		json_object_set_new(msg, "deadline_ms", json_integer((json_int_t)deadline_ms));
	return msg;
}

json_t *agent_cmd_resume_new(json_t *id, int reconnect)
{
	json_t *msg = agent_cmd_new(AGENT_CMD_RESUME, id, 0);
	/* Only when set: an ordinary resume stays the message it always was. */
	if (msg && reconnect)
		json_object_set_new(msg, "reconnect", json_true());
	return msg;
}

json_t *agent_msg_hello(const char *guest, const char *hostname, const char *version,
			int64_t pid)
{
	return json_pack("{s:i, s:s, s:s, s:s, s:s, s:I}", "v", AGENT_PROTO_VERSION, "type",
			 "hello", "guest", guest, "hostname", hostname, "version", version, "pid",
			 (json_int_t)pid);
}

json_t *agent_msg_activity(const char *guest, unsigned interval_ms, int quiesced,
			   const struct agent_client_activity *clients, size_t n_clients)
{
	uint64_t read_bps = 0, write_bps = 0, inflight = 0;
	json_t *list = json_array();
	for (size_t i = 0; list && i < n_clients; i++) {
		const struct agent_client_activity *c = &clients[i];
		read_bps += c->read_bps;
		write_bps += c->write_bps;
		inflight += c->inflight;
		if (i >= AGENT_ACTIVITY_LISTED)
			continue;
		json_array_append_new(list, json_pack("{s:I, s:s, s:I, s:I, s:I}", "pid",
						      (json_int_t)c->pid, "comm", c->comm,
						      "read_bps", (json_int_t)c->read_bps,
						      "write_bps", (json_int_t)c->write_bps,
						      "inflight", (json_int_t)c->inflight));
	}
	return json_pack("{s:i, s:s, s:s, s:i, s:I, s:I, s:I, s:b, s:o*}", "v",
			 AGENT_PROTO_VERSION, "type", "activity", "guest", guest, "interval_ms",
			 (int)interval_ms, "read_bps", (json_int_t)read_bps, "write_bps",
			 (json_int_t)write_bps, "inflight", (json_int_t)inflight, "quiesced",
			 quiesced, "clients", list);
}

json_t *agent_msg_reply_ok(json_t *id, json_t *result)
{
	return json_pack("{s:i, s:s, s:O, s:b, s:o}", "v", AGENT_PROTO_VERSION, "type", "reply",
			 "id", id ? id : json_null(), "ok", 1, "result",
			 result ? result : json_object());
}

json_t *agent_msg_reply_error(json_t *id, json_t *result, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:i, s:s, s:O, s:b, s:s, s:o}", "v", AGENT_PROTO_VERSION, "type",
			 "reply", "id", id ? id : json_null(), "ok", 0, "error", msg, "result",
			 result ? result : json_object());
}

json_t *agent_msg_error(json_t *id, const char *msg)
{
	json_t *m = json_pack("{s:i, s:s, s:s}", "v", AGENT_PROTO_VERSION, "type", "error",
			      "error", msg);
	if (m && id)
		json_object_set(m, "id", id);
	return m;
}

char *agent_msg_text(json_t *msg)
{
	if (!msg)
		return NULL;
	char *text = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	return text;
}

/* --- local protocol --- */

static int local_type_of(const char *type, enum agent_local_type *out)
{
	for (size_t i = 1; i < ARRAY_SIZE(local_names); i++) {
		if (strcmp(type, local_names[i]) == 0) {
			*out = (enum agent_local_type)i;
			return 0;
		}
	}
	return -EINVAL;
}

static int get_str(json_t *obj, const char *key, char *out, size_t cap, char *err,
		   size_t errlen)
{
	json_t *v = json_object_get(obj, key);
	if (!json_is_string(v)) {
		snprintf(err, errlen, "%s \"%s\"", v ? "non-string" : "missing", key);
		return -EINVAL;
	}
	if (json_string_length(v) >= cap) {
		snprintf(err, errlen, "\"%s\" longer than %zu bytes", key, cap - 1);
		return -EINVAL;
	}
	snprintf(out, cap, "%s", json_string_value(v));
	return 0;
}

static int local_fields(json_t *root, struct agent_local_msg *m, char *err, size_t errlen)
{
	int rc = 0;
	uint64_t pid = 0;
	switch (m->type) {
	case AGENT_LOCAL_REGISTER:
		rc = get_uint(root, "pid", 1, INT32_MAX, &pid, err, errlen);
		if (rc == 0 && pid == 0) {
			snprintf(err, errlen, "\"pid\" = 0: expected a process id");
			rc = -EINVAL;
		}
		m->pid = (int64_t)pid;
		if (rc == 0)
			rc = get_str(root, "comm", m->comm, sizeof(m->comm), err, errlen);
		return rc;
	case AGENT_LOCAL_STATS:
		rc = get_uint(root, "read_bytes", 1, INT64_MAX, &m->read_bytes, err, errlen);
		if (rc == 0)
			rc = get_uint(root, "write_bytes", 1, INT64_MAX, &m->write_bytes, err, errlen);
		if (rc == 0)
			rc = get_uint(root, "inflight", 1, INT32_MAX, &m->inflight, err, errlen);
		if (rc == 0)
			rc = get_uint(root, "requests", 1, INT64_MAX, &m->requests, err, errlen);
		return rc;
	case AGENT_LOCAL_QUIESCED: {
		json_t *ok = json_object_get(root, "ok");
		if (!json_is_boolean(ok)) {
			snprintf(err, errlen, "%s \"ok\"", ok ? "non-boolean" : "missing");
			return -EINVAL;
		}
		m->ok = json_is_true(ok);
		rc = get_uint(root, "id", 1, INT64_MAX, &m->id, err, errlen);
		if (rc == 0)
			rc = get_uint(root, "requests", 1, INT64_MAX, &m->drained_requests, err,
				      errlen);
		if (rc == 0)
			rc = get_uint(root, "bytes", 1, INT64_MAX, &m->drained_bytes, err, errlen);
		if (rc == 0)
			rc = get_uint(root, "time_us", 1, INT64_MAX, &m->time_us, err, errlen);
		if (rc == 0 && !m->ok)
			rc = get_str(root, "error", m->error, sizeof(m->error), err, errlen);
		return rc;
	}
	case AGENT_LOCAL_RESUME:
		rc = get_opt_bool(root, "reconnect", &m->reconnect, err, errlen);
		if (rc < 0)
			return rc;
		return get_uint(root, "id", 1, INT64_MAX, &m->id, err, errlen);
	case AGENT_LOCAL_RESUMED:
	case AGENT_LOCAL_QUIESCE:
		return get_uint(root, "id", 1, INT64_MAX, &m->id, err, errlen);
	case AGENT_LOCAL_ERROR:
		return get_str(root, "error", m->error, sizeof(m->error), err, errlen);
	}
	return -EINVAL;
}

int agent_local_parse(const char *line, size_t len, struct agent_local_msg *out, char *err,
		      size_t errlen)
{
	char why[300];
	json_t *root = NULL;
	const char *type;
	memset(out, 0, sizeof(*out));
	if (len && line[len - 1] == '\n')
		len--;
	int rc = agent_envelope_parse(line, len, AGENT_LINE_MAX - 1, &root, &type, why,
				      sizeof(why));
	if (rc == 0 && local_type_of(type, &out->type) < 0) {
		snprintf(why, sizeof(why), "unknown type \"%.60s\"", type);
		rc = -EINVAL;
	}
	if (rc == 0)
		rc = local_fields(root, out, why, sizeof(why));
	if (rc < 0)
		snprintf(err, errlen, "bad message: %s", why);
	json_decref(root);
	return rc;
}

static json_t *local_object(const struct agent_local_msg *m)
{
	json_t *o = json_pack("{s:i, s:s}", "v", AGENT_PROTO_VERSION, "type",
			      agent_local_type_name(m->type));
	if (!o)
		return NULL;
#define SET_U64(k, v) json_object_set_new(o, k, json_integer((json_int_t)(v)))
	switch (m->type) {
	case AGENT_LOCAL_REGISTER:
		SET_U64("pid", m->pid);
		json_object_set_new(o, "comm", json_string(m->comm));
		break;
	case AGENT_LOCAL_STATS:
		SET_U64("read_bytes", m->read_bytes);
		SET_U64("write_bytes", m->write_bytes);
		SET_U64("inflight", m->inflight);
		SET_U64("requests", m->requests);
		break;
	case AGENT_LOCAL_QUIESCED:
		SET_U64("id", m->id);
		json_object_set_new(o, "ok", json_boolean(m->ok));
		SET_U64("requests", m->drained_requests);
		SET_U64("bytes", m->drained_bytes);
		SET_U64("time_us", m->time_us);
		if (!m->ok)
			json_object_set_new(o, "error", json_string(m->error));
		break;
	case AGENT_LOCAL_RESUME:
		SET_U64("id", m->id);
		if (m->reconnect)
			json_object_set_new(o, "reconnect", json_true());
		break;
	case AGENT_LOCAL_RESUMED:
	case AGENT_LOCAL_QUIESCE:
		SET_U64("id", m->id);
		break;
	case AGENT_LOCAL_ERROR:
		json_object_set_new(o, "error", json_string(m->error));
		break;
	default:
		json_decref(o);
		return NULL;
	}
#undef SET_U64
	return o;
}

int agent_local_format(const struct agent_local_msg *msg, char *buf, size_t cap)
{
	if (msg->type < AGENT_LOCAL_REGISTER || msg->type > AGENT_LOCAL_ERROR)
		return -EINVAL;
	char *text = agent_msg_text(local_object(msg));
	if (!text)
		return -ENOMEM;
	size_t n = strlen(text);
	int rc = -EMSGSIZE;
	if (n + 2 <= cap && n + 1 <= AGENT_LINE_MAX) {
		memcpy(buf, text, n);
		buf[n] = '\n';
		buf[n + 1] = '\0';
		rc = (int)n + 1;
	}
	free(text);
	return rc;
}

const char *agent_socket_path(const char *conf_value)
{
	const char *path = getenv("SFS_AGENT_SOCKET");
	if (!path)
		path = conf_value ? conf_value : AGENT_SOCKET_DEFAULT;
	if (!*path || strcmp(path, "off") == 0)
		return NULL;
	return path;
}
