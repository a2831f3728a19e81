/*
 * quiesce: sfs I/O of a group of guests held and let go together, through
 * their agents (agent_link.h): what a checkpoint (all guests of a job at
 * one cut) and a restore (the agents of restored guests) share. The
 * outcomes have the words a migration's row uses: "ok", "missed: ...",
 * "error: ...", "no-agent".
 *
 * Nothing blocks: quiesce and resume send, poll says when every member
 * answered, missed its bound or lost its agent. A member whose quiesce was
 * sent is always sent a resume by qgroup_resume, whatever the outcome (an
 * agent that misses the deadline may still have quiesced). A guest whose
 * agent is gone gets no resume: its watchdog lets the I/O go.
 */
#ifndef MIGD_QUIESCE_H
#define MIGD_QUIESCE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_link.h"
#include "db.h"

#define QGROUP_GRACE_MS 1000   /* a quiesce answer is awaited for deadline + this */
#define QGROUP_RESUME_MS 3000  /* a resume answer this long */

struct qgroup;

/* What became of one member (qgroup_member). */
struct qgroup_member {
	char guest[DB_NAME_MAX];
	int quiesce_sent;              /* so a resume is owed */
	char quiesce[192];             /* "" until settled */
	int64_t quiesce_ms;            /* -1: unknown */
	int64_t drained_requests, drained_bytes; /* from the agent's answer; -1 unknown */
	char resume[192];              /* "" until settled */
	int64_t resume_ms;
	/* awaited request */
	uint64_t req;
	uint64_t sent_ms;
};

/* al NULL: agents are off, every outcome is "no-agent". */
struct qgroup *qgroup_new(struct agent_link *al, const char *const *guests, size_t n);
void qgroup_free(struct qgroup *g); /* forgets requests still awaited */

/* Ask every member to quiesce within deadline_ms. */
void qgroup_quiesce(struct qgroup *g, unsigned deadline_ms);
/* Ask every member whose quiesce was sent to resume. */
void qgroup_resume(struct qgroup *g);
/* 1 when every request sent by the last quiesce or resume is settled. */
int qgroup_poll(struct qgroup *g);
/* After a settled quiesce: 1 when every member said ok ("no-agent" counts
 * as ok unless required); else 0 with the first other outcome in why
 * ("g2: missed: no answer within 6000 ms"). */
int qgroup_ok(const struct qgroup *g, int required, char *why, size_t len);
/* Per member: { guest, quiesce, quiesce_ms, resume, resume_ms } */
json_t *qgroup_json(const struct qgroup *g);
/* Member i, as it stands. */
const struct qgroup_member *qgroup_member(const struct qgroup *g, size_t i);
/* Settle every awaited quiesce now as "error: WHY" (an abort), forgetting
 * the requests; a later qgroup_resume still resumes them. */
void qgroup_cancel(struct qgroup *g, const char *why);
/* Longest quiesce answer time among the members, ms. */
int64_t qgroup_quiesce_ms(const struct qgroup *g);

/*
 * A resume owed to a guest whose agent may be quiesced with nobody left to
 * let it go (migd restarted mid-operation, or a guest was restored from a
 * checkpoint taken while quiesced): sent when its agent is heard from,
 * until a deadline (its watchdog resumes the guest by then anyway).
 * reconnect: the resume tells libsfs to make fresh connections (a
 * restored guest's TCP state is from before the servers' own).
 */
struct qowed {
	char guest[DB_NAME_MAX];
	uint64_t until_ms;             /* real time */
	int reconnect;
	uint64_t req;                  /* 0: not sent yet */
	uint64_t sent_ms;
	char outcome[192];             /* once settled: "ok", "error: ...", "no reply", "no-agent" */
	int64_t ms;                    /* the answer's round trip; -1 none */
};
void qowed_init(struct qowed *o, const char *guest, unsigned within_ms, int reconnect);
/* Send when the agent is connected, collect the answer: 0 still owed, 1
 * settled (outcome, ms). al NULL: settled at once as "no-agent". */
int qowed_poll(struct agent_link *al, struct qowed *o);
/* Forget its request (the caller drops it unsettled). */
void qowed_forget(struct agent_link *al, struct qowed *o);

#endif
