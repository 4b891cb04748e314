"""End-to-end: README's walk to a real AWS setup, checked without AWS.

- Its AWS CLI commands (every ```sh block of "From the demo to your AWS account") run as written, in
  bash with -e, against moto_server: the CLI validates every parameter against the service models
  and moto creates the connection, API destination, role, rule, queue, notification, Firehose stream
  and subscription filter. Only what the README says already exists is made first (the trail's
  bucket, its log group, the two roles it names).
- Its trailwatch.yml fragments load (`rules check`), and the trailwatch side of each path works:
  an EventBridge API destination's request (its headers, the API key of the connection) is accepted
  at POST /events and alerted; without the key it is refused."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import twaws
import twserve
import twtest
from twserve import Server

ROOT = twtest.ROOT


def aws_section():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    start = text.index("## From the demo to your AWS account")
    return text[start:text.index("\n## ", start + 10)]


def blocks(kind):
    return re.findall(r"```%s\n(.*?)```" % kind, aws_section(), re.S)


class TestReadmeAwsCommands(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not twaws.moto_available():
            raise unittest.SkipTest("moto_server is not installed")
        try:
            import awscli  # noqa: F401  (v1 reads AWS_ENDPOINT_URL; Debian's v2.9 does not)
        except ImportError:
            raise unittest.SkipTest("the AWS CLI v1 (pip awscli) is not installed")
        cls.moto = twaws.Moto()

    @classmethod
    def tearDownClass(cls):
        cls.moto.stop()

    def test_every_command_runs_as_written(self):
        d = tempfile.mkdtemp(prefix="tw-e2e-")
        self.addCleanup(shutil.rmtree, d, True)
        # what the README takes as given
        s3 = self.moto.client("s3")
        s3.create_bucket(Bucket="my-trail-bucket")
        s3.create_bucket(Bucket="my-firehose-failures")
        logs = self.moto.client("logs")
        logs.create_log_group(logGroupName="aws-cloudtrail-logs-123456789012")
        iam = self.moto.client("iam")
        trust = lambda svc: json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": svc}, "Action": "sts:AssumeRole"}]})
        iam.create_role(RoleName="firehose-to-s3", AssumeRolePolicyDocument=trust("firehose.amazonaws.com"))
        iam.create_role(RoleName="cwlogs-to-firehose", AssumeRolePolicyDocument=trust("logs.amazonaws.com"))
        # `aws` is the CLI v1 of the Python running the tests, pointed at moto
        bindir = os.path.join(d, "bin")
        os.makedirs(bindir)
        with open(os.path.join(bindir, "aws"), "w") as f:
            # (explicitly too: v1 gives SQS its legacy endpoint despite AWS_ENDPOINT_URL)
            f.write("#!/bin/sh\nexec %s -m awscli \"$@\" --endpoint-url \"$AWS_ENDPOINT_URL\"\n" % sys.executable)
        os.chmod(os.path.join(bindir, "aws"), 0o755)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(self.moto.env(AWS_ENDPOINT_URL=self.moto.url, AWS_DEFAULT_REGION=twaws.REGION, AWS_PAGER=""))
        env["PATH"] = bindir + os.pathsep + env["PATH"]
        with open(os.path.join(d, "aws-config"), "w") as f:       # as README tells v1 users to
            f.write("[default]\ncli_follow_urlparam = false\n")
        env["AWS_CONFIG_FILE"] = os.path.join(d, "aws-config")
        script = "set -eu\n" + "\n".join(blocks("sh"))
        self.assertIn("create-api-destination", script)
        self.assertIn("put-bucket-notification-configuration", script)
        self.assertIn("put-subscription-filter", script)
        p = subprocess.run(["bash", "-c", script], cwd=d, env=env, capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout[-3000:] + p.stderr[-3000:])
        # what the commands made, as AWS (moto) now has it
        ev = self.moto.client("events")
        [target] = ev.list_targets_by_rule(Rule="to-trailwatch")["Targets"]
        dest = ev.describe_api_destination(Name="trailwatch")
        self.assertEqual(target["Arn"], dest["ApiDestinationArn"])
        self.assertEqual(dest["InvocationEndpoint"], "https://trailwatch.example.com/events")
        self.assertEqual(json.loads(ev.describe_rule(Name="to-trailwatch")["EventPattern"]),
                         {"source": [{"prefix": "aws."}]})
        conn = ev.describe_connection(Name="trailwatch")
        self.assertEqual(conn["AuthorizationType"], "API_KEY")
        q = self.moto.client("sqs").get_queue_url(QueueName="trail-files")["QueueUrl"]
        notif = s3.get_bucket_notification_configuration(Bucket="my-trail-bucket")
        self.assertEqual(notif["QueueConfigurations"][0]["Events"], ["s3:ObjectCreated:*"])
        self.assertTrue(q.endswith("/trail-files"))
        fh = self.moto.client("firehose").describe_delivery_stream(DeliveryStreamName="trailwatch")
        http = fh["DeliveryStreamDescription"]["Destinations"][0]["HttpEndpointDestinationDescription"]
        self.assertEqual(http["EndpointConfiguration"]["Url"], "https://trailwatch.example.com/firehose")
        [sub] = logs.describe_subscription_filters(logGroupName="aws-cloudtrail-logs-123456789012")["subscriptionFilters"]
        self.assertTrue(sub["destinationArn"].endswith(":deliverystream/trailwatch"))


class TestReadmeTrailwatchSide(unittest.TestCase):
    def test_the_yaml_fragments_load(self):
        frags = blocks("yaml")
        self.assertGreaterEqual(len(frags), 4)
        d = tempfile.mkdtemp(prefix="tw-e2e-")
        self.addCleanup(shutil.rmtree, d, True)
        env = dict(os.environ, TW_EVENTS_KEY="k" * 48, FIREHOSE_KEY="f" * 48,
                   SLACK_WEBHOOK_URL="https://hooks.slack.com/services/T0/B0/x",
                   TRAILWATCH_RULES_DIR=os.path.join(ROOT, "rules"))
        for i, frag in enumerate(frags):
            path = os.path.join(d, "f%d.yml" % i)
            with open(path, "w") as f:
                f.write(frag)
                if "targets:" not in frag:
                    f.write("targets: {out: {kind: console}}\n")
            p = subprocess.run([twtest.tw_bin(), "rules", "check", "-c", path], env=env, capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(p.returncode, 0, frag + p.stderr)

    def test_an_api_destination_request_is_accepted_with_its_key_only(self):
        key = "0123456789abcdef0123456789abcdef"
        srv = Server(self, "sources: {eventbridge: false, http: {api_key: \"${KEY}\"}}\n"
                           "targets: {out: {kind: file, path: out.jsonl}}\n"
                           "rules: [{name: ec2, pattern: {source: [aws.ec2]}, targets: [out]}]\n",
                     env={"KEY": key}).start()
        event = {"version": "0", "id": "b1c9d7ee-0000-4000-8000-000000000e01", "detail-type": "AWS API Call via CloudTrail",
                 "source": "aws.ec2", "account": "123456789012", "time": "2024-05-01T10:00:00Z", "region": "us-east-1",
                 "resources": [], "detail": {"eventName": "RunInstances", "eventSource": "ec2.amazonaws.com"}}
        # what an API destination sends: the event as JSON, the connection's API key header
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "Amazon/EventBridge/ApiDestinations"}
        st, _, body = srv.post("/events", json.dumps(event).encode(), dict(headers, **{"x-api-key": key}))
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body)["accepted"], 1)
        twserve.wait_until(lambda: len(srv.jsonl("out.jsonl")) == 1, 20, what="the alert")
        for bad in ({}, {"x-api-key": key[:-1] + "0"}):
            st, _, body = srv.post("/events", json.dumps(event).encode(), dict(headers, **bad))
            self.assertEqual((st, json.loads(body)), (401, {"error": "missing or wrong x-api-key header"}))
        st, _, _ = srv.api("PutEvents", {"Entries": []})
        self.assertEqual(st, 404)                                # eventbridge: false
        # beyond loopback, the key is enough for /events alone; the PutEvents API needs access keys
        d = tempfile.mkdtemp(prefix="tw-e2e-")
        self.addCleanup(shutil.rmtree, d, True)
        for eb, rc in (("false", None), ("true", 2)):
            path = os.path.join(d, "t.yml")
            with open(path, "w") as f:
                f.write("data_dir: %s\nserver: {listen: \"0.0.0.0:%d\"}\nsources: {eventbridge: %s, http: {api_key: %s}}\n"
                        % (os.path.join(d, "var"), twserve.free_port(), eb, key))
            p = subprocess.Popen([twtest.tw_bin(), "serve", "-c", path], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
            twserve._live.add(p)
            try:
                got = p.wait(3)
            except subprocess.TimeoutExpired:
                got = None
                p.terminate()
                p.wait(20)
            self.assertEqual(got, rc, p.stderr.read())


if __name__ == "__main__":
    unittest.main()
