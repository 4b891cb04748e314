/* Unit tests: pattern validation, rule-set compilation and matching semantics. */
#include "trailwatch/pattern.h"
#include "tw_test.h"

static char last_error[TW_ERROR_MSG_MAX];

/* 1 match, 0 no match, -1 pattern error, -2 event error. */
static int match_kind(const char *pattern, const char *event, tw_event_kind kind)
{
    tw_error err;
    tw_pattern *p = NULL;
    tw_ruleset_builder *b = NULL;
    tw_ruleset *rs = NULL;
    tw_matcher *m = NULL;
    int r = -1;
    last_error[0] = 0;
    if (tw_pattern_parse(pattern, strlen(pattern), NULL, &p, &err)) {
        snprintf(last_error, sizeof last_error, "%s", err.msg);
        return -1;
    }
    if (tw_ruleset_builder_new(NULL, &b) || tw_ruleset_builder_add(b, "r", p, NULL, &err) ||
        tw_ruleset_build(b, &rs, &err) || tw_matcher_new(rs, &m))
        goto out;
    tw_match_result res;
    if (tw_match(m, event, strlen(event), kind, &res, &err)) {
        snprintf(last_error, sizeof last_error, "%s", err.msg);
        r = -2;
        goto out;
    }
    r = res.count == 1;
out:
    tw_matcher_free(m);
    tw_ruleset_free(rs);
    tw_ruleset_builder_free(b);
    return r;
}

static int match(const char *pattern, const char *event) { return match_kind(pattern, event, TW_EVENT_AUTO); }

#define YES(p, e) do { int r_ = match(p, e); if (r_ != 1) TW_FAIL_("expected match (got %d %s): %s ~ %s", r_, last_error, p, e); } while (0)
#define NO(p, e) do { int r_ = match(p, e); if (r_ != 0) TW_FAIL_("expected no match (got %d %s): %s ~ %s", r_, last_error, p, e); } while (0)
#define BADP(p, frag) do { int r_ = match(p, "{}"); if (r_ != -1 || !strstr(last_error, frag)) TW_FAIL_("expected pattern error containing '%s' (got %d '%s'): %s", frag, r_, last_error, p); } while (0)

TW_TEST(exact_values)
{
    YES("{\"source\":[\"aws.ec2\"]}", "{\"source\":\"aws.ec2\"}");
    NO("{\"source\":[\"aws.ec2\"]}", "{\"source\":\"aws.ec\"}");
    NO("{\"source\":[\"aws.ec2\"]}", "{\"other\":\"aws.ec2\"}");
    YES("{\"a\":[\"x\",\"y\"]}", "{\"a\":\"y\"}");
    YES("{\"a\":[\"\"]}", "{\"a\":\"\"}");
    NO("{\"a\":[\"\"]}", "{\"a\":null}");
    YES("{\"a\":[null]}", "{\"a\":null}");
    NO("{\"a\":[null]}", "{}");
    NO("{\"a\":[\"5\"]}", "{\"a\":5}");
    NO("{\"a\":[5]}", "{\"a\":\"5\"}");
    YES("{\"a\":[true]}", "{\"a\":true}");
    NO("{\"a\":[true]}", "{\"a\":\"true\"}");
    YES("{\"a\":{\"b\":[1]}}", "{\"a\":{\"b\":1,\"c\":[1,2,{\"x\":\"y\"}]}}");
    YES("{\"a\":[\"\\u00e9\"]}", "{\"a\":\"\xc3\xa9\"}");
    YES("{\"a\":[\"\xc3\xa9\"]}", "{\"a\":\"\\u00e9\"}");
}

