"""End-to-end: the EventBridge API (POST /) and POST /events of `trailwatch serve`, driven by the AWS
CLI v1 and v2, boto3 and raw HTTP; SigV4 good, bad and skewed.

Alerts go to a webhook target pointed at a local receiver, whose requests carry the events exactly as
trailwatch built them."""
import datetime
import gzip
import http.client
import json
import os
import re
import time
import unittest
from unittest import mock

import twserve
from twserve import ACCOUNT, AKID, REGION, SECRET, Receiver, Server

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
JSON11 = "application/x-amz-json-1.1"
FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "events")


def config(rcv, **server):
    srv = {"listen": "127.0.0.1:0"}
    srv.update(server)
    return {
        "server": srv,
        "targets": {"hook": {"kind": "webhook", "url": rcv.url("/hook"), "timeout": "2s",
                             "retry": {"base": "100ms", "cap": "1s"}}},
        # every event with a source (PutEvents envelopes, wrapped CloudTrail records)
        "rules": [{"name": "everything", "pattern": {"source": [{"exists": True}]}, "targets": ["hook"]}],
    }


def bodies(rcv, n, timeout=15):
    return [r.json() for r in rcv.wait_for(n, timeout, "/hook")]


class ApiCase(unittest.TestCase):
    server_env = None
    server_extra = {}

    @classmethod
    def setUpClass(cls):
        cls.rcv = Receiver().start()
        cls.srv = Server(None, config(cls.rcv, **cls.server_extra), env=cls.server_env).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.srv.stop()
        finally:
            cls.srv.cleanup()
            cls.rcv.stop()

    def setUp(self):
        self.rcv.clear()
        self.srv_alive()

    def srv_alive(self):
        self.assertTrue(self.srv.alive(), "the server died:\n" + self.srv.stderr()[-4000:])

    def tearDown(self):
        self.srv_alive()

    def assertAwsError(self, st, hd, body, status, type_, message=None, request_id=True):
        self.assertEqual(st, status, body)
        self.assertEqual(hd.get("content-type"), JSON11, hd)
        if request_id:
            self.assertTrue(hd.get("x-amzn-requestid"), hd)
        self.assertIsInstance(body, dict, body)
        self.assertEqual(body.get("__type"), type_, body)
        self.assertIsInstance(body.get("message"), str)
        if message is not None:
            self.assertIn(message, body["message"])


