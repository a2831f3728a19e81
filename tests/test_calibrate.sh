#!/bin/sh
# test_calibrate.sh: the cost model fitted from a real migd's history.
#
# A migd on the sim backend (--time-scale 100) with hosts of known link
# rates (n1, n2 at 1 Gbit/s, n3 at 400 Mbit/s) and guests of known memory
# and dirty rates runs migrations one at a time; history and migration
# show carry each one's link_bps, dirty_rate_bps, ram_bytes; `calibrate
# --json` recovers every direction's link rate and every guest's dirty
# rate within 10%; `predict` on that history is within 10% of the total the
# sim then measures for the same migration, and on a guest with no history
# it falls back to the guest's own sim parameters; --policy and --since
# select; bad arguments exit 1 or 2 naming the value. Then the sim twin:
# the commands `calibrate` prints build a second sim migd whose migration
# of a guest costs what the history's median says, within 10%.
#
# Env: MIGD and MIGCTL name the programs under test. Exit 77 (skip) without
# python3, used to read the JSON.
set -u
. "$(dirname "$0")/lib-migd.sh"

twin_pid=
cleanup() {
	stop_pid "$twin_pid"
	migd_cleanup
}

skip_without python3 "to read migctl's JSON"
migd_setup test_calibrate

# migrate_wait GUEST HOST: one migration to its end, its row in $tmp/m.json
migrate_wait() {
	ctl_json "$tmp/m.json" migrate "$1" --to "$2" --wait
	[ "$(py "$tmp/m.json" 'd["state"]')" = completed ] ||
		fail "migrate $1 --to $2: expected completed, got $(cat "$tmp/m.json")"
}

run_migd 25 --time-scale 100
ok "migd (sim, time scale 100) answers on $endpoint"

ctl host add n1 --uri "sim:///n1?link=1gbit" >/dev/null 2>"$tmp/err" || fail "host add n1: $(cat "$tmp/err")"
ctl host add n2 --uri "sim:///n2?link=1gbit" >/dev/null 2>"$tmp/err" || fail "host add n2: $(cat "$tmp/err")"
ctl host add n3 --uri "sim:///n3?link=400mbit" >/dev/null 2>"$tmp/err" || fail "host add n3: $(cat "$tmp/err")"
ctl guest add g1 --host n1 --memory 2g --dirty-rate 16m/s >/dev/null 2>"$tmp/err" || fail "guest add g1: $(cat "$tmp/err")"
ctl guest add g2 --host n2 --memory 1g --dirty-rate 40m/s >/dev/null 2>"$tmp/err" || fail "guest add g2: $(cat "$tmp/err")"
ctl guest add g3 --host n3 --memory 512m --dirty-rate 4m/s >/dev/null 2>"$tmp/err" || fail "guest add g3: $(cat "$tmp/err")"
ok "hosts n1, n2 (1 Gbit/s), n3 (400 Mbit/s); guests g1 2g at 16m/s, g2 1g at 40m/s, g3 512m at 4m/s"

ctl calibrate --json >"$tmp/empty.json" 2>"$tmp/err" || fail "calibrate with no history: $(cat "$tmp/err")"
[ "$(py "$tmp/empty.json" 'd["migrations"]')" = 0 ] ||
	fail "calibrate with no history: expected 0 migrations, got $(cat "$tmp/empty.json")"
ok "calibrate with no history: an empty model"

migrate_wait g1 n2
migrate_wait g1 n1
migrate_wait g1 n2
migrate_wait g2 n1
migrate_wait g2 n2
migrate_wait g3 n1
migrate_wait g3 n3
ok "7 migrations, one at a time"

ctl_json "$tmp/hist.json" history
python3 - "$tmp/hist.json" <<'EOF' || fail "history figures (above): $(cat "$tmp/hist.json")"
import json, sys
mem = {"g1": 2 << 30, "g2": 1 << 30, "g3": 512 << 20}
dirty = {"g1": 16 << 20, "g2": 40 << 20, "g3": 4 << 20}
for m in json.load(open(sys.argv[1])):
    for k in ("link_bps", "dirty_rate_bps", "ram_bytes", "setup_ms"):
        assert k in m, ("no", k, m)
    assert m["link_bps"] > 0, m
    assert m["ram_bytes"] == mem[m["guest"]], m
    assert m["dirty_rate_bps"] == dirty[m["guest"]], m
