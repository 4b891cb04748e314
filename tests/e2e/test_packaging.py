"""End-to-end: man pages, `make install`, the systemd unit and the Debian package.

- One man page per command `trailwatch --help` lists (plus trailwatch(1)), generated from --help,
  each rendering without a groff warning and carrying the command's options.
- `make install DESTDIR=...` puts the binary, man pages, rule packs, examples, docs and the unit in
  place; the unit passes `systemd-analyze verify` without a warning and `systemd-analyze security`
  rates its exposure OK.
- The Debian package is built with dpkg-buildpackage from a copy of the tree, installed with dpkg into
  a private root (`--instdir`/`--admindir`/`--log` under a temporary folder, `--force-not-root`,
  `--force-depends`, `--force-script-chrootless`: the machine's own dpkg database and files are never
  touched), registered as installed with its conffile, and then started the way its unit starts it:
  the unit's ExecStart with the paths under the private root, a $NOTIFY_SOCKET of the test's own
  (READY=1, RELOADING=1 and READY=1 on SIGHUP, STOPPING=1 on SIGTERM), $STATE_DIRECTORY as systemd
  sets it. It must serve, load the packaged rule packs, and alert into its state directory."""
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

import twserve
import twtest

ROOT = twtest.ROOT


def plain_bin():
    p = os.path.join(ROOT, "build", "trailwatch")
    return p if os.access(p, os.X_OK) else twtest.tw_bin()


def listed_commands(binary):
    out = subprocess.run([binary, "--help"], capture_output=True, text=True).stdout
    return re.findall(r"^  ([a-z][a-z-]*)\s{2,}", out.split("commands:")[1].split("\n\n")[0], re.M)


