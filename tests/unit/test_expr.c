/* tests/unit/test_expr.c: facts expressions (src/expr/): parsing errors, paths, operators, functions,
 * money rounding, caps. */
#include <string.h>

#include "expr/expr.h"
#include "json/json_int.h"
#include "tw_test.h"

static const char EVENT[] =
    "{\"source\":\"aws.dynamodb\",\"detail-type\":\"AWS API Call via CloudTrail\",\"region\":\"us-east-1\","
    "\"detail\":{\"awsRegion\":\"us-east-1\",\"userIdentity\":{\"type\":\"IAMUser\",\"userName\":\"alice\"},"
    "\"requestParameters\":{\"tableName\":\"orders\",\"provisionedThroughput\":{\"readCapacityUnits\":5,"
    "\"writeCapacityUnits\":5},\"globalSecondaryIndexes\":[{\"indexName\":\"a\",\"provisionedThroughput\":"
    "{\"readCapacityUnits\":5,\"writeCapacityUnits\":5}},{\"indexName\":\"b\"}]},\"a.b\":1,\"n\":\"42\"}}";
static const char DATA[] =
    "{\"prices\":{\"hours\":730,\"regions\":{\"us-east-1\":{\"rcu\":0.00013,\"wcu\":0.00065}}}}";
static const char EXTRA[] = "{\"facts\":{\"x\":7},\"source\":\"shadowed\"}";

/* Evaluates text (names: "a" = 10, "s" = "str") and writes the result's JSON into out. */
static int eval(const char *text, char *out, size_t size)
{
    tw_json_doc *ev = NULL, *data = NULL, *extra = NULL, *work = tw__json_doc_new();
    tw_expr *e = NULL;
    tw_error err;
    int ok = 0;
    const char *names[] = {"a", "s"};
    if (tw_json_parse(EVENT, sizeof EVENT - 1, NULL, &ev, &err) || tw_json_parse(DATA, sizeof DATA - 1, NULL, &data, &err) ||
        tw_json_parse(EXTRA, sizeof EXTRA - 1, NULL, &extra, &err) || !work)
        goto out;
    const tw_json *values[] = {tw__json_new_double(work, 10), tw__json_new_string(work, "str", 3)};
    if (tw__expr_compile(text, strlen(text), names, 2, &e, &err)) {
        snprintf(out, size, "ERROR %.400s", err.msg);
        goto out;
    }
    tw_expr_env env = {tw_json_root(ev), tw_json_root(extra), tw_json_root(data), values, work};
    const tw_json *v;
    if (tw__expr_eval(e, &env, &v, &err)) {
        snprintf(out, size, "FAIL %.400s", err.msg);
        goto out;
    }
    tw_buf b = TW_BUF_INIT;
    tw__json_write(&b, v);
    snprintf(out, size, "%.*s", (int)b.len, b.data ? b.data : "");
    tw__buf_free(&b);
    ok = 1;
out:
    tw__expr_free(e);
    tw_json_doc_free(ev);
    tw_json_doc_free(data);
    tw_json_doc_free(extra);
    tw_json_doc_free(work);
    return ok;
}

#define EXPECT(text, want)                                                              \
    do {                                                                                \
        char got_[512];                                                                 \
        eval(text, got_, sizeof got_);                                                  \
        if (strcmp(got_, want) != 0)                                                    \
            TW_FAIL_("%s gave %s, expected %s", text, got_, want);                      \
    } while (0)

TW_TEST(paths)
{
    EXPECT("$.detail.requestParameters.tableName", "\"orders\"");
    EXPECT("$.detail-type", "\"AWS API Call via CloudTrail\"");
    EXPECT("$['detail']['a.b']", "1");
    EXPECT("$.detail.requestParameters.globalSecondaryIndexes[0].indexName", "\"a\"");
    EXPECT("$.detail.requestParameters.globalSecondaryIndexes[-1].indexName", "\"b\"");
    EXPECT("$.detail.requestParameters.globalSecondaryIndexes[*].indexName", "[\"a\",\"b\"]");
    EXPECT("$.detail.requestParameters.globalSecondaryIndexes[*].provisionedThroughput.readCapacityUnits", "[5]");
    EXPECT("$.detail.nope.deeper", "null");
    EXPECT("$.facts.x", "7");                           /* extra's members come first */
    EXPECT("$.source", "\"shadowed\"");
    EXPECT("data.prices.regions[$.region].rcu", "0.00013");
    EXPECT("data.prices.regions['eu-west-1']", "null");
    EXPECT("a", "10");
}

TW_TEST(operators)
{
    EXPECT("1 + 2 * 3", "7");
    EXPECT("(1 + 2) * 3", "9");
    EXPECT("-a + 1", "-9");
    EXPECT("7 % 4", "3");
    EXPECT("1 / 0", "null");
    EXPECT("$.detail.n + 1", "43");                     /* numeric strings count as numbers */
    EXPECT("s + 1", "null");
    EXPECT("$.detail.nope * 2", "null");
    EXPECT("a == 10 and s == \"str\"", "true");
    EXPECT("a != 10 or not (s == 'x')", "true");
    EXPECT("a >= 10", "true");
    EXPECT("\"b\" < \"a\"", "false");
    EXPECT("a < \"z\"", "false");                      /* different kinds are not ordered */
    EXPECT("$.detail.nope == null", "true");
}

