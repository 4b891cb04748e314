"""End-to-end: the tutorial's two serverless.yml services, loaded unchanged through a trailwatch.yml
`serverless:` entry, their Python handlers run as exec targets the way Lambda would run them.

SLACK_URL comes from the `environment` override (pointing at a local receiver standing in for Slack).
The SSM handler calls ssm:DescribeParameters: a moto_server on a free loopback port holds the
parameter (created with boto3), and AWS_ENDPOINT_URL plus fake credentials in trailwatch's
environment reach the handler (exec targets pass AWS_* through)."""
import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
import unittest
import urllib.request

import twserve
from twserve import Receiver, Response, Server

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples")
SSM_YML = os.path.join(EXAMPLES, "ssm-parameter-store", "serverless.yml")
DDB_YML = os.path.join(EXAMPLES, "dynamodb-create-table", "serverless.yml")
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "events")
PARAM = "/app/db-url"


def digest_examples():
    """Every file of the two example folders, hashed (the tests must leave them as they are)."""
    out = {}
    for d in ("ssm-parameter-store", "dynamodb-create-table"):
        for dirpath, dirs, files in os.walk(os.path.join(EXAMPLES, d)):
            for f in files:
                p = os.path.join(dirpath, f)
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, EXAMPLES)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def start_moto():
    exe = shutil.which("moto_server") or os.path.join(os.path.dirname(sys.executable), "moto_server")
    if not os.access(exe, os.X_OK):
        raise unittest.SkipTest("moto_server is not installed (pip install 'moto[server]')")
    port = twserve.free_port()
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    twserve._live.add(proc)
    url = "http://127.0.0.1:%d" % port

    def up():
        if proc.poll() is not None:
            raise AssertionError("moto_server exited %s" % proc.returncode)
        try:
            urllib.request.urlopen(url + "/moto-api/data.json", timeout=1).read()
            return True
        except OSError:
            return False
    twserve.wait_until(up, 30, what="moto_server on port %d" % port)
    return proc, url


