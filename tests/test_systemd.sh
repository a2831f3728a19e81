#!/bin/sh
# test_systemd.sh: the installed units under a real systemd. This machine's
# PID 1 is not systemd, so the test boots one: systemd-nspawn --volatile=yes
# (the host's /usr read-only, everything else a fresh tmpfs) with a private
# network, the DESTDIR install bound at its prefix, and a oneshot unit that
# runs tests/systemd_check.sh inside and powers the container off. Inside:
#
#   - `systemctl enable sfsd@meta sfsd@io0 sfsd@io1 migd migagent` and
#     `systemctl start sfsd.target migd migagent` return once each is ready
#     (Type=notify) and every unit is active with its STATUS=;
#   - sfs on those servers: ping, a file copied in and read back (the
#     I/O servers checking capabilities with the key they got as a
#     credential);
#   - the agent (as a dynamic user) connects to migd, a sim migration with
#     quiesce required completes through it;
#   - sfsd and migagent run as dynamic users, migd as root;
#   - their Prometheus endpoints answer under the units' hardening, and
#     the migration is counted;
#   - a warning of migd reaches the journal as priority 4 (its "<4>"
#     prefix; the libxl backend's warning where libxl is built: no Xen);
#   - `systemctl stop sfsd.target` stops every sfsd@ instance.
#
# Root and systemd-nspawn (Debian package systemd-container) are needed:
# skipped (77) without them, like the other tests that need root.
# Env: BUILD, SRCDIR, PREFIX, SYSCONFDIR, UNITDIR, LIBXL (yes/no).
set -u
: "${BUILD:?}" "${SRCDIR:?}" "${PREFIX:?}" "${SYSCONFDIR:?}" "${UNITDIR:?}" "${LIBXL:?}"
if [ "$(id -u)" != 0 ]; then
	echo "SKIP: needs root (systemd-nspawn)"
	exit 77
fi
if ! command -v systemd-nspawn >/dev/null; then
	echo "SKIP: no systemd-nspawn (Debian package systemd-container)"
	exit 77
fi
# the install is bound over PREFIX, so it must be a prefix systemd finds
# units under that is not /usr itself
if [ "$PREFIX" != /usr/local ] || [ "$UNITDIR" != /usr/local/lib/systemd/system ]; then
	echo "SKIP: prefix $PREFIX, units in $UNITDIR: the test needs the default /usr/local"
	exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_systemd.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP
D=$tmp/root

meson install -C "$BUILD" --destdir "$D" --no-rebuild --quiet >"$tmp/install.log" 2>&1 || {
	echo "not ok 1 - meson install: $(tail -5 "$tmp/install.log")"
	exit 1
}
echo "ok 1 - meson install --destdir"
mkdir -p "$D$SYSCONFDIR/default" "$tmp/out"
cat >"$D$SYSCONFDIR/migd.conf" <<CONF
[migd]
listen = tcp://127.0.0.1:7700
[agent]
listen = tcp://127.0.0.1:7710
quiesce = required
[metrics]
listen = 127.0.0.1:9464
CONF
sed 's/storage[0-9]/127.0.0.1/' "$SRCDIR/dist/examples/sfs.conf" >"$D$SYSCONFDIR/sfs.conf"
printf '\n[metrics]\nlisten = 127.0.0.1:9470\n' >>"$D$SYSCONFDIR/sfs.conf"
# the capability key, root's 0600 file, as a site makes it (README)
(umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$D$SYSCONFDIR/sfs.key")
echo 'MIGAGENT_OPTS="--migd tcp://127.0.0.1:7710 --guest g1"' >"$D$SYSCONFDIR/default/migagent"
cp "$SRCDIR/tests/systemd_check.sh" "$D$PREFIX/systemd_check.sh"
# The container's first boot applies presets (Debian's: enable all): keep
# ours disabled, so that the check's systemctl enable and start do it.
mkdir -p "$D$PREFIX/lib/systemd/system-preset"
printf 'disable %s\n' migd.service migagent.service sfsd.target sfsd@.service \
	>"$D$PREFIX/lib/systemd/system-preset/00-test-systemd.preset"
cat >"$D$UNITDIR/migd-install-check.service" <<UNIT
[Unit]
Description=test_systemd.sh: the installed units under systemd
After=multi-user.target
[Service]
Type=oneshot
Environment=PREFIX=$PREFIX SYSCONFDIR=$SYSCONFDIR LIBXL=$LIBXL
ExecStart=/bin/sh $PREFIX/systemd_check.sh
StandardOutput=file:/out/check.log
StandardError=file:/out/check.err
ExecStopPost=/bin/systemctl poweroff --no-block
UNIT

# Bounded: the check's own waits are bounded, and timeout ends the
# container. networkd-wait-online is masked: the container's network is
# only lo, and it would hold network-online.target (which our units want)
# for its 2-minute timeout.
# sfs authenticates with MUNGE (auth = munge, the default): the container
# uses this machine's munged through its socket directory, as a site's
# units use the host's munge.service. The container's own munge.service is
# masked: it has no key, and its RuntimeDirectory would be this one.
"$SRCDIR/scripts/munged-ensure.sh" || { echo "not ok 2 - munged does not run on this machine"; exit 1; }
started=$(date +%s)
timeout 600 systemd-nspawn -D / --volatile=yes --private-network --register=no --keep-unit \
	--machine="tsysd$$" --console=pipe --bind-ro="$D$PREFIX:$PREFIX" --bind="$tmp/out:/out" \
	--bind=/run/munge -b systemd.wants=migd-install-check.service \
	systemd.mask=systemd-networkd-wait-online.service systemd.mask=munge.service \
	>"$tmp/nspawn.log" 2>&1
rc=$?
echo "# the container ran for $(($(date +%s) - started)) s"
[ -s "$tmp/out/check.log" ] || {
	echo "not ok 2 - the container ran no check (systemd-nspawn exit $rc): $(tail -20 "$tmp/nspawn.log")"
	exit 1
}
cat "$tmp/out/check.log"
if grep -q '^not ok' "$tmp/out/check.log" || ! grep -q '^# check done' "$tmp/out/check.log"; then
	echo "# stderr of the check:"
	tail -30 "$tmp/out/check.err"
	exit 1
fi
echo "PASS: test_systemd"
