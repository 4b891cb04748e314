"""End-to-end: configuration of `trailwatch serve`: SIGHUP reloads (valid and invalid), start-up with a
broken file, ${VAR} secrets that never show, per-rule storm control, disabled rules."""
import json
import os
import time
import unittest

import twserve
from twserve import Receiver, Response, Server

FAST_RETRY = {"base": "100ms", "cap": "1s"}


def put(srv, *entries):
    st, _, b = srv.api("PutEvents", {"Entries": [dict(Source=s, DetailType=d, Detail=json.dumps(x))
                                                 for s, d, x in entries]})
    assert st == 200 and b["FailedEntryCount"] == 0, b
    return [e["EventId"] for e in b["Entries"]]


class ConfigCase(unittest.TestCase):
    def setUp(self):
        self.rcv = Receiver().start()
        self.addCleanup(self.rcv.stop)

    def hook(self, path, **kw):
        t = {"kind": "webhook", "url": self.rcv.url(path), "retry": FAST_RETRY}
        t.update(kw)
        return t


class TestReload(ConfigCase):
    def base(self):
        return {"server": {"listen": "127.0.0.1:0"},
                "targets": {"a": self.hook("/a"), "b": self.hook("/b")},
                "rules": [{"name": "rule-a", "pattern": {"source": ["src.a"]}, "targets": ["a"]}]}

    def test_valid_reload_takes_effect(self):
        srv = Server(self, self.base()).start()
        put(srv, ("src.a", "d", {}), ("src.b", "d", {}))
        self.rcv.wait_for(1, 10, "/a")
        srv.wait_metric("trailwatch_deliveries_total", 1, target="a", outcome="delivered")   # nothing in flight
        cfg = self.base()
        cfg["rules"].append({"name": "rule-b", "pattern": {"source": ["src.b"]}, "targets": ["b"]})
        cfg["rules"][0]["targets"] = ["a", "b"]
        srv.write_config(cfg)
        srv.sighup()
        rec = srv.wait_log("configuration reloaded")
        self.assertEqual((rec["rules"], rec["targets"]), ("2", "2"))
        self.assertEqual(srv.metric("trailwatch_rule_matches_total", rule="rule-b"), 0)   # its series exists
        self.assertIn('rule="rule-b"', srv.metrics_text())
        put(srv, ("src.a", "d", {"n": 2}), ("src.b", "d", {"n": 3}))
        self.rcv.wait_for(2, 10, "/a")
        got = self.rcv.wait_for(2, 10, "/b")
        self.assertEqual(sorted(r.json()["detail"]["n"] for r in got), [2, 3])
        self.assertTrue(srv.alive())

    def test_invalid_reload_keeps_the_running_configuration(self):
        srv = Server(self, self.base()).start()
        broken = [
            ("rules: [\n  {name: x\n", "trailwatch.yml:"),                                   # broken YAML
            (json.dumps(dict(self.base(), rules=[{"name": "r", "pattern": {"source": ["x"]},
                                                  "targets": ["nope"]}])), 'unknown target "nope"'),
            (json.dumps(dict(self.base(), targets={"a": {"kind": "slak", "url": "http://x"}})), 'unknown kind "slak"'),
            (json.dumps(dict(self.base(), targets={"a": {"kind": "webhook", "url": "${UNSET_VAR_FOR_TEST}"}})),
             "environment variable UNSET_VAR_FOR_TEST is not set"),
            (json.dumps(dict(self.base(), server={"listen": "127.0.0.1:1"})), "server.listen cannot change on reload"),
            (json.dumps(dict(self.base(), sources={"folder": "logs"})), "sources.folder cannot change on reload"),
            (None, "trailwatch.yml"),                                                        # the file is gone
        ]
        for text, why in broken:
            before = len(srv.logs(this_run=True))
            if text is None:
                os.remove(srv.config_path)
            else:
                srv.write_config(text)
            srv.sighup()
            twserve.wait_until(lambda: any(why in str(l.get("error", "")) for l in srv.logs(this_run=True)[before:]),
                               10, what="reload error %r; stderr:\n%s" % (why, srv.stderr()[-2000:]))
            errors = [l for l in srv.logs(this_run=True)[before:] if l.get("level") == "error"]
            self.assertTrue(all(l["msg"] == "reload: invalid configuration" for l in errors), errors)
            self.assertFalse(any(l.get("msg") == "configuration reloaded" for l in srv.logs(this_run=True)[before:]))
            # still the old configuration, still running
            self.rcv.clear()
            put(srv, ("src.a", "d", {"after": why}))
            self.assertEqual(self.rcv.wait_for(1, 10, "/a")[0].json()["detail"], {"after": why})
            self.assertTrue(srv.alive())
        self.assertTrue(any("line 2" in l.get("error", "") or "trailwatch.yml:2" in l.get("error", "")
                            or "trailwatch.yml:3" in l.get("error", "") for l in srv.logs()), srv.stderr())
        # a valid file again is taken
        srv.write_config(self.base())
        srv.sighup()
        srv.wait_log("configuration reloaded")

    def test_reload_changes_a_pending_alerts_destination(self):
        # a rotated webhook URL: alerts still being retried go to the new one (the URL is read at send time)
        self.rcv.set_default("/old", Response(503, "down"))
        cfg = {"server": {"listen": "127.0.0.1:0"}, "targets": {"t": self.hook("/old")},
               "rules": [{"name": "r", "pattern": {"source": ["s"]}, "targets": ["t"]}]}
        srv = Server(self, cfg).start()
        [eid] = put(srv, ("s", "d", {}))
        self.rcv.wait_for(2, 10, "/old")
        cfg["targets"]["t"]["url"] = self.rcv.url("/new")
        srv.write_config(cfg)
        srv.sighup()
        srv.wait_log("configuration reloaded")
        self.assertEqual(self.rcv.wait_for(1, 10, "/new")[0].json()["id"], eid)


    def test_reload_removing_a_target_keeps_its_alerts(self):
        # alerts waiting for a target that a reload removes become dead letters: nothing is lost, and
        # they can be sent again once the target is back
        self.rcv.set_default("/x", Response(503, "down"))
        cfg = {"server": {"listen": "127.0.0.1:0"}, "targets": {"x": self.hook("/x")},
               "rules": [{"name": "r", "pattern": {"source": ["s"]}, "targets": ["x"]}]}
        srv = Server(self, cfg).start()
        ids = put(srv, ("s", "d", {"i": 1}), ("s", "d", {"i": 2}))
        self.rcv.wait_for(2, 10, "/x")
        srv.write_config({"server": {"listen": "127.0.0.1:0"}, "targets": {"y": self.hook("/y")},
                          "rules": [{"name": "r2", "pattern": {"source": ["s"]}, "targets": ["y"]}]})
        srv.sighup()
        srv.wait_log("configuration reloaded")
        srv.wait_metric("trailwatch_deliveries_total", 2, target="x", outcome="dead")
        rows = [json.loads(l) for l in srv.dlq("list", "--json").stdout.splitlines()]
        self.assertEqual([r["reason"] for r in rows], ["the target is no longer configured"] * 2)
        srv.write_config(cfg)
        srv.sighup()
        twserve.wait_until(lambda: len([l for l in srv.logs() if l.get("msg") == "configuration reloaded"]) == 2, 10)
        self.rcv.set_default("/x", Response(200, "ok"))
        self.rcv.clear()
        self.assertEqual(srv.dlq("redrive", "--all").stdout.strip(), "redrove 2 dead letters")
        self.assertEqual({r.json()["id"] for r in self.rcv.wait_for(2, 10, "/x")}, set(ids))


