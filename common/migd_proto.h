/*
 * migd_proto: the migd API, the only place its format is defined.
 *
 * Transport: ZeroMQ. Commands go over REQ/REP (migd binds --listen, e.g.
 * tcp://127.0.0.1:7700); events go over PUB (migd binds --events, default
 * the listen port + 1), one message per event, two frames: the topic
 * ("event.<type>") and the JSON body. Every message is one JSON object
 * (jansson on both sides) and carries "v": MIGD_API_VERSION.
 *
 * Request:  {"v":1, "cmd":"host.add", "args":{...}}
 * Reply:    {"v":1, "ok":true, "result":<any JSON>}
 *           {"v":1, "ok":false, "error":"host \"n9\": no such host",
 *            "code":"ENOENT"}
 * Event:    {"v":1, "type":"migration.completed", "ts_ns":..., "id":17, ...}
 *
 * A request that is not JSON, lacks "v" / "cmd", has another version, names
 * an unknown command, or carries args of the wrong type gets an error reply
 * naming what was wrong; migd keeps serving.
 *
 * Commands and their args (sizes in bytes, rates in bytes/s, times in
 * seconds as numbers, timestamps in ns since the epoch):
 *   status        {}                                   -> {version, uptime_s, hosts, guests, running, queued, policies, sim_time_ns?,
 *                 planning: {rounds, plan_cpu_s, start_cpu_s, started}} (since migd started)
 *   host.add      {name, uri, max_outbound?, max_inbound?, memory_bytes?,
 *                  health_hook?, health_interval_s?, health_timeout_s?}  -> host
 *   host.add_many {items: [host.add args]}  (at most 10,000) -> {added, failed:
 *                 [{index, name, error, code}]}: one transaction, each item on
 *                 its own (a refused one is left out, the others added)
 *   host.list     {limit?, after?}                     -> [host]
 *                 paging: with limit (1..10000) at most that many in name
 *                 order, after the name after; without it the whole list
 *   host.show     {name}                               -> host (+ guests: [name])
 *   host.rm       {name}              (no guests on it) -> {}
 *   host.enable   {name}  host.disable {name}          -> host
 *   host.disable  {names: [name, ...]}  (up to 10,000)  -> [host]: one transaction
 *   guest.add     {name, host, memory_bytes, dirty_rate_bps?, job?, rank?} -> guest
 *   guest.add_many {items: [guest.add args]}           -> as host.add_many
 *   guest.list    {host?, job?, limit?, after?}        -> [guest] (paged as host.list)
 *   guest.show    {name}                               -> guest
 *   agent.list    {}                                   -> [agent (+ guest)]
 *   migrate       {guest, to?, priority?("manual"), knobs?} -> migration
 *                 knobs: quiesce ("required" | "best-effort" | "off"),
 *                 quiesce_deadline_s, on_quiesce_miss ("abort" | "defer"),
 *                 io_lull_bps, io_lull_wait_s (numbers; or text: quiesce_deadline
 *                 "500ms", io_lull "10m"); unset ones from migd.conf [agent]
 *   evacuate      {host} | {hosts: [name, ...]}        -> [migration]
 *                 (up to 1,000 hosts, one transaction: all disabled, then drained)
 *   abort         {id}                                 -> migration
 *   migration.show {id}                                -> migration
 *   queue         {running?, after?, limit?}           -> [migration] (queued and running, in
 *                 queue order; running: true only those started or migrating; with
 *                 after (an id, 0: the start) or limit, a page (default 1000, at
 *                 most 5000) after that migration)
 *   history       {since_ns?, limit?, policy?, after?} -> [migration] (finished, newest last)
 *                 without after: all, or the newest limit; with after (a
 *                 finished migration's id, 0: the start): the next limit
 *                 (default 1000, at most 5000) in the order they finished
 *   event.list    {after?, limit?, type?}              -> [event + event_id] (the stored log:
 *                 the first limit (default 1000, at most 10000) with an id above
 *                 after (default 0), oldest first; type: a prefix of the type)
 *   report        {since_ns?, policy?}                 -> {overall: stats, policies: {name: stats}}
 *                 stats = {count, completed, failed, aborted, total_s:{mean,p50,p99},
 *                          downtime_ms:{mean,p50,p99}, bytes:{mean},
 *                          quiesce_outcomes:{ok,missed,error,no-agent,off: count},
 *                          quiesce_ms:{mean,p50,p99}, resume_ms:{mean,p50,p99},
 *                          drained_bytes:{mean}, drained_requests:{mean}, lull_waits,
 *                          lull_wait_ms:{mean,p50,p99}, lull_gave_up}
 *   calibrate     {since_ns?, policy?}                 -> {migrations, link_bps, links, guests,
 *                                                          switchover_ms, sim} (migctl.1)
 *   predict       {guest, to}                          -> {guest, src, dst, total_ms,
 *                                                          downtime_ms, bytes, rounds, state, model}
 *   policy.add    {type:"interval", name, every_s, guests (selector), stagger_s?, count?}
 *                 {type:"cron", name, schedule ("0 2 * * *"), action ("evacuate n3,n4" |
 *                  "rebalance" | "migrate SELECTOR"), tz?, missed? ("run-once" | "skip"),
 *                  stagger_s?, spread? (0..1 or "10%")}
 *                 {type:"mtbf", name, mtbf_s, guests, cost_s?, stagger_s?, count?}
 *                 every type also takes knobs? (as for migrate)
 *   policy.list   {}  policy.show {name}  policy.pause {name}  policy.resume {name}
 *   policy.rm     {name}
 *   health.report {host, sensor, value, unit?}         -> {reading, host}
 *   health.rule.add {name, sensor (glob), above? | below? | rise? + within_s,
 *                  clear?, clear_after_s?}             -> rule
 *   health.rule.list {}  health.rule.rm {name}
 *   health.show   {host?}                              -> [{host, health, reason, since_ns,
 *                                                          hook, interval_s, timeout_s,
 *                                                          readings: [reading]}]
 *
 * Objects:
 *   host      {name, uri, enabled, health, max_outbound, max_inbound,
 *              memory_bytes, memory_used_bytes, guests}
 *   guest     {name, host, memory_bytes, dirty_rate_bps, job, rank, state, agent}
 *   agent     {connected, version, hostname, pid, last_seen_ms_ago, last_seen_ns,
 *              read_bps, write_bps, inflight, quiesced, clients} ({connected:false}
 *              alone when never heard from)
 *   migration {id, guest, src, dst, state, priority, policy, reason,
 *              queued_ns, started_ns, migrating_ns, finished_ns,
 *              total_ms, downtime_ms, bytes, rounds, error,
 *              knobs {quiesce, quiesce_deadline_ms, on_quiesce_miss, io_lull_bps,
 *                     io_lull_wait_ms},
 *              lull_wait_ms, lull_reason, quiesce ("ok", "missed: ...", "error: ...",
 *              "no-agent", "off"), quiesce_ns, quiesce_ms, drained_requests,
 *              drained_bytes, resume ("ok", "no reply ...", "error: ..."),
 *              resume_ns, resume_ms, defers}
 *   state: queued | started | migrating | completed | failed | aborted
 *   policy    {name, type, state ("active" | "paused"), guests, every_s,
 *              stagger_s, count, created_ns, last_fire_ns, next_fire_ns, fired,
 *              next_fires_ns: [5 times]; cron: schedule, tz, action, missed,
 *              spread; mtbf: mtbf_s, cost_s, cost_in_effect_s, cost_source
 *              ("configured" | "history"), cost_samples, interval_s}
 *   host      also {health_reason, health_since_ns, health_hook,
 *              health_interval_s, health_timeout_s}
 *   reading   {host, sensor, ts_ns, value (null: na), unit, status, source,
 *              lnr?, lcr?, lnc?, unc?, ucr?, unr?}
 *   rule      {name, sensor, kind ("above" | "below" | "rise"), value,
 *              within_s, clear, clear_after_s, created_ns}
 * Objects may carry more fields than listed (a migration's not_before_ns
 * and reconciled, a guest's migration id); readers ignore what they do not
 * know. Unset times and unknown figures are null.
 * Selectors: "all", "host:NAME", "job:NAME", a guest name, or a
 * comma-separated list of those.
 *
 * Events: host.added, host.removed, guest.added, migration.queued,
 * migration.started, migration.progress (id, transferred_bytes,
 * remaining_bytes, rounds), migration.completed, migration.failed,
 * migration.aborted, policy.fired (with due_ns and reason), policy.added,
 * policy.removed, reconciled; also host.enabled, host.disabled,
 * policy.paused, policy.resumed, policy.missed (missed, reason),
 * policy.interval (mtbf; reason), host.degraded and host.recovered (host,
 * reason, message: "host n3 degraded: CPU1 Temp 96 C > upper critical 95
 * C"), health.bad_line (host, line, text, error), health.hook_failed
 * (host, reason, stderr), health.rule.added, health.rule.removed; the agent
 * phases migration.waiting, migration.quiescing, migration.quiesced,
 * migration.migrating, migration.resuming, migration.resumed,
 * migration.deferred (each with the migration); agent.connected and
 * agent.gone ({guest, agent}).
 */
