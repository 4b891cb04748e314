/* Unit tests: input transformation (Input, InputPath, InputTransformer in three spellings), the
 * JSONPath subset, template semantics (JSON vs text, strings vs values, predefined placeholders),
 * limits, and escaping that keeps results valid JSON and Slack text inert. */
#include "target/target.h"
#include "target/transform.h"
#include "tw_test.h"

static const char EVENT[] =
    "{\"version\":\"0\",\"id\":\"ev-1\",\"detail-type\":\"AWS API Call via CloudTrail\",\"source\":\"aws.dynamodb\","
    "\"account\":\"123456789012\",\"time\":\"2018-01-12T18:06:01Z\",\"region\":\"us-east-1\","
    "\"resources\":[\"arn:a\",\"arn:b\"],"
    "\"detail\":{\"eventName\":\"CreateTable\",\"n\":42,\"f\":1.5e3,\"t\":true,\"z\":null,"
    "\"obj\":{\"a\":\"b\",\"c\":[1,\"x\"]},\"arr\":[1,2,\"three\"],"
    "\"hostile\":\"he said \\\"hi\\\"\\\\ back\\nnew line </script> <!channel> & <@U123> \\u0001\","
    "\"a.b\":\"dotted\",\"x-y\":\"dash\",\"items\":[{\"id\":\"i-1\"},{\"id\":\"i-2\"}],\"empty\":\"\","
    "\"uni\":\"caf\\u00e9 \\u2603\"}}";

static tw_json_doc *parse(const char *s)
{
    tw_json_doc *d = NULL;
    tw_error err;
    if (tw_json_parse(s, strlen(s), NULL, &d, &err) != TW_OK) {
        printf("# bad test JSON: %s: %s\n", err.msg, s);
        return NULL;
    }
    return d;
}

typedef struct result {
    char text[65536];
    int is_json;
    int ok;
    tw_error err;
} result;

static result R;

/* Compiles binding (JSON text) and applies it to EVENT; the outcome is in R. */
static const char *run_ctx(const char *binding, const tw_xf_ctx *ctx)
{
    memset(&R, 0, sizeof R);
    tw_json_doc *b = parse(binding), *ev = parse(EVENT);
    tw_transform *xf = NULL;
    if (!b || !ev) {
        snprintf(R.text, sizeof R.text, "BADTEST");
    } else if (tw__transform_compile(tw_json_root(b), &xf, &R.err) != TW_OK) {
        snprintf(R.text, sizeof R.text, "ERR %s", R.err.msg);
    } else if (!xf) {
        snprintf(R.text, sizeof R.text, "NONE");
    } else {
        tw_buf out = TW_BUF_INIT;
        if (tw__transform_apply(xf, tw_json_root(ev), ctx, &out, &R.is_json, &R.err) != TW_OK)
            snprintf(R.text, sizeof R.text, "APPLYERR %s", R.err.msg);
        else {
            snprintf(R.text, sizeof R.text, "%s", out.data ? out.data : "");
            R.ok = 1;
        }
        tw__buf_free(&out);
    }
    tw__transform_free(xf);
    tw_json_doc_free(b);
    tw_json_doc_free(ev);
    return R.text;
}

static const tw_xf_ctx CTX = {"my-rule", "arn:aws:events:us-east-1:123456789012:rule/my-rule", 1515780361000LL,
                              EVENT, sizeof EVENT - 1, NULL, NULL};
static const tw_xf_ctx SLACK = {"my-rule", "arn:aws:events:us-east-1:123456789012:rule/my-rule", 1515780361000LL,
                                EVENT, sizeof EVENT - 1, tw__slack_escape, NULL};
static const tw_xf_ctx MARKDOWN = {"my-rule", "arn:aws:events:us-east-1:123456789012:rule/my-rule",
                                   1515780361000LL, EVENT, sizeof EVENT - 1, tw__markdown_escape, NULL};

static const char *run(const char *binding) { return run_ctx(binding, &CTX); }

