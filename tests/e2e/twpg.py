"""A throwaway PostgreSQL for the tests and benchmarks: initdb on a temporary folder, started with
pg_ctl, listening on 127.0.0.1 on a free port (and on a unix socket inside the folder), stopped
and removed afterwards. No system service, no fixed port, nothing outside the folder.

PostgreSQL refuses to run as root: when the tests run as root, initdb, pg_ctl and the server run
as the `postgres` user (Debian's package creates it), which then owns the folder.
"""
import atexit
import os
import pwd
import shutil
import subprocess
import tempfile
import time

import twtest

_BINDIRS = ["/usr/lib/postgresql/%s/bin" % v for v in ("17", "16", "15", "14", "13")]


def bindir():
    for d in _BINDIRS:
        if os.access(os.path.join(d, "initdb"), os.X_OK):
            return d
    p = shutil.which("initdb")
    return os.path.dirname(p) if p else None


def have_postgres():
    return bindir() is not None


_running = set()


@atexit.register
def _stop_leftovers():
    for pg in list(_running):
        pg.stop()


class Postgres:
    """One server. `dsn` connects over TCP to the database `trailwatch` as the superuser `tw`."""

    def __init__(self, fast=True, keep_dir=None):
        """keep_dir: a folder kept between runs (benchmarks: a large data set built once); the
        server's data directory is reused when it is there, and stop() leaves it."""
        self.bin = bindir()
        if not self.bin:
            raise RuntimeError("PostgreSQL is not installed (scripts/setup-deps installs postgresql)")
        self.keep = keep_dir is not None
        if self.keep:
            os.makedirs(keep_dir, exist_ok=True)
            self.dir = os.path.abspath(keep_dir)
        else:
            self.dir = tempfile.mkdtemp(prefix="tw-pg-")
        self.data = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "pg.log")
        self.port = twtest.free_port()
        self.fast = fast
        self.user = None
        if os.geteuid() == 0:
            self.user = pwd.getpwnam("postgres")
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
        self.pid = None

    def _run(self, *args, check=True, timeout=120, input=None):
        cmd = [os.path.join(self.bin, args[0])] + list(args[1:])
        kw = {}
        if self.user:
            u = self.user
            kw["preexec_fn"] = lambda: (os.setgroups([]), os.setgid(u.pw_gid), os.setuid(u.pw_uid))
        env = dict(os.environ, LC_ALL="C", LANG="C")
        env.pop("PGDATA", None)
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=self.dir,
                           input=input, **kw)
        if check and p.returncode != 0:
            raise RuntimeError("%s exited %d:\n%s%s\n%s" % (args[0], p.returncode, p.stdout, p.stderr, self.logtext()))
        return p

    def start(self):
        fresh = not os.path.exists(os.path.join(self.data, "PG_VERSION"))
        if fresh:
            self._initdb()
        opts = self._opts()
        self._run("pg_ctl", "-D", self.data, "-l", self.log_path, "-w", "-t", "120", "-o", " ".join(opts), "start",
                  timeout=180)
        _running.add(self)
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            self.pid = int(f.readline())
        if fresh:
            self.psql("CREATE DATABASE trailwatch", db="postgres")
        return self

    def _initdb(self):
        self._run("initdb", "-D", self.data, "-U", "tw", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")

    def _opts(self):
        opts = ["-c listen_addresses=127.0.0.1", "-p %d" % self.port, "-k %s" % self.dir,
                "-c max_connections=60", "-c shared_buffers=128MB", "-c log_min_messages=warning"]
        if self.fast:
            # Tests only: a crash of the test's own server loses nothing anyone needs.
            opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        return opts

    @property
    def dsn(self):
        return "host=127.0.0.1 port=%d user=tw dbname=trailwatch" % self.port

    @property
    def socket_dsn(self):
        return "host=%s port=%d user=tw dbname=trailwatch" % (self.dir, self.port)

    def psql(self, sql, db="trailwatch"):
        """Runs SQL with psql; returns the rows as lists of strings (unaligned, tab-separated)."""
        p = self._run("psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-F", "\t", "-h", "127.0.0.1",
                      "-p", str(self.port), "-U", "tw", "-d", db, "-f", "-", input=sql)
        return [line.split("\t") for line in p.stdout.splitlines() if line]

    def logtext(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-4000:]
        except OSError:
            return ""

    def stop(self):
        if self in _running:
            _running.discard(self)
            # a kept data set is shut down cleanly (no crash recovery at the next start)
            p = self._run("pg_ctl", "-D", self.data, "-m", "fast" if self.keep else "immediate", "-w", "-t", "120",
                          "stop", check=False)
            if p.returncode != 0 and self.pid:
                try:
                    os.kill(self.pid, 9)
                except OSError:
                    pass
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def start(test, fast=True):
    """A server for one test (or class), stopped and removed by the test's cleanup."""
    pg = Postgres(fast=fast).start()
    test.addCleanup(pg.stop)
    return pg


if __name__ == "__main__":
    # Manual use: python3 tests/e2e/twpg.py  -> starts one, prints the DSN, waits for Ctrl-C.
    pg = Postgres().start()
    print(pg.dsn, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pg.stop()
