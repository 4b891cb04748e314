"""The golden corpus of event-pattern semantics (tests/golden/patterns/*.jsonl), run end to end.

Each corpus line is one case:
  {"pattern": <value> | "pattern_text": "<raw text>",
   "event": <value> | "event_text": "<raw text>" | "event_b64": "<base64 of raw bytes>",
   "expect": true | false | "error", ["error_contains": "<fragment>",] "why": "<the rule>"}

All cases of one file go through one `trailwatch test-pattern --batch` process. The values are forwarded
as the exact text they have in the corpus file (not re-serialised), so number literals such as 3.0e2 or
12345678901234567891 reach trailwatch as written. event_b64 cases (raw bytes that no JSON line can carry)
use the single-shot form `test-pattern --pattern <text> --event @<file>` (exit 0 match, 1 no match,
2 error with the message on stderr).
"""
import base64
import binascii
import glob
import json
import os
import tempfile
import unittest

import twtest

GOLDEN_DIR = os.path.join(twtest.ROOT, "tests", "golden", "patterns")
KEYS = {"pattern", "pattern_text", "event", "event_text", "event_b64", "expect", "error_contains", "why"}
# A crash or a sanitizer report (tests/run.py sets exit codes 86-88) must fail the file even when every
# answer was right; 0-2 are the ordinary outcomes of a batch.
OK_EXIT = (0, 1, 2)


def _ws(s, i):
    while i < len(s) and s[i] in " \t\r\n":
        i += 1
    return i


def raw_members(line):
    """The members of the JSON object on line, as {key: (raw text of the value, parsed value)}."""
    dec = json.JSONDecoder()
    i = _ws(line, 0)
    if i >= len(line) or line[i] != "{":
        raise ValueError("not a JSON object")
    i = _ws(line, i + 1)
    out = {}
    if i < len(line) and line[i] == "}":
        return out
    while True:
        i = _ws(line, i)
        key, i = dec.raw_decode(line, i)
        if not isinstance(key, str):
            raise ValueError("object key is not a string")
        if key in out:
            raise ValueError("duplicate member %r" % key)
        i = _ws(line, i)
        if i >= len(line) or line[i] != ":":
            raise ValueError("':' expected")
        i = _ws(line, i + 1)
        val, j = dec.raw_decode(line, i)
        out[key] = (line[i:j], val)
        i = _ws(line, j)
        if i < len(line) and line[i] == ",":
            i += 1
            continue
        if i < len(line) and line[i] == "}":
            break
        raise ValueError("',' or '}' expected")
    if _ws(line, i + 1) != len(line):
        raise ValueError("text after the object")
    return out


def check_case(m):
    """Raises ValueError when a parsed case (raw_members output) breaks the corpus format."""
    unknown = set(m) - KEYS
    if unknown:
        raise ValueError("unknown keys %s" % sorted(unknown))
    if ("pattern" in m) == ("pattern_text" in m):
        raise ValueError("exactly one of pattern / pattern_text is needed")
    if sum(k in m for k in ("event", "event_text", "event_b64")) != 1:
        raise ValueError("exactly one of event / event_text / event_b64 is needed")
    # In a batch line a JSON string means raw text, so a value that is a string must be written as *_text.
    for k in ("pattern", "event"):
        if k in m and isinstance(m[k][1], str):
            raise ValueError("%s is a string: use %s_text for raw text" % (k, k))
    for k in ("pattern_text", "event_text", "event_b64", "why"):
        if k in m and not isinstance(m[k][1], str):
            raise ValueError("%s must be a string" % k)
    if "event_b64" in m:
        try:
            base64.b64decode(m["event_b64"][1], validate=True)
        except binascii.Error as e:
            raise ValueError("event_b64 is not base64: %s" % e)
    if "expect" not in m:
        raise ValueError("expect is missing")
    expect = m["expect"][1]
    if not (isinstance(expect, bool) or expect == "error"):
        raise ValueError("expect must be true, false or \"error\"")
    if "error_contains" in m:
        if expect != "error":
            raise ValueError("error_contains only goes with expect \"error\"")
        if not isinstance(m["error_contains"][1], str) or not m["error_contains"][1]:
            raise ValueError("error_contains must be a non-empty string")
    if not m.get("why", ("", ""))[1].strip():
        raise ValueError("why is missing or empty")


