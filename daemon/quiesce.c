/*
 * quiesce: see quiesce.h.
 */
#include "quiesce.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "util.h"

#define member qgroup_member

struct qgroup {
	struct agent_link *al;
	unsigned deadline_ms;
	int resuming;
	size_t n;
	struct member m[];
};

struct qgroup *qgroup_new(struct agent_link *al, const char *const *guests, size_t n)
{
	struct qgroup *g = calloc(1, sizeof(*g) + n * sizeof(struct member));
	if (!g)
		return NULL;
	g->al = al;
	g->n = n;
	for (size_t i = 0; i < n; i++) {
		snprintf(g->m[i].guest, sizeof(g->m[i].guest), "%s", guests[i]);
		g->m[i].quiesce_ms = g->m[i].resume_ms = -1;
		g->m[i].drained_requests = g->m[i].drained_bytes = -1;
	}
	return g;
}

void qgroup_free(struct qgroup *g)
{
	if (!g)
		return;
	for (size_t i = 0; g->al && i < g->n; i++)
		if (g->m[i].req)
			agent_link_forget(g->al, g->m[i].req);
	free(g);
}

void qgroup_quiesce(struct qgroup *g, unsigned deadline_ms)
{
	g->deadline_ms = deadline_ms;
	g->resuming = 0;
	for (size_t i = 0; i < g->n; i++) {
		struct member *m = &g->m[i];
		int rc = g->al ? agent_link_send(g->al, m->guest, "quiesce", deadline_ms,
						 deadline_ms + QGROUP_GRACE_MS, &m->req)
			       : -ENOTCONN;
		if (rc == 0) {
			m->quiesce_sent = 1;
			m->sent_ms = now_ms();
		} else {
			m->req = 0;
			snprintf(m->quiesce, sizeof(m->quiesce), "%s",
				 rc == -ENOTCONN ? "no-agent" : "error: could not send");
		}
	}
}

void qgroup_resume(struct qgroup *g)
{
	g->resuming = 1;
	for (size_t i = 0; i < g->n; i++) {
		struct member *m = &g->m[i];
		if (m->req) { /* a quiesce still awaited: its answer no longer matters */
			agent_link_forget(g->al, m->req);
			m->req = 0;
			if (!*m->quiesce)
				snprintf(m->quiesce, sizeof(m->quiesce), "error: resumed before it answered");
		}
		if (!m->quiesce_sent)
			continue;
		int rc = agent_link_send(g->al, m->guest, "resume", 0, QGROUP_RESUME_MS, &m->req);
		if (rc == 0) {
			m->sent_ms = now_ms();
		} else {
			m->req = 0;
			snprintf(m->resume, sizeof(m->resume), "agent gone (its watchdog resumes)");
		}
	}
}

/* Settle member m's awaited request; 1 when settled. */
static int settle(struct qgroup *g, struct member *m)
{
	if (!m->req)
		return 1;
	struct agent_reply rep = { 0 };
	int rc = agent_link_reply(g->al, m->req, &rep);
	if (rc == 0)
		return 0;
	int64_t ms = rc == 1 ? (int64_t)rep.rtt_ms : (int64_t)(now_ms() - m->sent_ms);
	if (!g->resuming) {
		m->quiesce_ms = ms;
		if (rc == 1) {
			json_t *v = json_object_get(rep.result, "drained_requests");
			m->drained_requests = json_is_integer(v) ? json_integer_value(v) : -1;
			v = json_object_get(rep.result, "drained_bytes");
			m->drained_bytes = json_is_integer(v) ? json_integer_value(v) : -1;
		}
		if (rc == 1 && rep.ok)
			snprintf(m->quiesce, sizeof(m->quiesce), "ok");
		else if (rc == 1 && json_is_true(json_object_get(rep.result, "missed_deadline")))
			snprintf(m->quiesce, sizeof(m->quiesce), "missed: %.160s", rep.error);
		else if (rc == 1)
			snprintf(m->quiesce, sizeof(m->quiesce), "error: %.160s", rep.error);
		else if (rc == -ETIMEDOUT)
			snprintf(m->quiesce, sizeof(m->quiesce), "missed: no answer within %u ms",
				 g->deadline_ms + QGROUP_GRACE_MS);
		else
			snprintf(m->quiesce, sizeof(m->quiesce), "error: agent gone");
	} else {
		m->resume_ms = ms;
		if (rc == 1 && rep.ok)
			snprintf(m->resume, sizeof(m->resume), "ok");
		else if (rc == 1)
			snprintf(m->resume, sizeof(m->resume), "error: %.160s", rep.error);
		else
			snprintf(m->resume, sizeof(m->resume), "%s (its watchdog resumes)",
				 rc == -ETIMEDOUT ? "no reply" : "agent gone");
		if (strcmp(m->resume, "ok") != 0)
			log_warnx("resume of %s: %s", m->guest, m->resume);
	}
	agent_link_forget(g->al, m->req);
	m->req = 0;
	return 1;
}

