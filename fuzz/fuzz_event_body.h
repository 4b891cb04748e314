/*
 * fuzz/fuzz_event_body.h: the checks of fuzz_event (see fuzz_common.h for how bodies are shared).
 *
 * Input: the text of one event, matched against a fixed rule set that uses every matcher kind (exact
 * strings, numbers and literals, numeric ranges, prefix/suffix and their equals-ignore-case forms,
 * equals-ignore-case with non-ASCII, wildcard, anything-but in each form, exists true/false, cidr v4
 * and v6, $or, dotted keys, fields inside arrays of objects) in TW_EVENT_AUTO, ENVELOPE and CLOUDTRAIL.
 *   1. Results are sane (ascending, distinct, in range); validity agrees with tw_json_parse (as in
 *      fuzz_json) and does not depend on the kind.
 *   2. AUTO reads a raw CloudTrail record iff tw_event_is_cloudtrail_record says it is one, and then
 *      matches exactly what CLOUDTRAIL does; otherwise exactly what ENVELOPE does.
 *   3. The id reported is the last top-level "id" (a record: "eventID") when it is a string.
 *   4. CLOUDTRAIL on the record matches exactly what ENVELOPE matches on tw_event_wrap_cloudtrail's
 *      output (no rule looks at the random id's value), and that output is JSON whose "detail" is the
 *      record.
 */
#ifndef TW_FUZZ_EVENT_BODY_H
#define TW_FUZZ_EVENT_BODY_H

#include "fuzz_common.h"
#include "json/json_int.h"
#include "trailwatch/event.h"
#include "trailwatch/json.h"
#include "trailwatch/pattern.h"

static const char *const fz_event_rules[] = {
    /* exact strings, and the envelope fields of a wrapped record */
    "{\"source\":[\"aws.ec2\",\"aws.s3\"],\"detail-type\":[\"AWS API Call via CloudTrail\"]}",
    "{\"source\":[\"aws.signin\"],\"detail-type\":[\"AWS Console Sign In via CloudTrail\"],"
    "\"account\":[\"123456789012\"],\"region\":[{\"prefix\":\"us-\"}],\"version\":[\"0\"]}",
    "{\"id\":[{\"exists\":true}],\"time\":[{\"exists\":true}],\"resources\":[{\"exists\":false}]}",
    /* exact numbers, null, booleans; numeric ranges */
    "{\"detail\":{\"n\":[5,100,1e2,-0,null,true,false,\"5\"]}}",
    "{\"detail\":{\"n\":[{\"numeric\":[\">\",0,\"<=\",100]}],\"x\":[{\"numeric\":[\"=\",3.5]}]}}",
    "{\"n\":[{\"numeric\":[\"<\",-1e300]},{\"numeric\":[\">=\",1e9]}],\"v\":[1.0000000000000001]}",
    /* prefix / suffix, plain and equals-ignore-case */
    "{\"detail\":{\"eventName\":[{\"prefix\":\"Create\"},{\"suffix\":\"User\"},{\"suffix\":\"\"}]}}",
    "{\"detail\":{\"eventName\":[{\"prefix\":{\"equals-ignore-case\":\"dEl\"}},"
    "{\"suffix\":{\"equals-ignore-case\":\"\xce\xa3S\"}}]}}",
    /* equals-ignore-case with non-ASCII (sharp s, titlecase digraph, Cyrillic, Kelvin sign) */
    "{\"s\":[{\"equals-ignore-case\":\"\xc3\x89T\xc3\x89 STRASSE\"},{\"equals-ignore-case\":\"\xc7\x85\"}],"
    "\"k\":[{\"equals-ignore-case\":\"\xd0\x9a\xd0\x9b\xd0\xae\xd0\xa7\"},{\"equals-ignore-case\":\"\xe2\x84\xaa\"}]}",
    /* wildcard, with escapes */
    "{\"detail\":{\"arn\":[{\"wildcard\":\"arn:aws:iam::*:role/*admin*\"}]},\"f\":[{\"wildcard\":\"a\\\\*b*\"},"
    "{\"wildcard\":\"*.json\"},{\"wildcard\":\"x*y*z\"}]}",
    /* anything-but: string, list, number, prefix, suffix, equals-ignore-case, wildcard */
    "{\"detail\":{\"state\":[{\"anything-but\":\"pending\"}],\"t\":[{\"anything-but\":[\"a\",\"b\"]}]}}",
    "{\"detail\":{\"u\":[{\"anything-but\":[5,6.5]}],\"w\":[{\"anything-but\":{\"prefix\":\"x\"}}]}}",
    "{\"detail\":{\"w\":[{\"anything-but\":{\"suffix\":\".tmp\"}}],\"s\":[{\"anything-but\":"
    "{\"equals-ignore-case\":[\"PENDING\",\"\xc3\x89t\xc3\xa9\"]}}]}}",
    "{\"detail\":{\"arn\":[{\"anything-but\":{\"wildcard\":\"arn:*:iam::*\"}}]}}",
    /* exists */
    "{\"detail\":{\"errorCode\":[{\"exists\":false}],\"eventName\":[{\"exists\":true}]}}",
    "{\"a\":{\"b\":[{\"exists\":false}]},\"c\":[{\"exists\":true}]}",
    /* cidr */
    "{\"detail\":{\"sourceIPAddress\":[{\"cidr\":\"10.0.0.0/8\"},{\"cidr\":\"2001:db8::/32\"},"
    "{\"cidr\":\"192.168.1.0/24\"}]}}",
    "{\"ip\":[{\"cidr\":\"0.0.0.0/0\"}],\"ip6\":[{\"cidr\":\"::/0\"}],\"h\":[{\"cidr\":\"198.51.100.7\"}]}",
    /* $or, top level and nested */
    "{\"$or\":[{\"source\":[\"aws.iam\"]},{\"detail\":{\"eventName\":[\"ConsoleLogin\"]}},"
    "{\"detail\":{\"$or\":[{\"x\":[1]},{\"y\":[{\"prefix\":\"z\"}]}]}}]}",
    /* dotted keys */
    "{\"detail.userIdentity.type\":[\"Root\"],\"detail.eventSource\":[{\"suffix\":\".amazonaws.com\"}]}",
    "{\"a.b\":[\"x\"],\"a\":{\"c\":[\"y\"]}}",
    /* fields in arrays of objects: one element must hold them all */
    "{\"e\":{\"first\":[\"Ada\"],\"last\":[\"Kim\"]}}",
    "{\"detail\":{\"requestParameters\":{\"ipPermissions\":{\"items\":{\"ipRanges\":{\"items\":"
    "{\"cidrIp\":[{\"cidr\":\"0.0.0.0/0\"}]}},\"fromPort\":[22]}}}}}",
    "{\"a\":{\"b\":{\"x\":[1],\"y\":[4]}},\"x\":{\"y\":{\"z\":[{\"numeric\":[\">\",1]}]}}}",
};

