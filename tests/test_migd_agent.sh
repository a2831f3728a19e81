#!/bin/sh
# test_migd_agent.sh: migd's side of the migagent protocol, end to end.
#
# A real migd on the sim backend (--time-scale 60) with its agent endpoint
# on a free loopback port, and stand-in agents (tests/agent_peer.py, pyzmq)
# for sim guests of the same names, each told how to behave. Checks: a
# migration's phases come in order (queued, started, quiescing, quiesced,
# migrating, resuming, resumed, completed) and its row records the quiesce
# and what was drained; quiesce required with no agent aborts or defers
# (then aborts after max_defers) as asked; best-effort with a missed
# deadline (the agent's own answer, or none at all) migrates and records
# it; every quiesce is followed by a resume, also when the quiesce failed,
# when the migration is aborted while quiescing or while migrating, and
# after migd is killed with SIGKILL mid-quiesce and restarted; io_lull holds
# a migration while the agent reports a write burst and starts it when the
# burst ends (and gives up after io_lull_wait); malformed agent messages
# are each answered with an error naming the problem while another guest's
# agent and migration carry on; agents show in guest show and agent.list
# and are gone 3 s after they stop.
#
# Env: MIGD, MIGCTL (the programs under test). TAP lines; exit 77 when no
# python3 with pyzmq is found.
set -u
. "$(dirname "$0")/lib-migd.sh"
here=$(cd "$(dirname "$0")" && pwd)

find_pyzmq
if [ -z "$pyzmq" ]; then
	echo "1..0 # SKIP no python3 with pyzmq (Debian: python3-zmq) for the agent peers"
	exit 77
fi

peer_pids=
cleanup() {
	for p in $peer_pids; do stop_pid "$p"; done
	migd_cleanup
}
log_tail=30 # lines of migd.log that fail prints
migd_setup test_migd_agent 3
agent_ep="tcp://127.0.0.1:$((port + 2))"

# ---- helpers ----

start_migd() {
	run_migd 25 --time-scale 60 \
		--agent-listen "$agent_ep" --agent-defer-delay 6s --agent-max-defers 1
}

# peer GUEST ARGS...: start a stand-in agent logging to $tmp/GUEST.log
peer() {
	g=$1
	shift
	"$pyzmq" "$here/agent_peer.py" --migd "$agent_ep" --guest "$g" --log "$tmp/$g.log" \
		"$@" >>"$tmp/peers.out" 2>&1 &
	peer_pids="$peer_pids $!"
	eval "peer_$g=$!"
}

agent_connected() { # GUEST
	ctl --json guest show "$1" >"$tmp/gs.json" 2>/dev/null &&
		[ "$(py "$tmp/gs.json" 'd["agent"]["connected"]')" = True ]
}

# count_msgs GUEST TYPE: messages of TYPE the guest's peer got from migd
count_msgs() {
	python3 -c 'import json, sys
n = 0
try:
    for line in open(sys.argv[1]):
        m = json.loads(line)["msg"]
        n += m.get("type") == sys.argv[2]
except FileNotFoundError:
    pass
print(n)' "$tmp/$1.log" "$2"
}

# row ID: the migration's row into $tmp/row.json
row() {
	ctl_json "$tmp/row.json" migration show "$1" 2>/dev/null ||
		fail "migration show $1"
}

mig_state() { # ID
	ctl --json migration show "$1" >"$tmp/ms.json" 2>/dev/null && py "$tmp/ms.json" 'd["state"]'
}

wait_final() { # ID SECONDS
	final() {
		st=$(mig_state "$1")
		[ "$st" = completed ] || [ "$st" = failed ] || [ "$st" = aborted ]
	}
	wait_for "$2" "migration $1 to end" final "$1"
}

migrate_id() { # ARGS...: queue a migration, print its id
	ctl --json migrate "$@" >"$tmp/mq.json" 2>"$tmp/err" ||
		fail "migrate $*: exit $?: $(cat "$tmp/err")"
	py "$tmp/mq.json" 'd["id"]'
}

# ---- a cluster with agents ----

start_migd
ok "migd answers on $endpoint, agents on $agent_ep"
for n in n1 n2; do
	ctl host add $n --uri "sim:///$n?link=1gbit" --memory 256g >/dev/null 2>"$tmp/err" ||
		fail "host add $n: $(cat "$tmp/err")"
