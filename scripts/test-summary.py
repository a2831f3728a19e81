#!/usr/bin/env python3
"""Total the tests of every test program over one or more meson test logs.

Criterion programs print "Synthesis: Tested: N | Passing: P | Failing: F |
Crashing: C"; those counts are used. Scripts speak TAP ("ok 3 - ...",
"not ok 4 - ..."); their lines are counted. A program with neither (or one
that died before printing anything) counts as one test, passed or failed by
meson's verdict. A Criterion program whose counts say all passed but
that meson failed (a sanitizer report at exit, a timeout) adds one failure.
A TAP line "not ok N - ... # TODO why" is TAP's known failure: listed on
its own line, counted neither way. Prints per-build lines, then the
closing "N passed, N failed"."""
import json
import re
import sys

TAP = re.compile(r"^(not )?ok \d+", re.M)
# "not ok 4 - ... # TODO why": TAP's known failure, counted apart
TODO = re.compile(r"^not ok \d+.*# TODO(.*)$", re.M)
SYNTH = re.compile(r"Synthesis: Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+) \| Crashing: (\d+)")


known = []  # (test: reason) of TAP TODO lines


def count(path):
    passed = failed = 0
    try:
        lines = open(path, encoding="utf-8", errors="replace").read().splitlines()
    except OSError as e:
        print(f"{path}: {e}", file=sys.stderr)
        return 0, 1
    for line in lines:
        if not line.strip():
            continue
        t = json.loads(line)
        ok = t.get("result") in ("OK", "EXPECTEDFAIL", "SKIP")
        out = (t.get("stdout") or "") + (t.get("stderr") or "")
        m = SYNTH.findall(out)
        tap = TAP.findall(out)
        if not m and tap:
            todo = TODO.findall(out)
            known.extend(f"{t.get('name')}:{why}" for why in todo)
            p = sum(1 for x in tap if not x)
            f = len(tap) - p - len(todo)
            passed += p
            failed += f
            if not ok and f == 0:
                failed += 1
        elif m:
            _, p, f, c = (int(x) for x in m[-1])
            passed += p
            failed += f + c
            if not ok and f + c == 0:
                failed += 1
        elif ok:
            passed += 1
        else:
            failed += 1
        if not ok:
            print(f"FAILED: {t.get('name')} ({t.get('result')}) in {path}", file=sys.stderr)
    return passed, failed


def main():
    total_p = total_f = 0
    for path in sys.argv[1:]:
        p, f = count(path)
        print(f"{path}: {p} passed, {f} failed")
        total_p += p
        total_f += f
    for k in known:
        print(f"known failure (TAP TODO, not counted): {k.strip()}")
    print(f"{total_p} passed, {total_f} failed")
    return 1 if total_f else 0


if __name__ == "__main__":
    sys.exit(main())
