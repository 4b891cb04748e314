/* Unit test: matching allocates nothing per event once the matcher is warm.
 *
 * The test binary interposes malloc/calloc/realloc (an executable's definitions win over libc's for
 * the statically linked library too) and counts calls around a loop of tw_match. Under ASan the
 * sanitizer owns malloc, so the count is not taken there (the plain build runs this test too). */
#include <stdint.h>

#include "trailwatch/trailwatch.h"
#include "tw_test.h"

#if defined(__SANITIZE_ADDRESS__)
#define COUNTING 0
#else
#define COUNTING 1
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
static unsigned long allocations;
void *malloc(size_t n) { allocations++; return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { allocations++; return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { allocations++; return __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }
#endif

static const char *rules[] = {
    "{\"source\":[\"aws.ec2\"],\"detail\":{\"eventName\":[\"RunInstances\",{\"prefix\":\"Stop\"}]}}",
    "{\"detail\":{\"userIdentity\":{\"type\":[{\"anything-but\":[\"AWSService\"]}]},\"eventName\":[{\"suffix\":\"Policy\"}]}}",
    "{\"detail\":{\"sourceIPAddress\":[{\"cidr\":\"10.0.0.0/8\"}],\"errorCode\":[{\"exists\":true}]}}",
    "{\"detail\":{\"userIdentity\":{\"arn\":[{\"wildcard\":\"arn:aws:iam::*:user/*\"}]}}}",
    "{\"detail\":{\"eventName\":[{\"equals-ignore-case\":\"consolelogin\"}]}}",
    "{\"detail\":{\"requestParameters\":{\"items\":{\"a\":[1],\"b\":[{\"numeric\":[\">\",1]}]}}}}",
};

static const char *events[] = {
    ("{\"eventVersion\":\"1.08\",\"eventSource\":\"ec2.amazonaws.com\",\"eventName\":\"StopInstances\","
     "\"userIdentity\":{\"type\":\"IAMUser\",\"arn\":\"arn:aws:iam::1:user/al\\u00efce\"},"
     "\"sourceIPAddress\":\"10.1.2.3\",\"errorCode\":\"AccessDenied\",\"eventType\":\"AwsApiCall\"}"),
    ("{\"version\":\"0\",\"id\":\"x\",\"detail-type\":\"AWS Console Sign In via CloudTrail\",\"source\":\"aws.signin\","
     "\"detail\":{\"eventName\":\"ConsoleLogin\",\"requestParameters\":{\"items\":[{\"a\":1,\"b\":0},{\"a\":1,\"b\":2}]}}}"),
    "{\"version\":\"0\",\"detail\":{\"eventName\":\"PutBucketPolicy\",\"userIdentity\":{\"type\":\"Root\"}}}",
};

TW_TEST(matching_allocates_nothing_once_warm)
{
    tw_ruleset_builder *b;
    tw_error err;
    REQUIRE(tw_ruleset_builder_new(NULL, &b) == TW_OK);
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        tw_pattern *p;
        char name[8];
        snprintf(name, sizeof name, "r%zu", i);
        REQUIRE(tw_pattern_parse(rules[i], strlen(rules[i]), NULL, &p, &err) == TW_OK);
        REQUIRE(tw_ruleset_builder_add(b, name, p, NULL, &err) == TW_OK);
    }
    tw_ruleset *rs;
    REQUIRE(tw_ruleset_build(b, &rs, &err) == TW_OK);
    tw_ruleset_builder_free(b);
    tw_matcher *m;
    REQUIRE(tw_matcher_new(rs, &m) == TW_OK);
    size_t matched = 0;
    tw_match_result res;
    for (int warm = 0; warm < 2; warm++)
        for (size_t i = 0; i < sizeof events / sizeof events[0]; i++)
            REQUIRE(tw_match(m, events[i], strlen(events[i]), TW_EVENT_AUTO, &res, &err) == TW_OK);
#if COUNTING
    unsigned long before = allocations;
#endif
    for (int round = 0; round < 1000; round++)
        for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
            REQUIRE(tw_match(m, events[i], strlen(events[i]), TW_EVENT_AUTO, &res, &err) == TW_OK);
            matched += res.count;
        }
#if COUNTING
    CHECK_EQ_INT(allocations - before, 0);
#endif
    CHECK(matched >= 3000); /* the loop really matched: r0/r2/r3 on event 0, r4+r5 on event 1, r1 on 2 */
    tw_matcher_free(m);
    tw_ruleset_free(rs);
}

