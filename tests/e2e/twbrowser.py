"""A headless Chromium for end-to-end tests of the dashboard: tests/browser/driver.mjs (playwright-core
from web/node_modules, Debian's /usr/bin/chromium) run as a child process and driven one JSON command at
a time. Screenshots go to the artifacts folder: $TW_ARTIFACTS_DIR, else build/test-artifacts/."""
import json
import os
import shutil
import subprocess
import threading

import twtest

DRIVER = os.path.join(twtest.ROOT, "tests", "browser", "driver.mjs")
CHROMIUM = os.environ.get("TW_CHROMIUM", "/usr/bin/chromium")


def artifacts_dir(name):
    base = os.environ.get("TW_ARTIFACTS_DIR") or os.path.join(twtest.ROOT, "build", "test-artifacts")
    d = os.path.join(base, name)
    os.makedirs(d, exist_ok=True)
    return d


def missing():
    """Why the browser cannot run here, or None."""
    if not shutil.which("node"):
        return "node is not installed (scripts/setup-deps installs it)"
    if not os.path.exists(os.path.join(twtest.ROOT, "web", "node_modules", "playwright-core")):
        return "web/node_modules has no playwright-core (run make or scripts/setup-deps web)"
    if not os.access(CHROMIUM, os.X_OK):
        return "%s is not installed (Debian package chromium)" % CHROMIUM
    return None


class BrowserError(AssertionError):
    pass


class Browser:
    def __init__(self, timeout=60):
        why = missing()
        if why:
            raise BrowserError(why)
        self.proc = subprocess.Popen(["node", DRIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self._err = []
        threading.Thread(target=self._drain, daemon=True).start()
        hello = self._read(timeout)
        if not hello.get("ready"):
            raise BrowserError("the browser did not start: %s %s" % (hello, "".join(self._err)[-2000:]))
        self.version = hello.get("version")

    def _drain(self):
        for line in self.proc.stderr:
            self._err.append(line)

    def _read(self, timeout):
        box = {}

        def reader():
            box["line"] = self.proc.stdout.readline()
        t = threading.Thread(target=reader, daemon=True)
        t.start()
        t.join(timeout)
        if "line" not in box:
            self.close()
            raise BrowserError("the browser driver did not answer within %.0f s" % timeout)
        if not box["line"]:
            raise BrowserError("the browser driver exited: %s" % "".join(self._err)[-2000:])
        return json.loads(box["line"])

    def cmd(self, cmd, **kw):
        kw["cmd"] = cmd
        self.proc.stdin.write(json.dumps(kw) + "\n")
        self.proc.stdin.flush()
        r = self._read((kw.get("timeout", 10000) / 1000.0) + 30)
        if not r.get("ok"):
            raise BrowserError("%s %s failed: %s" % (cmd, {k: v for k, v in kw.items() if k != "cmd"}, r.get("error")))
        return r

    def goto(self, url, **kw):
        return self.cmd("goto", url=url, **kw)

    def wait(self, selector, text=None, timeout=10000, state=None):
        kw = {"selector": selector, "timeout": timeout}
        if text is not None:
            kw["text"] = text
        if state:
            kw["state"] = state
        return self.cmd("wait", **kw)["t"]

    def click(self, selector, text=None, timeout=10000):
        kw = {"selector": selector, "timeout": timeout}
        if text is not None:
            kw["text"] = text
        return self.cmd("click", **kw)

    def fill(self, selector, value):
        return self.cmd("fill", selector=selector, value=value)

    def text(self, selector):
        return self.cmd("text", selector=selector)["text"]

    def count(self, selector):
        return self.cmd("count", selector=selector)["count"]

    def eval(self, js):
        return self.cmd("eval", js=js)["value"]

    def screenshot(self, path, full=False):
        return self.cmd("screenshot", path=path, full=full)

    def fresh(self):
        """A new browser context: empty cache and cookies."""
        return self.cmd("fresh")

    def metrics(self):
        """Chromium's counters of the page (CDP Performance.getMetrics): ThreadTime, ScriptDuration, ... (s)."""
        return self.cmd("metrics")["metrics"]

    def problems(self):
        return self.cmd("problems")["problems"]

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('{"cmd":"quit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(15)
            except Exception:
                self.proc.kill()
                self.proc.wait(5)
