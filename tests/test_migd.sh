#!/bin/sh
# test_migd.sh: a real migd on the sim backend, driven by the real migctl.
#
# One migd on a free loopback port with its database in a temporary
# directory, at --time-scale 60 (one real second is a virtual minute):
# hosts and guests added; refused requests and usage errors give exit 1 and
# 2 with messages naming the bad value, an unreachable migd exit 3;
# `migrate --wait` moves a guest; `evacuate --wait` empties a host and keeps
# the two ranks of a job on different hosts; `watch` prints events; an
# interval policy runs for several periods and its starts within a period
# are at least the stagger apart in the recorded (virtual) timestamps;
# `report --json` counts what history holds; history and the event log read
# in pages give what they hold whole, in order; then migd is killed with
# SIGKILL during a long migration and restarted on the same database: the
# migration row is finished with a reason, the guest is on exactly one host
# and no history row is lost.
#
# Env: MIGD and MIGCTL name the programs under test. Each check prints a
# line as it passes; the first failure prints FAIL with what was expected
# and what came back (and the end of migd's log), and exits 1. Exit 77
# (skip) when python3, used to read the JSON, is missing.
set -u
. "$(dirname "$0")/lib-migd.sh"

skip_without python3 "to read migctl's JSON"
migd_setup test_migd

# ---- helpers ----

start_migd() {
	run_migd 25 --time-scale 60
}

# ---- a cluster ----

start_migd
ok "migd answers on $endpoint"

for n in n1 n2 n3; do
	ctl host add $n --uri "sim:///$n?link=1gbit" --memory 64g >/dev/null 2>"$tmp/err" ||
		fail "host add $n: $(cat "$tmp/err")"
done
ctl_json "$tmp/hosts.json" host list
[ "$(py "$tmp/hosts.json" 'sorted(h["name"] for h in d)')" = '["n1", "n2", "n3"]' ] ||
	fail "host list: expected n1 n2 n3, got $(cat "$tmp/hosts.json")"
ok "3 sim hosts added and listed"

add_guest() { # NAME HOST SIZE [--job J --rank R]
	name=$1
	host=$2
	size=$3
	shift 3
	ctl guest add "$name" --host "$host" --memory "$size" --dirty-rate 16m/s "$@" \
		>/dev/null 2>"$tmp/err" || fail "guest add $name: $(cat "$tmp/err")"
}
add_guest g1 n1 1g --job j1 --rank 0
add_guest g2 n2 1g --job j1 --rank 1
add_guest g3 n1 1.5g
add_guest g4 n1 512m
add_guest g5 n2 1g
add_guest g6 n3 1g
ctl_json "$tmp/guests.json" guest list
[ "$(py "$tmp/guests.json" 'len(d)')" = 6 ] ||
	fail "guest list: expected 6 guests, got $(cat "$tmp/guests.json")"
[ "$(py "$tmp/guests.json" '[g["memory_bytes"] for g in d if g["name"] == "g3"][0]')" = \
	$((3 * 512 * 1024 * 1024)) ] || fail "guest g3: expected --memory 1.5g as 1610612736 bytes"
ctl_json "$tmp/j1.json" guest list --job j1
[ "$(py "$tmp/j1.json" 'sorted((g["name"], g["rank"]) for g in d)')" = \
	'[["g1", 0], ["g2", 1]]' ] || fail "guest list --job j1: got $(cat "$tmp/j1.json")"
ok "6 guests added (two ranks of job j1), listed, filtered by job"
ctl_json "$tmp/p1.json" guest list --limit 4
ctl_json "$tmp/p2.json" guest list --limit 4 --after "$(py "$tmp/p1.json" 'd[-1]["name"]')"
[ "$(py "$tmp/p1.json" '[g["name"] for g in d]') $(py "$tmp/p2.json" '[g["name"] for g in d]')" = \
	'["g1", "g2", "g3", "g4"] ["g5", "g6"]' ] ||
	fail "guest list in pages of 4: got $(cat "$tmp/p1.json") then $(cat "$tmp/p2.json")"
ctl_json "$tmp/hp.json" host list --limit 1 --after n1
[ "$(py "$tmp/hp.json" '[h["name"] for h in d]')" = '["n2"]' ] ||
	fail "host list --limit 1 --after n1: got $(cat "$tmp/hp.json")"
