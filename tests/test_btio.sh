#!/bin/sh
# test_btio.sh: btio end to end against a real 2-I/O-server sfs on
# loopback, under mpirun with 4 ranks (2 for the refusal, 9 for uneven
# blocks).
#
# Checks what the migration-cost experiment relies on: both I/O modes run,
# verify and print NPB's labels (and --json its keys); the files are gone
# afterwards unless --keep; a non-square rank count and bad --class/--steps
# values are refused naming them; and verification really fails: a kept
# run's second dump is partly overwritten with its first (a stale write)
# through the sfs command, and a --verify-only pass, which accepted the
# intact files, then says UNSUCCESSFUL, names the dump, file and offset,
# and exits 1. A missing dump is reported as such. --api posix does the
# same on a local directory (the calls it makes on an sfs mount).
#
# Env: SFSD, SFS, BTIO name the programs under test. Exit 0 when every
# check passed, 1 when one failed (each failure is printed), 77 (skip)
# when there is no mpirun.
set -u

: "${SFSD:?set SFSD to the sfsd program}"
: "${SFS:?set SFS to the sfs program}"
: "${BTIO:?set BTIO to the btio program}"

if ! command -v mpirun >/dev/null 2>&1; then
	echo "SKIP: no mpirun in PATH"
	exit 77
fi
MPIRUN="mpirun"
OVERSUBSCRIBE=
if mpirun --version 2>&1 | grep -q "Open MPI"; then
	# Open MPI refuses root without these, and more ranks than cores
	# without --oversubscribe
	OVERSUBSCRIBE=--oversubscribe
	export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
RUN_TIMEOUT=120 # seconds for one btio run; a hang fails the check

TEST_NAME=test_btio
. "$(dirname "$0")/lib-sfs.sh"

# run NAME NP ARGS...: btio on NP ranks; output in $tmp/NAME.out (stdout
# and stderr), status in $rc. In a sanitizer build LeakSanitizer would fail
# every run on Open MPI's own allocations (in dlopen'ed components no
# suppression can name), so leak checking is off for the ranks; ASan and
# UBSan still check our code.
run() {
	name=$1
	np=$2
	shift 2
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		timeout "$RUN_TIMEOUT" $MPIRUN -np "$np" $OVERSUBSCRIBE "$BTIO" "$@" \
		>"$tmp/$name.out" 2>&1
	rc=$?
}

show() {
	echo "--- output of $1 ---"
	tail -n 40 "$tmp/$1.out"
	echo "---"
}

# has NAME REGEX WHAT: the output of NAME has a line matching REGEX.
has() {
	if ! grep -Eq "$2" "$tmp/$1.out"; then
		fail "$1: $3"
		show "$1"
		return 1
	fi
	return 0
}

expect_rc() {
	if [ "$rc" -ne "$2" ]; then
		fail "$1: exit status $rc, expected $2"
		show "$1"
		return 1
	fi
	return 0
}

# The NPB labels scripts grep, with the values a 4-rank class S run of 10
# steps (2 dumps of 12^3 x 5 doubles = 138240 bytes) must show.
check_report() {
	name=$1
	mode=$2
	for re in '^ BT-IO Benchmark Completed\.$' \
		'^ Class           = +S$' \
		'^ Size            = +12x  12x  12$' \
		'^ Iterations      = +10$' \
		'^ Time in seconds = +[0-9]+\.[0-9]{2}$' \
		'^ Total processes = +4$' \
		"^ I/O mode        = +$mode\$" \
		'^ Verification    = +SUCCESSFUL$' \
		'^ Total data written \(MB\)  = +0\.14$' \
		'^ I/O timing in seconds    = +[0-9]+\.[0-9]{2}$' \
		'^ I/O data rate  \(MB/sec\)  = +[0-9]+\.[0-9]{2}$'; do
		has "$name" "$re" "no line matching '$re'" || return 1
	done
}

sfs_ls() {
	"$SFS" -c "$tmp/sfs.conf" ls "$1" 2>/dev/null
}

start_sfs || { echo "FAIL: could not start sfs"; exit 1; }
CONF="--sfs.conf=$tmp/sfs.conf"

# 1, 2: both modes, 4 ranks, class S, 10 steps; nothing left behind
for mode in full epio; do
	run "$mode" 4 "$CONF" --class S --steps 10 --mode "$mode" --path "/t/$mode"
	if expect_rc "$mode" 0; then
		check_report "$mode" "$mode"
		has "$mode" '^ Time step +10$' "no progress line for step 10"
		left=$(sfs_ls /t | grep -c "$mode")
		[ "$left" = 0 ] || fail "$mode: $left file(s) left in /t without --keep"
	fi
	case_done "$mode mode on 4 ranks verifies and prints the NPB labels"
done

# --progress: a line for every step, the dump steps' after their dump
run progress 4 "$CONF" --steps 10 --path /t/progress --progress --quiet
if expect_rc progress 0; then
	n=$(grep -c '^ Time step' "$tmp/progress.out")
	[ "$n" = 10 ] || fail "progress: $n step lines for 10 steps"
	has progress '^ Time step +7$' "no line for step 7 (not a dump step)"
fi
case_done "--progress prints a line after every step"

# 3: --json, epio: one object with the contract's keys, files kept
run json 4 "$CONF" --steps 10 --mode epio --path /t/json --json --keep
if expect_rc json 0; then
	has json '^\{.*"class":"S","n":12,"steps":10,"ranks":4,"mode":"epio",.*"written_bytes":138240,.*"verification":"SUCCESSFUL","error":null\}$' \
		"not one JSON object with the run's values"
	n=$(sfs_ls /t | grep -c 'json\.00000[0-3]')
	[ "$n" = 4 ] || fail "json: $n of 4 epio files kept with --keep"
