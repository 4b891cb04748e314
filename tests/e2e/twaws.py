"""Helpers for the end-to-end tests that need AWS: moto_server on 127.0.0.1 (started by the tests on a
free port, stopped at exit), boto3 clients pointed at it, and the shared CloudTrail bucket layout.

moto_server is a real HTTP server speaking the AWS wire protocols (S3 XML, SQS JSON, SSM JSON,
CloudTrail JSON); trailwatch talks to it exactly as it would to AWS, with --endpoint-url style
settings. Fake credentials (moto accepts any unless started with IAM checks).
"""
import atexit
import concurrent.futures
import gzip
import os
import shutil
import subprocess
import time
import urllib.request

import twserve
import twtest

KEY_ID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"
ACCOUNT = "342082656213"          # the account of the shared s3-layout data

_motos = []


@atexit.register
def _stop_all():
    for m in list(_motos):
        m.stop()


def moto_available():
    return shutil.which("moto_server") is not None


class Moto:
    """moto_server -H 127.0.0.1 -p PORT; env: extra variables (e.g. INITIAL_NO_AUTH_ACTION_COUNT=0 for
    IAM-checked credentials)."""

    def __init__(self, env=None):
        self.port = twtest.free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        e = dict(os.environ)
        e.update(env or {})
        self.log = open(os.path.join(twtest.tmpdir(), "moto.log"), "wb")
        self.proc = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(self.port)], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=e)
        _motos.append(self)
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(self.url + "/moto-api/", timeout=2).read()
                break
            except Exception:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError("moto_server did not start")
                time.sleep(0.2)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()
        if self in _motos:
            _motos.remove(self)

    def client(self, service, **kw):
        import boto3
        return boto3.client(service, endpoint_url=self.url, region_name=REGION, aws_access_key_id=KEY_ID,
                            aws_secret_access_key=SECRET, **kw)

    def reset(self):
        req = urllib.request.Request(self.url + "/moto-api/reset", data=b"", method="POST")
        urllib.request.urlopen(req, timeout=30).read()

    def env(self, **extra):
        """What trailwatch and the AWS CLI need to talk to this moto."""
        e = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": REGION,
             "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/nonexistent",
             "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}
        e.update(extra)
        return e


def layout_root():
    return os.path.join(twtest.shared_dir(), "data", "cloudtrail", "s3-layout")


def layout_files(subset=True):
    """(relative key, path) of the shared bucket layout. subset: every region but us-west-1 in full,
    and us-west-1 up to 2021-07-29 (308 files: quick to upload); else all 3,872."""
    root = layout_root()
    out = []
    for d, _, fs in os.walk(root):
        for f in fs:
            p = os.path.join(d, f)
            rel = os.path.relpath(p, root)
            if subset and "/us-west-1/" in rel and not ("/2021/07/28/" in rel or "/2021/07/29/" in rel):
                continue
            out.append((rel, p))
    out.sort()
    return out


def upload(s3, bucket, files, prefix="", threads=8):
    def put(item):
        rel, p = item
        with open(p, "rb") as f:
            s3.put_object(Bucket=bucket, Key=prefix + rel, Body=f.read())
    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        list(ex.map(put, files))


def records_of(files):
    """Every record of the given (rel, path) log files, in order."""
    import json
    out = []
    for _, p in files:
        with gzip.open(p, "rt") as f:
            out.extend(json.load(f)["Records"])
    return out


Server = twserve.Server
