#!/bin/sh
# test_mount_guest.sh: a guest live-migrated while a program writes through
# its sfs mount, with migagent quiescing that mount, loses nothing.
#
# On a virtual cluster of its own (2 hosts; name vm2 and subnet 10.92 unless
# TEST_MOUNT_GUEST_NAME / TEST_MOUNT_GUEST_SUBNET say otherwise, so that it
# runs beside other clusters) with the sfs servers in its storage namespace,
# migd (qmp backend, quiesce required) boots one guest from the image of
# cluster/mkimage. In the guest: `sfs mount -c /etc/sfs.conf /mnt/sfs` (the
# image's fuse module and /dev/fuse), and two writers through the mount: a
# shell appending numbered 64-byte lines to /mnt/sfs/mg/log as fast as it
# can, and rounds of `sfs-ior -a POSIX` with its write and read checks
# (-W -R). The guest is migrated n1 -> n2 -> n1 under them. Then:
#   - every migration completed with quiesce "ok" and resume ok, and the
#     guest's migagent held at least one client (the mount daemon) at each
#     quiesce;
#   - the log read back through libsfs on the host (not the mount) is
#     byte for byte the lines 1..N the writer counted, no line lost, torn or
#     doubled, and the guest reads the same bytes through its mount;
#   - no append failed, every sfs-ior round verified its data;
#   - the mount is still there after the migrations and unmounts cleanly.
# Every precondition (the guest answering ssh, the mount appearing, the
# mount daemon registering with migagent, the writer making progress) has a
# bound and fails the test with a message naming it.
#
# Root, QEMU, dbclient and the guest image (IMAGE_DIR); exit 77 without
# them. Env: MIGD, MIGCTL, VCLUSTER, SFSD, SFS, IMAGE_DIR.
set -u
. "$(dirname "$0")/lib-migd.sh"

skip_without qemu-system-x86_64
skip_without python3
skip_without dbclient "(the guest image's ssh client, dropbear-bin)"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (network namespaces)"; exit 77; }
[ -f "${IMAGE_DIR:-}/vmlinuz" ] || { echo "SKIP: no guest image in IMAGE_DIR (cluster/mkimage)"; exit 77; }
: "${VCLUSTER:?set VCLUSTER to cluster/vcluster}"
: "${SFSD:?set SFSD to the sfsd program}" "${SFS:?set SFS to the sfs program}"
export SFSD SFS

NAME=${TEST_MOUNT_GUEST_NAME:-vm2}
SUBNET=${TEST_MOUNT_GUEST_SUBNET:-10.92}
BOOT_S=300     # a TCG guest on a busy 2-core machine
MOUNT_S=30     # sfs mount to show in the guest's /proc/mounts and answer
REGISTER_S=30  # the mount daemon to appear among migagent's clients
LINES_MIN=20   # appended lines before the first migration

cleanup() {
	stop_pid "${migd_pid:-}"
	"$VCLUSTER" sfs stop --name "$NAME" >/dev/null 2>&1
	"$VCLUSTER" down --name "$NAME" >/dev/null 2>&1
	rm -rf "$tmp"
}
ctl_timeout=10000
log_tail=15
migd_setup test_mount_guest
t_start=$(date +%s)

gssh() { # CMD: a command in the guest (bounded)
	timeout 60 dbclient -yy -i "$IMAGE_DIR/id_guest" "root@$ip" "$@" 2>>"$tmp/ssh.err"
}

# The image must have FUSE: an image made before it had would fail below
# with a less clear message.
zstd -qdc "$IMAGE_DIR/initrd.img" | cpio -it --quiet 2>/dev/null >"$tmp/initrd.list"
grep -q '/fuse\.ko$' "$tmp/initrd.list" ||
	fail "the guest image $IMAGE_DIR has no fuse.ko: rebuild it (cluster/mkimage --build BUILD)"

"$VCLUSTER" down --name "$NAME" >/dev/null 2>&1 # a previous run's remains
"$VCLUSTER" up --name "$NAME" --hosts 2 --subnet "$SUBNET" >"$tmp/up.out" 2>&1 ||
	fail "vcluster up --name $NAME --subnet $SUBNET: $(tail -3 "$tmp/up.out")"
"$VCLUSTER" sfs start --name "$NAME" >"$tmp/sfs.out" 2>&1 ||
	fail "vcluster sfs start: $(tail -3 "$tmp/sfs.out")"
conf=/run/vcluster/$NAME/sfs.conf
agent=tcp://$SUBNET.0.1:7710
cat >"$tmp/migd.conf" <<EOF
db = $tmp/state.db
listen = $endpoint

[keys]
dir = $tmp/keys

[agent]
listen = $agent
quiesce = required
quiesce_deadline = 5s