TW_TEST(functions)
{
    EXPECT("sum($.detail.requestParameters.provisionedThroughput.readCapacityUnits, "
           "$.detail.requestParameters.globalSecondaryIndexes[*].provisionedThroughput.readCapacityUnits)", "10");
    EXPECT("sum($.detail.nope)", "0");
    EXPECT("count($.detail.requestParameters.globalSecondaryIndexes)", "2");
    EXPECT("min(3, 1, 2)", "1");
    EXPECT("max($.detail.nope)", "null");
    EXPECT("if(a > 5, 'big', 'small')", "\"big\"");
    EXPECT("if(a > 50, 'big')", "null");
    EXPECT("coalesce($.detail.userIdentity.arn, '', $.detail.userIdentity.userName)", "\"alice\"");
    EXPECT("format('%s has %d RCU: $%.2f (%%)', 'orders', 9.5, 5.694)", "\"orders has 10 RCU: $5.69 (%)\"");
    EXPECT("format('%x %s')", "\"%x \"");               /* unknown conversions stay text; missing args are empty */
    EXPECT("lower('AbC')", "\"abc\"");
    EXPECT("upper(s)", "\"STR\"");
    EXPECT("concat(s, '-', a)", "\"str-10\"");
    EXPECT("join($.detail.requestParameters.globalSecondaryIndexes[*].indexName, '+')", "\"a+b\"");
    EXPECT("contains('arn:aws:iam', 'iam')", "true");
    EXPECT("contains($.detail.requestParameters.globalSecondaryIndexes[*].indexName, 'b')", "true");
    EXPECT("startswith(s, 'st') and endswith(s, 'tr')", "true");
    EXPECT("number('2.5') + 1", "3.5");
    EXPECT("string(a)", "\"10\"");
    EXPECT("get(data.prices, 'hours')", "730");
    EXPECT("get(data.prices, 'nope', 1)", "1");
    EXPECT("first($.detail.requestParameters.globalSecondaryIndexes[*].indexName)", "\"a\"");
    EXPECT("last($.detail.requestParameters.globalSecondaryIndexes[*].indexName)", "\"b\"");
}

TW_TEST(money_rounds_half_up_despite_binary_noise)
{
    EXPECT("round(0.4745, 3)", "0.475");                /* 0.4745 is 0.47449999... as a double */
    EXPECT("format('%.2f', 1.005)", "\"1.01\"");
    EXPECT("format('%.2f', 2.675)", "\"2.68\"");
    EXPECT("round(-2.5)", "-3");
    /* the table: 5 RCU / 5 WCU plus one 5/5 index for 730 hours */
    EXPECT("format('%.2f', data.prices.hours * (10 * data.prices.regions['us-east-1'].rcu + "
           "10 * data.prices.regions['us-east-1'].wcu))", "\"5.69\"");
}

TW_TEST(compile_errors_name_the_column)
{
    EXPECT("rcuu + 1", "ERROR column 1: unknown name \"rcuu\" (a fact defined above, data, or $ for the event)");
    EXPECT("sum(1,", "ERROR column 7: unexpected end of the expression");
    EXPECT("summ(1)", "ERROR column 1: unknown function \"summ\" (docs/FACTS.md lists them)");
    EXPECT("if(1)", "ERROR column 1: if() takes 2 to 3 arguments");
    EXPECT("count(1, 2)", "ERROR column 1: count() takes 1 argument");
    EXPECT("sum", "ERROR column 1: sum is a function: call it with ( )");
    EXPECT("'abc", "ERROR column 1: unterminated string");
    EXPECT("1 2", "ERROR column 3: unexpected '2'");
    EXPECT("$.a[0", "ERROR column 6: expected ']'");
    EXPECT("", "ERROR column 1: unexpected end of the expression");
    char deep[300];
    memset(deep, '(', 100);
    strcpy(deep + 100, "1");
    EXPECT(deep, "ERROR column 65: nested too deeply");
}

TW_TEST(caps)
{
    char big[TW_EXPR_TEXT_MAX + 2];
    memset(big, '1', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    EXPECT(big, "ERROR longer than 4096 bytes");
    /* a string longer than TW_EXPR_STRING_MAX is cut, not grown without end */
    tw_json_doc *work = tw__json_doc_new();
    tw_buf src = TW_BUF_INIT;
    tw__buf_puts(&src, "{\"s\":\"");
    for (int i = 0; i < 40000; i++)
        tw__buf_puts(&src, "ab");
    tw__buf_puts(&src, "\"}");
    tw_json_doc *ev = NULL;
    tw_error err;
    tw_limits lim;
    tw_limits_default(&lim);
    lim.event_max = 1 << 20;
    REQUIRE(tw_json_parse(src.data, src.len, &lim, &ev, &err) == TW_OK);
    tw_expr *e = NULL;
    REQUIRE(tw__expr_compile("concat($.s, $.s)", 16, NULL, 0, &e, &err) == TW_OK);
    tw_expr_env env = {tw_json_root(ev), NULL, NULL, NULL, work};
    const tw_json *v;
    CHECK(tw__expr_eval(e, &env, &v, &err) == TW_OK);
    size_t n;
    tw_json_string(v, &n);
    CHECK_EQ_INT(n, TW_EXPR_STRING_MAX);
    tw__expr_free(e);
    tw_json_doc_free(ev);
    tw_json_doc_free(work);
    tw__buf_free(&src);
}

TW_TEST_MAIN()
