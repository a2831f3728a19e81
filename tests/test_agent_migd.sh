#!/bin/sh
# migagent with the real migd: sfsd on loopback, sfs-ior writing and
# checking its data (-W -R) through libsfs, migagent registered for guest
# g1, and migd (sim backend) migrating g1 with quiesce required. The
# migration must show an ok quiesce that drained requests, an ok resume, and
# sfs-ior must finish without an error. TAP output.
#
# Env: MIGD, MIGCTL, MIGAGENT, SFSD, SFS, SFS_IOR name the programs under
# test. Skips (77) when migd has no agent side (--agent-listen) or there is
# no mpirun-free sfs-ior start.
set -u
. "$(dirname "$0")/lib-migd.sh" # for stop_pid; ok and the rest are this test's own

: "${MIGD:?}" "${MIGCTL:?}" "${MIGAGENT:?}" "${SFSD:?}" "${SFS:?}" "${SFS_IOR:?}"

if ! "$MIGD" --help 2>&1 | grep -q -- --agent-listen; then
	echo "1..0 # SKIP this migd has no agent side (--agent-listen)"
	exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_agent_migd.XXXXXX") || exit 1
pids=
n=0
failed=0

cleanup() {
	for p in $pids; do stop_pid "$p"; done
	[ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
check() { # DESCRIPTION COMMAND...
	d=$1
	shift
	if "$@"; then ok "$d"; else not_ok "$d"; fi
}
bail() {
	echo "Bail out! $1"
	for f in "$tmp"/*.log; do echo "# --- $f"; tail -20 "$f" | sed 's/^/# /'; done
	exit 1
}

# Ports below the ephemeral range, chosen at random.
base=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 11000))
ctl_ep=tcp://127.0.0.1:$base
agent_ep=tcp://127.0.0.1:$((base + 2)) # migd's events take listen + 1
fs_port=$((base + 3))
export MIGD_ENDPOINT=$ctl_ep
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export SFS_AGENT_SOCKET=$tmp/agent.sock

echo "1..5"

# sfs.conf's default auth = munge needs a running munged
"$(dirname "$0")/../scripts/munged-ensure.sh" || { echo "munged does not run"; exit 1; }
"$SFS" genconfig --io-servers 2 --dir "$tmp/data" --port "$fs_port" --output "$tmp/sfs.conf" \
	>/dev/null || bail "sfs genconfig failed"
"$SFSD" -c "$tmp/sfs.conf" --all >"$tmp/sfsd.log" 2>&1 &
pids="$pids $!"
"$MIGD" --db "$tmp/state.db" --listen "$ctl_ep" --time-scale 60 --agent-listen "$agent_ep" \
	>"$tmp/migd.log" 2>&1 &
migd_pid=$!
pids="$pids $migd_pid"
"$MIGAGENT" --migd "$agent_ep" --guest g1 --socket "$tmp/agent.sock" >"$tmp/migagent.log" 2>&1 &
pids="$pids $!"

i=0
until "$MIGCTL" --timeout 500 status >/dev/null 2>&1 &&
	SFS_CONF=$tmp/sfs.conf "$SFS" ping >/dev/null 2>&1; do
	i=$((i + 1))
	kill -0 $migd_pid 2>/dev/null || bail "migd exited at start"
	[ $i -lt 100 ] || bail "migd or sfsd did not start"
	sleep 0.1
done
for h in n1 n2; do
	"$MIGCTL" host add $h --uri "sim:///$h?link=1gbit" --memory 64g >/dev/null ||
		bail "host add $h"
done
"$MIGCTL" guest add g1 --host n1 --memory 1g --dirty-rate 16m/s >/dev/null || bail "guest add"
i=0
until "$MIGCTL" agent list 2>/dev/null | grep -q '^g1 *yes'; do
	i=$((i + 1))
	[ $i -lt 100 ] || bail "the agent of g1 never connected"
	sleep 0.1
done
ok "migagent of g1 connected to migd"

# A writer that checks what it wrote (-W) and read (-R), long enough to
# span the migration.
# Leak checking off for sfs-ior: in a sanitizer build LeakSanitizer fails
# every MPI program at exit on Open MPI's own allocations (dlopen'ed
# components no suppression can name); ASan and UBSan still check our code.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
"$SFS_IOR" -a SFS --sfs.conf="$tmp/sfs.conf" -b 128m -t 1m -w -r -W -R -i 40 -o /ior \
	>"$tmp/ior.log" 2>&1 &
ior=$!
i=0
until grep -q "(sfs-ior) registered" "$tmp/migagent.log"; do
	i=$((i + 1))
	[ $i -lt 100 ] || bail "sfs-ior never registered with the agent"
	sleep 0.1
done
sleep 1

if "$MIGCTL" migrate g1 --quiesce required --quiesce-deadline 5s --wait >"$tmp/migrate.log" 2>&1
then ok "migration of g1 with quiesce required completed"
else not_ok "migration of g1 with quiesce required: $(cat "$tmp/migrate.log")"
fi

"$MIGCTL" --json history >"$tmp/history.json" 2>/dev/null
python3 - "$tmp/history.json" >"$tmp/check.log" 2>&1 <<'EOF'
import json, sys
rows = json.load(open(sys.argv[1]))
row = rows[-1]
print(json.dumps(row))
assert row["state"] == "completed", row["state"]
assert str(row["quiesce"]).startswith("ok"), row["quiesce"]
assert row["drained_requests"] and row["drained_requests"] > 0, row["drained_requests"]
assert str(row["resume"]).startswith("ok"), row["resume"]
EOF
check "history shows an ok quiesce that drained requests and an ok resume" test $? -eq 0
sed 's/^/# /' "$tmp/check.log"

wait $ior
rc=$?
check "sfs-ior ran through the migration without an error (exit $rc)" \
	sh -c "[ $rc -eq 0 ] && ! grep -qi 'error\|mismatch' '$tmp/ior.log'"
check "the agent's audit lines name the quiesce and the resume" \
	sh -c "grep -q 'audit: migd quiesce .*: ok' '$tmp/migagent.log' &&
	       grep -q 'audit: migd resume .*: ok' '$tmp/migagent.log'"
[ $failed -eq 0 ] || KEEP=1
exit $((failed > 0))
