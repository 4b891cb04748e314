"""End-to-end: the Amazon Data Firehose HTTP endpoint of `trailwatch serve`.

Requests are built the way Firehose and CloudWatch Logs build them (aws-formats.md section 4): real
CloudTrail records from a real log file, one per CloudWatch Logs log event, each CWL message gzip'd
(level 6) and base64'd into a Firehose record; {"requestId","timestamp","records"}; the
X-Amz-Firehose-* headers. The response contract and the alerts that arrive are checked."""
import base64
import gzip
import json
import socket
import time
import unittest
import uuid

import twserve
from twserve import Receiver, Server, compact

ACCOUNT = "342082656213"
LOG_FILE = ("data/cloudtrail/s3-layout/AWSLogs/342082656213/CloudTrail/us-west-1/2021/07/30/"
            "342082656213_CloudTrail_us-west-1_20210730T1635Z_W8YRCdsGjKxgFiLT.json.gz")   # 204 distinct records
PATH = "/firehose/cloudtrail"
KEY = "fh-access-key-0123456789-secret"
STREAM_ARN = "arn:aws:firehose:us-east-1:342082656213:deliverystream/cloudtrail-to-trailwatch"


def log_records():
    """The records of one real CloudTrail log file."""
    with gzip.open(twserve.shared(LOG_FILE), "rt") as f:
        return json.load(f)["Records"]


_next_id = [36000000000000000000000000000000000000000000000000000000]


def cwl_message(records):
    events = []
    for i, rec in enumerate(records):
        _next_id[0] += 1
        events.append({"id": str(_next_id[0]), "timestamp": 1627516500000 + i, "message": compact(rec)})
    return {"messageType": "DATA_MESSAGE", "owner": ACCOUNT, "logGroup": "aws-cloudtrail-logs-%s" % ACCOUNT,
            "logStream": "%s_CloudTrail_us-west-1" % ACCOUNT, "subscriptionFilters": ["to-firehose"],
            "logEvents": events}


CONTROL = {"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logGroup": "", "logStream": "",
           "subscriptionFilters": [], "logEvents": [{"id": "", "timestamp": 1627516500000,
                                                     "message": "CWL CONTROL MESSAGE: Checking health of destination "
                                                                "Firehose."}]}


def cwl_data(msg):
    """A Firehose record's data from CloudWatch Logs: gzip (level 6) of the message JSON."""
    return gzip.compress(compact(msg).encode(), compresslevel=6)


def firehose_body(datas, request_id):
    return compact({"requestId": request_id, "timestamp": int(time.time() * 1000),
                    "records": [{"data": base64.b64encode(d).decode("ascii")} for d in datas]}).encode()


def headers(request_id, key=KEY, gzip_body=False):
    h = {"X-Amz-Firehose-Request-Id": request_id, "X-Amz-Firehose-Protocol-Version": "1.0",
         "X-Amz-Firehose-Source-Arn": STREAM_ARN,
         "X-Amz-Firehose-Common-Attributes": compact({"commonAttributes": {"env": "test"}}),
         "Content-Type": "application/json"}
    if key is not None:
        h["X-Amz-Firehose-Access-Key"] = key
    if gzip_body:
        h["Content-Encoding"] = "gzip"
    return h


