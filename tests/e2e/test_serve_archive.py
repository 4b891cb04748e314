"""End-to-end: the archive inside `trailwatch serve` (issue #8): every event that passes through serve is
archived by a writer thread that never holds up alerts; GET /api/events, /api/who/RESOURCE and
/api/events/timeline answer from it with the API's access control; `trailwatch replay` runs archived
events through rules (dry run counts checked against an independent Python matcher) and --deliver sends
their alerts without archiving them again; a full disk stops archiving, never alerts.

Real parts only: the real binary, the AWS CLI / boto3 for PutEvents, a local HTTP receiver, SQLite on
disk."""
import gzip
import json
import os
import random
import string
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

import twserve
from twserve import AKID, REGION, SECRET, Receiver, Server, wait_until

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "bench"))
import pymatch  # noqa: E402  (bench/pymatch.py: an independent EventBridge matcher)


def config(rcv, archive=None, rules=None, **server):
    srv = {"listen": "127.0.0.1:0"}
    srv.update(server)
    cfg = {
        "server": srv,
        "targets": {"hook": {"kind": "webhook", "url": rcv.url("/hook"), "timeout": "2s",
                             "retry": {"base": "100ms", "cap": "1s"}}},
        "rules": rules if rules is not None else
        [{"name": "marked", "pattern": {"detail": {"marker": ["alert-me"]}}, "targets": ["hook"]}],
    }
    if archive is not None:
        cfg["archive"] = archive
    return cfg


def records(n=None, pred=None):
    return twserve.cloudtrail_records(n, pred)


def put_entries(srv, entries):
    """PutEvents through boto3 (entries as the API takes them)."""
    twserve.need_boto3()
    c = srv.boto3()
    out = []
    for i in range(0, len(entries), 10):
        r = c.put_events(Entries=entries[i:i + 10])
        assert r["FailedEntryCount"] == 0, r
        out += [e["EventId"] for e in r["Entries"]]
    return out


def need_cli(cmd):
    """The archive's own commands land separately (helper "archive"): until then these checks wait."""
    p = subprocess.run([twserve.tw_bin(), cmd, "--help"], capture_output=True, text=True)
    if p.returncode != 0:
        raise unittest.SkipTest("`trailwatch %s` is not in this build yet" % cmd)


def get_json(srv, path, headers=None):
    st, _, body = srv.request("GET", path, headers=headers)
    try:
        return st, json.loads(body)
    except ValueError:
        return st, body


def q(**params):
    return "?" + urllib.parse.urlencode(params)


class ArchiveCase(unittest.TestCase):
    """One server with the archive on (the default) and a receiver."""

    @classmethod
    def setUpClass(cls):
        cls.rcv = Receiver().start()
        cls.srv = Server(None, config(cls.rcv)).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.srv.stop()
        finally:
            cls.srv.cleanup()
            cls.rcv.stop()

    def setUp(self):
        self.assertTrue(self.srv.alive(), self.srv.stderr()[-4000:])

    def archived(self, n, timeout=15):
        self.srv.wait_metric("trailwatch_archive_events_total", n, timeout)


