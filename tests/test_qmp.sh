#!/bin/sh
# test_qmp.sh: migd on the qmp backend with real QEMU processes, driven by
# the real migctl.
#
# Loopback hosts (no namespaces, no root): a guest is booted (BIOS only, or
# the guest image when IMAGE_DIR holds one), migrated there and back with
# `migrate --wait`; history holds QEMU's figures (total, downtime, bytes,
# and the calibration's link rate and round-0 RAM); the guest runs on exactly
# one host. As root, the same between two network namespaces of this test
# (tqmp-a, tqmp-b: a bridge br0 each, joined by a veth, 10.79.0.0/16), the
# guest on a tap in its host's namespace. Then an abort mid-way (bandwidth
# capped to make the migration slow) leaves the guest running on its
# source with the destination QEMU gone, and kill -9 of migd mid-migration
# followed by a restart leaves the guest running on exactly one host with
# the row failed ("interrupted by a migd restart") or completed,
# consistently; a migration that QEMU completes while migd is down (the
# test lifts the cap by hand) is found completed at the restart, with the
# source quit. No QEMU of the test is left at the end.
#
# Env: MIGD, MIGCTL (the programs under test), IMAGE_DIR (optional: a
# directory with vmlinuz and initrd.img). Exit 77 without
# qemu-system-x86_64 or python3.
set -u
. "$(dirname "$0")/lib-migd.sh"

skip_without qemu-system-x86_64
skip_without python3

netns_made=
vc_made=

qemu_pids() { # the QEMUs of this test, by their QMP socket path
	pgrep -f -- "-qmp unix:$tmp/" 2>/dev/null
}

cleanup() {
	if [ -n "$migd_pid" ]; then
		kill "$migd_pid" 2>/dev/null
		wait "$migd_pid" 2>/dev/null
	fi
	for p in $(qemu_pids); do
		kill -9 "$p" 2>/dev/null
	done
	if [ -n "$netns_made" ]; then
		ip netns del tqmp-a 2>/dev/null
		ip netns del tqmp-b 2>/dev/null
	fi
	[ -z "$vc_made" ] || rm -rf /run/vcluster/tqmp-vc
	rm -rf "$tmp"
}
ctl_timeout=10000 # ms, for ctl
poll_hz=10        # wait_for's checks a second
migd_setup test_qmp
mport=$(free_port) || fail "no free port for migrations"

image=none
mem=64m
if [ -n "${IMAGE_DIR:-}" ] && [ -f "$IMAGE_DIR/vmlinuz" ] && [ -f "$IMAGE_DIR/initrd.img" ]; then
	image=$IMAGE_DIR
	mem=192m
fi

# qmp_status SOCK: QEMU's query-status, straight over QMP (only while migd
# is stopped: QEMU serves one QMP client at a time and migd keeps one).
qmp_status() {
	python3 - "$1" <<'EOF'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
f = s.makefile("rw")
json.loads(f.readline())
for cmd in ("qmp_capabilities", "query-status"):
    f.write(json.dumps({"execute": cmd}) + "\n")
    f.flush()
    while True:
        m = json.loads(f.readline())
        if "event" not in m:
            break
print(m["return"]["status"])
EOF
}

start_migd() { # extra migd options
	run_migd 50 --qmp-image-dir "$image" --qmp-migration-port-base "$mport" "$@"
}

stop_migd() {
	kill "$migd_pid" 2>/dev/null
	wait "$migd_pid" 2>/dev/null
	migd_pid=
}

# guest_qemus G: how many QEMUs run guest G
guest_qemus() {
	pgrep -f -- "-qmp unix:$tmp/state-qmp/$1/" 2>/dev/null | wc -l
}

