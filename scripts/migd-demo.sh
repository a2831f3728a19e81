#!/bin/sh
# migd-demo.sh: the project's main job. Starts migd on the sim backend (a
# simulated cluster on a virtual clock, --time-scale 60: one real second is
# a minute), adds hosts and guests with migctl, runs the seed's experiment
# in miniature (an interval policy migrating the ranks of an MPI job every
# 4 minutes, staggered) plus an evacuation, and prints `migctl report`:
# what every migration cost. migd keeps running afterwards so you can go on
# with migctl; the last lines say how to stop it.
#
#   scripts/migd-demo.sh [--dir DIR] [--port P] [--stop]
#
# --stop stops migd at the end instead of leaving it running.
set -eu
cd "$(dirname "$0")/.."

dir="$PWD/demo-migd"
port=7700
stop=0
while [ $# -gt 0 ]; do
	case "$1" in
	--dir) dir=$2; shift 2 ;;
	--port) port=$2; shift 2 ;;
	--stop) stop=1; shift ;;
	-h|--help) sed -n '2,14p' "$0"; exit 0 ;;
	*) echo "migd-demo: unknown option $1" >&2; exit 2 ;;
	esac
done

MIGD=build/daemon/migd
MIGCTL=build/cli/migctl
[ -x "$MIGD" ] && [ -x "$MIGCTL" ] || { echo "migd-demo: build first (scripts/bootstrap.sh build)" >&2; exit 1; }
export MIGD_ENDPOINT="tcp://127.0.0.1:$port"

if $MIGCTL --timeout 500 status >/dev/null 2>&1; then
	echo "migd-demo: a migd already answers on $MIGD_ENDPOINT; stop it or use --port" >&2
	exit 1
fi
rm -rf "$dir"
mkdir -p "$dir"
# keys: migd makes its own and an admin's in $dir/keys on first start;
# migctl uses the admin's (and pins migd.pub beside it)
export MIGCTL_KEY="$dir/keys/admin.key"
$MIGD --db "$dir/state.db" --listen "$MIGD_ENDPOINT" --keys-dir "$dir/keys" --time-scale 60 \
	--max-concurrent 4 --max-outbound 1 --max-inbound 1 2>"$dir/migd.log" &
migd_pid=$!
[ "$stop" = 1 ] && trap 'kill $migd_pid 2>/dev/null; wait $migd_pid 2>/dev/null' EXIT
i=0
until $MIGCTL --timeout 500 status >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -gt 50 ] && { echo "migd-demo: migd did not start; see $dir/migd.log" >&2; exit 1; }
	sleep 0.1
done

step() { printf '\n== %s\n$ migctl %s\n' "$1" "$(shift; echo "$*")"; shift; $MIGCTL "$@"; }

echo "== migd is up on $MIGD_ENDPOINT (sim backend, 1 real second = 1 virtual minute)"
for n in 1 2 3 4 5 6; do
	$MIGCTL host add "n$n" --uri "sim:///n$n?link=1gbit&mem=16g" >/dev/null
done
step "six hosts on simulated Gigabit Ethernet" host list
# the seed's BT-IO job: ranks of one job, migrated under an interval policy
for r in 0 1 2 3; do
	$MIGCTL guest add "bt$r" --host "n$((r + 1))" --memory 512m --dirty-rate 20m/s \
		--job bt --rank "$r" >/dev/null
done
$MIGCTL guest add db --host n1 --memory 2g --dirty-rate 50m/s >/dev/null
$MIGCTL guest add web --host n5 --memory 1g --dirty-rate 5m/s >/dev/null
step "six guests: four ranks of job bt, two services" guest list
step "migrate bt0 every 4 minutes, two ranks per period, 30 s apart" \
	policy add interval every4m --every 4m --guests job:bt --stagger 30s --count 2
step "evacuate n1 (maintenance), waiting for it" evacuate n1 --wait
echo
echo "== letting the policy run for about 13 virtual minutes"
sleep 13
step "the queue (should be empty or nearly so)" queue
step "history: every migration with its cost" history
step "report: cost per policy and overall" report

if [ "$stop" = 0 ]; then
	echo
	echo "== migd keeps running (pid $migd_pid, state in $dir/state.db). Try:"
	echo "   export MIGD_ENDPOINT=$MIGD_ENDPOINT MIGCTL_KEY=$MIGCTL_KEY"
	echo "   $MIGCTL watch            # live events"
	echo "   $MIGCTL migrate web --to n2 --wait"
	echo "   stop it with: kill $migd_pid"
fi
