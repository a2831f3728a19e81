#!/bin/sh
# test_migration_tls.sh: migd's qmp backend migrates over TLS ([migration]
# tls = on), and a host with another CA's certificate gets nothing.
#
# A virtual cluster of its own (tl: 2 hosts, 10.204.0.0/16), certificates
# from cluster/mktls, one guest (the image, 128 MiB) booted through migd,
# which fills 2 MiB of its RAM with a marker string of this run. The TLS
# migration and the plain control are captured with tcpdump on n2's bridge
# and their TCP streams put back together (tests/pcap_stream.py):
#   - with TLS, g1 goes n1 -> n2: completed; the stream starts with a TLS
#     handshake record, holds at least the bytes QEMU says it sent, and
#     neither the marker nor QEMU's stream magic "QEVM";
#   - n1 with another CA's certificates (the sender refuses it), then n2
#     sending another CA's client certificate while trusting both CAs
#     (n1's verify-peer refuses it): each migration fails, g1 stays on n2,
#     running (QEMU's own status), its marker intact, no QEMU of g1 on n1;
#   - a host directory without its server key: refused, the message names
#     the file;
#   - the control, migd restarted with tls = no: g1 goes n2 -> n1 and the
#     stream starts with "QEVM" and holds the marker (so the capture does
#     see guest memory, and its absence above means something).
# Root, QEMU, tcpdump, certtool and the guest image (IMAGE_DIR); exit 77
# without them. Env: MIGD, MIGCTL, VCLUSTER, MKTLS, IMAGE_DIR.
set -u
. "$(dirname "$0")/lib-migd.sh"
here=$(cd "$(dirname "$0")" && pwd)

skip_without qemu-system-x86_64
skip_without python3
skip_without tcpdump
skip_without certtool "(gnutls-bin)"
skip_without dbclient "(the guest image's ssh client, dropbear-bin)"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (network namespaces)"; exit 77; }
[ -f "${IMAGE_DIR:-}/vmlinuz" ] || { echo "SKIP: no guest image in IMAGE_DIR (cluster/mkimage)"; exit 77; }
: "${VCLUSTER:?}" "${MKTLS:?}"

NAME=tl
SUBNET=10.204
N1=$SUBNET.0.11
N2=$SUBNET.0.12
MPORT=24200 # migration ports 24200..24699 (qmp.migration_port_base)
cap_pid=
cleanup() {
	[ -z "$cap_pid" ] || kill "$cap_pid" 2>/dev/null
	stop_pid "${migd_pid:-}"
	"$VCLUSTER" down --name "$NAME" >/dev/null 2>&1
	rm -rf "$tmp"
}
ctl_timeout=10000
migd_setup test_migration_tls
# the API port from 24000-24099 (this test's range), both of a pair free
used=$(used_ports)
port=24000
while [ $port -lt 24098 ] && echo "$used" | grep -qxE "$port|$((port + 1))"; do
	port=$((port + 2))
done
endpoint="tcp://127.0.0.1:$port"

gssh() { # IP CMD: a command in the guest
	ip=$1
	shift
	timeout 60 dbclient -yy -i "$IMAGE_DIR/id_guest" "root@$ip" "$@" 2>>"$tmp/ssh.err"
}

"$VCLUSTER" down --name "$NAME" >/dev/null 2>&1
"$VCLUSTER" up --name "$NAME" --hosts 2 --subnet "$SUBNET" >"$tmp/up.out" 2>&1 ||
	fail "vcluster up: $(tail -3 "$tmp/up.out")"
pki=$tmp/pki
"$MKTLS" --cluster "$NAME" --dir "$pki" >"$tmp/mktls.out" 2>&1 ||
	fail "mktls --cluster $NAME: $(tail -3 "$tmp/mktls.out")"
"$MKTLS" --dir "$tmp/other" --host "n1=$N1" --host "n2=$N2" >>"$tmp/mktls.out" 2>&1 ||
	fail "mktls, a second CA: $(tail -3 "$tmp/mktls.out")"
for f in ca-key.pem n1/server-key.pem n1/client-key.pem n2/server-key.pem; do
	mode=$(stat -c %a "$pki/$f")
	[ "$mode" = 600 ] || fail "mktls: $pki/$f has mode $mode, expected 600"
