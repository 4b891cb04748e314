"""End-to-end: the archive (#8): `trailwatch ingest`, `query`, `who`, `archive stats|prune` on the shared
CloudTrail data, with the expected figures computed here in Python from the raw files."""
import glob
import gzip
import json
import os
import pty
import re
import shlex
import shutil
import signal
import subprocess
import time
import unittest

import twtest
from twtest import jsonl, run

DATA = os.path.join(twtest.shared_dir(), "data", "cloudtrail")
S3 = os.path.join(DATA, "s3-layout")
INVICTUS = os.path.join(DATA, "invictus-ir")


def records_of(folder):
    """Every record of every CloudTrail file under folder (name order, as ingest walks it)."""
    out = []
    for path in sorted(glob.glob(os.path.join(folder, "**", "*.json*"), recursive=True)):
        if "CloudTrail-Digest" in path:
            continue
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt") as f:
            out.extend(json.load(f)["Records"])
    return out


def strings(v):
    if isinstance(v, str):
        yield v
    elif isinstance(v, list):
        for x in v:
            yield from strings(x)
    elif isinstance(v, dict):
        for x in v.values():
            yield from strings(x)


def names_resource(rec, rid):
    """The record names rid in resources, requestParameters or responseElements (as a value, as the
    id at the end of an ARN, or as the bucket of an S3 ARN: docs/ARCHIVE.md)."""
    for part in (rec.get("resources"), rec.get("requestParameters"), rec.get("responseElements")):
        for s in strings(part):
            if s == rid or (s.startswith("arn:") and (s.endswith("/" + rid) or s.endswith(":" + rid))):
                return True
            if s.startswith("arn:aws:s3:::") and s[len("arn:aws:s3:::"):].split("/")[0] == rid:
                return True
    return False


