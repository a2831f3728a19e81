#!/bin/sh
# test_install.sh: `meson install` into a temporary DESTDIR, then the
# installed tree used the way a site uses it, never the build tree:
#
#   - every program, libsfs.so.0 (exactly sfs.h's functions exported, its
#     SONAME), sfs.h, sfs.pc, man pages, systemd units, bash completion
#     and sample configs are where the configured directories say;
#   - the installed `migctl --version` and `sfs --help` run;
#   - a C program (install_client.c) built with nothing but
#     `pkg-config --cflags --libs sfs` (PKG_CONFIG_PATH and
#     PKG_CONFIG_SYSROOT_DIR into DESTDIR) writes and reads a file on a
#     real sfs on loopback served by the installed sfsd, through the
#     installed libsfs.so.0 (LD_LIBRARY_PATH), and the installed sfs sees it;
#   - the installed migd finds the installed migd-stream (libexecdir
#     relative to its own directory) and serves the installed migctl;
#   - `systemd-analyze verify` passes on every unit (ExecStart paths turned
#     into DESTDIR's), and `systemd-analyze security --offline=yes` scores
#     are printed and held to their levels when written (README).
#
# Env (tests/meson.build): BUILD, SRCDIR, PREFIX, BINDIR, SBINDIR, LIBDIR,
# LIBEXECDIR, INCLUDEDIR, MANDIR, DATADIR, UNITDIR, COMPLETIONDIR, VERSION.
# Ports 25000-25999. TAP lines; the first failure exits 1.
set -u
: "${BUILD:?}" "${SRCDIR:?}" "${PREFIX:?}" "${BINDIR:?}" "${SBINDIR:?}" "${LIBDIR:?}"
: "${LIBEXECDIR:?}" "${INCLUDEDIR:?}" "${MANDIR:?}" "${DATADIR:?}" "${UNITDIR:?}"
: "${COMPLETIONDIR:?}" "${VERSION:?}"
PORT_LO=25000
PORT_HI=25999
. "$(dirname "$0")/lib-migd.sh"

sfsd_pid=
mounted=
cleanup() {
	[ -z "$mounted" ] || fusermount3 -u -z "$mounted" 2>/dev/null
	stop_pid "$sfsd_pid"
	migd_cleanup
}
# migd_setup wants the programs named; they exist once installed below
MIGD=unset MIGCTL=unset
migd_setup test_install
D=$tmp/root
MIGD=$D$SBINDIR/migd
MIGCTL=$D$BINDIR/migctl
SFS=$D$BINDIR/sfs

# ---- meson install, and what it put where

meson install -C "$BUILD" --destdir "$D" --no-rebuild --quiet >"$tmp/install.log" 2>&1 ||
	fail "meson install --destdir: $(tail -5 "$tmp/install.log")"
ok "meson install --destdir $D"

missing=
for f in "$BINDIR/migctl" "$BINDIR/sfs" "$BINDIR/sfs-ior" "$BINDIR/btio" \
	"$SBINDIR/migd" "$SBINDIR/sfsd" "$SBINDIR/migagent" "$LIBEXECDIR/migd/migd-stream" \
	"$LIBDIR/libsfs.so.0" "$LIBDIR/libsfs.so" "$LIBDIR/pkgconfig/sfs.pc" \
	"$INCLUDEDIR/sfs.h" "$MANDIR/man8/migd.8" "$MANDIR/man1/migctl.1" \
	"$MANDIR/man5/sfs.conf.5" "$MANDIR/man8/sfsd.8" "$MANDIR/man1/sfs.1" \
	"$UNITDIR/migd.service" "$UNITDIR/sfsd@.service" "$UNITDIR/sfsd.target" \
	"$UNITDIR/migagent.service" "$COMPLETIONDIR/migctl" "$COMPLETIONDIR/sfs" \
	"$DATADIR/doc/migd/examples/migd.conf" "$DATADIR/doc/migd/examples/sfs.conf"; do
	[ -e "$D$f" ] || missing="$missing $f"
done
[ -z "$missing" ] || fail "not installed:$missing"
ok "programs, libsfs, sfs.h, sfs.pc, man pages, units, completion, examples installed"

for x in "$BINDIR/migctl" "$BINDIR/sfs" "$SBINDIR/migd" "$SBINDIR/sfsd"; do
	if ldd "$D$x" | grep -q "not found"; then
		fail "$x: libraries not found: $(ldd "$D$x" | grep 'not found')"
	fi
