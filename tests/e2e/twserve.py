"""Helpers for the end-to-end tests of `trailwatch serve` (tests/e2e/test_serve_*.py).

- Receiver: a real HTTP server on 127.0.0.1 (http.server.ThreadingHTTPServer in a thread) standing in
  for Slack, a webhook, Teams, Discord or PagerDuty. Answers are scripted per path (status, body,
  headers, delay); every request is recorded (method, path, headers, body, arrival time).
- Server: `trailwatch serve -c FILE --listen 127.0.0.1:0` in a temporary folder, its stderr (JSON
  log lines) and stdout read by threads; SIGTERM / SIGHUP / SIGKILL, restart on the same data dir,
  and a cleanup that always leaves no process behind. A SIGTERM that does not end in exit status 0
  (a sanitizer report, a leak, a crash, a hang) fails the test and shows the server's stderr.
- Clients: the AWS CLI v1 (pip) and v2 (Debian), boto3 and raw HTTP, all pointed at the server with
  fake credentials.

Nothing here mocks trailwatch: every test talks to the real binary over loopback.
"""
import atexit
import gzip
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import twtest

# The sanitizer settings tests/run.py uses, for runs of a single file with `python3 -m unittest`.
SAN_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:halt_on_error=1:exitcode=86:strict_string_checks=1",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=87",
    "LSAN_OPTIONS": "exitcode=88",
}

ACCOUNT = "123456789012"
REGION = "us-east-1"
AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

AWS_CLI_V2 = "/usr/bin/aws"

_live = set()          # every Popen started here, killed at exit whatever happened
_dirs = set()          # temporary folders not yet removed


@atexit.register
def _kill_leftovers():
    for p in list(_live):
        if p.poll() is None:
            try:
                p.kill()
                p.wait(timeout=5)
            except Exception:
                pass
    for d in list(_dirs):
        shutil.rmtree(d, ignore_errors=True)


def tw_bin():
    """The binary under test, as an absolute path (TW_BIN may be relative to where the tests started;
    the server runs in its own folder)."""
    return os.path.abspath(twtest.tw_bin())


_sanitized = {}


def sanitized():
    """True when the binary under test is built with ASan/UBSan (make SAN=1): some undefined
    behaviour is only seen there."""
    b = tw_bin()
    if b not in _sanitized:
        try:
            with open(b, "rb") as f:
                data = f.read()
            _sanitized[b] = b"__ubsan_handle" in data or b"__asan_init" in data
        except OSError:
            _sanitized[b] = False
    return _sanitized[b]


