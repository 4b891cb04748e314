"""End-to-end: rule packs (rules/*.yml) and `trailwatch rules test`.

Every shipped rule is tested against its own examples (the CI check the issue asks for); a broken
pack is reported check by check with FILE:LINE; a pack's load errors (params, disable, targets) are
reported where trailwatch.yml loads it; and a pack loaded by `serve` alerts like any other rule."""
import json
import os
import shutil
import unittest

import twserve
import twtest
from twserve import Server

ROOT = twtest.ROOT
RULES = os.path.join(ROOT, "rules")

RECORD = {"eventVersion": "1.08", "eventTime": "2023-07-10T11:55:08Z", "eventSource": "ec2.amazonaws.com",
          "eventName": "CreateVpc", "awsRegion": "us-east-1", "readOnly": False, "eventType": "AwsApiCall",
          "managementEvent": True, "recipientAccountId": "123837392027",
          "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123837392027:user/bert-jan", "userName": "bert-jan"}}

PACK = """\
pack: demo
description: a pack for the tests
params:
  who: {description: the callers that may, example: ["arn:aws:iam::1:user/ok"]}
rules:
  - name: demo-writes
    description: writes by anyone but who
    severity: high
    references: [https://example.com/demo]
    pattern:
      detail: {readOnly: [false], userIdentity: {arn: [{anything-but: "${param:who}"}]}}
    examples:
      match:
        - {eventVersion: "1.08", eventSource: ec2.amazonaws.com, eventName: RunInstances, readOnly: false,
           userIdentity: {arn: "arn:aws:iam::1:user/bob"}}
      no_match:
        - {eventVersion: "1.08", eventSource: ec2.amazonaws.com, eventName: RunInstances, readOnly: false,
           userIdentity: {arn: "arn:aws:iam::1:user/ok"}}
        - {eventVersion: "1.08", eventSource: ec2.amazonaws.com, eventName: RunInstances, readOnly: false,
           userIdentity: {arn: "arn:aws:iam::1:user/bob"}}
  - name: demo-undocumented
    pattern: {source: [aws.ec2]}
    examples:
      match: [{source: aws.ec2, detail-type: x, detail: {}}]
  - name: demo-third
    description: d
    severity: low
    references: [r]
    pattern: {source: [aws.s3]}
    examples:
      match: [{source: aws.s3, detail: {a: 1}}]
      no_match: [{source: aws.s3}]
"""


def pack_files():
    return sorted(f for f in os.listdir(RULES) if f.endswith(".yml"))