done
ok "installed programs find their libraries"

out=$("$MIGCTL" --version) || fail "installed migctl --version: exit $?"
[ "$out" = "${out#migctl (migd) $VERSION}" ] &&
	fail "installed migctl --version: \"$out\", expected migctl (migd) $VERSION"
ok "installed migctl --version: $out"
"$SFS" --help >"$tmp/out" 2>&1 || fail "installed sfs --help: exit $?"
head -1 "$tmp/out" | grep -q "^usage: sfs " || fail "installed sfs --help: $(head -3 "$tmp/out")"
ok "installed sfs --help"

# ---- libsfs.so.0: its name, and exactly sfs.h's functions

lib=$D$LIBDIR/libsfs.so.0
soname=$(objdump -p "$lib" | awk '$1 == "SONAME" { print $2 }')
[ "$soname" = libsfs.so.0 ] || fail "libsfs.so.0: SONAME \"$soname\", expected libsfs.so.0"
grep -o '\bsfs_[a-z_0-9]*(' "$D$INCLUDEDIR/sfs.h" | tr -d '(' | sort -u >"$tmp/declared"
nm -D --defined-only "$lib" | awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' |
	sort -u >"$tmp/exported"
[ -s "$tmp/declared" ] || fail "no sfs_ functions found in the installed sfs.h"
cmp -s "$tmp/declared" "$tmp/exported" ||
	fail "libsfs.so exports other functions than sfs.h declares (fsclient/libsfs.map): $(diff "$tmp/declared" "$tmp/exported" | grep '^[<>]' | tr '\n' ' ')"
ok "libsfs.so.0: SONAME libsfs.so.0, exports exactly the $(wc -l <"$tmp/declared") functions of sfs.h"

# ---- a program of someone else's, built from pkg-config alone

export PKG_CONFIG_PATH="$D$LIBDIR/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$D"
flags=$(pkg-config --cflags --libs sfs) || fail "pkg-config --cflags --libs sfs: exit $?"
case "$flags" in
*"-I$D$INCLUDEDIR"*"-L$D$LIBDIR"*) ;;
*) fail "pkg-config --cflags --libs sfs: \"$flags\", expected -I and -L into $D" ;;
esac
# shellcheck disable=SC2086 # the flags are words
cc -o "$tmp/install_client" "$SRCDIR/tests/install_client.c" $flags 2>"$tmp/err" ||
	fail "cc install_client.c $flags: $(cat "$tmp/err")"
ok "install_client built with only: $flags"

base=$(free_port 3) || fail "no 3 free ports in $PORT_LO-$PORT_HI"
mkdir -p "$tmp/fs"
"$SFS" genconfig --io-servers 2 --dir "$tmp/fs" --port "$base" --output "$tmp/sfs.conf" \
	>/dev/null || fail "installed sfs genconfig"
"$D$SBINDIR/sfsd" -c "$tmp/sfs.conf" --all >"$tmp/sfsd.log" 2>&1 &
sfsd_pid=$!
sfs_ping() { "$SFS" -c "$tmp/sfs.conf" ping >/dev/null 2>&1; }
wait_for 10 "the installed sfsd answering sfs ping" sfs_ping
ok "installed sfsd serves on 127.0.0.1:$base-$((base + 2))"

LD_LIBRARY_PATH="$D$LIBDIR" ldd "$tmp/install_client" | grep -q " => $D$LIBDIR/libsfs.so.0 " ||
	fail "install_client does not load the installed libsfs.so.0: $(LD_LIBRARY_PATH="$D$LIBDIR" ldd "$tmp/install_client" | grep sfs)"
LD_LIBRARY_PATH="$D$LIBDIR" "$tmp/install_client" "$tmp/sfs.conf" /from-installed \
	>"$tmp/out" 2>&1 || fail "install_client: $(cat "$tmp/out")"
grep -q "3 servers answered" "$tmp/out" || fail "install_client: $(cat "$tmp/out")"
ok "install_client on the installed libsfs.so.0: $(cat "$tmp/out")"
"$SFS" -c "$tmp/sfs.conf" --json stat /from-installed >"$tmp/stat.json" ||
	fail "installed sfs stat /from-installed"
[ "$(py "$tmp/stat.json" 'd["size_bytes"]')" = 204800 ] ||
	fail "sfs stat /from-installed: $(cat "$tmp/stat.json")"
ok "the installed sfs sees its 204800 bytes"

