"""End-to-end: `trailwatch verify` (CloudTrail log file integrity) on digests made here the way
CloudTrail makes them (RSA SHA256withRSA over end time, location, SHA-256 of the digest and the
previous signature; signature in x-amz-meta-signature), in moto's S3 and in a local folder. Then a
log file is changed, one deleted, and a digest re-signed with a wrong key: each is reported, exit 1.
Public keys from a file, or from CloudTrail ListPublicKeys (a fake CloudTrail endpoint, chosen with
AWS_ENDPOINT_URL_CLOUDTRAIL while S3 goes to moto through AWS_ENDPOINT_URL_S3).
"""
import base64
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import unittest

import twaws
import twserve
import twtest

ACCT = twaws.ACCOUNT


def setUpModule():
    global MOTO, S3, KEY, WRONG, PUB_DER, FP
    if not twaws.moto_available():
        raise unittest.SkipTest("moto_server not installed")
    try:
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.hazmat.primitives import serialization
    except ImportError:
        raise unittest.SkipTest("python3-cryptography not installed")
    MOTO = twaws.Moto()
    S3 = MOTO.client("s3")
    KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    WRONG = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    PUB_DER = KEY.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    FP = hashlib.md5(PUB_DER).hexdigest()


def tearDownModule():
    MOTO.stop()


def sign(key, data):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    return key.sign(data.encode(), padding.PKCS1v15(), hashes.SHA256()).hex()


def build_trail(bucket):
    """Six us-east-1 log files and three chained hourly digests: {key: (bytes, signature or None)}."""
    logs = [(k, p) for k, p in twaws.layout_files(subset=True) if "/us-east-1/" in k][:6]
    objects = {}
    for k, p in logs:
        with open(p, "rb") as f:
            objects[k] = (f.read(), None)
    prev = None
    for h in range(3):
        end = "2021-07-29T%02d:00:00Z" % (13 + h)
        key = ("AWSLogs/%s/CloudTrail-Digest/us-east-1/2021/07/29/%s_CloudTrail-Digest_us-east-1_trail_us-east-1_"
               "202107291%d0000Z.json.gz" % (ACCT, ACCT, 3 + h))
        files = []
        for k, _ in logs[2 * h:2 * h + 2]:
            raw = gzip.decompress(objects[k][0])
            files.append({"s3Bucket": bucket, "s3Object": k, "hashValue": hashlib.sha256(raw).hexdigest(),
                          "hashAlgorithm": "SHA-256", "newestEventTime": end, "oldestEventTime": end})
        doc = {"awsAccountId": ACCT, "digestStartTime": end, "digestEndTime": end, "digestS3Bucket": bucket,
               "digestS3Object": key, "digestPublicKeyFingerprint": FP, "digestSignatureAlgorithm": "SHA256withRSA",
               "newestEventTime": end, "oldestEventTime": end,
               "previousDigestS3Bucket": bucket if prev else None, "previousDigestS3Object": prev[0] if prev else None,
               "previousDigestHashValue": prev[1] if prev else None,
               "previousDigestHashAlgorithm": "SHA-256" if prev else None,
               "previousDigestSignature": prev[2] if prev else None, "logFiles": files}
        raw = json.dumps(doc).encode()
        h256 = hashlib.sha256(raw).hexdigest()
        sig = sign(KEY, "%s\n%s/%s\n%s\n%s" % (end, bucket, key, h256, prev[2] if prev else "null"))
        objects[key] = (gzip.compress(raw), sig)
        prev = (key, h256, sig)
    return objects


def put_all(bucket, objects):
    S3.create_bucket(Bucket=bucket)
    for k, (body, sig) in objects.items():
        extra = {"Metadata": {"signature": sig, "signature-algorithm": "SHA256withRSA"}} if sig else {}
        S3.put_object(Bucket=bucket, Key=k, Body=body, **extra)


def keys_file(d):
    p = os.path.join(d, "keys.json")
    with open(p, "w") as f:
        json.dump({"PublicKeyList": [{"Value": base64.b64encode(PUB_DER).decode(), "Fingerprint": FP,
                                      "ValidityStartTime": 1600000000, "ValidityEndTime": 1900000000}]}, f)
    return p


