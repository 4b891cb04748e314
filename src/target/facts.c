/* target/facts.c: who did what to which resource, read from an EventBridge event.
 *
 * CloudTrail records ("AWS API Call via CloudTrail" and friends) name the caller in userIdentity,
 * whose useful field depends on its type, and the resource in requestParameters under a
 * service-specific name; other events carry their facts as top-level detail members. */
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "json/json_int.h"
#include "target/facts.h"

static const char *str(const tw_json *obj, const char *key)
{
    const tw_json *v = tw_json_get(obj, key);
    const char *s = tw_json_typeof(v) == TW_JSON_STRING ? tw_json_string(v, NULL) : NULL;
    return s && *s ? s : NULL;
}

static const char *cat(tw_facts *f, const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *s = tw__arena_alloc(&f->arena, la + lb + lc + 1);
    f->failed |= !s;
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb);
        memcpy(s + la + lb, c, lc + 1);
    }
    return s;
}

/* The caller, by userIdentity.type (CloudTrail user identity element). */
static const char *caller(tw_facts *f, const tw_json *ui)
{
    const char *type = str(ui, "type"), *arn = str(ui, "arn"), *pid = str(ui, "principalId");
    if (type && strcmp(type, "Root") == 0) {
        const char *acct = str(ui, "accountId") ? str(ui, "accountId") : f->account;
        return cat(f, "root user of ", acct ? acct : "the account", "");
    }
    if (type && strcmp(type, "AssumedRole") == 0) {
        /* arn:aws:sts::123456789012:assumed-role/ROLE/SESSION: the session names the person. */
        const tw_json *issuer = tw_json_get(tw_json_get(ui, "sessionContext"), "sessionIssuer");
        const char *role = str(issuer, "userName");
        const char *slash = arn ? strrchr(arn, '/') : NULL;
        const char *session = slash && slash[1] ? slash + 1 : NULL;
        if (role && session)
            return cat(f, role, "/", session);
        return role ? role : arn ? arn : pid;
    }
    if (type && strcmp(type, "AWSService") == 0)
        return str(ui, "invokedBy") ? str(ui, "invokedBy") : "an AWS service";
    if (type && strcmp(type, "IAMUser") == 0 && str(ui, "userName"))
        return str(ui, "userName");
    /* FederatedUser, IdentityCenterUser, AWSAccount, SAMLUser, WebIdentityUser, Unknown... */
    if (str(ui, "userName"))
        return str(ui, "userName");
    return arn ? arn : pid ? pid : str(ui, "invokedBy");
}

/* requestParameters members that name the resource acted on, most specific first ("instancesSet" stands
 * for instancesSet.items[].instanceId). */
static const char *const resource_keys[] = {
    "tableName", "bucketName", "instanceId", "instancesSet", "groupId", "groupName", "userName", "roleName",
    "policyArn", "functionName", "keyId", "trailName", "dbInstanceIdentifier", "dbClusterIdentifier", "clusterName",
    "repositoryName", "topicArn", "queueUrl", "stackName", "secretId", "logGroupName", "vpcId", "subnetId",
    "volumeId", "snapshotId", "imageId", "certificateArn", "hostedZoneId", "resourceArn", "name", NULL,
};

/* "i-1, i-2, i-3 (+2 more)" from a list of names. */
static const char *join(tw_facts *f, const char **names, size_t n, size_t total)
{
    tw_buf b = TW_BUF_INIT;
    for (size_t i = 0; i < n; i++)
        tw__buf_printf(&b, "%s%s", i ? ", " : "", names[i]);
    if (total > n)
        tw__buf_printf(&b, " (+%zu more)", total - n);
    const char *s = b.data && !tw_buf_error(&b) ? tw__arena_strndup(&f->arena, b.data, b.len) : NULL;
    f->failed |= !s;
    tw__buf_free(&b);
    return s;
}

static const char *resource(tw_facts *f, const tw_json *detail)
{
    const tw_json *rp = tw_json_get(detail, "requestParameters");
    const char *names[3];
    size_t n = 0, total = 0;
    for (int i = 0; resource_keys[i]; i++) {
        if (strcmp(resource_keys[i], "instancesSet") == 0) {
            /* EC2 instance calls list their instances: instancesSet.items[].instanceId */
            const tw_json *items = tw_json_get(tw_json_get(rp, "instancesSet"), "items");
            for (size_t j = 0; j < tw_json_size(items) && tw_json_typeof(items) == TW_JSON_ARRAY; j++) {
                const char *id = str(tw_json_at(items, j), "instanceId");
                if (id && total++ < 3)
                    names[n++] = id;
            }
            if (n)
                return join(f, names, n, total);
            continue;
        }
        if (str(rp, resource_keys[i]))
            return str(rp, resource_keys[i]);
    }
    const tw_json *res = tw_json_get(detail, "resources");          /* CloudTrail's own resources[] */
    for (size_t j = 0; j < tw_json_size(res) && tw_json_typeof(res) == TW_JSON_ARRAY; j++) {
        const char *arn = str(tw_json_at(res, j), "ARN");
        if (arn && total++ < 3)
            names[n++] = arn;
    }
    return n ? join(f, names, n, total) : NULL;
}

