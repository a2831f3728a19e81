# cluster/lib-demo.sh: the set-up cluster/demo and bench/fault-campaign
# share: the virtual cluster with sfs, migd (qmp or libvirt backend), its
# hosts, and guests booted from the image and reachable over ssh. Bash;
# sourced, never run. The caller sets:
#
#   here (cluster/), prog, name, subnet, hosts, link, guests, memory,
#   backend (qmp|libvirt), build (or prefix: an installed tree, whose
#   migd finds the image itself), image, dir, MIGD, MIGCTL, MIGD_ENDPOINT,
#   ctl (the controller's address, $subnet.0.1), state (/run/vcluster/$name),
#   sfs_conf ($state/sfs.conf)
#
# and may set migd_state (where migd writes its database, keys and qmp
# state: $dir), agent_port (7710), sfs_port (7000), mig_port_base (empty:
# migd's default), tls (on: migrations over TLS, certificates in
# migd_pki, default $dir/pki; off by default) and job (demo). It defines
# these functions (they print through the caller's say, step and check):
#
#   gssh IP CMD             a command in a guest over ssh (dbclient, the
#                           image's key), ${ssh_timeout:-60} s at most
#   ctl_value EXPR ARGS...  a value (python EXPR of d) from migctl --json ARGS
#   demo_cluster_up         vcluster down, then up (hosts, link, subnet)
#   demo_sfs_start          the sfs servers in the storage namespace
#   demo_migd_conf [FILE]   writes $dir/migd.conf or FILE (agent quiesce
#                           required)
#   demo_migd_start         starts migd on it (log: $dir/migd.log, appended),
#                           sets migd_pid; returns 1 if it does not answer
#                           within 10 s
#   demo_hosts_add          migctl host add n1..n$hosts
#   demo_guests_boot        guest add g1..g$guests (job $job, rank h-1, on
#                           host nh), fills addr[gh], waits until each
#                           answers over ssh (240 s), check OK/FAIL each

: "${agent_port:=7710}" "${sfs_port:=7000}" "${mig_port_base:=}" "${job:=demo}"

# demo_failure_logs: after a failed check, the sfs servers' own complaints
# (refusals, closed connections) and the last lines of migd's log, for a
# report from a run nobody watched (the cluster and its logs go at the end)
demo_failure_logs() {
	local f=/run/vcluster/$name/sfsd.log
	if [ -s "$f" ] && grep -q -E "warning|error" "$f"; then
		say "   the sfs servers' last warnings ($f):"
		grep -E "warning|error" "$f" | tail -n 12 | while IFS= read -r l; do say "     $l"; done
	fi
	if [ -s "$dir/migd.log" ]; then
		say "   migd's last warnings ($dir/migd.log):"
		grep -E "warning|error" "$dir/migd.log" | tail -n 12 | while IFS= read -r l; do say "     $l"; done
	fi
}
gssh() { # gssh GUEST-IP CMD: a command in a guest over ssh (dbclient, the image's key)
	local ip=$1; shift
	timeout "${ssh_timeout:-60}" dbclient -yy -i "$image/id_guest" "root@$ip" "$@" 2>>"$dir/ssh.err"
}

ctl_value() { # ctl_value EXPR MIGCTL-ARGS...: a value from migctl's --json output (d)
	local expr=$1; shift
	"$MIGCTL" "$@" --json | python3 -c "import json, sys; d = json.load(sys.stdin); print($expr)"
}

demo_cluster_up() {
	step "virtual cluster: $hosts hosts on a $link network ($name, $subnet.0.0/16)"
	"$here/vcluster" down --name "$name" >/dev/null 2>&1
	"$here/vcluster" up --name "$name" --hosts "$hosts" --link "$link" --subnet "$subnet" ||
		{ echo "$prog: vcluster up failed" >&2; exit 1; }
}

demo_sfs_start() {
	local from=(--build "$build")
	[ -n "${prefix:-}" ] && from=(--prefix "$prefix")
	"$here/vcluster" sfs start --name "$name" "${from[@]}" --port "$sfs_port" ||
		{ echo "$prog: sfs servers did not start" >&2; exit 1; }
	[ -f "$sfs_conf" ] || { echo "$prog: $sfs_conf is missing" >&2; exit 1; }
	export SFS_CONF=$sfs_conf
}