class TestReloadUnderLoad(ConfigCase):
    def test_many_reloads_while_events_flow(self):
        import threading
        cfg1 = {"server": {"listen": "127.0.0.1:0"}, "targets": {"t": self.hook("/t")},
                "rules": [{"name": "r", "pattern": {"source": ["load"]}, "targets": ["t"]}]}
        cfg2 = json.loads(json.dumps(cfg1))
        cfg2["targets"]["u"] = self.hook("/u")
        cfg2["rules"].append({"name": "extra", "pattern": {"source": ["never"]}, "targets": ["u"]})
        srv = Server(self, cfg1).start()
        ids, stop, errors = [], threading.Event(), []

        def client():
            n = 0
            while not stop.is_set() and n < 400:
                try:
                    ids.extend(put(srv, *[("load", "d", {"n": n + i}) for i in range(5)]))
                except Exception as e:          # reported below
                    errors.append(repr(e))
                    return
                n += 5
        t = threading.Thread(target=client)
        t.start()
        for i in range(20):
            srv.write_config(cfg2 if i % 2 == 0 else cfg1)
            srv.sighup()
            time.sleep(0.15)
        stop.set()
        t.join(30)
        self.assertEqual(errors, [])
        srv.check_alive()
        self.assertGreater(len(ids), 0)
        got = self.rcv.wait_for(len(ids), 30, "/t", server=srv)
        self.assertEqual({r.json()["id"] for r in got}, set(ids))
        self.assertGreaterEqual(len([l for l in srv.logs() if l.get("msg") == "configuration reloaded"]), 2)


