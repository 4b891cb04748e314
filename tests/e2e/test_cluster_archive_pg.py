"""Cluster mode archiving into ONE shared PostgreSQL (issue #13), end to end: a real nats-server
(JetStream), two trailwatch ingest nodes and three workers, every worker's archive the same
PostgreSQL database (started by the test: tests/e2e/twpg.py), beside a single serve archiving the
same CloudTrail records into SQLite.

- The same records arrive by two paths (POST /events on ingest A, a CloudTrail log file in ingest
  B's folder) with the stream's duplicate window at its minimum (1 s), so the second path's copies
  are published again and reach the workers: the archive itself must keep each event once (a
  worker's own dedup, or the PostgreSQL writers' id lookup under their shared lock when another
  worker archived it). PostgreSQL holds each record once; the workers' archived counters add up
  to the records.
- What the cluster's PostgreSQL answers equals what a SQLite archive holding the same data answers
  (a node of role both on its own NATS, given the same records, archiving into its SQLite file):
  GET /api/events (every page) and /api/who/RESOURCE on a worker against that node, and
  `trailwatch query` / `who` with --archive DSN against --archive FILE. Order is by time in both; events of the same
  second may be archived in another order by concurrent workers, so rows are compared as the same
  list once sorted, and each answer is checked to be in time order. The events are compared without
  their EventBridge envelope's id, which the ingest node that wrapped the record drew at random.
"""
import gzip
import json
import os
import random
import time
import unittest
import urllib.parse

import twcluster
import twpg
import twserve
from twserve import Receiver, Server, wait_until

N = 300


def get_json(srv, path):
    st, _, body = srv.request("GET", path)
    return st, json.loads(body)


def body(ev):
    """An archived event without its envelope's id (random: given by the ingest node that wrapped
    the CloudTrail record); the record itself (detail) and every other field compared."""
    if isinstance(ev, dict) and isinstance(ev.get("detail"), dict):
        ev = {k: v for k, v in ev.items() if k != "id"}
    return json.dumps(ev, sort_keys=True)


def row(e):
    return (e["time_ms"], e["id"], e.get("eventName") or e.get("action"), e.get("principal"), body(e.get("event")))


def lines(out):
    rows = []
    for line in out.splitlines():
        o = json.loads(line)
        if "event" in o:
            o["event"] = body(o["event"])
        rows.append(json.dumps(o, sort_keys=True))
    return sorted(rows)


@unittest.skipUnless(twcluster.have_nats() and twpg.have_postgres(),
                     "nats-server or PostgreSQL is not installed (scripts/setup-deps)")