#define FZ_EVENT_NRULES (sizeof fz_event_rules / sizeof fz_event_rules[0])

static const tw_event_kind fz_event_kinds[3] = {TW_EVENT_AUTO, TW_EVENT_ENVELOPE, TW_EVENT_CLOUDTRAIL};

static struct {
    tw_limits lim, wlim;
    tw_ruleset *rs, *wrs;        /* the same rules; wrs allows one more level (the wrapped record) */
    tw_matcher *m, *wm;
} fz_event;

FUZZ_FN void fuzz_event_init(void)
{
    fuzz_limits(&fz_event.lim);
    fz_event.wlim = fz_event.lim;
    fz_event.wlim.json_depth++;
    fz_event.rs = fuzz_build_rules(&fz_event.lim, fz_event_rules, FZ_EVENT_NRULES);
    fz_event.wrs = fuzz_build_rules(&fz_event.wlim, fz_event_rules, FZ_EVENT_NRULES);
    FUZZ_SETUP(tw_matcher_new(fz_event.rs, &fz_event.m) == TW_OK, "tw_matcher_new");
    FUZZ_SETUP(tw_matcher_new(fz_event.wrs, &fz_event.wm) == TW_OK, "tw_matcher_new");
}

FUZZ_FN void fuzz_event_fini(void)
{
    tw_matcher_free(fz_event.m);
    tw_matcher_free(fz_event.wm);
    tw_ruleset_free(fz_event.rs);
    tw_ruleset_free(fz_event.wrs);
    memset(&fz_event, 0, sizeof fz_event);
}

/* The string value of the last top-level member named key, as the matcher should report it. */
FUZZ_FN void fuzz_event_expected_id(const tw_json *root, const char *key, const char **s, size_t *len)
{
    const tw_json *v = tw_json_get(root, key);
    *s = v ? tw_json_string(v, len) : NULL;
    if (!*s)
        *len = 0;
}

