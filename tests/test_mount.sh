#!/bin/sh
# test_mount.sh: sfs mount end to end, on a real 2-I/O-server sfs on
# loopback and a real FUSE mount in a temporary directory.
#
# Bad input first (unknown -o option, a mount point that is not a
# directory, a config without servers, servers that do not answer): each a
# clear error and no mount left. Then on a mount: POSIX conformance
# (mount_posix.py), cp and tar with byte checks, the mount and libsfs
# seeing each other's writes, sfs-ior -a POSIX with data checks (when
# mpirun is there), migagent's quiesce holding a dd (mount_quiesce.py),
# sfs umount ending the mount process, two mounts as two clients (locks,
# appends, coherence: mount_two_clients.py) and a killed mount process
# cleared by sfs umount. Every mount is unmounted on exit.
#
# Env: SFSD, SFS, SFS_IOR and MPIIO_NONCONTIG (optional, with mpirun),
# SRCDIR (the source tree, for tar).
# Exit 0 when every check passed, 1 when one failed, 77 (skip) without
# root, /dev/fuse or python3.
set -u

: "${SFSD:?set SFSD to the sfsd program}"
: "${SFS:?set SFS to the sfs program}"
here=$(cd "$(dirname "$0")" && pwd)
SRCDIR=${SRCDIR:-$here/..}

if [ "$(id -u)" != 0 ]; then
	echo "SKIP: needs root (FUSE mounts with allow_other)"
	exit 77
fi
if [ ! -c /dev/fuse ]; then
	echo "SKIP: no /dev/fuse"
	exit 77
fi
if ! command -v python3 >/dev/null 2>&1; then
	echo "SKIP: no python3"
	exit 77
fi

TEST_NAME=test_mount
. "$here/lib-sfs.sh"

mnt=$tmp/mnt
mkdir -p "$mnt"
chmod 755 "$tmp" # mount_posix.py's unprivileged user must reach the mount

is_mounted() {
	grep -q " $1 fuse" /proc/mounts
}

# Unmount (lazily if busy) whatever a failed check left, then lib-sfs's cleanup.
unmount_all() {
	for m in "$mnt" "$tmp/mnt2"; do
		is_mounted "$m" && { "$SFS" umount "$m" 2>/dev/null || umount -l "$m"; }
	done
	[ -n "${mount_pid:-}" ] && kill "$mount_pid" 2>/dev/null
	return 0
}
trap 'unmount_all; cleanup' EXIT

start_sfs || exit 1
conf=$tmp/sfs.conf

# bad NAME STATUS NEEDLE CMD...: CMD fails with STATUS, says NEEDLE, mounts nothing.
bad() {
	name=$1 want=$2 needle=$3
	shift 3
	timeout 30 "$@" >"$tmp/$name.out" 2>&1
	got=$?
	[ "$got" = "$want" ] || fail "$name: exit $got, expected $want"
	grep -q -e "$needle" "$tmp/$name.out" || fail "$name: no \"$needle\" in: $(cat "$tmp/$name.out")"
	! is_mounted "$mnt" || fail "$name: something is mounted on $mnt"
}

bad unknown_option 2 "-o nosuchopt: unknown mount option" \
	"$SFS" -c "$conf" mount "$mnt" -o allow_other,nosuchopt
bad bad_timeout 2 "-o attr_timeout=x" "$SFS" -c "$conf" mount "$mnt" -o attr_timeout=x
touch "$tmp/plainfile"
bad not_a_dir 2 "$tmp/plainfile: not a directory" "$SFS" -c "$conf" mount "$tmp/plainfile"
bad no_such_dir 2 "No such file or directory" "$SFS" -c "$conf" mount "$tmp/nonexistent"
printf '[global]\nstrip_size = 64k\n' >"$tmp/noservers.conf"
bad no_servers 3 "no metadata server" "$SFS" -c "$tmp/noservers.conf" mount "$mnt"
sed "s/127.0.0.1:$port/127.0.0.1:9/" "$conf" >"$tmp/unreachable.conf"
bad unreachable 3 "nothing was mounted.*Connection refused" \
	"$SFS" -c "$tmp/unreachable.conf" mount "$mnt"