# on_one_host G HOST: exactly one QEMU for G, on HOST (its files), and
# migd's guest table agrees
on_one_host() {
	n=$(guest_qemus "$1")
	[ "$n" -eq 1 ] || fail "guest $1: expected 1 QEMU, found $n"
	pgrep -f -- "-qmp unix:$tmp/state-qmp/$1/$2.qmp" >/dev/null ||
		fail "guest $1: its QEMU is not the one of host $2: $(ls "$tmp/state-qmp/$1")"
	ctl_json "$tmp/g.json" guest show "$1"
	[ "$(py "$tmp/g.json" 'd["host"]')" = "$2" ] ||
		fail "guest $1: migd says host $(py "$tmp/g.json" 'd["host"]'), QEMU runs on $2"
}

# history_row ID FIELD
history_row() {
	ctl_json "$tmp/h.json" history
	py "$tmp/h.json" "[m for m in d if m['id'] == $1][0]['$2']"
}

# check_figures ID: QEMU's figures on a completed row, those the cost model
# is calibrated from included (query-migrate's ram.mbps and normal pages;
# the dirty rate may be null after a migration shorter than QEMU's 1 s
# measuring period)
check_figures() {
	ctl_json "$tmp/h.json" history
	python3 - "$tmp/h.json" "$1" <<'EOF' || fail "migration $1: figures: $(cat "$tmp/h.json")"
import json, sys
d = json.load(open(sys.argv[1]))
m = [m for m in d if m["id"] == int(sys.argv[2])][0]
assert m["state"] == "completed", m
assert m["total_ms"] > 0 and m["downtime_ms"] > 0 and m["bytes"] > 0, m
assert (m["link_bps"] or 0) > 0 and (m["ram_bytes"] or 0) > 0, m
assert m["ram_bytes"] <= m["bytes"], m
assert "dirty_rate_bps" in m and "setup_ms" in m, m
EOF
}

# migrate_wait G TO: migctl migrate --wait, its id in $mig_id (not run in
# $(...), where fail would end only the subshell); the state of both test
# namespaces' networks follows a failure if a watcher left it in $tmp/netdiag
migrate_wait() {
	ctl --json migrate "$1" --to "$2" --wait >"$tmp/m.json" 2>"$tmp/err" ||
		fail "migrate $1 --to $2 --wait: $(cat "$tmp/err") $(cat "$tmp/m.json")
$(sed 's/^/# /' "$tmp/netdiag" 2>/dev/null)"
	mig_id=$(py "$tmp/m.json" 'd["id"]')
}

# ---- the [qmp] section of migd.conf ----

printf '[migd]\nmax_concurrent = 2\n[qmp]\nimage_dir = none\ntb_size = 32\n' >"$tmp/good.conf"
"$MIGD" -c "$tmp/good.conf" -n >/dev/null 2>"$tmp/err" || fail "[qmp] config refused: $(cat "$tmp/err")"
"$MIGD" -c "$tmp/good.conf" --qmp-accel tcg --dump-config >"$tmp/dump" 2>"$tmp/err" ||
	fail "--dump-config: $(cat "$tmp/err")"
sed -n '/^\[qmp\]/,$p' "$tmp/dump" | grep -qx 'tb_size = 32' || fail "dump-config lacks [qmp] tb_size = 32"
sed -n '/^\[qmp\]/,$p' "$tmp/dump" | grep -qx 'accel = tcg' || fail "dump-config lacks --qmp-accel tcg"
"$MIGD" -c "$tmp/dump" -n >/dev/null 2>"$tmp/err" || fail "the dumped config does not load back: $(cat "$tmp/err")"
printf '[qmp]\ncolour = red\n' >"$tmp/bad.conf"
"$MIGD" -c "$tmp/bad.conf" -n >/dev/null 2>"$tmp/err" && fail "an unknown [qmp] setting was accepted"
grep -q 'bad.conf:2: unknown setting "colour" in \[qmp\]' "$tmp/err" || fail "bad [qmp] setting: $(cat "$tmp/err")"
"$MIGD" --qmp-accel fast -n >/dev/null 2>"$tmp/err" && fail "accel fast was accepted"
grep -q 'fast' "$tmp/err" || fail "bad accel: $(cat "$tmp/err")"
ok "[qmp] settings: file, options, dump and load back; bad ones named"

# ---- loopback hosts ----