/* A binding with an InputTransformer of the given map (JSON object text) and template (raw text). */
static const char *tpl_ctx(const char *map, const char *tpl, const tw_xf_ctx *ctx)
{
    static char b[32768];
    char esc[16384];
    size_t j = 0;
    for (const char *p = tpl; *p && j < sizeof esc - 8; p++) {
        if (*p == '"' || *p == '\\')
            esc[j++] = '\\';
        if (*p == '\n') {
            esc[j++] = '\\';
            esc[j++] = 'n';
            continue;
        }
        esc[j++] = *p;
    }
    esc[j] = '\0';
    snprintf(b, sizeof b, "{\"InputTransformer\":{\"InputPathsMap\":%s,\"InputTemplate\":\"%s\"}}", map, esc);
    return run_ctx(b, ctx);
}

static const char *tpl(const char *map, const char *t) { return tpl_ctx(map, t, &CTX); }

static int valid_json(const char *s)
{
    tw_json_doc *d = NULL;
    int ok = tw_json_parse(s, strlen(s), NULL, &d, NULL) == TW_OK;
    tw_json_doc_free(d);
    return ok;
}

#define EXPECT(call, want, json)                                                          \
    do {                                                                                  \
        CHECK_EQ_STR(call, want);                                                         \
        CHECK_EQ_INT(R.is_json, json);                                                    \
        if (json && R.ok)                                                                 \
            CHECK(valid_json(R.text));                                                    \
    } while (0)

#define EXPECT_ERR(call, needle)                                                          \
    do {                                                                                  \
        const char *r_ = (call);                                                          \
        CHECK(strncmp(r_, "ERR ", 4) == 0);                                               \
        CHECK_CONTAINS(r_, needle);                                                       \
        CHECK_EQ_INT(R.err.code, TW_ETRANSFORM);                                          \
    } while (0)

