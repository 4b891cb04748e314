/* Unit tests: target kinds (slack, webhook, teams, discord, pagerduty, exec, file, console): settings
 * and their errors, default messages for real events (facts, escaping, limits), transformed input,
 * HTTP preparation and response classification, local delivery (processes, files, stdout). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "target/facts.h"
#include "target/target.h"
#include "target/transform.h"
#include "tw_test.h"

/* ---- helpers ---- */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0;
    if (!f)
        return NULL;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = (n + 4096 + 1) * 2;
            char *nb = realloc(buf, cap);
            if (!nb)
                break;
            buf = nb;
        }
        size_t k = fread(buf + n, 1, 4096, f);
        n += k;
        if (k == 0)
            break;
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

/* tests/fixtures/events/<name>, found from $TW_SOURCE_DIR (tests/run.py) or the current directory. */
static char *fixture(const char *name)
{
    char path[1024];
    const char *root = getenv("TW_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/tests/fixtures/events/%s", root && *root ? root : ".", name);
    char *s = read_file(path, NULL);
    if (!s)
        printf("# cannot read %s\n", path);
    return s;
}

static tw_json_doc *parse(const char *s)
{
    tw_json_doc *d = NULL;
    tw_error err;
    tw_limits lim;
    tw_limits_default(&lim);
    lim.event_max = 16u << 20;                 /* huge_event() */
    if (!s || tw_json_parse(s, strlen(s), &lim, &d, &err) != TW_OK) {
        printf("# bad JSON: %s\n", s ? err.msg : "(null)");
        return NULL;
    }
    return d;
}

static const tw_json *path(const tw_json_doc *d, const char *p) { return d ? tw__jsonpath_get(tw_json_root(d), p) : NULL; }

static const char *pstr(const tw_json_doc *d, const char *p)
{
    const tw_json *v = path(d, p);
    return tw_json_typeof(v) == TW_JSON_STRING ? tw_json_string(v, NULL) : NULL;
}

/* A configured kind, or NULL with the error in *err. */
static void *configure(const char *kind, const char *settings, tw_error *err)
{
    const tw_target_ops *ops = tw__target_kind(kind);
    tw_json_doc *d = parse(settings);
    void *impl = NULL;
    tw_error_clear(err);
    if (ops && d && ops->configure(tw_json_root(d), &impl, err) != TW_OK)
        impl = NULL;
    tw_json_doc_free(d);
    return impl;
}

/* The configure error for settings, "" when it succeeded. */
static const char *config_error(const char *kind, const char *settings)
{
    static tw_error err;
    void *impl = configure(kind, settings, &err);
    if (impl) {
        tw__target_kind(kind)->release(impl);
        return "";
    }
    return err.msg;
}

typedef struct alert {
    tw_json_doc *ev;
    char *text;
    tw_alert_ctx a;
} alert;

static void alert_init(alert *al, char *event_text)
{
    memset(al, 0, sizeof *al);
    al->text = event_text;
    al->ev = parse(event_text);
    al->a = (tw_alert_ctx){
        .event = al->ev ? tw_json_root(al->ev) : NULL,
        .event_text = event_text,
        .event_len = event_text ? strlen(event_text) : 0,
        .rule_name = "new-dynamodb-table",
        .rule_description = "Tables cost money",
        .severity = "high",
        .rule_arn = "arn:aws:events:us-east-1:123456789012:rule/new-dynamodb-table",
        .idempotency_key = "idem-0123456789",
    };
}

static void alert_free(alert *al)
{
    tw_json_doc_free(al->ev);
    free(al->text);
}

/* Renders with kind/settings and parses the body (NULL on any failure, reported). */
static tw_json_doc *render(const char *kind, const char *settings, const tw_alert_ctx *a, tw_buf *body)
{
    tw_error err;
    void *impl = configure(kind, settings, &err);
    if (!impl && strcmp(kind, "console") != 0) {
        printf("# configure %s: %s\n", kind, err.msg);
        return NULL;
    }
    tw_buf_reset(body);
    tw_status rc = tw__target_render(tw__target_kind(kind), impl, a, body, &err);
    tw__target_kind(kind)->release(impl);
    if (rc) {
        printf("# render %s: %s\n", kind, err.msg);
        return NULL;
    }
    tw_json_doc *d = NULL;                     /* quietly: text bodies are expected too */
    tw_limits lim;
    tw_limits_default(&lim);
    lim.event_max = 16u << 20;
    tw_json_parse(body->data, body->len, &lim, &d, NULL);
    return d;
}

typedef void (*str_fn)(const char *key, const char *s, void *ctx);

static void walk(const tw_json *v, const char *key, str_fn fn, void *ctx)
{
    switch (tw_json_typeof(v)) {
    case TW_JSON_STRING: fn(key, tw_json_string(v, NULL), ctx); break;
    case TW_JSON_ARRAY:
        for (size_t i = 0; i < tw_json_size(v); i++)
            walk(tw_json_at(v, i), key, fn, ctx);
        break;
    case TW_JSON_OBJECT:
        for (size_t i = 0; i < tw_json_size(v); i++)
            walk(tw_json_at(v, i), tw_json_key(v, i, NULL), fn, ctx);
        break;
    default: break;
    }
}

static const char SLACK_URL[] = "https://hooks.slack.com/services/T000/B000/SECRETTOKEN123";

/* ---- registry and classification ---- */

/* Kind policy lives with the kinds (tw_target_ops.policy): the loader's defaults, the dispatcher's
 * ordering and the engine's escaping all come from there, and the kind list from the registry. */
TW_TEST(kind_policy_is_the_kinds_own)
{
    size_t n = 0;
    for (const tw_target_ops *o; (o = tw__target_kind_at(n)); n++) {
        CHECK(tw__target_kind(o->kind) == o);
        CHECK(o->policy.timeout_ms > 0);
        CHECK(o->policy.concurrency >= 1);
        /* a local kind runs on the shared workers, one at a time */
        if (o->transport != TW_TRANSPORT_HTTP)
            CHECK_EQ_INT(o->policy.concurrency, 1);
        /* Slack escapes & < >; Discord and Teams read Markdown and escape it; the others send data */
        CHECK(o->policy.escape_text == (strcmp(o->kind, "slack") == 0 ? tw__slack_escape
                                        : strcmp(o->kind, "discord") == 0 || strcmp(o->kind, "teams") == 0
                                            ? tw__markdown_escape : NULL));
        CHECK(o->policy.rate_per_second == 0 || o->policy.rate_burst >= 1);
    }
    CHECK_EQ_INT(n, 8);
    CHECK(tw__target_kind_at(n) == NULL);
    const tw_target_ops *slack = tw__target_kind("slack"), *discord = tw__target_kind("discord");
    CHECK(slack->policy.rate_per_second == 1 && slack->policy.rate_burst == 3);
    CHECK(discord->policy.rate_per_second == 0.5 && discord->policy.rate_burst == 5);
    CHECK_EQ_INT(tw__target_kind("teams")->policy.concurrency, 1);     /* chat: in order */
    CHECK(tw__target_kind("webhook")->policy.concurrency > 1);
    CHECK(tw__target_kind("pagerduty")->policy.concurrency > 1);
    CHECK_EQ_INT(tw__target_kind("exec")->policy.timeout_ms, 30000);
    CHECK_EQ_STR(tw__target_kind("file")->policy.path_settings[0], "path");
    char list[256];
    CHECK_EQ_STR(tw__target_kind_list(list, sizeof list),
                 "slack, webhook, teams, discord, pagerduty, exec, file, console");
    CHECK_EQ_STR(tw__target_kind_list(list, 8), "slack, ");
}

/* The URL-only kinds share one http_prepare: their URL, POST, JSON and our User-Agent. */
TW_TEST(url_only_kinds_share_http_prepare)
{
    static const char *const kinds[] = {"slack", "teams", "discord", "pagerduty"};
    static const char *const settings[] = {
        "{\"url\":\"https://hooks.example/a\"}", "{\"url\":\"https://hooks.example/a\"}",
        "{\"url\":\"https://hooks.example/a\"}",
        ("{\"routing_key\":\"R0123456789abcdef0123456789abcdef\",\"url\":\"https://hooks.example/a\"}")};
    for (size_t i = 0; i < 4; i++) {
        tw_error err;
        void *impl = configure(kinds[i], settings[i], &err);
        if (!impl) {
            TW_FAIL_("configure %s: %s", kinds[i], err.msg);
            continue;
        }
        const tw_target_ops *o = tw__target_kind(kinds[i]);
        tw_http_prep prep;
        CHECK_EQ_INT(o->http_prepare(impl, "k", &prep, &err), TW_OK);
        CHECK_EQ_STR(prep.url, "https://hooks.example/a");
        CHECK_EQ_STR(prep.method, "POST");
        CHECK_EQ_INT(prep.nheaders, 2);
        CHECK_EQ_STR(prep.headers[0], "Content-Type: application/json; charset=utf-8");
        o->release(impl);
    }
}

TW_TEST(registry_has_the_eight_kinds)
{
    static const char *const kinds[] = {"slack", "webhook", "teams", "discord", "pagerduty", "exec", "file", "console"};
    static const tw_transport tr[] = {TW_TRANSPORT_HTTP, TW_TRANSPORT_HTTP, TW_TRANSPORT_HTTP, TW_TRANSPORT_HTTP,
                                      TW_TRANSPORT_HTTP, TW_TRANSPORT_EXEC, TW_TRANSPORT_FILE, TW_TRANSPORT_CONSOLE};
    for (size_t i = 0; i < 8; i++) {
        const tw_target_ops *o = tw__target_kind(kinds[i]);
        REQUIRE(o);
        CHECK_EQ_STR(o->kind, kinds[i]);
        CHECK_EQ_INT(o->transport, tr[i]);
        CHECK(o->configure && o->release && o->render);
        if (tr[i] == TW_TRANSPORT_HTTP)
            CHECK(o->http_prepare && o->http_classify && !o->deliver_local);
        else
            CHECK(o->deliver_local && !o->http_prepare);
        CHECK((o->finalize_body != NULL) == (strcmp(kinds[i], "pagerduty") == 0));
    }
    CHECK(tw__target_kind("lambda") == NULL);
    CHECK(tw__target_kind("Slack") == NULL);
    CHECK(tw__target_kind(NULL) == NULL);
}

