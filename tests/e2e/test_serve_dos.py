"""End-to-end: `trailwatch serve` against unauthenticated denial of service (issue #10, defects 1 and 6):
deadlines for headers and whole requests that trickling bytes do not move (slow loris), caps on
connections per client address, authentication decided from the headers before a body is read, a
budget of request bytes in flight (503 + Retry-After) and one of decompressed bytes (gzip bombs).
Small loads here; the full-size ones (2,000 slow connections, 100 x 60 MB, 40 bombs, the soak) are in
bench/harden."""
import gzip
import hashlib
import json
import select
import socket
import threading
import time
import unittest

import twserve
from twserve import AKID, SECRET, Receiver, Server

ENTRIES = [{"Source": "h", "DetailType": "d", "Detail": "{}"}]


def hook_config(rcv, **server):
    cfg = {"server": {"listen": "127.0.0.1:0", "drain_timeout": "1s"},
           "targets": {"hook": {"kind": "webhook", "url": rcv.url("/hook"), "retry": {"base": "100ms", "cap": "1s"}}},
           "rules": [{"name": "r", "pattern": {"source": ["h"]}, "targets": ["hook"]}]}
    cfg["server"].update(server)
    return cfg


def connect(port, source="127.0.0.1", timeout=15):
    """A TCP connection to the server from a chosen loopback address (each is a distinct client)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def closed_by_server(s, wait=0.0):
    """True when the server closed (or reset) the connection; waits up to `wait` seconds for it."""
    s.settimeout(max(wait, 0.01))
    try:
        return s.recv(65536) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except (socket.timeout, BlockingIOError):
        return False


def read_response(s, timeout=10):
    """Reads what the server sends until it closes or a whole response is in: (status, headers, body)."""
    s.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            head, sep, rest = data.partition(b"\r\n\r\n")
            if sep:
                hd = {l.split(b":", 1)[0].strip().lower().decode(): l.split(b":", 1)[1].strip().decode()
                      for l in head.split(b"\r\n")[1:] if b":" in l}
                if len(rest) >= int(hd.get("content-length", "-1")) >= 0:
                    break
    except (ConnectionResetError, socket.timeout):
        pass
    head, _, body = data.partition(b"\r\n\r\n")
    if not head:
        return None, {}, b""
    lines = head.split(b"\r\n")
    hd = {l.split(b":", 1)[0].strip().lower().decode(): l.split(b":", 1)[1].strip().decode()
          for l in lines[1:] if b":" in l}
    return int(lines[0].split()[1]), hd, body


def get_from(port, path, source):
    s = connect(port, source)
    try:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
        return read_response(s)
    finally:
        s.close()


class Case(unittest.TestCase):
    def setUp(self):
        self.rcv = Receiver().start()
        self.addCleanup(self.rcv.stop)


class TestSlowLoris(Case):
    def test_trickling_connections_are_closed_by_the_deadline_while_others_are_served(self):
        srv = Server(self, hook_config(self.rcv, header_timeout="1500ms", request_timeout="3s")).start()
        socks, stop = [], threading.Event()
        self.addCleanup(lambda: [s.close() for s in socks])
        self.addCleanup(stop.set)
        # 200 slow clients from 5 addresses (40 each, under the per-client cap): 180 trickle their
        # headers, 20 send headers and then trickle a body
        for i in range(200):
            s = connect(srv.port, "127.0.0.%d" % (2 + i % 5))
            if i < 180:
                s.sendall(b"POST /events HTTP/1.1\r\nHost: x\r\n")
            else:
                s.sendall(b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Content-Length: 100000\r\n\r\n{")
            socks.append(s)
        opened = time.monotonic()
        closed_at = {}

        def trickle():                 # a few bytes per connection every 200 ms: each is activity
            while not stop.is_set() and len(closed_at) < len(socks):
                live = [s for i, s in enumerate(socks) if i not in closed_at]
                readable = set(select.select(live, [], [], 0)[0])
                for i, s in enumerate(socks):
                    if i in closed_at:
                        continue
                    if s in readable and closed_by_server(s):
                        closed_at[i] = time.monotonic() - opened
                        continue
                    try:
                        s.sendall(b"X-a: b\r\n" if i < 180 else b" ")
                    except OSError:
                        closed_at[i] = time.monotonic() - opened
                stop.wait(0.2)
        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        # meanwhile normal clients are answered
        t0 = time.monotonic()
        self.assertEqual(srv.healthz()["status"], "ok")
        self.assertLess(time.monotonic() - t0, 2.0)
        st, _, body = srv.api("PutEvents", {"Entries": ENTRIES})
        self.assertEqual((st, body["FailedEntryCount"]), (200, 0), body)
        # every slow connection is closed by its deadline although bytes kept coming
        twserve.wait_until(lambda: len(closed_at) == len(socks), timeout=15,
                           what="slow connections closed (%d of %d)" % (len(closed_at), len(socks)))
        stop.set()
        t.join(5)
        header_closes = [closed_at[i] for i in range(180)]
        body_closes = [closed_at[i] for i in range(180, 200)]
        self.assertGreater(min(header_closes), 1.0)      # not before the header deadline
        self.assertLess(max(header_closes), 8.0)
        self.assertGreater(min(body_closes), 2.5)        # headers were complete: the request deadline
        self.assertLess(max(body_closes), 10.0)
        self.assertGreaterEqual(srv.metric("trailwatch_http_deadline_closed_total"), 200)
        self.assertEqual(len(self.rcv.wait_for(1, path="/hook", server=srv)), 1)
        self.assertEqual(srv.healthz()["status"], "ok")

    def test_idle_keep_alive_connection_is_closed_after_the_header_timeout(self):
        srv = Server(self, hook_config(self.rcv, header_timeout="1s")).start()
        s = connect(srv.port)
        self.addCleanup(s.close)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        st, _, _ = read_response(s)
        self.assertEqual(st, 200)
        self.assertFalse(closed_by_server(s, 0.3))
        self.assertTrue(closed_by_server(s, 5))


class TestConnectionCaps(Case):
    def test_connections_per_client_address_are_capped(self):
        srv = Server(self, hook_config(self.rcv, max_connections_per_client=8)).start()
        held = [connect(srv.port, "127.0.0.2") for _ in range(8)]
        self.addCleanup(lambda: [s.close() for s in held])
        time.sleep(0.2)
        extra = connect(srv.port, "127.0.0.2")
        self.addCleanup(extra.close)
        self.assertTrue(closed_by_server(extra, 5), "a 9th connection from the same address stays open")
        # another address is served meanwhile; the held ones are still open
        st, _, body = get_from(srv.port, "/healthz", "127.0.0.3")
        self.assertEqual(st, 200, body)
        self.assertFalse(any(closed_by_server(s) for s in held))
        held.pop().close()
        time.sleep(0.3)
        again = connect(srv.port, "127.0.0.2")
        self.addCleanup(again.close)
        again.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertEqual(read_response(again)[0], 200)


class TestAuthBeforeBody(Case):
    BIG = 50 * 1024 * 1024

    def keyed(self, **extra):
        cfg = hook_config(self.rcv, access_keys=[{"id": AKID, "secret": SECRET}])
        cfg.update(extra)
        return Server(self, cfg).start()

    def headers_only(self, srv, head):
        """Sends only the head of a request announcing a large body: the answer must come without it."""
        s = connect(srv.port)
        try:
            s.sendall(head.replace(b"\n", b"\r\n") + b"\r\n")
            t0 = time.monotonic()
            st, hd, body = read_response(s, timeout=5)
            return st, hd, body, time.monotonic() - t0, closed_by_server(s, 2)
        finally:
            s.close()

    def test_unauthenticated_bodies_are_refused_from_the_headers(self):
        srv = self.keyed(sources={"http": {"api_key": "k3y-0123456789abcdef"},
                                  "firehose": {"access_key": "fh-0123456789abcdef"}})
        date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        auth = ("AWS4-HMAC-SHA256 Credential=%s/%s/us-east-1/events/aws4_request, SignedHeaders=host;x-amz-date, "
                "Signature=" + "0" * 64)
        cases = [
            # no Authorization at all
            (b"POST / HTTP/1.1\nHost: x\nX-Amz-Target: AWSEvents.PutEvents\nContent-Length: %d\n" % self.BIG, 403),
            # an access key id that is not configured
            (b"POST / HTTP/1.1\nHost: x\nX-Amz-Date: %s\nAuthorization: %s\nContent-Length: %d\n"
             % (date.encode(), (auth % ("AKIDWRONG", date[:8])).encode(), self.BIG), 403),
            # the right key, but signed for another service
            (b"POST / HTTP/1.1\nHost: x\nX-Amz-Date: %s\nAuthorization: %s\nContent-Length: %d\n"
             % (date.encode(), (auth % (AKID, date[:8])).replace("/events/", "/s3/").encode(), self.BIG), 403),
            # the right key, a day-old date
            (b"POST / HTTP/1.1\nHost: x\nX-Amz-Date: 20200101T000000Z\nAuthorization: %s\nContent-Length: %d\n"
             % ((auth % (AKID, "20200101")).encode(), self.BIG), 403),
            # the right key and a payload hash header: the whole signature is checked, and is wrong
            (b"POST / HTTP/1.1\nHost: x\nX-Amz-Date: %s\nx-amz-content-sha256: %s\nAuthorization: %s\n"
             b"Content-Length: %d\n" % (date.encode(), b"a" * 64,
                                        (auth % (AKID, date[:8])).replace("x-amz-date", "x-amz-content-sha256;x-amz-date")
                                        .encode(), self.BIG), 403),
            # /events with a wrong API key
            (b"POST /events HTTP/1.1\nHost: x\nx-api-key: nope\nContent-Type: application/json\n"
             b"Content-Length: %d\n" % self.BIG, 401),
            # Firehose with a wrong access key
            (b"POST /firehose HTTP/1.1\nHost: x\nX-Amz-Firehose-Access-Key: nope\nX-Amz-Firehose-Request-Id: r1\n"
             b"X-Amz-Firehose-Protocol-Version: 1.0\nContent-Type: application/json\nContent-Length: %d\n" % self.BIG,
             401),
        ]
        for head, want in cases:
            st, hd, body, took, closed = self.headers_only(srv, head)
            self.assertEqual(st, want, (head, body))
            self.assertLess(took, 3.0)
            self.assertTrue(closed, head)
        self.assertGreaterEqual(srv.metric("trailwatch_http_refused_total", reason="auth"), len(cases))
        # signed requests still work, and the body is still checked against what was signed
        twserve.need_boto3()
        st, b = self.signed(srv, json.dumps({"Entries": ENTRIES}))
        self.assertEqual(st, 200, b)
        st, b = self.signed(srv, json.dumps({"Entries": ENTRIES}), sent=json.dumps({"Entries": ENTRIES * 2}))
        self.assertEqual(st, 403, b)
        self.assertIn("x-amz-content-sha256", b["message"])
        self.assertEqual(len(self.rcv.wait_for(1, path="/hook", server=srv)), 1)
        self.rcv.quiet(0.3, "/hook")

    def signed(self, srv, body, sent=None):
        import botocore.auth
        import botocore.awsrequest
        import botocore.credentials
        req = botocore.awsrequest.AWSRequest(method="POST", url=srv.url + "/", data=body, headers={
            "X-Amz-Target": "AWSEvents.PutEvents", "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Content-SHA256": hashlib.sha256(body.encode()).hexdigest()})
        botocore.auth.SigV4Auth(botocore.credentials.Credentials(AKID, SECRET), "events", "us-east-1").add_auth(req)
        st, _, data = srv.post("/", sent if sent is not None else body, dict(req.headers.items()))
        return st, json.loads(data)


class TestBudgets(Case):
    def test_request_bytes_in_flight_budget_answers_503(self):
        srv = Server(self, hook_config(self.rcv, request_bytes_in_flight="1m")).start()
        ev = b'{"source":"h","detail-type":"d","detail":{}}\n'
        # one request holds 900 KB of the 1 MiB budget while its body is on the way
        a = connect(srv.port)
        self.addCleanup(a.close)
        big = ev * (900 * 1024 // len(ev))
        a.sendall(b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(big) + big[:1000])
        time.sleep(0.3)
        small = ev * 5000                                 # ~230 KB: does not fit beside it
        st, hd, body = srv.post("/events", small, {"Content-Type": "application/json"})
        self.assertEqual(st, 503, body)
        self.assertIn("retry-after", hd)
        self.assertIn("request_bytes_in_flight", json.loads(body)["error"])
        self.assertGreaterEqual(srv.metric("trailwatch_http_refused_total", reason="busy"), 1)
        # the first finishes; then there is room again
        a.sendall(big[1000:])
        st_a, _, body_a = read_response(a)
        self.assertEqual(st_a, 200, body_a)
        st, hd, body = srv.post("/events", small, {"Content-Type": "application/json"})
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body)["accepted"], 5000)

    def test_gzip_bombs_are_refused_by_the_decompression_budget(self):
        cfg = hook_config(self.rcv, gunzip_bytes_in_flight="4m")
        cfg["sources"] = {"firehose": True}
        srv = Server(self, cfg).start()
        bomb = gzip.compress(b"\0" * (20 * 1024 * 1024), 9)   # 20 KB that inflate to 20 MB
        st, hd, body = srv.post("/events", bomb, {"Content-Type": "application/json", "Content-Encoding": "gzip"})
        self.assertEqual(st, 503, body)
        self.assertIn("budget", json.loads(body)["error"])
        self.assertIn("retry-after", hd)
        fh = json.dumps({"requestId": "r1", "timestamp": 1, "records": [
            {"data": __import__("base64").b64encode(gzip.compress(b"\0" * (8 * 1024 * 1024))).decode()}]})
        st, hd, body = srv.post("/firehose", fh, {"Content-Type": "application/json",
                                                  "X-Amz-Firehose-Request-Id": "r1",
                                                  "X-Amz-Firehose-Protocol-Version": "1.0"})
        self.assertEqual(st, 503, body)
        self.assertIn("budget", json.loads(body)["errorMessage"])
        # concurrent bombs: every one refused, the server still answers and takes normal gzip
        results = []

        def one():
            results.append(srv.post("/events", bomb, {"Content-Type": "application/json",
                                                      "Content-Encoding": "gzip"})[0])
        ts = [threading.Thread(target=one) for _ in range(8)]
        [t.start() for t in ts]
        [t.join(60) for t in ts]
        self.assertEqual(results, [503] * 8)
        st, body = srv.post_events([{"source": "h", "detail-type": "d", "detail": {}}], gzip_body=True)
        self.assertEqual((st, body["accepted"]), (200, 1), body)
        self.assertEqual(len(self.rcv.wait_for(1, path="/hook", server=srv)), 1)


if __name__ == "__main__":
    unittest.main()