class TestArchive(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = twtest.tmpdir()
        cls.db = os.path.join(cls.dir, "archive.db")
        cls.s3 = records_of(S3)
        cls.inv = records_of(INVICTUS)
        cls.ingest = run(["ingest", "--archive", cls.db, S3, INVICTUS], timeout=600)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def q(self, *args, check=0):
        return run(["query", "--archive", self.db, "--format", "json"] + list(args), check=check, timeout=300)

    def test_ingest_summary_counts_duplicates(self):
        p = self.ingest
        self.assertEqual(p.returncode, 0, p.stderr)
        files = [f for f in glob.glob(os.path.join(S3, "**", "*.json.gz"), recursive=True)]
        files += glob.glob(os.path.join(INVICTUS, "**", "*.json"), recursive=True)
        recs = self.s3 + self.inv
        distinct = len({r["eventID"] for r in recs})
        m = re.search(r"files: (\d+)  records: (\d+)  archived: (\d+)  duplicates: (\d+)  errors: (\d+)", p.stdout)
        self.assertIsNotNone(m, p.stdout)
        self.assertEqual([int(x) for x in m.groups()],
                         [len(files), len(recs), distinct, len(recs) - distinct, 0])
        self.assertIn("elapsed:", p.stdout)
        # again: everything is a duplicate, nothing added
        p2 = run(["ingest", "--archive", self.db, INVICTUS], check=0)
        self.assertIn("archived: 0  duplicates: %d" % len(self.inv), p2.stdout)
        st = json.loads(run(["archive", "stats", "--json", "--archive", self.db], check=0).stdout)
        self.assertEqual(st["events"], distinct)
        self.assertTrue(st["dictionary"])
        self.assertGreater(st["compression_ratio"], 5)

    def test_query_event_name_newest_first_byte_for_byte(self):
        want = {r["eventID"]: r for r in self.s3 + self.inv if r["eventName"] == "AssumeRole"}
        rows = jsonl(self.q("--event-name", "AssumeRole").stdout)
        self.assertEqual(sorted(r["id"] for r in rows), sorted(want))
        times = [r["time_ms"] for r in rows]
        self.assertEqual(times, sorted(times, reverse=True))
        for r in rows:
            self.assertEqual(r["event"], want[r["id"]])
        # --limit and the cursor page through the same rows
        p = self.q("--event-name", "AssumeRole", "--limit", "50")
        first = jsonl(p.stdout)
        cursor = re.search(r"--cursor (\S+)", p.stderr).group(1)
        rest = jsonl(self.q("--event-name", "AssumeRole", "--cursor", cursor).stdout)
        self.assertEqual([r["id"] for r in first + rest], [r["id"] for r in rows])

    def test_query_who_resource_and_time(self):
        recs = self.s3 + self.inv
        # --who: an IAM user by name
        want = {r["eventID"] for r in recs if (r.get("userIdentity") or {}).get("userName") == "jmerckle"}
        got = {r["id"] for r in jsonl(self.q("--who", "jmerckle").stdout)}
        self.assertEqual(got, want)
        self.assertGreater(len(want), 10)
        # --who: an assumed role by its role ARN (the session issuer)
        role = "arn:aws:iam::123837392027:role/stratus-red-team-ec2-steal-credentials-role"
        want = {r["eventID"] for r in recs
                if (((r.get("userIdentity") or {}).get("sessionContext") or {}).get("sessionIssuer") or {}).get("arn") == role}
        self.assertEqual({r["id"] for r in jsonl(self.q("--who", role).stdout)}, want)
        # --resource: a bucket
        want = {r["eventID"] for r in recs if names_resource(r, "falsimentis-log")}
        self.assertEqual({r["id"] for r in jsonl(self.q("--resource", "falsimentis-log").stdout)}, want)
        # --from/--to
        lo, hi = "2021-07-30T00:00:00Z", "2021-07-30T06:00:00Z"
        want = {r["eventID"] for r in recs if lo <= r["eventTime"] <= hi}
        self.assertEqual({r["id"] for r in jsonl(self.q("--from", lo, "--to", hi).stdout)}, want)

    def test_who_spun_up_the_instance(self):
        rid = "i-0dbc91f429e48eeed"
        want = sorted(((r["eventTime"], r["eventName"], r["userIdentity"].get("arn"))
                       for r in self.inv if names_resource(r, rid) and r.get("readOnly") is False))
        rows = jsonl(run(["who", rid, "--archive", self.db], check=0).stdout)
        got = [(r["time"], r["eventName"], r["principal"]) for r in rows]
        self.assertEqual(sorted(got), want)
        self.assertEqual([g[0] for g in got], sorted(g[0] for g in got))  # time order
        self.assertEqual(got[0][1:], ("RunInstances", "arn:aws:iam::123837392027:user/bert-jan"))
        p = run(["who", "i-00000000000000000", "--archive", self.db])
        self.assertEqual(p.returncode, 1)

    def test_who_s3_object_and_bucket(self):
        """An S3 object's ARN names that object, not its bucket (whose short form it shares); the bucket's
        ARN (also with a trailing slash) and its name name the bucket."""
        bucket = "arn:aws:s3:::falsimentis-log"
        recs = self.s3 + self.inv

        def names(rec, values):
            return any(s in values for part in (rec.get("resources"), rec.get("requestParameters"),
                                                rec.get("responseElements")) for s in strings(part))

        def who(arg):
            rows = [r["id"] for r in jsonl(run(["who", arg, "--archive", self.db], check=None).stdout)]
            self.assertEqual(len(rows), len(set(rows)))
            return set(rows)

        puts = [r for r in recs if r["eventName"] == "PutObject" and r.get("readOnly") is False]
        self.assertGreater(len(puts), 10)
        for rec in puts[:3]:
            obj = next(s for s in strings(rec["resources"]) if s.startswith(bucket + "/"))
            want = {r["eventID"] for r in recs if r.get("readOnly") is False and names(r, {obj})}
            self.assertEqual(who(obj), want)
            self.assertIn(rec["eventID"], want)
            self.assertLess(len(want), 5)
            got = {r["id"] for r in jsonl(self.q("--resource", obj, "--limit", "0").stdout)}
            self.assertEqual(got, {r["eventID"] for r in recs if names(r, {obj})})
        want = {r["eventID"] for r in recs
                if r.get("readOnly") is False and names(r, {bucket, bucket + "/", "falsimentis-log"})}
        self.assertEqual(who(bucket), want)
        self.assertGreater(len(want), 1000)

    def test_who_allowed_0_0_0_0_ingress(self):
        pattern = {"source": ["aws.ec2"], "detail": {"eventName": ["AuthorizeSecurityGroupIngress"],
                   "requestParameters": {"ipPermissions": {"items": {"ipRanges": {"items": {"cidrIp": ["0.0.0.0/0"]}}}}}}}
        want = {r["eventID"] for r in self.s3 + self.inv if r["eventName"] == "AuthorizeSecurityGroupIngress"
                and any(rng.get("cidrIp") == "0.0.0.0/0"
                        for it in ((r.get("requestParameters") or {}).get("ipPermissions") or {}).get("items", [])
                        for rng in (it.get("ipRanges") or {}).get("items", []))}
        self.assertEqual({r["id"] for r in jsonl(self.q("--pattern", json.dumps(pattern)).stdout)}, want)
        self.assertEqual(len(want), 1)

    def test_formats_and_errors(self):
        p = run(["query", "--archive", self.db, "--event-name", "CreateRole", "--format", "csv"], check=0)
        lines = p.stdout.splitlines()
        self.assertTrue(lines[0].startswith("time,event_name,"))
        self.assertEqual(len(lines) - 1, len({r["eventID"] for r in self.s3 + self.inv if r["eventName"] == "CreateRole"}))
        p = run(["query", "--archive", self.db, "--event-name", "CreateRole", "--format", "table"], check=0)
        self.assertTrue(p.stdout.startswith("TIME "))
        p = run(["query", "--archive", self.db, "--pattern", '{"detail":{"eventName":[{"prefix":5}]}}'])
        self.assertEqual(p.returncode, 2)
        self.assertIn('detail.eventName: "prefix" must be a string', p.stderr)
        self.assertEqual(run(["query", "--archive", self.db, "--since", "7x"]).returncode, 2)
        self.assertEqual(run(["query", "--archive", self.db, "--format", "xml"]).returncode, 2)
        p = run(["query", "--archive", os.path.join(self.dir, "none.db")])
        self.assertEqual(p.returncode, 2)
        self.assertIn("none.db", p.stderr)
        for cmd in (["ingest"], ["query"], ["who"], ["archive"]):
            h = run(cmd + ["--help"], check=0)
            self.assertIn("usage: trailwatch " + cmd[0], h.stdout)


class TestArchiveReliability(unittest.TestCase):
    def setUp(self):
        self.dir = twtest.tmpdir()
        self.db = os.path.join(self.dir, "a.db")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_malformed_record_skipped_rest_goes_in(self):
        lines = [json.dumps(r) for r in records_of(INVICTUS)[:20]]
        lines.insert(7, '{"eventID": "x", "eventName": ')
        lines.insert(12, '[1, 2]')
        path = os.path.join(self.dir, "events.jsonl")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        p = run(["ingest", "--archive", self.db, path])
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("archived: 20  duplicates: 0  errors: 2", p.stdout)
        self.assertIn("events.jsonl:8:", p.stdout)
        self.assertIn("events.jsonl:13:", p.stdout)

    def test_kill_9_loses_nothing_reported(self):
        p = subprocess.Popen([twtest.tw_bin(), "ingest", "--progress", "--archive", self.db, S3],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        reported = 0
        deadline = time.time() + 300
        while time.time() < deadline:
            line = p.stderr.readline()
            if not line:
                break
            m = re.search(r"archived (\d+)", line)
            if m and int(m.group(1)) > 0:
                reported = int(m.group(1))
                break
        p.send_signal(signal.SIGKILL)
        p.wait()
        p.stdout.close()
        p.stderr.close()
        self.assertGreater(reported, 0)
        st = json.loads(run(["archive", "stats", "--json", "--archive", self.db], check=0).stdout)
        self.assertGreaterEqual(st["events"], reported)
        # nothing corrupt: queries answer and a second ingest completes the set
        run(["query", "--archive", self.db, "--limit", "5"], check=0)
        run(["ingest", "--archive", self.db, S3], check=0, timeout=600)
        st = json.loads(run(["archive", "stats", "--json", "--archive", self.db], check=0).stdout)
        self.assertEqual(st["events"], 23981)

    def test_damaged_file_clear_error(self):
        path = os.path.join(self.dir, "events.jsonl")
        with open(path, "w") as f:
            for r in records_of(INVICTUS)[:300]:
                f.write(json.dumps(r) + "\n")
        run(["ingest", "--archive", self.db, path], check=0)
        size = os.path.getsize(self.db)
        junk = os.path.join(self.dir, "junk.db")
        with open(junk, "wb") as f:
            f.write(os.urandom(16384))
        for bad in (junk,):
            p = run(["query", "--archive", bad])
            self.assertEqual(p.returncode, 3, p.stderr)
            self.assertIn("damaged or not an archive", p.stderr)
            self.assertIn(bad, p.stderr)
        # damage inside a real archive: overwrite its second half; errors, never a crash
        with open(self.db, "r+b") as f:
            f.seek(size // 2)
            f.write(os.urandom(size - size // 2))
        for args in (["query", "--limit", "0"], ["who", "i-0dbc91f429e48eeed"], ["archive", "stats"]):
            p = run(args + ["--archive", self.db])
            self.assertGreaterEqual(p.returncode, 0, p.stderr)  # not killed by a signal
            self.assertNotIn("AddressSanitizer", p.stderr)
            self.assertNotIn("runtime error", p.stderr)

    def test_full_disk_clear_error_keeps_what_was_reported(self):
        mnt = os.path.join(self.dir, "small")
        os.mkdir(mnt)
        if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt],
                                               capture_output=True).returncode != 0:
            self.skipTest("needs root to mount a 3 MB tmpfs (a real full disk)")
        try:
            db = os.path.join(mnt, "a.db")
            p = run(["ingest", "--archive", db, os.path.join(DATA, "recorded.jsonl.gz")], timeout=600)
            self.assertEqual(p.returncode, 3, p.stdout + p.stderr)
            self.assertIn("the disk is full", p.stderr)
            self.assertIn(db, p.stderr)
            reported = int(re.search(r"archived: (\d+)", p.stdout).group(1))
            self.assertGreater(reported, 0)
            self.assertIn("the %d events reported archived are kept" % reported, p.stderr)
            st = json.loads(run(["archive", "stats", "--json", "--archive", db], check=0).stdout)
            self.assertEqual(st["events"], reported)
            run(["query", "--archive", db, "--limit", "3"], check=0)
        finally:
            subprocess.run(["umount", mnt], capture_output=True)

    def test_ingest_and_query_at_the_same_time(self):
        ing = subprocess.Popen([twtest.tw_bin(), "ingest", "--archive", self.db, S3],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        answered = 0
        while ing.poll() is None:
            if os.path.exists(self.db):
                p = run(["query", "--archive", self.db, "--limit", "3", "--format", "json"])
                self.assertIn(p.returncode, (0, 1, 2), p.stderr)
                if p.returncode == 2:
                    self.assertIn("no archive there yet", p.stderr)
                else:
                    answered += 1
            time.sleep(0.2)
        out, err = ing.communicate()
        self.assertEqual(ing.returncode, 0, err)
        self.assertIn("archived: 23981", out)
        self.assertGreater(answered, 0)


def run_on_terminal(args, cwd):
    """Runs args with stdout on a pseudo-terminal (as a user at a shell); returns (code, stdout)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(args, cwd=cwd, stdout=slave, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    p.wait(timeout=600)
    p.stderr.close()
    os.close(master)
    return p.returncode, out.decode().replace("\r\n", "\n")


class TestReadme(unittest.TestCase):
    """README.md's archive example: exactly its commands, from a folder beside ../shared, on a terminal."""

    def test_readme_commands_and_output(self):
        with open(os.path.join(twtest.ROOT, "README.md")) as f:
            text = f.read()
        block = text.split("## Who did it? The archive", 1)[1].split("```console\n", 1)[1].split("```", 1)[0]
        steps = []
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append([line[2:], []])
            else:
                steps[-1][1].append(line)
        self.assertEqual([shlex.split(c)[:2] for c, _ in steps],
                         [["trailwatch", "ingest"], ["trailwatch", "who"], ["trailwatch", "query"]])
        top = twtest.tmpdir()
        try:
            os.symlink(twtest.shared_dir(), os.path.join(top, "shared"))
            cwd = os.path.join(top, "x")
            os.mkdir(cwd)
            volatile = re.compile(r"elapsed: [0-9.]+ s  \(\d+ records/s\)")
            for cmd, want in steps:
                args = shlex.split(cmd)
                code, out = run_on_terminal([twtest.tw_bin()] + args[1:], cwd)
                self.assertEqual(code, 0, cmd)
                got = [volatile.sub("elapsed: -", l.rstrip()) for l in out.splitlines()]
                self.assertEqual(got, [volatile.sub("elapsed: -", l.rstrip()) for l in want], cmd)
        finally:
            shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
