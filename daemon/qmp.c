/*
 * qmp: see qmp.h. One blocking socket, read through a line buffer with
 * poll() for the deadline; one JSON object per line.
 */
#include "qmp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

struct qmp {
	int fd;
	char name[128];      /* the socket path, for messages */
	char *buf;           /* bytes read and not yet consumed */
	size_t len, cap;
	unsigned long next_id;
	int broken;
	char events[QMP_EVENTS_KEPT][48];
	unsigned n_events;   /* ever seen; events[n % QMP_EVENTS_KEPT] is next */
};

static int remaining_ms(uint64_t deadline_ms)
{
	uint64_t now = now_ms();
	return now >= deadline_ms ? 0 : (int)(deadline_ms - now);
}

void qmp_close(struct qmp *q)
{
	if (!q)
		return;
	if (q->fd >= 0)
		close(q->fd);
	free(q->buf);
	free(q);
}

int qmp_broken(const struct qmp *q)
{
	return q->broken;
}

int qmp_event_seen(const struct qmp *q, const char *name)
{
	unsigned kept = q->n_events < QMP_EVENTS_KEPT ? q->n_events : QMP_EVENTS_KEPT;
	for (unsigned i = 0; i < kept; i++)
		if (strcmp(q->events[i], name) == 0)
			return 1;
	return 0;
}

void qmp_events_clear(struct qmp *q)
{
	q->n_events = 0;
}

/* Fill the buffer until it holds a whole line; *line_len then counts the
 * bytes before the '\n'. */
static int read_line(struct qmp *q, uint64_t deadline_ms, size_t *line_len, char *err,
		     size_t errlen)
{
	for (;;) {
		char *nl = q->len ? memchr(q->buf, '\n', q->len) : NULL;
		if (nl) {
			*line_len = (size_t)(nl - q->buf);
			return 0;
		}
		if (q->len >= QMP_LINE_MAX) {
			q->broken = 1;
			snprintf(err, errlen, "QMP %s: a message longer than %d bytes", q->name,
				 QMP_LINE_MAX);
			return -EPROTO;
		}
		if (q->cap - q->len < 4096) {
			size_t cap = q->cap ? q->cap * 2 : 8192;
			char *b = realloc(q->buf, cap);
			if (!b) {
				snprintf(err, errlen, "QMP %s: out of memory", q->name);
				return -ENOMEM;
			}
			q->buf = b;
			q->cap = cap;
		}
		struct pollfd pfd = { .fd = q->fd, .events = POLLIN };
		int n = poll(&pfd, 1, remaining_ms(deadline_ms));
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0) {
			snprintf(err, errlen, "QMP %s: no answer in time", q->name);
			return -ETIMEDOUT;
		}
		ssize_t got = n < 0 ? -1 : read(q->fd, q->buf + q->len, q->cap - q->len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			q->broken = 1;
			snprintf(err, errlen, "QMP %s: %s", q->name,
				 got == 0 ? "QEMU closed the connection" : strerror(errno));
			return -ECONNRESET;
		}
		q->len += (size_t)got;
	}
}

/* The next JSON object from QEMU (a new reference in *msg). */
static int read_message(struct qmp *q, uint64_t deadline_ms, json_t **msg, char *err,
			size_t errlen)
{
	size_t line_len;
	int rc = read_line(q, deadline_ms, &line_len, err, errlen);
	if (rc < 0)
		return rc;
	json_error_t jerr;
	json_t *m = json_loadb(q->buf, line_len, JSON_REJECT_DUPLICATES, &jerr);
	size_t used = line_len + 1;
	memmove(q->buf, q->buf + used, q->len - used);
	q->len -= used;
	if (!m || !json_is_object(m)) {
		json_decref(m);
		snprintf(err, errlen, "QMP %s: a message that is not a JSON object%s%s", q->name,
			 m ? "" : ": ", m ? "" : jerr.text);
		return -EPROTO;
	}
	*msg = m;
	return 0;
}

static void keep_event(struct qmp *q, json_t *msg)
{
	const char *name = json_string_value(json_object_get(msg, "event"));
	if (!name)
		return;
	snprintf(q->events[q->n_events % QMP_EVENTS_KEPT], sizeof(q->events[0]), "%s", name);
	q->n_events++;
}

/* send(2) without SIGPIPE: a QEMU that died is an error, not a signal. */
static int send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * The first bytes of a message with fd attached (SCM_RIGHTS), the rest with
 * send_all. QEMU takes the descriptor with the bytes it arrives with and
 * keeps it for the command they belong to (getfd, add-fd).
 */
