/*
 * fuzz/fuzz_pattern_body.h: the checks of fuzz_pattern (see fuzz_common.h for how bodies are shared).
 *
 * Input: the text of one event pattern.
 *   1. tw_pattern_parse; the handle is set iff TW_OK, and a failure fills err with the same code.
 *   2. When the text is JSON, tw_pattern_from_json on its tree must reach the same verdict (code and
 *      message) and the same number of combinations.
 *   3. A valid pattern P is compiled twice: alone (set A = {P}) and after four fixed patterns
 *      (B = {Q, R1, R2, R3, P}). Every fixed event below is matched in TW_EVENT_AUTO and
 *      TW_EVENT_ENVELOPE against both: P matches in A iff it matches in B, and each fixed rule
 *      matches in B iff it matches alone (computed once at start). Another rule must never change a
 *      rule's verdict.
 *   4. Matching the same event twice with one matcher gives the same result (scratch reuse).
 */
#ifndef TW_FUZZ_PATTERN_BODY_H
#define TW_FUZZ_PATTERN_BODY_H

#include "fuzz_common.h"
#include "trailwatch/json.h"
#include "trailwatch/pattern.h"

/* Envelopes, raw CloudTrail records, arrays of objects, numbers, unicode, odd keys. */
static const char *const fz_pattern_events[] = {
    "{\"version\":\"0\",\"id\":\"6a7e8feb-b491-4cf7-a9f1-bf3703467718\",\"detail-type\":\"AWS API Call via "
    "CloudTrail\",\"source\":\"aws.ec2\",\"account\":\"111122223333\",\"time\":\"2017-12-22T18:43:48Z\","
    "\"region\":\"us-west-1\",\"resources\":[\"arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0\"],"
    "\"detail\":{\"eventName\":\"RunInstances\",\"eventSource\":\"ec2.amazonaws.com\",\"userIdentity\":{"
    "\"type\":\"IAMUser\",\"userName\":\"dana\"},\"sourceIPAddress\":\"198.51.100.7\",\"readOnly\":false}}",
    "{\"eventVersion\":\"1.08\",\"userIdentity\":{\"type\":\"Root\",\"arn\":\"arn:aws:iam::123456789012:root\"},"
    "\"eventTime\":\"2023-07-10T12:20:00Z\",\"eventSource\":\"signin.amazonaws.com\",\"eventName\":"
    "\"ConsoleLogin\",\"awsRegion\":\"us-east-1\",\"sourceIPAddress\":\"10.1.2.3\",\"responseElements\":{"
    "\"ConsoleLogin\":\"Success\"},\"additionalEventData\":{\"MFAUsed\":\"No\"},\"eventType\":"
    "\"AwsConsoleSignIn\",\"recipientAccountId\":\"123456789012\",\"eventID\":\"e-1\"}",
    "{\"eventVersion\":\"1.09\",\"eventSource\":\"ec2.amazonaws.com\",\"eventName\":"
    "\"AuthorizeSecurityGroupIngress\",\"eventType\":\"AwsApiCall\",\"requestParameters\":{\"ipPermissions\":"
    "{\"items\":[{\"ipProtocol\":\"tcp\",\"fromPort\":22,\"ipRanges\":{\"items\":[{\"cidrIp\":\"0.0.0.0/0\"}]}},"
    "{\"ipProtocol\":\"udp\",\"fromPort\":53,\"ipRanges\":{\"items\":[{\"cidrIp\":\"10.0.0.0/8\"}]}}]}},"
    "\"errorCode\":\"Client.UnauthorizedOperation\"}",
    "{\"n\":5,\"x\":-0.0,\"big\":1e308,\"f\":3.14,\"i\":12345678901234567890,\"e\":5e-324,\"a\":[1,2.5,3e2,-7],"
    "\"s\":\"5\",\"m\":5.0,\"o\":\"5.0\",\"neg\":-1000000}",
    "{\"s\":\"\xc3\x89T\xc3\x89 stra\xc3\x9f" "e\",\"k\":\"\xc7\x85\",\"emoji\":\"\xf0\x9f\x98\x80\",\"esc\":"
    "\"\\u00e9\\ud83d\\ude00\",\"sigma\":\"\xce\xa3\xce\xa3\",\"f\":\"REPORT.JSON\",\"\xd0\xba\":\"\xd0\x9a\"}",
    "{\"a\":[[{\"b\":\"x\"}],[{\"b\":\"y\",\"c\":1}]],\"e\":[{\"first\":\"Ada\",\"last\":\"Kim\"},{\"first\":"
    "\"Bo\",\"last\":\"Li\"}],\"x\":[{\"y\":[{\"z\":1},{\"z\":2}]},{\"y\":[]}]}",
    "{\"a\":null,\"b\":true,\"c\":false,\"d\":{},\"e\":[],\"f\":[null,true,false]}",
    "{}",
    "{\"a.b\":\"x\",\"a\":{\"b\":\"y\",\"c\":\"z\"},\"detail.eventName\":\"CreateUser\"}",
    "{\"ip\":\"10.1.2.3\",\"ip6\":\"2001:db8::1\",\"ipm\":\"::ffff:10.0.0.1\",\"bad\":\"10.0.0.256\","
    "\"detail\":{\"sourceIPAddress\":\"192.168.1.77\"}}",
    "{\"arn\":\"arn:aws:iam::123456789012:role/admin-role\",\"f\":\"a*b\\\\c\",\"w\":\"xyzzy\",\"empty\":\"\"}",
    "{\"source\":\"aws.s3\",\"detail-type\":\"Object Created\",\"detail\":{\"bucket\":{\"name\":\"logs\"},"
    "\"object\":{\"key\":\"AWSLogs/1/CloudTrail/x.json.gz\",\"size\":1024}},\"resources\":[\"arn:aws:s3:::logs\"]}",
    "{\"k\":\"a\",\"k\":\"b\",\"detail\":{\"x\":1,\"x\":\"1\"},\"source\":\"aws.iam\",\"source\":[\"aws.ec2\"]}",
    "{\"l1\":{\"l2\":{\"l3\":{\"l4\":{\"l5\":{\"l6\":{\"l7\":{\"l8\":[{\"l9\":{\"l10\":\"deep\"}}]}}}}}}}}",
    "{\"eventVersion\":\"1.0\",\"eventSource\":\"iam.amazonaws.com\",\"eventName\":\"Create\\u0055ser\","
    "\"userIdentity\":{\"type\":\"AssumedRole\",\"sessionContext\":{\"attributes\":{\"mfaAuthenticated\":"
    "\"false\"}}},\"requestParameters\":{\"userName\":\"\\\"quoted\\\"\"},\"eventID\":\"e-2\"}",
    "{\"source\":[\"aws.ec2\",\"aws.s3\"],\"detail\":[{\"eventName\":\"RunInstances\"},{\"eventName\":\"Stop\"}]}",
    "{\"v\":[1,\"1\",true,null,{\"w\":1},[2,[3]],\"x\",-0,0.1,1E2]}",
    "{\"\":\"empty\",\"\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87\":\"\xd0\xb7\",\"with space\":1,\"$or\":[1]}",
    "{\"version\":\"0\",\"id\":\"x\",\"detail-type\":\"AWS Console Sign In via CloudTrail\",\"source\":"
    "\"aws.signin\",\"account\":\"123456789012\",\"time\":\"2024-01-01T00:00:00Z\",\"region\":\"eu-central-1\","
    "\"resources\":[],\"detail\":{\"eventName\":\"ConsoleLogin\",\"errorCode\":null,\"n\":[0,10,100]}}",
    "{\"detail\":{\"state\":\"pending\",\"retries\":3,\"s\":\"Pending\",\"t\":\"PENDING\",\"u\":5}}",
};

