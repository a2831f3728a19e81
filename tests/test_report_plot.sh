#!/bin/sh
# test_report_plot.sh: `migctl report --plot FILE` against a real migd.
#
# A migd on the sim backend (--time-scale 60) on a free loopback port, real
# migctl over ZeroMQ: two guests migrated by hand, then an interval policy
# p1 until it has finished three migrations. Then: a PNG plot starts with
# the PNG magic; an SVG plot contains "<svg", names both series (p1 and the
# manual migrations) and has a point per migration in its total-time and
# downtime panels; --policy p1 keeps p1's series only; gnuplot's temporary
# files are gone afterwards; a bad extension is refused (exit 2) naming the
# file; no gnuplot on PATH is an error (exit 1) naming gnuplot; a filter
# matching nothing is an error saying so.
#
# Env: MIGD and MIGCTL name the programs under test. Exit 77 (skip) without
# python3 or gnuplot.
set -u
. "$(dirname "$0")/lib-migd.sh"

skip_without python3 "to read migctl's JSON"
skip_without gnuplot "to draw the plots"
migd_setup test_report_plot

run_migd 25 --time-scale 60
for n in n1 n2 n3; do
	ctl host add $n --uri "sim:///$n?link=1gbit" --memory 64g >/dev/null 2>"$tmp/err" ||
		fail "host add $n: $(cat "$tmp/err")"
done
for g in g1 g2; do
	ctl guest add $g --host n1 --memory 512m --dirty-rate 16m/s >/dev/null 2>"$tmp/err" ||
		fail "guest add $g: $(cat "$tmp/err")"
done
ctl_json "$tmp/m1.json" migrate g1 --wait
ctl_json "$tmp/m2.json" migrate g2 --wait
ctl policy add interval p1 --every 1m --guests g1,g2 --count 1 >/dev/null 2>"$tmp/err" ||
	fail "policy add interval p1: $(cat "$tmp/err")"
p1_done() {
	ctl --json history --policy p1 >"$tmp/p1.json" 2>/dev/null &&
		[ "$(py "$tmp/p1.json" 'len([m for m in d if m["state"] == "completed"])')" -ge 3 ]
}
wait_for 60 "interval policy p1: 3 completed migrations" p1_done
ctl policy pause p1 >/dev/null 2>"$tmp/err" || fail "policy pause p1: $(cat "$tmp/err")"
queue_empty() {
	ctl --json queue >"$tmp/queue.json" 2>/dev/null &&
		[ "$(py "$tmp/queue.json" 'len(d)')" = 0 ]
}
wait_for 30 "queue empty after pausing p1" queue_empty
ctl_json "$tmp/all.json" history
total=$(py "$tmp/all.json" 'len(d)')
ok "2 manual migrations and $(py "$tmp/all.json" 'len([m for m in d if m.get("policy")])') of policy p1 finished"

# ---- PNG ----
mkdir "$tmp/gp"
TMPDIR=$tmp/gp ctl report --plot "$tmp/cost.png" >"$tmp/out" 2>"$tmp/err" ||
	fail "report --plot cost.png: exit $?: $(cat "$tmp/err")"
[ "$(od -An -N8 -tx1 "$tmp/cost.png" | tr -d ' \n')" = 89504e470d0a1a0a ] ||
	fail "report --plot cost.png: not a PNG (first bytes $(od -An -N8 -tx1 "$tmp/cost.png"))"
grep -q "$total migrations, 2 series" "$tmp/out" ||
	fail "report --plot cost.png: expected \"$total migrations, 2 series\", got: $(cat "$tmp/out")"
[ -z "$(ls -A "$tmp/gp")" ] || fail "report --plot left temporary files: $(ls "$tmp/gp")"
ok "report --plot cost.png: a PNG of $total migrations in 2 series, no temporary files left"

# ---- SVG: the series and their points ----
ctl report --plot "$tmp/cost.svg" >"$tmp/out" 2>"$tmp/err" ||
	fail "report --plot cost.svg: exit $?: $(cat "$tmp/err")"
grep -q "<svg" "$tmp/cost.svg" || fail "report --plot cost.svg: no <svg in it"
for series in p1 "(manual)"; do
	grep -qF ">$series<" "$tmp/cost.svg" ||
		fail "report --plot cost.svg: no series titled \"$series\" in the plot"
done
# gnuplot draws each point as a <use> of its point symbol: total time and
# downtime have one per migration and one per series in their keys (quiesce
# none: sim guests have no agent, and the panel says so)
points=$(grep -c "<use xlink:href='#gpPt[0-9]*' transform='translate" "$tmp/cost.svg")
[ "$points" -eq $((2 * total + 4)) ] ||
	fail "report --plot cost.svg: $points points drawn, expected $((2 * total + 4))"
grep -q "no quiesce times: no agents" "$tmp/cost.svg" ||
	fail "report --plot cost.svg: the empty quiesce panel does not say why"
ok "report --plot cost.svg: an SVG with series p1 and (manual), $points points for $total migrations"

ctl report --plot "$tmp/p1.svg" --policy p1 >"$tmp/out" 2>"$tmp/err" ||
	fail "report --plot p1.svg --policy p1: exit $?: $(cat "$tmp/err")"
grep -qF ">p1<" "$tmp/p1.svg" && ! grep -qF ">(manual)<" "$tmp/p1.svg" ||
	fail "report --plot --policy p1: expected p1's series only"
ok "report --plot --policy p1: p1's series only"

# ---- errors ----
ctl report --plot "$tmp/cost.jpg" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 2 ] && grep -qF "cost.jpg" "$tmp/err" && grep -qF ".png or .svg" "$tmp/err" ||
	fail "report --plot cost.jpg: expected exit 2 naming the file, got $rc: $(cat "$tmp/err")"
[ ! -e "$tmp/cost.jpg" ] || fail "report --plot cost.jpg: wrote the file anyway"
ok "report --plot cost.jpg: refused (exit 2) naming the file"

PATH=/nonexistent "$MIGCTL" --connect "$endpoint" report --plot "$tmp/x.png" \
	>"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] && grep -qF "gnuplot" "$tmp/err" ||
	fail "report --plot without gnuplot: expected exit 1 naming gnuplot, got $rc: $(cat "$tmp/err")"
ok "report --plot with no gnuplot on PATH: exit 1 naming gnuplot"

ctl report --plot "$tmp/none.svg" --policy nosuch >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] && grep -qF "no finished migrations" "$tmp/err" ||
	fail "report --plot --policy nosuch: expected exit 1, got $rc: $(cat "$tmp/err")"
ok "report --plot with nothing to draw: exit 1 saying so"

migd_done test_report_plot
