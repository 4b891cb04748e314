"""End-to-end: `trailwatch query --sigma` (#14 item 4): the archived events that match SigmaHQ's CloudTrail
rules, with the rules each matched, in every format; the other filters narrow them; --limit and the cursor
page through them; the counts equal `trailwatch match --sigma` over the same events and `replay --sigma`."""
import collections
import glob
import json
import os
import re
import shutil
import unittest

import twtest
from twtest import jsonl, run

DATA = os.path.join(twtest.shared_dir(), "data", "cloudtrail")
RULES = os.path.join(twtest.shared_dir(), "data", "rules", "sigma-cloudtrail")
TOP = sorted(glob.glob(os.path.join(RULES, "*.yml")))   # the 57 that load as they are

CORRELATION = """title: Logging stopped
name: stop_logging
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: [StopLogging, DeleteTrail]
  condition: selection
---
title: Logging stopped twice
name: stopped_twice
correlation:
  type: event_count
  rules: [stop_logging]
  timespan: 1h
  condition: {gte: 2}
"""


class TestQuerySigma(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = twtest.tmpdir()
        cls.db = os.path.join(cls.dir, "archive.db")
        run(["ingest", "--archive", cls.db, os.path.join(DATA, "stratus-red-team"), os.path.join(DATA, "invictus-ir")],
            check=0, timeout=600)
        cls.sigma = []
        for path in TOP:
            cls.sigma += ["--sigma", path]

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def q(self, *args, check=0):
        return run(["query", "--archive", self.db] + list(args), check=check, timeout=600)

    def all_rows(self, *args):
        return jsonl(self.q("--format", "json", "--limit", "0", *(self.sigma + list(args))).stdout)

    def test_counts_equal_match_and_replay(self):
        self.assertEqual(len(TOP), 57)
        rows = self.all_rows()
        got = {r["id"]: sorted(r["rules"]) for r in rows}
        # the same events through `match --sigma`, exported from the archive as they are stored
        events = os.path.join(self.dir, "events.jsonl")
        with open(events, "w") as f:
            for r in jsonl(self.q("--format", "json", "--limit", "0").stdout):
                f.write(json.dumps(r["event"]) + "\n")
        want = {m["event"]: sorted(m["rules"]) for m in jsonl(run(["match"] + self.sigma + [events], check=0).stdout)}
        self.assertEqual(got, want)
        self.assertGreater(len(got), 100)
        per_rule = collections.Counter(n for r in rows for n in r["rules"])
        rep = json.loads(run(["replay", "--archive", self.db, "--from", "2000-01-01", "--json"] + self.sigma,
                             check=0).stdout)
        self.assertEqual(dict(per_rule), rep["rules"])
        self.assertEqual(len(rows), rep["matched_events"])
        self.assertGreaterEqual(len(per_rule), 10)
        # newest first, every row's event byte-equal (as JSON) to what the plain query gives
        times = [r["time_ms"] for r in rows]
        self.assertEqual(times, sorted(times, reverse=True))

    def test_other_filters_narrow(self):
        ids = {r["id"] for r in self.all_rows()}
        plain = lambda *a: {r["id"] for r in jsonl(self.q("--format", "json", "--limit", "0", *a, check=None).stdout)}
        for flt in (["--event-name", "GetPasswordData"],
                    ["--who", "arn:aws:iam::123837392027:user/bert-jan"],
                    ["--pattern", '{"detail":{"eventSource":["cloudtrail.amazonaws.com"]}}'],
                    ["--from", "2023-07-10T12:00:00Z", "--to", "2023-07-10T12:10:00Z"]):
            want = plain(*flt) & ids
            got = {r["id"] for r in self.all_rows(*flt)}
            self.assertEqual(got, want, flt)
            self.assertGreater(len(want), 0, flt)
            self.assertLess(len(want), len(ids), flt)

    def test_limit_and_cursor_page_through(self):
        full = [r["id"] for r in self.all_rows()]
        got, cursor, pages = [], None, 0
        while True:
            p = self.q("--format", "json", "--limit", "40", *(self.sigma + (["--cursor", cursor] if cursor else [])),
                       check=None)
            self.assertIn(p.returncode, (0, 1), p.stderr)
            page = [r["id"] for r in jsonl(p.stdout)]
            self.assertLessEqual(len(page), 40)
            got += page
            pages += 1
            m = re.search(r"more: --cursor (\S+)", p.stderr)
            if not m:
                break
            self.assertEqual(len(page), 40)
            cursor = m.group(1)
        self.assertEqual(got, full)
        self.assertEqual(pages, len(full) // 40 + 1)

    def test_csv_and_table(self):
        rows = self.all_rows()
        p = self.q("--format", "csv", "--limit", "0", *self.sigma)
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0].split(",")[-2:], ["id", "rules"])
        self.assertEqual(len(lines) - 1, len(rows))
        import csv
        recs = list(csv.reader(lines[1:]))
        self.assertEqual([(r[9], sorted(r[10].split(","))) for r in recs], [(r["id"], sorted(r["rules"])) for r in rows])
        p = self.q("--format", "table", *self.sigma)
        out = p.stdout.splitlines()
        self.assertEqual(out[0].split()[-1], "RULES")
        self.assertEqual(len(out) - 1, min(100, len(rows)))   # a table stops at 100 rows unless --limit
        self.assertIn("more: --cursor", p.stderr)
        self.assertTrue(out[1].rstrip().endswith(",".join(rows[0]["rules"])), out[1])

    def test_refused_rules_and_placeholders(self):
        # the whole folder: the unsupported and placeholder rules are named with their line, the rest runs
        p = self.q("--format", "json", "--limit", "0", "--sigma", RULES, check=2)
        self.assertIn("aws_ec2_download_userdata.yml:", p.stderr)
        self.assertIn("%Legitimate_Countries%", p.stderr)
        self.assertEqual(len(jsonl(p.stdout)), len(self.all_rows()))
        ph = os.path.join(self.dir, "placeholders.yml")
        with open(ph, "w") as f:
            f.write("Legitimate_Countries: [FR, NL]\nLegitimate_IP_Ranges: [192.0.2.1]\n")
        rule = glob.glob(os.path.join(RULES, "placeholder", "*.yml"))
        p = self.q("--format", "json", "--sigma", rule[0], "--placeholders", ph, check=None)
        self.assertIn(p.returncode, (0, 1), p.stderr)
        self.assertEqual(p.stderr, "")
        p = self.q("--sigma", rule[0], "--placeholders", os.path.join(self.dir, "no.yml"), check=2)
        self.assertIn("--placeholders: " + os.path.join(self.dir, "no.yml"), p.stderr)
        self.assertEqual(self.q("--placeholders", ph, check=None).returncode, 2)
        p = self.q("--sigma", os.path.join(self.dir, "missing.yml"), check=None)
        self.assertEqual(p.returncode, 2)
        self.assertIn("missing.yml", p.stderr)

    def test_correlations_named_not_run(self):
        path = os.path.join(self.dir, "corr.yml")
        with open(path, "w") as f:
            f.write(CORRELATION)
        p = self.q("--format", "json", "--limit", "0", "--sigma", path)
        self.assertRegex(p.stderr, r'corr\.yml:\d+: rule "Logging stopped twice": a correlation \(event_count\): '
                                   r'not run by query')
        rows = jsonl(p.stdout)
        want = {r["id"] for r in jsonl(self.q("--format", "json", "--limit", "0", "--pattern",
                                              '{"detail":{"eventName":["StopLogging","DeleteTrail"]}}').stdout)}
        self.assertEqual({r["id"] for r in rows}, want)
        self.assertEqual({n for r in rows for n in r["rules"]}, {"stop_logging"})
        h = run(["query", "--help"], check=0).stdout
        self.assertIn("--sigma PATH", h)


if __name__ == "__main__":
    unittest.main()
