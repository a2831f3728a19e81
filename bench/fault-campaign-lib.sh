# bench/fault-campaign-lib.sh: the faults, the settling and the invariants
# of bench/fault-campaign. Bash; sourced by it once the cluster, migd, the
# guests and the workload are up (uses its variables: dir, name, subnet,
# port, agent_port, sfs_port, ctl, state, sfs_conf, job, guests, hosts,
# addr, boot_up, migd_pid, full_dir, settle_max, log; and lib-demo.sh's
# gssh, ctl_value, demo_migd_start). Never run on its own.
#
#   inject KIND        inject one fault of KIND, restart what it killed;
#                      sets what (one line: what was done) and returns 0,
#                      or 3 when the fault could not be set up (no
#                      migration caught in flight) and nothing was done
#   settle             wait (settle_max s) until the system is at rest;
#                      adds to fault_breach what never settled
#   invariants_before  what must survive the fault (history rows)
#   invariants_after KIND T  the invariants; each breach added to fault_breach

q() { "$MIGCTL" --timeout 5000 "$@"; }
log_line() { echo "$(date -u +%H:%M:%S) $*" >>"$log"; }

# ---- what runs where -------------------------------------------------------

# qemu_pid GUEST HOST: the pid of GUEST's live QEMU on HOST, or nothing
qemu_pid() {
	local f=$dir/qmp/$1/$2.pid p
	[ -f "$f" ] || return 1
	p=$(cat "$f" 2>/dev/null)
	[ -n "$p" ] && kill -0 "$p" 2>/dev/null && echo "$p"
}
# qemus GUEST: "HOST:PID" of every live QEMU process of GUEST (by its
# command line, not only by pid files: a stray one counts too)
qemus() {
	local p h
	for p in $(pgrep -f -- "$dir/qmp/$1/" 2>/dev/null); do
		[ "$(cat /proc/"$p"/comm 2>/dev/null)" = qemu-system-x86 ] || continue
		h=$(tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | grep -o -m1 "$dir/qmp/$1/[^/.]*\.qmp" | sed 's|.*/||; s|\.qmp$||')
		echo "${h:-?}:$p"
	done
}
# sfs_server_pid PORT: the pid of the sfs server listening on PORT
sfs_server_pid() {
	ip netns exec "$name-storage" ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2
}
sfs_server_name() { # PORT -> meta, io0, io1
	[ "$1" = "$sfs_port" ] && echo meta || echo "io$(($1 - sfs_port - 1))"
}
# sfs_server_start NAME PORT: what systemd would do, one server on its own
sfs_server_start() {
	local i
	ip netns exec "$name-storage" nsenter --uts="$state/uts/storage" -- \
		setsid "$SFSD" -c "$sfs_conf" -n "$1" </dev/null >>"$dir/sfsd-$1.log" 2>&1 &
	disown $!
	for ((i = 0; i < 100; i++)); do
		[ -n "$(sfs_server_pid "$2")" ] && return 0
		sleep 0.1
	done
	return 1
}
migd_restart() {
	wait "$migd_pid" 2>/dev/null
	migd_pid=
	sleep 1 # systemd's RestartSec
	demo_migd_start
}

# ---- in flight -------------------------------------------------------------

