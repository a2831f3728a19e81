# lib-migd.sh: shell helpers shared by the migd integration tests
# (test_migd.sh, test_health.sh, test_migd_agent.sh, test_qmp.sh;
# test_agent_migd.sh uses stop_pid only). POSIX sh; sourced, never run:
#
#	. "$(dirname "$0")/lib-migd.sh"
#
# It only defines functions. It provides:
#
#   skip_without CMD [WHY]   print "SKIP: no CMD WHY" and exit 77 unless CMD
#                            is on PATH.
#   migd_setup NAME [N]      the usual prelude: check MIGD and MIGCTL are
#                            set; $tmp, a new directory NAME.XXXXXX under
#                            $TMPDIR; empty migd_pid and watch_pid; traps
#                            (cleanup at exit, exit 1 at INT TERM HUP);
#                            $port with N (2) free ports from it (free_port)
#                            and $endpoint, tcp://127.0.0.1:$port.
#   cleanup                  migd_cleanup; a script with more to clean up
#                            defines its own (after sourcing this file,
#                            before migd_setup).
#   stop_pid PID             TERM, a bounded wait (5 s), then KILL; no-op
#                            for an empty PID.
#   migd_cleanup             stop_pid $watch_pid and $migd_pid, rm -rf $tmp.
#   ok TEXT, fail TEXT       TAP lines "ok N - TEXT" / "not ok N - TEXT"
#                            (numbered by $checks); fail also prints the
#                            last $log_tail (25) lines of $tmp/migd.log and
#                            exits 1.
#   free_port [N]            a port P in $PORT_LO-$PORT_HI (default
#                            20000-32000) with P..P+N-1 free (N: 2 unless
#                            given), none of them in the pair at $port
#                            when $port is already set.
#   ctl ARGS...              migctl against $endpoint, --timeout
#                            $ctl_timeout (5000 ms unless set).
#   ctl_json OUT ARGS...     migctl --json ARGS into OUT; fail on non-zero.
#   expect_exit CODE WORD ARGS...
#                            migctl ARGS exits CODE and says WORD on stderr
#                            (output in $tmp/out and $tmp/err); fail if not.
#   py FILE EXPR             EXPR (python) of the JSON in FILE, read as d.
#   run_migd SECONDS OPTS... start $MIGD --db $tmp/state.db --listen
#                            $endpoint OPTS, logging to $tmp/migd.log, in
#                            $migd_pid; fail if it exits, or unless it
#                            answers `status` within 2 * SECONDS tries (a
#                            0.5 s status call and a 0.2 s pause each).
#   migd_done NAME           fail on a sanitizer report in $tmp/migd.log;
#                            else print the TAP plan (1..$checks) and
#                            "PASS: NAME", and exit 0.
#   find_pyzmq               set pyzmq to a python3 that has pyzmq (or to
#                            nothing).
#   wait_for SECONDS DESCRIPTION COMMAND...
#                            until COMMAND succeeds, polling $poll_hz (5
#                            unless set; 2, 5 or 10) times a second; fail
#                            naming DESCRIPTION after SECONDS.
#
# Variables the caller may set: log_tail, ctl_timeout, poll_hz (and tmp,
# endpoint, migd_pid, watch_pid, port when it does not use migd_setup).

skip_without() { # CMD [WHY]
	command -v "$1" >/dev/null 2>&1 && return 0
	echo "SKIP: no $1${2:+ $2}"
	exit 77
}

