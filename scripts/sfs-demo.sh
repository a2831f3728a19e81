#!/bin/sh
# sfs-demo.sh: the file system's own demo, and the project's main job until
# the daemon exists. Starts a local sfs (1 metadata server, 4 I/O servers on
# loopback), copies a file in and out with `sfs cp`, checks the checksums,
# shows the layout and usage, and prints cp throughput next to baselines
# measured in the same run: a plain local cp of the same file, and loopback
# TCP (iperf3, one stream) when iperf3 is installed.
#
#   scripts/sfs-demo.sh [--size MiB] [--dir DIR] [--port P] [--io-servers N] [--keep]
#
# --keep leaves the file system running afterwards and says how to use and
# stop it.
set -eu
cd "$(dirname "$0")/.."

size_mib=1024
dir="$PWD/demo"
port=7000
n_io=4
keep=0
while [ $# -gt 0 ]; do
	case "$1" in
	--size) size_mib=$2; shift 2 ;;
	--dir) dir=$2; shift 2 ;;
	--port) port=$2; shift 2 ;;
	--io-servers) n_io=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	-h|--help) sed -n '2,14p' "$0"; exit 0 ;;
	*) echo "sfs-demo: unknown option $1" >&2; exit 2 ;;
	esac
done

SFS=build/fsclient/sfs
SFSD=build/fsserver/sfsd
[ -x "$SFS" ] && [ -x "$SFSD" ] || { echo "sfs-demo: build first (scripts/bootstrap.sh build)" >&2; exit 1; }

rm -rf "$dir"
mkdir -p "$dir"
conf="$dir/sfs.conf"
export SFS_CONF="$conf"
# sfs.conf's default is auth = munge: a key and a running munged (root)
if [ "$(id -u)" = 0 ]; then
	scripts/munged-ensure.sh || exit 1
fi
$SFS genconfig --io-servers "$n_io" --dir "$dir/data" --port "$port" --output "$conf"

$SFSD -c "$conf" --all 2>"$dir/sfsd.log" &
sfsd_pid=$!
cleanup() {
	[ "$keep" = 1 ] || { kill "$sfsd_pid" 2>/dev/null && wait "$sfsd_pid" 2>/dev/null; }
	[ -n "${iperf_pid:-}" ] && kill "$iperf_pid" 2>/dev/null
	true
}
trap cleanup EXIT INT TERM

# bounded wait for every server to answer
i=0
until $SFS ping >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -gt 100 ] && { echo "sfs-demo: servers did not start; see $dir/sfsd.log" >&2; exit 1; }
	sleep 0.1
done
echo "== sfs is up: 1 metadata server, $n_io I/O servers (config $conf)"
$SFS ping

echo "== writing a ${size_mib} MiB test file"
head -c "$((size_mib * 1048576))" /dev/urandom >"$dir/in.bin"
sum_in=$(sha256sum <"$dir/in.bin" | cut -d' ' -f1)

# baseline: the same bytes copied locally, through the page cache like sfs
t0=$(date +%s.%N)
cp "$dir/in.bin" "$dir/local-copy.bin"
t1=$(date +%s.%N)
rm -f "$dir/local-copy.bin"
local_mibs=$(python3 -c "print($size_mib/($t1-$t0))")

echo "== sfs cp in"
$SFS mkdir sfs:/demo
in_json=$($SFS --json cp "$dir/in.bin" sfs:/demo/file.bin)
echo "$in_json"
echo "== sfs getstripe"
$SFS getstripe sfs:/demo/file.bin
echo "== sfs cp out"
out_json=$($SFS --json cp sfs:/demo/file.bin "$dir/out.bin")
echo "$out_json"
sum_out=$(sha256sum <"$dir/out.bin" | cut -d' ' -f1)
# the same read without the local disk in the way
t0=$(date +%s.%N)
$SFS cat sfs:/demo/file.bin >/dev/null
t1=$(date +%s.%N)
cat_mibs=$(python3 -c "print($size_mib/($t1-$t0))")
echo "== sfs df"
$SFS df

iperf_gbps=""
if command -v iperf3 >/dev/null 2>&1; then
	iperf3 -s -1 -p $((port + 100)) >/dev/null 2>&1 &
	iperf_pid=$!
	sleep 0.5
	iperf_gbps=$(iperf3 -c 127.0.0.1 -p $((port + 100)) -t 3 -J 2>/dev/null |
		python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))' 2>/dev/null || true)
	iperf_pid=""
fi

python3 - "$in_json" "$out_json" "$local_mibs" "${iperf_gbps:-}" "$cat_mibs" <<'PY'
import json, sys
cin, cout = json.loads(sys.argv[1]), json.loads(sys.argv[2])
local = float(sys.argv[3])
cat = float(sys.argv[5])
print("== throughput")
print(f"sfs cp in : {cin['mib_per_s']:8.1f} MiB/s  ({cin['bytes']/2**20:.0f} MiB in {cin['seconds']:.2f} s)")
print(f"sfs cp out: {cout['mib_per_s']:8.1f} MiB/s  ({cout['bytes']/2**20:.0f} MiB in {cout['seconds']:.2f} s)")
print(f"sfs cat   : {cat:8.1f} MiB/s  (read to /dev/null: no local disk)")
print(f"local cp  : {local:8.1f} MiB/s  (baseline, same file, same run)")
print(f"ratio to local cp: in {cin['mib_per_s']/local:.2f}, out {cout['mib_per_s']/local:.2f}")
if sys.argv[4]:
    tcp = float(sys.argv[4]) * 1e9 / 8 / 2**20
    print(f"loopback TCP (iperf3, 1 stream): {tcp:8.1f} MiB/s; "
          f"ratio in {cin['mib_per_s']/tcp:.2f}, out {cout['mib_per_s']/tcp:.2f}, cat {cat/tcp:.2f}")
PY

if [ "$sum_in" = "$sum_out" ]; then
	echo "== checksums identical: $sum_in"
else
	echo "== CHECKSUM MISMATCH: in $sum_in, out $sum_out" >&2
	exit 1
fi
rm -f "$dir/in.bin" "$dir/out.bin"
if [ "$keep" = 1 ]; then
	echo "== sfs keeps running (sfsd pid $sfsd_pid). Try:"
	echo "   export SFS_CONF=$conf; $SFS ls -l sfs:/demo; $SFS df"
	echo "   stop it with: kill $sfsd_pid"
fi
