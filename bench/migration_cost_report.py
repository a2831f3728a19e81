"""migration_cost_report: what bench/migration-cost prints and judges, from
its recorded results alone.

Split from the driver so that the report can be made again from a
results.json (`bench/migration-cost --report-only FILE`) and tested on
recorded results without QEMU or root: nothing here starts a process or
reads a clock. The driver collects the runs into a results dict
(RESULTS_VERSION); analyse() adds what is derived from them (each policy
run's pair against its neighbouring baselines, the table's rows, the
goals) and print_report() prints it.

Two measures of what migrations cost the job, side by side:

  per pair   the policy run's wall time minus the mean of the baselines run
             just before and just after it (B P B P B ...), so that drift
             of the machine between runs cancels as far as it is linear;
             the mean over repeats with a 95% Student t interval; split
             into start-up, step loop and read-back, so that a difference
             can be placed;
  paired     within one run: the steps a migration overlapped against the
             same run's other steps (the driver's paired_loss); blind to a
             cost spread over the whole run.
"""
import math
import statistics

RESULTS_VERSION = 2   # 1: no "version", baselines as wall times only, no pairs

# The seed's slowdown goals: (name, the interval they name in s, limit in %,
# the --quick interval that stands for it: job/1 for the longest, job/4 for
# the shortest, as the seed's 4 and 1 minutes relate).
SEED_GOALS = (("4-minute", 240, 1.0, "job/1"), ("1-minute", 60, 3.0, "job/4"))

SPLIT = (("startup_s", "start-up"), ("loop_s", "step loop"), ("readback_s", "read-back"))

# Student t, two-sided 95%, by degrees of freedom
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def fmt(v, spec="%.0f", none="-"):
    return none if v is None else spec % v


def mean(xs, dflt=None):
    xs = [x for x in xs if x is not None]
    return statistics.mean(xs) if xs else dflt


def t975(df):
    """The 97.5% quantile of Student's t with df degrees of freedom."""
    return T975[df - 1] if df <= len(T975) else 1.96 + 2.4 / df


def mean_ci(xs):
    """(mean, half-width of its 95% Student t interval); the half-width is
    None below two values, the mean None without any."""
    xs = [x for x in xs if x is not None]
    if not xs:
        return None, None
    if len(xs) < 2:
        return xs[0], None
    return statistics.mean(xs), t975(len(xs) - 1) * statistics.stdev(xs) / math.sqrt(len(xs))


def fmt_ci(m, half, spec="%+.2f"):
    """'+8.30 [+2.00, +14.60]', or the mean alone without an interval."""
    if m is None:
        return "-"
    if half is None:
        return spec % m
    return ("%s [%s, %s]" % (spec, spec, spec)) % (m, m - half, m + half)


def ci_text(m, half, spec="%+.2f"):
    """'+8.30% (95% CI +2.00 to +14.60%)', for sentences."""
    if m is None:
        return "-"
    if half is None:
        return (spec + "%% (one run: no interval)") % m
    return (spec + "%% (95%% CI " + spec + " to " + spec + "%%)") % (m, m - half, m + half)


def job_split(steps, start_ns, end_ns):
    """Where one run's wall time went, in s: start-up (mpirun's start to
    btio's first step line: ssh, orted, MPI_Init, set-up and step 1), the
    step loop (first to last step line) and read-back (the last step line
    to mpirun's end: the final sync, the read-back check, MPI_Finalize).
    None without step lines (the sfs-ior stand-in) or times."""
    if not steps or start_ns is None or end_ns is None:
        return None
    first, last = steps[0][1], steps[-1][1]
    return {"startup_s": (first - start_ns) / 1e9, "loop_s": (last - first) / 1e9,
            "readback_s": (end_ns - last) / 1e9}


def verified(r):
    return r.get("verification") == "SUCCESSFUL"


def base_s(res):
    """The baselines' median wall time (verified runs only)."""
    ok = [r["wall_s"] for r in res["baselines"] if verified(r)]
    return statistics.median(ok) if ok else None


