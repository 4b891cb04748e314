#!/usr/bin/env python3
"""Realistic EventBridge rule sets for the matching benchmark, deterministic for a given seed.

The rules look like a security team's rule base over CloudTrail: most name real AWS API calls that
do not occur in the recorded data (so the matcher has to reject almost everything), a few are drawn
from (eventSource, eventName) pairs that do occur (so some rules fire). Kinds of rule:

  exact     source + detail-type + detail.eventSource + detail.eventName (1-4 names)
  prefix    detail.eventName {"prefix": verb}, usually with eventSource
  suffix    detail.eventName {"suffix": noun}, usually with eventSource
  notype    detail.userIdentity.type {"anything-but": ...} with an exact eventName
  cidr      detail.sourceIPAddress {"cidr": ...} (documentation and corporate-looking ranges)
  arn       detail.userIdentity.arn {"wildcard": "arn:aws:iam::*:role/Admin*"} and similar
  error     detail.errorCode {"exists": true|false} with eventSource + eventName

Service and operation names come from botocore's service models (real AWS API names; the CloudTrail
eventSource is "<endpointPrefix>.amazonaws.com"). Rule i depends only on the seed and rules 0..i-1,
so the 10-rule set is a prefix of the 1,000-rule set, which is a prefix of the 10,000-rule set.

    bench/gen_rules.py --count 1000 [--seed 1] [--events recorded.jsonl.gz] [--out rules.json]
"""
import argparse
import gzip
import json
import random
import re
import sys

DEFAULT_SEED = 20240601
DATA_EVERY = 20          # every 20th rule (5%) is built from a pair that occurs in the data

# Services a security team writes most of its rules for (botocore names), drawn half the time.
FOCUS = ["iam", "sts", "ec2", "s3", "kms", "cloudtrail", "guardduty", "organizations", "lambda", "rds",
         "secretsmanager", "ssm", "config", "logs", "cloudwatch", "sns", "sqs", "dynamodb", "ecr", "ecs",
         "eks", "route53", "elbv2", "cloudformation", "securityhub", "sso-admin", "events", "apigateway",
         "acm", "wafv2", "backup", "glue", "athena", "redshift", "elasticache", "efs", "codebuild",
         "cognito-idp", "account", "identitystore", "accessanalyzer"]

READ_VERBS = ("Describe", "List", "Get", "Search", "Lookup", "BatchGet", "Head", "Query", "Scan", "Check",
              "Preview", "Validate", "Test", "Estimate", "Simulate", "Select", "Filter")
DETAIL_TYPE = {"AwsApiCall": "AWS API Call via CloudTrail",
               "AwsConsoleSignIn": "AWS Console Sign In via CloudTrail",
               "AwsServiceEvent": "AWS Service Event via CloudTrail",
               "AwsConsoleAction": "AWS Console Action via CloudTrail",
               "AwsCloudTrailInsight": "AWS Insight via CloudTrail"}
API_CALL = DETAIL_TYPE["AwsApiCall"]
IDENTITY_TYPES = ["Root", "IAMUser", "AssumedRole", "FederatedUser", "AWSAccount", "AWSService",
                  "IdentityCenterUser", "Unknown"]
ROLE_WORDS = ["Admin", "Administrator", "OrganizationAccountAccessRole", "PowerUser", "BreakGlass",
              "Deploy", "Deployer", "CI", "GitHubActions", "Terraform", "ReadOnly", "SecurityAudit",
              "AWSReservedSSO_AdministratorAccess", "AWSReservedSSO_PowerUserAccess", "OpsAdmin",
              "Billing", "DataScience", "Support", "Incident", "Forensics", "Network", "DBA", "Jenkins",
              "Packer", "Ansible", "Vendor", "ThirdParty", "Audit", "Prod", "Staging"]
USER_WORDS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
              "mallory", "svc-", "ci-", "deploy", "backup", "monitoring", "contractor", "temp", "test"]
ERROR_CODES = ["AccessDenied", "Client.UnauthorizedOperation", "UnauthorizedOperation",
               "AccessDeniedException", "InvalidClientTokenId", "SignatureDoesNotMatch"]
DOC_RANGES = ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "2001:db8:1234::/48"]


def camel_words(name):
    return re.findall(r"[A-Z]+(?=[A-Z][a-z]|\d|$)|[A-Z]?[a-z]+|\d+", name) or [name]


def event_source_prefix(model):
    """What precedes ".amazonaws.com" in CloudTrail's eventSource for this service (usually)."""
    ep = model.endpoint_prefix
    if "." in ep or not ep:
        ep = model.metadata.get("signingName") or ep.split(".")[-1]
    return ep