fi
case_done "--json prints one object; --keep keeps the per-rank files"

# 4: a non-square number of ranks is refused, naming the count
run twoprocs 2 "$CONF" --steps 10
if [ "$rc" -eq 0 ]; then
	fail "twoprocs: 2 ranks exited 0"
else
	has twoprocs '^btio: 2 processes: BT-IO needs a square number of processes' \
		"no message naming the 2 processes"
fi
case_done "a non-square rank count is refused"

# 5: bad --class and --steps values are named
run badclass 1 "$CONF" --class B
if [ "$rc" -eq 0 ]; then
	fail "badclass: --class B exited 0"
else
	has badclass '^btio: --class "B": expected S, W or A$' "no message naming --class \"B\""
fi
run badsteps 1 "$CONF" --steps 3x
if [ "$rc" -eq 0 ]; then
	fail "badsteps: --steps 3x exited 0"
else
	has badsteps '^btio: --steps "3x": expected a whole number' "no message naming --steps \"3x\""
fi
case_done "bad --class and --steps values are named"

# 6: a kept run verifies again with --verify-only; then dump 2's first 4 KiB
# become dump 1's (a stale write): exactly 512 wrong doubles, the first at
# dump 2's first byte (offset 69120), and the pass fails
run keep 4 "$CONF" --steps 10 --path /t/keep --keep --quiet
expect_rc keep 0
run reverify 4 "$CONF" --steps 10 --path /t/keep --verify-only --quiet
expect_rc reverify 0 && has reverify '^ Verification    = +SUCCESSFUL$' "intact dumps not SUCCESSFUL"
if "$SFS" -c "$tmp/sfs.conf" cp sfs:/t/keep "$tmp/keep" >/dev/null 2>&1 &&
	dd if="$tmp/keep" of="$tmp/keep" bs=4096 count=1 skip=0 seek=69120 oflag=seek_bytes \
		conv=notrunc 2>/dev/null &&
	"$SFS" -c "$tmp/sfs.conf" cp "$tmp/keep" sfs:/t/keep >/dev/null 2>&1; then
	run stale 4 "$CONF" --steps 10 --path /t/keep --verify-only --quiet
	if expect_rc stale 1; then
		has stale '^ Verification    = +UNSUCCESSFUL: dump 2 \(step 10\): 512 wrong values, first in /t/keep at offset 69120: ' \
			"no UNSUCCESSFUL naming dump 2, 512 values, /t/keep and offset 69120"
	fi
else
	fail "stale: could not overwrite /t/keep with sfs cp"
fi
case_done "an overwritten dump fails --verify-only, naming dump, file and offset"

# 7: asking for a dump the kept run never wrote
run missing 4 "$CONF" --steps 15 --path /t/keep --verify-only --json
if expect_rc missing 1; then
	has missing '"verification":"UNSUCCESSFUL","error":"read /t/keep at offset 138240: end of file after 0 of [0-9]+ bytes \(dump 3 not there\)"' \
		"no error naming the missing dump 3 at offset 138240"
fi
case_done "a missing dump is reported with file and offset"

# 8: 9 ranks split class A's 64 points per side 21/21/22: the middle rank
# trades halos with all four neighbours, and uneven blocks land at the
# right offsets
run nine 9 "$CONF" --class A --steps 5 --path /t/nine --quiet
if expect_rc nine 0; then
	has nine '^ Total processes = +9$' "no 'Total processes = 9'" &&
		has nine '^ Verification    = +SUCCESSFUL$' "9 ranks not SUCCESSFUL" &&
		has nine '^ Total data written \(MB\)  = +10\.49$' "not one 64^3 dump (10.49 MB) written"
fi
case_done "9 ranks with uneven blocks verify"

# 9: --api posix on a local directory (what runs on an sfs mount): both
# modes verify, no --sfs.conf needed, files removed; a stale write in a kept
# file fails --verify-only as through libsfs; a bad --api is named
for mode in full epio; do
	run "posix_$mode" 4 --api posix --steps 10 --mode "$mode" --path "$tmp/posix/$mode/btio"
	if expect_rc "posix_$mode" 0; then
		check_report "posix_$mode" "$mode"
		has "posix_$mode" 'POSIX calls\)$' "the header does not say POSIX calls"
		left=$(ls "$tmp/posix/$mode" | grep -c btio)
		[ "$left" = 0 ] || fail "posix_$mode: $left file(s) left without --keep"
	fi
done
run posix_keep 4 --api posix --steps 10 --path "$tmp/posix/keep" --keep --quiet
if expect_rc posix_keep 0; then
	dd if="$tmp/posix/keep" of="$tmp/posix/keep" bs=4096 count=1 skip=0 seek=69120 \
		oflag=seek_bytes conv=notrunc 2>/dev/null
	run posix_stale 4 --api posix --steps 10 --path "$tmp/posix/keep" --verify-only --quiet
	expect_rc posix_stale 1 &&
		has posix_stale "^ Verification    = +UNSUCCESSFUL: dump 2 \\(step 10\\): 512 wrong values, first in $tmp/posix/keep at offset 69120: " \
			"no UNSUCCESSFUL naming dump 2, 512 values, the file and offset 69120"
fi
run badapi 1 --api nfs
if [ "$rc" -eq 0 ]; then
	fail "badapi: --api nfs exited 0"
else
	has badapi '^btio: --api "nfs": expected sfs or posix$' "no message naming --api \"nfs\""
fi
case_done "--api posix on a local path: both modes verify, a stale write fails, a bad --api is named"

if [ "$failures" -ne 0 ]; then
	echo "1..$cases"
	echo "test_btio: $failures check(s) failed"
	exit 1
fi
echo "1..$cases"
echo "test_btio: all checks passed"
exit 0
