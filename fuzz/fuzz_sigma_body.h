/*
 * fuzz/fuzz_sigma_body.h: the checks of fuzz_sigma (see fuzz_common.h for how bodies are shared).
 *
 * Input: a Sigma rule file (any number of YAML documents), loaded with tw_sigma_load_text (json_depth
 * 64, file_max 256 KiB).
 *   1. Loading never fails as a whole except out of memory: every refusal is reported (counted once
 *      per report) and the rules kept are exactly the ones not refused.
 *   2. Every kept rule has a name, a title and a known severity; names are unique.
 *   3. The kept rules link (tw_sigma_add), build into a rule set and match four fixed events (a raw
 *      record, a delivery, a deep record, a console sign-in) without error; every rule a match
 *      reports is a Sigma rule.
 *   4. lint runs over the kept rules; a correlator over them takes the matches and finishes.
 *   5. Differential: the same rules built again with the gate dropped (every event walked through the
 *      whole trie, pattern/gate.c) match each event with the same rules.
 */
#ifndef TW_FUZZ_SIGMA_BODY_H
#define TW_FUZZ_SIGMA_BODY_H

#include "fuzz_common.h"
#include "pattern/ruleset_int.h"
#include "trailwatch/sigma.h"

static tw_limits fz_sigma_lim;

FUZZ_FN void fuzz_sigma_init(void)
{
    tw_limits_default(&fz_sigma_lim);
    fz_sigma_lim.json_depth = 64;
    fz_sigma_lim.file_max = 256u << 10;
}

FUZZ_FN void fuzz_sigma_fini(void) {}

static void fz_sigma_count(void *ctx, const char *msg)
{
    (void)msg;
    (*(size_t *)ctx)++;
}

static const char *const fz_sigma_events[] = {
    "{\"eventVersion\":\"1.08\",\"eventSource\":\"iam.amazonaws.com\",\"eventName\":\"CreateAccessKey\","
    "\"eventTime\":\"2024-01-01T00:00:00Z\",\"eventID\":\"e1\",\"userIdentity\":{\"type\":\"IAMUser\","
    "\"arn\":\"arn:aws:iam::1:user/a\"},\"sourceIPAddress\":\"10.1.2.3\",\"requestParameters\":{\"userName\":\"a\","
    "\"tags\":[\"x\",{\"k\":\"v\"}],\"n\":5},\"responseElements\":null,\"userAgent\":\"aws-cli/2 Boto\"}",
    "{\"version\":\"0\",\"id\":\"e2\",\"detail-type\":\"AWS API Call via CloudTrail\",\"source\":\"aws.s3\","
    "\"detail\":{\"eventName\":\"GetObject\",\"errorCode\":\"AccessDenied\",\"eventTime\":\"2024-01-01T00:01:00Z\"}}",
    "{\"eventVersion\":\"1.08\",\"eventSource\":\"s3.amazonaws.com\",\"eventName\":\"PutBucketPolicy\","
    "\"requestParameters\":{\"a\":{\"b\":[{\"c\":[1,true,\"\\u00c4rger\"]}]}},\"additionalEventData\":{\"MFAUsed\":\"No\"}}",
    "{\"eventVersion\":\"1.08\",\"userIdentity\":{\"type\":\"AssumedRole\",\"arn\":\"arn:aws:sts::1:assumed-role/aws:r/s\","
    "\"sessionContext\":{\"sessionIssuer\":{\"type\":\"Role\",\"userName\":\"r\"}}},\"eventSource\":"
    "\"signin.amazonaws.com\",\"eventName\":\"ConsoleLogin\",\"eventType\":\"AwsConsoleSignIn\",\"errorMessage\":"
    "\"Failed authentication\",\"responseElements\":{\"ConsoleLogin\":\"Success\"},\"additionalEventData\":"
    "{\"MFAUsed\":\"No\"},\"userAgent\":\"TruffleHog\",\"requestParameters\":{\"userName\":\"r\",\"enable\":false}}",
};

/* The rules of data built into a rule set without its gate, or NULL (refused, out of memory). */
static tw_ruleset *fz_sigma_ungated(const uint8_t *data, size_t size)
{
    tw_sigma *s = NULL;
    tw_ruleset_builder *b = NULL;
    tw_ruleset *rs = NULL;
    tw_error err;
    size_t nerr = 0;
    if (tw_sigma_new(&fz_sigma_lim, &s) == TW_OK &&
        tw_sigma_load_text(s, "fuzz.yml", (const char *)data, size, &nerr, NULL, NULL, &err) == TW_OK &&
        tw_ruleset_builder_new(&fz_sigma_lim, &b) == TW_OK && tw_sigma_add(s, b, &nerr, NULL, NULL, &err) == TW_OK &&
        tw_ruleset_build(b, &rs, &err) == TW_OK)
        tw__ruleset_drop_gate(rs);
    tw_ruleset_builder_free(b);
    tw_sigma_free(s);
    return rs;
}

