/* Unit tests: YAML loader (scalar resolution, structure, anchors and merges, CloudFormation tags,
 * limits, errors). */
#include "json/json_int.h"
#include "trailwatch/yaml.h"
#include "tw_test.h"

static tw_json_doc *load(const char *s, tw_error *err)
{
    tw_json_doc *d = NULL;
    tw_yaml_parse(s, strlen(s), NULL, &d, err);
    return d;
}

/* The compact JSON of a YAML text, or "ERR <code>: <message>" (static: one use per CHECK). */
static const char *y2j(const char *yaml)
{
    static char out[8192];
    tw_error err;
    tw_json_doc *d = load(yaml, &err);
    if (!d) {
        snprintf(out, sizeof out, "ERR %d: %s", (int)err.code, err.msg);
        return out;
    }
    char *s = tw_json_dump(tw_json_root(d), NULL);
    snprintf(out, sizeof out, "%s", s ? s : "(dump failed)");
    free(s);
    tw_json_doc_free(d);
    return out;
}

static void expect_error(const char *yaml, tw_status code, const char *needle)
{
    tw_error err;
    tw_json_doc *d = load(yaml, &err);
    CHECK(d == NULL);
    if (err.code != code || !strstr(err.msg, needle))
        TW_FAIL_("%s: got %d \"%s\", expected %d containing \"%s\"", yaml, (int)err.code, err.msg,
                 (int)code, needle);
    tw_json_doc_free(d);
}