class ClusterArchivePostgresTest(unittest.TestCase):

    def setUp(self):
        self.rcv = Receiver().start()
        self.addCleanup(self.rcv.stop)
        self.pg = twpg.start(self)

    def node(self, urls, role, name, files=None):
        cfg = twcluster.node_config(urls, role, name, self.rcv.url("/hook"), duplicate_window="1s", fetch_batch=20)
        cfg["archive"] = {"backend": "postgres", "dsn": self.pg.dsn}
        if files:
            cfg["sources"] = {"folder": {"path": "trail", "watch": True}}
        s = Server(self, cfg, files=files)
        s.start(timeout=60)
        return s

    def test_two_ingest_nodes_three_workers_one_postgres(self):
        recs, seen = [], set()
        for r in twserve.cloudtrail_records(3000):
            if r["eventID"] not in seen:
                seen.add(r["eventID"])
                recs.append(r)
        random.Random(21).shuffle(recs)
        recs = recs[:N]
        ids = sorted(r["eventID"] for r in recs)

        nats = twcluster.single(self)
        urls = [n.url for n in nats]
        workers = [self.node(urls, "worker", "w%d" % i) for i in range(1, 4)]
        a = self.node(urls, "ingest", "ingest-a")
        status, body = twcluster.post_events(a.port, recs)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["accepted"], N, body)

        def archived():
            return sum(twcluster.metric(w, "trailwatch_archive_events_total", None) for w in workers)
        wait_until(lambda: archived() >= N, timeout=90, what="the workers to archive path 1")
        # Path 2, past the stream's duplicate window: published again, delivered to the workers again.
        time.sleep(4)  # JetStream forgets message ids a little after the window (1 s) has passed
        log = gzip.compress(json.dumps({"Records": recs}).encode())
        b = self.node(urls, "ingest", "ingest-b",
                      files={"trail/AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/01/f.json.gz": log})
        wait_until(lambda: twcluster.metric(b, "trailwatch_cluster_published_total", None) +
                   twcluster.metric(b, "trailwatch_cluster_publish_duplicates_total", None) >= N,
                   timeout=90, what="ingest B to publish the log file")
        self.assertEqual(twcluster.metric(b, "trailwatch_cluster_published_total", None), N,
                         "the second path's copies went to the workers (not removed by the stream)")

        def drained():
            st = twcluster.cluster_status(workers[0].config_path, wait=0.2)
            return st["stream"]["messages"] == 0 and st["consumer"]["ack_pending"] == 0
        wait_until(drained, timeout=90, what="the stream to drain")
        wait_until(lambda: all(twcluster.metric(w, "trailwatch_archive_queue_events", None) == 0 for w in workers),
                   timeout=30, what="the archive queues to empty")

        # Archived once: in PostgreSQL and by the counters.
        self.assertEqual(self.pg.psql("SELECT count(*), count(DISTINCT id) FROM tw_events")[0], [str(N), str(N)])
        self.assertEqual(sorted(r[0] for r in self.pg.psql("SELECT id FROM tw_events")), ids)
        self.assertEqual(archived(), N)
        # Every second copy was dropped once: by the worker that got it (its own dedup of eventIDs:
        # it had archived the first) or by the archive (another worker had archived it).
        at_worker = sum(twcluster.metric(w, "trailwatch_events_duplicate_total", None) for w in workers)
        at_archive = sum(twcluster.metric(w, "trailwatch_archive_duplicates_total", None) for w in workers)
        print("\n  # second path: %d copies dropped by the receiving worker's dedup, %d by the PostgreSQL archive"
              % (at_worker, at_archive))
        self.assertEqual(at_worker + at_archive, N)

        # The same records in SQLite through the same path (a cluster archives the events as the
        # stream carries them): a node of role both on a NATS of its own, its archive a SQLite file.
        nats2 = twcluster.single(self)
        cfg = twcluster.node_config([nats2[0].url], "both", "solo", self.rcv.url("/other"))
        sq = Server(self, cfg)
        sq.start(timeout=60)
        for _ in range(2):
            status, body = twcluster.post_events(sq.port, recs)
            self.assertEqual(status, 200, body)
        wait_until(lambda: twcluster.metric(sq, "trailwatch_archive_events_total", None) >= N, timeout=60,
                   what="the SQLite node to archive")

        # GET /api/events, every page, on a worker (PostgreSQL) and on the single serve (SQLite).
        def pages(srv):
            out, cursor = [], None
            for _ in range(40):
                params = {"from": "2000-01-01", "limit": 50}
                if cursor:
                    params["cursor"] = cursor
                st, r = get_json(srv, "/api/events?" + urllib.parse.urlencode(params))
                self.assertEqual(st, 200, r)
                out += [row(e) for e in r["events"]]
                cursor = r["next"]
                if not cursor:
                    break
            times = [x[0] for x in out]
            self.assertEqual(times, sorted(times, reverse=True), "newest first")
            return sorted(out)
        got = pages(workers[1])
        self.assertEqual(len(got), N)
        self.assertEqual(got, pages(sq))
        self.assertEqual(sorted(x[1] for x in got), ids)

        # GET /api/who/RESOURCE.
        resources = []
        for r in recs:
            for res in r.get("resources") or []:
                if res.get("ARN") and res["ARN"] not in resources:
                    resources.append(res["ARN"])
        self.assertGreater(len(resources), 5)
        compared = 0
        for res in resources[:20]:
            path = "/api/who/" + urllib.parse.quote(res, safe="")
            (s1, r1), (s2, r2) = get_json(workers[2], path), get_json(sq, path)
            self.assertEqual((s1, s2), (200, 200), (r1, r2))
            t1 = [e["time_ms"] for e in r1["entries"]]
            self.assertEqual(t1, sorted(t1), "oldest first")
            self.assertEqual(sorted(row(e) for e in r1["entries"]), sorted(row(e) for e in r2["entries"]), res)
            compared += len(r1["entries"])
        self.assertGreater(compared, 10)

        # The command line on the shared database and on the SQLite file.
        db = sq.path("var", "archive.db")
        for args in (["query", "--from", "2000-01-01", "--limit", "0"],
                     ["query", "--event-name", recs[0]["eventName"], "--limit", "0"],
                     ["who", resources[0]]):
            p1 = sq.tw(*args, "--archive", self.pg.dsn, "--format", "json", timeout=120)
            p2 = sq.tw(*args, "--archive", db, "--format", "json", timeout=120)
            self.assertEqual(p1.returncode, 0, p1.stderr)
            self.assertEqual((p2.returncode, lines(p2.stdout)), (0, lines(p1.stdout)), args)
            self.assertGreater(len(p1.stdout.splitlines()), 0, args)


if __name__ == "__main__":
    unittest.main()
