"""End-to-end: `trailwatch serve` reading a folder of CloudTrail log files in the S3 layout.

The shared s3-layout folder (3,872 real log files, 30,477 records of which 6,496 are duplicate
deliveries of the same eventID) is copied to a temporary folder and served with sources.folder; a rule
matching every record sends its alerts to a file target. Then: a restart reads no file again, and a new
file dropped into the tree is picked up."""
import glob
import gzip
import json
import os
import shutil
import time
import unittest

import twserve
from twserve import Server

FILES, RECORDS, DISTINCT = 3872, 30477, 23981
DUPLICATES = RECORDS - DISTINCT          # 6,496
DELIVERY_BUDGET = 60.0                   # seconds for every alert to reach the file


def folder_config():
    return {"server": {"listen": "127.0.0.1:0"},
            "sources": {"folder": {"path": "logs", "watch": True}},
            "targets": {"audit": {"kind": "file", "path": "alerts.jsonl"}},
            "rules": [{"name": "every-record", "pattern": {"detail": {"eventID": [{"exists": True}]}},
                       "targets": ["audit"]}]}


def new_log_file(records):
    return gzip.compress(json.dumps({"Records": records}).encode())


class TestFolder(unittest.TestCase):
    """The steps run in order (test_1_..., test_2_...) on one server and one copy of the folder."""

    @classmethod
    def setUpClass(cls):
        src = twserve.shared("data", "cloudtrail", "s3-layout")
        cls.srv = Server(None, folder_config())
        shutil.copytree(src, cls.srv.path("logs"))
        files = glob.glob(cls.srv.path("logs", "**", "*.json.gz"), recursive=True)
        assert len(files) == FILES, len(files)
        cls.sample = None
        with gzip.open(sorted(files)[0], "rt") as f:
            cls.sample = json.load(f)["Records"][0]
        cls.t0 = time.monotonic()
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.srv.stop()
        finally:
            cls.srv.cleanup()

    def test_1_every_record_is_read_and_duplicates_are_dropped(self):
        srv = self.srv
        srv.wait_metric("trailwatch_folder_files_total", FILES, timeout=60, result="processed")
        srv.wait_metric("trailwatch_rule_matches_total", DISTINCT, timeout=10, rule="every-record")
        self.assertEqual(srv.metric("trailwatch_folder_records_total"), RECORDS)
        self.assertEqual(srv.metric("trailwatch_events_received_total", source="folder"), RECORDS)
        self.assertEqual(srv.metric("trailwatch_events_duplicate_total", source="folder"), DUPLICATES)
        self.assertEqual(srv.metric("trailwatch_rule_matches_total", rule="every-record"), DISTINCT)
        self.assertEqual(srv.metric("trailwatch_folder_files_total", result="rejected"), 0)
        self.assertEqual(srv.metric("trailwatch_folder_files_total", result="failed"), 0)
        self.assertEqual(srv.metric("trailwatch_events_rejected_total", source="folder"), 0)
        # every alert exists: delivered or waiting in the outbox. The depth gauge is refreshed by the
        # delivery loop and a delivery is counted before its outcome is committed, so while deliveries
        # run the sum can be off by those in flight; it settles (a lost alert would keep it short).
        deadline = time.monotonic() + 20
        while True:
            time.sleep(1.2)
            m = srv.metrics()
            delivered = m.get(("trailwatch_deliveries_total", frozenset({("target", "audit"), ("outcome", "delivered")})), 0)
            depth = srv.healthz()["outbox_depth"]
            if abs(delivered + depth - DISTINCT) <= 5 or time.monotonic() > deadline:
                break
        self.assertAlmostEqual(delivered + depth, DISTINCT, delta=5)

    def test_2_every_alert_is_delivered_once(self):
        srv = self.srv
        end = self.t0 + DELIVERY_BUDGET
        last, last_t = -1, time.monotonic()
        while True:
            n = len(srv.jsonl("alerts.jsonl"))
            now = time.monotonic()
            if n >= DISTINCT or now > end:
                break
            # give up early when the rate cannot finish within the budget (reported below)
            if now - last_t >= 5:
                rate = (n - last) / (now - last_t) if last >= 0 else None
                if rate is not None and (rate <= 0 or n + rate * (end - now) < DISTINCT * 0.9):
                    break
                last, last_t = n, now
            time.sleep(0.5)
        alerts = srv.jsonl("alerts.jsonl")
        took = time.monotonic() - self.t0
        ids = [a["detail"]["eventID"] for a in alerts]
        self.assertEqual(len(ids), len(set(ids)), "an alert was written twice")
        self.assertEqual(len(alerts), DISTINCT, "deliveries too slow: %d of %d after %.0f s (budget %.0f s)" %
                         (len(alerts), DISTINCT, took, DELIVERY_BUDGET))
        for a in alerts[:50]:
            self.assertEqual(a["detail-type"][:4], "AWS ")
            self.assertEqual(a["account"], a["detail"].get("recipientAccountId", "342082656213"))

    def test_3_restart_reads_no_file_again(self):
        srv = self.srv
        srv.stop()
        srv.start()
        srv.wait_metric("trailwatch_folder_files_total", FILES, timeout=60, result="already_done")
        time.sleep(1.0)
        self.assertEqual(srv.metric("trailwatch_folder_files_total", result="processed"), 0)
        self.assertEqual(srv.metric("trailwatch_events_received_total", source="folder"), 0)
        self.assertEqual(srv.metric("trailwatch_rule_matches_total", rule="every-record"), 0)

    def test_4_a_new_file_is_picked_up(self):
        srv = self.srv
        if not srv.alive():
            srv.start()
        srv.wait_metric("trailwatch_folder_files_total", FILES, timeout=60, result="already_done")
        base = srv.metric("trailwatch_rule_matches_total", rule="every-record")
        recs = []
        for i in range(3):
            r = json.loads(json.dumps(self.sample))
            r["eventID"] = "00000000-0000-4000-8000-00000000000%d" % i
            r["eventTime"] = "2021-08-03T00:0%d:00Z" % i
            recs.append(r)
        # a new day's folder arrives with its first file (made elsewhere and moved into the tree)
        # (the month's folder too when it is new: no folder of the tree is ever seen empty)
        year = srv.path("logs", "AWSLogs", "342082656213", "CloudTrail", "us-east-1", "2021")
        day = os.path.join(year, "08", "03")
        self.assertFalse(os.path.exists(day))
        staging = srv.path("staging", "08")
        os.makedirs(os.path.join(staging, "03"))
        name = "342082656213_CloudTrail_us-east-1_20210803T0005Z_NewFileTest0001.json.gz"
        with open(os.path.join(staging, "03", name), "wb") as f:
            f.write(new_log_file(recs[:2]))
        if os.path.exists(os.path.join(year, "08")):
            os.rename(os.path.join(staging, "03"), day)
        else:
            os.rename(staging, os.path.join(year, "08"))
        srv.wait_metric("trailwatch_rule_matches_total", base + 2, timeout=15, rule="every-record")
        # and one written in place into an existing folder, with a duplicate of a record already seen
        with open(os.path.join(day, name.replace("0001", "0002")), "wb") as f:
            f.write(new_log_file([recs[2], recs[0]]))
        srv.wait_metric("trailwatch_rule_matches_total", base + 3, timeout=15, rule="every-record")
        time.sleep(0.5)
        self.assertEqual(srv.metric("trailwatch_rule_matches_total", rule="every-record"), base + 3)
        self.assertEqual(srv.metric("trailwatch_folder_files_total", result="processed"), 2)
        self.assertEqual(srv.metric("trailwatch_events_duplicate_total", source="folder"), 1)
        # their alerts reach the file once the backlog is delivered (at once when test_2 emptied it)
        if len(srv.jsonl("alerts.jsonl")) >= DISTINCT:
            want = {r["eventID"] for r in recs}
            twserve.wait_until(lambda: want <= {a["detail"]["eventID"] for a in srv.jsonl("alerts.jsonl")}, 15,
                               what="the new file's alerts in alerts.jsonl")


    # Was a bug: scanning an empty directory called qsort(NULL, 0, ...), undefined behaviour (UBSan).
    def test_5_a_file_in_a_folder_that_was_created_empty(self):
        srv = self.srv
        if not srv.alive():
            srv.start()
        base = srv.metric("trailwatch_rule_matches_total", rule="every-record")
        day = srv.path("logs", "AWSLogs", "342082656213", "CloudTrail", "eu-west-1", "2021", "08", "04")
        os.makedirs(day)
        time.sleep(1.0)                       # the empty folder is seen and watched first
        r = json.loads(json.dumps(self.sample))
        r["eventID"] = "00000000-0000-4000-8000-0000000000ee"
        with open(os.path.join(day, "342082656213_CloudTrail_eu-west-1_20210804T0000Z_EmptyDirFirst01.json.gz"),
                  "wb") as f:
            f.write(new_log_file([r]))
        srv.wait_metric("trailwatch_rule_matches_total", base + 1, timeout=15, rule="every-record")