def wait_until(pred, timeout=10.0, interval=0.05, what="condition"):
    """Polls pred() until it returns a true value (returned) or raises AssertionError after timeout."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= end:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def free_port():
    return twtest.free_port()


def compact(obj):
    return json.dumps(obj, separators=(",", ":"))


# ---------------------------------------------------------------------------------------------------
# Receiver


class Response:
    """One scripted answer: status, body (str or bytes), headers, and a delay before answering
    (a large delay stands for a destination that hangs)."""

    def __init__(self, status=200, body=b"ok", headers=None, delay=0.0):
        self.status = status
        self.body = body.encode() if isinstance(body, str) else body
        self.headers = dict(headers or {})
        self.delay = delay

    def __repr__(self):
        return "Response(%d, %r, delay=%s)" % (self.status, self.body[:40], self.delay)


class Request:
    """One request the receiver got."""

    def __init__(self, method, path, headers, body, t):
        self.method = method
        self.path = path                      # with the query, as sent
        self.headers = headers                # list of (name, value) as sent
        self.body = body
        self.t = t                            # time.monotonic() when the body had arrived
        self.status = None                    # the status it was answered

    def header(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def text(self):
        return self.body.decode("utf-8")

    def __repr__(self):
        return "Request(%s %s %r)" % (self.method, self.path, self.body[:120])


class Receiver:
    """A local HTTP server standing in for Slack, a webhook, Teams, Discord, PagerDuty.

    script(path, r1, r2, ...) queues answers for that path (consumed in order); once they are used
    up, the path's default answers (set_default), else 200 "ok". Paths are matched without the
    query string. Requests are recorded whatever the answer."""

    def __init__(self, port=0):
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._scripts = {}
        self._defaults = {}
        self._requests = []
        self._stopping = threading.Event()
        self.port = port
        self._httpd = None
        self._thread = None

    # -- lifecycle --

    def start(self):
        rcv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True    # headers and body go out at once (no 40 ms delayed-ACK wait)

            def log_message(self, *a):
                pass

            def _serve(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                req = Request(self.command, self.path, list(self.headers.items()), body, time.monotonic())
                resp = rcv._answer(req)
                if resp.delay:
                    end = time.monotonic() + resp.delay
                    while time.monotonic() < end and not rcv._stopping.is_set():
                        time.sleep(0.02)
                try:
                    self.send_response(resp.status)
                    for k, v in resp.headers.items():
                        self.send_header(k, v)
                    if "Content-Type" not in resp.headers:
                        self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(resp.body)))
                    self.end_headers()
                    self.wfile.write(resp.body)
                except OSError:
                    pass                          # the client gave up (a timeout): fine

            do_POST = do_PUT = do_PATCH = do_GET = _serve

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False
            allow_reuse_address = True

        self._stopping.clear()
        self._httpd = Server(("127.0.0.1", self.port), Handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stops listening (new connections are refused); requests being delayed end at once."""
        if self._httpd:
            self._stopping.set()
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(5)
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()

    # -- scripting --

    def url(self, path="/hook"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def script(self, path, *responses):
        with self._lock:
            self._scripts.setdefault(path, []).extend(r if isinstance(r, Response) else Response(*r)
                                                       for r in responses)

    def set_default(self, path, response):
        with self._lock:
            self._defaults[path] = response if isinstance(response, Response) else Response(*response)

    def _answer(self, req):
        path = req.path.split("?", 1)[0]
        with self._cond:
            self._requests.append(req)
            self._cond.notify_all()
            q = self._scripts.get(path)
            resp = q.pop(0) if q else self._defaults.get(path) or Response(200, b"ok")
            req.status = resp.status   # what it was answered
            return resp

    # -- what arrived --

    def requests(self, path=None):
        with self._lock:
            return [r for r in self._requests if path is None or r.path.split("?", 1)[0] == path]

    def clear(self):
        with self._lock:
            self._requests = []

    def wait_for(self, n, timeout=10.0, path=None, server=None):
        """Waits until at least n requests (to path, when given) arrived; returns them all. With a
        server, fails at once (showing its stderr) if that server exits meanwhile."""
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                if server is not None:
                    server.check_alive()
                got = [r for r in self._requests if path is None or r.path.split("?", 1)[0] == path]
                if len(got) >= n:
                    return got
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("receiver: %d of %d requests%s after %.1f s: %r" %
                                         (len(got), n, " to " + path if path else "", timeout, got[-5:]))
                self._cond.wait(min(left, 0.1))

    def quiet(self, seconds, path=None):
        """Asserts that nothing more arrives for `seconds` (returns the count)."""
        before = len(self.requests(path))
        time.sleep(seconds)
        after = len(self.requests(path))
        if after != before:
            raise AssertionError("receiver: %d unexpected requests arrived: %r" %
                                 (after - before, self.requests(path)[before:]))
        return after


# ---------------------------------------------------------------------------------------------------
# Server


def _yaml(config):
    """Configuration text: str as is; a dict as JSON, which is YAML too."""
    if isinstance(config, str):
        return config
    return json.dumps(config, indent=2)


class ServerFailed(AssertionError):
    pass


class Server:
    """`trailwatch serve` in a temporary folder.

    config: YAML text or a dict (written as JSON, which is YAML). files: {relative path: text or
    bytes} written beside it. env: extra environment variables (AWS_* of the test process are not
    passed on: exec targets would see them). The data dir defaults to var/ beside the config.

    With a TestCase, cleanups are registered: the server is stopped with SIGTERM and must exit 0
    (else the test fails showing stderr), and the folder is removed."""

    def __init__(self, test, config, env=None, files=None, name="trailwatch.yml", dir=None, args=(),
                 listen="127.0.0.1:0", log_level=None, stdin=False):
        self.test = test
        self.dir = dir or tempfile.mkdtemp(prefix="tw-serve-")
        self._own_dir = dir is None
        if self._own_dir:
            _dirs.add(self.dir)
        self.name = name
        self.config_path = os.path.join(self.dir, name)
        self.extra_args = list(args)
        self.listen = listen
        self.log_level = log_level
        self.stdin = stdin
        self.env = self._make_env(env)
        self.proc = None
        self.port = None
        self._lines = []          # every stderr line of every run, raw
        self._out = []            # stdout lines of every run
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self.runs = 0
        self.write_config(config)
        for rel, content in (files or {}).items():
            self.write(rel, content)
        if test is not None:
            test.addCleanup(self.cleanup)

    @staticmethod
    def _make_env(extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        for k, v in SAN_ENV.items():
            env.setdefault(k, v)
        # exec targets and serverless handlers run "python3" from PATH: the one running the tests,
        # which has boto3.
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "/usr/bin:/bin")
        env.update(extra or {})
        return env

    # -- files --

    def path(self, *rel):
        return os.path.join(self.dir, *rel)

    def write(self, rel, content):
        p = self.path(rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb" if isinstance(content, bytes) else "w") as f:
            f.write(content)
        return p

    def write_config(self, config):
        self.config_text = _yaml(config)
        self.write(self.name, self.config_text)

    def read(self, rel):
        with open(self.path(rel), "rb") as f:
            return f.read()

    def jsonl(self, rel):
        """The JSON lines of a file target's output ([] when it does not exist yet)."""
        try:
            data = self.read(rel)
        except FileNotFoundError:
            return []
        # Only whole lines: the target may be writing the last one while it is read.
        data = data[:data.rfind(b"\n") + 1].decode("utf-8")
        return [json.loads(l) for l in data.splitlines() if l.strip()]

    # -- process --

    def start(self, wait=True, timeout=20.0):
        cmd = [tw_bin(), "serve", "-c", self.config_path]
        if self.listen is not None:
            cmd += ["--listen", self.listen]
        if self.log_level:
            cmd += ["--log-level", self.log_level]
        if self.stdin:
            cmd += ["--stdin"]
        cmd += self.extra_args
        self.runs += 1
        self._killed = False       # SIGKILL sent by the test
        self._reported = False     # an unexpected exit was already reported
        with self._lock:
            self._run_start = len(self._lines)
            self._out_start = len(self._out)
        self.port = None
        self.proc = subprocess.Popen(cmd, cwd=self.dir, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.PIPE if self.stdin else subprocess.DEVNULL)
        _live.add(self.proc)
        self._readers = [threading.Thread(target=self._read, args=(self.proc.stderr, self._lines), daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stdout, self._out), daemon=True)]
        for t in self._readers:
            t.start()
        if wait:
            self.wait_running(timeout)
        return self

    def _read(self, stream, into):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                into.append(line)
                self._cond.notify_all()
        stream.close()

    def wait_running(self, timeout=20.0):
        """Waits for the "trailwatch is running" line and takes the port from it."""
        end = time.monotonic() + timeout
        while True:
            for rec in self.logs(this_run=True):
                if rec.get("msg") == "trailwatch is running":
                    self.port = int(rec["port"])
                    return self
            if self.proc.poll() is not None:
                self._join_readers()
                self._reported = True
                raise ServerFailed("trailwatch serve exited %d before running:\n%s" %
                                   (self.proc.returncode, self.stderr(this_run=True)[-4000:]))
            if time.monotonic() > end:
                self._killed = True
                self.proc.kill()
                self.proc.wait(5)
                raise ServerFailed("trailwatch serve did not say it was running within %.0f s:\n%s" %
                                   (timeout, self.stderr(this_run=True)[-4000:]))
            time.sleep(0.02)

    def _join_readers(self):
        for t in getattr(self, "_readers", []):
            t.join(5)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def sighup(self):
        self.signal(signal.SIGHUP)

    def check_alive(self):
        """Raises ServerFailed (with stderr: a sanitizer report, say) when the server exited on its own."""
        if self.proc is not None and self.proc.poll() is not None and not self._killed and not self._reported:
            self._join_readers()
            self._reported = True
            raise ServerFailed("trailwatch serve exited on its own with status %s:\n%s" %
                               (self.proc.returncode, self.stderr(this_run=True)[-8000:]))

    def stop(self, timeout=20.0, expect_rc=0):
        """SIGTERM, then waits; returns (exit status, seconds taken). The status must be expect_rc:
        anything else (a sanitizer report, a crash) fails with the server's stderr."""
        if not self.alive():
            rc = self.proc.returncode if self.proc else None
            self._join_readers()
            if self.proc is not None and not self._killed and not self._reported and expect_rc is not None \
                    and rc != expect_rc:
                self._reported = True
                raise ServerFailed("trailwatch serve had already exited %s:\n%s" %
                                   (rc, self.stderr(this_run=True)[-8000:]))
            return rc, 0.0
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            self._join_readers()
            raise ServerFailed("trailwatch serve did not stop within %.0f s of SIGTERM:\n%s" %
                               (timeout, self.stderr(this_run=True)[-4000:]))
        took = time.monotonic() - t0
        self._join_readers()
        _live.discard(self.proc)
        if expect_rc is not None and rc != expect_rc:
            self._reported = True
            raise ServerFailed("trailwatch serve exited %d after SIGTERM (wanted %d):\n%s" %
                               (rc, expect_rc, self.stderr(this_run=True)[-8000:]))
        return rc, took

    def kill9(self):
        self._killed = True
        self.proc.kill()
        self.proc.wait(10)
        self._join_readers()
        _live.discard(self.proc)

    def restart(self, **kw):
        if self.alive():
            self.stop()
        return self.start(**kw)

    def cleanup(self):
        try:
            if self.proc is not None:
                self.stop()       # SIGTERM must end in exit 0; an earlier unexpected exit fails here too
        finally:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
            if self._own_dir:
                shutil.rmtree(self.dir, ignore_errors=True)
                _dirs.discard(self.dir)

    # -- logs and output --

    def stderr(self, this_run=False):
        with self._lock:
            lines = self._lines[self._run_start:] if this_run else list(self._lines)
        return "\n".join(lines)

    def logs(self, this_run=False):
        """The JSON log lines (non-JSON lines, such as a sanitizer report, are left out)."""
        out = []
        for line in self.stderr(this_run).splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def wait_log(self, msg, timeout=10.0, this_run=True, **fields):
        """Waits for a log line whose msg contains `msg` and whose fields contain the given values."""
        def find():
            self.check_alive()
            for rec in self.logs(this_run):
                if msg in str(rec.get("msg", "")) and all(str(rec.get(k)) == str(v) for k, v in fields.items()):
                    return rec
            return None
        return wait_until(find, timeout, what="log line %r %r; stderr:\n%s" % (msg, fields, self.stderr(this_run)[-3000:]))

    def stdout_lines(self, this_run=False):
        with self._lock:
            return list(self._out[self._out_start:] if this_run else self._out)

    # -- HTTP --

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def request(self, method, path, body=b"", headers=None, timeout=30):
        """A raw HTTP request: returns (status, {lower-case header: value}, body bytes)."""
        if isinstance(body, str):
            body = body.encode()
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            try:
                c.request(method, path, body=body, headers=headers or {})
            except (BrokenPipeError, ConnectionResetError):
                pass                  # answered (413) before the whole body was sent: read the answer
            r = c.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            c.close()

    def post(self, path, body=b"", headers=None, **kw):
        return self.request("POST", path, body, headers, **kw)

    def post_events(self, records, gzip_body=False, content_type="application/x-ndjson"):
        """POST /events with JSON lines of records; returns (status, parsed JSON answer)."""
        body = "".join(compact(r) + "\n" for r in records).encode()
        headers = {"Content-Type": content_type}
        if gzip_body:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        st, _, data = self.post("/events", body, headers)
        return st, json.loads(data)

    def api(self, op, payload, headers=None):
        """An unsigned EventBridge JSON 1.1 call: (status, headers, parsed body)."""
        h = {"X-Amz-Target": "AWSEvents." + op, "Content-Type": "application/x-amz-json-1.1"}
        h.update(headers or {})
        st, hd, data = self.post("/", payload if isinstance(payload, (bytes, str)) else json.dumps(payload), h)
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = data
        return st, hd, parsed

    def healthz(self):
        st, _, data = self.request("GET", "/healthz")
        assert st == 200, (st, data)
        return json.loads(data)

    def metrics_text(self):
        st, hd, data = self.request("GET", "/metrics")
        assert st == 200, (st, data)
        return data.decode()

    def metrics(self):
        return parse_metrics(self.metrics_text())

    def metric(self, name, **labels):
        """The value of one series (0 when it does not exist)."""
        self.check_alive()
        return self.metrics().get((name, frozenset((k, str(v)) for k, v in labels.items())), 0.0)

    def wait_metric(self, name, value, timeout=10.0, **labels):
        return wait_until(lambda: self.metric(name, **labels) >= value, timeout,
                          what="metric %s%r >= %s (now %s)" % (name, labels, value, self.metric(name, **labels)))

    # -- clients --

    def boto3(self, service="events", key=AKID, secret=SECRET, **cfg):
        import boto3
        from botocore.config import Config
        return boto3.client(service, endpoint_url=self.url, region_name=REGION, aws_access_key_id=key,
                            aws_secret_access_key=secret,
                            config=Config(retries={"max_attempts": 1, "mode": "standard"}, **cfg))

    def aws(self, args, version=1, key=AKID, secret=SECRET, timeout=60):
        return aws_cli(args, version=version, endpoint=self.url, key=key, secret=secret, timeout=timeout)

    def dlq(self, *args, timeout=60):
        """`trailwatch dlq ARGS -c CONFIG` (the server may be running)."""
        return subprocess.run([tw_bin(), "dlq"] + list(args) + ["-c", self.config_path], cwd=self.dir,
                              env=self.env, capture_output=True, text=True, timeout=timeout)

    def tw(self, *args, timeout=60):
        return subprocess.run([tw_bin()] + list(args), cwd=self.dir, env=self.env, capture_output=True,
                              text=True, timeout=timeout)


_METRIC = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text format -> {(name, frozenset(labels)): value}. Raises on a malformed line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _METRIC.match(line)
        if not m:
            raise AssertionError("not a Prometheus sample line: %r" % line)
        labels = frozenset(_LABEL.findall(m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


# ---------------------------------------------------------------------------------------------------
# AWS clients


def aws_cli_v1_cmd():
    """The AWS CLI v1 (pip): `python3 -m awscli` of the Python running the tests, else `aws` on PATH."""
    try:
        import awscli  # noqa: F401
        return [sys.executable, "-m", "awscli"]
    except ImportError:
        pass
    aws = shutil.which("aws")
    if aws and aws != AWS_CLI_V2:
        return [aws]
    return None


def aws_cli_v2_cmd():
    return [AWS_CLI_V2] if os.access(AWS_CLI_V2, os.X_OK) else None


def aws_env(key=AKID, secret=SECRET, tmp=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    home = tmp or tempfile.gettempdir()
    env.update({
        "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret, "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": os.path.join(home, "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": os.path.join(home, "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_PAGER": "", "AWS_MAX_ATTEMPTS": "1",
    })
    return env


def aws_cli(args, version=1, endpoint=None, key=AKID, secret=SECRET, timeout=60):
    """Runs `aws ARGS --endpoint-url ENDPOINT` (v1 or v2) with fake credentials; CompletedProcess."""
    cmd = aws_cli_v1_cmd() if version == 1 else aws_cli_v2_cmd()
    if cmd is None:
        raise unittest.SkipTest("AWS CLI v%d not installed (v2: %s; scripts/setup-deps installs Debian's awscli)"
                                % (version, AWS_CLI_V2))
    full = cmd + list(args) + (["--endpoint-url", endpoint] if endpoint else []) + ["--output", "json"]
    return subprocess.run(full, env=aws_env(key, secret), capture_output=True, text=True, timeout=timeout)


def need_boto3():
    try:
        import boto3  # noqa: F401
    except ImportError:
        raise unittest.SkipTest("boto3 is not installed for %s" % sys.executable)


# ---------------------------------------------------------------------------------------------------
# Data


def shared(*rel):
    return os.path.join(twtest.shared_dir(), *rel)


def cloudtrail_records(limit=None, pred=None):
    """Real CloudTrail records from data/cloudtrail/recorded.jsonl.gz."""
    out = []
    with gzip.open(shared("data", "cloudtrail", "recorded.jsonl.gz"), "rt") as f:
        for line in f:
            r = json.loads(line)
            if pred is None or pred(r):
                out.append(r)
                if limit and len(out) >= limit:
                    break
    return out


def free_loopback_port_for_refusal():
    """A port nothing listens on (connections are refused), for a destination that is down."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