# inflight_migration: a migration of a random guest of the job, seen in
# state migrating (QEMU's migration under way; 60 s at most). Sets mig_g,
# mig_src, mig_dst; returns 1 if none was caught.
inflight_migration() {
	local g=g$((RANDOM % guests + 1)) i row
	q migrate "$g" >/dev/null 2>>"$log"
	for ((i = 0; i < 300; i++)); do
		row=$(q queue --json 2>/dev/null | python3 -c '
import json, sys
for m in json.load(sys.stdin):
    if m["state"] == "migrating" and m.get("dst"):
        print(m["guest"], m["src"], m["dst"]); break')
		if [ -n "$row" ]; then
			read -r mig_g mig_src mig_dst <<<"$row"
			[ -n "$(qemu_pid "$mig_g" "$mig_dst")" ] && return 0
		fi
		sleep 0.2
	done
	return 1
}
# inflight_checkpoint: a checkpoint of the job, seen busy (60 s at most)
inflight_checkpoint() {
	local i
	q checkpoint create "$job" >/dev/null 2>>"$log"
	for ((i = 0; i < 300; i++)); do
		q checkpoint list "$job" --json 2>/dev/null | python3 -c '
import json, sys
sys.exit(0 if [c for c in json.load(sys.stdin) if c["state"] not in ("queued", "completed", "failed")] else 1)' && return 0
		sleep 0.2
	done
	return 1
}
# inflight_any: a migration, a checkpoint, or only the workload (a third
# each); sets busy to what is in flight
inflight_any() {
	case $((RANDOM % 3)) in
	0) inflight_migration && busy="mid-migration of $mig_g $mig_src->$mig_dst" || busy="workload only (no migration caught)" ;;
	1) inflight_checkpoint && busy="mid-checkpoint" || busy="workload only (no checkpoint caught)" ;;
	*) busy="workload only" ;;
	esac
	sleep "0.$((RANDOM % 10))"
}

# ---- the faults ----------------------------------------------------------------