class TestRulesTest(unittest.TestCase):
    def test_every_shipped_rule_passes_its_examples(self):
        self.assertTrue(pack_files(), "no rule packs in rules/")
        p = twtest.run(["rules", "test", RULES], timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        last = p.stdout.strip().splitlines()[-1]
        self.assertRegex(last, r"^\d+ rules, \d+ examples: \d+ passed, 0 failed$")
        # every rule of every pack was looked at, and each has examples of both kinds
        v = twtest.run(["rules", "test", "-v", RULES], timeout=300)
        rules = [l for l in v.stdout.splitlines() if l.endswith(": ok") and ": rule \"" in l and " example " not in l]
        self.assertEqual(int(last.split()[0]), len(rules))
        for name in pack_files():
            with open(os.path.join(RULES, name)) as f:
                text = f.read()
            self.assertIn("\npack: ", "\n" + text, name)

    def test_readme_figures_are_current(self):
        # rules/README.md's figures come from scripts/pack-figures, never typed: a pack changed without
        # regenerating them fails here. The plain build is used when there (it is the same matcher).
        plain = os.path.join(ROOT, "build", "trailwatch")
        env = dict(os.environ, TW_BIN=plain if os.access(plain, os.X_OK) else twtest.tw_bin(),
                   TW_SHARED_DIR=twtest.shared_dir())
        p = twserve.subprocess.run([os.path.join(ROOT, "scripts", "pack-figures"), "--check"], env=env,
                                   capture_output=True, text=True, timeout=600)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_failures_are_reported_one_by_one(self):
        d = twtest.tmpdir()
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "demo.yml")
        with open(path, "w") as f:
            f.write(PACK)
        p = twtest.run(["rules", "test", path])
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        out = p.stdout.splitlines()
        self.assertIn("%s:19: rule \"demo-writes\": must-not-match example 2: matched" % path, out)
        self.assertIn("%s:21: rule \"demo-undocumented\": no description" % path, out)
        self.assertIn("%s:32: rule \"demo-third\": must-not-match example 1: matched" % path, out)
        self.assertEqual(out[-1], "3 rules, 6 examples: 6 passed, 3 failed")
        # the passing checks are shown with -v
        v = twtest.run(["rules", "test", "-v", path])
        self.assertIn("%s:14: rule \"demo-writes\": must-match example 1: ok" % path, v.stdout.splitlines())

    def test_a_configuration_and_its_packs(self):
        d = twtest.tmpdir()
        self.addCleanup(shutil.rmtree, d, True)
        with open(os.path.join(d, "demo.yml"), "w") as f:
            f.write(PACK.split("  - name: demo-undocumented")[0])
        with open(os.path.join(d, "trailwatch.yml"), "w") as f:
            f.write("targets: {out: {kind: console}}\n"
                    "packs:\n"
                    "  - {path: demo.yml, targets: [out], params: {who: [\"arn:aws:iam::1:user/zed\"]}}\n"
                    "rules:\n"
                    "  - name: own-rule\n"
                    "    pattern: {source: [aws.ec2]}\n"
                    "    targets: [out]\n"
                    "    examples: {match: [{source: aws.ec2}], no_match: [{source: aws.s3}]}\n"
                    "  - name: own-untested\n"
                    "    pattern: {source: [aws.s3]}\n"
                    "    targets: [out]\n")
        p = twtest.run(["rules", "test", "-c", os.path.join(d, "trailwatch.yml")])
        # the pack is tested with its params' examples, not the configured value
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertEqual(p.stdout.splitlines()[-2:], ["3 rules, 5 examples: 5 passed, 1 failed",
                                                      "(1 rule of the configuration without examples)"])
        self.assertIn("must-not-match example 2: matched", p.stdout)
        c = twtest.run(["rules", "check", "-c", os.path.join(d, "trailwatch.yml")])
        self.assertEqual(c.returncode, 0, c.stderr)
        self.assertIn("rule demo-writes: high -> out", c.stdout)

    def test_load_errors_point_at_the_entry(self):
        d = twtest.tmpdir()
        self.addCleanup(shutil.rmtree, d, True)
        with open(os.path.join(d, "demo.yml"), "w") as f:
            f.write(PACK)
        cfg = os.path.join(d, "trailwatch.yml")
        with open(cfg, "w") as f:
            f.write("targets: {out: {kind: console}}\n"
                    "packs:\n"
                    "  - {path: demo.yml, targets: [out, outt], params: {woh: [x]}, disable: [demo-write]}\n"
                    "  - {path: missing.yml, targets: [out]}\n"
                    "  - {path: demo.yml}\n")
        p = twtest.run(["rules", "check", "-c", cfg])
        self.assertEqual(p.returncode, 2)
        err = p.stderr.splitlines()
        self.assertIn("%s:3: packs[0]: params.who: required by pack \"demo\": the callers that may" % cfg, err)
        self.assertIn("%s:3: packs[0]: params: pack \"demo\" has no param \"woh\" (did you mean \"who\"?)" % cfg, err)
        self.assertIn("%s:3: packs[0]: disable[0]: pack \"demo\" has no rule \"demo-write\" "
                      "(did you mean \"demo-writes\"?)" % cfg, err)
        # one unknown target is one message, not one per rule of the pack
        self.assertEqual(sum("unknown target \"outt\"" in l for l in err), 1, err)
        self.assertTrue(any(l.startswith("%s:4: packs[1]: cannot read pack %s/missing.yml" % (cfg, d)) for l in err), err)
        self.assertTrue(any(l.startswith("%s:5: packs[2]: targets: must be a non-empty list" % cfg) for l in err), err)

    def test_an_example_must_be_an_event(self):
        d = twtest.tmpdir()
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "p.yml")
        with open(path, "w") as f:
            f.write("pack: p\nrules:\n  - name: r\n    pattern: {source: [aws.s3]}\n"
                    "    examples: {match: [\"{}\"], no_match: {source: aws.s3}}\n")
        p = twtest.run(["rules", "test", path])
        self.assertEqual(p.returncode, 2)
        self.assertIn("%s:5: rule \"r\": examples.match[0]: must be an event (a mapping)" % path, p.stderr)
        self.assertIn("%s:5: rule \"r\": examples.no_match: must be a list of at most 1000 events" % path, p.stderr)

    def test_param_must_be_the_whole_value(self):
        d = twtest.tmpdir()
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "p.yml")
        with open(path, "w") as f:
            f.write("pack: p\nparams: {a: {example: x}}\nrules:\n"
                    "  - name: r\n    pattern: {source: [\"aws.${param:a}\"]}\n"
                    "  - name: s\n    pattern: {source: [\"${param:b}\"]}\n")
        p = twtest.run(["rules", "test", path])
        self.assertEqual(p.returncode, 2)
        self.assertIn("%s:5: ${param:NAME} must be the whole value" % path, p.stderr)
        self.assertIn("%s:7: ${param:b}: the pack declares no such param" % path, p.stderr)


class TestPacksInServe(unittest.TestCase):
    def test_guard_alerts_on_others_and_not_on_the_deployer(self):
        cfg = ("targets: {out: {kind: file, path: out.jsonl}}\n"
               "packs:\n"
               "  - {path: %s, targets: [out], params: {deployers: [\"arn:aws:iam::123837392027:user/ci\"]},\n"
               "     disable: [guard-iam-change]}\n" % json.dumps(os.path.join(RULES, "guard.yml")))
        srv = Server(self, cfg).start()
        other = dict(RECORD, eventID="0b6f4a52-0000-4000-8000-000000000001")
        ci = dict(RECORD, eventID="0b6f4a52-0000-4000-8000-000000000002",
                  userIdentity={"type": "IAMUser", "arn": "arn:aws:iam::123837392027:user/ci", "userName": "ci"})
        iam = dict(RECORD, eventID="0b6f4a52-0000-4000-8000-000000000003", eventSource="iam.amazonaws.com",
                   eventName="CreateUser")
        st, body = srv.post_events([other, ci, iam])
        self.assertEqual((st, body["accepted"]), (200, 3), body)
        twserve.wait_until(lambda: len(srv.jsonl("out.jsonl")) >= 1, 20, what="the guard's alert")
        srv.stop()
        alerts = srv.jsonl("out.jsonl")
        self.assertEqual(len(alerts), 1, alerts)                  # the disabled IAM rule stayed quiet
        self.assertEqual(alerts[0]["detail"]["eventID"], other["eventID"])
        p = srv.tw("rules", "check", "-c", srv.config_path)
        self.assertIn("rule guard-iam-change: critical, disabled -> out", p.stdout)


if __name__ == "__main__":
    unittest.main()