done
[ -s "$pki/n1/dh-params.pem" ] || fail "mktls: no $pki/n1/dh-params.pem"
ok "mktls: a CA and n1, n2's server and client certificates (keys 0600) and DH parameters"

start_migd() { # TLS(yes|no)
	cat >"$tmp/migd.conf" <<EOF
db = $tmp/state.db
listen = $endpoint
debug = yes

[migration]
tls = $1
tls_dir = $pki

[qmp]
image_dir = $IMAGE_DIR
state_dir = $tmp/qmp
migration_port_base = $MPORT
EOF
	"$MIGD" -c "$tmp/migd.conf" >>"$tmp/migd.log" 2>&1 &
	migd_pid=$!
	wait_for 20 "migd answering status" migd_answers
}
migd_answers() { ctl --timeout 500 status >/dev/null 2>&1; }

# capture_start FILE: tcpdump of what passes between n1 and n2, on n2's br0
capture_start() {
	ip netns exec "$NAME-n2" tcpdump -i br0 -s 0 -U -B 65536 -w "$1" \
		"tcp and host $N1 and host $N2" 2>"$1.err" &
	cap_pid=$!
	wait_for 10 "tcpdump listening on $NAME-n2 br0" grep -q "listening on" "$1.err"
}
capture_stop() {
	sleep 1 # the last segments, and their acknowledgements
	kill -INT "$cap_pid"
	wait "$cap_pid"
	cap_pid=
}

# migration_bytes ID: what QEMU says it sent
migration_bytes() {
	ctl_json "$tmp/h.json" history
	py "$tmp/h.json" "[m for m in d if m['id'] == $1][0]['bytes']"
}

start_migd yes
for h in n1 n2; do
	ctl host add "$h" --uri "qmp:///$h?cluster=$NAME" >/dev/null 2>"$tmp/err" ||
		fail "host add $h: $(cat "$tmp/err")"
done
grep -q "qmp: migrations over TLS, certificates from $pki" "$tmp/migd.log" ||
	fail "migd's log does not say migrations go over TLS"
ctl guest add g1 --host n1 --memory 128m >/dev/null 2>"$tmp/err" ||
	fail "guest add g1: $(cat "$tmp/err")"
ctl_json "$tmp/g1.json" guest show g1
ip=$(py "$tmp/g1.json" 'd["backend"]["address"]')
wait_for 120 "g1 answering ssh at $ip" gssh "$ip" true

# the marker: 1024 copies a line, 64 lines, in the guest's tmpfs (its RAM)
marker="MIGD-TLS-MARKER-$$-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
gssh "$ip" "s=$marker; for i in 1 2 3 4 5 6 7 8 9 10; do s=\$s\$s; done; i=0; \
	while [ \$i -lt 64 ]; do echo \"\$s\"; i=\$((i + 1)); done >/run/marker; sync" ||
	fail "writing the marker in g1"
n=$(gssh "$ip" "grep -c $marker /run/marker")
[ "$n" = 64 ] || fail "precondition: the marker in g1's /run/marker: $n lines, expected 64"

# with TLS
capture_start "$tmp/tls.pcap"
ctl --json migrate g1 --to n2 --wait >"$tmp/m.json" 2>"$tmp/err" ||
	fail "migration of g1 to n2 over TLS: $(cat "$tmp/err")"
capture_stop
id=$(py "$tmp/m.json" 'd["id"]')
bytes=$(migration_bytes "$id")
python3 "$here/pcap_stream.py" "$tmp/tls.pcap" "$N1" "$marker" >"$tmp/tls.txt" ||
	fail "reading the capture: $(cat "$tmp/tls.txt")"
. "$tmp/tls.txt" # stream_bytes, head, markers, qevm
[ "$stream_bytes" -ge "$bytes" ] ||
	fail "precondition: the capture holds $stream_bytes bytes from n1, QEMU sent $bytes"
[ "$head" = 1603 ] || fail "the stream over TLS starts with $head, not a TLS handshake (1603)"
[ "$markers" -eq 0 ] || fail "the marker is in the TLS stream $markers times"
[ "$qevm" -eq 0 ] || fail "QEMU's stream magic QEVM is in the TLS stream"
ok "g1 migrated n1 -> n2 over TLS: $stream_bytes bytes captured (QEMU: $bytes), a TLS handshake first, no marker, no QEVM"
grep -q "qmp: g1 on n2: TLS server credentials from $pki/n2" "$tmp/migd.log" &&
	grep -q "qmp: g1 on n1: TLS client credentials from $pki/n1" "$tmp/migd.log" ||
	log_tail=40 fail "migd's log does not show n2's server and n1's client credentials"