expect_exit 2 '--limit "0"' guest list --limit 0
expect_exit 2 "--after needs --limit" guest list --after g1
ok "guest and host lists in pages (--limit, --after), bad paging refused"

# ---- many at once: --from FILE (words per line, or JSON) ----
cat >"$tmp/hosts.txt" <<'EOF'
# two more hosts, and one that exists already
n4 --uri "sim:///n4?link=1gbit" --memory 64g
n5 --uri sim:///n5?link=1gbit --memory 64g --max-outbound 1

n1 --uri sim:///n1?link=1gbit
EOF
ctl host add --from "$tmp/hosts.txt" >"$tmp/out" 2>"$tmp/err"
[ $? = 1 ] && grep -qx "2 hosts added" "$tmp/out" &&
	grep -q "hosts.txt:5: n1: host \"n1\" already exists" "$tmp/err" ||
	fail "host add --from: expected 2 added and line 5 refused: $(cat "$tmp/out" "$tmp/err")"
ctl_json "$tmp/n5.json" host show n5
[ "$(py "$tmp/n5.json" 'd["max_outbound"]')" = 1 ] || fail "n5 from the file: $(cat "$tmp/n5.json")"
printf '%s\n' '[{"name": "f1", "host": "n4", "memory_bytes": 1073741824},' \
	'{"name": "f2", "host": "n5", "memory_bytes": 1073741824, "job": "jf", "rank": 0}]' |
	ctl guest add --from - >"$tmp/out" 2>"$tmp/err" && grep -qx "2 guests added" "$tmp/out" ||
	fail "guest add --from - (JSON): $(cat "$tmp/out" "$tmp/err")"
printf 'f3 --host n4 --memory 1g\nf4 --host n4 --memory 4x\n' >"$tmp/guests.txt"
expect_exit 2 'guests.txt:2: --memory "4x"' guest add --from "$tmp/guests.txt"
ctl guest show f3 >/dev/null 2>&1 && fail "guest add --from with a bad line added f3 anyway"
expect_exit 2 "--from FILE takes no NAME" guest add f9 --from "$tmp/guests.txt"
ok "hosts and guests added from files (--from): a bad line refuses the file, a refused item is named by its line"

# ---- exit codes and messages ----

expect_exit 1 n1 host add n1 --uri "sim:///n1?link=1gbit"
expect_exit 1 nohost guest add gx --host nohost --memory 1g
expect_exit 2 4x guest add gx --host n1 --memory 4x
expect_exit 2 --frobnicate host list --frobnicate
expect_exit 2 --rank guest add gx --host n1 --memory 1g --job j1
expect_exit 1 999999 abort 999999
ok "refused requests exit 1 naming the value; usage errors exit 2 naming the option"

dead=$(free_port) || fail "no second free port"
"$MIGCTL" --connect "tcp://127.0.0.1:$dead" --timeout 300 status >/dev/null 2>"$tmp/err"
got=$?
[ $got -eq 3 ] || fail "status against nothing: expected exit 3, got $got"
grep -q "no answer from migd at tcp://127.0.0.1:$dead" "$tmp/err" ||
	fail "status against nothing: expected \"no answer from migd at ...\", got $(cat "$tmp/err")"
ok "no migd at the endpoint: exit 3, \"$(cut -c1-70 "$tmp/err")...\""

# ---- migrate --wait, with watch listening ----

ctl watch --json --count 3 >"$tmp/watch.out" 2>"$tmp/watch.err" &
watch_pid=$!
sleep 1 # let the subscription settle: PUB drops what is sent before it

ctl_json "$tmp/m.json" migrate g3 --wait
[ "$(py "$tmp/m.json" 'd["state"]')" = completed ] ||
	fail "migrate g3 --wait: expected state completed, got $(cat "$tmp/m.json")"
dst=$(py "$tmp/m.json" 'd["dst"]')
ctl_json "$tmp/g3.json" guest show g3
if [ "$(py "$tmp/g3.json" 'd["host"]')" != "$dst" ] || [ "$dst" = n1 ]; then
	fail "guest g3: expected on $dst (not n1) after migrating, got $(cat "$tmp/g3.json")"
fi
ok "migrate g3 --wait: completed, g3 now on $dst"

i=0
while kill -0 "$watch_pid" 2>/dev/null && [ $i -lt 50 ]; do
	sleep 0.2
	i=$((i + 1))