#define FZ_PATTERN_NEVENTS (sizeof fz_pattern_events / sizeof fz_pattern_events[0])

static const tw_event_kind fz_pattern_kinds[2] = {TW_EVENT_AUTO, TW_EVENT_ENVELOPE};

/* The fixed rules compiled beside the fuzzed one: Q first, then rules on fields the events have, so
 * that their anchors share the automaton's fields, tries and lists with the fuzzed pattern's. */
static const char *const fz_pattern_fixed[] = {
    ("{\"detail\":{\"eventName\":[{\"prefix\":\"Run\"},\"ConsoleLogin\"],\"errorCode\":[{\"exists\":false}]},"
     "\"source\":[{\"anything-but\":\"aws.iam\"}]}"),
    "{\"ip\":[{\"cidr\":\"10.0.0.0/8\"},{\"cidr\":\"2001:db8::/32\"}],\"f\":[{\"suffix\":\".JSON\"},{\"prefix\":\"a\"}]}",
    "{\"s\":[{\"prefix\":{\"equals-ignore-case\":\"\xc3\xa9t\xc3\xa9\"}},\"5\"],\"a\":{\"b\":[{\"wildcard\":\"*x*\"}]}}",
    "{\"n\":[{\"numeric\":[\">\",1]},5],\"detail\":{\"eventName\":[{\"prefix\":\"Create\"},{\"suffix\":\"Login\"}]}}",
};