done
ctl host add slow --uri "sim:///slow?link=100mbit" --memory 256g >/dev/null 2>"$tmp/err" ||
	fail "host add slow: $(cat "$tmp/err")"
for g in a1 a2 a3 a4 a5 a6 a7 a8 a9; do
	ctl guest add $g --host n1 --memory 1g --dirty-rate 16m/s >/dev/null 2>"$tmp/err" ||
		fail "guest add $g: $(cat "$tmp/err")"
done
for g in b1 b2; do
	ctl guest add $g --host slow --memory 16g --dirty-rate 16m/s >/dev/null 2>"$tmp/err" ||
		fail "guest add $g: $(cat "$tmp/err")"
done

peer a1 --quiesce ok --drained-requests 5 --drained-bytes 5242880
wait_for 10 "agent of a1 connected" agent_connected a1
[ "$(py "$tmp/gs.json" 'd["agent"]["version"]')" = 0.0-peer ] ||
	fail "guest show a1: expected agent version 0.0-peer, got $(cat "$tmp/gs.json")"
ok "agent of a1 connected; guest show carries its version and rates"

# ---- flow order ----

ctl watch --json >"$tmp/watch.out" 2>"$tmp/watch.err" &
watch_pid=$!
sleep 1
id=$(migrate_id a1 --quiesce required --quiesce-deadline 2s)
wait_final "$id" 30
row "$id"
[ "$(py "$tmp/row.json" 'd["state"]')" = completed ] ||
	fail "migration $id of a1: expected completed, got $(cat "$tmp/row.json")"
sleep 0.5
python3 - "$tmp/watch.out" "$id" <<'EOF' || fail "event order of migration $id (above)"
import json, sys
mid = int(sys.argv[2])
types = [e["type"] for e in map(json.loads, open(sys.argv[1]))
         if e.get("id") == mid and e["type"] != "migration.progress"]
want = ["migration.queued", "migration.started", "migration.quiescing", "migration.quiesced",
        "migration.migrating", "migration.resuming", "migration.resumed",
        "migration.completed"]
if types != want:
    sys.exit("expected %s, got %s" % (want, types))
EOF
python3 - "$tmp/row.json" <<'EOF' || fail "row of migration $id: $(cat "$tmp/row.json")"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["quiesce"] == "ok", m
assert m["resume"] == "ok", m
assert m["drained_requests"] == 5 and m["drained_bytes"] == 5242880, m
assert m["quiesce_ms"] is not None and m["resume_ms"] is not None, m
assert m["quiesce_ns"] <= m["migrating_ns"] <= m["resume_ns"] <= m["finished_ns"], m
assert m["knobs"]["quiesce"] == "required" and m["knobs"]["quiesce_deadline_ms"] == 2000, m
EOF
[ "$(count_msgs a1 quiesce)" = 1 ] && [ "$(count_msgs a1 resume)" = 1 ] ||
	fail "agent of a1: expected 1 quiesce and 1 resume, got $(count_msgs a1 quiesce) and $(count_msgs a1 resume)"
ok "phases in order: queued started quiescing quiesced migrating resuming resumed completed; row has quiesce ok, 5 requests / 5 MiB drained, resume ok"

ctl history >"$tmp/hist.txt" 2>"$tmp/err" || fail "history: $(cat "$tmp/err")"
grep -q "QUIESCE" "$tmp/hist.txt" && grep -E "^ *$id .*ok" "$tmp/hist.txt" >/dev/null ||
	fail "history: expected QUIESCE column and ok for $id, got $(cat "$tmp/hist.txt")"
ok "history shows the quiesce and resume of $id"

# ---- quiesce required, no agent ----

id=$(migrate_id a2 --quiesce required --on-quiesce-miss abort)
wait_final "$id" 20
row "$id"
[ "$(py "$tmp/row.json" 'd["state"]')" = aborted ] &&
	py "$tmp/row.json" 'd["error"]' | grep -q "no agent" &&
	[ "$(py "$tmp/row.json" 'd["quiesce"]')" = no-agent ] ||
	fail "required + no agent + abort: expected aborted, got $(cat "$tmp/row.json")"
