"""End-to-end: delivery of alerts by `trailwatch serve` to real HTTP receivers and local targets.

A local receiver stands in for Slack (200 ok, 429 with Retry-After, 500, 404 no_service, a hang), a
webhook (auth headers, idempotency key), Teams, Discord and PagerDuty; exec, file and console targets
run for real. Payloads are checked as they arrive."""
import base64
import json
import os
import re
import time
import unittest

import twserve
from twserve import Receiver, Response, Server

FAST_RETRY = {"base": "100ms", "cap": "1s"}
REAL_RECORD_ID = "8ca35bec-bc01-4a58-beca-6f8a16907e98"   # an S3 call by an IAM user that failed
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def strings(v):
    """Every string inside a JSON value."""
    if isinstance(v, str):
        yield v
    elif isinstance(v, list):
        for x in v:
            yield from strings(x)
    elif isinstance(v, dict):
        for k, x in v.items():
            yield k
            yield from strings(x)


class DeliveryCase(unittest.TestCase):
    def setUp(self):
        self.rcv = Receiver().start()
        self.addCleanup(self.rcv.stop)

    def serve(self, targets, rules, env=None, files=None, **kw):
        cfg = {"server": {"listen": "127.0.0.1:0"}, "targets": targets, "rules": rules}
        return Server(self, cfg, env=env, files=files, **kw).start()

    def put(self, srv, *entries):
        st, _, b = srv.api("PutEvents", {"Entries": [dict(Source=e[0], DetailType=e[1], Detail=json.dumps(e[2]))
                                                     for e in entries]})
        self.assertEqual(st, 200, b)
        self.assertEqual(b["FailedEntryCount"], 0, b)
        return [e["EventId"] for e in b["Entries"]]


