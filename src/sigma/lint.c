/* sigma/lint.c: likely mistakes in rules that load fine: fields CloudTrail never writes, a value that
 * names a field (a missing |fieldref), values whose case differs from CloudTrail's, strings compared
 * with JSON booleans, a 'Success' errorCode, placeholders without |expand. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sigma/sigma_int.h"

/* Top-level keys of CloudTrail records (the CloudTrail record contents reference, 2025). */
static const char *const record_fields[] = {
    "eventVersion", "userIdentity", "eventTime", "eventSource", "eventName", "awsRegion", "sourceIPAddress",
    "userAgent", "errorCode", "errorMessage", "requestParameters", "responseElements", "additionalEventData",
    "requestID", "eventID", "readOnly", "resources", "eventType", "apiVersion", "managementEvent",
    "recipientAccountId", "serviceEventDetails", "sharedEventID", "vpcEndpointId", "vpcEndpointAccountId",
    "eventCategory", "addendum", "sessionCredentialFromConsole", "edgeDeviceDetails", "tlsDetails",
    "insightDetails", NULL};

static const char *const identity_fields[] = {
    "type", "principalId", "arn", "accountId", "accessKeyId", "userName", "sessionContext", "invokedBy",
    "identityProvider", "credentialId", "onBehalfOf", "inScopeOf", NULL};

/* Values CloudTrail writes with a fixed spelling. */
static const struct { const char *field; const char *const values[12]; } spellings[] = {
    {"additionalEventData.MFAUsed", {"Yes", "No", NULL}},
    {"responseElements.ConsoleLogin", {"Success", "Failure", NULL}},
    {"userIdentity.type", {"Root", "IAMUser", "AssumedRole", "Role", "FederatedUser", "AWSAccount", "AWSService",
                           "IdentityCenterUser", "Directory", "SAMLUser", "WebIdentityUser", "Unknown"}},
    {"userIdentity.sessionContext.sessionIssuer.type", {"Root", "IAMUser", "Role", NULL}},
    {"eventType", {"AwsApiCall", "AwsServiceEvent", "AwsConsoleAction", "AwsConsoleSignIn", "AwsCloudTrailInsight",
                   "AwsVpceEvent", NULL}},
    {"eventCategory", {"Management", "Data", "Insight", "NetworkActivity", NULL}},
};

typedef struct linter {
    const sg_rule *r;
    tw_report_fn report;
    void *ctx;
    size_t n;
} linter;

