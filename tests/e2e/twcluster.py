"""Helpers for the cluster-mode tests: real nats-server processes (one, or a three-node JetStream
cluster) on free loopback ports in temporary folders, and CloudTrail records to send.

Each server is started by the test and killed at the end whatever happened (twserve's leftovers
list); nothing listens beyond 127.0.0.1.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import twserve

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def have_nats():
    return os.access(NATS_SERVER, os.X_OK)


class NatsNode:
    """One nats-server -js. With cluster=(name, own route port, [peer route ports]) it joins a cluster."""

    def __init__(self, name, port=None, cluster=None, store=None):
        self.name = name
        self.port = port or twserve.free_port()
        self.cluster = cluster
        self.dir = store or tempfile.mkdtemp(prefix="tw-nats-")
        twserve._dirs.add(self.dir)
        self.proc = None
        self.log_path = os.path.join(self.dir, "nats.log")

    @property
    def url(self):
        return "nats://127.0.0.1:%d" % self.port

    def start(self, wait=True):
        cmd = [NATS_SERVER, "-js", "-sd", os.path.join(self.dir, "js"), "-a", "127.0.0.1", "-p", str(self.port),
               "-n", self.name]
        if self.cluster:
            cname, rport, peers = self.cluster
            cmd += ["--cluster_name", cname, "--cluster", "nats://127.0.0.1:%d" % rport,
                    "--routes", ",".join("nats://127.0.0.1:%d" % p for p in peers)]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        twserve._live.add(self.proc)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=20.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError("nats-server %s exited %s:\n%s" % (self.name, self.proc.returncode, self.logtext()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if s.recv(4096).startswith(b"INFO"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("nats-server %s not ready in %.0f s:\n%s" % (self.name, timeout, self.logtext()))

    def logtext(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-4000:]
        except OSError:
            return ""

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        twserve._live.discard(self.proc)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        twserve._live.discard(self.proc)
        try:
            self.log.close()
        except Exception:
            pass

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        twserve._dirs.discard(self.dir)


def single(test):
    n = NatsNode("n1").start()
    test.addCleanup(n.cleanup)
    return [n]


def three_node_cluster(test):
    """Three servers routed to each other on loopback ports, one JetStream cluster."""
    ports = [twserve.free_port() for _ in range(3)]
    nodes = []
    for i in range(3):
        peers = [p for j, p in enumerate(ports) if j != i]
        nodes.append(NatsNode("n%d" % (i + 1), cluster=("twtest", ports[i], peers)))
    for n in nodes:
        n.start(wait=False)
        test.addCleanup(n.cleanup)
    for n in nodes:
        n.wait_ready()
    return nodes


# ---------------------------------------------------------------------------------------------------
# trailwatch nodes


def node_config(urls, role, name, hook_url, **cluster):
    c = {"urls": urls, "role": role, "name": name, "ack_wait": "2s", "publish_timeout": "60s"}
    c.update(cluster)
    return {
        "server": {"listen": "127.0.0.1:0", "drain_timeout": "2s"},
        "cluster": c,
        "targets": {"hook": {"kind": "webhook", "url": hook_url,
                             "retry": {"max_attempts": 50, "base": "100ms", "cap": "1s"}}},
        "rules": [{"name": "ec2-run", "pattern": {"source": ["aws.ec2"], "detail": {"eventName": ["RunInstances"]}},
                   "targets": ["hook"]}],
    }


def record(i, matching=True, event_id=None):
    """A raw CloudTrail record; matching ones are ec2 RunInstances (the tests' rule)."""
    return {
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/u%d" % (i % 7),
                         "accountId": "123456789012", "userName": "u%d" % (i % 7)},
        "eventTime": "2024-03-01T12:%02d:%02dZ" % ((i // 60) % 60, i % 60),
        "eventSource": "ec2.amazonaws.com" if matching else "s3.amazonaws.com",
        "eventName": "RunInstances" if matching else "GetObject",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.%d" % (i % 250 + 1),
        "requestParameters": {"instanceType": "t3.micro", "n": i},
        "eventID": event_id or str(uuid.uuid4()),
        "eventType": "AwsApiCall",
        "recipientAccountId": "123456789012",
    }


def post_events(port, records, timeout=60):
    """POST /events as JSON lines; returns (status, parsed body)."""
    import http.client
    body = "\n".join(json.dumps(r, separators=(",", ":")) for r in records).encode()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("POST", "/events", body=body, headers={"Content-Type": "application/x-ndjson"})
        r = c.getresponse()
        data = r.read()
        try:
            return r.status, json.loads(data.decode() or "{}")
        except ValueError:
            return r.status, {"raw": data.decode("utf-8", "replace")}
    finally:
        c.close()


def cluster_status(config_path, wait=1.0):
    p = subprocess.run([twserve.tw_bin(), "cluster", "status", "-c", config_path, "--json", "--wait", str(wait)],
                       capture_output=True, text=True, timeout=60, env=twserve.Server._make_env(None))
    if p.returncode != 0:
        raise AssertionError("cluster status exited %d: %s" % (p.returncode, p.stderr))
    return json.loads(p.stdout)


def metric(server, name, labels=""):
    """A counter from a server's /metrics (0 when absent)."""
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
    finally:
        c.close()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{" if labels is not None else name) and (not labels or labels in line):
            total += float(line.rsplit(" ", 1)[1])
    return total