# ---- mount.sfs as mount(8) runs it, fstab's options among the file
# system's (root and /dev/fuse, else skipped as test_mount.sh does)

if [ "$(id -u)" = 0 ] && [ -c /dev/fuse ] && [ -x "$D$SBINDIR/mount.sfs" ]; then
	mkdir "$tmp/mnt"
	"$D$SBINDIR/mount.sfs" "$tmp/sfs.conf" "$tmp/mnt" \
		-o rw,noauto,_netdev,x-systemd.requires=sfsd.target,nosuid >"$tmp/out" 2>&1 ||
		fail "mount.sfs CONF DIR -o rw,noauto,_netdev,x-systemd...,nosuid: $(cat "$tmp/out")"
	mounted=$tmp/mnt
	grep " $tmp/mnt " /proc/mounts | grep -q nosuid ||
		fail "mount.sfs: not mounted nosuid: $(grep " $tmp/mnt " /proc/mounts)"
	[ "$(wc -c <"$tmp/mnt/from-installed")" = 204800 ] ||
		fail "through mount.sfs: /from-installed is not 204800 bytes"
	"$SFS" umount "$tmp/mnt" || fail "sfs umount after mount.sfs"
	mounted=
	"$D$SBINDIR/mount.sfs" "$tmp/sfs.conf" "$tmp/mnt" -o noauto,bogus >"$tmp/out" 2>&1 &&
		fail "mount.sfs -o bogus mounted"
	grep -q bogus "$tmp/out" || fail "mount.sfs -o bogus: the message does not name it: $(cat "$tmp/out")"
	ok "mount.sfs: fstab options dropped, nosuid passed, the file read through the mount; -o bogus refused"
else
	echo "# SKIP mount.sfs: needs root, /dev/fuse and a build with fuse3"
fi

# ---- the installed migd: migd-stream from libexecdir, served to migctl

run_migd 20 --time-scale 60
grep -q "checkpoint images stream through $D$LIBEXECDIR/migd/migd-stream\$" "$tmp/migd.log" ||
	fail "installed migd did not find $D$LIBEXECDIR/migd/migd-stream"
ok "installed migd streams checkpoints through the installed migd-stream"
ctl host add h1 --uri "sim:///h1?link=1gbit" --memory 64g >/dev/null 2>"$tmp/err" ||
	fail "installed migctl host add: $(cat "$tmp/err")"
ctl_json "$tmp/hosts.json" host list
[ "$(py "$tmp/hosts.json" '[h["name"] for h in d]')" = '["h1"]' ] ||
	fail "installed migctl host list: $(cat "$tmp/hosts.json")"
ok "installed migctl and migd: host h1 added and listed"

# ---- systemd units: verify, and the exposure scores

command -v systemd-analyze >/dev/null || fail "no systemd-analyze (Debian package systemd)"
mkdir "$tmp/units"
for u in migd.service sfsd@.service sfsd.target migagent.service; do
	sed "s|$PREFIX/|$D$PREFIX/|g" "$D$UNITDIR/$u" >"$tmp/units/$u"
	(cd "$tmp/units" && systemd-analyze verify --man=no "./$u") >"$tmp/verify" 2>&1 ||
		fail "systemd-analyze verify $u: $(cat "$tmp/verify")"
	[ ! -s "$tmp/verify" ] || fail "systemd-analyze verify $u said: $(cat "$tmp/verify")"
done
ok "systemd-analyze verify: migd.service sfsd@.service sfsd.target migagent.service"
# the levels when written (README): migd 3.7, sfsd@ 1.2, migagent 1.4
for spec in migd.service:4.0 sfsd@.service:1.5 migagent.service:1.5; do
	u=${spec%:*}
	limit=${spec#*:}
	line=$(cd "$tmp/units" && systemd-analyze security --offline=yes "./$u" 2>&1 | grep "Overall exposure level")
	score=$(echo "$line" | sed -n 's/.*: \([0-9.]*\) .*/\1/p')
	echo "# systemd-analyze security --offline=yes $u: $score $(echo "$line" | awk '{ print $(NF-1) }')"
	[ -n "$score" ] || fail "systemd-analyze security $u: $line"
	awk -v s="$score" -v l="$limit" 'BEGIN { exit !(s <= l) }' ||
		fail "systemd-analyze security $u: exposure $score, was at most $limit"
done
ok "systemd-analyze security: exposure within the levels written down"

migd_done test_install