class TestServerless(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        twserve.need_boto3()
        cls.before = digest_examples()
        cls.moto, cls.moto_url = start_moto()
        import boto3
        cls.ssm = boto3.client("ssm", endpoint_url=cls.moto_url, region_name="us-east-1",
                               aws_access_key_id="testing", aws_secret_access_key="testing")
        cls.ssm.put_parameter(Name=PARAM, Value="postgres://db.internal:5432/app", Type="String",
                              Description="The app's <!channel> database & more")
        cls.rcv = Receiver().start()
        cfg = "\n".join([
            "server: {listen: 127.0.0.1:0}",
            "serverless:",
            "  - path: %s" % json.dumps(SSM_YML),
            "    environment: {SLACK_URL: \"${SLACK_URL_FOR_TEST}\"}",
            "  - path: %s" % json.dumps(DDB_YML),
            "    environment:",
            "      SLACK_URL: \"${SLACK_URL_FOR_TEST}\"",
            "rules:                                   # trailwatch.yml rules may name the functions' targets",
            "  - name: custom-to-ssm-handler",
            "    pattern: {source: [custom.params]}",
            "    targets:",
            "      - target: cloudwatch-ssm-dev-parameter",
            "        input_transformer:",
            "          input_paths_map: {n: $.detail.param}",
            "          input_template: >-",
            "            {\"account\": \"111122223333\", \"region\": \"eu-west-1\", \"time\": \"2020-01-01T00:00:00Z\",",
            "            \"detail\": {\"operation\": \"LabelParameterVersion\", \"name\": <n>, \"type\": \"SecureString\"}}",
            ""])
        env = {"SLACK_URL_FOR_TEST": cls.rcv.url("/services/T000/B000/XXXX"),
               "AWS_ENDPOINT_URL": cls.moto_url, "AWS_ENDPOINT_URL_SSM": cls.moto_url,
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
        cls.srv = Server(None, cfg, env=env).start()
        with open(os.path.join(FIXTURES, "ssm-parameter-store-change.json")) as f:
            cls.ssm_event = json.load(f)
        with open(os.path.join(FIXTURES, "cloudtrail-api-call-via-eventbridge.json")) as f:
            cls.ddb_event = json.load(f)

    @classmethod
    def tearDownClass(cls):
        try:
            cls.srv.stop()
        finally:
            cls.srv.cleanup()
            cls.rcv.stop()
            cls.moto.terminate()
            cls.moto.wait(10)
        after = digest_examples()
        assert after == cls.before, "the example folders were changed: %r" % (set(after.items()) ^ set(cls.before.items()))

    SLACK = "/services/T000/B000/XXXX"

    def setUp(self):
        self.rcv.clear()

    def tearDown(self):
        self.srv.check_alive()
        # every test's deliveries are finished before the next one starts (tests stay independent; a
        # target first used while another's delivery is in flight is test_serve_ops's business)
        twserve.wait_until(lambda: self.srv.healthz()["outbox_depth"] == 0, 30, what="an empty outbox")

    def slack_texts(self, n, timeout=20):
        got = self.rcv.wait_for(n, timeout, self.SLACK, server=self.srv)
        for r in got:
            self.assertEqual(r.method, "POST")
            self.assertEqual(r.header("Content-Type"), "application/json")
        return [r.json()["text"] for r in got]

    def test_rules_check_shows_the_functions_as_targets_and_rules(self):
        p = self.srv.tw("rules", "check", "-c", self.srv.config_path)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout
        self.assertIn("3 rules (3 enabled), 2 targets", out)
        self.assertIn("target cloudwatch-ssm-dev-parameter: exec, timeout 6s", out)
        self.assertIn("target cloudtrail-dynamodb-dev-createTable: exec, timeout 6s", out)
        self.assertIn("rule cloudwatch-ssm-dev-parameter-1: medium -> cloudwatch-ssm-dev-parameter", out)
        self.assertIn("rule cloudtrail-dynamodb-dev-createTable-1: medium -> cloudtrail-dynamodb-dev-createTable", out)
        self.assertNotIn("hooks", out)                     # nor any of the secret URL
        self.assertNotIn(self.rcv.url(self.SLACK), out)

    def test_parameter_store_change_is_enriched_from_ssm(self):
        ev = self.ssm_event
        detail = dict(ev["detail"], name=PARAM, description="The app's <!channel> database & more")
        entries = [{"Source": ev["source"], "DetailType": ev["detail-type"], "Detail": json.dumps(detail),
                    "Resources": ["arn:aws:ssm:us-east-1:123456789012:parameter" + PARAM]}]
        p = self.srv.aws(["events", "put-events", "--entries", json.dumps(entries)], version=1)
        self.assertEqual(p.returncode, 0, p.stderr)
        [text] = self.slack_texts(1)
        info = self.ssm.describe_parameters(Filters=[{"Key": "Name", "Values": [PARAM]}])["Parameters"][0]
        lines = text.split("\n")
        self.assertEqual(lines[0], "Parameter Store: Create of */app/db-url*")
        self.assertEqual(lines[1], "Type: String")
        self.assertEqual(lines[2], "Changed by: %s" % info.get("LastModifiedUser", "unknown"))
        self.assertEqual(lines[3], "Version: 1")                       # from DescribeParameters, via moto
        self.assertEqual(lines[4], "Description: The app's &lt;!channel&gt; database &amp; more")
        self.assertRegex(lines[5], r"^Account 123456789012, region us-east-1, at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertNotIn("DescribeParameters failed", text)
        # the parameter changes: SSM now says version 2
        self.ssm.put_parameter(Name=PARAM, Value="postgres://db2.internal:5432/app", Type="String", Overwrite=True)
        self.rcv.clear()
        st, b = self.srv.post_events([dict(ev, id="6a7e4feb-0000-4cf7-a9f1-bf3703497719",
                                           detail=dict(detail, operation="Update"))])
        self.assertEqual((st, b["accepted"]), (200, 1), b)
        [text] = self.slack_texts(1)
        self.assertTrue(text.startswith("Parameter Store: Update of */app/db-url*\n"), text)
        self.assertIn("\nVersion: 2\n", text)

    def test_a_trailwatch_rule_can_feed_a_serverless_function(self):
        st, _, b = self.srv.api("PutEvents", {"Entries": [{"Source": "custom.params", "DetailType": "Label",
                                                           "Detail": json.dumps({"param": PARAM})}]})
        self.assertEqual((st, b["FailedEntryCount"]), (200, 0), b)
        [text] = self.slack_texts(1)
        self.assertTrue(text.startswith("Parameter Store: LabelParameterVersion of */app/db-url*\nType: SecureString\n"),
                        text)
        self.assertIn("\nVersion: ", text)                 # SSM was asked about the parameter
        self.assertTrue(text.endswith("Account 111122223333, region eu-west-1, at 2020-01-01T00:00:00Z"), text)

    def test_unknown_parameter_still_reported(self):
        detail = {"operation": "Delete", "name": "/not/there", "type": "String"}
        st, _, b = self.srv.api("PutEvents", {"Entries": [{"Source": "aws.ssm", "DetailType": "Parameter Store Change",
                                                           "Detail": json.dumps(detail)}]})
        self.assertEqual(st, 200)
        [text] = self.slack_texts(1)
        self.assertIn("Parameter Store: Delete of */not/there*", text)
        self.assertIn("Changed by: unknown", text)

    def test_dynamodb_create_table_from_a_cloudtrail_record(self):
        # the raw CloudTrail record (as in a log file): trailwatch wraps it the way EventBridge would
        rec = copy.deepcopy(self.ddb_event["detail"])
        st, b = self.srv.post_events([rec])
        self.assertEqual((st, b["accepted"]), (200, 1), b)
        [text] = self.slack_texts(1)
        self.assertEqual(text, "DynamoDB table created: *TestTable*\nRegion: us-east-1\nCreated by: alice (IAMUser)\n"
                               "Capacity: $0.57 a month for 1 RCU and 1 WCU (us-east-1 prices)")

    def test_dynamodb_cost_with_indexes_and_on_demand_via_putevents(self):
        rec = copy.deepcopy(self.ddb_event["detail"])
        rec["eventID"] = "0ea5d7a8-0000-4b2b-9d8f-000000000001"
        rec["requestParameters"] = dict(rec["requestParameters"], tableName="Orders<&>",
                                        provisionedThroughput={"readCapacityUnits": 5, "writeCapacityUnits": 5},
                                        globalSecondaryIndexes=[{"indexName": "byDate", "provisionedThroughput": {
                                            "readCapacityUnits": 10, "writeCapacityUnits": 10}}])
        od = copy.deepcopy(self.ddb_event["detail"])
        od["eventID"] = "0ea5d7a8-0000-4b2b-9d8f-000000000002"
        od["requestParameters"] = {"tableName": "Sessions", "billingMode": "PAY_PER_REQUEST"}
        od["userIdentity"] = {"type": "AssumedRole", "arn": "arn:aws:sts::123456789012:assumed-role/Deploy/ci",
                              "principalId": "AROAEXAMPLE:ci"}
        twserve.need_boto3()
        c = self.srv.boto3()
        r = c.put_events(Entries=[{"Source": "aws.dynamodb", "DetailType": "AWS API Call via CloudTrail",
                                   "Detail": json.dumps(x)} for x in (rec, od)])
        self.assertEqual(r["FailedEntryCount"], 0)
        texts = sorted(self.slack_texts(2))
        self.assertIn("DynamoDB table created: *Orders&lt;&amp;&gt;*", texts[0])
        self.assertIn("Capacity: $8.54 a month for 15 RCU and 15 WCU (us-east-1 prices)", texts[0])
        self.assertIn("DynamoDB table created: *Sessions*", texts[1])
        self.assertIn("Created by: arn:aws:sts::123456789012:assumed-role/Deploy/ci (AssumedRole)", texts[1])
        self.assertIn("Capacity: on-demand (billed per request)", texts[1])

    def test_other_events_run_no_handler(self):
        rec = copy.deepcopy(self.ddb_event["detail"])
        rec["eventName"] = "DescribeTable"
        rec["eventID"] = "0ea5d7a8-0000-4b2b-9d8f-000000000003"
        st, b = self.srv.post_events([rec])
        self.assertEqual(st, 200)
        self.rcv.quiet(1.5, self.SLACK)

    def test_failing_slack_call_is_retried_like_lambda(self):
        self.rcv.script(self.SLACK, Response(500, "rollup_error"))
        rec = copy.deepcopy(self.ddb_event["detail"])
        rec["eventID"] = "0ea5d7a8-0000-4b2b-9d8f-000000000004"
        rec["requestParameters"]["tableName"] = "RetryMe"
        st, b = self.srv.post_events([rec])
        self.assertEqual(st, 200)
        texts = self.slack_texts(2, timeout=20)
        self.assertEqual(texts[0], texts[1])
        self.assertIn("*RetryMe*", texts[0])
        rec_log = self.srv.wait_log("delivery will be retried", target="cloudtrail-dynamodb-dev-createTable")
        self.assertIn("HTTP Error 500", rec_log["reason"])       # the handler's traceback, kept as the reason


if __name__ == "__main__":
    unittest.main()