/* Checks CLOUDTRAIL on the record against ENVELOPE on its wrapped form. */
FUZZ_FN void fuzz_event_wrap(const char *text, size_t size, const tw_json *root, uint64_t record_bits)
{
    char *w = NULL;
    size_t wlen = 0;
    tw_error err = {0};
    tw_status rc = tw_event_wrap_cloudtrail(text, size, &w, &wlen, &err);
    FUZZ_CHECK(rc == TW_OK, "tw_event_wrap_cloudtrail rejects a JSON object: %s", err.msg);
    if (rc)
        return;
    tw_json_doc *doc = NULL;
    tw_limits jl = fz_event.wlim;
    jl.event_max = TW_MAX_EVENT_MAX;
    rc = tw_json_parse(w, wlen, &jl, &doc, &err);
    FUZZ_CHECK(rc == TW_OK, "the wrapped record is not JSON: %s\n    %.300s", err.msg, w);
    if (doc) {
        const tw_json *d = tw_json_get(tw_json_root(doc), "detail");
        FUZZ_CHECK(d && tw__json_equal(d, root), "\"detail\" of the wrapped record is not the record");
        tw_json_doc_free(doc);
    }
    tw_match_result res;
    rc = tw_match(fz_event.wm, w, wlen, TW_EVENT_ENVELOPE, &res, &err);
    if (rc == TW_OK) {
        uint64_t bits = fuzz_result_bits(&res);
        FUZZ_CHECK(bits == record_bits, "a record matches rules %#llx as CLOUDTRAIL but %#llx once "
                   "wrapped by tw_event_wrap_cloudtrail\n    wrapped: %.400s", (unsigned long long)record_bits,
                   (unsigned long long)bits, w);
    } else {
        FUZZ_CHECK(rc == TW_ELIMIT || rc == TW_ETOOBIG, "the wrapped record fails to match: %s", err.msg);
    }
    free(w);
}

FUZZ_FN void fuzz_event_check(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    tw_json_doc *doc = NULL;
    tw_error perr = {0};
    tw_status prc = tw_json_parse(text, size, &fz_event.lim, &doc, &perr);
    const tw_json *root = doc ? tw_json_root(doc) : NULL;
    int object = root && tw_json_typeof(root) == TW_JSON_OBJECT;
    int first = fuzz_first_byte(data, size);

    tw_status rcs[3];
    uint64_t bits[3] = {0, 0, 0};
    tw_event_kind got_kind[3] = {TW_EVENT_AUTO, TW_EVENT_AUTO, TW_EVENT_AUTO};
    for (int k = 0; k < 3; k++) {
        tw_match_result res;
        tw_error err = {0};
        tw_status rc = tw_match(fz_event.m, text, size, fz_event_kinds[k], &res, &err);
        rcs[k] = rc;
        if (rc != TW_OK) {
            FUZZ_CHECK(err.code == rc && err.msg[0], "kind %d: error %d without a message", k, rc);
            if (object)
                FUZZ_CHECK(rc == TW_ELIMIT, "kind %d: tw_json_parse accepts the object, tw_match: %s", k,
                           err.msg);
            else if (prc != TW_OK && fuzz_is_syntax_error(prc))
                FUZZ_CHECK(rc == prc, "kind %d: tw_json_parse %d (%s), tw_match %d (%s)", k, prc, perr.msg, rc,
                           err.msg);
            continue;
        }
        FUZZ_CHECK(first == '{' && object, "kind %d: tw_match accepts what is not a JSON object (%s)", k,
                   prc ? perr.msg : "valid JSON");
        FUZZ_CHECK(fuzz_result_sane(&res, FZ_EVENT_NRULES), "kind %d: bad match result", k);
        bits[k] = fuzz_result_bits(&res);
        got_kind[k] = res.kind;
        if (!object)
            continue;
        int is_record = res.kind == TW_EVENT_CLOUDTRAIL;
        FUZZ_CHECK(k == 0 || is_record == (k == 2), "kind %d read as %d", k, res.kind);
        const char *want;
        size_t wlen;
        fuzz_event_expected_id(root, is_record ? "eventID" : "id", &want, &wlen);
        FUZZ_CHECK((want == NULL) == (res.id == NULL) &&
                       (!want || (wlen == res.id_len && memcmp(want, res.id, wlen) == 0)),
                   "kind %d: id %.*s, expected %.*s", k, res.id ? (int)res.id_len : 6,
                   res.id ? res.id : "(none)", want ? (int)wlen : 6, want ? want : "(none)");
    }
    if (object) {
        /* AUTO agrees with the explicit kind it chose, and with tw_event_is_cloudtrail_record. */
        int record = tw_event_is_cloudtrail_record(text, size);
        if (rcs[0] == TW_OK) {
            FUZZ_CHECK((got_kind[0] == TW_EVENT_CLOUDTRAIL) == (record != 0),
                       "AUTO reads it as %s, tw_event_is_cloudtrail_record says %d",
                       got_kind[0] == TW_EVENT_CLOUDTRAIL ? "a record" : "an event", record);
            int same = got_kind[0] == TW_EVENT_CLOUDTRAIL ? 2 : 1;
            if (rcs[same] == TW_OK)
                FUZZ_CHECK(bits[0] == bits[same], "AUTO matches %#llx, kind %d matches %#llx",
                           (unsigned long long)bits[0], same, (unsigned long long)bits[same]);
        }
        if (rcs[2] == TW_OK)
            fuzz_event_wrap(text, size, root, bits[2]);
    }
    tw_json_doc_free(doc);
}

#endif
