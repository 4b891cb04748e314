"""The dashboard's server side over real HTTP (no browser): the embedded page (CSP, gzip, caching),
access (loopback only without keys, Host check, logins, SigV4, CSRF, the login brake), the live stream
(Server-Sent Events, resume from Last-Event-ID), the rules, test-pattern and dead-letter calls."""
import gzip
import http.client
import json
import re
import socket
import subprocess
import time
import unittest

import twserve
import twtest


def base_config(extra=None):
    c = {
        "server": {"listen": "127.0.0.1:0"},
        "targets": {"out": {"kind": "file", "path": "alerts.jsonl"}},
        "rules": [
            {"name": "ssm", "severity": "high", "pattern": {"source": ["aws.ssm"]}, "targets": ["out"],
             "storm": {"keys": ["$.detail.name"], "window": "10m"}},
            {"name": "ec2", "description": "instances", "pattern": '{"source": ["aws.ec2"]}', "targets": ["out"]},
        ],
    }
    c.update(extra or {})
    return c


def entry(source, detail):
    return {"Source": source, "DetailType": "t", "Detail": json.dumps(detail)}


class Sse:
    """A raw Server-Sent Events client: frames as dicts {event, id, data}."""

    def __init__(self, port, path="/api/stream", headers=None, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        h = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n%s\r\n" % (path, h)).encode())
        self.buf = b""
        head = self._until(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])
        self.chunked = b"chunked" in head.lower()
        self.raw = b""

    def _until(self, sep):
        while sep not in self.buf:
            got = self.sock.recv(65536)
            if not got:
                raise EOFError("stream closed")
            self.buf += got
        i = self.buf.index(sep) + len(sep)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _fill(self):
        # De-chunk into self.raw.
        if not self.chunked:
            got = self.buf or self.sock.recv(65536)
            if not got:
                raise EOFError("stream closed")
            self.raw += got
            self.buf = b""
            return
        size = int(self._until(b"\r\n").strip(), 16)
        if size == 0:
            raise EOFError("stream ended")
        while len(self.buf) < size + 2:
            got = self.sock.recv(65536)
            if not got:
                raise EOFError("stream closed")
            self.buf += got
        self.raw += self.buf[:size]
        self.buf = self.buf[size + 2:]

    def frame(self):
        while b"\n\n" not in self.raw:
            self._fill()
        i = self.raw.index(b"\n\n")
        text, self.raw = self.raw[:i].decode(), self.raw[i + 2:]
        f = {}
        for line in text.split("\n"):
            if line.startswith(":"):
                f.setdefault("comment", line)
                continue
            k, _, v = line.partition(": ")
            f[k] = v
        return f

    def next_event(self, kind="alert"):
        while True:
            f = self.frame()
            if f.get("event") == kind:
                return f

    def close(self):
        self.sock.close()