class TestSlack(DeliveryCase):
    def slack(self, **extra):
        t = {"kind": "slack", "url": self.rcv.url("/slack"), "retry": FAST_RETRY, "timeout": "500ms"}
        t.update(extra)
        return t

    def test_default_message_for_a_real_cloudtrail_record(self):
        rec = twserve.cloudtrail_records(pred=lambda r: r.get("eventID") == REAL_RECORD_ID)[0]
        srv = self.serve({"slack": self.slack()},
                         [{"name": "s3-errors", "description": "S3 calls that failed", "severity": "high",
                           "pattern": {"source": ["aws.s3"], "detail": {"errorCode": [{"exists": True}]}},
                           "targets": ["slack"]}])
        st, _, _ = srv.post("/events", json.dumps(rec), {"Content-Type": "application/json"})
        self.assertEqual(st, 200)
        r = self.rcv.wait_for(1, 10, "/slack")[0]
        self.assertEqual(r.method, "POST")
        self.assertEqual(r.header("Content-Type"), "application/json; charset=utf-8")
        self.assertTrue(r.header("User-Agent", "").startswith("trailwatch/"))
        msg = r.json()
        context = msg["blocks"][4]["elements"][0]["text"]
        self.assertRegex(context, r"^S3 calls that failed · event %s · 123837392027/us-east-1$" % UUID)
        self.assertEqual(msg, {
            "text": ":red_circle: s3-errors: GetBucketPublicAccessBlock by benjamin on invictus-aws-2022-10-27-quygr "
                    "(us-east-1)",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": ":red_circle: s3-errors"}},
                {"type": "section", "text": {"type": "mrkdwn", "text":
                    "*benjamin* (IAMUser) called *GetBucketPublicAccessBlock* on `s3.amazonaws.com`\n"   # who, what
                    "*Resource:* invictus-aws-2022-10-27-quygr\n"                                      # which
                    "*Where:* us-east-1 · account 123837392027 · from 10.248.16.43\n"                  # where
                    "*When:* 2023-07-10T11:42:44Z"}},                                                   # when
                {"type": "section", "fields": [
                    {"type": "mrkdwn", "text": "*bucketName*\ninvictus-aws-2022-10-27-quygr"},
                    {"type": "mrkdwn", "text": "*Host*\ninvictus-aws-2022-10-27-quygr.s3.us-east-1.amazonaws.com"}]},
                {"type": "section", "text": {"type": "mrkdwn", "text":                                  # error
                    ":x: *Error:* NoSuchPublicAccessBlockConfiguration: The public access block configuration was "
                    "not found"}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
            ],
            "unfurl_links": False, "unfurl_media": False})

    def test_event_data_cannot_ping_or_link(self):
        srv = self.serve({"slack": self.slack(mention="<!here>", rate={"per_second": 0})},
                         [{"name": "all", "description": "desc & <!channel>", "pattern": {"source": [{"prefix": ""}]},
                           "targets": ["slack"]}])
        rec = twserve.cloudtrail_records(pred=lambda r: r.get("eventID") == REAL_RECORD_ID)[0]
        rec = json.loads(json.dumps(rec))
        rec["eventID"] = "escaping-test-1"
        rec["userIdentity"]["userName"] = "<!channel>"
        rec["requestParameters"]["bucketName"] = "<https://x|y> & co"
        rec["errorMessage"] = "<@U123> & <!everyone>"
        st, _, b = srv.post("/events", json.dumps(rec), {"Content-Type": "application/json"})
        self.assertEqual((st, json.loads(b)["accepted"]), (200, 1))
        self.put(srv, ("<@U123>", "<!channel> alert & more", {"note": "<https://x|y> & <!channel>", "who": "<@U123>"}))
        msgs = [r.json() for r in self.rcv.wait_for(2, 10, "/slack")]
        raw = ("<!channel>", "<@U123>", "<https://x|y>", "<!everyone>")
        for msg in msgs:
            text = [s for s in strings(msg)]
            for s in text:
                for bad in raw:
                    self.assertNotIn(bad, s, msg)
                # every & left is the start of an entity
                self.assertIsNone(re.search(r"&(?!amp;|lt;|gt;)", s), s)
            joined = "\n".join(text)
            # the operator's own mention is the only markup
            self.assertTrue(msg["text"].startswith("<!here> "), msg["text"])
            self.assertIn("desc &amp; &lt;!channel&gt;", joined)
        joined = "\n".join("\n".join(strings(m)) for m in msgs)
        self.assertIn("*&lt;!channel&gt;* (IAMUser) called *GetBucketPublicAccessBlock*", joined)
        self.assertIn("&lt;https://x|y&gt; &amp; co", joined)
        self.assertIn("&lt;@U123&gt; &amp; &lt;!everyone&gt;", joined)
        self.assertIn("*&lt;!channel&gt; alert &amp; more* from `&lt;@U123&gt;`", joined)
        self.assertIn("&lt;https://x|y&gt; &amp; &lt;!channel&gt;", joined)

    def five_to_slack(self, **slack):
        srv = self.serve({"slack": self.slack(**slack)}, [{"name": "r", "pattern": {"source": ["rate.test"]},
                                                          "targets": ["slack"]}])
        t0 = time.monotonic()
        self.put(srv, *[("rate.test", "d", {"i": i}) for i in range(5)])
        got = self.rcv.wait_for(5, 15, "/slack")
        # one at a time, in order
        self.assertEqual([r.json()["blocks"][2]["fields"][0]["text"] for r in got],
                         ["*i*\n%d" % i for i in range(5)])
        return [r.t - t0 for r in got]

    def test_default_rate_one_per_second(self):
        t = self.five_to_slack()
        # Slack's ~1 message per second: after a burst of at most 3, one per second, so the 5th goes out
        # at least 2 s after the first and at least 1 s after the 4th
        self.assertGreaterEqual(t[4] - t[0], 1.9, t)
        self.assertGreaterEqual(t[4] - t[3], 0.9, t)
        self.assertGreaterEqual(t[3] - t[0], 0.9, t)

    def test_default_burst_of_three_goes_out_at_once(self):
        t = self.five_to_slack()
        self.assertLess(t[2] - t[0], 0.7, t)     # rate {per_second: 1, burst: 3}: three at once

    def test_unlimited_rate_is_not_one_per_second(self):
        t = self.five_to_slack(rate={"per_second": 0})
        self.assertLess(t[4] - t[0], 1.0, t)

    def test_configured_rate(self):
        srv = self.serve({"slack": self.slack(rate={"per_second": 4, "burst": 1})},
                         [{"name": "r", "pattern": {"source": ["rate.test"]}, "targets": ["slack"]}])
        t0 = time.monotonic()
        self.put(srv, *[("rate.test", "d", {"i": i}) for i in range(5)])
        got = self.rcv.wait_for(5, 15, "/slack")
        self.assertGreaterEqual(got[4].t - got[0].t, 0.95, [r.t - t0 for r in got])

    def test_retry_after_is_honoured(self):
        self.rcv.script("/slack", Response(429, "rate_limited", {"Retry-After": "2"}))
        srv = self.serve({"slack": self.slack()}, [{"name": "r", "pattern": {"source": ["ra"]}, "targets": ["slack"]}])
        self.put(srv, ("ra", "d", {"x": 1}))
        a, b = self.rcv.wait_for(2, 10, "/slack")
        self.assertGreaterEqual(b.t - a.t, 1.95)
        self.assertEqual(a.body, b.body)
        srv.wait_metric("trailwatch_deliveries_total", 1, target="slack", outcome="delivered")
        self.assertEqual(srv.metric("trailwatch_deliveries_total", target="slack", outcome="retry"), 1)
        self.rcv.quiet(0.5, "/slack")

    def test_retry_after_blocks_the_whole_target(self):
        self.rcv.script("/slack", Response(429, "rate_limited", {"Retry-After": "2"}))
        srv = self.serve({"slack": self.slack(rate={"per_second": 0})},
                         [{"name": "r", "pattern": {"source": ["ra"]}, "targets": ["slack"]}])
        self.put(srv, ("ra", "d", {"x": 1}))
        first = self.rcv.wait_for(1, 10, "/slack")[0]
        self.put(srv, ("ra", "d", {"x": 2}))
        got = self.rcv.wait_for(3, 10, "/slack")
        for r in got[1:]:
            self.assertGreaterEqual(r.t - first.t, 1.95, "a request went out during Retry-After")

    def test_500_is_retried_then_delivered(self):
        self.rcv.script("/slack", Response(500, "rollup_error"), Response(503, "unavailable"))
        srv = self.serve({"slack": self.slack()}, [{"name": "r", "pattern": {"source": ["five"]}, "targets": ["slack"]}])
        self.put(srv, ("five", "d", {"x": 1}))
        got = self.rcv.wait_for(3, 10, "/slack")
        self.assertEqual(len({r.body for r in got}), 1)
        # retry.base 100ms: the backoff is short (equal jitter: 50-100 ms, then 100-200 ms)
        self.assertLess(got[2].t - got[0].t, 2.0, [r.t - got[0].t for r in got])
        srv.wait_metric("trailwatch_deliveries_total", 1, target="slack", outcome="delivered")
        self.assertEqual(srv.metric("trailwatch_deliveries_total", target="slack", outcome="retry"), 2)
        self.assertEqual(srv.metric("trailwatch_deliveries_total", target="slack", outcome="dead"), 0)
        srv.wait_log("delivery will be retried", target="slack", attempt="2")
        p = srv.dlq("list", "--json")
        self.assertEqual((p.returncode, p.stdout), (0, ""), p.stderr)
        self.rcv.quiet(0.5, "/slack")

    def test_404_no_service_is_dead_lettered_at_once(self):
        self.rcv.set_default("/slack", Response(404, "no_service"))
        srv = self.serve({"slack": self.slack()}, [{"name": "gone", "pattern": {"source": ["dead"]},
                                                    "targets": ["slack"]}])
        self.put(srv, ("dead", "d", {"x": 1}))
        self.rcv.wait_for(1, 10, "/slack")
        srv.wait_metric("trailwatch_deliveries_total", 1, target="slack", outcome="dead")
        self.rcv.quiet(1.5, "/slack")
        self.assertEqual(srv.metric("trailwatch_deliveries_total", target="slack", outcome="retry"), 0)
        srv.wait_log("alert dead-lettered", target="slack", rule="gone")
        p = srv.dlq("list", "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = [json.loads(l) for l in p.stdout.splitlines()]
        self.assertEqual(len(rows), 1)
        self.assertEqual((rows[0]["target"], rows[0]["rule"], rows[0]["attempts"]), ("slack", "gone", 1))
        self.assertIn("404", rows[0]["reason"])
        p = srv.dlq("show", str(rows[0]["id"]))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("no_service", p.stdout)
        self.assertRegex(p.stdout, r"response:\s+no_service")
        self.assertIn('"blocks"', p.stdout)        # the payload that was to be sent

    def test_hanging_receiver_times_out_and_is_retried(self):
        self.rcv.script("/slack", Response(200, "ok", delay=6))
        srv = self.serve({"slack": self.slack(timeout="500ms")},
                         [{"name": "r", "pattern": {"source": ["hang"]}, "targets": ["slack"]}])
        self.put(srv, ("hang", "d", {"x": 1}))
        a, b = self.rcv.wait_for(2, 10, "/slack")
        self.assertGreaterEqual(b.t - a.t, 0.45)        # the timeout, then a backoff
        self.assertLess(b.t - a.t, 4.0)                 # not the 6 s the receiver would have taken
        srv.wait_metric("trailwatch_deliveries_total", 1, target="slack", outcome="delivered")
        rec = srv.wait_log("delivery will be retried", target="slack")
        self.assertIn("timed out", rec["reason"])


class TestRetryPolicy(DeliveryCase):
    """EventBridge API destinations' rules (aws-formats 5.1): 429/5xx/timeouts retried, other statuses
    not; a negative Retry-After stops; max_attempts and max_age end the retries in a dead letter."""

    def hook(self, path, **kw):
        t = {"kind": "webhook", "url": self.rcv.url(path), "retry": dict(FAST_RETRY), "timeout": "1s"}
        t.update(kw)
        return t

    def test_statuses_that_are_never_retried(self):
        answers = {"/moved": Response(301, "", {"Location": "http://127.0.0.1:1/"}), "/bad": Response(400, "bad"),
                   "/forbidden": Response(403, "action_prohibited"), "/gone": Response(410, "channel_is_archived"),
                   "/stop": Response(503, "busy", {"Retry-After": "-1"})}
        for path, r in answers.items():
            self.rcv.set_default(path, r)
        self.rcv.set_default("/timeout", Response(408, "slow"))
        targets = {p.strip("/"): self.hook(p) for p in list(answers) + ["/timeout"]}
        srv = self.serve(targets, [{"name": "r", "pattern": {"source": ["codes"]}, "targets": sorted(targets)}])
        self.put(srv, ("codes", "d", {}))
        for name in (p.strip("/") for p in answers):
            srv.wait_metric("trailwatch_deliveries_total", 1, target=name, outcome="dead")
        # 408 is a timeout: retried
        self.rcv.wait_for(2, 10, "/timeout")
        time.sleep(1.0)
        for path in answers:
            self.assertEqual(len(self.rcv.requests(path)), 1, path)
        rows = {r["target"]: r for r in (json.loads(l) for l in srv.dlq("list", "--json").stdout.splitlines())}
        self.assertEqual(set(rows), {p.strip("/") for p in answers})
        self.assertEqual(rows["moved"]["attempts"], 1)

    def test_negative_retry_after_reason_says_why(self):
        self.rcv.set_default("/stop", Response(503, "busy", {"Retry-After": "-1"}))
        srv = self.serve({"stop": self.hook("/stop")}, [{"name": "r", "pattern": {"source": ["neg"]},
                                                        "targets": ["stop"]}])
        self.put(srv, ("neg", "d", {}))
        srv.wait_metric("trailwatch_deliveries_total", 1, target="stop", outcome="dead")
        [row] = [json.loads(l) for l in srv.dlq("list", "--json").stdout.splitlines()]
        self.assertIn("Retry-After", row["reason"])

    def test_retry_after_as_an_http_date(self):
        import email.utils
        # An HTTP date has whole seconds: it names the moment int(wall + 5). The retry must not come
        # before that moment (measured on the receiver's monotonic clock, as Request.t is), however
        # long the server took to start under load.
        wall = time.time()
        not_before = time.monotonic() + (int(wall + 5) - wall)
        when = email.utils.formatdate(wall + 5, usegmt=True)
        self.rcv.script("/h", Response(429, "slow down", {"Retry-After": when}))
        srv = self.serve({"h": self.hook("/h")}, [{"name": "r", "pattern": {"source": ["date"]}, "targets": ["h"]}])
        self.put(srv, ("date", "d", {}))
        a, b = self.rcv.wait_for(2, 10, "/h")
        self.assertLess(a.t, not_before - 0.5, "the first attempt came too late to tell anything")
        self.assertGreaterEqual(b.t, not_before - 0.05)

    def test_max_attempts_and_max_age_end_in_dead_letters(self):
        self.rcv.set_default("/a", Response(500, "always"))
        self.rcv.set_default("/b", Response(502, "always"))
        srv = self.serve({"a": self.hook("/a", retry={"max_attempts": 3, "base": "100ms", "cap": "200ms"}),
                          "b": self.hook("/b", retry={"max_age": "2s", "base": "100ms", "cap": "300ms"})},
                         [{"name": "r", "pattern": {"source": ["limits"]}, "targets": ["a", "b"]}])
        t0 = time.monotonic()
        self.put(srv, ("limits", "d", {}))
        srv.wait_metric("trailwatch_deliveries_total", 1, timeout=15, target="a", outcome="dead")
        srv.wait_metric("trailwatch_deliveries_total", 1, timeout=15, target="b", outcome="dead")
        self.assertEqual(len(self.rcv.requests("/a")), 3)
        self.assertGreaterEqual(time.monotonic() - t0, 1.9)
        rows = {r["target"]: r for r in (json.loads(l) for l in srv.dlq("list", "--json").stdout.splitlines())}
        self.assertEqual(rows["a"]["attempts"], 3)
        self.assertIn("retry attempts exhausted (3)", rows["a"]["reason"])
        self.assertIn("maximum event age exhausted", rows["b"]["reason"])
        self.assertIn("HTTP 502: always", rows["b"]["reason"])

    def test_large_error_response_is_kept_short(self):
        self.rcv.set_default("/big", Response(400, "x" * 200000))
        srv = self.serve({"big": self.hook("/big")}, [{"name": "r", "pattern": {"source": ["big"]}, "targets": ["big"]}])
        self.put(srv, ("big", "d", {}))
        srv.wait_metric("trailwatch_deliveries_total", 1, target="big", outcome="dead")
        rows = [json.loads(l) for l in srv.dlq("list", "--json").stdout.splitlines()]
        shown = srv.dlq("show", str(rows[0]["id"])).stdout
        response = re.search(r"^response:\s+(x+)$", shown, re.M).group(1)
        self.assertGreater(len(response), 100)
        self.assertLessEqual(len(response), 8192)


class TestMessageLimits(DeliveryCase):
    def test_huge_event_fits_every_destination(self):
        self.rcv.set_default("/discord", Response(204, ""))
        self.rcv.set_default("/teams", Response(202, ""))
        self.rcv.set_default("/pd", Response(202, "{}"))
        srv = self.serve({"slack": {"kind": "slack", "url": self.rcv.url("/slack"), "rate": {"per_second": 0}},
                          "discord": {"kind": "discord", "url": self.rcv.url("/discord"), "rate": {"per_second": 0}},
                          "teams": {"kind": "teams", "url": self.rcv.url("/teams")},
                          "pd": {"kind": "pagerduty", "url": self.rcv.url("/pd"), "routing_key": "k"}},
                         [{"name": "r" * 64, "description": "é" * 250, "pattern": {"source": ["aws.s3"]},
                           "targets": ["slack", "discord", "teams", "pd"]}])
        rec = json.loads(json.dumps(twserve.cloudtrail_records(
            pred=lambda r: r.get("eventID") == REAL_RECORD_ID)[0]))
        rec["userIdentity"]["userName"] = "ü" * 2000
        rec["errorCode"] = "E" * 3000
        rec["errorMessage"] = "\U0001F4A5<&>" * 3000
        rec["requestParameters"] = {"param%02d" % i: "v&<" * 1000 + "ñ" for i in range(20)}
        rec["requestParameters"]["bucketName"] = "b" * 5000
        st, b = srv.post_events([rec])
        self.assertEqual((st, b["accepted"]), (200, 1), b)
        self.rcv.wait_for(4, 10)
        slack = self.rcv.requests("/slack")[0].json()
        self.assertLessEqual(len(slack["text"]), 4000)
        self.assertLessEqual(len(slack["blocks"]), 50)
        for blk in slack["blocks"]:
            if blk["type"] == "header":
                self.assertLessEqual(len(blk["text"]["text"]), 150)
            elif "fields" in blk:
                self.assertLessEqual(len(blk["fields"]), 10)
                for f in blk["fields"]:
                    self.assertLessEqual(len(f["text"]), 2000)
                    self.assertTrue(f["text"].strip())
            elif "text" in blk:
                self.assertLessEqual(len(blk["text"]["text"]), 3000)
        for text in strings(slack):
            self.assertIsNone(re.search(r"&(?!amp;|lt;|gt;)", text), text[-40:])   # no entity cut in half
            self.assertNotIn("<&>", text)
        d = self.rcv.requests("/discord")[0].json()
        e = d["embeds"][0]
        self.assertLessEqual(len(d["content"]), 2000)
        self.assertLessEqual(len(e["title"]), 256)
        self.assertLessEqual(len(e["description"]), 4096)
        self.assertLessEqual(len(e["footer"]["text"]), 2048)
        self.assertLessEqual(len(e["fields"]), 25)
        for f in e["fields"]:
            self.assertLessEqual(len(f["name"]), 256)
            self.assertLessEqual(len(f["value"]), 1024)
        total = len(e["title"]) + len(e["description"]) + len(e["footer"]["text"]) + \
            sum(len(f["name"]) + len(f["value"]) for f in e["fields"])
        self.assertLessEqual(total, 6000)
        self.assertLessEqual(len(self.rcv.requests("/teams")[0].body), 28 * 1024)
        pd = self.rcv.requests("/pd")[0].json()
        self.assertLessEqual(len(pd["payload"]["summary"]), 1024)
        self.assertLessEqual(len(pd["dedup_key"]), 255)
        self.assertLessEqual(len(self.rcv.requests("/pd")[0].body), 512 * 1024)


class TestWebhook(DeliveryCase):
    def test_idempotency_key_is_identical_across_retries(self):
        self.rcv.script("/hook", Response(500, "a"), Response(502, "b"))
        srv = self.serve({"hook": {"kind": "webhook", "url": self.rcv.url("/hook"), "retry": FAST_RETRY}},
                         [{"name": "r", "pattern": {"source": ["idem"]}, "targets": ["hook"]}])
        ids = self.put(srv, ("idem", "d", {"x": 1}))
        got = self.rcv.wait_for(3, 10, "/hook")
        keys = {r.header("Idempotency-Key") for r in got}
        self.assertEqual(len(keys), 1, keys)
        self.assertRegex(keys.pop(), r"^[0-9a-f]{32}$")
        self.assertEqual({r.json()["id"] for r in got}, set(ids))
        self.put(srv, ("idem", "d", {"x": 2}))
        other = self.rcv.wait_for(4, 10, "/hook")[3]
        self.assertNotEqual(other.header("Idempotency-Key"), got[0].header("Idempotency-Key"))

    def test_auth_headers_method_and_body(self):
        env = {"HOOK_USER": "alice", "HOOK_PASS": "p@ss:word", "HOOK_KEY": "k-123", "HOOK_TOKEN": "tok.en"}
        targets = {
            "basic": {"kind": "webhook", "url": self.rcv.url("/basic"),
                      "auth": {"basic": {"username": "${HOOK_USER}", "password": "${HOOK_PASS}"}}},
            "apikey": {"kind": "webhook", "url": self.rcv.url("/apikey"), "method": "PUT",
                       "auth": {"api_key": {"header": "X-Api-Key", "value": "${HOOK_KEY}"}},
                       "headers": {"X-Team": "secops", "X-Num": 7}},
            "bearer": {"kind": "webhook", "url": self.rcv.url("/bearer?tenant=1"), "method": "patch",
                       "auth": {"bearer": "${HOOK_TOKEN}"}},
            "plain": {"kind": "webhook", "url": self.rcv.url("/plain"),
                      "headers": {"Content-Type": "application/cloudevents+json"}},
        }
        srv = self.serve(targets, [{"name": "r", "pattern": {"source": ["auth"]},
                                    "targets": ["basic", "apikey", "bearer", "plain"]}], env=env)
        [eid] = self.put(srv, ("auth", "Thing Happened", {"k": "v"}))
        self.rcv.wait_for(4, 10)
        by = {p: self.rcv.requests(p)[0] for p in ("/basic", "/apikey", "/bearer", "/plain")}
        self.assertEqual(by["/basic"].method, "POST")
        self.assertEqual(by["/basic"].header("Authorization"),
                         "Basic " + base64.b64encode(b"alice:p@ss:word").decode())
        self.assertEqual(by["/apikey"].method, "PUT")
        self.assertEqual(by["/apikey"].header("X-Api-Key"), "k-123")
        self.assertEqual(by["/apikey"].header("X-Team"), "secops")
        self.assertEqual(by["/apikey"].header("X-Num"), "7")
        self.assertIsNone(by["/apikey"].header("Authorization"))
        self.assertEqual(by["/bearer"].method, "PATCH")
        self.assertEqual(by["/bearer"].path, "/bearer?tenant=1")
        self.assertEqual(by["/bearer"].header("Authorization"), "Bearer tok.en")
        self.assertIsNone(by["/plain"].header("Authorization"))
        self.assertEqual(by["/plain"].header("Content-Type"), "application/cloudevents+json")
        for p, r in by.items():
            if p != "/plain":
                self.assertEqual(r.header("Content-Type"), "application/json; charset=utf-8")
            self.assertRegex(r.header("Idempotency-Key"), r"^[0-9a-f]{32}$")
            ev = r.json()
            self.assertEqual((ev["id"], ev["source"], ev["detail-type"], ev["detail"]),
                             (eid, "auth", "Thing Happened", {"k": "v"}))
        # the credentials are in no log line
        for secret in ("p@ss:word", "k-123", "tok.en", base64.b64encode(b"alice:p@ss:word").decode()):
            self.assertNotIn(secret, srv.stderr())

    def test_input_transformer_and_input_path(self):
        targets = {"t": {"kind": "webhook", "url": self.rcv.url("/t")}, "p": {"kind": "webhook", "url": self.rcv.url("/p")},
                   "c": {"kind": "webhook", "url": self.rcv.url("/c")}, "x": {"kind": "webhook", "url": self.rcv.url("/x")}}
        rules = [{"name": "xf", "pattern": {"source": ["aws.ssm"]}, "targets": [
            {"target": "t", "input_transformer": {
                "input_paths_map": {"name": "$.detail.name", "op": "$.detail.operation"},
                "input_template": '{"parameter": <name>, "operation": <op>, "rule": <aws.events.rule-name>}'}},
            {"target": "p", "input_path": "$.detail"},
            {"target": "c", "input": {"fixed": True}},
            {"target": "x", "input_transformer": {"input_paths_map": {"name": "$.detail.name"},
                                                 "input_template": '"<name> changed"'}}]}]
        srv = self.serve(targets, rules)
        self.put(srv, ("aws.ssm", "Parameter Store Change", {"operation": "Update", "name": "/app/db", "type": "String"}))
        self.rcv.wait_for(4, 10)
        self.assertEqual(self.rcv.requests("/t")[0].json(),
                         {"parameter": "/app/db", "operation": "Update", "rule": "xf"})
        self.assertEqual(self.rcv.requests("/p")[0].json(), {"operation": "Update", "name": "/app/db", "type": "String"})
        self.assertEqual(self.rcv.requests("/c")[0].json(), {"fixed": True})
        self.assertEqual(self.rcv.requests("/x")[0].json(), "/app/db changed")


class TestChatAndPaging(DeliveryCase):
    def setUp(self):
        super().setUp()
        self.rec = twserve.cloudtrail_records(pred=lambda r: r.get("eventID") == REAL_RECORD_ID)[0]

    def post_record(self, srv):
        st, _, b = srv.post("/events", json.dumps(self.rec), {"Content-Type": "application/json"})
        self.assertEqual((st, json.loads(b)["accepted"]), (200, 1))

    def test_teams_workflows_and_connector(self):
        self.rcv.set_default("/wf", Response(202, ""))
        self.rcv.set_default("/o365", Response(200, "1"))
        srv = self.serve({"wf": {"kind": "teams", "url": self.rcv.url("/wf")},
                          "o365": {"kind": "teams", "url": self.rcv.url("/o365"), "format": "messagecard"}},
                         [{"name": "s3-errors", "severity": "critical", "pattern": {"source": ["aws.s3"]},
                           "targets": ["wf", "o365"]}])
        self.post_record(srv)
        self.rcv.wait_for(2, 10)
        wf = self.rcv.requests("/wf")[0].json()
        self.assertEqual(wf["type"], "message")
        att = wf["attachments"][0]
        self.assertEqual(att["contentType"], "application/vnd.microsoft.card.adaptive")
        self.assertIsNone(att["contentUrl"])
        card = att["content"]
        self.assertEqual((card["type"], card["version"]), ("AdaptiveCard", "1.4"))
        self.assertEqual(card["body"][0]["text"], "s3-errors")
        self.assertEqual(card["body"][0]["color"], "Attention")
        self.assertEqual(card["body"][1]["text"],
                         "GetBucketPublicAccessBlock by benjamin on invictus-aws-2022-10-27-quygr")
        facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
        self.assertEqual(facts["Who"], "benjamin")
        self.assertEqual(facts["Error"],
                         "NoSuchPublicAccessBlockConfiguration: The public access block configuration was not found")
        self.assertEqual(facts["Time"], "2023-07-10T11:42:44Z")
        mc = self.rcv.requests("/o365")[0].json()
        self.assertEqual((mc["@type"], mc["@context"], mc["title"], mc["themeColor"]),
                         ("MessageCard", "https://schema.org/extensions", "s3-errors", "D00000"))
        self.assertEqual({f["name"]: f["value"] for f in mc["sections"][0]["facts"]}["Resource"],
                         "invictus-aws-2022-10-27-quygr")
        srv.wait_metric("trailwatch_deliveries_total", 1, target="o365", outcome="delivered")
        srv.wait_metric("trailwatch_deliveries_total", 1, target="wf", outcome="delivered")

    def test_teams_connector_error_in_a_200_is_retried(self):
        self.rcv.script("/o365", Response(200, "Microsoft Teams endpoint returned HTTP error 429 with ContextId x"))
        self.rcv.set_default("/o365", Response(200, "1"))
        srv = self.serve({"o365": {"kind": "teams", "url": self.rcv.url("/o365"), "format": "messagecard",
                                   "retry": FAST_RETRY}},
                         [{"name": "r", "pattern": {"source": ["aws.s3"]}, "targets": ["o365"]}])
        self.post_record(srv)
        self.rcv.wait_for(2, 10, "/o365")
        srv.wait_metric("trailwatch_deliveries_total", 1, target="o365", outcome="delivered")
        self.assertEqual(srv.metric("trailwatch_deliveries_total", target="o365", outcome="retry"), 1)

    def test_discord(self):
        self.rcv.script("/discord", Response(429, json.dumps({"retry_after": 1.5, "global": False}),
                                             {"Content-Type": "application/json", "Retry-After": "1"}))
        self.rcv.set_default("/discord", Response(204, ""))
        srv = self.serve({"discord": {"kind": "discord", "url": self.rcv.url("/discord"), "username": "trailwatch",
                                      "retry": FAST_RETRY}},
                         [{"name": "s3-errors", "severity": "low", "pattern": {"source": ["aws.s3"]},
                           "targets": ["discord"]}])
        self.rec = dict(self.rec, userIdentity=dict(self.rec["userIdentity"], userName="@everyone"))
        self.post_record(srv)
        a, b = self.rcv.wait_for(2, 10, "/discord")
        self.assertGreaterEqual(b.t - a.t, 1.45)          # retry_after from the body (1.5 s), not the header
        msg = b.json()
        self.assertEqual(msg["allowed_mentions"], {"parse": []})
        self.assertEqual(msg["username"], "trailwatch")
        self.assertEqual(msg["content"], "s3-errors: GetBucketPublicAccessBlock by @everyone on "
                                         "invictus-aws-2022-10-27-quygr")
        e = msg["embeds"][0]
        self.assertEqual((e["title"], e["color"], e["timestamp"]), ("s3-errors", 0x2F80ED, "2023-07-10T11:42:44Z"))
        self.assertEqual({f["name"]: f["value"] for f in e["fields"]}["Source IP"], "10.248.16.43")
        srv.wait_metric("trailwatch_deliveries_total", 1, target="discord", outcome="delivered")

    def test_pagerduty(self):
        key = "R0UTINGKEY0123456789abcdefABCDEF"
        self.rcv.script("/pd", Response(500, "{}"))
        self.rcv.set_default("/pd", Response(202, json.dumps({"status": "success", "message": "Event processed"})))
        self.rcv.set_default("/pd-bad", Response(400, json.dumps({"status": "invalid event",
                                                                 "message": "Event object is invalid"})))
        srv = self.serve({"pd": {"kind": "pagerduty", "url": self.rcv.url("/pd"), "routing_key": "${PD_KEY}",
                                 "retry": FAST_RETRY},
                          "pdbad": {"kind": "pagerduty", "url": self.rcv.url("/pd-bad"), "routing_key": "${PD_KEY}"}},
                         [{"name": "s3-errors", "severity": "critical", "pattern": {"source": ["aws.s3"]},
                           "targets": ["pd", "pdbad"]}], env={"PD_KEY": key})
        self.post_record(srv)
        a, b = self.rcv.wait_for(2, 10, "/pd")
        self.assertEqual(a.body, b.body)
        ev = b.json()
        self.assertEqual(ev["routing_key"], key)
        self.assertEqual(ev["event_action"], "trigger")
        self.assertRegex(ev["dedup_key"], r"^[0-9a-f]{32}$")
        self.assertEqual(ev["client"], "trailwatch")
        p = ev["payload"]
        self.assertEqual(p["summary"], "s3-errors: GetBucketPublicAccessBlock by benjamin")
        self.assertEqual((p["source"], p["severity"], p["timestamp"], p["component"], p["group"], p["class"]),
                         ("s3.amazonaws.com", "critical", "2023-07-10T11:42:44Z", "s3", "123837392027",
                          "GetBucketPublicAccessBlock"))
        self.assertEqual(p["custom_details"], self.rec)
        # the routing key is a secret: not in the dead letter, its payload, or the logs
        self.rcv.wait_for(1, 10, "/pd-bad")
        srv.wait_metric("trailwatch_deliveries_total", 1, target="pdbad", outcome="dead")
        rows = [json.loads(l) for l in srv.dlq("list", "--json").stdout.splitlines()]
        self.assertEqual(len(rows), 1)
        shown = srv.dlq("show", str(rows[0]["id"]))
        self.assertEqual(shown.returncode, 0)
        self.assertIn("Event object is invalid", shown.stdout)
        self.assertIn('"dedup_key"', shown.stdout)
        for out in (shown.stdout, srv.stderr(), srv.metrics_text()):
            self.assertNotIn(key, out)


EXEC_SCRIPT = r'''
import json, os, sys
out = sys.argv[1]
data = sys.stdin.read()
n = len([f for f in os.listdir(out) if f.startswith("call-")])
with open(os.path.join(out, "call-%d.json" % n), "w") as f:
    json.dump({"argv": sys.argv[1:], "stdin": data, "cwd": os.getcwd(),
               "env": {k: v for k, v in os.environ.items()}}, f)
if os.environ.get("FAIL_FIRST") == "1" and n == 0:
    print("first call fails on purpose", file=sys.stderr)
    sys.exit(3)
'''


class TestLocalTargets(DeliveryCase):
    def test_exec_target(self):
        srv = self.serve(
            {"run": {"kind": "exec", "command": ["python3", "hook.py", "calls", "--flag"], "cwd": "work",
                     "env": {"FAIL_FIRST": "1", "GREETING": "hello"}, "region": "eu-central-1", "retry": FAST_RETRY}},
            [{"name": "r", "pattern": {"source": ["exec.test"]}, "targets": ["run"]}],
            files={"work/hook.py": EXEC_SCRIPT, "work/calls/.keep": ""},
            env={"AWS_ACCESS_KEY_ID": "AKIAFAKE", "AWS_SECRET_ACCESS_KEY": "fake", "AWS_PROFILE_X": "p",
                 "TW_PRIVATE_SETTING": "not for children"})
        [eid] = self.put(srv, ("exec.test", "d", {"x": 1}))
        calls_dir = srv.path("work", "calls")
        twserve.wait_until(lambda: len([f for f in os.listdir(calls_dir) if f.startswith("call-")]) >= 2, 15,
                           what="two exec calls")
        srv.wait_metric("trailwatch_deliveries_total", 1, target="run", outcome="delivered")
        calls = []
        for i in range(2):
            with open(os.path.join(calls_dir, "call-%d.json" % i)) as f:
                calls.append(json.load(f))
        for c in calls:
            self.assertEqual(c["argv"], ["calls", "--flag"])
            self.assertEqual(os.path.realpath(c["cwd"]), os.path.realpath(srv.path("work")))
            ev = json.loads(c["stdin"])
            self.assertEqual((ev["id"], ev["detail"]), (eid, {"x": 1}))
            self.assertEqual(c["stdin"].count("\n"), 0)
            env = c["env"]
            self.assertEqual(env["GREETING"], "hello")
            self.assertEqual((env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_PROFILE_X"]),
                             ("AKIAFAKE", "fake", "p"))
            self.assertEqual(env["AWS_REGION"], "eu-central-1")
            self.assertNotIn("TW_PRIVATE_SETTING", env)
            self.assertTrue(env.get("TW_DELIVERY_ID"))
        self.assertNotEqual(calls[0]["env"]["TW_DELIVERY_ID"], calls[1]["env"]["TW_DELIVERY_ID"])
        rec = srv.wait_log("delivery will be retried", target="run")
        self.assertIn("exited with status 3", rec["reason"])
        self.assertIn("first call fails on purpose", rec["reason"])

    def test_exec_not_found_dead_letters_and_timeout_retries(self):
        srv = self.serve(
            {"missing": {"kind": "exec", "command": ["/nonexistent/program"]},
             "slow": {"kind": "exec", "command": ["python3", "-c", "import time; time.sleep(30)"], "timeout": "500ms",
                      "retry": {"max_attempts": 2, "base": "100ms", "cap": "200ms"}}},
            [{"name": "r", "pattern": {"source": ["exec.bad"]}, "targets": ["missing", "slow"]}])
        self.put(srv, ("exec.bad", "d", {}))
        srv.wait_metric("trailwatch_deliveries_total", 1, target="missing", outcome="dead")
        srv.wait_metric("trailwatch_deliveries_total", 1, timeout=20, target="slow", outcome="dead")
        rows = {r["target"]: r for r in (json.loads(l) for l in srv.dlq("list", "--json").stdout.splitlines())}
        self.assertIn("/nonexistent/program", rows["missing"]["reason"])
        self.assertEqual(rows["missing"]["attempts"], 1)
        self.assertIn("timed out", rows["slow"]["reason"])
        self.assertEqual(rows["slow"]["attempts"], 2)
        self.assertIn("exhausted", rows["slow"]["reason"])

    def test_file_and_console_targets(self):
        srv = self.serve(
            {"audit": {"kind": "file", "path": "out/audit.jsonl"}, "term": {"kind": "console"}},
            [{"name": "r", "pattern": {"source": ["local"]}, "targets": [
                {"target": "audit", "input_transformer": {"input_paths_map": {"n": "$.detail.n"},
                                                          "input_template": '{"n": <n>, "rule": <aws.events.rule-name>}'}},
                {"target": "term", "input_path": "$.detail"}]}],
            files={"out/.keep": ""})
        self.put(srv, ("local", "d", {"n": 1, "text": "line\nbreak"}), ("local", "d", {"n": 2, "text": "x"}))
        twserve.wait_until(lambda: len(srv.jsonl("out/audit.jsonl")) >= 2 and len(srv.stdout_lines()) >= 2, 10,
                           what="file and console lines")
        self.assertEqual(sorted(x["n"] for x in srv.jsonl("out/audit.jsonl")), [1, 2])
        self.assertEqual(srv.jsonl("out/audit.jsonl")[0]["rule"], "r")
        lines = srv.stdout_lines()
        self.assertEqual(sorted(json.loads(l)["n"] for l in lines), [1, 2])
        self.assertIn({"n": 1, "text": "line\nbreak"}, [json.loads(l) for l in lines])

    def test_local_target_delivers_a_batch_promptly(self):
        srv = self.serve({"audit": {"kind": "file", "path": "audit.jsonl"}},
                         [{"name": "r", "pattern": {"source": ["burst"]}, "targets": ["audit"]}])
        self.put(srv, *[("burst", "d", {"i": i}) for i in range(10)])
        twserve.wait_until(lambda: len(srv.jsonl("audit.jsonl")) >= 10, 3.0,
                           what="10 alerts in the file (%d so far)" % len(srv.jsonl("audit.jsonl")))
        self.assertEqual(sorted(a["detail"]["i"] for a in srv.jsonl("audit.jsonl")), list(range(10)))


if __name__ == "__main__":
    unittest.main()
