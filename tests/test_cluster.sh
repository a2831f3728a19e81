#!/bin/sh
# The virtual cluster end to end with real guests (issue "real live
# migration"): cluster/demo --explicit boots three guests from the image,
# runs a counter writing to sfs in each and an MPI job across them,
# migrates every guest twice through migd's BACKEND (qmp by default), and
# checks uptime, address, sfs data, the MPI job's verification and QEMU's
# (or libvirt's) figures in migctl history. TAP from cluster/demo; exit 77
# (skip) without root or QEMU. A cluster name, subnet and port of its own.
# IO=mount runs the guests' counter and MPI job through an sfs mount in
# each guest (cluster/demo --io mount), on the qmp backend. SCENARIO=
# checkpoint runs cluster/demo --checkpoint instead: btio and appending
# counters on 4 guests under a checkpoint policy, every QEMU of host n2
# killed, migd restores the job by itself, btio verifies and every log
# counts on with no duplicate and no gap.
#
#   BACKEND=qmp|libvirt [IO=libsfs|mount] [SCENARIO=migrate|checkpoint]
#   BUILD=DIR tests/test_cluster.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
backend=${BACKEND:-qmp}
io=${IO:-libsfs}
if [ "${SCENARIO:-migrate}" = checkpoint ]; then
	exec "$here/../cluster/demo" --checkpoint --tap --name tck --subnet 10.98 --port 7788 \
		--build "${BUILD:?BUILD names the build tree}"
fi
case "$backend:$io" in
qmp:libsfs) name=tcq subnet=10.82 port=7791 guests=3 ;;
libvirt:libsfs) name=tcl subnet=10.83 port=7792 guests=2 ;;
qmp:mount) name=tcm subnet=10.95 port=7795 guests=3 ;;
*) echo "BACKEND=$backend IO=$io: expected qmp or libvirt, and libsfs (or mount with qmp)" >&2; exit 2 ;;
esac
exec "$here/../cluster/demo" --explicit --tap --backend "$backend" --guests "$guests" \
	--name "$name" --subnet "$subnet" --port "$port" --io "$io" \
	--build "${BUILD:?BUILD names the build tree}"
