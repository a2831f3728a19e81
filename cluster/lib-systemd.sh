# cluster/lib-systemd.sh: cluster/demo --systemd: migd and the sfs servers
# of an installed tree run as its systemd units, `systemctl start sfsd.target
# migd`, under a real systemd. Bash; sourced by cluster/demo, never run.
#
# Where PID 1 is systemd a site runs that command on the controller. Here
# it is not, so a systemd is booted with systemd-nspawn as
# tests/test_systemd.sh does (--volatile=yes: this machine's /usr
# read-only, the rest a fresh tmpfs), but on this machine's network rather
# than a private one, so that migd.service's qmp backend reaches the
# virtual cluster: /run/netns and /run/vcluster (the hosts' network and UTS
# namespaces, the cluster's host files) and /run/munge (this machine's
# munged, for sfsd) are bound in; /dev/net/tun is in nspawn's /dev, and
# /dev/kvm is bound when there is one. The install is bound read-only at
# its prefix, the demo's configs at SYSCONFDIR, and migd's StateDirectory
# (/var/lib/migd: database, keys, per-guest QEMU state and serial logs) to
# $dir/var-lib-migd, so that migctl and the demo's checks on this side read
# the keys and the logs. The units come from PREFIX/lib/systemd/system
# (`systemctl link`, as a site with a prefix systemd does not search does).
#
# The caller (cluster/demo) sets prefix, dir, name, subnet, ctl, minutes,
# sfs_port, prog, SFS, MIGCTL, MIGD_ENDPOINT and the functions step, say,
# check and demo_pids. Defined:
#
#   sd_prepare          checks and paths: unitdir, sysconfdir, sd_etc
#                       ($dir/etc, bound at SYSCONFDIR), migd_state,
#                       sfs_conf; exits 1 with the reason when it cannot
#   sd_boot             boots the container (machine name "$name-sd") to
#                       basic.target, waits until its systemd runs (120 s)
#   sd CMD...           CMD inside the container (nsenter into its
#                       namespaces but the network, which is shared)
#   sd_sfs_conf         writes sfs.conf (servers on $ctl) and sfs.key
#   sd_start            systemctl link + enable, then `systemctl start
#                       sfsd.target migd`; waits until sfs and migd answer
#   sd_hardening_check  checks that migd and its QEMUs run under the unit's
#                       hardening
#   sd_migd_log         migd's journal (-o cat), what $dir/migd.log is
#                       without systemd
#   sd_down             powers the container off (60 s, then kills it)

sd_nspawn_pid=
sd_leader=