TW_TEST(numbers)
{
    YES("{\"a\":[300]}", "{\"a\":3.0e2}");
    YES("{\"a\":[300.0]}", "{\"a\":300}");
    YES("{\"a\":[0]}", "{\"a\":-0}");
    YES("{\"a\":[12345678901234567890]}", "{\"a\":12345678901234567890}");
    NO("{\"a\":[12345678901234567890]}", "{\"a\":12345678901234567891}");
    NO("{\"a\":[9007199254740992]}", "{\"a\":9007199254740993}");
    YES("{\"a\":[{\"numeric\":[\">\",0,\"<=\",5]}]}", "{\"a\":5}");
    NO("{\"a\":[{\"numeric\":[\">\",0,\"<=\",5]}]}", "{\"a\":0}");
    NO("{\"a\":[{\"numeric\":[\">\",0]}]}", "{\"a\":\"5\"}");
    YES("{\"a\":[{\"numeric\":[\"=\",3e2]}]}", "{\"a\":300}");
    YES("{\"a\":[{\"numeric\":[\"<\",-1e300]}]}", "{\"a\":-1e301}");
    BADP("{\"a\":[{\"numeric\":[\"<\",5,\">\",1]}]}", "lower bound");
    BADP("{\"a\":[{\"numeric\":[\">\",5,\"<\",1]}]}", "less than");
    BADP("{\"a\":[{\"numeric\":[\">\",\"5\"]}]}", "JSON numbers");
}

TW_TEST(prefix_suffix_eic_wildcard)
{
    YES("{\"a\":[{\"prefix\":\"Del\"}]}", "{\"a\":\"DeleteTable\"}");
    NO("{\"a\":[{\"prefix\":\"Del\"}]}", "{\"a\":\"deleteTable\"}");
    YES("{\"a\":[{\"prefix\":\"\"}]}", "{\"a\":\"x\"}");
    NO("{\"a\":[{\"prefix\":\"\"}]}", "{\"a\":5}");
    YES("{\"a\":[{\"suffix\":\".png\"}]}", "{\"a\":\"x.png\"}");
    YES("{\"a\":[{\"prefix\":{\"equals-ignore-case\":\"DEL\"}}]}", "{\"a\":\"deleteTable\"}");
    YES("{\"a\":[{\"suffix\":{\"equals-ignore-case\":\"TABLE\"}}]}", "{\"a\":\"deleteTable\"}");
    YES("{\"a\":[{\"equals-ignore-case\":\"ALICE\"}]}", "{\"a\":\"alice\"}");
    YES("{\"a\":[{\"equals-ignore-case\":\"\xe2\x84\xaa\"}]}", "{\"a\":\"k\"}"); /* Kelvin sign */
    YES("{\"a\":[{\"equals-ignore-case\":\"k\"}]}", "{\"a\":\"\xe2\x84\xaa\"}");
    /* Folding changes a character's UTF-8 length (Kelvin sign 3 bytes -> 1 above; U+023A 2 -> 3 here):
     * the index's key-length filter must still let these values through. */
    YES("{\"a\":[{\"equals-ignore-case\":\"x\xc8\xba\"}]}", "{\"a\":\"X\xe2\xb1\xa5\"}");
    YES("{\"a\":[{\"equals-ignore-case\":\"x\xe2\xb1\xa5\"}]}", "{\"a\":\"X\xc8\xba\"}");
    YES("{\"a\":[{\"equals-ignore-case\":\"kkk\"}]}", "{\"a\":\"\xe2\x84\xaa\xe2\x84\xaa\xe2\x84\xaa\"}");
    NO("{\"a\":[{\"equals-ignore-case\":\"ss\"}]}", "{\"a\":\"\xc3\x9f\"}");
    YES("{\"a\":[{\"wildcard\":\"arn:*:role/*\"}]}", "{\"a\":\"arn:aws:iam::1:role/x\"}");
    YES("{\"a\":[{\"wildcard\":\"*\"}]}", "{\"a\":\"\"}");
    YES("{\"a\":[{\"wildcard\":\"a*b*c\"}]}", "{\"a\":\"abc\"}");
    NO("{\"a\":[{\"wildcard\":\"a*b*c\"}]}", "{\"a\":\"acb\"}");
    YES("{\"a\":[{\"wildcard\":\"a\\\\*b\"}]}", "{\"a\":\"a*b\"}");
    NO("{\"a\":[{\"wildcard\":\"a\\\\*b\"}]}", "{\"a\":\"axb\"}");
    YES("{\"a\":[{\"wildcard\":\"*ab*ab\"}]}", "{\"a\":\"xabab\"}");
    NO("{\"a\":[{\"wildcard\":\"ab*ba\"}]}", "{\"a\":\"aba\"}");
    BADP("{\"a\":[{\"wildcard\":\"a**b\"}]}", "consecutive");
    BADP("{\"a\":[{\"wildcard\":\"a\\\\nb\"}]}", "invalid escape");
}