class TestManAndInstall(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dest = tempfile.mkdtemp(prefix="tw-install-")
        # the default PREFIX, so that the build in the tree is reused as it is
        p = subprocess.run(["make", "--no-print-directory", "install", "DESTDIR=" + cls.dest], cwd=ROOT,
                           capture_output=True, text=True, timeout=900)
        assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
        cls.prefix = os.path.join(cls.dest, "usr", "local")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dest, True)

    def test_a_man_page_per_command_from_its_help(self):
        man = os.path.join(self.prefix, "share", "man", "man1")
        cmds = listed_commands(plain_bin())
        self.assertIn("rules", cmds)
        self.assertEqual(sorted(os.listdir(man)), sorted(["trailwatch.1"] + ["trailwatch-%s.1" % c for c in cmds]))
        for c in cmds:
            page = os.path.join(man, "trailwatch-%s.1" % c)
            r = subprocess.run(["groff", "-man", "-ww", "-z", page], capture_output=True, text=True)
            self.assertEqual((r.returncode, r.stderr), (0, ""), page)
            with open(page) as f:
                text = f.read()
            self.assertIn(".SH SYNOPSIS", text)
            helptext = subprocess.run([plain_bin(), c, "--help"], capture_output=True, text=True).stdout
            # every option the help lists is a tagged paragraph of the page
            for opt in re.findall(r"^ {1,4}(-{1,2}[a-z][\w-]*)", helptext, re.M):
                self.assertIn(".B " + opt.replace("-", "\\-"), text, (c, opt))
        rendered = subprocess.run(["groff", "-man", "-Tutf8", os.path.join(man, "trailwatch-rules.1")],
                                  capture_output=True, text=True).stdout
        self.assertIn("rules test", rendered)

    def test_install_puts_everything_in_place(self):
        p = self.prefix
        self.assertTrue(os.access(os.path.join(p, "bin", "trailwatch"), os.X_OK))
        for name in ("cis-aws-foundations.yml", "detections.yml", "guard.yml", "README.md"):
            self.assertTrue(os.path.isfile(os.path.join(p, "share", "trailwatch", "rules", name)), name)
        for name in ("GUIDE.md", "CONFIG.md", "trailwatch.yml", "examples/dynamodb-create-table/trailwatch.yml",
                     "examples/dynamodb-create-table/dynamodb-prices.yml", "examples/trailwatch.yml"):
            self.assertTrue(os.path.isfile(os.path.join(p, "share", "doc", "trailwatch", name)), name)
        # the installed binary finds the installed packs by name when told where the prefix went
        env = dict(os.environ, TRAILWATCH_RULES_DIR=os.path.join(p, "share", "trailwatch", "rules"))
        r = subprocess.run([os.path.join(p, "bin", "trailwatch"), "rules", "test"], env=env, capture_output=True,
                           text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_the_unit_verifies_and_is_confined(self):
        unit = os.path.join(self.prefix, "lib", "systemd", "system", "trailwatch.service")
        with open(unit) as f:
            text = f.read()
        self.assertIn("ExecStart=/usr/local/bin/trailwatch serve -c /etc/trailwatch/trailwatch.yml\n", text)
        self.assertIn("Type=notify\n", text)
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed")
        d = tempfile.mkdtemp(prefix="tw-e2e-")
        self.addCleanup(shutil.rmtree, d, True)
        # verify checks ExecStart's program and the man pages: point them at the staged install
        copy = os.path.join(d, "trailwatch.service")
        with open(copy, "w") as f:
            f.write(text.replace("/usr/local/bin/trailwatch", os.path.join(self.prefix, "bin", "trailwatch")))
        env = dict(os.environ, MANPATH=os.path.join(self.prefix, "share", "man"))
        v = subprocess.run(["systemd-analyze", "verify", copy], env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual((v.returncode, v.stderr.strip()), (0, ""))
        s = subprocess.run(["systemd-analyze", "security", "--offline=yes", copy], capture_output=True, text=True,
                           timeout=120)
        m = re.search(r"Overall exposure level for trailwatch.service: ([\d.]+) (\w+)", s.stdout)
        self.assertTrue(m, s.stdout[-1000:] + s.stderr)
        self.assertLessEqual(float(m.group(1)), 2.0, s.stdout)


class TestDebianPackage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not shutil.which("dpkg-buildpackage"):
            raise unittest.SkipTest("dpkg-dev is not installed (scripts/setup-deps installs it)")
        cls.tmp = tempfile.mkdtemp(prefix="tw-deb-")
        src = os.path.join(cls.tmp, "trailwatch-src")
        os.makedirs(src)
        files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.splitlines()
        for rel in files:
            if os.path.isfile(os.path.join(ROOT, rel)):
                os.makedirs(os.path.dirname(os.path.join(src, rel)), exist_ok=True)
                shutil.copy2(os.path.join(ROOT, rel), os.path.join(src, rel))
        env = dict(os.environ, DEB_BUILD_OPTIONS="parallel=2")
        p = subprocess.run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, env=env, capture_output=True,
                           text=True, timeout=1800)
        assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
        [cls.deb] = glob.glob(os.path.join(cls.tmp, "trailwatch_*.deb"))
        # a private dpkg: its own root, database and log
        cls.root = os.path.join(cls.tmp, "root")
        cls.admin = os.path.join(cls.root, "var", "lib", "dpkg")
        for d in ("info", "updates"):
            os.makedirs(os.path.join(cls.admin, d))
        open(os.path.join(cls.admin, "status"), "w").close()
        cls.dpkg = ["dpkg", "--instdir=" + cls.root, "--admindir=" + cls.admin,
                    "--log=" + os.path.join(cls.tmp, "dpkg.log")]
        p = subprocess.run(cls.dpkg + ["--force-not-root", "--force-depends", "--force-script-chrootless", "-i",
                                       cls.deb], capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, True)

    def test_1_installed_with_its_conffile(self):
        s = subprocess.run(self.dpkg + ["-s", "trailwatch"], capture_output=True, text=True)
        self.assertIn("Status: install ok installed", s.stdout)
        self.assertRegex(s.stdout, r"\nConffiles:\n /etc/trailwatch/trailwatch.yml [0-9a-f]{32}\n")
        files = subprocess.run(self.dpkg + ["-L", "trailwatch"], capture_output=True, text=True).stdout.split()
        for f in ("/usr/bin/trailwatch", "/usr/lib/systemd/system/trailwatch.service",
                  "/usr/share/trailwatch/rules/guard.yml", "/usr/share/man/man1/trailwatch-serve.1.gz",
                  "/etc/trailwatch/trailwatch.yml"):
            self.assertIn(f, files)
            self.assertTrue(os.path.exists(self.root + f), f)
        info = subprocess.run(["dpkg-deb", "-f", self.deb, "Depends"], capture_output=True, text=True).stdout
        for lib in ("libcurl4", "libmicrohttpd12", "libsqlite3-0", "libyaml-0-2"):
            self.assertIn(lib, info)

    def test_2_started_as_its_unit_starts_it(self):
        with open(os.path.join(self.root, "usr/lib/systemd/system/trailwatch.service")) as f:
            unit = f.read()
        exec_start = re.search(r"^ExecStart=(.*)$", unit, re.M).group(1).split()
        self.assertEqual(exec_start, ["/usr/bin/trailwatch", "serve", "-c", "/etc/trailwatch/trailwatch.yml"])
        argv = [self.root + a if a.startswith("/") else a for a in exec_start]
        port = twserve.free_port()
        argv += ["--listen", "127.0.0.1:%d" % port]          # the one change: a free port, not 8080
        state = os.path.join(self.tmp, "state")
        os.makedirs(state)
        sock_path = os.path.join(self.tmp, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(sock_path)
        sock.settimeout(60)
        self.addCleanup(sock.close)
        env = {"PATH": "/usr/bin:/bin", "NOTIFY_SOCKET": sock_path, "STATE_DIRECTORY": state,
               # the packaged binary looks for its packs in /usr/share/trailwatch/rules, here under the root
               "TRAILWATCH_RULES_DIR": os.path.join(self.root, "usr/share/trailwatch/rules")}
        env.update({k: v for k, v in os.environ.items() if k.startswith(("ASAN", "UBSAN", "LSAN"))})
        proc = subprocess.Popen(argv, env=env, cwd=state, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        twserve._live.add(proc)
        try:
            self.assertEqual(sock.recv(256), b"READY=1")
            health = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=10).read())
            self.assertEqual(health["status"], "ok")
            # a root-user call: the packaged CIS pack alerts into the state directory
            rec = {"eventVersion": "1.08", "eventSource": "iam.amazonaws.com", "eventName": "CreateUser",
                   "eventTime": "2024-05-01T10:00:00Z", "awsRegion": "us-east-1", "eventType": "AwsApiCall",
                   "eventID": "c0ffee00-0000-4000-8000-0000000000d1",
                   "userIdentity": {"type": "Root", "arn": "arn:aws:iam::123456789012:root"}}
            req = urllib.request.Request("http://127.0.0.1:%d/events" % port, data=json.dumps(rec).encode(),
                                                 headers={"Content-Type": "application/json"})
            self.assertEqual(json.loads(urllib.request.urlopen(req, timeout=30).read())["accepted"], 1)
            alerts = os.path.join(state, "alerts.jsonl")
            twserve.wait_until(lambda: os.path.exists(alerts) and open(alerts).read().strip(), 30,
                               what="an alert in the state directory")
            self.assertEqual(json.loads(open(alerts).readline())["detail"]["eventID"], rec["eventID"])
            self.assertTrue(os.path.exists(os.path.join(state, "trailwatch.db")))
            proc.send_signal(signal.SIGHUP)                  # ExecReload
            self.assertEqual(sock.recv(256), b"RELOADING=1")
            self.assertEqual(sock.recv(256), b"READY=1")
            proc.terminate()
            self.assertEqual(sock.recv(256), b"STOPPING=1")
            self.assertEqual(proc.wait(60), 0, proc.stderr.read())
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
            proc.stderr.close()


if __name__ == "__main__":
    unittest.main()