TW_TEST(unknown_settings_are_errors_with_a_suggestion)
{
    static const struct {
        const char *kind, *settings, *needle;
    } cases[] = {
        {"slack", "{\"url\":\"https://hooks.slack.com/services/T/B/x\",\"chanel\":\"#a\"}", "did you mean \"channel\""},
        {"webhook", "{\"url\":\"http://127.0.0.1/x\",\"header\":{}}", "did you mean \"headers\""},
        {"file", "{\"path\":\"/tmp/x\",\"mode\":\"0600\"}", "unknown setting \"mode\""},
        {"console", "{\"colour\":true}", "unknown setting \"colour\""},
        {"exec", "{\"comand\":[\"/bin/true\"]}", "did you mean \"command\""},
        {"pagerduty", "{\"routing_key\":\"k\",\"severity\":\"x\"}", "unknown setting \"severity\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tw_json_doc *d = parse(cases[i].settings);
        void *impl = NULL;
        tw_error err;
        const tw_target_ops *ops = tw__target_kind(cases[i].kind);
        REQUIRE(ops && d);
        CHECK_EQ_INT(ops->configure(tw_json_root(d), &impl, &err), TW_ECONFIG);
        CHECK_CONTAINS(err.msg, cases[i].needle);
        CHECK(!strstr(err.msg, "hooks.slack.com")); /* a secret never shows */
        if (impl)
            ops->release(impl);
        tw_json_doc_free(d);
    }
}

TW_TEST(default_http_classification)
{
    static const struct { long status; int64_t ra; tw_outcome want; int64_t want_ra; } cases[] = {
        {200, -1, TW_OUTCOME_DELIVERED, -1}, {201, -1, TW_OUTCOME_DELIVERED, -1}, {202, -1, TW_OUTCOME_DELIVERED, -1},
        {204, -1, TW_OUTCOME_DELIVERED, -1}, {299, 5000, TW_OUTCOME_DELIVERED, -1},
        {408, -1, TW_OUTCOME_RETRY, -1}, {429, -1, TW_OUTCOME_RETRY, -1}, {429, 30000, TW_OUTCOME_RETRY, 30000},
        {429, 0, TW_OUTCOME_RETRY, 0}, {500, -1, TW_OUTCOME_RETRY, -1}, {502, -1, TW_OUTCOME_RETRY, -1},
        {503, 120000, TW_OUTCOME_RETRY, 120000}, {504, -1, TW_OUTCOME_RETRY, -1}, {599, -1, TW_OUTCOME_RETRY, -1},
        {0, -1, TW_OUTCOME_RETRY, -1}, {-1, -1, TW_OUTCOME_RETRY, -1},
        {400, -1, TW_OUTCOME_PERMANENT, -1}, {401, -1, TW_OUTCOME_PERMANENT, -1}, {403, -1, TW_OUTCOME_PERMANENT, -1},
        {404, -1, TW_OUTCOME_PERMANENT, -1}, {410, -1, TW_OUTCOME_PERMANENT, -1}, {413, 1000, TW_OUTCOME_PERMANENT, -1},
        {422, -1, TW_OUTCOME_PERMANENT, -1}, {301, -1, TW_OUTCOME_PERMANENT, -1}, {100, -1, TW_OUTCOME_PERMANENT, -1},
        /* a negative Retry-After stops retrying (API destinations) */
        {429, -1000, TW_OUTCOME_PERMANENT, -1}, {503, -5000, TW_OUTCOME_PERMANENT, -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int64_t ra = 12345;
        tw_outcome o = tw__target_http_default(cases[i].status, cases[i].ra, &ra);
        if (o != cases[i].want || ra != cases[i].want_ra)
            TW_FAIL_("status %ld ra %lld: got %d/%lld, expected %d/%lld", cases[i].status, (long long)cases[i].ra,
                     (int)o, (long long)ra, (int)cases[i].want, (long long)cases[i].want_ra);
    }
    CHECK_EQ_INT(tw__target_http_default(503, 1000, NULL), TW_OUTCOME_RETRY);
    CHECK_EQ_INT(TW_RETRY_AFTER_NONE, -1);
}

TW_TEST(kind_specific_classification)
{
    int64_t ra;
    tw_error err;
    void *slack = configure("slack", "{\"url\":\"https://hooks.slack.com/x\"}", &err);
    const tw_target_ops *s = tw__target_kind("slack");
    CHECK_EQ_INT(s->http_classify(slack, 200, "ok", 2, -1, &ra), TW_OUTCOME_DELIVERED);
    CHECK_EQ_INT(s->http_classify(slack, 400, "invalid_payload", 15, -1, &ra), TW_OUTCOME_PERMANENT);
    CHECK_EQ_INT(s->http_classify(slack, 404, "no_service", 10, -1, &ra), TW_OUTCOME_PERMANENT);
    CHECK_EQ_INT(s->http_classify(slack, 410, "channel_is_archived", 19, -1, &ra), TW_OUTCOME_PERMANENT);
    CHECK_EQ_INT(s->http_classify(slack, 403, "action_prohibited", 17, -1, &ra), TW_OUTCOME_PERMANENT);
    CHECK_EQ_INT(s->http_classify(slack, 429, "rate_limited", 12, 3000, &ra), TW_OUTCOME_RETRY);
    CHECK_EQ_INT(ra, 3000);
    CHECK_EQ_INT(s->http_classify(slack, 500, "rollup_error", 12, -1, &ra), TW_OUTCOME_RETRY);
    s->release(slack);

    const tw_target_ops *d = tw__target_kind("discord");
    void *disc = configure("discord", "{\"url\":\"https://discord.com/api/webhooks/1/t\"}", &err);
    static const char body429[] = "{\"message\":\"You are being rate limited.\",\"retry_after\":1.5,\"global\":false}";
    CHECK_EQ_INT(d->http_classify(disc, 429, body429, strlen(body429), 2000, &ra), TW_OUTCOME_RETRY);
    CHECK_EQ_INT(ra, 1500);
    CHECK_EQ_INT(d->http_classify(disc, 429, "garbage", 7, 2000, &ra), TW_OUTCOME_RETRY);
    CHECK_EQ_INT(ra, 2000);
    CHECK_EQ_INT(d->http_classify(disc, 204, "", 0, -1, &ra), TW_OUTCOME_DELIVERED);
    CHECK_EQ_INT(d->http_classify(disc, 404, "{\"code\":10015}", 14, -1, &ra), TW_OUTCOME_PERMANENT);
    d->release(disc);

    const tw_target_ops *t = tw__target_kind("teams");
    void *wf = configure("teams", "{\"url\":\"https://prod-1.westus.logic.azure.com/x\"}", &err);
    void *mc = configure("teams", "{\"url\":\"https://x.webhook.office.com/w\",\"format\":\"messagecard\"}", &err);
    CHECK_EQ_INT(t->http_classify(wf, 202, "", 0, -1, &ra), TW_OUTCOME_DELIVERED);
    CHECK_EQ_INT(t->http_classify(mc, 200, "1", 1, -1, &ra), TW_OUTCOME_DELIVERED);
    static const char e429[] = "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 429 "
                               "with ContextId tcid=0..";
    static const char e413[] = "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 413";
    CHECK_EQ_INT(t->http_classify(mc, 200, e429, strlen(e429), -1, &ra), TW_OUTCOME_RETRY);
    CHECK_EQ_INT(t->http_classify(mc, 200, e413, strlen(e413), -1, &ra), TW_OUTCOME_PERMANENT);
    CHECK_EQ_INT(t->http_classify(mc, 200, "Summary or Text is required.", 28, -1, &ra), TW_OUTCOME_RETRY);
    CHECK_EQ_INT(t->http_classify(mc, 400, "Summary or Text is required.", 28, -1, &ra), TW_OUTCOME_PERMANENT);
    t->release(wf);
    t->release(mc);

    const tw_target_ops *p = tw__target_kind("pagerduty");
    void *pd = configure("pagerduty", "{\"routing_key\":\"R0UT1NGKEY0123456789ABCDEFGHIJKL\"}", &err);
    CHECK_EQ_INT(p->http_classify(pd, 202, "{\"status\":\"success\"}", 20, -1, &ra), TW_OUTCOME_DELIVERED);
    CHECK_EQ_INT(p->http_classify(pd, 400, "{\"status\":\"invalid event\"}", 26, -1, &ra), TW_OUTCOME_PERMANENT);
    CHECK_EQ_INT(p->http_classify(pd, 429, "", 0, -1, &ra), TW_OUTCOME_RETRY);
    p->release(pd);
}

/* ---- facts ---- */

static const char *who_of(const char *identity)
{
    static char out[256];
    char ev[2048];
    snprintf(ev, sizeof ev,
             "{\"account\":\"123456789012\",\"detail\":{\"eventName\":\"X\",\"eventSource\":\"s.amazonaws.com\","
             "\"userIdentity\":%s}}", identity);
    tw_json_doc *d = parse(ev);
    tw_facts f;
    tw__facts_extract(d ? tw_json_root(d) : NULL, &f);
    snprintf(out, sizeof out, "%s", f.who ? f.who : "(null)");
    tw__facts_free(&f);
    tw_json_doc_free(d);
    return out;
}

TW_TEST(facts_name_the_caller_by_identity_type)
{
    CHECK_EQ_STR(who_of("{\"type\":\"IAMUser\",\"userName\":\"alice\",\"arn\":\"arn:aws:iam::1:user/alice\"}"), "alice");
    CHECK_EQ_STR(who_of("{\"type\":\"Root\",\"accountId\":\"111122223333\",\"arn\":\"arn:aws:iam::111122223333:root\"}"),
                 "root user of 111122223333");
    CHECK_EQ_STR(who_of("{\"type\":\"Root\"}"), "root user of 123456789012");
    CHECK_EQ_STR(who_of("{\"type\":\"AssumedRole\",\"arn\":\"arn:aws:sts::1:assumed-role/Admin/alice@example.com\","
                        "\"sessionContext\":{\"sessionIssuer\":{\"type\":\"Role\",\"userName\":\"Admin\"}}}"),
                 "Admin/alice@example.com");
    CHECK_EQ_STR(who_of("{\"type\":\"AssumedRole\",\"arn\":\"arn:aws:sts::1:assumed-role/R/s\"}"),
                 "arn:aws:sts::1:assumed-role/R/s");
    CHECK_EQ_STR(who_of("{\"type\":\"AWSService\",\"invokedBy\":\"lambda.amazonaws.com\"}"), "lambda.amazonaws.com");
    CHECK_EQ_STR(who_of("{\"type\":\"FederatedUser\",\"principalId\":\"1:bob\",\"arn\":\"arn:aws:sts::1:federated-user/bob\"}"),
                 "arn:aws:sts::1:federated-user/bob");
    CHECK_EQ_STR(who_of("{\"type\":\"IdentityCenterUser\",\"principalId\":\"abc\"}"), "abc");
    CHECK_EQ_STR(who_of("{}"), "(null)");
}

static const char *resource_of(const char *detail_members, const char *envelope_resources)
{
    static char out[512];
    char ev[4096];
    snprintf(ev, sizeof ev, "{\"resources\":%s,\"detail\":{\"eventName\":\"X\",\"eventSource\":\"s\"%s%s}}",
             envelope_resources, *detail_members ? "," : "", detail_members);
    tw_json_doc *d = parse(ev);
    tw_facts f;
    tw__facts_extract(d ? tw_json_root(d) : NULL, &f);
    snprintf(out, sizeof out, "%s", f.resource ? f.resource : "(null)");
    tw__facts_free(&f);
    tw_json_doc_free(d);
    return out;
}

TW_TEST(facts_find_the_most_specific_resource)
{
    CHECK_EQ_STR(resource_of("\"requestParameters\":{\"tableName\":\"T\",\"name\":\"n\"}", "[]"), "T");
    CHECK_EQ_STR(resource_of("\"requestParameters\":{\"bucketName\":\"b\",\"key\":\"k\"}", "[]"), "b");
    CHECK_EQ_STR(resource_of("\"requestParameters\":{\"instancesSet\":{\"items\":[{\"instanceId\":\"i-1\"},"
                             "{\"instanceId\":\"i-2\"},{\"instanceId\":\"i-3\"},{\"instanceId\":\"i-4\"}]}}", "[]"),
                 "i-1, i-2, i-3 (+1 more)");
    CHECK_EQ_STR(resource_of("\"requestParameters\":{\"roleName\":\"R\",\"policyArn\":\"arn:p\"}", "[]"), "R");
    CHECK_EQ_STR(resource_of("\"requestParameters\":{\"groupId\":\"sg-1\"}", "[]"), "sg-1");
    CHECK_EQ_STR(resource_of("\"requestParameters\":{\"foo\":1},\"resources\":[{\"ARN\":\"arn:x\"}]", "[\"arn:env\"]"),
                 "arn:x");
    CHECK_EQ_STR(resource_of("\"requestParameters\":null", "[]"), "(null)");
}

/* ---- slack ---- */

static const char *sec_text(const tw_json_doc *d, int block) /* blocks[i].text.text */
{
    char p[64];
    snprintf(p, sizeof p, "$.blocks[%d].text.text", block);
    return pstr(d, p);
}

TW_TEST(slack_settings)
{
    CHECK_CONTAINS(config_error("slack", "{}"), "url: required");
    CHECK_CONTAINS(config_error("slack", "{\"url\":\"\"}"), "url: required");
    const char *e = config_error("slack", "{\"url\":\"ftp://hooks.slack.com/services/T/B/SECRETTOKEN\"}");
    CHECK_CONTAINS(e, "url: must be an http(s) URL");
    CHECK(!strstr(e, "SECRETTOKEN"));
    CHECK_CONTAINS(config_error("slack", "{\"url\":\"https://\"}"), "url: must be an http(s) URL");
    CHECK_CONTAINS(config_error("slack", "{\"url\":\"https://a b/SECRET\"}"), "url: must be");
    CHECK_CONTAINS(config_error("slack", "{\"url\":[1]}"), "url: must be a string");
    CHECK_CONTAINS(config_error("slack", "{\"url\":\"https://x/y\",\"channel\":{}}"), "channel: must be a string");
    CHECK_EQ_STR(config_error("slack", "{\"url\":\"HTTP://x/y\",\"channel\":\"#ops\",\"username\":\"tw\","
                                       "\"icon_emoji\":\":eyes:\",\"mention\":\"<!here>\"}"), "");
}

TW_TEST(slack_default_message_for_a_cloudtrail_call)
{
    alert al;
    alert_init(&al, fixture("cloudtrail-api-call-via-eventbridge.json"));
    REQUIRE(al.ev);
    tw_buf body = TW_BUF_INIT;
    char settings[256];
    snprintf(settings, sizeof settings, "{\"url\":\"%s\"}", SLACK_URL);
    tw_json_doc *d = render("slack", settings, &al.a, &body);
    REQUIRE(d);
    CHECK(!strstr(body.data, "SECRETTOKEN"));
    CHECK_EQ_STR(pstr(d, "$.blocks[0].type"), "header");
    CHECK_EQ_STR(pstr(d, "$.blocks[0].text.type"), "plain_text");
    CHECK_EQ_STR(pstr(d, "$.blocks[0].text.text"), ":red_circle: new-dynamodb-table");
    CHECK_EQ_STR(sec_text(d, 1), "*alice* (IAMUser) called *CreateTable* on `dynamodb.amazonaws.com`\n"
                                 "*Resource:* TestTable\n"
                                 "*Where:* us-east-1 \xc2\xb7 account 123456789012 \xc2\xb7 from 192.0.2.10\n"
                                 "*When:* 2018-01-12T18:06:01Z");
    /* key request parameters: scalars and short values */
    CHECK_EQ_STR(pstr(d, "$.blocks[2].fields[0].text"), "*tableName*\nTestTable");
    CHECK_EQ_STR(pstr(d, "$.blocks[2].fields[1].text"),
                 "*attributeDefinitions*\n[{\"attributeName\":\"key\",\"attributeType\":\"S\"}]");
    CHECK_EQ_STR(pstr(d, "$.blocks[2].fields[3].text"),
                 "*provisionedThroughput*\n{\"readCapacityUnits\":1,\"writeCapacityUnits\":1}");
    CHECK(tw_json_size(path(d, "$.blocks[2].fields")) == 4);
    /* no error section: the next block is the context */
    CHECK_EQ_STR(pstr(d, "$.blocks[3].type"), "context");
    CHECK_EQ_STR(pstr(d, "$.blocks[3].elements[0].text"),
                 "Tables cost money \xc2\xb7 event 2a6b4c9e-3f1d-4c55-9a4b-0b6a0b0c1d2e \xc2\xb7 123456789012/us-east-1");
    CHECK_EQ_INT(tw_json_size(path(d, "$.blocks")), 4);
    CHECK_EQ_STR(pstr(d, "$.text"), ":red_circle: new-dynamodb-table: CreateTable by alice on TestTable (us-east-1)");
    CHECK_EQ_INT(tw_json_typeof(path(d, "$.unfurl_links")), TW_JSON_FALSE);
    CHECK(path(d, "$.channel") == NULL && path(d, "$.username") == NULL);
    tw_json_doc_free(d);

    /* legacy settings, a mention, a storm, an error */
    tw_json_doc *ev2 = parse("{\"id\":\"e\",\"detail\":{\"eventName\":\"DeleteTable\",\"eventSource\":\"dynamodb.amazonaws.com\","
                             "\"userIdentity\":{\"type\":\"Root\",\"accountId\":\"123456789012\"},"
                             "\"errorCode\":\"AccessDenied\",\"errorMessage\":\"User is not authorized\"}}");
    tw_alert_ctx a2 = al.a;
    a2.event = tw_json_root(ev2);
    a2.storm_count = 5;
    a2.storm_window_ms = 300000;
    a2.severity = "critical";
    snprintf(settings, sizeof settings, "{\"url\":\"%s\",\"channel\":\"#ops\",\"username\":\"tw\",\"icon_emoji\":\":eyes:\","
                                        "\"mention\":\"<!here>\"}", SLACK_URL);
    d = render("slack", settings, &a2, &body);
    REQUIRE(d);
    CHECK_EQ_STR(pstr(d, "$.channel"), "#ops");
    CHECK_EQ_STR(pstr(d, "$.username"), "tw");
    CHECK_EQ_STR(pstr(d, "$.icon_emoji"), ":eyes:");
    CHECK_EQ_STR(pstr(d, "$.blocks[0].text.text"), ":rotating_light: new-dynamodb-table");
    CHECK(strncmp(sec_text(d, 1), "<!here>\n*root user of 123456789012* (Root) called *DeleteTable*", 61) == 0);
    CHECK_EQ_STR(pstr(d, "$.blocks[2].text.text"), ":x: *Error:* AccessDenied: User is not authorized");
    CHECK_EQ_STR(pstr(d, "$.blocks[4].elements[0].text"), ":repeat: +4 identical alerts in the last 5m");
    CHECK(strncmp(pstr(d, "$.text"), "<!here> :rotating_light: new-dynamodb-table: DeleteTable by root user", 69) == 0);
    tw_json_doc_free(d);
    tw_json_doc_free(ev2);
    tw__buf_free(&body);
    alert_free(&al);
}

TW_TEST(slack_default_message_for_an_ssm_change)
{
    alert al;
    alert_init(&al, fixture("ssm-parameter-store-change.json"));
    REQUIRE(al.ev);
    al.a.severity = "info";
    tw_buf body = TW_BUF_INIT;
    tw_json_doc *d = render("slack", "{\"url\":\"https://hooks.slack.com/x\"}", &al.a, &body);
    REQUIRE(d);
    CHECK_EQ_STR(pstr(d, "$.blocks[0].text.text"), ":information_source: new-dynamodb-table");
    CHECK_EQ_STR(sec_text(d, 1), "*Parameter Store Change* from `aws.ssm`\n"
                                 "*Resources:* arn:aws:ssm:us-east-1:123456789012:parameter/foo\n"
                                 "*Where:* us-east-1 \xc2\xb7 account 123456789012\n"
                                 "*When:* 2017-05-22T16:43:48Z");
    CHECK_EQ_STR(pstr(d, "$.blocks[2].fields[0].text"), "*operation*\nCreate");
    CHECK_EQ_STR(pstr(d, "$.blocks[2].fields[1].text"), "*name*\nfoo");
    CHECK_EQ_STR(pstr(d, "$.blocks[2].fields[2].text"), "*type*\nString");
    CHECK_EQ_STR(pstr(d, "$.blocks[2].fields[3].text"), "*description*\nSample Parameter");
    CHECK(strstr(pstr(d, "$.text"), "Parameter Store Change on arn:aws:ssm:us-east-1:123456789012:parameter/foo"));
    tw_json_doc_free(d);
    tw__buf_free(&body);
    alert_free(&al);
}

static const char HOSTILE[] =
    "{\"version\":\"0\",\"id\":\"<!channel>-id\",\"detail-type\":\"AWS API Call via CloudTrail\",\"source\":\"aws.iam\","
    "\"account\":\"123456789012\",\"time\":\"2018-01-12T18:06:01Z\",\"region\":\"us-east-1\",\"resources\":[],"
    "\"detail\":{\"eventSource\":\"iam.amazonaws.com <!channel>\",\"eventName\":\"CreateUser<@U123>\","
    "\"awsRegion\":\"us-east-1 & <!here>\",\"sourceIPAddress\":\"<https://evil|click>\",\"eventTime\":\"<!date^1^x|y>\","
    "\"userIdentity\":{\"type\":\"IAMUser<!channel>\",\"userName\":\"<!channel> & <@U123>\"},"
    "\"requestParameters\":{\"userName\":\"<https://x|y>\",\"tags\":\"<!subteam^S1>\",\"path\":\"a&b\","
    "\"<@U9>\":\"key\",\"list\":[\"<!channel>\"]},"
    "\"errorCode\":\"<!everyone>\",\"errorMessage\":\"<@U123> & <https://x|y>\"}}";

static void no_control(const char *key, const char *s, void *ctx)
{
    (void)ctx;
    char buf[8192];
    snprintf(buf, sizeof buf, "%s", s);
    char *m;
    while ((m = strstr(buf, "<!here>")))     /* the operator's mention, the only one allowed */
        memmove(m, m + 7, strlen(m + 7) + 1);
    if (strchr(buf, '<') || strchr(buf, '>'))
        TW_FAIL_("%s: unescaped < or >: %s", key, s);
    for (char *p = buf; (p = strchr(p, '&')); p++)
        if (strncmp(p, "&amp;", 5) && strncmp(p, "&lt;", 4) && strncmp(p, "&gt;", 4))
            TW_FAIL_("%s: unescaped &: %s", key, s);
}

TW_TEST(slack_escapes_everything_from_the_event)
{
    alert al;
    alert_init(&al, strdup(HOSTILE));
    REQUIRE(al.ev);
    al.a.rule_description = "<!channel> & <@U1> desc";
    al.a.storm_count = 2;
    al.a.storm_window_ms = 90000;
    tw_buf body = TW_BUF_INIT;
    tw_json_doc *d = render("slack", "{\"url\":\"https://hooks.slack.com/x\",\"mention\":\"<!here>\"}", &al.a, &body);
    REQUIRE(d);
    walk(tw_json_root(d), "", no_control, NULL);
    CHECK(strstr(sec_text(d, 1), "*&lt;!channel&gt; &amp; &lt;@U123&gt;*"));
    CHECK(strstr(sec_text(d, 1), "from &lt;https://evil|click&gt;"));
    CHECK(strstr(body.data, "&lt;!everyone&gt;: &lt;@U123&gt; &amp; &lt;https://x|y&gt;"));
    CHECK(strstr(body.data, "*&lt;@U9&gt;*\\nkey"));
    CHECK(strstr(body.data, "+1 identical alerts in the last 90s"));
    tw_json_doc_free(d);
    /* the same event through the other kinds: valid JSON, and Discord pings nobody */
    static const char *const others[][2] = {{"teams", "{\"url\":\"https://x/y\"}"},
                                            {"teams", "{\"url\":\"https://x/y\",\"format\":\"messagecard\"}"},
                                            {"discord", "{\"url\":\"https://x/y\"}"},
                                            {"pagerduty", "{\"routing_key\":\"k\"}"},
                                            {"webhook", "{\"url\":\"https://x/y\"}"}};
    for (size_t i = 0; i < sizeof others / sizeof *others; i++) {
        d = render(others[i][0], others[i][1], &al.a, &body);
        if (!d)
            TW_FAIL_("%s: no valid JSON", others[i][0]);
        tw_json_doc_free(d);
    }
    d = render("pagerduty", "{\"routing_key\":\"k\"}", &al.a, &body);
    REQUIRE(d);
    CHECK(path(d, "$.payload.timestamp") == NULL);    /* "<!date^...>" is no timestamp */
    tw_json_doc_free(d);
    d = render("discord", "{\"url\":\"https://x/y\"}", &al.a, &body);
    REQUIRE(d);
    CHECK(tw_json_typeof(path(d, "$.allowed_mentions.parse")) == TW_JSON_ARRAY);
    CHECK_EQ_INT(tw_json_size(path(d, "$.allowed_mentions.parse")), 0);
    CHECK(path(d, "$.embeds[0].timestamp") == NULL);   /* "<!date^...>" is no timestamp */
    tw_json_doc_free(d);
    tw__buf_free(&body);
    alert_free(&al);
}

static const char LINKS[] =
    "{\"version\":\"0\",\"id\":\"[id](http://evil.example/id)\",\"detail-type\":\"AWS API Call via CloudTrail\","
    "\"source\":\"aws.iam\",\"account\":\"123456789012\",\"time\":\"2018-01-12T18:06:01Z\",\"region\":\"us-east-1\","
    "\"resources\":[],\"detail\":{\"eventSource\":\"iam.amazonaws.com\",\"eventName\":\"CreateUser\","
    "\"awsRegion\":\"us-east-1\",\"sourceIPAddress\":\"[click](http://evil.example)\","
    "\"userIdentity\":{\"type\":\"IAMUser\",\"userName\":\"**[admin](http://evil.example/a)**\"},"
    "\"requestParameters\":{\"userName\":\"[bob](http://evil.example/b)\"},"
    "\"errorCode\":\"x\",\"errorMessage\":\"see [the docs](http://evil.example/d) `now`\"}}";

/* Every '[', ']', '(', ')', '*', '`' of a string is escaped with a backslash. */
static void md_escaped(const char *key, const char *s, void *ctx)
{
    int *bad = ctx;
    for (const char *p = s; *p; p++)
        if (strchr("[]()*`", *p) && (p == s || p[-1] != '\\')) {
            printf("#   %s: \"%s\" has an unescaped '%c'\n", key, s, *p);
            (*bad)++;
            return;
        }
}

TW_TEST(discord_and_teams_escape_markdown_from_the_event)
{
    alert al;
    alert_init(&al, strdup(LINKS));
    REQUIRE(al.ev);
    tw_buf body = TW_BUF_INIT;
    static const char *const kinds[][2] = {{"discord", "{\"url\":\"https://x/y\"}"},
                                           {"teams", "{\"url\":\"https://x/y\"}"}};
    for (size_t i = 0; i < 2; i++) {
        tw_json_doc *d = render(kinds[i][0], kinds[i][1], &al.a, &body);
        REQUIRE(d);
        int bad = 0;
        /* the card's own URLs ($schema) are not event text */
        const tw_json *root = tw_json_root(d);
        if (i == 0)
            walk(root, "", md_escaped, &bad);
        else
            walk(path(d, "$.attachments[0].content.body"), "", md_escaped, &bad);
        CHECK_EQ_INT(bad, 0);
        CHECK(strstr(body.data, "\\\\[click\\\\]\\\\(http://evil.example\\\\)") != NULL);
        tw_json_doc_free(d);
    }
    /* a MessageCard section says markdown: false; its text stays as written */
    tw_json_doc *d = render("teams", "{\"url\":\"https://x/y\",\"format\":\"messagecard\"}", &al.a, &body);
    REQUIRE(d);
    CHECK(tw_json_typeof(path(d, "$.sections[0].markdown")) == TW_JSON_FALSE);
    tw_json_doc_free(d);
    tw__buf_free(&body);
    alert_free(&al);
}

TW_TEST(storm_summaries_carry_their_count_in_json_bodies)
{
    alert al;
    alert_init(&al, fixture("cloudtrail-api-call-via-eventbridge.json"));
    al.a.storm_count = 7;
    al.a.storm_window_ms = 300000;
    tw_buf body = TW_BUF_INIT;
    static const char *const kinds[][2] = {{"webhook", "{\"url\":\"https://x/y\"}"},
                                           {"console", "{}"}};
    for (size_t i = 0; i < 2; i++) {
        tw_json_doc *d = render(kinds[i][0], kinds[i][1], &al.a, &body);
        REQUIRE(d);
        CHECK_EQ_INT(tw_json_number(path(d, "$.trailwatch.storm.suppressed")), 6);
        CHECK_EQ_INT(tw_json_number(path(d, "$.trailwatch.storm.window_seconds")), 300);
        CHECK_EQ_STR(pstr(d, "$.detail.eventName"), "CreateTable");   /* the event is intact */
        tw_json_doc_free(d);
    }
    tw_json_doc *d = render("pagerduty", "{\"routing_key\":\"k\"}", &al.a, &body);
    REQUIRE(d);
    CHECK_EQ_INT(tw_json_number(path(d, "$.payload.custom_details.trailwatch.storm.suppressed")), 6);
    tw_json_doc_free(d);
    /* not a summary: the body is the event as it came */
    al.a.storm_count = 0;
    d = render("webhook", "{\"url\":\"https://x/y\"}", &al.a, &body);
    REQUIRE(d);
    CHECK(path(d, "$.trailwatch") == NULL);
    CHECK_EQ_STR(body.data, al.text);
    tw_json_doc_free(d);
    tw__buf_free(&body);
    alert_free(&al);
}

static void check_len(const char *key, const char *s, void *ctx)
{
    (void)key;
    size_t *max = ctx;
    if (strlen(s) > *max)
        *max = strlen(s);
}

/* An event whose every part is huge. */
static char *huge_event(void)
{
    tw_buf b = TW_BUF_INIT;
    char big[6001];
    memset(big, 'x', 6000);
    big[6000] = '\0';
    big[100] = '&';                            /* escaping grows the text */
    tw__buf_printf(&b, "{\"id\":\"%s\",\"account\":\"%s\",\"region\":\"%s\",\"detail\":{\"eventName\":\"%s\","
                      "\"eventSource\":\"%s\",\"sourceIPAddress\":\"%s\",\"userIdentity\":{\"type\":\"IAMUser\","
                      "\"userName\":\"%s\"},\"errorCode\":\"%s\",\"errorMessage\":\"%s\",\"requestParameters\":{",
                  big, big, big, big, big, big, big, big, big);
    for (int i = 0; i < 40; i++)
        tw__buf_printf(&b, "%s\"p%d%s\":\"%s\"", i ? "," : "", i, big, big);
    tw__buf_puts(&b, "},\"resources\":[");
    for (int i = 0; i < 40; i++)
        tw__buf_printf(&b, "%s{\"ARN\":\"%s\"}", i ? "," : "", big);
    tw__buf_puts(&b, "]}}");
    return tw__buf_detach(&b, NULL);
}

TW_TEST(default_messages_keep_the_destinations_limits)
{
    alert al;
    alert_init(&al, huge_event());
    REQUIRE(al.ev);
    char rule[400];
    memset(rule, 'r', sizeof rule - 1);
    rule[sizeof rule - 1] = '\0';
    al.a.rule_name = rule;
    tw_buf body = TW_BUF_INIT;
    tw_json_doc *d = render("slack", "{\"url\":\"https://hooks.slack.com/x\",\"mention\":\"<!here>\"}", &al.a, &body);
    REQUIRE(d);
    CHECK(strlen(pstr(d, "$.blocks[0].text.text")) <= 150);
    CHECK(strlen(sec_text(d, 1)) <= 3000);
    CHECK(strlen(pstr(d, "$.text")) <= 4000);
    CHECK(tw_json_size(path(d, "$.blocks")) <= 50);
    const tw_json *fields = path(d, "$.blocks[2].fields");
    CHECK(tw_json_size(fields) >= 1 && tw_json_size(fields) <= 10);
    for (size_t i = 0; i < tw_json_size(fields); i++)
        CHECK(strlen(tw_json_string(tw_json_get(tw_json_at(fields, i), "text"), NULL)) <= 2000);
    size_t longest = 0;
    walk(tw_json_root(d), "", check_len, &longest);
    CHECK(longest <= 4000);                    /* the text fallback; sections are checked above */
    tw_json_doc_free(d);

    d = render("discord", "{\"url\":\"https://x/y\"}", &al.a, &body);
    REQUIRE(d);
    CHECK(strlen(pstr(d, "$.content")) <= 2000);
    const tw_json *e = path(d, "$.embeds[0]");
    size_t total = strlen(pstr(d, "$.embeds[0].title")) + strlen(pstr(d, "$.embeds[0].description")) +
                   strlen(pstr(d, "$.embeds[0].footer.text"));
    CHECK(strlen(pstr(d, "$.embeds[0].title")) <= 256);
    const tw_json *df = tw_json_get(e, "fields");
    CHECK(tw_json_size(df) <= 25);
    for (size_t i = 0; i < tw_json_size(df); i++) {
        size_t n = strlen(tw_json_string(tw_json_get(tw_json_at(df, i), "name"), NULL));
        size_t v = strlen(tw_json_string(tw_json_get(tw_json_at(df, i), "value"), NULL));
        CHECK(n <= 256 && v <= 1024);
        total += n + v;
    }
    CHECK(total <= 6000);
    tw_json_doc_free(d);

    d = render("teams", "{\"url\":\"https://x/y\"}", &al.a, &body);
    REQUIRE(d);
    CHECK(body.len < 28 * 1024);
    tw_json_doc_free(d);
    d = render("pagerduty", "{\"routing_key\":\"k\"}", &al.a, &body);
    REQUIRE(d);
    CHECK(strlen(pstr(d, "$.payload.summary")) <= 1024);
    tw_json_doc_free(d);
    tw__buf_free(&body);
    alert_free(&al);
}

TW_TEST(slack_with_a_transformation)
{
    alert al;
    alert_init(&al, fixture("ssm-parameter-store-change.json"));
    tw_buf body = TW_BUF_INIT;
    static const char *const s = "{\"url\":\"https://hooks.slack.com/x\",\"channel\":\"#c\",\"mention\":\"<!here>\"}";
    /* a JSON object is the payload itself */
    al.a.input = "{\"text\": \"hi\", \"blocks\": []}";
    al.a.input_len = strlen(al.a.input);
    al.a.input_is_json = 1;
    tw_json_doc *d = render("slack", s, &al.a, &body);
    CHECK_EQ_STR(body.data, "{\"text\": \"hi\", \"blocks\": []}");
    tw_json_doc_free(d);
    /* a JSON string and plain text are the text */
    al.a.input = "\"Create on foo &lt;x&gt;\"";
    al.a.input_len = strlen(al.a.input);
    d = render("slack", s, &al.a, &body);
    CHECK_EQ_STR(body.data, "{\"text\":\"<!here> Create on foo &lt;x&gt;\",\"channel\":\"#c\"}");
    tw_json_doc_free(d);
    al.a.input = "Create on \"foo\"\n";
    al.a.input_len = strlen(al.a.input);
    al.a.input_is_json = 0;
    d = render("slack", s, &al.a, &body);
    CHECK_EQ_STR(body.data, "{\"text\":\"<!here> Create on \\\"foo\\\"\\n\",\"channel\":\"#c\"}");
    tw_json_doc_free(d);
    /* other JSON values as code, escaped */
    al.a.input = "[1, \"<!channel>\"]";
    al.a.input_len = strlen(al.a.input);
    al.a.input_is_json = 1;
    d = render("slack", "{\"url\":\"https://hooks.slack.com/x\"}", &al.a, &body);
    CHECK_EQ_STR(body.data, "{\"text\":\"```[1, \\\"&lt;!channel&gt;\\\"]```\"}");
    tw_json_doc_free(d);
    tw__buf_free(&body);
    alert_free(&al);
}

/* ---- webhook ---- */

static int has_header(const tw_http_prep *p, const char *line)
{
    for (uint32_t i = 0; i < p->nheaders; i++)
        if (strcmp(p->headers[i], line) == 0)
            return 1;
    return 0;
}

TW_TEST(webhook_settings_body_and_headers)
{
    CHECK_CONTAINS(config_error("webhook", "{\"url\":\"https://x/y\",\"method\":\"DELETE\"}"),
                   "method: must be POST, PUT or PATCH");
    const char *e = config_error("webhook", "{\"url\":\"https://x/y\",\"auth\":{\"basic\":{\"username\":\"u\"}}}");
    CHECK_CONTAINS(e, "auth.basic: password: required");
    e = config_error("webhook", "{\"url\":\"https://x/y\",\"auth\":{\"oauth\":{}}}");
    CHECK_CONTAINS(e, "auth: unknown kind \"oauth\"");
    e = config_error("webhook", "{\"url\":\"https://x/y\",\"auth\":{\"bearer\":\"TOK\\nEN\"}}");
    CHECK_CONTAINS(e, "auth: the credentials hold a line break");
    CHECK(!strstr(e, "TOK"));
    e = config_error("webhook", "{\"url\":\"https://x/y\",\"headers\":{\"X-Key\":\"SECRET\\r\\nInjected: 1\"}}");
    CHECK_CONTAINS(e, "headers.X-Key: must be one line");
    CHECK(!strstr(e, "SECRET"));
    CHECK_CONTAINS(config_error("webhook", "{\"url\":\"https://x/y\",\"headers\":{\"Bad Name\":\"v\"}}"),
                   "headers: \"Bad Name\" is not a valid HTTP header name");
    CHECK_CONTAINS(config_error("webhook", "{\"url\":\"https://x/y\",\"headers\":[]}"), "headers: must be a mapping");

    alert al;
    alert_init(&al, fixture("cloudtrail-api-call-via-eventbridge.json"));
    tw_buf body = TW_BUF_INIT;
    tw_json_doc *d = render("webhook", "{\"url\":\"https://x/y\"}", &al.a, &body);
    CHECK_EQ_STR(body.data, al.text);          /* the event itself, as API destinations send it */
    tw_json_doc_free(d);
    al.a.input = "plain text";
    al.a.input_len = 10;
    d = render("webhook", "{\"url\":\"https://x/y\"}", &al.a, &body);
    CHECK_EQ_STR(body.data, "plain text");
    tw_json_doc_free(d);

    const tw_target_ops *w = tw__target_kind("webhook");
    tw_error err;
    tw_http_prep prep;
    void *impl = configure("webhook", "{\"url\":\"https://api.example.com/hook\",\"method\":\"put\","
                                      "\"auth\":{\"basic\":{\"username\":\"user\",\"password\":\"pa:ss\"}},"
                                      "\"headers\":{\"X-Team\":\"sec\",\"X-Num\":5}}", &err);
    REQUIRE(impl);
    CHECK_EQ_INT(w->http_prepare(impl, "key-1", &prep, &err), TW_OK);
    CHECK_EQ_STR(prep.url, "https://api.example.com/hook");
    CHECK_EQ_STR(prep.method, "PUT");
    CHECK(has_header(&prep, "Content-Type: application/json; charset=utf-8"));
    CHECK(has_header(&prep, "User-Agent: trailwatch/0.1.0"));
    CHECK(has_header(&prep, "Idempotency-Key: key-1"));
    CHECK(has_header(&prep, "Authorization: Basic dXNlcjpwYTpzcw=="));
    CHECK(has_header(&prep, "X-Team: sec"));
    CHECK(has_header(&prep, "X-Num: 5"));
    CHECK_EQ_INT(prep.nheaders, 6);
    w->release(impl);
    impl = configure("webhook", "{\"url\":\"https://x/y\",\"auth\":{\"api_key\":{\"header\":\"x-api-key\",\"value\":\"K1\"}},"
                                "\"headers\":{\"content-type\":\"application/cloudevents+json\"}}", &err);
    REQUIRE(impl);
    CHECK_EQ_INT(w->http_prepare(impl, "k", &prep, &err), TW_OK);
    CHECK(has_header(&prep, "x-api-key: K1"));
    CHECK(has_header(&prep, "content-type: application/cloudevents+json"));
    CHECK(!has_header(&prep, "Content-Type: application/json; charset=utf-8"));   /* configured wins */
    CHECK_EQ_STR(prep.method, "POST");
    w->release(impl);
    impl = configure("webhook", "{\"url\":\"https://x/y\",\"auth\":{\"bearer\":\"T0K\"}}", &err);
    REQUIRE(impl);
    CHECK_EQ_INT(w->http_prepare(impl, "k", &prep, &err), TW_OK);
    CHECK(has_header(&prep, "Authorization: Bearer T0K"));
    w->release(impl);
    tw__buf_free(&body);
    alert_free(&al);
}

/* ---- teams ---- */

static const char *fact(const tw_json *facts, const char *kname, const char *vname, const char *name)
{
    for (size_t i = 0; i < tw_json_size(facts); i++) {
        const tw_json *f = tw_json_at(facts, i);
        if (strcmp(tw_json_string(tw_json_get(f, kname), NULL), name) == 0)
            return tw_json_string(tw_json_get(f, vname), NULL);
    }
    return NULL;
}

TW_TEST(teams_cards)
{
    CHECK_CONTAINS(config_error("teams", "{\"url\":\"https://x/y\",\"format\":\"html\"}"),
                   "format: must be adaptive (Workflows) or messagecard");
    CHECK_CONTAINS(config_error("teams", "{}"), "url: required");
    alert al;
    alert_init(&al, fixture("cloudtrail-api-call-via-eventbridge.json"));
    tw_buf body = TW_BUF_INIT;
    tw_json_doc *d = render("teams", "{\"url\":\"https://prod.logic.azure.com/x\"}", &al.a, &body);
    REQUIRE(d);
    CHECK_EQ_STR(pstr(d, "$.type"), "message");
    CHECK_EQ_STR(pstr(d, "$.attachments[0].contentType"), "application/vnd.microsoft.card.adaptive");
    CHECK_EQ_INT(tw_json_typeof(path(d, "$.attachments[0].contentUrl")), TW_JSON_NULL);
    CHECK_EQ_STR(pstr(d, "$.attachments[0].content.type"), "AdaptiveCard");
    CHECK_EQ_STR(pstr(d, "$.attachments[0].content.body[0].text"), "new-dynamodb-table");
    CHECK_EQ_STR(pstr(d, "$.attachments[0].content.body[0].color"), "Attention");
    CHECK_EQ_STR(pstr(d, "$.attachments[0].content.body[1].text"), "CreateTable by alice on TestTable");
    CHECK_EQ_STR(pstr(d, "$.attachments[0].content.body[2].type"), "FactSet");
    const tw_json *facts = path(d, "$.attachments[0].content.body[2].facts");
    CHECK_EQ_STR(fact(facts, "title", "value", "Who"), "alice");
    CHECK_EQ_STR(fact(facts, "title", "value", "Action"), "CreateTable");
    CHECK_EQ_STR(fact(facts, "title", "value", "Resource"), "TestTable");
    CHECK_EQ_STR(fact(facts, "title", "value", "Region"), "us-east-1");
    CHECK_EQ_STR(fact(facts, "title", "value", "Account"), "123456789012");
    CHECK_EQ_STR(fact(facts, "title", "value", "Source IP"), "192.0.2.10");
    CHECK_EQ_STR(fact(facts, "title", "value", "Time"), "2018-01-12T18:06:01Z");
    CHECK(fact(facts, "title", "value", "Error") == NULL);
    CHECK_EQ_STR(fact(facts, "title", "value", "tableName"), "TestTable");
    tw_json_doc_free(d);

    d = render("teams", "{\"url\":\"https://x.webhook.office.com/y\",\"format\":\"messagecard\"}", &al.a, &body);
    REQUIRE(d);
    CHECK_EQ_STR(pstr(d, "$['@type']"), "MessageCard");
    CHECK_EQ_STR(pstr(d, "$.themeColor"), "E8590C");
    CHECK_EQ_STR(pstr(d, "$.title"), "new-dynamodb-table");
    CHECK_EQ_STR(pstr(d, "$.summary"), "CreateTable by alice on TestTable");
    CHECK_EQ_STR(fact(path(d, "$.sections[0].facts"), "name", "value", "Who"), "alice");
    tw_json_doc_free(d);

    /* transformation: a card as is, text wrapped */
    al.a.input = "Create on foo";
    al.a.input_len = strlen(al.a.input);
    d = render("teams", "{\"url\":\"https://x/y\"}", &al.a, &body);
    REQUIRE(d);
    CHECK_EQ_STR(pstr(d, "$.attachments[0].content.body[0].text"), "Create on foo");
    tw_json_doc_free(d);
    al.a.input = "{\"type\":\"message\",\"attachments\":[]}";
    al.a.input_len = strlen(al.a.input);
    al.a.input_is_json = 1;
    d = render("teams", "{\"url\":\"https://x/y\"}", &al.a, &body);
    CHECK_EQ_STR(body.data, al.a.input);
    tw_json_doc_free(d);
    tw__buf_free(&body);
    alert_free(&al);
}

/* ---- discord ---- */

TW_TEST(discord_embed)
{
    CHECK_CONTAINS(config_error("discord", "{\"url\":\"https://x/y\",\"username\":\"\"}"), "username: must be 1..80");
    CHECK_CONTAINS(config_error("discord", "{\"url\":\"https://x/y\",\"avatar_url\":\"nope\"}"), "avatar_url: must be");
    alert al;
    alert_init(&al, fixture("cloudtrail-api-call-via-eventbridge.json"));
    tw_buf body = TW_BUF_INIT;
    tw_json_doc *d = render("discord", "{\"url\":\"https://discord.com/api/webhooks/1/SECRET\",\"username\":\"AWS\","
                                       "\"avatar_url\":\"https://x/a.png\"}", &al.a, &body);
    REQUIRE(d);
    CHECK(!strstr(body.data, "SECRET"));
    CHECK_EQ_STR(pstr(d, "$.username"), "AWS");
    CHECK_EQ_STR(pstr(d, "$.avatar_url"), "https://x/a.png");
    CHECK_EQ_STR(pstr(d, "$.content"), "new-dynamodb-table: CreateTable by alice on TestTable");
    CHECK_EQ_STR(pstr(d, "$.embeds[0].title"), "new-dynamodb-table");
    CHECK_EQ_STR(pstr(d, "$.embeds[0].description"), "CreateTable by alice on TestTable");
    CHECK_EQ_INT(tw_json_number(path(d, "$.embeds[0].color")), 0xE8590C);
    CHECK_EQ_STR(pstr(d, "$.embeds[0].timestamp"), "2018-01-12T18:06:01Z");
    CHECK_EQ_STR(fact(path(d, "$.embeds[0].fields"), "name", "value", "Who"), "alice");
    CHECK_EQ_STR(fact(path(d, "$.embeds[0].fields"), "name", "value", "Resource"), "TestTable");
    CHECK_CONTAINS(pstr(d, "$.embeds[0].footer.text"), "event 2a6b4c9e-3f1d-4c55-9a4b-0b6a0b0c1d2e");
    CHECK_EQ_INT(tw_json_size(path(d, "$.allowed_mentions.parse")), 0);
    tw_json_doc_free(d);
    /* an operator's payload gets allowed_mentions unless it has its own */
    al.a.input = "{\"content\":\"@everyone hi\"}";
    al.a.input_len = strlen(al.a.input);
    al.a.input_is_json = 1;
    d = render("discord", "{\"url\":\"https://x/y\"}", &al.a, &body);
    CHECK_EQ_STR(body.data, "{\"content\":\"@everyone hi\",\"allowed_mentions\":{\"parse\":[]}}");
    tw_json_doc_free(d);
    al.a.input = "{\"content\":\"@everyone hi\",\"allowed_mentions\":{\"parse\":[\"everyone\"]}}";
    al.a.input_len = strlen(al.a.input);
    d = render("discord", "{\"url\":\"https://x/y\"}", &al.a, &body);
    CHECK_EQ_STR(body.data, al.a.input);
    tw_json_doc_free(d);
    al.a.input = "text @here";
    al.a.input_len = strlen(al.a.input);
    al.a.input_is_json = 0;
    d = render("discord", "{\"url\":\"https://x/y\"}", &al.a, &body);
    CHECK_EQ_STR(body.data, "{\"content\":\"text @here\",\"allowed_mentions\":{\"parse\":[]}}");
    tw_json_doc_free(d);
    tw__buf_free(&body);
    alert_free(&al);
}

/* ---- pagerduty ---- */

TW_TEST(pagerduty_event_and_routing_key)
{
    CHECK_CONTAINS(config_error("pagerduty", "{}"), "routing_key: required");
    const char *e = config_error("pagerduty", "{\"routing_key\":\"has space SECRETKEY\"}");
    CHECK_CONTAINS(e, "routing_key: must be the integration key");
    CHECK(!strstr(e, "SECRETKEY"));
    CHECK_CONTAINS(config_error("pagerduty", "{\"routing_key\":\"k\",\"url\":\"x\"}"), "url: must be an http(s) URL");

    alert al;
    alert_init(&al, fixture("cloudtrail-api-call-via-eventbridge.json"));
    tw_buf body = TW_BUF_INIT;
    static const char settings[] = "{\"routing_key\":\"R0UT1NGKEY0123456789ABCDEFGHIJKL\"}";
    tw_json_doc *d = render("pagerduty", settings, &al.a, &body);
    REQUIRE(d);
    CHECK(!strstr(body.data, "R0UT1NGKEY"));   /* the stored body holds no secret */
    CHECK(path(d, "$.routing_key") == NULL);
    CHECK_EQ_STR(pstr(d, "$.event_action"), "trigger");
    CHECK_EQ_STR(pstr(d, "$.dedup_key"), "idem-0123456789");
    CHECK_EQ_STR(pstr(d, "$.payload.summary"), "new-dynamodb-table: CreateTable by alice");
    CHECK_EQ_STR(pstr(d, "$.payload.source"), "dynamodb.amazonaws.com");
    CHECK_EQ_STR(pstr(d, "$.payload.severity"), "error");
    CHECK_EQ_STR(pstr(d, "$.payload.timestamp"), "2018-01-12T18:06:01Z");
    CHECK_EQ_STR(pstr(d, "$.payload.component"), "dynamodb");
    CHECK_EQ_STR(pstr(d, "$.payload.group"), "123456789012");
    CHECK_EQ_STR(pstr(d, "$.payload.class"), "CreateTable");
    CHECK_EQ_STR(pstr(d, "$.payload.custom_details.requestParameters.tableName"), "TestTable");

    const tw_target_ops *p = tw__target_kind("pagerduty");
    tw_error err;
    void *impl = configure("pagerduty", settings, &err);
    REQUIRE(impl);
    tw_buf sent = TW_BUF_INIT;
    CHECK_EQ_INT(p->finalize_body(impl, body.data, body.len, &sent), TW_OK);
    tw_json_doc *s = parse(sent.data);
    REQUIRE(s);
    CHECK_EQ_STR(pstr(s, "$.routing_key"), "R0UT1NGKEY0123456789ABCDEFGHIJKL");
    CHECK_EQ_STR(pstr(s, "$.payload.class"), "CreateTable");
    tw_json_doc_free(s);
    tw_buf_reset(&sent);
    CHECK_EQ_INT(p->finalize_body(impl, " { } ", 5, &sent), TW_OK);
    CHECK_EQ_STR(sent.data, "{\"routing_key\":\"R0UT1NGKEY0123456789ABCDEFGHIJKL\" } ");
    CHECK(p->finalize_body(impl, "[1]", 3, &sent) != TW_OK);
    tw_http_prep prep;
    CHECK_EQ_INT(p->http_prepare(impl, "k", &prep, &err), TW_OK);
    CHECK_EQ_STR(prep.url, "https://events.pagerduty.com/v2/enqueue");
    for (uint32_t i = 0; i < prep.nheaders; i++)
        CHECK(!strstr(prep.headers[i], "R0UT1NG"));
    p->release(impl);
    tw__buf_free(&sent);
    impl = configure("pagerduty", "{\"routing_key\":\"k\",\"url\":\"http://127.0.0.1:9/v2/enqueue\"}", &err);
    REQUIRE(impl);
    CHECK_EQ_INT(p->http_prepare(impl, "k", &prep, &err), TW_OK);
    CHECK_EQ_STR(prep.url, "http://127.0.0.1:9/v2/enqueue");
    p->release(impl);
    tw_json_doc_free(d);

    static const char *const sev[][2] = {{"critical", "critical"}, {"high", "error"}, {"medium", "warning"},
                                         {"low", "info"}, {"info", "info"}};
    for (size_t i = 0; i < 5; i++) {
        al.a.severity = sev[i][0];
        d = render("pagerduty", settings, &al.a, &body);
        CHECK_EQ_STR(pstr(d, "$.payload.severity"), sev[i][1]);
        tw_json_doc_free(d);
    }
    /* SSM event: detail-type as class, source as source; transformed input as custom_details */
    alert ssm;
    alert_init(&ssm, fixture("ssm-parameter-store-change.json"));
    ssm.a.input = "{\"op\":\"Create\"}";
    ssm.a.input_len = strlen(ssm.a.input);
    ssm.a.input_is_json = 1;
    d = render("pagerduty", settings, &ssm.a, &body);
    CHECK_EQ_STR(pstr(d, "$.payload.summary"), "new-dynamodb-table: Parameter Store Change");
    CHECK_EQ_STR(pstr(d, "$.payload.source"), "aws.ssm");
    CHECK_EQ_STR(pstr(d, "$.payload.component"), "ssm");
    CHECK_EQ_STR(pstr(d, "$.payload.class"), "Parameter Store Change");
    CHECK_EQ_STR(pstr(d, "$.payload.custom_details.op"), "Create");
    tw_json_doc_free(d);
    ssm.a.input = "Create on foo";
    ssm.a.input_len = strlen(ssm.a.input);
    ssm.a.input_is_json = 0;
    d = render("pagerduty", settings, &ssm.a, &body);
    CHECK_EQ_STR(pstr(d, "$.payload.custom_details.message"), "Create on foo");
    tw_json_doc_free(d);
    alert_free(&ssm);
    tw__buf_free(&body);
    alert_free(&al);
}

/* ---- exec ---- */

static char tmpdir[256];

static const char *tmp(const char *name)
{
    static char p[4][512];
    static int k;
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/tw-targets-XXXXXX");
        if (!mkdtemp(tmpdir))
            printf("# mkdtemp: %s\n", strerror(errno));
    }
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", tmpdir, name);
    return p[k];
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Running or sleeping; a zombie whose parent died is not (the container's init may not reap it). */
static int alive(pid_t pid)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
    char *st = read_file(p, NULL);
    const char *rp = st ? strrchr(st, ')') : NULL;
    int a = rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
    free(st);
    return a;
}

/* Runs settings' command with body; returns the outcome, the reason in why. */
static tw_outcome run_exec(const char *settings, const char *body, int64_t timeout_ms, char *why, size_t why_len)
{
    tw_error err;
    void *impl = configure("exec", settings, &err);
    if (!impl) {
        snprintf(why, why_len, "configure: %s", err.msg);
        return (tw_outcome)-1;
    }
    why[0] = '\0';
    tw_outcome o = tw__target_kind("exec")->deliver_local(impl, body, strlen(body), timeout_ms, why, why_len);
    tw__target_kind("exec")->release(impl);
    return o;
}

TW_TEST(exec_settings)
{
    CHECK_CONTAINS(config_error("exec", "{}"), "command: required");
    CHECK_CONTAINS(config_error("exec", "{\"command\":[]}"), "command: must be a list of strings");
    CHECK_CONTAINS(config_error("exec", "{\"command\":[\"\"]}"), "command: the program is empty");
    CHECK_CONTAINS(config_error("exec", "{\"command\":[\"a\",{}]}"), "command[1]: must be a string");
    CHECK_CONTAINS(config_error("exec", "{\"handler\":\"h.f\",\"runtime\":\"nodejs18.x\"}"),
                   "runtime nodejs18.x needs a command");
    CHECK_CONTAINS(config_error("exec", "{\"runtime\":\"python3.12\"}"), "handler: required with runtime python3.12");
    CHECK_CONTAINS(config_error("exec", "{\"handler\":\"nodot\"}"), "handler: must be module.function");
    CHECK_CONTAINS(config_error("exec", "{\"handler\":\"a.b-c\"}"), "handler: must be module.function");
    CHECK_CONTAINS(config_error("exec", "{\"handler\":\"../x.f\"}"), "handler: must be module.function");
    CHECK_CONTAINS(config_error("exec", "{\"command\":\"x\",\"env\":{\"1X\":\"v\"}}"), "env: \"1X\" is not a valid");
    CHECK_CONTAINS(config_error("exec", "{\"command\":\"x\",\"env\":{\"X\":[1]}}"), "env.X: must be a string");
    CHECK_CONTAINS(config_error("exec", "{\"handler\":\"h.f\",\"memory_size\":64}"), "memory_size: must be a number");
    CHECK_EQ_STR(config_error("exec", "{\"command\":\"/bin/true\"}"), "");
    CHECK_EQ_STR(config_error("exec", "{\"command\":[\"node\",\"x.js\"],\"runtime\":\"nodejs18.x\",\"handler\":\"x.h\"}"),
                 "");
    CHECK_EQ_STR(config_error("exec", "{\"handler\":\"src/handler.create_table\",\"runtime\":\"python3.12\","
                                      "\"memory_size\":\"1024\"}"), "");
}

TW_TEST(exec_runs_a_command_with_the_body_on_stdin)
{
    char why[512], settings[1024];
    const char *out = tmp("stdin.txt");
    snprintf(settings, sizeof settings, "{\"command\":[\"/bin/sh\",\"-c\",\"cat > \\\"$OUT\\\"; env > \\\"$OUT.env\\\"\"],"
                                        "\"env\":{\"OUT\":\"%s\",\"LANG\":\"en_US.UTF-8\",\"N\":7},\"region\":\"eu-west-1\"}", out);
    setenv("AWS_TW_TEST_CRED", "from-server", 1);
    setenv("TW_NOT_PASSED", "server-only", 1);
    CHECK_EQ_INT(run_exec(settings, "{\"hello\": \"world\"}\nline 2", 5000, why, sizeof why), TW_OUTCOME_DELIVERED);
    char *got = read_file(out, NULL);
    CHECK_EQ_STR(got, "{\"hello\": \"world\"}\nline 2");
    free(got);
    char envp[600];
    snprintf(envp, sizeof envp, "%s.env", out);
    char *envf = read_file(envp, NULL), env[8192];
    REQUIRE(envf);
    snprintf(env, sizeof env, "\n%s", envf);   /* every line starts with \n */
    free(envf);
    CHECK_CONTAINS(env, "\nAWS_TW_TEST_CRED=from-server\n");
    CHECK(!strstr(env, "TW_NOT_PASSED"));
    CHECK_CONTAINS(env, "\nLANG=en_US.UTF-8\n");   /* env wins over the base */
    CHECK_CONTAINS(env, "TZ=UTC\n");
    CHECK_CONTAINS(env, "PATH=");
    CHECK_CONTAINS(env, "\nAWS_REGION=eu-west-1\n");
    CHECK_CONTAINS(env, "\nAWS_DEFAULT_REGION=eu-west-1\n");
    CHECK_CONTAINS(env, "\nN=7\n");
    CHECK_CONTAINS(env, "TW_DELIVERY_ID=");
    /* a single string is one program; a program that ignores a large body is fine (no SIGPIPE) */
    static char body[1 << 20];
    memset(body, 'x', sizeof body - 1);
    CHECK_EQ_INT(run_exec("{\"command\":\"/bin/true\"}", body, 5000, why, sizeof why), TW_OUTCOME_DELIVERED);
    CHECK_EQ_INT(run_exec("{\"command\":[\"true\"]}", "", 5000, why, sizeof why), TW_OUTCOME_DELIVERED);
    /* cwd */
    snprintf(settings, sizeof settings, "{\"command\":[\"/bin/sh\",\"-c\",\"pwd > %s\"],\"cwd\":\"%s\"}", tmp("pwd.txt"),
             tmpdir);
    CHECK_EQ_INT(run_exec(settings, "", 5000, why, sizeof why), TW_OUTCOME_DELIVERED);
    got = read_file(tmp("pwd.txt"), NULL);
    char want[300];
    snprintf(want, sizeof want, "%s\n", tmpdir);
    CHECK_EQ_STR(got, want);
    free(got);
}

TW_TEST(exec_failures_are_classified)
{
    char why[256];
    CHECK_EQ_INT(run_exec("{\"command\":[\"/bin/sh\",\"-c\",\"echo out; echo boom >&2; exit 3\"]}", "x", 5000, why,
                          sizeof why), TW_OUTCOME_RETRY);
    CHECK_EQ_STR(why, "/bin/sh exited with status 3: boom");   /* the last line says what went wrong */
    /* a traceback: its last unindented line is the exception, not a cut-off middle */
    CHECK_EQ_INT(run_exec("{\"command\":[\"/bin/sh\",\"-c\",\"printf 'Traceback (most recent call last):\\n"
                          "  File \\\"handler.py\\\", line 9, in post\\n    resp.read()\\n"
                          "urllib.error.HTTPError: HTTP Error 500: Internal Server Error\\n\\n' >&2; exit 1\"]}",
                          "x", 5000, why, sizeof why), TW_OUTCOME_RETRY);
    CHECK_EQ_STR(why, "/bin/sh exited with status 1: urllib.error.HTTPError: HTTP Error 500: Internal Server Error");
    /* a Node.js stack: the "Error: ..." line before the indented "at" lines */
    CHECK_EQ_INT(run_exec("{\"command\":[\"/bin/sh\",\"-c\",\"printf 'Error: connect ECONNREFUSED\\n"
                          "    at TCPConnectWrap.afterConnect\\n' >&2; exit 1\"]}", "x", 5000, why, sizeof why),
                 TW_OUTCOME_RETRY);
    CHECK_EQ_STR(why, "/bin/sh exited with status 1: Error: connect ECONNREFUSED");
    CHECK_EQ_INT(run_exec("{\"command\":[\"/bin/sh\",\"-c\",\"exit 127\"]}", "", 5000, why, sizeof why),
                 TW_OUTCOME_PERMANENT);
    CHECK_CONTAINS(why, "status 127 (not found)");
    CHECK_EQ_INT(run_exec("{\"command\":[\"/bin/sh\",\"-c\",\"exit 126\"]}", "", 5000, why, sizeof why),
                 TW_OUTCOME_PERMANENT);
    CHECK_EQ_INT(run_exec("{\"command\":[\"/nonexistent/prog\",\"a\"]}", "", 5000, why, sizeof why),
                 TW_OUTCOME_PERMANENT);
    /* posix_spawn reports the failed exec itself; where it cannot (under valgrind the child is a
     * plain fork), the child's exit status 127 says the same. */
    CHECK(strstr(why, "cannot run /nonexistent/prog: No such file or directory") ||
          strstr(why, "/nonexistent/prog exited with status 127 (not found)"));
    CHECK_EQ_INT(run_exec("{\"command\":\"no-such-program-tw-test\"}", "", 5000, why, sizeof why), TW_OUTCOME_PERMANENT);
    CHECK_EQ_INT(run_exec("{\"command\":\"/etc/hostname\"}", "", 5000, why, sizeof why), TW_OUTCOME_PERMANENT);
    CHECK_EQ_INT(run_exec("{\"command\":\"/bin/true\",\"cwd\":\"/nonexistent/dir\"}", "", 5000, why, sizeof why),
                 TW_OUTCOME_PERMANENT);
    CHECK_CONTAINS(why, "cwd /nonexistent/dir");
    CHECK_EQ_INT(run_exec("{\"command\":[\"/bin/sh\",\"-c\",\"kill -9 $$\"]}", "", 5000, why, sizeof why),
                 TW_OUTCOME_RETRY);
    CHECK_CONTAINS(why, "killed by signal 9");
    /* a long output: the reason keeps its end, on one line */
    CHECK_EQ_INT(run_exec("{\"command\":[\"/bin/sh\",\"-c\",\"i=0; while [ $i -lt 3000 ]; do echo line $i; "
                          "i=$((i+1)); done; exit 1\"]}", "", 10000, why, sizeof why), TW_OUTCOME_RETRY);
    CHECK(strlen(why) < sizeof why);
    CHECK(strstr(why, "line 2999") && !strchr(why, '\n'));
}

TW_TEST(exec_timeout_kills_the_process_group)
{
    char why[256], settings[512];
    const char *pidf = tmp("bg.pid");
    snprintf(settings, sizeof settings, "{\"command\":[\"/bin/sh\",\"-c\",\"sleep 30 & echo $! > %s; sleep 30\"]}", pidf);
    int64_t t0 = mono_ms();
    CHECK_EQ_INT(run_exec(settings, "", 300, why, sizeof why), TW_OUTCOME_RETRY);
    int64_t took = mono_ms() - t0;
    CHECK_CONTAINS(why, "timed out after 300 ms");
    CHECK(took >= 300 && took < 2000);
    char *p = read_file(pidf, NULL);
    REQUIRE(p);
    pid_t bg = (pid_t)atoi(p);
    free(p);
    usleep(100000);
    CHECK(bg > 0 && !alive(bg));               /* the background child died with the group */
    /* SIGTERM ignored: SIGKILL after the grace period */
    t0 = mono_ms();
    CHECK_EQ_INT(run_exec("{\"command\":[\"/bin/sh\",\"-c\",\"trap '' TERM; while :; do sleep 0.05; done\"]}", "", 200,
                          why, sizeof why), TW_OUTCOME_RETRY);
    took = mono_ms() - t0;
    CHECK(took >= 2000 && took < 4000);
}

static const char PY_MODULE[] =
    "import json, os\n"
    "def handle(event, context):\n"
    "    with open(os.environ['OUT'], 'w') as f:\n"
    "        json.dump({'event': event, 'fn': context.function_name, 'ver': context.function_version,\n"
    "                   'arn': context.invoked_function_arn, 'mem': context.memory_limit_in_mb,\n"
    "                   'rid': context.aws_request_id, 'lg': context.log_group_name, 'ls': context.log_stream_name,\n"
    "                   'rem': context.get_remaining_time_in_millis(), 'cwd': os.getcwd(),\n"
    "                   'region': os.environ.get('AWS_REGION')}, f)\n"
    "def text(event, context):\n"
    "    with open(os.environ['OUT'], 'w') as f:\n"
    "        json.dump({'event': event}, f)\n"
    "def fail(event, context):\n"
    "    raise ValueError('nope ' + event['detail']['eventName'])\n";

TW_TEST(exec_runs_a_python_handler_like_lambda)
{
    if (system("command -v python3 >/dev/null 2>&1") != 0) {
        printf("# python3 not found: skipped\n");
        return;
    }
    FILE *f = fopen(tmp("twmod.py"), "w");
    REQUIRE(f);
    fputs(PY_MODULE, f);
    fclose(f);
    char *event = fixture("cloudtrail-api-call-via-eventbridge.json");
    REQUIRE(event);
    char settings[1024], why[1024], rid1[64] = "";
    const char *out = tmp("py.json");
    snprintf(settings, sizeof settings, "{\"handler\":\"twmod.handle\",\"runtime\":\"python3.12\",\"code_dir\":\"%s\","
                                        "\"function_name\":\"notify\",\"memory_size\":256,\"region\":\"eu-west-1\","
                                        "\"env\":{\"OUT\":\"%s\"}}", tmpdir, out);
    for (int round = 0; round < 2; round++) {
        tw_outcome o = run_exec(settings, event, 20000, why, sizeof why);
        if (o != TW_OUTCOME_DELIVERED)
            TW_FAIL_("outcome %d: %s", (int)o, why);
        char *got = read_file(out, NULL);
        tw_json_doc *d = parse(got);
        REQUIRE(d);
        CHECK_EQ_STR(pstr(d, "$.event.detail.eventName"), "CreateTable");
        CHECK_EQ_STR(pstr(d, "$.event.detail.requestParameters.tableName"), "TestTable");
        CHECK_EQ_STR(pstr(d, "$.fn"), "notify");
        CHECK_EQ_STR(pstr(d, "$.ver"), "$LATEST");
        CHECK_EQ_STR(pstr(d, "$.arn"), "arn:aws:lambda:eu-west-1:000000000000:function:notify");
        CHECK_EQ_INT(tw_json_number(path(d, "$.mem")), 256);
        CHECK_EQ_STR(pstr(d, "$.lg"), "/aws/lambda/notify");
        CHECK_CONTAINS(pstr(d, "$.ls"), "/[$LATEST]");
        CHECK_EQ_STR(pstr(d, "$.cwd"), tmpdir);
        CHECK_EQ_STR(pstr(d, "$.region"), "eu-west-1");
        double rem = tw_json_number(path(d, "$.rem"));
        CHECK(rem > 0 && rem <= 20000);
        const char *rid = pstr(d, "$.rid");
        CHECK(rid && strlen(rid) == 36);
        if (round == 0 && rid)
            snprintf(rid1, sizeof rid1, "%s", rid);
        else if (rid)
            CHECK(strcmp(rid, rid1) != 0);      /* one id per delivery */
        tw_json_doc_free(d);
        free(got);
    }
    /* a transformation's plain text arrives as a string */
    snprintf(settings, sizeof settings, "{\"handler\":\"twmod.text\",\"code_dir\":\"%s\",\"env\":{\"OUT\":\"%s\"}}",
             tmpdir, out);
    CHECK_EQ_INT(run_exec(settings, "Create on \"foo\"", 20000, why, sizeof why), TW_OUTCOME_DELIVERED);
    char *got = read_file(out, NULL);
    CHECK_EQ_STR(got, "{\"event\": \"Create on \\\"foo\\\"\"}");
    free(got);
    /* an exception: traceback in the reason, retried */
    snprintf(settings, sizeof settings, "{\"handler\":\"twmod.fail\",\"code_dir\":\"%s\"}", tmpdir);
    CHECK_EQ_INT(run_exec(settings, event, 20000, why, sizeof why), TW_OUTCOME_RETRY);
    CHECK_CONTAINS(why, "exited with status 1");
    CHECK_CONTAINS(why, "ValueError: nope CreateTable");
    snprintf(settings, sizeof settings, "{\"handler\":\"nomod.fail\",\"code_dir\":\"%s\"}", tmpdir);
    CHECK_EQ_INT(run_exec(settings, event, 20000, why, sizeof why), TW_OUTCOME_RETRY);
    CHECK_CONTAINS(why, "No module named 'nomod'");
    free(event);
}

/* ---- file and console ---- */

TW_TEST(file_appends_one_line_per_alert)
{
    CHECK_CONTAINS(config_error("file", "{}"), "path: required");
    alert al;
    alert_init(&al, fixture("ssm-parameter-store-change.json"));
    tw_buf body = TW_BUF_INIT;
    tw_json_doc *d = render("file", "{\"path\":\"x\"}", &al.a, &body);
    CHECK(body.data && !strchr(body.data, '\n'));   /* the multi-line event, compacted */
    CHECK_CONTAINS(body.data, "\"detail-type\":\"Parameter Store Change\"");
    tw_json_doc_free(d);

    char settings[600], why[256];
    const char *p = tmp("alerts.jsonl");
    snprintf(settings, sizeof settings, "{\"path\":\"%s\"}", p);
    tw_error err;
    void *impl = configure("file", settings, &err);
    REQUIRE(impl);
    const tw_target_ops *o = tw__target_kind("file");
    CHECK_EQ_INT(o->deliver_local(impl, body.data, body.len, 1000, why, sizeof why), TW_OUTCOME_DELIVERED);
    CHECK_EQ_INT(o->deliver_local(impl, "{\"second\":2}", 12, 1000, why, sizeof why), TW_OUTCOME_DELIVERED);
    o->release(impl);
    char *got = read_file(p, NULL);
    char want[4096];
    snprintf(want, sizeof want, "%s\n{\"second\":2}\n", body.data);
    CHECK_EQ_STR(got, want);
    free(got);
    impl = configure("file", "{\"path\":\"/nonexistent/dir/a.jsonl\"}", &err);
    REQUIRE(impl);
    CHECK_EQ_INT(o->deliver_local(impl, "x", 1, 1000, why, sizeof why), TW_OUTCOME_RETRY);
    CHECK_EQ_STR(why, "open /nonexistent/dir/a.jsonl: No such file or directory");
    o->release(impl);
    tw__buf_free(&body);
    alert_free(&al);
}

TW_TEST(console_writes_a_line_to_stdout)
{
    const tw_target_ops *o = tw__target_kind("console");
    tw_error err;
    void *impl = NULL;
    CHECK_EQ_INT(o->configure(NULL, &impl, &err), TW_OK);
    fflush(stdout);
    int saved = dup(1);
    int fd = open(tmp("console.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE(saved >= 0 && fd >= 0);
    dup2(fd, 1);
    close(fd);
    char why[64];
    tw_outcome r = o->deliver_local(impl, "{\"a\":1}", 7, 1000, why, sizeof why);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    CHECK_EQ_INT(r, TW_OUTCOME_DELIVERED);
    char *got = read_file(tmp("console.txt"), NULL);
    CHECK_EQ_STR(got, "{\"a\":1}\n");
    free(got);
    o->release(impl);
}

TW_TEST(zz_cleanup_temporary_files)
{
    if (tmpdir[0]) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        CHECK(system(cmd) == 0);
    }
}

TW_TEST_MAIN()