class Page(unittest.TestCase):
    def setUp(self):
        self.s = twserve.Server(self, base_config()).start()

    def test_page_is_served_with_a_strict_csp_gzip_and_caching(self):
        st, h, body = self.s.request("GET", "/", headers={"Accept-Encoding": "gzip"})
        self.assertEqual(st, 200)
        self.assertEqual(h["content-encoding"], "gzip")
        html = gzip.decompress(body).decode()
        self.assertIn('<div id="app">', html)
        csp = h["content-security-policy"]
        for d in ("default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'",
                  "require-trusted-types-for 'script'"):
            self.assertIn(d, csp)
        self.assertNotIn("unsafe", csp)
        self.assertEqual(h["x-content-type-options"], "nosniff")
        self.assertEqual(h["cache-control"], "no-cache")
        st, h2, _ = self.s.request("GET", "/", headers={"If-None-Match": h["etag"]})
        self.assertEqual(st, 304)
        assets = re.findall(r'(assets/[a-z]+-[0-9a-f]{10}\.(?:js|css))', html)
        self.assertEqual(len(assets), 2, html)
        for a in assets:
            st, h, body = self.s.request("GET", "/" + a)
            self.assertEqual(st, 200)
            self.assertIn("immutable", h["cache-control"])
            self.assertGreater(len(body), 100)
        st, _, _ = self.s.request("GET", "/assets/nothing.js")
        self.assertEqual(st, 404)
        # The API at / is unchanged.
        st, _, r = self.s.api("PutEvents", {"Entries": [entry("aws.ec2", {"a": 1})]})
        self.assertEqual((st, r["FailedEntryCount"]), (200, 0))
        self.assertEqual(self.s.healthz()["status"], "ok")

    def test_configured_path(self):
        self.s.stop()
        self.s.write_config(base_config({"dashboard": {"path": "/watch"}}))
        self.s.start()
        st, h, _ = self.s.request("GET", "/watch")
        self.assertEqual((st, h["location"]), (308, "/watch/"))
        st, _, body = self.s.request("GET", "/watch/")
        self.assertEqual(st, 200)
        self.assertIn(b'src="assets/app-', body)
        st, _, _ = self.s.request("GET", "/")
        self.assertEqual(st, 405)      # POST-only EventBridge API there now
        st, _, _ = self.s.request("GET", "/api/session")
        self.assertEqual(st, 200)

    def test_disabled(self):
        self.s.stop()
        self.s.write_config(base_config({"dashboard": {"enabled": False}}))
        self.s.start()
        st, h, _ = self.s.request("GET", "/")
        self.assertEqual((st, h.get("allow")), (405, "POST"))
        for path in ("/api/session", "/api/rules", "/assets/app.js"):
            st, _, _ = self.s.request("GET", path)
            self.assertEqual(st, 404, path)

    def test_bad_dashboard_settings_are_reported_at_their_line(self):
        p = self.s.write("bad.yml", "rules: []\ndashboard:\n  path: /api/x\n  password_hash: plain\n  sesion: 1h\n")
        r = twtest.run(["rules", "check", "-c", p])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("bad.yml:3: dashboard.path", r.stderr)
        self.assertIn("bad.yml:4: dashboard.password_hash", r.stderr)
        self.assertIn("bad.yml:5:", r.stderr)
        self.assertIn("session", r.stderr)


