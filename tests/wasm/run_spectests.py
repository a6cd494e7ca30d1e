#!/usr/bin/python3
"""Runs the WebAssembly spec test suite through `strand wasm spectest`.

Every .wast in the suite directory (WASM_TESTSUITE; else
../shared/wasm-testsuite next to the repository, when it is there; else
tests/wasm/testsuite, the copy kept in the repository) is converted by wast2json (Debian's wabt) into a temporary
directory and run. Prints "file: N passed, M failed" per file and the
totals, the SIMD files (simd_*.wast) in a group and a total of their own.
Exits 1 if any assertion fails, unless it is listed in KNOWN_FAILURES
("file:line").

Environment: STRAND_BIN (default build/strand), WASM_TESTSUITE, WAST2JSON.
"""
import glob
import os
import re
import subprocess
import sys
import tempfile

# file:line of assertions known to fail; each must still fail (so the list
# stays honest) and nothing else may.
KNOWN_FAILURES = set()

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def suite_dir():
    env = os.environ.get("WASM_TESTSUITE")
    if env:
        return env
    shared = os.path.join(ROOT, "..", "shared", "wasm-testsuite")
    if os.path.isdir(shared):
        return shared
    return os.path.join(ROOT, "tests", "wasm", "testsuite")


def run_file(strand, wast2json, wast, tmp):
    """Returns (passed, failed, skipped, failure lines, error or None)."""
    base = os.path.splitext(os.path.basename(wast))[0]
    out = os.path.join(tmp, base)
    os.makedirs(out, exist_ok=True)
    js = os.path.join(out, base + ".json")
    conv = subprocess.run([wast2json, wast, "-o", js], capture_output=True, text=True)
    if conv.returncode != 0:
        conv = subprocess.run([wast2json, "--enable-all", wast, "-o", js], capture_output=True, text=True)
    if conv.returncode != 0:
        return 0, 0, 0, [], "wast2json failed: " + conv.stderr.strip().splitlines()[-1:][0]
    try:
        p = subprocess.run([strand, "wasm", "spectest", js], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        return 0, 0, 0, [], "timeout"
    lines = p.stdout.strip().splitlines()
    m = re.match(r"(\d+) passed, (\d+) failed$", lines[-1]) if lines else None
    if not m:
        return 0, 0, 0, [], "crashed (exit %d): %s" % (p.returncode, (p.stderr or "").strip()[-300:])
    if p.returncode != (1 if int(m.group(2)) else 0):
        return 0, 0, 0, [], "exit %d: %s" % (p.returncode, (p.stderr or "").strip()[-300:])
    skipped = 0
    for line in lines:
        s = re.match(r"(\d+) skipped$", line)
        if s:
            skipped = int(s.group(1))
    fails = []
    for line in lines:
        f = re.match(r".*/([^/]+)\.json:(\d+): (.*)", line)
        if f:
            fails.append(("%s.wast:%s" % (f.group(1), f.group(2)), f.group(3)))
    return int(m.group(1)), int(m.group(2)), skipped, fails, None


def run_group(strand, wast2json, files, tmp, bad, seen_known):
    """Runs files, printing a line per file and per failure; returns the
    (passed, failed, skipped) totals. Unexpected failures go to bad."""
    tot = [0, 0, 0]
    for f in files:
        p, fl, sk, fails, err = run_file(strand, wast2json, f, tmp)
        name = os.path.basename(f)
        if err:
            print("%s: ERROR %s" % (name, err))
            bad.append((name, err))
            continue
        print("%s: %d passed, %d failed%s" % (name, p, fl, ", %d skipped" % sk if sk else ""))
        tot[0] += p
        tot[1] += fl
        tot[2] += sk
        for where, what in fails:
            if where in KNOWN_FAILURES:
                seen_known.add(where)
                print("  known failure %s: %s" % (where, what))
            else:
                print("  FAIL %s: %s" % (where, what))
                bad.append((where, what))
    return tot


def main():
    strand = os.environ.get("STRAND_BIN", os.path.join(ROOT, "build", "strand"))
    wast2json = os.environ.get("WAST2JSON", "wast2json")
    files = sorted(glob.glob(os.path.join(suite_dir(), "*.wast")))
    if not files:
        print("no .wast files in %s" % suite_dir())
        return 1
    core = [f for f in files if not os.path.basename(f).startswith("simd_")]
    simd = [f for f in files if os.path.basename(f).startswith("simd_")]
    bad = []
    seen_known = set()
    with tempfile.TemporaryDirectory(prefix="strand-wasm-spec-") as tmp:
        for group, what in ((core, "core"), (simd, "simd")):
            if not group:
                continue
            tot = run_group(strand, wast2json, group, tmp, bad, seen_known)
            print("%s total: %d passed, %d failed, %d skipped (text-form modules), %d files"
                  % (what, tot[0], tot[1], tot[2], len(group)))
    stale = KNOWN_FAILURES - seen_known
    for s in sorted(stale):
        print("known failure no longer fails (remove it from KNOWN_FAILURES): %s" % s)
    if bad or stale:
        print("FAILED: %d unexpected failures" % (len(bad) + len(stale)))
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
