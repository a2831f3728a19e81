# lib-sfs.sh: the shared prelude of the tests that run MPI programs
# against a real sfs on loopback (test_sfs_ior.sh, test_btio.sh): a
# temporary directory, sfsd stopped and the directory removed on exit,
# failure counting with one TAP line per case, and start_sfs (a 2-I/O-server
# sfs on free ports, config in $tmp/sfs.conf).
#
# Source it after setting TEST_NAME; needs SFSD and SFS. Provides:
#   $tmp, fail MSG, case_done NAME, start_sfs, $sfsd_pid, $failures.
# Optional: SFSD_OPTS (more sfsd arguments, e.g. "-o root_hosts=10.0.0.1"),
# PORT_LO and PORT_SPAN (where pick_port looks; default 20000 and 11997).
# start_sfs makes sure munged runs (scripts/munged-ensure.sh): sfs.conf's
# default is auth = munge.

tmp=$(mktemp -d "${TMPDIR:-/tmp}/$TEST_NAME.XXXXXX") || exit 1
sfsd_pid=
failures=0

cleanup() {
	if [ -n "$sfsd_pid" ]; then
		kill "$sfsd_pid" 2>/dev/null
		i=0
		while kill -0 "$sfsd_pid" 2>/dev/null && [ $i -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -9 "$sfsd_pid" 2>/dev/null
		wait "$sfsd_pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

# One TAP line per case ("ok N - name"), so the test summary counts cases.
cases=0
failures_before=0
case_done() {
	cases=$((cases + 1))
	if [ "$failures" -gt "$failures_before" ]; then
		echo "not ok $cases - $1"
	else
		echo "ok $cases - $1"
	fi
	failures_before=$failures
}

# Ports in use (any state) from /proc/net/tcp{,6}, one decimal per line.
used_ports() {
	cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
		awk 'NR > 1 { split($2, a, ":"); if (a[2] != "") print a[2] }' |
		while read -r hex; do printf '%d\n' "0x$hex"; done
}

# A base port in 20000-32000 with base..base+2 free (meta + 2 I/O servers).
pick_port() {
	used=$(used_ports)
	tries=0
	while [ $tries -lt 50 ]; do
		r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
		base=$((${PORT_LO:-20000} + r % ${PORT_SPAN:-11997}))
		if ! printf '%s\n' "$used" | grep -qx -e "$base" -e "$((base + 1))" -e "$((base + 2))"; then
			echo "$base"
			return 0
		fi
		tries=$((tries + 1))
	done
	return 1
}

MUNGED_ENSURE=${MUNGED_ENSURE:-$(dirname "$0")/../scripts/munged-ensure.sh}

# Start sfsd on free ports; retry on a lost race for a port.
start_sfs() {
	"$MUNGED_ENSURE" || { echo "munged is not running and could not be started"; return 1; }
	attempt=0
	while [ $attempt -lt 5 ]; do
		attempt=$((attempt + 1))
		port=$(pick_port) || { echo "no free port range"; return 1; }
		rm -rf "$tmp/fs"
		mkdir -p "$tmp/fs"
		"$SFS" genconfig --io-servers 2 --dir "$tmp/fs" --port "$port" \
			--output "$tmp/sfs.conf" >/dev/null || return 1
		# shellcheck disable=SC2086 # SFSD_OPTS is a list of arguments
		"$SFSD" -c "$tmp/sfs.conf" --all ${SFSD_OPTS:-} >"$tmp/sfsd.log" 2>&1 &
		sfsd_pid=$!
		i=0
		while [ $i -lt 100 ]; do # 10 s
			if "$SFS" -c "$tmp/sfs.conf" ping >/dev/null 2>&1; then
				return 0
			fi
			kill -0 "$sfsd_pid" 2>/dev/null || break
			sleep 0.1
			i=$((i + 1))
		done
		kill "$sfsd_pid" 2>/dev/null
		wait "$sfsd_pid" 2>/dev/null
		sfsd_pid=
	done
	echo "sfsd did not start; its log:"
	cat "$tmp/sfsd.log"
	return 1
}