class Loopback(unittest.TestCase):
    def setUp(self):
        self.s = twserve.Server(self, base_config()).start()

    def session(self):
        st, _, body = self.s.request("GET", "/api/session")
        self.assertEqual(st, 200, body)
        return json.loads(body)

    def test_loopback_has_full_access_and_a_csrf_token(self):
        s = self.session()
        self.assertEqual((s["role"], s["mode"]), ("full", "loopback"))
        self.assertRegex(s["csrf"], "^[0-9a-f]{48}$")
        st, h, body = self.s.request("GET", "/api/rules")
        self.assertEqual(st, 200)
        self.assertEqual(h["cache-control"], "no-store")

    def test_dns_rebinding_host_is_refused(self):
        for host, want in (("evil.example:8080", 403), ("localhost:1", 200), ("127.0.0.1", 200), ("[::1]:80", 200),
                           ("app.localhost", 200)):
            st, _, body = self.s.request("GET", "/api/rules", headers={"Host": host})
            self.assertEqual(st, want, (host, body))
        self.s.stop()
        self.s.write_config(base_config({"dashboard": {"hosts": ["evil.example"]}}))
        self.s.start()
        st, _, _ = self.s.request("GET", "/api/rules", headers={"Host": "evil.example:8080"})
        self.assertEqual(st, 200)

    def test_state_changing_calls_need_the_csrf_token_and_same_origin(self):
        tok = self.session()["csrf"]
        body = json.dumps({"pattern": {"source": ["aws.ec2"]}, "event": {"source": "aws.ec2"}})
        st, _, r = self.s.post("/api/test-pattern", body)
        self.assertEqual(st, 403, r)
        st, _, r = self.s.post("/api/test-pattern", body, {"X-CSRF-Token": "0" * 48})
        self.assertEqual(st, 403, r)
        st, _, r = self.s.post("/api/test-pattern", body, {"X-CSRF-Token": tok, "Origin": "http://evil.example"})
        self.assertEqual(st, 403, r)
        st, _, r = self.s.post("/api/test-pattern", body, {"X-CSRF-Token": tok, "Sec-Fetch-Site": "cross-site"})
        self.assertEqual(st, 403, r)
        st, _, r = self.s.post("/api/dlq/redrive", '{"all":true}', {"X-CSRF-Token": "x"})
        self.assertEqual(st, 403, r)
        st, _, r = self.s.post("/api/test-pattern", body, {"X-CSRF-Token": tok, "Origin": "http://127.0.0.1:%d" % self.s.port,
                                                          "Host": "127.0.0.1:%d" % self.s.port})
        self.assertEqual(st, 200, r)
        self.assertEqual(json.loads(r)["result"], True)

    def test_test_pattern(self):
        tok = {"X-CSRF-Token": self.session()["csrf"]}
        rec = twserve.cloudtrail_records(limit=1)[0]
        pat = {"source": ["aws." + rec["eventSource"].split(".")[0]], "detail": {"eventName": [rec["eventName"]]}}
        st, _, r = self.s.post("/api/test-pattern", json.dumps({"pattern": json.dumps(pat), "event": json.dumps(rec)}), tok)
        self.assertEqual(st, 200, r)
        r = json.loads(r)
        self.assertTrue(r["result"], r)
        self.assertIn("cloudtrail", r["read_as"])
        pat["detail"]["eventName"] = ["Nope"]
        st, _, r = self.s.post("/api/test-pattern", json.dumps({"pattern": pat, "event": rec}), tok)
        self.assertFalse(json.loads(r)["result"])
        st, _, r = self.s.post("/api/test-pattern", json.dumps({"pattern": '{"source": "aws.ec2"}', "event": rec}), tok)
        self.assertEqual(st, 400)
        self.assertIn("pattern:", json.loads(r)["error"])
        st, _, r = self.s.post("/api/test-pattern", json.dumps({"pattern": pat, "event": "{nope"}), tok)
        self.assertEqual(st, 400)
        self.assertIn("event:", json.loads(r)["error"])
        st, _, r = self.s.post("/api/test-pattern", b"[1,2", tok)
        self.assertEqual(st, 400)
        st, _, r = self.s.post("/api/test-pattern", b"x" * (2 * 1024 * 1024), tok)
        self.assertEqual(st, 413)

    def test_rules_show_pattern_hits_and_open_storm_windows(self):
        for name in ("/a", "/a", "/b"):
            st, _, r = self.s.api("PutEvents", {"Entries": [entry("aws.ssm", {"name": name})]})
            self.assertEqual(r["FailedEntryCount"], 0)
        st, _, body = self.s.request("GET", "/api/rules")
        rules = {r["name"]: r for r in json.loads(body)["rules"]}
        ssm, ec2 = rules["ssm"], rules["ec2"]
        self.assertEqual(json.loads(ssm["pattern"]), {"source": ["aws.ssm"]})
        self.assertEqual(ec2["pattern"], '{"source": ["aws.ec2"]}')
        self.assertEqual(ec2["description"], "instances")
        self.assertEqual((ssm["matches"], ec2["matches"]), (3, 0))
        self.assertEqual(sum(ssm["per_minute"]), 3)
        self.assertEqual(len(ssm["per_minute"]), 60)
        self.assertIsNone(ec2["last_match"])
        self.assertEqual(ssm["storm"]["window_ms"], 600000)
        self.assertEqual(ssm["storm"]["keys"], ["$.detail.name"])
        opened = {o["key"]: o for o in ssm["storm"]["open"]}
        self.assertEqual(set(opened), {'["/a"]', '["/b"]'})
        self.assertEqual(opened['["/a"]']["suppressed"], 1)
        self.assertEqual(opened['["/a"]']["target"], "out")
        self.assertIsNone(ec2["storm"])

    def test_dead_letters_list_show_and_redrive(self):
        tok = {"X-CSRF-Token": self.session()["csrf"]}
        st, _, r = self.s.request("GET", "/api/dlq/999")
        self.assertEqual(st, 404)
        st, _, r = self.s.post("/api/dlq/redrive", '{"id": 999}', tok)
        self.assertEqual(st, 404, r)
        st, _, r = self.s.post("/api/dlq/redrive", '{}', tok)
        self.assertEqual(st, 400, r)
        st, _, r = self.s.request("GET", "/api/delivery")
        d = json.loads(r)
        self.assertEqual([t["name"] for t in d["targets"]], ["out"])
        self.assertEqual(d["targets"][0]["kind"], "file")


