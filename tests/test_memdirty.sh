#!/bin/sh
# test_memdirty.sh: memdirty's command line and what it reports: a paced
# run for a bounded time ends on its own with a "done:" line that counts
# more than one pass over the area, SIGTERM stops an unbounded run with
# status 0, and bad values are refused naming the value. No timing is
# asserted (the machine is shared); the rate itself is for benchmarks.
#
# Env: MEMDIRTY names the program under test.
set -u
: "${MEMDIRTY:?set MEMDIRTY to the memdirty program}"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_memdirty.XXXXXX") || exit 1
pid=
cleanup() {
	[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

failures=0 cases=0 failures_before=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
case_done() {
	cases=$((cases + 1))
	if [ "$failures" -gt "$failures_before" ]; then echo "not ok $cases - $1"
	else echo "ok $cases - $1"; fi
	failures_before=$failures
}

# 1: bounded, paced run
if timeout 60 "$MEMDIRTY" --size 4m --rate 20m/s --seconds 1 >"$tmp/out" 2>&1; then
	grep -q '^memdirty: pid [0-9]* dirtying 4 MiB in pages of [0-9]* bytes at 20 MiB/s, for 1 s$' "$tmp/out" ||
		fail "first line: $(head -1 "$tmp/out")"
	passes=$(sed -n 's/^memdirty: done: .*(\([0-9.]*\) passes).*/\1/p' "$tmp/out")
	[ -n "$passes" ] && awk -v p="$passes" 'BEGIN { exit !(p > 1) }' ||
		fail "done line: $(tail -1 "$tmp/out")"
else
	fail "memdirty --seconds 1 exited $?: $(cat "$tmp/out")"
fi
case_done "a paced run for --seconds ends by itself and reports the passes"

# 2: unpaced, until SIGTERM
"$MEMDIRTY" -s 1m -r 0 -q >"$tmp/out" 2>&1 &
pid=$!
i=0
while ! grep -q 'full speed, until killed' "$tmp/out" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
grep -q 'full speed, until killed' "$tmp/out" ||
	fail "precondition: unpaced memdirty did not say it runs at full speed within 10 s: $(cat "$tmp/out")"
kill "$pid"
wait "$pid"
rc=$?
pid=
[ "$rc" = 0 ] || fail "exit status $rc after SIGTERM"
grep -q '^memdirty: done: ' "$tmp/out" || fail "no done line after SIGTERM: $(cat "$tmp/out")"
case_done "an unpaced run stops on SIGTERM with status 0 and a done line"

# 3: bad values
"$MEMDIRTY" --rate 5x >"$tmp/out" 2>&1
[ $? = 1 ] && grep -q '"5x"' "$tmp/out" || fail "--rate 5x: $(cat "$tmp/out")"
"$MEMDIRTY" --size 0 >"$tmp/out" 2>&1
[ $? = 1 ] && grep -q -- '--size "0"' "$tmp/out" || fail "--size 0: $(cat "$tmp/out")"
"$MEMDIRTY" --bogus >"$tmp/out" 2>&1
[ $? = 2 ] || fail "--bogus: exit not 2: $(cat "$tmp/out")"
case_done "bad values and options are refused, naming them"

echo "1..$cases"
[ "$failures" -eq 0 ]