class TestArchiveApi(ArchiveCase):
    def test_put_events_are_found_by_api_events_and_trailwatch_query(self):
        tag = "t%d" % random.randrange(1 << 30)
        base = self.srv.metric("trailwatch_archive_events_total")
        entries = [{"Source": "app.orders", "DetailType": "OrderPlaced", "Detail": json.dumps({"tag": tag, "n": i}),
                    "Resources": ["arn:aws:dynamodb:us-east-1:123456789012:table/orders"]} for i in range(12)]
        ids = put_entries(self.srv, entries)
        self.archived(base + 12)
        st, r = get_json(self.srv, "/api/events" + q(pattern=json.dumps({"detail": {"tag": [tag]}}), limit=100))
        self.assertEqual(st, 200, r)
        self.assertEqual(sorted(e["id"] for e in r["events"]), sorted(ids))
        self.assertIsNone(r["next"])
        e = r["events"][0]
        for k in ("id", "time", "time_ms", "eventName", "eventSource", "account", "region", "principal",
                  "principalType", "sourceIPAddress", "errorCode", "event"):
            self.assertIn(k, e)
        self.assertEqual(e["event"]["detail"]["tag"], tag)
        self.assertEqual(e["event"]["source"], "app.orders")
        times = [x["time_ms"] for x in r["events"]]
        self.assertEqual(times, sorted(times, reverse=True))          # newest first
    def test_put_events_are_found_by_trailwatch_query(self):
        need_cli("query")
        tag = "q%d" % random.randrange(1 << 30)
        base = self.srv.metric("trailwatch_archive_events_total")
        ids = put_entries(self.srv, [{"Source": "app.q", "DetailType": "Q", "Detail": json.dumps({"tag": tag, "n": i})}
                                     for i in range(12)])
        self.archived(base + 12)
        # the same archive from the command line, while serve writes it
        p = self.srv.tw("query", "-c", self.srv.config_path, "--pattern", json.dumps({"detail": {"tag": [tag]}}),
                        "--format", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        got = [l for l in p.stdout.splitlines() if l.strip()]
        self.assertEqual(len(got), 12, p.stdout)
        self.assertEqual(sorted(i for i in ids if any(i in l for l in got)), sorted(ids))

    def test_paging_covers_everything_once(self):
        tag = "p%d" % random.randrange(1 << 30)
        base = self.srv.metric("trailwatch_archive_events_total")
        ids = put_entries(self.srv, [{"Source": "app.page", "DetailType": "X", "Detail": json.dumps({"tag": tag, "i": i})}
                                     for i in range(23)])
        self.archived(base + 23)
        seen, cursor, pages = [], None, 0
        while True:
            params = {"pattern": json.dumps({"detail": {"tag": [tag]}}), "limit": 5}
            if cursor:
                params["cursor"] = cursor
            st, r = get_json(self.srv, "/api/events" + q(**params))
            self.assertEqual(st, 200, r)
            self.assertLessEqual(len(r["events"]), 5)
            seen += [e["id"] for e in r["events"]]
            pages += 1
            cursor = r["next"]
            if not cursor:
                break
            self.assertLess(pages, 10)
        self.assertEqual(len(seen), len(set(seen)))
        self.assertEqual(sorted(seen), sorted(ids))
        self.assertGreaterEqual(pages, 5)

    def test_who_and_resource_from_cloudtrail_records(self):
        recs = records(2000)
        # a record that created something: CreateRole, whose answer names the role's ARN
        pick = next((r for r in recs if r.get("eventName") == "CreateRole"
                     and ((r.get("responseElements") or {}).get("role") or {}).get("arn")), None)
        self.assertIsNotNone(pick, "no CreateRole record in the shared data")
        res = pick["responseElements"]["role"]["arn"]
        touching = [r for r in recs if res in json.dumps(r)]
        base = self.srv.metric("trailwatch_archive_events_total")
        st, ans = self.srv.post_events(touching)
        self.assertEqual(st, 200, ans)
        wait_until(lambda: self.srv.metric("trailwatch_archive_events_total") +
                   self.srv.metric("trailwatch_archive_duplicates_total") >= base + 1, 15, what="archived")
        st, r = get_json(self.srv, "/api/who/" + urllib.parse.quote(res, safe=""))
        self.assertEqual(st, 200, r)
        self.assertEqual(r["resource"], res)
        ids = [e["id"] for e in r["entries"]]
        self.assertIn(pick["eventID"], ids)
        e = r["entries"][ids.index(pick["eventID"])]
        self.assertEqual(e["action"], pick["eventName"])
        self.assertEqual(e["sourceIPAddress"], pick.get("sourceIPAddress"))
        self.assertEqual(e["region"], pick["awsRegion"])
        times = [x["time_ms"] for x in r["entries"]]
        self.assertEqual(times, sorted(times))                          # time order
        st, r = get_json(self.srv, "/api/events" + q(resource=res, limit=1000))
        self.assertEqual(st, 200, r)
        self.assertIn(pick["eventID"], [e["id"] for e in r["events"]])
        st, r = get_json(self.srv, "/api/who/" + urllib.parse.quote("i-doesnotexist00000", safe=""))
        self.assertEqual((st, r["entries"]), (200, []))

    def test_timeline_counts_by_event_name(self):
        tag = "tl%d" % random.randrange(1 << 30)
        base = self.srv.metric("trailwatch_archive_events_total")
        put_entries(self.srv, [{"Source": "app.tl", "DetailType": "X", "Detail": json.dumps({"tag": tag})}
                               for _ in range(7)])
        self.archived(base + 7)
        now = int(time.time() * 1000)
        st, r = get_json(self.srv, "/api/events/timeline" + q(**{"from": now - 3600000, "to": now + 60000,
                                                                  "step": "minute"}))
        self.assertEqual(st, 200, r)
        self.assertEqual(r["step_ms"], 60000)
        total = sum(n for s in r["series"] for _, n in s["points"])
        self.assertGreaterEqual(total, 7)
        st, r2 = get_json(self.srv, "/api/events/timeline" + q(**{"from": now - 3600000, "to": now + 60000,
                                                                   "step": "hour", "by": "source"}))
        self.assertEqual(st, 200, r2)
        groups = {s["group"]: s["total"] for s in r2["series"]}
        self.assertGreaterEqual(groups.get("app.tl", 0), 7, r2)

    def test_timeline_counts_equal_what_query_returns(self):
        """The timeline (the archive's counts rollup, #12) against the events /api/events returns for the
        same range, bucketed and grouped here: every step and grouping, ranges cut mid-minute."""
        import datetime
        twserve.need_boto3()
        rng = random.Random(12)
        base = self.srv.metric("trailwatch_archive_events_total")
        now_s = int(time.time())
        entries = []
        for i in range(300):
            t = now_s - rng.randrange(3 * 3600)
            entries.append({"Source": rng.choice(["app.tla", "app.tlb", "app.tlc"]), "DetailType": "T",
                            "Detail": json.dumps({"i": i}),
                            "Time": datetime.datetime.fromtimestamp(t, datetime.timezone.utc)})
        put_entries(self.srv, entries)
        self.archived(base + 300)
        frm, to = (now_s - 3 * 3600 - 1800) * 1000 + 12345, (now_s - 600) * 1000 + 777
        events, cursor = [], None
        while True:
            params = {"from": frm, "to": to, "limit": 1000}
            if cursor:
                params["cursor"] = cursor
            st, r = get_json(self.srv, "/api/events" + q(**params))
            self.assertEqual(st, 200, r)
            events += r["events"]
            cursor = r["next"]
            if not cursor:
                break
        self.assertGreater(len(events), 200)
        group_of = {"source": lambda e: e["event"].get("source") or "", "account": lambda e: e["account"] or "",
                    "region": lambda e: e["region"] or "", "event_name": lambda e: e["eventName"] or "",
                    None: lambda e: "total"}
        for step, step_ms in (("minute", 60000), ("hour", 3600000), ("420000", 420000), ("day", 86400000)):
            for by in (None, "source", "account", "region", "event_name"):
                want = {}
                for e in events:
                    k = (group_of[by](e), e["time_ms"] // step_ms * step_ms)
                    want[k] = want.get(k, 0) + 1
                params = {"from": frm, "to": to, "step": step}
                if by:
                    params["by"] = by
                st, r = get_json(self.srv, "/api/events/timeline" + q(**params))
                self.assertEqual(st, 200, r)
                got = {(s["group"], t): n for s in r["series"] for t, n in s["points"]}
                self.assertEqual(got, want, (step, by))

    def test_bad_parameters_are_400_naming_the_parameter(self):
        cases = [
            ("/api/events?limit=0", "limit"),
            ("/api/events?limit=5000", "limit"),
            ("/api/events?limit=ten", "limit"),
            ("/api/events" + q(pattern='{"detail": {"eventName": "RunInstances"}}'), "pattern"),
            ("/api/events" + q(pattern="{not json"), "pattern"),
            ("/api/events?from=yesterday", "from"),
            ("/api/events?since=7%20days", "since"),
            ("/api/events?from=2026-01-02&to=2026-01-01", "from"),
            ("/api/events?cursor=%00garbage", "cursor"),
            ("/api/events/timeline?step=second", "step"),
            ("/api/events/timeline?by=colour", "by"),
            ("/api/events/timeline" + q(pattern='{"source": ["aws.ec2"]}'), "pattern"),
            ("/api/events/timeline?who=alice", "who"),
            ("/api/events/timeline?from=946684800000&to=4000000000000&step=minute", "buckets"),
        ]
        for path, word in cases:
            st, r = get_json(self.srv, path)
            self.assertEqual(st, 400, (path, r))
            self.assertIn(word, r["error"], (path, r))
        st, r = get_json(self.srv, "/api/events", headers=None)
        self.assertEqual(st, 200, r)
        st, _, _ = self.srv.request("DELETE", "/api/events")
        self.assertEqual(st, 405)

    def test_metrics(self):
        m = self.srv.metrics_text()
        for name in ("trailwatch_archive_events_total", "trailwatch_archive_queue_events",
                     "trailwatch_archive_queue_bytes", "trailwatch_archive_up", "trailwatch_archive_dropped_total",
                     "trailwatch_archive_errors_total"):
            self.assertIn(name, m)
        self.assertEqual(self.srv.metric("trailwatch_archive_up"), 1)


class TestRetention(unittest.TestCase):
    def test_events_older_than_retention_are_pruned(self):
        rcv = Receiver().start()
        self.addCleanup(rcv.stop)
        s = Server(self, config(rcv)).start()          # kept forever first
        old = records(50)                               # recorded years ago: older than 30 days
        st, ans = s.post_events(old)
        self.assertEqual(st, 200, ans)
        fresh = put_entries(s, [{"Source": "app.fresh", "DetailType": "X", "Detail": "{}"} for _ in range(3)])
        s.wait_metric("trailwatch_archive_events_total", len({r["eventID"] for r in old}) + 3)
        s.stop()
        s.write_config(config(rcv, archive={"retention": "30d"}))
        s.start()                                       # pruning runs at start, then hourly
        s.wait_metric("trailwatch_archive_pruned_total", len({r["eventID"] for r in old}), 15)
        st, r = get_json(s, "/api/events" + q(**{"from": "2000-01-01", "limit": 1000}))
        self.assertEqual(st, 200, r)
        self.assertEqual(sorted(e["id"] for e in r["events"]), sorted(fresh))


class TestDamagedArchive(unittest.TestCase):
    def test_a_damaged_archive_is_reported_and_alerts_still_go_out(self):
        rcv = Receiver().start()
        self.addCleanup(rcv.stop)
        s = Server(self, config(rcv), files={"var/archive.db": b"this is not an archive\n" * 200})
        s.start()
        s.wait_log("archiving is off: the archive cannot be opened (alerts are not affected; fix or move the file "
                   "and restart, or set archive.enabled: false)")
        self.assertEqual(s.metric("trailwatch_archive_up"), 0)
        put_entries(s, [{"Source": "app.alert", "DetailType": "A", "Detail": json.dumps({"marker": "alert-me"})}])
        rcv.wait_for(1, 15, "/hook")
        st, r = get_json(s, "/api/events")
        self.assertEqual(st, 503, r)
        self.assertIn("archive", r["error"])


class TestConcurrent(unittest.TestCase):
    def test_serve_ingest_and_query_at_the_same_time(self):
        """serve archives PutEvents while `trailwatch ingest` writes CloudTrail records into the same
        archive and `trailwatch query` reads it: nothing fails, nothing is lost."""
        need_cli("query")
        need_cli("ingest")
        rcv = Receiver().start()
        self.addCleanup(rcv.stop)
        s = Server(self, config(rcv)).start()
        recs, seen = [], set()
        for r in records(4000):
            if r["eventID"] not in seen:
                seen.add(r["eventID"])
                recs.append(r)
        recs = recs[:1500]
        lines = s.write("records.jsonl", "".join(json.dumps(r) + "\n" for r in recs))
        tag = "c%d" % random.randrange(1 << 30)
        errors, sent = [], []

        def put():
            try:
                for i in range(30):
                    sent.extend(put_entries(s, [{"Source": "app.conc", "DetailType": "X",
                                                 "Detail": json.dumps({"tag": tag, "i": i, "k": k})} for k in range(10)]))
            except Exception as e:                 # reported below
                errors.append(e)

        def query():
            for _ in range(5):
                p = s.tw("query", "-c", s.config_path, "--since", "1h", "--limit", "50", "--format", "json")
                if p.returncode not in (0, 1):
                    errors.append(AssertionError("query: %d %s" % (p.returncode, p.stderr)))

        threads = [threading.Thread(target=put), threading.Thread(target=query)]
        for t in threads:
            t.start()
        ing = s.tw("ingest", "-c", s.config_path, "--quiet", lines, timeout=120)
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        self.assertEqual(ing.returncode, 0, ing.stderr)
        s.wait_metric("trailwatch_archive_events_total", len(sent), 20)
        p = s.tw("query", "-c", s.config_path, "--pattern", json.dumps({"detail": {"tag": [tag]}}), "--limit", "0",
                 "--format", "json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len([l for l in p.stdout.splitlines() if l.strip()]), len(sent))
        p = s.tw("query", "-c", s.config_path, "--from", "2000-01-01", "--to", "2030-01-01", "--limit", "0",
                 "--format", "json", "--pattern", json.dumps({"detail": {"eventID": [{"exists": True}]},
                                                              "source": [{"anything-but": "app.conc"}]}))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertGreaterEqual(len([l for l in p.stdout.splitlines() if l.strip()]), len(recs))
        self.assertEqual(s.metric("trailwatch_archive_dropped_total", reason="write_failed"), 0)


class TestArchiveAccess(unittest.TestCase):
    def test_keys_required_when_configured(self):
        rcv = Receiver().start()
        self.addCleanup(rcv.stop)
        cfg = config(rcv)
        cfg["server"]["access_keys"] = [{"id": AKID, "secret": SECRET}]
        s = Server(self, cfg).start()
        put_entries(s, [{"Source": "app.acl", "DetailType": "X", "Detail": "{}"}])
        s.wait_metric("trailwatch_archive_events_total", 1)
        for path in ("/api/events", "/api/who/i-0123", "/api/events/timeline"):
            st, r = get_json(s, path)
            self.assertIn(st, (401, 403), (path, r))
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        for secret, want in ((SECRET, 200), ("not-the-secret", 403)):
            req = AWSRequest(method="GET", url=s.url + "/api/events")
            SigV4Auth(Credentials(AKID, secret), "events", REGION).add_auth(req)
            st, r = get_json(s, "/api/events", headers=dict(req.headers.items()))
            self.assertEqual(st, want, r)
        self.assertEqual(len(r.get("events", [])) if isinstance(r, dict) else 0, 0)

    def test_no_keys_means_loopback_only(self):
        import http.client
        import socket
        addr = None
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.connect(("192.0.2.1", 9))       # no packet is sent: only picks the outgoing address
                addr = u.getsockname()[0]
        except OSError:
            pass
        if not addr or addr.startswith("127."):
            raise unittest.SkipTest("no non-loopback address on this machine")
        rcv = Receiver().start()
        self.addCleanup(rcv.stop)
        cfg = config(rcv)
        cfg["sources"] = {"eventbridge": False, "http": False}     # what may listen beyond loopback keyless
        s = Server(self, cfg, listen="0.0.0.0:0").start()
        st, r = get_json(s, "/api/events")
        self.assertEqual(st, 200, r)                                # loopback
        c = http.client.HTTPConnection(addr, s.port, timeout=10)
        try:
            c.request("GET", "/api/events")
            resp = c.getresponse()
            body = json.loads(resp.read())
        finally:
            c.close()
        self.assertEqual(resp.status, 403, body)
        self.assertIn("loopback", body["error"])

    def test_archive_off(self):
        rcv = Receiver().start()
        self.addCleanup(rcv.stop)
        s = Server(self, config(rcv, archive={"enabled": False})).start()
        st, r = get_json(s, "/api/events")
        self.assertEqual(st, 404, r)
        self.assertIn("archive", r["error"])
        self.assertNotIn("trailwatch_archive_events_total", s.metrics_text())
        self.assertFalse(os.path.exists(s.path("var", "archive.db")))

    def test_rules_check_describes_the_archive(self):
        rcv = Receiver().start()
        self.addCleanup(rcv.stop)
        s = Server(self, config(rcv, archive={"path": "arch/events.db", "retention": "400d"}))
        p = s.tw("rules", "check", "-c", s.config_path)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("archive: sqlite %s, every event kept for 400d" % s.path("arch", "events.db"), p.stdout)
        s.write_config(config(rcv, archive={"backend": "mysql", "retention": "soon", "colour": 1,
                                            "when_full": "block"}))
        p = s.tw("rules", "check", "-c", s.config_path)
        self.assertNotEqual(p.returncode, 0)
        for word in ("archive.backend", "archive.retention", "colour",
                     'archive.when_full: "block" is not one of wait, drop'):
            self.assertIn(word, p.stderr)
        s.write_config(config(rcv, archive={"when_full": "drop"}))
        p = s.tw("rules", "check", "-c", s.config_path)
        self.assertEqual(p.returncode, 0, p.stderr)
        s.write_config(config(rcv, archive={"backend": "postgres"}))
        p = s.tw("rules", "check", "-c", s.config_path)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("archive.dsn", p.stderr)


def wrapped(rec):
    """The EventBridge event trailwatch matches a CloudTrail record as (the parts the rules below use)."""
    return {"detail": rec}


REPLAY_RULES = [
    {"name": "iam-changes", "pattern": {"detail": {"eventSource": ["iam.amazonaws.com"],
                                                   "eventName": [{"anything-but": {"prefix": "Get"}}]}}},
    {"name": "describes", "pattern": {"detail": {"eventName": [{"prefix": "Describe"}]}}},
    {"name": "errors", "pattern": {"detail": {"errorCode": [{"exists": True}]}}},
    {"name": "console", "pattern": {"detail": {"eventName": ["ConsoleLogin"]}}},
]


class TestReplay(unittest.TestCase):
    N = 400

    @classmethod
    def setUpClass(cls):
        cls.rcv = Receiver().start()
        rules = [dict(r, targets=["hook"]) for r in REPLAY_RULES]
        # serve alerts "early" (another path of the receiver) on the same rules: their events' eventIDs
        # are then in serve's dedup set, which replay --deliver must not drop them by
        early = config(cls.rcv, rules=[dict(r, targets=["early"]) for r in REPLAY_RULES])
        early["targets"]["early"] = {"kind": "webhook", "url": cls.rcv.url("/early"), "timeout": "2s"}
        cls.srv = Server(None, early).start()
        recs, seen = [], set()
        for r in records(3000):
            if r["eventID"] not in seen:
                seen.add(r["eventID"])
                recs.append(r)
        random.Random(8).shuffle(recs)
        cls.recs = recs[:cls.N]
        st, ans = cls.srv.post_events(cls.recs)
        assert st == 200, ans
        cls.expect = {r["name"]: sum(1 for e in cls.recs if pymatch.matches(r["pattern"], wrapped(e)))
                      for r in REPLAY_RULES}
        cls.rcv.wait_for(sum(cls.expect.values()), 30, "/early")
        cls.srv.stop()          # SIGTERM writes what the archive queue holds
        cls.srv.write_config(config(cls.rcv, rules=rules))

    @classmethod
    def tearDownClass(cls):
        cls.srv.cleanup()
        cls.rcv.stop()

    def replay(self, *args):
        return self.srv.tw("replay", "-c", self.srv.config_path, "--from", "2000-01-01", "--json", *args,
                           timeout=120)

    def archive_count(self):
        """Events in the archive: what a dry run over all time reads."""
        rf = self.srv.write("all.json", json.dumps({"all": {"detail": {"eventID": [{"exists": True}]}}}))
        p = self.srv.tw("replay", "--rules", rf, "--archive", self.srv.path("var", "archive.db"),
                        "--from", "2000-01-01", "--json")
        self.assertIn(p.returncode, (0, 1), p.stderr)
        return json.loads(p.stdout)["events"]

    def test_sigterm_flushed_everything(self):
        self.assertEqual(self.archive_count(), self.N)

    def test_dry_run_counts_equal_an_independent_matcher(self):
        p = self.replay()
        self.assertEqual(p.returncode, 0, p.stderr)
        r = json.loads(p.stdout)
        self.assertEqual(r["events"], self.N)
        self.assertEqual(r["invalid"], 0)
        got = {k: v for k, v in r["rules"].items()}
        self.assertEqual(got, {k: v for k, v in self.expect.items() if v}, p.stdout)
        self.assertEqual(self.rcv.requests("/hook"), [])                 # a dry run sends nothing
        # a rule file instead of the configuration's rules
        rf = self.srv.write("rules.json", json.dumps({r["name"]: r["pattern"] for r in REPLAY_RULES[:2]}))
        p = self.srv.tw("replay", "--rules", rf, "--archive", self.srv.path("var", "archive.db"),
                        "--from", "2000-01-01", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["rules"], {k: self.expect[k] for k in ("iam-changes", "describes")
                                                        if self.expect[k]})
        # a human report
        p = self.srv.tw("replay", "-c", self.srv.config_path, "--from", "2000-01-01")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("%d archived events replayed" % self.N, p.stdout)

    def test_sigma_dry_run(self):
        rule = "\n".join([
            "title: Describe calls", "id: 7d3b6c1e-0a52-4c8e-9a57-3f1f0b6a9e11", "status: test",
            "logsource: {product: aws, service: cloudtrail}", "detection:", "  selection:",
            "    eventName|startswith: Describe", "  condition: selection",
            "level: medium", ""])
        path = self.srv.write("sigma/describes.yml", rule)
        want = sum(1 for r in self.recs if r.get("eventName", "").startswith("Describe"))
        self.assertGreater(want, 0)
        p = self.srv.tw("replay", "--sigma", path, "--archive", self.srv.path("var", "archive.db"),
                        "--from", "2000-01-01", "--json")
        self.assertIn(p.returncode, (0, 1), p.stderr)
        r = json.loads(p.stdout)
        self.assertEqual(r["events"], self.N)
        self.assertEqual(sum(r["rules"].values()), want, p.stdout)

    def test_deliver_sends_alerts_not_deduplicated_and_not_archived_again(self):
        before = self.archive_count()
        # the serve data dir itself: its dedup set holds the eventIDs of every event it alerted on
        p = self.replay("--deliver", "--data-dir", self.srv.path("var"))
        self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
        want = sum(self.expect.values())
        got = self.rcv.wait_for(want, 60, "/hook")
        self.rcv.quiet(1.0, "/hook")
        self.assertEqual(len(self.rcv.requests("/hook")), want)
        self.assertEqual(json.loads(p.stdout)["alerts_pending"], 0)
        ids = {json.loads(g.body)["detail"]["eventID"] for g in got}
        self.assertLessEqual(ids, {r["eventID"] for r in self.recs})
        self.assertEqual(self.archive_count(), before)
        self.rcv.clear()

    def test_bad_arguments(self):
        for args, word in ((["--since", "forever"], "--since"), (["--from", "2000-01-01", "--since", "1d"], "one of"),
                           ([], "--since"), (["--from", "2000-01-01", "--pattern", "{bad"], "pattern")):
            p = self.srv.tw("replay", "-c", self.srv.config_path, *args)
            self.assertEqual(p.returncode, 2, (args, p.stderr))
            self.assertIn(word, p.stderr)
        p = self.srv.tw("replay", "--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("--deliver", p.stdout)


FSIZE_WRAPPER = r'''#!/usr/bin/env python3
import os, resource, signal, sys
# a "full disk" for files larger than LIMIT bytes: writes past it fail (EFBIG), as on a full file system
limit = int(os.environ["TW_TEST_FSIZE"])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
real = os.environ["TW_TEST_REAL_BIN"]
os.execv(real, [real] + sys.argv[1:])
'''


class TestFullDisk(unittest.TestCase):
    def test_full_disk_stops_archiving_and_alerts_still_go_out(self):
        rcv = Receiver().start()
        self.addCleanup(rcv.stop)
        s = Server(self, config(rcv), env={"TW_TEST_FSIZE": str(3 * 1024 * 1024), "TW_TEST_REAL_BIN": twserve.tw_bin()})
        wrapper = s.write("fsize-wrapper", FSIZE_WRAPPER)
        os.chmod(wrapper, 0o755)
        real = twserve.tw_bin
        twserve.tw_bin = lambda: wrapper
        try:
            s.start()
        finally:
            twserve.tw_bin = real
        rnd = random.Random(5)
        # incompressible events of ~64 KB: the archive outgrows 3 MB after a few dozen
        for i in range(80):
            junk = "".join(rnd.choice(string.ascii_letters + string.digits) for _ in range(64 * 1024))
            put_entries(s, [{"Source": "app.big", "DetailType": "Big", "Detail": json.dumps({"junk": junk, "i": i})}])
            if s.metric("trailwatch_archive_up") == 0:
                break
        s.wait_metric("trailwatch_archive_errors_total", 1, 20, kind="write")
        self.assertEqual(s.metric("trailwatch_archive_up"), 0)
        s.wait_log("archiving stopped: the archive cannot be written (alerts are not affected; events are dropped "
                   "from the archive until it can, tried again every 5 s)", 10, this_run=False)
        # alerts keep flowing
        for i in range(3):
            put_entries(s, [{"Source": "app.alert", "DetailType": "A", "Detail": json.dumps({"marker": "alert-me", "i": i})}])
        got = rcv.wait_for(3, 20, "/hook")
        self.assertEqual(sorted(json.loads(g.body)["detail"]["i"] for g in got), [0, 1, 2])
        self.assertGreater(s.metric("trailwatch_archive_dropped_total", reason="write_failed") +
                           s.metric("trailwatch_archive_dropped_total", reason="queue_full"), 0)


if __name__ == "__main__":
    unittest.main()