ctl_json "$tmp/a2.json" guest show a2
[ "$(py "$tmp/a2.json" 'd["host"]')" = n1 ] || fail "a2 moved though its migration aborted"
ok "quiesce required, no agent, on_quiesce_miss abort: aborted ($(py "$tmp/row.json" 'd["error"]')), a2 stays on n1"

id=$(migrate_id a3 --quiesce required --on-quiesce-miss defer)
deferred() {
	ctl --json migration show "$id" >"$tmp/ms.json" 2>/dev/null &&
		[ "$(py "$tmp/ms.json" 'd["defers"]')" -ge 1 ]
}
wait_for 20 "migration $id deferred" deferred
wait_final "$id" 30
row "$id"
python3 - "$tmp/row.json" <<'EOF' || fail "required + no agent + defer: $(cat "$tmp/row.json")"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["state"] == "aborted" and m["defers"] == 1, m
assert "deferred 1 times" in m["error"] and "no agent" in m["error"], m
EOF
grep -q "\"migration.deferred\".*\"id\": *$id\|\"id\": *$id.*migration.deferred" "$tmp/watch.out" ||
	python3 -c 'import json, sys
sys.exit(0 if any(e["type"] == "migration.deferred" and e.get("id") == int(sys.argv[2])
                  for e in map(json.loads, open(sys.argv[1]))) else 1)' "$tmp/watch.out" "$id" ||
	fail "no migration.deferred event for $id"
ok "quiesce required, no agent, on_quiesce_miss defer: deferred once, then aborted (max_defers 1)"

# ---- required + agent error: resume still sent ----

peer a4 --quiesce error
wait_for 10 "agent of a4 connected" agent_connected a4
id=$(migrate_id a4 --quiesce required --on-quiesce-miss abort)
wait_final "$id" 20
row "$id"
[ "$(py "$tmp/row.json" 'd["state"]')" = aborted ] &&
	py "$tmp/row.json" 'd["quiesce"]' | grep -q "^error: client 1 did not answer" ||
	fail "required + agent error: expected aborted with the agent's error, got $(cat "$tmp/row.json")"
[ "$(count_msgs a4 resume)" = 1 ] || fail "agent of a4: expected a resume after the failed quiesce"
ok "quiesce required, agent answers an error: aborted, resume sent anyway"

# ---- best-effort, missed deadline ----

peer a5 --quiesce missed
peer a6 --quiesce never
wait_for 10 "agent of a5 connected" agent_connected a5
wait_for 10 "agent of a6 connected" agent_connected a6
id5=$(migrate_id a5 --quiesce best-effort --quiesce-deadline 300ms)
id6=$(migrate_id a6 --quiesce best-effort --quiesce-deadline 300ms)
wait_final "$id5" 20
wait_final "$id6" 20
row "$id5"
cp "$tmp/row.json" "$tmp/row5.json"
row "$id6"
python3 - "$tmp/row5.json" "$tmp/row.json" <<'EOF' || fail "best-effort + missed (above)"
import json, sys
m5, m6 = (json.load(open(f)) for f in sys.argv[1:3])
for m in (m5, m6):
    assert m["state"] == "completed", m
    assert m["quiesce"].startswith("missed"), m
    assert m["resume"] == "ok", m
assert "deadline 300 ms missed" in m5["quiesce"], m5
assert "no answer" in m6["quiesce"], m6
assert m6["quiesce_ms"] >= 1000, m6   # waited for the deadline and the grace
EOF
for g in a5 a6; do
	[ "$(count_msgs $g resume)" = 1 ] || fail "agent of $g: expected a resume after a missed quiesce"
done
ok "best-effort: a missed deadline ($(py "$tmp/row5.json" 'd["quiesce"]')) and no answer at all both migrate, recorded, resumed"

# ---- abort while quiescing and while migrating: resume ----

