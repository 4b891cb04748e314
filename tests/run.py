#!/usr/bin/env python3
"""Runs every trailwatch test and ends with the summary line "N passed, N failed".

Layers, in order:
  0. repository checks (CHECKS below: scripts that check the source tree, e.g. the module layering);
  1. C unit tests (tests/unit/test_*.c), built plain (build/), with ASan+UBSan (build-san/) and with
     clang (build-clang/, when `make clang` built it), and
     the plain build once more under valgrind (memcheck, leaks as errors) when valgrind is there;
  2. end-to-end suites (tests/e2e/test_*.py, Python unittest) against the sanitizer build of the
     binary (TW_BIN), so every end-to-end path also runs under ASan+UBSan and LeakSanitizer.

Usage: tests/run.py [-k SUBSTRING] [--plain]   (CI calls it through `make check`)
"""
import argparse
import glob
import io
import os
import re
import shutil
import subprocess
import sys
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAN_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:halt_on_error=1:exitcode=86:strict_string_checks=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=87",
    "LSAN_OPTIONS": "exitcode=88",
}


# Scripts that check the source tree; each counts as one test (exit status 0 = passed).
CHECKS = ["scripts/check-layering", "scripts/check-exports"]


def run_checks(only):
    passed = failed = 0
    for script in CHECKS:
        name = os.path.basename(script)
        if only and only not in name:
            continue
        p = subprocess.run([os.path.join(ROOT, script)], capture_output=True, text=True, timeout=300)
        ok = p.returncode == 0
        passed += ok
        failed += not ok
        print("  %-40s %3d passed          %s" % (script, int(ok), "ok" if ok else "FAILED"), flush=True)
        if not ok:
            print("\n".join("    | " + l for l in (p.stdout + p.stderr).splitlines()[-60:]))
    return passed, failed


VALGRIND = ["valgrind", "-q", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
            "--error-exitcode=89"]


def run_unit(binary, env, only, prefix=()):
    passed = failed = 0
    t0 = time.time()
    try:
        p = subprocess.run(list(prefix) + [binary], capture_output=True, text=True, env=env, timeout=900)
        out, rc = p.stdout + p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = (e.stdout or b"").decode(errors="replace") + "\n# TIMEOUT", -1
    names = []
    for line in out.splitlines():
        m = re.match(r"^(not ok|ok) \d+ - (\S+)( # SKIP)?", line)
        if not m or m.group(3):
            continue
        if only and only not in m.group(2):
            continue
        if m.group(1) == "ok":
            passed += 1
        else:
            failed += 1
            names.append(m.group(2))
    label = ("valgrind " if prefix else "") + os.path.relpath(binary, ROOT)
    if rc != 0 and not names:
        failed += 1  # crashed, sanitizer report, or leak after the tests ran
        names.append("(exit status %d)" % rc)
    status = "ok" if not names else "FAILED " + ", ".join(names)
    print("  %-40s %3d passed %6.1fs  %s" % (label, passed, time.time() - t0, status), flush=True)
    if names:
        print("\n".join("    | " + l for l in out.splitlines()[-60:]))
    return passed, failed


class CountingResult(unittest.TextTestResult):
    pass


def run_e2e(only):
    loader = unittest.TestLoader()
    if only:
        loader.testNamePatterns = ["*%s*" % only]
    passed = failed = 0
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "e2e", "test_*.py"))):
        name = os.path.splitext(os.path.basename(path))[0]
        suite = loader.discover(os.path.dirname(path), pattern=name + ".py", top_level_dir=os.path.dirname(path))
        if suite.countTestCases() == 0:
            continue
        stream = io.StringIO()
        t0 = time.time()
        result = unittest.TextTestRunner(stream=stream, verbosity=0, resultclass=CountingResult).run(suite)
        bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
        good = result.testsRun - bad - len(result.skipped)
        passed += good
        failed += bad
        status = "ok" if not bad else "FAILED"
        print("  %-40s %3d passed %6.1fs  %s" % ("e2e/" + name, good, time.time() - t0, status), flush=True)
        if bad:
            print("\n".join("    | " + l for l in stream.getvalue().splitlines()[-120:]))
    return passed, failed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-k", dest="only", help="only tests whose name contains this")
    ap.add_argument("--plain", action="store_true", help="end-to-end against build/ instead of build-san/")
    ap.add_argument("--no-unit", action="store_true")
    ap.add_argument("--no-e2e", action="store_true")
    ap.add_argument("--no-valgrind", action="store_true")
    args = ap.parse_args()

    total_p = total_f = 0
    print("repository checks:", flush=True)
    total_p, total_f = run_checks(args.only)
    sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
    import twtest
    os.environ.setdefault("TW_SHARED_DIR", twtest.shared_dir())
    os.environ.setdefault("TW_SOURCE_DIR", ROOT)
    env = dict(os.environ, **SAN_ENV)
    if not args.no_unit:
        print("unit tests:", flush=True)
        for build in ("build", "build-san", "build-clang"):
            for binary in sorted(glob.glob(os.path.join(ROOT, build, "tests", "test_*"))):
                if binary.endswith(".d") or not os.access(binary, os.X_OK):
                    continue
                p, f = run_unit(binary, env, args.only)
                total_p += p
                total_f += f
        if not args.no_valgrind and shutil.which("valgrind"):
            for binary in sorted(glob.glob(os.path.join(ROOT, "build", "tests", "test_*"))):
                if binary.endswith(".d") or not os.access(binary, os.X_OK):
                    continue
                p, f = run_unit(binary, dict(os.environ), args.only, VALGRIND)
                total_p += p
                total_f += f
    if not args.no_e2e:
        print("end-to-end tests:", flush=True)
        os.environ.update(SAN_ENV)
        os.environ.setdefault("TW_BIN", os.path.join(ROOT, "build" if args.plain else "build-san", "trailwatch"))
        p, f = run_e2e(args.only)
        total_p += p
        total_f += f
    print("%d passed, %d failed" % (total_p, total_f))
    return 1 if total_f else 0


if __name__ == "__main__":
    sys.exit(main())