def spread_pct(res):
    """Half the baselines' range against their median, in %: the noise."""
    ok = [r["wall_s"] for r in res["baselines"] if verified(r)]
    base = base_s(res)
    return 50 * (max(ok) - min(ok)) / base if base and len(ok) > 1 else None


# ---------------------------------------------------------------- reading

def upgrade(res):
    """A results dict of any version as version 2 (in place; returned).
    Version 1 kept the baselines' wall times only: they count as verified
    (version 1 recorded no more), have no place in the sequence and so give
    no pairs; its policy runs still split from their own step times."""
    if res.get("version", 1) > RESULTS_VERSION:
        raise ValueError("results version %s: this script reads up to %d" % (
            res.get("version"), RESULTS_VERSION))
    if res.get("version", 1) == 1:
        res["baselines"] = [{"label": "baseline %d" % (i + 1), "kind": "baseline",
                             "wall_s": w, "verification": "SUCCESSFUL"}
                            for i, w in enumerate(res.get("baseline_s") or [])]
        for r in res.get("runs") or []:
            r.setdefault("kind", "policy")
            if "split" not in r:
                r["split"] = job_split(r.get("steps"), r.get("start_ns"), r.get("end_ns"))
        res["upgraded_from"] = 1
        res["version"] = RESULTS_VERSION
    res.setdefault("runs", [])
    res.setdefault("lost", [])
    res.setdefault("figure12", [])
    res.setdefault("whatif", {"skipped": "not recorded"})
    res.setdefault("phases_s", {})
    if not res.get("intervals"):
        seen = {(r["interval_s"], r["label"]) for r in res["runs"]}
        res["intervals"] = sorted(seen, reverse=True)
    return res


# ---------------------------------------------------------------- analysis

def neighbours(run, res):
    """The verified baselines just before and just after a policy run in
    the order they ran, each None when there is none with no other policy
    run in between."""
    seq = run.get("seq")
    if seq is None:
        return None, None
    others = [r["seq"] for r in res["runs"] if r is not run and r.get("seq") is not None]
    bs = [b for b in res["baselines"] if verified(b) and b.get("seq") is not None]
    before = [b for b in bs if b["seq"] < seq and not any(b["seq"] < o < seq for o in others)]
    after = [b for b in bs if b["seq"] > seq and not any(seq < o < b["seq"] for o in others)]
    return (max(before, key=lambda b: b["seq"]) if before else None,
            min(after, key=lambda b: b["seq"]) if after else None)


def pair_of(run, res):
    """A policy run against its neighbouring baselines: the policy run
    minus their mean (one alone when the other is missing), whole job and
    per part of the job; None without a neighbour."""
    nb = [b for b in neighbours(run, res) if b]
    if not nb:
        return None
    ref_s = statistics.mean(b["wall_s"] for b in nb)
    pair = {"baselines": [b["label"] for b in nb], "base_s": ref_s,
            "diff_s": run["wall_s"] - ref_s, "diff_pct": 100 * (run["wall_s"] / ref_s - 1),
            "split_diff_s": None, "other_loop_s": None}
    if run.get("split") and all(b.get("split") for b in nb):
        pair["split_diff_s"] = {k: run["split"][k] - statistics.mean(b["split"][k] for b in nb)
                                for k, _ in SPLIT}
        if run.get("lost_s") is not None:
            # the step loop's difference beyond the steps the migrations
            # overlapped: what the paired measure cannot see
            pair["other_loop_s"] = pair["split_diff_s"]["loop_s"] - run["lost_s"]
    return pair


