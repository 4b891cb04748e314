/* config/config_aws.c: the `aws:` section and the S3 / SQS sources of trailwatch.yml (docs/CONFIG.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "config/load_int.h"
#include "aws/client.h"
#include "json/json_int.h"

/* A list of strings into an arena array; check: 1 to accept one, else report. */
static uint32_t strings(tw_cfg_ld *ld, const tw_json *v, const char *ctx, char ***out,
                        int (*check)(const char *))
{
    *out = NULL;
    if (!v || v->type == TW_JSON_NULL)
        return 0;
    if (v->type != TW_JSON_ARRAY) {
        tw__cl_err(ld, v->line, TW_ECONFIG, "%s: must be a list of strings", ctx);
        return 0;
    }
    char **arr = tw__arena_alloc(&ld->cfg->arena, (v->n ? v->n : 1) * sizeof *arr);
    if (!arr) {
        ld->oom = 1;
        return 0;
    }
    uint32_t n = 0;
    for (size_t i = 0; i < v->n; i++) {
        const char *s;
        char name[96];
        snprintf(name, sizeof name, "%s[%zu]", ctx, i);
        if (tw__cl_vstring(ld, v->u.items[i], name, 1, &s) <= 0)
            continue;
        if (check && !check(s)) {
            char shown[96];
            tw__cl_err(ld, v->u.items[i]->line, TW_ECONFIG, "%s: %s is not valid here", name,
                       tw__cl_shown(ld, v->u.items[i], shown, sizeof shown));
            continue;
        }
        arr[n++] = tw__cl_strdup(ld, s);
    }
    *out = arr;
    return n;
}

static int is_url(const char *s)
{
    return (strncmp(s, "http://", 7) == 0 && s[7]) || (strncmp(s, "https://", 8) == 0 && s[8]);
}

static int is_account(const char *s) { return strlen(s) == 12 && strspn(s, "0123456789") == 12; }

