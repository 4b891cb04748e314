"""End-to-end: Sigma rules in `trailwatch serve` (docs/SIGMA.md, `sigma:` in docs/CONFIG.md): a Sigma rule
beside a pattern rule alerts at a local receiver (raw records and EventBridge deliveries), per-entry and
default targets, SIGHUP reloads (a bad Sigma file keeps the running rules and logs why, with FILE:LINE),
correlations whose state survives a restart, the eviction metric, `rules check` and `rules test`."""
import json
import os
import time
import unittest

import twserve
from twserve import Receiver, Server

FAST_RETRY = {"base": "100ms", "cap": "1s"}

STOP_LOGGING = """title: CloudTrail logging stopped
name: ct_stop
status: test
level: high
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventSource: cloudtrail.amazonaws.com
    eventName: [StopLogging, DeleteTrail]
  condition: selection
"""

FAILED_LOGIN = """title: Console login failed
name: failed_login
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: ConsoleLogin
    responseElements.ConsoleLogin: failure
  condition: selection
---
title: Console brute force
name: brute_force
correlation:
  type: event_count
  rules: [failed_login]
  group-by: [sourceIPAddress]
  timespan: 10m
  condition: {gte: 3}
level: critical
"""

N = [0]


def record(name, source="cloudtrail.amazonaws.com", ip="203.0.113.9", t=None, **extra):
    N[0] += 1
    r = {"eventVersion": "1.08", "eventTime": t or "2026-12-06T10:00:%02dZ" % (N[0] % 60),
         "eventSource": source, "eventName": name, "awsRegion": "us-east-1", "sourceIPAddress": ip,
         "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/alice"},
         "eventID": "00000000-0000-4000-8000-%012d" % (N[0] + int(time.time() * 1000) % 10**9),
         "eventType": "AwsApiCall", "recipientAccountId": "123456789012"}
    r.update(extra)
    return r


def login_failure(ip, t):
    return record("ConsoleLogin", source="signin.amazonaws.com", ip=ip, t=t,
                  responseElements={"ConsoleLogin": "Failure"}, eventType="AwsConsoleSignIn")


class SigmaServe(unittest.TestCase):
    def setUp(self):
        self.rcv = Receiver().start()
        self.addCleanup(self.rcv.stop)

    def hook(self, path):
        return {"kind": "webhook", "url": self.rcv.url(path), "retry": FAST_RETRY}

    def post(self, srv, *records):
        st, body = srv.post_events(list(records))
        self.assertEqual(st, 200, body)
        return body