class Timeline(unittest.TestCase):
    def test_alerts_per_minute_by_rule_source_and_region_survive_a_restart(self):
        s = twserve.Server(self, base_config()).start()
        entries = [entry("aws.ssm", {"name": "/x%d" % i}) for i in range(3)] + [entry("aws.ec2", {"n": 1})]
        st, _, r = s.api("PutEvents", {"Entries": entries})
        self.assertEqual(r["FailedEntryCount"], 0)
        now = int(time.time() * 1000)

        def series(by, **q):
            qs = "&".join("%s=%s" % kv for kv in dict({"by": by, "from": now - 3600000, "to": now + 60000,
                                                       "step": "minute", "kind": "alerts"}, **q).items())
            st, _, body = s.request("GET", "/api/timeline?" + qs)
            self.assertEqual(st, 200, body)
            d = json.loads(body)
            return d, {x["key"]: sum(x["counts"]) for x in d["series"]}

        # Written to disk within a second or two of the alerts.
        twserve.wait_until(lambda: series("rule")[1] == {"ssm": 3, "ec2": 1}, timeout=15, what="alert counts")
        d, by_source = series("source")
        self.assertEqual(by_source, {"aws.ssm": 3, "aws.ec2": 1})
        self.assertEqual(len(d["buckets"]), 62)
        self.assertEqual(d["step_ms"], 60000)
        self.assertEqual(series("region")[1], {"us-east-1": 4})
        self.assertEqual(series("total")[1], {"alerts": 4})
        d, tot = series("rule", step="hour")
        self.assertEqual(sum(tot.values()), 4)
        s.stop()
        s.start()
        self.assertEqual(series("rule")[1], {"ssm": 3, "ec2": 1})
        for bad in ("by=nope", "step=1000", "from=5&to=1", "from=0&to=9999999999999&step=minute"):
            st, _, body = s.request("GET", "/api/timeline?kind=alerts&" + bad)
            self.assertEqual(st, 400, (bad, body))
        # Events per bucket are the archive's call, which this one names.
        st, _, body = s.request("GET", "/api/timeline?kind=events")
        self.assertEqual(st, 404, body)
        self.assertIn(b"/api/events/timeline", body)


class LiveStream(unittest.TestCase):
    def setUp(self):
        self.s = twserve.Server(self, base_config()).start()

    def put(self, name):
        st, _, r = self.s.api("PutEvents", {"Entries": [entry("aws.ec2", {"name": name})]})
        self.assertEqual(r["FailedEntryCount"], 0)
        return r["Entries"][0]["EventId"]

    def test_alerts_stream_and_resume_from_last_event_id(self):
        a = Sse(self.s.port)
        self.assertEqual(a.status, 200)
        hello = a.next_event("hello")
        self.assertIn("epoch", json.loads(hello["data"]))
        id1 = self.put("first")
        f1 = a.next_event()
        d1 = json.loads(f1["data"])
        self.assertEqual(d1["event"]["id"], id1)
        self.assertEqual(d1["rules"], [{"name": "ec2", "severity": "medium"}])
        a.close()
        # Missed while away: resumed exactly after the last id seen.
        ids = [self.put("second"), self.put("third")]
        b = Sse(self.s.port, headers={"Last-Event-ID": f1["id"]})
        got = [json.loads(b.next_event()["data"])["event"]["id"] for _ in ids]
        self.assertEqual(got, ids)
        b.close()
        # A new page asks for a backlog instead.
        c = Sse(self.s.port, path="/api/stream?backlog=2")
        got = [json.loads(c.next_event()["data"])["event"]["id"] for _ in range(2)]
        self.assertEqual(got, ids)
        # An id of another process: everything this one has.
        d = Sse(self.s.port, path="/api/stream?last=deadbeef-7")
        got = [json.loads(d.next_event()["data"])["event"]["id"] for _ in range(3)]
        self.assertEqual(got, [id1] + ids)
        # A stream open while the server stops does not hold it up.
        rc, took = self.s.stop()
        self.assertEqual(rc, 0)
        self.assertLess(took, 10)
        for x in (c, d):
            x.close()

    def test_a_large_event_is_sent_reduced(self):
        a = Sse(self.s.port)
        a.next_event("hello")
        big = {"eventName": "Big", "blob": "x" * (100 * 1024), "userIdentity": {"arn": "arn:aws:iam::1:user/u"}}
        self.put_big(big)
        d = json.loads(a.next_event()["data"])
        self.assertTrue(d["event"]["truncated"])
        self.assertEqual(d["event"]["detail"]["eventName"], "Big")
        self.assertNotIn("blob", d["event"]["detail"])
        a.close()

    def put_big(self, detail):
        st, _, r = self.s.api("PutEvents", {"Entries": [entry("aws.ec2", detail)]})
        self.assertEqual((st, r["FailedEntryCount"]), (200, 0), r)


