"""End-to-end: `trailwatch serve` with `archive: {backend: postgres, dsn: ...}` (issue #13).

Two servers get the same CloudTrail records over POST /events: one archives into PostgreSQL (started
by the test: tests/e2e/twpg.py), the other into its SQLite file. Then everything that reads the
archive must answer alike from both: GET /api/events (every page), GET /api/who/RESOURCE,
`trailwatch query|who|archive stats -c FILE` (the configuration's archive: PostgreSQL for the first,
not DATA_DIR/archive.db), and `trailwatch replay` (dry run counts equal an independent matcher's;
--archive DSN too; --deliver sends the alerts). PostgreSQL holds each record once.

Real parts only: the real binary, PostgreSQL on loopback, a local HTTP receiver.
"""
import json
import os
import random
import sys
import unittest
import urllib.parse

import twpg
from twserve import Receiver, Server, cloudtrail_records

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "bench"))
import pymatch  # noqa: E402  (bench/pymatch.py: an independent EventBridge matcher)

N = 600
RULES = [
    {"name": "iam-changes", "pattern": {"detail": {"eventSource": ["iam.amazonaws.com"],
                                                   "eventName": [{"anything-but": {"prefix": "Get"}}]}}},
    {"name": "describes", "pattern": {"detail": {"eventName": [{"prefix": "Describe"}]}}},
    {"name": "errors", "pattern": {"detail": {"errorCode": [{"exists": True}]}}},
]


def config(rcv, archive):
    return {
        "server": {"listen": "127.0.0.1:0"},
        "targets": {"hook": {"kind": "webhook", "url": rcv.url("/hook"), "timeout": "2s",
                             "retry": {"base": "100ms", "cap": "1s"}}},
        # serve itself alerts nowhere (no rule matches these records); replay uses RULES
        "rules": [{"name": "marked", "pattern": {"detail": {"marker": ["alert-me"]}}, "targets": ["hook"]}],
        "archive": archive,
    }


def get_json(srv, path):
    st, _, body = srv.request("GET", path)
    return st, json.loads(body)


