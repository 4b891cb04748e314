"""End-to-end: native enrichment (a rule's `enrich:`) against moto_server with IAM checks on, and the
tutorial's SSM monitor both ways: examples/ssm-parameter-store/trailwatch.yml (native) and its
serverless.yml + handler.py (Python, boto3) in the same server, which must post the same Slack text.

Credentials reach trailwatch only through a profile with credential_process that trailwatch.yml
names (aws.profile), and the SSM endpoint only through aws.endpoints: the Python handler has neither in
its own environment, so its lookup works only if trailwatch hands its AWS settings to handlers.
Parameters are created and changed with the AWS CLI. Failures: an unreachable endpoint and a slow
one mark the alert with the reason and never drop or hold it; a burst of events costs one API call
per distinct parameter per cache period (counted at a fake SSM endpoint that records every call).
"""
import json
import os
import stat
import time
import unittest

import twaws
import twserve
import twtest

EXAMPLE = os.path.join(twtest.ROOT, "examples", "ssm-parameter-store")


def setUpModule():
    global MOTO, KEY, SECRET, HOME
    if not twaws.moto_available():
        raise unittest.SkipTest("moto_server not installed")
    # IAM checks on after 3 unauthenticated calls: the user, its key, its policy.
    MOTO = twaws.Moto(env={"INITIAL_NO_AUTH_ACTION_COUNT": "3"})
    iam = MOTO.client("iam")
    iam.create_user(UserName="monitor")
    k = iam.create_access_key(UserName="monitor")["AccessKey"]
    KEY, SECRET = k["AccessKeyId"], k["SecretAccessKey"]
    iam.put_user_policy(UserName="monitor", PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    HOME = twtest.tmpdir()
    # the only place the keys are: a credential_process of profile "tw"
    script = os.path.join(HOME, "creds.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\nprintf '%%s' '{\"Version\":1,\"AccessKeyId\":\"%s\",\"SecretAccessKey\":\"%s\"}'\n"
                % (KEY, SECRET))
    os.chmod(script, stat.S_IRWXU)
    with open(os.path.join(HOME, "config"), "w") as f:
        f.write("[profile tw]\nregion = us-east-1\ncredential_process = %s\n" % script)


def tearDownModule():
    MOTO.stop()


def cli(*args):
    env = twserve.aws_env(KEY, SECRET)
    import subprocess
    cmd = twserve.aws_cli_v1_cmd() + list(args) + ["--endpoint-url", MOTO.url, "--output", "json"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout) if p.stdout.strip() else None


def server_env():
    return {"AWS_CONFIG_FILE": os.path.join(HOME, "config"),
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(HOME, "none"), "AWS_EC2_METADATA_DISABLED": "true"}


def change_event(name, operation="Update", description=None):
    d = {"operation": operation, "name": name, "type": "String"}
    if description:
        d["description"] = description
    return {"Source": "aws.ssm", "DetailType": "Parameter Store Change", "Detail": json.dumps(d),
            "Resources": ["arn:aws:ssm:us-east-1:123456789012:parameter" + name]}


def example_config(ssm_url, extra=""):
    with open(os.path.join(EXAMPLE, "trailwatch.yml")) as f:
        text = f.read()
    return text + "\ndata_dir: var\naws:\n  profile: tw\n  endpoints: {ssm: \"%s\"}\n%s" % (ssm_url, extra)


class SsmMonitor(unittest.TestCase):
    def test_native_and_python_post_the_same_message(self):
        name = "/app/db-%d" % os.getpid()
        cli("ssm", "put-parameter", "--name", name, "--value", "v1", "--type", "String")
        cli("ssm", "put-parameter", "--name", name, "--value", "v2", "--type", "String", "--overwrite")
        info = cli("ssm", "describe-parameters", "--filters", "Key=Name,Values=" + name)["Parameters"][0]
        self.assertEqual(info["Version"], 2)
        with twserve.Receiver() as slack:
            extra = ("serverless:\n  - path: %s\n    environment: {SLACK_URL: \"%s\"}\n"
                     % (os.path.join(EXAMPLE, "serverless.yml"), slack.url("/python")))
            env = server_env()
            env["SLACK_WEBHOOK_URL"] = slack.url("/native")
            srv = twserve.Server(self, example_config(MOTO.url, extra), env=env)
            srv.start()
            st, _, body = srv.api("PutEvents", {"Entries": [change_event(name, description="the db")]})
            self.assertEqual(st, 200, body)
            slack.wait_for(1, path="/native", timeout=30)
            slack.wait_for(1, path="/python", timeout=60)
            native = slack.requests("/native")[0].json()["text"]
            python = slack.requests("/python")[0].json()["text"]
            self.assertIn("Changed by: %s" % info["LastModifiedUser"], native)
            self.assertIn("Version: 2", native)
            self.assertNotIn("failed", native)
            self.assertEqual(native, python)
            srv.stop()

    def test_unreachable_and_slow_endpoints_mark_the_alert(self):
        name = "/app/x"
        with twserve.Receiver() as slack, twserve.Receiver() as ssm:
            ssm.set_default("/", twserve.Response(200, b'{"Parameters":[]}', delay=15))
            for url, why in ((ssm.url("/"), "timed out"), ("http://127.0.0.1:%d" % twserve.free_port(),
                                                           "cannot reach")):
                slack.clear()
                env = server_env()
                env["SLACK_WEBHOOK_URL"] = slack.url("/native")
                srv = twserve.Server(self, example_config(url), env=env)
                srv.start()
                t0 = time.time()
                st, _, body = srv.api("PutEvents", {"Entries": [change_event(name)]})
                self.assertEqual(st, 200, body)
                self.assertLess(time.time() - t0, 8, "PutEvents waited on a failing enrichment for too long")
                slack.wait_for(1, path="/native", timeout=30)
                text = slack.requests("/native")[0].json()["text"]
                self.assertIn("Changed by: unknown", text)
                self.assertIn("(DescribeParameters failed: ", text)
                self.assertIn(why, text)
                self.assertNotIn(SECRET, srv.stderr())
                srv.stop()

    def test_one_call_per_parameter_per_cache_period(self):
        answer = {"Parameters": [{"Name": "/p", "Version": 7, "LastModifiedUser": "arn:aws:iam::1:user/alice"}]}
        with twserve.Receiver() as slack, twserve.Receiver() as ssm:
            ssm.set_default("/", twserve.Response(200, json.dumps(answer).encode()))
            env = server_env()
            env["SLACK_WEBHOOK_URL"] = slack.url("/native")
            cfg = example_config(ssm.url("/")).replace("cache: 10s", "cache: 60s")
            srv = twserve.Server(self, cfg, env=env)
            srv.start()
            names = ["/p", "/q"]
            for i in range(3):
                entries = [change_event(names[j % 2]) for j in range(10)]
                st, _, body = srv.api("PutEvents", {"Entries": entries})
                self.assertEqual(st, 200, body)
            twserve.wait_until(lambda: srv.metric("trailwatch_rule_matches_total", rule="ssm-parameter-changed") >= 30,
                               timeout=30)
            self.assertEqual(len(ssm.requests("/")), 2)
            self.assertEqual(srv.metric("trailwatch_enrich_calls_total"), 2)
            reqs = sorted(json.loads(r.body)["Filters"][0]["Values"][0] for r in ssm.requests("/"))
            self.assertEqual(reqs, names)
            for r in ssm.requests("/"):
                self.assertEqual(r.header("X-Amz-Target"), "AmazonSSM.DescribeParameters")
                self.assertIn("Credential=%s/" % KEY, r.header("Authorization"))
            srv.stop()


if __name__ == "__main__":
    unittest.main()
