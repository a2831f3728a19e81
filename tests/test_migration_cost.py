#!/usr/bin/env python3
"""test_migration_cost.py: bench/migration-cost's report on recorded results.

No QEMU, no root: `bench/migration-cost --report-only FILE` on the
results.json files under tests/migration-cost/ and on variants of them made
here, and the what-if's sim twin (sim_twin) on issue 22's crash.

  one-interval.json   --intervals 4m --counts 1 --repeat 3 --no-variants
                      --sizes 256: B P B P B P B, baselines 98, 102, 100
                      and 104 s (neighbour means 100, 101 and 102 s, the
                      median 101 s), policy runs 102, 105.04 and 108.12 s
                      (per pair +2, +4, +6%), a what-if and one Figure 12
                      size;
  two-intervals.json  --intervals 1m,4m --counts 1 --repeat 2 with the
                      variants (quiesce off, lull) at 1m, one lost run.

Both are made up, shaped like what the driver records (version 2), with
round numbers so that the expected figures can be worked out by hand.
Checked: the runs in order, each policy run's per-pair difference and its
split, the table's rows with the mean and 95% Student t interval of both
measures, whether the interval includes the paired figure, and the goal
labels (each goal judged at the interval it names, 'not measured' without
it, the --quick stand-ins job/1 and job/4); a version 1 file still
reads; a bad file exits 1 naming it.

Env: MIGRATION_COST names the script (default: bench/migration-cost next
to this directory). TAP lines; exit 1 at the first failure.
"""
import copy
import json
import math
import os
import subprocess
import sys
import tempfile
from importlib.machinery import SourceFileLoader

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.environ.get("MIGRATION_COST") or os.path.join(HERE, "..", "bench",
                                                          "migration-cost")
FIXTURES = os.path.join(HERE, "migration-cost")
checks = 0
tmp = tempfile.mkdtemp(prefix="test_migration_cost.")


def ok(text):
    global checks
    checks += 1
    print("ok %d - %s" % (checks, text))


def fail(text, output=""):
    print("not ok %d - %s" % (checks + 1, text))
    for line in output.splitlines()[-40:]:
        print("# " + line)
    sys.exit(1)


def check(cond, text, output=""):
    if cond:
        ok(text)
    else:
        fail(text, output)


def close(a, b, eps=1e-6):
    return a is not None and b is not None and abs(a - b) <= eps


def load(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return json.load(f)


def report(results, *extra, code=0):
    """--report-only on a results dict (written to a file): (stdout, json)."""
    path = os.path.join(tmp, "results-%d.json" % checks)
    with open(path, "w") as f:
        json.dump(results, f)
    text = subprocess.run([SCRIPT, "--report-only", path] + list(extra), capture_output=True,
                          text=True, timeout=60)
    if text.returncode != code:
        fail("--report-only exits %d, not %d" % (text.returncode, code),
             text.stdout + text.stderr)
    if code:
        return text.stderr, None
    js = subprocess.run([SCRIPT, "--report-only", path, "--json"], capture_output=True,
                        text=True, timeout=60)
    if js.returncode != 0:
        fail("--report-only --json exits %d" % js.returncode, js.stderr)
    return text.stdout, json.loads(js.stdout)


def section(text, first_word):
    """The lines from the one starting with first_word to the next blank one."""
    lines = text.splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith(first_word)), None)
    if start is None:
        fail("no line starting with %r" % first_word, text)
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


def goals(js):
    return [(g["verdict"], g["text"]) for g in js["goals"]]


def t95_half(xs, t):
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))
    return t * sd / math.sqrt(len(xs))


# ---- one interval, one size, --no-variants
one = load("one-interval.json")
text, js = report(one)
seq = section(text, "RUN ")[1:]
names = [l.split()[0] for l in seq]
check(names == ["baseline", "r01-240s-k1", "baseline", "r02-240s-k1", "baseline",
                "r03-240s-k1", "baseline"],
      "one interval: the runs in the order they ran, B P B P B P B", text)
diffs = [r["pair"]["diff_pct"] for r in js["runs"]]
check(all(close(a, b) for a, b in zip(diffs, [2.0, 4.0, 6.0])) and
      js["runs"][0]["pair"]["baselines"] == ["baseline 1", "baseline 2"] and
      js["runs"][2]["pair"]["baselines"] == ["baseline 3", "baseline 4"],
      "one interval: each policy run against the mean of the baselines either side of it "
      "(+2, +4, +6%%): %s" % diffs)
sp = js["runs"][1]["pair"]["split_diff_s"]
check(close(sp["startup_s"], 0.5) and close(sp["loop_s"], 3.0) and close(sp["readback_s"], 0.54)
      and close(js["runs"][1]["pair"]["other_loop_s"], 2.0),
      "one interval: run 2's difference split into start-up +0.5, loop +3.0 (2.0 outside "
      "the overlapped steps), read-back +0.54 s: %s" % sp)