sd_prepare() {
	command -v systemd-nspawn >/dev/null ||
		{ echo "$prog: --systemd needs systemd-nspawn (Debian package systemd-container)" >&2; exit 1; }
	unitdir=$prefix/lib/systemd/system
	local u
	for u in migd.service sfsd@.service sfsd.target; do
		[ -f "$unitdir/$u" ] || { echo "$prog: --systemd: no $unitdir/$u (installed with -Dsystemdunitdir elsewhere?)" >&2; exit 1; }
	done
	# SYSCONFDIR as the installed unit has it: ExecStart=... -c SYSCONFDIR/migd.conf
	sysconfdir=$(sed -n 's|^ExecStart=.* -c \(/[^ ]*\)/migd\.conf.*|\1|p' "$unitdir/migd.service")
	case "$sysconfdir" in
	"$prefix"/*) ;;
	*) echo "$prog: --systemd: SYSCONFDIR \"$sysconfdir\" (from $unitdir/migd.service) is not under $prefix: the demo binds its configs there" >&2; exit 1 ;;
	esac
	# the mount point, inside the read-only install
	mkdir -p "$sysconfdir" || exit 1
	sd_etc=$dir/etc
	migd_state=/var/lib/migd
	# bound into the container, so made now
	mkdir -p "$sd_etc" "$dir/var-lib-migd"
	sfs_conf=$sysconfdir/sfs.conf # what migd hands the guests, inside the container
}

# sd_find_leader: the container's init, the process below timeout and
# systemd-nspawn that is pid 1 in its own pid namespace
sd_find_leader() {
	local p q
	for p in $(ps -o pid= --ppid "$sd_nspawn_pid"); do
		for q in $p $(ps -o pid= --ppid "$p"); do
			[ "$(awk '/^NSpid:/ { print $NF }' "/proc/$q/status" 2>/dev/null)" = 1 ] && { echo "$q"; return; }
		done
	done
}

sd() { # sd CMD...: CMD inside the container
	nsenter --target "$sd_leader" --mount --uts --ipc --pid --cgroup -- "$@"
}

sd_boot() {
	local i state kvm=()
	[ -c /dev/kvm ] && kvm=(--bind=/dev/kvm)
	step "a systemd of its own (systemd-nspawn --volatile=yes, this machine's network): the installed units run there"
	# Bounded: the container ends with the demo (sd_down), and at the
	# latest when timeout ends it. It boots to basic.target, not
	# multi-user.target: this machine's own services (a firewall loader,
	# exporters, ssh) would start on this machine's network. What could
	# still touch the network is masked: network managers, what waits for
	# them, nftables.
	timeout $((minutes * 60 + 5400)) systemd-nspawn -D / --volatile=yes --register=no --keep-unit \
		--machine="$name-sd" --console=pipe \
		--capability=CAP_NET_ADMIN,CAP_IPC_LOCK \
		--bind-ro="$prefix" --bind-ro="$sd_etc:$sysconfdir" \
		--bind="$dir/var-lib-migd:/var/lib/migd" \
		--bind=/run/netns --bind=/run/vcluster --bind=/run/munge \
		"${kvm[@]}" \
		-b systemd.unit=basic.target systemd.mask=nftables.service \
		systemd.mask=systemd-networkd.service systemd.mask=systemd-networkd.socket \
		systemd.mask=systemd-networkd-wait-online.service systemd.mask=systemd-resolved.service \
		systemd.mask=networking.service systemd.mask=NetworkManager.service \
		systemd.mask=ifup@.service systemd.mask=ssh.service systemd.mask=munge.service \
		systemd.mask=systemd-timesyncd.service \
		>"$dir/nspawn.log" 2>&1 &
	sd_nspawn_pid=$!
	for ((i = 0; i < 1200; i++)); do
		kill -0 "$sd_nspawn_pid" 2>/dev/null || { echo "$prog: systemd-nspawn exited: $(tail -5 "$dir/nspawn.log")" >&2; exit 1; }
		[ -n "$sd_leader" ] || sd_leader=$(sd_find_leader)
		if [ -n "$sd_leader" ]; then
			state=$(sd systemctl is-system-running 2>/dev/null)
			case "$state" in running|degraded) break ;; esac
		fi
		sleep 0.1
	done
	case "$state" in
	running|degraded) say "   systemd in $name-sd is $state (init pid $sd_leader here)" ;;
	*) echo "$prog: the container's systemd is \"${state:-not answering}\" after 120 s: $(tail -5 "$dir/nspawn.log")" >&2; exit 1 ;;
	esac
	[ "$state" = degraded ] && say "   failed units: $(sd systemctl --failed --no-legend --plain | awk '{ print $1 }' | tr '\n' ' ')"
	return 0
}

sd_sfs_conf() {
	# a storage node of its own is the controller here: the servers listen
	# on the controller's cluster address, which the guests reach
	"$SFS" genconfig --io-servers 2 --dir /var/lib/sfsd --port "$sfs_port" |
		sed -e "s/^address = 127\.0\.0\.1:/address = $ctl:/" \
			-e "s|^root_hosts = .*|root_hosts = 127.0.0.0/8, ::1, $subnet.0.0/16|" \
			-e "s/^# sfs.conf written by sfs genconfig: a loopback file system with/# sfs.conf of cluster\/demo --systemd: sfsd@ units on $ctl, with/" \
			>"$sd_etc/sfs.conf" || exit 1
	# the capability key, root's 0600 file, as README says a site makes it
	(umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$sd_etc/sfs.key")
	export SFS_CONF=$sd_etc/sfs.conf # the same file, on this side
}

sd_start() {
	local i u
	for u in sfsd@.service sfsd.target migd.service; do
		sd systemctl link "$unitdir/$u" >/dev/null 2>&1 || { check FAIL "systemctl link $unitdir/$u"; exit 1; }
	done
	say "   systemctl link $unitdir/{sfsd@.service,sfsd.target,migd.service}"
	say "   systemctl enable sfsd@meta sfsd@io0 sfsd@io1 migd"
	sd systemctl enable sfsd@meta sfsd@io0 sfsd@io1 migd 2>/dev/null ||
		{ check FAIL "systemctl enable sfsd@meta sfsd@io0 sfsd@io1 migd"; exit 1; }
	say "   systemctl start sfsd.target migd"
	if ! sd timeout 120 systemctl start sfsd.target migd; then
		check FAIL "systemctl start sfsd.target migd: $(sd systemctl --failed --no-legend --plain | tr '\n' ' ')"
		sd journalctl --no-pager -o cat -n 20 -u migd -u 'sfsd@*' | sed 's/^/#   /'
		exit 1
	fi
	for u in sfsd@meta sfsd@io0 sfsd@io1 migd; do
		[ "$(sd systemctl is-active "$u")" = active ] && check OK "$u.service active: $(sd systemctl show -p StatusText --value "$u")" ||
			check FAIL "$u.service is $(sd systemctl is-active "$u")"
	done
	export MIGCTL_KEY=$dir/var-lib-migd/keys/admin.key
	for ((i = 0; i < 100; i++)); do
		"$SFS" ping >/dev/null 2>&1 && "$MIGCTL" --timeout 500 status >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	check FAIL "sfs ($SFS_CONF) or migd ($MIGD_ENDPOINT) does not answer 10 s after systemctl start"
	exit 1
}

# sd_hardening_check: migd and the QEMUs it started run under
# migd.service's hardening, as this machine lets systemd apply it: the
# unit's capability bounding set (less what this machine's own bounding
# set lacks), no new privileges, a seccomp filter, and ProtectSystem=strict
# (/etc, /var/lib read-only, /var/lib/migd writable) in migd's mount
# namespace. DevicePolicy= is reported, not checked: it needs the
# devices controller, which a systemd in a container on a cgroup v1 host
# does not get.
sd_hardening_check() {
	local pid qemu f want have mine d ro= rw=
	pid=$(demo_pids migd | head -1)
	qemu=$(demo_pids qemu-system-x86_64 | head -1)
	# CapabilityBoundingSet of the installed unit, as capsh names them
	want=$(sed -n 's/^CapabilityBoundingSet=//p' "$unitdir/migd.service" | tr 'A-Z ' 'a-z\n' | sort)
	mine=$(capsh --decode="$(awk '/^CapBnd:/ { print $2 }' /proc/self/status)" | sed 's/.*=//' | tr ',' '\n')
	want=$(echo "$want" | grep -x -F -f <(echo "$mine") | sort | tr '\n' ' ')
	for f in "migd:$pid" "QEMU:$qemu"; do
		have=$(capsh --decode="$(awk '/^CapBnd:/ { print $2 }' "/proc/${f#*:}/status")" | sed 's/.*=//' | tr ',' '\n' | sort | tr '\n' ' ')
		if [ "$have" = "$want" ] && grep -q '^NoNewPrivs:[[:space:]]*1' "/proc/${f#*:}/status" &&
			grep -q '^Seccomp:[[:space:]]*2' "/proc/${f#*:}/status"; then
			check OK "${f%%:*} (pid ${f#*:}) under migd.service's hardening: bounding set ${want% }, NoNewPrivs, seccomp filter"
		else
			check FAIL "${f%%:*} (pid ${f#*:}): bounding set \"${have% }\" (unit's, as this machine allows: \"${want% }\"), $(grep -E '^(NoNewPrivs|Seccomp):' "/proc/${f#*:}/status" | tr '\t\n' '  ')"
		fi
	done
	# writable in the container, read-only for migd: the unit's doing
	# (/usr and the install are read-only binds for every process there)
	for d in /etc /var/lib; do
		sd test -w "$d" || ro="$ro $d (read-only in the container too)"
		nsenter -t "$pid" -m -- test -w "$d" && rw="$rw $d"
	done
	nsenter -t "$pid" -m -- test -w /var/lib/migd || ro="$ro /var/lib/migd"
	[ -z "$rw$ro" ] && check OK "migd's ProtectSystem=strict: /etc, /var/lib writable in the container, read-only for migd; its /var/lib/migd writable" ||
		check FAIL "migd's mount namespace: writable:${rw:- none}; read-only:${ro:- none}"
	[ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] ||
		say "   migd.service's DevicePolicy=$(sd systemctl show -p DevicePolicy --value migd) is not enforced in this container (this machine's cgroups are v1: no devices controller for it)"
}

sd_migd_log() {
	sd journalctl --no-pager -o cat -u migd
}

sd_down() {
	local i
	[ -n "$sd_nspawn_pid" ] || return 0
	# what the journal had, for a report after the container is gone
	[ -n "$sd_leader" ] && sd journalctl --no-pager -o short-precise -u migd -u 'sfsd@*' >"$dir/journal.log" 2>&1
	[ -n "$sd_leader" ] && sd systemctl poweroff --no-block >/dev/null 2>&1
	for ((i = 0; i < 600; i++)); do
		kill -0 "$sd_nspawn_pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$sd_nspawn_pid" 2>/dev/null; then
		echo "$prog: the container did not power off within 60 s: killing it" >&2
		kill "$sd_nspawn_pid" 2>/dev/null
	fi
	wait "$sd_nspawn_pid" 2>/dev/null
	sd_nspawn_pid=
}
