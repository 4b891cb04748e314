"""End-to-end: the first run, as README's `make run` does it (scripts/run-default: serve --summary on
examples/demo.yml with the rule packs, over the shared folder of real CloudTrail log files).

The script itself is run (with a free port, a temporary data dir and the binary under test). Its
output is checked line by line: where it listens and what it reads, one line per alert, then the
summary, whose every figure is recomputed here independently: files and records by reading the
folder, duplicates by counting eventIDs, matches per rule with `trailwatch match` over the distinct
records, alert lines against matches minus storm-folded. Then it must still serve: an event sent
with the AWS CLI is alerted, and Ctrl-C (SIGINT) stops it cleanly."""
import glob
import gzip
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import twserve
import twtest

ROOT = twtest.ROOT
RULES = os.path.join(ROOT, "rules")


def folder():
    return os.path.join(twtest.shared_dir(), "data", "cloudtrail", "s3-layout")


def read_folder():
    """(files, records, distinct records by eventID) of the shared folder."""
    files = sorted(glob.glob(os.path.join(folder(), "**", "*.json.gz"), recursive=True))
    records, distinct = 0, {}
    for f in files:
        with gzip.open(f, "rt") as fh:
            for r in json.load(fh)["Records"]:
                records += 1
                distinct.setdefault(r["eventID"], r)
    return files, records, distinct


