#!/bin/sh
# test_sfs_ior.sh: sfs-ior end to end against a real 2-I/O-server sfs on
# loopback, under mpirun with 2 ranks.
#
# Checks what a study relies on: IOR-parseable results for file-per-process
# and shared-file runs (-W -R -C -e), that a data check really fails on a
# file whose middle was overwritten (and says where the bytes came from),
# that a read-only run with the writer's -G passes, the POSIX and MPIIO
# baselines, and a clear error for a bad option value.
#
# Env: SFSD, SFS, SFS_IOR name the programs under test. Exit 0 when every
# check passed, 1 when one failed (each failure is printed), 77 (skip)
# when there is no mpirun.
set -u

: "${SFSD:?set SFSD to the sfsd program}"
: "${SFS:?set SFS to the sfs program}"
: "${SFS_IOR:?set SFS_IOR to the sfs-ior program}"

if ! command -v mpirun >/dev/null 2>&1; then
	echo "SKIP: no mpirun in PATH"
	exit 77
fi
MPIRUN="mpirun -np 2"
if mpirun --version 2>&1 | grep -q "Open MPI"; then
	# Open MPI refuses root without these, and 2 ranks on 1 core without
	# --oversubscribe
	MPIRUN="$MPIRUN --oversubscribe"
	export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
RUN_TIMEOUT=120 # seconds for one sfs-ior run; a hang fails the check

TEST_NAME=test_sfs_ior
. "$(dirname "$0")/lib-sfs.sh"

# run NAME ARGS...: sfs-ior under mpirun; output in $tmp/NAME.out, status in $rc.
# In a sanitizer build LeakSanitizer would fail every run on Open MPI's own
# allocations (in dlopen'ed components no suppression can name), so leak
# checking is off for the ranks; ASan and UBSan still check our code.
run() {
	name=$1
	shift
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		timeout "$RUN_TIMEOUT" $MPIRUN "$SFS_IOR" "$@" >"$tmp/$name.out" 2>&1
	rc=$?
}

show() {
	echo "--- output of $1 ---"
	tail -n 40 "$tmp/$1.out"
	echo "---"
}

# The IOR result lines a study parses: Max Write/Read with a positive
# MiB/s, and summary rows with one field per header column.
check_parseable() {
	name=$1
	out="$tmp/$name.out"
	ok=1
	for op in Write Read; do
		if ! grep -Eq "^Max $op: +[0-9]+\.[0-9]{2} MiB/sec \([0-9]+\.[0-9]{2} MB/sec\)$" "$out"; then
			fail "$name: no parseable 'Max $op:' line"
			ok=0
		elif grep -Eq "^Max $op: +0\.00 " "$out"; then
			fail "$name: Max $op is 0"
			ok=0
		fi
	done
	if ! awk '/^Summary of all tests:/ { s = 1; next }
		s && /^Operation/ { n = NF; next }
		s && /^(write|read) / { rows++; if (NF != n || $14 != 2) bad = 1 }
		END { exit !(n == 27 && rows == 2 && !bad) }' "$out"; then
		fail "$name: summary table is not 27 columns with #Tasks 2 in 2 rows"
		ok=0
	fi
	[ $ok = 1 ] || show "$name"
}

expect_ok() {
	if [ "$rc" -ne 0 ]; then
		fail "$1: exit status $rc, expected 0"
		show "$1"
		return 1
	fi
	return 0
}

sfs_size() {
	"$SFS" -c "$tmp/sfs.conf" --json stat "sfs:$1" 2>/dev/null |
		sed -n 's/.*"size_bytes": *\([0-9]*\).*/\1/p'
}

start_sfs || { echo "FAIL: could not start sfs"; exit 1; }
CONF="--sfs.conf=$tmp/sfs.conf"