! grep -q "QEMU generates DH parameters" "$tmp/migd.log" ||
	fail "migd says n2 has no dh-params.pem: $(grep 'DH parameters' "$tmp/migd.log")"

# refused_to_n1 WHAT EXPECTED-ERROR: the migration to n1 fails, g1 runs on n2
refused_to_n1() {
	ctl migrate g1 --to n1 --wait >"$tmp/m.out" 2>&1 &&
		fail "$1: the migration to n1 completed"
	grep -q "$2" "$tmp/m.out" || fail "$1: migctl says \"$(cat "$tmp/m.out")\", not \"$2\""
	ctl_json "$tmp/g1.json" guest show g1
	[ "$(py "$tmp/g1.json" 'd["backend"]["host"]')" = n2 ] ||
		fail "$1: g1 runs on $(py "$tmp/g1.json" 'd["backend"]["host"]'), not n2"
	[ "$(py "$tmp/g1.json" 'd["backend"]["running"]')" = True ] ||
		fail "$1: g1 on n2 is not running (QEMU's status): $(cat "$tmp/g1.json")"
	[ "$(pgrep -fc -- "-qmp unix:$tmp/qmp/g1/")" -eq 1 ] ||
		fail "$1: $(pgrep -fc -- "-qmp unix:$tmp/qmp/g1/") QEMUs of g1, expected 1"
	n=$(gssh "$ip" "grep -c $marker /run/marker")
	[ "$n" = 64 ] || fail "$1: g1's marker after the failed migration: $n lines"
	echo "# $(cat "$tmp/m.out")"
}

mv "$pki/n1" "$pki/n1.good"
cp -a "$tmp/other/n1" "$pki/n1"
refused_to_n1 "n1 with another CA's certificate" "known issuer"
ok "n1 with another CA's certificate: refused by g1's source, g1 runs on n2, not paused"
rm -rf "$pki/n1"
mv "$pki/n1.good" "$pki/n1"
# n2 trusts both CAs (so it accepts n1, and QEMU accepts its own
# certificate) but shows another CA's client certificate: n1's
# verify-peer refuses it
mv "$pki/n2" "$pki/n2.good"
cp -a "$tmp/other/n2" "$pki/n2"
cat "$pki/ca-cert.pem" "$tmp/other/ca-cert.pem" >"$pki/n2/ca-cert.pem"
refused_to_n1 "n2 sending with another CA's client certificate" "QEMU: migration failed"
ok "n2 sending with another CA's client certificate: refused by n1 (verify-peer), g1 runs on n2"
rm -rf "$pki/n2"
mv "$pki/n2.good" "$pki/n2"
mv "$pki/n1/server-key.pem" "$tmp/n1-server-key.pem"
refused_to_n1 "n1 without its server key" "$pki/n1/server-key.pem: No such file"
mv "$tmp/n1-server-key.pem" "$pki/n1/server-key.pem"
ok "n1 without server-key.pem: refused, the message names the file"

# the control: the same capture without TLS
stop_pid "$migd_pid"
migd_pid=
start_migd no
capture_start "$tmp/plain.pcap"
ctl --json migrate g1 --to n1 --wait >"$tmp/m.json" 2>"$tmp/err" ||
	fail "migration of g1 to n1 without TLS: $(cat "$tmp/err")"
capture_stop
python3 "$here/pcap_stream.py" "$tmp/plain.pcap" "$N2" "$marker" >"$tmp/plain.txt" ||
	fail "reading the capture: $(cat "$tmp/plain.txt")"
. "$tmp/plain.txt"
[ "$head" = 5145 ] || fail "the plain stream starts with $head, not QEMU's QEVM (5145)"
[ "$markers" -gt 0 ] || fail "control: the marker is not in the plain stream ($stream_bytes bytes)"
ok "control without TLS: g1 migrated n2 -> n1, the stream starts with QEVM and holds the marker $markers times"
n=$(gssh "$ip" "grep -c $marker /run/marker")
[ "$n" = 64 ] || fail "g1's marker after the migrations: $n lines"
migd_done test_migration_tls
