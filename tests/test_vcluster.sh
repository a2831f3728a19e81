#!/bin/bash
# test_vcluster.sh: the virtual cluster end to end, as root: vcluster up
# with 2 hosts and a shaped link, sfs servers in the storage namespace, a
# guest booted from the mkimage image on each host with the QEMU command
# line of CONTRACTS.md (cluster/vguest), then from the root namespace:
# ping, a command over ssh (dbclient and the image's key), sfs data
# written in a guest read on the host and back, an OpenMPI job across the
# two guests (hostname, and sfs-ior -a SFS with its data checks), and
# `vcluster down` leaving no namespace, veth, tap, bridge, process or state
# behind. Also: up cleans up after a failure half-way, down is idempotent,
# and without root vcluster says it needs root.
#
# Cluster name tvc, subnet 10.78 (its own, so it can run beside other
# clusters). Env: VCLUSTER, VGUEST (the scripts), SFSD, SFS (the servers and
# client the storage namespace runs), IMAGE_DIR (cluster/mkimage's output;
# falls back to FALLBACK_IMAGE_DIR, the plain build's image, which the
# sanitizer tree shares). Exit 0 when every check passed, 1 when one
# failed, 77 (skip) without root, QEMU, dbclient or an image.
set -u

here=$(cd "$(dirname "$0")" && pwd)
VCLUSTER=${VCLUSTER:-$here/../cluster/vcluster}
VGUEST=${VGUEST:-$here/../cluster/vguest}
NAME=tvc
SUBNET=10.78
BOOT_TIMEOUT=150 # seconds for one guest to print MIGD-GUEST-READY under TCG

skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces)"
command -v qemu-system-x86_64 >/dev/null || skip "no qemu-system-x86_64"
command -v dbclient >/dev/null || skip "no dbclient (dropbear-bin)"
command -v ping >/dev/null || skip "no ping (iputils-ping)"
image=
for d in "${IMAGE_DIR:-}" "${FALLBACK_IMAGE_DIR:-}"; do
	if [ -n "$d" ] && [ -f "$d/vmlinuz" ] && [ -f "$d/initrd.img" ] && [ -f "$d/id_guest" ]; then
		image=$d
		break
	fi
