"""Generated Sigma rules for bench/sigma: N CloudTrail detection rules in the shapes SigmaHQ's rules take
(a selection of eventSource + eventName, modifiers contains/startswith/endswith/re/cidr, `selection and not
filter`, `1 of selection_*`, null/exists tests, lists of values), over the botocore service models and the
(eventSource, eventName) pairs of the recorded data, deterministic for a seed.

    python3 bench/gen_sigma.py N OUT_DIR [--seed S]     # OUT_DIR/gen-0000.yml ... (1,000 rules per file)
"""
import argparse
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import gen_rules  # noqa: E402

PER_FILE = 1000
LEVELS = ("low", "medium", "high", "critical", "informational")


def q(s):
    """A YAML single-quoted scalar."""
    return "'" + str(s).replace("'", "''") + "'"


class SigmaGen:
    def __init__(self, catalog, data_pairs, seed):
        self.rng = random.Random(seed)
        self.catalog = catalog
        self.pairs = [p for p in data_pairs if p[0].endswith(".amazonaws.com")]

    def source_names(self):
        """(eventSource, [eventName...]): half from the recorded data (rules that fire), half from models."""
        r = self.rng
        if self.pairs and r.random() < 0.5:
            es, en, _ = r.choice(self.pairs)
            return es, [en]
        name, prefix, ops = r.choice(self.catalog)
        es = prefix + ".amazonaws.com"
        return es, sorted(r.sample(ops, min(len(ops), r.choice((1, 1, 2, 3)))))

    def detection(self):
        r = self.rng
        es, names = self.source_names()
        sel = ["    eventSource: " + q(es)]
        if len(names) == 1:
            sel.append("    eventName: " + q(names[0]))
        else:
            sel.append("    eventName:")
            sel += ["      - " + q(n) for n in names]
        kind = r.random()
        ids = {"selection": sel}
        cond = "selection"
        if kind < 0.15:      # a modifier on the name
            n = names[0]
            mod = r.choice(("startswith", "endswith", "contains"))
            part = n[:max(3, len(n) // 2)] if mod == "startswith" else n[len(n) // 2:] if mod == "endswith" \
                else n[1:-1] or n
            ids["selection"] = ["    eventSource: " + q(es), "    eventName|%s: %s" % (mod, q(part))]
        elif kind < 0.35:    # selection and not filter
            ids["filter"] = r.choice((["    userIdentity.type: AssumedRole"],
                                      ["    userAgent|contains: " + q(r.choice(("terraform", "aws-cli", "Boto3")))],
                                      ["    errorCode|exists: true"],
                                      ["    sourceIPAddress|cidr: " + q(r.choice(("10.0.0.0/8", "192.168.0.0/16")))]))
            cond = "selection and not filter"
        elif kind < 0.45:    # errorCode null (success only)
            ids["selection"] = sel + ["    errorCode: null"]
        elif kind < 0.55:    # a regex on the principal
            ids["selection"] = sel + ["    userIdentity.arn|re: " + q(".+:assumed-role/%s.+" % r.choice(
                ("aws:", "Admin", "ci-", "OrganizationAccountAccessRole")))]
        elif kind < 0.65:    # 1 of selection_*
            es2, names2 = self.source_names()
            ids = {"selection_a": sel, "selection_b": ["    eventSource: " + q(es2), "    eventName: " + q(names2[0])]}
            cond = "1 of selection_*"
        elif kind < 0.72:    # a value deep in the request
            ids["selection"] = sel + ["    requestParameters|contains: " + q(r.choice(
                ("Allow", "0.0.0.0/0", "public-read", "false")))]
        elif kind < 0.80:    # a contains list on the user agent
            ids["selection"] = sel + ["    userAgent|contains:"] + ["      - " + q(u) for u in
                                                                    r.sample(("python", "curl", "kali", "nmap",
                                                                              "Boto3", "aws-cli"), 2)]
        out = []
        for k, v in ids.items():
            out.append("  %s:" % k)
            out += v
        out.append("  condition: " + cond)
        return "\n".join(out)

    def rule(self, i):
        r = self.rng
        return ("title: Generated rule %d\nname: gen_%05d\nid: 00000000-0000-4000-8000-%012d\nstatus: test\n"
                "level: %s\ntags: [attack.t%04d]\nlogsource:\n  product: aws\n  service: cloudtrail\n"
                "detection:\n%s\n" % (i, i, i, r.choice(LEVELS), 1000 + r.randrange(600), self.detection()))


def write(n, out_dir, seed, gz):
    os.makedirs(out_dir, exist_ok=True)
    g = SigmaGen(gen_rules.load_catalog(), gen_rules.load_data_pairs(gz), seed)
    for f in range(0, n, PER_FILE):
        with open(os.path.join(out_dir, "gen-%04d.yml" % (f // PER_FILE)), "w") as fh:
            fh.write("---\n".join(g.rule(i) for i in range(f, min(n, f + PER_FILE))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int)
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=gen_rules.DEFAULT_SEED)
    ap.add_argument("--data", default=os.path.join("/work/shared", "data", "cloudtrail", "recorded.jsonl.gz"))
    a = ap.parse_args()
    write(a.n, a.out_dir, a.seed, a.data)


if __name__ == "__main__":
    main()