class TestPutEventsClients(ApiCase):
    """PutEvents from the AWS CLI v1 and v2 and boto3; the alerts carry the events AWS would build."""

    ENTRIES = [
        {"Source": "com.example.monitor", "DetailType": "Test Alert",
         "Detail": json.dumps({"state": "ALARM", "n": 1, "nested": {"list": [1, "two", None]}}),
         "Resources": ["arn:aws:ssm:us-east-1:123456789012:parameter/app/db"], "EventBusName": "default",
         "Time": "2024-05-01T12:00:00Z"},
        {"Source": "com.example.other", "DetailType": "Second", "Detail": "{}"},
    ]

    def check_cli(self, version):
        t0 = time.time()
        p = self.srv.aws(["events", "put-events", "--entries", json.dumps(self.ENTRIES)], version=version)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout)
        self.assertEqual(out["FailedEntryCount"], 0)
        self.assertEqual(len(out["Entries"]), 2)
        ids = [e["EventId"] for e in out["Entries"]]
        for i in ids:
            self.assertRegex(i, UUID)
        got = {b["id"]: b for b in bodies(self.rcv, 2)}
        self.assertEqual(set(got), set(ids))
        first, second = got[ids[0]], got[ids[1]]
        self.assertEqual(first, {
            "version": "0", "id": ids[0], "detail-type": "Test Alert", "source": "com.example.monitor",
            "account": ACCOUNT, "time": "2024-05-01T12:00:00Z", "region": REGION,
            "resources": ["arn:aws:ssm:us-east-1:123456789012:parameter/app/db"],
            "detail": {"state": "ALARM", "n": 1, "nested": {"list": [1, "two", None]}}})
        self.assertEqual(second["resources"], [])
        self.assertEqual(second["detail"], {})
        # no Time: the time of the call, to the second
        when = datetime.datetime.strptime(second["time"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
        self.assertLess(abs(when - t0), 120)

    def test_put_events_aws_cli_v1(self):
        self.check_cli(1)

    def test_put_events_aws_cli_v2(self):
        if not twserve.aws_cli_v2_cmd():
            self.skipTest("AWS CLI v2 (%s) is not installed: scripts/setup-deps installs Debian's awscli"
                          % twserve.AWS_CLI_V2)
        self.check_cli(2)

    def test_put_events_boto3_partial_failure_keeps_order(self):
        twserve.need_boto3()
        c = self.srv.boto3()
        entries = [
            {"Source": "ok.one", "DetailType": "d", "Detail": '{"i":1}'},
            {"Source": "bad.detail", "DetailType": "d", "Detail": "[1, 2]"},
            {"Source": "bad.dt", "Detail": "{}"},
            {"Source": "bad.json", "DetailType": "d", "Detail": "{not json"},
            {"Source": "ok.two", "DetailType": "d", "Detail": '{"i":2}',
             "EventBusName": "arn:aws:events:us-east-1:123456789012:event-bus/default"},
        ]
        resp = c.put_events(Entries=entries)
        self.assertEqual(resp["FailedEntryCount"], 3)
        e = resp["Entries"]
        self.assertEqual(len(e), 5)
        self.assertRegex(e[0]["EventId"], UUID)
        self.assertEqual(e[1]["ErrorCode"], "MalformedDetail")
        self.assertEqual(e[2]["ErrorCode"], "InvalidArgument")
        self.assertIn("DetailType", e[2]["ErrorMessage"])
        self.assertEqual(e[3]["ErrorCode"], "MalformedDetail")
        self.assertRegex(e[4]["EventId"], UUID)
        for bad in (1, 2, 3):
            self.assertNotIn("EventId", e[bad])
        got = bodies(self.rcv, 2)
        self.rcv.quiet(0.5, "/hook")
        self.assertEqual(sorted(b["source"] for b in got), ["ok.one", "ok.two"])
        self.assertEqual({b["id"] for b in got}, {e[0]["EventId"], e[4]["EventId"]})

    def test_put_events_region_is_the_signed_region(self):
        twserve.need_boto3()
        import boto3
        c = boto3.client("events", endpoint_url=self.srv.url, region_name="eu-west-1", aws_access_key_id=AKID,
                         aws_secret_access_key=SECRET)
        r = c.put_events(Entries=[{"Source": "s", "DetailType": "d", "Detail": "{}"}])
        self.assertEqual(r["FailedEntryCount"], 0)
        self.assertEqual(bodies(self.rcv, 1)[0]["region"], "eu-west-1")

    def test_put_events_epoch_time_from_sdk(self):
        twserve.need_boto3()
        c = self.srv.boto3()
        when = datetime.datetime(2021, 7, 28, 10, 11, 12, tzinfo=datetime.timezone.utc)
        c.put_events(Entries=[{"Source": "s", "DetailType": "d", "Detail": "{}", "Time": when}])
        self.assertEqual(bodies(self.rcv, 1)[0]["time"], "2021-07-28T10:11:12Z")

    def test_oversize_entries_validation_exception(self):
        twserve.need_boto3()
        from botocore.exceptions import ClientError
        c = self.srv.boto3()
        big = json.dumps({"blob": "x" * (300 * 1024)})
        with self.assertRaises(ClientError) as cm:
            c.put_events(Entries=[{"Source": "s", "DetailType": "d", "Detail": big}])
        err = cm.exception.response["Error"]
        self.assertEqual(err["Code"], "ValidationException")
        self.assertEqual(err["Message"], "Total size of the entries in the request is over the limit.")
        # several entries that are fine alone but too large together
        part = json.dumps({"blob": "y" * (100 * 1024)})
        with self.assertRaises(ClientError) as cm:
            c.put_events(Entries=[{"Source": "s", "DetailType": "d", "Detail": part}] * 3)
        self.assertEqual(cm.exception.response["Error"]["Code"], "ValidationException")
        # under the limit: accepted and delivered whole
        ok = json.dumps({"blob": "z" * (200 * 1024)})
        r = c.put_events(Entries=[{"Source": "s", "DetailType": "d", "Detail": ok}])
        self.assertEqual(r["FailedEntryCount"], 0)
        self.assertEqual(len(bodies(self.rcv, 1)[0]["detail"]["blob"]), 200 * 1024)
        self.rcv.quiet(0.3, "/hook")


class TestTestEventPattern(ApiCase):
    """TestEventPattern with the tutorial's patterns and AWS's sample events."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with open(os.path.join(FIXTURES, "ssm-parameter-store-change.json")) as f:
            cls.ssm_event = json.load(f)
        with open(os.path.join(FIXTURES, "cloudtrail-api-call-via-eventbridge.json")) as f:
            cls.ddb_event = json.load(f)

    SSM = {"source": ["aws.ssm"], "detail-type": ["Parameter Store Change"]}
    DDB = {"source": ["aws.dynamodb"], "detail-type": ["AWS API Call via CloudTrail"],
           "detail": {"eventName": ["CreateTable"]}}

    def cli(self, version, pattern, event):
        return self.srv.aws(["events", "test-event-pattern", "--event-pattern", json.dumps(pattern),
                             "--event", json.dumps(event)], version=version)

    def check_cli(self, version):
        p = self.cli(version, self.SSM, self.ssm_event)
        self.assertEqual((p.returncode, json.loads(p.stdout or "null")), (0, {"Result": True}), p.stderr)
        p = self.cli(version, self.DDB, self.ssm_event)
        self.assertEqual((p.returncode, json.loads(p.stdout or "null")), (0, {"Result": False}), p.stderr)
        p = self.cli(version, self.DDB, self.ddb_event)
        self.assertEqual((p.returncode, json.loads(p.stdout or "null")), (0, {"Result": True}), p.stderr)
        # an invalid pattern: AWS's exception, printed by the CLI, non-zero exit
        p = self.cli(version, {"source": "aws.ssm"}, self.ssm_event)
        self.assertEqual(p.returncode, 255 if version == 1 else 254, p.stderr)
        self.assertIn("An error occurred (InvalidEventPatternException) when calling the TestEventPattern operation",
                      p.stderr)
        # an event without a required field
        ev = dict(self.ssm_event)
        del ev["account"]
        p = self.cli(version, self.SSM, ev)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("(ValidationException)", p.stderr)
        self.assertIn("account", p.stderr)

    def test_aws_cli_v1(self):
        self.check_cli(1)

    def test_aws_cli_v2(self):
        if not twserve.aws_cli_v2_cmd():
            self.skipTest("AWS CLI v2 (%s) is not installed: scripts/setup-deps installs Debian's awscli"
                          % twserve.AWS_CLI_V2)
        self.check_cli(2)

    def test_boto3(self):
        twserve.need_boto3()
        from botocore.exceptions import ClientError
        c = self.srv.boto3()
        cases = [
            ({"detail": {"name": [{"prefix": "fo"}]}}, True),
            ({"detail": {"name": [{"anything-but": "foo"}]}}, False),
            ({"detail": {"operation": [{"equals-ignore-case": "CREATE"}]}}, True),
            ({"resources": [{"suffix": "/foo"}]}, True),
            ({"detail": {"missing": [{"exists": False}]}}, True),
            ({"$or": [{"source": ["x"]}, {"region": ["us-east-1"]}]}, True),
        ]
        for pattern, want in cases:
            r = c.test_event_pattern(EventPattern=json.dumps(pattern), Event=json.dumps(self.ssm_event))
            self.assertIs(r["Result"], want, pattern)
        with self.assertRaises(ClientError) as cm:
            c.test_event_pattern(EventPattern='{"detail": {"name": [{"prefix": 5}]}}', Event=json.dumps(self.ssm_event))
        self.assertEqual(cm.exception.response["Error"]["Code"], "InvalidEventPatternException")
        self.assertIn("prefix", cm.exception.response["Error"]["Message"])
        with self.assertRaises(ClientError) as cm:
            c.test_event_pattern(EventPattern=json.dumps(self.SSM), Event="{not json")
        self.assertEqual(cm.exception.response["Error"]["Code"], "ValidationException")
        # nothing is delivered for a test
        self.rcv.quiet(0.3, "/hook")


class TestApiBadInput(ApiCase):
    """Malformed requests get AWS's error shapes (status, Content-Type, __type, message, request id);
    nothing crashes, and what was accepted before is still delivered."""

    def put(self, payload, headers=None):
        return self.srv.api("PutEvents", payload, headers)

    def test_malformed_json_body(self):
        for body in (b'{"Entries": [', b"", b"\xff\xfe", b"[]", b"42", b'"Entries"'):
            st, hd, parsed = self.put(body)
            self.assertAwsError(st, hd, parsed, 400, "SerializationException")

    def test_entries_missing_empty_or_too_many(self):
        one = {"Source": "s", "DetailType": "d", "Detail": "{}"}
        st, hd, b = self.put({})
        self.assertAwsError(st, hd, b, 400, "ValidationException", "Member must not be null")
        st, hd, b = self.put({"Entries": []})
        self.assertAwsError(st, hd, b, 400, "ValidationException", "Member must have length greater than or equal to 1")
        st, hd, b = self.put({"Entries": [one] * 11})
        self.assertAwsError(st, hd, b, 400, "ValidationException", "Member must have length less than or equal to 10")
        st, hd, b = self.put({"Entries": "nope"})
        self.assertEqual(st, 400, b)
        self.assertIn(b.get("__type"), ("ValidationException", "SerializationException"), b)
        st, hd, b = self.put({"Entries": [one] * 10})
        self.assertEqual(st, 200, b)
        self.assertEqual(b["FailedEntryCount"], 0)
        self.assertEqual(len(bodies(self.rcv, 10)), 10)

    def test_no_entry_complete_fails_the_request(self):
        st, hd, b = self.put({"Entries": [{"Source": "s"}, {"DetailType": "d", "Detail": "{}"}]})
        self.assertAwsError(st, hd, b, 400, "ValidationException")
        self.rcv.quiet(0.3, "/hook")

    def test_wrong_content_type(self):
        payload = {"Entries": [{"Source": "s", "DetailType": "d", "Detail": "{}"}]}
        for ct in ("text/plain", "application/xml", ""):
            st, hd, b = self.put(payload, {"Content-Type": ct})
            self.assertEqual(st, 400, (ct, b))
            self.assertEqual(hd.get("content-type"), JSON11)
            self.assertIn(b.get("__type"), ("SerializationException", "UnknownOperationException",
                                            "ValidationException"), b)
        # what SDKs also send: application/json works
        st, hd, b = self.put(payload, {"Content-Type": "application/json"})
        self.assertEqual(st, 200, b)
        bodies(self.rcv, 1)

    def test_unknown_operation(self):
        st, hd, b = self.srv.api("ListRules", {})
        self.assertAwsError(st, hd, b, 400, "UnknownOperationException", "ListRules")
        st, hd, b = self.srv.api("PutRule", {"Name": "x", "EventPattern": "{}"})
        self.assertAwsError(st, hd, b, 400, "UnknownOperationException")
        st, _, data = self.srv.post("/", b"{}", {"Content-Type": JSON11})
        self.assertEqual(st, 400)
        self.assertEqual(json.loads(data)["__type"], "UnknownOperationException")
        st, _, data = self.srv.post("/", b"{}", {"Content-Type": JSON11, "X-Amz-Target": "AmazonSSM.PutEvents"})
        self.assertEqual(json.loads(data)["__type"], "UnknownOperationException")
        # the CLI shows it as AWS's error and fails
        p = self.srv.aws(["events", "list-rules"], version=1)
        self.assertEqual(p.returncode, 255, p.stderr)
        self.assertIn("An error occurred (UnknownOperationException) when calling the ListRules operation", p.stderr)

    def test_unusable_entries_each_get_their_error(self):
        good = {"Source": "s", "DetailType": "d", "Detail": '{"fine": true}'}
        # a Detail that is not a JSON object: that entry fails, the others go through
        st, hd, b = self.put({"Entries": [
            {"Source": "s", "DetailType": "d", "Detail": '{"deep":' + "[" * 2000 + "]" * 2000 + "}"},
            {"Source": "s", "DetailType": "d", "Detail": '"a string"'}, good]})
        self.assertEqual(st, 200, b)
        self.assertEqual([e.get("ErrorCode") for e in b["Entries"]], ["MalformedDetail", "MalformedDetail", None])
        self.assertEqual(b["FailedEntryCount"], 2)
        self.assertEqual(bodies(self.rcv, 1)[0]["detail"], {"fine": True})
        self.rcv.clear()
        # members of the wrong type (SDKs never send them): the request fails with AWS's error shape, or
        # the entry does; either way nothing of it is delivered, and nothing crashes
        for bad in ({"Source": "s", "DetailType": "d", "Detail": "{}", "Time": "yesterday"},
                    {"Source": "s", "DetailType": "d", "Detail": "{}", "Resources": "arn:one"},
                    {"Source": "s", "DetailType": "d", "Detail": "{}", "Resources": [1]},
                    {"Source": ["s"], "DetailType": "d", "Detail": "{}"},
                    "not an object"):
            st, hd, b = self.put({"Entries": [bad, good]})
            if st == 200:
                self.assertEqual(b["FailedEntryCount"], 1, (bad, b))
                self.assertIn(b["Entries"][0]["ErrorCode"], ("InvalidArgument", "MalformedDetail"), (bad, b))
                self.assertIn("EventId", b["Entries"][1])
                self.assertEqual(bodies(self.rcv, 1)[0]["id"], b["Entries"][1]["EventId"])
                want = 1
            else:
                self.assertEqual(st, 400, (bad, b))
                self.assertIn(b.get("__type"), ("SerializationException", "ValidationException"), (bad, b))
                want = 0
            time.sleep(0.3)
            self.assertEqual(len(self.rcv.requests("/hook")), want, bad)
            self.rcv.clear()

    def test_oversize_request_body_is_refused_before_reading(self):
        # 4 MiB is the API's request cap: refused with 413 from the headers, the server stays up
        blob = json.dumps({"Entries": [{"Source": "s", "DetailType": "d", "Detail": "{}"}], "pad": "p" * (5 << 20)})
        st, hd, data = self.srv.post("/", blob, {"X-Amz-Target": "AWSEvents.PutEvents", "Content-Type": JSON11})
        self.assertEqual(st, 413, data[:300])
        self.assertIn(b"4194304", data)
        st, hd, b = self.put({"Entries": [{"Source": "after", "DetailType": "d", "Detail": "{}"}]})
        self.assertEqual(st, 200)
        self.assertEqual(bodies(self.rcv, 1)[0]["source"], "after")

    def test_oversize_request_body_has_aws_error_shape(self):
        blob = b'{"Entries": [], "pad": "' + b"p" * (5 << 20) + b'"}'
        st, hd, data = self.srv.post("/", blob, {"X-Amz-Target": "AWSEvents.PutEvents", "Content-Type": JSON11})
        self.assertEqual(st, 413)
        self.assertEqual(hd.get("content-type"), JSON11)
        body = json.loads(data)
        self.assertIn("__type", body)
        self.assertIn("message", body)

    def test_methods_and_paths(self):
        # GET / is the dashboard's page (docs/DASHBOARD.md); with the dashboard off it is a 405
        # (test_dashboard_api.Page.test_disabled).
        st, hd, _ = self.srv.request("GET", "/")
        self.assertEqual(st, 200)
        self.assertTrue(hd.get("content-type", "").startswith("text/html"), hd)
        st, hd, _ = self.srv.request("PUT", "/")
        self.assertEqual(st, 405)
        self.assertEqual(hd.get("allow"), "POST")
        st, _, _ = self.srv.request("PUT", "/events")
        self.assertEqual(st, 405)
        st, _, _ = self.srv.request("POST", "/no/such/path", b"{}")
        self.assertEqual(st, 404)
        st, hd, _ = self.srv.request("POST", "/healthz", b"{}")
        self.assertEqual(st, 405)
        self.assertEqual(hd.get("allow"), "GET")

    def test_garbage_does_not_crash_and_accepted_events_survive(self):
        st, _, b = self.put({"Entries": [{"Source": "before", "DetailType": "d", "Detail": "{}"}]})
        self.assertEqual(st, 200)
        junk = [b"\x00" * 100, b"{" * 5000, b'{"Entries":[{"Source":' + b'"' * 3000, os.urandom(4096),
                b'{"Entries":[{"Source":"s","DetailType":"d","Detail":"{\\"a\\":\\"\\ud800\\"}"}]}']
        for body in junk:
            for target in ("AWSEvents.PutEvents", "AWSEvents.TestEventPattern"):
                st, _, _ = self.srv.post("/", body, {"X-Amz-Target": target, "Content-Type": JSON11})
                self.assertIn(st, (200, 400), body[:40])
            st, _, _ = self.srv.post("/events", body, {"Content-Type": "application/json"})
            self.assertIn(st, (200, 400, 415), body[:40])
        # deep nesting, a gzip bomb, a huge header: refused, no crash
        st, _, _ = self.srv.post("/events", b"[" * 300000, {"Content-Type": "application/json"})
        self.assertIn(st, (200, 400))
        st, _, _ = self.srv.post("/events", b'{"a":' * 300000, {"Content-Type": "application/json"})
        self.assertIn(st, (200, 400))
        st, _, _ = self.srv.post("/events", gzip.compress(b" " * (80 << 20)),
                                 {"Content-Type": "application/json", "Content-Encoding": "gzip"})
        self.assertEqual(st, 413)
        try:
            st, _, _ = self.srv.post("/", b"{}", {"X-Amz-Target": "AWSEvents.PutEvents", "Content-Type": JSON11,
                                                  "X-Big": "h" * 200000})
            self.assertGreaterEqual(st, 400)
        except (ConnectionError, http.client.HTTPException):
            pass                    # closing the connection is a fine answer too
        # a client that sends headers promising a body and hangs up
        import socket
        with socket.create_connection(("127.0.0.1", self.srv.port)) as s:
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\nX-Amz-Target: AWSEvents.PutEvents\r\n"
                      b"Content-Type: application/x-amz-json-1.1\r\n\r\n{\"Entries\":")
        got = [b["source"] for b in bodies(self.rcv, 1)]
        self.assertIn("before", got)
        self.assertEqual(self.srv.healthz()["status"], "ok")


class TestEventsEndpoint(ApiCase):
    """POST /events: JSON lines, arrays, CloudTrail log files, gzip; counts and per-line errors."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.records = twserve.cloudtrail_records(limit=400)[200:240]

    def post(self, body, headers=None):
        st, hd, data = self.srv.post("/events", body, headers or {"Content-Type": "application/x-ndjson"})
        return st, hd, json.loads(data)

    def test_json_lines_of_cloudtrail_records_are_wrapped(self):
        recs = self.records[:5]
        st, hd, b = self.post("".join(json.dumps(r) + "\n" for r in recs))
        self.assertEqual(st, 200, b)
        self.assertEqual(hd.get("content-type"), "application/json")
        self.assertEqual(b, {"accepted": 5, "duplicates": 0, "rejected": 0, "errors": []})
        got = {x["detail"]["eventID"]: x for x in bodies(self.rcv, 5)}
        for r in recs:
            ev = got[r["eventID"]]
            self.assertEqual(ev["detail"], r)
            self.assertEqual(ev["source"], "aws." + r["eventSource"].split(".")[0] if r["eventSource"] !=
                             "monitoring.amazonaws.com" else "aws.cloudwatch")
            self.assertEqual(ev["time"], r["eventTime"])
            self.assertEqual(ev["region"], r["awsRegion"])
            self.assertTrue(ev["detail-type"].startswith("AWS "), ev["detail-type"])

    def test_array_cloudtrail_file_and_gzip(self):
        recs = self.records[5:20]
        st, _, b = self.post(json.dumps(recs[:5]), {"Content-Type": "application/json"})
        self.assertEqual((st, b["accepted"]), (200, 5), b)
        doc = json.dumps({"Records": recs[5:10]}).encode()
        st, _, b = self.post(gzip.compress(doc), {"Content-Type": "application/json", "Content-Encoding": "gzip"})
        self.assertEqual((st, b["accepted"]), (200, 5), b)
        # a .json.gz log file as it is, recognised by its magic bytes
        st, _, b = self.post(gzip.compress(json.dumps({"Records": recs[10:15]}).encode()),
                             {"Content-Type": "application/octet-stream"})
        self.assertEqual((st, b["accepted"]), (200, 5), b)
        ids = {x["detail"]["eventID"] for x in bodies(self.rcv, 15)}
        self.assertEqual(ids, {r["eventID"] for r in recs})

    def test_duplicates_are_dropped(self):
        recs = self.records[20:23]
        body = "".join(json.dumps(r) + "\n" for r in recs + [recs[0]])
        st, _, b = self.post(body)
        # every line is taken ("accepted" counts the duplicates too: accepted + rejected = lines)
        self.assertEqual(b, {"accepted": 4, "duplicates": 1, "rejected": 0, "errors": []})
        st, _, b = self.post(json.dumps(recs[1]))
        self.assertEqual((b["accepted"], b["duplicates"]), (1, 1), b)
        bodies(self.rcv, 3)
        self.rcv.quiet(0.5, "/hook")
        self.assertGreaterEqual(self.srv.metric("trailwatch_events_duplicate_total", source="http"), 2)

    def test_bad_lines_are_reported_and_the_rest_accepted(self):
        good = self.records[25:27]
        lines = [json.dumps(good[0]), '{"broken": ', "[1, 2]", '"text"', json.dumps(good[1])]
        st, _, b = self.post("\n".join(lines) + "\n")
        self.assertEqual(st, 200, b)
        self.assertEqual((b["accepted"], b["rejected"]), (2, 3), b)
        self.assertEqual([e["line"] for e in b["errors"]], [2, 3, 4])
        self.assertIn("must be a JSON object", b["errors"][1]["message"])
        self.assertEqual(len(bodies(self.rcv, 2)), 2)

    def test_oversize_event_rejected_alone(self):
        big = dict(self.records[27], padding="x" * (300 * 1024))
        st, _, b = self.post(json.dumps(self.records[28]) + "\n" + json.dumps(big) + "\n")
        self.assertEqual(st, 200, b)
        self.assertEqual((b["accepted"], b["rejected"]), (1, 1), b)
        self.assertIn("262144", b["errors"][0]["message"])
        self.assertEqual(bodies(self.rcv, 1)[0]["detail"]["eventID"], self.records[28]["eventID"])

    def test_refusals(self):
        def check(body, headers, status, text):
            st, hd, data = self.srv.post("/events", body, headers)
            self.assertEqual(st, status, data)
            self.assertEqual(hd.get("content-type"), "application/json")
            msg = json.loads(data)["error"]
            self.assertIn(text, msg)
        check(b"", {"Content-Type": "application/json"}, 400, "empty body")
        check(b"   \n", {"Content-Type": "application/json"}, 400, "empty body")
        check(b"hello world", {"Content-Type": "text/plain"}, 400, "not JSON")
        check(b'{"a":1}', {"Content-Type": "text/html"}, 415, "Content-Type must be JSON")
        check(b'{"a":1}', {"Content-Type": "application/xml"}, 415, "Content-Type must be JSON")
        check(b'{"a":1}', {"Content-Type": "application/json", "Content-Encoding": "br"}, 415, "Content-Encoding")
        check(b"\x1f\x8b\x08\x00garbage", {"Content-Type": "application/json"}, 400, "gzip")
        check(gzip.compress(b'{"a":1}\n' * 1000)[:-30], {"Content-Type": "application/json",
                                                         "Content-Encoding": "gzip"}, 400, "gzip")
        # over the 64 MiB body cap: refused from Content-Length, before reading
        st, _, data = self.srv.post("/events", b"{" + b" " * (65 << 20) + b"}", {"Content-Type": "application/json"})
        self.assertEqual(st, 413, data[:200])
        self.rcv.quiet(0.3, "/hook")


class TestSigV4(ApiCase):
    """server.access_keys: requests must be signed with a configured key (AWS's messages otherwise)."""

    server_extra = {"access_keys": [{"id": AKID, "secret": "${TW_TEST_SECRET}"}]}
    server_env = {"TW_TEST_SECRET": SECRET}
    ENTRIES = json.dumps([{"Source": "signed", "DetailType": "d", "Detail": "{}"}])

    def signed_post(self, path, body, when=None, secret=SECRET, headers=None, service="events", region=REGION):
        """Signs with botocore's SigV4 signer at `when` (a skewed clock) and sends it."""
        import botocore.auth
        import botocore.awsrequest
        import botocore.credentials
        req = botocore.awsrequest.AWSRequest(method="POST", url=self.srv.url + path, data=body,
                                             headers=dict(headers or {}))
        creds = botocore.credentials.Credentials(AKID, secret)
        when = when or datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            botocore.auth.SigV4Auth(creds, service, region).add_auth(req)
        st, hd, data = self.srv.post(path, body, dict(req.headers.items()))
        return st, hd, json.loads(data)

    def put_body(self):
        return json.dumps({"Entries": [{"Source": "signed", "DetailType": "d", "Detail": "{}"}]})

    API = {"X-Amz-Target": "AWSEvents.PutEvents", "Content-Type": JSON11}

    def test_cli_v1_good_bad_unknown_key(self):
        p = self.srv.aws(["events", "put-events", "--entries", self.ENTRIES], version=1)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["FailedEntryCount"], 0)
        bodies(self.rcv, 1)
        p = self.srv.aws(["events", "put-events", "--entries", self.ENTRIES], version=1, secret="not-the-secret")
        self.assertEqual(p.returncode, 255)
        self.assertIn("An error occurred (InvalidSignatureException) when calling the PutEvents operation: "
                      "The request signature we calculated does not match the signature you provided.", p.stderr)
        p = self.srv.aws(["events", "put-events", "--entries", self.ENTRIES], version=1, key="AKIDNOTCONFIGURED")
        self.assertEqual(p.returncode, 255)
        self.assertIn("(UnrecognizedClientException)", p.stderr)
        self.rcv.quiet(0.3, "/hook")

    def test_cli_v2_good_bad_unsigned(self):
        if not twserve.aws_cli_v2_cmd():
            self.skipTest("AWS CLI v2 (%s) is not installed: scripts/setup-deps installs Debian's awscli"
                          % twserve.AWS_CLI_V2)
        p = self.srv.aws(["events", "put-events", "--entries", self.ENTRIES], version=2)
        self.assertEqual(p.returncode, 0, p.stderr)
        bodies(self.rcv, 1)
        p = self.srv.aws(["events", "put-events", "--entries", self.ENTRIES], version=2, secret="not-the-secret")
        self.assertEqual(p.returncode, 254)
        self.assertIn("(InvalidSignatureException)", p.stderr)
        self.assertIn("signature we calculated does not match", p.stderr)
        p = self.srv.aws(["events", "put-events", "--entries", self.ENTRIES, "--no-sign-request"], version=2)
        self.assertEqual(p.returncode, 254)
        self.assertIn("(MissingAuthenticationTokenException)", p.stderr)
        p = self.srv.aws(["events", "test-event-pattern", "--event-pattern", '{"source":["a"]}', "--event",
                          '{"id":"1","account":"1","source":"a","time":"2020-01-01T00:00:00Z","region":"r",'
                          '"resources":[],"detail-type":"x"}'], version=2, secret="not-the-secret")
        self.assertIn("(InvalidSignatureException)", p.stderr)
        self.rcv.quiet(0.3, "/hook")

    def test_boto3_and_raw_signed_requests(self):
        twserve.need_boto3()
        r = self.srv.boto3().test_event_pattern(EventPattern='{"source":["a"]}', Event=json.dumps(
            {"id": "1", "account": "1", "source": "a", "time": "2020-01-01T00:00:00Z", "region": "r", "resources": [],
             "detail-type": "x"}))
        self.assertTrue(r["Result"])
        st, hd, b = self.signed_post("/", self.put_body(), headers=self.API)
        self.assertEqual(st, 200, b)
        self.assertEqual(b["FailedEntryCount"], 0)
        bodies(self.rcv, 1)

    def test_skewed_clock_signature_expired(self):
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        st, hd, b = self.signed_post("/", self.put_body(), when=now - datetime.timedelta(minutes=10), headers=self.API)
        self.assertAwsError(st, hd, b, 403, "InvalidSignatureException", "Signature expired: ")
        self.assertIn("- 5 min.)", b["message"])
        st, hd, b = self.signed_post("/", self.put_body(), when=now + datetime.timedelta(minutes=10), headers=self.API)
        self.assertAwsError(st, hd, b, 403, "InvalidSignatureException",
                            "Signature not yet current: ")
        # within the allowed skew
        st, hd, b = self.signed_post("/", self.put_body(), when=now - datetime.timedelta(minutes=4), headers=self.API)
        self.assertEqual(st, 200, b)
        bodies(self.rcv, 1)

    def test_skewed_clock_through_boto3(self):
        twserve.need_boto3()
        from botocore.exceptions import ClientError
        c = self.srv.boto3()
        late = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(minutes=10)
        with mock.patch("botocore.auth.get_current_datetime", return_value=late), self.assertRaises(ClientError) as cm:
            c.put_events(Entries=[{"Source": "s", "DetailType": "d", "Detail": "{}"}])
        err = cm.exception.response["Error"]
        self.assertEqual(err["Code"], "InvalidSignatureException")
        self.assertTrue(err["Message"].startswith("Signature expired"), err)
        self.assertEqual(cm.exception.response["ResponseMetadata"]["HTTPStatusCode"], 403)
        self.rcv.quiet(0.3, "/hook")

    def test_captured_request_replayed_later_has_expired(self):
        # awscli v2's PutEvents as captured (signed with AKIDEXAMPLE / the INDEX.md secret, which is SECRET)
        path = twserve.shared("reference", "captures", "awscli2-01-AWSEvents_PutEvents.http")
        with open(path, "rb") as f:
            raw = f.read()
        head, body = raw.split(b"\r\n\r\n", 1) if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)
        lines = head.decode().splitlines()
        headers = dict(l.split(": ", 1) for l in lines[1:])
        date = datetime.datetime.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
        age = time.time() - date.timestamp()
        if abs(age) < 330:
            self.skipTest("the capture is less than 5.5 minutes old by this clock")
        headers.pop("Content-Length", None)
        st, hd, data = self.srv.post("/", body, headers)
        b = json.loads(data)
        self.assertAwsError(st, hd, b, 403, "InvalidSignatureException",
                            "Signature expired" if age > 0 else "Signature not yet current")

    def test_auth_errors_carry_a_request_id(self):
        st, hd, b = self.srv.api("PutEvents", self.put_body())
        self.assertEqual((st, b["__type"]), (403, "MissingAuthenticationTokenException"))
        self.assertTrue(hd.get("x-amzn-requestid"), hd)

    def test_events_endpoint_needs_a_signature_too(self):
        rec = twserve.cloudtrail_records(limit=1)[0]
        st, hd, data = self.srv.post("/events", json.dumps(rec), {"Content-Type": "application/json"})
        self.assertEqual(st, 403)
        self.assertEqual(json.loads(data)["__type"], "MissingAuthenticationTokenException")
        st, hd, b = self.signed_post("/events", json.dumps(rec), secret="wrong",
                                     headers={"Content-Type": "application/json"})
        self.assertEqual((st, b["__type"]), (403, "InvalidSignatureException"))
        st, hd, b = self.signed_post("/events", json.dumps(rec), headers={"Content-Type": "application/json"})
        self.assertEqual(st, 200, b)
        self.assertEqual(b["accepted"], 1)
        self.assertEqual(bodies(self.rcv, 1)[0]["detail"]["eventID"], rec["eventID"])

    def test_secret_never_logged_and_refusals_logged(self):
        self.srv.aws(["events", "put-events", "--entries", self.ENTRIES], version=1, secret="not-the-secret")
        rec = self.srv.wait_log("request refused", reason="InvalidSignatureException")
        self.assertEqual(rec.get("access_key"), AKID)
        self.assertNotIn(SECRET, self.srv.stderr())
        self.assertNotIn(SECRET, self.srv.metrics_text())


if __name__ == "__main__":
    unittest.main()