peer b1 --quiesce never
wait_for 10 "agent of b1 connected" agent_connected b1
id=$(migrate_id b1 --quiesce required --quiesce-deadline 20s)
quiescing() {
	ctl --json migration show "$id" >"$tmp/ms.json" 2>/dev/null &&
		[ "$(py "$tmp/ms.json" 'd["quiesce_ns"] is not None')" = True ]
}
wait_for 10 "migration $id quiescing" quiescing
ctl abort "$id" >/dev/null 2>"$tmp/err" || fail "abort $id while quiescing: $(cat "$tmp/err")"
wait_final "$id" 10
row "$id"
[ "$(py "$tmp/row.json" 'd["state"]')" = aborted ] && [ "$(count_msgs b1 resume)" = 1 ] ||
	fail "abort while quiescing: expected aborted and a resume, got $(cat "$tmp/row.json"), $(count_msgs b1 resume) resumes"
ok "aborted while quiescing: resume sent, row aborted"

peer b2 --quiesce ok
wait_for 10 "agent of b2 connected" agent_connected b2
id=$(migrate_id b2 --quiesce required)
migrating() { [ "$(mig_state "$id")" = migrating ]; }
wait_for 10 "migration $id migrating" migrating
ctl abort "$id" >/dev/null 2>"$tmp/err" || fail "abort $id while migrating: $(cat "$tmp/err")"
wait_final "$id" 10
row "$id"
[ "$(py "$tmp/row.json" 'd["state"]')" = aborted ] && [ "$(count_msgs b2 resume)" = 1 ] &&
	[ "$(py "$tmp/row.json" 'd["resume"]')" = ok ] ||
	fail "abort while migrating: expected aborted and a resume, got $(cat "$tmp/row.json")"
ok "aborted while migrating (16g over 100mbit): resume sent, row aborted, b2 on its source"

# ---- io_lull ----

echo 104857600 >"$tmp/a7.rate"
peer a7 --quiesce ok --rate-file "$tmp/a7.rate"
wait_for 10 "agent of a7 connected" agent_connected a7
busy() { ctl --json guest show a7 >"$tmp/gs.json" 2>/dev/null &&
	[ "$(py "$tmp/gs.json" '(d["agent"]["write_bps"] or 0) > 1e6')" = True ]; }
wait_for 10 "agent of a7 reporting 100 MiB/s" busy
id=$(migrate_id a7 --io-lull 1m --io-lull-wait 60s)
sleep 2.5
[ "$(mig_state "$id")" = queued ] || fail "io_lull: expected $id still queued during the burst, got $(mig_state "$id")"
py "$tmp/ms.json" 'd["lull_reason"]' | grep -q "^waiting for an I/O lull" ||
	fail "io_lull: expected the row to say it waits, got $(cat "$tmp/ms.json")"
echo 0 >"$tmp/a7.rate"
wait_final "$id" 20
row "$id"
python3 - "$tmp/row.json" <<'EOF' || fail "io_lull: $(cat "$tmp/row.json")"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["state"] == "completed", m
assert m["lull_reason"].startswith("lull after"), m
assert m["lull_wait_ms"] >= 2000, m
EOF
ok "io_lull 1m: held while the agent reported 100 MiB/s, started when it dropped ($(py "$tmp/row.json" 'd["lull_reason"]'))"

echo 104857600 >"$tmp/a8.rate"
peer a8 --quiesce ok --rate-file "$tmp/a8.rate"
wait_for 10 "agent of a8 connected" agent_connected a8
busy8() { ctl --json guest show a8 >"$tmp/gs.json" 2>/dev/null &&
	[ "$(py "$tmp/gs.json" '(d["agent"]["write_bps"] or 0) > 1e6')" = True ]; }
wait_for 10 "agent of a8 reporting 100 MiB/s" busy8
id=$(migrate_id a8 --io-lull 1m --io-lull-wait 1s)
wait_final "$id" 20
row "$id"
python3 - "$tmp/row.json" <<'EOF' || fail "io_lull gave up: $(cat "$tmp/row.json")"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["state"] == "completed", m
assert m["lull_reason"].startswith("gave up after"), m
assert m["lull_wait_ms"] >= 1000, m
EOF
ok "io_lull with io_lull_wait 1s and the burst going on: gave up and started ($(py "$tmp/row.json" 'd["lull_reason"]'))"

# ---- malformed agent messages; another guest unaffected ----