def load_file(path):
    """[(line number, members)] for every non-blank line of a corpus file."""
    cases = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if line.strip():
                cases.append((n, raw_members(line)))
    return cases


def corpus_files():
    return sorted(glob.glob(os.path.join(GOLDEN_DIR, "*.jsonl")))


def describe(fname, n, m):
    parts = ["%s:%d" % (fname, n), "why:     " + m["why"][1]]
    for k in ("pattern", "pattern_text", "event", "event_text", "event_b64"):
        if k in m:
            raw = m[k][0]
            parts.append("%-8s %s" % (k + ":", raw if len(raw) <= 400 else raw[:400] + "...(%d chars)" % len(raw)))
    want = m["expect"][1]
    parts.append("expect:  %s%s" % (json.dumps(want),
                                    " containing %r" % m["error_contains"][1] if "error_contains" in m else ""))
    return "\n  ".join(parts)


def verdict_ok(m, answer):
    """answer: 'true', 'false' or ('error', message)."""
    want = m["expect"][1]
    if want is True:
        return answer == "true"
    if want is False:
        return answer == "false"
    if not (isinstance(answer, tuple) and answer[0] == "error"):
        return False
    return "error_contains" not in m or m["error_contains"][1] in answer[1]


def parse_answer(line):
    if line in ("true", "false"):
        return line
    if line.startswith("error:"):
        return ("error", line[len("error:"):].strip())
    return ("unrecognised", line)


def batch_line(m):
    pat = m["pattern"][0] if "pattern" in m else m["pattern_text"][0]
    ev = m["event"][0] if "event" in m else m["event_text"][0]
    return '{"pattern": %s, "event": %s}' % (pat, ev)


def run_batch(lines):
    data = ("\n".join(lines) + "\n").encode("utf-8")
    p = twtest.run(["test-pattern", "--batch"], input=data, timeout=300)
    out = p.stdout.decode("utf-8", "replace")
    if out.endswith("\n"):
        out = out[:-1]
    answers = out.split("\n") if out else []
    return p, answers, p.stderr.decode("utf-8", "replace")


