#!/bin/sh
# test_auth.sh: clients that try to get into a real migd with keys, and
# must fail (auth.h; migd(8) SECURITY).
#
# One migd on the sim backend with --keys-dir (it makes its own key and an
# admin key on first start) and an agent endpoint; real ZeroMQ peers
# (tests/auth_peer.py, tests/agent_peer.py; pyzmq) and the real migctl:
# - a client without CURVE, one with a key not on the allow-list, and one
#   that pinned another server key get no reply, each a log line, and the
#   database is unchanged;
# - a reader's migrate is refused (EACCES, naming the role); an operator's
#   runs; a key removed from the allow-list is refused on its open
#   connection after SIGHUP;
# - a subscriber without a key gets no event (one with a key does), nor
#   one whose key was removed (SIGHUP), from then on;
# - migd does not start on a secret key that others can read (0644), nor
#   on a non-loopback address without keys unless --insecure;
# - bytes read through a TCP relay never show a command in clear (and do
#   show one for a migd without keys: the check can fail);
# - agent A (its guest's key) reporting for guest B is refused; an agent
#   without a key never gets in; A for its own guest is connected, and so
#   is an agent whose key was given at guest add (--agent-key);
# - key files and the database are 0600, the keys dir 0700.
#
# Env: MIGD and MIGCTL name the programs under test. Exit 77 (skip) without
# python3 and pyzmq, as the other agent tests do.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib-migd.sh"

skip_without python3 "to read migctl's JSON"
find_pyzmq
[ -n "$pyzmq" ] || { echo "SKIP: no pyzmq (python3-zmq) for the test peers"; exit 77; }

peer_pids=
cleanup() {
	for p in $peer_pids; do stop_pid "$p"; done
	stop_pid "${migd2_pid:-}"
	migd_cleanup
}
migd_setup test_auth 5
agent_ep="tcp://127.0.0.1:$((port + 2))"
metrics_addr="127.0.0.1:$((port + 4))"
keys=$tmp/keys
export MIGCTL_KEY="$keys/admin.key" # migd.pub beside it is the server key
peer() { "$pyzmq" "$here/auth_peer.py" "$@"; }
mode() { stat -c %a "$1"; }
db_counts() { # migrations and hosts rows, read from the database itself
	"$pyzmq" -c 'import sqlite3, sys
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
print(c.execute("select count(*) from migrations").fetchone()[0],
      c.execute("select count(*) from hosts").fetchone()[0])' "$tmp/state.db"
}
log_has() { grep -qF -- "$1" "$tmp/migd.log"; }

# ---- keys made on first start; modes ----

run_migd 25 --time-scale 60 --keys-dir "$keys" --agent-listen "$agent_ep" \
	--metrics-listen "$metrics_addr"
ok "migd with keys answers migctl --key (admin key made on first start)"
[ "$(mode "$keys")" = 700 ] && [ "$(mode "$keys/migd.key")" = 600 ] &&
	[ "$(mode "$keys/admin.key")" = 600 ] && [ "$(mode "$tmp/state.db")" = 600 ] ||
	fail "modes: keys dir $(mode "$keys"), migd.key $(mode "$keys/migd.key"), admin.key" \
		"$(mode "$keys/admin.key"), state.db $(mode "$tmp/state.db"); expected 700/600/600/600"
ok "keys dir 0700; migd.key, admin.key and the database 0600"

for h in h1 h2; do
	ctl host add $h --uri "sim:///$h?link=1gbit" --memory 64g >/dev/null 2>"$tmp/err" ||
		fail "host add $h: $(cat "$tmp/err")"
done
for g in g1 g2; do
	ctl guest add $g --host h1 --memory 1g >/dev/null 2>"$tmp/err" ||
		fail "guest add $g: $(cat "$tmp/err")"
