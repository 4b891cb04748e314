"""The PostgreSQL archive backend (issue #13) against a real PostgreSQL started by the test (initdb +
pg_ctl on a temporary folder, 127.0.0.1, a free port; tests/e2e/twpg.py), torn down afterwards.

- tests/unit/test_archive_pg.c (built as <build>/tests/test_archive_pg, the sanitizer build when the
  suite runs on it) ingests the same real CloudTrail records (shared data, recorded.jsonl.gz) into
  SQLite and PostgreSQL and checks that find (filters, patterns, time ranges, who, resources,
  paging cursors), who, counts, stats and prune answer exactly alike; that a second handle (another
  node) adding the same events stores nothing; and that two writers adding overlapping events at
  the same time into an empty database store each event once.
- The database's layout: monthly partitions of both tables, retention by dropping them.
"""
import json
import os
import re
import subprocess
import unittest

import twpg
import twtest


def unit_binary():
    return os.path.join(os.path.dirname(os.path.abspath(twtest.tw_bin())), "tests", "test_archive_pg")


@unittest.skipUnless(twpg.have_postgres(), "PostgreSQL is not installed (scripts/setup-deps)")
class ArchivePostgresTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.pg = twpg.Postgres().start()
        cls.pg.psql("CREATE DATABASE two", db="postgres")

    @classmethod
    def tearDownClass(cls):
        cls.pg.stop()

    def test_same_answers_as_sqlite(self):
        binary = unit_binary()
        self.assertTrue(os.access(binary, os.X_OK), "%s is not built (make)" % binary)
        env = dict(os.environ, TW_TEST_PG_DSN=self.pg.dsn,
                   TW_TEST_PG_DSN2=self.pg.dsn.replace("dbname=trailwatch", "dbname=two"),
                   TW_TEST_STRIDE="3",  # a third of the records, spread over all of them (time)
                   TW_TEST_DATA=os.path.join(twtest.shared_dir(), "data", "cloudtrail", "recorded.jsonl.gz"))
        p = subprocess.run([binary], capture_output=True, text=True, timeout=1200, env=env)
        out = p.stdout + p.stderr
        print("\n" + "\n".join("  " + l for l in out.splitlines() if l.startswith("#")))
        oks = re.findall(r"^ok \d+ - (\S+)$", p.stdout, re.M)
        self.assertNotIn("not ok", p.stdout, out[-6000:])
        self.assertEqual(p.returncode, 0, out[-6000:])
        self.assertEqual(len(oks), 11, out[-6000:])
        # Every month the records fall on is a partition of both tables, and nothing else is.
        parts = {r[0] for r in self.pg.psql(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent IN ('tw_events'::regclass, 'tw_post'::regclass)")}
        self.assertIn("tw_events_202107", parts)
        self.assertIn("tw_post_202107", parts)
        self.assertIn("tw_events_202307", parts)
        # The prune (last test) at 2021-07-30T12:00Z dropped the months before July 2021 whole
        # (2016-04 and 2020-09 held records) and trimmed July.
        self.assertNotIn("tw_events_202009", parts)
        self.assertNotIn("tw_post_202009", parts)
        self.assertNotIn("tw_events_201604", parts)
        self.assertEqual(self.pg.psql("SELECT count(*) FROM tw_events WHERE k < (1627646400::bigint - 1767225600) * 262144")[0][0], "0")
        self.assertNotEqual(self.pg.psql("SELECT count(*) FROM tw_events_202107")[0][0], "0")
        # The second database holds each event once (two writers at once).
        dups = self.pg.psql("SELECT count(*) FROM (SELECT id FROM tw_events WHERE id IS NOT NULL"
                            " GROUP BY id, k >> 18 HAVING count(*) > 1) d", db="two")
        self.assertEqual(dups[0][0], "0")

    def test_cli_query_and_who_same_as_sqlite(self):
        """`trailwatch ingest`, `query` and `who` with --archive naming the PostgreSQL database print
        exactly what they print for a SQLite file holding the same CloudTrail log files."""
        d = twtest.tmpdir()
        self.addCleanup(__import__("shutil").rmtree, d, True)
        self.pg.psql("CREATE DATABASE cli", db="postgres")
        dsn = self.pg.dsn.replace("dbname=trailwatch", "dbname=cli")
        db = os.path.join(d, "archive.db")
        trail = os.path.join(twtest.shared_dir(), "data", "cloudtrail", "invictus-ir")
        for where in (db, dsn):
            p = twtest.run(["ingest", "--quiet", "--archive", where, trail], timeout=600)
            self.assertEqual(p.returncode, 0, p.stderr)
        def both(*args):
            a = twtest.run(list(args) + ["--archive", db, "--format", "json"], timeout=300)
            b = twtest.run(list(args) + ["--archive", dsn, "--format", "json"], timeout=300)
            self.assertEqual((a.returncode, a.stdout), (b.returncode, b.stdout), args)
            return a.stdout.count("\n")
        self.assertGreater(both("query", "--limit", "0"), 2000)
        self.assertGreater(both("query", "--pattern", '{"source":["aws.iam"]}', "--limit", "0"), 0)
        both("query", "--event-name", "CreateUser", "--limit", "0")
        both("query", "--from", "2022-01-01", "--limit", "50")
        n = 0
        for line in twtest.run(["query", "--archive", db, "--format", "json", "--limit", "0"], timeout=300).stdout.splitlines()[::97]:
            ev = json.loads(line).get("event") or {}
            for res in (ev.get("resources") or [])[:1]:
                if res.get("ARN"):
                    both("who", res["ARN"])
                    n += 1
        self.assertGreater(n, 5, "resources compared with who")
        p = twtest.run(["who", "--archive", dsn, "no-such-resource-xyz"], timeout=120)
        self.assertEqual(p.returncode, 1, p.stderr)
        p = twtest.run(["query", "--archive", "host=127.0.0.1 port=1 dbname=x password=s3cret"], timeout=120)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("cannot connect", p.stderr)
        self.assertNotIn("s3cret", p.stderr)


if __name__ == "__main__":
    unittest.main()
