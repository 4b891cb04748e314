"""Cluster mode on NATS JetStream, end to end: real nats-server processes (one, or a three-node
cluster) on loopback ports, real trailwatch ingest nodes and workers, a real webhook receiver.

What is checked (issue #13):
- two ingest nodes and three workers: the same CloudTrail events arriving by two paths (a log file in
  one ingest node's folder, POST /events on the other) are published once (the stream's duplicate
  window) and alerted once; `cluster status` shows the stream, the consumer and all five nodes;
- kill -9 of a worker holding a batch: every event an ingest node acknowledged is alerted, and the
  repeats are counted (same Idempotency-Key) and bounded by what the killed worker held;
- kill -9 of a NATS node of a three-node cluster (R3 stream) while events flow: nothing
  acknowledged is lost; repeats counted;
- configuration errors are reported at their line; the embedded mode is unchanged (the other suites);
- Sigma correlations are refused on nodes that match (issue #14: per-worker state would under-count).
"""
import collections
import gzip
import json
import os
import signal
import threading
import time
import unittest

import twcluster
import twserve
from twserve import Receiver, Server, wait_until


def settle(rcv, quiet=3.0, timeout=120.0):
    """Waits until nothing has arrived for `quiet` seconds (repeats may trail the last new alert)."""
    end = time.monotonic() + timeout
    n = len(rcv.requests("/hook"))
    last = time.monotonic()
    while time.monotonic() - last < quiet:
        if time.monotonic() > end:
            raise AssertionError("the receiver never went quiet")
        time.sleep(0.1)
        m = len(rcv.requests("/hook"))
        if m != n:
            n, last = m, time.monotonic()
    return rcv.requests("/hook")


def keys_of(requests):
    return [r.header("Idempotency-Key") for r in requests]


def event_ids(requests):
    return [r.json()["detail"]["eventID"] for r in requests]


