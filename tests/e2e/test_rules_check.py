"""End-to-end: `trailwatch rules check -c FILE` on good and bad configurations: exit codes, FILE:LINE
messages on stderr, the summary on stdout, and secrets from the environment never printed."""
import os
import re
import shutil
import unittest

import twtest
from twtest import ROOT, run

SECRET_URL = "https://hooks.slack.com/services/T0SECRET/B0SECRET/xoxSECRETtoken42"
SECRET_KEY = "wJalrSECRETkeyEXAMPLE42"
SECRETS = (SECRET_URL, SECRET_KEY, "SECRETtoken42", "SECRETkey")

GOOD = """\
server:
  listen: 127.0.0.1:0
  access_keys:
    - {id: AKIDEXAMPLE, secret: "${TWT_KEY}"}
sources:
  firehose: {path: /firehose, access_key: "${TWT_KEY}"}
targets:
  slack-security:
    kind: slack
    url: ${TWT_SLACK_URL}
  audit-log:
    kind: file
    path: audit.jsonl
  spare:
    kind: console
rules:
  - name: ssm-parameter-changed
    severity: high
    pattern: {source: [aws.ssm], detail-type: [Parameter Store Change]}
    targets:
      - slack-security
      - target: audit-log
        input_transformer: {input_paths_map: {name: $.detail.name}, input_template: '"<name> changed"'}
    storm: {keys: [$.detail.name], window: 5m}
serverless:
  - path: ssm/serverless.yml
    environment: {SLACK_URL: "${TWT_SLACK_URL}"}
"""

# Every line holds one mistake (the numbers are the file's lines); the secrets are used where a
# message could be tempted to quote them.
BAD = """\
server:
  listen: ${TWT_KEY}
  account: ${TWT_KEY}
  drain_timeout: soon
targets:
  slack-security:
    kind: slack
    url: ${TWT_NOT_SET}
  log:
    kind: consol
rules:
  - name: r1
    pattern: {detail: {eventName: [{prefix: 5}]}}
    targets: [slack-securty]
  - name: r1
    pattern: {source: [x]}
    targets: [log]
    severty: high
"""

# The tutorial's files, byte for byte: examples/ must hold them unchanged.
TUTORIAL_SSM = """\
service: cloudwatch-ssm

provider:
  name: aws
  runtime: python3.6
  stage: dev
  region: us-east-1
  iamRoleStatements:
    - Effect: "Allow"
      Action:
        - "ssm:DescribeParameters"
      Resource: "*"
  environment:
    SLACK_URL: 'INSERT SLACK URL'

functions:
  parameter:
    handler: handler.parameter
    events:
      - cloudwatchEvent:
          event:
            source:
              - "aws.ssm"
            detail-type:
              - "Parameter Store Change"
"""

TUTORIAL_DYNAMODB = """\
# serverless.yml

service: cloudtrail-dynamodb

provider:
  name: aws
  runtime: python3.6
  stage: dev
  region: us-east-1
  environment:
    SLACK_URL: 'INSERT SLACK URL'

functions:
  createTable:
    handler: handler.create_table
    events:
      - cloudwatchEvent:
          event:
            source:
              - "aws.dynamodb"
            detail-type:
              - "AWS API Call via CloudTrail"
            detail:
              eventName:
                - "CreateTable"
"""


def env(**extra):
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("TWT_"):
            del e[k]
    e.update({"TWT_SLACK_URL": SECRET_URL, "TWT_KEY": SECRET_KEY})
    e.update(extra)
    return e