def table_rows(res):
    """One row per (interval, count, quiesce, lull): repeats merged, means
    with their 95% interval over the repeats."""
    base = base_s(res)
    groups = {}
    for r in res["runs"]:
        groups.setdefault((r["interval_s"], r["count"], r["quiesce"], r["lull"]), []).append(r)
    rows = []
    for (every_s, k, q, lull), rs in sorted(groups.items(), key=lambda kv: (
            -kv[0][0], kv[0][1], kv[0][2] != "required", kv[0][3])):
        ok = [r for r in rs if verified(r)]
        wall = statistics.median(r["wall_s"] for r in rs)
        dts = [x for r in rs for x in r["downtime_ms"] if x is not None]
        tot = [x for r in rs for x in r["total_ms"] if x is not None]
        qs = [x for r in rs for x in r["quiesce_ms"] if x is not None]
        pairs = [r["pair"] for r in rs if r.get("pair")]
        paired, paired_ci = mean_ci([r.get("paired_pct") for r in rs])
        diff, diff_ci = mean_ci([p["diff_pct"] for p in pairs])
        splits = [p["split_diff_s"] for p in pairs if p["split_diff_s"]]
        rows.append({"label": rs[0]["label"], "interval_s": every_s, "count": k, "quiesce": q,
                     "lull": lull, "runs": len(rs), "job_s": wall,
                     "slowdown_pct": 100 * (wall / base - 1) if base else None,
                     "pairs": len(pairs), "pair_diff_pct": diff, "pair_ci_pct": diff_ci,
                     "pair_diff_s": mean([p["diff_s"] for p in pairs]),
                     "pair_split_s": {key: statistics.mean(s[key] for s in splits)
                                      for key, _ in SPLIT} if splits else None,
                     "pair_other_loop_s": mean([p["other_loop_s"] for p in pairs]),
                     "paired_pct": paired, "paired_ci_pct": paired_ci,
                     "lost_s": mean([r.get("lost_s") for r in rs]),
                     "lost_after_s": mean([r.get("lost_after_s") for r in rs]),
                     "migrations": sum(r["migrations"] for r in rs),
                     "failed": sum(r["failed"] for r in rs),
                     "mean_total_ms": mean(tot), "mean_downtime_ms": mean(dts),
                     "max_downtime_ms": max(dts) if dts else None,
                     "mean_quiesce_ms": mean(qs),
                     "verified": "%d/%d" % (len(ok), len(rs))})
        rows[-1]["measures_agree"] = measures_agree(rows[-1])
    return rows


def measures_agree(row):
    """Whether the per-pair interval includes the paired figure: True,
    False, or None when either is missing (one repeat has no interval)."""
    if row["pair_ci_pct"] is None or row["paired_pct"] is None:
        return None
    lo, hi = row["pair_diff_pct"] - row["pair_ci_pct"], row["pair_diff_pct"] + row["pair_ci_pct"]
    return lo <= row["paired_pct"] <= hi


def goal_row(rows, seed_s, scaled_label):
    """The table row a seed goal is judged on: 1 guest per period, quiesce
    required, no lull, at the interval the goal names (a duration within a
    second of it) or at its --quick stand-in; None when that was not run."""
    plain = [x for x in rows if x["count"] == 1 and x["quiesce"] == "required" and
             not x["lull"]]
    exact = [x for x in plain if not x["label"].startswith("job/") and
             abs(x["interval_s"] - seed_s) < 1]
    scaled = [x for x in plain if x["label"] == scaled_label]
    return (exact or scaled or [None])[0]