[qmp]
image_dir = $IMAGE_DIR
agent_endpoint = $agent
sfs_conf = $conf
state_dir = $tmp/qmp
EOF
"$MIGD" -c "$tmp/migd.conf" >>"$tmp/migd.log" 2>&1 &
migd_pid=$!
export MIGCTL_KEY=$tmp/keys/admin.key # made by migd on its first start
migd_up() { ctl --timeout 500 status >/dev/null 2>&1; }
wait_for 20 "migd answering status" migd_up
for h in n1 n2; do
	ctl host add "$h" --uri "qmp:///$h?cluster=$NAME" >/dev/null 2>"$tmp/err" ||
		fail "host add $h: $(cat "$tmp/err")"
done
ctl guest add g1 --host n1 --memory 256m >/dev/null 2>"$tmp/err" ||
	fail "guest add g1: $(cat "$tmp/err")"
ctl_json "$tmp/g1.json" guest show g1
ip=$(py "$tmp/g1.json" 'd["backend"]["address"]')
[ -n "$ip" ] || fail "migd knows no address of g1"
i=0
until [ "$(gssh hostname 2>/dev/null)" = g1 ]; do
	i=$((i + 2))
	[ $i -lt $BOOT_S ] || fail "g1 did not answer ssh at $ip within $BOOT_S s: $(tail -3 "$tmp/ssh.err")"
	sleep 2
done
ok "g1 booted on n1 and answers ssh at $ip"

# ---- the mount ----
"$SFS" -c "$conf" mkdir sfs:/mg >/dev/null 2>"$tmp/err" || fail "sfs mkdir sfs:/mg: $(cat "$tmp/err")"
out=$(gssh 'exec 2>&1; lsmod | grep -w ^fuse; ls -l /dev/fuse; sfs mount -c /etc/sfs.conf /mnt/sfs; echo "exit $?"' 2>&1)
echo "$out" | grep -q '^exit 0$' || fail "sfs mount in g1 failed: $(echo "$out" | tr '\n' ' ')"
i=0
until gssh "grep -q ' /mnt/sfs fuse' /proc/mounts && timeout 5 ls -d /mnt/sfs/mg" >/dev/null; do
	i=$((i + 1))
	[ $i -lt $MOUNT_S ] || fail "the mount did not appear in g1 within $MOUNT_S s: $(gssh 'grep fuse /proc/mounts; ls -l /dev/fuse; lsmod | grep fuse' 2>&1)"
	sleep 1
done
ok "sfs mount in g1: fuse module loaded, /dev/fuse, /mnt/sfs mounted and answering"
# quiesce can only hold the mount once its libsfs client registered with
# migagent (it retries every second)
i=0
while :; do
	ctl_json "$tmp/agents.json" agent list
	n=$(py "$tmp/agents.json" 'sum(1 for a in d if a.get("guest") == "g1" and a.get("connected") for c in (a.get("clients") or []) if c.get("comm") == "sfs")')
	[ "$n" -ge 1 ] && break
	i=$((i + 1))
	[ $i -lt $REGISTER_S ] || fail "the mount daemon (comm sfs) is not among g1's migagent clients after $REGISTER_S s: $(cat "$tmp/agents.json")"
	sleep 1
done
ok "the mount daemon is a client of g1's migagent"

# ---- the writers ----
# A line is 64 bytes: "NNNNNNNN " + 54 bytes of pattern + "\n"; N counts
# from 1, /tmp/n holds the last one appended.
gssh "rm -f /tmp/stop /tmp/n /tmp/errs /tmp/ior.* /tmp/*.done; setsid sh -c 'i=0; while [ ! -f /tmp/stop ]; do i=\$((i+1)); printf \"%08d abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01\\n\" \$i >>/mnt/sfs/mg/log || { echo \"append \$i failed\" >>/tmp/errs; break; }; echo \$i >/tmp/n; done; touch /tmp/appender.done' </dev/null >/dev/null 2>&1 &" ||
	fail "starting the appender in g1: $(tail -3 "$tmp/ssh.err")"
gssh "setsid sh -c 'r=0; while [ ! -f /tmp/stop ]; do r=\$((r+1)); mpirun --allow-run-as-root -np 1 sfs-ior -a POSIX -b 4m -t 256k -w -r -W -R -o /mnt/sfs/mg/ior >/tmp/ior.\$r 2>&1; echo \"\$r \$?\" >>/tmp/ior.status; done; touch /tmp/ior.done' </dev/null >/dev/null 2>&1 &" ||
	fail "starting sfs-ior in g1: $(tail -3 "$tmp/ssh.err")"
count() { gssh 'cat /tmp/n 2>/dev/null || echo 0'; }
i=0
while n=$(count); [ "${n:-0}" -lt $LINES_MIN ]; do
	i=$((i + 1))
	[ $i -lt 60 ] || fail "the appender wrote $n lines in 60 s (expected $LINES_MIN): $(gssh 'cat /tmp/errs' 2>&1)"
	sleep 1
done
ok "an appender and sfs-ior -a POSIX write through /mnt/sfs in g1 ($n lines so far)"

