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
        self.assertEqual(len(oks), 9, out[-6000:])
        # Every month the records fall on is a partition of both tables, and nothing else is.
        parts = {r[0] for r in self.pg.psql(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent IN ('tw_events'::regclass, 'tw_terms'::regclass)")}
        self.assertIn("tw_events_202107", parts)
        self.assertIn("tw_terms_202107", parts)
        self.assertIn("tw_events_202307", parts)
        # The prune (last test) at 2021-07-30T12:00Z dropped the months before July 2021 whole
        # (2016-04 and 2020-09 held records) and trimmed July.
        self.assertNotIn("tw_events_202009", parts)
        self.assertNotIn("tw_terms_202009", parts)
        self.assertNotIn("tw_events_201604", parts)
        self.assertEqual(self.pg.psql("SELECT count(*) FROM tw_events WHERE k < (1627646400::bigint - 1767225600) * 262144")[0][0], "0")
        self.assertNotEqual(self.pg.psql("SELECT count(*) FROM tw_events_202107")[0][0], "0")
        # The second database holds each event once (two writers at once).
        dups = self.pg.psql("SELECT count(*) FROM (SELECT id FROM tw_events WHERE id IS NOT NULL"
                            " GROUP BY id, k >> 18 HAVING count(*) > 1) d", db="two")
        self.assertEqual(dups[0][0], "0")


if __name__ == "__main__":
    unittest.main()
