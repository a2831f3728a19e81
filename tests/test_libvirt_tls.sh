#!/bin/sh
# test_libvirt_tls.sh: migd's libvirt backend migrates over TLS
# ([migration] tls = on: VIR_MIGRATE_TLS) between two real libvirtd hosts.
#
# cluster/libvirt-hosts --standalone --tls-dir starts two libvirtd (tlx-n1,
# tlx-n2 on 10.204.0.0/16) whose qemu.conf points migrate_tls_x509_cert_dir
# at each host's certificates from cluster/mktls (migrate_tls_x509_verify =
# 1). Checks, in TAP:
#   - g1 (BIOS-only, 64 MiB) migrates h1 -> h2 with VIR_MIGRATE_TLS
#     (0x10000 in the flags migd logs); the stream captured on the bridge
#     between the hosts (tcpdump, tests/pcap_stream.py) starts with a TLS
#     handshake record and never holds QEMU's stream magic "QEVM";
#   - h1 holding another CA's certificate: the migration back fails and g1
#     runs on h2 only, not paused.
# Needs root, libvirtd, virsh, QEMU, tcpdump, certtool and python3: exit 77
# otherwise. Env: MIGD, MIGCTL, LIBVIRT_HOSTS, MKTLS.
set -u
. "$(dirname "$0")/lib-migd.sh"
here=$(cd "$(dirname "$0")" && pwd)
: "${LIBVIRT_HOSTS:?}" "${MKTLS:?}"

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (network and mount namespaces)"; exit 77; }
for p in libvirtd virsh qemu-system-x86_64 python3 tcpdump certtool; do
	skip_without "$p"
done

NAME=tlx
SUBNET=10.204
H1=$SUBNET.0.11
H2=$SUBNET.0.12
cap_pid=
cleanup() {
	[ -z "$cap_pid" ] || kill "$cap_pid" 2>/dev/null
	stop_pid "${migd_pid:-}"
	QUIET=1 "$LIBVIRT_HOSTS" stop --name "$NAME" >/dev/null 2>&1
	rm -rf "$tmp"
}
ctl_timeout=30000
migd_setup test_libvirt_tls
used=$(used_ports)
port=24020
while [ $port -lt 24098 ] && echo "$used" | grep -qxE "$port|$((port + 1))"; do
	port=$((port + 2))
done
endpoint="tcp://127.0.0.1:$port"

vsh() { # HOST-ADDR ARGS...
	a=$1
	shift
	virsh -q -c "qemu+tcp://$a/system" "$@"
}
runs_on() { vsh "$1" list --name 2>/dev/null | grep -qx "$2"; }

"$MKTLS" --dir "$tmp/pki" --host "n1=$H1" --host "n2=$H2" >"$tmp/mktls.out" 2>&1 &&
	"$MKTLS" --dir "$tmp/other" --host "n1=$H1" >>"$tmp/mktls.out" 2>&1 ||
	fail "mktls: $(tail -3 "$tmp/mktls.out")"
QUIET=1 "$LIBVIRT_HOSTS" stop --name "$NAME" >/dev/null 2>&1
"$LIBVIRT_HOSTS" start --name "$NAME" --standalone --hosts 2 --subnet "$SUBNET" \
	--tls-dir "$tmp/pki" >"$tmp/hosts.log" 2>&1 ||
	fail "libvirt-hosts start --tls-dir: $(tail -3 "$tmp/hosts.log")"
grep -q "migrate_tls_x509_cert_dir = \"$tmp/pki/n1\"" "/run/libvirt-hosts/$NAME/n1/etc/qemu.conf" ||
	fail "libvirt-hosts: n1's qemu.conf does not name $tmp/pki/n1"
ok "two libvirtd hosts, qemu.conf: migrate_tls_x509_cert_dir = each host's certificates"

cat >"$tmp/migd.conf" <<EOF
db = $tmp/state.db
listen = $endpoint
debug = yes
[migration]
tls = yes
[libvirt]
domain_type = qemu
EOF
"$MIGD" -c "$tmp/migd.conf" >>"$tmp/migd.log" 2>&1 &
migd_pid=$!
migd_answers() { ctl --timeout 500 status >/dev/null 2>&1; }
wait_for 20 "migd answering status" migd_answers
ctl host add h1 --uri "qemu+tcp://$H1/system" >/dev/null 2>"$tmp/err" &&
	ctl host add h2 --uri "qemu+tcp://$H2/system#migrate_uri=tcp://$H2" >/dev/null 2>>"$tmp/err" ||
	fail "host add: $(cat "$tmp/err")"
ctl guest add g1 --host h1 --memory 64m >/dev/null 2>"$tmp/err" || fail "guest add g1: $(cat "$tmp/err")"
runs_on "$H1" g1 || fail "precondition: g1 does not run on h1"
sleep 2

ip link show "$NAME-sw" >/dev/null 2>&1 || fail "precondition: no bridge $NAME-sw between the hosts"
tcpdump -i "$NAME-sw" -s 0 -U -B 65536 -w "$tmp/tls.pcap" "tcp and host $H1 and host $H2" \
	2>"$tmp/tls.pcap.err" &
cap_pid=$!
wait_for 10 "tcpdump listening on $NAME-sw" grep -q "listening on" "$tmp/tls.pcap.err"
ctl migrate g1 --to h2 --wait >"$tmp/m.out" 2>&1 || fail "migrate g1 to h2 over TLS: $(cat "$tmp/m.out")"
sleep 1
kill -INT "$cap_pid"
wait "$cap_pid"
cap_pid=
runs_on "$H2" g1 && ! runs_on "$H1" g1 || fail "after the migration g1 does not run on h2 only"
flags=$(sed -n 's/.*libvirt: migration [0-9]*: g1 from h1 to h2.*flags \(0x[0-9a-f]*\).*/\1/p' "$tmp/migd.log" | tail -1)
[ -n "$flags" ] && [ $((flags & 0x10000)) -ne 0 ] ||
	fail "migd's flags for g1 (${flags:-none in its log}) lack VIR_MIGRATE_TLS (0x10000)"
python3 "$here/pcap_stream.py" "$tmp/tls.pcap" "$H1" none >"$tmp/tls.txt" ||
	fail "reading the capture: $(cat "$tmp/tls.txt")"
. "$tmp/tls.txt"
[ "$stream_bytes" -gt 100000 ] || fail "precondition: the capture holds $stream_bytes bytes from h1"
[ "$head" = 1603 ] || fail "the stream from h1 starts with $head, not a TLS handshake (1603)"
[ "$qevm" -eq 0 ] || fail "QEMU's stream magic QEVM is in the captured stream"
ok "g1 migrated h1 -> h2 with VIR_MIGRATE_TLS (flags $flags): $stream_bytes bytes captured, a TLS handshake first, no QEVM"

# h1 with another CA's certificates (QEMU reads them when libvirt adds its
# tls-creds-x509 object for this migration)
mv "$tmp/pki/n1" "$tmp/n1.good"
cp -a "$tmp/other/n1" "$tmp/pki/n1"
ctl migrate g1 --to h1 --wait >"$tmp/m.out" 2>&1 && fail "the migration to h1 with another CA's certificate completed"
echo "# $(cat "$tmp/m.out")"
runs_on "$H2" g1 && ! runs_on "$H1" g1 || fail "after the refused migration g1 does not run on h2 only"
state=$(vsh "$H2" domstate g1 2>&1)
[ "$state" = running ] || fail "g1 on h2 is \"$state\", not running"
ok "h1 with another CA's certificate: the migration fails, g1 runs on h2 only, not paused"
migd_done test_libvirt_tls
