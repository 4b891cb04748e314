"""End-to-end: Sigma rules in `trailwatch serve` (docs/SIGMA.md, `sigma:` in docs/CONFIG.md): a Sigma rule
beside a pattern rule alerts at a local receiver (raw records and EventBridge deliveries), per-entry and
default targets, SIGHUP reloads (a bad Sigma file keeps the running rules and logs why, with FILE:LINE),
correlations whose state survives a restart, the eviction metric, `rules check` and `rules test`."""
import json
import os
import resource
import shutil
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

    def test_kill_right_after_the_answer_loses_nothing(self):
        # the state is saved with each commit, not only every save_interval (here far longer than the test)
        srv = Server(self, self.config(save_interval="1h"), files={"sigma/login.yml": FAILED_LOGIN}).start()
        self.post(srv, login_failure("192.0.2.77", "2026-12-06T13:00:00Z"))
        self.post(srv, login_failure("192.0.2.77", "2026-12-06T13:00:05Z"))
        srv.kill9()                                     # at once: nothing else happened since the answer
        srv.start()
        self.post(srv, login_failure("192.0.2.77", "2026-12-06T13:00:10Z"))
        got = self.rcv.wait_for(1, 10, "/soc")
        d = got[0].json()["detail"]
        self.assertEqual((d["name"], d["count"], d["group"]), ("brute_force", 3, {"sourceIPAddress": "192.0.2.77"}))

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


LONE_FAILURE = FAILED_LOGIN.split("---")[0] + """---
title: A lone failed login
name: lone_failure
correlation:
  type: event_count
  rules: [failed_login]
  group-by: [sourceIPAddress]
  timespan: 2s
  condition: {lt: 3}
level: low
"""


def iso_now(offset=0.0):
    t = time.time() + offset
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