# ---- migrations under the writers ----
for to in n2 n1; do
	before=$(count)
	ctl --timeout 300000 migrate g1 --to "$to" --quiesce required --wait >"$tmp/mig.out" 2>&1 ||
		fail "migrate g1 --to $to: $(tail -3 "$tmp/mig.out")"
	ctl_json "$tmp/g1.json" guest show g1
	[ "$(py "$tmp/g1.json" 'd["host"]')" = "$to" ] || fail "g1 is not on $to after its migration"
	# the writer goes on after the resume
	i=0
	while after=$(count); [ "${after:-0}" -le "$before" ]; do
		i=$((i + 1))
		[ $i -lt 30 ] || fail "the appender made no progress within 30 s of the migration to $to (line $after): $(gssh 'cat /tmp/errs' 2>&1)"
		sleep 1
	done
	ok "g1 migrated to $to while writing through its mount (lines $before -> $after)"
	sleep 3
done

ctl_json "$tmp/history.json" history
verdict=$(py "$tmp/history.json" '"; ".join("%s %s->%s state %s quiesce %s resume %s" % (m["id"], m["src"], m["dst"], m["state"], m.get("quiesce"), m.get("resume")) for m in d if m["state"] != "completed" or m.get("quiesce") != "ok" or not str(m.get("resume", "")).startswith("ok")) or ("ok %d" % len(d))')
case "$verdict" in
"ok 2") ok "both migrations completed with quiesce ok and resume ok ($(py "$tmp/history.json" '", ".join("quiesce %s ms, %s requests drained" % (m.get("quiesce_ms"), m.get("drained_requests")) for m in d)'))" ;;
*) fail "history: $verdict" ;;
esac
# migagent's audit lines: each quiesce held the mount daemon
gssh 'grep "audit: migd quiesce" /var/log/migagent.log' >"$tmp/audit" 2>&1
held=$(grep -c ': ok, [1-9][0-9]* clients' "$tmp/audit")
[ "$held" -ge 2 ] || fail "g1's migagent did not hold a client at both quiesces: $(cat "$tmp/audit")"
ok "g1's migagent held its clients (the mount daemon among them) at $held quiesces"

# ---- stop and verify ----
gssh 'touch /tmp/stop' || fail "cannot reach g1 to stop the writers"
i=0
until gssh 'test -f /tmp/appender.done && test -f /tmp/ior.done'; do
	i=$((i + 1))
	[ $i -lt 120 ] || fail "the writers still ran 120 s after being told to stop"
	sleep 1
done
n=$(count)
errs=$(gssh 'cat /tmp/errs 2>/dev/null')
[ -z "$errs" ] || fail "appends failed in g1: $errs"
"$SFS" -c "$conf" cat sfs:/mg/log >"$tmp/log" 2>"$tmp/err" || fail "sfs cat sfs:/mg/log: $(cat "$tmp/err")"
verdict=$(python3 - "$tmp/log" "$n" <<'PY'
import sys
got = open(sys.argv[1], "rb").read()
n = int(sys.argv[2])
want = b"".join(b"%08d abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01\n" % i
                for i in range(1, n + 1))
if got == want:
    print("ok"); sys.exit()
at = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]),
          min(len(got), len(want)))
print("%d bytes, expected %d (%d lines); first difference at byte %d (line %d): got %r" %
      (len(got), len(want), n, at, at // 64 + 1, got[at - at % 64:at - at % 64 + 64]))
PY
)
[ "$verdict" = ok ] || fail "the log on sfs: $verdict"
sum=$(gssh 'md5sum </mnt/sfs/mg/log' | cut -d' ' -f1)
[ "$sum" = "$(md5sum <"$tmp/log" | cut -d' ' -f1)" ] ||
	fail "g1 reads different bytes through its mount (md5 $sum)"
ok "all $n lines on sfs byte for byte, read through libsfs on the host and through the mount in g1"

gssh 'cat /tmp/ior.status' >"$tmp/ior.status" 2>&1
rounds=$(grep -c . "$tmp/ior.status")
bad=$(awk '$2 != 0' "$tmp/ior.status" | head -3)
if [ "$rounds" -lt 1 ] || [ -n "$bad" ]; then
	fail "sfs-ior -a POSIX: $rounds rounds, failed: ${bad:-none}: $(gssh 'tail -5 $(ls -t /tmp/ior.[0-9]* | head -1)' 2>&1)"
fi
ok "sfs-ior -a POSIX through the mount: $rounds rounds, every one verified its writes and reads"

out=$(gssh 'grep -q " /mnt/sfs fuse" /proc/mounts && echo mounted; sfs umount /mnt/sfs && echo unmounted; grep " /mnt/sfs " /proc/mounts; sleep 1; pidof sfs || echo no-sfs-process' 2>&1)
[ "$out" = "mounted
unmounted
no-sfs-process" ] || fail "after the migrations, the mount and its unmount: $out"
ok "the mount survived the migrations and sfs umount ends it and its process"

stop_pid "$migd_pid"
migd_pid=
echo "# $(($(date +%s) - t_start)) s"
migd_done test_mount_guest