class TestSigmaAlerts(SigmaServe):
    def config(self, sigma):
        return {"targets": {"soc": self.hook("/soc"), "ops": self.hook("/ops"), "pat": self.hook("/pat")},
                "rules": [{"name": "pattern-rule", "pattern": {"detail": {"eventName": ["StopLogging"]}},
                           "targets": ["pat"]}],
                "sigma": sigma}

    def test_sigma_rule_alerts_beside_a_pattern_rule(self):
        srv = Server(self, self.config({"paths": ["sigma/", {"path": "extra/login.yml", "targets": ["ops"]}],
                                         "targets": ["soc"]}),
                     files={"sigma/ct.yml": STOP_LOGGING, "extra/login.yml": FAILED_LOGIN.split("---")[0]}).start()
        # a raw CloudTrail record, case-insensitive value
        self.post(srv, record("stoplogging"), record("DescribeTrails"))
        got = self.rcv.wait_for(1, 10, "/soc")
        self.assertEqual(got[0].json()["detail"]["eventName"], "stoplogging")
        self.assertEqual(self.rcv.requests("/pat"), [])   # the pattern rule is case-sensitive
        # an EventBridge delivery of a CloudTrail record: fields read under detail.
        st, _, b = srv.api("PutEvents", {"Entries": [{"Source": "aws.cloudtrail",
                                                        "DetailType": "AWS API Call via CloudTrail",
                                                        "Detail": json.dumps(record("StopLogging"))}]})
        self.assertEqual((st, b["FailedEntryCount"]), (200, 0), b)
        self.rcv.wait_for(2, 10, "/soc")
        self.rcv.wait_for(1, 10, "/pat")   # both kinds of rule in one rule set
        # the per-entry targets: failed logins alert at /ops, not /soc
        self.post(srv, login_failure("198.51.100.1", "2026-12-06T11:00:00Z"))
        ops = self.rcv.wait_for(1, 10, "/ops")
        self.assertEqual(ops[0].json()["detail"]["eventName"], "ConsoleLogin")
        self.rcv.quiet(0.5, "/soc")
        self.assertEqual(len(self.rcv.requests("/soc")), 2)
        self.assertEqual(srv.metric("trailwatch_rule_matches_total", rule="ct_stop"), 2)

    def test_rules_check_lists_sigma_rules_and_refusals(self):
        srv = Server(None, self.config({"paths": ["sigma/"], "targets": ["soc"]}),
                     files={"sigma/ct.yml": STOP_LOGGING, "sigma/login.yml": FAILED_LOGIN})
        self.addCleanup(srv.cleanup)
        r = srv.tw("rules", "check", "-c", srv.config_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("sigma rule ct_stop: high -> soc", r.stdout)
        self.assertIn("sigma correlation brute_force: critical -> soc", r.stdout)
        self.assertIn("sigma rule failed_login: medium -> (no alerts of its own", r.stdout)
        srv.write("sigma/bad.yml", STOP_LOGGING.replace("ct_stop", "bad_one").replace(
            "  condition: selection", "  condition: selection and nonexistent"))
        r = srv.tw("rules", "check", "-c", srv.config_path)
        self.assertEqual(r.returncode, 2, r.stdout)
        self.assertRegex(r.stderr, r"sigma/bad\.yml:\d+: rule \"CloudTrail logging stopped\": .*nonexistent")
        # on_refused: warn: the rule is left out with a warning, the others run
        cfg = self.config({"paths": ["sigma/"], "targets": ["soc"], "on_refused": "warn"})
        srv.write_config(cfg)
        r = srv.tw("rules", "check", "-c", srv.config_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("left out: sigma.on_refused is warn", r.stdout + r.stderr)
        self.assertNotIn("bad_one", r.stdout.replace("bad.yml", ""))
        # unknown target, missing targets, a path that does not exist
        for sigma, why in (({"paths": ["sigma/ct.yml"], "targets": ["nope"]}, 'unknown target "nope"'),
                           ({"paths": ["sigma/ct.yml"]}, "sigma.paths[0]: no targets"),
                           ({"paths": ["missing/"], "targets": ["soc"]}, "sigma.paths[0]: ")):
            srv.write_config(self.config(sigma))
            r = srv.tw("rules", "check", "-c", srv.config_path)
            self.assertEqual(r.returncode, 2, (sigma, r.stdout))
            self.assertIn(why, r.stderr)

    def test_rules_test_runs_examples_of_sigma_rules(self):
        rule = STOP_LOGGING + """examples:
  match:
    - {eventVersion: "1.08", eventSource: cloudtrail.amazonaws.com, eventName: StopLogging}
    - {eventVersion: "1.08", eventSource: cloudtrail.amazonaws.com, eventName: deletetrail}
  no_match:
    - {eventVersion: "1.08", eventSource: cloudtrail.amazonaws.com, eventName: StartLogging}
"""
        srv = Server(None, self.config({"paths": ["sigma/"], "targets": ["soc"]}), files={"sigma/ct.yml": rule})
        self.addCleanup(srv.cleanup)
        r = srv.tw("rules", "test", "-c", srv.config_path, "-v")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("ct.yml:13: rule \"ct_stop\": must-match example 1: ok", r.stdout)
        self.assertIn("3 examples: 3 passed, 0 failed", r.stdout)
        srv.write("sigma/ct.yml", rule.replace("eventName: StartLogging", "eventName: stoplogging"))
        r = srv.tw("rules", "test", "-c", srv.config_path)
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn("ct.yml:16: rule \"ct_stop\": must-not-match example 1: matched", r.stdout)

    def test_reload(self):
        srv = Server(self, self.config({"paths": ["sigma/"], "targets": ["soc"]}),
                     files={"sigma/ct.yml": STOP_LOGGING}).start()
        self.post(srv, record("DeleteTrail"))
        self.rcv.wait_for(1, 10, "/soc")
        # a new Sigma file takes effect on SIGHUP
        srv.write("sigma/iam.yml", STOP_LOGGING.replace("ct_stop", "iam_user").replace(
            "cloudtrail.amazonaws.com", "iam.amazonaws.com").replace("[StopLogging, DeleteTrail]", "CreateUser"))
        srv.sighup()
        srv.wait_log("configuration reloaded")
        self.post(srv, record("CreateUser", source="iam.amazonaws.com"))
        got = self.rcv.wait_for(2, 10, "/soc")
        self.assertEqual(got[1].json()["detail"]["eventName"], "CreateUser")
        # a broken Sigma file: the running rules stay, the reason is logged with FILE:LINE
        srv.write("sigma/broken.yml", "title: broken\nlogsource: {product: aws, service: cloudtrail}\n"
                  "detection:\n  sel:\n    eventName|nosuchmodifier: x\n  condition: sel\n")
        srv.sighup()
        twserve.wait_until(lambda: any("broken.yml:5" in json.dumps(l) for l in srv.logs(this_run=True)
                                       if l.get("msg") == "reload: invalid configuration"), 10,
                           what="the reload error; stderr:\n%s" % srv.stderr()[-2000:])
        self.post(srv, record("CreateUser", source="iam.amazonaws.com"), record("StopLogging"))
        got = self.rcv.wait_for(4, 10, "/soc")
        self.assertEqual([g.json()["detail"]["eventName"] for g in got[2:]].count("StopLogging"), 1)


class TestSigmaCorrelations(SigmaServe):
    def config(self, **sigma):
        s = {"paths": ["sigma/"], "targets": ["soc"], "save_interval": "200ms"}
        s.update(sigma)
        return {"targets": {"soc": self.hook("/soc")}, "sigma": s}

    def brute(self, srv):
        return [r for r in self.rcv.requests("/soc") if r.json().get("detail-type") == "Sigma Correlation"]

    def test_state_survives_a_restart(self):
        srv = Server(self, self.config(), files={"sigma/login.yml": FAILED_LOGIN}).start()
        self.post(srv, login_failure("203.0.113.7", "2026-12-06T10:00:00Z"),
                  login_failure("203.0.113.7", "2026-12-06T10:01:00Z"),
                  login_failure("198.51.100.2", "2026-12-06T10:01:00Z"))
        srv.wait_metric("trailwatch_sigma_groups", 2)
        self.rcv.quiet(0.5, "/soc")
        self.assertEqual(self.rcv.requests("/soc"), [])   # generate: false: the detections do not alert
        srv.stop()
        self.assertTrue(os.path.exists(srv.path("var", "sigma-state.db")))
        srv.start()
        # the third failure from the same address, after the restart, completes the window
        self.post(srv, login_failure("203.0.113.7", "2026-12-06T10:02:00Z"))
        got = self.rcv.wait_for(1, 10, "/soc")
        d = got[0].json()
        self.assertEqual(d["detail-type"], "Sigma Correlation")
        self.assertEqual((d["detail"]["name"], d["detail"]["count"]), ("brute_force", 3))
        self.assertEqual(d["detail"]["group"], {"sourceIPAddress": "203.0.113.7"})
        self.assertEqual(d["detail"]["first"][:19], "2026-12-06T10:00:00")
        srv.wait_metric("trailwatch_sigma_correlation_hits_total", 1)
        # a killed server loses at most save_interval of state: saved periodically, not only at stop
        self.post(srv, login_failure("192.0.2.5", "2026-12-06T12:00:00Z"),
                  login_failure("192.0.2.5", "2026-12-06T12:00:10Z"))
        time.sleep(1.0)
        srv.kill9()
        srv.start()
        self.post(srv, login_failure("192.0.2.5", "2026-12-06T12:00:20Z"))
        got = self.rcv.wait_for(2, 10, "/soc")
        self.assertEqual(got[1].json()["detail"]["group"], {"sourceIPAddress": "192.0.2.5"})

    def test_eviction_metric(self):
        srv = Server(self, self.config(max_groups=2), files={"sigma/login.yml": FAILED_LOGIN}).start()
        self.post(srv, *[login_failure("192.0.2.%d" % i, "2026-12-06T10:00:%02dZ" % i) for i in range(1, 6)])
        srv.wait_metric("trailwatch_sigma_evicted_total", 3)
        self.assertEqual(srv.metric("trailwatch_sigma_groups"), 2)
        # out-of-order within the lateness is taken; far behind the newest eventTime is late
        self.post(srv, login_failure("192.0.2.9", "2026-12-06T09:00:00Z"))
        srv.wait_metric("trailwatch_sigma_late_total", 1)

    def test_reload_keeps_state_of_unchanged_correlations(self):
        srv = Server(self, self.config(), files={"sigma/login.yml": FAILED_LOGIN}).start()
        self.post(srv, login_failure("203.0.113.8", "2026-12-06T10:00:00Z"),
                  login_failure("203.0.113.8", "2026-12-06T10:00:30Z"))
        srv.wait_metric("trailwatch_sigma_groups", 1)
        srv.write("sigma/ct.yml", STOP_LOGGING)   # another rule added; the correlation is unchanged
        srv.sighup()
        srv.wait_log("configuration reloaded")
        self.post(srv, login_failure("203.0.113.8", "2026-12-06T10:01:00Z"))
        got = self.rcv.wait_for(1, 10, "/soc")
        self.assertEqual(got[0].json()["detail"]["group"], {"sourceIPAddress": "203.0.113.8"})


if __name__ == "__main__":
    unittest.main()
