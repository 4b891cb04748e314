"""End-to-end: `trailwatch test-pattern` and `trailwatch match` run as a user would run them."""
import glob
import gzip
import json
import os
import shutil
import unittest

import twtest
from twtest import run

RECORD = {
    "eventVersion": "1.08", "eventSource": "dynamodb.amazonaws.com", "eventName": "CreateTable",
    "eventType": "AwsApiCall", "awsRegion": "us-east-1", "recipientAccountId": "123456789012",
    "eventTime": "2024-05-01T12:00:00Z", "eventID": "11111111-2222-3333-4444-555555555555",
    "userIdentity": {"type": "IAMUser", "userName": "alice"}, "sourceIPAddress": "192.0.2.10",
}
DDB = {"source": ["aws.dynamodb"], "detail-type": ["AWS API Call via CloudTrail"],
       "detail": {"eventName": ["CreateTable"]}}


class TestPatternCommand(unittest.TestCase):
    def test_match_prints_true_and_exits_0(self):
        p = run(["test-pattern", "--pattern", json.dumps(DDB), "--event", json.dumps(RECORD)])
        self.assertEqual((p.returncode, p.stdout), (0, "true\n"))

    def test_no_match_prints_false_and_exits_1(self):
        p = run(["test-pattern", "-p", '{"source":["aws.s3"]}', "-e", json.dumps(RECORD)])
        self.assertEqual((p.returncode, p.stdout), (1, "false\n"))

    def test_invalid_pattern_exits_2_naming_the_path(self):
        p = run(["test-pattern", "-p", '{"detail":{"eventName":[{"prefix":5}]}}', "-e", "{}"])
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stdout, "")
        self.assertIn('detail.eventName: "prefix" must be a string', p.stderr)

    def test_invalid_event_exits_2_naming_where(self):
        p = run(["test-pattern", "-p", '{"a":[1]}', "-e", '{"a": [1,}'])
        self.assertEqual(p.returncode, 2)
        self.assertIn("invalid event", p.stderr)
        self.assertIn("column 10", p.stderr)

    def test_files_with_at(self):
        d = twtest.tmpdir()
        with open(os.path.join(d, "p.json"), "w") as f:
            json.dump(DDB, f, indent=2)
        with open(os.path.join(d, "e.json"), "w") as f:
            json.dump(RECORD, f, indent=2)
        p = run(["test-pattern", "-p", "@" + d + "/p.json", "-e", "@" + d + "/e.json"])
        self.assertEqual((p.returncode, p.stdout), (0, "true\n"))
        p = run(["test-pattern", "-p", "@" + d + "/missing.json", "-e", "{}"])
        self.assertEqual(p.returncode, 2)
        self.assertIn("missing.json", p.stderr)
        shutil.rmtree(d)

    def test_event_size_limit(self):
        big = json.dumps({"a": "x" * 5000})
        p = run(["test-pattern", "-p", '{"a":[{"exists":true}]}', "-e", big, "--max-event-size", "4k"])
        self.assertEqual(p.returncode, 2)
        self.assertIn("exceeds the limit of 4096 bytes", p.stderr)
        p = run(["test-pattern", "-p", '{"a":[{"exists":true}]}', "-e", big, "--max-event-size", "8k"])
        self.assertEqual(p.returncode, 0)

    def test_usage_errors_and_help(self):
        self.assertEqual(run(["test-pattern", "-p", "{}"]).returncode, 2)
        h = run(["test-pattern", "--help"])
        self.assertEqual(h.returncode, 0)
        self.assertIn("--batch", h.stdout)
        self.assertEqual(run(["no-such-command"]).returncode, 2)
        self.assertEqual(run(["--help"]).returncode, 0)

    def test_batch_answers_every_line_and_carries_on(self):
        lines = [
            json.dumps({"pattern": DDB, "event": RECORD}),
            "this is not json",
            json.dumps({"pattern": {"a": [{"prefix": 5}]}, "event": {}}),
            json.dumps({"pattern": '{"a":[1]}', "event": '{"a":1}'}),
            json.dumps({"pattern": {"a": [1]}, "event": '{"a":'}),
            json.dumps({"pattern": {"a": [1]}}),
            json.dumps({"pattern": {"a": [2]}, "event": {"a": 1}}),
        ]
        p = run(["test-pattern", "--batch"], input="\n".join(lines) + "\n")
        out = p.stdout.splitlines()
        self.assertEqual(len(out), len(lines), p.stdout)
        self.assertEqual(out[0], "true")
        self.assertTrue(out[1].startswith("error: line is not valid JSON"), out[1])
        self.assertTrue(out[2].startswith("error: invalid pattern: a: "), out[2])
        self.assertEqual(out[3], "true")
        self.assertTrue(out[4].startswith("error: invalid event"), out[4])
        self.assertTrue(out[5].startswith("error: each line must be an object"), out[5])
        self.assertEqual(out[6], "false")
        self.assertEqual(p.returncode, 2)
        self.assertIn("4 of 7 lines had errors", p.stderr)

    def test_batch_all_good_exits_0(self):
        p = run(["test-pattern", "--batch"], input=json.dumps({"pattern": {"a": [1]}, "event": {"a": 1}}))
        self.assertEqual((p.returncode, p.stdout), (0, "true\n"))