TW_TEST(anything_but_exists_cidr)
{
    YES("{\"a\":[{\"anything-but\":\"x\"}]}", "{\"a\":\"y\"}");
    NO("{\"a\":[{\"anything-but\":\"x\"}]}", "{\"a\":\"x\"}");
    NO("{\"a\":[{\"anything-but\":\"x\"}]}", "{}");
    YES("{\"a\":[{\"anything-but\":\"x\"}]}", "{\"a\":null}");
    YES("{\"a\":[{\"anything-but\":[\"x\",\"y\"]}]}", "{\"a\":[\"x\",\"z\"]}");
    NO("{\"a\":[{\"anything-but\":[\"x\",\"y\"]}]}", "{\"a\":[\"x\",\"y\"]}");
    NO("{\"a\":[{\"anything-but\":[300]}]}", "{\"a\":3e2}");
    NO("{\"a\":[{\"anything-but\":{\"prefix\":\"De\"}}]}", "{\"a\":\"Delete\"}");
    YES("{\"a\":[{\"anything-but\":{\"suffix\":[\"x\",\"y\"]}}]}", "{\"a\":\"az\"}");
    NO("{\"a\":[{\"anything-but\":{\"equals-ignore-case\":\"ROOT\"}}]}", "{\"a\":\"Root\"}");
    NO("{\"a\":[{\"anything-but\":{\"wildcard\":\"*Role\"}}]}", "{\"a\":\"AssumedRole\"}");
    BADP("{\"a\":[{\"anything-but\":[\"x\",1]}]}", "only strings or only numbers");
    BADP("{\"a\":[{\"anything-but\":[]}]}", "must not be empty");
    YES("{\"a\":[{\"exists\":true}]}", "{\"a\":null}");
    NO("{\"a\":[{\"exists\":true}]}", "{\"a\":[]}");
    YES("{\"a\":[{\"exists\":false}]}", "{\"a\":[]}");
    YES("{\"a\":[{\"exists\":false}]}", "{\"b\":1}");
    NO("{\"a\":[{\"exists\":false}]}", "{\"a\":null}");
    NO("{\"a\":[{\"exists\":true}]}", "{\"a\":{\"b\":1}}");
    YES("{\"a\":[{\"exists\":false}]}", "{\"a\":{\"b\":1}}");
    YES("{\"ip\":[{\"cidr\":\"10.0.0.0/8\"}]}", "{\"ip\":\"10.1.2.3\"}");
    NO("{\"ip\":[{\"cidr\":\"10.0.0.0/8\"}]}", "{\"ip\":\"11.1.2.3\"}");
    YES("{\"ip\":[{\"cidr\":\"10.1.2.3/8\"}]}", "{\"ip\":\"10.200.2.3\"}");
    YES("{\"ip\":[{\"cidr\":\"2001:db8::/32\"}]}", "{\"ip\":\"2001:db8:1::5\"}");
    NO("{\"ip\":[{\"cidr\":\"0.0.0.0/0\"}]}", "{\"ip\":\"::1\"}");
    YES("{\"ip\":[{\"cidr\":\"1.2.3.4/32\"}]}", "{\"ip\":\"1.2.3.4\"}");
    NO("{\"ip\":[{\"cidr\":\"1.2.3.4/32\"}]}", "{\"ip\":\"AWS Internal\"}");
    BADP("{\"ip\":[{\"cidr\":\"1.2.3.4/33\"}]}", "0..32");
}