peer bad --malformed --no-hello
peer a9 --quiesce late --late-ms 200
wait_for 10 "agent of a9 connected" agent_connected a9
id=$(migrate_id a9 --quiesce required)
malformed_done() { [ -f "$tmp/bad.log" ] && grep -q malformed_done "$tmp/bad.log"; }
wait_for 60 "malformed messages answered" malformed_done
python3 - "$tmp/bad.log" <<'EOF' || fail "malformed messages (above)"
import json, sys
words = ["JSON", "object", '"v"', '"v"', "type", "unknown type", "guest name", "write_bps",
         "write_bps", "reply", "longer than", "bytes", "several frames"]
answers = [json.loads(l)["msg"] for l in open(sys.argv[1])]
answers = [a for a in answers if "answer_to" in a]
if len(answers) != len(words):
    sys.exit("expected %d answers, got %d: %s" % (len(words), len(answers), answers))
for a, w in zip(answers, words):
    ans = a["answer"]
    if not ans or ans.get("type") != "error" or w.lower() not in ans.get("error", "").lower():
        sys.exit("%r: expected an error naming %r, got %r" % (a["answer_to"], w, ans))
EOF
wait_final "$id" 20
row "$id"
[ "$(py "$tmp/row.json" 'd["state"]')" = completed ] && [ "$(py "$tmp/row.json" 'd["quiesce"]')" = ok ] ||
	fail "a9 during the malformed messages: expected completed with quiesce ok, got $(cat "$tmp/row.json")"
ctl status >/dev/null 2>&1 || fail "migd stopped answering after malformed agent messages"
grep -q 'agent: bad message' "$tmp/migd.log" || fail "migd's log: no line naming a bad agent message"
ok "13 malformed agent messages each answered with an error naming the problem; a9's quiesced migration completed meanwhile"

# ---- agents listed; gone after 3 s ----

ctl_json "$tmp/agents.json" agent list
[ "$(py "$tmp/agents.json" 'sorted(a["guest"] for a in d if a["connected"])')" = \
	'["a1", "a4", "a5", "a6", "a7", "a8", "a9", "b1", "b2", "bad"]' ] ||
	fail "agent list: expected 10 connected agents, got $(py "$tmp/agents.json" '[(a["guest"], a["connected"]) for a in d]')"
kill "$peer_a1"
gone() { ! agent_connected a1; }
wait_for 10 "agent of a1 gone after it stopped" gone
ok "agent list shows the 10 agents (bad too, known by its activity reports); a1's agent is gone within seconds of stopping"

# ---- kill -9 mid-quiesce, restart: the resume still comes ----

peer c1 --quiesce never
ctl guest add c1 --host n1 --memory 1g >/dev/null 2>"$tmp/err" || fail "guest add c1: $(cat "$tmp/err")"
wait_for 10 "agent of c1 connected" agent_connected c1
id=$(migrate_id c1 --quiesce required --quiesce-deadline 30s)
quiescing() {
	ctl --json migration show "$id" >"$tmp/ms.json" 2>/dev/null &&
		[ "$(py "$tmp/ms.json" 'd["quiesce_ns"] is not None')" = True ]
}
wait_for 10 "migration $id quiescing" quiescing
got_quiesce() { [ "$(count_msgs c1 quiesce)" = 1 ]; }
wait_for 10 "agent of c1 got the quiesce" got_quiesce
kill -9 "$migd_pid"
wait "$migd_pid" 2>/dev/null
migd_pid=
start_migd
resumed() { [ "$(count_msgs c1 resume)" -ge 1 ]; }
wait_for 15 "a resume for c1 after the restart" resumed
recorded() {
	ctl --json migration show "$id" >"$tmp/ms.json" 2>/dev/null &&
		py "$tmp/ms.json" 'd["resume"] or ""' | grep -q "after a restart"
}
wait_for 10 "the row of $id to record the resume" recorded
row "$id"
[ "$(py "$tmp/row.json" 'd["state"]')" = failed ] && [ "$(py "$tmp/row.json" 'd["reconciled"]')" = True ] ||
	fail "migration $id after the restart: expected failed and reconciled, got $(cat "$tmp/row.json")"
ok "migd killed with SIGKILL mid-quiesce and restarted: $id reconciled, c1's agent resumed ($(py "$tmp/row.json" 'd["resume"]'))"

# ---- knobs of a policy; settings checked ----

ctl policy add interval pq --every 1m --guests a2 --count 1 --quiesce off --io-lull 5m/s \
	--io-lull-wait 2s --quiesce-deadline 750ms >/dev/null 2>"$tmp/err" ||
	fail "policy add with knobs: $(cat "$tmp/err")"
