"""End-to-end: what a new user tripped over (issue #9), each fixed and kept fixed.

- a repeated CloudTrail eventID is dropped out loud: an info log line, a counter per source, and the
  count in /events answers;
- a delivered alert is logged at debug; a retry's reason is the failing program's meaningful line,
  not a cut-off traceback;
- `match -c` is refused with a pointer (elsewhere -c is --config), --count / -n count;
- a rule naming a target whose definition failed says so instead of "unknown target";
- a serverless.yml runtime other than the python3 it runs on is a warning, not a silent switch;
- scripts/setup-deps waits for another apt's lock (apt-get driven by fake programs on PATH: the
  test never touches the machine's packages)."""
import json
import os
import shutil
import stat
import subprocess
import tempfile
import unittest

import twserve
import twtest
from twserve import Server

ROOT = twtest.ROOT

RECORD = {"eventVersion": "1.08", "eventTime": "2024-05-01T10:00:00Z", "eventSource": "ec2.amazonaws.com",
          "eventName": "RunInstances", "awsRegion": "us-east-1", "eventType": "AwsApiCall",
          "eventID": "5f0e0c8e-0000-4000-8000-00000000d001", "recipientAccountId": "123456789012",
          "userIdentity": {"type": "IAMUser", "userName": "alice", "arn": "arn:aws:iam::123456789012:user/alice"}}


class TestDuplicatesAreSaid(unittest.TestCase):
    def test_putevents_duplicate_is_logged_counted_and_answered(self):
        srv = Server(self, "targets: {out: {kind: file, path: out.jsonl}}\n"
                           "rules: [{name: ec2, pattern: {source: [aws.ec2]}, targets: [out]}]\n").start()
        entry = {"Source": "aws.ec2", "DetailType": "AWS API Call via CloudTrail", "Detail": json.dumps(RECORD)}
        for _ in range(2):
            p = srv.aws(["events", "put-events", "--entries", json.dumps([entry])])
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(json.loads(p.stdout)["FailedEntryCount"], 0)
        rec = srv.wait_log("duplicate events dropped: their CloudTrail eventID was seen before (within "
                           "server.dedup_window)", source="eventbridge")
        self.assertEqual((rec["level"], rec["count"], rec["event_id"]), ("info", "1", RECORD["eventID"]))
        self.assertEqual(srv.metric("trailwatch_events_duplicate_total", source="eventbridge"), 1)
        self.assertEqual(srv.metric("trailwatch_events_duplicate_total", source="http"), 0)
        # the same record again through POST /events: answered, counted under its own source
        st, body = srv.post_events([RECORD, dict(RECORD, eventID="5f0e0c8e-0000-4000-8000-00000000d002")])
        self.assertEqual((st, body["accepted"], body["duplicates"]), (200, 2, 1), body)
        srv.wait_metric("trailwatch_events_duplicate_total", 1, source="http")
        twserve.wait_until(lambda: len(srv.jsonl("out.jsonl")) == 2, 20, what="two alerts")


class TestDeliveryLogs(unittest.TestCase):
    def test_delivered_at_debug_and_the_retry_reason_is_the_meaningful_line(self):
        d = tempfile.mkdtemp(prefix="tw-e2e-")
        self.addCleanup(shutil.rmtree, d, True)
        prog = os.path.join(d, "fail.sh")
        with open(prog, "w") as f:
            f.write("#!/bin/sh\n"
                    "cat >/dev/null\n"
                    "echo 'Traceback (most recent call last):' >&2\n"
                    "echo '  File \"handler.py\", line 3, in <module>' >&2\n"
                    "echo '    post(url)' >&2\n"
                    "echo 'ValueError: the webhook refused the message' >&2\n"
                    "exit 1\n")
        os.chmod(prog, 0o755)
        cfg = ("targets:\n"
               "  out: {kind: file, path: out.jsonl}\n"
               "  broken: {kind: exec, command: [%s], retry: {max_attempts: 2, base: 1s}}\n"
               "rules: [{name: ec2, pattern: {source: [aws.ec2]}, targets: [out, broken]}]\n" % json.dumps(prog))
        srv = Server(self, cfg, log_level="debug").start()
        st, body = srv.post_events([dict(RECORD, eventID="5f0e0c8e-0000-4000-8000-00000000d101")])
        self.assertEqual(st, 200, body)
        rec = srv.wait_log("alert delivered", target="out", rule="ec2")
        self.assertEqual((rec["level"], rec["attempt"]), ("debug", "1"))
        self.assertRegex(rec["ms_since_created"], r"^\d+$")
        retry = srv.wait_log("delivery will be retried", target="broken")
        self.assertEqual(retry["reason"], "%s exited with status 1: ValueError: the webhook refused the message" % prog)