@unittest.skipUnless(twcluster.have_nats(), "nats-server is not installed (scripts/setup-deps)")
class ClusterTest(unittest.TestCase):

    def setUp(self):
        self.rcv = Receiver().start()
        self.addCleanup(self.rcv.stop)

    def node(self, urls, role, name, files=None, **cluster):
        cfg = twcluster.node_config(urls, role, name, self.rcv.url("/hook"), **cluster)
        if files:
            cfg["sources"] = {"folder": {"path": "trail", "watch": True}}
        s = Server(self, cfg, files=files)
        s.start(timeout=60)
        return s

    # -----------------------------------------------------------------------------------------------

    def test_two_paths_two_ingest_nodes_three_workers(self):
        nats = twcluster.single(self)
        urls = [n.url for n in nats]
        records = [twcluster.record(i, matching=(i % 3 != 0)) for i in range(90)]
        matching = {r["eventID"] for r in records if r["eventName"] == "RunInstances"}
        workers = [self.node(urls, "worker", "w%d" % i, fetch_batch=20) for i in range(1, 4)]
        # Path 1: ingest A posts the records to POST /events.
        a = self.node(urls, "ingest", "ingest-a")
        status, body = twcluster.post_events(a.port, records)
        self.assertEqual(status, 200, body)
        self.assertEqual((body["accepted"], body["duplicates"], body["rejected"]), (90, 0, 0), body)
        # Path 2: the same records in a CloudTrail log file in ingest B's folder.
        log = gzip.compress(json.dumps({"Records": records}).encode())
        b = self.node(urls, "ingest", "ingest-b",
                      files={"trail/AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/01/f.json.gz": log})
        wait_until(lambda: twcluster.metric(b, "trailwatch_events_received_total", 'source="folder"') >= 90,
                   timeout=60, what="ingest B to publish the log file")
        self.rcv.wait_for(len(matching), timeout=60, path="/hook")
        got = settle(self.rcv)
        ids = event_ids(got)
        self.assertEqual(len(ids), len(matching), "each matching event alerted exactly once")
        self.assertEqual(set(ids), matching)
        self.assertEqual(len(set(keys_of(got))), len(got))
        self.assertEqual(twcluster.metric(b, "trailwatch_cluster_publish_duplicates_total"), 90,
                         "the second path's copies are recognised by the stream")
        self.assertEqual(twcluster.metric(b, "trailwatch_cluster_published_total"), 0)
        st = twcluster.cluster_status(workers[0].config_path)
        by_name = {n["name"]: n for n in st["nodes"]}
        self.assertEqual(sorted(by_name), ["ingest-a", "ingest-b", "w1", "w2", "w3"])
        self.assertEqual(sum(by_name["w%d" % i]["events"] for i in (1, 2, 3)), 90, "every event matched once")
        self.assertEqual(by_name["ingest-a"]["published"], 90)
        self.assertEqual(by_name["ingest-b"]["publish_duplicates"], 90)
        self.assertEqual(st["stream"]["messages"], 0, "the work queue is drained")
        self.assertTrue(st["consumer"]["exists"])
        self.assertEqual([c["name"] for c in st["consumers"]], ["trailwatch-workers"])
        self.assertEqual(st["consumer"]["ack_pending"], 0)
        self.assertEqual(st["stream"]["name"], "TRAILWATCH")
        # The text form names the same things.
        p = twserve.subprocess.run([twserve.tw_bin(), "cluster", "status", "-c", a.config_path],
                                   capture_output=True, text=True, timeout=60, env=a.env)
        self.assertEqual(p.returncode, 0, p.stderr)
        for word in ("stream TRAILWATCH", "consumer trailwatch-workers", "w1", "ingest-b", "CPU us/ev"):
            self.assertIn(word, p.stdout)
        # An event with neither eventID nor id gets its id at the ingest node, in the stream: a
        # redelivery keeps it (and with it the alert's idempotency key).
        status, body = twcluster.post_events(a.port, [{"source": "aws.ec2", "detail-type": "AWS API Call via CloudTrail",
                                                       "detail": {"eventName": "RunInstances"}}])
        self.assertEqual((status, body["accepted"]), (200, 1), body)
        extra = self.rcv.wait_for(len(matching) + 1, timeout=60, path="/hook")[-1].json()
        self.assertRegex(extra.get("id", ""), r"^[0-9a-f-]{36}$")
        # Per-worker metrics.
        self.assertGreater(sum(twcluster.metric(w, "trailwatch_cluster_events_total", 'worker="%s"' % n)
                               for w, n in zip(workers, ("w1", "w2", "w3"))), 0)

    def test_worker_killed_mid_batch_loses_nothing(self):
        nats = twcluster.single(self)
        urls = [n.url for n in nats]
        workers = [self.node(urls, "worker", "w%d" % i, fetch_batch=100, fetchers=2) for i in range(1, 4)]
        ingest = self.node(urls, "ingest", "ingest")
        # The receiver is slow, so alerts queue up in the workers' outboxes and the workers are busy.
        self.rcv.set_default("/hook", twserve.Response(200, b"ok", delay=0.005))
        records = [twcluster.record(i) for i in range(3000)]
        expected = {r["eventID"] for r in records}
        accepted = []

        def feed():
            for k in range(0, len(records), 100):
                chunk = records[k:k + 100]
                while True:
                    status, body = twcluster.post_events(ingest.port, chunk)
                    if status == 200:
                        accepted.extend(r["eventID"] for r in chunk)
                        break
                    time.sleep(0.2)

        t = threading.Thread(target=feed)
        t.start()
        victim = workers[0]
        # Kill it while it holds events: it has taken some, and the stream is far from drained.
        wait_until(lambda: twcluster.metric(victim, "trailwatch_cluster_events_total") > 0, timeout=60,
                   interval=0.01, what="the first worker to take events")
        victim.kill9()
        t.join(120)
        self.assertEqual(set(accepted), expected)
        # Redelivery after ack_wait (2 s) hands the victim's unacknowledged events to the others: the
        # work queue drains without it.
        drained = lambda: twcluster.cluster_status(ingest.config_path, wait=0.2)["stream"]["messages"] == 0
        wait_until(drained, timeout=120, interval=0.5, what="the surviving workers to drain the stream")
        # The victim's outbox holds alerts it committed but had not delivered: a restart sends them.
        victim.start(timeout=60)
        wait_until(lambda: set(event_ids(self.rcv.requests("/hook"))) == expected, timeout=120,
                   what="every accepted event to be alerted")
        got = settle(self.rcv)
        keys = collections.Counter(keys_of(got))
        repeats = len(got) - len(keys)
        print("\n  worker kill -9: %d events, %d alerts, %d repeated (same Idempotency-Key)"
              % (len(expected), len(got), repeats))
        self.assertEqual(len(keys), len(expected), "one key per event")
        # A repeat is an event the victim had committed but not acknowledged: at most what it held.
        self.assertLessEqual(repeats, 100 * 2, "repeats beyond what the killed worker held")
        for k, n in keys.items():
            same = [r.body for r in got if r.header("Idempotency-Key") == k]
            self.assertTrue(all(x == same[0] for x in same), "a repeat carries the same alert")

    def test_nats_node_killed_loses_nothing(self):
        nats = twcluster.three_node_cluster(self)
        urls = [n.url for n in nats]
        workers = [self.node(urls, "worker", "w%d" % i, replicas=3, fetch_batch=50) for i in (1, 2)]
        ingest = self.node(urls, "ingest", "ingest", replicas=3)
        st = twcluster.cluster_status(ingest.config_path)
        self.assertEqual(st["stream"]["replicas"], 3)
        leader = st["stream"]["leader"]
        self.assertIn(leader, ("n1", "n2", "n3"))
        records = [twcluster.record(i) for i in range(1500)]
        accepted = []
        statuses = collections.Counter()
        fed = threading.Event()

        def feed():
            for k in range(0, len(records), 50):
                chunk = records[k:k + 50]
                for _ in range(200):
                    status, body = twcluster.post_events(ingest.port, chunk, timeout=120)
                    statuses[status] += 1
                    if status == 200:
                        accepted.extend(r["eventID"] for r in chunk)
                        break
                    time.sleep(0.25)
                if k == 500:
                    fed.set()
                time.sleep(0.01)
            fed.set()

        t = threading.Thread(target=feed)
        t.start()
        fed.wait(120)
        # The stream's leader dies while events flow.
        victim = next(n for n in nats if n.name == leader)
        victim.kill9()
        t.join(300)
        self.assertFalse(t.is_alive())
        expected = set(accepted)
        self.assertEqual(expected, {r["eventID"] for r in records}, "the client's retries got every batch in")
        wait_until(lambda: set(event_ids(self.rcv.requests("/hook"))) >= expected, timeout=180,
                   what="every accepted event to be alerted after the node died")
        got = settle(self.rcv)
        keys = collections.Counter(keys_of(got))
        print("\n  NATS node kill -9 (%s, the stream leader): %d events, %d alerts, %d repeated, answers %s"
              % (leader, len(expected), len(got), len(got) - len(keys), dict(statuses)))
        self.assertEqual(len(keys), len(expected))
        st = twcluster.cluster_status(ingest.config_path, wait=2.0)
        self.assertNotEqual(st["stream"]["leader"], leader, "a new leader was elected")
        self.assertEqual(sorted(n["name"] for n in st["nodes"]), ["ingest", "w1", "w2"])
        for w in workers:
            w.check_alive()