/* Sigma rules: case-insensitive globs, keywords over the whole record, a regex, a field reference, a
 * deep field whose object is read on demand, Unicode folding, a negation. */
static const char sigma_rules[] =
    "title: a\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n"
    "  sel: {eventName|contains: 'instance', userIdentity.arn|re: ':user/.+'}\n"
    "  f: {userAgent|startswith: 'Boto?'}\n  condition: sel and not f\n---\n"
    "title: b\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n"
    "  kw: ['ALÏCE']\n  condition: kw\n---\n"
    "title: c\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n"
    "  sel: {requestParameters|contains: 'secret', userIdentity.type|fieldref: eventType}\n"
    "  condition: sel\n";

static const char *sigma_events[] = {
    "{\"eventVersion\":\"1.08\",\"eventSource\":\"ec2.amazonaws.com\",\"eventName\":\"StopInstances\","
    "\"userIdentity\":{\"type\":\"IAMUser\",\"arn\":\"arn:aws:iam::1:user/al\\u00efce\"},\"userAgent\":\"aws-cli\"}",
    "{\"eventVersion\":\"1.08\",\"eventSource\":\"s3.amazonaws.com\",\"eventName\":\"GetObject\",\"eventType\":"
    "\"AwsApiCall\",\"userIdentity\":{\"type\":\"awsapicall\"},\"requestParameters\":{\"key\":[\"a\",{\"k\":\"my-Secret\"}]}}",
};

TW_TEST(sigma_matching_allocates_nothing_once_warm)
{
    tw_sigma *s;
    tw_ruleset_builder *b;
    tw_ruleset *rs;
    tw_error err;
    size_t nerr = 0;
    REQUIRE(tw_sigma_new(NULL, &s) == TW_OK);
    REQUIRE(tw_sigma_load_text(s, "a.yml", sigma_rules, strlen(sigma_rules), &nerr, NULL, NULL, &err) == TW_OK);
    REQUIRE(nerr == 0 && tw_sigma_count(s) == 3);
    REQUIRE(tw_ruleset_builder_new(NULL, &b) == TW_OK);
    REQUIRE(tw_sigma_add(s, b, &nerr, NULL, NULL, &err) == TW_OK);
    REQUIRE(tw_ruleset_build(b, &rs, &err) == TW_OK);
    tw_ruleset_builder_free(b);
    tw_matcher *m;
    REQUIRE(tw_matcher_new(rs, &m) == TW_OK);
    tw_match_result res;
    size_t matched = 0;
    for (int warm = 0; warm < 2; warm++)
        for (size_t i = 0; i < sizeof sigma_events / sizeof sigma_events[0]; i++)
            REQUIRE(tw_match(m, sigma_events[i], strlen(sigma_events[i]), TW_EVENT_AUTO, &res, &err) == TW_OK);
#if COUNTING
    unsigned long before = allocations;
#endif
    for (int round = 0; round < 1000; round++)
        for (size_t i = 0; i < sizeof sigma_events / sizeof sigma_events[0]; i++) {
            REQUIRE(tw_match(m, sigma_events[i], strlen(sigma_events[i]), TW_EVENT_AUTO, &res, &err) == TW_OK);
            matched += res.count;
        }
#if COUNTING
    CHECK_EQ_INT(allocations - before, 0);
#endif
    CHECK_EQ_INT(matched, 3000); /* a and b on event 0, c on event 1 */
    tw_matcher_free(m);
    tw_ruleset_free(rs);
    tw_sigma_free(s);
}

TW_TEST_MAIN()