done
kill -0 "$watch_pid" 2>/dev/null && fail "watch --count 3 still running after a migration"
wait "$watch_pid"
rc=$?
watch_pid=
[ $rc -eq 0 ] || fail "watch --count 3: exit $rc: $(cat "$tmp/watch.err")"
python3 -c 'import json, sys
events = [json.loads(l) for l in open(sys.argv[1])]
assert len(events) == 3, events
assert all(e.get("type", "").startswith(("migration.", "guest.", "host.", "policy."))
           for e in events), events' "$tmp/watch.out" ||
	fail "watch --json --count 3: expected 3 event lines, got $(cat "$tmp/watch.out")"
ok "watch --json --count 3 printed 3 events: $(python3 -c 'import json, sys
print(" ".join(json.loads(l)["type"] for l in open(sys.argv[1])))' "$tmp/watch.out")"

# ---- evacuate --wait ----

ctl_json "$tmp/evac.json" evacuate n1 --wait
[ "$(py "$tmp/evac.json" 'len(d)')" -ge 2 ] ||
	fail "evacuate n1: expected the migrations of g1 and g4, got $(cat "$tmp/evac.json")"
[ "$(py "$tmp/evac.json" 'all(m["state"] == "completed" for m in d)')" = True ] ||
	fail "evacuate n1 --wait: expected every migration completed, got $(cat "$tmp/evac.json")"
ctl_json "$tmp/n1.json" guest list --host n1
[ "$(py "$tmp/n1.json" 'len(d)')" = 0 ] ||
	fail "after evacuate n1: expected no guests on n1, got $(cat "$tmp/n1.json")"
ctl_json "$tmp/j1.json" guest list --job j1
ranks=$(py "$tmp/j1.json" 'sorted(g["host"] for g in d)')
[ "$(py "$tmp/j1.json" 'len(set(g["host"] for g in d))')" = 2 ] ||
	fail "after evacuate n1: expected ranks of j1 on different hosts, got $ranks"
ok "evacuate n1 --wait: n1 empty, ranks of j1 on $ranks"

# ---- selectors: globs and lists for migrate and evacuate, and policies ----

ctl_json "$tmp/sel.json" migrate 'f*' --wait
[ "$(py "$tmp/sel.json" 'sorted((m["guest"], m["state"]) for m in d)')" = \
'[["f1", "completed"], ["f2", "completed"]]' ] ||
	fail "migrate 'f*' --wait: expected f1 and f2 completed, got $(cat "$tmp/sel.json")"
expect_exit 1 'GUEST "zz*" selects no guest' migrate 'zz*'
expect_exit 2 '"x y" is not all' migrate 'f1,x y'
ctl_json "$tmp/sel.json" evacuate 'n[45]' --wait
ctl_json "$tmp/n45.json" guest list
[ "$(py "$tmp/n45.json" '[g["name"] for g in d if g["host"] in ("n4", "n5")]')" = "[]" ] ||
	fail "evacuate 'n[45]' --wait: guests left on n4 or n5: $(cat "$tmp/n45.json")"
expect_exit 1 'HOST "q*" matches no host' evacuate 'q*'
expect_exit 1 '"bad name" is not all' policy add interval bad --every 1h --guests 'g1,bad name'
ok "migrate 'f*' and evacuate 'n[45]' select by glob; no match and bad terms refused"

# ---- an interval policy over several periods ----

EVERY_S=120
STAGGER_S=20
ctl policy add interval p1 --every 2m --stagger 20s --guests g3,g4,g5,g6 >/dev/null \
	2>"$tmp/err" || fail "policy add interval p1: $(cat "$tmp/err")"
ctl policy add interval p2 --every 1h --guests all >/dev/null 2>"$tmp/err" ||
	fail "policy add interval p2: $(cat "$tmp/err")"
ctl policy pause p2 >/dev/null 2>"$tmp/err" || fail "policy pause p2: $(cat "$tmp/err")"
ctl_json "$tmp/pol.json" policy list
[ "$(py "$tmp/pol.json" 'sorted(p["name"] for p in d)')" = '["p1", "p2"]' ] ||
	fail "policy list: expected p1 and p2, got $(cat "$tmp/pol.json")"
ok "interval policies p1 (2m, stagger 20s, 4 guests) and p2 (paused) added"