def service_from_event_source(es):
    """EventBridge's service part of "source" for an eventSource (as trailwatch wraps records)."""
    suffix = ".amazonaws.com"
    if len(es) > len(suffix) and es.endswith(suffix):
        return es[:-len(suffix)]
    return es.split(".", 1)[0]


def load_catalog():
    """[(botocore name, eventSource prefix, [operations])], sorted for determinism."""
    import botocore.session
    s = botocore.session.get_session()
    cat = []
    for name in sorted(s.get_available_services()):
        m = s.get_service_model(name)
        ops = sorted(m.operation_names)
        if ops:
            cat.append((name, event_source_prefix(m), ops))
    return cat


def load_data_pairs(events_path):
    """Sorted distinct (eventSource, eventName, eventType) triples of the recorded data."""
    pairs = set()
    opener = gzip.open if events_path.endswith(".gz") else open
    with opener(events_path, "rt", encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            if "detail-type" in r:            # already an envelope
                r = r.get("detail") or {}
            es, en = r.get("eventSource"), r.get("eventName")
            if isinstance(es, str) and isinstance(en, str):
                pairs.add((es, en, r.get("eventType") if isinstance(r.get("eventType"), str) else ""))
    return sorted(pairs)


class Generator:
    def __init__(self, catalog, data_pairs, seed=DEFAULT_SEED):
        self.rng = random.Random(seed)
        self.catalog = catalog
        self.by_name = {c[0]: c for c in catalog}
        self.focus = [self.by_name[n] for n in FOCUS if n in self.by_name]
        self.data_pairs = data_pairs
        self.seen = set()

    # --- building blocks -------------------------------------------------------------------------
    def service(self):
        r = self.rng
        return r.choice(self.focus) if r.random() < 0.5 else r.choice(self.catalog)

    def ops(self, svc, k):
        """k distinct operations, mostly mutating ones (security rules watch changes)."""
        r = self.rng
        mut = [o for o in svc[2] if not o.startswith(READ_VERBS)]
        pool = mut if mut and r.random() < 0.8 else svc[2]
        return sorted(r.sample(pool, min(k, len(pool))))

    def head(self, es, dt=API_CALL, with_source=True, with_dt=True):
        p = {}
        if with_source:
            p["source"] = ["aws." + service_from_event_source(es)]
        if with_dt:
            p["detail-type"] = [dt]
        return p

    def account(self):
        return "".join(self.rng.choice("0123456789") for _ in range(12))

    def cidr(self):
        r = self.rng
        x = r.random()
        if x < 0.25:
            return r.choice(DOC_RANGES)
        if x < 0.45:
            return "10.%d.%d.0/%d" % (r.randrange(256), r.randrange(256), r.choice([16, 20, 24]))
        if x < 0.55:
            return "172.%d.%d.0/%d" % (r.randrange(16, 32), r.randrange(0, 256, 16), r.choice([20, 24]))
        if x < 0.65:
            return "192.168.%d.0/24" % r.randrange(256)
        if x < 0.85:   # a company's public egress range
            return "%d.%d.%d.%d/%d" % (r.choice([23, 31, 46, 62, 80, 85, 91, 104, 145, 151, 185, 193, 194,
                                                 195, 212, 213, 217]),
                                      r.randrange(256), r.randrange(256), r.randrange(0, 256, 32),
                                      r.choice([27, 28, 29]))
        return "2a0%d:%x:%x::/48" % (r.randrange(10), r.randrange(0x1000, 0xffff), r.randrange(0xffff))

    def arn_wildcard(self):
        r = self.rng
        role, user, acct = r.choice(ROLE_WORDS), r.choice(USER_WORDS), self.account()
        return r.choice([
            "arn:aws:iam::*:role/%s*" % role,
            "arn:aws:sts::*:assumed-role/%s*/*" % role,
            "arn:aws:sts::%s:assumed-role/%s/*" % (acct, role),
            "arn:aws:sts::*:assumed-role/*%s*" % role,
            "arn:aws:iam::%s:user/%s*" % (acct, user),
            "arn:aws:iam::*:user/*%s*" % user,
            "arn:aws:iam::%s:*" % acct,
        ])

    # --- rule kinds ---------------------------------------------------------------------------------
    def rule(self, kind, es, names, dt=API_CALL):
        """One pattern of the given kind around eventSource es and a list of eventNames."""
        r = self.rng
        if kind == "exact":
            p = self.head(es, dt, True, r.random() < 0.9)
            p["detail"] = {"eventSource": [es], "eventName": names}
        elif kind == "prefix":
            words = camel_words(names[0])
            pre = "".join(words[:2]) if len(words) > 2 and r.random() < 0.3 else words[0]
            if r.random() < 0.85:
                p = self.head(es, dt, r.random() < 0.7, r.random() < 0.5)
                p["detail"] = {"eventSource": [es], "eventName": [{"prefix": pre}]}
            else:
                p = {"detail": {"eventName": [{"prefix": pre}],
                                "userIdentity": {"type": [r.choice(IDENTITY_TYPES[:4])]}}}
        elif kind == "suffix":
            words = camel_words(names[0])
            suf = "".join(words[-2:]) if len(words) > 2 and r.random() < 0.4 else words[-1]
            if r.random() < 0.85:
                p = self.head(es, dt, r.random() < 0.7, r.random() < 0.5)
                p["detail"] = {"eventSource": [es], "eventName": [{"suffix": suf}]}
            else:
                p = {"detail-type": [dt], "detail": {"eventName": [{"suffix": suf}]}}
        elif kind == "notype":
            excl = r.choice([["AWSService"], ["AWSService", "AssumedRole"], "Root", ["IAMUser"],
                             ["AssumedRole", "AWSService", "AWSAccount"]])
            p = self.head(es, dt, r.random() < 0.8, r.random() < 0.5)
            d = {"eventName": names[:1], "userIdentity": {"type": [{"anything-but": excl}]}}
            if r.random() < 0.7:
                d["eventSource"] = [es]
            p["detail"] = d
        elif kind == "cidr":
            ranges = sorted({self.cidr() for _ in range(r.choice([1, 1, 1, 2, 3]))})
            x = r.random()
            if x < 0.3:
                p = {"detail-type": ["AWS Console Sign In via CloudTrail"],
                     "detail": {"sourceIPAddress": [{"cidr": c} for c in ranges]}}
            elif x < 0.8:
                p = self.head(es, dt, r.random() < 0.7, False)
                p["detail"] = {"eventSource": [es], "eventName": names,
                               "sourceIPAddress": [{"cidr": c} for c in ranges]}
            else:
                p = {"detail": {"sourceIPAddress": [{"cidr": c} for c in ranges]}}
        elif kind == "arn":
            wc = self.arn_wildcard()
            if r.random() < 0.6:
                p = self.head(es, dt, r.random() < 0.5, False)
                p["detail"] = {"eventSource": [es], "eventName": names,
                               "userIdentity": {"arn": [{"wildcard": wc}]}}
            else:
                p = {"detail": {"userIdentity": {"arn": [{"wildcard": wc}]}}}
        elif kind == "error":
            p = self.head(es, dt, r.random() < 0.7, r.random() < 0.5)
            x = r.random()
            err = ([{"exists": True}] if x < 0.75 else [{"exists": False}] if x < 0.9
                   else sorted(r.sample(ERROR_CODES, 2)))
            p["detail"] = {"eventSource": [es], "eventName": names, "errorCode": err}
        else:
            raise ValueError(kind)
        return p

    KINDS = [("exact", 35), ("prefix", 15), ("suffix", 8), ("notype", 12), ("cidr", 10), ("arn", 10),
             ("error", 10)]

    def kind(self):
        total = sum(w for _, w in self.KINDS)
        x = self.rng.uniform(0, total)
        for k, w in self.KINDS:
            x -= w
            if x <= 0:
                return k
        return self.KINDS[-1][0]

    def one(self, i):
        r = self.rng
        while True:
            kind = self.kind()
            if i % DATA_EVERY == 0 and self.data_pairs:
                es, en, et = r.choice(self.data_pairs)
                pat = self.rule(kind, es, [en], DETAIL_TYPE.get(et, API_CALL))
                label = "data-" + kind
            else:
                svc = self.service()
                es = svc[1] + ".amazonaws.com"
                k = r.choice([1, 1, 2, 2, 3, 4]) if kind == "exact" else r.choice([1, 1, 1, 2])
                pat = self.rule(kind, es, self.ops(svc, k))
                label = kind
            key = json.dumps(pat, sort_keys=True)
            if key not in self.seen:
                self.seen.add(key)
                es = pat["detail"].get("eventSource")
                return "%05d-%s-%s" % (i, label, service_from_event_source(es[0]) if es else "any"), pat

    def generate(self, n):
        return dict(self.one(i) for i in range(n))


def dumps_rules(rules):
    """Compact JSON, one rule per line."""
    lines = ["%s:%s" % (json.dumps(k), json.dumps(v, separators=(",", ":"))) for k, v in rules.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, required=True, help="number of rules")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--events", help="CloudTrail records (JSON lines, .gz ok) to draw matching rules from")
    ap.add_argument("--out", help="output file (default stdout)")
    a = ap.parse_args(argv)
    pairs = load_data_pairs(a.events) if a.events else []
    rules = Generator(load_catalog(), pairs, a.seed).generate(a.count)
    text = dumps_rules(rules)
    if a.out:
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