class Keyed(unittest.TestCase):
    def setUp(self):
        pw = subprocess.run(["openssl", "passwd", "-6", "-salt", "saltsalt", "read-only-pw"], capture_output=True,
                            text=True, check=True).stdout.strip()
        cfg = base_config()
        cfg["server"]["access_keys"] = [{"id": twserve.AKID, "secret": twserve.SECRET}]
        cfg["dashboard"] = {"password_hash": pw, "session": "1h"}
        self.s = twserve.Server(self, cfg).start()

    def login(self, body, peer_headers=None):
        st, h, r = self.s.post("/api/login", json.dumps(body), peer_headers)
        return st, h, json.loads(r)

    def test_login_required_then_key_login_full_and_password_login_read_only(self):
        st, _, r = self.s.request("GET", "/api/rules")
        self.assertEqual(st, 401)
        self.assertEqual(json.loads(r)["logins"], {"keys": True, "password": True})
        st, _, r = self.s.request("GET", "/api/session")
        self.assertEqual(st, 401)
        # The page itself loads (to show the login form).
        self.assertEqual(self.s.request("GET", "/")[0], 200)
        st, _, r = self.login({"password": "wrong"})
        self.assertEqual(st, 401)
        st, _, r = self.login({"access_key_id": twserve.AKID, "secret_access_key": "wrong"})
        self.assertEqual(st, 401)
        st, h, r = self.login({"password": "read-only-pw"})
        self.assertEqual((st, r["role"]), (200, "read"), r)
        cookie = h["set-cookie"]
        self.assertIn("HttpOnly", cookie)
        self.assertIn("SameSite=Strict", cookie)
        ro = {"Cookie": cookie.split(";")[0]}
        st, _, _ = self.s.request("GET", "/api/rules", headers=ro)
        self.assertEqual(st, 200)
        st, _, body = self.s.post("/api/dlq/redrive", '{"all": true}', dict(ro, **{"X-CSRF-Token": r["csrf"]}))
        self.assertEqual(st, 403)
        self.assertIn("read-only", json.loads(body)["error"])
        st, h, r = self.login({"access_key_id": twserve.AKID, "secret_access_key": twserve.SECRET})
        self.assertEqual((st, r["role"]), (200, "full"))
        full = {"Cookie": h["set-cookie"].split(";")[0]}
        st, _, body = self.s.post("/api/dlq/redrive", '{"all": true}', dict(full, **{"X-CSRF-Token": r["csrf"]}))
        self.assertEqual((st, json.loads(body)), (200, {"redriven": 0}))
        st, _, body = self.s.post("/api/dlq/redrive", '{"all": true}', dict(full, **{"X-CSRF-Token": "0" * 48}))
        self.assertEqual(st, 403)
        st, h, _ = self.s.post("/api/logout", "{}", full)
        self.assertEqual(st, 200)
        st, _, _ = self.s.request("GET", "/api/rules", headers=full)
        self.assertEqual(st, 401)

    def test_sigv4_signed_requests(self):
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        url = self.s.url + "/api/rules"
        req = AWSRequest(method="GET", url=url)
        SigV4Auth(Credentials(twserve.AKID, twserve.SECRET), "events", twserve.REGION).add_auth(req)
        st, _, body = self.s.request("GET", "/api/rules", headers=dict(req.headers.items()))
        self.assertEqual(st, 200, body)
        req = AWSRequest(method="GET", url=url)
        SigV4Auth(Credentials(twserve.AKID, "not-the-secret"), "events", twserve.REGION).add_auth(req)
        st, _, body = self.s.request("GET", "/api/rules", headers=dict(req.headers.items()))
        self.assertEqual(st, 403, body)
        req = AWSRequest(method="GET", url=url)     # signed for another service
        SigV4Auth(Credentials(twserve.AKID, twserve.SECRET), "s3", twserve.REGION).add_auth(req)
        st, _, body = self.s.request("GET", "/api/rules", headers=dict(req.headers.items()))
        self.assertEqual(st, 403, body)
        self.assertIn("events", json.loads(body)["error"])

    def test_a_call_with_a_body_is_refused_from_its_headers_before_the_body_is_read(self):
        # Announce a large body and send none of it: a refusal that waited for the body would never come.
        before = self.s.metric("trailwatch_http_refused_total", reason="auth")
        for path, headers in (("/api/test-pattern", ""),
                              ("/api/dlq/redrive", "Cookie: tw_session=" + "0" * 64 + "\r\n"),
                              ("/api/test-pattern", "Authorization: AWS4-HMAC-SHA256 Credential=AKIDNOTAKEY/20260101/"
                                                    "us-east-1/events/aws4_request, SignedHeaders=host, Signature=00\r\n")):
            with socket.create_connection(("127.0.0.1", self.s.port), timeout=10) as c:
                c.sendall(("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n%s"
                           "Content-Length: 900000\r\n\r\n" % (path, headers)).encode())
                head = c.recv(4096).decode("latin-1")
            self.assertRegex(head, r"^HTTP/1\.1 40[13] ", (path, head))
        self.assertEqual(self.s.metric("trailwatch_http_refused_total", reason="auth"), before + 3)
        # A signed call still goes through, body and all.
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        body = json.dumps({"pattern": {"source": ["a"]}, "event": {"version": "0", "id": "1", "detail-type": "d", "source": "a", "account": "1", "time": "2026-01-01T00:00:00Z", "region": "us-east-1", "resources": [], "detail": {}}})
        req = AWSRequest(method="POST", url=self.s.url + "/api/test-pattern", data=body,
                         headers={"Content-Type": "application/json"})
        SigV4Auth(Credentials(twserve.AKID, twserve.SECRET), "events", twserve.REGION).add_auth(req)
        st, _, r = self.s.post("/api/test-pattern", body, dict(req.headers.items()))
        self.assertEqual(st, 200, r)

    def test_login_brake(self):
        codes = [self.login({"password": "guess%d" % i})[0] for i in range(12)]
        self.assertEqual(codes[:9], [401] * 9)
        self.assertEqual(codes[-1], 429)
        st, _, _ = self.login({"password": "read-only-pw"})
        self.assertEqual(st, 429)


class HashPassword(unittest.TestCase):
    def test_hash_password_makes_a_usable_hash(self):
        r = twtest.run(["dashboard", "hash-password"], input="s3cret\n", check=0)
        h = r.stdout.strip()
        self.assertTrue(h.startswith("$y$"), h)
        cfg = base_config({"dashboard": {"password_hash": h}})
        s = twserve.Server(self, cfg).start()
        st, _, r = s.post("/api/login", json.dumps({"password": "s3cret"}))
        self.assertEqual(st, 200, r)
        r = twtest.run(["dashboard", "hash-password"], input="", check=2)
        r = twtest.run(["dashboard", "--help"], check=0)
        self.assertIn("hash-password", r.stdout)


if __name__ == "__main__":
    unittest.main()
