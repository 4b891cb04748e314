/*
 * fuzz/fuzz_json_body.h: the checks of fuzz_json (see fuzz_common.h for how bodies are shared).
 *
 * Input: any bytes, taken as one JSON text.
 *   1. tw_json_parse; when it succeeds, tw_json_dump must give text that parses again, dumps to the
 *      same bytes and is structurally equal; the accessors must agree with the tree.
 *   2. Differential with the matcher's one-pass validator: tw_match (a small fixed rule set, the
 *      same tw_limits, json_depth 64) must accept exactly the JSON objects tw_json_parse accepts:
 *      TW_OK or a matching limit (TW_ELIMIT) iff the parse succeeds; on a syntax error both report
 *      the same class (TW_EJSON, TW_EUTF8, TW_EDEPTH, TW_ETOOBIG). Non-objects are always an error.
 */
#ifndef TW_FUZZ_JSON_BODY_H
#define TW_FUZZ_JSON_BODY_H

#include "fuzz_common.h"
#include "json/json_int.h"
#include "trailwatch/json.h"
#include "trailwatch/pattern.h"

static struct {
    tw_limits lim;
    tw_ruleset *rs;
    tw_matcher *m;
} fz_json;

FUZZ_FN void fuzz_json_init(void)
{
    /* Fields at several depths, arrays (consistency), a dotted key, every class of value. */
    static const char *const rules[] = {
        "{\"source\":[\"aws.ec2\"],\"detail-type\":[{\"prefix\":\"AWS\"}]}",
        "{\"detail\":{\"eventName\":[\"CreateUser\",{\"suffix\":\"Table\"}]}}",
        "{\"a\":{\"b\":[1,{\"numeric\":[\">\",10]}],\"c\":[{\"exists\":true}]}}",
        "{\"a.b\":[\"x\",null,true],\"k\":[{\"anything-but\":\"v\"}]}",
        "{\"detail\":{\"userIdentity\":{\"type\":[{\"equals-ignore-case\":\"root\"}]}}}",
    };
    fuzz_limits(&fz_json.lim);
    fz_json.rs = fuzz_build_rules(&fz_json.lim, rules, sizeof rules / sizeof rules[0]);
    FUZZ_SETUP(tw_matcher_new(fz_json.rs, &fz_json.m) == TW_OK, "tw_matcher_new");
}

FUZZ_FN void fuzz_json_fini(void)
{
    tw_matcher_free(fz_json.m);
    tw_ruleset_free(fz_json.rs);
    fz_json.m = NULL;
    fz_json.rs = NULL;
}

/* Accessors agree with the tree: sizes, items, keys, last-wins lookup, strings' NUL terminator. */
FUZZ_FN void fuzz_json_walk(const tw_json *v)
{
    size_t n = 0;
    switch (tw_json_typeof(v)) {
    case TW_JSON_STRING: {
        const char *s = tw_json_string(v, &n);
        FUZZ_CHECK(s && s[n] == '\0', "string not NUL-terminated");
        break;
    }
    case TW_JSON_NUMBER: {
        const char *t = tw_json_number_text(v, &n);
        FUZZ_CHECK(t && n > 0 && t[n] == '\0', "number text missing");
        break;
    }
    case TW_JSON_ARRAY:
        for (size_t i = 0; i < tw_json_size(v); i++) {
            const tw_json *item = tw_json_at(v, i);
            FUZZ_CHECK(item != NULL, "array item %zu missing", i);
            if (item)
                fuzz_json_walk(item);
        }
        break;
    case TW_JSON_OBJECT:
        for (size_t i = 0; i < tw_json_size(v); i++) {
            size_t klen = 0;
            const char *k = tw_json_key(v, i, &klen);
            const tw_json *val = tw_json_at(v, i);
            FUZZ_CHECK(k && val && k[klen] == '\0', "member %zu missing", i);
            if (!k || !val)
                continue;
            if (strlen(k) == klen) {  /* keys holding NUL cannot be looked up by C string */
                const tw_json *got = tw_json_get(v, k);
                size_t last = i;
                for (size_t j = i + 1; j < tw_json_size(v); j++) {
                    size_t l2 = 0;
                    const char *k2 = tw_json_key(v, j, &l2);
                    if (l2 == klen && memcmp(k2, k, klen) == 0)
                        last = j;
                }
                FUZZ_CHECK(got == tw_json_at(v, last), "tw_json_get(\"%s\") is not the last member", k);
            }
            fuzz_json_walk(val);
        }
        break;
    default:
        break;
    }
}

FUZZ_FN void fuzz_json_check(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const tw_limits *lim = &fz_json.lim;
    tw_json_doc *doc = NULL, *doc2 = NULL;
    tw_error err = {0}, err2 = {0};
    tw_status rc = tw_json_parse(text, size, lim, &doc, &err);
    FUZZ_CHECK((rc == TW_OK) == (doc != NULL), "doc is set iff TW_OK (rc %d)", rc);
    FUZZ_CHECK(rc == TW_OK || err.code == rc, "err.code %d != rc %d", err.code, rc);
    if (rc == TW_OK && doc) {
        const tw_json *root = tw_json_root(doc);
        fuzz_json_walk(root);
        size_t n1 = 0, n2 = 0;
        char *d1 = tw_json_dump(root, &n1);
        FUZZ_CHECK(d1 != NULL, "dump failed");
        FUZZ_CHECK(n1 <= size, "the compact dump (%zu bytes) is longer than the input (%zu)", n1, size);
        tw_status rc2 = d1 ? tw_json_parse(d1, n1, lim, &doc2, &err2) : TW_ENOMEM;
        FUZZ_CHECK(rc2 == TW_OK, "the dump does not parse: %s\n    dump: %.200s", err2.msg, d1);
        if (rc2 == TW_OK) {
            char *d2 = tw_json_dump(tw_json_root(doc2), &n2);
            FUZZ_CHECK(d2 && n1 == n2 && memcmp(d1, d2, n1) == 0,
                       "dump of the reparsed dump differs\n    1: %.200s\n    2: %.200s", d1,
                       d2 ? d2 : "(null)");
            FUZZ_CHECK(tw__json_equal(root, tw_json_root(doc2)), "reparsed tree differs");
            free(d2);
        }
        free(d1);
        tw_json_doc_free(doc2);
    }

    /* Differential: the matcher validates the same text in one pass. */
    tw_match_result res;
    tw_status mrc = tw_match(fz_json.m, text, size, TW_EVENT_AUTO, &res, &err2);
    int object = fuzz_first_byte(data, size) == '{';
    if (mrc == TW_OK)
        FUZZ_CHECK(fuzz_result_sane(&res, tw_ruleset_size(fz_json.rs)), "bad match result");
    if (!object) {
        FUZZ_CHECK(mrc != TW_OK, "tw_match accepted a non-object");
    } else if (rc == TW_OK) {
        FUZZ_CHECK(mrc == TW_OK || mrc == TW_ELIMIT,
                   "tw_json_parse accepts the object, tw_match says %d: %s", mrc, err2.msg);
    } else {
        FUZZ_CHECK(mrc != TW_OK && mrc != TW_ELIMIT,
                   "tw_json_parse rejects the object (%s), tw_match says %d", err.msg, mrc);
    }
    if (rc != TW_OK && fuzz_is_syntax_error(rc) && mrc != TW_OK)
        FUZZ_CHECK(mrc == rc,
                   "tw_json_parse: %d (%s); tw_match: %d (%s)", rc, err.msg, mrc, err2.msg);
    tw_json_doc_free(doc);
}

#endif