class TestFileWrittenInTwoGoes(unittest.TestCase):
    def test_a_truncated_file_is_read_once_it_is_complete(self):
        srv = Server(self, folder_config(), files={"logs/empty.json": '{"Records": []}'}).start()
        recs = twserve.cloudtrail_records(limit=40)
        blob = gzip.compress(json.dumps({"Records": recs}).encode())
        path = srv.path("logs", "copying.json.gz")
        with open(path, "wb") as f:                       # a copy that stops half-way (closed)
            f.write(blob[:len(blob) // 2])
        srv.wait_log("not read completely", path=path)
        self.assertEqual(srv.metric("trailwatch_rule_matches_total", rule="every-record"), 0)
        with open(path, "ab") as f:                       # and is finished later
            f.write(blob[len(blob) // 2:])
        srv.wait_metric("trailwatch_rule_matches_total", 40, timeout=60, rule="every-record")
        twserve.wait_until(lambda: len(srv.jsonl("alerts.jsonl")) == 40, 15, what="40 alerts")
        time.sleep(0.5)
        self.assertEqual(srv.metric("trailwatch_rule_matches_total", rule="every-record"), 40)
        self.assertEqual(sorted(a["detail"]["eventID"] for a in srv.jsonl("alerts.jsonl")),
                         sorted(r["eventID"] for r in recs))


class TestEmptyFolder(unittest.TestCase):
    # Was a bug: see test_5 above (qsort(NULL, 0, ...) on an empty directory).
    def test_an_empty_folder_then_files(self):
        cfg = folder_config()
        srv = Server(self, cfg, files={"logs/.keep-dir/x.txt": ""})
        os.remove(srv.path("logs", ".keep-dir", "x.txt"))
        os.rmdir(srv.path("logs", ".keep-dir"))           # logs/ exists and is empty
        srv.start()
        try:
            with gzip.open(twserve.shared(
                    "data", "cloudtrail", "s3-layout", "AWSLogs", "342082656213", "CloudTrail", "us-west-1", "2021",
                    "07", "30", "342082656213_CloudTrail_us-west-1_20210730T1635Z_W8YRCdsGjKxgFiLT.json.gz"), "rt") as f:
                n = len(json.load(f)["Records"])
            shutil.copy(twserve.shared(
                "data", "cloudtrail", "s3-layout", "AWSLogs", "342082656213", "CloudTrail", "us-west-1", "2021", "07",
                "30", "342082656213_CloudTrail_us-west-1_20210730T1635Z_W8YRCdsGjKxgFiLT.json.gz"),
                srv.path("logs", "one.json.gz"))
            srv.wait_metric("trailwatch_rule_matches_total", n, timeout=15, rule="every-record")
            twserve.wait_until(lambda: len(srv.jsonl("alerts.jsonl")) == n, 30, what="%d alerts" % n)
        finally:
            srv.stop()


if __name__ == "__main__":
    unittest.main()
