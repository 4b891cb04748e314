"""End-to-end: `trailwatch ingest --alert` (#8 item 2): the events ingest adds also run through the
configuration's rules and their alerts reach a local webhook as serve sends them; events already archived
do not alert again; alerts a destination did not take stay in the outbox, the summary says so, and the next
run sends them."""
import json
import os
import random
import re
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


def run_help(srv):
    return srv.tw("ingest", "--help").stdout


if __name__ == "__main__":
    unittest.main()
