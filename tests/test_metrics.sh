#!/bin/sh
# test_metrics.sh: the Prometheus endpoints of migd and sfsd, checked by the
# real tools.
#
# A real sfsd (--all: metadata server and two I/O servers, [metrics] listen
# in sfs.conf, so three endpoints), a real migd (--metrics-listen) with
# sim hosts and two loopback qmp hosts (a BIOS-only QEMU guest, when
# qemu-system-x86_64 is there) and a real migagent for the sim guest. Bad metrics addresses are refused with a
# message naming them. `promtool check metrics` must pass on every
# endpoint's output, before and after traffic. Then a real Prometheus
# server (scrape_interval 1s, a temporary TSDB) scrapes all four; through
# its HTTP API (/api/v1/query) the test sees: every target up, the agent
# connected with its I/O rates, no completed migration before `migctl
# migrate --wait` and exactly one after (with its bytes, its duration and
# its quiesce by the agent in the histograms), the same for the QEMU guest
# under backend="qmp", and sfsd's write counters rising by
# exactly the bytes `sfs cp` wrote, a failed lookup counted by errno.
# Every wait is bounded; everything started is stopped on exit.
#
# Env: MIGD, MIGCTL, SFSD, SFS, MIGAGENT name the programs under test; promtool and
# prometheus (Debian's prometheus package, in scripts/bootstrap.sh) come
# from PATH and their absence is a failure. PORT_RANGE=LO-HI bounds the
# loopback ports used (default 20000-32000).
set -u
. "$(dirname "$0")/lib-migd.sh"

: "${SFSD:?set SFSD}" "${SFS:?set SFS}" "${MIGAGENT:?set MIGAGENT}"
migd_setup test_metrics
sfsd_pid=
prom_pid=
agent_pid=

qemu_pids() { # the QEMUs of this test, by their QMP socket path
	pgrep -f -- "-qmp unix:$tmp/" 2>/dev/null
}

cleanup() {
	stop_pid "$prom_pid"
	stop_pid "$agent_pid"
	for p in $(qemu_pids); do kill -9 "$p" 2>/dev/null; done
	stop_pid "$sfsd_pid"
	migd_cleanup
}

for tool in promtool prometheus python3; do
	command -v "$tool" >/dev/null 2>&1 ||
		fail "no $tool in PATH (scripts/bootstrap.sh installs it: prometheus, python3)"
done
ok "promtool, prometheus and python3 are there"