@unittest.skipUnless(twpg.have_postgres(), "PostgreSQL is not installed (scripts/setup-deps)")
class TestServeArchivePostgres(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = twpg.Postgres().start()
        cls.rcv = Receiver().start()
        recs, seen = [], set()
        for r in cloudtrail_records(4000):
            if r["eventID"] not in seen:
                seen.add(r["eventID"])
                recs.append(r)
        random.Random(13).shuffle(recs)
        cls.recs = recs[:N]
        cls.pgsrv = Server(None, config(cls.rcv, {"backend": "postgres", "dsn": cls.pg.dsn}))
        cls.sqsrv = Server(None, config(cls.rcv, {}))
        for s in (cls.pgsrv, cls.sqsrv):
            s.start()
            # in two posts, the second repeating part of the first: repeats are archived once
            st, ans = s.post_events(cls.recs[:400])
            assert st == 200, ans
            st, ans = s.post_events(cls.recs[300:])
            assert st == 200, ans
            s.wait_metric("trailwatch_archive_events_total", N, 30)

    @classmethod
    def tearDownClass(cls):
        for s in (cls.pgsrv, cls.sqsrv):
            try:
                s.stop()
            except Exception:
                pass
            s.cleanup()
        cls.rcv.stop()
        cls.pg.stop()

    def both(self, fn):
        a, b = fn(self.pgsrv), fn(self.sqsrv)
        self.assertEqual(a, b)
        return a

    def test_postgres_holds_each_record_once_and_no_sqlite_file(self):
        self.assertEqual(self.pg.psql("SELECT count(*), count(DISTINCT id) FROM tw_events")[0], [str(N), str(N)])
        self.assertFalse(os.path.exists(self.pgsrv.path("var", "archive.db")))
        self.assertTrue(os.path.exists(self.sqsrv.path("var", "archive.db")))
        self.assertEqual(self.pgsrv.metric("trailwatch_archive_up"), 1)

    def test_api_events_every_page_alike(self):
        def pages(srv):
            out, cursor = [], None
            for _ in range(50):
                params = {"from": "2000-01-01", "limit": 97}
                if cursor:
                    params["cursor"] = cursor
                st, r = get_json(srv, "/api/events?" + urllib.parse.urlencode(params))
                self.assertEqual(st, 200, r)
                out += [(e["id"], e["time_ms"], e["eventName"], e["principal"], json.dumps(e["event"], sort_keys=True))
                        for e in r["events"]]
                cursor = r["next"]
                if not cursor:
                    return out
            self.fail("more pages than events")
        got = self.both(pages)
        self.assertEqual(sorted(g[0] for g in got), sorted(r["eventID"] for r in self.recs))
        # filtered by event name and by a principal's resource
        name = self.recs[0]["eventName"]
        r = self.both(lambda s: get_json(s, "/api/events?" + urllib.parse.urlencode(
            {"from": "2000-01-01", "limit": 1000, "event_name": name})))
        self.assertEqual(r[0], 200, r)
        self.assertEqual(len(r[1]["events"]), sum(1 for x in self.recs if x["eventName"] == name))

    def test_api_who_alike(self):
        resources = []
        for r in self.recs:
            for res in r.get("resources") or []:
                if res.get("ARN") and res["ARN"] not in resources:
                    resources.append(res["ARN"])
        self.assertGreater(len(resources), 5)
        rows = 0
        for res in resources[:25]:
            st, r = self.both(lambda s: get_json(s, "/api/who/" + urllib.parse.quote(res, safe="")))
            self.assertEqual(st, 200, r)
            self.assertEqual(r["resource"], res)
            rows += len(r["entries"])
        self.assertGreater(rows, 25)
        st, r = get_json(self.pgsrv, "/api/who/i-doesnotexist00000")
        self.assertEqual((st, r["entries"]), (200, []))

    def test_cli_with_the_configuration_reads_postgres(self):
        """-c FILE opens the configuration's archive: PostgreSQL here (DATA_DIR/archive.db does not exist)."""
        def cli(s, *args):
            p = s.tw(*args, "-c", s.config_path, timeout=120)
            return p.returncode, p.stdout
        rc, out = self.both(lambda s: cli(s, "query", "--from", "2000-01-01", "--limit", "0", "--format", "json"))
        self.assertEqual(rc, 0)
        self.assertEqual(len(out.splitlines()), N)
        res = next(x["ARN"] for r in self.recs for x in (r.get("resources") or []) if x.get("ARN"))
        rc, out = self.both(lambda s: cli(s, "who", res, "--format", "json"))
        self.assertEqual(rc, 0)
        self.assertGreater(len(out.splitlines()), 0)
        p = self.pgsrv.tw("archive", "stats", "-c", self.pgsrv.config_path, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(str(N), p.stdout.replace(",", ""))
        self.assertFalse(os.path.exists(self.pgsrv.path("var", "archive.db")))

    def test_replay_dry_run_counts_alike_and_right(self):
        rf = self.pgsrv.write("rules.json", json.dumps({r["name"]: r["pattern"] for r in RULES}))
        want = {r["name"]: sum(1 for e in self.recs if pymatch.matches(r["pattern"], {"detail": e})) for r in RULES}
        runs = []
        for args in (["-c", self.pgsrv.config_path], ["--archive", self.pg.dsn], ["-c", self.sqsrv.config_path]):
            p = self.pgsrv.tw("replay", "--rules", rf, *args, "--from", "2000-01-01", "--json", timeout=120)
            self.assertEqual(p.returncode, 0, (args, p.stderr))
            runs.append(json.loads(p.stdout))
        for r in runs:
            self.assertEqual(r["events"], N)
            self.assertEqual(r["rules"], {k: v for k, v in want.items() if v})
        self.assertGreater(sum(want.values()), 0)

    def test_replay_deliver_from_postgres(self):
        cfg = config(self.rcv, {"backend": "postgres", "dsn": self.pg.dsn})
        cfg["rules"] = [dict(RULES[1], targets=["hook"])]
        want = sum(1 for e in self.recs if pymatch.matches(RULES[1]["pattern"], {"detail": e}))
        self.assertGreater(want, 0)
        s = Server(self, cfg)
        self.rcv.clear()
        p = s.tw("replay", "-c", s.config_path, "--from", "2000-01-01", "--deliver", "--json", timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr + p.stdout)
        got = self.rcv.wait_for(want, 60, "/hook")
        self.rcv.quiet(1.0, "/hook")
        self.assertEqual(len(self.rcv.requests("/hook")), want)
        self.assertEqual({json.loads(g.body)["detail"]["eventID"] for g in got},
                         {e["eventID"] for e in self.recs if pymatch.matches(RULES[1]["pattern"], {"detail": e})})
        # replayed events are not archived again
        self.assertEqual(self.pg.psql("SELECT count(*) FROM tw_events")[0][0], str(N))
        self.rcv.clear()


if __name__ == "__main__":
    unittest.main()