check("105.0     4.5    68.0    32.5     +4.0   +4.0%    +0.5    +3.0    +0.5    1.00   +0.96%"
      in seq[3],
      "one interval: the sequence table prints run 2's pair", "\n".join(seq))
row = js["rows"][0]
check(len(js["rows"]) == 1 and close(row["pair_diff_pct"], 4.0) and
      close(row["pair_ci_pct"], t95_half([2, 4, 6], 4.303)) and row["pairs"] == 3,
      "one interval: per pair mean +4.0%%, 95%% interval +-%.3f (t with 2 df)" %
      (row["pair_ci_pct"] or -1))
paired = [100 * l / (w - l) for l, w in ((0.5, 102), (1.0, 105.04), (0.6, 108.12))]
check(close(row["paired_pct"], sum(paired) / 3) and
      close(row["paired_ci_pct"], t95_half(paired, 4.303)),
      "one interval: paired mean %+.3f%% with its own interval" % row["paired_pct"])
table = section(text, "INTERVAL")
check(len(table) == 2 and table[1].split()[:7] == ["4m", "240.0", "1", "required", "off", "3",
                                                    "105.0"] and
      "+4.0 [-1.0, +9.0]" in table[1] and "+0.67 [+0.04, +1.30]" in table[1] and
      table[1].rstrip().endswith("3/3"),
      "one interval: the table's row: per pair +4.0 [-1.0, +9.0], paired +0.67 "
      "[+0.04, +1.30], 3/3 verified", "\n".join(table))
check(row["measures_agree"] is True and
      "4m k1: per pair +4.1 s, +4.0% (95% CI -1.0 to +9.0%): the interval includes the "
      "paired +0.67%; start-up +0.2 s, step loop +3.3 s (0.7 s in the steps migrations "
      "overlapped, +2.6 s in its other steps), read-back +0.6 s" in text,
      "one interval: the interval includes the paired figure, and where the rest goes", text)
g = goals(js)
check(g[0][0] == "met" and "4-minute interval (4m, 240 s)" in g[0][1] and
      "+0.67% (95% CI +0.04 to +1.30%) paired" in g[0][1],
      "one interval: the 4-minute goal judged at 4m: met", text)
check(g[1] == ("not measured", "slowdown at the 1-minute interval, 1 guest per period "
                               "(goal <= 3%): not measured (intervals run: 4m)") and
      "[not measured] slowdown at the 1-minute interval" in text,
      "one interval: the 1-minute goal is not measured (not judged on the 4-minute run)",
      text)
check(g[2][0] == "met" and "7 of 7" in g[2][1] and g[3][0] == "met" and "+10%" in g[3][1],
      "one interval: verification 7 of 7, sim within 20% (+10%)", text)
check("256 MiB: idle 4100 ms, job 5200 ms" in text and "r03-240s-k1        240.0" in text,
      "one interval: Figure 12's one size and the what-if table are printed", text)

# ---- the same, but the policy runs slower throughout: the interval
# excludes the paired figure and the goal says so
slow = copy.deepcopy(one)
for r, w in zip(slow["runs"], (106.0, 108.07, 110.16)):  # +6, +7, +8%
    r["split"]["loop_s"] += w - r["wall_s"]
    r["wall_s"] = w
text, js = report(slow)
row = js["rows"][0]
check(row["measures_agree"] is False and close(row["pair_diff_pct"], 7.0) and
      "the interval excludes the paired +0.67%" in text and
      "step loop +6.4 s (0.7 s in the steps migrations overlapped, +5.7 s in its other "
      "steps)" in text,
      "slower throughout: the interval excludes the paired figure, the rest named as the "
      "loop's other steps", "\n".join(section(text, "where")))
check("which excludes the paired figure" in goals(js)[0][1],
      "slower throughout: the 4-minute goal says the per-pair interval excludes the paired "
      "figure", text)

# ---- two intervals, with the variants at the shorter one
two = load("two-intervals.json")
text, js = report(two)
keys = [(r["label"], r["quiesce"], r["lull"]) for r in js["rows"]]
check(keys == [("4m", "required", False), ("1m", "required", False), ("1m", "required", True),
               ("1m", "off", False)],
      "two intervals: a row per interval and variant, longest first: %s" % keys)
g = goals(js)
r1m = js["rows"][1]
check(g[0][0] == "missed" and "4-minute interval (4m, 240 s)" in g[0][1] and
      "+1.10% (95% CI" in g[0][1],
      "two intervals: the 4-minute goal judged at 4m: missed (+1.10% > 1%)", text)