class TestOptionsAndMessages(unittest.TestCase):
    def test_match_dash_c_is_refused_with_a_pointer(self):
        p = twtest.run(["match", "-c", "--rules", os.path.join(ROOT, "examples", "rules.yml")], input="")
        self.assertEqual(p.returncode, 2)
        self.assertIn("-c is not an option of match (elsewhere it is --config): use --rules FILE for the rules and "
                      "--count (-n) for counts", p.stderr)
        rec = json.dumps({"source": "aws.ec2", "detail-type": "x", "detail": {}})
        for opt in ("--count", "-n"):
            p = twtest.run(["match", opt, "--rules", os.path.join(ROOT, "examples", "rules.yml")], input=rec + "\n")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn('"root-account-used": 0', p.stdout)

    def test_rule_naming_a_broken_target_says_so(self):
        d = tempfile.mkdtemp(prefix="tw-e2e-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "t.yml")
        with open(path, "w") as f:
            f.write("targets:\n"
                    "  nokind: {url: x}\n"
                    "  typo: {kind: slak}\n"
                    "rules:\n"
                    "  - {name: a, pattern: {source: [x]}, targets: [nokind, typo, nothere]}\n")
        p = twtest.run(["rules", "check", "-c", path])
        self.assertEqual(p.returncode, 2)
        err = p.stderr.splitlines()
        self.assertIn("%s:5: rule \"a\": target \"nokind\" cannot be used: its definition at %s:2 has errors"
                      % (path, path), err)
        self.assertIn("%s:5: rule \"a\": target \"typo\" cannot be used: its definition at %s:3 has errors"
                      % (path, path), err)
        self.assertIn("%s:5: rule \"a\": unknown target \"nothere\"" % path, err)
        self.assertFalse(any("unknown target \"nokind\"" in l or "unknown target \"typo\"" in l for l in err), err)

    def test_a_runtime_other_than_the_installed_python_is_a_warning(self):
        d = tempfile.mkdtemp(prefix="tw-e2e-")
        self.addCleanup(shutil.rmtree, d, True)
        sls = os.path.join(ROOT, "examples", "dynamodb-create-table", "serverless.yml")
        cfg = ("server: {listen: 127.0.0.1:0}\n"
               "serverless:\n  - path: %s\n    environment: {SLACK_URL: http://127.0.0.1:9/x}\n" % json.dumps(sls))
        with open(os.path.join(d, "t.yml"), "w") as f:
            f.write(cfg)
        with open(sls) as f:
            runtime = next(l.split(":")[1].strip() for l in f if l.strip().startswith("runtime:"))
        self.assertEqual(runtime, "python3.6")                  # the tutorial's file, unchanged
        have = subprocess.run(["python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                              capture_output=True, text=True).stdout.strip()
        p = twtest.run(["rules", "check", "-c", os.path.join(d, "t.yml")])
        self.assertEqual(p.returncode, 0, p.stderr)
        warning = ("function createTable: runtime python3.6, but its handler runs with python %s (the python3 on "
                   "PATH)" % have)
        if have == "3.6":
            self.assertNotIn("warnings:", p.stdout)
            return
        self.assertIn("warnings:\n  %s: %s\n" % (sls, warning), p.stdout)
        srv = Server(self, cfg, env={"PATH": os.environ["PATH"]}).start()
        rec = srv.wait_log("configuration warning", this_run=False)
        self.assertEqual((rec["level"], rec["warning"]), ("warn", "%s: %s" % (sls, warning)))


class TestSetupDepsWaitsForTheLock(unittest.TestCase):
    def fake(self, d, name, body):
        p = os.path.join(d, name)
        with open(p, "w") as f:
            f.write("#!/bin/sh\n" + body)
        os.chmod(p, os.stat(p).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    def run_setup_deps(self, busy_updates, busy_installs, other_error=False):
        d = tempfile.mkdtemp(prefix="tw-e2e-")
        self.addCleanup(shutil.rmtree, d, True)
        log = os.path.join(d, "calls")
        # every package looks missing; apt-get reports the lock held for its first N calls of each kind
        self.fake(d, "dpkg-query", "exit 1\n")
        self.fake(d, "sudo", 'exec "$@"\n')
        self.fake(d, "apt-get", (
            'echo "$*" >> %(log)s\n'
            'for a in "$@"; do case "$a" in update|install) op=$a;; esac; done\n'
            'n=$(grep -c " $op\\b\\|^-o DPkg::Lock::Timeout=600 $op" %(log)s)\n'
            'if [ "$op" = update ] && [ "$n" -le %(u)d ]; then echo "E: Could not get lock /var/lib/apt/lists/lock. '
            'It is held by process 4242 (apt-get)" >&2; exit 100; fi\n'
            'if [ "$op" = install ] && [ "$n" -le %(i)d ]; then echo "E: Could not get lock /var/cache/apt/archives/lock. '
            'It is held by process 4242 (apt-get)" >&2; exit 100; fi\n'
            '%(other)s'
            'exit 0\n') % {"log": log, "u": busy_updates, "i": busy_installs,
                           "other": 'echo "E: Unable to locate package gcc" >&2; exit 100\n' if other_error else ""})
        env = dict(os.environ, PATH=d + ":/usr/bin:/bin", SETUP_DEPS_POLL="1")
        p = subprocess.run([os.path.join(ROOT, "scripts", "setup-deps")], env=env, capture_output=True, text=True,
                           timeout=120)
        with open(log) as f:
            calls = f.read().splitlines()
        return p, calls

    def test_waits_for_the_lists_and_archives_locks(self):
        p, calls = self.run_setup_deps(busy_updates=2, busy_installs=1)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([c.split()[2] for c in calls], ["update"] * 3 + ["install"] * 2)
        self.assertTrue(all(c.startswith("-o DPkg::Lock::Timeout=600 ") for c in calls), calls)
        self.assertIn("setup-deps: another apt process holds a lock; waiting for it (up to 10 minutes)", p.stderr)

    def test_other_failures_are_not_waited_for(self):
        p, calls = self.run_setup_deps(busy_updates=0, busy_installs=0, other_error=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual(len(calls), 1)
        self.assertIn("E: Unable to locate package gcc", p.stderr)


if __name__ == "__main__":
    unittest.main()