EOF
id=$(py "$tmp/m.json" 'd["id"]')
ctl_json "$tmp/show.json" migration show "$id"
[ "$(py "$tmp/show.json" 'd["link_bps"] > 0 and d["ram_bytes"] == 512 << 20')" = True ] ||
	fail "migration show $id: expected link_bps and ram_bytes, got $(cat "$tmp/show.json")"
ok "history and migration show carry link_bps, dirty_rate_bps, ram_bytes, setup_ms"

ctl_json "$tmp/cal.json" calibrate
python3 - "$tmp/cal.json" <<'EOF' || fail "calibrate --json (above): $(cat "$tmp/cal.json")"
import json, sys
c = json.load(open(sys.argv[1]))
assert set(c) >= {"migrations", "link_bps", "links", "guests", "switchover_ms", "sim"}, c.keys()
assert c["migrations"] == 7, c["migrations"]
gbit, slow = 125e6, 50e6
def near(got, want, what):
    if abs(got - want) > 0.10 * want:
        sys.exit("%s: %s, expected %s within 10%%" % (what, got, want))
near(c["link_bps"], gbit, "median link rate")
truth = {("n1", "n2"): gbit, ("n2", "n1"): gbit, ("n3", "n1"): slow, ("n1", "n3"): slow}
seen = {(l["src"], l["dst"]): l for l in c["links"]}
assert set(seen) == set(truth), sorted(seen)
for k, want in truth.items():
    near(seen[k]["link_bps"], want, "link %s -> %s" % k)
assert seen[("n1", "n2")]["migrations"] == 3, seen
dirty = {"g1": 16 << 20, "g2": 40 << 20, "g3": 4 << 20}
guests = {g["name"]: g for g in c["guests"]}
for name, want in dirty.items():
    g = guests[name]
    near(g["dirty_rate_bps"], want, "dirty rate of " + name)
    assert set(g) >= {"name", "memory_bytes", "ram_bytes", "dirty_rate_bps", "migrations",
                      "total_ms", "downtime_ms"}, g
assert guests["g1"]["migrations"] == 3 and guests["g1"]["memory_bytes"] == 2 << 30, guests
near(c["switchover_ms"], 10, "switch-over (the sim's 10 ms)")
hosts = {h["name"]: h["uri"] for h in c["sim"]["hosts"]}
assert hosts["n3"] == "sim:///n3?link=400000000bit", hosts
assert hosts["n1"] == "sim:///n1?link=1000000000bit", hosts
EOF
ok "calibrate --json: links and dirty rates within 10% of the sim's, switch-over 10 ms"

# ---- predict, then measure ----

ctl_json "$tmp/pred.json" predict g1 --to n1
[ "$(py "$tmp/pred.json" 'd["model"]')" = history ] ||
	fail "predict g1: expected the calibrated model, got $(cat "$tmp/pred.json")"
python3 - "$tmp/pred.json" <<'EOF' || fail "predict g1 --to n1: keys: $(cat "$tmp/pred.json")"
import json, sys
p = json.load(open(sys.argv[1]))
assert set(p) >= {"guest", "src", "dst", "total_ms", "downtime_ms", "bytes", "rounds",
                  "state"}, p
assert (p["guest"], p["src"], p["dst"], p["state"]) == ("g1", "n2", "n1", "completed"), p
EOF
migrate_wait g1 n1
python3 - "$tmp/pred.json" "$tmp/m.json" <<'EOF' || fail "predict g1 vs measured (above)"
import json, sys
p, m = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
for k in ("total_ms", "downtime_ms", "bytes"):
    if abs(p[k] - m[k]) > 0.10 * m[k]:
        sys.exit("%s: predicted %s, measured %s" % (k, p[k], m[k]))
print("   predicted total %.2f s, measured %.2f s" % (p["total_ms"] / 1e3, m["total_ms"] / 1e3))
EOF
ok "predict g1 --to n1 within 10% of the sim's measured total, downtime and bytes"

ctl guest add g4 --host n1 --memory 3g --dirty-rate 8m/s >/dev/null 2>"$tmp/err" || fail "guest add g4: $(cat "$tmp/err")"
ctl_json "$tmp/pred4.json" predict g4 --to n3
[ "$(py "$tmp/pred4.json" 'd["model"]')" = sim ] ||
	fail "predict g4 (no history): expected the guest's own sim model, got $(cat "$tmp/pred4.json")"
