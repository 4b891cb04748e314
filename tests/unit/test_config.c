/* tests/unit/test_config.c: trailwatch.yml and serverless.yml into a tw_config (src/config/): a full
 * file, every error at its FILE:LINE and all at once, ${VAR}, unknown keys, durations, the tutorial's
 * two serverless.yml files unchanged, Serverless variables. Files are written under a mkdtemp folder. */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config_int.h"
#include "config/load_int.h"
#include "target/exec_int.h"
#include "trailwatch/trailwatch.h"
#include "tw_test.h"

/* ---- helpers ---- */

static char tmp_dir[64];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    return remove(p);
}

__attribute__((destructor)) static void cleanup(void)
{
    if (tmp_dir[0])
        nftw(tmp_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes text to <tmp>/name and returns the path (valid until the 8th next call). */
static const char *put(const char *name, const char *text)
{
    static char paths[8][256];
    static int next;
    if (!tmp_dir[0]) {
        strcpy(tmp_dir, "/tmp/tw-config-XXXXXX");
        if (!mkdtemp(tmp_dir))
            abort();
    }
    char *p = paths[next++ % 8];
    snprintf(p, 256, "%s/%s", tmp_dir, name);
    char *slash = strrchr(p, '/');
    *slash = '\0';
    mkdir(p, 0700);
    *slash = '/';
    FILE *f = fopen(p, "w");
    if (!f)
        abort();
    fputs(text, f);
    fclose(f);
    return p;
}

/* The repository's examples/ folder: $TW_SOURCE_DIR (tests/run.py) or the current directory. */
static const char *example(const char *name)
{
    static char path[512];
    const char *root = getenv("TW_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/examples/%s", root && *root ? root : ".", name);
    return path;
}

typedef struct msgs {
    int n;
    char m[40][1024];
} msgs;

static void collect(void *ctx, const char *s)
{
    msgs *m = ctx;
    if (m->n < 40)
        snprintf(m->m[m->n++], sizeof m->m[0], "%s", s);
}

static tw_config *load(const char *path, msgs *m)
{
    size_t n = 99;
    tw_error e;
    tw_config *cfg = (tw_config *)1;
    memset(m, 0, sizeof *m);
    tw_status rc = tw_config_load(path, &cfg, &n, collect, m, &e);
    CHECK_EQ_INT(n, m->n);
    if (rc) {
        CHECK(cfg == NULL);
        CHECK(n > 0);
        CHECK_EQ_STR(e.msg, m->m[0]);
    } else {
        CHECK(cfg != NULL);
        CHECK_EQ_INT(n, 0);
    }
    for (int i = 0; i < m->n; i++)
        printf("#   | %s\n", m->m[i]);
    return cfg;
}

/* 1 when some message is "<path>:<line>: ...what..." (line 0: "<path>: ..."). */
static int has(const msgs *m, const char *path, unsigned line, const char *what)
{
    char head[400];
    if (line)
        snprintf(head, sizeof head, "%s:%u: ", path, line);
    else
        snprintf(head, sizeof head, "%s: ", path);
    for (int i = 0; i < m->n; i++)
        if (strncmp(m->m[i], head, strlen(head)) == 0 && strstr(m->m[i], what))
            return 1;
    printf("#   no message %s...%s\n", head, what);
    return 0;
}

static int target_index(const tw_config *cfg, const char *name)
{
    const tw_target_cfg *t = tw__config_target(cfg, name);
    return t ? (int)(t - cfg->targets) : -1;
}

/* 1 when event (JSON) matches the rule named rule (through the compiled rule set). */
static int matches(const tw_config *cfg, const char *event, const char *rule)
{
    tw_matcher *mt = NULL;
    tw_match_result res;
    int found = 0;
    if (tw_matcher_new(cfg->ruleset, &mt) || tw_match(mt, event, strlen(event), TW_EVENT_AUTO, &res, NULL)) {
        tw_matcher_free(mt);
        return -1;
    }
    for (size_t i = 0; i < res.count; i++)
        found |= strcmp(cfg->rules[cfg->ruleset_rule[res.rules[i]]].name, rule) == 0;
    tw_matcher_free(mt);
    return found;
}

static const char *exec_env(const tw_exec *x, const char *name)
{
    for (size_t i = 0; i < x->nenv; i++)
        if (strcmp(x->env_names[i], name) == 0)
            return x->env_values[i];
    return NULL;
}

static const char *SSM_EVENT =
    "{\"version\":\"0\",\"id\":\"6a7e4feb-b491-4cf7-a9f1-bf3703497718\",\"detail-type\":\"Parameter Store Change\","
    "\"source\":\"aws.ssm\",\"account\":\"123456789012\",\"time\":\"2017-05-22T16:43:48Z\",\"region\":\"us-east-1\","
    "\"resources\":[\"arn:aws:ssm:us-east-1:123456789012:parameter/foo\"],"
    "\"detail\":{\"operation\":\"Create\",\"name\":\"foo\",\"type\":\"String\",\"description\":\"Sample Parameter\"}}";

/* A raw CloudTrail record: wrapped into its "AWS API Call via CloudTrail" event before matching. */
static const char *CREATE_TABLE =
    "{\"eventVersion\":\"1.08\",\"eventSource\":\"dynamodb.amazonaws.com\",\"eventName\":\"CreateTable\","
    "\"eventType\":\"AwsApiCall\",\"awsRegion\":\"us-east-1\",\"recipientAccountId\":\"123456789012\","
    "\"eventTime\":\"2024-05-01T12:00:00Z\",\"eventID\":\"11111111-2222-3333-4444-555555555555\","
    "\"userIdentity\":{\"type\":\"IAMUser\",\"userName\":\"alice\"},"
    "\"requestParameters\":{\"tableName\":\"t\",\"provisionedThroughput\":{\"readCapacityUnits\":1,\"writeCapacityUnits\":1}}}";

/* ---- trailwatch.yml ---- */

static const char *FULL =
    "data_dir: state\n"
    "server:\n"
    "  listen: 127.0.0.1:0\n"
    "  account: \"111122223333\"\n"
    "  region: eu-west-1\n"
    "  access_keys:\n"
    "    - {id: AKIDEXAMPLE, secret: \"${TWT_SECRET}\"}\n"
    "  max_event_size: 1m\n"
    "  drain_timeout: 3s\n"
    "  dedup_window: 1h\n"
    "  limits: {json_depth: 500}\n"
    "sources:\n"
    "  eventbridge: true\n"
    "  http: false\n"
    "  firehose: {path: /fh, access_key: \"${TWT_SECRET}\"}\n"
    "  folder: {path: trail, watch: false}\n"
    "targets:\n"
    "  slack-security:\n"
    "    kind: slack\n"
    "    url: ${TWT_SLACK}\n"
    "  audit-log:\n"
    "    kind: file\n"
    "    path: out/audit.jsonl\n"
    "    rate: {per_second: 5}\n"
    "    retry: {max_attempts: 3, max_age: 1h, base: 2s, cap: 1m}\n"
    "    timeout: 2s\n"
    "  unused:\n"
    "    kind: console\n"
    "rules:\n"
    "  - name: ssm-parameter-changed\n"
    "    description: Parameter Store changes\n"
    "    severity: high\n"
    "    pattern: {source: [aws.ssm], detail-type: [Parameter Store Change]}\n"
    "    targets:\n"
    "      - slack-security\n"
    "      - target: audit-log\n"
    "        input_transformer: {input_paths_map: {name: $.detail.name}, input_template: '\"<name> changed\"'}\n"
    "    storm: {keys: [$.detail.name], window: 5m}\n"
    "  - name: ddb\n"
    "    pattern: '{\"source\": [\"aws.dynamodb\"]}'\n"
    "    targets: [audit-log]\n"
    "  - name: off\n"
    "    enabled: false\n"
    "    pattern: {source: [aws.ssm]}\n"
    "    targets: [audit-log]\n";

TW_TEST(full_file_loads)
{
    setenv("TWT_SECRET", "s3cr3t-value", 1);
    setenv("TWT_SLACK", "https://hooks.slack.com/services/T0/B0/tok3n", 1);
    msgs m;
    tw_config *cfg = load(put("full/trailwatch.yml", FULL), &m);
    REQUIRE(cfg);
    char want[300];
    snprintf(want, sizeof want, "%s/full/state", tmp_dir);
    CHECK_EQ_STR(tw_config_data_dir(cfg), want);
    CHECK_EQ_STR(cfg->listen, "127.0.0.1:0");
    CHECK_EQ_STR(cfg->account, "111122223333");
    CHECK_EQ_STR(cfg->region, "eu-west-1");
    REQUIRE(cfg->nkeys == 1);
    CHECK_EQ_STR(cfg->keys[0].id, "AKIDEXAMPLE");
    CHECK_EQ_STR(cfg->keys[0].secret, "s3cr3t-value");
    CHECK_EQ_INT(cfg->lim.event_max, 1 << 20);
    CHECK(cfg->lim.line_max >= 4u << 20);
    CHECK_EQ_INT(cfg->lim.json_depth, 500);
    CHECK_EQ_INT(cfg->drain_ms, 3000);
    CHECK_EQ_INT(cfg->dedup_window_ms, 3600000);
    CHECK(cfg->src.eventbridge && !cfg->src.http && cfg->src.firehose);
    CHECK_EQ_STR(cfg->src.firehose_path, "/fh");
    CHECK_EQ_STR(cfg->src.firehose_key, "s3cr3t-value");
    snprintf(want, sizeof want, "%s/full/trail", tmp_dir);
    CHECK_EQ_STR(cfg->src.folder, want);
    CHECK_EQ_INT(cfg->src.folder_watch, 0);

    REQUIRE(cfg->ntargets == 3);
    int slack = target_index(cfg, "slack-security"), audit = target_index(cfg, "audit-log");
    REQUIRE(slack >= 0 && audit >= 0);
    const tw_target_cfg *s = &cfg->targets[slack], *a = &cfg->targets[audit];
    CHECK_EQ_STR(s->ops->kind, "slack");
    CHECK(s->impl != NULL);
    CHECK(s->rate.per_second == 1 && s->rate.burst == 3);   /* Slack's default */
    CHECK_EQ_INT(s->retry.max_attempts, 185);
    CHECK_EQ_INT(s->retry.max_age_ms, 86400000);
    CHECK_EQ_INT(s->timeout_ms, 10000);
    CHECK_EQ_STR(a->ops->kind, "file");
    CHECK(a->rate.per_second == 5 && a->rate.burst == 5);
    CHECK_EQ_INT(a->retry.max_attempts, 3);
    CHECK_EQ_INT(a->retry.max_age_ms, 3600000);
    CHECK_EQ_INT(a->retry.base_ms, 2000);
    CHECK_EQ_INT(a->retry.cap_ms, 60000);
    CHECK_EQ_INT(a->timeout_ms, 2000);
    CHECK_EQ_INT(s->max_pending, TW_DEFAULT_MAX_PENDING);
    CHECK_EQ_INT(s->when_full, 0);
    CHECK(cfg->targets[target_index(cfg, "unused")].rate.per_second == 0);

    REQUIRE(cfg->nrules == 3);
    const tw_rule_cfg *r = &cfg->rules[0];
    CHECK_EQ_STR(r->name, "ssm-parameter-changed");
    CHECK_EQ_STR(r->description, "Parameter Store changes");
    CHECK_EQ_STR(r->severity, "high");
    CHECK(r->enabled);
    REQUIRE(r->nbindings == 2);
    CHECK_EQ_INT(r->bindings[0].target, slack);
    CHECK(r->bindings[0].xf == NULL);
    CHECK_EQ_INT(r->bindings[1].target, audit);
    CHECK(r->bindings[1].xf != NULL);
    REQUIRE(r->storm.nkeys == 1);
    CHECK_EQ_STR(r->storm.keys[0], "$.detail.name");
    CHECK_EQ_INT(r->storm.window_ms, 300000);
    snprintf(want, sizeof want, "%s/full/trailwatch.yml:30", tmp_dir);
    CHECK_EQ_STR(r->where, want);
    CHECK_EQ_STR(cfg->rules[1].severity, "medium");
    CHECK_EQ_STR(cfg->rules[1].description, "");
    CHECK(!cfg->rules[2].enabled);

    /* the rule set holds the enabled rules only, mapped back */
    REQUIRE(cfg->ruleset);
    CHECK_EQ_INT(tw_ruleset_size(cfg->ruleset), 2);
    CHECK_EQ_INT(cfg->ruleset_rule[0], 0);
    CHECK_EQ_INT(cfg->ruleset_rule[1], 1);
    CHECK_EQ_INT(matches(cfg, SSM_EVENT, "ssm-parameter-changed"), 1);
    CHECK_EQ_INT(matches(cfg, SSM_EVENT, "off"), 0);
    CHECK_EQ_INT(matches(cfg, CREATE_TABLE, "ddb"), 1);

    char *d = tw_config_describe(cfg);
    REQUIRE(d);
    CHECK_CONTAINS(d, "target unused: console");
    CHECK_CONTAINS(d, "no rule uses it");
    CHECK_CONTAINS(d, "rule off: medium, disabled");
    CHECK(!strstr(d, "tok3n") && !strstr(d, "hooks.slack.com") && !strstr(d, "s3cr3t") && !strstr(d, "AKIDEXAMPLE"));
    free(d);
    tw_config_free(cfg);
}

TW_TEST(empty_configuration_loads_with_defaults)
{
    msgs m;
    tw_config *cfg = load(put("empty/trailwatch.yml", "rules: []\n"), &m);
    REQUIRE(cfg);
    CHECK_EQ_STR(cfg->listen, "127.0.0.1:8080");
    CHECK_EQ_STR(cfg->account, "123456789012");
    CHECK_EQ_STR(cfg->region, "us-east-1");
    CHECK_EQ_INT(cfg->lim.event_max, TW_DEFAULT_EVENT_MAX);
    CHECK_EQ_INT(cfg->drain_ms, 10000);
    CHECK_EQ_INT(cfg->dedup_window_ms, 86400000);
    CHECK(cfg->src.eventbridge && cfg->src.http && !cfg->src.firehose && !cfg->src.folder);
    REQUIRE(cfg->ruleset);
    CHECK_EQ_INT(tw_ruleset_size(cfg->ruleset), 0);
    tw_config_free(cfg);
    cfg = load(put("empty/nolisten.yml", "server: {listen: false}\n"), &m);
    REQUIRE(cfg);
    CHECK_EQ_STR(cfg->listen, "");
    tw_config_free(cfg);
}

/* Defaults per kind come from the kind's policy (src/target/), not from a list in the loader. */
TW_TEST(target_defaults_come_from_the_kind)
{
    msgs m;
    tw_config *cfg = load(put("kinds/trailwatch.yml", "targets:\n"
                                                      "  s: {kind: slack, url: 'https://hooks.slack.com/x'}\n"
                                                      "  d: {kind: discord, url: 'https://discord.com/api/webhooks/1/x'}\n"
                                                      "  x: {kind: exec, command: [/bin/true], cwd: sub}\n"
                                                      "  f: {kind: file, path: out/alerts.jsonl}\n"
                                                      "  w: {kind: webhook, url: 'https://example.com/', timeout: 3s}\n"
                                                      "rules: []\n"),
                          &m);
    REQUIRE(cfg);
    const tw_target_cfg *s = &cfg->targets[target_index(cfg, "s")], *d = &cfg->targets[target_index(cfg, "d")];
    const tw_target_cfg *x = &cfg->targets[target_index(cfg, "x")], *w = &cfg->targets[target_index(cfg, "w")];
    CHECK(s->rate.per_second == 1 && s->rate.burst == 3 && s->timeout_ms == 10000);
    CHECK(d->rate.per_second == 0.5 && d->rate.burst == 5);
    CHECK(x->rate.per_second == 0 && x->timeout_ms == 30000);
    CHECK(w->rate.per_second == 0 && w->timeout_ms == 3000);
    /* the kind's path settings are resolved against the configuration's folder */
    const tw_exec *xe = x->impl;
    char want[512];
    snprintf(want, sizeof want, "%s/kinds/sub", tmp_dir);
    CHECK(xe && xe->cwd && strcmp(xe->cwd, want) == 0);
    tw_config_free(cfg);
    /* the kinds in messages are the registry's */
    const char *p = put("kinds/bad.yml", "targets:\n  a: {kind: lambda}\n  b: {url: x}\nrules: []\n");
    CHECK(load(p, &m) == NULL);
    CHECK(has(&m, p, 2, "target \"a\": unknown kind \"lambda\" (kinds: slack, webhook, teams, discord, pagerduty, "
                        "exec, file, console)"));
    CHECK(has(&m, p, 3, "target \"b\": kind: missing (slack, webhook, teams, discord, pagerduty, exec, file, "
                        "console)"));
}

TW_TEST(every_error_at_its_line_all_at_once)
{
    msgs m;
    const char *p = put("errors/trailwatch.yml",
                        "server:\n"                                /* 1 */
                        "  listn: 127.0.0.1:8080\n"                /* 2 */
                        "  drain_timeout: 10 parsecs\n"            /* 3 */
                        "targets:\n"                               /* 4 */
                        "  slack:\n"                               /* 5 */
                        "    kind: slak\n"                         /* 6 */
                        "  log:\n"                                 /* 7 */
                        "    kind: console\n"                      /* 8 */
                        "rules:\n"                                 /* 9 */
                        "  - name: bad-pattern\n"                  /* 10 */
                        "    pattern:\n"                           /* 11 */
                        "      detail:\n"                          /* 12 */
                        "        eventName: [{prefix: 5}]\n"       /* 13 */
                        "    targets: [log]\n"                     /* 14 */
                        "  - name: bad-target\n"                   /* 15 */
                        "    severity: urgent\n"                   /* 16 */
                        "    pattern: {source: [aws.ec2]}\n"       /* 17 */
                        "    targets: [lgo]\n"                     /* 18 */
                        "sourcs: {}\n"                             /* 19 */
                        "  \n");
    tw_config *cfg = load(p, &m);
    CHECK(cfg == NULL);
    CHECK(has(&m, p, 2, "server: unknown key \"listn\" (did you mean \"listen\"?)"));
    CHECK(has(&m, p, 3, "server.drain_timeout: must be a duration"));
    CHECK(has(&m, p, 6, "target \"slack\": unknown kind \"slak\" (did you mean \"slack\"?)"));
    CHECK(has(&m, p, 13, "rule \"bad-pattern\": detail.eventName: \"prefix\" must be a string"));
    CHECK(has(&m, p, 16, "rule \"bad-target\": severity: must be critical, high, medium, low or info"));
    CHECK(has(&m, p, 18, "rule \"bad-target\": unknown target \"lgo\" (did you mean \"log\"?)"));
    CHECK(has(&m, p, 19, "unknown key \"sourcs\" (did you mean \"sources\"?)"));
    CHECK_EQ_INT(m.n, 7);
    /* in file order */
    for (int i = 1; i < m.n; i++)
        CHECK(atoi(m.m[i - 1] + strlen(p) + 1) <= atoi(m.m[i] + strlen(p) + 1));
    tw_config_free(cfg);
}

TW_TEST(unknown_keys_with_did_you_mean)
{
    msgs m;
    const char *p = put("keys/trailwatch.yml",
                        "targets:\n"                               /* 1 */
                        "  t:\n"                                   /* 2 */
                        "    kind: console\n"                      /* 3 */
                        "    rate: {per_secnd: 1}\n"               /* 4 */
                        "    retry: {max_attempts: 3, basee: 1s}\n"/* 5 */
                        "rules:\n"                                 /* 6 */
                        "  - name: r\n"                            /* 7 */
                        "    patern: {source: [x]}\n"              /* 8 */
                        "    targets: [{target: t, input_pth: $.detail}]\n" /* 9 */
                        "    storm: {window: 5m, kyes: []}\n"      /* 10 */
                        "sources: {folder: {path: x, wacth: true}}\n"  /* 11 */
                        "zzz: 1\n");                               /* 12 */
    tw_config *cfg = load(p, &m);
    CHECK(cfg == NULL);
    CHECK(has(&m, p, 4, "target \"t\": rate: unknown key \"per_secnd\" (did you mean \"per_second\"?)"));
    CHECK(has(&m, p, 5, "target \"t\": retry: unknown key \"basee\" (did you mean \"base\"?)"));
    CHECK(has(&m, p, 8, "rules[0]: unknown key \"patern\" (did you mean \"pattern\"?)"));
    CHECK(has(&m, p, 7, "rule \"r\": pattern: missing"));
    CHECK(has(&m, p, 9, "rule \"r\": targets[0]: unknown key \"input_pth\" (did you mean \"input_path\"?)"));
    CHECK(has(&m, p, 10, "rule \"r\": storm: unknown key \"kyes\" (did you mean \"keys\"?)"));
    CHECK(has(&m, p, 11, "sources.folder: unknown key \"wacth\" (did you mean \"watch\"?)"));
    CHECK(has(&m, p, 12, "unknown key \"zzz\""));
    for (int i = 0; i < m.n; i++)
        if (strstr(m.m[i], "zzz"))
            CHECK(!strstr(m.m[i], "did you mean"));
    tw_config_free(cfg);
}

TW_TEST(max_pending_and_when_full_errors)
{
    msgs m;
    const char *p = put("cap/trailwatch.yml",
                        "targets:\n"                               /* 1 */
                        "  t:\n"                                   /* 2 */
                        "    kind: console\n"                      /* 3 */
                        "    max_pending: -1\n"                    /* 4 */
                        "    when_full: sometimes\n");             /* 5 */
    tw_config *cfg = load(p, &m);
    CHECK(cfg == NULL);
    CHECK(has(&m, p, 5, "target \"t\": when_full: \"sometimes\" is not one of reject, drop_oldest"));
    int line4 = 0;
    for (int i = 0; i < m.n; i++)
        line4 |= strstr(m.m[i], ":4:") && strstr(m.m[i], "max_pending") != NULL;
    CHECK(line4);
    tw_config_free(cfg);
    p = put("cap-ok/trailwatch.yml", "targets:\n  t: {kind: console, max_pending: 500, when_full: drop_oldest}\n");
    cfg = load(p, &m);
    REQUIRE(cfg != NULL);
    CHECK_EQ_INT(cfg->targets[0].max_pending, 500);
    CHECK_EQ_INT(cfg->targets[0].when_full, 1);
    tw_config_free(cfg);
}

TW_TEST(rule_binding_and_storm_errors)
{
    msgs m;
    const char *p = put("binding/trailwatch.yml",
                        "targets: {t: {kind: console}, u: {kind: console}}\n"      /* 1 */
                        "rules:\n"                                                 /* 2 */
                        "  - name: r\n"                                            /* 3 */
                        "    pattern: {source: [x]}\n"                             /* 4 */
                        "    targets:\n"                                           /* 5 */
                        "      - {input: '{}'}\n"                                  /* 6 */
                        "      - {target: t, input: '{}', input_path: $.detail}\n" /* 7 */
                        "      - target: u\n"                                      /* 8 */
                        "        input_transformer: {input_template: '<x>'}\n"     /* 9 */
                        "    storm: {keys: [$.detail.name, 'not a path']}\n"       /* 10 */
                        "  - name: s\n"                                            /* 11 */
                        "    pattern: '{\"source\": '\n"                           /* 12 */
                        "    targets: []\n"                                        /* 13 */
                        "  - name: q\n"                                            /* 14 */
                        "    pattern: [1]\n"                                       /* 15 */
                        "    targets: [t]\n"                                       /* 16 */
                        "    description: 5\n");                                   /* 17 */
    tw_config *cfg = load(p, &m);
    CHECK(cfg == NULL);
    CHECK(has(&m, p, 6, "rule \"r\": targets[0]: target: missing (the name of a target)"));
    CHECK(has(&m, p, 7, "rule \"r\": targets[1]: give only one of input, input_path, input_transformer"));
    CHECK(has(&m, p, 9, "rule \"r\": targets[2]: input_transformer.input_template: placeholder <x> is not defined"));
    CHECK(has(&m, p, 10, "rule \"r\": storm.window: missing"));
    CHECK(has(&m, p, 10, "rule \"r\": storm.keys[1]: not a JSONPath"));
    CHECK(has(&m, p, 12, "rule \"s\": pattern is not valid JSON"));
    CHECK(has(&m, p, 13, "rule \"s\": targets: must be a non-empty list"));
    CHECK(has(&m, p, 15, "rule \"q\": pattern: must be a mapping (or JSON text), not array"));
    CHECK(has(&m, p, 17, "rule \"q\": description: must be a string, not 5"));
    CHECK_EQ_INT(m.n, 9);
    tw_config_free(cfg);
}

TW_TEST(env_substitution)
{
    setenv("TWT_REGION", "eu-central-1", 1);
    setenv("TWT_LISTEN", "127.0.0.1:9999", 1);
    setenv("TWT_EMPTY", "", 1);
    unsetenv("TWT_UNSET");
    /* values that would change the document if they were pasted into the YAML or JSON text */
    setenv("TWT_DESC", "x\nseverity: critical\nenabled: false\n{a: b}", 1);
    setenv("TWT_SOURCE", "aws.ssm\", \"aws.ec2", 1);
    setenv("TWT_OFF", "false", 1);
    setenv("TWT_RATE", "2", 1);
    msgs m;
    const char *p = put("env/trailwatch.yml",
                        "server:\n"
                        "  region: ${TWT_REGION}\n"
                        "  account: \"${TWT_UNSET:-210987654321}\"\n"
                        "  listen: ${TWT_LISTEN}\n"
                        "targets:\n"
                        "  t: {kind: console, rate: {per_second: \"${TWT_RATE}\"}}\n"
                        "rules:\n"
                        "  - name: r\n"
                        "    description: \"costs $${HOME} and $$5 ${TWT_DESC}${TWT_EMPTY:-!}\"\n"
                        "    pattern: {source: [\"${TWT_SOURCE}\"]}\n"
                        "    targets: [t]\n"
                        "  - name: r2\n"
                        "    enabled: ${TWT_OFF}\n"
                        "    pattern: '{\"source\": [\"${TWT_SOURCE}\"]}'\n"
                        "    targets: [t]\n");
    tw_config *cfg = load(p, &m);
    REQUIRE(cfg);
    CHECK_EQ_STR(cfg->region, "eu-central-1");
    CHECK_EQ_STR(cfg->account, "210987654321");
    CHECK_EQ_STR(cfg->listen, "127.0.0.1:9999");
    CHECK(cfg->targets[0].rate.per_second == 2);
    CHECK_EQ_STR(cfg->rules[0].description, "costs ${HOME} and $$5 x\nseverity: critical\nenabled: false\n{a: b}!");
    CHECK_EQ_STR(cfg->rules[0].severity, "medium");
    CHECK(cfg->rules[0].enabled);
    CHECK(!cfg->rules[1].enabled);
    /* the pattern's one value is the whole variable, quotes and all: aws.ec2 is not let in */
    const char *ec2 = "{\"source\":\"aws.ec2\",\"detail-type\":\"x\",\"detail\":{}}";
    const char *odd = "{\"source\":\"aws.ssm\\\", \\\"aws.ec2\",\"detail-type\":\"x\",\"detail\":{}}";
    CHECK_EQ_INT(matches(cfg, ec2, "r"), 0);
    CHECK_EQ_INT(matches(cfg, SSM_EVENT, "r"), 0);
    CHECK_EQ_INT(matches(cfg, odd, "r"), 1);
    tw_config_free(cfg);
}

TW_TEST(env_errors_never_show_values)
{
    unsetenv("TWT_NOPE");
    setenv("TWT_SECRET_LISTEN", "hunter2-secret", 1);
    setenv("TWT_SECRET_DEPTH", "hunter3-secret", 1);
    msgs m;
    const char *p = put("enverr/trailwatch.yml",
                        "server:\n"                                  /* 1 */
                        "  region: ${TWT_NOPE}\n"                    /* 2 */
                        "  listen: ${TWT_SECRET_LISTEN}\n"           /* 3 */
                        "  limits: {json_depth: \"${TWT_SECRET_DEPTH}\"}\n" /* 4 */
                        "targets:\n"                                 /* 5 */
                        "  t: {kind: console}\n"                     /* 6 */
                        "  s: {kind: slack, url: \"${TWT_NOPE}\"}\n" /* 7 */
                        "rules:\n"                                   /* 8 */
                        "  - name: r\n"                              /* 9 */
                        "    description: \"${not valid}\"\n"        /* 10 */
                        "    pattern: {source: [x]}\n"               /* 11 */
                        "    targets: [t, s]\n"                      /* 12 */
                        "    storm: {window: \"${TWT_NOPE2\"}\n");   /* 13 */
    tw_config *cfg = load(p, &m);
    CHECK(cfg == NULL);
    CHECK(has(&m, p, 2, "environment variable TWT_NOPE is not set"));
    CHECK(has(&m, p, 3, "server.listen: must be HOST:PORT"));
    CHECK(has(&m, p, 4, "server.limits.json_depth: must be a whole number, not (a value from the environment)"));
    CHECK(has(&m, p, 7, "environment variable TWT_NOPE is not set"));
    CHECK(has(&m, p, 10, "invalid reference ${not valid}"));
    CHECK(has(&m, p, 13, "unterminated ${"));
    CHECK_EQ_INT(m.n, 6);   /* no follow-up error for the slack url that failed to substitute */
    for (int i = 0; i < m.n; i++)
        CHECK(!strstr(m.m[i], "hunter"));
    tw_config_free(cfg);
}

TW_TEST(durations_and_sizes)
{
    static const struct { const char *s; int64_t ms; } ok[] = {
        {"10s", 10000}, {"5m", 300000}, {"24h", 86400000}, {"250ms", 250}, {"1d", 86400000},
        {"1h30m", 5400000}, {"1.5", 1500}, {"90", 90000}, {"0", 0}, {"0.5s", 500}, {"2m30s", 150000}};
    static const char *const bad[] = {"", "s", "10x", "-1s", "1s 2s", "10 s", "m5", "1e3", "5m3", "1ss", "nan"};
    int64_t ms;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ms = -1;
        CHECK(tw__parse_duration(ok[i].s, &ms));
        CHECK_EQ_INT(ms, ok[i].ms);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (tw__parse_duration(bad[i], &ms))
            TW_FAIL_("\"%s\" parsed as a duration", bad[i]);
    size_t n;
    CHECK(tw__cl_parse_size("256k", &n) && n == 262144);
    CHECK(tw__cl_parse_size("1m", &n) && n == 1048576);
    CHECK(tw__cl_parse_size("1MiB", &n) && n == 1048576);
    CHECK(tw__cl_parse_size("262144", &n) && n == 262144);
    CHECK(tw__cl_parse_size("2KB", &n) && n == 2048);
    CHECK(!tw__cl_parse_size("k", &n) && !tw__cl_parse_size("1q", &n) && !tw__cl_parse_size("-1", &n));
    char buf[32];
    CHECK_EQ_STR(tw__cl_fmt_duration(5400000, buf, sizeof buf), "1h30m");
    CHECK_EQ_STR(tw__cl_fmt_duration(250, buf, sizeof buf), "250ms");
}

TW_TEST(read_and_syntax_errors)
{
    msgs m;
    char missing[300];
    snprintf(missing, sizeof missing, "%s/nope.yml", tmp_dir[0] ? tmp_dir : "/tmp");
    CHECK(load(missing, &m) == NULL);
    CHECK(has(&m, missing, 0, "No such file or directory"));
    CHECK_EQ_INT(m.n, 1);
    const char *p = put("syntax/trailwatch.yml", "server:\n  listen: [1, 2\nrules: []\n");
    CHECK(load(p, &m) == NULL);
    CHECK_EQ_INT(m.n, 1);
    CHECK(m.n == 1 && strncmp(m.m[0], p, strlen(p)) == 0 && strstr(m.m[0], "(column"));
    p = put("syntax/list.yml", "- a\n- b\n");
    CHECK(load(p, &m) == NULL);
    CHECK(has(&m, p, 1, "a configuration is a mapping"));
}

/* ---- serverless.yml ---- */

TW_TEST(tutorial_ssm_serverless_yml_unchanged)
{
    msgs m;
    tw_config *cfg = load(example("ssm-parameter-store/serverless.yml"), &m);
    REQUIRE(cfg);
    REQUIRE(cfg->ntargets == 1);
    const tw_target_cfg *t = &cfg->targets[0];
    CHECK_EQ_STR(t->name, "cloudwatch-ssm-dev-parameter");
    CHECK_EQ_STR(t->ops->kind, "exec");
    CHECK_EQ_INT(t->timeout_ms, 6000);          /* Serverless's default function timeout */
    CHECK_EQ_INT(t->retry.max_attempts, 185);
    const tw_exec *x = t->impl;
    REQUIRE(x);
    CHECK_EQ_STR(x->handler, "handler.parameter");
    CHECK_EQ_STR(x->module, "handler");
    CHECK_EQ_STR(x->function, "parameter");
    CHECK_EQ_STR(x->function_name, "cloudwatch-ssm-dev-parameter");
    CHECK_EQ_INT(x->memory_size, 1024);
    CHECK_EQ_STR(x->region, "us-east-1");
    CHECK(x->code_dir && x->code_dir[0] == '/');
    CHECK(x->code_dir && strlen(x->code_dir) > 29 &&
          strcmp(x->code_dir + strlen(x->code_dir) - 29, "/examples/ssm-parameter-store") == 0);
    CHECK_EQ_STR(exec_env(x, "SLACK_URL"), "INSERT SLACK URL");
    REQUIRE(cfg->nrules == 1);
    CHECK_EQ_STR(cfg->rules[0].name, "cloudwatch-ssm-dev-parameter-1");
    CHECK(cfg->rules[0].enabled);
    REQUIRE(cfg->rules[0].nbindings == 1);
    CHECK_EQ_INT(cfg->rules[0].bindings[0].target, 0);
    CHECK(cfg->rules[0].bindings[0].xf == NULL);
    CHECK_EQ_INT(matches(cfg, SSM_EVENT, "cloudwatch-ssm-dev-parameter-1"), 1);
    CHECK_EQ_INT(matches(cfg, CREATE_TABLE, "cloudwatch-ssm-dev-parameter-1"), 0);
    tw_config_free(cfg);
}

TW_TEST(tutorial_dynamodb_serverless_yml_unchanged)
{
    msgs m;
    tw_config *cfg = load(example("dynamodb-create-table/serverless.yml"), &m);
    REQUIRE(cfg);
    REQUIRE(cfg->ntargets == 1);
    CHECK_EQ_STR(cfg->targets[0].name, "cloudtrail-dynamodb-dev-createTable");
    const tw_exec *x = cfg->targets[0].impl;
    REQUIRE(x);
    CHECK_EQ_STR(x->handler, "handler.create_table");
    CHECK_EQ_STR(x->function_name, "cloudtrail-dynamodb-dev-createTable");
    CHECK_EQ_STR(exec_env(x, "SLACK_URL"), "INSERT SLACK URL");
    REQUIRE(cfg->nrules == 1);
    CHECK_EQ_STR(cfg->rules[0].name, "cloudtrail-dynamodb-dev-createTable-1");
    CHECK_EQ_INT(matches(cfg, CREATE_TABLE, "cloudtrail-dynamodb-dev-createTable-1"), 1);
    char other[1024];
    snprintf(other, sizeof other, "%s", CREATE_TABLE);
    memcpy(strstr(other, "CreateTable"), "DeleteTable", 11);
    CHECK_EQ_INT(matches(cfg, other, "cloudtrail-dynamodb-dev-createTable-1"), 0);
    CHECK_EQ_INT(matches(cfg, SSM_EVENT, "cloudtrail-dynamodb-dev-createTable-1"), 0);
    tw_config_free(cfg);
}

TW_TEST(serverless_entries_merge_with_environment_override)
{
    setenv("TWT_SLACK", "https://hooks.slack.com/services/T0/B0/tok3n", 1);
    char yml[2048], abs[600];
    if (!realpath(example("ssm-parameter-store/serverless.yml"), abs))
        snprintf(abs, sizeof abs, "missing");
    snprintf(yml, sizeof yml,
             "targets:\n"                                        /* 1 */
             "  log: {kind: console}\n"                          /* 2 */
             "rules:\n"                                          /* 3 */
             "  - name: also-to-the-handler\n"                   /* 4 */
             "    pattern: {source: [aws.ssm]}\n"                /* 5 */
             "    targets: [log, cloudwatch-ssm-dev-parameter]\n"/* 6 */
             "serverless:\n"                                     /* 7 */
             "  - path: %s\n"                                    /* 8 */
             "    environment: {SLACK_URL: \"${TWT_SLACK}\", EXTRA: 1}\n" /* 9 */
             "  - missing/serverless.yml\n",                     /* 10 */
             abs);
    msgs m;
    const char *p = put("merge/trailwatch.yml", yml);
    CHECK(load(p, &m) == NULL);
    CHECK(has(&m, p, 10, "serverless: cannot read"));
    CHECK_EQ_INT(m.n, 1);
    *strstr(yml, "  - missing/") = '\0';
    tw_config *cfg = load(put("merge/trailwatch.yml", yml), &m);
    REQUIRE(cfg);
    REQUIRE(cfg->ntargets == 2);
    int h = target_index(cfg, "cloudwatch-ssm-dev-parameter");
    REQUIRE(h >= 0);
    const tw_exec *x = cfg->targets[h].impl;
    REQUIRE(x);
    CHECK_EQ_STR(exec_env(x, "SLACK_URL"), "https://hooks.slack.com/services/T0/B0/tok3n");
    CHECK_EQ_STR(exec_env(x, "EXTRA"), "1");
    REQUIRE(cfg->nrules == 2);
    CHECK_EQ_INT(cfg->rules[0].bindings[1].target, h);
    CHECK_EQ_INT(cfg->rules[1].bindings[0].target, h);
    CHECK_EQ_INT(matches(cfg, SSM_EVENT, "also-to-the-handler"), 1);
    CHECK_EQ_INT(matches(cfg, SSM_EVENT, "cloudwatch-ssm-dev-parameter-1"), 1);
    char *d = tw_config_describe(cfg);
    CHECK(d && !strstr(d, "tok3n"));
    free(d);
    tw_config_free(cfg);
}

TW_TEST(serverless_variables)
{
    unsetenv("TWT_REGION");
    unsetenv("TWT_UNSET_D");
    setenv("TWT_A", "from-env", 1);
    msgs m;
    const char *p = put("vars/serverless.yml",
                        "service: vars\n"                                            /* 1 */
                        "custom:\n"                                                  /* 2 */
                        "  stages: {prod: {bus: prod-bus}, dev: {bus: dev-bus}}\n"   /* 3 */
                        "  src: aws.ssm\n"                                           /* 4 */
                        "  pattern: {source: [\"${self:custom.src}\"]}\n"            /* 5 */
                        "provider:\n"                                                /* 6 */
                        "  name: aws\n"                                              /* 7 */
                        "  runtime: python3.12\n"                                    /* 8 */
                        "  stage: ${opt:stage, 'prod'}\n"                            /* 9 */
                        "  region: ${env:TWT_REGION, 'eu-west-1'}\n"                 /* 10 */
                        "  timeout: 20\n"                                            /* 11 */
                        "  environment:\n"                                           /* 12 */
                        "    A: ${env:TWT_A}\n"                                      /* 13 */
                        "    B: ${self:custom.stages.${self:provider.stage}.bus}\n"  /* 14 */
                        "    C: \"${sls:stage}-${self:service}\"\n"                  /* 15 */
                        "    D: ${env:TWT_UNSET_D, ${self:custom.src}}\n"            /* 16 */
                        "    E: ${opt:x, self:custom.src}\n"                         /* 17 */
                        "    F: 42\n"                                                /* 18 */
                        "functions:\n"                                               /* 19 */
                        "  fn:\n"                                                    /* 20 */
                        "    handler: h.main\n"                                      /* 21 */
                        "    timeout: 30\n"                                          /* 22 */
                        "    memorySize: 256\n"                                      /* 23 */
                        "    environment: {A: fn-wins}\n"                            /* 24 */
                        "    events:\n"                                              /* 25 */
                        "      - eventBridge:\n"                                     /* 26 */
                        "          name: ${self:service}-custom-${sls:stage}\n"      /* 27 */
                        "          pattern: ${self:custom.pattern}\n"                /* 28 */
                        "          inputTransformer:\n"                              /* 29 */
                        "            inputPathsMap: {n: $.detail.name}\n"            /* 30 */
                        "            inputTemplate: '\"<n>\"'\n"                     /* 31 */
                        "          retryPolicy: {maximumEventAge: 3600, maximumRetryAttempts: 3}\n"
                        "          deadLetterQueueArn: !GetAtt Dlq.Arn\n"
                        "          eventBus: !Ref Bus\n"
                        "      - http: {path: /x, method: get}\n"
                        "      - cloudwatchEvent:\n"
                        "          enabled: false\n"
                        "          event: {source: [aws.ec2]}\n"
                        "  other:\n"
                        "    handler: o.main\n"
                        "    events: [{sqs: arn:aws:sqs:us-east-1:1:q}]\n"
                        "plugins: [serverless-python-requirements]\n"
                        "resources: {Resources: {Dlq: {Type: AWS::SQS::Queue}}}\n");
    tw_config *cfg = load(p, &m);
    REQUIRE(cfg);
    REQUIRE(cfg->ntargets == 2);
    const tw_target_cfg *t = &cfg->targets[0];
    CHECK_EQ_STR(t->name, "vars-prod-fn");
    CHECK_EQ_INT(t->timeout_ms, 30000);
    CHECK_EQ_INT(cfg->targets[1].timeout_ms, 20000);   /* provider.timeout */
    CHECK_EQ_INT(t->retry.max_attempts, 3);
    CHECK_EQ_INT(t->retry.max_age_ms, 3600000);
    const tw_exec *x = t->impl;
    REQUIRE(x);
    CHECK_EQ_STR(x->region, "eu-west-1");
    CHECK_EQ_INT(x->memory_size, 256);
    CHECK_EQ_STR(exec_env(x, "A"), "fn-wins");
    CHECK_EQ_STR(exec_env(x, "B"), "prod-bus");
    CHECK_EQ_STR(exec_env(x, "C"), "prod-vars");
    CHECK_EQ_STR(exec_env(x, "D"), "aws.ssm");
    CHECK_EQ_STR(exec_env(x, "E"), "aws.ssm");
    CHECK_EQ_STR(exec_env(x, "F"), "42");
    REQUIRE(cfg->nrules == 2);
    CHECK_EQ_STR(cfg->rules[0].name, "vars-custom-prod");
    CHECK(cfg->rules[0].bindings[0].xf != NULL);
    CHECK_EQ_STR(cfg->rules[1].name, "vars-prod-fn-2");
    CHECK(!cfg->rules[1].enabled);
    CHECK_EQ_INT(matches(cfg, SSM_EVENT, "vars-custom-prod"), 1);
    char *d = tw_config_describe(cfg);
    REQUIRE(d);
    CHECK_CONTAINS(d, "function fn -> exec target vars-prod-fn (2 rules); ignored events: http");
    CHECK_CONTAINS(d, "function other -> exec target vars-prod-other (0 rules); ignored events: sqs");
    CHECK_CONTAINS(d, "functions.fn.events[0].eventBridge: eventBus ignored: trailwatch has one event bus");
    free(d);
    tw_config_free(cfg);
}

TW_TEST(serverless_errors)
{
    unsetenv("TWT_UNSET_C");
    msgs m;
    const char *p = put("slserr/serverless.yml",
                        "service: bad\n"                          /* 1 */
                        "provider:\n"                             /* 2 */
                        "  name: aws\n"                           /* 3 */
                        "  runtime: python3.12\n"                 /* 4 */
                        "  environment:\n"                        /* 5 */
                        "    A: ${ssm:/my/param}\n"               /* 6 */
                        "    B: ${file(./secrets.yml):key}\n"     /* 7 */
                        "    C: ${env:TWT_UNSET_C}\n"             /* 8 */
                        "    D: ${self:custom.nope}\n"            /* 9 */
                        "    E: ${opt:stage}\n"                   /* 10 */
                        "    F: ${cf:stack.output}\n"             /* 11 */
                        "    G: ${self:custom.loop}\n"            /* 12 */
                        "    H: ${NAME}\n"                        /* 13 */
                        "custom:\n"                               /* 14 */
                        "  loop: ${self:custom.loop}\n"           /* 15 */
                        "functions:\n"                            /* 16 */
                        "  f:\n"                                  /* 17 */
                        "    handler: h.f\n"                      /* 18 */
                        "    events:\n"                           /* 19 */
                        "      - cloudwatchEvent:\n"              /* 20 */
                        "          event: {source: [x]}\n"        /* 21 */
                        "          input: {a: 1}\n"               /* 22 */
                        "          inputPath: $.detail\n"         /* 23 */
                        "      - eventBridge:\n"                  /* 24 */
                        "          schedule: rate(5 minutes)\n"   /* 25 */
                        "      - cloudwatchEvent:\n"              /* 26 */
                        "          evnt: {source: [x]}\n"         /* 27 */
                        "      - eventBridge:\n"                  /* 28 */
                        "          pattern: {source: [x]}\n"      /* 29 */
                        "          inputTransformer: {inputTemplate: '<nope>'}\n"); /* 30 */
    tw_config *cfg = load(p, &m);
    CHECK(cfg == NULL);
    CHECK(has(&m, p, 6, "${ssm:/my/param}: variable source \"ssm\" is not supported"));
    CHECK(has(&m, p, 7, "file() variables are not supported"));
    CHECK(has(&m, p, 8, "environment variable TWT_UNSET_C is not set"));
    CHECK(has(&m, p, 9, "${self:custom.nope}: custom.nope is not in this file"));
    CHECK(has(&m, p, 10, "trailwatch takes no Serverless CLI options"));
    CHECK(has(&m, p, 11, "variable source \"cf\" is not supported"));
    CHECK(has(&m, p, 15, "cycle"));
    CHECK(has(&m, p, 13, "${NAME}: not a Serverless variable"));
    CHECK(has(&m, p, 21, "only one of input, inputPath and inputTransformer may be given "
                         "(Serverless: CLOUDWATCH_MULTIPLE_INPUT_PROPERTIES)"));
    CHECK(has(&m, p, 25, "schedule expressions are not supported"));
    CHECK(has(&m, p, 27, "unknown key \"evnt\" (did you mean \"event\"?)"));
    CHECK(has(&m, p, 30, "rule \"bad-dev-f-4\": inputTransformer.inputTemplate: placeholder <nope> is not defined"));
    tw_config_free(cfg);
}

/* One retry policy per function: equal policies on two events are one policy (compared by value, not
 * by the struct's bytes, whose padding is undefined: valgrind reports a memcmp of it), a different
 * one is an error at its line. */
TW_TEST(serverless_retry_policy_per_function)
{
    msgs m;
    const char *p = put("slsretry/serverless.yml",
                        "service: rp\n"                                                         /* 1 */
                        "provider: {name: aws, runtime: python3.12}\n"                          /* 2 */
                        "functions:\n"                                                          /* 3 */
                        "  same:\n"                                                             /* 4 */
                        "    handler: h.same\n"                                                 /* 5 */
                        "    events:\n"                                                         /* 6 */
                        "      - eventBridge:\n"                                                /* 7 */
                        "          pattern: {source: [a]}\n"                                    /* 8 */
                        "          retryPolicy: {maximumEventAge: 600, maximumRetryAttempts: 4}\n" /* 9 */
                        "      - eventBridge:\n"                                                /* 10 */
                        "          pattern: {source: [b]}\n"                                    /* 11 */
                        "          retryPolicy: {maximumRetryAttempts: 4, maximumEventAge: 600}\n" /* 12 */);
    tw_config *cfg = load(p, &m);
    REQUIRE(cfg);
    REQUIRE(cfg->ntargets == 1);
    CHECK_EQ_INT(cfg->targets[0].retry.max_attempts, 4);
    CHECK_EQ_INT(cfg->targets[0].retry.max_age_ms, 600000);
    tw_config_free(cfg);
    msgs m2;
    p = put("slsretry2/serverless.yml",
            "service: rp\n"                                                         /* 1 */
            "provider: {name: aws, runtime: python3.12}\n"                          /* 2 */
            "functions:\n"                                                          /* 3 */
            "  diff:\n"                                                             /* 4 */
            "    handler: h.diff\n"                                                 /* 5 */
            "    events:\n"                                                         /* 6 */
            "      - eventBridge:\n"                                                /* 7 */
            "          pattern: {source: [a]}\n"                                    /* 8 */
            "          retryPolicy: {maximumEventAge: 600, maximumRetryAttempts: 4}\n" /* 9 */
            "      - eventBridge:\n"                                                /* 10 */
            "          pattern: {source: [b]}\n"                                    /* 11 */
            "          retryPolicy: {maximumEventAge: 600, maximumRetryAttempts: 5}\n" /* 12 */);
    cfg = load(p, &m2);
    CHECK(cfg == NULL);
    CHECK(has(&m2, p, 12, "differs from the retryPolicy at line 9"));
    tw_config_free(cfg);
}

TW_TEST(names_are_unique_across_files)
{
    char yml[2048], abs[600];
    if (!realpath(example("ssm-parameter-store/serverless.yml"), abs))
        snprintf(abs, sizeof abs, "missing");
    snprintf(yml, sizeof yml,
             "targets:\n"
             "  cloudwatch-ssm-dev-parameter: {kind: console}\n"  /* 2 */
             "rules:\n"
             "  - name: cloudwatch-ssm-dev-parameter-1\n"         /* 4 */
             "    pattern: {source: [x]}\n"
             "    targets: [cloudwatch-ssm-dev-parameter]\n"
             "  - name: cloudwatch-ssm-dev-parameter-1\n"         /* 7 */
             "    pattern: {source: [x]}\n"
             "    targets: [cloudwatch-ssm-dev-parameter, cloudwatch-ssm-dev-parameter]\n"
             "  - name: \"bad name!\"\n"                         /* 10 */
             "    pattern: {source: [x]}\n"
             "    targets: [cloudwatch-ssm-dev-parameter]\n"
             "  - name: twice\n"                                  /* 13 */
             "    pattern: {source: [x]}\n"
             "    targets: [cloudwatch-ssm-dev-parameter, cloudwatch-ssm-dev-parameter]\n" /* 15 */
             "serverless: [%s]\n", abs);
    msgs m;
    const char *p = put("unique/trailwatch.yml", yml);
    CHECK(load(p, &m) == NULL);
    CHECK(has(&m, p, 7, "rule \"cloudwatch-ssm-dev-parameter-1\": defined twice (first at"));
    CHECK(has(&m, p, 10, "rule \"bad name!\": a name is 1 to 64 of"));
    CHECK(has(&m, p, 15, "rule \"twice\": targets[1]: target \"cloudwatch-ssm-dev-parameter\" is listed twice"));
    CHECK(has(&m, abs, 18, "target \"cloudwatch-ssm-dev-parameter\": defined twice (first at"));
    CHECK(has(&m, abs, 21, "rule \"cloudwatch-ssm-dev-parameter-1\": defined twice"));
}

TW_TEST_MAIN()
