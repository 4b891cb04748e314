"""The Sigma case corpus (tests/golden/sigma/*.yml), run end to end through `trailwatch match --sigma`.

Each file is a YAML list of cases:
  - name: what the case shows
    rule: |                       # Sigma YAML text, one or more documents
      title: ...
    placeholders: {Name: [v]}     # optional: values for |expand (passed with --placeholders)
    events:                       # CloudTrail records (named by eventID) or EventBridge events (by id)
      - {eventID: e1, ...}
    expect: {rule_name: [e1]}     # every rule's matching events; a rule not listed matches none
    hits:                         # optional: correlation hits, each {value, group} (or a count)
      corr_name: [{value: 3, group: {userIdentity.arn: x}}]
    refused:                      # optional: refusals expected on stderr (exit status 2)
      - {line: 7, contains: "unknown modifier"}
    alerts: {rule_name: false}    # optional: `sigma check --json` alerts flags
    lint: ["MFAUsed"]             # optional: fragments `sigma lint` must report ([] = no warning)

Events keep their key order and literal values as YAML gives them (JSON lines written by json.dumps).
A record without eventVersion or eventSource (and without detail-type) gets eventVersion "1.08" and
eventSource "test.amazonaws.com" appended: the two keys that make trailwatch read it as a CloudTrail
record rather than as an EventBridge event.
"""
import glob
import json
import os
import tempfile
import unittest

import yaml

import twtest

CORPUS = os.path.join(twtest.ROOT, "tests", "golden", "sigma")
KEYS = {"name", "rule", "placeholders", "events", "events_text", "expect", "hits", "refused", "alerts", "lint",
        "why"}
SAN_CODES = (86, 87, 88)


def event_name(ev):
    if isinstance(ev, dict):
        return ev.get("eventID") or ev.get("id")
    return None


class SigmaCorpus(unittest.TestCase):
    def run_case(self, path, case):
        where = "%s: %s" % (os.path.basename(path), case.get("name"))
        unknown = set(case) - KEYS
        self.assertFalse(unknown, "%s: unknown keys %s" % (where, unknown))
        d = tempfile.mkdtemp(prefix="tw-sigma-")
        rule = os.path.join(d, "rule.yml")
        with open(rule, "w", encoding="utf-8") as f:
            f.write(case["rule"])
        args = ["match", "--sigma", rule]
        if "placeholders" in case:
            ph = os.path.join(d, "placeholders.json")
            with open(ph, "w") as f:
                json.dump(case["placeholders"], f)
            args += ["--placeholders", ph]
        evpath = os.path.join(d, "events.jsonl")
        with open(evpath, "w", encoding="utf-8") as f:
            for ev in case.get("events", []):
                if isinstance(ev, dict) and "detail-type" not in ev:
                    ev = dict(ev)
                    ev.setdefault("eventVersion", "1.08")
                    ev.setdefault("eventSource", "test.amazonaws.com")
                f.write(json.dumps(ev, ensure_ascii=False) + "\n")
            if "events_text" in case:
                f.write(case["events_text"])
        p = twtest.run(args + [evpath])
        self.assertNotIn(p.returncode, SAN_CODES, "%s: sanitizer report\n%s" % (where, p.stderr))
        refused = case.get("refused", [])
        for r in refused:
            want = "rule.yml:%d:" % r["line"] if "line" in r else "rule.yml:"
            ok = any(want in l and r.get("contains", "") in l for l in p.stderr.splitlines())
            self.assertTrue(ok, "%s: expected a refusal %r on stderr, got:\n%s" % (where, r, p.stderr))
        if refused:
            self.assertEqual(p.returncode, 2, "%s: a refused rule gives exit status 2" % where)
        else:
            self.assertIn(p.returncode, (0, 1), "%s: exit %d\n%s" % (where, p.returncode, p.stderr))
        got, hits = {}, {}
        for line in p.stdout.splitlines():
            o = json.loads(line)
            if "correlation" in o:
                hits.setdefault(o["correlation"], []).append(o)
            else:
                for r in o["rules"]:
                    got.setdefault(r, []).append(o["event"])
        expect = case.get("expect", {}) or {}
        for name in set(expect) | set(got):
            self.assertEqual(sorted(got.get(name, [])), sorted(expect.get(name) or []),
                             "%s: rule %s matched %s" % (where, name, got.get(name, [])))
        want_hits = case.get("hits", {}) or {}
        for name in set(want_hits) | set(hits):
            w, g = want_hits.get(name, 0), hits.get(name, [])
            if isinstance(w, int):
                self.assertEqual(len(g), w, "%s: correlation %s hits %s" % (where, name, g))
                continue
            self.assertEqual(len(g), len(w), "%s: correlation %s hits %s, expected %s" % (where, name, g, w))
            for a, b in zip(sorted(g, key=lambda x: x["first"]), w):
                for k, v in b.items():
                    self.assertEqual(a.get(k), v, "%s: correlation %s hit %s: %s" % (where, name, a, k))
        if "alerts" in case:
            c = twtest.run(["sigma", "check", "--json", rule])
            flags = {json.loads(l)["name"]: json.loads(l)["alerts"] for l in c.stdout.splitlines()}
            for name, want in case["alerts"].items():
                self.assertEqual(flags.get(name), want, "%s: rule %s alerts" % (where, name))
        if "lint" in case:
            c = twtest.run(["sigma", "lint", rule])
            warnings = [l for l in c.stderr.splitlines() if "warning:" in l]
            if not case["lint"]:
                self.assertEqual(warnings, [], "%s: lint" % where)
            for frag in case["lint"]:
                self.assertTrue(any(frag in l for l in warnings), "%s: lint did not report %r:\n%s" %
                                (where, frag, c.stderr))

    def test_corpus(self):
        files = sorted(glob.glob(os.path.join(CORPUS, "*.yml")))
        self.assertTrue(files, "no corpus files in %s" % CORPUS)
        total = 0
        for path in files:
            with open(path, encoding="utf-8") as f:
                cases = yaml.safe_load(f)
            self.assertIsInstance(cases, list, path)
            for case in cases:
                with self.subTest(file=os.path.basename(path), case=case.get("name")):
                    self.run_case(path, case)
                total += 1
        self.assertGreaterEqual(total, 78, "the corpus shrank")


if __name__ == "__main__":
    unittest.main()