def verify(*args, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    e.update(MOTO.env())
    e.update(env or {})
    return subprocess.run([twserve.tw_bin(), "verify"] + list(args), capture_output=True, text=True, env=e,
                          timeout=300)


class Verify(unittest.TestCase):
    def setUp(self):
        self.dir = twtest.tmpdir()
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.keys = keys_file(self.dir)

    def test_bucket_valid_then_tampered(self):
        bucket = "ct-validate"
        objects = build_trail(bucket)
        put_all(bucket, objects)
        p = verify("--bucket", bucket, "--public-keys", self.keys, "--endpoint-url", MOTO.url)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("3 digests (3 valid), 6 log files (6 valid): 0 missing, 0 changed, 0 unsigned", p.stdout)
        logs = sorted(k for k in objects if "/CloudTrail/" in k)
        digests = sorted(k for k in objects if "CloudTrail-Digest" in k)
        # a log file changed, one deleted, the last digest re-signed with another key
        S3.put_object(Bucket=bucket, Key=logs[1], Body=gzip.compress(b'{"Records":[]}'))
        S3.delete_object(Bucket=bucket, Key=logs[3])
        body, sig = objects[digests[2]]
        doc = json.loads(gzip.decompress(body))
        data = "%s\n%s/%s\n%s\n%s" % (doc["digestEndTime"], bucket, digests[2],
                                      hashlib.sha256(gzip.decompress(body)).hexdigest(), doc["previousDigestSignature"])
        S3.put_object(Bucket=bucket, Key=digests[2], Body=body, Metadata={"signature": sign(WRONG, data)})
        p = verify("--bucket", bucket, "--public-keys", self.keys, "--endpoint-url", MOTO.url)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertRegex(p.stdout, r"CHANGED +s3://%s/%s: SHA-256 " % (bucket, logs[1]))
        self.assertRegex(p.stdout, r"MISSING +s3://%s/%s" % (bucket, logs[3]))
        self.assertRegex(p.stdout, r"UNSIGNED +s3://%s/%s: the signature does not verify" % (bucket, digests[2]))
        self.assertIn("1 missing, 1 changed, 1 unsigned", p.stdout)

    def test_public_keys_from_cloudtrail_and_per_service_endpoints(self):
        bucket = "ct-validate-api"
        put_all(bucket, build_trail(bucket))
        keys = json.dumps({"PublicKeyList": [{"Value": base64.b64encode(PUB_DER).decode(), "Fingerprint": FP}]})
        with twserve.Receiver() as ct:
            ct.set_default("/", twserve.Response(200, keys.encode(), {"Content-Type": "application/x-amz-json-1.1"}))
            p = verify("--bucket", bucket, env={"AWS_ENDPOINT_URL_S3": MOTO.url,
                                                "AWS_ENDPOINT_URL_CLOUDTRAIL": ct.url("")})
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertEqual(ct.requests()[0].header("X-Amz-Target"),
                             "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.ListPublicKeys")

    def test_folder(self):
        objects = build_trail("ct-folder")
        root = os.path.join(self.dir, "copy")
        for k, (body, sig) in objects.items():
            p = os.path.join(root, k)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(body)
            if sig and k.endswith("1500" + "00Z.json.gz"):
                with open(p + ".sig", "w") as f:  # only the newest digest needs its own signature
                    f.write(sig + "\n")
        p = verify("--folder", root, "--public-keys", self.keys)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("3 digests (3 valid)", p.stdout)
        os.remove(os.path.join(root, [k for k in objects if k.endswith("1500" + "00Z.json.gz")][0] + ".sig"))
        p = verify("--folder", root, "--public-keys", self.keys)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("no signature", p.stdout)

    def test_unreachable_endpoint_and_usage(self):
        port = twserve.free_port()
        p = verify("--bucket", "b-b-b", "--public-keys", self.keys, "--endpoint-url", "http://127.0.0.1:%d" % port,
                   env={"AWS_MAX_ATTEMPTS": "1"})
        self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
        self.assertIn("cannot reach", p.stderr)
        self.assertNotIn(twaws.SECRET, p.stderr)
        p = verify("--public-keys", self.keys)
        self.assertEqual(p.returncode, 2)


class ServeAlert(unittest.TestCase):
    def test_serve_raises_an_alert_when_validation_fails(self):
        bucket = "ct-validate-serve"
        objects = build_trail(bucket)
        put_all(bucket, objects)
        logs = sorted(k for k in objects if "/CloudTrail/" in k)
        S3.put_object(Bucket=bucket, Key=logs[0], Body=gzip.compress(b'{"Records":[]}'))
        d = twtest.tmpdir()
        self.addCleanup(shutil.rmtree, d, True)
        cfg = {"data_dir": "var", "aws": {"endpoint_url": MOTO.url},
               "sources": {"eventbridge": False, "http": False,
                           "s3": {"bucket": bucket, "start_time": "2021-07-01", "poll_interval": "1s",
                                  "verify": {"public_keys": keys_file(d), "interval": "1h"}}},
               "targets": {"log": {"kind": "file", "path": "alerts.jsonl"}},
               "rules": [{"name": "integrity", "pattern": {"source": ["trailwatch"],
                                                           "detail-type": ["CloudTrail Log File Validation Failed"]},
                          "targets": ["log"]}]}
        srv = twserve.Server(self, cfg, env=MOTO.env())
        srv.start()
        twserve.wait_until(lambda: srv.jsonl("alerts.jsonl"), timeout=60, what="the validation alert")
        a = srv.jsonl("alerts.jsonl")[0]
        self.assertEqual(a["detail"]["changed"], 1)
        self.assertEqual(a["detail"]["digests"], 3)
        self.assertEqual(a["detail"]["findings"][0]["kind"], "CHANGED")
        self.assertIn(logs[0], a["detail"]["findings"][0]["object"])
        srv.stop()


if __name__ == "__main__":
    unittest.main()