# ---- 13 consecutive free ports: migd 2 + its metrics 1, sfsd 3 + metrics
# 3, Prometheus 1, migd's agent endpoint 1, QEMU's migrations 2 ----
range=${PORT_RANGE:-20000-32000}
lo=${range%-*}
hi=${range#*-}
[ "$lo" -lt $((hi - 13)) ] 2>/dev/null || fail "PORT_RANGE \"$range\": expected LO-HI, 13 or more ports"
used=$(used_ports)
base=
tries=0
while [ -z "$base" ] && [ $tries -lt 200 ]; do
	r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
	p=$((lo + r % (hi - lo - 13)))
	k=0
	while [ $k -lt 13 ] && ! printf '%s\n' "$used" | grep -qx "$((p + k))"; do
		k=$((k + 1))
	done
	[ $k -eq 13 ] && base=$p
	tries=$((tries + 1))
done
[ -n "$base" ] || fail "no 13 free consecutive ports in $lo-$hi"
port=$base
endpoint="tcp://127.0.0.1:$port"
migd_metrics=127.0.0.1:$((base + 2))
sfs_port=$((base + 3))
sfs_metrics_port=$((base + 6))
prom_addr=127.0.0.1:$((base + 9))
agent_ep=tcp://127.0.0.1:$((base + 10))

scrape() { # HOST:PORT FILE: GET /metrics, fail unless 200
	python3 - "$1" "$2" <<'EOF' || fail "GET http://$1/metrics failed"
import sys, urllib.request
with urllib.request.urlopen("http://%s/metrics" % sys.argv[1], timeout=5) as r:
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers
    open(sys.argv[2], "wb").write(r.read())
EOF
}

check_metrics() { # NAME FILE: promtool must pass it
	promtool check metrics <"$2" >"$tmp/promtool.out" 2>&1 ||
		fail "promtool check metrics on $1 (exit $?): $(cat "$tmp/promtool.out")"
}

# ---- bad metrics addresses are refused, naming the value ----
"$SFS" genconfig --io-servers 2 --dir "$tmp/fs" --port "$sfs_port" --output "$tmp/sfs.conf" \
	>/dev/null || fail "sfs genconfig"
cp "$tmp/sfs.conf" "$tmp/bad.conf"
printf '\n[metrics]\nlisten = 127.0.0.1:99999\n' >>"$tmp/bad.conf"
"$SFSD" -c "$tmp/bad.conf" --check >"$tmp/out" 2>&1 && fail "sfsd --check took listen = 127.0.0.1:99999"
grep -q '127.0.0.1:99999' "$tmp/out" || fail "sfsd --check: message does not name the address: $(cat "$tmp/out")"
"$MIGD" --db "$tmp/bad.db" --listen "$endpoint" --metrics-listen nohostport >"$tmp/out" 2>&1 &&
	fail "migd started with --metrics-listen nohostport"
grep -q '"nohostport"' "$tmp/out" || fail "migd: message does not name the address: $(cat "$tmp/out")"
ok "bad metrics listen addresses refused by sfsd --check and migd, naming the value"

# ---- sfsd with three endpoints, migd with one ----
printf '\n[metrics]\nlisten = 127.0.0.1:%s\n' "$sfs_metrics_port" >>"$tmp/sfs.conf"
"$SFSD" -c "$tmp/sfs.conf" --all >"$tmp/sfsd.log" 2>&1 &
sfsd_pid=$!
sfs_ping() { "$SFS" -c "$tmp/sfs.conf" -q ping >/dev/null 2>&1; }
wait_for 20 "sfsd answers ping" sfs_ping
run_migd 25 --time-scale 60 --metrics-listen "$migd_metrics" --agent-listen "$agent_ep" \
	--qmp-image-dir none --qmp-state-dir "$tmp/state-qmp" --qmp-migration-port-base $((base + 11))
for n in n1 n2; do
	ctl host add $n --uri "sim:///$n?link=1gbit" --memory 64g >/dev/null 2>"$tmp/err" ||
		fail "host add $n: $(cat "$tmp/err")"
done
ctl guest add g1 --host n1 --memory 1g --dirty-rate 16m/s >/dev/null 2>"$tmp/err" ||
	fail "guest add g1: $(cat "$tmp/err")"
"$MIGAGENT" --migd "$agent_ep" --guest g1 --socket "$tmp/agent.sock" >"$tmp/migagent.log" 2>&1 &
agent_pid=$!
ok "sfsd (3 servers), migd (sim, 2 hosts, 1 guest) and g1's migagent started"

targets="migd=$migd_metrics meta=127.0.0.1:$sfs_metrics_port"
targets="$targets io0=127.0.0.1:$((sfs_metrics_port + 1)) io1=127.0.0.1:$((sfs_metrics_port + 2))"
for t in $targets; do
	scrape "${t#*=}" "$tmp/${t%%=*}.0.prom"
	check_metrics "${t%%=*} before traffic" "$tmp/${t%%=*}.0.prom"
done
sleep 1.2 # migd refreshes its gauges once a second
scrape "$migd_metrics" "$tmp/migd.0.prom"
grep -qx 'migd_hosts{health="ok",enabled="yes"} 2' "$tmp/migd.0.prom" ||
	fail "migd: expected migd_hosts{health=\"ok\",enabled=\"yes\"} 2 in $(cat "$tmp/migd.0.prom")"
grep -qx 'migd_migration_queue_depth 0' "$tmp/migd.0.prom" || fail "migd: no queue depth 0"
grep -q '^migd_migrations_total' "$tmp/migd.0.prom" &&
	fail "migd: a migrations_total series before any migration"
grep -qx 'sfsd_connections_max{server="io1",role="io"} 1024' "$tmp/io1.0.prom" ||
	fail "io1: expected sfsd_connections_max{server=\"io1\",role=\"io\"} 1024"
ok "promtool check metrics passes on all 4 endpoints; gauges as expected"

# ---- a real Prometheus scraping all four ----
cat >"$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: migd
    static_configs:
      - targets: ['$migd_metrics']
  - job_name: sfsd
    static_configs:
      - targets: ['127.0.0.1:$sfs_metrics_port', '127.0.0.1:$((sfs_metrics_port + 1))', '127.0.0.1:$((sfs_metrics_port + 2))']
EOF
promtool check config "$tmp/prometheus.yml" >"$tmp/out" 2>&1 ||
	fail "promtool check config: $(cat "$tmp/out")"
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
	--web.listen-address="$prom_addr" --log.level=warn >"$tmp/prometheus.log" 2>&1 &
prom_pid=$!

query() { # EXPR: the sum of the result's values, "none" when it is empty
	python3 - "$prom_addr" "$1" <<'EOF'
import json, sys, urllib.parse, urllib.request
url = "http://%s/api/v1/query?%s" % (sys.argv[1], urllib.parse.urlencode({"query": sys.argv[2]}))
try:
    d = json.load(urllib.request.urlopen(url, timeout=5))
except Exception as e:
    print("error: %s" % e)
    sys.exit(0)
if d.get("status") != "success":
    print("error: %s" % d)
elif not d["data"]["result"]:
    print("none")
else:
    v = sum(float(r["value"][1]) for r in d["data"]["result"])
    print(int(v) if v == int(v) else v)
EOF
}

until_query() { # SECONDS EXPR WANT: poll Prometheus until EXPR gives WANT
	i=0
	while [ "$(query "$2")" != "$3" ]; do
		kill -0 "$prom_pid" 2>/dev/null ||
			fail "prometheus exited: $(tail -5 "$tmp/prometheus.log")"
		i=$((i + 1))
		[ $i -lt $(($1 * 4)) ] ||
			fail "Prometheus: $2 is $(query "$2") after $1 s, expected $3"
		sleep 0.25
	done
}

until_some() { # SECONDS EXPR: poll until EXPR has a result
	i=0
	while case $(query "$2") in none | error*) true ;; *) false ;; esac; do
		i=$((i + 1))
		[ $i -lt $(($1 * 4)) ] || fail "Prometheus: $2 still empty after $1 s"
		sleep 0.25
	done
}

