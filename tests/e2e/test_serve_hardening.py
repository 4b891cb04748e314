"""End-to-end: `trailwatch serve` under hostile or faulty conditions (issue #10): what it listens on,
idempotency keys of events without an id, the SigV4 credential scope, Retry-After beyond the maximum
event age, ambiguous request framing. The load tests of the same issue are in bench/ (bench/harden)."""
import datetime
import json
import socket
import time
import unittest
from unittest import mock

import twserve
from twserve import AKID, SECRET, Receiver, Response, Server

FAST_RETRY = {"base": "100ms", "cap": "1s"}


def hook_config(rcv, **server):
    cfg = {"server": {"listen": "127.0.0.1:0", "drain_timeout": "1s"},
           "targets": {"hook": {"kind": "webhook", "url": rcv.url("/hook"), "retry": FAST_RETRY, "timeout": "2s"}},
           "rules": [{"name": "r", "pattern": {"source": ["h"]}, "targets": ["hook"]}]}
    cfg["server"].update(server)
    return cfg


class Case(unittest.TestCase):
    def setUp(self):
        self.rcv = Receiver().start()
        self.addCleanup(self.rcv.stop)


class TestListen(Case):
    def test_port_only_listen_binds_every_address_and_needs_keys(self):
        # ":PORT" binds 0.0.0.0: that is not loopback, whatever a resolver without AI_PASSIVE says
        srv = Server(self, hook_config(self.rcv), listen=":0")
        with self.assertRaises(twserve.ServerFailed) as cm:
            srv.start(timeout=15)
        self.assertIn("not a loopback address", str(cm.exception))
        self.assertIn("access_keys", str(cm.exception))
        # with keys it may listen there
        srv = Server(self, hook_config(self.rcv, access_keys=[{"id": AKID, "secret": SECRET}]), listen=":0").start()
        self.assertGreater(srv.port, 0)
        st, _, _ = srv.api("PutEvents", {"Entries": [{"Source": "h", "DetailType": "d", "Detail": "{}"}]})
        self.assertEqual(st, 403)  # unsigned, even from loopback, once keys are set

    def test_firehose_on_every_address_needs_its_key(self):
        cfg = hook_config(self.rcv, access_keys=[{"id": AKID, "secret": SECRET}])
        cfg["sources"] = {"firehose": True}
        srv = Server(self, cfg, listen=":0")
        with self.assertRaises(twserve.ServerFailed) as cm:
            srv.start(timeout=15)
        self.assertIn("sources.firehose.access_key", str(cm.exception))


class TestIdempotencyKeys(Case):
    def test_events_without_an_id_get_distinct_keys(self):
        cfg = hook_config(self.rcv)
        cfg["targets"]["pd"] = {"kind": "pagerduty", "url": self.rcv.url("/pd"), "routing_key": "k",
                                "retry": FAST_RETRY}
        cfg["rules"][0]["targets"] = ["hook", "pd"]
        srv = Server(self, cfg).start()
        events = [{"source": "h", "detail-type": "d", "detail": {"n": i}} for i in range(3)]
        events.append(dict(events[0]))        # the same content again: still a distinct event
        st, body = srv.post_events(events)
        self.assertEqual((st, body["accepted"]), (200, 4), body)
        hooks = self.rcv.wait_for(4, path="/hook", server=srv)
        keys = [r.header("Idempotency-Key") for r in hooks]
        self.assertEqual(len(set(keys)), 4, keys)
        pds = self.rcv.wait_for(4, path="/pd", server=srv)
        dedup = [r.json()["dedup_key"] for r in pds]
        self.assertEqual(len(set(dedup)), 4, dedup)

    def test_a_redelivery_after_a_crash_keeps_its_key(self):
        self.rcv.set_default("/hook", Response(503, "down"))
        cfg = hook_config(self.rcv)
        srv = Server(self, cfg).start()
        st, body = srv.post_events([{"source": "h", "detail-type": "d", "detail": {}}])
        self.assertEqual(st, 200, body)
        first = self.rcv.wait_for(1, path="/hook", server=srv)[0].header("Idempotency-Key")
        srv.kill9()
        self.rcv.set_default("/hook", Response(200, "ok"))
        self.rcv.clear()
        srv.start()
        again = self.rcv.wait_for(1, path="/hook", server=srv)[0].header("Idempotency-Key")
        self.assertEqual(first, again)