# 1: file per process, every check on, files kept
run fpp -a SFS "$CONF" -b 4m -t 256k -w -r -W -R -F -k -G 4242 -o /ior/fpp
if expect_ok fpp; then
	check_parseable fpp
	for f in /ior/fpp.00000000 /ior/fpp.00000001; do
		size=$(sfs_size "$f")
		[ "$size" = 4194304 ] || fail "fpp: $f is '$size' bytes, expected 4194304"
	done
	grep -q "^access  *: file-per-process$" "$tmp/fpp.out" || fail "fpp: access is not file-per-process"
fi

case_done "file per process with every check"

# 2: one shared file, read back from the other task (-C), fsync (-e)
run shared -a SFS "$CONF" -b 4m -t 256k -s 2 -w -r -W -R -C -e -k -G 4243 -o /ior/shared
if expect_ok shared; then
	check_parseable shared
	grep -q "^ordering inter file : constant task offset$" "$tmp/shared.out" ||
		fail "shared: -C not shown as 'constant task offset'"
	size=$(sfs_size /ior/shared)
	[ "$size" = 16777216 ] || fail "shared: file is '$size' bytes, expected 16777216"
fi

case_done "shared file with -C and -e"

# 3a: a read-only check of intact data with the writer's seed passes
run reread -a SFS "$CONF" -b 4m -t 256k -s 2 -r -R -C -k -G 4243 -o /ior/shared
expect_ok reread

case_done "read-only check with the writer's seed"

# 3b: copy the first 4 KiB of task 0's file over its offset 1 MiB: exactly
# 512 words are wrong, and they are task 0's data for offset 0
if "$SFS" -c "$tmp/sfs.conf" cp sfs:/ior/fpp.00000000 "$tmp/fpp0" >/dev/null 2>&1 &&
	dd if="$tmp/fpp0" of="$tmp/fpp0" bs=4096 count=1 skip=0 seek=256 conv=notrunc 2>/dev/null &&
	"$SFS" -c "$tmp/sfs.conf" cp "$tmp/fpp0" sfs:/ior/fpp.00000000 >/dev/null 2>&1; then
	run corrupt -a SFS "$CONF" -b 4m -t 256k -r -R -F -k -G 4242 -o /ior/fpp
	if [ "$rc" -eq 0 ]; then
		fail "corrupt: read check of an overwritten file exited 0"
		show corrupt
	elif ! grep -q "^WARNING: incorrect data on read (512 errors found)\.$" "$tmp/corrupt.out"; then
		fail "corrupt: no 'incorrect data on read (512 errors found)' message"
		show corrupt
	elif ! grep -q "file byte offset 1048576: .*task 0's data for offset 0$" "$tmp/corrupt.out"; then
		fail "corrupt: first bad word not traced to task 0's offset 0"
		show corrupt
	fi
else
	fail "corrupt: could not overwrite /ior/fpp.00000000 with sfs cp"
fi

case_done "corrupted data is reported and fails the run"

# 4: the POSIX baseline on a local directory; files removed without -k
mkdir -p "$tmp/posix"
run posix -a POSIX -b 2m -t 64k -w -r -W -R -F -o "$tmp/posix/testfile"
if expect_ok posix; then
	check_parseable posix
	[ -z "$(ls "$tmp/posix")" ] || fail "posix: test files left behind without -k"
fi

case_done "POSIX baseline"

# 5: the MPI-IO baseline, shared file
run mpiio -a MPIIO -b 2m -t 64k -w -r -W -R -C -o "$tmp/posix/mpiio"
expect_ok mpiio && check_parseable mpiio

case_done "MPIIO baseline"

# 6: a bad value is named, and the run fails
run badopt -a POSIX -t 64x -o "$tmp/posix/x"
if [ "$rc" -eq 0 ]; then
	fail "badopt: -t 64x exited 0"
elif ! grep -q 'sfs-ior: -t "64x": expected a size like 64k' "$tmp/badopt.out"; then
	fail "badopt: no message naming -t \"64x\""
	show badopt
fi

case_done "a bad option value is named"

if [ "$failures" -ne 0 ]; then
	echo "1..$cases"
	echo "test_sfs_ior: $failures check(s) failed"
	exit 1
fi
echo "1..$cases"
echo "test_sfs_ior: all checks passed"
exit 0
