/* Unit tests: CloudTrail records wrapped as EventBridge events (tw_event_wrap_cloudtrail,
 * tw_event_is_cloudtrail_record), read the way the matcher reads them. */
#include "trailwatch/event.h"
#include "trailwatch/json.h"
#include "tw_test.h"

/* The wrapped record, parsed; NULL (and a failed check) when wrapping or parsing fails. */
static tw_json_doc *wrap(const char *record)
{
    char *out = NULL;
    size_t n = 0;
    tw_error err;
    tw_json_doc *d = NULL;
    if (tw_event_wrap_cloudtrail(record, strlen(record), &out, &n, &err) != TW_OK) {
        TW_FAIL_("wrap failed: %s", err.msg);
        return NULL;
    }
    if (tw_json_parse(out, n, NULL, &d, &err) != TW_OK)
        TW_FAIL_("the wrapped record is not JSON: %s: %s", err.msg, out);
    free(out);
    return d;
}

static const char *field(tw_json_doc *d, const char *key)
{
    return d ? tw_json_string(tw_json_get(tw_json_root(d), key), NULL) : NULL;
}

TW_TEST(wraps_a_record)
{
    tw_json_doc *d = wrap("{\"eventVersion\":\"1.08\",\"eventSource\":\"ec2.amazonaws.com\",\"eventType\":"
                          "\"AwsApiCall\",\"recipientAccountId\":\"123456789012\",\"awsRegion\":\"us-east-1\","
                          "\"eventTime\":\"2024-01-01T00:00:00Z\"}");
    REQUIRE(d);
    CHECK_EQ_STR(field(d, "source"), "aws.ec2");
    CHECK_EQ_STR(field(d, "detail-type"), "AWS API Call via CloudTrail");
    CHECK_EQ_STR(field(d, "account"), "123456789012");
    CHECK_EQ_STR(field(d, "region"), "us-east-1");
    CHECK_EQ_STR(field(d, "time"), "2024-01-01T00:00:00Z");
    CHECK_EQ_STR(field(d, "version"), "0");
    tw_json_doc_free(d);
}

/* Found by fuzz_event (tests/fuzz-regressions/fuzz_event/wrap-duplicate-key-last-not-string): the
 * matcher takes the last "eventTime", which is not a string, so there is no time; the wrapper kept
 * the first one. */
TW_TEST(last_duplicate_wins_even_when_not_a_string)
{
    tw_json_doc *d = wrap("{\"eventVersion\":\"1\",\"eventTime\":\"2024-01-01T00:00:00Z\",\"eventTime\":[],"
                          "\"eventSource\":\"s3.amazonaws.com\",\"eventSource\":\"ec2.amazonaws.com\"}");
    REQUIRE(d);
    CHECK(tw_json_get(tw_json_root(d), "time") == NULL);
    CHECK_EQ_STR(field(d, "source"), "aws.ec2");
    tw_json_doc_free(d);
}

/* Escapes mean what they decode to, as in the matcher (tests/fuzz-regressions/fuzz_event/wrap-*). */
TW_TEST(escaped_source_and_type_are_decoded)
{
    tw_json_doc *d = wrap("{\"eventVersion\":\"1\",\"eventSource\":\"ec2\\u002eamazonaws.com\","
                          "\"eventType\":\"Aws\\u0043onsoleSignIn\"}");
    REQUIRE(d);
    CHECK_EQ_STR(field(d, "source"), "aws.ec2");
    CHECK_EQ_STR(field(d, "detail-type"), "AWS Console Sign In via CloudTrail");
    tw_json_doc_free(d);
    /* a decoded source that needs escaping again */
    d = wrap("{\"eventSource\":\"a\\\"b\\\\c\\u0001.example.com\"}");
    REQUIRE(d);
    size_t n = 0;
    const char *s = tw_json_string(tw_json_get(tw_json_root(d), "source"), &n);
    CHECK(s && n == 10 && memcmp(s, "aws.a\"b\\c\x01", 10) == 0);
    tw_json_doc_free(d);
}

TW_TEST(escaped_keys_are_decoded)
{
    const char *rec = "{\"event\\u0056ersion\":\"1\",\"\\u0065ventSource\":\"iam.amazonaws.com\","
                      "\"aws\\u0052egion\":\"eu-west-1\"}";
    CHECK_EQ_INT(tw_event_is_cloudtrail_record(rec, strlen(rec)), 1);
    tw_json_doc *d = wrap(rec);
    REQUIRE(d);
    CHECK_EQ_STR(field(d, "source"), "aws.iam");
    CHECK_EQ_STR(field(d, "region"), "eu-west-1");
    tw_json_doc_free(d);
    const char *ev = "{\"eventVersion\":\"1\",\"eventSource\":\"x\",\"detail\\u002dtype\":\"y\"}";
    CHECK_EQ_INT(tw_event_is_cloudtrail_record(ev, strlen(ev)), 0);
}

TW_TEST_MAIN()
