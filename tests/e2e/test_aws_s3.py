"""End-to-end: `serve` reading CloudTrail log files from an S3 bucket (moto_server on 127.0.0.1).

The bucket holds the shared s3-layout data under its real keys (a subset: 308 files, 17 regions;
bench/ ingests all 3,872), and an organization-trail copy. Checked: every record read once (by
metrics and by the alerts of a rule, compared with the records themselves), a restart in the middle
continues from the saved position without losing or doubling alerts, start time, chosen accounts and
regions, late files, digest files skipped, and clear errors for wrong credentials and an unreachable
endpoint.
"""
import gzip
import io
import json
import os
import time
import unittest

import twaws
import twserve

RULE_EVENT = "DescribeInstances"


def setUpModule():
    global MOTO, S3, FILES, RECORDS
    if not twaws.moto_available():
        raise unittest.SkipTest("moto_server not installed")
    MOTO = twaws.Moto()
    S3 = MOTO.client("s3")
    S3.create_bucket(Bucket="trail")
    FILES = twaws.layout_files(subset=True)
    twaws.upload(S3, "trail", FILES)
    RECORDS = twaws.records_of(FILES)


def tearDownModule():
    MOTO.stop()


def expected_ids(records, pred=lambda r: True):
    return {r["eventID"] for r in records if r.get("eventName") == RULE_EVENT and pred(r)}


def config(s3, **aws):
    a = {"endpoint_url": MOTO.url}
    a.update(aws)
    return {
        "data_dir": "var",
        "aws": a,
        "sources": {"eventbridge": False, "http": False, "s3": s3},
        "targets": {"log": {"kind": "file", "path": "alerts.jsonl"}},
        "rules": [{"name": "describe", "pattern": {"detail": {"eventName": [RULE_EVENT]}}, "targets": ["log"]}],
    }


def files_done(srv):
    """Log files marked done in the server's database (committed with their alerts)."""
    import sqlite3
    db = sqlite3.connect(srv.path("var", "trailwatch.db"))
    try:
        return db.execute("SELECT count(*) FROM files WHERE path LIKE 's3://%'").fetchone()[0]
    finally:
        db.close()


def alert_ids(srv):
    return [a["detail"]["eventID"] for a in srv.jsonl("alerts.jsonl")]


