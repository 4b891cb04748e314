"""End-to-end: credentials from a role_arn profile (STS AssumeRole), against moto_server with IAM checks.

The only keys on disk belong to user "reader", whose policy allows sts:AssumeRole and nothing else;
role "trail-reader" may call SSM. The tutorial's Parameter Store monitor (its DescribeParameters
enrichment), run with profile "watch" (role_arn + source_profile), must say who changed the
parameter: it can only learn that with the role's temporary credentials. With profile "base" (the
reader's own keys) the enrichment is refused, which shows the check is real. (SSM, not S3: moto 5's
IAM mode rejects every signed ListObjectsV2 with a delimiter, boto3's included.) Bad role profiles
give clear errors at start, naming the profile and never a key.
"""
import json
import os
import unittest

import twaws
import twserve
import twtest


EXAMPLE = os.path.join(twtest.ROOT, "examples", "ssm-parameter-store")
PARAM = "/app/db-url"


def setUpModule():
    global MOTO, KEY, SECRET, INFO
    if not twaws.moto_available():
        raise unittest.SkipTest("moto_server not installed")
    # IAM checks on after 3 unauthenticated calls: an admin user, its key, its policy.
    MOTO = twaws.Moto(env={"INITIAL_NO_AUTH_ACTION_COUNT": "3"})
    iam = MOTO.client("iam")
    iam.create_user(UserName="admin")
    ak = iam.create_access_key(UserName="admin")["AccessKey"]
    iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    import boto3
    admin = dict(endpoint_url=MOTO.url, region_name=twaws.REGION, aws_access_key_id=ak["AccessKeyId"],
                 aws_secret_access_key=ak["SecretAccessKey"])
    iam = boto3.client("iam", **admin)
    iam.create_user(UserName="reader")
    k = iam.create_access_key(UserName="reader")["AccessKey"]
    KEY, SECRET = k["AccessKeyId"], k["SecretAccessKey"]
    iam.put_user_policy(UserName="reader", PolicyName="assume-only", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}))
    iam.create_role(RoleName="trail-reader", AssumeRolePolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                 "Principal": {"AWS": "arn:aws:iam::123456789012:user/reader"}}]}))
    iam.put_role_policy(RoleName="trail-reader", PolicyName="read-ssm", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ssm:*", "Resource": "*"}]}))
    ssm = boto3.client("ssm", **admin)
    ssm.put_parameter(Name=PARAM, Value="v1", Type="String")
    ssm.put_parameter(Name=PARAM, Value="v2", Type="String", Overwrite=True)
    INFO = ssm.describe_parameters(Filters=[{"Key": "Name", "Values": [PARAM]}])["Parameters"][0]


def tearDownModule():
    MOTO.stop()


def write_files(dir, config_text):
    cfg = os.path.join(dir, "aws-config")
    creds = os.path.join(dir, "aws-credentials")
    with open(cfg, "w") as f:
        f.write(config_text)
    with open(creds, "w") as f:
        f.write("[base]\naws_access_key_id = %s\naws_secret_access_key = %s\n" % (KEY, SECRET))
    return {"AWS_CONFIG_FILE": cfg, "AWS_SHARED_CREDENTIALS_FILE": creds, "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_REGION": twaws.REGION}


ROLE_PROFILE = """[profile base]
region = us-east-1
[profile watch]
role_arn = arn:aws:iam::123456789012:role/trail-reader
source_profile = base
role_session_name = trailwatch-test
"""


def config(profile, slack_url="http://127.0.0.1:9/"):
    with open(os.path.join(EXAMPLE, "trailwatch.yml")) as f:
        text = f.read()
    return (text.replace("${SLACK_WEBHOOK_URL}", slack_url) +
            "\ndata_dir: var\naws:\n  profile: %s\n  endpoint_url: \"%s\"\n  max_attempts: 1\n" % (profile, MOTO.url))


def change_event():
    d = {"operation": "Update", "name": PARAM, "type": "String"}
    return {"Source": "aws.ssm", "DetailType": "Parameter Store Change", "Detail": json.dumps(d),
            "Resources": ["arn:aws:ssm:us-east-1:123456789012:parameter" + PARAM]}


class AssumeRole(unittest.TestCase):
    def slack_text(self, profile, profile_text=ROLE_PROFILE):
        with twserve.Receiver() as slack:
            srv = twserve.Server(self, config(profile, slack.url("/slack")),
                                 env=write_files(twtest.tmpdir(), profile_text))
            srv.start()
            st, _, body = srv.api("PutEvents", {"Entries": [change_event()]})
            self.assertEqual(st, 200, body)
            slack.wait_for(1, path="/slack", timeout=60)
            self.assertNotIn(SECRET, srv.stderr())
            srv.stop()
            return slack.requests("/slack")[0].json()["text"]

    def test_role_profile_enriches_with_the_roles_credentials(self):
        text = self.slack_text("watch")
        self.assertIn("Changed by: %s" % INFO["LastModifiedUser"], text)
        self.assertIn("Version: 2", text)
        self.assertNotIn("failed", text)

    def test_source_keys_alone_are_refused(self):
        # the control: the reader's own keys may not call SSM, so the test above proves the role was assumed
        text = self.slack_text("base")
        self.assertIn("Changed by: unknown", text)
        self.assertIn("(DescribeParameters failed: ", text)
        self.assertRegex(text, "AccessDenied|not authorized")

    def start_error(self, profile, profile_text):
        """The reason serve gives for unusable AWS settings (it goes on without enrichment)."""
        srv = twserve.Server(self, config(profile), env=write_files(twtest.tmpdir(), profile_text))
        srv.start()
        line = srv.wait_log("AWS settings unusable: enrichments fail, handlers get no AWS settings", timeout=30)
        self.assertNotIn(SECRET, srv.stderr())
        srv.stop()
        return line["error"]

    def test_role_that_cannot_be_assumed_is_a_clear_error(self):
        why = self.start_error("watch", ROLE_PROFILE.replace("source_profile = base", "source_profile = nobody"))
        self.assertIn('AWS profile "watch": its source', why)
        self.assertIn('"nobody"', why)

    def test_bad_role_profiles_are_refused_with_the_reason(self):
        cases = [
            ("mfa_serial = arn:aws:iam::123456789012:mfa/me\n", "mfa_serial"),
            ("credential_source = Environment\n", "exactly one of source_profile and credential_source"),
            ("duration_seconds = 60\n", "duration_seconds must be 900 to 43200"),
        ]
        for extra, want in cases:
            why = self.start_error("watch", ROLE_PROFILE + extra)
            self.assertIn('AWS profile "watch"', why, extra)
            self.assertIn(want, why, extra)

    def test_source_profile_loop_is_refused(self):
        why = self.start_error("a", "[profile a]\nrole_arn = arn:aws:iam::123456789012:role/x\nsource_profile = b\n"
                                    "[profile b]\nrole_arn = arn:aws:iam::123456789012:role/y\nsource_profile = a\n")
        self.assertIn("source_profile loop", why)


if __name__ == "__main__":
    unittest.main()
