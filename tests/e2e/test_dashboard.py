"""The dashboard in a real browser: Debian's headless Chromium driven by playwright-core
(tests/browser/driver.mjs), against `trailwatch serve`, with real clients (boto3 PutEvents) and a real
webhook receiver. Screenshots of every view go to build/test-artifacts/dashboard/ ($TW_ARTIFACTS_DIR).

Acceptance points of issue #12 checked here: the page loads with no console errors; a PutEvents event
appears in the live view within a second; a dead letter is redriven from the page; an event whose
fields hold <script> and <img onerror> renders as text."""
import json
import os
import time
import unittest
import uuid

import twbrowser
import twserve


def config(receiver):
    return {
        "server": {"listen": "127.0.0.1:0"},
        "targets": {
            "hook": {"kind": "webhook", "url": receiver.url("/hook")},
            "flaky": {"kind": "webhook", "url": receiver.url("/flaky")},
        },
        "rules": [
            {"name": "dash-live", "severity": "high", "pattern": {"source": ["test.dash"]}, "targets": ["hook"]},
            {"name": "dash-dead", "severity": "critical", "pattern": {"source": ["test.dead"]}, "targets": ["flaky"]},
        ],
    }


class Dashboard(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        why = twbrowser.missing()
        if why:
            raise AssertionError("the browser tests cannot run: " + why)
        twserve.need_boto3()
        cls.art = twbrowser.artifacts_dir("dashboard")
        cls.receiver = twserve.Receiver().start()
        cls.server = twserve.Server(None, config(cls.receiver))
        cls.server.start()
        cls.browser = twbrowser.Browser()
        cls.events = cls.server.boto3()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.browser.close()
        finally:
            try:
                cls.server.cleanup()
            finally:
                cls.receiver.stop()

    def shot(self, name):
        self.browser.screenshot(os.path.join(self.art, name + ".png"))

    def put(self, source, detail, resources=()):
        t0 = time.time()
        r = self.events.put_events(Entries=[{"Source": source, "DetailType": "dashboard test", "Detail": json.dumps(detail),
                                             "Resources": list(resources)}])
        t1 = time.time()
        self.assertEqual(r["FailedEntryCount"], 0, r)
        return t0 * 1000, t1 * 1000

    def open(self, view):
        self.browser.goto(self.server.url + "/#/" + view)
        self.browser.wait("header nav a.on", text=view.capitalize())

    def assertNoProblems(self):
        self.assertEqual(self.browser.problems(), [], "the page logged errors")

    def test_1_every_view_loads_without_console_errors(self):
        self.browser.goto(self.server.url + "/")
        self.browser.wait("[data-testid=live-status]", text="live")
        for view in ("live", "timeline", "search", "rules", "delivery"):
            self.browser.click("[data-testid=nav-%s]" % view)
            self.browser.wait("header nav a.on", text=view.capitalize())
            time.sleep(0.3)   # let the view's first calls answer
            self.shot("view-" + view)
        self.assertNoProblems()

    def test_2_putevents_appears_in_live_view_within_a_second(self):
        self.open("live")
        self.browser.wait("[data-testid=live-status]", text="live")
        marker = "live-" + uuid.uuid4().hex[:12]
        sent, acked = self.put("test.dash", {"eventName": marker, "userIdentity": {"arn": "arn:aws:iam::123456789012:user/alice"}})
        seen = self.browser.wait("tr.alert-row", text=marker, timeout=5000)
        self.shot("live-putevents")
        # From the PutEvents answer (the event is durable and acknowledged) to the row on screen.
        self.assertLess(seen - acked, 1000, "the alert took %.0f ms after PutEvents answered (%.0f ms after "
                        "it was sent) to appear" % (seen - acked, seen - sent))
        self.assertNoProblems()

    def test_3_event_fields_with_html_render_as_text(self):
        self.open("live")
        self.browser.wait("[data-testid=live-status]", text="live")
        script = "<script>window.__xss = 1</script>"
        img = '<img src=x onerror="window.__xss = 2">'
        marker = "xss-" + uuid.uuid4().hex[:8]
        self.put("test.dash", {"eventName": marker + script, "userIdentity": {"arn": img},
                               "requestParameters": {"name": img, "policy": script}},
                 resources=['arn:aws:s3:::bucket"><img src=x onerror="window.__xss=3">'])
        self.browser.wait("tr.alert-row", text=marker)
        self.browser.click("tr.alert-row", text=marker)
        self.browser.wait(".json-panel")
        row = self.browser.text("tr.alert-row >> nth=0")
        self.assertIn(script, row)
        self.assertIn(img, row)
        panel = self.browser.text(".json-panel")
        self.assertIn("window.__xss = 2", panel)
        self.assertEqual(self.browser.count("main img"), 0, "event text became an <img> element")
        self.assertEqual(self.browser.count("main script"), 0, "event text became a <script> element")
        time.sleep(0.3)   # an onerror handler would have run by now
        self.assertIsNone(self.browser.eval("window.__xss === undefined ? null : window.__xss"))
        self.shot("live-xss-as-text")
        self.assertNoProblems()

    def test_4_dead_letter_redriven_from_the_page(self):
        self.receiver.set_default("/flaky", twserve.Response(400, b'{"error":"no such channel <b>x</b>"}'))
        marker = "dead-" + uuid.uuid4().hex[:8]
        self.put("test.dead", {"eventName": marker})
        self.receiver.wait_for(1, path="/flaky", timeout=20)
        twserve.wait_until(lambda: self.server.metric("trailwatch_deliveries_total", target="flaky", outcome="dead") >= 1,
                           timeout=20, what="the alert dead-lettered")
        self.open("delivery")
        self.browser.wait("tr.dl-row", text="dash-dead")
        self.browser.click("tr.dl-row", text="dash-dead")
        self.browser.wait("[data-testid=dl-response]", text="no such channel <b>x</b>")
        self.shot("delivery-dead-letter")
        self.receiver.set_default("/flaky", twserve.Response(200, b"ok"))
        before = len(self.receiver.requests("/flaky"))
        self.browser.click("tr.dl-row >> [data-testid=redrive]")
        self.browser.wait("[data-testid=dlq-msg]", text="1 dead letter back in the outbox")
        self.receiver.wait_for(before + 1, path="/flaky", timeout=20)
        got = self.receiver.requests("/flaky")[-1]
        self.assertIn(marker, got.text())
        self.browser.wait("p.muted", text="No dead letters.", timeout=15000)
        self.shot("delivery-after-redrive")
        self.assertNoProblems()


if __name__ == "__main__":
    unittest.main()