class BucketSource(unittest.TestCase):
    def server(self, s3, env=None, **aws):
        e = MOTO.env()
        e.update(env or {})
        return twserve.Server(self, config(s3, **aws), env=e)

    def wait_files(self, srv, n, timeout=240, result="processed"):
        twserve.wait_until(lambda: srv.metric("trailwatch_s3_files_total", result=result) >= n, timeout=timeout,
                           what="%d files %s (now %s)" % (n, result, srv.metric("trailwatch_s3_files_total",
                                                                                  result=result)))

    def test_whole_bucket_then_restart_in_the_middle(self):
        s3 = {"bucket": "trail", "start_time": "2021-07-01", "poll_interval": "1s", "workers": 1, "lookback": "10m"}
        srv = self.server(s3)
        srv.start()
        self.wait_files(srv, 40)
        srv.kill9()
        first = len(alert_ids(srv))
        done_first = files_done(srv)
        with open(srv.path("var", "s3-positions")) as f:
            pos = f.read()
        self.assertIn("342082656213/CloudTrail/", pos)
        srv.start()
        self.wait_files(srv, 1, result="processed")
        twserve.wait_until(lambda: srv.metric("trailwatch_s3_files_total", result="processed") +
                           srv.metric("trailwatch_s3_files_total", result="already_done") >= 0, timeout=5)
        want = expected_ids(RECORDS)
        twserve.wait_until(lambda: len(alert_ids(srv)) >= len(want), timeout=240,
                           what="%d alerts (now %d)" % (len(want), len(alert_ids(srv))))
        twserve.wait_until(lambda: srv.healthz() is not None and srv.metric("trailwatch_s3_list_requests_total") > 0,
                           timeout=30)
        time.sleep(2)  # a few more polls: nothing new may appear
        ids = alert_ids(srv)
        self.assertEqual(len(ids), len(set(ids)), "an alert was doubled across the restart")
        self.assertEqual(set(ids), want)
        self.assertLess(first, len(want), "the first run should have been stopped in the middle")
        # The restart went on from where the first run stopped: no file read twice (but the one being
        # read at the kill, workers: 1), none left out.
        self.wait_files(srv, len(FILES) - done_first)
        second = srv.metric("trailwatch_s3_files_total", result="processed")
        self.assertLessEqual(done_first + second, len(FILES) + 1)
        self.assertEqual(files_done(srv), len(FILES))
        srv.stop()

    def test_records_counted_digests_skipped(self):
        S3.put_object(Bucket="trail", Key="AWSLogs/342082656213/CloudTrail-Digest/us-east-1/2021/07/29/"
                      "342082656213_CloudTrail-Digest_us-east-1_t_us-east-1_20210729T120000Z.json.gz",
                      Body=gzip.compress(b'{"logFiles":[]}'))
        s3 = {"bucket": "trail", "start_time": "2021-07-01", "poll_interval": "1s", "workers": 4}
        srv = self.server(s3)
        srv.start()
        self.wait_files(srv, len(FILES))
        twserve.wait_until(lambda: srv.metric("trailwatch_s3_records_total") >= len(RECORDS), timeout=60)
        time.sleep(1.5)
        self.assertEqual(srv.metric("trailwatch_s3_files_total", result="processed"), len(FILES))
        self.assertEqual(srv.metric("trailwatch_s3_records_total"), len(RECORDS))
        self.assertEqual(srv.metric("trailwatch_s3_files_total", result="rejected"), 0)
        srv.stop()

    def test_late_file(self):
        S3.create_bucket(Bucket="late")
        east_files = [(k, p) for k, p in FILES if "/us-east-1/" in k]
        twaws.upload(S3, "late", east_files)
        s3 = {"bucket": "late", "start_time": "2021-07-01", "poll_interval": "1s"}
        srv = self.server(s3)
        srv.start()
        self.wait_files(srv, len(east_files))
        # A late file: named 5 minutes before the newest us-east-1 file, uploaded after it was read.
        east = sorted(k for k, _ in FILES if "/us-east-1/" in k)[-1]
        stamp = east.split("_")[3]
        t = time.strptime(stamp, "%Y%m%dT%H%MZ")
        late_stamp = time.strftime("%Y%m%dT%H%MZ", time.gmtime(time.mktime(t) - time.timezone - 300))
        key = east.rsplit("/", 1)[0] + "/342082656213_CloudTrail_us-east-1_%s_LATELATELATELATE.json.gz" % late_stamp
        rec = dict(RECORDS[0], eventID="late-0000-1111", eventName=RULE_EVENT, awsRegion="us-east-1")
        S3.put_object(Bucket="late", Key=key, Body=gzip.compress(json.dumps({"Records": [rec]}).encode()))
        twserve.wait_until(lambda: "late-0000-1111" in alert_ids(srv), timeout=60, what="the late file's alert")
        srv.stop()

    def test_start_time(self):
        start = "2021-07-29T12:00:00Z"
        s3 = {"bucket": "trail", "start_time": start, "poll_interval": "1s", "regions": ["us-west-1"]}
        keys = [k for k, _ in FILES if "/us-west-1/" in k and k.split("_")[3] >= "20210729T1200Z"]
        srv = self.server(s3)
        srv.start()
        self.wait_files(srv, len(keys))
        time.sleep(1.5)
        self.assertEqual(srv.metric("trailwatch_s3_files_total", result="processed"), len(keys))
        srv.stop()

    def test_organization_trail_chosen_accounts_and_regions(self):
        org = "o-abc123def4"
        picked = [(k, p) for k, p in FILES if "/us-east-1/" in k or "/eu-west-1/" in k or "/us-east-2/" in k]
        other = "111122223333"
        copies = [(k.replace("AWSLogs/", "AWSLogs/%s/" % org, 1), p) for k, p in picked]
        copies += [(k.replace("AWSLogs/342082656213/", "AWSLogs/%s/%s/" % (org, other), 1)
                    .replace("342082656213_CloudTrail", other + "_CloudTrail"), p) for k, p in picked]
        twaws.upload(S3, "trail", copies, prefix="orgtrail/")
        s3 = {"bucket": "trail", "prefix": "orgtrail", "organization": org, "accounts": ["342082656213"],
              "regions": ["us-east-1", "eu-west-1"], "start_time": "2021-07-01", "poll_interval": "1s"}
        want = [k for k, _ in picked if "/us-east-2/" not in k]
        srv = self.server(s3)
        srv.start()
        self.wait_files(srv, len(want))
        time.sleep(1.5)
        self.assertEqual(srv.metric("trailwatch_s3_files_total", result="processed"), len(want))
        srv.stop()


class Errors(unittest.TestCase):
    def test_unreachable_endpoint_is_a_clear_error(self):
        port = twserve.free_port()
        cfg = config({"bucket": "trail", "poll_interval": "1s"}, endpoint_url="http://127.0.0.1:%d" % port,
                     max_attempts=1)
        srv = twserve.Server(self, cfg, env=MOTO.env())
        srv.start()
        line = srv.wait_log("s3: cannot list the bucket's accounts and regions", timeout=30)
        self.assertIn("cannot reach", json.dumps(line))
        self.assertIn("127.0.0.1:%d" % port, json.dumps(line))
        srv.stop()

    def test_wrong_credentials_are_a_clear_error(self):
        moto = twaws.Moto(env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"})
        self.addCleanup(moto.stop)
        cfg = config({"bucket": "trail", "poll_interval": "1s"}, endpoint_url=moto.url, max_attempts=1)
        env = moto.env(AWS_SECRET_ACCESS_KEY="not-the-secret-0123456789")
        srv = twserve.Server(self, cfg, env=env)
        srv.start()
        line = json.dumps(srv.wait_log("s3: cannot list the bucket's accounts and regions", timeout=30))
        self.assertRegex(line, "InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied")
        self.assertNotIn("not-the-secret", srv.stderr())
        self.assertNotIn(twaws.KEY_ID + "/", srv.stderr())  # no Authorization header echoed
        srv.stop()


if __name__ == "__main__":
    unittest.main()
