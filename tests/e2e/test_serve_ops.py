"""End-to-end: running `trailwatch serve`: /healthz, /metrics, SIGTERM (drain, exit 0), kill -9 during
delivery and restart (nothing lost), the dead-letter commands while the server runs, --stdin, and
start-up errors."""
import json
import os
import signal
import socket
import time
import unittest

import twserve
from twserve import Receiver, Response, Server

FAST_RETRY = {"base": "100ms", "cap": "1s"}


def hook_config(url, rules_source="ops", **target):
    t = {"kind": "webhook", "url": url, "retry": FAST_RETRY, "timeout": "2s"}
    t.update(target)
    return {"server": {"listen": "127.0.0.1:0", "drain_timeout": "1s"},
            "targets": {"hook": t},
            "rules": [{"name": "ops-rule", "pattern": {"source": [rules_source]}, "targets": ["hook"]}]}


def entries(n, source="ops", start=0):
    return [{"Source": source, "DetailType": "d", "Detail": json.dumps({"n": i})} for i in range(start, start + n)]


class OpsCase(unittest.TestCase):
    def setUp(self):
        self.rcv = Receiver().start()
        self.addCleanup(self.rcv.stop)

    def put(self, srv, ents):
        ids = []
        for i in range(0, len(ents), 10):
            st, _, b = srv.api("PutEvents", {"Entries": ents[i:i + 10]})
            self.assertEqual((st, b.get("FailedEntryCount")), (200, 0), b)
            ids += [e["EventId"] for e in b["Entries"]]
        return ids