TW_TEST(or_dotted_arrays)
{
    const char *p = "{\"source\":[\"aws.ec2\"],\"$or\":[{\"a\":[1]},{\"b\":[2]}]}";
    YES(p, "{\"source\":\"aws.ec2\",\"b\":2}");
    NO(p, "{\"source\":\"aws.ec2\",\"b\":3}");
    NO(p, "{\"source\":\"aws.s3\",\"a\":1}");
    YES("{\"d\":{\"$or\":[{\"x\":[1]},{\"$or\":[{\"y\":[2]},{\"z\":[3]}]}]}}", "{\"d\":{\"z\":3}}");
    BADP("{\"$or\":[{\"a\":[1]}]}", "at least two");
    YES("{\"a.b\":[1]}", "{\"a\":{\"b\":1}}");
    YES("{\"a\":{\"b\":[1]}}", "{\"a.b\":1}");
    YES("{\"a\":{\"b\":{\"c\":[1]}}}", "{\"a.b\":{\"c\":1}}");
    YES("{\".a\":[1]}", "{\"\":{\"a\":1}}"); /* an empty first segment is a key, not the root */
    NO("{\".a\":[1]}", "{\"a\":1}");
    YES("{\"a..b\":[1]}", "{\"a\":{\"\":{\"b\":1}}}");
    YES("{\"a\":[1],\"a\":[2]}", "{\"a\":2}");
    NO("{\"a\":[1],\"a\":[2]}", "{\"a\":1}");
    /* array consistency */
    NO("{\"a\":{\"x\":[1],\"y\":[4]}}", "{\"a\":[{\"x\":1,\"y\":2},{\"x\":3,\"y\":4}]}");
    YES("{\"a\":{\"x\":[3],\"y\":[4]}}", "{\"a\":[{\"x\":1,\"y\":2},{\"x\":3,\"y\":4}]}");
    YES("{\"a\":{\"x\":[1]},\"b\":{\"y\":[4]}}", "{\"a\":[{\"x\":1}],\"b\":[{\"y\":3},{\"y\":4}]}");
    YES("{\"a\":[2]}", "{\"a\":[1,2,3]}");
    YES("{\"r\":{\"items\":{\"ip\":[{\"cidr\":\"0.0.0.0/0\"}],\"port\":[22]}}}",
        "{\"r\":{\"items\":[{\"ip\":\"10.0.0.1\",\"port\":80},{\"ip\":\"1.2.3.4\",\"port\":22}]}}");
}

TW_TEST(invalid_patterns_name_the_path)
{
    BADP("{}", "non-empty");
    BADP("{\"detail\":{}}", "detail: an object");
    BADP("{\"detail\":{\"eventName\":[{\"prefix\":5}]}}", "detail.eventName: \"prefix\" must be a string");
    BADP("{\"a\":[]}", "a: an array of matchers must not be empty");
    BADP("{\"a\":\"x\"}", "a: must be an object or an array");
    BADP("{\"a\":[{\"prefix\":\"x\",\"suffix\":\"y\"}]}", "exactly one operator");
    BADP("{\"a\":[{\"Prefix\":\"x\"}]}", "unknown operator \"Prefix\"");
    BADP("{\"a\":[{\"exists\":\"yes\"}]}", "\"exists\" must be true or false");
    BADP("{\"a\":[[1]]}", "must not be an array");
    BADP("[1]", "must be a JSON object");
    BADP("{\"a\":[1", "not valid JSON");
}

TW_TEST(cloudtrail_wrapping)
{
    const char *rec = "{\"eventVersion\":\"1.08\",\"eventSource\":\"dynamodb.amazonaws.com\","
                      "\"eventName\":\"CreateTable\",\"eventType\":\"AwsApiCall\",\"awsRegion\":\"us-east-1\","
                      "\"recipientAccountId\":\"123456789012\",\"eventTime\":\"2024-01-01T00:00:00Z\","
                      "\"eventID\":\"e1\",\"resources\":[{\"ARN\":\"arn:x\"}]}";
    YES("{\"source\":[\"aws.dynamodb\"],\"detail\":{\"eventName\":[\"CreateTable\"]}}", rec);
    YES("{\"detail-type\":[\"AWS API Call via CloudTrail\"],\"account\":[\"123456789012\"]}", rec);
    YES("{\"region\":[\"us-east-1\"],\"time\":[\"2024-01-01T00:00:00Z\"],\"version\":[\"0\"]}", rec);
    YES("{\"detail\":{\"resources\":{\"ARN\":[\"arn:x\"]}}}", rec);
    YES("{\"resources\":[{\"exists\":false}]}", rec);
    NO("{\"eventName\":[\"CreateTable\"]}", rec);
    YES("{\"eventName\":[\"CreateTable\"]}", "{\"eventName\":\"CreateTable\",\"detail-type\":\"x\",\"eventVersion\":\"1\",\"eventSource\":\"s\"}");
    CHECK_EQ_INT(match_kind("{\"eventName\":[\"CreateTable\"]}", rec, TW_EVENT_ENVELOPE), 1);
    CHECK_EQ_INT(match_kind("{\"detail\":{\"eventName\":[\"CreateTable\"]}}", "{\"eventName\":\"CreateTable\"}",
                            TW_EVENT_CLOUDTRAIL), 1);
}