done
[ -n "$image" ] || skip "no guest image in ${IMAGE_DIR:-} ${FALLBACK_IMAGE_DIR:-} (cluster/mkimage)"
: "${SFSD:?set SFSD to the sfsd program}"
: "${SFS:?set SFS to the sfs program}"
export SFSD SFS

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_vcluster.XXXXXX") || exit 1
cleanup() {
	"$VCLUSTER" down --name "$NAME" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

failures=0 cases=0 failures_before=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
case_done() {
	cases=$((cases + 1))
	if [ "$failures" -gt "$failures_before" ]; then echo "not ok $cases - $1"
	else echo "ok $cases - $1"; fi
	failures_before=$failures
}

# ssh G CMD: run CMD in guest G (stderr of dbclient's host key notice dropped)
gssh() {
	local g=$1
	shift
	timeout 120 "$VGUEST" --name "$NAME" --image "$image" ssh "$g" "$@" 2>"$tmp/ssh.err"
}

# genv G: the variables of guest G's env file (log, pidfile, host, ...)
genv() {
	log= pidfile= host=
	# shellcheck disable=SC1090
	. "/run/vcluster/$NAME/guests/$1.env"
}

# what of ours is left: namespaces, the controller veth, taps, state
leftovers() {
	ip netns list | awk '{ print $1 }' | grep -E "^$NAME-" | sed 's/^/netns /'
	ip -o link show | awk -F': ' '{ print $2 }' | sed 's/@.*//' | grep -E "^$NAME-" | sed 's/^/link /'
	ip -o link show type tun 2>/dev/null | awk -F': ' '{ print $2 }' | grep -E '^vg[0-9a-f]{8}$' | sed 's/^/tap /'
	[ -e "/run/vcluster/$NAME" ] && echo "state /run/vcluster/$NAME"
	[ -e "/var/lib/vcluster/$NAME" ] && echo "data /var/lib/vcluster/$NAME"
	pgrep -f "/run/vcluster/$NAME/" | sed 's/^/process /'
	return 0
}

"$VCLUSTER" down --name "$NAME" >/dev/null 2>&1 # a previous run's remains

# 1: up, hostnames, status
if "$VCLUSTER" up --name "$NAME" --subnet "$SUBNET" --hosts 2 --link 1gbit >"$tmp/up.out" 2>&1; then
	for h in n1 n2; do
		hn=$("$VCLUSTER" exec --name "$NAME" "$h" -- hostname 2>&1)
		[ "$hn" = "$h" ] || fail "host $h has hostname \"$hn\""
	done
	[ "$(hostname)" != n1 ] || fail "exec changed the root namespace's hostname"
	grep -q "^netns=$NAME-n1$" "/run/vcluster/$NAME/host/n1.env" &&
		grep -q "^addr=$SUBNET.0.11$" "/run/vcluster/$NAME/host/n1.env" &&
		grep -q '^bridge=br0$' "/run/vcluster/$NAME/host/n1.env" || fail "host/n1.env: $(cat "/run/vcluster/$NAME/host/n1.env")"
	grep -q '^VC_HOSTS="n1 n2"$' "/run/vcluster/$NAME/cluster.env" || fail "cluster.env: $(cat "/run/vcluster/$NAME/cluster.env")"
	"$VCLUSTER" status --name "$NAME" --json >"$tmp/status.json" 2>&1 &&
		python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert d["up"] and [h["hostname"] for h in d["hosts"]] == ["n1", "n2"], d' "$tmp/status.json" ||
		fail "status --json: $(cat "$tmp/status.json")"
else
	fail "vcluster up: $(cat "$tmp/up.out")"
fi
case_done "vcluster up: 2 hosts with their own hostnames, state files, status --json"

# 2: links shaped with tbf on both ends of each uplink; host to host and
# controller to host reachable
tc -n "$NAME-n1" qdisc show dev uplink | grep -q 'tbf.*rate 1Gbit' || fail "n1 uplink: $(tc -n "$NAME-n1" qdisc show dev uplink)"
tc -n "$NAME-sw" qdisc show dev n2 | grep -q 'tbf.*rate 1Gbit' || fail "switch side of n2: $(tc -n "$NAME-sw" qdisc show dev n2)"
tc -n "$NAME-storage" qdisc show dev eth0 | grep -q 'tbf.*rate 1Gbit' || fail "storage uplink not shaped"
"$VCLUSTER" exec --name "$NAME" n1 -- ping -c 1 -W 5 "$SUBNET.0.12" >/dev/null 2>&1 || fail "n1 cannot ping n2"
ping -c 1 -W 5 "$SUBNET.0.2" >/dev/null 2>&1 || fail "the root namespace cannot ping storage"
case_done "uplinks shaped (tbf 1gbit both ends); hosts, storage and controller on one network"

# 3: sfs servers in the storage namespace
if "$VCLUSTER" sfs start --name "$NAME" >"$tmp/sfs.out" 2>&1; then
	grep -q "address = $SUBNET.0.2:7000" "/run/vcluster/$NAME/sfs.conf" || fail "sfs.conf has no server on $SUBNET.0.2:7000"
	"$SFS" -c "/run/vcluster/$NAME/sfs.conf" ping >"$tmp/ping.out" 2>&1 || fail "sfs ping: $(cat "$tmp/ping.out")"
else
	fail "vcluster sfs start: $(cat "$tmp/sfs.out")"
fi
case_done "vcluster sfs start: servers in $NAME-storage answer"

# 4, 5: a guest on each host
boot() {
	local g=$1 h=$2 ip=$3
	if "$VGUEST" --name "$NAME" --image "$image" --timeout "$BOOT_TIMEOUT" start "$g" --host "$h" --ip "$ip" >"$tmp/$g.out" 2>&1; then
		cat "$tmp/$g.out"
		genv "$g"
		grep -c "^MIGD-GUEST-READY name=$g ip=$ip$" "$log" | grep -qx 1 ||
			fail "$g: not exactly one ready line"
		ip -n "$NAME-$h" -o link show master br0 | grep -q 'vg[0-9a-f]\{8\}' || fail "$g: no tap on br0 of $h"
		ps -o args= -p "$(cat "$pidfile")" | grep -qE -- "-accel (kvm|tcg,tb-size=64) -m (256M|262152k) -smp 1 -nodefaults -no-user-config -display none -vga none -kernel .* -initrd .* -append console=ttyS0 no_timer_check migd.name=$g migd.ip=$ip/16 migd.gw=$SUBNET.0.1 -netdev tap,id=n0,ifname=vg[0-9a-f]{8},script=no,downscript=no -device virtio-net-pci,netdev=n0,mac=52:54:00:[0-9a-f:]{8},romfile= -serial file:[^ ]* -qmp unix:[^ ]*,server=on,wait=off -fw_cfg name=opt/migd/sfs.conf,file=" ||
			fail "$g: QEMU command line differs from CONTRACTS.md: $(ps -o args= -p "$(cat "$pidfile")")"
	else
		fail "$g did not boot: $(cat "$tmp/$g.out"); serial log: $(tail -5 "/run/vcluster/$NAME/guests/$g@$h.log" 2>/dev/null)"
	fi
}
boot g1 n1 "$SUBNET.1.2"
case_done "guest g1 boots on n1 and prints MIGD-GUEST-READY"
boot g2 n2 "$SUBNET.1.3"
case_done "guest g2 boots on n2 and prints MIGD-GUEST-READY"

# 6: ping and ssh from the root namespace
ping -c 3 -W 5 "$SUBNET.1.2" >"$tmp/ping.out" 2>&1 || fail "ping g1: $(cat "$tmp/ping.out")"
tail -1 "$tmp/ping.out"
out=$(gssh g1 'hostname; ip -o -4 addr show eth0; cat /etc/hosts')
echo "$out" | grep -qx g1 || fail "ssh g1 hostname: $out $(cat "$tmp/ssh.err")"
echo "$out" | grep -q "inet $SUBNET.1.2/16" || fail "g1 eth0: $out"
gssh g2 'exit 3'
[ $? = 3 ] || fail "ssh does not pass the exit status"
case_done "ping and ssh into the guests from the root namespace"

# 7: sfs from a guest (fw_cfg sfs.conf) and back
gssh g1 'echo written-in-g1 >/tmp/f && sfs -c /etc/sfs.conf cp /tmp/f sfs:/from-g1' >/dev/null ||
	fail "sfs cp in g1: $(cat "$tmp/ssh.err")"
got=$("$SFS" -c "/run/vcluster/$NAME/sfs.conf" cat sfs:/from-g1 2>&1)
[ "$got" = written-in-g1 ] || fail "host read \"$got\" from sfs:/from-g1"
head -c 300000 /dev/urandom >"$tmp/blob"
"$SFS" -c "/run/vcluster/$NAME/sfs.conf" cp "$tmp/blob" sfs:/blob >/dev/null 2>&1 || fail "host sfs cp"
sum=$(gssh g2 'SFS_CONF=/etc/sfs.conf sfs cat sfs:/blob | md5sum')
[ "${sum%% *}" = "$(md5sum <"$tmp/blob" | cut -d' ' -f1)" ] || fail "g2 read a different sfs:/blob: $sum"
case_done "guests read and write sfs served from the storage namespace"

# 8: OpenMPI across the two guests
mpi="mpirun --allow-run-as-root -np 2 --host $SUBNET.1.2,$SUBNET.1.3"
out=$(gssh g1 "$mpi hostname")
[ "$(echo "$out" | sort | tr '\n' ' ')" = "g1 g2 " ] || fail "mpirun hostname across guests: $out $(cat "$tmp/ssh.err")"
out=$(gssh g1 "$mpi sfs-ior -a SFS --sfs.conf=/etc/sfs.conf -b 2m -t 256k -w -r -W -R -C -F -o /ior-test")
echo "$out" | grep -q '^Max Write:' && echo "$out" | grep -q '^Max Read:' && ! echo "$out" | grep -qi 'error' ||
	fail "sfs-ior across guests: $out $(tail -5 "$tmp/ssh.err")"
echo "$out" | grep -E '^(write|read) ' | head -2
case_done "mpirun -np 2 across guests: hostname and sfs-ior -a SFS with data checks"

# 9: a guest live-migrated (raw QMP) to the other host keeps its address,
# its uptime and its sfs access
up0=$(gssh g2 'cut -d" " -f1 /proc/uptime')
if "$VGUEST" --name "$NAME" migrate g2 --to n1 >"$tmp/mig.out" 2>&1; then
	cat "$tmp/mig.out"
	genv g2
	[ "$host" = n1 ] || fail "g2 is on \"$host\" after the migration"
	ip -n "$NAME-n2" -o link show type tun 2>/dev/null | grep -q . && fail "a tap is left on n2"
	ping -c 1 -W 5 "$SUBNET.1.3" >/dev/null 2>&1 || fail "g2 does not answer ping after the migration"
	out=$(gssh g2 'cut -d" " -f1 /proc/uptime; ip -o -4 addr show eth0; SFS_CONF=/etc/sfs.conf sfs cat sfs:/from-g1')
	up1=$(echo "$out" | head -1)
	awk -v a="$up0" -v b="$up1" 'BEGIN { exit !(b > a) }' || fail "g2 uptime went from $up0 to $up1: rebooted?"
	echo "$out" | grep -q "inet $SUBNET.1.3/16" || fail "g2 address after the migration: $out"
	echo "$out" | grep -qx written-in-g1 || fail "g2 cannot read sfs after the migration: $out"
else
	fail "vguest migrate g2 --to n1: $(cat "$tmp/mig.out")"
fi
# and back: the host bridges keep their MACs while taps come and go (a
# bridge that took a tap's MAC left stale ARP entries behind, stalling the
# next migration to that host)
if "$VGUEST" --name "$NAME" migrate g2 --to n2 >"$tmp/mig.out" 2>&1; then
	cat "$tmp/mig.out"
	gssh g2 'hostname' | grep -qx g2 || fail "g2 unreachable after migrating back: $(cat "$tmp/ssh.err")"
else
	fail "vguest migrate g2 --to n2: $(cat "$tmp/mig.out")"
fi
for i in 1 2; do
	mac=$(ip -n "$NAME-n$i" -o link show br0 | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
	[ "$mac" = "$(printf '02:0a:4e:00:00:%02x' $((10 + i)))" ] || fail "br0 of n$i has MAC $mac"
done
case_done "a guest migrated to another host and back keeps its address, uptime and sfs"

# 10: down removes everything, and again is fine
"$VCLUSTER" down --name "$NAME" >"$tmp/down.out" 2>&1 || fail "vcluster down: $(cat "$tmp/down.out")"
sleep 0.5
left=$(leftovers)
[ -z "$left" ] || fail "left after down: $left"
"$VCLUSTER" down --name "$NAME" >"$tmp/down.out" 2>&1 || fail "second vcluster down: $(cat "$tmp/down.out")"
case_done "vcluster down leaves no namespace, veth, tap, bridge, process or state; twice is fine"

# 11: a failed up removes what it made
if VCLUSTER_FAIL_AT=n2 "$VCLUSTER" up --name "$NAME" --subnet "$SUBNET" --hosts 3 >"$tmp/up.out" 2>&1; then
	fail "up with VCLUSTER_FAIL_AT=n2 succeeded"
fi
left=$(leftovers)
[ -z "$left" ] || fail "left after a failed up: $left"
case_done "a failed up removes what it had made"

# 12: usage errors and no root
"$VCLUSTER" up --name "$NAME" --link 1gbps >"$tmp/err.out" 2>&1
[ $? = 2 ] && grep -q '1gbps' "$tmp/err.out" || fail "bad --link: $(cat "$tmp/err.out")"
if command -v setpriv >/dev/null; then
	# a copy nobody can read and run: the clone may sit in a directory
	# only root can enter (mktemp -d)
	nr=$(mktemp -d /tmp/vcluster-nr.XXXXXX) && chmod 755 "$nr" && cp "$VCLUSTER" "$nr/vcluster" &&
		chmod 755 "$nr/vcluster" || fail "copying vcluster for the non-root check"
	(cd / && setpriv --reuid 65534 --regid 65534 --clear-groups "$nr/vcluster" status) \
		>"$tmp/err.out" 2>&1
	[ $? = 1 ] && grep -q 'needs root' "$tmp/err.out" || fail "without root: $(cat "$tmp/err.out")"
	rm -rf "$nr"
fi
case_done "bad options name the value; without root it says it needs root"

echo "1..$cases"
[ "$failures" -eq 0 ]