def slowdown_goals(res, rows):
    out = []
    run_labels = [l for _, l in sorted({(x["interval_s"], x["label"]) for x in rows},
                                       reverse=True)]
    for seed, seed_s, limit, scaled_label in SEED_GOALS:
        r = goal_row(rows, seed_s, scaled_label)
        if r is None:
            # judged only at the interval it names: another interval's
            # figure is no evidence either way
            out.append({"text": "slowdown at the %s interval, 1 guest per period (goal <= "
                                "%.0f%%): not measured (intervals run: %s)" % (
                                    seed, limit, ", ".join(run_labels) or "none"),
                        "verdict": "not measured"})
            continue
        s = r["paired_pct"]
        if r["pair_diff_pct"] is not None:
            whole = "per pair against its neighbouring baselines %s over %d pair%s" % (
                ci_text(r["pair_diff_pct"], r["pair_ci_pct"], "%+.1f"), r["pairs"],
                "" if r["pairs"] == 1 else "s")
            if r["measures_agree"] is False:
                whole += ", which excludes the paired figure: the job lost time outside " \
                         "the steps the migrations overlapped (where: above)"
        else:
            noise = spread_pct(res)
            whole = "whole job against the baseline %s%%%s" % (
                fmt(r["slowdown_pct"], "%+.1f"),
                " (baseline noise +-%.1f%%)" % noise if noise is not None else "")
        # in --quick the interval is scaled down; what one migration cost,
        # spread over the seed's own interval, says what the real one costs
        per_mig = r["lost_s"] / (r["migrations"] / r["runs"]) \
            if r.get("lost_s") is not None and r["migrations"] else None
        after = r["lost_after_s"] / (r["migrations"] / r["runs"]) \
            if per_mig is not None and r.get("lost_after_s") is not None else None
        projected = ("; %.2f s lost per migration (%s s of it after the migration ended): "
                     "%.2f%% at a real %d s interval" % (
                         per_mig, fmt(after, "%.2f"), 100 * per_mig / seed_s, seed_s)
                     if per_mig is not None and abs(r["interval_s"] - seed_s) > 1 else "")
        out.append({"text": "slowdown at the %s interval (%s, %.0f s), 1 guest per period: "
                            "%s paired (goal <= %.0f%%); %s%s" % (
                                seed, r["label"], r["interval_s"],
                                ci_text(s, r["paired_ci_pct"]), limit, whole, projected),
                    "verdict": "n/a" if s is None else "met" if s <= limit else "missed"})
    return out


def goals_of(res, rows):
    out = slowdown_goals(res, rows)
    runs = res["baselines"] + res["runs"]
    bad = [r for r in runs if not verified(r)]
    lost = res["lost"]
    out.append({"text": "every run's verification SUCCESSFUL: %d of %d%s%s" % (
        len(runs) - len(bad), len(runs),
        "; failed: " + "; ".join("%s: %s" % (r["label"], r["verification"]) for r in bad[:3])
        if bad else "",
        "; %d run(s) lost to the QEMU TCG bug, not counted" % len(lost) if lost else ""),
        "verdict": "met" if runs and not bad else "missed"})
    whatif = res["whatif"]
    if "skipped" in whatif:
        out.append({"text": "sim prediction of migration time within 20%: " + whatif["skipped"],
                    "verdict": "n/a"})
        return out
    # pooled: a policy run of 1-5 migrations is too few to judge alone
    measured = [x for r in res["runs"] for x in r["total_ms"] if x is not None]
    predicted = whatif.get("predicted_total_ms") or []
    err = None
    if measured and predicted:
        err = 100 * (statistics.median(predicted) / statistics.median(measured) - 1)
    errs = [abs(w["total_error_pct"]) for w in whatif["rows"]
            if w["total_error_pct"] is not None]
    out.append({"text": "sim prediction of migration time within 20%%: median %s ms "
                        "predicted against %s ms measured (%s%%, %d and %d migrations); "
                        "per policy run worst %s%%" % (
                            fmt(statistics.median(predicted) if predicted else None),
                            fmt(statistics.median(measured) if measured else None),
                            fmt(err, "%+.0f"), len(predicted), len(measured),
                            fmt(max(errs) if errs else None, "%.0f")),
                "verdict": "n/a" if err is None else "met" if abs(err) <= 20 else "missed"})
    return out


def analyse(res):
    """Derive the pairs, rows and goals of a (version 2) results dict, in
    place; returned."""
    for r in res["runs"]:
        r["pair"] = pair_of(r, res)
    res["baseline_s"] = [r["wall_s"] for r in res["baselines"]]
    res["baseline_median_s"] = base_s(res)
    res["baseline_spread_pct"] = spread_pct(res)
    res["rows"] = table_rows(res)
    res["goals"] = goals_of(res, res["rows"]) if res["intervals"] else []
    return res


# ---------------------------------------------------------------- printing