/* A parameter's value as shown: scalars as text, short objects and lists as compact JSON. */
static const char *param_value(tw_facts *f, const tw_json *v, int scalars_only)
{
    tw_json_type t = tw_json_typeof(v);
    if (t == TW_JSON_NULL || (scalars_only && (t == TW_JSON_ARRAY || t == TW_JSON_OBJECT)))
        return NULL;
    tw_buf b = TW_BUF_INIT;
    if (t == TW_JSON_STRING) {
        size_t n;
        const char *s = tw_json_string(v, &n);
        tw__buf_append(&b, s, n);
    } else {
        tw__json_write(&b, v);
        if ((t == TW_JSON_ARRAY || t == TW_JSON_OBJECT) && b.len > TW_FACTS_VALUE_MAX && !tw_buf_error(&b)) {
            tw__buf_free(&b);
            return NULL;                       /* not short: the resource line and the event have it */
        }
    }
    const char *s = NULL;
    if (tw_buf_error(&b)) {
        f->failed = 1;
    } else if (b.data) {
        size_t keep = b.len;
        if (keep > TW_FACTS_VALUE_MAX) {       /* cut on a character boundary, mark the cut */
            keep = TW_FACTS_VALUE_MAX - 3;
            while (keep > 0 && ((unsigned char)b.data[keep] & 0xc0) == 0x80)
                keep--;
            b.len = keep;
            tw__buf_append(&b, "\xe2\x80\xa6", 3);
        }
        s = tw_buf_error(&b) ? NULL : tw__arena_strndup(&f->arena, b.data, b.len);
        f->failed |= !s;
    } else if (t == TW_JSON_STRING) {
        s = "";
    }
    tw__buf_free(&b);
    return s;
}

static void params(tw_facts *f, const tw_json *obj, int scalars_only)
{
    for (size_t i = 0; i < tw_json_size(obj) && f->nparams < TW_FACTS_PARAMS; i++) {
        const char *v = param_value(f, tw_json_at(obj, i), scalars_only);
        if (v && *v)
            f->params[f->nparams++] = (tw_kv){tw_json_key(obj, i, NULL), v};
    }
}

tw_status tw__facts_extract(const tw_json *event, tw_facts *f)
{
    memset(f, 0, sizeof *f);
    const tw_json *detail = tw_json_get(event, "detail");
    f->event_id = str(event, "id");
    f->detail_type = str(event, "detail-type");
    f->source = str(event, "source");
    f->account = str(event, "account") ? str(event, "account") : str(detail, "recipientAccountId");
    f->region = str(detail, "awsRegion") ? str(detail, "awsRegion") : str(event, "region");
    f->when = str(detail, "eventTime") ? str(detail, "eventTime") : str(event, "time");
    f->cloudtrail = str(detail, "eventName") && str(detail, "eventSource");
    if (f->cloudtrail) {
        const tw_json *ui = tw_json_get(detail, "userIdentity");
        f->what = str(detail, "eventName");
        f->service = str(detail, "eventSource");
        f->who = caller(f, ui);
        f->who_type = str(ui, "type");
        f->source_ip = str(detail, "sourceIPAddress");
        f->resource = resource(f, detail);
        const char *code = str(detail, "errorCode"), *msg = str(detail, "errorMessage");
        if (code || msg)
            f->error = cat(f, code ? code : "error", msg ? ": " : "", msg ? msg : "");
        params(f, tw_json_get(detail, "requestParameters"), 0);
    } else {
        f->what = f->detail_type;
        f->service = f->source;
        params(f, detail, 1);
    }
    const tw_json *res = tw_json_get(event, "resources");
    if (!f->cloudtrail && tw_json_typeof(res) == TW_JSON_ARRAY) {
        for (size_t i = 0; i < tw_json_size(res); i++) {
            const tw_json *r = tw_json_at(res, i);
            if (tw_json_typeof(r) != TW_JSON_STRING)
                continue;
            if (f->nresources < TW_FACTS_RESOURCES)
                f->resources[f->nresources++] = tw_json_string(r, NULL);
            f->resources_total++;
        }
        if (f->nresources)
            f->resource = join(f, f->resources, f->nresources > 3 ? 3 : f->nresources, f->resources_total);
    }
    return f->failed ? TW_ENOMEM : TW_OK;
}

void tw__facts_free(tw_facts *f) { tw__arena_free(&f->arena); }

tw_status tw__facts_summary(const tw_facts *f, tw_buf *b)
{
    tw_status rc = tw__buf_puts(b, f->what ? f->what : "event");
    if (!rc && f->cloudtrail)
        rc = tw__buf_printf(b, " by %s", f->who ? f->who : "an unknown caller");
    if (!rc && f->resource)
        rc = tw__buf_printf(b, " on %s", f->resource);
    return rc;
}

size_t tw__facts_list(const tw_facts *f, tw_kv *out, size_t max)
{
    tw_kv all[TW_FACTS_LIST_MAX];
    size_t n = 0;
    if (f->cloudtrail)
        all[n++] = (tw_kv){"Who", f->who ? f->who : "unknown caller"};
    all[n++] = (tw_kv){f->cloudtrail ? "Action" : "Event", f->what};
    all[n++] = (tw_kv){f->cloudtrail ? "Service" : "Source", f->service};
    all[n++] = (tw_kv){f->cloudtrail ? "Resource" : "Resources", f->resource};
    all[n++] = (tw_kv){"Region", f->region};
    all[n++] = (tw_kv){"Account", f->account};
    all[n++] = (tw_kv){"Source IP", f->source_ip};
    all[n++] = (tw_kv){"Time", f->when};
    all[n++] = (tw_kv){"Error", f->error};
    for (size_t i = 0; i < f->nparams; i++)
        all[n++] = f->params[i];
    size_t k = 0;
    for (size_t i = 0; i < n && k < max; i++)
        if (all[i].value && *all[i].value)
            out[k++] = all[i];
    return k;
}