case_done "bad input: clear errors, nothing mounted"

# The daemon: sfs mount returns once mounted, sfs umount ends it.
"$SFS" -c "$conf" mount "$mnt" || fail "sfs mount (daemonized) failed"
is_mounted "$mnt" || fail "sfs mount returned but nothing is mounted"
"$SFS" umount "$mnt" || fail "sfs umount of the daemonized mount"
case_done "mount as a daemon, umount"

# The rest in the foreground, so its log (sanitizer reports too) is kept.
"$SFS" -c "$conf" mount "$mnt" -f 2>"$tmp/mount.log" &
mount_pid=$!
i=0
while ! is_mounted "$mnt" && kill -0 "$mount_pid" 2>/dev/null && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
if ! is_mounted "$mnt"; then
	fail "sfs mount -f did not mount: $(cat "$tmp/mount.log")"
	exit 1
fi
case_done "mount in the foreground"

timeout 300 python3 "$here/mount_posix.py" "$mnt" >"$tmp/posix.out" 2>&1 ||
	fail "POSIX conformance: $(grep -v '^ok' "$tmp/posix.out")"
cat "$tmp/posix.out"
case_done "POSIX conformance (mount_posix.py)"

# cp in and out, and what libsfs sees of what the mount wrote (and back)
head -c 23456789 /dev/urandom >"$tmp/src.bin"
cp "$tmp/src.bin" "$mnt/copy.bin" || fail "cp into the mount"
cmp "$tmp/src.bin" "$mnt/copy.bin" || fail "cp into the mount: bytes differ"
cp "$mnt/copy.bin" "$tmp/back.bin" && cmp "$tmp/src.bin" "$tmp/back.bin" ||
	fail "cp out of the mount: bytes differ"
"$SFS" -c "$conf" cat sfs:/copy.bin | cmp - "$tmp/src.bin" ||
	fail "libsfs reads other bytes than the mount wrote"
"$SFS" -c "$conf" cp "$tmp/src.bin" sfs:/by-libsfs.bin || fail "sfs cp"
cmp "$tmp/src.bin" "$mnt/by-libsfs.bin" || fail "the mount reads other bytes than libsfs wrote"
case_done "cp with byte checks; mount and libsfs see each other's data"

# tar a source tree in, back out through a tarball, compare
mkdir "$mnt/tree" "$tmp/untar"
tar -C "$SRCDIR" -cf - fsclient fsserver common man | tar -C "$mnt/tree" -xf - ||
	fail "tar into the mount"
diff -r "$SRCDIR/fsclient" "$mnt/tree/fsclient" >/dev/null || fail "tar into the mount: trees differ"
[ "$(stat -c %Y "$SRCDIR/fsclient/sfs.h")" = "$(stat -c %Y "$mnt/tree/fsclient/sfs.h")" ] ||
	fail "tar into the mount: the modification time was not kept"
tar -C "$mnt/tree" -cf "$tmp/tree.tar" . && tar -C "$tmp/untar" -xf "$tmp/tree.tar" ||
	fail "tar out of the mount"
for d in fsclient fsserver common man; do
	diff -r "$SRCDIR/$d" "$tmp/untar/$d" >/dev/null || fail "tar round trip: $d differs"
done
case_done "tar in and out with byte checks"

if [ -n "${SFS_IOR:-}" ] && command -v mpirun >/dev/null 2>&1; then
	MPIRUN="mpirun -np 2"
	if mpirun --version 2>&1 | grep -q "Open MPI"; then
		MPIRUN="$MPIRUN --oversubscribe"
		export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
	fi
	mkdir "$mnt/ior"
	for shape in "-F" ""; do
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
			timeout 180 $MPIRUN "$SFS_IOR" -a POSIX -b 8m -t 1m -w -r -W -R $shape \
			-o "$mnt/ior/testfile" >"$tmp/ior.out" 2>&1 ||
			fail "sfs-ior -a POSIX $shape on the mount: $(tail -n 20 "$tmp/ior.out")"
		grep -Eq "^Max Write: +[0-9]" "$tmp/ior.out" || fail "sfs-ior $shape: no Max Write"
	done
	case_done "sfs-ior -a POSIX with data checks, file per process and shared"