def print_report(res, f):
    p = lambda s="": print(s, file=f)
    base = res["baseline_median_s"]
    p("job: %s" % res["job"])
    p("baseline: %s s (median %s s of %d runs, spread %s%%; host wall time around mpirun)" % (
        ", ".join("%.1f" % r["wall_s"] for r in res["baselines"]), fmt(base, "%.1f"),
        len(res["baselines"]), fmt(res["baseline_spread_pct"], "+-%.1f")))
    if res.get("upgraded_from") == 1:
        p("(results version 1: baselines not interleaved, so no per-pair differences)")
    p()
    print_sequence(res, p)
    p()
    print_rows(res["rows"], p)
    print_where(res["rows"], p)
    if res["lost"]:
        p()
        for l in res["lost"]:
            p("lost: %s: %s" % (l["run"], l["reason"]))
    print_figure12(res["figure12"], p)
    p()
    print_whatif(res["whatif"], p)
    p()
    p("goals:")
    for g in res["goals"]:
        p("  [%s] %s" % (g["verdict"], g["text"]))
    p()
    p("time per phase: " + ", ".join("%s %.0f s" % ph for ph in res["phases_s"].items()))


def print_sequence(res, p):
    """Every run in the order it ran, each policy run against its
    neighbouring baselines."""
    runs = sorted((r for r in res["baselines"] + res["runs"] if r.get("seq") is not None),
                  key=lambda r: r["seq"])
    if not runs:
        return
    p("RUNS in order. START: mpirun's start to btio's first step line; LOOP: first to last")
    p("step; READ: the last step to mpirun's end. A policy run's DIFF is its time minus the")
    p("mean of the baselines just before and after it, per part too (dSTART dLOOP dREAD);")
    p("LOST s and PAIRED: the steps its migrations overlapped against its other steps.")
    p("%-24s %7s %7s %7s %7s %8s %7s %7s %7s %7s %7s %8s" % (
        "RUN", "JOB s", "START s", "LOOP s", "READ s", "DIFF s", "DIFF", "dSTART", "dLOOP",
        "dREAD", "LOST s", "PAIRED"))
    for r in runs:
        sp = r.get("split") or {}
        cells = ["%-24s %7.1f %7s %7s %7s" % (
            run_name(r), r["wall_s"], fmt(sp.get("startup_s"), "%.1f"),
            fmt(sp.get("loop_s"), "%.1f"), fmt(sp.get("readback_s"), "%.1f"))]
        if r.get("kind") == "policy":
            pair = r.get("pair") or {}
            d = pair.get("split_diff_s") or {}
            cells.append("%8s %6s%% %7s %7s %7s %7s %7s%%" % (
                fmt(pair.get("diff_s"), "%+.1f"), fmt(pair.get("diff_pct"), "%+.1f"),
                fmt(d.get("startup_s"), "%+.1f"), fmt(d.get("loop_s"), "%+.1f"),
                fmt(d.get("readback_s"), "%+.1f"), fmt(r.get("lost_s"), "%.2f"),
                fmt(r.get("paired_pct"), "%+.2f")))
        if not verified(r):
            cells.append(" " + r["verification"])
        p(" ".join(cells).rstrip())


def run_name(r):
    if r.get("kind") != "policy":
        return r["label"]
    return "%s (%s)" % (r.get("policy") or "?", r["label"])


def print_rows(rows, p):
    p("PER PAIR: each policy run minus the mean of its neighbouring baselines, in %; PAIRED:")
    p("the steps migrations overlapped against the same run's other steps (btio --progress,")
    p("host clock), LOST s over the job's other time; this one the goals are judged on. Both")
    p("are means over the repeats with a 95% Student t interval (none from one run).")
    p("%-8s %7s %3s %-8s %-4s %4s %7s %-24s %-24s %7s %5s %8s %8s %8s %8s %8s" % (
        "INTERVAL", "EVERY s", "K", "QUIESCE", "LULL", "RUNS", "JOB s", "PER PAIR %",
        "PAIRED %", "LOST s", "MIGS", "TOTAL ms", "DOWN ms", "DOWN MAX", "QUIESCE", "VERIFIED"))
    for r in rows:
        p("%-8s %7.1f %3d %-8s %-4s %4d %7.1f %-24s %-24s %7s %5d %8s %8s %8s %8s %8s" % (
            r["label"], r["interval_s"], r["count"], r["quiesce"], "on" if r["lull"] else "off",
            r["runs"], r["job_s"], fmt_ci(r["pair_diff_pct"], r["pair_ci_pct"], "%+.1f"),
            fmt_ci(r["paired_pct"], r["paired_ci_pct"]), fmt(r.get("lost_s"), "%.2f"),
            r["migrations"], fmt(r["mean_total_ms"]), fmt(r["mean_downtime_ms"]),
            fmt(r["max_downtime_ms"]), fmt(r["mean_quiesce_ms"]), r["verified"]))