#define FZ_PATTERN_NFIXED (sizeof fz_pattern_fixed / sizeof fz_pattern_fixed[0])
#define FZ_PATTERN_ERR UINT64_MAX   /* the match failed (a matching limit) */

static struct {
    tw_limits lim;
    uint64_t fixed_alone[FZ_PATTERN_NFIXED][FZ_PATTERN_NEVENTS][2];  /* bit 0: matched alone */
} fz_pattern;

/* Matches every fixed event in both kinds: res[i][k] is the set of matching rules. */
FUZZ_FN void fuzz_pattern_results(tw_matcher *m, size_t nrules, uint64_t res[FZ_PATTERN_NEVENTS][2])
{
    for (size_t i = 0; i < FZ_PATTERN_NEVENTS; i++) {
        for (int k = 0; k < 2; k++) {
            tw_match_result r;
            tw_error err = {0};
            const char *ev = fz_pattern_events[i];
            tw_status rc = tw_match(m, ev, strlen(ev), fz_pattern_kinds[k], &r, &err);
            FUZZ_CHECK(rc == TW_OK || rc == TW_ELIMIT, "fixed event %zu: tw_match %d: %s", i, rc, err.msg);
            res[i][k] = FZ_PATTERN_ERR;
            if (rc != TW_OK)
                continue;
            FUZZ_CHECK(fuzz_result_sane(&r, nrules), "bad match result");
            res[i][k] = fuzz_result_bits(&r);
        }
    }
}

FUZZ_FN void fuzz_pattern_init(void)
{
    fuzz_limits(&fz_pattern.lim);
    for (size_t j = 0; j < FZ_PATTERN_NFIXED; j++) {
        tw_ruleset *rs = fuzz_build_rules(&fz_pattern.lim, &fz_pattern_fixed[j], 1);
        tw_matcher *m = NULL;
        FUZZ_SETUP(tw_matcher_new(rs, &m) == TW_OK, "tw_matcher_new");
        fuzz_pattern_results(m, 1, fz_pattern.fixed_alone[j]);
        tw_matcher_free(m);
        tw_ruleset_free(rs);
    }
}

FUZZ_FN void fuzz_pattern_fini(void) {}

/* Compiles the fixed rules (when with_fixed) and then p (consumed) into a set; NULL when building
 * fails (checked, not fatal). */
FUZZ_FN tw_ruleset *fuzz_pattern_set(tw_pattern *p, int with_fixed)
{
    tw_ruleset_builder *b = NULL;
    tw_ruleset *rs = NULL;
    tw_error err = {0};
    tw_status rc = tw_ruleset_builder_new(&fz_pattern.lim, &b);
    FUZZ_SETUP(rc == TW_OK, "tw_ruleset_builder_new");
    size_t n = 0;
    for (size_t j = 0; with_fixed && j < FZ_PATTERN_NFIXED; j++, n++) {
        tw_pattern *f = NULL;
        char name[16];
        FUZZ_SETUP(tw_pattern_parse(fz_pattern_fixed[j], strlen(fz_pattern_fixed[j]), &fz_pattern.lim, &f,
                                    &err) == TW_OK, err.msg);
        snprintf(name, sizeof name, "fixed%zu", j);
        FUZZ_SETUP(tw_ruleset_builder_add(b, name, f, NULL, &err) == TW_OK, err.msg);
    }
    size_t index = 99;
    rc = tw_ruleset_builder_add(b, "fuzzed", p, &index, &err);
    FUZZ_CHECK(rc != TW_OK || index == n, "rule index %zu, expected %zu", index, n);
    if (rc == TW_OK)
        rc = tw_ruleset_build(b, &rs, &err);
    FUZZ_CHECK(rc == TW_OK || (err.code == rc && err.msg[0]), "build failed without a message (%d)", rc);
    FUZZ_CHECK((rc == TW_OK) == (rs != NULL), "rule set set iff TW_OK");
    tw_ruleset_builder_free(b);
    if (rs) {
        FUZZ_CHECK(tw_ruleset_size(rs) == n + 1, "rule set size %zu", tw_ruleset_size(rs));
        FUZZ_CHECK(strcmp(tw_ruleset_name(rs, n), "fuzzed") == 0, "rule name");
        (void)tw_ruleset_memory(rs);
    }
    return rs;
}

