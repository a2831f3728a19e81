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

#define QGROUP_GRACE_MS 1000   /* a quiesce answer is awaited for deadline + this */
#define QGROUP_RESUME_MS 3000  /* a resume answer this long */

struct qgroup;

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
/* Longest quiesce answer time among the members, ms. */
int64_t qgroup_quiesce_ms(const struct qgroup *g);

#endif