static int send_with_fd(int sock, const char *buf, size_t len, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			      .msg_controllen = sizeof(ctl.buf) };
	memset(ctl.buf, 0, sizeof(ctl.buf));
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	ssize_t n;
	while ((n = sendmsg(sock, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return -errno;
	return send_all(sock, buf + n, len - (size_t)n);
}

static int send_json(struct qmp *q, json_t *obj, int fd, char *err, size_t errlen)
{
	char *text = json_dumps(obj, JSON_COMPACT);
	if (!text) {
		snprintf(err, errlen, "QMP %s: out of memory", q->name);
		return -ENOMEM;
	}
	size_t n = strlen(text);
	text[n] = '\n'; /* json_dumps leaves room for its NUL: reuse it */
	int rc = fd >= 0 ? send_with_fd(q->fd, text, n + 1, fd) : send_all(q->fd, text, n + 1);
	free(text);
	if (rc < 0) {
		q->broken = 1;
		snprintf(err, errlen, "QMP %s: sending: %s", q->name, strerror(-rc));
		return -ECONNRESET;
	}
	return 0;
}

/* The reply to the command with this id: "return" or "error". */
static int check_reply(struct qmp *q, const char *cmd, json_t *msg, json_t **result, char *err,
		       size_t errlen)
{
	json_t *ret = json_object_get(msg, "return");
	json_t *error = json_object_get(msg, "error");
	if (ret) {
		if (result)
			*result = json_incref(ret);
		return 0;
	}
	if (json_is_object(error)) {
		const char *cls = json_string_value(json_object_get(error, "class"));
		const char *desc = json_string_value(json_object_get(error, "desc"));
		snprintf(err, errlen, "%s: %s: %s", cmd, cls ? cls : "(no class)",
			 desc ? desc : "(no description)");
		return -EREMOTEIO;
	}
	snprintf(err, errlen, "QMP %s: %s: a reply with neither return nor error", q->name, cmd);
	return -EPROTO;
}

int qmp_execute(struct qmp *q, const char *cmd, json_t *args, int timeout_ms, json_t **result,
		char *err, size_t errlen)
{
	return qmp_execute_fd(q, cmd, args, -1, timeout_ms, result, err, errlen);
}

int qmp_execute_fd(struct qmp *q, const char *cmd, json_t *args, int fd, int timeout_ms,
		   json_t **result, char *err, size_t errlen)
{
	uint64_t deadline = now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	unsigned long id = ++q->next_id;
	int rc;
	if (result)
		*result = NULL;
	if (q->broken) {
		json_decref(args);
		snprintf(err, errlen, "QMP %s: %s: the connection is broken", q->name, cmd);
		return -ECONNRESET;
	}
	json_t *req = json_pack("{s:s, s:I}", "execute", cmd, "id", (json_int_t)id);
	if (req && args)
		json_object_set_new(req, "arguments", args);
	else
		json_decref(args);
	rc = req ? send_json(q, req, fd, err, errlen) : -ENOMEM;
	json_decref(req);
	while (rc == 0) {
		json_t *msg = NULL;
		if ((rc = read_message(q, deadline, &msg, err, errlen)) < 0)
			break;
		json_t *jid = json_object_get(msg, "id");
		if (json_object_get(msg, "event")) {
			keep_event(q, msg);
		} else if (json_is_integer(jid) && (unsigned long)json_integer_value(jid) == id) {
			rc = check_reply(q, cmd, msg, result, err, errlen);
			json_decref(msg);
			return rc;
		} else if (!jid) {
			q->broken = 1; /* we always send an id: this is not a reply of ours */
			snprintf(err, errlen, "QMP %s: %s: a message with no id and no event", q->name,
				 cmd);
			rc = -EPROTO;
		}
		/* else: a late reply to a command that timed out earlier */
		json_decref(msg);
	}
	if (rc == -ETIMEDOUT || rc == -ECONNRESET) {
		char why[160];
		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errlen, "%s: %s", cmd, why);
	}
	return rc;
}

static int negotiate(struct qmp *q, uint64_t deadline, char *err, size_t errlen)
{
	json_t *greeting = NULL;
	int rc = read_message(q, deadline, &greeting, err, errlen);
	if (rc < 0)
		return rc;
	int is_qmp = json_is_object(json_object_get(greeting, "QMP"));
	json_decref(greeting);
	if (!is_qmp) {
		q->broken = 1;
		snprintf(err, errlen, "QMP %s: the first message is not a QMP greeting", q->name);
		return -EPROTO;
	}
	return qmp_execute(q, "qmp_capabilities", NULL, remaining_ms(deadline), NULL, err,
			   errlen);
}

int qmp_attach(int fd, const char *name, int timeout_ms, struct qmp **out, char *err,
	       size_t errlen)
{
	struct qmp *q = calloc(1, sizeof(*q));
	if (!q) {
		close(fd);
		snprintf(err, errlen, "QMP %s: out of memory", name);
		return -ENOMEM;
	}
	q->fd = fd;
	snprintf(q->name, sizeof(q->name), "%s", name);
	int rc = negotiate(q, now_ms() + (uint64_t)timeout_ms, err, errlen);
	if (rc < 0) {
		qmp_close(q);
		return rc;
	}
	*out = q;
	return 0;
}

int qmp_connect(const char *path, int timeout_ms, struct qmp **out, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint64_t deadline = now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "QMP socket %s: path longer than %zu bytes", path,
			 sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			snprintf(err, errlen, "QMP socket %s: %s", path, strerror(errno));
			return -errno;
		}
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return qmp_attach(fd, path, remaining_ms(deadline), out, err, errlen);
		int e = errno;
		close(fd);
		if ((e != ENOENT && e != ECONNREFUSED && e != EAGAIN) || remaining_ms(deadline) == 0) {
			snprintf(err, errlen, "QMP socket %s: %s", path, strerror(e));
			return -e;
		}
		usleep(10000); /* QEMU is still starting: its socket is not there yet */
	}
}
