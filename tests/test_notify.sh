#!/bin/sh
# test_notify.sh: what the units' Type=notify and journal logging rest on,
# with tests/notify_peer.py standing in for systemd (not PID 1 here):
# migd, sfsd (one server, and --all) and migagent say READY=1 only once
# they serve (a request succeeds right after), STOPPING=1 at SIGTERM, from
# their main pid only, and exit 0; their stderr, being the journal stream
# ($JOURNAL_STREAM), has "<N>" priority prefixes and no time, and without
# $JOURNAL_STREAM it keeps the time.
#
# Env: MIGD, MIGCTL, MIGAGENT, SFSD, SFS, NOTIFY_PEER. Ports 25000-25999.
set -u
PORT_LO=25000
PORT_HI=25999
. "$(dirname "$0")/lib-migd.sh"
: "${MIGAGENT:?}" "${SFSD:?}" "${SFS:?}" "${NOTIFY_PEER:?}"
skip_without python3 "to stand in for systemd"
sfsd_pid=
cleanup() {
	stop_pid "$sfsd_pid"
	migd_cleanup
}
migd_setup test_notify

peer() { # NAME CHECK PROGRAM ARGS...
	name=$1
	check=$2
	shift 2
	python3 "$NOTIFY_PEER" "$tmp/$name.log" "$check" -- "$@" >"$tmp/$name.peer" 2>&1 ||
		fail "$name under notify_peer: $(grep -v '^#' "$tmp/$name.peer"; tail -5 "$tmp/$name.log")"
	grep '^#' "$tmp/$name.peer"
}

# journal_log NAME: every line of NAME's log has a <N> prefix, no time
journal_log() {
	[ -s "$tmp/$1.log" ] || fail "$1 logged nothing"
	bad=$(grep -v '^<[0-7]>' "$tmp/$1.log" | head -3)
	[ -z "$bad" ] || fail "$1: lines without a priority prefix: $bad"
	if grep -qE '^<[0-7]>[0-9]{2}:[0-9]{2}:[0-9]{2}' "$tmp/$1.log"; then
		fail "$1: a time in journal lines: $(head -2 "$tmp/$1.log")"
	fi
}

base=$(free_port 3) || fail "no 3 free ports"
mkdir -p "$tmp/fs"
"$SFS" genconfig --io-servers 2 --dir "$tmp/fs" --port "$base" --output "$tmp/sfs.conf" \
	>/dev/null || fail "sfs genconfig"

peer sfsd_one "bash -c 'exec 3<>/dev/tcp/127.0.0.1/$base'" "$SFSD" -c "$tmp/sfs.conf" -n meta
journal_log sfsd_one
grep -q '^<6>meta: metadata server listening on' "$tmp/sfsd_one.log" ||
	fail "sfsd -n meta: no <6> (info) listening line: $(head -3 "$tmp/sfsd_one.log")"
ok "sfsd -n meta: READY=1 when listening, STOPPING=1, exit 0; <6> lines"

peer sfsd_all "'$SFS' -c '$tmp/sfs.conf' ping >/dev/null" "$SFSD" -c "$tmp/sfs.conf" --all
journal_log sfsd_all
ok "sfsd --all: one READY=1, from the supervisor, once all 3 servers answer"

peer migd "'$MIGCTL' --connect '$endpoint' --timeout 2000 status >/dev/null" \
	"$MIGD" --db "$tmp/state.db" --listen "$endpoint" --time-scale 60
journal_log migd
ok "migd: READY=1 when it answers status, STOPPING=1, exit 0"

peer migagent "test -S '$tmp/agent.sock'" "$MIGAGENT" --socket "$tmp/agent.sock"
journal_log migagent
ok "migagent: READY=1 with its socket there, STOPPING=1, exit 0"

# a warning is <4>; without $JOURNAL_STREAM the time stays
"$SFSD" -c "$tmp/sfs.conf" -n meta 2>"$tmp/plain.log" &
sfsd_pid=$!
port_open() { bash -c "exec 3<>/dev/tcp/127.0.0.1/$base" 2>/dev/null; }
wait_for 10 "sfsd -n meta listening" port_open
: >"$tmp/second.log"
JOURNAL_STREAM=$(stat -c '%d:%i' "$tmp/second.log") "$SFSD" -c "$tmp/sfs.conf" -n meta \
	2>>"$tmp/second.log" && fail "a second sfsd -n meta started"
stop_pid "$sfsd_pid"
sfsd_pid=
grep -q '^<4>meta: cannot start the metadata server' "$tmp/second.log" ||
	fail "the second sfsd's failure is not a <4> line: $(cat "$tmp/second.log")"
grep -qE '^[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} sfsd\[[0-9]+\] info: meta: metadata server listening' \
	"$tmp/plain.log" || fail "without JOURNAL_STREAM: $(head -2 "$tmp/plain.log")"
ok "a warning under the journal is <4>; without \$JOURNAL_STREAM lines keep time and pid"

migd_done test_notify