stop_pid() { # PID: TERM, a bounded wait, then KILL
	[ -n "$1" ] || return 0
	# `ctl watch &` is a subshell running migctl: its children go first, or
	# the migctl outlives the test
	pkill -TERM -P "$1" 2>/dev/null
	kill "$1" 2>/dev/null
	i=0
	while kill -0 "$1" 2>/dev/null && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -9 "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

migd_cleanup() {
	stop_pid "${watch_pid:-}"
	stop_pid "${migd_pid:-}"
	rm -rf "$tmp"
}

cleanup() { migd_cleanup; }

migd_setup() { # NAME [NPORTS]
	: "${MIGD:?set MIGD to the migd program}"
	: "${MIGCTL:?set MIGCTL to the migctl program}"
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX") || exit 1
	migd_pid=
	watch_pid=
	trap cleanup EXIT
	trap 'exit 1' INT TERM HUP
	if [ "${2:-2}" -eq 2 ]; then
		port=$(free_port) || fail "no free port pair in ${PORT_LO:-20000}-${PORT_HI:-32000}"
	else
		port=$(free_port "$2") || fail "no $2 free ports in ${PORT_LO:-20000}-${PORT_HI:-32000}"
	fi
	endpoint="tcp://127.0.0.1:$port"
}

# ---- TAP lines ("ok N - ...", "not ok N - ..."): the test summary counts them.

checks=0
fail() {
	echo "not ok $((checks + 1)) - $*"
	if [ -s "$tmp/migd.log" ]; then
		echo "--- last lines of migd's log:"
		tail -n "${log_tail:-25}" "$tmp/migd.log"
	fi
	exit 1
}

ok() {
	checks=$((checks + 1))
	echo "ok $checks - $*"
}

# ---- ports ----

# Ports in use (any state) from /proc/net/tcp{,6}, one decimal per line.
used_ports() {
	cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
		awk '$2 ~ /^[0-9A-F]+:[0-9A-F]+$/ { split($2, a, ":"); print a[2] }' |
		while read -r hex; do printf '%d\n' "0x$hex"; done
}

free_port() { # [N]
	n=${1:-2}
	used=$(used_ports)
	if [ -n "${port:-}" ]; then # taken by this test already
		used=$(printf '%s\n%s\n%s\n' "$used" "$port" "$((port + 1))")
	fi
	tries=0
	while [ $tries -lt 200 ]; do
		r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
		lo=${PORT_LO:-20000}
		p=$((lo + r % (${PORT_HI:-32000} - lo - n)))
		k=0
		while [ $k -lt "$n" ] && ! printf '%s\n' "$used" | grep -qx "$((p + k))"; do
			k=$((k + 1))
		done
		if [ $k -eq "$n" ]; then
			echo "$p"
			return 0
		fi
		tries=$((tries + 1))
	done
	return 1
}

# ---- migctl and its JSON ----

ctl() {
	"$MIGCTL" --connect "$endpoint" --timeout "${ctl_timeout:-5000}" "$@"
}

expect_exit() { # CODE WORD ARGS...
	code=$1
	word=$2
	shift 2
	ctl "$@" >"$tmp/out" 2>"$tmp/err"
	got=$?
	[ "$got" -eq "$code" ] ||
		fail "migctl $*: expected exit $code, got $got: $(cat "$tmp/err")"
	grep -qF -- "$word" "$tmp/err" ||
		fail "migctl $*: expected the message to name \"$word\", got: $(cat "$tmp/err")"
}

ctl_json() { # OUT ARGS...
	out=$1
	shift
	ctl --json "$@" >"$out" 2>"$tmp/err" ||
		fail "migctl $*: exit $?: $(cat "$tmp/err")"
}

py() { # FILE EXPR
	python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
v = eval(sys.argv[2])
print(json.dumps(v) if isinstance(v, (list, dict)) else v)' "$1" "$2"
}

find_pyzmq() {
	pyzmq=
	for py in python3 /usr/bin/python3; do # pyzmq may be in the distribution's only
		if "$py" -c 'import zmq' 2>/dev/null; then
			pyzmq=$py
			break
		fi
	done
}

# ---- migd ----

run_migd() { # SECONDS MIGD-OPTIONS...
	secs=$1
	shift
	"$MIGD" --db "$tmp/state.db" --listen "$endpoint" "$@" >>"$tmp/migd.log" 2>&1 &
	migd_pid=$!
	i=0
	until ctl --timeout 500 status >/dev/null 2>&1; do
		kill -0 "$migd_pid" 2>/dev/null || {
			wait "$migd_pid"
			rc=$?
			migd_pid=
			fail "migd exited with status $rc at start"
		}
		i=$((i + 1))
		[ $i -lt $((secs * 2)) ] || fail "migd did not answer status within $secs s"
		sleep 0.2
	done
}

migd_done() { # NAME
	if grep -qE 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer' "$tmp/migd.log"; then
		fail "sanitizer report in migd's log"
	fi
	echo "1..$checks"
	echo "PASS: $1"
	exit 0
}

wait_for() { # SECONDS DESCRIPTION COMMAND...
	secs=$1
	what=$2
	shift 2
	limit=$((secs * ${poll_hz:-5}))
	i=0
	until "$@"; do
		i=$((i + 1))
		[ $i -lt $limit ] || fail "$what: not within $secs s"
		sleep "0.$((10 / ${poll_hz:-5}))"
	done
}