class RulesCheck(unittest.TestCase):
    def setUp(self):
        self.dir = twtest.tmpdir()
        self.addCleanup(shutil.rmtree, self.dir, True)
        os.makedirs(os.path.join(self.dir, "ssm"))
        shutil.copy(os.path.join(ROOT, "examples", "ssm-parameter-store", "serverless.yml"),
                    os.path.join(self.dir, "ssm", "serverless.yml"))

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def assertNoSecrets(self, p):
        for s in SECRETS:
            self.assertNotIn(s, p.stdout)
            self.assertNotIn(s, p.stderr)

    def test_good_file_prints_a_summary_and_exits_0(self):
        path = self.write("trailwatch.yml", GOOD)
        p = run(["rules", "check", "-c", path], env=env())
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "")
        self.assertIn("rule ssm-parameter-changed: high -> slack-security, audit-log (transformed)", p.stdout)
        self.assertIn("rule cloudwatch-ssm-dev-parameter-1: medium -> cloudwatch-ssm-dev-parameter", p.stdout)
        self.assertIn("target cloudwatch-ssm-dev-parameter: exec", p.stdout)
        self.assertRegex(p.stdout, r"target spare: console.*no rule uses it")
        self.assertIn("firehose (POST /firehose, access key required)", p.stdout)
        self.assertNoSecrets(p)

    def test_long_option_and_equals_form(self):
        path = self.write("trailwatch.yml", GOOD)
        for args in (["--config", path], ["--config=" + path], ["-c" + path]):
            p = run(["rules", "check"] + args, env=env())
            self.assertEqual(p.returncode, 0, (args, p.stderr))

    def test_bad_file_reports_every_error_with_file_and_line(self):
        path = self.write("bad.yml", BAD)
        p = run(["rules", "check", "-c", path], env=env())
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stdout, "")
        errors = [l for l in p.stderr.splitlines() if l.startswith(path + ":")]
        lines = [int(re.match(re.escape(path) + r":(\d+): ", l).group(1)) for l in errors]
        self.assertEqual(lines, sorted(lines))
        want = {
            2: "server.listen: must be HOST:PORT",
            3: "server.account: must be a 12-digit account id",
            4: "server.drain_timeout: must be a duration",
            8: "environment variable TWT_NOT_SET is not set",
            10: 'target "log": unknown kind "consol" (did you mean "console"?)',
            13: 'rule "r1": detail.eventName: "prefix" must be a string',
            14: 'rule "r1": unknown target "slack-securty" (did you mean "slack-security"?)',
            15: 'rule "r1": defined twice (first at %s:12)' % path,
            18: 'unknown key "severty" (did you mean "severity"?)',
        }
        for line, text in want.items():
            self.assertTrue(any(l.startswith("%s:%d: " % (path, line)) and text in l for l in errors),
                            "no error at line %d: %s\n%s" % (line, text, p.stderr))
        self.assertEqual(len(errors), len(want), p.stderr)
        self.assertIn("%d errors" % len(want), p.stderr.splitlines()[-1])
        self.assertNoSecrets(p)

    def test_an_unknown_setting_is_reported_at_its_own_line(self):
        # Not at the target's first key: the line a user has to edit.
        path = self.write("t.yml", "targets:\n  hook:\n    kind: webhook\n    url: http://127.0.0.1:9/\n"
                                   "    headers:\n      X-A: b\n    retires: 3\n"
                                   "rules:\n  - {name: r, pattern: {source: [x]}, targets: [hook]}\n")
        p = run(["rules", "check", "-c", path], env=env())
        self.assertEqual(p.returncode, 2)
        self.assertIn('%s:7: target "hook": unknown setting "retires"' % path, p.stderr)

    def test_the_tutorial_serverless_files_are_unchanged_and_load(self):
        for name, text, rule in (("ssm-parameter-store", TUTORIAL_SSM, "cloudwatch-ssm-dev-parameter-1"),
                                 ("dynamodb-create-table", TUTORIAL_DYNAMODB, "cloudtrail-dynamodb-dev-createTable-1")):
            path = os.path.join(ROOT, "examples", name, "serverless.yml")
            with open(path, "rb") as f:
                self.assertEqual(f.read(), text.encode(), path)
            p = run(["rules", "check", "-c", path], env=env())
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("rule %s: medium" % rule, p.stdout)

    def test_the_example_configuration(self):
        path = os.path.join(ROOT, "examples", "trailwatch.yml")
        p = run(["rules", "check", "-c", path], env=env(SLACK_WEBHOOK_URL=SECRET_URL, TW_SECRET_KEY=SECRET_KEY))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("rule root-account-used: critical", p.stdout)
        self.assertNoSecrets(p)
        p = run(["rules", "check", "-c", path], env=env())
        self.assertEqual(p.returncode, 2)
        self.assertRegex(p.stderr, re.escape(path) + r":\d+: environment variable SLACK_WEBHOOK_URL is not set")
        self.assertRegex(p.stderr, re.escape(path) + r":\d+: environment variable TW_SECRET_KEY is not set")

    def test_serverless_errors_point_into_the_serverless_file(self):
        sls = self.write("ssm/serverless.yml", TUTORIAL_SSM.replace("'INSERT SLACK URL'", "${ssm:/slack/url}"))
        path = self.write("trailwatch.yml", GOOD)
        p = run(["rules", "check", "-c", path], env=env())
        self.assertEqual(p.returncode, 2)
        self.assertIn(sls + ':14: ${ssm:/slack/url}: variable source "ssm" is not supported', p.stderr)

    def test_missing_file_and_usage(self):
        missing = os.path.join(self.dir, "nope.yml")
        p = run(["rules", "check", "-c", missing])
        self.assertEqual(p.returncode, 2)
        self.assertIn(missing + ": No such file or directory", p.stderr)
        p = run(["rules", "--help"])
        self.assertEqual(p.returncode, 0)
        self.assertIn("usage: trailwatch rules check -c FILE", p.stdout)
        self.assertEqual(run(["rules", "check", "--help"]).returncode, 0)
        for args in (["rules"], ["rules", "check"], ["rules", "frob"], ["rules", "check", "-c"],
                     ["rules", "check", "-x", "y"], ["rules", "check", "-c", missing, "extra"]):
            p = run(args)
            self.assertEqual(p.returncode, 2, args)
            self.assertNotEqual(p.stderr, "", args)


if __name__ == "__main__":
    unittest.main()