class TestCorrelationCommits(SigmaServe):
    """A commit that fails must leave the correlation state as if the events never came (the sender
    sends them again), and a hit whose commit fails is closed again, never lost (#14). A commit fails
    here for a real reason: the target is at its max_pending cap with when_full: reject (503)."""

    def config(self, **sigma):
        s = {"paths": ["sigma/"], "targets": ["soc"], "save_interval": "200ms"}
        s.update(sigma)
        hook = self.hook("/soc")
        hook.update({"max_pending": 1, "when_full": "reject"})
        return {"targets": {"soc": hook}, "sigma": s}

    def delivered(self):
        return [r.json() for r in self.rcv.requests("/soc") if r.status == 200]

    def corr(self):
        return [d for d in self.delivered() if d.get("detail-type") == "Sigma Correlation"]

    def fill(self, srv):
        """The target is down and holds one alert: the next batch with an alert for it is refused."""
        self.rcv.set_default("/soc", twserve.Response(503, b"down"))
        self.post(srv, record("StopLogging"))
        twserve.wait_until(lambda: srv.metric("trailwatch_outbox_pending", target="soc") == 1, 10,
                           what="one alert pending")

    def drain(self, srv):
        self.rcv.set_default("/soc", twserve.Response(200, b"ok"))
        twserve.wait_until(lambda: srv.metric("trailwatch_outbox_depth") == 0, 20, what="outbox empty")

    def test_resend_after_a_failed_commit_counts_once(self):
        srv = Server(self, self.config(), files={"sigma/login.yml": FAILED_LOGIN, "sigma/ct.yml": STOP_LOGGING}).start()
        self.fill(srv)
        f1, f2 = (login_failure("203.0.113.20", "2026-12-06T10:00:%02dZ" % i) for i in (1, 2))
        batch = [f1, f2, record("StopLogging")]
        st, body = srv.post_events(batch)
        self.assertEqual(st, 503, body)                # nothing of the batch was kept
        self.drain(srv)
        self.post(srv, *batch)                          # the sender's retry
        twserve.wait_until(lambda: len(self.delivered()) == 2, 10, what="the two StopLogging alerts")
        time.sleep(1.0)
        self.assertEqual(self.corr(), [])               # two failures, not four
        # a repeat of events already taken is not counted either (the dedup window, and the state)
        self.post(srv, f1, f2)
        self.rcv.quiet(0.5, "/soc")
        self.assertEqual(self.corr(), [])
        # the third failure completes the window once, with the three events
        f3 = login_failure("203.0.113.20", "2026-12-06T10:00:03Z")
        self.post(srv, f3)
        twserve.wait_until(lambda: len(self.corr()) == 1, 10, what="the correlation alert")
        self.rcv.quiet(1.0, "/soc")
        c = self.corr()
        self.assertEqual(len(c), 1, c)
        self.assertEqual(c[0]["detail"]["count"], 3)
        self.assertEqual(sorted(c[0]["detail"]["events"]), sorted(r["eventID"] for r in (f1, f2, f3)))
        self.assertEqual(len([d for d in self.delivered() if d.get("detail-type") != "Sigma Correlation"]), 2)

    def test_failed_commit_then_reload_and_restart(self):
        srv = Server(self, self.config(), files={"sigma/login.yml": FAILED_LOGIN, "sigma/ct.yml": STOP_LOGGING}).start()
        self.fill(srv)
        fs = [login_failure("203.0.113.21", "2026-12-06T10:00:%02dZ" % i) for i in (1, 2, 3, 4)]
        st, body = srv.post_events([fs[0], fs[1], record("StopLogging")])
        self.assertEqual(st, 503, body)
        # a reload between the failed commit and the retry: the state carries over, unchanged
        srv.write("sigma/iam.yml", STOP_LOGGING.replace("ct_stop", "iam_user").replace(
            "cloudtrail.amazonaws.com", "iam.amazonaws.com").replace("[StopLogging, DeleteTrail]", "CreateUser"))
        srv.sighup()
        srv.wait_log("configuration reloaded")
        self.drain(srv)
        self.post(srv, fs[0], fs[1])
        srv.stop()
        srv.start()
        self.post(srv, fs[0], fs[1])                    # repeats after the restart: dropped
        self.rcv.quiet(0.5, "/soc")
        self.assertEqual(self.corr(), [])
        self.post(srv, fs[2])
        twserve.wait_until(lambda: len(self.corr()) == 1, 10, what="the correlation alert; metrics %s; logs %s" % (
            {k: v for k, v in srv.metrics().items() if "sigma" in k[0] or "outbox" in k[0]}, srv.logs()[-10:]))
        self.rcv.quiet(1.0, "/soc")
        self.assertEqual([c["detail"]["count"] for c in self.corr()], [3])
        self.post(srv, fs[3])                           # the group started over after its hit
        self.rcv.quiet(1.0, "/soc")
        self.assertEqual(len(self.corr()), 1)

    def test_timer_hit_whose_commit_fails_is_not_lost(self):
        srv = Server(self, self.config(lateness="1s"), files={"sigma/login.yml": LONE_FAILURE,
                                                              "sigma/ct.yml": STOP_LOGGING}).start()
        self.fill(srv)
        f = login_failure("198.51.100.30", iso_now())
        self.post(srv, f)                               # no alert of its own: stored
        # the window closes (2s + 1s lateness) while the target is full: the hit cannot be stored
        srv.wait_log("cannot store Sigma correlation alerts; their windows are closed again on the next tick",
                     timeout=15)
        time.sleep(0.5)
        self.assertEqual(self.corr(), [])
        # a crash while the hit waits: the open window is in the saved state and closes after the start
        srv.kill9()
        self.rcv.set_default("/soc", twserve.Response(200, b"ok"))
        srv.start()
        twserve.wait_until(lambda: len(self.corr()) == 1, 20, what="the correlation alert")
        self.rcv.quiet(1.5, "/soc")
        c = self.corr()
        self.assertEqual(len(c), 1, c)
        self.assertEqual((c[0]["detail"]["name"], c[0]["detail"]["count"]), ("lone_failure", 1))
        self.assertEqual(c[0]["detail"]["events"], [f["eventID"]])

    def test_timer_hit_is_stored_once_the_target_has_room(self):
        srv = Server(self, self.config(lateness="1s"), files={"sigma/login.yml": LONE_FAILURE,
                                                              "sigma/ct.yml": STOP_LOGGING}).start()
        self.fill(srv)
        self.post(srv, login_failure("198.51.100.31", iso_now()))
        srv.wait_log("cannot store Sigma correlation alerts; their windows are closed again on the next tick",
                     timeout=15)
        self.drain(srv)
        twserve.wait_until(lambda: len(self.corr()) == 1, 10, what="the correlation alert")
        self.rcv.quiet(1.0, "/soc")
        self.assertEqual(len(self.corr()), 1)
        self.assertEqual(srv.metric("trailwatch_sigma_correlation_hits_total"), 1)
        # ticks that failed to store it were not counted as matches
        self.assertEqual(srv.metric("trailwatch_rule_matches_total", rule="lone_failure"), 1)