#ifndef MIGD_PROTO_H
#define MIGD_PROTO_H

#include <jansson.h>
#include <stddef.h>

#define MIGD_API_VERSION 1
#define MIGD_MAX_MSG_BYTES (4u << 20) /* a request larger than this is refused */

/* Build a request; steals args (may be NULL for {}). Caller owns the result. */
json_t *migd_req_new(const char *cmd, json_t *args);
/* Parse a request: 0 and *cmd (points into *root) and *args (borrowed, an
 * object) or -EINVAL with the reason in err. *root is the caller's to
 * json_decref, also on error (may be NULL). */
int migd_req_parse(const char *text, size_t len, json_t **root, const char **cmd,
		   json_t **args, char *err, size_t errlen);

/* Replies; both steal their argument. */
json_t *migd_reply_ok(json_t *result);
/* code: an errno name ("EINVAL", "ENOENT", ...), from migd_errno_name(). */
json_t *migd_reply_error(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parse a reply: 0 with *result borrowed from *root, or the negative errno
 * the reply names with its message in err; -EBADMSG for a malformed reply. */
int migd_reply_parse(const char *text, size_t len, json_t **root, json_t **result, char *err,
		     size_t errlen);

/* An event object with "v", "type" and "ts_ns"; add fields, then send. */
json_t *migd_event_new(const char *type, long long ts_ns);

const char *migd_errno_name(int err);   /* 22 -> "EINVAL" */
int migd_errno_value(const char *name); /* "EINVAL" -> 22, unknown -> EIO */

/* Typed getters for args that name the bad field in err: 0, -ENOENT when
 * absent (and not required), -EINVAL when of the wrong type. */
int migd_arg_str(json_t *args, const char *key, int required, const char **out, char *err,
		 size_t errlen);
int migd_arg_u64(json_t *args, const char *key, int required, unsigned long long *out,
		 char *err, size_t errlen);
int migd_arg_num(json_t *args, const char *key, int required, double *out, char *err,
		 size_t errlen);

#endif