class TestBrokenFiles(ConfigCase):
    def check(self, text, *wanted, env=None):
        srv = Server(self, text, env=env)
        with self.assertRaises(twserve.ServerFailed) as cm:
            srv.start(timeout=15)
        self.assertEqual(srv.proc.returncode, 2, srv.stderr())     # an error exit, not a crash
        out = str(cm.exception)
        for w in wanted:
            self.assertIn(w, out)
        p = srv.tw("rules", "check", "-c", srv.config_path)
        self.assertEqual(p.returncode, 2)
        for w in wanted:
            self.assertIn(w, p.stdout + p.stderr)
        return out

    def test_broken_yaml(self):
        out = self.check("server:\n  listen: 127.0.0.1:0\nrules: [\n  {name: x, pattern: {source: [a]}\n",
                         "trailwatch.yml:")
        self.assertRegex(out, r"trailwatch\.yml:\d+")
        self.check("\t- not yaml: [\n", "trailwatch.yml:")
        self.check("- just\n- a list\n", "trailwatch.yml:")

    def test_unknown_targets_kinds_and_keys_all_reported(self):
        text = """server:
  listen: 127.0.0.1:0
  listn: 1
targets:
  log: {kind: file, path: x.jsonl}
  chat: {kind: slak, url: "http://127.0.0.1:9/x"}
rules:
  - name: r1
    pattern: {source: [a]}
    targets: [lgo]
  - name: r2
    pattern: {detail: {eventName: [{prefix: 5}]}}
    targets: [log]
"""
        out = self.check(text, 'trailwatch.yml:3: server: unknown key "listn" (did you mean "listen"?)',
                         'target "chat": unknown kind "slak" (did you mean "slack"?)',
                         'rule "r1": unknown target "lgo" (did you mean "log"?)',
                         'rule "r2": detail.eventName: "prefix" must be a string')
        self.assertIn("4 errors", out)

    def test_no_crash_on_hostile_yaml(self):
        self.check("a: &x [*x]\n", "trailwatch.yml:")                                   # a self-referencing alias
        self.check("rules:\n" + "  - " * 1 + "[" * 3000 + "\n", "trailwatch.yml:")      # deep nesting
        self.check("targets:\n  t: {kind: webhook, url: \"${NOT_SET_ANYWHERE}\"}\n",
                   "environment variable NOT_SET_ANYWHERE is not set")