class TestCorrelationFullDisk(SigmaServe):
    """The same with a full disk, simulated by a file size limit on the running server (RLIMIT_FSIZE 0:
    every write that would grow a file fails, as with ENOSPC; serve ignores SIGXFSZ): the outbox commit
    fails with a disk I/O error (HTTP 500), the sender sends again."""

    def config(self, **sigma):
        s = {"paths": ["sigma/"], "targets": ["soc"], "save_interval": "200ms"}
        s.update(sigma)
        return {"targets": {"soc": self.hook("/soc")}, "sigma": s}

    def full(self, srv, on):
        lim = (0, resource.RLIM_INFINITY) if on else (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
        resource.prlimit(srv.proc.pid, resource.RLIMIT_FSIZE, lim)

    def corr(self):
        return [r.json() for r in self.rcv.requests("/soc") if r.json().get("detail-type") == "Sigma Correlation"]

    def test_retries_while_the_disk_is_full_count_once(self):
        srv = Server(self, self.config(), files={"sigma/login.yml": FAILED_LOGIN, "sigma/ct.yml": STOP_LOGGING}).start()
        self.post(srv, record("StopLogging"))
        self.rcv.wait_for(1, 10, "/soc")
        fs = [login_failure("203.0.113.40", "2026-12-06T10:00:%02dZ" % i) for i in (1, 2, 3)]
        batch = [fs[0], fs[1], record("StopLogging")]
        self.full(srv, True)
        for _ in range(3):                              # the sender keeps trying
            st, body = srv.post_events(batch)
            self.assertEqual(st, 500, body)
            self.assertIn("disk I/O error", body["error"])
        self.full(srv, False)
        self.post(srv, *batch)
        self.rcv.wait_for(2, 10, "/soc")
        time.sleep(1.0)
        self.assertEqual(self.corr(), [])               # two failures, not eight
        self.post(srv, fs[2])
        twserve.wait_until(lambda: len(self.corr()) == 1, 10, what="the correlation alert; metrics %s; logs %s" % (
            {k: v for k, v in srv.metrics().items() if "sigma" in k[0] or "outbox" in k[0]}, srv.logs()[-10:]))
        self.rcv.quiet(1.0, "/soc")
        self.assertEqual([c["detail"]["count"] for c in self.corr()], [3])

    def test_state_file_that_cannot_open_is_tried_again(self):
        # sigma-state.db cannot be opened (a directory stands in its way): alerting goes on, the error is
        # logged, and the correlator opens as soon as it can (it was tried only once, at the first event)
        srv = Server(self, self.config(), files={"sigma/login.yml": FAILED_LOGIN, "sigma/ct.yml": STOP_LOGGING,
                                                 "var/sigma-state.db/in-the-way": ""}).start()
        srv.wait_log("Sigma correlations cannot run; trying again")
        self.post(srv, record("StopLogging"), login_failure("203.0.113.41", "2026-12-06T10:00:00Z"))
        self.rcv.wait_for(1, 10, "/soc")
        shutil.rmtree(srv.path("var", "sigma-state.db"))
        self.post(srv, *[login_failure("203.0.113.41", "2026-12-06T10:00:%02dZ" % i) for i in (1, 2, 3)])
        twserve.wait_until(lambda: len(self.corr()) == 1, 10, what="the correlation alert")
        self.assertEqual(self.corr()[0]["detail"]["count"], 3)
        self.assertTrue(os.path.isfile(srv.path("var", "sigma-state.db")))

    def test_timer_hit_waits_for_the_disk(self):
        srv = Server(self, self.config(lateness="1s"), files={"sigma/login.yml": LONE_FAILURE}).start()
        self.post(srv, login_failure("198.51.100.40", iso_now()))
        self.full(srv, True)
        srv.wait_log("cannot store Sigma correlation alerts; their windows are closed again on the next tick",
                     timeout=15)
        time.sleep(0.5)
        self.full(srv, False)
        twserve.wait_until(lambda: len(self.corr()) == 1, 10, what="the correlation alert")
        self.rcv.quiet(1.0, "/soc")
        self.assertEqual([(c["detail"]["name"], c["detail"]["count"]) for c in self.corr()], [("lone_failure", 1)])


if __name__ == "__main__":
    unittest.main()
