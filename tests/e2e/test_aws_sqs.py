"""End-to-end: `serve` reading CloudTrail log files announced on SQS (moto_server on 127.0.0.1).

The bucket sends S3 event notifications to the queue (moto delivers them as S3 does); CloudTrail's own
SNS notification is sent raw and SNS-wrapped; s3:TestEvent is skipped. Two trailwatch processes on
the one queue share the work: every record alerts exactly once across both, each did some, and the
queue ends empty (messages deleted only after their files were accepted). A big file keeps its
message invisible while it is read (visibility renewed).
"""
import gzip
import json
import time
import unittest

import twaws
import twserve

RULE_EVENT = "DescribeInstances"


def setUpModule():
    global MOTO, S3, SQS
    if not twaws.moto_available():
        raise unittest.SkipTest("moto_server not installed")
    MOTO = twaws.Moto()
    S3 = MOTO.client("s3")
    SQS = MOTO.client("sqs")


def tearDownModule():
    MOTO.stop()


def config(queue_url, visibility="30s"):
    return {
        "data_dir": "var",
        "aws": {"endpoint_url": MOTO.url},
        "sources": {"eventbridge": False, "http": False,
                    "sqs": {"queue_url": queue_url, "wait": "1s", "visibility_timeout": visibility}},
        "targets": {"log": {"kind": "file", "path": "alerts.jsonl"}},
        "rules": [{"name": "describe", "pattern": {"detail": {"eventName": [RULE_EVENT]}}, "targets": ["log"]}],
    }


def alert_ids(srv):
    return [a["detail"]["eventID"] for a in srv.jsonl("alerts.jsonl")]


