"""The dashboard's Search and events timeline in a real browser (Debian's headless Chromium driven by
playwright-core), against `trailwatch serve` keeping its archive (issue #8), fed with real CloudTrail
log files of the shared data (/work/shared/data/cloudtrail/invictus-ir) over POST /events.

Acceptance points of issue #12 checked here: a search finds a known event of the shared data (by event
name, by principal, by resource; the event id is computed here from the raw files), a click shows its
JSON, an ARN or id shown links to "who touched this resource", a shared URL (reload) runs the search
again, an archived event whose fields hold <script> and <img onerror> renders as text in the results and
the JSON, and the events timeline counts what the raw files hold. Screenshots go to
build/test-artifacts/dashboard-search/."""
import datetime
import glob
import json
import os
import re
import time
import unittest
import urllib.parse
import uuid
from collections import Counter

import twbrowser
import twserve

DATA = os.environ.get("TW_SHARED_DATA", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                                                     "shared", "data"))
INVICTUS = os.path.join(DATA, "cloudtrail", "invictus-ir")
if not os.path.isdir(INVICTUS):
    INVICTUS = "/work/shared/data/cloudtrail/invictus-ir"
FILES = 16                     # of the 55 log files, in name order: a few hundred records, fast to ingest


def ms(iso):
    return int(datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def load_records():
    files = sorted(glob.glob(os.path.join(INVICTUS, "**", "*.json"), recursive=True))[:FILES]
    if not files:
        raise AssertionError("no CloudTrail files in %s (the shared data)" % INVICTUS)
    out = []
    for f in files:
        with open(f, "rb") as fh:
            body = fh.read()
        out.append((f, body, json.loads(body)["Records"]))
    return out


def known_event(records):
    """The first RunInstances of the files (in file order) with the instance it started: a change to a
    resource, so it is in that resource's "who touched" history."""
    for r in records:
        if r["eventName"] == "RunInstances" and not r.get("errorCode"):
            items = ((r.get("responseElements") or {}).get("instancesSet") or {}).get("items") or []
            if items and items[0].get("instanceId"):
                return r, items[0]["instanceId"]
    raise AssertionError("the shared data's first %d files hold no RunInstances" % FILES)


class DashboardSearch(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        why = twbrowser.missing()
        if why:
            raise AssertionError("the browser tests cannot run: " + why)
        cls.art = twbrowser.artifacts_dir("dashboard-search")
        cls.server = twserve.Server(None, {"server": {"listen": "127.0.0.1:0"}, "archive": {"enabled": True},
                                           "targets": {"out": {"kind": "file", "path": "alerts.jsonl"}},
                                           "rules": [{"name": "xss", "pattern": {"detail": {"eventSource": ["xss.test"]}},
                                                      "targets": ["out"]}]})
        cls.server.start()
        cls.browser = twbrowser.Browser()
        files = load_records()
        cls.records = [r for _, _, recs in files for r in recs]
        for path, body, _ in files:            # whole CloudTrail log files, as CloudTrail writes them
            st, _, data = cls.server.post("/events", body, {"Content-Type": "application/json"})
            assert st == 200, (path, st, data)
        cls.known, cls.instance = known_event(cls.records)
        # An event whose fields are HTML, as anyone who can call AWS may make them.
        cls.marker = "xss" + uuid.uuid4().hex[:10]
        cls.script = "<script>window.__xss = 1</script>"
        cls.img = '<img src=x onerror="window.__xss = 2">'
        cls.xss = {"eventVersion": "1.08", "eventID": str(uuid.uuid4()), "eventTime": "2023-07-10T12:00:00Z",
                   "eventSource": "xss.test", "eventName": cls.marker + cls.script, "awsRegion": "us-east-1",
                   "recipientAccountId": "123837392027", "sourceIPAddress": cls.img,
                   "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123837392027:user/" + cls.img},
                   "requestParameters": {"bucketName": cls.img, "policy": cls.script},
                   "resources": [{"ARN": 'arn:aws:s3:::b"><img src=x onerror="window.__xss=3">'}]}
        st, answer = cls.server.post_events([cls.xss])
        assert st == 200, answer
        # The archive writes behind the engine: wait until the last records are searchable.
        twserve.wait_until(lambda: cls.api_events(event_name=cls.xss["eventName"])["events"]
                           and cls.api_events(event_name="RunInstances")["events"], timeout=30,
                           what="the ingested events in the archive")

    @classmethod
    def tearDownClass(cls):
        try:
            cls.browser.close()
        finally:
            cls.server.cleanup()

    @classmethod
    def api_events(cls, **q):
        st, _, body = cls.server.request("GET", "/api/events?" + urllib.parse.urlencode(q))
        assert st == 200, (st, body[:300])
        return json.loads(body)

    def shot(self, name):
        self.browser.screenshot(os.path.join(self.art, name + ".png"))

    def assertNoProblems(self):
        self.assertEqual(self.browser.problems(), [], "the page logged errors")

    def row(self, event_id):
        return "tr.result-row[data-id=\"%s\"]" % event_id

    def search(self, **fields):
        self.browser.goto(self.server.url + "/#/search")
        self.browser.wait("[data-testid=q-run]:not([disabled])")
        for k, v in fields.items():
            self.browser.fill("[data-testid=q-%s]" % k, v)
        self.browser.click("[data-testid=q-run]")
        self.browser.wait("[data-testid=q-count]")

    def test_1_search_by_event_name_finds_the_known_event_and_shows_its_json(self):
        ev = self.known
        self.search(name="RunInstances")
        self.browser.wait(self.row(ev["eventID"]))
        n = self.browser.count("tr.result-row")
        self.assertEqual(n, sum(1 for r in self.records if r["eventName"] == "RunInstances"), "RunInstances rows")
        self.browser.click(self.row(ev["eventID"]))
        self.browser.wait(".json-panel", text=ev["eventID"])
        panel = self.browser.text(".json-panel")
        for s in (ev["eventName"], ev["userIdentity"]["arn"], self.instance, ev["sourceIPAddress"]):
            self.assertIn(s, panel)
        self.assertIn("name=RunInstances", self.browser.eval("location.hash"))
        self.shot("search-by-event-name")
        self.assertNoProblems()

    def test_2_search_by_principal_and_time_range(self):
        ev = self.known
        t = ms(ev["eventTime"])
        frm = datetime.datetime.utcfromtimestamp((t - 60000) / 1000).strftime("%Y-%m-%dT%H:%M:%SZ")
        to = datetime.datetime.utcfromtimestamp((t + 60000) / 1000).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.search(who=ev["userIdentity"]["arn"], **{"from": frm, "to": to})
        self.browser.wait(self.row(ev["eventID"]))
        want = {r["eventID"] for r in self.records if r.get("userIdentity", {}).get("arn") == ev["userIdentity"]["arn"]
                and t - 60000 <= ms(r["eventTime"]) <= t + 60000}
        got = set(self.browser.eval("[...document.querySelectorAll('tr.result-row')].map(r => r.dataset.id)"))
        self.assertEqual(got, want, "the principal's events in those two minutes")
        self.shot("search-by-principal")
        self.assertNoProblems()

    def test_3_who_touched_link_and_shared_url(self):
        ev = self.known
        self.search(name="RunInstances")
        self.browser.wait(self.row(ev["eventID"]))
        # The instance id the row shows is a link to its history.
        self.browser.click(self.row(ev["eventID"]) + " a.res", text=self.instance)
        self.browser.wait("[data-testid=who-table] tr.who-row", text="RunInstances")
        self.assertIn(ev["eventID"], self.browser.text("[data-testid=who-table]"))
        self.browser.wait(self.row(ev["eventID"]))          # and the events naming it
        url = self.browser.eval("location.href")
        self.assertIn("resource=" + self.instance, url)
        self.shot("who-touched-instance")
        # A shared link: a fresh browser (no state) opening the URL gets the same search.
        self.browser.fresh()
        self.browser.goto(url)
        self.browser.wait(self.row(ev["eventID"]))
        self.browser.wait("[data-testid=who-table] tr.who-row", text="RunInstances")
        self.assertEqual(self.browser.eval("document.querySelector('[data-testid=q-resource]').value"), self.instance)
        self.shot("shared-url-reloaded")
        self.assertNoProblems()

    def test_4_event_fields_with_html_render_as_text_in_results_and_json(self):
        self.browser.goto(self.server.url + "/#/search?" + urllib.parse.urlencode({"name": self.xss["eventName"]}))
        sel = self.row(self.xss["eventID"])
        self.browser.wait(sel)
        row = self.browser.text(sel)
        self.assertIn(self.script, row)
        self.assertIn(self.img, row)
        self.browser.click(sel)
        self.browser.wait(".json-panel", text=self.xss["eventID"])
        panel = self.browser.text(".json-panel")
        self.assertIn("window.__xss = 2", panel)
        self.assertIn("window.__xss=3", panel)
        self.assertEqual(self.browser.count("main img"), 0, "event text became an <img> element")
        self.assertEqual(self.browser.count("main script"), 0, "event text became a <script> element")
        time.sleep(0.3)   # an onerror handler would have run by now
        self.assertIsNone(self.browser.eval("window.__xss === undefined ? null : window.__xss"))
        self.shot("search-xss-as-text")
        self.assertNoProblems()

    def test_5_events_timeline_counts_the_raw_files(self):
        times = [ms(r["eventTime"]) for r in self.records]
        lo, hi = min(times) // 3600000 * 3600000, (max(times) // 3600000 + 1) * 3600000
        # The archive groups by the EventBridge source: "aws." and the service of eventSource, as EventBridge
        # names CloudTrail's events (ssm.amazonaws.com -> aws.ssm).
        src = lambda r: "aws." + r["eventSource"].split(".")[0]
        want = Counter(src(r) for r in self.records)
        want[src(self.xss)] += 1
        self.browser.goto(self.server.url + "/#/timeline?" + urllib.parse.urlencode(
            {"by": "source", "step": "minute", "from": lo, "to": hi}))
        self.browser.wait("[data-testid=tl-events-totals]")
        self.browser.wait("[data-testid=tl-events-chart] canvas")
        rows = self.browser.eval("[...document.querySelectorAll('[data-testid=tl-events-totals] tbody tr')]"
                                 ".map(r => [r.cells[0].innerText, +r.cells[1].innerText])")
        got = dict(rows)
        if "(other)" not in got:
            self.maxDiff = None
            self.assertEqual(got, dict(want), "events per source in the timeline")
        else:                                   # the server folds the smallest series into one
            self.assertEqual(sum(got.values()), sum(want.values()))
        self.shot("timeline-events-by-source")
        self.assertNoProblems()


if __name__ == "__main__":
    unittest.main()