TW_TEST(invalid_events)
{
    CHECK_EQ_INT(match("{\"a\":[1]}", "{\"a\":1"), -2);
    CHECK_CONTAINS(last_error, "line 1, column 7");
    CHECK_EQ_INT(match("{\"a\":[1]}", "[1]"), -2);
    CHECK_CONTAINS(last_error, "must be a JSON object");
    CHECK_EQ_INT(match("{\"a\":[1]}", "{\"b\":\"\xff\"}"), -2);
    CHECK_CONTAINS(last_error, "UTF-8");
    CHECK_EQ_INT(match("{\"a\":[1]}", "{\"a\":1} x"), -2);
    CHECK_EQ_INT(match("{\"a\":[1]}", "{\"b\":[tru]}"), -2);
    char deep[3000];
    size_t n = 0;
    deep[n++] = '{';
    memcpy(deep + n, "\"b\":", 4), n += 4;
    for (int i = 0; i < 1100; i++)
        deep[n++] = '[';
    for (int i = 0; i < 1100; i++)
        deep[n++] = ']';
    deep[n++] = '}';
    deep[n] = 0;
    CHECK_EQ_INT(match("{\"a\":[1]}", deep), -2);
    CHECK_CONTAINS(last_error, "too deep");
}

TW_TEST(values_limit_is_exact_and_after_validation)
{
    tw_limits lim;
    tw_limits_default(&lim);
    lim.event_values = 4;
    tw_ruleset_builder *b;
    tw_pattern *p;
    tw_error err;
    REQUIRE(tw_ruleset_builder_new(&lim, &b) == TW_OK);
    REQUIRE(tw_pattern_parse("{\"a\":[9]}", 9, &lim, &p, &err) == TW_OK);
    REQUIRE(tw_ruleset_builder_add(b, "r", p, NULL, &err) == TW_OK);
    tw_ruleset *rs;
    REQUIRE(tw_ruleset_build(b, &rs, &err) == TW_OK);
    tw_ruleset_builder_free(b);
    tw_matcher *m;
    REQUIRE(tw_matcher_new(rs, &m) == TW_OK);
    tw_match_result res;
    const char *four = "{\"a\":[1,2,3,9]}", *five = "{\"a\":[1,2,3,4,9]}", *bad = "{\"a\":[1,2,3,4,9],x}";
    CHECK_EQ_INT(tw_match(m, four, strlen(four), TW_EVENT_AUTO, &res, &err), TW_OK);
    CHECK_EQ_INT(res.count, 1);
    CHECK_EQ_INT(tw_match(m, five, strlen(five), TW_EVENT_AUTO, &res, &err), TW_ELIMIT);
    CHECK_CONTAINS(err.msg, "more than 4 values");
    CHECK_EQ_INT(tw_match(m, bad, strlen(bad), TW_EVENT_AUTO, &res, &err), TW_EJSON); /* the JSON error wins */
    tw_matcher_free(m);
    tw_ruleset_free(rs);
}

/* A conjunction whose anchor proves its first predicates still tests the others: composite anchors
 * (an exact value, then a second field), and one whose exact value is too long for a namespace and
 * falls back to a plain anchor (that fallback once skipped the second field). */