start_migd --qmp-state-dir "$tmp/state-qmp"
ok "migd with the qmp backend answers (image: $image)"

# cluster= names a virtual cluster that does not exist: loopback for sure
ctl host add h1 --uri "qmp:///h1?cluster=tqmp-none" >/dev/null 2>"$tmp/err" ||
	fail "host add h1: $(cat "$tmp/err")"
ctl host add h2 --uri "qmp:///h2?cluster=tqmp-none" >/dev/null 2>"$tmp/err" ||
	fail "host add h2: $(cat "$tmp/err")"
ctl host add bad --uri "qmp:///bad?colour=red" >/dev/null 2>"$tmp/err" &&
	fail "host add with an unknown URI parameter was accepted"
grep -q colour "$tmp/err" || fail "bad URI: expected the message to name colour: $(cat "$tmp/err")"
ok "loopback hosts added; a bad qmp URI is refused naming the parameter"

ctl guest add g1 --host h1 --memory "$mem" >/dev/null 2>"$tmp/err" ||
	fail "guest add g1: $(cat "$tmp/err")"
on_one_host g1 h1
ok "guest g1 booted on h1 (one QEMU)"
# genid_of G HOST: the VM generation ID on the command line of G's QEMU there
genid_of() {
	p=$(pgrep -f -- "-qmp unix:$tmp/state-qmp/$1/$2.qmp") &&
		tr '\0' '\n' </proc/"$p"/cmdline | sed -n 's/^vmgenid,guid=//p'
}
gen0=$(genid_of g1 h1)
[ -n "$gen0" ] || fail "g1's QEMU on h1 has no vmgenid device"

migrate_wait g1 h2
id1=$mig_id
check_figures "$id1"
on_one_host g1 h2
[ "$(genid_of g1 h2)" = "$gen0" ] ||
	fail "g1's VM generation ID changed in a live migration: $gen0 -> $(genid_of g1 h2)"
migrate_wait g1 h1
id2=$mig_id
check_figures "$id2"
on_one_host g1 h1
ok "g1 migrated h1 -> h2 -> h1; history has QEMU's total, downtime and bytes; same VM generation ID"

# ---- two network namespaces (root) ----

setup_netns() {
	ip netns add tqmp-a && ip netns add tqmp-b || return 1
	netns_made=1
	ip link add tqmp-va netns tqmp-a type veth peer name tqmp-vb netns tqmp-b || return 1
	for x in a b; do
		ns=tqmp-$x
		addr=10.79.0.11
		[ $x = b ] && addr=10.79.0.12
		ip -n $ns link add br0 type bridge &&
			ip -n $ns addr add $addr/16 dev br0 &&
			ip -n $ns link set br0 up &&
			ip -n $ns link set lo up &&
			ip -n $ns link set tqmp-v$x master br0 &&
			ip -n $ns link set tqmp-v$x up || return 1
	done
}