class TestFirstRun(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="tw-first-run-")
        cls.port = twserve.free_port()
        env = dict(os.environ, TW_DEMO_DATA=os.path.join(cls.tmp, "demo"), TW_BIN=twtest.tw_bin(),
                   TW_SHARED_DIR=twtest.shared_dir())
        env.update({k: v for k, v in twserve.SAN_ENV.items() if k not in env})
        cls.proc = subprocess.Popen([os.path.join(ROOT, "scripts", "run-default"), "--listen",
                                     "127.0.0.1:%d" % cls.port], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
        twserve._live.add(cls.proc)
        cls.out, cls.err = [], []
        cls.cond = threading.Condition()

        def pump(stream, into):
            for line in stream:
                with cls.cond:
                    into.append(line.rstrip("\n"))
                    cls.cond.notify_all()
        cls.threads = [threading.Thread(target=pump, args=(cls.proc.stdout, cls.out), daemon=True),
                       threading.Thread(target=pump, args=(cls.proc.stderr, cls.err), daemon=True)]
        for t in cls.threads:
            t.start()
        # meanwhile, what the summary must say
        cls.files, cls.records, cls.distinct = read_folder()
        path = os.path.join(cls.tmp, "distinct.jsonl")
        with open(path, "w") as f:
            for r in cls.distinct.values():
                f.write(json.dumps(r) + "\n")
        cls.expected = {}
        for pack in sorted(glob.glob(os.path.join(RULES, "*.yml"))):
            p = twtest.run(["match", "--rules", pack, "--count", path], timeout=600)
            assert p.returncode == 0, p.stderr
            cls.expected.update(json.loads(p.stdout))
        cls.wait_for(lambda: any(l.startswith("still serving") for l in cls.out), 600, "the summary")

    @classmethod
    def wait_for(cls, pred, timeout, what):
        deadline = time.time() + timeout
        with cls.cond:
            while not pred():
                if cls.proc.poll() is not None:
                    raise AssertionError("run-default exited %s before %s\nstdout: %s\nstderr: %s" % (
                        cls.proc.returncode, what, "\n".join(cls.out[-20:]), "\n".join(cls.err[-20:])))
                left = deadline - time.time()
                if left <= 0:
                    raise AssertionError("no %s within %ss\nstdout: %s\nstderr: %s" % (
                        what, timeout, "\n".join(cls.out[-20:]), "\n".join(cls.err[-20:])))
                cls.cond.wait(min(left, 1.0))

    @classmethod
    def tearDownClass(cls):
        if cls.proc.poll() is None:
            cls.proc.kill()
            cls.proc.wait(30)
        twserve.shutil.rmtree(cls.tmp, True)

    def lines(self):
        with self.cond:
            return list(self.out)

    def summary(self):
        out = self.lines()
        start = out.index(next(l for l in out if l.startswith("summary after ")))
        return out, start

    def test_1_says_what_it_serves_and_reads(self):
        out = self.lines()
        self.assertRegex(out[0], r"^trailwatch \d+\.\d+\.\d+: configuration examples/demo\.yml: (\d+) rules "
                                 r"\(\1 enabled\), 1 target$")
        nrules = int(out[0].split(": ")[2].split()[0])
        self.assertEqual(nrules, len(self.expected) + 1)          # every pack rule, and the demo's own
        self.assertEqual(out[1], "listening on http://127.0.0.1:%d: EventBridge API (POST /), POST /events, "
                                 "GET /healthz, GET /metrics" % self.port)
        self.assertEqual(out[2], "reading the CloudTrail log files in %s, then watching it for new ones"
                         % os.path.realpath(folder()))
        self.assertEqual(out[3], "alerts, one per line:")

    def test_2_alerts_then_the_summary(self):
        out, start = self.summary()
        alerts = out[4:start - 1]
        self.assertEqual(out[start - 1], "")
        line = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ([a-z0-9.-]+): \S+ by \S* from \S+ in [a-z0-9-]+$")
        for a in alerts:
            self.assertRegex(a, line)
        fig = {l.split()[0]: l for l in out[start + 1:start + 5]}
        self.assertEqual(fig["files"], "  files    %d CloudTrail log files read" % len(self.files))
        self.assertEqual(fig["records"], "  records  %d read, %d events in all" % (self.records, self.records))
        dups = self.records - len(self.distinct)
        self.assertGreater(dups, 0)
        self.assertEqual(fig["duplicates"], "  duplicates %d dropped: CloudTrail had delivered their eventID before"
                         % dups)
        m = re.match(r"^  alerts   (\d+) \(event, rule\) matches; storm control folded (\d+) repeated alerts into "
                     r"the first of their window$", fig["alerts"])
        self.assertTrue(m, fig["alerts"])
        matches, folded = int(m.group(1)), int(m.group(2))
        self.assertEqual(out[start + 5].split(), ["rule", "matches", "folded"])
        rows, i = {}, start + 6
        while out[i].startswith("  ") and not out[i].startswith("  ("):
            name, n, f = out[i].split()
            rows[name] = (int(n), int(f))
            i += 1
        # per rule, what `match` finds in the distinct records; rules that matched nothing are counted
        want = {r: n for r, n in self.expected.items() if n}
        self.assertEqual({r: n for r, (n, _) in rows.items()}, want)
        self.assertEqual(out[i], "  (%d rules matched nothing)" % (len(self.expected) + 1 - len(want)))
        self.assertEqual(matches, sum(want.values()))
        self.assertEqual(folded, sum(f for _, f in rows.values()))
        self.assertGreater(folded, 0)                            # the sample has storms (root usage)
        # one line per alert that was not folded into a storm window
        self.assertEqual(len(alerts), matches - folded)
        per_rule = {}
        for a in alerts:
            r = line.match(a).group(1)
            per_rule[r] = per_rule.get(r, 0) + 1
        self.assertEqual(per_rule, {r: n - f for r, (n, f) in rows.items() if n - f})
        self.assertTrue(out[i + 1].startswith("still serving on port %d (Ctrl-C stops)" % self.port), out[i + 1])

    def test_3_keeps_serving_then_stops_on_ctrl_c(self):
        n = len(self.lines())
        detail = {"operation": "Update", "name": "/app/db", "type": "String"}
        p = twserve.aws_cli(["events", "put-events", "--entries", json.dumps([{
            "Source": "aws.ssm", "DetailType": "Parameter Store Change", "Detail": json.dumps(detail)}])],
            endpoint="http://127.0.0.1:%d" % self.port)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.wait_for(lambda: len(self.out) > n, 60, "the alert of the event sent")
        self.assertEqual(json.loads(self.lines()[n]), detail)
        self.proc.send_signal(signal.SIGINT)
        self.assertEqual(self.proc.wait(60), 0, "\n".join(self.err[-20:]))


class TestMakeRun(unittest.TestCase):
    def test_make_run_builds_the_program_only(self):
        # what `make run` would do if the unit tests were out of date: not rebuild them
        p = subprocess.run(["make", "-n", "run", "-W", "tests/unit/tw_test.h"], cwd=ROOT, capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("tests/unit", p.stdout)
        self.assertIn("scripts/run-default", p.stdout)
        q = subprocess.run(["make", "-n", "all", "-W", "tests/unit/tw_test.h"], cwd=ROOT, capture_output=True,
                           text=True, timeout=120)
        self.assertIn("tests/unit", q.stdout)                   # (the check above can fail)


if __name__ == "__main__":
    unittest.main()