class TestSecrets(ConfigCase):
    SECRET = "xoxb-SUPER-SECRET-3f9a2b7c"

    def test_env_secrets_never_appear(self):
        s = self.SECRET
        self.rcv.script("/hooks/" + s, Response(500, "oops"))
        self.rcv.set_default("/dead/" + s, Response(404, "no_service"))
        cfg = {"server": {"listen": "127.0.0.1:0"},
               "targets": {
                   "slack": {"kind": "slack", "url": self.rcv.url("/hooks/${SLACK_SECRET}"), "retry": FAST_RETRY,
                             "rate": {"per_second": 0}},
                   "gone": {"kind": "slack", "url": "${DEAD_URL}", "rate": {"per_second": 0}},
                   "api": {"kind": "webhook", "url": self.rcv.url("/api"), "auth": {"bearer": "${SLACK_SECRET}"}},
                   "pd": {"kind": "pagerduty", "url": self.rcv.url("/pd"), "routing_key": "${PD_SECRET}"}},
               "rules": [{"name": "r", "pattern": {"source": ["sec"]}, "targets": ["slack", "gone", "api", "pd"]}]}
        srv = Server(self, cfg, env={"SLACK_SECRET": s, "DEAD_URL": self.rcv.url("/dead/" + s), "PD_SECRET": s[::-1]})
        srv.start()
        put(srv, ("sec", "d", {"x": 1}))
        self.rcv.wait_for(2, 10, "/hooks/" + s)
        self.rcv.wait_for(1, 10, "/dead/" + s)
        self.assertEqual(self.rcv.wait_for(1, 10, "/api")[0].header("Authorization"), "Bearer " + s)
        self.assertEqual(self.rcv.wait_for(1, 10, "/pd")[0].json()["routing_key"], s[::-1])
        srv.wait_metric("trailwatch_deliveries_total", 1, target="gone", outcome="dead")
        srv.wait_metric("trailwatch_deliveries_total", 1, target="slack", outcome="delivered")
        outputs = {
            "dlq list": srv.dlq("list").stdout + srv.dlq("list", "--json").stdout,
            "metrics": srv.metrics_text(),
            "healthz": json.dumps(srv.healthz()),
            "rules check": (lambda p: p.stdout + p.stderr)(srv.tw("rules", "check", "-c", srv.config_path)),
        }
        rows = [json.loads(l) for l in srv.dlq("list", "--json").stdout.splitlines()]
        self.assertEqual(len(rows), 1)
        outputs["dlq show"] = srv.dlq("show", str(rows[0]["id"])).stdout
        self.assertIn("no_service", outputs["dlq show"])
        # a reload that fails on a secret that is not a URL: the error names the setting, not the value
        srv.write_config(dict(cfg, targets=dict(cfg["targets"], bad={"kind": "slack", "url": "${SLACK_SECRET}"})))
        srv.sighup()
        rec = srv.wait_log("reload: invalid configuration")
        self.assertIn("url: must be an http(s) URL", rec["error"])
        p = srv.tw("rules", "check", "-c", srv.config_path)
        self.assertEqual(p.returncode, 2)
        self.assertIn("url: must be an http(s) URL", p.stderr)
        outputs["rules check (bad)"] = p.stdout + p.stderr
        outputs["logs"] = srv.stderr()
        for where, text in outputs.items():
            self.assertNotIn(s, text, where)
            self.assertNotIn(s[::-1], text, where)