def queue_empty(url):
    a = SQS.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                 "ApproximateNumberOfMessagesNotVisible"])
    return a["Attributes"]["ApproximateNumberOfMessages"] == "0" and \
        a["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "0"


class QueueSource(unittest.TestCase):
    def make_queue(self, name):
        return SQS.create_queue(QueueName=name)["QueueUrl"]

    def test_two_processes_share_s3_notifications(self):
        bucket, qname = "notified", "trail-events"
        S3.create_bucket(Bucket=bucket)
        url = self.make_queue(qname)
        arn = SQS.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        S3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
        files = [(k, p) for k, p in twaws.layout_files(subset=True) if "/us-west-1/2021/07/29/" in k][:80]
        files += [(k, p) for k, p in twaws.layout_files(subset=True) if "/us-west-1/" not in k]
        records = twaws.records_of(files)
        want = {r["eventID"] for r in records if r.get("eventName") == RULE_EVENT}
        self.assertGreater(len(want), 10)
        a = twserve.Server(self, config(url), env=MOTO.env())
        b = twserve.Server(self, config(url), env=MOTO.env())
        a.start()
        b.start()
        twaws.upload(S3, bucket, files, threads=4)
        # a digest under the notified prefix is skipped (not a log file)
        S3.put_object(Bucket=bucket, Key="AWSLogs/342082656213/CloudTrail-Digest/us-east-1/2021/07/29/"
                      "342082656213_CloudTrail-Digest_us-east-1_t_us-east-1_20210729T120000Z.json.gz",
                      Body=gzip.compress(b'{"logFiles":[]}'))

        def done():
            return a.metric("trailwatch_sqs_files_total", result="processed") + \
                b.metric("trailwatch_sqs_files_total", result="processed") >= len(files)
        twserve.wait_until(done, timeout=240, what="every announced file read")
        twserve.wait_until(lambda: queue_empty(url), timeout=60, what="the queue drained")
        time.sleep(1)
        ids = alert_ids(a) + alert_ids(b)
        self.assertEqual(len(ids), len(set(ids)), "an alert was doubled")
        self.assertEqual(set(ids), want)
        self.assertGreater(a.metric("trailwatch_sqs_files_total", result="processed"), 0)
        self.assertGreater(b.metric("trailwatch_sqs_files_total", result="processed"), 0)
        self.assertEqual(a.metric("trailwatch_sqs_files_total", result="processed") +
                         b.metric("trailwatch_sqs_files_total", result="processed"), len(files))
        a.stop()
        b.stop()

    def test_cloudtrail_notifications_raw_and_sns_wrapped_and_test_event(self):
        bucket = "ctnotify"
        S3.create_bucket(Bucket=bucket)
        url = self.make_queue("ct-notifications")
        files = [(k, p) for k, p in twaws.layout_files(subset=True) if "/us-east-1/" in k]
        twaws.upload(S3, bucket, files)
        keys = [k for k, _ in files]
        SQS.send_message(QueueUrl=url, MessageBody=json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent",
                                                               "Bucket": bucket}))
        SQS.send_message(QueueUrl=url, MessageBody=json.dumps({"s3Bucket": bucket, "s3ObjectKey": keys[:3]}))
        inner = json.dumps({"s3Bucket": bucket, "s3ObjectKey": keys[3:]})
        SQS.send_message(QueueUrl=url, MessageBody=json.dumps({
            "Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:us-east-1:342082656213:trail",
            "Message": inner, "Timestamp": "2021-07-29T12:00:00.000Z", "SignatureVersion": "1"}))
        SQS.send_message(QueueUrl=url, MessageBody="this is not a notification")
        srv = twserve.Server(self, config(url), env=MOTO.env())
        srv.start()
        twserve.wait_until(lambda: srv.metric("trailwatch_sqs_files_total", result="processed") >= len(keys),
                           timeout=60)
        twserve.wait_until(lambda: queue_empty(url), timeout=60, what="the queue drained")
        self.assertEqual(srv.metric("trailwatch_sqs_messages_total", outcome="test_event"), 1)
        self.assertEqual(srv.metric("trailwatch_sqs_messages_total", outcome="rejected"), 1)
        self.assertEqual(srv.metric("trailwatch_sqs_messages_total", outcome="deleted"), 2)
        recs = twaws.records_of(files)
        self.assertEqual(srv.metric("trailwatch_sqs_records_total"), len(recs))
        srv.stop()

    def test_a_message_is_kept_until_its_files_are_read(self):
        # a corrupt log file: its message stays on the queue (not deleted); once the file is good, the
        # message comes back after its visibility timeout and is done
        url = self.make_queue("corrupt-object")
        bucket = "corrupt-objects"
        S3.create_bucket(Bucket=bucket)
        key = "AWSLogs/1/CloudTrail/us-east-1/2021/07/29/1_CloudTrail_us-east-1_20210729T1200Z_x.json.gz"
        good = gzip.compress(json.dumps({"Records": [dict(twaws.records_of(
            [f for f in twaws.layout_files() if "/us-east-1/" in f[0]][:1])[0], eventID="kept-1",
            eventName=RULE_EVENT)]}).encode())
        S3.put_object(Bucket=bucket, Key=key, Body=good[:len(good) // 2])
        SQS.send_message(QueueUrl=url, MessageBody=json.dumps({"s3Bucket": bucket, "s3ObjectKey": [key]}))
        srv = twserve.Server(self, config(url, visibility="10s"), env=MOTO.env())
        srv.start()
        twserve.wait_until(lambda: srv.metric("trailwatch_sqs_files_failed_total") >= 1, timeout=60)
        self.assertEqual(srv.metric("trailwatch_sqs_messages_total", outcome="kept"), 1)
        self.assertFalse(queue_empty(url))
        self.assertEqual(alert_ids(srv), [])
        S3.put_object(Bucket=bucket, Key=key, Body=good)
        twserve.wait_until(lambda: alert_ids(srv) == ["kept-1"], timeout=60, what="the file read on redelivery")
        twserve.wait_until(lambda: queue_empty(url), timeout=30, what="the message deleted")
        srv.stop()


class Visibility(unittest.TestCase):
    def test_a_slow_file_keeps_its_message_invisible(self):
        # S3 answers GetObject after 14 s, the visibility timeout is 10 s: without renewals the message
        # would come back to the second worker, which would fetch the file again.
        url = SQS.create_queue(QueueName="slow-files")["QueueUrl"]
        key = "AWSLogs/1/CloudTrail/us-east-1/2021/07/29/1_CloudTrail_us-east-1_20210729T1200Z_slow.json.gz"
        rec = dict(twaws.records_of([f for f in twaws.layout_files() if "/us-east-1/" in f[0]][:1])[0],
                   eventID="slow-1", eventName=RULE_EVENT)
        body = gzip.compress(json.dumps({"Records": [rec]}).encode())
        with twserve.Receiver() as s3:
            s3.set_default("/slow-bucket/" + key, twserve.Response(200, body, delay=14))
            cfg = config(url, visibility="10s")
            cfg["aws"] = {"endpoints": {"sqs": MOTO.url, "s3": s3.url("")}, "timeout": "30s"}
            cfg["sources"]["sqs"]["workers"] = 2
            SQS.send_message(QueueUrl=url, MessageBody=json.dumps({"s3Bucket": "slow-bucket", "s3ObjectKey": [key]}))
            srv = twserve.Server(self, cfg, env=MOTO.env())
            srv.start()
            twserve.wait_until(lambda: alert_ids(srv) == ["slow-1"], timeout=60, what="the slow file's alert")
            twserve.wait_until(lambda: queue_empty(url), timeout=30, what="the message deleted")
            self.assertEqual(len(s3.requests()), 1, "the message came back while its file was read")
            srv.stop()


if __name__ == "__main__":
    unittest.main()