p1_count() {
	ctl --json history --policy p1 >"$tmp/p1.json" 2>/dev/null &&
		[ "$(py "$tmp/p1.json" 'len(d)')" -ge 12 ]
}
# 3 periods of 2 virtual minutes are 6 real seconds; allow for slow machines
wait_for 60 "interval policy p1: 12 finished migrations (3 periods)" p1_count
ctl policy pause p1 >/dev/null 2>"$tmp/err" || fail "policy pause p1: $(cat "$tmp/err")"
queue_empty() {
	ctl --json queue >"$tmp/queue.json" 2>/dev/null &&
		[ "$(py "$tmp/queue.json" 'len(d)')" = 0 ]
}
wait_for 30 "queue empty after pausing p1" queue_empty
ctl --json history --policy p1 >"$tmp/p1.json" 2>"$tmp/err" ||
	fail "history --policy p1: $(cat "$tmp/err")"

python3 - "$tmp/p1.json" "$EVERY_S" "$STAGGER_S" <<'EOF' || fail "interval policy timing (above)"
import json, sys
rows = json.load(open(sys.argv[1]))
every, stagger = float(sys.argv[2]) * 1e9, float(sys.argv[3]) * 1e9
slack = 1e6  # 1 ms of rounding in the recorded virtual timestamps
for m in rows:
    if m["src"] == m["dst"]:
        sys.exit("migration %s of p1 went from %s to itself" % (m["id"], m["src"]))
starts = sorted((m["started_ns"], "%s (migration %s)" % (m["guest"], m["id"]))
                for m in rows if m.get("started_ns"))
# a new period where the gap is well past the stagger: within a period the
# 4 starts are >= 20 s apart, between periods the gap is 120 - 3 * 20 = 60 s
periods, cur = [], [starts[0]]
for prev, nxt in zip(starts, starts[1:]):
    if nxt[0] - prev[0] > (stagger + (every - 3 * stagger)) / 2:
        periods.append(cur)
        cur = []
    cur.append(nxt)
periods.append(cur)
full = [p for p in periods if len(p) == 4]
print("   periods (virtual s from the first start, guest):")
for p in periods:
    print("    ", ", ".join("%s at %.1f" % (g.split()[0], (s - starts[0][0]) / 1e9)
                            for s, g in p))
if len(periods) < 3 or len(full) < 2:
    sys.exit("expected >= 3 periods, >= 2 of them with all 4 guests")
for p in periods:
    if len(p) > 4:
        sys.exit("a period started %d migrations, the policy selects 4" % len(p))
    if len(set(g for _, g in p)) != len(p):
        sys.exit("a guest moved twice in one period: %s" % p)
    for a, b in zip(p, p[1:]):
        if b[0] - a[0] < stagger - slack:
            sys.exit("%s started %.3f s after %s in one period: expected >= the "
                     "stagger, %.0f s" % (b[1], (b[0] - a[0]) / 1e9, a[1], stagger / 1e9))
# periods repeat on the policy's grid: the k-th begins near first + k * every
# (a late tick may delay a start, so "near" is within one stagger)
slots = []
for p in periods:
    k = round((p[0][0] - starts[0][0]) / every)
    off = p[0][0] - (starts[0][0] + k * every)
    if abs(off) > stagger or (slots and k <= slots[-1]):
        sys.exit("a period began %.1f s off its slot %d of %.0f s" % (off / 1e9, k, every / 1e9))
    slots.append(k)
EOF
ok "policy p1: >= 3 periods on a 2 min grid, starts within a period >= 20 s apart"

# ---- history and report ----

ctl_json "$tmp/hist.json" history
n_hist=$(py "$tmp/hist.json" 'len(d)')
ctl_json "$tmp/p1.json" history --policy p1
n_p1=$(py "$tmp/p1.json" 'len(d)')
ctl_json "$tmp/report.json" report
python3 - "$tmp/report.json" "$n_hist" "$n_p1" <<'EOF' || fail "report --json: $(cat "$tmp/report.json")"
import json, sys
r = json.load(open(sys.argv[1]))
n_hist, n_p1 = int(sys.argv[2]), int(sys.argv[3])
o, p1 = r["overall"], r["policies"]["p1"]
for s in (o, p1):
    assert s["completed"] + s["failed"] + s["aborted"] == s["count"], s
    assert s["total_s"]["p50"] <= s["total_s"]["p99"], s
    assert s["downtime_ms"]["p50"] <= s["downtime_ms"]["p99"], s