done
ctl_json "$tmp/g1.json" guest show g1
key_g1=$(py "$tmp/g1.json" 'd.get("agent_key", "")')
[ ${#key_g1} -eq 40 ] && [ "$(mode "$keys/agents/g1.key")" = 600 ] &&
	grep -qF "$key_g1" "$keys/agents/g1.key" ||
	fail "guest g1: expected its agent key recorded and in keys/agents/g1.key (0600), got" \
		"\"$key_g1\", $(ls -l "$keys/agents" 2>&1)"
ok "guest add records a new agent key per guest (keys/agents/g1.key, 0600)"

# ---- users: a reader and an operator on the allow-list ----

"$MIGCTL" keygen --dir "$tmp/users" --role reader alice >/dev/null 2>"$tmp/err" &&
	"$MIGCTL" keygen --dir "$tmp/users" --role operator bob >/dev/null 2>>"$tmp/err" ||
	fail "migctl keygen: $(cat "$tmp/err")"
[ "$(mode "$tmp/users/alice.key")" = 600 ] || fail "alice.key: mode $(mode "$tmp/users/alice.key")"
"$MIGCTL" keygen --dir "$tmp/users" bob >/dev/null 2>"$tmp/err" &&
	fail "keygen over an existing key succeeded"
grep -q "never overwritten" "$tmp/err" || fail "keygen again: $(cat "$tmp/err")"
ok "migctl keygen writes NAME.key 0600 and NAME.pub, and never overwrites a key"
cp "$tmp/users/alice.pub" "$tmp/users/bob.pub" "$keys/clients/"
kill -HUP "$migd_pid"
wait_for 10 "SIGHUP reload" log_has "3 client keys on the allow-list"
peer badkey >"$tmp/users/mallory.key"
peer badkey >"$tmp/users/fake-migd.pub"
chmod 600 "$tmp/users/mallory.key"

# ---- strangers: no reply, a log line, nothing changed ----

before=$(db_counts)
peer request "$endpoint" --timeout 1500 migrate '{"guest": "g1", "to": "h2"}' >"$tmp/out"
[ "$(cat "$tmp/out")" = "no reply" ] || fail "a client without CURVE got: $(cat "$tmp/out")"
wait_for 5 "a log line for the client without CURVE" log_has "does not speak CURVE"
ok "a client without CURVE gets no reply and a log line"

peer request "$endpoint" --key "$tmp/users/mallory.key" --server-key "$keys/migd.pub" \
	--timeout 1500 migrate '{"guest": "g1", "to": "h2"}' >"$tmp/out"
[ "$(cat "$tmp/out")" = "no reply" ] || fail "a key not on the list got: $(cat "$tmp/out")"
mallory=$(sed -n 's/^public-key = "\(.*\)"/\1/p' "$tmp/users/mallory.key")
wait_for 5 "a log line naming the unknown key" log_has "key $mallory is not on the allow-list"
ok "a key not on the allow-list gets no reply and a log line naming it"

peer request "$endpoint" --key "$tmp/users/bob.key" --server-key "$tmp/users/fake-migd.pub" \
	--timeout 1500 migrate '{"guest": "g1", "to": "h2"}' >"$tmp/out"
[ "$(cat "$tmp/out")" = "no reply" ] || fail "a client pinning another server key got: $(cat "$tmp/out")"
wait_for 5 "a log line for the wrong server key" log_has "pinned another server key"
ok "a client that pinned another server key gets no reply and a log line"
[ "$(db_counts)" = "$before" ] ||
	fail "database changed by refused clients: migrations, hosts $before -> $(db_counts)"
ok "the database is unchanged (migrations, hosts: $before)"

# ---- roles ----

MIGCTL_KEY=$tmp/users/alice.key ctl --server-key "$keys/migd.pub" status >/dev/null 2>"$tmp/err" ||
	fail "reader status: $(cat "$tmp/err")"
MIGCTL_KEY=$tmp/users/alice.key ctl --server-key "$keys/migd.pub" migrate g1 --to h2 \
	>"$tmp/out" 2>"$tmp/err" && fail "a reader's migrate was accepted: $(cat "$tmp/out")"
grep -q "alice (reader) may not run migrate: it needs operator" "$tmp/err" ||
	fail "reader migrate: expected the refusal to name the role, got $(cat "$tmp/err")"
wait_for 5 "a log line for the reader's migrate" log_has "refused alice ("
[ "$(db_counts)" = "$before" ] || fail "a reader's migrate changed the database"
ok "a reader may read; its migrate is refused (EACCES, logged), nothing changed"

MIGCTL_KEY=$tmp/users/bob.key ctl --server-key "$keys/migd.pub" host add h3 \
	--uri "sim:///h3" --memory 8g >/dev/null 2>"$tmp/err" && fail "an operator added a host"
grep -q "bob (operator) may not run host.add: it needs admin" "$tmp/err" || fail "operator host add: $(cat "$tmp/err")"
MIGCTL_KEY=$tmp/users/bob.key ctl --server-key "$keys/migd.pub" migrate g1 --to h2 --wait \
	>"$tmp/out" 2>"$tmp/err" || fail "operator migrate: $(cat "$tmp/err")"
ctl_json "$tmp/g1.json" guest show g1
[ "$(py "$tmp/g1.json" 'd["host"]')" = h2 ] || fail "after the operator's migrate g1 is on $(py "$tmp/g1.json" 'd["host"]')"
ok "an operator's migrate runs (g1 now on h2); its host add is refused (admin)"

# ---- a removed key, on its open connection ----

rm -f "$tmp/go"
peer hold "$endpoint" --key "$tmp/users/bob.key" --server-key "$keys/migd.pub" --go "$tmp/go" \
	status >"$tmp/hold.out" 2>&1 &
hold_pid=$!
peer_pids="$peer_pids $hold_pid"
wait_for 10 "the held connection's first reply" grep -q '"ok": true' "$tmp/hold.out"
rm "$keys/clients/bob.pub"
kill -HUP "$migd_pid"
wait_for 10 "SIGHUP after removing bob" log_has "2 client keys on the allow-list"
touch "$tmp/go"
wait "$hold_pid"
[ "$(sed -n 2p "$tmp/hold.out" | py /dev/stdin 'd["code"]' 2>/dev/null)" = EACCES ] ||
	fail "bob's open connection after removal and SIGHUP: $(cat "$tmp/hold.out")"
ok "a key removed from the allow-list is refused on its open connection after SIGHUP"

# ---- events ----

peer subscribe "tcp://127.0.0.1:$((port + 1))" --seconds 3 >"$tmp/sub-nokey.out" &
p1=$!
peer subscribe "tcp://127.0.0.1:$((port + 1))" --key "$keys/admin.key" \
	--server-key "$keys/migd.pub" --seconds 3 >"$tmp/sub-key.out" &
p2=$!
peer_pids="$peer_pids $p1 $p2"
sleep 1
for i in 1 2 3; do
	ctl host disable h1 >/dev/null 2>&1
	ctl host enable h1 >/dev/null 2>&1
done
wait "$p1" "$p2"
[ "$(cat "$tmp/sub-nokey.out")" = "events 0" ] || fail "a subscriber without a key got $(cat "$tmp/sub-nokey.out")"
grep -q "events [1-9]" "$tmp/sub-key.out" || fail "the admin's subscriber got $(cat "$tmp/sub-key.out")"
ok "a subscriber without a key gets no event (one with a key: $(cat "$tmp/sub-key.out"))"

# a subscriber whose key leaves the list hears nothing after the SIGHUP
"$MIGCTL" keygen --dir "$tmp/users" --role reader carol >/dev/null 2>"$tmp/err" ||
	fail "keygen carol: $(cat "$tmp/err")"
cp "$tmp/users/carol.pub" "$keys/clients/"
kill -HUP "$migd_pid"
wait_for 10 "SIGHUP after adding carol" log_has "3 client keys on the allow-list"
peer subscribe "tcp://127.0.0.1:$((port + 1))" --key "$tmp/users/carol.key" \
	--server-key "$keys/migd.pub" --seconds 6 >"$tmp/sub-carol.out" &
p3=$!
peer_pids="$peer_pids $p3"
sleep 1
ctl host disable h1 >/dev/null 2>&1 && ctl host enable h1 >/dev/null 2>&1 ||
	fail "host disable/enable h1"
sleep 0.5
rm "$keys/clients/carol.pub"
kill -HUP "$migd_pid"
wait_for 10 "the subscribers dropped after carol's removal" log_has "every subscriber shakes hands again"
sleep 0.5
ctl host disable h1 >/dev/null 2>&1 && ctl host enable h1 >/dev/null 2>&1 ||
	fail "host disable/enable h1"
wait "$p3"
[ "$(cat "$tmp/sub-carol.out")" = "events 2" ] ||
	fail "carol's subscriber: expected the 2 events before her key was removed, got $(cat "$tmp/sub-carol.out")"
ok "a subscriber whose key is removed (SIGHUP) gets no event after"

# ---- nothing in clear on the wire ----

relay_port=$((port + 3))
peer relay "$relay_port" "$port" --out "$tmp/wire" --seconds 30 &
peer_pids="$peer_pids $!"
sleep 0.5
"$MIGCTL" --connect "tcp://127.0.0.1:$relay_port" status >/dev/null 2>"$tmp/err" ||
	fail "status through the relay: $(cat "$tmp/err")"
"$MIGCTL" --connect "tcp://127.0.0.1:$relay_port" migrate g2 --to h2 >/dev/null 2>"$tmp/err" ||
	fail "migrate through the relay: $(cat "$tmp/err")"
[ -s "$tmp/wire" ] || fail "the relay saw no bytes"
if grep -qaE '"cmd"|status|migrate|"g2"' "$tmp/wire"; then
	fail "a command in clear on the wire: $(grep -aoE '"cmd"[^}]*' "$tmp/wire" | head -2)"
fi
ok "$(wc -c <"$tmp/wire") bytes on the wire with CURVE, no command in clear"

# ---- agents ----

ag() { # GUEST KEY [OPTIONS]: a stand-in agent
	g=$1
	k=$2
	shift 2
	"$pyzmq" "$here/agent_peer.py" --migd "$agent_ep" --guest "$g" --log "$tmp/agent-$g-$$.log" \
		${k:+--key "$k" --server-key "$keys/migd.pub"} "$@" >/dev/null 2>&1 &
	peer_pids="$peer_pids $!"
}
connected() { # GUEST
	ctl --json guest show "$1" >"$tmp/gs.json" 2>/dev/null &&
		[ "$(py "$tmp/gs.json" 'd["agent"]["connected"]')" = True ]
}
ag g1 "$keys/agents/g1.key"
wait_for 15 "g1's agent, with g1's key" connected g1
ok "agent of g1 with g1's key is connected"
ag g2 "$keys/agents/g1.key"
wait_for 10 "the refusal of g1's key speaking for g2" log_has "this agent's key is not guest g2's"
ag g2 ""
sleep 3
connected g2 && fail "guest g2 shows a connected agent (g1's key, or no key)"
ok "agent A (g1's key) reporting for guest B (g2) is refused; no key gets no connection"

"$MIGCTL" keygen --dir "$tmp/users" g3-agent >/dev/null 2>"$tmp/err" || fail "keygen g3-agent: $(cat "$tmp/err")"
ctl guest add g3 --host h1 --memory 1g --agent-key "$tmp/users/g3-agent.pub" >/dev/null 2>"$tmp/err" ||
	fail "guest add g3 --agent-key: $(cat "$tmp/err")"
[ -e "$keys/agents/g3.key" ] && fail "migd made a key for g3, which was given one"
ag g3 "$tmp/users/g3-agent.key"
wait_for 15 "g3's agent, with the key given at guest add" connected g3
ctl guest add g4 --host h1 --memory 1g --agent-key 'not-a-key' >/dev/null 2>"$tmp/err" &&
	fail "guest add --agent-key not-a-key was accepted"
grep -q 'agent_key "not-a-key": expected a CURVE public key' "$tmp/err" ||
	fail "guest add --agent-key not-a-key: $(cat "$tmp/err")"
ok "guest add --agent-key records the given key (its agent connects); a bad key is refused by name"

# ---- refusals counted ----

ctl_json "$tmp/status.json" status
for r in no_curve handshake unknown_key role agent; do
	[ "$(py "$tmp/status.json" "d['auth']['refused']['$r']")" -gt 0 ] ||
		fail "status: refusals of $r not counted: $(py "$tmp/status.json" 'd["auth"]')"
done
ok "status counts refusals by reason: $(py "$tmp/status.json" 'd["auth"]["refused"]')"
role_refusals=$(py "$tmp/status.json" 'd["auth"]["refused"]["role"]')
scrape_has_roles() {
	"$pyzmq" -c 'import sys, urllib.request
print(urllib.request.urlopen("http://" + sys.argv[1] + "/metrics", timeout=2).read().decode())' \
		"$metrics_addr" >"$tmp/metrics.txt" 2>/dev/null &&
		grep -qx "migd_auth_refused_total{reason=\"role\"} $role_refusals" "$tmp/metrics.txt"
}
wait_for 10 "migd_auth_refused_total{reason=\"role\"} $role_refusals on the metrics endpoint" scrape_has_roles
ok "the metrics endpoint counts them too (migd_auth_refused_total{reason})"

# ---- migd refuses to start ----

port2=$(free_port 3) || fail "no free ports"
chmod 644 "$keys/migd.key"
"$MIGD" --db "$tmp/two.db" --listen "tcp://127.0.0.1:$port2" --keys-dir "$keys" \
	>"$tmp/two.log" 2>&1 && fail "migd started on a secret key at 0644"
grep -q "mode 0644: a secret key must be readable by its owner only" "$tmp/two.log" ||
	fail "migd on a 0644 key: $(cat "$tmp/two.log")"
chmod 600 "$keys/migd.key"
ok "a secret key at 0644 stops migd from starting, naming the mode"

"$MIGD" --db "$tmp/two.db" --listen "tcp://0.0.0.0:$port2" >"$tmp/two.log" 2>&1 &&
	fail "migd listened on 0.0.0.0 without keys"
grep -q "is not a loopback address and no keys are set" "$tmp/two.log" ||
	fail "migd on 0.0.0.0 without keys: $(cat "$tmp/two.log")"
"$MIGD" --db "$tmp/two.db" --listen "tcp://0.0.0.0:$port2" --insecure >"$tmp/two.log" 2>&1 &
migd2_pid=$!
wait_for 10 "the --insecure migd's warning" grep -q "INSECURE: serving tcp://0.0.0.0:$port2" "$tmp/two.log"
stop_pid "$migd2_pid"
migd2_pid=
ok "without keys: a non-loopback address is refused, allowed with --insecure (logged)"

# the relay check can fail: a migd without keys shows its commands in clear
"$MIGD" --db "$tmp/three.db" --listen "tcp://127.0.0.1:$port2" >"$tmp/three.log" 2>&1 &
migd2_pid=$!
plain_status() { # PORT
	env -u MIGCTL_KEY "$MIGCTL" --timeout 500 --connect "tcp://127.0.0.1:$1" status >/dev/null 2>&1
}
wait_for 20 "the migd without keys" plain_status "$port2"
relay2=$((port2 + 2))
peer relay "$relay2" "$port2" --out "$tmp/wire-plain" --seconds 20 &
peer_pids="$peer_pids $!"
wait_for 10 "a plain status through the relay" plain_status "$relay2"
grep -qa '"cmd":"status"' "$tmp/wire-plain" || fail "the relay did not see a plain command"
stop_pid "$migd2_pid"
migd2_pid=
ok "control: through the same relay, a migd without keys shows \"cmd\":\"status\" in clear"

migd_done test_auth