def print_where(rows, p):
    """Per row: does the per-pair interval include the paired figure, and
    where the per-pair difference happens."""
    lines = []
    for r in rows:
        if r["pair_diff_s"] is None:
            continue
        head = "%s k%d%s%s: per pair %s s, %s" % (
            r["label"], r["count"], "" if r["quiesce"] == "required" else " quiesce " +
            r["quiesce"], " lull" if r["lull"] else "", fmt(r["pair_diff_s"], "%+.1f"),
            ci_text(r["pair_diff_pct"], r["pair_ci_pct"], "%+.1f"))
        if r["measures_agree"] is None:
            # one pair has no interval (ci_text says so), or no paired figure
            verdict = "" if r["pairs"] < 2 else ": no paired figure"
        elif r["measures_agree"]:
            verdict = ": the interval includes the paired %s%%" % fmt(r["paired_pct"], "%+.2f")
        else:
            verdict = ": the interval excludes the paired %s%%" % fmt(r["paired_pct"], "%+.2f")
        sp = r["pair_split_s"]
        where = ""
        if sp:
            where = "; start-up %+.1f s, step loop %+.1f s (%s s in the steps migrations " \
                    "overlapped, %s s in its other steps), read-back %+.1f s" % (
                        sp["startup_s"], sp["loop_s"], fmt(r.get("lost_s"), "%.1f"),
                        fmt(r["pair_other_loop_s"], "%+.1f"), sp["readback_s"])
        lines.append("  %s%s%s" % (head, verdict, where))
    if lines:
        p()
        p("where the per-pair difference goes (means over the pairs):")
        for l in lines:
            p(l)


def print_figure12(fig12, p):
    if not fig12:
        return
    p()
    p("figure 12: migration time against guest memory (medians)")
    for mib in sorted({r["memory_mib"] for r in fig12}):
        cells = []
        for load in ("idle", "job"):
            t = [r["total_ms"] for r in fig12 if r["memory_mib"] == mib and
                 r["load"] == load and r["state"] == "completed"]
            cells.append("%s %s ms" % (load, fmt(statistics.median(t)) if t else "-"))
        p("  %4d MiB: %s" % (mib, ", ".join(cells)))


def print_whatif(whatif, p):
    if "skipped" in whatif:
        p("what-if: " + whatif["skipped"])
        return
    p("what-if: sim migd from migctl calibrate (link %s bit/s, %d migrations), the same "
      "policies replayed; slowdown = alpha x migrations x total / baseline, alpha %s" % (
          fmt(whatif["calibration"].get("link_bps"), "%.3g"),
          whatif["calibration"].get("migrations") or 0, fmt(whatif["alpha"], "%.2f")))
    p("%-16s %7s %3s %5s %5s %9s %9s %6s %9s %9s" % (
        "POLICY RUN", "EVERY s", "K", "MIGS", "PRED", "TOTAL ms", "PRED ms", "ERR",
        "SLOWDOWN", "PRED"))
    for w in whatif["rows"]:
        p("%-16s %7.1f %3d %5d %5d %9s %9s %5s%% %8s%% %8s%%" % (
            w["policy"], w["interval_s"], w["count"], w["measured_migrations"],
            w["predicted_migrations"], fmt(w["measured_total_ms"]),
            fmt(w["predicted_total_ms"]), fmt(w["total_error_pct"], "%+.0f"),
            fmt(w["measured_slowdown_pct"], "%+.1f"),
            fmt(w["predicted_slowdown_pct"], "%+.1f")))