class TestStorm(ConfigCase):
    def test_storm_folds_identical_alerts_per_key(self):
        cfg = {"server": {"listen": "127.0.0.1:0"},
               "targets": {"slack": {"kind": "slack", "url": self.rcv.url("/slack"), "rate": {"per_second": 0}},
                           "hook": self.hook("/hook")},
               "rules": [{"name": "param-change", "pattern": {"source": ["aws.ssm"]}, "targets": ["slack", "hook"],
                          "storm": {"keys": ["$.detail.name"], "window": "2s"}},
                         {"name": "no-storm", "pattern": {"source": ["other"]}, "targets": ["hook"]}]}
        srv = Server(self, cfg).start()
        try:
            self.check_storm(srv)
        finally:
            srv.stop()

    def check_storm(self, srv):
        t0 = time.monotonic()
        events = [("aws.ssm", "Parameter Store Change", {"name": "/a", "n": i}) for i in range(5)] + \
                 [("aws.ssm", "Parameter Store Change", {"name": "/b", "n": i}) for i in range(2)] + \
                 [("other", "d", {"n": i}) for i in range(3)]
        put(srv, *events[:10])
        # at once: the first of each key; every event of the rule without storm
        first = self.rcv.wait_for(2, 10, "/slack", server=srv)
        self.assertEqual(sorted(json.loads(r.body)["blocks"][2]["fields"][0]["text"] for r in first),
                         ["*name*\n/a", "*name*\n/b"])
        hooks = self.rcv.wait_for(5, 10, "/hook", server=srv)
        self.assertEqual(sum(1 for r in hooks if r.json()["source"] == "other"), 3)
        # when the window closes: one summary per key that suppressed something
        got = self.rcv.wait_for(4, 10, "/slack", server=srv)
        self.rcv.quiet(1.0, "/slack")
        summaries = got[2:]
        self.assertEqual(len(summaries), 2)
        for r in summaries:
            self.assertGreaterEqual(r.t - t0, 1.9)
        texts = [json.dumps(r.json(), ensure_ascii=False).replace("\\n", "\n") for r in summaries]
        self.assertTrue(any("+4 identical alerts in the last 2s" in t and "/a" in t for t in texts), texts)
        self.assertTrue(any("+1 identical alerts in the last 2s" in t and "/b" in t for t in texts), texts)
        # the summary carries the latest event of its window
        a = [r.json() for r in summaries if "/a" in r.text()][0]
        self.assertIn("*n*\n4", json.dumps(a["blocks"], ensure_ascii=False).replace("\\n", "\n"))
        self.assertEqual(srv.metric("trailwatch_rule_matches_total", rule="param-change"), 7)
        # a new window after the old one closed
        put(srv, ("aws.ssm", "Parameter Store Change", {"name": "/a", "n": 9}))
        self.assertEqual(len(self.rcv.wait_for(5, 10, "/slack", server=srv)), 5)

    def test_storm_without_keys_folds_every_alert_of_the_rule(self):
        cfg = {"server": {"listen": "127.0.0.1:0"},
               "targets": {"hook": self.hook("/hook")},
               "rules": [{"name": "noisy", "pattern": {"source": ["noisy"]}, "targets": ["hook"],
                          "storm": {"window": "1500ms"}}]}
        srv = Server(self, cfg).start()
        try:
            put(srv, *[("noisy", "d", {"i": i}) for i in range(6)])
            got = self.rcv.wait_for(2, 10, "/hook", server=srv)
            self.rcv.quiet(1.0, "/hook")
            self.assertEqual(len(self.rcv.requests("/hook")), 2)      # the first, then one summary
            self.assertEqual(got[0].json()["detail"], {"i": 0})
            self.assertEqual(got[1].json()["detail"], {"i": 5})
        finally:
            srv.stop()


    def test_storm_with_a_long_key_summarises_once(self):
        # A key of 300+ bytes was cut to 255 when its window closed, so the close matched nothing
        # and the window summarised again on every check (11 summaries in 3 s instead of 1).
        cfg = {"server": {"listen": "127.0.0.1:0"},
               "targets": {"hook": self.hook("/hook")},
               "rules": [{"name": "long", "pattern": {"source": ["long"]}, "targets": ["hook"],
                          "storm": {"keys": ["$.detail.name"], "window": "1s"}}]}
        srv = Server(self, cfg).start()
        try:
            name = "n" * 300
            put(srv, *[("long", "d", {"name": name, "i": i}) for i in range(3)])
            got = self.rcv.wait_for(2, 10, "/hook", server=srv)
            self.rcv.quiet(2.0, "/hook")
            self.assertEqual(len(self.rcv.requests("/hook")), 2)      # the first, then one summary
            self.assertEqual(got[1].json()["detail"], {"name": name, "i": 2})
        finally:
            srv.stop()


class TestRulesMisc(ConfigCase):
    def test_disabled_rule_and_severity(self):
        cfg = {"server": {"listen": "127.0.0.1:0"},
               "targets": {"slack": {"kind": "slack", "url": self.rcv.url("/slack"), "rate": {"per_second": 0}}},
               "rules": [{"name": "off", "enabled": False, "pattern": {"source": ["x"]}, "targets": ["slack"]},
                         {"name": "crit", "severity": "critical", "pattern": '{"source": ["x"]}',
                          "targets": ["slack"]}]}
        srv = Server(self, cfg).start()
        put(srv, ("x", "d", {}))
        r = self.rcv.wait_for(1, 10, "/slack")[0].json()
        self.rcv.quiet(1.0, "/slack")
        self.assertEqual(r["blocks"][0]["text"]["text"], ":rotating_light: crit")
        self.assertEqual(srv.metric("trailwatch_rule_matches_total", rule="off"), 0)


if __name__ == "__main__":
    unittest.main()