demo_migd_conf() { # [FILE]: $dir/migd.conf unless named
	local migd_state=${migd_state:-$dir}
	cat >"${1:-$dir/migd.conf}" <<CONF
# written by $prog
db = $migd_state/state.db
listen = $MIGD_ENDPOINT
max_concurrent = 1
max_outbound = 1
max_inbound = 1

[keys]
# CURVE on requests, events and agents: migd makes its key and an admin
# key here on first start; each guest gets its agent's key (migd(8))
dir = $migd_state/keys

[migration]
tls = $([ "${tls:-off}" = on ] && echo yes || echo no)
tls_dir = ${migd_pki:-$dir/pki}

[agent]
listen = tcp://$ctl:$agent_port
quiesce = required
quiesce_deadline = 2s

[qmp]
$([ -n "${prefix:-}" ] && echo "# image_dir: migd's default (auto: $image)" || echo "image_dir = $image")
agent_endpoint = tcp://$ctl:$agent_port
sfs_conf = $sfs_conf
state_dir = $migd_state/qmp
${mig_port_base:+migration_port_base = $mig_port_base}

[checkpoint]
sfs_conf = $sfs_conf

[libvirt]
image_dir = $image
domain_type = qemu
guest_subnet = $subnet
agent_endpoint = tcp://$ctl:$agent_port
sfs_conf = $sfs_conf
CONF
}

demo_migd_start() {
	local i
	export MIGCTL_KEY=$dir/keys/admin.key # migctl pins $dir/keys/migd.pub beside it
	"$MIGD" -c "$dir/migd.conf" 2>>"$dir/migd.log" &
	migd_pid=$!
	for ((i = 0; i < 100; i++)); do
		"$MIGCTL" --timeout 500 status >/dev/null 2>&1 && return 0
		kill -0 "$migd_pid" 2>/dev/null || { echo "$prog: migd exited; see $dir/migd.log" >&2; tail -5 "$dir/migd.log" >&2; return 1; }
		sleep 0.1
	done
	echo "$prog: migd did not answer on $MIGD_ENDPOINT within 10 s; see $dir/migd.log" >&2
	return 1
}

demo_hosts_add() {
	local h uri
	for ((h = 1; h <= hosts; h++)); do
		if [ "$backend" = qmp ]; then
			uri="qmp:///n$h?cluster=$name"
		else
			uri="qemu+tcp://$subnet.0.$((10 + h))/system"
		fi
		"$MIGCTL" host add "n$h" --uri "$uri" >/dev/null || { echo "$prog: host add n$h failed" >&2; exit 1; }
	done
	"$MIGCTL" host list
}

demo_guests_boot() {
	local h g i ok out
	step "booting $guests guests of $memory (TCG: about 10 s each)"
	for ((h = 1; h <= guests; h++)); do
		g=g$h
		"$MIGCTL" guest add "$g" --host "n$h" --memory "$memory" --job "$job" --rank $((h - 1)) >/dev/null ||
			{ echo "$prog: guest add $g failed; see $dir/migd.log" >&2; exit 1; }
		addr[$g]=$(ctl_value 'd["backend"].get("address", "")' guest show "$g")
		[ -n "${addr[$g]}" ] || { echo "$prog: migd knows no address of $g" >&2; exit 1; }
	done
	for ((h = 1; h <= guests; h++)); do
		g=g$h
		ok=0
		for ((i = 0; i < 240; i++)); do
			out=$(gssh "${addr[$g]}" hostname) && [ "$out" = "$g" ] && { ok=1; break; }
			# a guest whose kernel died answers never: say so now, not in 240 s
			if declare -F serial_logs >/dev/null && [ -n "$(serial_logs "$g")" ] &&
				out=$(grep -h -m1 -o -E "(Kernel panic|Initramfs unpacking failed).{0,80}" $(serial_logs "$g")); then
				check FAIL "$g died while booting: $out"
				tail -5 $(serial_logs "$g") | sed 's/^/#   /'
				exit 1
			fi
			sleep 1
		done
		[ "$ok" = 1 ] && check OK "$g booted, reachable over ssh at ${addr[$g]}" ||
			{ check FAIL "$g did not answer over ssh at ${addr[$g]} within 240 s"; exit 1; }
	done
	"$MIGCTL" guest list
}

