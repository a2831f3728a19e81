#!/bin/sh
# fuzz.sh: run every libFuzzer target for a set time (outside CI).
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     default 60
# Builds build-fuzz with clang (installed with apt-get when missing). Crashes
# land in build-fuzz/crashes/; corpora persist in build-fuzz/corpus/.
set -eu
cd "$(dirname "$0")/.."
secs=${1:-60}
command -v clang >/dev/null 2>&1 || {
	[ "$(id -u)" = 0 ] || { echo "fuzz.sh: clang missing; run as root to install it" >&2; exit 1; }
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang
}
[ -f build-fuzz/build.ninja ] || CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=true
ninja -C build-fuzz tests/fuzz/fuzz_hdr tests/fuzz/fuzz_req tests/fuzz/fuzz_reply tests/fuzz/fuzz_conf tests/fuzz/fuzz_cap tests/fuzz/fuzz_hello \
	tests/fuzz/fuzz_agent tests/fuzz/fuzz_zap tests/fuzz/fuzz_keyfile tests/fuzz/fuzz_api
mkdir -p build-fuzz/crashes
status=0
for t in hdr req reply conf cap hello agent zap keyfile api; do
	mkdir -p "build-fuzz/corpus/$t"
	echo "== fuzz_$t for $secs s"
	build-fuzz/tests/fuzz/fuzz_$t -max_total_time="$secs" -max_len=70000 \
		-artifact_prefix="build-fuzz/crashes/$t-" "build-fuzz/corpus/$t" 2>&1 |
		grep -E "^#[0-9]+.*DONE|ERROR|SUMMARY|crash-" || true
	ls build-fuzz/crashes/$t-* >/dev/null 2>&1 && { echo "fuzz_$t: crash saved in build-fuzz/crashes/"; status=1; }
done
exit $status