static void warn(linter *l, const tw_json *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void warn(linter *l, const tw_json *at, const char *fmt, ...)
{
    char why[600], msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    snprintf(msg, sizeof msg, "%s:%u: rule \"%.120s\": warning: %s", l->r->info.file,
             at && tw_json_line(at) ? tw_json_line(at) : l->r->info.line, l->r->info.title, why);
    l->n++;
    if (l->report)
        l->report(l->ctx, msg);
}

static int in_list(const char *const *list, const char *s, size_t n)
{
    for (; *list; list++)
        if (strlen(*list) == n && strncmp(*list, s, n) == 0)
            return 1;
    return 0;
}

/* 0 when the field's path cannot be in a CloudTrail record. */
static int known_field(const char *f)
{
    const char *dot = strchr(f, '.');
    size_t n = dot ? (size_t)(dot - f) : strlen(f);
    if (!in_list(record_fields, f, n))
        return 0;
    if (dot && n == 12 && strncmp(f, "userIdentity", 12) == 0) {
        const char *d2 = strchr(dot + 1, '.');
        return in_list(identity_fields, dot + 1, d2 ? (size_t)(d2 - dot - 1) : strlen(dot + 1));
    }
    return 1;
}

/* A value that reads as a dotted field path of a record (responseElements.accessKey.userName). */
static int looks_like_field(const char *v)
{
    const char *dot = strchr(v, '.');
    if (!dot || !known_field(v) || strchr(v, ' ') || strchr(v, '*'))
        return 0;
    for (const char *p = v; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_')
            return 0;
    return strncmp(v, "eventSource", 11) != 0 && dot[1] != '\0';
}

static void lint_value(linter *l, const char *field, const char *mods, const tw_json *v)
{
    int cased = strstr(mods, "|cased") != NULL, ref = strstr(mods, "|fieldref") != NULL;
    int re = strstr(mods, "|re") != NULL, expand = strstr(mods, "|expand") != NULL;
    if (tw_json_typeof(v) != TW_JSON_STRING)
        return;
    const char *s = tw_json_string(v, NULL);
    if (!ref && !re && looks_like_field(s))
        warn(l, v, "%s%s: the value '%s' names a record field, but without |fieldref it is compared as text "
             "(and never matches): add |fieldref to compare with that field", field, mods, s);
    if (!expand && !re) {
        const char *p = strchr(s, '%');
        const char *q = p ? strchr(p + 1, '%') : NULL;
        if (q && q > p + 1) {
            int word = 1;
            for (const char *x = p + 1; x < q; x++)
                word &= isalnum((unsigned char)*x) || *x == '_';
            if (word)
                warn(l, v, "%s: '%.*s' looks like a placeholder, but without |expand it is literal text", field,
                     (int)(q - p + 1), p);
        }
    }
    if (ref || re)
        return;
    for (size_t i = 0; i < sizeof spellings / sizeof spellings[0]; i++) {
        if (strcmp(field, spellings[i].field) != 0)
            continue;
        const char *exact = NULL, *folded = NULL;
        for (size_t k = 0; k < 12 && spellings[i].values[k]; k++) {
            if (strcmp(spellings[i].values[k], s) == 0)
                exact = s;
            else if (strcasecmp(spellings[i].values[k], s) == 0)
                folded = spellings[i].values[k];
        }
        if (!exact && folded)
            warn(l, v, "%s: CloudTrail writes '%s', not '%s'%s", field, folded, s,
                 cased ? ": with |cased this never matches"
                       : "; it matches only because Sigma compares case-insensitively (a case-sensitive backend "
                         "would miss it)");
        else if (!exact && !folded && !strchr(s, '*') && !strchr(s, '?') && !strstr(mods, "|contains") &&
                 !strstr(mods, "|startswith") && !strstr(mods, "|endswith"))
            warn(l, v, "%s: CloudTrail never writes '%s' here", field, s);
    }
    if ((strcasecmp(s, "true") == 0 || strcasecmp(s, "false") == 0) && !strstr(mods, "|contains") &&
        (strncmp(field, "requestParameters.", 18) == 0 || strncmp(field, "responseElements.", 17) == 0 ||
         strncmp(field, "additionalEventData.", 20) == 0))
        warn(l, v, "%s: '%s' is a string, CloudTrail writes a JSON boolean here; trailwatch compares booleans by "
             "their text so it matches, but a type-strict backend would not: write %s without quotes", field, s,
             strcasecmp(s, "true") == 0 ? "true" : "false");
    if (strcmp(field, "errorCode") == 0 && strcasecmp(s, "Success") == 0)
        warn(l, v, "errorCode: CloudTrail leaves errorCode out when a call succeeds; 'Success' never occurs (the "
             "errorCode: null selection is the one that matches)");
    if (strcmp(field, "eventSource") == 0 && !strchr(s, '*') && !strstr(mods, "|") &&
        (strlen(s) < 15 || strcasecmp(s + strlen(s) - 14, ".amazonaws.com") != 0))
        warn(l, v, "eventSource: '%s' is not of the form <service>.amazonaws.com", s);
}

static void lint_item(linter *l, const char *key, size_t klen, const tw_json *v)
{
    char field[512], mods[256] = "";
    const char *bar = memchr(key, '|', klen);
    size_t fl = bar ? (size_t)(bar - key) : klen;
    if (!fl || fl >= sizeof field)
        return;
    memcpy(field, key, fl);
    field[fl] = '\0';
    if (bar)
        snprintf(mods, sizeof mods, "%.*s", (int)(klen - fl), bar);
    if (!known_field(field))
        warn(l, v, "field '%s' is never in a CloudTrail record (top-level fields: eventName, eventSource, "
             "userIdentity, errorCode, requestParameters, ...); a test on it %s", field,
             tw_json_typeof(v) == TW_JSON_NULL ? "always holds" : "never matches");
    if (strstr(mods, "|fieldref")) {
        size_t n = tw_json_typeof(v) == TW_JSON_ARRAY ? tw_json_size(v) : 1;
        for (size_t i = 0; i < n; i++) {
            const tw_json *e = tw_json_typeof(v) == TW_JSON_ARRAY ? tw_json_at(v, i) : v;
            if (tw_json_typeof(e) == TW_JSON_STRING && !known_field(tw_json_string(e, NULL)))
                warn(l, e, "%s|fieldref: field '%s' is never in a CloudTrail record", field, tw_json_string(e, NULL));
        }
        return;
    }
    if (tw_json_typeof(v) == TW_JSON_ARRAY) {
        for (size_t i = 0; i < tw_json_size(v); i++)
            lint_value(l, field, mods, tw_json_at(v, i));
    } else {
        lint_value(l, field, mods, v);
    }
}

static void lint_map(linter *l, const tw_json *m)
{
    for (size_t i = 0; i < tw_json_size(m); i++) {
        size_t kl;
        const char *k = tw_json_key(m, i, &kl);
        if (kl && k[0] != '|')
            lint_item(l, k, kl, tw_json_at(m, i));
    }
}

size_t tw_sigma_lint(const tw_sigma *s, tw_report_fn report, void *ctx)
{
    size_t total = 0;
    for (size_t i = 0; s && i < s->n; i++) {
        const sg_rule *r = s->rules[i];
        linter l = {r, report, ctx, 0};
        if (strcmp(r->info.status, "deprecated") == 0)
            warn(&l, tw_json_get(r->root, "status"), "status: deprecated (see the rule's related: for what "
                 "replaces it)");
        const tw_json *det = tw_json_get(r->root, "detection");
        for (size_t k = 0; det && k < tw_json_size(det); k++) {
            const tw_json *v = tw_json_at(det, k);
            if (strcmp(tw_json_key(det, k, NULL), "condition") == 0)
                continue;
            if (tw_json_typeof(v) == TW_JSON_OBJECT)
                lint_map(&l, v);
            for (size_t j = 0; tw_json_typeof(v) == TW_JSON_ARRAY && j < tw_json_size(v); j++)
                if (tw_json_typeof(tw_json_at(v, j)) == TW_JSON_OBJECT)
                    lint_map(&l, tw_json_at(v, j));
        }
        total += l.n;
    }
    return total;
}