# p1 is paused and the queue empty: nothing finished since history was read
assert o["count"] == n_hist, ("report overall count", o["count"], "history", n_hist)
assert p1["count"] == n_p1, ("report p1 count", p1["count"], "history", n_p1)
EOF
ok "report --json: overall $n_hist, p1 $n_p1, as in history; counts add up"
ctl history --csv >"$tmp/hist.csv" 2>"$tmp/err" || fail "history --csv: $(cat "$tmp/err")"
head -n 1 "$tmp/hist.csv" | grep -q '^id,guest,src,dst,state,' ||
	fail "history --csv: expected a header line, got $(head -n 1 "$tmp/hist.csv")"
ctl report >"$tmp/report.txt" 2>"$tmp/err" || fail "report: $(cat "$tmp/err")"
if ! grep -q '^p1 ' "$tmp/report.txt" || ! grep -q '^(overall) ' "$tmp/report.txt"; then
	fail "report: expected rows p1 and (overall), got $(cat "$tmp/report.txt")"
fi
ok "history --csv and the report table"

# ---- history and the event log in pages ----
hist_ids=$(py "$tmp/hist.json" '[m["id"] for m in d]')
after=0 paged="" n_pages=0
while [ $n_pages -lt 100 ]; do
	ctl_json "$tmp/page.json" history --limit 2 --after "$after"
	ids=$(py "$tmp/page.json" '" ".join(str(m["id"]) for m in d)')
	[ -n "$ids" ] || break
	paged="$paged $ids" after=${ids##* } n_pages=$((n_pages + 1))
done
[ "$(python3 -c 'import sys; print([int(x) for x in sys.argv[1].split()])' "$paged")" = \
	"$hist_ids" ] || fail "history in pages of 2 (--after): got$paged, whole: $hist_ids"
[ $n_pages -ge 2 ] || fail "history: expected several pages of 2, got $n_pages"
expect_exit 1 'no finished migration has that id' history --after 999999
expect_exit 2 '--after "x"' history --after x
ctl_json "$tmp/ev.json" events
python3 - "$tmp/ev.json" <<'EOF2' || fail "events: $(head -c 600 "$tmp/ev.json")"
import json, sys
d = json.load(open(sys.argv[1]))
ids = [e["event_id"] for e in d]
assert ids == sorted(ids) and len(set(ids)) == len(ids) and ids[0] == 1, ids[:10]
types = {e["type"] for e in d}
assert {"host.added", "guest.added", "migration.queued", "migration.completed"} <= types, types
# evacuate 'n[45]' went in one request: both hosts disabled before any guest queued
disabled = [e["event_id"] for e in d if e["type"] == "host.disabled"
            and e["host"]["name"] in ("n4", "n5")]
queued = [e["event_id"] for e in d if e["type"] == "migration.queued"
          and e.get("reason") in ("evacuate n4", "evacuate n5")]
assert len(disabled) == 2 and queued and max(disabled) < min(queued), (disabled, queued)
EOF2
n_ev=$(py "$tmp/ev.json" 'len(d)')
ctl_json "$tmp/ev2.json" events --after 2 --limit 3 --type host.
[ "$(py "$tmp/ev2.json" 'len(d) == 3 and all(e["event_id"] > 2 and
    e["type"].startswith("host.") for e in d)')" = True ] ||
	fail "events --after 2 --limit 3 --type host.: got $(cat "$tmp/ev2.json")"
ctl_json "$tmp/ev3.json" events --after "$(py "$tmp/ev.json" 'd[-1]["event_id"]')" --type host.added
[ "$(py "$tmp/ev3.json" 'len(d)')" = 0 ] || fail "events after the last host.added: $(cat "$tmp/ev3.json")"
ctl events >"$tmp/ev.txt" 2>"$tmp/err" || fail "events: $(cat "$tmp/err")"
[ "$(wc -l <"$tmp/ev.txt")" -ge "$n_ev" ] || fail "events: fewer lines than the $n_ev events"
expect_exit 2 '--after "x"' events --after x
ok "history in $n_pages pages of 2 as whole; the event log ($n_ev events) in order, by type and cursor"
ctl policy rm p1 >/dev/null 2>"$tmp/err" || fail "policy rm p1: $(cat "$tmp/err")"

# ---- malformed requests ----

find_pyzmq
if [ -n "$pyzmq" ]; then
	"$pyzmq" - "$endpoint" <<'EOF' || fail "malformed requests (above)"
import json, sys, zmq
ctx = zmq.Context()
def ask(raw):
    s = ctx.socket(zmq.REQ)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, 5000)
    s.connect(sys.argv[1])
    s.send(raw)
    reply = json.loads(s.recv())
    s.close()
    return reply
