/* Unit tests: JSON tree parser, writer, numbers, UTF-8. */
#include <math.h>

#include "json/json_int.h"
#include "json/number.h"
#include "tw_test.h"

static tw_json_doc *parse(const char *s, tw_error *err)
{
    tw_json_doc *d = NULL;
    tw_json_parse(s, strlen(s), NULL, &d, err);
    return d;
}

static void expect_error(const char *text, tw_status code, const char *needle)
{
    tw_error err;
    tw_json_doc *d = parse(text, &err);
    CHECK(d == NULL);
    CHECK_EQ_INT(err.code, code);
    CHECK_CONTAINS(err.msg, needle);
    tw_json_doc_free(d);
}

TW_TEST(parses_nested_document)
{
    tw_error err;
    tw_json_doc *d = parse(" {\"a\": [1, 2.5e1, \"x\\u00e9\\ud83d\\ude00\", true, false, null], \"b\": {}}\n", &err);
    REQUIRE(d);
    const tw_json *r = tw_json_root(d);
    CHECK_EQ_INT(tw_json_typeof(r), TW_JSON_OBJECT);
    const tw_json *a = tw_json_get(r, "a");
    CHECK_EQ_INT(tw_json_size(a), 6);
    CHECK(tw_json_number(tw_json_at(a, 1)) == 25.0);
    size_t n;
    CHECK_EQ_STR(tw_json_number_text(tw_json_at(a, 1), &n), "2.5e1");
    CHECK_EQ_STR(tw_json_string(tw_json_at(a, 2), &n), "x\xc3\xa9\xf0\x9f\x98\x80");
    CHECK_EQ_INT(n, 7);
    CHECK_EQ_INT(tw_json_typeof(tw_json_at(a, 5)), TW_JSON_NULL);
    CHECK_EQ_INT(tw_json_size(tw_json_get(r, "b")), 0);
    tw_json_doc_free(d);
}

TW_TEST(duplicate_keys_last_wins)
{
    tw_error err;
    tw_json_doc *d = parse("{\"k\":1,\"k\":2}", &err);
    REQUIRE(d);
    CHECK(tw_json_number(tw_json_get(tw_json_root(d), "k")) == 2.0);
    CHECK_EQ_INT(tw_json_size(tw_json_root(d)), 2);
    tw_json_doc_free(d);
}

TW_TEST(positions_are_recorded)
{
    tw_error err;
    tw_json_doc *d = parse("{\n  \"a\":\n    [true]}", &err);
    REQUIRE(d);
    const tw_json *a = tw_json_get(tw_json_root(d), "a");
    CHECK_EQ_INT(tw_json_line(a), 3);
    CHECK_EQ_INT(tw_json_column(a), 5);
    tw_json_doc_free(d);
}

TW_TEST(rejects_bad_syntax_with_position)
{
    expect_error("{\"a\":1,}", TW_EJSON, "line 1, column 8");
    expect_error("[1 2]", TW_EJSON, "expected ',' or ']'");
    expect_error("{\"a\" 1}", TW_EJSON, "expected ':'");
    expect_error("\"abc", TW_EJSON, "unterminated string");
    expect_error("01", TW_EJSON, "leading zero");
    expect_error("1.", TW_EJSON, "digit expected");
    expect_error("tru", TW_EJSON, "invalid literal");
    expect_error("{} x", TW_EJSON, "unexpected data");
    expect_error("", TW_EJSON, "unexpected end");
    expect_error("\"a\tb\"", TW_EJSON, "control character");
    expect_error("\"\\x\"", TW_EJSON, "invalid escape");
    expect_error("\"\\u12\"", TW_EJSON, "four hex digits");
}

TW_TEST(rejects_invalid_utf8)
{
    expect_error("\"\xff\"", TW_EUTF8, "invalid UTF-8");
    expect_error("\"\xc0\xaf\"", TW_EUTF8, "invalid UTF-8");          /* overlong */
    expect_error("\"\xed\xa0\x80\"", TW_EUTF8, "invalid UTF-8");      /* surrogate */
    expect_error("\"\xe2\x82\"", TW_EUTF8, "invalid UTF-8");          /* truncated */
    expect_error("\"\\ud800\"", TW_EUTF8, "high surrogate");
    expect_error("\"\\udc00\"", TW_EUTF8, "lone low surrogate");
    /* long strings take the 16-byte path: put the bad byte past it */
    expect_error("\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xf5\x80\x80\x80\"", TW_EUTF8, "column 33");
}

TW_TEST(depth_and_size_limits)
{
    tw_limits lim;
    tw_limits_default(&lim);
    lim.json_depth = 3;
    tw_json_doc *d = NULL;
    tw_error err;
    CHECK_EQ_INT(tw_json_parse("[[[1]]]", 7, &lim, &d, &err), TW_OK);
    tw_json_doc_free(d);
    CHECK_EQ_INT(tw_json_parse("[[[[1]]]]", 9, &lim, &d, &err), TW_EDEPTH);
    CHECK_CONTAINS(err.msg, "deeper than 3");
    lim.event_max = 4;
    CHECK_EQ_INT(tw_json_parse("[1,2]", 5, &lim, &d, &err), TW_ETOOBIG);
    CHECK_CONTAINS(err.msg, "limit of 4 bytes");
}

TW_TEST(writer_round_trips_and_escapes)
{
    tw_error err;
    const char *text = "{\"a\\\"b\":[1,2.50,\"\\u0001\\n\\\\\xc3\xa9\",null,{}],\"c\":true}";
    tw_json_doc *d = parse(text, &err);
    REQUIRE(d);
    size_t n;
    char *out = tw_json_dump(tw_json_root(d), &n);
    CHECK_EQ_STR(out, "{\"a\\\"b\":[1,2.50,\"\\u0001\\n\\\\\xc3\xa9\",null,{}],\"c\":true}");
    free(out);
    tw_json_doc_free(d);
}

TW_TEST(numbers_survive_a_double_or_not)
{
    struct { const char *t; int exact; } cases[] = {
        {"300", 1}, {"300.0", 1}, {"3.0e2", 1}, {"3E+2", 1}, {"0.1", 1}, {"-0", 1}, {"1e308", 1},
        {"9007199254740992", 1}, {"9007199254740993", 0}, {"12345678901234567890", 0},
        {"1e400", 0}, {"0.30000000000000004", 1}, {"0.300000000000000004", 0}, {"5e-324", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i].t);
        double d = tw__number_to_double(cases[i].t, n);
        if (tw__number_exact(cases[i].t, n, d) != cases[i].exact)
            TW_FAIL_("tw__number_exact(%s) != %d", cases[i].t, cases[i].exact);
    }
    CHECK(tw__number_to_double("3.0e2", 5) == 300.0);
    CHECK(isinf(tw__number_to_double("1e400", 5)));
    /* a literal longer than the conversion buffer still converts */
    char big[1200];
    memset(big, '1', sizeof big - 1);
    big[sizeof big - 1] = 0;
    double v = tw__number_to_double(big, strlen(big));
    CHECK(isinf(v) && v > 0);
}

TW_TEST_MAIN()