if [ "$(id -u)" -eq 0 ] && command -v ip >/dev/null 2>&1 && [ -c /dev/net/tun ]; then
	ip netns del tqmp-a 2>/dev/null
	ip netns del tqmp-b 2>/dev/null
	setup_netns || fail "could not make the namespaces tqmp-a and tqmp-b"
	if command -v ping >/dev/null 2>&1; then
		pings() { ip netns exec tqmp-a ping -c 1 -W 1 10.79.0.12 >/dev/null 2>&1; }
		wait_for 10 "tqmp-a reaching tqmp-b over the veth (ping)" pings
	fi
	ctl host add na --uri "qmp:///na?netns=tqmp-a&addr=10.79.0.11" >/dev/null 2>"$tmp/err" ||
		fail "host add na: $(cat "$tmp/err")"
	ctl host add nb --uri "qmp:///nb?netns=tqmp-b&addr=10.79.0.12" >/dev/null 2>"$tmp/err" ||
		fail "host add nb: $(cat "$tmp/err")"
	br_mac=$(ip -n tqmp-a link show br0 | awk '/link\/ether/ { print $2 }')
	ctl guest add g2 --host na --memory "$mem" >/dev/null 2>"$tmp/err" ||
		fail "guest add g2 on na: $(cat "$tmp/err")"
	on_one_host g2 na
	tap=$(cut -d' ' -f2 "$tmp/state-qmp/g2/na.net")
	ip -n tqmp-a link show "$tap" 2>/dev/null | grep -q "master br0" ||
		fail "g2's tap $tap is not on br0 in tqmp-a"
	guest_ip=$(py "$tmp/state-qmp/g2/guest.json" 'd["ip"]')
	case $guest_ip in 10.79.1.*) ;; *) fail "g2: address $guest_ip, expected 10.79.1.X" ;; esac
	reach=
	if [ "$image" != none ] && [ -f "$image/id_guest" ] && command -v dbclient >/dev/null 2>&1; then
		reach=1
		ready() { grep -q MIGD-GUEST-READY "$tmp/state-qmp/g2/na.log" 2>/dev/null; }
		wait_for 120 "g2 printing MIGD-GUEST-READY" ready
	fi
	# guest_uptime NS: the guest's uptime in s, over ssh from namespace NS
	guest_uptime() {
		HOME=$tmp ip netns exec "$1" dbclient -y -y -i "$image/id_guest" \
			"root@$guest_ip" 'cut -d. -f1 /proc/uptime' 2>"$tmp/ssh.err"
	}
	if [ -n "$reach" ]; then
		# dropbear starts in the background as the ready line goes out
		ssh_up() { up0=$(guest_uptime tqmp-a); }
		i=0
		until ssh_up; do
			i=$((i + 1))
			[ $i -lt 60 ] || fail "ssh to g2 ($guest_ip) from tqmp-a: $(cat "$tmp/ssh.err")"
			sleep 0.5
		done
	fi
	# the state of both namespaces' networks, should a migration between
	# them hang (CI once saw QEMU's connect to nb time out after 127 s)
	net_diag() {
		for x in a b; do
			echo "# -- tqmp-$x: links, addresses, neighbours, bridge fdb, TCP sockets, drops"
			ip -n tqmp-$x -br link
			ip -n tqmp-$x -br addr
			ip -n tqmp-$x neigh
			bridge -n tqmp-$x fdb show br br0 2>&1 | grep -v permanent
			ip netns exec tqmp-$x ss -tan
			ip netns exec tqmp-$x nstat -az 2>/dev/null |
				grep -E 'ListenDrops|ListenOverflows|TCPTimeouts|InErrors|IpInAddrErrors|TcpActiveOpens|TcpPassiveOpens|IpInReceives|IpOutRequests'
		done
		echo "# -- ping tqmp-a -> 10.79.0.12: $(ip netns exec tqmp-a ping -c 1 -W 1 10.79.0.12 2>&1 | grep -E 'transmitted')"
	}
	# migrate_watched G TO: migrate_wait, the networks noted if still at it after 20 s
	migrate_watched() {
		rm -f "$tmp/netdiag" "$tmp/moved"
		( sleep 20; [ -e "$tmp/moved" ] || net_diag >"$tmp/netdiag" 2>&1 ) >/dev/null 2>&1 &
		diag_pid=$!
		migrate_wait "$@"
		touch "$tmp/moved"
		kill $diag_pid 2>/dev/null
		wait $diag_pid 2>/dev/null
	}
	migrate_watched g2 nb
	id3=$mig_id
	check_figures "$id3"
	on_one_host g2 nb
	if [ -n "$reach" ]; then
		up1=$(guest_uptime tqmp-b) || fail "ssh to g2 ($guest_ip) from tqmp-b after the move: $(cat "$tmp/ssh.err")"
		[ "$up1" -ge "$up0" ] || fail "g2's uptime went back from $up0 to $up1 s: rebooted?"
		ok "g2 keeps its address $guest_ip and its uptime ($up0 -> $up1 s) after moving to tqmp-b"
	fi
	ip -n tqmp-b link show "$tap" >/dev/null 2>&1 || fail "no tap $tap in tqmp-b after the move"
	ip -n tqmp-a link show "$tap" >/dev/null 2>&1 && fail "tap $tap left behind in tqmp-a"
	migrate_watched g2 na
	id4=$mig_id
	check_figures "$id4"
	on_one_host g2 na
	[ "$(ip -n tqmp-a link show br0 | awk '/link\/ether/ { print $2 }')" = "$br_mac" ] ||
		fail "tqmp-a's br0 changed its MAC from $br_mac as taps came and went"
	ok "g2 migrated between network namespaces tqmp-a and tqmp-b and back over the veth; taps follow, bridge MACs stay"

	# a host known from a virtual cluster's host file, as cluster/vcluster writes it
	mkdir -p /run/vcluster/tqmp-vc/host
	vc_made=1
	printf 'netns=tqmp-b\naddr=10.79.0.12\nbridge=br0\nhostname=nc\n' \
		>/run/vcluster/tqmp-vc/host/nc.env
	ctl host add nc --uri "qmp:///nc?cluster=tqmp-vc" >/dev/null 2>"$tmp/err" ||
		fail "host add nc (from /run/vcluster/tqmp-vc/host/nc.env): $(cat "$tmp/err")"
	ctl guest add g3 --host nc --memory "$mem" >/dev/null 2>"$tmp/err" ||
		fail "guest add g3 on nc: $(cat "$tmp/err")"
	on_one_host g3 nc
	grep -q '^tqmp-b ' "$tmp/state-qmp/g3/nc.net" ||
		fail "g3 on nc is not in tqmp-b: $(cat "$tmp/state-qmp/g3/nc.net")"
	migrate_wait g3 na
	id_nc=$mig_id
	check_figures "$id_nc"
	on_one_host g3 na
	ok "a host from a vcluster host file (netns, addr) runs and sends guests"