ctl_json "$tmp/pq.json" policy show pq
[ "$(py "$tmp/pq.json" '[d["quiesce"], d["io_lull_bps"], d["io_lull_wait_s"], d["quiesce_deadline_s"]]')" = \
	'["off", 5242880, 2.0, 0.75]' ] || fail "policy show pq: knobs not kept: $(cat "$tmp/pq.json")"
pq_ran() {
	ctl --json history --policy pq >"$tmp/pqh.json" 2>/dev/null &&
		[ "$(py "$tmp/pqh.json" 'len(d)')" -ge 1 ]
}
wait_for 30 "policy pq to migrate a2" pq_ran
ctl policy rm pq >/dev/null 2>&1
[ "$(py "$tmp/pqh.json" '[d[0]["quiesce"], d[0]["knobs"]["quiesce"], d[0]["knobs"]["io_lull_bps"], d[0]["knobs"]["quiesce_deadline_ms"]]')" = \
	'["off", "off", 5242880, 750]' ] ||
	fail "policy pq's migration: expected its knobs, got $(cat "$tmp/pqh.json")"
expect_usage() { # WORD ARGS...: migctl exits 2 naming WORD
	word=$1
	shift
	ctl "$@" >/dev/null 2>"$tmp/err"
	rc=$?
	[ $rc -eq 2 ] && grep -qF -- "$word" "$tmp/err" ||
		fail "migctl $*: expected exit 2 naming $word, got $rc: $(cat "$tmp/err")"
}
expect_usage sometimes migrate a2 --quiesce sometimes
expect_usage fast migrate a2 --io-lull fast
expect_usage later policy add interval px --every 1m --guests all --on-quiesce-miss later
printf '[agent]\nlisten = tcp://127.0.0.1:7710\nquiesce = maybe\n' >"$tmp/bad.conf"
"$MIGD" -c "$tmp/bad.conf" -n >/dev/null 2>"$tmp/err" && fail "migd -n accepted quiesce = maybe"
grep -q 'maybe' "$tmp/err" || fail "migd -n: expected the message to name \"maybe\": $(cat "$tmp/err")"
printf '[agent]\nlisten = tcp://127.0.0.1:7710\nquiesce = required\nio_lull = 10m\n' >"$tmp/good.conf"
"$MIGD" -c "$tmp/good.conf" --dump-config >"$tmp/dump.conf" 2>"$tmp/err" ||
	fail "migd --dump-config with [agent]: $(cat "$tmp/err")"
grep -q '^quiesce = required' "$tmp/dump.conf" && grep -q '^io_lull = 10485760' "$tmp/dump.conf" ||
	fail "migd --dump-config: expected the [agent] settings, got $(cat "$tmp/dump.conf")"
ok "a policy's knobs are kept and given to its migrations; bad knobs refused by migctl and migd.conf naming the value"

# ---- report ----

ctl_json "$tmp/report.json" report
python3 - "$tmp/report.json" <<'EOF' || fail "report --json: $(cat "$tmp/report.json")"
import json, sys
o = json.load(open(sys.argv[1]))["overall"]
q = o["quiesce_outcomes"]
assert q.get("ok", 0) >= 3 and q.get("missed", 0) >= 2 and q.get("no-agent", 0) >= 2, q
assert q.get("error", 0) >= 1, q
assert o["quiesce_ms"]["mean"] is not None and o["quiesce_ms"]["p99"] is not None, o
assert o["lull_gave_up"] == 1, o
EOF
ctl report >"$tmp/report.txt" 2>"$tmp/err" || fail "report: $(cat "$tmp/err")"
grep -q "QUIESCE" "$tmp/report.txt" || fail "report: expected a quiesce table, got $(cat "$tmp/report.txt")"
ok "report: quiesce outcomes $(py "$tmp/report.json" 'd["overall"]["quiesce_outcomes"]'), quiesce p99 $(py "$tmp/report.json" 'd["overall"]["quiesce_ms"]["p99"]') ms"

stop_pid "$migd_pid" # a clean stop, so a sanitizer build reports leaks too
migd_pid=
migd_done test_migd_agent
