"""Parameter Store changes to Slack: the `parameter` function of the cloudwatch-ssm service.

trailwatch (or Lambda) calls parameter(event, context) with an EventBridge "Parameter Store Change"
event. The event names the parameter and the operation but not who made the change, so the handler
asks SSM (DescribeParameters) for the parameter's LastModifiedUser and Version, then posts a plain
text message to the Slack incoming webhook in $SLACK_URL.

Standard library only, plus boto3 for SSM. AWS_ENDPOINT_URL_SSM or AWS_ENDPOINT_URL, when set, send
the SSM call elsewhere (a local moto_server in tests).
"""
import json
import os
import urllib.request

import boto3


def ssm_client():
    endpoint = os.environ.get("AWS_ENDPOINT_URL_SSM") or os.environ.get("AWS_ENDPOINT_URL")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    if endpoint:
        return boto3.client("ssm", region_name=region, endpoint_url=endpoint)
    return boto3.client("ssm", region_name=region)


def describe_parameter(name):
    """The parameter's metadata from DescribeParameters, {} when SSM no longer knows it."""
    resp = ssm_client().describe_parameters(Filters=[{"Key": "Name", "Values": [name]}])
    found = resp.get("Parameters") or []
    return found[0] if found else {}


def slack_escape(text):
    """Slack treats & < > as markup (<!channel>, <http://x|y>): event data must not ping or link."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def post_to_slack(text):
    body = json.dumps({"text": text}).encode("utf-8")
    req = urllib.request.Request(os.environ["SLACK_URL"], data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:   # an HTTP error raises: the alert is retried
        resp.read()
        return resp.status


def parameter(event, context):
    detail = event.get("detail") or {}
    name = detail.get("name", "(unnamed)")
    operation = detail.get("operation", "Change")
    try:
        info = describe_parameter(name)
        lookup_failed = None
    except Exception as e:  # no credentials, no network: still tell Slack, without the details
        info, lookup_failed = {}, type(e).__name__
    user = info.get("LastModifiedUser") or "unknown"
    version = info.get("Version")
    lines = ["Parameter Store: %s of *%s*" % (slack_escape(operation), slack_escape(name)),
             "Type: %s" % slack_escape(detail.get("type", "?")),
             "Changed by: %s" % slack_escape(user)]
    if version is not None:
        lines.append("Version: %s" % version)
    if detail.get("description"):
        lines.append("Description: %s" % slack_escape(detail["description"]))
    lines.append("Account %s, region %s, at %s" % (slack_escape(event.get("account", "?")),
                                                   slack_escape(event.get("region", "?")),
                                                   slack_escape(event.get("time", "?"))))
    if lookup_failed:
        lines.append("(DescribeParameters failed: %s)" % lookup_failed)
    text = "\n".join(lines)
    post_to_slack(text)
    return {"name": name, "operation": operation, "user": user, "version": version}