FUZZ_FN void fuzz_pattern_check(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const tw_limits *lim = &fz_pattern.lim;
    tw_pattern *p = NULL, *p2 = NULL;
    tw_error err = {0}, err2 = {0};
    tw_json_doc *doc = NULL;
    tw_ruleset *a = NULL, *b = NULL;
    tw_matcher *ma = NULL, *mb = NULL;

    tw_status rc = tw_pattern_parse(text, size, lim, &p, &err);
    FUZZ_CHECK((rc == TW_OK) == (p != NULL), "pattern set iff TW_OK (rc %d)", rc);
    FUZZ_CHECK(rc == TW_OK || (err.code == rc && err.msg[0]), "error %d without a message", rc);

    tw_limits jl = *lim;
    jl.event_max = lim->pattern_max;
    if (size <= lim->pattern_max && tw_json_parse(text, size, &jl, &doc, &err2) == TW_OK) {
        tw_status rc2 = tw_pattern_from_json(tw_json_root(doc), lim, &p2, &err2);
        FUZZ_CHECK(rc2 == rc, "tw_pattern_parse %d (%s) but tw_pattern_from_json %d (%s)", rc, err.msg,
                   rc2, err2.msg);
        if (rc && rc2 == rc)
            FUZZ_CHECK(strcmp(err.msg, err2.msg) == 0, "messages differ:\n    %s\n    %s", err.msg, err2.msg);
        if (p && p2)
            FUZZ_CHECK(tw_pattern_combinations(p) == tw_pattern_combinations(p2), "combinations differ");
    }
    tw_json_doc_free(doc);
    if (!p)
        goto out;
    size_t comb = tw_pattern_combinations(p);
    FUZZ_CHECK(comb >= 1 && comb <= lim->or_combinations, "%zu combinations", comb);
    if (!p2 && tw_pattern_parse(text, size, lim, &p2, &err2) != TW_OK) {
        FUZZ_CHECK(0, "the same text parsed once but not twice: %s", err2.msg);
        goto out;
    }
    a = fuzz_pattern_set(p, 0);
    b = fuzz_pattern_set(p2, 1);
    p = p2 = NULL;
    if (!a || !b || tw_matcher_new(a, &ma) != TW_OK || tw_matcher_new(b, &mb) != TW_OK)
        goto out;

    uint64_t ra[FZ_PATTERN_NEVENTS][2], rb[FZ_PATTERN_NEVENTS][2];
    fuzz_pattern_results(ma, 1, ra);
    fuzz_pattern_results(mb, FZ_PATTERN_NFIXED + 1, rb);
    for (size_t i = 0; i < FZ_PATTERN_NEVENTS; i++) {
        for (int k = 0; k < 2; k++) {
            if (ra[i][k] == FZ_PATTERN_ERR || rb[i][k] == FZ_PATTERN_ERR)
                continue;  /* a matching limit was hit in one of the sets: nothing to compare */
            int alone = (int)(ra[i][k] & 1), beside = (int)(rb[i][k] >> FZ_PATTERN_NFIXED & 1);
            FUZZ_CHECK(alone == beside, "event %zu (kind %d): the pattern matches %d alone but %d beside the "
                       "fixed rules", i, k, alone, beside);
            for (size_t j = 0; j < FZ_PATTERN_NFIXED; j++) {
                uint64_t fa = fz_pattern.fixed_alone[j][i][k];
                if (fa != FZ_PATTERN_ERR)
                    FUZZ_CHECK((fa & 1) == (rb[i][k] >> j & 1), "event %zu (kind %d): fixed rule %zu matches "
                               "%d alone but %d beside the pattern", i, k, j, (int)(fa & 1),
                               (int)(rb[i][k] >> j & 1));
            }
        }
    }
    /* The same events again, after the others: scratch state must not carry over. */
    uint64_t again[FZ_PATTERN_NEVENTS][2];
    fuzz_pattern_results(ma, 1, again);
    FUZZ_CHECK(memcmp(again, ra, sizeof ra) == 0, "matching is not repeatable");
out:
    tw_matcher_free(ma);
    tw_matcher_free(mb);
    tw_ruleset_free(a);
    tw_ruleset_free(b);
    tw_pattern_free(p);
    tw_pattern_free(p2);
}

#endif