TW_TEST(anchored_conjunctions_test_the_rest)
{
    char pat[1024], ev[1024];
    char v[301];
    memset(v, 'x', 300);
    v[300] = 0;
    snprintf(pat, sizeof pat, "{\"a\":[\"%s\"],\"b\":[\"x\"]}", v);
    snprintf(ev, sizeof ev, "{\"a\":\"%s\",\"b\":\"y\"}", v);
    NO(pat, ev);
    snprintf(ev, sizeof ev, "{\"a\":\"%s\",\"b\":\"x\"}", v);
    YES(pat, ev);
    /* composite anchor (a, then b's prefix) with a third predicate, which comes after them */
    const char *p3 = "{\"a\":[\"s\"],\"c\":[{\"anything-but\":\"no\"}],\"b\":[{\"prefix\":\"Put\"}]}";
    YES(p3, "{\"a\":\"s\",\"b\":\"PutX\",\"c\":\"yes\"}");
    NO(p3, "{\"a\":\"s\",\"b\":\"PutX\",\"c\":\"no\"}");
    NO(p3, "{\"a\":\"s\",\"b\":\"GetX\",\"c\":\"yes\"}");
    NO(p3, "{\"a\":\"t\",\"b\":\"PutX\",\"c\":\"yes\"}");
    /* the anchor's values inside array elements: the other predicate must hold in the same element */
    const char *p4 = "{\"r\":{\"a\":[\"s\"],\"b\":[\"x\"]}}";
    YES(p4, "{\"r\":[{\"a\":\"s\",\"b\":\"x\"},{\"a\":\"t\",\"b\":\"y\"}]}");
    NO(p4, "{\"r\":[{\"a\":\"s\",\"b\":\"y\"},{\"a\":\"t\",\"b\":\"x\"}]}");
}

/* A prefix with an exact value on another field is anchored on the pair: both must hold, alone or
 * with the exact value among several, and with the values in arrays. */
TW_TEST(prefix_with_exact_value_anchors_on_both)
{
    const char *p = "{\"s\":[\"iam\",\"sts\"],\"n\":[{\"prefix\":\"Create\"}]}";
    YES(p, "{\"s\":\"sts\",\"n\":\"CreateRole\"}");
    YES(p, "{\"s\":\"iam\",\"n\":\"Create\"}");
    NO(p, "{\"s\":\"ec2\",\"n\":\"CreateRole\"}");
    NO(p, "{\"s\":\"iam\",\"n\":\"DeleteRole\"}");
    NO(p, "{\"n\":\"CreateRole\"}");
    YES(p, "{\"s\":[\"ec2\",\"iam\"],\"n\":[\"Get\",\"CreateUser\"]}");
    const char *q = "{\"t\":[\"IAMUser\"],\"n\":[{\"suffix\":\"Role\"}],\"x\":[{\"exists\":false}]}";
    YES(q, "{\"t\":\"IAMUser\",\"n\":\"AssumeRole\"}");
    NO(q, "{\"t\":\"IAMUser\",\"n\":\"AssumeRole\",\"x\":1}");
    NO(q, "{\"t\":\"Root\",\"n\":\"AssumeRole\"}");
}

/* Object keys are found by length and bytes, also past the first 8 and on a node with many keys. */
TW_TEST(keys_by_length_and_bytes)
{
    YES("{\"abcdefghX\":[\"1\"]}", "{\"abcdefghX\":\"1\"}");
    NO("{\"abcdefghX\":[\"1\"]}", "{\"abcdefghY\":\"1\"}");
    NO("{\"abcdefgh\":[\"1\"]}", "{\"abcdefghX\":\"1\"}");
    NO("{\"abc\":[\"1\"]}", "{\"abd\":\"1\",\"ab\":\"1\",\"abcd\":\"1\"}");
    YES("{\"a\":{\"bcdefghijk\":[\"1\"]}}", "{\"a.bcdefghijk\":\"1\"}");
    char pat[2048], ev[256];
    size_t n = 0;
    n += (size_t)snprintf(pat + n, sizeof pat - n, "{\"o\":{");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(pat + n, sizeof pat - n, "%s\"key%02d\":[{\"exists\":%s}]", i ? "," : "",
                              i, i == 39 ? "true" : "false");
    snprintf(pat + n, sizeof pat - n, "}}");
    snprintf(ev, sizeof ev, "{\"o\":{\"key39\":0}}");
    YES(pat, ev);
    snprintf(ev, sizeof ev, "{\"o\":{\"key39\":0,\"key07\":0}}");
    NO(pat, ev);
}

/* A node's edges are a small table by key signature: a record's top-level keys share signatures
 * (eventName, eventType, eventTime: 9 bytes from 'e' to 'e'); each must still find its own edge, at
 * every table size, and no near miss may. */
