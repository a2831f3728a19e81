#!/bin/sh
# bootstrap.sh: everything a fresh Debian 12 machine needs, in one script.
#
#   scripts/bootstrap.sh run     install packages, build, run the main job:
#                                cluster/demo, real QEMU guests on a virtual
#                                cluster live-migrated under an interval
#                                policy by migd; cluster/demo --checkpoint,
#                                a job checkpointed, a host killed and the
#                                job restored by migd; then
#                                bench/migration-cost --quick, the job's
#                                slowdown under interval policies (root;
#                                else the sim demo)
#   scripts/bootstrap.sh sim     the same on the simulated cluster
#                                (scripts/migd-demo.sh; migd stays running)
#   scripts/bootstrap.sh test    install packages, build normal and sanitizer
#                                (address,undefined) trees, run every test,
#                                end with "N passed, N failed"
#   scripts/bootstrap.sh deps|build   just those steps (build includes the
#                                guest image, cluster/mkimage -> build/image)
#
# Packages come from Debian with apt-get (apt-get update runs once, only
# when something is missing). Needs root, or sudo, for apt-get.
set -eu
cd "$(dirname "$0")/.."

# One package per line, so that changes to this list merge cleanly.
PACKAGES="
build-essential
meson
ninja-build
pkg-config
python3
libsqlite3-dev
libinih-dev
libjansson-dev
libcriterion-dev
libzmq3-dev
libopenmpi-dev
openmpi-bin
gnuplot-nox
iperf3
iproute2
nftables
procps
python3-zmq
tzdata
libschedule-cron-events-perl
qemu-system-x86
dropbear-bin
libvirt-dev
libvirt-daemon
libvirt-daemon-driver-qemu
libvirt-clients
libxen-dev
iputils-ping
cpio
zstd
kmod
util-linux
libfuse3-dev
libssl-dev
fuse3
munge
libmunge-dev
gnutls-bin
tcpdump
libmicrohttpd-dev
prometheus
systemd
systemd-container
libcap2-bin
"

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

deps() {
	missing=""
	for p in $PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		echo "bootstrap: installing$missing"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
	fi
	munge_up
}

# sfs authenticates every connection with MUNGE (sfs.conf's default auth =
# munge): a key (/etc/munge/munge.key, made once, munge 0400) and a running
# munged, started directly when no service manager did.
munge_up() {
	as_root scripts/munged-ensure.sh
}

build() {
	[ -f build/build.ninja ] || meson setup build
	ninja -C build
	image
}

# The virtual cluster's guest image (build/image), from Debian packages
# fetched with apt-get download (cached in /var/cache/migd-mkimage, as
# root); quick
# when nothing changed. The sanitizer tree's tests use it too. apt-get
# download needs the package lists, so update them once if they are empty.
image() {
	if ! apt-cache policy linux-image-amd64 2>/dev/null | grep -q 'Candidate: [0-9]'; then
		as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	fi
	cluster/mkimage --build build -q
}

build_asan() {
	[ -f build-asan/build.ninja ] ||
		meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false
	ninja -C build-asan
}

run_tests() {
	status=0
	# Criterion forks a child per test; leak checking at its exit is noise
	# in the parent, real in the children, so keep it on.
	export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
	export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
	meson test -C build --print-errorlogs --num-processes 2 || status=1
	meson test -C build-asan --print-errorlogs --num-processes 2 || status=1
	python3 scripts/test-summary.py build/meson-logs/testlog.json \
		build-asan/meson-logs/testlog.json || status=1
	return $status
}

# The main job: the whole scenario on real QEMU guests (cluster/demo: the
# virtual cluster, sfs, migd with the qmp backend, guests under an interval
# policy, checks, report), the checkpoint scenario (cluster/demo
# --checkpoint: btio under a checkpoint policy, every QEMU of a host killed,
# migd restores the job by itself; about 3 minutes), then the
# migration-cost experiment in its quick
# form (bench/migration-cost --quick: btio's slowdown under interval
# policies, Figures 12 and 13, the sim's what-if; under 15 minutes; its
# own cluster name, subnet and port). Arguments go to the first cluster/demo. All
# three run even if one fails; the status is nonzero if any failed. It
# needs root for the namespaces; without root, the simulated cluster
# (scripts/migd-demo.sh) instead.
run_main() {
	if [ "$(id -u)" = 0 ]; then
		status=0
		cluster/demo "$@" || status=1
		echo
		echo "== cluster/demo --checkpoint: a job checkpointed, a host's QEMUs killed, migd restores it"
		cluster/demo --checkpoint || status=1 # the qmp backend only: no arguments
		echo
		echo "== bench/migration-cost --quick: what migrating the job every N minutes costs it"
		bench/migration-cost --quick || status=1
		exit $status
	fi
	echo "bootstrap: not root, so no virtual cluster (network namespaces need root);" >&2
	echo "bootstrap: running the simulated cluster instead (scripts/migd-demo.sh)" >&2
	exec scripts/migd-demo.sh "$@"
}

case "${1:-}" in
deps) deps ;;
build) deps; build ;;
run) deps; build; shift; run_main "$@" ;;
sim) deps; build; shift; exec scripts/migd-demo.sh "$@" ;;
test) deps; build; build_asan; run_tests ;;
*) echo "usage: $0 run|sim|test|deps|build" >&2; exit 2 ;;
esac