fi

# Unmounted here: the quiesce check runs its own mount with its own agent.
"$SFS" umount "$mnt" || fail "sfs umount"
i=0 # 30 s: a sanitized mount process under load takes its time to exit
while [ -n "$mount_pid" ] && kill -0 "$mount_pid" 2>/dev/null && [ $i -lt 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
[ -n "$mount_pid" ] && kill -0 "$mount_pid" 2>/dev/null && fail "the mount process outlived umount"
wait "$mount_pid" || fail "the mount process exited with status $?: $(tail -n 20 "$tmp/mount.log")"
mount_pid=
if grep -q -e AddressSanitizer -e LeakSanitizer -e "runtime error:" "$tmp/mount.log"; then
	fail "sanitizer reports from the mount process:"
	cat "$tmp/mount.log"
fi
! is_mounted "$mnt" || fail "still mounted after sfs umount"
bad umount_twice 1 "not a mount point" "$SFS" umount "$mnt"
case_done "sfs umount ends the mount process"

timeout 120 python3 "$here/mount_quiesce.py" "$SFS" "$conf" "$mnt" "$tmp/agent.sock" ||
	fail "quiesce through the mount"
case_done "quiesce holds a dd into the mount until resume"

# Two mounts of one file system, as on two guests: coherent data, atomic
# appends, locks across clients, a killed client's locks freed.
mkdir -p "$tmp/mnt2"
timeout 120 python3 "$here/mount_two_clients.py" "$SFS" "$conf" "$mnt" "$tmp/mnt2" ||
	fail "two mounts"
case_done "two mounts: coherence, appends, locks across clients"

# ROMIO's data sieving (read-modify-write under fcntl locks) from 4 ranks
# alternating between two mounts: the bytes are exact only if the locks
# hold across clients.
if [ -n "${MPIIO_NONCONTIG:-}" ] && command -v mpirun >/dev/null 2>&1 &&
	ompi_info 2>/dev/null | grep -q "MCA io: romio"; then
	"$SFS" -c "$conf" mount "$mnt" && "$SFS" -c "$conf" mount "$tmp/mnt2" ||
		fail "two daemon mounts"
	romio=$(ompi_info | sed -n 's/.*MCA io: \(romio[0-9]*\).*/\1/p' | head -n1)
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		timeout 180 mpirun --oversubscribe -np 4 --mca io "$romio" "$MPIIO_NONCONTIG" \
		"$mnt/noncontig.dat" "$tmp/mnt2/noncontig.dat" >"$tmp/mpiio.out" 2>&1 ||
		fail "MPI-IO non-contiguous writes over two mounts: $(tail -n 20 "$tmp/mpiio.out")"
	"$SFS" umount "$tmp/mnt2"
	"$SFS" umount "$mnt"
	case_done "MPI-IO (ROMIO data sieving) from 4 ranks over two mounts: bytes exact"
fi

# A mount process killed with -9 leaves a dead mount ("Transport endpoint is
# not connected"); sfs umount clears it and nothing hangs.
"$SFS" -c "$conf" mount "$mnt" -f 2>/dev/null &
mount_pid=$!
i=0
while ! is_mounted "$mnt" && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
kill -9 "$mount_pid"
wait "$mount_pid" 2>/dev/null
mount_pid=
timeout 10 ls "$mnt" >/dev/null 2>&1 && fail "a dead mount still answered"
timeout 10 "$SFS" umount "$mnt" || fail "sfs umount of a dead mount"
! is_mounted "$mnt" || fail "the dead mount is still there"
timeout 10 ls "$mnt" >/dev/null || fail "the mount point is unusable after umount"
case_done "a killed mount process: sfs umount clears the dead mount"

echo "1..$cases"
[ "$failures" -eq 0 ]