for raw, word in ((b"not json at all", "JSON"), (b"[1,2]", "object"),
                  (b'{"v":1}', "cmd"), (b'{"v":99,"cmd":"status"}', "version"),
                  (b'{"v":1,"cmd":"frobnicate"}', "frobnicate"),
                  (b'{"v":1,"cmd":"guest.show","args":{"name":7}}', "name")):
    r = ask(raw)
    if r.get("ok") is not False or word.lower() not in r.get("error", "").lower():
        sys.exit("%r: expected an error naming %r, got %r" % (raw, word, r))
if ask(b'{"v":1,"cmd":"status"}').get("ok") is not True:
    sys.exit("status after malformed requests failed")
EOF
	ok "malformed requests get an error naming what is wrong; migd keeps serving"
else
	echo "skip: malformed requests (no pyzmq here; the daemon's C tests cover them)"
fi

# ---- a guest on its way to a host that is evacuated meanwhile moves on ----

ctl host add dest --uri "sim:///dest?link=300mbit" --memory 64g >/dev/null 2>"$tmp/err" ||
	fail "host add dest: $(cat "$tmp/err")"
add_guest mover n3 4g
ctl_json "$tmp/mover.json" migrate mover --to dest
mover_id=$(py "$tmp/mover.json" 'd["id"]')
mover_running() {
	ctl --json queue >"$tmp/queue.json" 2>/dev/null &&
		[ "$(py "$tmp/queue.json" \
			"[m['state'] for m in d if m['id'] == $mover_id] in (['started'], ['migrating'])")" = True ]
}
wait_for 20 "migration $mover_id of mover to dest running" mover_running
ctl evacuate dest >/dev/null 2>"$tmp/err" || fail "evacuate dest: $(cat "$tmp/err")"
mover_settled() {
	ctl --json queue >"$tmp/queue.json" 2>/dev/null &&
		[ "$(py "$tmp/queue.json" "[m for m in d if m['guest'] == 'mover']")" = "[]" ] &&
		ctl --json guest show mover >"$tmp/mv.json" 2>/dev/null &&
		[ "$(py "$tmp/mv.json" 'd["host"]')" != dest ]
}
wait_for 60 "mover to leave dest after it was evacuated" mover_settled
ctl_json "$tmp/mvh.json" history
[ "$(py "$tmp/mvh.json" "[m['state'] for m in d if m['guest'] == 'mover']")" = \
	'["completed", "completed"]' ] ||
	fail "mover: expected two completed migrations, got $(py "$tmp/mvh.json" "[m['state'] for m in d if m['guest'] == 'mover']")"
ok "a guest arriving on an evacuated host moves on (now on $(py "$tmp/mv.json" 'd["host"]'))"

# ---- kill -9 during a migration, restart, reconcile ----

ctl host add slow --uri "sim:///slow?link=100mbit" --memory 64g >/dev/null 2>"$tmp/err" ||
	fail "host add slow: $(cat "$tmp/err")"
add_guest big slow 16g
ctl_json "$tmp/before.json" history
n_before=$(py "$tmp/before.json" 'len(d)')
ctl_json "$tmp/big.json" migrate big
big_id=$(py "$tmp/big.json" 'd["id"]')

big_running() {
	ctl --json queue >"$tmp/queue.json" 2>/dev/null &&
		[ "$(py "$tmp/queue.json" \
			"[m['state'] for m in d if m['id'] == $big_id] in (['started'], ['migrating'])")" = True ]
}
wait_for 20 "migration $big_id of big (16g over 100mbit) running in queue" big_running
kill -9 "$migd_pid"
wait "$migd_pid" 2>/dev/null
migd_pid=
ok "migd killed with SIGKILL while migration $big_id (big, 16g over 100mbit) was running"

start_migd
ok "migd restarted on the same database"

