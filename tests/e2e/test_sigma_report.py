"""rules/README.md's section on SigmaHQ's CloudTrail rules is what scripts/sigma-report gives now: the 57
rules load (or are refused with a stated reason) and their alerts over the recorded data, invictus-ir
and the Stratus Red Team files are the ones written down."""
import os
import subprocess
import sys
import unittest

import twtest


class SigmaReport(unittest.TestCase):
    def test_readme_section_is_current(self):
        p = subprocess.run([sys.executable, os.path.join(twtest.ROOT, "scripts", "sigma-report"), "--check"],
                           capture_output=True, text=True, timeout=1800)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])

    def test_every_sigmahq_rule_loads_or_is_refused_with_a_reason(self):
        rules = os.path.join(twtest.shared_dir(), "data", "rules", "sigma-cloudtrail")
        p = twtest.run(["sigma", "check", "--json", rules])
        loaded = [l for l in p.stdout.splitlines() if l.strip()]
        refused = [l for l in p.stderr.splitlines() if ": rule " in l]
        top = [f for f in os.listdir(rules) if f.endswith(".yml")]
        self.assertEqual(len(top), 57)
        self.assertEqual(len(loaded), 57, p.stderr)
        # the unsupported/ and placeholder/ rules, each with its line and reason
        self.assertEqual(len(refused), 9, p.stderr)
        for l in refused:
            self.assertRegex(l, r"\.yml:\d+: rule \".+\": .{20,}")


if __name__ == "__main__":
    unittest.main()