TW_TEST(scalars_resolve_by_the_core_schema)
{
    static const struct { const char *yaml, *json; } cases[] = {
        /* null */
        {"v: null", "null"}, {"v: Null", "null"}, {"v: NULL", "null"}, {"v: ~", "null"}, {"v:", "null"},
        {"v: nULL", "\"nULL\""},
        /* booleans, and the YAML 1.1 ones that are not */
        {"v: true", "true"}, {"v: True", "true"}, {"v: TRUE", "true"}, {"v: false", "false"},
        {"v: False", "false"}, {"v: FALSE", "false"}, {"v: tRUE", "\"tRUE\""},
        {"v: yes", "\"yes\""}, {"v: no", "\"no\""}, {"v: on", "\"on\""}, {"v: off", "\"off\""},
        {"v: Yes", "\"Yes\""}, {"v: y", "\"y\""}, {"v: n", "\"n\""},
        /* integers */
        {"v: 123", "123"}, {"v: +1", "1"}, {"v: -7", "-7"}, {"v: 007", "7"}, {"v: -0", "-0"},
        {"v: 0", "0"}, {"v: 0x1F", "31"}, {"v: 0o17", "15"}, {"v: 0xFFFFFFFFFFFFFFFF", "18446744073709551615"},
        {"v: 123456789012345678901234567890", "123456789012345678901234567890"},
        /* floats */
        {"v: 1.5", "1.5"}, {"v: .5", "0.5"}, {"v: -.5", "-0.5"}, {"v: +.5e3", "0.5e3"}, {"v: 1.", "1.0"},
        {"v: 1e3", "1e3"}, {"v: +1.5E-3", "1.5E-3"}, {"v: 00.25", "0.25"}, {"v: 1e+05", "1e+05"},
        /* not numbers in YAML 1.2 core */
        {"v: .inf", "\".inf\""}, {"v: -.Inf", "\"-.Inf\""}, {"v: .NaN", "\".NaN\""}, {"v: 1_000", "\"1_000\""},
        {"v: 0b101", "\"0b101\""}, {"v: 12:30", "\"12:30\""}, {"v: 0x", "\"0x\""}, {"v: 0X1F", "\"0X1F\""},
        {"v: 0o8", "\"0o8\""}, {"v: 1e", "\"1e\""}, {"v: .", "\".\""}, {"v: +", "\"+\""}, {"v: 1.2.3", "\"1.2.3\""},
        {"v: 2001-12-14", "\"2001-12-14\""}, {"v: python3.6", "\"python3.6\""},
        /* quoted and block scalars are strings */
        {"v: '123'", "\"123\""}, {"v: \"true\"", "\"true\""}, {"v: 'null'", "\"null\""}, {"v: ''", "\"\""},
        {"v: \"~\"", "\"~\""}, {"v: |\n  123\n", "\"123\\n\""}, {"v: >-\n  yes\n", "\"yes\""},
        /* explicit tags */
        {"v: !!str 123", "\"123\""}, {"v: !!str true", "\"true\""}, {"v: !!int \"42\"", "42"},
        {"v: !!int 0x10", "16"}, {"v: !!float 3", "3"}, {"v: !!float '2.5'", "2.5"},
        {"v: !!bool \"true\"", "true"}, {"v: !!null ''", "null"}, {"v: ! 12", "\"12\""},
        {"v: !!timestamp 2001-12-14", "\"2001-12-14\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char want[256];
        snprintf(want, sizeof want, "{\"v\":%s}", cases[i].json);
        const char *got = y2j(cases[i].yaml);
        if (strcmp(got, want) != 0)
            TW_FAIL_("%s -> %s, expected %s", cases[i].yaml, got, want);
    }
    /* numbers carry their double too */
    tw_error err;
    tw_json_doc *d = load("a: 0x10\nb: .5\nc: -1e2", &err);
    REQUIRE(d);
    CHECK(tw_json_number(tw_json_get(tw_json_root(d), "a")) == 16.0);
    CHECK(tw_json_number(tw_json_get(tw_json_root(d), "b")) == 0.5);
    CHECK(tw_json_number(tw_json_get(tw_json_root(d), "c")) == -100.0);
    tw_json_doc_free(d);
}

TW_TEST(bad_explicit_scalars_are_errors)
{
    expect_error("v: !!int 1.5", TW_EYAML, "line 1, column 4: 1.5 is not an integer");
    expect_error("v: !!int abc", TW_EYAML, "is not an integer");
    expect_error("v: !!float .inf", TW_EYAML, ".inf is not a number JSON can hold");
    expect_error("v: !!bool yes", TW_EYAML, "yes is not a boolean");
    expect_error("v: !!null 0", TW_EYAML, "0 is not a null");
    expect_error("v: 0x10000000000000000", TW_EYAML, "does not fit in 64 bits");
    expect_error("v: !!int [1]", TW_EYAML, "tag !!int applies to scalars, not to a sequence");
    expect_error("v: !<tag:example.com,2000:x> 1", TW_EYAML, "unsupported tag tag:example.com,2000:x");
}

TW_TEST(keys_are_scalar_text)
{
    CHECK_EQ_STR(y2j("1: a\n~: b\ntrue: c\n0x10: d\n'x y': e\n"),
                 "{\"1\":\"a\",\"null\":\"b\",\"true\":\"c\",\"16\":\"d\",\"x y\":\"e\"}");
    expect_error("? [a, b]\n: c\n", TW_EYAML, "line 1, column 3: a mapping key must be a scalar, not a sequence");
    expect_error("{a: 1}: x\n", TW_EYAML, "a mapping key must be a scalar, not a mapping");
    expect_error("k: &k {a: 1}\n*k : x\n", TW_EYAML, "line 2, column 1: a mapping key must be a scalar, not a mapping");
    expect_error("!Ref x : y\n", TW_EYAML, "not a mapping");
    CHECK_EQ_STR(y2j("- &k name\n- {*k : v}\n"), "[\"name\",{\"name\":\"v\"}]");
}

TW_TEST(nested_block_and_flow_structures)
{
    CHECK_EQ_STR(y2j("a:\n  b:\n    - 1\n    - [2, {c: d}]\n  e: {f: [g, h], i: ~}\nj: []\nk: {}\n"),
                 "{\"a\":{\"b\":[1,[2,{\"c\":\"d\"}]],\"e\":{\"f\":[\"g\",\"h\"],\"i\":null}},\"j\":[],\"k\":{}}");
    CHECK_EQ_STR(y2j("- a\n- - b\n  - c\n- d: e\n  f: g\n"), "[\"a\",[\"b\",\"c\"],{\"d\":\"e\",\"f\":\"g\"}]");
    CHECK_EQ_STR(y2j("plain scalar"), "\"plain scalar\"");
    CHECK_EQ_STR(y2j("--- 42\n...\n"), "42");
    CHECK_EQ_STR(y2j("\xef\xbb\xbf" "a: \"\\u00e9\\x41\\t\"\n"), "{\"a\":\"\xc3\xa9" "A\\t\"}");
}

TW_TEST(block_scalars_keep_their_text)
{
    CHECK_EQ_STR(y2j("a: |\n  line 1\n    line 2\n\n  line 3\nb: >\n  folded\n  text\n\n  para\nc: |-\n  stripped\nd: |+\n  kept\n\n"),
                 "{\"a\":\"line 1\\n  line 2\\n\\nline 3\\n\",\"b\":\"folded text\\npara\\n\","
                 "\"c\":\"stripped\",\"d\":\"kept\\n\\n\"}");
}

TW_TEST(positions_are_recorded)
{
    tw_error err;
    tw_json_doc *d = load("# comment\na:\n  b: [1, 'x']\n  c: |\n    text\n  \xc3\xa9: 5\nl:\n  - k: v\n", &err);
    REQUIRE(d);
    const tw_json *r = tw_json_root(d), *a = tw_json_get(r, "a"), *b = tw_json_get(a, "b");
    CHECK_EQ_INT(tw_json_line(r), 2);
    CHECK_EQ_INT(tw_json_column(r), 1);
    CHECK_EQ_INT(tw_json_line(a), 3);
    CHECK_EQ_INT(tw_json_column(a), 3);
    CHECK_EQ_INT(tw_json_line(b), 3);
    CHECK_EQ_INT(tw_json_column(b), 6);
    CHECK_EQ_INT(tw_json_line(tw_json_at(b, 1)), 3);
    CHECK_EQ_INT(tw_json_column(tw_json_at(b, 1)), 10);
    CHECK_EQ_INT(tw_json_line(tw_json_get(a, "c")), 4);
    CHECK_EQ_INT(tw_json_column(tw_json_get(a, "c")), 6);
    CHECK_EQ_INT(tw_json_line(tw_json_get(a, "\xc3\xa9")), 6);
    CHECK_EQ_INT(tw_json_column(tw_json_get(a, "\xc3\xa9")), 6);  /* characters, not bytes */
    const tw_json *item = tw_json_at(tw_json_get(r, "l"), 0);
    CHECK_EQ_INT(tw_json_line(item), 8);
    CHECK_EQ_INT(tw_json_column(item), 5);
    CHECK_EQ_INT(tw_json_column(tw_json_get(item, "k")), 8);
    tw_json_doc_free(d);
}

TW_TEST(duplicate_keys_are_kept_last_wins)
{
    tw_error err;
    tw_json_doc *d = load("k: 1\nother: x\nk: 2\n", &err);
    REQUIRE(d);
    CHECK_EQ_INT(tw_json_size(tw_json_root(d)), 3);
    CHECK(tw_json_number(tw_json_get(tw_json_root(d), "k")) == 2.0);
    tw_json_doc_free(d);
}

TW_TEST(anchors_aliases_and_merge_keys)
{
    const char *yaml =
        "defaults: &defaults\n"
        "  runtime: python3.6\n"
        "  memorySize: 128\n"
        "other: &other {timeout: 6, memorySize: 256}\n"
        "f1:\n"
        "  <<: *defaults\n"
        "  memorySize: 512\n"
        "f2:\n"
        "  handler: h\n"
        "  <<: [*other, *defaults]\n"
        "f3:\n"
        "  <<: {inline: 1}\n"
        "list: &l [1, &s two]\n"
        "again: *l\n"
        "str: *s\n"
        "'<<': literal\n"
        "f4: {<<: *defaults, runtime: nodejs}\n";
    CHECK_EQ_STR(y2j(yaml),
                 "{\"defaults\":{\"runtime\":\"python3.6\",\"memorySize\":128},"
                 "\"other\":{\"timeout\":6,\"memorySize\":256},"
                 "\"f1\":{\"memorySize\":512,\"runtime\":\"python3.6\"},"
                 "\"f2\":{\"handler\":\"h\",\"timeout\":6,\"memorySize\":256,\"runtime\":\"python3.6\"},"
                 "\"f3\":{\"inline\":1},"
                 "\"list\":[1,\"two\"],\"again\":[1,\"two\"],\"str\":\"two\",\"<<\":\"literal\","
                 "\"f4\":{\"runtime\":\"nodejs\",\"memorySize\":128}}");
    /* an anchor may be redefined: an alias names the latest */
    CHECK_EQ_STR(y2j("- &a 1\n- *a\n- &a 2\n- *a\n"), "[1,1,2,2]");
    /* a merged mapping that itself merged */
    CHECK_EQ_STR(y2j("a: &a {x: 1}\nb: &b {<<: *a, y: 2}\nc: {<<: *b, z: 3}\n"),
                 "{\"a\":{\"x\":1},\"b\":{\"y\":2,\"x\":1},\"c\":{\"z\":3,\"y\":2,\"x\":1}}");
    expect_error("a: *nope\n", TW_EYAML, "line 1, column 4: alias *nope does not name an earlier");
    expect_error("a: &a [1, *a]\n", TW_EYAML, "alias *a does not name an earlier, complete anchor");
    expect_error("a: {<<: 1}\n", TW_EYAML, "line 1, column 5: the merge key << needs a mapping or a list of mappings, not a number");
    expect_error("x: &x [1]\na: {<<: [*x]}\n", TW_EYAML, "line 2, column 5: the merge key << needs a mapping or a list of mappings, not a list holding an array");
}

TW_TEST(cloudformation_short_tags)
{
    const char *yaml =
        "Resources:\n"
        "  Fn:\n"
        "    Properties:\n"
        "      Bucket: !Ref MyBucket\n"
        "      Arn: !GetAtt MyBucket.Arn\n"
        "      Arn2: !GetAtt [MyBucket, Arn]\n"
        "      Dns: !GetAtt MyDB.Endpoint.Address\n"
        "      Name: !Sub \"${AWS::StackName}-x\"\n"
        "      Az: !Select [0, !GetAZs '']\n"
        "      Cond: !Condition IsProd\n"
        "      Join: !Join [\",\", [a, !Ref B]]\n"
        "      Num: !Base64 123\n"
        "      Map: !If\n"
        "        - IsProd\n"
        "        - {a: 1}\n"
        "        - !Ref AWS::NoValue\n";
    CHECK_EQ_STR(y2j(yaml),
                 "{\"Resources\":{\"Fn\":{\"Properties\":{"
                 "\"Bucket\":{\"Ref\":\"MyBucket\"},"
                 "\"Arn\":{\"Fn::GetAtt\":[\"MyBucket\",\"Arn\"]},"
                 "\"Arn2\":{\"Fn::GetAtt\":[\"MyBucket\",\"Arn\"]},"
                 "\"Dns\":{\"Fn::GetAtt\":[\"MyDB\",\"Endpoint.Address\"]},"
                 "\"Name\":{\"Fn::Sub\":\"${AWS::StackName}-x\"},"
                 "\"Az\":{\"Fn::Select\":[0,{\"Fn::GetAZs\":\"\"}]},"
                 "\"Cond\":{\"Condition\":\"IsProd\"},"
                 "\"Join\":{\"Fn::Join\":[\",\",[\"a\",{\"Ref\":\"B\"}]]},"
                 "\"Num\":{\"Fn::Base64\":\"123\"},"
                 "\"Map\":{\"Fn::If\":[\"IsProd\",{\"a\":1},{\"Ref\":\"AWS::NoValue\"}]}}}}}");
    /* an anchored tagged node is the wrapped one */
    CHECK_EQ_STR(y2j("a: &r !Ref X\nb: *r\n"), "{\"a\":{\"Ref\":\"X\"},\"b\":{\"Ref\":\"X\"}}");
}

TW_TEST(billion_laughs_is_rejected)
{
    const char *yaml =
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
        "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
        "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
        "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
        "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
        "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
    expect_error(yaml, TW_ELIMIT, "more than 1000000 nodes");
    /* the same shape, smaller, is fine: 1 + 4 * (1 + 10 + 10 * 11 ...) */
    tw_error err;
    tw_json_doc *d = load("a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                          "c: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n", &err);
    REQUIRE(d);
    CHECK_EQ_INT(tw_json_size(tw_json_at(tw_json_at(tw_json_get(tw_json_root(d), "c"), 9), 9)), 10);
    tw_json_doc_free(d);
    /* merges cost their source's nodes */
    char big[64 * 1024];
    size_t n = (size_t)snprintf(big, sizeof big, "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                                "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                                "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                                "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                                "m: &m {k: *d}\nl:\n");
    while (n + 16 < sizeof big)
        n += (size_t)snprintf(big + n, sizeof big - n, "- <<: *m\n");
    expect_error(big, TW_ELIMIT, "more than 1000000 nodes");
    /* a long key repeated through an alias is shared, not copied each time (4 KB x ~6,600 uses stays
     * within the byte budget; a 32 KB key used that often would not: see the next check) */
    n = (size_t)snprintf(big, sizeof big, "k: &k ");
    memset(big + n, 'x', 4 * 1024);
    n += 4 * 1024;
    n += (size_t)snprintf(big + n, sizeof big - n, "\nl:\n");
    while (n + 16 < sizeof big)
        n += (size_t)snprintf(big + n, sizeof big - n, "- *k : 1\n");
    d = load(big, &err);
    REQUIRE(d);
    const tw_json *l = tw_json_get(tw_json_root(d), "l");
    CHECK(tw_json_size(l) > 1000);
    size_t klen;
    CHECK(tw_json_key(tw_json_at(l, 0), 0, &klen) == tw_json_key(tw_json_at(l, 1), 0, NULL));
    CHECK_EQ_INT(klen, 4 * 1024);
    tw_json_doc_free(d);
    /* long strings count by their bytes: 32 KB behind ~1,000 aliases is 32 MB of text */
    n = (size_t)snprintf(big, sizeof big, "k: &k ");
    memset(big + n, 'x', 32 * 1024);
    n += 32 * 1024;
    n += (size_t)snprintf(big + n, sizeof big - n, "\nl:\n");
    while (n + 16 < sizeof big)
        n += (size_t)snprintf(big + n, sizeof big - n, "- *k : 1\n");
    expect_error(big, TW_ELIMIT, "every 64 bytes of a string count as a node");
    /* so do the keys CloudFormation tags become ("Fn::" + the tag): found by fuzz_yaml
     * (tests/fuzz-regressions/fuzz_yaml/alias-long-cfn-tag: 4 KB of YAML, 446 MB of JSON) */
    n = (size_t)snprintf(big, sizeof big, "a: &a !");
    memset(big + n, 'A', 4000);
    n += 4000;
    n += (size_t)snprintf(big + n, sizeof big - n, " x\n");
    const char *prev = "a";
    static const char *const names[] = {"b", "c", "d", "e", "f"};
    for (size_t i = 0; i < 5; i++) {
        n += (size_t)snprintf(big + n, sizeof big - n, "%s: &%s [", names[i], names[i]);
        for (int j = 0; j < 10; j++)
            n += (size_t)snprintf(big + n, sizeof big - n, "%s*%s", j ? ", " : "", prev);
        n += (size_t)snprintf(big + n, sizeof big - n, "]\n");
        prev = names[i];
    }
    expect_error(big, TW_ELIMIT, "every 64 bytes of a string count as a node");
}

TW_TEST(depth_and_size_limits)
{
    tw_limits lim;
    tw_limits_default(&lim);
    lim.json_depth = 3;
    tw_json_doc *d = NULL;
    tw_error err;
    static const struct { const char *yaml; tw_status rc; } cases[] = {
        {"[[[1]]]", TW_OK},
        {"[[[[1]]]]", TW_EDEPTH},
        {"a:\n  b:\n    c: 1\n", TW_OK},
        {"a:\n  b:\n    c:\n      d: 1\n", TW_EDEPTH},
        {"a: &a [[1]]\nb: *a\n", TW_OK},
        {"a: &a [[1]]\nb: [*a]\n", TW_EDEPTH},     /* alias expansion deepens */
        {"a: [!Ref x]\n", TW_OK},
        {"a: [[!Ref x]]\n", TW_EDEPTH},            /* so does a CloudFormation wrapper */
        {"a: [!GetAtt x.y]\n", TW_EDEPTH},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tw_status rc = tw_yaml_parse(cases[i].yaml, strlen(cases[i].yaml), &lim, &d, &err);
        if (rc != cases[i].rc)
            TW_FAIL_("%s: got %d (%s), expected %d", cases[i].yaml, (int)rc, rc ? err.msg : "",
                     (int)cases[i].rc);
        if (rc == TW_EDEPTH)
            CHECK_CONTAINS(err.msg, "nesting deeper than 3 levels");
        CHECK((rc == TW_OK) == (d != NULL));
        tw_json_doc_free(d);
    }
    /* far deeper than the default limit: rejected early, not by exhausting a stack */
    static char deep[100001];
    memset(deep, '[', sizeof deep - 1);
    expect_error(deep, TW_EDEPTH, "nesting deeper than 1000 levels");
    /* the deepest configurable nesting loads without exhausting the stack */
    lim.json_depth = TW_MAX_JSON_DEPTH;
    size_t n = 0;
    static char flow[TW_MAX_JSON_DEPTH * 5 + 8];
    for (unsigned i = 0; i < TW_MAX_JSON_DEPTH; i++)
        n += (size_t)snprintf(flow + n, sizeof flow - n, "{a: ");
    n += (size_t)snprintf(flow + n, sizeof flow - n, "1");
    for (unsigned i = 0; i < TW_MAX_JSON_DEPTH; i++)
        flow[n++] = '}';
    CHECK_EQ_INT(tw_yaml_parse(flow, n, &lim, &d, &err), TW_OK);
    tw_json_doc_free(d);
    lim.file_max = 4;
    CHECK_EQ_INT(tw_yaml_parse("a: 12", 5, &lim, &d, &err), TW_ETOOBIG);
    CHECK_CONTAINS(err.msg, "limit of 4 bytes");
    CHECK(d == NULL);
}

TW_TEST(exactly_one_document)
{
    expect_error("", TW_EYAML, "empty YAML document");
    expect_error("# only a comment\n\n", TW_EYAML, "empty YAML document");
    expect_error("---\n", TW_EYAML, "empty YAML document");
    expect_error("a: 1\n---\nb: 2\n", TW_EYAML, "line 2, column 1: a second YAML document");
    expect_error("---\na: 1\n...\n---\nb: 2\n", TW_EYAML, "line 4, column 1: a second YAML document");
    expect_error("a: 1\n--- \n", TW_EYAML, "line 2");
    CHECK_EQ_STR(y2j("--- ~\n"), "null");
    CHECK_EQ_STR(y2j("%YAML 1.2\n---\na: 1\n...\n# trailing comment\n"), "{\"a\":1}");
    tw_json_doc *d = (tw_json_doc *)1;
    tw_error err;
    CHECK_EQ_INT(tw_yaml_parse(NULL, 0, NULL, &d, &err), TW_EYAML);
    CHECK(d == NULL);
}

TW_TEST(syntax_errors_name_the_line)
{
    expect_error("a: 1\nb: [1, 2\nc: 3\n", TW_EYAML, "line 3, column 2: did not find expected ',' or ']' "
                 "(while parsing a flow sequence at line 2, column 4)");
    expect_error("a:\n  - b\n  c: d\n", TW_EYAML, "line 3, column 3: did not find expected '-' indicator");
    expect_error("a: 'open\n", TW_EYAML, "line 2, column 1: found unexpected end of stream");
    expect_error("a: b: c\n", TW_EYAML, "line 1, column 5: mapping values are not allowed in this context");
    expect_error("a: \"\\q\"\n", TW_EYAML, "line 1, column 5: found unknown escape character (while "
                 "parsing a quoted scalar at line 1, column 4)");
    expect_error("a: 1\n\tb: 2\n", TW_EYAML, "line 2");
    expect_error("a: x\x01y\n", TW_EYAML, "line 1, column 5: control characters are not allowed (#x1)");
    expect_error("a: *\n", TW_EYAML, "line 1, column 4");
    expect_error("x: !e!tag 1\n", TW_EYAML, "undefined tag handle");
}

TW_TEST(invalid_utf8_is_rejected)
{
    expect_error("a: \xff\n", TW_EUTF8, "line 1, column 4: invalid UTF-8 (byte 0xff)");
    expect_error("a: b\nc: \xc3\xa9\xc3\x28\n", TW_EUTF8, "line 2, column 5: invalid UTF-8 (byte 0xc3)");
    expect_error("a: \xed\xa0\x80\n", TW_EUTF8, "invalid UTF-8");          /* surrogate */
    expect_error("a: \xc0\xaf\n", TW_EUTF8, "invalid UTF-8");              /* overlong */
    expect_error("\xff\xfe" "a\0:\0 \0" "1\0", TW_EUTF8, "line 1, column 1");  /* UTF-16 is not accepted */
    expect_error("a: \"\\ud800\"\n", TW_EYAML, "invalid Unicode character escape code");
}

TW_TEST(serverless_yml_from_the_aws_tutorial)
{
    const char *yaml =
        "service: cloudwatch-ssm\n"
        "provider:\n"
        "  name: aws\n"
        "  runtime: python3.6\n"
        "  stage: dev\n"
        "  region: us-east-1\n"
        "  iamRoleStatements:\n"
        "    - Effect: \"Allow\"\n"
        "      Action:\n"
        "        - \"ssm:DescribeParameters\"\n"
        "      Resource: \"*\"\n"
        "  environment:\n"
        "    SLACK_URL: 'INSERT SLACK URL'\n"
        "functions:\n"
        "  parameter:\n"
        "    handler: handler.parameter\n"
        "    events:\n"
        "      - cloudwatchEvent:\n"
        "          event:\n"
        "            source:\n"
        "              - \"aws.ssm\"\n"
        "            detail-type:\n"
        "              - \"Parameter Store Change\"\n";
    tw_error err;
    tw_json_doc *d = load(yaml, &err);
    REQUIRE(d);
    const tw_json *r = tw_json_root(d), *p = tw_json_get(r, "provider");
    CHECK_EQ_STR(tw_json_string(tw_json_get(r, "service"), NULL), "cloudwatch-ssm");
    CHECK_EQ_STR(tw_json_string(tw_json_get(p, "runtime"), NULL), "python3.6");
    CHECK_EQ_STR(tw_json_string(tw_json_get(p, "region"), NULL), "us-east-1");
    const tw_json *st = tw_json_at(tw_json_get(p, "iamRoleStatements"), 0);
    CHECK_EQ_STR(tw_json_string(tw_json_get(st, "Effect"), NULL), "Allow");
    CHECK_EQ_STR(tw_json_string(tw_json_at(tw_json_get(st, "Action"), 0), NULL), "ssm:DescribeParameters");
    CHECK_EQ_STR(tw_json_string(tw_json_get(st, "Resource"), NULL), "*");
    CHECK_EQ_STR(tw_json_string(tw_json_get(tw_json_get(p, "environment"), "SLACK_URL"), NULL),
                 "INSERT SLACK URL");
    const tw_json *fn = tw_json_get(tw_json_get(r, "functions"), "parameter");
    CHECK_EQ_STR(tw_json_string(tw_json_get(fn, "handler"), NULL), "handler.parameter");
    const tw_json *pattern = tw_json_get(tw_json_get(tw_json_at(tw_json_get(fn, "events"), 0),
                                                     "cloudwatchEvent"), "event");
    REQUIRE(pattern);
    char *json = tw_json_dump(pattern, NULL);
    CHECK_EQ_STR(json, "{\"source\":[\"aws.ssm\"],\"detail-type\":[\"Parameter Store Change\"]}");
    free(json);
    CHECK_EQ_INT(tw_json_line(pattern), 20);
    CHECK_EQ_INT(tw_json_column(pattern), 13);
    tw_json_doc_free(d);
}

typedef struct stream_seen {
    char out[1024];
    int stop_at;
    int calls;
} stream_seen;

static tw_status on_doc(void *ctx, tw_json_doc *doc, size_t index, unsigned line, tw_error *err)
{
    (void)err;
    stream_seen *s = ctx;
    char *j = tw_json_dump(tw_json_root(doc), NULL);
    size_t n = strlen(s->out);
    snprintf(s->out + n, sizeof s->out - n, "%s[%zu@%u]%s", n ? " " : "", index, line, j ? j : "?");
    free(j);
    tw_json_doc_free(doc);
    if (++s->calls == s->stop_at) {
        snprintf(err->msg, sizeof err->msg, "stopped");
        return err->code = TW_EEXIST;
    }
    return TW_OK;
}

static const char *stream(const char *yaml, int stop_at, tw_status *rc)
{
    static stream_seen s;
    memset(&s, 0, sizeof s);
    s.stop_at = stop_at;
    tw_error err;
    *rc = tw_yaml_parse_stream(yaml, strlen(yaml), NULL, on_doc, &s, &err);
    if (*rc) {
        size_t n = strlen(s.out);
        snprintf(s.out + n, sizeof s.out - n, " ERR %s", err.msg);
    }
    return s.out;
}

TW_TEST(streams_hand_over_every_document)
{
    tw_status rc;
    CHECK_EQ_STR(stream("a: 1\n---\nb: 2\n", 0, &rc), "[0@1]{\"a\":1} [1@2]{\"b\":2}");
    CHECK_EQ_INT(rc, TW_OK);
    /* leading ---, empty documents skipped but counted, anchors per document */
    CHECK_EQ_STR(stream("---\nx: &a 1\ny: *a\n---\n---\nz: 3\n...\n", 0, &rc),
                 "[0@1]{\"x\":1,\"y\":1} [2@5]{\"z\":3}");
    CHECK_EQ_STR(stream("x: &a 1\n---\ny: *a\n", 0, &rc), "[0@1]{\"x\":1} ERR line 3, column 4: alias *a does "
                 "not name an earlier, complete anchor");
    CHECK_EQ_INT(rc, TW_EYAML);
    /* a syntax error in the second document: the first was handed over already */
    CHECK_CONTAINS(stream("a: 1\n---\nb: [\n", 0, &rc), "[0@1]{\"a\":1} ERR line 4");
    CHECK_EQ_INT(rc, TW_EYAML);
    /* the callback stops the stream */
    CHECK_EQ_STR(stream("a: 1\n---\nb: 2\n", 1, &rc), "[0@1]{\"a\":1} ERR stopped");
    CHECK_EQ_INT(rc, TW_EEXIST);
    CHECK_EQ_STR(stream("", 0, &rc), "");
    CHECK_EQ_INT(rc, TW_OK);
    /* a single document still refuses a second one */
    expect_error("a: 1\n---\nb: 2\n", TW_EYAML, "a second YAML document starts here");
    expect_error("---\n", TW_EYAML, "empty YAML document");
}

TW_TEST_MAIN()