class TestHealthAndMetrics(OpsCase):
    def test_threads_are_named_for_top(self):
        # docs/GUIDE.md sends an operator to `top -H`: each part of the server shows under its name
        srv = Server(self, hook_config(self.rcv.url("/hook"))).start()
        task = "/proc/%d/task" % srv.proc.pid
        names = set()
        for tid in os.listdir(task):
            try:
                with open(os.path.join(task, tid, "comm")) as f:
                    names.add(f.read().strip())
            except OSError:
                pass  # a thread that ended meanwhile
        for want in ("tw-outbox", "tw-checkpoint", "tw-dispatch", "tw-deliver", "tw-archive", "tw-http",
                     "tw-storm"):
            self.assertIn(want, names)

    def test_healthz(self):
        srv = Server(self, hook_config(self.rcv.url("/hook"))).start()
        st, hd, data = srv.request("GET", "/healthz")
        self.assertEqual(st, 200)
        self.assertEqual(hd.get("content-type"), "application/json")
        h = json.loads(data)
        self.assertEqual(h["status"], "ok")
        self.assertEqual(h["outbox_depth"], 0)
        self.assertIsInstance(h["uptime_seconds"], int)
        st, _, _ = srv.request("HEAD", "/healthz")
        self.assertEqual(st, 200)
        # the depth counts what waits to be delivered
        self.rcv.set_default("/hook", Response(503, "down"))
        self.put(srv, entries(3))
        twserve.wait_until(lambda: srv.healthz()["outbox_depth"] == 3, 10, what="outbox_depth 3")
        srv.wait_metric("trailwatch_outbox_depth", 3)
        self.rcv.set_default("/hook", Response(200, "ok"))
        twserve.wait_until(lambda: srv.healthz()["outbox_depth"] == 0, 15, what="outbox_depth 0")

    def test_logs_are_json_lines(self):
        self.rcv.script("/hook", Response(500, 'bad "quote" \\ and\nnewline'))
        srv = Server(self, hook_config(self.rcv.url("/hook")), log_level="debug").start()
        self.put(srv, entries(1))
        srv.api("PutEvents", b"{broken")
        self.rcv.wait_for(2, 10, "/hook")
        srv.wait_metric("trailwatch_deliveries_total", 1, target="hook", outcome="delivered")
        srv.sighup()
        srv.wait_log("configuration reloaded")
        srv.stop()
        lines = srv.stderr().splitlines()
        self.assertGreater(len(lines), 3)
        for line in lines:
            rec = json.loads(line)
            self.assertIsInstance(rec, dict, line)
            self.assertRegex(rec["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertIn(rec["level"], ("debug", "info", "warn", "error"))
            self.assertIsInstance(rec["msg"], str)
        retry = [json.loads(l) for l in lines if '"delivery will be retried"' in l][0]
        self.assertIn('bad "quote"', retry["reason"])
        # warn level: no info lines (not even the port: a fixed one here)
        port = twserve.free_port()
        srv2 = Server(self, hook_config(self.rcv.url("/hook")), log_level="warn", listen="127.0.0.1:%d" % port)
        srv2.start(wait=False)
        srv2.port = port

        def up():
            srv2.check_alive()
            try:
                return srv2.healthz()["status"] == "ok"
            except OSError:
                return False
        twserve.wait_until(up, 20, what="the server answering on port %d" % port)
        srv2.stop()
        self.assertEqual(srv2.stderr().strip(), "")

    def test_metrics_series(self):
        self.rcv.script("/hook", Response(500, "once"))
        self.rcv.set_default("/gone", Response(404, "no"))
        cfg = hook_config(self.rcv.url("/hook"))
        cfg["targets"]["gone"] = {"kind": "webhook", "url": self.rcv.url("/gone")}
        cfg["rules"].append({"name": "to-gone", "pattern": {"source": ["gone"]}, "targets": ["gone"]})
        cfg["rules"].append({"name": "never", "pattern": {"source": ["nothing-sends-this"]}, "targets": ["hook"]})
        srv = Server(self, cfg).start()
        self.put(srv, entries(2) + entries(1, "gone") + entries(1, "unmatched"))
        rec = twserve.cloudtrail_records(limit=1)[0]
        st, _ = srv.post_events([rec, dict(rec, eventID=rec["eventID"] + "-2")])
        self.assertEqual(st, 200)
        self.rcv.wait_for(3, 10, "/hook")
        srv.wait_metric("trailwatch_deliveries_total", 2, target="hook", outcome="delivered")
        srv.wait_metric("trailwatch_deliveries_total", 1, target="gone", outcome="dead")
        twserve.wait_until(lambda: srv.metric("trailwatch_outbox_depth") == 0, 5, what="gauge back to 0")
        st, hd, data = srv.request("GET", "/metrics")
        self.assertEqual(st, 200)
        self.assertTrue(hd["content-type"].startswith("text/plain; version=0.0.4"), hd)
        text = data.decode()
        m = twserve.parse_metrics(text)

        def v(name, **labels):
            return m.get((name, frozenset((k, str(x)) for k, x in labels.items())))
        # events in, by source (every source's series exists from the start)
        self.assertEqual(v("trailwatch_events_received_total", source="eventbridge"), 4)
        self.assertEqual(v("trailwatch_events_received_total", source="http"), 2)
        for src in ("firehose", "folder", "stdin"):
            self.assertEqual(v("trailwatch_events_received_total", source=src), 0)
        # matches, by rule (a rule that never matched reads 0)
        self.assertEqual(v("trailwatch_rule_matches_total", rule="ops-rule"), 2)
        self.assertEqual(v("trailwatch_rule_matches_total", rule="to-gone"), 1)
        self.assertEqual(v("trailwatch_rule_matches_total", rule="never"), 0)
        # deliveries, by target and outcome
        self.assertEqual(v("trailwatch_deliveries_total", target="hook", outcome="delivered"), 2)
        self.assertEqual(v("trailwatch_deliveries_total", target="hook", outcome="retry"), 1)
        self.assertEqual(v("trailwatch_deliveries_total", target="hook", outcome="dead"), 0)
        self.assertEqual(v("trailwatch_deliveries_total", target="gone", outcome="dead"), 1)
        self.assertEqual(v("trailwatch_outbox_depth"), 0)
        # the latency histogram: cumulative buckets, +Inf = count = deliveries
        buckets = sorted(((float(dict(k[1])["le"]), val) for k, val in m.items()
                          if k[0] == "trailwatch_delivery_latency_seconds_bucket"), key=lambda x: x[0])
        self.assertGreater(len(buckets), 5)
        self.assertEqual(buckets[-1][0], float("inf"))
        counts = [c for _, c in buckets]
        self.assertEqual(counts, sorted(counts))
        self.assertEqual(buckets[-1][1], v("trailwatch_delivery_latency_seconds_count"))
        self.assertEqual(v("trailwatch_delivery_latency_seconds_count"), 2)
        self.assertGreater(v("trailwatch_delivery_latency_seconds_sum"), 0)
        for name, kind in (("trailwatch_events_received_total", "counter"), ("trailwatch_outbox_depth", "gauge"),
                           ("trailwatch_delivery_latency_seconds", "histogram"),
                           ("trailwatch_deliveries_total", "counter"), ("trailwatch_rule_matches_total", "counter")):
            self.assertIn("# TYPE %s %s\n" % (name, kind), text)
            self.assertIn("# HELP %s " % name, text)
        # no series twice
        names = [l.split(" ")[0] for l in text.splitlines() if l and not l.startswith("#")]
        self.assertEqual(len(names), len(set(names)))


class TestStopAndCrash(OpsCase):
    def test_sigterm_exits_0_promptly_with_a_delivery_in_flight(self):
        self.rcv.script("/hook", Response(200, "ok", delay=30))
        srv = Server(self, hook_config(self.rcv.url("/hook"), timeout="20s")).start()
        [eid] = self.put(srv, entries(1))
        self.rcv.wait_for(1, 10, "/hook")
        rc, took = srv.stop(timeout=15)
        self.assertEqual(rc, 0)
        self.assertLess(took, 6.0, "drain_timeout is 1 s")
        self.assertEqual(srv.logs(this_run=True)[-1]["msg"], "trailwatch stopped")
        # what was cut short is delivered after the restart (the same alert: same key)
        srv.start()
        got = self.rcv.wait_for(2, 10, "/hook")
        self.assertEqual(got[1].json()["id"], eid)
        self.assertEqual(got[0].header("Idempotency-Key"), got[1].header("Idempotency-Key"))

    def test_sigterm_drains_a_delivery_that_finishes_in_time(self):
        self.rcv.script("/hook", Response(200, "ok", delay=0.8))
        cfg = hook_config(self.rcv.url("/hook"))
        cfg["server"]["drain_timeout"] = "5s"
        srv = Server(self, cfg).start()
        self.put(srv, entries(1))
        self.rcv.wait_for(1, 10, "/hook")
        rc, took = srv.stop()
        self.assertEqual(rc, 0)
        self.assertLess(took, 9.0, "drain_timeout is 5 s")
        srv.start()
        self.rcv.quiet(2.5, "/hook")            # it was recorded as delivered: not sent again

    def test_sigterm_with_an_exec_delivery_in_flight_stops_within_the_drain_timeout(self):
        cfg = {"server": {"listen": "127.0.0.1:0", "drain_timeout": "1s"},
               "targets": {"slow": {"kind": "exec", "timeout": "10s",
                                    "command": ["python3", "-c", "import sys, time; sys.stdin.read(); time.sleep(8)"]}},
               "rules": [{"name": "r", "pattern": {"source": ["ops"]}, "targets": ["slow"]}]}
        srv = Server(self, cfg).start()
        self.put(srv, entries(1))
        time.sleep(0.8)                              # the program is running
        rc, took = srv.stop(timeout=30)
        self.assertEqual(rc, 0)
        self.assertLess(took, 4.0, "drain_timeout is 1 s")

    def test_sigint_and_idle_server_stop_quickly(self):
        srv = Server(self, hook_config(self.rcv.url("/hook"))).start()
        t0 = time.monotonic()
        srv.signal(signal.SIGINT)
        self.assertEqual(srv.proc.wait(10), 0, srv.stderr())
        self.assertLess(time.monotonic() - t0, 5.0)

    def test_kill9_during_retries_then_restart_loses_nothing(self):
        # the destination is down (connection refused) while alerts are retried; kill -9; it comes back
        port = twserve.free_loopback_port_for_refusal()
        cfg = hook_config("http://127.0.0.1:%d/hook" % port)
        cfg["rules"].append({"name": "ct", "pattern": {"detail": {"eventID": [{"exists": True}]}},
                             "targets": ["hook"]})
        srv = Server(self, cfg).start()
        ids = self.put(srv, entries(25))
        recs = twserve.cloudtrail_records(limit=5)
        st, b = srv.post_events(recs)
        self.assertEqual((st, b["accepted"]), (200, 5))
        srv.wait_log("delivery will be retried", target="hook", attempt="2")
        srv.kill9()
        rcv = Receiver(port).start()
        self.addCleanup(rcv.stop)
        srv.start()
        rcv.wait_for(30, 20, "/hook")
        time.sleep(0.5)
        seen = {}
        for r in rcv.requests("/hook"):
            ev = r.json()
            key = ev["detail"].get("eventID") if ev["source"] != "ops" else ev["id"]
            seen.setdefault(key, set()).add(r.header("Idempotency-Key"))
        want = set(ids) | {r["eventID"] for r in recs}
        missing = want - set(seen)
        self.assertFalse(missing, "alerts lost across kill -9: %s" % sorted(missing))
        self.assertEqual(set(seen), want)
        for eid, keys in seen.items():
            self.assertEqual(len(keys), 1, "repeats of %s with different idempotency keys %s" % (eid, keys))
        self.assertEqual(len({k for ks in seen.values() for k in ks}), len(seen))
        twserve.wait_until(lambda: srv.healthz()["outbox_depth"] == 0, 10, what="empty outbox")

    def test_kill9_right_after_acknowledging(self):
        # every event answered 200 is durable (fsync before the answer): kill -9 at once, nothing lost
        port = twserve.free_loopback_port_for_refusal()
        srv = Server(self, hook_config("http://127.0.0.1:%d/hook" % port)).start()
        ids = []
        for k in range(5):
            ids += self.put(srv, entries(10, start=10 * k))
        srv.kill9()
        rcv = Receiver(port).start()
        self.addCleanup(rcv.stop)
        srv.start()
        rcv.wait_for(50, 20, "/hook")
        time.sleep(0.3)
        self.assertEqual(set(ids) - {r.json()["id"] for r in rcv.requests("/hook")}, set())


class TestDurabilityAndLoad(OpsCase):
    def test_duplicate_records_are_remembered_across_a_restart(self):
        cfg = hook_config(self.rcv.url("/hook"))
        cfg["rules"] = [{"name": "ct", "pattern": {"detail": {"eventID": [{"exists": True}]}}, "targets": ["hook"]}]
        srv = Server(self, cfg).start()
        recs = twserve.cloudtrail_records(limit=3)
        st, b = srv.post_events(recs)
        self.assertEqual((b["accepted"], b["duplicates"]), (3, 0))
        self.rcv.wait_for(3, 10, "/hook")
        srv.stop()
        srv.start()
        st, b = srv.post_events(recs[1:] + [dict(recs[0], eventID="fresh-" + recs[0]["eventID"])])
        self.assertEqual((b["accepted"], b["duplicates"]), (3, 2), b)
        got = self.rcv.wait_for(4, 10, "/hook")
        self.rcv.quiet(0.5, "/hook")
        self.assertEqual(got[3].json()["detail"]["eventID"], "fresh-" + recs[0]["eventID"])

    # Was a bug: per-target states lived in an array that grew (realloc) when a target got its first
    # alert, while deliveries in flight kept pointers into the old array (heap-use-after-free; without
    # ASan a one-at-a-time target never delivered again).
    def test_new_targets_while_deliveries_are_in_flight(self):
        self.rcv.script("/slow", Response(200, "ok", delay=1.5))
        targets = {"slowhttp": {"kind": "webhook", "url": self.rcv.url("/slow"), "timeout": "5s"},
                   "slowexec": {"kind": "exec", "command": ["python3", "-c",
                                                            "import sys, time; sys.stdin.read(); time.sleep(1.5)"]}}
        fan = ["t%d" % i for i in range(12)]
        for name in fan:
            targets[name] = {"kind": "webhook", "url": self.rcv.url("/" + name)}
        cfg = {"server": {"listen": "127.0.0.1:0"}, "targets": targets,
               "rules": [{"name": "slow", "pattern": {"source": ["slow"]}, "targets": ["slowhttp", "slowexec"]},
                         {"name": "fan", "pattern": {"source": ["fan"]}, "targets": fan}]}
        srv = Server(self, cfg).start()
        try:
            self.put(srv, entries(1, "slow"))
            self.rcv.wait_for(1, 10, "/slow", server=srv)
            self.put(srv, entries(1, "fan"))             # 12 targets seen for the first time
            for name in fan:
                self.rcv.wait_for(1, 10, "/" + name, server=srv)
            srv.wait_metric("trailwatch_deliveries_total", 1, timeout=10, target="slowhttp", outcome="delivered")
            srv.wait_metric("trailwatch_deliveries_total", 1, timeout=10, target="slowexec", outcome="delivered")
            # and the slow targets still deliver afterwards
            self.rcv.set_default("/slow", Response(200, "ok"))
            self.put(srv, entries(1, "slow"))
            srv.wait_metric("trailwatch_deliveries_total", 2, timeout=10, target="slowhttp", outcome="delivered")
            srv.wait_metric("trailwatch_deliveries_total", 2, timeout=10, target="slowexec", outcome="delivered")
        finally:
            srv.stop()

    def test_concurrent_clients(self):
        import threading
        srv = Server(self, hook_config(self.rcv.url("/hook"))).start()
        ids, errors = [], []
        lock = threading.Lock()

        def client(k):
            try:
                for j in range(8):
                    st, _, b = srv.api("PutEvents", {"Entries": entries(10, start=100 * k + 10 * j)})
                    with lock:
                        if st != 200 or b["FailedEntryCount"]:
                            errors.append(b)
                        else:
                            ids.extend(e["EventId"] for e in b["Entries"])
            except Exception as e:      # reported below
                with lock:
                    errors.append(repr(e))
        threads = [threading.Thread(target=client, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(len(ids), 480)
        got = self.rcv.wait_for(480, 30, "/hook", server=srv)
        self.assertEqual({r.json()["id"] for r in got}, set(ids))
        srv.wait_metric("trailwatch_deliveries_total", 480, target="hook", outcome="delivered")
        self.assertEqual(srv.metric("trailwatch_events_received_total", source="eventbridge"), 480)


class TestEverythingAtOnce(OpsCase):
    def test_all_sources_and_targets_at_once(self):
        """Every source feeding every kind of local and HTTP target at the same time, under the
        sanitizers: nothing crashes, every match is delivered, SIGTERM ends in exit 0."""
        import base64
        import glob
        import gzip
        import shutil
        import threading
        import uuid
        files = sorted(glob.glob(twserve.shared("data", "cloudtrail", "s3-layout", "AWSLogs", "*", "CloudTrail",
                                                "us-east-1", "*", "*", "*", "*.json.gz")))[:40]
        cfg = {"server": {"listen": "127.0.0.1:0"},
               "sources": {"folder": {"path": "logs", "watch": True}, "firehose": True},
               "targets": {"hook": {"kind": "webhook", "url": self.rcv.url("/hook")},
                           "slack": {"kind": "slack", "url": self.rcv.url("/slack"), "rate": {"per_second": 0}},
                           "audit": {"kind": "file", "path": "audit.jsonl"},
                           "run": {"kind": "exec", "command": ["python3", "-c", "import sys; sys.stdin.read()"]},
                           "term": {"kind": "console"}},
               "rules": [{"name": "api", "pattern": {"source": ["ops"]}, "targets": ["hook", "slack", "audit"]},
                         {"name": "records", "pattern": {"detail": {"eventID": [{"exists": True}]}},
                          "targets": ["audit", "hook"]},
                         {"name": "some-records", "pattern": {"detail": {"eventName": [{"prefix": "Get"}]}},
                          "targets": ["run", "term"]}]}
        # a folder that is not empty (an empty one is test_serve_folder's bug) but holds no record
        srv = Server(self, cfg, stdin=True, files={"logs/empty.json": '{"Records": []}'})
        srv.start()
        # every target once first, all in one go, so that none is seen for the first time while another
        # is in flight (that is test_new_targets_while_deliveries_are_in_flight's bug, not this test's)
        st, _, b = srv.api("PutEvents", {"Entries": [{"Source": "ops", "DetailType": "warm-up", "Detail": json.dumps(
            {"eventID": "warm-up-0", "eventName": "GetWarmUp"})}]})
        self.assertEqual((st, b["FailedEntryCount"]), (200, 0))
        for t in ("hook", "slack", "audit", "run", "term"):
            srv.wait_metric("trailwatch_deliveries_total", 1, timeout=10, target=t, outcome="delivered")
        recs = twserve.cloudtrail_records(limit=160)
        errors = []

        def api():
            try:
                for j in range(5):
                    self.put(srv, entries(10, start=1000 + 10 * j))
            except Exception as e:      # reported below
                errors.append(repr(e))

        def events():
            try:
                for k in range(0, 60, 20):
                    st, b = srv.post_events(recs[k:k + 20])
                    assert st == 200, b
            except Exception as e:
                errors.append(repr(e))

        def firehose():
            try:
                for k in range(60, 120, 30):
                    msg = {"messageType": "DATA_MESSAGE", "owner": "1", "logGroup": "g", "logStream": "s",
                           "subscriptionFilters": ["f"], "logEvents": [
                               {"id": str(i), "timestamp": 0, "message": json.dumps(r)}
                               for i, r in enumerate(recs[k:k + 30])]}
                    rid = str(uuid.uuid4())
                    body = json.dumps({"requestId": rid, "timestamp": int(time.time() * 1000), "records": [
                        {"data": base64.b64encode(gzip.compress(json.dumps(msg).encode())).decode()}]})
                    st, _, data = srv.post("/firehose", body, {
                        "X-Amz-Firehose-Request-Id": rid, "X-Amz-Firehose-Protocol-Version": "1.0",
                        "Content-Type": "application/json"})
                    assert st == 200, data
            except Exception as e:
                errors.append(repr(e))

        def stdin():
            try:
                srv.proc.stdin.write("".join(json.dumps(r) + "\n" for r in recs[120:160]).encode())
                srv.proc.stdin.flush()
            except Exception as e:
                errors.append(repr(e))

        def folder():
            for i, f in enumerate(files):
                shutil.copy(f, srv.path("logs", "f%03d.json.gz" % i))

        threads = [threading.Thread(target=x) for x in (api, api, events, firehose, stdin, folder)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        srv.wait_metric("trailwatch_folder_files_total", len(files), timeout=30, result="processed")
        twserve.wait_until(lambda: srv.healthz()["outbox_depth"] == 0, 60, what="every alert delivered")
        m = srv.metrics()

        def v(name, **labels):
            return m.get((name, frozenset((k, str(x)) for k, x in labels.items())), 0)
        self.assertEqual(v("trailwatch_rule_matches_total", rule="api"), 101)
        for t in ("hook", "slack", "audit", "run", "term"):
            self.assertEqual(v("trailwatch_deliveries_total", target=t, outcome="dead"), 0, t)
        self.assertEqual(v("trailwatch_deliveries_total", target="slack", outcome="delivered"), 101)
        records = v("trailwatch_rule_matches_total", rule="records")
        self.assertEqual(v("trailwatch_deliveries_total", target="audit", outcome="delivered"), 101 + records)
        self.assertEqual(len(srv.jsonl("audit.jsonl")), 101 + records)
        self.assertEqual(v("trailwatch_deliveries_total", target="run", outcome="delivered"),
                         v("trailwatch_rule_matches_total", rule="some-records"))
        self.assertEqual(len(srv.stdout_lines()), v("trailwatch_rule_matches_total", rule="some-records"))
        for src in ("eventbridge", "http", "firehose", "stdin", "folder"):
            self.assertGreater(v("trailwatch_events_received_total", source=src), 0, src)
        srv.proc.stdin.close()
        rc, _ = srv.stop()
        self.assertEqual(rc, 0)


class TestDeadLetters(OpsCase):
    def test_dlq_list_show_redrive_while_running(self):
        token = "SECRET-TOKEN-8f2a7c"
        self.rcv.set_default("/hook/" + token, Response(404, '{"error":"no such hook"}'))
        cfg = hook_config(self.rcv.url("/hook/${HOOK_TOKEN}"))
        cfg["targets"]["other"] = {"kind": "webhook", "url": self.rcv.url("/other")}
        cfg["rules"].append({"name": "other-rule", "pattern": {"source": ["other"]}, "targets": ["other"]})
        self.rcv.set_default("/other", Response(410, "gone"))
        srv = Server(self, cfg, env={"HOOK_TOKEN": token}).start()
        ids = self.put(srv, entries(3) + entries(1, "other"))
        srv.wait_metric("trailwatch_deliveries_total", 3, target="hook", outcome="dead")
        srv.wait_metric("trailwatch_deliveries_total", 1, target="other", outcome="dead")
        p = srv.dlq("list")
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertTrue(lines[0].split()[:3] == ["ID", "FAILED", "TARGET"], lines[0])
        self.assertEqual(len(lines), 5)
        rows = [json.loads(l) for l in srv.dlq("list", "--json").stdout.splitlines()]
        self.assertEqual(sorted(r["target"] for r in rows), ["hook", "hook", "hook", "other"])
        only = [json.loads(l) for l in srv.dlq("list", "--json", "--target", "other").stdout.splitlines()]
        self.assertEqual([r["target"] for r in only], ["other"])
        hook_row = [r for r in rows if r["target"] == "hook"][0]
        shown = srv.dlq("show", str(hook_row["id"]))
        self.assertEqual(shown.returncode, 0, shown.stderr)
        self.assertIn("no such hook", shown.stdout)
        self.assertIn("HTTP 404", shown.stdout)
        payload = json.loads(shown.stdout.split("payload:\n", 1)[1])
        self.assertIn(payload["id"], ids)
        for text in (p.stdout, shown.stdout, srv.stderr(), srv.metrics_text()):
            self.assertNotIn(token, text)
        # errors of the command itself
        p = srv.dlq("show", "999999")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("999999", p.stderr + p.stdout)
        p = srv.dlq("show", "abc")
        self.assertEqual(p.returncode, 2)
        self.assertIn("not a dead letter id", p.stderr)
        p = srv.dlq("redrive")
        self.assertEqual(p.returncode, 2)
        p = srv.dlq("frobnicate")
        self.assertEqual(p.returncode, 2)
        # the destination is fixed: redrive one, then the rest of one target, while the server runs
        self.rcv.set_default("/hook/" + token, Response(200, "ok"))
        self.rcv.clear()
        p = srv.dlq("redrive", str(hook_row["id"]))
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "redrove 1 dead letter"), p.stderr)
        t0 = time.monotonic()
        got = self.rcv.wait_for(1, 5, "/hook/" + token)
        self.assertLess(time.monotonic() - t0, 4.0)
        self.assertEqual(got[0].json()["id"], payload["id"])
        p = srv.dlq("redrive", "--all", "--target", "hook")
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "redrove 2 dead letters"), p.stderr)
        got = self.rcv.wait_for(3, 5, "/hook/" + token)
        self.assertEqual({r.json()["id"] for r in got}, set(ids[:3]))
        left = [json.loads(l) for l in srv.dlq("list", "--json").stdout.splitlines()]
        self.assertEqual([r["target"] for r in left], ["other"])
        srv.wait_metric("trailwatch_deliveries_total", 3, target="hook", outcome="delivered")
        # redriven while the destination still fails: dead again, not lost
        p = srv.dlq("redrive", "--all")
        self.assertEqual(p.stdout.strip(), "redrove 1 dead letter")
        srv.wait_metric("trailwatch_deliveries_total", 2, target="other", outcome="dead")
        self.assertEqual(len(srv.dlq("list", "--json").stdout.splitlines()), 1)

    def test_dlq_without_a_server_and_redrive_at_next_start(self):
        self.rcv.set_default("/hook", Response(400, "bad request"))
        srv = Server(self, hook_config(self.rcv.url("/hook"))).start()
        [eid] = self.put(srv, entries(1))
        srv.wait_metric("trailwatch_deliveries_total", 1, target="hook", outcome="dead")
        srv.stop()
        p = srv.tw("dlq", "list", "--json", "--data-dir", srv.path("var"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(p.stdout.splitlines()), 1)
        p = srv.dlq("redrive", "--all")
        self.assertEqual(p.stdout.strip(), "redrove 1 dead letter")
        self.rcv.set_default("/hook", Response(200, "ok"))
        self.rcv.clear()
        srv.start()
        self.assertEqual(self.rcv.wait_for(1, 5, "/hook")[0].json()["id"], eid)


class TestStdinAndStartup(OpsCase):
    def test_stdin_events_without_a_listener(self):
        cfg = {"server": {"listen": False},
               "targets": {"hook": {"kind": "webhook", "url": self.rcv.url("/hook")}},
               "rules": [{"name": "r", "pattern": {"detail": {"eventID": [{"exists": True}]}}, "targets": ["hook"]}]}
        srv = Server(self, cfg, listen=None, stdin=True)
        srv.start(wait=False)
        recs = twserve.cloudtrail_records(limit=3)
        text = "".join(json.dumps(r) + "\n" for r in recs) + "not json\n" + json.dumps(recs[0]) + "\n"
        srv.proc.stdin.write(text.encode())
        srv.proc.stdin.close()
        self.assertEqual(srv.proc.wait(30), 0, srv.stderr())
        got = self.rcv.requests("/hook")
        self.assertEqual(sorted(r.json()["detail"]["eventID"] for r in got), sorted(r["eventID"] for r in recs))
        self.assertTrue(any("invalid event on stdin" in l.get("msg", "") for l in srv.logs()), srv.stderr())

    def test_startup_errors_are_clear(self):
        # the port is taken
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            port = s.getsockname()[1]
            srv = Server(self, hook_config(self.rcv.url("/hook")), listen="127.0.0.1:%d" % port)
            with self.assertRaises(twserve.ServerFailed) as cm:
                srv.start(timeout=10)
            self.assertNotEqual(srv.proc.returncode, 0)
            self.assertIn("cannot listen on 127.0.0.1:%d" % port, str(cm.exception))
        # beyond loopback without access keys
        srv = Server(self, hook_config(self.rcv.url("/hook")), listen="0.0.0.0:0")
        with self.assertRaises(twserve.ServerFailed) as cm:
            srv.start(timeout=10)
        self.assertIn("access_keys", str(cm.exception))
        # usage
        p = srv.tw("serve")
        self.assertEqual(p.returncode, 2)
        self.assertIn("-c FILE", p.stderr)
        p = srv.tw("serve", "-c", srv.path("missing.yml"))
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("missing.yml", p.stderr)
        p = srv.tw("serve", "-c", srv.config_path, "--log-level", "loud")
        self.assertEqual(p.returncode, 2)


if __name__ == "__main__":
    unittest.main()