static int is_region(const char *s)
{
    size_t n = strlen(s);
    return n >= 3 && n < 40 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

static int is_service(const char *s)
{
    size_t n = strlen(s);
    return n >= 2 && n < 64 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

static int is_org(const char *s)
{
    size_t n = strlen(s);
    return n > 2 && n < 40 && strncmp(s, "o-", 2) == 0 && strspn(s + 2, "abcdefghijklmnopqrstuvwxyz0123456789") == n - 2;
}

static void url_setting(tw_cfg_ld *ld, const tw_json *obj, const char *ctx, const char *key, char **out)
{
    const char *s;
    if (tw__cl_string(ld, obj, ctx, key, 1, &s) <= 0)
        return;
    if (!is_url(s)) {
        tw__cl_err(ld, tw_json_get(obj, key)->line, TW_ECONFIG, "%s.%s: must be an http:// or https:// URL", ctx, key);
        return;
    }
    *out = tw__cl_strdup(ld, s);
}

void tw__cl_aws(tw_cfg_ld *ld, const tw_json *v)
{
    static const char *const known[] = {"profile", "region", "endpoint_url", "endpoints", "timeout", "max_attempts",
                                        NULL};
    if (!v || v->type == TW_JSON_NULL || tw__cl_keys(ld, v, "aws", known) < 0)
        return;
    tw_aws_cfg *a = &ld->cfg->aws;
    const char *s;
    if (tw__cl_string(ld, v, "aws", "profile", 1, &s) > 0)
        a->profile = tw__cl_strdup(ld, s);
    if (tw__cl_string(ld, v, "aws", "region", 1, &s) > 0) {
        if (!is_region(s))
            tw__cl_err(ld, tw_json_get(v, "region")->line, TW_ECONFIG, "aws.region: not a region name");
        else
            a->region = tw__cl_strdup(ld, s);
    }
    url_setting(ld, v, "aws", "endpoint_url", &a->endpoint_url);
    tw__cl_duration(ld, v, "aws", "timeout", 100, 600000, &a->timeout_ms);
    uint64_t u;
    if (tw__cl_uint(ld, v, "aws", "max_attempts", 1, 20, &u) > 0)
        a->max_attempts = (uint32_t)u;
    const tw_json *eps = tw_json_get(v, "endpoints");
    if (!eps || eps->type == TW_JSON_NULL || !tw__cl_is_object(ld, eps, "aws.endpoints"))
        return;
    a->endpoint_services = tw__arena_alloc(&ld->cfg->arena, (eps->n ? eps->n : 1) * sizeof(char *));
    a->endpoint_urls = tw__arena_alloc(&ld->cfg->arena, (eps->n ? eps->n : 1) * sizeof(char *));
    if (!a->endpoint_services || !a->endpoint_urls) {
        ld->oom = 1;
        return;
    }
    for (size_t i = 0; i < eps->n && a->nendpoints < 32; i++) {
        const tw_json_member *m = &eps->u.members[i];
        char ctx[96];
        snprintf(ctx, sizeof ctx, "aws.endpoints.%.40s", m->key);
        if (tw__cl_vstring(ld, m->val, ctx, 1, &s) <= 0)
            continue;
        if (!is_url(s) || !is_service(m->key)) {
            tw__cl_err(ld, m->val->line, TW_ECONFIG, "%s: must map a service name (s3, sqs, ssm, ...) to an http(s) URL",
                       ctx);
            continue;
        }
        a->endpoint_services[a->nendpoints] = tw__cl_strdup(ld, m->key);
        a->endpoint_urls[a->nendpoints++] = tw__cl_strdup(ld, s);
    }
}

/* "2024-05-01", "2024-05-01T10:00:00Z" -> epoch ms. */
static int parse_start(const char *s, int64_t *ms)
{
    struct tm tm = {0};
    const char *p = strptime(s, "%Y-%m-%d", &tm);
    if (!p)
        return 0;
    if (*p == 'T' || *p == ' ') {
        p = strptime(p + 1, "%H:%M", &tm);
        if (p && *p == ':')
            p = strptime(p + 1, "%S", &tm);
        if (p && *p == 'Z')
            p++;
    }
    if (!p || *p)
        return 0;
    *ms = (int64_t)timegm(&tm) * 1000;
    return 1;
}

void tw__cl_s3_source(tw_cfg_ld *ld, const tw_json *v)
{
    static const char *const known[] = {"bucket", "prefix", "organization", "accounts", "regions", "start_time",
                                        "poll_interval", "lookback", "workers", "verify", NULL};
    static const char *const verify_keys[] = {"public_keys", "interval", NULL};
    const char *ctx = "sources.s3";
    if (!v || v->type == TW_JSON_NULL || v->type == TW_JSON_FALSE || tw__cl_keys(ld, v, ctx, known) < 0)
        return;
    tw_s3src_cfg *c = tw__arena_alloc(&ld->cfg->arena, sizeof *c);
    if (!c) {
        ld->oom = 1;
        return;
    }
    memset(c, 0, sizeof *c);
    *c = (tw_s3src_cfg){.prefix = tw__cl_strdup(ld, ""), .start_ms = -1, .poll_ms = 60000, .lookback_ms = 3600000, .workers = 4};
    const char *s;
    int r = tw__cl_string(ld, v, ctx, "bucket", 1, &s);
    if (r == 0)
        tw__cl_err(ld, v->line, TW_ECONFIG, "%s: needs a bucket", ctx);
    if (r > 0) {
        size_t n = strlen(s);
        if (n < 3 || n > 63 || strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789.-") != n)
            tw__cl_err(ld, tw_json_get(v, "bucket")->line, TW_ECONFIG,
                       "%s.bucket: not a bucket name (3 to 63 of a-z 0-9 . -)", ctx);
        c->bucket = tw__cl_strdup(ld, s);
    }
    if (tw__cl_string(ld, v, ctx, "prefix", 0, &s) > 0) {
        size_t n = strlen(s);
        while (n && s[n - 1] == '/')
            n--;
        c->prefix = tw__cl_strndup(ld, s, n);
    }
    if (tw__cl_string(ld, v, ctx, "organization", 1, &s) > 0) {
        if (!is_org(s))
            tw__cl_err(ld, tw_json_get(v, "organization")->line, TW_ECONFIG,
                       "%s.organization: an organization id looks like o-a1b2c3d4e5", ctx);
        c->organization = tw__cl_strdup(ld, s);
    }
    c->naccounts = strings(ld, tw_json_get(v, "accounts"), "sources.s3.accounts", &c->accounts, is_account);
    c->nregions = strings(ld, tw_json_get(v, "regions"), "sources.s3.regions", &c->regions, is_region);
    if (tw__cl_string(ld, v, ctx, "start_time", 1, &s) > 0 && !parse_start(s, &c->start_ms))
        tw__cl_err(ld, tw_json_get(v, "start_time")->line, TW_ECONFIG,
                   "%s.start_time: give a UTC date or time, 2024-05-01 or 2024-05-01T10:00:00Z", ctx);
    tw__cl_duration(ld, v, ctx, "poll_interval", 100, 86400000, &c->poll_ms);
    tw__cl_duration(ld, v, ctx, "lookback", 0, 7 * 86400000LL, &c->lookback_ms);
    uint64_t u;
    if (tw__cl_uint(ld, v, ctx, "workers", 1, 32, &u) > 0)
        c->workers = (uint32_t)u;
    const tw_json *vf = tw_json_get(v, "verify");
    c->verify_ms = 3600000;
    if (vf && (vf->type == TW_JSON_TRUE || vf->type == TW_JSON_FALSE)) {
        c->verify = vf->type == TW_JSON_TRUE;
    } else if (vf && vf->type != TW_JSON_NULL && tw__cl_keys(ld, vf, "sources.s3.verify", verify_keys) == 0) {
        c->verify = 1;
        if (tw__cl_string(ld, vf, "sources.s3.verify", "public_keys", 1, &s) > 0)
            c->verify_keys = tw__cl_join(ld, ld->dir_abs, s);
        tw__cl_duration(ld, vf, "sources.s3.verify", "interval", 1000, 7 * 86400000LL, &c->verify_ms);
    }
    ld->cfg->src.s3 = c;
}

void tw__cl_sqs_source(tw_cfg_ld *ld, const tw_json *v)
{
    static const char *const known[] = {"queue_url", "wait", "visibility_timeout", "workers", NULL};
    const char *ctx = "sources.sqs";
    if (!v || v->type == TW_JSON_NULL || v->type == TW_JSON_FALSE)
        return;
    tw_sqssrc_cfg *c = tw__arena_alloc(&ld->cfg->arena, sizeof *c);
    if (!c) {
        ld->oom = 1;
        return;
    }
    *c = (tw_sqssrc_cfg){.wait_s = 10, .visibility_s = 300, .workers = 1};
    const char *s;
    if (v->type == TW_JSON_STRING) {
        if (tw__cl_vstring(ld, v, ctx, 1, &s) > 0 && is_url(s))
            c->queue_url = tw__cl_strdup(ld, s);
        else
            tw__cl_err(ld, v->line, TW_ECONFIG, "%s: the queue URL must be an http(s) URL", ctx);
        ld->cfg->src.sqs = c;
        return;
    }
    if (tw__cl_keys(ld, v, ctx, known) < 0)
        return;
    url_setting(ld, v, ctx, "queue_url", &c->queue_url);
    if (!tw_json_get(v, "queue_url"))
        tw__cl_err(ld, v->line, TW_ECONFIG, "%s: needs a queue_url", ctx);
    int64_t ms;
    if (tw__cl_duration(ld, v, ctx, "wait", 0, 20000, &ms) > 0)
        c->wait_s = (uint32_t)(ms / 1000);
    if (tw__cl_duration(ld, v, ctx, "visibility_timeout", 10000, 12 * 3600000LL, &ms) > 0)
        c->visibility_s = (uint32_t)(ms / 1000);
    uint64_t u;
    if (tw__cl_uint(ld, v, ctx, "workers", 1, 16, &u) > 0)
        c->workers = (uint32_t)u;
    ld->cfg->src.sqs = c;
}

/* ---- a rule's enrich: ---- */

static int enrich_name_ok(const char *s)
{
    size_t n = strlen(s);
    return n && n <= 64 && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

/* The request: a JSON template (text) or a mapping written in YAML (turned into its JSON text), with
 * <name> placeholders from input_paths_map; compiled as an EventBridge input transformer. */
static tw_transform *enrich_request(tw_cfg_ld *ld, const tw_json *e, const char *ctx)
{
    const tw_json *req = tw_json_get(e, "request"), *map = tw_json_get(e, "input_paths_map");
    tw_json_doc *doc = tw__cl_new_doc(ld);
    if (!doc)
        return NULL;
    tw_buf text = TW_BUF_INIT;
    tw_status rc = TW_OK;
    if (!req || req->type == TW_JSON_NULL)
        rc = tw__buf_puts(&text, "{}");
    else if (req->type == TW_JSON_STRING)
        rc = tw__buf_append(&text, req->u.str, req->n);
    else if (req->type == TW_JSON_OBJECT)
        rc = tw__json_write(&text, req);
    else {
        tw__cl_err(ld, req->line, TW_ECONFIG, "%srequest: a JSON object (as text or a mapping)", ctx);
        tw__buf_free(&text);
        return NULL;
    }
    tw_json *b = tw__json_new(doc, TW_JSON_OBJECT), *it = tw__json_new(doc, TW_JSON_OBJECT);
    tw_json *tmpl = text.data ? tw__json_new_string(doc, text.data, text.len) : NULL;
    tw__buf_free(&text);
    if (rc || !b || !it || !tmpl || tw__json_put(doc, it, "InputTemplate", 13, tmpl) ||
        (map && map->type != TW_JSON_NULL &&
         tw__json_put(doc, it, "InputPathsMap", 13, tw__json_copy(doc, map))) ||
        tw__json_put(doc, b, "InputTransformer", 16, it)) {
        ld->oom = 1;
        return NULL;
    }
    tw_transform *xf = NULL;
    tw_error err;
    if (tw__transform_compile(b, &xf, &err)) {
        tw__cl_err(ld, req ? req->line : e->line, TW_ECONFIG, "%s%s", ctx, err.msg);
        return NULL;
    }
    /* The body must be JSON: check with the template's own text. */
    tw_json_doc *probe = NULL;
    if (xf && tw_json_parse(tmpl->u.str, tmpl->n, NULL, &probe, NULL) != TW_OK && !map) {
        tw__cl_err(ld, req ? req->line : e->line, TW_ECONFIG, "%srequest: not a JSON object", ctx);
        tw__transform_free(xf);
        xf = NULL;
    }
    tw_json_doc_free(probe);
    return xf;
}

void tw__cl_enrich(tw_cfg_ld *ld, const tw_json *v, const char *rctx, tw_rule_cfg *r)
{
    static const char *const known[] = {"service", "action", "target_prefix", "input_paths_map", "request",
                                        "timeout", "cache", "rate", NULL};
    static const char *const rate_keys[] = {"per_second", "burst", NULL};
    char ctx[200];
    snprintf(ctx, sizeof ctx, "%senrich", rctx);
    if (!v || v->type == TW_JSON_NULL || !tw__cl_is_object(ld, v, ctx))
        return;
    if (v->n > 8) {
        tw__cl_err(ld, v->line, TW_ECONFIG, "%s: at most 8 enrichments per rule", ctx);
        return;
    }
    r->enrich = tw__arena_alloc(&ld->cfg->arena, (v->n ? v->n : 1) * sizeof *r->enrich);
    if (!r->enrich) {
        ld->oom = 1;
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        const tw_json_member *m = &v->u.members[i];
        const tw_json *e = m->val;
        char ectx[300];
        snprintf(ectx, sizeof ectx, "%s.%.64s: ", ctx, m->key);
        if (!enrich_name_ok(m->key)) {
            tw__cl_err(ld, e->line, TW_ECONFIG, "%s: the name must be 1 to 64 of A-Z a-z 0-9 _ -", ectx);
            continue;
        }
        if (tw__cl_keys(ld, e, ectx, known) < 0)
            continue;
        tw_enrich_cfg c = {.timeout_ms = 3000, .cache_ms = 60000, .rate = 5, .burst = 10};
        c.name = tw__cl_strdup(ld, m->key);
        c.where = tw__cl_printf(ld, "%s:%u", ld->file, e->line);
        const char *s;
        int ok = 1;
        if (tw__cl_string(ld, e, ectx, "service", 1, &s) > 0 && is_service(s))
            c.service = tw__cl_strdup(ld, s);
        else
            ok = 0;
        if (tw__cl_string(ld, e, ectx, "action", 1, &s) > 0 && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") == strlen(s) && strlen(s) < 128)
            c.action = tw__cl_strdup(ld, s);
        else
            ok = 0;
        if (!ok) {
            tw__cl_err(ld, e->line, TW_ECONFIG, "%sneeds service (its signing name: ssm, dynamodb, ...) and action "
                       "(the API operation: DescribeParameters)", ectx);
            continue;
        }
        if (tw__cl_string(ld, e, ectx, "target_prefix", 1, &s) > 0)
            c.target_prefix = tw__cl_strdup(ld, s);
        else if (!tw__aws_json_target(c.service, NULL)) {
            tw__cl_err(ld, e->line, TW_ECONFIG, "%sservice \"%s\" is not a JSON-protocol service trailwatch knows: "
                       "give its target_prefix (X-Amz-Target without the action)", ectx, c.service);
            continue;
        }
        tw__cl_duration(ld, e, ectx, "timeout", 100, 60000, &c.timeout_ms);
        tw__cl_duration(ld, e, ectx, "cache", 0, 86400000, &c.cache_ms);
        const tw_json *rate = tw_json_get(e, "rate");
        if (rate && rate->type != TW_JSON_NULL && tw__cl_keys(ld, rate, ectx, rate_keys) == 0) {
            tw__cl_number(ld, rate, ectx, "per_second", 0.01, 10000, &c.rate);
            tw__cl_number(ld, rate, ectx, "burst", 1, 10000, &c.burst);
        }
        if (!(c.request = enrich_request(ld, e, ectx)))
            continue;
        r->enrich[r->nenrich++] = c;
    }
}