int qgroup_poll(struct qgroup *g)
{
	int all = 1;
	for (size_t i = 0; i < g->n; i++)
		all &= settle(g, &g->m[i]);
	return all;
}

int qgroup_ok(const struct qgroup *g, int required, char *why, size_t len)
{
	for (size_t i = 0; i < g->n; i++) {
		const struct member *m = &g->m[i];
		if (strcmp(m->quiesce, "ok") == 0 || (!required && strcmp(m->quiesce, "no-agent") == 0))
			continue;
		snprintf(why, len, "%s: %s", m->guest, *m->quiesce ? m->quiesce : "not answered");
		return 0;
	}
	return 1;
}

json_t *qgroup_json(const struct qgroup *g)
{
	json_t *a = json_array();
	for (size_t i = 0; i < g->n; i++) {
		const struct member *m = &g->m[i];
		json_t *o = json_pack("{s:s, s:s}", "guest", m->guest, "quiesce", m->quiesce);
		if (m->quiesce_ms >= 0)
			json_object_set_new(o, "quiesce_ms", json_integer(m->quiesce_ms));
		if (*m->resume)
			json_object_set_new(o, "resume", json_string(m->resume));
		if (m->resume_ms >= 0)
			json_object_set_new(o, "resume_ms", json_integer(m->resume_ms));
		json_array_append_new(a, o);
	}
	return a;
}

const struct qgroup_member *qgroup_member(const struct qgroup *g, size_t i)
{
	return i < g->n ? &g->m[i] : NULL;
}

void qgroup_cancel(struct qgroup *g, const char *why)
{
	for (size_t i = 0; i < g->n; i++) {
		struct member *m = &g->m[i];
		if (!m->req || g->resuming)
			continue;
		agent_link_forget(g->al, m->req);
		m->req = 0;
		m->quiesce_ms = (int64_t)(now_ms() - m->sent_ms);
		snprintf(m->quiesce, sizeof(m->quiesce), "error: %s", why);
	}
}

int64_t qgroup_quiesce_ms(const struct qgroup *g)
{
	int64_t mx = 0;
	for (size_t i = 0; i < g->n; i++)
		if (g->m[i].quiesce_ms > mx)
			mx = g->m[i].quiesce_ms;
	return mx;
}

/* ---- owed resumes ---- */

static int send_resume(struct agent_link *al, const char *guest, int reconnect, uint64_t *req)
{
	return agent_link_send_resume(al, guest, reconnect, QGROUP_RESUME_MS, req);
}

void qowed_init(struct qowed *o, const char *guest, unsigned within_ms, int reconnect)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->guest, sizeof(o->guest), "%s", guest);
	o->until_ms = now_ms() + within_ms;
	o->reconnect = reconnect;
	o->ms = -1;
}

static int qowed_settle(struct qowed *o, const char *outcome, int64_t ms)
{
	snprintf(o->outcome, sizeof(o->outcome), "%s", outcome);
	o->ms = ms;
	return 1;
}

int qowed_poll(struct agent_link *al, struct qowed *o)
{
	struct agent_status st;
	uint64_t now = now_ms();
	if (!al)
		return qowed_settle(o, "no-agent", -1);
	if (!o->req && agent_link_status(al, o->guest, &st) == 0 && st.connected &&
	    send_resume(al, o->guest, o->reconnect, &o->req) == 0)
		o->sent_ms = now;
	if (o->req) {
		struct agent_reply rep;
		int rc = agent_link_reply(al, o->req, &rep);
		if (rc == 0)
			return 0;
		char what[192];
		if (rc == 1)
			snprintf(what, sizeof(what), "%s%.160s", rep.ok ? "ok" : "error: ",
				 rep.ok ? "" : rep.error);
		agent_link_forget(al, o->req);
		o->req = 0;
		if (rc == 1)
			return qowed_settle(o, what, (int64_t)rep.rtt_ms);
		if (now >= o->until_ms)
			return qowed_settle(o, "no reply", -1);
		return 0; /* an old connection, maybe: try again when it is heard from */
	}
	return now >= o->until_ms ? qowed_settle(o, "no-agent", -1) : 0;
}

void qowed_forget(struct agent_link *al, struct qowed *o)
{
	if (al && o->req)
		agent_link_forget(al, o->req);
	o->req = 0;
}