/* Step 5: each event matches the same rules through the gate (m) as through the whole trie. */
static void fz_sigma_same_without_gate(tw_matcher *m, const uint8_t *data, size_t size)
{
    tw_ruleset *full = fz_sigma_ungated(data, size);
    tw_matcher *mf = NULL;
    if (!full || tw_matcher_new(full, &mf) != TW_OK) {
        tw_ruleset_free(full);
        return;
    }
    for (size_t i = 0; i < sizeof fz_sigma_events / sizeof fz_sigma_events[0]; i++) {
        const char *ev = fz_sigma_events[i];
        tw_match_result a, b;
        tw_error ea, eb;
        tw_status ra = tw_match(m, ev, strlen(ev), TW_EVENT_AUTO, &a, &ea);
        tw_status rb = tw_match(mf, ev, strlen(ev), TW_EVENT_AUTO, &b, &eb);
        if (ra == TW_ENOMEM || rb == TW_ENOMEM)
            continue;
        /* the values limit counts recorded values: the gate records fewer (docs/SIGMA.md) */
        if (ra == TW_OK && rb == TW_ELIMIT)
            continue;
        FUZZ_CHECK(ra == rb, "event %zu: %d through the gate, %d without", i, ra, rb);
        FUZZ_CHECK(ra || (a.count == b.count && !memcmp(a.rules, b.rules, a.count * sizeof *a.rules)),
                   "event %zu: %zu rules through the gate, %zu without", i, a.count, b.count);
    }
    tw_matcher_free(mf);
    tw_ruleset_free(full);
}

FUZZ_FN void fuzz_sigma_check(const uint8_t *data, size_t size)
{
    tw_sigma *s = NULL;
    tw_error err;
    size_t nerr = 0, reports = 0;
    FUZZ_SETUP(tw_sigma_new(&fz_sigma_lim, &s) == TW_OK, "tw_sigma_new");
    tw_status rc = tw_sigma_load_text(s, "fuzz.yml", (const char *)data, size, &nerr, fz_sigma_count, &reports, &err);
    FUZZ_CHECK(rc == TW_OK || rc == TW_ENOMEM, "load failed as a whole: %d %s", rc, err.msg);
    FUZZ_CHECK(nerr == reports, "%zu refusals counted, %zu reported", nerr, reports);
    size_t n = tw_sigma_count(s);
    for (size_t i = 0; i < n; i++) {
        const tw_sigma_rule_info *in = tw_sigma_rule(s, i);
        FUZZ_CHECK(in->name && *in->name && in->title && *in->title, "rule %zu without a name or title", i);
        FUZZ_CHECK(strcmp(in->severity, "info") == 0 || strcmp(in->severity, "low") == 0 ||
                       strcmp(in->severity, "medium") == 0 || strcmp(in->severity, "high") == 0 ||
                       strcmp(in->severity, "critical") == 0, "rule %s: severity %s", in->name, in->severity);
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(strcmp(in->name, tw_sigma_rule(s, j)->name) != 0, "name %s twice", in->name);
    }
    tw_ruleset_builder *b = NULL;
    tw_ruleset *rs = NULL;
    tw_matcher *m = NULL;
    tw_correlator *c = NULL;
    FUZZ_SETUP(tw_ruleset_builder_new(&fz_sigma_lim, &b) == TW_OK, "builder");
    reports = nerr = 0;
    rc = tw_sigma_add(s, b, &nerr, fz_sigma_count, &reports, &err);
    FUZZ_CHECK(rc == TW_OK || rc == TW_ENOMEM, "link failed as a whole: %d %s", rc, err.msg);
    FUZZ_CHECK(nerr == reports, "%zu link refusals counted, %zu reported", nerr, reports);
    if (rc == TW_OK)
        rc = tw_ruleset_build(b, &rs, &err);
    FUZZ_CHECK(rc == TW_OK || rc == TW_ENOMEM, "kept rules do not build: %d %s", rc, err.msg);
    if (rs && tw_matcher_new(rs, &m) == TW_OK) {
        tw_correlator_opts o;
        tw_correlator_opts_default(&o);
        o.batch = 1;
        if (tw_correlator_new(s, rs, &o, &c, &err))
            c = NULL;
        for (size_t i = 0; i < sizeof fz_sigma_events / sizeof fz_sigma_events[0]; i++) {
            tw_match_result res;
            const char *ev = fz_sigma_events[i];
            rc = tw_match(m, ev, strlen(ev), TW_EVENT_AUTO, &res, &err);
            FUZZ_CHECK(rc == TW_OK || rc == TW_ENOMEM || rc == TW_ELIMIT, "event %zu: %d %s", i, rc, err.msg);
            for (size_t k = 0; rc == TW_OK && k < res.count; k++)
                FUZZ_CHECK(tw_sigma_of_ruleset(s, res.rules[k]) >= 0, "rule %u is no Sigma rule", res.rules[k]);
            if (rc == TW_OK && c)
                tw_correlator_feed(c, m, &res, 0, NULL, NULL, &err);
        }
        if (c)
            tw_correlator_finish(c, NULL, NULL, &err);
        fz_sigma_same_without_gate(m, data, size);
    }
    (void)tw_sigma_lint(s, NULL, NULL);
    tw_correlator_free(c);
    tw_matcher_free(m);
    tw_ruleset_free(rs);
    tw_ruleset_builder_free(b);
    tw_sigma_free(s);
}

#endif