class TestSignedScope(Case):
    ENTRIES = [{"Source": "h", "DetailType": "d", "Detail": "{}"}]

    def signed(self, srv, service="events", region="us-east-1"):
        import botocore.auth
        import botocore.awsrequest
        import botocore.credentials
        body = json.dumps({"Entries": self.ENTRIES})
        req = botocore.awsrequest.AWSRequest(method="POST", url=srv.url + "/", data=body, headers={
            "X-Amz-Target": "AWSEvents.PutEvents", "Content-Type": "application/x-amz-json-1.1"})
        botocore.auth.SigV4Auth(botocore.credentials.Credentials(AKID, SECRET), service, region).add_auth(req)
        st, hd, data = srv.post("/", body, dict(req.headers.items()))
        return st, json.loads(data)

    def test_service_and_region_of_the_scope_are_checked(self):
        twserve.need_boto3()
        srv = Server(self, hook_config(self.rcv, access_keys=[{"id": AKID, "secret": SECRET}],
                                       regions=["eu-west-1"])).start()
        st, b = self.signed(srv)
        self.assertEqual(st, 200, b)
        st, b = self.signed(srv, region="eu-west-1")
        self.assertEqual(st, 200, b)
        st, b = self.signed(srv, service="s3")
        self.assertEqual(st, 403, b)
        self.assertEqual(b["__type"], "InvalidSignatureException")
        self.assertIn("correct service: 'events'", b["message"])
        st, b = self.signed(srv, region="ap-south-7")
        self.assertEqual(st, 403, b)
        self.assertIn("valid region, not 'ap-south-7'", b["message"])
        self.assertEqual(len(self.rcv.wait_for(2, path="/hook", server=srv)), 2)
        self.rcv.quiet(0.3, "/hook")


class TestRetryAfterBeyondMaxAge(Case):
    def test_dead_lettered_at_once_instead_of_held(self):
        self.rcv.set_default("/hook", Response(429, "slow down", {"Retry-After": "3600"}))
        cfg = hook_config(self.rcv)
        cfg["targets"]["hook"]["retry"] = {"base": "100ms", "cap": "1s", "max_age": "30s"}
        srv = Server(self, cfg).start()
        st, body = srv.post_events([{"source": "h", "detail-type": "d", "detail": {"n": i}} for i in range(3)])
        self.assertEqual(st, 200, body)
        # the first answer asks for an hour: that alert and the two waiting behind it go to the dead
        # letters now, not after an hour (nor after the 30 s maximum age)
        srv.wait_metric("trailwatch_deliveries_total", 3, timeout=15, target="hook", outcome="dead")
        rows = [json.loads(l) for l in srv.dlq("list", "--json").stdout.splitlines()]
        self.assertEqual(len(rows), 3, rows)
        self.assertTrue(all("Retry-After" in r["reason"] for r in rows), rows)
        self.assertLessEqual(len(self.rcv.requests("/hook")), 3)   # webhooks send 16 at once


class TestFraming(Case):
    def raw(self, srv, head, body=b""):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=15)
        try:
            s.sendall(head.replace(b"\n", b"\r\n") + body)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break                     # the server closed the connection
                data += chunk
            return data
        finally:
            s.close()

    def test_ambiguous_body_lengths_are_refused_and_closed(self):
        srv = Server(self, hook_config(self.rcv)).start()
        ev = b'{"source":"h","detail-type":"d","detail":{}}\n'
        cases = [
            b"POST /events HTTP/1.1\nHost: x\nContent-Type: application/json\nContent-Length: %d\n"
            b"Content-Length: 5\n\n" % len(ev),
            b"POST /events HTTP/1.1\nHost: x\nContent-Type: application/json\nContent-Length: %d\n"
            b"Transfer-Encoding: chunked\n\n" % len(ev),
        ]
        for head in cases:
            # a keep-alive request follows: it must not be read as a second request
            data = self.raw(srv, head, ev + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertTrue(data.startswith(b"HTTP/1.1 400"), data[:200])
            self.assertIn(b"ambiguous", data)
            self.assertEqual(data.count(b"HTTP/1.1 "), 1, data)
        # the same request with one Content-Length is fine
        data = self.raw(srv, b"POST /events HTTP/1.1\nHost: x\nContent-Type: application/json\n"
                             b"Content-Length: %d\nConnection: close\n\n" % len(ev), ev)
        self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:200])
        self.assertEqual(len(self.rcv.wait_for(1, path="/hook", server=srv)), 1)
        self.rcv.quiet(0.3, "/hook")


if __name__ == "__main__":
    unittest.main()