TW_TEST(wide_nodes_find_each_key)
{
    static const char *const keys[] = {"eventName", "eventType", "eventTime", "awsRegion", "requestID", "errorCode",
                                       "eventVersion", "userIdentity", "eventSource", "sourceIPAddress", "userAgent",
                                       "requestParameters", "responseElements", "eventID", "readOnly",
                                       "managementEvent", "recipientAccountId", "eventCategory", "tlsDetails",
                                       "errorMessage", "apiVersion", "sharedEventID", "vpcEndpointId", "resources"};
    size_t sizes[] = {1, 3, 12, 24};
    for (size_t z = 0; z < sizeof sizes / sizeof *sizes; z++) {
        size_t nk = sizes[z];
        for (size_t want = 0; want < nk; want++) {
            /* rule: every one of the nk keys present, key `want` equal to "v" */
            char pat[2048], all[2048], miss[2048];
            size_t n = (size_t)snprintf(pat, sizeof pat, "{\"o\":{");
            size_t a = (size_t)snprintf(all, sizeof all, "{\"o\":{");
            size_t b = (size_t)snprintf(miss, sizeof miss, "{\"o\":{");
            for (size_t i = 0; i < nk; i++) {
                n += (size_t)snprintf(pat + n, sizeof pat - n, "%s\"%s\":[%s]", i ? "," : "", keys[i],
                                      i == want ? "\"v\"" : "{\"exists\":true}");
                a += (size_t)snprintf(all + a, sizeof all - a, "%s\"%s\":\"v\"", i ? "," : "", keys[i]);
                /* the wanted key spelled with its last byte changed: same length, same first byte */
                char k[64];
                snprintf(k, sizeof k, "%s", keys[i]);
                if (i == want)
                    k[strlen(k) - 1] = 'X';
                b += (size_t)snprintf(miss + b, sizeof miss - b, "%s\"%s\":\"v\"", i ? "," : "", k);
            }
            snprintf(pat + n, sizeof pat - n, "}}");
            snprintf(all + a, sizeof all - a, "}}");
            snprintf(miss + b, sizeof miss - b, "}}");
            if (match(pat, all) != 1 || match(pat, miss) != 0) {
                TW_FAIL_("%zu keys, wanted %s: all %d, near miss %d", nk, keys[want], match(pat, all), match(pat, miss));
            }
        }
    }
}

TW_TEST(many_rules_report_all_matches_in_order)
{
    tw_ruleset_builder *b;
    REQUIRE(tw_ruleset_builder_new(NULL, &b) == TW_OK);
    const char *pats[] = {"{\"a\":[1]}", "{\"a\":[{\"numeric\":[\">\",0]}]}", "{\"b\":[\"x\"]}",
                          "{\"a\":[{\"exists\":true}]}", "{\"c\":[{\"exists\":false}]}"};
    char name[16];
    tw_error err;
    for (int i = 0; i < 5; i++) {
        tw_pattern *p;
        REQUIRE(tw_pattern_parse(pats[i], strlen(pats[i]), NULL, &p, &err) == TW_OK);
        snprintf(name, sizeof name, "r%d", i);
        REQUIRE(tw_ruleset_builder_add(b, name, p, NULL, &err) == TW_OK);
    }
    tw_pattern *dup;
    REQUIRE(tw_pattern_parse("{\"a\":[1]}", 9, NULL, &dup, &err) == TW_OK);
    CHECK_EQ_INT(tw_ruleset_builder_add(b, "r1", dup, NULL, &err), TW_EEXIST);
    tw_ruleset *rs;
    REQUIRE(tw_ruleset_build(b, &rs, &err) == TW_OK);
    tw_ruleset_builder_free(b);
    tw_matcher *m;
    REQUIRE(tw_matcher_new(rs, &m) == TW_OK);
    tw_match_result res;
    const char *ev = "{\"a\":1,\"id\":\"ev-1\"}";
    REQUIRE(tw_match(m, ev, strlen(ev), TW_EVENT_AUTO, &res, &err) == TW_OK);
    CHECK_EQ_INT(res.count, 4);
    if (res.count == 4) {
        CHECK_EQ_INT(res.rules[0], 0);
        CHECK_EQ_INT(res.rules[1], 1);
        CHECK_EQ_INT(res.rules[2], 3);
        CHECK_EQ_INT(res.rules[3], 4);
    }
    CHECK(res.id_len == 4 && memcmp(res.id, "ev-1", 4) == 0);
    CHECK_EQ_STR(tw_ruleset_name(rs, 2), "r2");
    tw_matcher_free(m);
    tw_ruleset_free(rs);
}

TW_TEST_MAIN()