migrate_wait g4 n3
python3 - "$tmp/pred4.json" "$tmp/m.json" <<'EOF' || fail "predict g4 vs measured (above)"
import json, sys
p, m = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
if abs(p["total_ms"] - m["total_ms"]) > 0.10 * m["total_ms"]:
    sys.exit("total: predicted %s, measured %s" % (p["total_ms"], m["total_ms"]))
EOF
ok "predict of a guest with no history uses its sim parameters, within 10% of the measured"

ctl predict g2 --to n1 >"$tmp/pred.txt" 2>"$tmp/err" || fail "predict (text): $(cat "$tmp/err")"
grep -q '^total: ' "$tmp/pred.txt" && grep -q '^rounds: ' "$tmp/pred.txt" ||
	fail "predict (text): expected total and rounds lines, got $(cat "$tmp/pred.txt")"
ok "predict prints a readable summary"

# ---- selection and bad arguments ----

ctl_json "$tmp/pol.json" calibrate --policy nosuch
[ "$(py "$tmp/pol.json" 'd["migrations"]')" = 0 ] ||
	fail "calibrate --policy nosuch: expected 0 migrations, got $(cat "$tmp/pol.json")"
ctl_json "$tmp/since.json" calibrate --since 1d
[ "$(py "$tmp/since.json" 'd["migrations"]')" = 9 ] ||
	fail "calibrate --since 1d: expected all 9 migrations, got $(cat "$tmp/since.json")"
ok "calibrate --policy and --since select the rows"

expect_exit 2 nonsense calibrate --since nonsense
expect_exit 2 extra calibrate extra
expect_exit 1 nosuch predict nosuch --to n1
expect_exit 1 nohost predict g1 --to nohost
expect_exit 1 n1 predict g1 --to n1
expect_exit 2 --to predict g1
expect_exit 2 GUEST predict --to n1
ok "bad arguments: exit 2 for usage, 1 for refusals, each naming the value"

# ---- the sim twin ----

ctl calibrate >"$tmp/cal.txt" 2>"$tmp/err" || fail "calibrate (text): $(cat "$tmp/err")"
for word in 'link rate:' 'switch-over:' GUEST 'migctl host add n3' 'migctl guest add g1'; do
	grep -qF -- "$word" "$tmp/cal.txt" || fail "calibrate (text): no \"$word\" in $(cat "$tmp/cal.txt")"
done
twin_port=$(free_port) || fail "no free port pair for the twin"
mkdir -p "$tmp/twin"
"$MIGD" --db "$tmp/twin/state.db" --listen "tcp://127.0.0.1:$twin_port" --time-scale 100 \
	>>"$tmp/twin/migd.log" 2>&1 &
twin_pid=$!
twin() { "$MIGCTL" --connect "tcp://127.0.0.1:$twin_port" --timeout 5000 "$@"; }
wait_for 20 "the twin migd answering" twin status
grep '^  migctl ' "$tmp/cal.txt" | sed 's/^  migctl //' >"$tmp/twin/cmds"
while read -r line; do
	eval "twin $line" >/dev/null 2>"$tmp/err" || fail "twin: migctl $line: $(cat "$tmp/err")"
done <"$tmp/twin/cmds"
g2_host=$(twin --json guest show g2 | python3 -c 'import json, sys; print(json.load(sys.stdin)["host"])')
[ "$g2_host" = n2 ] || fail "twin: g2 expected on n2 (where its last migration left it), on $g2_host"
twin --json migrate g2 --to n1 --wait >"$tmp/twin/m.json" 2>"$tmp/err" || fail "twin: migrate g2: $(cat "$tmp/err")"
python3 - "$tmp/twin/m.json" "$tmp/cal.json" <<'EOF' || fail "twin vs history (above)"
import json, sys
m, c = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
want = [g for g in c["guests"] if g["name"] == "g2"][0]["total_ms"]
if m["state"] != "completed" or abs(m["total_ms"] - want) > 0.10 * want:
    sys.exit("twin migrated g2 in %s ms (%s), the history's median is %s ms"
             % (m["total_ms"], m["state"], want))
EOF
ok "the sim twin built from calibrate's commands migrates g2 as the history says, within 10%"
stop_pid "$twin_pid"
twin_pid=
grep -qE 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer' "$tmp/twin/migd.log" &&
	fail "sanitizer report in the twin migd's log: $(cat "$tmp/twin/migd.log")"

migd_done test_calibrate