until_query 60 'count(up == 1)' 4
ok "Prometheus scrapes migd and the 3 sfsd servers (4 targets up)"

until_query 30 'migd_agent_connected{guest="g1"}' 1
until_query 10 'migd_agents_connected' 1
until_some 10 'migd_agent_write_bytes_per_second{guest="g1"}'
until_some 10 'migd_agent_connections_total >= 1'
ok "Prometheus: g1's migagent connected, its I/O rates reported"

[ "$(query 'migd_migrations_total{result="completed"}')" = none ] ||
	fail "Prometheus: a completed migration before any was asked"
ctl migrate g1 --to n2 --wait >"$tmp/out" 2>&1 || fail "migrate g1: $(cat "$tmp/out")"
until_query 30 'sum(migd_migrations_total{result="completed",backend="sim"})' 1
until_query 10 'sum(migd_migration_duration_seconds_count{result="completed"})' 1
until_query 10 'sum(migd_migration_quiesce_seconds_count{result="completed"})' 1
[ "$(query 'sum(migd_migration_data_processed_bytes_total) > 1e9')" != none ] ||
	fail "Prometheus: migd_migration_data_processed_bytes_total is $(query 'sum(migd_migration_data_processed_bytes_total)'), expected > 1 GB for a 1 GiB guest"
ok "Prometheus: migd_migrations_total{result=\"completed\"} rose from none to 1 after migctl migrate"

# the qmp backend: real QEMU, its own figures under backend="qmp"
if command -v qemu-system-x86_64 >/dev/null 2>&1; then
	for h in q1 q2; do
		ctl host add $h --uri "qmp:///$h?cluster=tmx-none" >/dev/null 2>"$tmp/err" ||
			fail "host add $h: $(cat "$tmp/err")"
	done
	ctl guest add qg --host q1 --memory 64m >/dev/null 2>"$tmp/err" ||
		fail "guest add qg: $(cat "$tmp/err")"
	[ "$(query 'migd_migrations_total{backend="qmp"}')" = none ] ||
		fail "Prometheus: a qmp migration before any was asked"
	ctl_timeout=30000 ctl migrate qg --to q2 --wait >"$tmp/out" 2>&1 ||
		fail "migrate qg: $(cat "$tmp/out")"
	until_query 30 'sum(migd_migrations_total{result="completed",backend="qmp"})' 1
	until_query 10 'sum(migd_migration_downtime_seconds_count{backend="qmp"})' 1
	until_some 10 'sum(migd_migration_data_processed_bytes_total{backend="qmp"}) > 0'
	ok "Prometheus: a QEMU migration counted under backend=\"qmp\", with QEMU's downtime and bytes"
else
	checks=$((checks + 1))
	echo "ok $checks - # SKIP no qemu-system-x86_64: the qmp backend's metrics"
fi

before=$(query 'sum(sfsd_data_received_bytes_total{op="DF_WRITE"})')
[ "$before" = none ] || fail "Prometheus: sfsd received write data before any write: $before"
head -c 1048576 /dev/urandom >"$tmp/data"
"$SFS" -c "$tmp/sfs.conf" -q cp "$tmp/data" sfs:/data >"$tmp/out" 2>&1 ||
	fail "sfs cp: $(cat "$tmp/out")"
"$SFS" -c "$tmp/sfs.conf" -q cat sfs:/missing >/dev/null 2>&1 && fail "sfs cat of a missing file worked"
until_query 30 'sum(sfsd_data_received_bytes_total{op="DF_WRITE"})' 1048576
until_some 10 'sum(sfsd_requests_total{op="DF_WRITE"}) > 0'
until_some 10 'sum(sfsd_request_errors_total{server="meta",errno="ENOENT"}) > 0'
until_some 10 'sum(sfsd_request_duration_seconds_count{op="DF_WRITE"}) > 0'
ok "Prometheus: sfsd write bytes rose from none to exactly 1048576 after sfs cp; ENOENT counted"

for t in $targets; do
	scrape "${t#*=}" "$tmp/${t%%=*}.1.prom"
	check_metrics "${t%%=*} after traffic" "$tmp/${t%%=*}.1.prom"
done
ok "promtool check metrics passes on all 4 endpoints after traffic"

stop_pid "$prom_pid"
prom_pid=
stop_pid "$agent_pid"
agent_pid=
stop_pid "$sfsd_pid"
sfsd_pid=
if grep -qE 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer' "$tmp/sfsd.log" \
	"$tmp/migagent.log"; then
	fail "sanitizer report in sfsd's or migagent's log: $(grep -hE -A5 'Sanitizer|runtime error' "$tmp/sfsd.log" "$tmp/migagent.log" | head -20)"
fi
migd_done test_metrics