class CorpusFormatTest(unittest.TestCase):
    """The corpus itself is well formed (needs no binary)."""

    def test_files_exist(self):
        self.assertTrue(corpus_files(), "no corpus files under %s" % GOLDEN_DIR)

    def test_every_line_is_a_valid_case(self):
        for path in corpus_files():
            fname = os.path.basename(path)
            seen = {}
            with open(path, encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    with self.subTest(case="%s:%d" % (fname, n)):
                        line = line.rstrip("\n")
                        self.assertTrue(line.strip(), "blank line")
                        json.loads(line)
                        m = raw_members(line)
                        check_case(m)
                        key = tuple(m[k][0] for k in sorted(m) if k in ("pattern", "pattern_text", "event",
                                                                       "event_text", "event_b64"))
                        self.assertNotIn(key, seen, "same pattern and event as line %s" % seen.get(key))
                        seen[key] = n


class GoldenPatternsTest(unittest.TestCase):
    """One test per corpus file, one subTest per case."""

    def run_file(self, path):
        fname = os.path.basename(path)
        cases = load_file(path)
        for n, m in cases:
            check_case(m)
        batch = [(n, m) for n, m in cases if "event_b64" not in m]
        single = [(n, m) for n, m in cases if "event_b64" in m]
        if batch:
            p, answers, err = run_batch([batch_line(m) for _, m in batch])
            self.assertIn(p.returncode, OK_EXIT, "%s: test-pattern --batch exited %d\nstderr: %s"
                          % (fname, p.returncode, err[-3000:]))
            self.assertEqual(len(answers), len(batch),
                             "%s: %d input lines but %d output lines\nstdout (start): %s\nstderr: %s"
                             % (fname, len(batch), len(answers), "\n".join(answers[:10]), err[-2000:]))
            for (n, m), line in zip(batch, answers):
                with self.subTest(case="%s:%d" % (fname, n)):
                    answer = parse_answer(line)
                    self.assertTrue(verdict_ok(m, answer), "%s\n  got:     %s" % (describe(fname, n, m), line))
        for n, m in single:
            with self.subTest(case="%s:%d" % (fname, n)):
                self.check_single(fname, n, m)

    def check_single(self, fname, n, m):
        ptext = m["pattern_text"][1] if "pattern_text" in m else m["pattern"][0]
        with tempfile.TemporaryDirectory(prefix="tw-e2e-") as d:
            evfile = os.path.join(d, "event.json")
            with open(evfile, "wb") as f:
                f.write(base64.b64decode(m["event_b64"][1]))
            p = twtest.run(["test-pattern", "--pattern", ptext, "--event", "@" + evfile], input=b"")
        err = p.stderr.decode("utf-8", "replace")
        if p.returncode == 0:
            answer = "true"
        elif p.returncode == 1:
            answer = "false"
        elif p.returncode == 2:
            answer = ("error", err.strip())
        else:
            answer = ("exit %d" % p.returncode, err)
        self.assertTrue(verdict_ok(m, answer), "%s\n  got:     exit %d, stderr: %s"
                        % (describe(fname, n, m), p.returncode, err[-2000:]))


def _add_file_tests():
    for path in corpus_files():
        stem = os.path.splitext(os.path.basename(path))[0]

        def test(self, path=path):
            self.run_file(path)
        test.__doc__ = "golden corpus: %s" % os.path.basename(path)
        setattr(GoldenPatternsTest, "test_" + stem.replace("-", "_"), test)


_add_file_tests()


class BatchRobustnessTest(unittest.TestCase):
    """A bad line in the middle of a batch is answered with an error and does not stop the batch."""

    def test_bad_lines_do_not_stop_the_batch(self):
        lines = [
            ('{"pattern": {"a": ["x"]}, "event": {"a": "x"}}', "true"),
            ("this is not JSON at all", "error"),
            ('{"pattern": {"a": ["x"]}, "event": {"a": "y"}}', "false"),
            ('{"pattern": {"a": ["x"]}}', "error"),                                  # no event
            ('{"pattern": {"a": []}, "event": {"a": "x"}}', "error"),                # invalid pattern
            ('{"pattern": "{\\"a\\":[\\"x\\"]}", "event": "{\\"a\\":\\"x\\"}"}', "true"),  # both as texts
            ("[1, 2]", "error"),                                                    # not an object
            ('{"pattern": {"a": ["x"]}, "event": "{\\"a\\":"}', "error"),            # event text not JSON
            ('{"pattern": {"a": ["x"]}, "event": {"a": "x"}', "error"),              # line cut short
            ('{"pattern": {"a": [{"prefix": "x"}]}, "event": {"a": "xyz"}}', "true"),
        ]
        p, answers, err = run_batch([l for l, _ in lines])
        self.assertIn(p.returncode, OK_EXIT, "exit %d\nstderr: %s" % (p.returncode, err[-3000:]))
        self.assertEqual(len(answers), len(lines), "one output line per input line\nstdout: %s\nstderr: %s"
                         % ("\n".join(answers), err[-2000:]))
        for i, ((line, want), got) in enumerate(zip(lines, answers), 1):
            with self.subTest(line=i):
                if want == "error":
                    self.assertTrue(got.startswith("error: "), "line %d %s: want an error, got %r" % (i, line, got))
                else:
                    self.assertEqual(got, want, "line %d %s" % (i, line))

    def test_output_count_matches_input_count(self):
        ok = '{"pattern": {"n": [{"numeric": [">", 0]}]}, "event": {"n": %d}}'
        lines = []
        for i in range(200):
            lines.append(ok % (i % 3 - 1) if i % 7 else "{")
        p, answers, err = run_batch(lines)
        self.assertIn(p.returncode, OK_EXIT, "exit %d\nstderr: %s" % (p.returncode, err[-3000:]))
        self.assertEqual(len(answers), len(lines), "stderr: %s" % err[-2000:])
        for i, (line, got) in enumerate(zip(lines, answers)):
            want = "error" if line == "{" else ("true" if (i % 3 - 1) > 0 else "false")
            if want == "error":
                self.assertTrue(got.startswith("error: "), "line %d: %r" % (i + 1, got))
            else:
                self.assertEqual(got, want, "line %d" % (i + 1))


if __name__ == "__main__":
    unittest.main()