else
	echo "# skipping the network namespace part: needs root, ip and /dev/net/tun"
fi

# ---- sfs.conf and the agent endpoint reach the guest's command line ----

stop_migd
printf 'servers = 127.0.0.1:7000\n' >"$tmp/sfs.conf"
start_migd --qmp-state-dir "$tmp/state-qmp" --qmp-sfs-conf "$tmp/sfs.conf" \
	--qmp-agent-endpoint tcp://10.0.2.2:7710
ctl guest add g4 --host h2 --memory "$mem" >/dev/null 2>"$tmp/err" ||
	fail "guest add g4: $(cat "$tmp/err")"
on_one_host g4 h2
python3 - "$tmp/state-qmp/g4/guest.json" "$tmp/sfs.conf" "$image" <<'EOF' ||
import json, sys
argv = json.load(open(sys.argv[1]))["argv"]
assert "name=opt/migd/sfs.conf,file=" + sys.argv[2] in argv, argv
if sys.argv[3] != "none":
    append = argv[argv.index("-append") + 1]
    assert "migd.agent=tcp://10.0.2.2:7710" in append.split(), append
    assert "migd.name=g4" in append.split(), append
EOF
	fail "g4's command line: $(cat "$tmp/state-qmp/g4/guest.json")"
pgrep -f -- "file=$tmp/sfs.conf" >/dev/null || fail "g4's QEMU has no fw_cfg sfs.conf"
ok "sfs_conf goes to the guest through fw_cfg, agent_endpoint on its kernel command line"

# ---- abort mid-way ----

stop_migd
start_migd --qmp-state-dir "$tmp/state-qmp" --bandwidth-cap 32k
ctl --json migrate g1 --to h2 >"$tmp/m.json" 2>"$tmp/err" || fail "migrate g1: $(cat "$tmp/err")"
id5=$(py "$tmp/m.json" 'd["id"]')
dst_running() { [ "$(guest_qemus g1)" -eq 2 ] && [ -e "$tmp/state-qmp/g1/h2.incoming" ]; }
wait_for 30 "destination QEMU of g1 on h2" dst_running
sleep 1
[ "$(history_row "$id5" state 2>/dev/null || echo running)" = running ] ||
	fail "migration $id5 ended before the abort (bandwidth cap not applied?)"