class TestFirehose(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.records = log_records()
        cls.rcv = Receiver().start()
        cfg = {
            "server": {"listen": "127.0.0.1:0"},
            "sources": {"firehose": {"path": PATH, "access_key": "${FIREHOSE_KEY}"}},
            "targets": {"hook": {"kind": "webhook", "url": cls.rcv.url("/hook"), "retry": {"base": "100ms", "cap": "1s"}}},
            "rules": [{"name": "cloudtrail", "pattern": {"detail": {"eventID": [{"exists": True}]}}, "targets": ["hook"]},
                      {"name": "bridge", "pattern": {"source": ["com.example.app"]}, "targets": ["hook"]}],
        }
        cls.srv = Server(None, cfg, env={"FIREHOSE_KEY": KEY}).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.srv.stop()
        finally:
            cls.srv.cleanup()
            cls.rcv.stop()

    def setUp(self):
        self.rcv.clear()

    def tearDown(self):
        self.assertTrue(self.srv.alive(), self.srv.stderr()[-4000:])

    def send(self, body, hdrs):
        st, hd, data = self.srv.post(PATH, body, hdrs)
        return st, hd, json.loads(data)

    def assertContract(self, st, hd, resp, status, request_id, error=None):
        """Firehose's response contract: JSON, no Content-Encoding, the requestId echoed, a ms timestamp,
        errorMessage only on failure."""
        self.assertEqual(st, status, resp)
        self.assertEqual(hd.get("content-type"), "application/json")
        self.assertNotIn("content-encoding", hd)
        self.assertIn("content-length", hd)
        self.assertEqual(resp["requestId"], request_id)
        self.assertIsInstance(resp["timestamp"], int)
        self.assertLess(abs(resp["timestamp"] - time.time() * 1000), 60000)
        if error is None:
            self.assertNotIn("errorMessage", resp)
            self.assertEqual(set(resp), {"requestId", "timestamp"})
        else:
            self.assertIn(error, resp["errorMessage"])

    def event_ids(self, n, timeout=15):
        got = self.rcv.wait_for(n, timeout, "/hook")
        return [r.json()["detail"].get("eventID") for r in got]

    def test_cloudtrail_through_cloudwatch_logs(self):
        recs = self.records[:12]
        distinct = {r["eventID"] for r in recs}
        self.assertEqual(len(distinct), 12)
        before = self.srv.metric("trailwatch_firehose_control_messages_total")
        datas = [cwl_data(cwl_message(recs[0:5])), cwl_data(CONTROL), cwl_data(cwl_message(recs[5:12]))]
        rid = str(uuid.uuid4())
        st, hd, resp = self.send(firehose_body(datas, rid), headers(rid))
        self.assertContract(st, hd, resp, 200, rid)
        got = self.rcv.wait_for(12, 15, "/hook")
        self.rcv.quiet(0.5, "/hook")
        by_id = {r.json()["detail"]["eventID"]: r.json() for r in got}
        self.assertEqual(set(by_id), distinct)
        for rec in recs:
            ev = by_id[rec["eventID"]]
            self.assertEqual(ev["detail"], rec)
            self.assertEqual(ev["time"], rec["eventTime"])
            self.assertEqual(ev["account"], rec.get("recipientAccountId", ACCOUNT))
        self.assertEqual(self.srv.metric("trailwatch_firehose_control_messages_total"), before + 1)
        self.assertGreaterEqual(self.srv.metric("trailwatch_firehose_requests_total", code="200"), 1)
        self.assertGreaterEqual(self.srv.metric("trailwatch_events_received_total", source="firehose"), 12)

    def test_gzip_content_encoding_and_a_retried_request(self):
        recs = self.records[12:20]
        rid = str(uuid.uuid4())
        body = gzip.compress(firehose_body([cwl_data(cwl_message(recs))], rid))
        st, hd, resp = self.send(body, headers(rid, gzip_body=True))
        self.assertContract(st, hd, resp, 200, rid)
        self.assertEqual(sorted(self.event_ids(8)), sorted(r["eventID"] for r in recs))
        # Firehose did not see the answer and sends the same request again: nothing is alerted twice
        dups = self.srv.metric("trailwatch_events_duplicate_total", source="firehose")
        st, hd, resp = self.send(body, headers(rid, gzip_body=True))
        self.assertContract(st, hd, resp, 200, rid)
        self.rcv.quiet(1.0, "/hook")
        self.assertEqual(self.srv.metric("trailwatch_events_duplicate_total", source="firehose"), dups + 8)

    def test_control_message_alone(self):
        rid = str(uuid.uuid4())
        st, hd, resp = self.send(firehose_body([cwl_data(CONTROL)], rid), headers(rid))
        self.assertContract(st, hd, resp, 200, rid)
        self.rcv.quiet(0.5, "/hook")

    def test_eventbridge_to_firehose_records(self):
        evs = [{"version": "0", "id": str(uuid.uuid4()), "detail-type": "Order Placed", "source": "com.example.app",
                "account": "123456789012", "time": "2024-05-01T12:00:00Z", "region": "us-east-1", "resources": [],
                "detail": {"order": i}} for i in range(4)]
        datas = [compact(evs[0]).encode(), (compact(evs[1]) + "\n").encode(),
                 (compact(evs[2]) + "\n" + compact(evs[3]) + "\n").encode()]
        rid = str(uuid.uuid4())
        st, hd, resp = self.send(firehose_body(datas, rid), headers(rid))
        self.assertContract(st, hd, resp, 200, rid)
        got = [r.json() for r in self.rcv.wait_for(4, 10, "/hook")]
        self.assertEqual(sorted(e["id"] for e in got), sorted(e["id"] for e in evs))
        self.assertEqual(sorted(e["detail"]["order"] for e in got), [0, 1, 2, 3])

    def test_unusable_record_is_counted_and_the_request_still_succeeds(self):
        recs = self.records[20:23]
        rid = str(uuid.uuid4())
        datas = [cwl_data(cwl_message(recs)), gzip.compress(b"this is not json"), b"plain garbage"]
        st, hd, resp = self.send(firehose_body(datas, rid), headers(rid))
        self.assertContract(st, hd, resp, 200, rid)      # a retry could never fix those records
        self.assertEqual(sorted(self.event_ids(3)), sorted(r["eventID"] for r in recs))
        self.srv.wait_log("firehose records rejected", requestId=rid)

    def test_refusals_follow_the_contract(self):
        rec = self.records[23:24]
        good = cwl_data(cwl_message(rec))

        def check(body, hdrs, status, rid, error):
            st, hd, resp = self.send(body, hdrs)
            self.assertContract(st, hd, resp, status, rid, error)
        rid = str(uuid.uuid4())
        body = firehose_body([good], rid)
        check(body, headers(rid, key="wrong-key"), 401, rid, "X-Amz-Firehose-Access-Key")
        check(body, headers(rid, key=None), 401, rid, "X-Amz-Firehose-Access-Key")
        h = headers(rid)
        del h["X-Amz-Firehose-Request-Id"]
        check(body, h, 400, "", "X-Amz-Firehose-Request-Id")
        h = headers(rid)
        h["X-Amz-Firehose-Protocol-Version"] = "2.0"
        check(body, h, 400, rid, "Protocol-Version")
        check(firehose_body([good], "another-id"), headers(rid), 400, rid, "requestId")
        check(b"{not json", headers(rid), 400, rid, "not valid JSON")
        check(compact({"requestId": rid, "timestamp": 1, "records": []}).encode(), headers(rid), 400, rid, "records")
        check(compact({"requestId": rid, "timestamp": 1, "records": [{"data": "%%%not base64%%%"}]}).encode(),
              headers(rid), 400, rid, "base64")
        # one bad record refuses the whole request, the good records of it included
        bad = json.loads(firehose_body([good], rid))
        bad["records"].append({"data": "***"})
        check(compact(bad).encode(), headers(rid), 400, rid, "records[1]")
        check(b"\x1f\x8b\x08\x00junk", headers(rid, gzip_body=True), 400, rid, "gzip")
        # a gzip bomb: 80 MiB of zeros in a small body, over the 64 MiB cap once decompressed
        bomb = gzip.compress(b"0" * (80 << 20), compresslevel=9)
        st, hd, data = self.srv.post(PATH, bomb, headers(rid, gzip_body=True))
        self.assertEqual(st, 413, data[:200])
        self.assertEqual(json.loads(data)["requestId"], rid)
        # at most 10,000 records per request
        many = firehose_body([b"{}"] * 10001, rid)
        check(many, headers(rid), 400, rid, "records")
        self.rcv.quiet(0.8, "/hook")
        # the key is a secret
        self.assertNotIn(KEY, self.srv.stderr())
        self.assertGreaterEqual(self.srv.metric("trailwatch_firehose_requests_total", code="401"), 2)
        self.assertGreaterEqual(self.srv.metric("trailwatch_firehose_requests_total", code="400"), 8)

    def oversize(self, rid):
        """Headers announcing a body over the 64 MiB cap; returns the raw answer."""
        with socket.create_connection(("127.0.0.1", self.srv.port), timeout=10) as s:
            head = "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n" % (PATH, 65 << 20)
            for k, v in headers(rid).items():
                head += "%s: %s\r\n" % (k, v)
            s.sendall((head + "\r\n").encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        return data

    def test_oversize_request_is_413(self):
        # Firehose treats 413 as permanent; the server decides from Content-Length, before reading
        data = self.oversize(str(uuid.uuid4()))
        self.assertTrue(data.startswith(b"HTTP/1.1 413"), data[:200])

    def test_oversize_answer_follows_the_contract(self):
        rid = str(uuid.uuid4())
        head, _, body = self.oversize(rid).partition(b"\r\n\r\n")
        resp = json.loads(body)
        self.assertEqual(resp.get("requestId"), rid)
        self.assertIn("errorMessage", resp)

    def test_get_is_refused(self):
        st, hd, _ = self.srv.request("GET", PATH)
        self.assertEqual(st, 405)


class TestFirehoseOff(unittest.TestCase):
    def test_no_endpoint_unless_configured(self):
        cfg = {"server": {"listen": "127.0.0.1:0"}, "targets": {"c": {"kind": "console"}},
               "rules": [{"name": "r", "pattern": {"source": ["x"]}, "targets": ["c"]}]}
        srv = Server(self, cfg).start()
        rid = str(uuid.uuid4())
        st, _, _ = srv.post("/firehose", firehose_body([cwl_data(CONTROL)], rid), headers(rid))
        self.assertEqual(st, 404)


if __name__ == "__main__":
    unittest.main()