TW_TEST(jsonpath_accepts_the_documented_forms_only)
{
    static const char *const good[] = {"$", "$.detail", "$.detail.eventName", "$.a[0].b", "$['a.b']",
                                       "$[\"x-y\"]", "$.detail-type", "$.a[12][3]", "$['it\\'s']", "$.a/b",
                                       "$.detail['a.b'].c"};
    static const char *const bad[] = {"", "detail", "$.", "$..a", "$.*", "$[*]", "$.a[*].b", "$[?(@.a)]",
                                      "$.a[-1]", "$.a[1:2]", "$['a'", "$['a']x", "$.a b", "$a", "$[0",
                                      "$.a[1234567890]", "$['a\\x']", "$.a.", "$['a',  'b']"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        if (!tw__jsonpath_valid(good[i]))
            TW_FAIL_("rejected %s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (tw__jsonpath_valid(bad[i]))
            TW_FAIL_("accepted %s", bad[i]);
    char longp[300] = "$";
    for (int i = 1; i < 299; i++)
        longp[i] = i % 2 ? '.' : 'a';
    longp[299] = '\0';
    CHECK(!tw__jsonpath_valid(longp));          /* > 256 characters */
    CHECK(!tw__jsonpath_valid(NULL));
}

TW_TEST(jsonpath_resolves_members_indices_and_quoted_names)
{
    tw_json_doc *d = parse(EVENT);
    REQUIRE(d);
    const tw_json *root = tw_json_root(d);
    CHECK(tw__jsonpath_get(root, "$") == root);
    CHECK_EQ_STR(tw_json_string(tw__jsonpath_get(root, "$.detail.eventName"), NULL), "CreateTable");
    CHECK_EQ_STR(tw_json_string(tw__jsonpath_get(root, "$.detail-type"), NULL), "AWS API Call via CloudTrail");
    CHECK_EQ_STR(tw_json_string(tw__jsonpath_get(root, "$.detail.items[1].id"), NULL), "i-2");
    CHECK_EQ_STR(tw_json_string(tw__jsonpath_get(root, "$.detail['a.b']"), NULL), "dotted");
    CHECK_EQ_STR(tw_json_string(tw__jsonpath_get(root, "$['detail'][\"x-y\"]"), NULL), "dash");
    CHECK_EQ_STR(tw_json_string(tw__jsonpath_get(root, "$.resources[0]"), NULL), "arn:a");
    CHECK(tw__jsonpath_get(root, "$.detail.items[2]") == NULL);
    CHECK(tw__jsonpath_get(root, "$.detail.nope") == NULL);
    CHECK(tw__jsonpath_get(root, "$.detail.eventName.x") == NULL);
    CHECK(tw__jsonpath_get(root, "$.detail[0]") == NULL);
    CHECK(tw__jsonpath_get(root, "$.resources.x") == NULL);
    CHECK(tw__jsonpath_get(root, "$.detail.*") == NULL);
    CHECK_EQ_INT(tw_json_typeof(tw__jsonpath_get(root, "$.detail.z")), TW_JSON_NULL);
    tw_json_doc_free(d);
}

TW_TEST(a_binding_without_transformation_compiles_to_nothing)
{
    EXPECT(run("{}"), "NONE", 0);
    EXPECT(run("{\"target\":\"slack\",\"Id\":\"x\"}"), "NONE", 0);
    EXPECT(run("{\"Input\":null,\"inputPath\":null}"), "NONE", 0);   /* empty YAML keys */
    tw_transform *xf = (tw_transform *)1;
    CHECK_EQ_INT(tw__transform_compile(NULL, &xf, NULL), TW_OK);
    CHECK(xf == NULL);
}

TW_TEST(input_is_a_constant_json_text)
{
    EXPECT(run("{\"Input\":\"{\\\"a\\\": [1, 2]}\"}"), "{\"a\": [1, 2]}", 1);
    EXPECT(run("{\"Input\":\"\\\"just a string\\\"\"}"), "\"just a string\"", 1);
    EXPECT(run("{\"Input\":\"42\"}"), "42", 1);
    /* serverless.yml: input given as a mapping is sent as its JSON */
    EXPECT(run("{\"input\":{\"key1\":\"value1\",\"n\":[1,true]}}"), "{\"key1\":\"value1\",\"n\":[1,true]}", 1);
    EXPECT(run("{\"input\":7}"), "7", 1);
    EXPECT_ERR(run("{\"Input\":\"not json\"}"), "Input: must be a JSON text");
    EXPECT_ERR(run("{\"input\":\"{bad\"}"), "input: must be a JSON text");
    char big[9000];
    memset(big, ' ', sizeof big);
    memcpy(big, "{\"Input\":\"1", 11);
    memcpy(big + sizeof big - 3, "\"}", 3);
    EXPECT_ERR(run(big), "Input: longer than 8192 bytes");
}

TW_TEST(input_path_selects_part_of_the_event)
{
    EXPECT(run("{\"InputPath\":\"$.detail.obj\"}"), "{\"a\":\"b\",\"c\":[1,\"x\"]}", 1);
    EXPECT(run("{\"inputPath\":\"$.detail.eventName\"}"), "\"CreateTable\"", 1);
    EXPECT(run("{\"input_path\":\"$.detail.n\"}"), "42", 1);
    EXPECT(run("{\"InputPath\":\"$.detail.missing\"}"), "null", 1);
    EXPECT(run("{\"InputPath\":\"$.detail.hostile\"}"),
           "\"he said \\\"hi\\\"\\\\ back\\nnew line </script> <!channel> & <@U123> \\u0001\"", 1);
    /* for Slack, a selected string is message text: escaped */
    EXPECT(run_ctx("{\"InputPath\":\"$.detail.hostile\"}", &SLACK),
           "\"he said \\\"hi\\\"\\\\ back\\nnew line &lt;/script&gt; &lt;!channel&gt; &amp; &lt;@U123&gt; \\u0001\"",
           1);
    EXPECT_ERR(run("{\"InputPath\":\"$.detail[*]\"}"), "InputPath: \"$.detail[*]\" is not a supported JSONPath");
    EXPECT_ERR(run("{\"InputPath\":\"\"}"), "InputPath: must be a non-empty JSONPath string");
    EXPECT_ERR(run("{\"InputPath\":3}"), "InputPath: must be a non-empty JSONPath string");
    char big[400];
    snprintf(big, sizeof big, "{\"InputPath\":\"$.%0300d\"}", 0);
    EXPECT_ERR(run(big), "InputPath: longer than 256 characters");
}

#define MAP "{\"name\":\"$.detail.eventName\",\"n\":\"$.detail.n\",\"f\":\"$.detail.f\",\"t\":\"$.detail.t\"," \
            "\"z\":\"$.detail.z\",\"obj\":\"$.detail.obj\",\"arr\":\"$.detail.arr\",\"h\":\"$.detail.hostile\"," \
            "\"missing\":\"$.detail.nope\",\"empty\":\"$.detail.empty\",\"uni\":\"$.detail.uni\",\"ev\":\"$\"}"

TW_TEST(json_templates_insert_values_as_json_and_raw_inside_strings)
{
    EXPECT(tpl(MAP, "{\"name\": <name>, \"msg\": \"<name> done\"}"),
           "{\"name\": \"CreateTable\", \"msg\": \"CreateTable done\"}", 1);
    EXPECT(tpl(MAP, "{\"n\": <n>, \"f\": <f>, \"t\": <t>, \"z\": <z>}"), "{\"n\": 42, \"f\": 1.5e3, \"t\": true, \"z\": null}",
           1);
    EXPECT(tpl(MAP, "{\"s\": \"n=<n> f=<f> t=<t> z=<z>\"}"), "{\"s\": \"n=42 f=1.5e3 t=true z=null\"}", 1);
    /* objects and lists: JSON as values, flattened without quotes inside strings (as AWS does) */
    EXPECT(tpl(MAP, "{\"o\": <obj>, \"a\": <arr>}"), "{\"o\": {\"a\":\"b\",\"c\":[1,\"x\"]}, \"a\": [1,2,\"three\"]}", 1);
    EXPECT(tpl(MAP, "{\"s\": \"o=<obj> a=<arr>\"}"), "{\"s\": \"o={a:b,c:[1,x]} a=[1,2,three]\"}", 1);
    EXPECT(tpl(MAP, "[<name>, <n>, \"<name>\"]"), "[\"CreateTable\", 42, \"CreateTable\"]", 1);
    EXPECT(tpl(MAP, "{\"u\": \"<uni>\", \"v\": <uni>}"), "{\"u\": \"caf\xc3\xa9 \xe2\x98\x83\", \"v\": \"caf\xc3\xa9 \xe2\x98\x83\"}",
           1);
    /* a placeholder standing alone is a JSON value */
    EXPECT(tpl(MAP, "<obj>"), "{\"a\":\"b\",\"c\":[1,\"x\"]}", 1);
    EXPECT(tpl(MAP, "  <name>\n"), "  \"CreateTable\"\n", 1);
}

TW_TEST(quoted_string_templates_keep_their_quotes)
{
    EXPECT(tpl(MAP, "\"<name> on <n>\""), "\"CreateTable on 42\"", 1);
    EXPECT(tpl(MAP, "\"x \\\" <name> \\\\\""), "\"x \\\" CreateTable \\\\\"", 1);  /* escapes in the template */
}

TW_TEST(text_templates_insert_raw_values)
{
    EXPECT(tpl(MAP, "<name> on <n> at <t>"), "CreateTable on 42 at true", 0);
    EXPECT(tpl(MAP, "table <name>: <obj> <arr>"), "table CreateTable: {a:b,c:[1,x]} [1,2,three]", 0);
    EXPECT(tpl(MAP, "Instance \"<name>\" is <z>"), "Instance \"CreateTable\" is null", 0);
    EXPECT(tpl(MAP, "a < b > c <name>"), "a < b > c CreateTable", 0);       /* not placeholders */
    EXPECT(tpl(MAP, "<!here> <@U1> <https://x|y> <name>"), "<!here> <@U1> <https://x|y> CreateTable", 0);
    EXPECT(tpl(MAP, "{<name>: 1}"), "{CreateTable: 1}", 0);                 /* not JSON: a key */
    EXPECT(tpl(MAP, "{\"a\": <name> <n>}"), "{\"a\": CreateTable 42}", 0);
    EXPECT(tpl(MAP, "raw: <h>"), "raw: he said \"hi\"\\ back\nnew line </script> <!channel> & <@U123> \x01", 0);
}

TW_TEST(unresolved_paths_give_the_empty_string)
{
    EXPECT(tpl(MAP, "{\"m\": <missing>, \"s\": \"[<missing>]\"}"), "{\"m\": \"\", \"s\": \"[]\"}", 1);
    EXPECT(tpl(MAP, "x<missing>y"), "xy", 0);
    EXPECT(tpl(MAP, "<missing>"), "\"\"", 1);
    EXPECT(tpl(MAP, "{\"e\": <empty>, \"s\": \"<empty>\"}"), "{\"e\": \"\", \"s\": \"\"}", 1);
}

TW_TEST(predefined_placeholders)
{
    EXPECT(tpl("{}", "{\"arn\": <aws.events.rule-arn>, \"name\": \"rule <aws.events.rule-name>\", "
                     "\"at\": <aws.events.event.ingestion-time>}"),
           "{\"arn\": \"arn:aws:events:us-east-1:123456789012:rule/my-rule\", \"name\": \"rule my-rule\", "
           "\"at\": \"2018-01-12T18:06:01Z\"}", 1);
    EXPECT(tpl("{}", "<aws.events.rule-name> at <aws.events.event.ingestion-time>"), "my-rule at 2018-01-12T18:06:01Z",
           0);
    EXPECT(tpl("{}", "<aws.events.event.json>"), EVENT, 1);
    tpl("{}", "{\"e\": <aws.events.event>}");
    CHECK(R.ok && R.is_json && valid_json(R.text));
    CHECK_CONTAINS(R.text, "\"id\":\"ev-1\"");
    CHECK_CONTAINS(R.text, "\"resources\":[\"arn:a\",\"arn:b\"]");
    CHECK(!strstr(R.text, "detail\":") && !strstr(R.text, "CreateTable"));
    CHECK_CONTAINS(R.text, "\"detail-type\":");   /* a member that merely starts with "detail" stays */
    /* only as JSON values */
    EXPECT_ERR(tpl("{}", "{\"e\": \"<aws.events.event>\"}"), "<aws.events.event> may only stand alone as a JSON value");
    EXPECT_ERR(tpl("{}", "event: <aws.events.event.json>"), "<aws.events.event.json> may only stand alone");
    /* without a context: empty values, the event tree written */
    memset(&R, 0, sizeof R);
    tpl_ctx("{}", "[<aws.events.rule-name>, <aws.events.event.json>]", NULL);
    CHECK(R.ok && valid_json(R.text));
    CHECK(strncmp(R.text, "[\"\", {", 6) == 0 || strncmp(R.text, "[\"\", {\"version\"", 15) == 0);
}

TW_TEST(undefined_placeholders_are_errors)
{
    EXPECT_ERR(tpl(MAP, "{\"a\": <nope>}"), "InputTransformer.InputTemplate: placeholder <nope> is not defined in "
                                            "InputPathsMap");
    EXPECT_ERR(tpl(MAP, "<b>bold</b>"), "placeholder <b> is not defined");
    EXPECT_ERR(tpl("{}", "<aws.events.other>"), "placeholder <aws.events.other> is not defined");
    EXPECT_ERR(run("{\"InputTransformer\":{\"InputTemplate\":\"<x>\"}}"), "placeholder <x> is not defined");
    EXPECT(run("{\"InputTransformer\":{\"InputTemplate\":\"static\"}}"), "static", 0);
}

TW_TEST(three_spellings_of_the_members)
{
    EXPECT(run("{\"inputTransformer\":{\"inputPathsMap\":{\"n\":\"$.detail.eventName\"},\"inputTemplate\":\"\\\"<n>\\\"\"}}"),
           "\"CreateTable\"", 1);
    EXPECT(run("{\"input_transformer\":{\"input_paths_map\":{\"n\":\"$.detail.eventName\"},\"input_template\":\"<n>!\"}}"),
           "CreateTable!", 0);
    EXPECT_ERR(run("{\"inputTransformer\":{\"inputTemplate\":\"<x>\"}}"),
               "inputTransformer.inputTemplate: placeholder <x> is not defined in inputPathsMap");
    EXPECT_ERR(run("{\"input_transformer\":{\"input_paths_map\":{\"x\":\"$.a\"},\"input_template\":\"<y>\"}}"),
               "input_transformer.input_template: placeholder <y> is not defined in input_paths_map");
    /* at most one form, in any spelling */
    EXPECT_ERR(run("{\"Input\":\"1\",\"InputPath\":\"$\"}"), "at most one of Input, InputPath and InputTransformer");
    EXPECT_ERR(run("{\"input\":\"1\",\"inputTransformer\":{\"inputTemplate\":\"x\"}}"), "at most one");
    EXPECT_ERR(run("{\"Input\":\"1\",\"input\":\"2\"}"), "at most one");
    EXPECT_ERR(run("{\"InputPath\":\"$\",\"input_path\":\"$\"}"), "at most one");
}

TW_TEST(transformer_limits_and_shapes)
{
    EXPECT_ERR(run("{\"InputTransformer\":{\"InputPathsMap\":{\"a\":\"$\"}}}"), "InputTransformer.InputTemplate: required");
    EXPECT_ERR(run("{\"InputTransformer\":{\"InputTemplate\":\"\"}}"), "InputTemplate: must be 1..8192 bytes");
    EXPECT_ERR(run("{\"InputTransformer\":{\"InputTemplate\":5}}"), "InputTemplate: must be a string");
    EXPECT_ERR(run("{\"InputTransformer\":\"x\"}"), "InputTransformer: must be a mapping");
    EXPECT_ERR(run("{\"InputTransformer\":{\"InputTemplate\":\"x\",\"InputPathMap\":{}}}"),
               "InputTransformer: unknown member \"InputPathMap\"");
    EXPECT_ERR(run("{\"InputTransformer\":{\"InputPathsMap\":[],\"InputTemplate\":\"x\"}}"),
               "InputTransformer.InputPathsMap: must be a mapping");
    EXPECT_ERR(tpl("{\"AWSthing\":\"$\"}", "x"), "name \"AWSthing\" is reserved");
    EXPECT_ERR(tpl("{\"aws.events.rule-name\":\"$\"}", "x"), "is reserved");
    EXPECT_ERR(tpl("{\"a b\":\"$\"}", "x"), "name \"a b\" may only hold letters, digits");
    EXPECT_ERR(tpl("{\"\":\"$\"}", "x"), "names must be 1..256 characters");
    EXPECT_ERR(tpl("{\"a\":\"$\",\"a\":\"$.id\"}", "x"), "name \"a\" is defined twice");
    EXPECT_ERR(tpl("{\"a\":\"$.x[*]\"}", "x"), "InputTransformer.InputPathsMap.a: \"$.x[*]\" is not a supported JSONPath");
    EXPECT_ERR(tpl("{\"a\":1}", "x"), "InputTransformer.InputPathsMap.a: must be a JSONPath string");
    EXPECT(tpl("{\"a.b-c_1\":\"$.id\"}", "<a.b-c_1>"), "\"ev-1\"", 1);
    /* 100 variables are fine, 101 are not */
    char map[8192];
    size_t n = 0;
    n += (size_t)snprintf(map + n, sizeof map - n, "{");
    for (int i = 0; i < 101; i++)
        n += (size_t)snprintf(map + n, sizeof map - n, "%s\"v%d\":\"$.id\"", i ? "," : "", i);
    snprintf(map + n, sizeof map - n, "}");
    EXPECT_ERR(tpl(map, "<v0>"), "101 entries, at most 100");
    n = 0;
    n += (size_t)snprintf(map + n, sizeof map - n, "{");
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(map + n, sizeof map - n, "%s\"v%d\":\"$.id\"", i ? "," : "", i);
    snprintf(map + n, sizeof map - n, "}");
    EXPECT(tpl(map, "<v0><v99>"), "ev-1ev-1", 0);
    /* template size: 8192 bytes */
    static char big[8200];
    memset(big, 'x', 8192);
    big[8192] = '\0';
    EXPECT(tpl("{}", big), big, 0);
    big[8192] = 'x';
    big[8193] = '\0';
    EXPECT_ERR(tpl("{}", big), "must be 1..8192 bytes");
}

TW_TEST(hostile_values_keep_json_valid_and_round_trip)
{
    tpl(MAP, "{\"v\": <h>, \"s\": \"[<h>]\", \"o\": \"<ev>\"}");
    REQUIRE(R.ok && R.is_json);
    tw_json_doc *d = parse(R.text);
    REQUIRE(d);
    tw_json_doc *e = parse(EVENT);
    const char *orig = tw_json_string(tw__jsonpath_get(tw_json_root(e), "$.detail.hostile"), NULL);
    CHECK_EQ_STR(tw_json_string(tw_json_get(tw_json_root(d), "v"), NULL), orig);
    char want[512];
    snprintf(want, sizeof want, "[%s]", orig);
    CHECK_EQ_STR(tw_json_string(tw_json_get(tw_json_root(d), "s"), NULL), want);
    CHECK_CONTAINS(R.text, "</script>");      /* JSON needs no escaping of '/' */
    tw_json_doc_free(d);
    tw_json_doc_free(e);
    /* every value at every JSON position: always valid */
    static const char *const shapes[] = {"{\"k\": <X>}", "{\"k\": \"<X>\"}", "[\"a<X>b<X>\", <X>]", "\"<X>\"", "<X>",
                                         "{\"k\": {\"x\": [<X>, \"<X>\"]}}"};
    static const char *const vars[] = {"name", "n", "f", "t", "z", "obj", "arr", "h", "missing", "empty", "uni", "ev"};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (size_t v = 0; v < sizeof vars / sizeof *vars; v++)
            for (int slack = 0; slack < 2; slack++) {
                char t[256];
                size_t j = 0;
                for (const char *p = shapes[s]; *p; p++) {
                    if (*p == 'X')
                        j += (size_t)snprintf(t + j, sizeof t - j, "%s", vars[v]);
                    else
                        t[j++] = *p;
                }
                t[j] = '\0';
                tpl_ctx(MAP, t, slack ? &SLACK : &CTX);
                if (!R.ok || !R.is_json || !valid_json(R.text))
                    TW_FAIL_("template %s (slack %d) gave invalid JSON: %s", t, slack, R.text);
            }
}

TW_TEST(slack_text_escapes_inserted_values_only)
{
    /* text: values escaped, the operator's own mention kept */
    EXPECT(tpl_ctx(MAP, "<!here> <h>", &SLACK),
           "<!here> he said \"hi\"\\ back\nnew line &lt;/script&gt; &lt;!channel&gt; &amp; &lt;@U123&gt; \x01", 0);
    /* JSON: escaped inside strings and as string values; still valid JSON */
    tpl_ctx(MAP, "{\"text\": \"<!here> <h>\", \"v\": <h>, \"o\": <obj>}", &SLACK);
    REQUIRE(R.ok && R.is_json && valid_json(R.text));
    CHECK_CONTAINS(R.text, "\"text\": \"<!here> he said \\\"hi\\\"\\\\ back\\nnew line &lt;/script&gt; "
                           "&lt;!channel&gt; &amp; &lt;@U123&gt; \\u0001\"");
    CHECK_CONTAINS(R.text, "\"v\": \"he said");
    CHECK(!strstr(R.text, "<!channel>") && !strstr(R.text, "<@U123>"));
    CHECK_CONTAINS(R.text, "\"o\": {\"a\":\"b\"");
    /* flattened objects inside strings are escaped too */
    tpl_ctx(MAP, "{\"s\": \"<ev>\"}", &SLACK);
    REQUIRE(R.ok && R.is_json && valid_json(R.text));
    CHECK(!strstr(R.text, "<!channel>"));
    CHECK_CONTAINS(R.text, "&lt;!channel&gt; &amp; &lt;@U123&gt;");
}

TW_TEST(slack_escape_function)
{
    tw_buf b = TW_BUF_INIT;
    CHECK_EQ_INT(tw__slack_escape(&b, "a & b < c > d <!channel> <@U1> <https://x|y>", 44), TW_OK);
    CHECK_EQ_STR(b.data, "a &amp; b &lt; c &gt; d &lt;!channel&gt; &lt;@U1&gt; &lt;https://x|y&gt;");
    tw_buf_reset(&b);
    CHECK_EQ_INT(tw__slack_escape(&b, "plain *bold* _it_ \"q\" 'a'", 26), TW_OK);
    CHECK_EQ_STR(b.data, "plain *bold* _it_ \"q\" 'a'");   /* only & < > */
    tw_buf_reset(&b);
    CHECK_EQ_INT(tw__slack_escape(&b, "&amp;", 5), TW_OK);
    CHECK_EQ_STR(b.data, "&amp;amp;");
    tw__buf_free(&b);
}

TW_TEST(markdown_text_escapes_inserted_values_only)
{
    /* Discord and Teams: a link in event data shows as written; the operator's own markup stays */
    EXPECT(tpl_ctx(MAP, "**<name>** [doc](https://example.com) <h>", &MARKDOWN),
           "**CreateTable** [doc](https://example.com) he said \"hi\"\\\\ back\nnew line \\</script\\> "
           "\\<!channel\\> & \\<@U123\\> \x01", 0);
    tw_buf b = TW_BUF_INIT;
    CHECK_EQ_INT(tw__markdown_escape(&b, "[click](http://evil.example) *b* _i_ `c` ~s~ |x| # h", 52), TW_OK);
    CHECK_EQ_STR(b.data, "\\[click\\]\\(http://evil.example\\) \\*b\\* \\_i\\_ \\`c\\` \\~s\\~ \\|x\\| \\# h");
    tw__buf_free(&b);
}

TW_TEST(output_is_capped)
{
    /* 300 copies of a 100 KB event: over the cap (1 MiB + the event's size) */
    static char big[100 * 1024 + 3], t[8192];
    memset(big, 'x', sizeof big - 1);
    big[0] = big[sizeof big - 2] = '"';
    tw_xf_ctx c = CTX;
    c.event_text = big;
    c.event_len = sizeof big - 1;
    size_t n = 0;
    t[n++] = '[';
    for (int i = 0; i < 300; i++)
        n += (size_t)snprintf(t + n, sizeof t - n, "%s<aws.events.event.json>", i ? "," : "");
    snprintf(t + n, sizeof t - n, "]");
    const char *r = tpl_ctx("{}", t, &c);
    if (strncmp(r, "APPLYERR input transformation: the result exceeds", 49) != 0)
        TW_FAIL_("got %.200s", r);
    CHECK_EQ_INT(R.err.code, TW_ETOOBIG);
    /* ten copies are fine */
    snprintf(t, sizeof t, "[%s]", "<aws.events.event.json>,<aws.events.event.json>,<aws.events.event.json>");
    tpl_ctx("{}", t, &c);
    CHECK(R.ok && R.is_json && strlen(R.text) > 0);
    /* a capped caller's buffer is honoured too */
    tw_json_doc *b = parse("{\"InputPath\":\"$\"}"), *ev = parse(EVENT);
    tw_transform *xf = NULL;
    REQUIRE(tw__transform_compile(tw_json_root(b), &xf, NULL) == TW_OK);
    tw_buf out;
    tw__buf_init(&out, 100);
    int js;
    tw_error err;
    CHECK_EQ_INT(tw__transform_apply(xf, tw_json_root(ev), &CTX, &out, &js, &err), TW_ETOOBIG);
    tw__buf_free(&out);
    tw__transform_free(xf);
    tw_json_doc_free(b);
    tw_json_doc_free(ev);
}

TW_TEST_MAIN()