# ckpt_workload_start: in every guest a counter appending one line ("count
# uptime") to sfs:/demo/GUEST.log (sfs cp --append) twice a second, keeping
# the same log in /tmp/count and any sfs error in /tmp/errs; in g1 btio
# round after round across all guests (MPI, libsfs, class S,
# ${btio_per_guest:-1} ranks in each guest, ${btio_steps:-60} steps,
# /tmp/btio.R and "R STATUS" in /tmp/btio.status).
# Everything stops once /tmp/stop exists. Sets boot_up[g].
ckpt_workload_start() {
	local h g mpi btio hostlist
	for ((h = 1; h <= guests; h++)); do
		g=g$h
		gssh "${addr[$g]}" "rm -f /tmp/stop /tmp/count /tmp/errs; setsid sh -c 'i=0; while [ ! -f /tmp/stop ]; do i=\$((i+1)); l=\"\$i \$(cut -d\" \" -f1 /proc/uptime)\"; echo \"\$l\" >>/tmp/count; echo \"\$l\" >/tmp/line; sfs -q -c /etc/sfs.conf cp --append /tmp/line sfs:/demo/$g.log 2>>/tmp/errs || echo \"sfs cp --append failed at \$i\" >>/tmp/errs; sleep 0.5; done' </dev/null >/dev/null 2>&1 &" ||
			check FAIL "starting the counter in $g"
		boot_up[$g]=$(gssh "${addr[$g]}" 'cut -d" " -f1 /proc/uptime')
	done
	hostlist=$(for ((h = 1; h <= guests; h++)); do printf '%s:%s,' "${addr[g$h]}" "${btio_per_guest:-1}"; done)
	hostlist=${hostlist%,}
	mpi="mpirun --allow-run-as-root --oversubscribe -np $((guests * ${btio_per_guest:-1})) --host $hostlist"
	btio="btio --sfs.conf=/etc/sfs.conf --class S --steps ${btio_steps:-60} --path /demo/btio"
	gssh "${addr[g1]}" "rm -f /tmp/btio.*; setsid sh -c 'r=0; while [ ! -f /tmp/stop ]; do r=\$((r+1)); $mpi $btio >/tmp/btio.\$r 2>&1; echo \"\$r \$?\" >>/tmp/btio.status; sleep 1; done' </dev/null >/dev/null 2>&1 &" ||
		check FAIL "starting btio in g1"
}

# ckpt_log_verdict SFS-LOG LOCAL-LOG SKIP [FAILED]: "ok ..." when the
# counter's log on sfs counts 1, 2, 3, ... with no duplicate and no gap
# and agrees with the guest's own; else what is wrong. With SKIP 1
# (rollback skipped): "dup ..." naming the duplicates, else what is wrong.
# FAILED (the fault campaign): the counts whose write the counter was told
# failed (/tmp/errs), which may be missing; then every count on sfs must be
# in the guest's own log rather than the log a prefix of it.
ckpt_log_verdict() {
	python3 - "$@" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
local = [l.split() for l in open(sys.argv[2]) if l.strip()]
skip = sys.argv[3] == "1"
told = len(sys.argv) > 4
failed = {int(x) for x in sys.argv[4].split()} if told else set()
if not rows:
    print("empty log"); sys.exit()
counts = [int(r[0]) for r in rows]
dups = sorted({c for c in counts if counts.count(c) > 1})
gaps = [c for c in range(1, max(counts) + 1) if c not in set(counts) and c not in failed]
if skip:
    if dups:
        print(f"dup {len(dups)} counts written twice ({dups[0]}..{dups[-1]}): written after the cut, then again after the restore")
    else:
        print("no duplicates, though the rollback was skipped")
    sys.exit()
if dups:
    print(f"counts written twice: {dups[:5]}{'...' if len(dups) > 5 else ''}"); sys.exit()
if gaps:
    print(f"counts missing{' with no error told to the counter' if told else ''}: {gaps[:5]}"); sys.exit()
if counts != sorted(counts):
    print("counts out of order"); sys.exit()
if told:
    mine = {r[0] for r in local}
    extra = [c for c in counts if str(c) not in mine]
    if extra:
        print(f"counts on sfs the guest never wrote: {extra[:5]}"); sys.exit()
elif [r[0] for r in local[:len(rows)]] != [r[0] for r in rows]:
    print("the log on sfs differs from the guest's own"); sys.exit()
refused = len(failed & set(range(1, max(counts) + 1)))
print(f"ok 1..{counts[-1]}, every count once" + (f" but {refused} writes refused with an error" if told else ""))
PY
}