class ClusterConfigTest(unittest.TestCase):

    def test_errors_at_their_line(self):
        d = twserve.tempfile.mkdtemp(prefix="tw-cluster-cfg-")
        self.addCleanup(twserve.shutil.rmtree, d, True)
        path = os.path.join(d, "tw.yml")
        with open(path, "w") as f:
            f.write("cluster:\n"
                    "  urls: [http://127.0.0.1:4222]\n"
                    "  role: matcher\n"
                    "  stream: my.stream\n"
                    "  subject: 'a.*'\n"
                    "  fetch_batch: 0\n"
                    "  replicas: 7\n"
                    "  ack_wait: 10ms\n"
                    "  bogus: 1\n")
        p = twserve.subprocess.run([twserve.tw_bin(), "rules", "check", "-c", path], capture_output=True, text=True,
                                   timeout=60)
        self.assertEqual(p.returncode, 2, p.stderr)
        for want in ("tw.yml:2: cluster.urls[0]: must be a NATS URL", "tw.yml:3: cluster.role: must be both, ingest or worker",
                     "tw.yml:4: cluster.stream:", "tw.yml:5: cluster.subject:", "tw.yml:6: cluster.fetch_batch",
                     "tw.yml:7: cluster.replicas", "tw.yml:8: cluster.ack_wait", "tw.yml:9: cluster: unknown key \"bogus\""):
            self.assertIn(want, p.stderr)

    def test_no_nats_is_a_clear_error(self):
        port = twserve.free_port()
        cfg = twcluster.node_config(["nats://user:s3cret@127.0.0.1:%d" % port], "both", "x", "http://127.0.0.1:9/")
        s = Server(self, cfg)
        with self.assertRaises(twserve.ServerFailed) as cm:
            s.start(timeout=30)
        msg = str(cm.exception)
        self.assertIn("cannot connect to NATS at nats://***@127.0.0.1:%d" % port, msg)
        self.assertNotIn("s3cret", msg)

    def test_sigma_correlations_refused_on_matching_nodes(self):
        """Each worker keeps its own correlation state: an event_count over events spread across workers
        would under-count, so a node that matches refuses correlations with a clear error (#14); an
        ingest node (it matches nothing) and Sigma detection rules alone are fine."""
        sigma = ("title: failed login\nname: failed_login\nlogsource: {product: aws, service: cloudtrail}\n"
                 "detection:\n  sel: {eventName: ConsoleLogin}\n  condition: sel\n---\n"
                 "title: brute force\nname: brute_force\ncorrelation:\n  type: event_count\n"
                 "  rules: [failed_login]\n  group-by: [sourceIPAddress]\n  timespan: 10m\n"
                 "  condition: {gte: 3}\n")
        port = twserve.free_port()
        for role, rc in (("worker", 2), ("both", 2), ("ingest", 0)):
            cfg = twcluster.node_config(["nats://127.0.0.1:%d" % port], role, "x", "http://127.0.0.1:9/")
            cfg["sigma"] = {"paths": ["sigma/"], "targets": ["hook"]}
            srv = Server(None, cfg, files={"sigma/login.yml": sigma})
            self.addCleanup(srv.cleanup)
            r = srv.tw("rules", "check", "-c", srv.config_path)
            self.assertEqual(r.returncode, rc, (role, r.stdout, r.stderr))
            if rc:
                self.assertRegex(r.stderr, r"sigma/login\.yml:\d+: rule \"brute_force\": a Sigma correlation "
                                 r"cannot run in cluster mode \(cluster.role: %s\): each worker would count only "
                                 r"the events it takes and under-count" % role)
        # serve does not start with it (before any NATS connection is tried)
        cfg = twcluster.node_config(["nats://127.0.0.1:%d" % port], "both", "x", "http://127.0.0.1:9/")
        cfg["sigma"] = {"paths": ["sigma/"], "targets": ["hook"]}
        s = Server(self, cfg, files={"sigma/login.yml": sigma})
        with self.assertRaises(twserve.ServerFailed) as cm:
            s.start(timeout=30)
        self.assertIn("a Sigma correlation cannot run in cluster mode", str(cm.exception))
        # detection rules alone run in cluster mode
        s.write("sigma/login.yml", sigma.split("---")[0])
        r = s.tw("rules", "check", "-c", s.config_path)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_status_without_cluster_section(self):
        d = twserve.tempfile.mkdtemp(prefix="tw-cluster-cfg-")
        self.addCleanup(twserve.shutil.rmtree, d, True)
        path = os.path.join(d, "tw.yml")
        with open(path, "w") as f:
            f.write("rules: []\n")
        p = twserve.subprocess.run([twserve.tw_bin(), "cluster", "status", "-c", path], capture_output=True,
                                   text=True, timeout=60)
        self.assertEqual(p.returncode, 2)
        self.assertIn("no cluster: section", p.stderr)


if __name__ == "__main__":
    unittest.main()