ctl abort "$id5" >/dev/null 2>"$tmp/err" || fail "abort $id5: $(cat "$tmp/err")"
row_aborted() { [ "$(history_row "$id5" state 2>/dev/null)" = aborted ]; }
wait_for 30 "migration $id5 aborted" row_aborted
on_one_host g1 h1
[ -e "$tmp/state-qmp/g1/h2.qmp" ] && fail "the destination's files are still there"
ok "abort mid-way: g1 stays on h1, the destination QEMU and its files are gone"

# ---- kill -9 of migd mid-migration ----

ctl --json migrate g1 --to h2 >"$tmp/m.json" 2>"$tmp/err" || fail "migrate g1: $(cat "$tmp/err")"
id6=$(py "$tmp/m.json" 'd["id"]')
wait_for 30 "destination QEMU of g1 on h2" dst_running
sleep 0.5
kill -9 "$migd_pid"
wait "$migd_pid" 2>/dev/null
migd_pid=
start_migd --qmp-state-dir "$tmp/state-qmp"
state=$(history_row "$id6" state)
case $state in
failed)
	[ "$(history_row "$id6" error)" = "interrupted by a migd restart" ] ||
		fail "row $id6 failed for another reason: $(history_row "$id6" error)"
	where=h1 ;;
completed) where=h2 ;;
*) fail "migration $id6 is $state after the restart, expected failed or completed" ;;
esac
on_one_host g1 $where
stop_migd
st=$(qmp_status "$tmp/state-qmp/g1/$where.qmp") || fail "cannot ask g1's QEMU on $where"
[ "$st" = running ] || fail "g1 on $where is $st, not running"
ok "kill -9 of migd mid-migration: row $state, g1 running on $where only"

# ---- a migration that completes while migd is down ----

start_migd --qmp-state-dir "$tmp/state-qmp" --bandwidth-cap 32k
src=$where
dst=h2
[ "$src" = h2 ] && dst=h1
ctl --json migrate g1 --to $dst >"$tmp/m.json" 2>"$tmp/err" || fail "migrate g1: $(cat "$tmp/err")"
id7=$(py "$tmp/m.json" 'd["id"]')
dst_up() { [ "$(guest_qemus g1)" -eq 2 ] && [ -e "$tmp/state-qmp/g1/$dst.incoming" ]; }
wait_for 30 "destination QEMU of g1 on $dst" dst_up
sleep 0.5
kill -9 "$migd_pid"
wait "$migd_pid" 2>/dev/null
migd_pid=
# QEMU goes on without migd: lift the cap and let it finish
python3 - "$tmp/state-qmp/g1/$src.qmp" <<'PYEOF' || fail "could not finish the migration by hand"
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
f = s.makefile("rw")
json.loads(f.readline())
def cmd(name, **args):
    f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
    f.flush()
    while True:
        m = json.loads(f.readline())
        if "event" not in m:
            return m.get("return")
cmd("qmp_capabilities")
cmd("migrate-set-parameters", **{"max-bandwidth": 1 << 34})
for _ in range(3000):
    if cmd("query-migrate")["status"] == "completed":
        sys.exit(0)
    time.sleep(0.01)
sys.exit(1)
PYEOF
start_migd --qmp-state-dir "$tmp/state-qmp"
[ "$(history_row "$id7" state)" = completed ] ||
	fail "migration $id7, completed while migd was down: row $(history_row "$id7" state)"
on_one_host g1 $dst
stop_migd
st=$(qmp_status "$tmp/state-qmp/g1/$dst.qmp") || fail "cannot ask g1's QEMU on $dst"
[ "$st" = running ] || fail "g1 on $dst is $st, not running"
ok "a migration completed while migd was down: row completed, the source quit, g1 running on $dst"

# ---- nothing left ----

for p in $(qemu_pids); do
	kill "$p"
done
i=0
while [ -n "$(qemu_pids)" ] && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
[ -z "$(qemu_pids)" ] || fail "QEMU processes left: $(qemu_pids)"
ok "no QEMU of the test is left"
echo "1..$checks"