inject() {
	local kind=$1 p srv sport g h secs pids dev burst i f loss delay t
	what="" busy=""
	log_line "fault: $kind"
	case "$kind" in
	kill-migd | stop-migd)
		inflight_any
		if [ "$kind" = kill-migd ]; then
			kill -9 "$migd_pid"
			migd_restart || { what="migd did not come back ($busy)"; return 1; }
			what="migd killed -9 and restarted ($busy)"
		else
			secs=$((8 + RANDOM % 5))
			kill -STOP "$migd_pid"; sleep "$secs"; kill -CONT "$migd_pid"
			what="migd stopped for $secs s ($busy)"
		fi ;;
	kill-meta | kill-io | stop-io)
		if [ "$kind" = kill-meta ]; then sport=$sfs_port; else sport=$((sfs_port + 1 + RANDOM % 2)); fi
		srv=$(sfs_server_name "$sport")
		p=$(sfs_server_pid "$sport")
		[ -n "$p" ] || { what="no sfs server $srv listening on $sport"; return 1; }
		inflight_any
		if [ "$kind" = stop-io ]; then
			# longer than the clients' connect timeout (5 s) and migd's quiesce deadline (2 s)
			secs=$((8 + RANDOM % 5))
			kill -STOP "$p"; sleep "$secs"; kill -CONT "$p"
			what="sfs $srv stopped for $secs s ($busy)"
		else
			kill -9 "$p"
			sleep 1
			sfs_server_start "$srv" "$sport" || { what="sfs $srv did not come back"; return 1; }
			what="sfs $srv killed -9 and restarted ($busy)"
		fi ;;
	kill-agent)
		g=g$((RANDOM % guests + 1))
		inflight_any
		gssh "${addr[$g]}" 'a=$(pidof migagent) || exit 1; args=$(tr "\0" " " </proc/$a/cmdline); kill -9 $a; sleep 1; setsid $args </dev/null >>/var/log/migagent.log 2>&1 &' ||
			{ what="no migagent to kill in $g"; return 1; }
		what="$g's migagent killed -9 and restarted ($busy)" ;;
	kill-client)
		g=g$((RANDOM % guests + 1))
		inflight_any
		secs=$((1 + RANDOM % 3))
		gssh "${addr[$g]}" "head -c 400000000 /dev/zero | sfs -q -c /etc/sfs.conf cp /dev/stdin sfs:/demo/scratch.$g & p=\$!; sleep $secs; kill -9 \$p; wait; sfs -q -c /etc/sfs.conf rm sfs:/demo/scratch.$g 2>/dev/null; true" ||
			{ what="could not run a client in $g"; return 1; }
		what="a libsfs client (sfs cp) in $g killed -9 after $secs s ($busy)" ;;
	kill-src-qemu | kill-dst-qemu)
		inflight_migration || { what="no migration caught in flight"; return 3; }
		sleep "0.$((RANDOM % 10))"
		if [ "$kind" = kill-src-qemu ]; then h=$mig_src; else h=$mig_dst; fi
		p=$(qemu_pid "$mig_g" "$h")
		[ -n "$p" ] || { what="$mig_g's QEMU on $h was gone before the kill"; return 3; }
		kill -9 "$p"
		what="$mig_g's QEMU on $h killed -9 mid-migration $mig_src->$mig_dst"
		host_died=$([ "$kind" = kill-src-qemu ] && echo 1) ;;
	kill-host)
		g=g$((RANDOM % guests + 1))
		h=$(ctl_value 'd["backend"]["host"]' guest show "$g" 2>/dev/null)
		[ -n "$h" ] || { what="$g runs on no host to kill"; return 1; }
		inflight_any
		pids=
		for f in "$dir"/qmp/*/"$h".pid; do
			p=$(cat "$f" 2>/dev/null) && kill -9 "$p" 2>/dev/null && pids="$pids $(basename "$(dirname "$f")")"
		done
		what="every QEMU of host $h killed -9 ($pids ) ($busy)"
		host_died=1 ;;
	link-cut)
		if [ $((RANDOM % 2)) = 0 ] && inflight_migration; then
			h=$mig_src; [ $((RANDOM % 2)) = 0 ] && h=$mig_dst
			busy="mid-migration of $mig_g $mig_src->$mig_dst"
		elif inflight_checkpoint; then
			h=$(ctl_value 'd["backend"]["host"]' guest show "g$((RANDOM % guests + 1))" 2>/dev/null)
			busy="mid-checkpoint (quiesce)"
		else
			h=n$((RANDOM % hosts + 1)) busy="workload only"
		fi
		secs=$((2 + RANDOM % 5))
		ip -n "$name-sw" link set "$h" down || { what="no switch port $h"; return 1; }
		sleep "$secs"
		ip -n "$name-sw" link set "$h" up
		what="host $h's link cut for $secs s ($busy)" ;;
	netem)
		inflight_migration || { what="no migration caught in flight"; return 3; }
		h=$mig_src
		loss=$((1 + RANDOM % 5)) delay=$((5 + RANDOM % 50))
		burst=$(( $(python3 -c "
import re; m = re.match(r'(\d+)([kmg]?)bit', '$link'); print(int(m[1]) * {'': 1, 'k': 10**3, 'm': 10**6, 'g': 10**9}[m[2]] // 8)") / 250 ))
		[ "$burst" -ge 131072 ] || burst=131072
		if ip netns exec "$name-$h" tc qdisc replace dev uplink root netem loss "$loss%" delay "${delay}ms" 5ms rate "$link" 2>>"$log"; then
			dev="netem loss $loss% delay ${delay}ms"
		else
			# no sch_netem in this kernel: the loss from nftables (numgen
			# random, both ways on the uplink), the delay from a queue
			# behind a 20 Mbit/s bucket that may hold 200 ms
			ip netns exec "$name-$h" nft -f - <<NFT || { what="neither tc netem nor nft works on $h"; return 1; }
table netdev fcfault {
	chain in { type filter hook ingress device "uplink" priority 0; numgen random mod 100 < $loss drop; }
	chain out { type filter hook egress device "uplink" priority 0; numgen random mod 100 < $loss drop; }
}
NFT
			ip netns exec "$name-$h" tc qdisc replace dev uplink root tbf rate 20mbit burst 131072 latency 200ms
			dev="loss $loss% (nft) and up to 200 ms of queue at 20 Mbit/s (tbf; no sch_netem in this kernel)"
		fi
		# as long as the migration lasts, 30 s at most
		t=$(date +%s)
		while [ $(($(date +%s) - t)) -lt 30 ]; do
			[ -n "$(q queue --json 2>/dev/null | python3 -c 'import json,sys; print("x" if [m for m in json.load(sys.stdin) if m["state"] == "migrating" and m["guest"] == sys.argv[1]] else "")' "$mig_g")" ] || break
			sleep 1
		done
		i=$(($(date +%s) - t))
		ip netns exec "$name-$h" nft delete table netdev fcfault 2>/dev/null
		ip netns exec "$name-$h" tc qdisc replace dev uplink root tbf rate "$link" burst "$burst" latency 20ms
		what="$dev on $h during $mig_g's migration $mig_src->$mig_dst ($i s)" ;;
	enospc)
		inflight_any
		secs=$((5 + RANDOM % 10))
		dd if=/dev/zero of="$full_dir/fill" bs=1M status=none 2>/dev/null
		sleep "$secs"
		rm -f "$full_dir/fill"
		what="io1's data directory full (ENOSPC) for $secs s ($busy)" ;;
	garbage)
		inflight_any
		python3 - "127.0.0.1:$port" "127.0.0.1:$((port + 1))" "$ctl:$agent_port" \
			"$subnet.0.2:$sfs_port" "$subnet.0.2:$((sfs_port + 1))" "$subnet.0.2:$((sfs_port + 2))" <<'PY' >>"$log" 2>&1
import os, random, socket, sys
for ep in sys.argv[1:]:
    host, port = ep.rsplit(":", 1)
    for payload in (os.urandom(65536), b"\xff" * 16, b"GET / HTTP/1.0\r\n\r\n", os.urandom(7)):
        try:
            s = socket.create_connection((host, int(port)), timeout=3)
            s.sendall(payload)
            s.settimeout(1)
            try: s.recv(4096)
            except OSError: pass
            s.close()
        except OSError as e:
            print(f"garbage to {ep}: {e}")
PY
		what="garbage (64 KiB random, short, HTTP) on migd's API, events, agents and every sfs server ($busy)" ;;
	*) what="unknown kind $kind"; return 1 ;;
	esac
	log_line "done: $what"
	return 0
}

# ---- settling --------------------------------------------------------------------

# at_rest: prints what is not at rest yet (nothing when at rest)
at_rest() {
	local g n running out
	q status >/dev/null 2>&1 || { echo "migd does not answer"; return; }
	for ((n = 1; n <= guests; n++)); do
		g=g$n
		out=$(qemus "$g")
		[ "$(echo "$out" | grep -c .)" = 1 ] || echo "$g has $(echo "$out" | grep -c .) QEMUs (${out//$'\n'/ })"
		running=$(ctl_value 'd["backend"].get("running")' guest show "$g" 2>/dev/null)
		[ "$running" = True ] || echo "$g is not running (migd says: $(q guest show "$g" --json 2>&1 | tr -d '\n' | cut -c1-200))"
	done
	q queue --json 2>/dev/null | python3 -c '
import json, sys
for m in json.load(sys.stdin):
    if m["state"] != "queued": print("migration %s of %s is %s" % (m["id"], m["guest"], m["state"]))'
	q checkpoint list "$job" --json 2>/dev/null | python3 -c '
import json, sys
for c in json.load(sys.stdin):
    if c["state"] not in ("completed", "failed"): print("checkpoint %s is %s" % (c["id"], c["state"]))'
	q restore list "$job" --json 2>/dev/null | python3 -c '
import json, sys
for c in json.load(sys.stdin):
    if c["state"] not in ("completed", "failed"): print("restore %s is %s" % (c["id"], c["state"]))'
	q agent list --json 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
seen = {a.get("guest"): a for a in d}
for n in range(1, int(sys.argv[1]) + 1):
    a = seen.get(f"g{n}")
    if not a: print(f"no agent of g{n}"); continue
    if not a.get("connected", True) or a.get("last_seen_ms_ago", 0) > 3000: print(f"agent of g{n} is silent")
    if a.get("quiesced"): print(f"agent of g{n} holds its clients (quiesced)")' "$guests"
}

settle() {
	local t_end=$(($(date +%s) + settle_max)) left
	while :; do
		left=$(at_rest)
		[ -z "$left" ] && return 0
		if [ "$(date +%s)" -ge "$t_end" ]; then
			fault_breach+=("not settled after $settle_max s: ${left//$'\n'/; }")
			return 1
		fi
		sleep 1
	done
}

# ---- invariants ------------------------------------------------------------------

history_rows() { # ids of every migration and restore row, "m ID" / "r ID"
	python3 - "$dir/state.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=10)
for t, k in (("migrations", "m"), ("restores", "r")):
    for (i,) in db.execute(f"SELECT id FROM {t}"):
        print(k, i)
PY
}

invariants_before() {
	history_rows >"$dir/rows.before" 2>>"$log"
	host_died=
}

declare -A log_seen refused
btio_seen=0
invariants_after() {
	local kind=$1 t_fault=$2 g n v errs lost r up k
	# every history row there before is there still
	history_rows >"$dir/rows.after" 2>>"$log"
	lost=$(comm -23 <(sort "$dir/rows.before") <(sort "$dir/rows.after") | tr '\n' ' ')
	[ -z "$lost" ] || fault_breach+=("history rows lost: $lost")
	# a job whose host died was restored from a checkpoint
	if [ -n "$host_died" ]; then
		r=$(q restore list "$job" --json 2>/dev/null | python3 -c '
import json, sys
t = int(sys.argv[1]) * 10**9
d = [r for r in json.load(sys.stdin) if r.get("reason", "").startswith("failure") and (r.get("requested_ns") or r.get("started_ns") or 0) >= t]
print("%s %s" % (d[0]["id"], d[0]["state"]) if d else "")' "$t_fault")
		case "$r" in
		*" completed") log_line "restore $r after $kind" ;;
		*) fault_breach+=("a guest of $job died ($kind), and no restore from a checkpoint completed: ${r:-none}") ;;
		esac
	fi
	# each counter log: no duplicate; a count missing only where the
	# counter was told its write failed
	for ((n = 1; n <= guests; n++)); do
		g=g$n
		"$SFS" -q cat "sfs:/demo/$g.log" >"$dir/$g.log" 2>>"$log"
		gssh "${addr[$g]}" 'cat /tmp/count' >"$dir/$g.local"
		errs=$(gssh "${addr[$g]}" 'cat /tmp/errs 2>/dev/null' | grep -o 'failed at [0-9]*' | cut -d' ' -f3 | tr '\n' ' ')
		v=$(ckpt_log_verdict "$dir/$g.log" "$dir/$g.local" 0 "$errs")
		if [ "${v%% *}" != ok ] && [ "$v" != "${log_seen[$g]:-}" ]; then
			fault_breach+=("$g's log on sfs: $v")
			log_seen[$g]=$v
		fi
		# writes the counter was told failed: not a loss, but noted
		k=$(echo "$errs" | wc -w)
		if [ "$k" -gt "${refused[$g]:-0}" ]; then
			noted+=("$g: $((k - ${refused[$g]:-0})) counter writes refused with an error during $kind ($(gssh "${addr[$g]}" 'grep -v "failed at" /tmp/errs | tail -1' | cut -c1-120))")
		fi
		refused[$g]=$k
		up=$(gssh "${addr[$g]}" 'cut -d" " -f1 /proc/uptime')
		python3 -c "import sys; sys.exit(0 if float('${up:-0}') > float('${boot_up[$g]}') else 1)" 2>/dev/null ||
			fault_breach+=("$g: uptime ${up:-?} s, ${boot_up[$g]} s at the start: rebooted or unreachable")
	done
	# btio's rounds finished since the last fault: every dump verified
	gssh "${addr[g1]}" 'cat /tmp/btio.status 2>/dev/null' >"$dir/btio.status"
	while read -r r st; do
		[ -n "$r" ] && [ "$r" -gt "$btio_seen" ] || continue
		btio_seen=$r
		v=$(gssh "${addr[g1]}" "grep -h Verification /tmp/btio.$r")
		case "$v" in
		*SUCCESSFUL*) btio_ok=$((btio_ok + 1))
		   [ "$st" = 0 ] || log_line "btio round $r: exit $st after verifying" ;;
		*Verification*) fault_breach+=("btio round $r: $v") ;;
		*) log_line "btio round $r exited $st without verifying: $(gssh "${addr[g1]}" "tail -2 /tmp/btio.$r" | tr '\n' ' ')"
		   btio_err=$((btio_err + 1))
		   noted+=("btio round $r ended with an error (exit $st), after $kind") ;;
		esac
	done <"$dir/btio.status"
}
noted=()
btio_ok=0 btio_err=0