big_finished() {
	ctl --json history >"$tmp/after.json" 2>/dev/null &&
		[ "$(py "$tmp/after.json" "any(m['id'] == $big_id for m in d)")" = True ]
}
# reconciled at start; or, if migd resumes it, 16g at 100mbit is ~23 real s
wait_for 90 "migration $big_id finished after the restart" big_finished
py "$tmp/after.json" "[m for m in d if m['id'] == $big_id][0]" >"$tmp/bigrow.json"
state=$(py "$tmp/bigrow.json" 'd["state"]')
why=$(py "$tmp/bigrow.json" 'd.get("error") or d.get("reason") or ""')
case "$state" in
completed) ;;
failed)
	[ -n "$why" ] || fail "migration $big_id failed with no reason: $(cat "$tmp/bigrow.json")" ;;
*) fail "migration $big_id: expected completed or failed, got $(cat "$tmp/bigrow.json")" ;;
esac
ok "migration $big_id reconciled: $state${why:+ ($why)}"

ctl_json "$tmp/bigg.json" guest show big
where=$(py "$tmp/bigg.json" 'd["host"]')
expect=$(py "$tmp/bigrow.json" 'd["dst"] if d["state"] == "completed" else d["src"]')
[ "$where" = "$expect" ] ||
	fail "guest big: expected on $expect after a $state migration, got on $where"
holders=0
for h in n1 n2 n3 slow; do
	ctl_json "$tmp/h.json" host show $h
	[ "$(py "$tmp/h.json" '"big" in [g if isinstance(g, str) else g["name"] for g in d["guests"]]')" \
		= True ] && holders=$((holders + 1))
done
[ $holders -eq 1 ] || fail "guest big: expected on exactly 1 host, hosts list it on $holders"
ok "guest big on exactly one host ($where)"

n_after=$(py "$tmp/after.json" 'len(d)')
[ "$n_before" -lt "$n_after" ] ||
	fail "history: $n_before rows before the kill, $n_after after (expected more)"
py "$tmp/before.json" '[m["id"] for m in d]' >"$tmp/ids_before"
python3 -c 'import json, sys
before = set(json.loads(open(sys.argv[1]).read()))
after = set(m["id"] for m in json.load(open(sys.argv[2])))
missing = before - after
sys.exit("rows lost: %s" % sorted(missing) if missing else 0)' "$tmp/ids_before" "$tmp/after.json" ||
	fail "history lost rows across the kill"
ok "history kept every row: $n_before before the kill, $n_after after"

ctl_json "$tmp/p2.json" policy show p2
[ "$(py "$tmp/p2.json" 'd.get("paused") is True or d.get("state") == "paused"')" = True ] ||
	fail "policy p2: expected it to survive the restart paused, got $(cat "$tmp/p2.json")"
ok "policy p2 survived the restart, still paused"

# ---- a list longer than one of migctl's pages (5,000) ----
ctl host add bulk --uri "sim:///bulk?link=1gbit" --memory 100t >/dev/null || fail "host add bulk"
python3 -c 'for i in range(12001): print("b%05d --host bulk --memory 1g" % i)' >"$tmp/bulk.txt"
ctl guest add --from "$tmp/bulk.txt" >"$tmp/out" 2>"$tmp/err" && grep -qx "12001 guests added" "$tmp/out" ||
	fail "guest add --from 12,001 lines: $(cat "$tmp/out" "$tmp/err" | head -5)"
ctl guest list --host bulk >"$tmp/bulk.table" 2>"$tmp/err" || fail "guest list --host bulk: $(cat "$tmp/err")"
python3 - "$tmp/bulk.table" <<'PY' || fail "the table of 12,001 guests in three pages is not one table"
import sys
lines = open(sys.argv[1]).read().splitlines()
assert lines[0].split()[:2] == ["NAME", "HOST"], lines[0]
assert sum(1 for l in lines if l.startswith("NAME")) == 1, "more than one header"
names = [l.split()[0] for l in lines[1:]]
assert names == ["b%05d" % i for i in range(12001)], "rows missing, repeated or out of order"
assert len({l.index(" bulk") for l in lines[1:]}) == 1, "columns do not line up across pages"
PY
ctl guest list --host bulk --json >"$tmp/bulk.json" || fail "guest list --host bulk --json"
[ "$(py "$tmp/bulk.json" 'len(d)')" = 12001 ] || fail "--json of 12,001 guests: $(py "$tmp/bulk.json" 'len(d)') items"
ok "12,001 guests listed across pages: one table under one header, its columns aligned, and one JSON array"

migd_done test_migd