class TestMatchCommand(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.shared = twtest.shared_dir()
        cls.dir = twtest.tmpdir()
        cls.rules = os.path.join(cls.dir, "rules.json")
        with open(cls.rules, "w") as f:
            json.dump({"ddb": DDB, "root": {"detail": {"userIdentity": {"type": ["Root"]}}},
                       "errors": {"detail": {"errorCode": [{"exists": True}]}}}, f)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir)

    def write(self, name, text, mode="w"):
        path = os.path.join(self.dir, name)
        with open(path, mode) as f:
            f.write(text)
        return path

    def test_count_over_recorded_data_agrees_with_python(self):
        data = os.path.join(self.shared, "data", "cloudtrail", "recorded.jsonl.gz")
        want = {"ddb": 0, "root": 0, "errors": 0}
        for line in gzip.open(data, "rt"):
            r = json.loads(line)
            if r.get("eventSource") == "dynamodb.amazonaws.com" and r.get("eventName") == "CreateTable":
                want["ddb"] += 1
            if (r.get("userIdentity") or {}).get("type") == "Root":
                want["root"] += 1
            if "errorCode" in r:
                want["errors"] += 1
        p = run(["match", "--rules", self.rules, "--count", data], check=0)
        self.assertEqual(json.loads(p.stdout), want)

    def test_matching_lines_name_the_event(self):
        other = dict(RECORD, eventID="e-2", eventName="DescribeTable")
        env = {"version": "0", "id": "env-1", "detail-type": "AWS API Call via CloudTrail", "source": "aws.dynamodb",
               "detail": {"eventName": "CreateTable"}}
        noid = {"detail": {"userIdentity": {"type": "Root"}}}
        path = self.write("ev.jsonl", "\n".join(json.dumps(x) for x in (RECORD, other, env, noid)) + "\n")
        p = run(["match", "-r", self.rules, path], check=0)
        out = [json.loads(l) for l in p.stdout.splitlines()]
        self.assertEqual(out, [{"event": RECORD["eventID"], "rules": ["ddb"]},
                               {"event": "env-1", "rules": ["ddb"]},
                               {"event": path + ":4", "rules": ["root"]}])

    def test_stdin_and_no_match_exit_1(self):
        p = run(["match", "-r", self.rules], input=json.dumps({"x": 1}) + "\n")
        self.assertEqual((p.returncode, p.stdout), (1, ""))
        p = run(["match", "-r", self.rules, "-"], input=json.dumps(RECORD) + "\n")
        self.assertEqual(p.returncode, 0)
        self.assertIn('"ddb"', p.stdout)

    def test_cloudtrail_log_files_gzip_and_arrays(self):
        s3 = sorted(glob.glob(os.path.join(self.shared, "data", "cloudtrail", "s3-layout", "**", "*.json.gz"),
                              recursive=True))[:50]
        inv = sorted(glob.glob(os.path.join(self.shared, "data", "cloudtrail", "invictus-ir", "CloudTrail", "*.json")))
        strat = sorted(glob.glob(os.path.join(self.shared, "data", "cloudtrail", "stratus-red-team", "*.json")))
        files = s3 + inv + strat
        want = {"ddb": 0, "root": 0, "errors": 0}
        for path in files:
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rt") as f:
                doc = json.load(f)
            for r in (doc["Records"] if isinstance(doc, dict) else doc):
                if r.get("eventSource") == "dynamodb.amazonaws.com" and r.get("eventName") == "CreateTable":
                    want["ddb"] += 1
                if (r.get("userIdentity") or {}).get("type") == "Root":
                    want["root"] += 1
                if "errorCode" in r:
                    want["errors"] += 1
        p = run(["match", "-r", self.rules, "--count"] + files, check=0)
        self.assertEqual(json.loads(p.stdout), want)

    def test_bad_lines_are_reported_skipped_and_counted(self):
        good = json.dumps(RECORD)
        deep = '{"a":' + "[" * 1200 + "]" * 1200 + "}"
        body = "\n".join([good, '{"broken": ', good, "[1,2]", deep, "x" * 70000, good]).encode() + \
            b'\n{"bad": "\xff"}\n' + good.encode() + b"\n"
        path = self.write("bad.jsonl", body, "wb")
        p = run(["match", "-r", self.rules, "--max-event-size", "16k", path], input=b"")
        out = p.stdout.decode().splitlines()
        self.assertEqual(len(out), 4, p.stderr)
        err = p.stderr.decode()
        for line_no in (2, 4, 5, 6, 8):
            self.assertIn("%s:%d:" % (path, line_no), err)
        self.assertIn("must be a JSON object", err)
        self.assertIn("too deep", err)
        self.assertIn("UTF-8", err)
        self.assertIn("skipped 5 invalid events", err)
        self.assertEqual(p.returncode, 2)

    def test_truncated_gzip_keeps_what_came_before(self):
        lines = "".join(json.dumps(dict(RECORD, eventID="id-%d" % i)) + "\n" for i in range(2000))
        blob = gzip.compress(lines.encode())
        path = self.write("cut.jsonl.gz", blob[: len(blob) * 2 // 3], "wb")
        p = run(["match", "-r", self.rules, path])
        got = p.stdout.splitlines()
        self.assertGreater(len(got), 100)
        self.assertLess(len(got), 2000)
        self.assertIn("truncated gzip", p.stderr)
        self.assertEqual(p.returncode, 2)

    def test_invalid_rules_are_all_reported_with_lines(self):
        path = self.write("bad.yml", "ok:\n  source: [aws.ec2]\nbad1:\n  detail:\n    eventName: [{prefix: 5}]\n"
                                     "bad2:\n  source: []\n")
        p = run(["match", "-r", path], input="")
        self.assertEqual(p.returncode, 2)
        self.assertIn(path + ':4: rule "bad1": detail.eventName: "prefix" must be a string', p.stderr)
        self.assertIn(path + ':7: rule "bad2": source: an array of matchers must not be empty', p.stderr)
        self.assertIn("2 invalid rules", p.stderr)
        p = run(["match", "-r", os.path.join(self.dir, "nope.yml")], input="")
        self.assertEqual(p.returncode, 2)
        self.assertIn("nope.yml", p.stderr)
        p = run(["match", "-r", self.write("broken.yml", "a: [b\n")], input="")
        self.assertEqual(p.returncode, 2)
        self.assertIn("line", p.stderr)

    def test_example_rules_run(self):
        p = run(["match", "-r", os.path.join(twtest.ROOT, "examples", "rules.yml"), "--count", "--stats",
                 os.path.join(self.shared, "data", "cloudtrail", "recorded.jsonl.gz")], check=0)
        counts = json.loads(p.stdout)
        self.assertGreater(counts["root-account-used"], 0)
        stats = json.loads(p.stderr.strip().splitlines()[-1])
        self.assertEqual(stats["events"], 27608)


if __name__ == "__main__":
    unittest.main()