check(g[1][0] == "met" and "1-minute interval (1m, 60 s)" in g[1][1] and
      ("%+.2f%% (95%% CI" % r1m["paired_pct"]) in g[1][1] and
      close(r1m["paired_pct"], (100 * 2.2 / 100.8 + 100 * 2.6 / 100.9) / 2),
      "two intervals: the 1-minute goal judged on 1m with quiesce required and no lull, not "
      "on a variant", text)
check("lost: policy every 60.0 s" in text and "17 of 17; 1 run(s) lost" in g[2][1],
      "two intervals: the lost run is listed and not counted", text)

# ---- --quick: job/1 and job/4 stand for 4 and 1 minutes
quick = copy.deepcopy(two)
quick["quick"] = True
for r in quick["runs"]:
    r["label"], r["interval_s"] = ("job/1", 101.0) if r["label"] == "4m" else ("job/4", 25.25)
quick["intervals"] = [[101.0, "job/1"], [25.25, "job/4"]]
text, js = report(quick)
g = goals(js)
check("4-minute interval (job/1, 101 s)" in g[0][1] and "at a real 240 s interval" in g[0][1]
      and "1-minute interval (job/4, 25 s)" in g[1][1] and "at a real 60 s interval" in g[1][1],
      "--quick: the goals judged at their stand-ins job/1 and job/4, projected to the real "
      "interval", text)

# ---- an interval no goal names: neither goal is judged
other = copy.deepcopy(one)
for r in other["runs"]:
    r["label"], r["interval_s"] = "2m", 120.0
other["intervals"] = [[120.0, "2m"]]
text, js = report(other)
check([v for v, _ in goals(js)[:2]] == ["not measured", "not measured"] and
      "not measured (intervals run: 2m)" in text,
      "--intervals 2m: both slowdown goals not measured", text)

# ---- version 1 (before interleaving): still reads
v1 = copy.deepcopy(one)
del v1["version"]
v1["baseline_s"] = [b["wall_s"] for b in v1.pop("baselines")]
v1["baseline_median_s"] = 100.0
for r in v1["runs"]:
    for k in ("seq", "kind", "split", "job_start_ns", "job_end_ns"):
        r.pop(k)
text, js = report(v1)
row = js["rows"][0]
check("results version 1" in text and row["pair_diff_pct"] is None and
      close(row["paired_pct"], sum(paired) / 3) and goals(js)[0][0] == "met" and
      goals(js)[1][0] == "not measured" and "+4.0% (baseline noise +-3.0%)" in goals(js)[0][1],
      "version 1 results: no pairs, paired and goals as before", text)
err, _ = report({"version": 99}, code=1)
check("results version 99" in err and "results-" in err,
      "a newer version is refused, exit 1 naming the file: %s" % err.strip())
err, _ = report({"version": 2}, code=1)
check("--report-only" in err and "results-" in err,
      "a results file without its runs: exit 1 naming the file: %s" % err.strip())

# ---- the what-if's sim twin (issue 22's crash): calibrate named only the
# hosts migrations touched (g1 n1 -> n5, g4 n4 -> n1); g2 never moved
mc = SourceFileLoader("migration_cost", SCRIPT).load_module()
cal = {"link_bps": 100e6, "sim": {
    "hosts": [{"name": "n1", "uri": "sim:///n1?link=900000000bit"},
              {"name": "n4", "uri": "sim:///n4?link=850000000bit"},
              {"name": "n5", "uri": "sim:///n5?link=900000000bit"}],
    "guests": [{"name": "g1", "host": "n5", "memory": "119248896", "dirty_rate": "1327104/s"},
               {"name": "g4", "host": "n1", "memory": "120000000", "dirty_rate": "2000000/s"}]}}
start = {"g1": "n1", "g2": "n2", "g3": "n3", "g4": "n4"}
hosts, guests = mc.sim_twin(cal, ["n1", "n2", "n3", "n4", "n5"], start)
names = [h for h, _ in hosts]
check(names == ["n1", "n2", "n3", "n4", "n5"] and all(h in names for _, h, _ in guests) and
      dict(hosts)["n2"] == "sim:///n2?link=800000000bit" and
      dict(hosts)["n4"] == "sim:///n4?link=850000000bit",
      "sim twin: every host of the cluster, the untouched ones at the median rate: %s" % hosts)
check([(g, h) for g, h, _ in guests] == list(start.items()) and
      guests[1][2]["name"] == "g1" and guests[3][2]["name"] == "g4",
      "sim twin: guests where the policy runs started, g2 with a job guest's model")

print("1..%d" % checks)
print("PASS: test_migration_cost")
subprocess.run(["rm", "-rf", tmp])
