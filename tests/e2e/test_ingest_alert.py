"""End-to-end: `trailwatch ingest --alert` (#8 item 2): the events ingest adds also run through the
configuration's rules and their alerts reach a local webhook as serve sends them; events already archived
do not alert again; alerts a destination did not take stay in the outbox, the summary says so, and the next
run sends them."""
import json
import os
import random
import re
import signal
import subprocess
import unittest

import twserve
from twserve import Receiver, Response, Server

RULE = {"name": "ec2", "targets": ["hook"], "pattern": {"source": ["aws.ec2"]}}


def wanted(rec):
    return rec.get("eventSource") == "ec2.amazonaws.com"


class TestIngestAlert(unittest.TestCase):
    def setUp(self):
        self.rcv = Receiver().start()
        self.addCleanup(self.rcv.stop)
        cfg = {"server": {"listen": "127.0.0.1:0"},
               "targets": {"hook": {"kind": "webhook", "url": self.rcv.url("/hook"), "timeout": "2s",
                                    "retry": {"base": "100ms", "cap": "200ms"}}},
               "rules": [RULE]}
        self.srv = Server(self, cfg)   # never started: its folder, configuration and environment
        recs, seen = [], set()
        for r in twserve.cloudtrail_records(6000):
            if r["eventID"] not in seen:
                seen.add(r["eventID"])
                recs.append(r)
        random.Random(8).shuffle(recs)   # the recording comes in runs of one service: mix them
        self.recs = recs

    def jsonl(self, name, recs):
        return self.srv.write(name, "".join(json.dumps(r) + "\n" for r in recs))

    def ingest(self, *args, timeout=300):
        return self.srv.tw("ingest", "--alert", "-c", self.srv.config_path, "--quiet", *args, timeout=timeout)

    def alerted_ids(self):
        return [json.loads(r.body)["detail"]["eventID"] for r in self.rcv.requests("/hook")]

    def test_new_events_alert_once(self):
        first, second = self.recs[:3000], self.recs[2000:]
        want1 = [r["eventID"] for r in first if wanted(r)]
        self.assertGreater(len(want1), 20)
        p = self.ingest(self.jsonl("first.jsonl", first))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("archived: %d  duplicates: 0" % len(first), p.stdout)
        self.assertIn("alerts: %d rule matches of the %d new events; every alert delivered" % (len(want1), len(first)),
                      p.stdout)
        # delivered before it ended: nothing more arrives
        self.rcv.quiet(0.5, "/hook")
        self.assertEqual(sorted(self.alerted_ids()), sorted(want1))
        # the archive is the configuration's
        self.assertTrue(os.path.exists(self.srv.path("var", "archive.db")))
        # again, overlapping: only the events not archived before alert
        self.rcv.clear()
        new = self.recs[3000:]
        want2 = [r["eventID"] for r in new if wanted(r)]
        self.assertGreater(len(want2), 0)
        p = self.ingest(self.jsonl("second.jsonl", second))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("archived: %d  duplicates: %d" % (len(new), 1000), p.stdout)
        self.assertIn("alerts: %d rule matches of the %d new events" % (len(want2), len(new)), p.stdout)
        self.rcv.quiet(0.5, "/hook")
        self.assertEqual(sorted(self.alerted_ids()), sorted(want2))
        # everything again: nothing new, no alert
        self.rcv.clear()
        p = self.ingest(self.srv.path("first.jsonl"), self.srv.path("second.jsonl"))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("alerts: 0 rule matches of the 0 new events", p.stdout)
        self.rcv.quiet(0.5, "/hook")
        self.assertEqual(self.alerted_ids(), [])

    def test_undelivered_alerts_stay_in_the_outbox(self):
        recs = self.recs[:1500]
        want = sorted(r["eventID"] for r in recs if wanted(r))
        self.assertGreater(len(want), 0)
        self.rcv.set_default("/hook", Response(503, b"down"))
        p = self.ingest(self.jsonl("a.jsonl", recs), "--wait", "1s")
        self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
        m = re.search(r"; (\d+) alerts not yet delivered are kept in the outbox (\S+) ", p.stdout)
        self.assertIsNotNone(m, p.stdout)
        self.assertEqual(int(m.group(1)), len(want))
        self.assertEqual(m.group(2), self.srv.path("var", "ingest"))
        # the destination is back: the next run (nothing new in it) sends them
        self.rcv.set_default("/hook", Response(200, b"ok"))
        self.rcv.clear()
        p = self.ingest(self.srv.path("a.jsonl"))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("alerts: 0 rule matches of the 0 new events; every alert delivered", p.stdout)
        self.assertEqual(sorted(set(self.alerted_ids())), want)

    def test_interrupted_keeps_every_alert_of_what_it_archived(self):
        """SIGINT mid-way: what is archived has its alerts delivered or in the outbox, each once (the next
        run sends the rest); the rest of the input is not read."""
        out = self.srv.path("alerts.jsonl")
        self.srv.write_config({"targets": {"out": {"kind": "file", "path": out}},
                               "rules": [{"name": "all", "pattern": {"detail": {"eventID": [{"exists": True}]}},
                                          "targets": ["out"]}]})
        folder = os.path.join(twserve.shared("data", "cloudtrail", "s3-layout"))
        p = subprocess.Popen([twserve.tw_bin(), "ingest", "--alert", "-c", self.srv.config_path, "--progress", folder],
                             cwd=self.srv.dir, env=self.srv.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        line = p.stderr.readline()          # a progress line: it is reading, the outbox is open
        self.assertIn("progress:", line)
        p.send_signal(signal.SIGINT)
        stdout, stderr = p.communicate(timeout=300)
        self.assertEqual(p.returncode, 3, stdout + stderr)
        self.assertIn("ingest: interrupted", stderr)
        m = re.search(r"files: (\d+)  records: (\d+)  archived: (\d+)", stdout)
        self.assertIsNotNone(m, stdout)
        files, archived = int(m.group(1)), int(m.group(3))
        self.assertLess(files, 3927)          # it stopped reading
        self.assertGreater(archived, 0)
        # the next run (nothing new) empties the outbox: one alert per archived event, none twice
        empty = self.srv.write("empty.jsonl", "")
        p = self.ingest(empty)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        ids = [json.loads(l)["detail"]["eventID"] for l in open(out) if l.strip()]
        self.assertEqual(len(ids), len(set(ids)))
        rows = run_json(self.srv, "query", "-c", self.srv.config_path, "--limit", "0", "--format", "json")
        self.assertEqual(len(rows), archived)
        self.assertEqual(set(ids), {r["event"]["eventID"] for r in rows})

    def test_bad_use(self):
        path = self.jsonl("b.jsonl", self.recs[:10])
        p = self.srv.tw("ingest", "--alert", "--archive", self.srv.path("x.db"), path)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--alert needs -c FILE", p.stderr)
        p = self.srv.tw("ingest", "--wait", "5s", "--archive", self.srv.path("x.db"), path)
        self.assertEqual(p.returncode, 2)
        # -c for the rules, --archive for another archive
        p = self.ingest("--archive", self.srv.path("other.db"), path)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertTrue(os.path.exists(self.srv.path("other.db")))
        self.assertFalse(os.path.exists(self.srv.path("var", "archive.db")))
        self.assertIn("ingest --alert", run_help(self.srv))


def run_json(srv, *args):
    p = srv.tw(*args, timeout=300)
    assert p.returncode == 0, p.stderr
    return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]


def run_help(srv):
    return srv.tw("ingest", "--help").stdout


if __name__ == "__main__":
    unittest.main()
