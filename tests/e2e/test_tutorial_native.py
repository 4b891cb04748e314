"""End-to-end: the tutorial's DynamoDB monitor as plain trailwatch.yml (examples/dynamodb-create-table/
trailwatch.yml, no Python), its price computed by trailwatch's facts from dynamodb-prices.yml.

The example files are used as they are (copied into a temporary folder, so the data dir is not in
the repository). Events go in the way AWS delivers them: the EventBridge event of a CreateTable call
sent with the AWS CLI's `events put-events`, and the raw CloudTrail record as a log file holds it. A
local receiver stands in for Slack. The message must be the one the tutorial's Python handler
(handler.py beside it) writes for the same event, and the price exact to the cent."""
import copy
import importlib.util
import json
import os
import unittest

import twserve
from twserve import Receiver, Server

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DDB = os.path.join(ROOT, "examples", "dynamodb-create-table")
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "events", "cloudtrail-api-call-via-eventbridge.json")
SLACK = "/services/T000/B000/XXXX"


def read(path):
    with open(path) as f:
        return f.read()


def handler_text(event):
    """What the tutorial's Python handler posts to Slack for this EventBridge event."""
    spec = importlib.util.spec_from_file_location("ddb_handler", os.path.join(DDB, "handler.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    posted = []
    mod.post_to_slack = posted.append
    mod.create_table(event, None)
    return posted[0]


class TestDynamoDBNative(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rcv = Receiver().start()
        cls.srv = Server(None, read(os.path.join(DDB, "trailwatch.yml")),
                         files={"dynamodb-prices.yml": read(os.path.join(DDB, "dynamodb-prices.yml"))},
                         env={"SLACK_WEBHOOK_URL": cls.rcv.url(SLACK)}).start()
        with open(FIXTURE) as f:
            cls.event = json.load(f)

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
        self.srv.check_alive()
        twserve.wait_until(lambda: self.srv.healthz()["outbox_depth"] == 0, 30, what="an empty outbox")

    def texts(self, n):
        got = self.rcv.wait_for(n, 30, SLACK, server=self.srv)
        return [r.json()["text"] for r in got]

    def put_events(self, events):
        """`aws events put-events` with each EventBridge event's source, detail-type and detail."""
        entries = [{"Source": e["source"], "DetailType": e["detail-type"], "Detail": json.dumps(e["detail"]),
                    "Resources": e.get("resources", [])} for e in events]
        p = self.srv.aws(["events", "put-events", "--entries", json.dumps(entries)])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["FailedEntryCount"], 0, p.stdout)

    def event_with(self, event_id, **request):
        ev = copy.deepcopy(self.event)
        ev["detail"]["eventID"] = event_id
        ev["detail"]["requestParameters"] = dict(ev["detail"]["requestParameters"], **request)
        return ev

    def test_put_events_gives_the_handlers_message(self):
        self.put_events([self.event])
        [text] = self.texts(1)
        self.assertEqual(text, "DynamoDB table created: *TestTable*\nRegion: us-east-1\nCreated by: alice (IAMUser)\n"
                               "Capacity: $0.57 a month for 1 RCU and 1 WCU (us-east-1 prices)")
        self.assertEqual(text, handler_text(self.event))

    def test_price_of_5_5_with_one_5_5_index_is_exact_to_the_cent(self):
        # 730 h x (10 RCU x $0.00013 + 10 WCU x $0.00065) = $5.694 -> $5.69
        ev = self.event_with("0ea5d7a8-0000-4b2b-9d8f-00000000a001", tableName="Orders",
                             provisionedThroughput={"readCapacityUnits": 5, "writeCapacityUnits": 5},
                             globalSecondaryIndexes=[{"indexName": "byDate", "keySchema": [],
                                                      "provisionedThroughput": {"readCapacityUnits": 5,
                                                                                "writeCapacityUnits": 5}}])
        self.put_events([ev])
        [text] = self.texts(1)
        self.assertEqual(text.split("\n")[3], "Capacity: $5.69 a month for 10 RCU and 10 WCU (us-east-1 prices)")
        self.assertEqual(text, handler_text(ev))

    def test_raw_cloudtrail_record_and_other_shapes(self):
        recs = []
        # the record as a CloudTrail log file holds it; two indexes, odd table name, a role session
        r = self.event_with("0ea5d7a8-0000-4b2b-9d8f-00000000a002", tableName="Orders<&>",
                            provisionedThroughput={"readCapacityUnits": 25, "writeCapacityUnits": 7},
                            globalSecondaryIndexes=[
                                {"indexName": "a", "provisionedThroughput": {"readCapacityUnits": 3, "writeCapacityUnits": 2}},
                                {"indexName": "b", "provisionedThroughput": {"readCapacityUnits": 1, "writeCapacityUnits": 1}}])["detail"]
        r["userIdentity"] = {"type": "AssumedRole", "arn": "arn:aws:sts::123456789012:assumed-role/Deploy/ci",
                             "principalId": "AROAEXAMPLE:ci"}
        recs.append(r)
        od = self.event_with("0ea5d7a8-0000-4b2b-9d8f-00000000a003", tableName="Sessions",
                             billingMode="PAY_PER_REQUEST")["detail"]
        del od["requestParameters"]["provisionedThroughput"]
        recs.append(od)
        eu = self.event_with("0ea5d7a8-0000-4b2b-9d8f-00000000a004", tableName="Far")["detail"]
        eu["awsRegion"] = "eu-west-1"
        recs.append(eu)
        st, body = self.srv.post_events(recs)
        self.assertEqual((st, body["accepted"]), (200, 3), body)
        texts = {t.split("\n")[0]: t for t in self.texts(3)}
        orders = texts["DynamoDB table created: *Orders&lt;&amp;&gt;*"]
        # 730 x (29 x 0.00013 + 10 x 0.00065) = 7.4971 -> $7.50
        self.assertIn("\nCreated by: arn:aws:sts::123456789012:assumed-role/Deploy/ci (AssumedRole)\n", orders)
        self.assertTrue(orders.endswith("\nCapacity: $7.50 a month for 29 RCU and 10 WCU (us-east-1 prices)"), orders)
        wrapped = dict(self.event, detail=recs[0])
        self.assertEqual(orders, handler_text(wrapped))
        self.assertTrue(texts["DynamoDB table created: *Sessions*"].endswith("\nCapacity: on-demand (billed per request)"))
        self.assertEqual(texts["DynamoDB table created: *Sessions*"], handler_text(dict(self.event, detail=recs[1])))
        far = texts["DynamoDB table created: *Far*"]
        self.assertIn("\nRegion: eu-west-1\n", far)
        self.assertTrue(far.endswith("\nCapacity: 1 RCU and 1 WCU (no prices for eu-west-1 in dynamodb-prices.yml)"), far)

    def test_other_calls_are_quiet(self):
        ev = copy.deepcopy(self.event)
        ev["detail"]["eventName"] = "DescribeTable"
        ev["detail"]["eventID"] = "0ea5d7a8-0000-4b2b-9d8f-00000000a005"
        self.put_events([ev])
        self.rcv.quiet(1.5, SLACK)

    def test_the_examples_rules_pass(self):
        p = self.srv.tw("rules", "test", "-c", self.srv.config_path)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stdout.splitlines()[-1], "1 rule, 2 examples: 2 passed, 0 failed")


class TestFactsConfig(unittest.TestCase):
    def test_errors_name_the_fact_and_column(self):
        d = twserve.tempfile.mkdtemp(prefix="tw-e2e-")
        self.addCleanup(twserve.shutil.rmtree, d, True)
        with open(os.path.join(d, "t.yml"), "w") as f:
            f.write("data: {prices: prices.yml, bad-name: x.yml, missing: nope.yml}\n"
                    "targets: {out: {kind: console}}\n"
                    "rules:\n"
                    "  - name: r\n"
                    "    pattern: {source: [aws.dynamodb]}\n"
                    "    targets: [out]\n"
                    "    facts:\n"
                    "      rcu: sum($.detail.a, rcuu)\n"
                    "      ok: data.prices.hours * 2\n"
                    "      typo: data.price.hours\n"
                    "      null: 1\n"
                    "      twice: format('%.2f', ok)\n"
                    "      twice: 2\n"
                    "      list: [1, 2]\n")
        with open(os.path.join(d, "prices.yml"), "w") as f:
            f.write("hours: 730\n")
        p = twserve.subprocess.run([twserve.tw_bin(), "rules", "check", "-c", os.path.join(d, "t.yml")],
                                   capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 2, p.stderr)
        path = os.path.join(d, "t.yml")
        err = p.stderr.splitlines()
        for want in [
                "%s:1: data.bad-name: a table's name is a letter or _, then letters, digits or _ (it is written "
                "data.NAME in facts)" % path,
                "%s:1: data.missing: cannot read %s/nope.yml (No such file or directory)" % (path, d),
                "%s:8: rule \"r\": facts.rcu: column 17: unknown name \"rcuu\" (a fact defined above, data, or $ "
                "for the event)" % path,
                "%s:10: rule \"r\": facts.typo: data.price: no such data table (tables come from `data:` in "
                "trailwatch.yml)" % path,
                "%s:11: rule \"r\": facts.null: a fact's name is a letter or _, then letters, digits or _ (not data, "
                "true, false, null, and, or, not)" % path,
                "%s:13: rule \"r\": facts.twice: defined twice" % path,
                "%s:14: rule \"r\": facts.list: must be an expression (a string)" % path]:
            self.assertIn(want, err)

    def test_slack_default_message_shows_the_facts(self):
        rcv = Receiver().start()
        self.addCleanup(rcv.stop)
        cfg = ("targets: {slack: {kind: slack, url: \"${HOOK}\"}}\n"
               "rules:\n"
               "  - name: big-table\n"
               "    pattern: {source: [aws.dynamodb]}\n"
               "    targets: [slack]\n"
               "    facts:\n"
               "      rcu: sum($.detail.requestParameters.provisionedThroughput.readCapacityUnits)\n"
               "      who: lower($.detail.userIdentity.userName)\n"
               "      nothing: $.detail.nope\n")
        srv = Server(self, cfg, env={"HOOK": rcv.url(SLACK)}).start()
        with open(FIXTURE) as f:
            ev = json.load(f)
        st, body = srv.post_events([ev["detail"]])
        self.assertEqual(st, 200, body)
        [req] = rcv.wait_for(1, 30, SLACK, server=srv)
        blocks = req.json()["blocks"]
        fields = [f["text"] for b in blocks for f in b.get("fields", [])]
        self.assertIn("*rcu*\n1", fields)
        self.assertIn("*who*\nalice", fields)
        self.assertFalse(any(f.startswith("*nothing*") for f in fields), fields)


if __name__ == "__main__":
    unittest.main()
