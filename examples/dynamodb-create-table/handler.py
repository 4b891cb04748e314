"""New DynamoDB tables to Slack: the `createTable` function of the cloudtrail-dynamodb service.

trailwatch (or Lambda) calls create_table(event, context) with the "AWS API Call via CloudTrail"
event of a CreateTable call. The handler posts a plain text message to the Slack incoming webhook in
$SLACK_URL: the table, its region, who created it, and what its provisioned capacity costs a month.

Cost: us-east-1 provisioned-capacity prices, $0.00013 per RCU-hour and $0.00065 per WCU-hour, over
730 hours a month, for the table and each of its global secondary indexes; PAY_PER_REQUEST tables
are billed per request (on-demand) instead. Storage and the free tier are left out.
"""
import json
import os
import urllib.request

HOURS_PER_MONTH = 730
RCU_HOUR = 0.00013
WCU_HOUR = 0.00065


def capacity(request):
    """Read and write capacity units of the table plus its global secondary indexes."""
    rcu = wcu = 0
    throughputs = [request.get("provisionedThroughput") or {}]
    for index in request.get("globalSecondaryIndexes") or []:
        throughputs.append(index.get("provisionedThroughput") or {})
    for t in throughputs:
        rcu += int(t.get("readCapacityUnits") or 0)
        wcu += int(t.get("writeCapacityUnits") or 0)
    return rcu, wcu


def monthly_cost(request):
    """Dollars a month for the provisioned capacity, or None for an on-demand table."""
    if request.get("billingMode") == "PAY_PER_REQUEST":
        return None
    rcu, wcu = capacity(request)
    return HOURS_PER_MONTH * (RCU_HOUR * rcu + WCU_HOUR * wcu)


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


def create_table(event, context):
    detail = event.get("detail") or {}
    request = detail.get("requestParameters") or {}
    identity = detail.get("userIdentity") or {}
    table = request.get("tableName", "(unknown)")
    region = detail.get("awsRegion") or event.get("region", "?")
    user = identity.get("userName") or identity.get("arn") or identity.get("principalId") or "unknown"
    user_type = identity.get("type", "unknown")
    cost = monthly_cost(request)
    if cost is None:
        price = "on-demand (billed per request)"
    else:
        rcu, wcu = capacity(request)
        price = "$%.2f a month for %d RCU and %d WCU (us-east-1 prices)" % (cost, rcu, wcu)
    text = "\n".join([
        "DynamoDB table created: *%s*" % slack_escape(table),
        "Region: %s" % slack_escape(region),
        "Created by: %s (%s)" % (slack_escape(user), slack_escape(user_type)),
        "Capacity: %s" % price,
    ])
    post_to_slack(text)
    return {"table": table, "region": region, "user": user, "user_type": user_type,
            "monthly_cost": None if cost is None else round(cost, 2)}
