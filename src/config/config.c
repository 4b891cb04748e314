/* config/config.c: tw_config_load: trailwatch.yml (or a serverless.yml) into a tw_config; the
 * `server:` and `sources:` sections; durations. Format: docs/CONFIG.md. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "config/load_int.h"
#include "json/json_int.h"
#include "trailwatch/packs.h"
#include "trailwatch/rulefile.h"
#include "trailwatch/yaml.h"

int tw__parse_duration(const char *s, int64_t *ms)
{
    static const struct { const char *u; double ms; } units[] = {
        {"ms", 1}, {"s", 1e3}, {"m", 60e3}, {"h", 3600e3}, {"d", 86400e3}};
    double total = 0;
    const char *p = s;
    int parts = 0;
    while (*p) {
        double v = 0, scale = 1;   /* digits [. digits]: no sign, exponent, hex, inf */
        const char *start = p;
        while (isdigit((unsigned char)*p))
            v = v * 10 + (*p++ - '0');
        if (*p == '.')
            for (p++; isdigit((unsigned char)*p); p++)
                v += (*p - '0') * (scale /= 10);
        if (p == start || (p - start == 1 && *start == '.') || v > 1e15)
            return 0;
        size_t ul = 0;
        while (isalpha((unsigned char)p[ul]))
            ul++;
        if (ul == 0) {
            if (parts || *p)        /* a bare number is seconds, and only alone */
                return 0;
            total = v * 1e3;
            parts++;
            break;
        }
        size_t k = 0;
        while (k < 5 && (strlen(units[k].u) != ul || strncmp(units[k].u, p, ul) != 0))
            k++;
        if (k == 5)
            return 0;
        total += v * units[k].ms;
        p += ul;
        parts++;
    }
    if (!parts || total > 100.0 * 365 * 86400e3)   /* a century is past any sensible setting */
        return 0;
    *ms = (int64_t)(total + 0.5);
    return 1;
}

const tw_target_cfg *tw__config_target(const tw_config *cfg, const char *name)
{
    for (uint32_t i = 0; cfg && i < cfg->ntargets; i++)
        if (strcmp(cfg->targets[i].name, name) == 0)
            return &cfg->targets[i];
    return NULL;
}

tw_ruleset *tw__config_take_ruleset(tw_config *cfg)
{
    tw_ruleset *rs = cfg->ruleset;
    cfg->ruleset = NULL;
    return rs;
}

const char *tw_config_data_dir(const tw_config *cfg) { return cfg ? cfg->data_dir : NULL; }
const char *tw_config_listen(const tw_config *cfg) { return cfg && cfg->listen ? cfg->listen : ""; }
const char *tw_config_folder(const tw_config *cfg) { return cfg ? cfg->src.folder : NULL; }
const char *tw_config_warnings(const tw_config *cfg) { return cfg && cfg->warnings ? cfg->warnings : ""; }

void tw_config_free(tw_config *cfg)
{
    if (!cfg)
        return;
    for (uint32_t i = 0; i < cfg->ntargets; i++)
        if (cfg->targets[i].ops && cfg->targets[i].impl)
            cfg->targets[i].ops->release(cfg->targets[i].impl);
    for (uint32_t i = 0; i < cfg->nrules; i++) {
        for (uint32_t j = 0; j < cfg->rules[i].nbindings; j++)
            tw__transform_free(cfg->rules[i].bindings[j].xf);
        for (uint32_t j = 0; j < cfg->rules[i].nfacts; j++)
            tw__expr_free(cfg->rules[i].facts[j].expr);
        for (uint32_t j = 0; j < cfg->rules[i].nenrich; j++)
            tw__transform_free(cfg->rules[i].enrich[j].request);
    }
    tw_json_doc_free(cfg->data_doc);
    free(cfg->targets);
    free(cfg->rules);
    free(cfg->ruleset_rule);
    tw_ruleset_free(cfg->ruleset);
    tw__cl_sigma_free(cfg);
    tw__arena_free(&cfg->arena);
    free(cfg);
}

const tw_json *tw__cl_read_yaml(tw_cfg_ld *ld, const char *path, tw_error *read_err)
{
    tw_error_clear(read_err);
    tw_limits lim;
    tw_limits_default(&lim);
    char *text = NULL;
    size_t len = 0;
    tw_json_doc *doc = NULL;
    if (tw_read_file(path, lim.file_max, &text, &len, read_err)) {
        if (read_err->code == TW_ENOMEM)
            ld->oom = 1;
        return NULL;
    }
    tw_error e;
    tw_status rc = tw_yaml_parse(text, len, &lim, &doc, &e);
    free(text);
    if (rc) {
        unsigned line = 0, col = 0;
        int used = 0;
        if (sscanf(e.msg, "line %u, column %u: %n", &line, &col, &used) == 2 && used > 0)
            tw__cl_err(ld, line, rc, "%s (column %u)", e.msg + used, col);
        else if (rc == TW_ENOMEM)
            ld->oom = 1;
        else
            tw__cl_err(ld, 0, rc, "%s", e.msg);
        return NULL;
    }
    return tw__cl_keep(ld, doc) ? tw_json_root(doc) : NULL;
}

/* ---- server: ---- */

static void listen_addr(tw_cfg_ld *ld, const tw_json *v)
{
    const char *s;
    if (!v || v->type == TW_JSON_FALSE || (v->type == TW_JSON_STRING && v->n == 0)) {
        if (v)
            ld->cfg->listen = tw__cl_strdup(ld, "");
        return;
    }
    if (tw__cl_vstring(ld, v, "server.listen", 0, &s) <= 0)
        return;
    const char *colon = strrchr(s, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == s || !end || *end || colon[1] == '\0' || port < 0 || port > 65535) {
        char shown[96];
        tw__cl_err(ld, v->line, TW_ECONFIG, "server.listen: must be HOST:PORT such as 127.0.0.1:8080 (or false), not %s",
                   tw__cl_shown(ld, v, shown, sizeof shown));
        return;
    }
    ld->cfg->listen = tw__cl_strdup(ld, s);
}

static void account_id(tw_cfg_ld *ld, const tw_json *v)
{
    if (!v || v->type == TW_JSON_NULL)
        return;
    /* Unquoted, YAML reads 123456789012 as a number: accept it when its text is still 12 digits. */
    const char *s = v->type == TW_JSON_STRING ? v->u.str : v->type == TW_JSON_NUMBER ? v->u.num.text : NULL;
    size_t n = s ? strlen(s) : 0;
    int ok = n == 12;
    for (size_t i = 0; ok && i < n; i++)
        ok = isdigit((unsigned char)s[i]);
    if (!ok) {
        tw__cl_err(ld, v->line, TW_ECONFIG, "server.account: must be a 12-digit account id in quotes (\"123456789012\")");
        return;
    }
    ld->cfg->account = tw__cl_strdup(ld, s);
}

static void access_keys(tw_cfg_ld *ld, const tw_json *v)
{
    static const char *const known[] = {"id", "secret", NULL};
    if (!v || v->type == TW_JSON_NULL)
        return;
    if (v->type != TW_JSON_ARRAY) {
        tw__cl_err(ld, v->line, TW_ECONFIG, "server.access_keys: must be a list of {id, secret}");
        return;
    }
    tw_config *cfg = ld->cfg;
    cfg->keys = tw__arena_calloc(&cfg->arena, (v->n ? v->n : 1) * sizeof *cfg->keys);
    if (!cfg->keys) {
        ld->oom = 1;
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        const tw_json *k = v->u.items[i];
        char ctx[64];
        const char *id = NULL, *secret = NULL;
        snprintf(ctx, sizeof ctx, "server.access_keys[%zu]", i);
        if (tw__cl_keys(ld, k, ctx, known) < 0)
            continue;
        int a = tw__cl_string(ld, k, ctx, "id", 1, &id), b = tw__cl_string(ld, k, ctx, "secret", 1, &secret);
        if (a == 0 || b == 0)
            tw__cl_err(ld, k->line, TW_ECONFIG, "%s: needs both id and secret", ctx);
        if (a <= 0 || b <= 0)
            continue;
        for (uint32_t j = 0; j < cfg->nkeys; j++)
            if (strcmp(cfg->keys[j].id, id) == 0)
                tw__cl_err(ld, k->line, TW_ECONFIG, "%s: access key id given twice", ctx);
        cfg->keys[cfg->nkeys].id = tw__cl_strdup(ld, id);
        cfg->keys[cfg->nkeys++].secret = tw__cl_strdup(ld, secret);
    }
}

static void limits(tw_cfg_ld *ld, const tw_json *v)
{
    static const char *const known[] = {"json_depth", "max_pattern_size", "or_combinations", "wildcard_stars",
                                        "max_rules", "event_values", "match_steps", "max_line_size",
                                        "max_file_size", NULL};
    if (!v || v->type == TW_JSON_NULL || tw__cl_keys(ld, v, "server.limits", known) < 0)
        return;
    tw_limits *l = &ld->cfg->lim;
    const char *c = "server.limits";
    uint64_t u;
    size_t z;
    if (tw__cl_uint(ld, v, c, "json_depth", 8, TW_MAX_JSON_DEPTH, &u) > 0)
        l->json_depth = (unsigned)u;
    if (tw__cl_size(ld, v, c, "max_pattern_size", 256, TW_MAX_PATTERN_MAX, &z) > 0)
        l->pattern_max = z;
    if (tw__cl_uint(ld, v, c, "or_combinations", 1, 1000000, &u) > 0)
        l->or_combinations = (unsigned)u;
    if (tw__cl_uint(ld, v, c, "wildcard_stars", 1, 1024, &u) > 0)
        l->wildcard_stars = (unsigned)u;
    if (tw__cl_uint(ld, v, c, "max_rules", 1, 100000000, &u) > 0)
        l->rules_max = (size_t)u;
    if (tw__cl_uint(ld, v, c, "event_values", 1024, 1u << 28, &u) > 0)
        l->event_values = (size_t)u;
    if (tw__cl_uint(ld, v, c, "match_steps", 1024, 1u << 30, &u) > 0)
        l->match_steps = (size_t)u;
    if (tw__cl_size(ld, v, c, "max_line_size", 1024, (size_t)1 << 30, &z) > 0)
        l->line_max = z;
    if (tw__cl_size(ld, v, c, "max_file_size", (size_t)1 << 20, (size_t)1 << 36, &z) > 0)
        l->file_max = z;
}

/* More regions signed requests may be scoped to: a list of names, or "*" for any. */
static void regions(tw_cfg_ld *ld, const tw_json *v)
{
    if (!v || v->type == TW_JSON_NULL)
        return;
    tw_config *cfg = ld->cfg;
    if (v->type == TW_JSON_STRING && strcmp(v->u.str, "*") == 0) {
        cfg->any_region = 1;
        return;
    }
    if (v->type != TW_JSON_ARRAY) {
        tw__cl_err(ld, v->line, TW_ECONFIG, "server.regions: must be a list of region names (or \"*\": any)");
        return;
    }
    cfg->regions = tw__arena_calloc(&cfg->arena, (v->n ? v->n : 1) * sizeof *cfg->regions);
    if (!cfg->regions) {
        ld->oom = 1;
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        char ctx[64];
        const char *r;
        snprintf(ctx, sizeof ctx, "server.regions[%zu]", i);
        if (tw__cl_vstring(ld, v->u.items[i], ctx, 1, &r) <= 0)
            continue;
        int ok = strlen(r) <= 64;
        for (const char *p = r; ok && *p; p++)
            ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-';
        if (!ok)
            tw__cl_err(ld, v->u.items[i]->line, TW_ECONFIG, "%s: not a region name (such as eu-west-1)", ctx);
        else
            cfg->regions[cfg->nregions++] = tw__cl_strdup(ld, r);
    }
}

static void http_limits(tw_cfg_ld *ld, const tw_json *v)
{
    tw_http_cfg *h = &ld->cfg->http;
    uint64_t u;
    tw__cl_duration(ld, v, "server", "header_timeout", 100, 3600000, &h->header_timeout_ms);
    tw__cl_duration(ld, v, "server", "request_timeout", 100, 24LL * 3600000, &h->request_timeout_ms);
    if (tw__cl_uint(ld, v, "server", "max_connections", 16, 1000000, &u) > 0)
        h->max_connections = (uint32_t)u;
    if (tw__cl_uint(ld, v, "server", "max_connections_per_client", 0, 1000000, &u) > 0)
        h->max_per_client = (uint32_t)u;
    tw__cl_size(ld, v, "server", "request_bytes_in_flight", (size_t)1 << 20, (size_t)1 << 40, &h->body_bytes);
    tw__cl_size(ld, v, "server", "gunzip_bytes_in_flight", (size_t)1 << 20, (size_t)1 << 40, &h->gunzip_bytes);
    if (h->request_timeout_ms < h->header_timeout_ms)
        tw__cl_err(ld, v->line, TW_ECONFIG, "server.request_timeout: must not be shorter than server.header_timeout");
}

static void server(tw_cfg_ld *ld, const tw_json *v)
{
    static const char *const known[] = {"listen", "account", "region", "regions", "access_keys", "max_event_size",
                                        "limits", "drain_timeout", "dedup_window", "header_timeout",
                                        "request_timeout", "max_connections", "max_connections_per_client",
                                        "request_bytes_in_flight", "gunzip_bytes_in_flight", NULL};
    if (!v || v->type == TW_JSON_NULL || tw__cl_keys(ld, v, "server", known) < 0)
        return;
    tw_config *cfg = ld->cfg;
    const char *s;
    listen_addr(ld, tw_json_get(v, "listen"));
    account_id(ld, tw_json_get(v, "account"));
    if (tw__cl_string(ld, v, "server", "region", 1, &s) > 0)
        cfg->region = tw__cl_strdup(ld, s);
    regions(ld, tw_json_get(v, "regions"));
    access_keys(ld, tw_json_get(v, "access_keys"));
    limits(ld, tw_json_get(v, "limits"));
    http_limits(ld, v);
    size_t z;
    if (tw__cl_size(ld, v, "server", "max_event_size", 1024, TW_MAX_EVENT_MAX, &z) > 0) {
        cfg->lim.event_max = z;
        if (!tw_json_get(tw_json_get(v, "limits"), "max_line_size") && cfg->lim.line_max < 4 * z)
            cfg->lim.line_max = 4 * z;   /* a line holds an event plus framing */
    }
    tw__cl_duration(ld, v, "server", "drain_timeout", 0, 3600000, &cfg->drain_ms);
    tw__cl_duration(ld, v, "server", "dedup_window", 0, 30LL * 86400000, &cfg->dedup_window_ms);
}

/* ---- sources: ---- */

static void sources(tw_cfg_ld *ld, const tw_json *v)
{
    static const char *const known[] = {"eventbridge", "http", "firehose", "folder", "s3", "sqs", NULL};
    static const char *const fh_keys[] = {"path", "access_key", NULL};
    static const char *const http_keys[] = {"api_key", "header", NULL};
    static const char *const folder_keys[] = {"path", "watch", NULL};
    if (!v || v->type == TW_JSON_NULL || tw__cl_keys(ld, v, "sources", known) < 0)
        return;
    tw_sources_cfg *src = &ld->cfg->src;
    const char *s;
    tw__cl_bool(ld, v, "sources", "eventbridge", &src->eventbridge);
    const tw_json *hv = tw_json_get(v, "http");
    if (!hv || hv->type == TW_JSON_NULL || hv->type == TW_JSON_TRUE || hv->type == TW_JSON_FALSE) {
        tw__cl_bool(ld, v, "sources", "http", &src->http);
    } else if (tw__cl_keys(ld, hv, "sources.http", http_keys) == 0) {
        /* {api_key, header}: an EventBridge API destination's connection sends the key in a header */
        src->http = 1;
        if (tw__cl_string(ld, hv, "sources.http", "api_key", 1, &s) > 0) {
            if (strlen(s) < 16)
                tw__cl_err(ld, tw_json_get(hv, "api_key")->line, TW_ECONFIG,
                           "sources.http.api_key: at least 16 characters (it stands in for a signature)");
            else
                src->http_key = tw__cl_strdup(ld, s);
        } else {
            tw__cl_err(ld, hv->line, TW_ECONFIG, "sources.http: api_key: missing (or write http: true)");
        }
        if (tw__cl_string(ld, hv, "sources.http", "header", 1, &s) > 0)
            src->http_key_header = tw__cl_strdup(ld, s);
    }
    tw__cl_s3_source(ld, tw_json_get(v, "s3"));
    tw__cl_sqs_source(ld, tw_json_get(v, "sqs"));
    const tw_json *fh = tw_json_get(v, "firehose");
    if (fh && (fh->type == TW_JSON_TRUE || fh->type == TW_JSON_FALSE)) {
        src->firehose = fh->type == TW_JSON_TRUE;
    } else if (fh && fh->type != TW_JSON_NULL && tw__cl_keys(ld, fh, "sources.firehose", fh_keys) == 0) {
        src->firehose = 1;
        if (tw__cl_string(ld, fh, "sources.firehose", "path", 1, &s) > 0) {
            if (s[0] != '/' || strcmp(s, "/") == 0 || strcmp(s, "/events") == 0)
                tw__cl_err(ld, tw_json_get(fh, "path")->line, TW_ECONFIG,
                           "sources.firehose.path: must start with / and differ from / and /events");
            else
                src->firehose_path = tw__cl_strdup(ld, s);
        }
        if (tw__cl_string(ld, fh, "sources.firehose", "access_key", 1, &s) > 0)
            src->firehose_key = tw__cl_strdup(ld, s);
    }
    const tw_json *fo = tw_json_get(v, "folder");
    if (!fo || fo->type == TW_JSON_NULL || fo->type == TW_JSON_FALSE)
        return;
    if (fo->type == TW_JSON_STRING) {
        if (tw__cl_vstring(ld, fo, "sources.folder", 1, &s) > 0)
            src->folder = tw__cl_join(ld, ld->dir_abs, s);
    } else if (tw__cl_keys(ld, fo, "sources.folder", folder_keys) == 0) {
        int r = tw__cl_string(ld, fo, "sources.folder", "path", 1, &s);
        if (r == 0)
            tw__cl_err(ld, fo->line, TW_ECONFIG, "sources.folder: needs a path");
        if (r > 0)
            src->folder = tw__cl_join(ld, ld->dir_abs, s);
        tw__cl_bool(ld, fo, "sources.folder", "watch", &src->folder_watch);
    }
}

/* ---- serverless: ---- */

static void serverless_entries(tw_cfg_ld *ld, const tw_json *v)
{
    static const char *const known[] = {"path", "environment", NULL};
    if (!v || v->type == TW_JSON_NULL)
        return;
    if (v->type != TW_JSON_ARRAY) {
        tw__cl_err(ld, v->line, TW_ECONFIG, "serverless: must be a list of serverless.yml paths or {path, environment}");
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        const tw_json *e = v->u.items[i], *env = NULL;
        const char *p = NULL;
        char ctx[48];
        snprintf(ctx, sizeof ctx, "serverless[%zu]", i);
        if (e->type == TW_JSON_STRING) {
            if (tw__cl_vstring(ld, e, ctx, 1, &p) <= 0)
                continue;
        } else {
            if (tw__cl_keys(ld, e, ctx, known) < 0)
                continue;
            int r = tw__cl_string(ld, e, ctx, "path", 1, &p);
            if (r == 0)
                tw__cl_err(ld, e->line, TW_ECONFIG, "%s: needs a path", ctx);
            env = tw_json_get(e, "environment");
            if (env && env->type != TW_JSON_NULL && !tw__cl_is_object(ld, env, "environment"))
                continue;
            if (r <= 0)
                continue;
        }
        tw__sls_load_file(ld, p, e->line, env);
    }
}

/* ---- the whole file ---- */

static void trailwatch_yml(tw_cfg_ld *ld, const tw_json *raw)
{
    static const char *const known[] = {"data_dir", "server", "aws", "sources", "data", "targets", "rules",
                                        "packs", "serverless", "cluster",
                                        "dashboard", "sigma", "archive", NULL};
    tw_json_doc *doc = tw__cl_new_doc(ld);
    const tw_json *root = doc ? tw__cl_subst_tree(ld, doc, raw) : NULL;
    if (!root) {
        ld->oom = 1;
        return;
    }
    if (root->type != TW_JSON_OBJECT) {
        tw__cl_err(ld, root->line, TW_ECONFIG, "a configuration is a mapping with server, sources, targets, rules "
                                               "(docs/CONFIG.md), or a serverless.yml with service and functions");
        return;
    }
    tw__cl_keys(ld, root, "", known);
    const char *s;
    if (tw__cl_string(ld, root, "", "data_dir", 1, &s) > 0)
        ld->cfg->data_dir = tw__cl_join(ld, ld->dir_abs, s);
    server(ld, tw_json_get(root, "server"));
    tw__cl_aws(ld, tw_json_get(root, "aws"));
    sources(ld, tw_json_get(root, "sources"));
    tw__cl_data(ld, tw_json_get(root, "data"));
    tw__cl_dashboard(ld, tw_json_get(root, "dashboard"));
    tw__cl_archive(ld, tw_json_get(root, "archive"));
    tw__cl_targets(ld, tw_json_get(root, "targets"));
    tw__cl_rules(ld, tw_json_get(root, "rules"));
    tw__cl_packs(ld, tw_json_get(root, "packs"));
    tw__cl_sigma(ld, tw_json_get(root, "sigma"));
    serverless_entries(ld, tw_json_get(root, "serverless"));
    tw__cl_cluster(ld, tw_json_get(root, "cluster"));
}

static void set_defaults(tw_cfg_ld *ld)
{
    tw_config *cfg = ld->cfg;
    cfg->data_dir = tw__cl_join(ld, ld->dir_abs, "var");
    cfg->listen = tw__cl_strdup(ld, "127.0.0.1:8080");
    cfg->account = tw__cl_strdup(ld, "123456789012");
    cfg->region = tw__cl_strdup(ld, "us-east-1");
    tw_limits_default(&cfg->lim);
    cfg->drain_ms = 10000;
    cfg->dedup_window_ms = 24LL * 3600000;
    cfg->http = (tw_http_cfg){TW_DEFAULT_HTTP_HEADER_TIMEOUT_MS, TW_DEFAULT_HTTP_REQUEST_TIMEOUT_MS,
                              TW_DEFAULT_HTTP_MAX_CONNECTIONS, TW_DEFAULT_HTTP_MAX_PER_CLIENT,
                              TW_DEFAULT_HTTP_BODY_BYTES, TW_DEFAULT_HTTP_GUNZIP_BYTES};
    cfg->src.eventbridge = 1;
    cfg->src.http = 1;
    cfg->src.firehose_path = tw__cl_strdup(ld, "/firehose");
    cfg->src.http_key_header = tw__cl_strdup(ld, "x-api-key");
    cfg->src.folder_watch = 1;
    tw__cl_dashboard_defaults(ld);
    tw__cl_archive_defaults(ld);
    cfg->notes = tw__cl_strdup(ld, "");
    cfg->warnings = tw__cl_strdup(ld, "");
}

static void load(tw_cfg_ld *ld, const char *path)
{
    tw_error e;
    const tw_json *root = tw__cl_read_yaml(ld, path, &e);
    if (!root) {
        size_t pl = strlen(path);
        if (e.code)   /* "PATH: why" from tw_read_file: show it once */
            tw__cl_err(ld, 0, e.code, "%s",
                       strncmp(e.msg, path, pl) == 0 && e.msg[pl] == ':' ? e.msg + pl + 2 : e.msg);
        return;
    }
    if (tw__sls_detect(root))
        tw__sls_load(ld, ld->dir_abs, root, NULL);
    else
        trailwatch_yml(ld, root);
}

/* Loads path (a trailwatch.yml or serverless.yml; NULL: nothing but the defaults, then the packs) and
 * the pack files `packs` (for `rules test`, which sets test). */
static tw_status load_all(const char *path, const char *const *packs, size_t npacks, int test, tw_config **out,
                          size_t *nerrors, tw_report_fn report, void *ctx, tw_error *err)
{
    size_t nerr_local;
    if (!nerrors)
        nerrors = &nerr_local;
    *out = NULL;
    *nerrors = 0;
    tw_error_clear(err);
    tw_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return tw__err(err, TW_ENOMEM, "out of memory");
    const char *shown = path ? path : npacks ? packs[0] : "(no configuration)";
    tw_cfg_ld ld = {.cfg = cfg, .file = shown, .test = test};
    /* Relative paths in the file resolve against its folder: absolute, so that they still hold when
     * the server changes directory; messages show paths as the user gave them. */
    const char *slash = path ? strrchr(path, '/') : NULL;
    ld.dir_shown = slash ? tw__cl_strndup(&ld, path, slash == path ? 1 : (size_t)(slash - path))
                         : tw__cl_strdup(&ld, ".");
    char *abs = realpath(ld.dir_shown, NULL);
    ld.dir_abs = abs ? tw__cl_strdup(&ld, abs) : ld.dir_shown;
    free(abs);
    cfg->path = tw__cl_strdup(&ld, shown);
    set_defaults(&ld);
    if (path)
        load(&ld, path);
    for (size_t i = 0; i < npacks && !ld.oom; i++)
        tw__cl_pack_for_test(&ld, packs[i]);
    tw_status rc = TW_OK;
    if (!ld.oom)
        tw__cl_finish_rules(&ld);
    tw__cl_free_patterns(&ld);
    if (!ld.oom && ld.notes.len)
        cfg->notes = tw__cl_strndup(&ld, ld.notes.data, ld.notes.len);
    if (!ld.oom && ld.warnings.len)
        cfg->warnings = tw__cl_strndup(&ld, ld.warnings.data, ld.warnings.len);
    *nerrors = tw__cl_flush_msgs(&ld, report, ctx, err);
    tw_json_doc **docs = (tw_json_doc **)(void *)ld.docs.data;
    for (size_t i = 0; i < ld.docs.len / sizeof *docs; i++)
        tw_json_doc_free(docs[i]);
    tw__buf_free(&ld.docs);
    tw__buf_free(&ld.subst);
    tw__buf_free(&ld.tainted);
    tw__buf_free(&ld.refs);
    tw__buf_free(&ld.notes);
    tw__buf_free(&ld.warnings);
    tw__buf_free(&ld.bad_targets);
    if (ld.oom)
        rc = tw__err(err, TW_ENOMEM, "out of memory loading %s", shown);
    else if (*nerrors)
        rc = err && err->code ? err->code : TW_ECONFIG;
    if (rc) {
        tw_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return TW_OK;
}

tw_status tw_config_load(const char *path, tw_config **out, size_t *nerrors, tw_report_fn report, void *ctx,
                         tw_error *err)
{
    return load_all(path, NULL, 0, 0, out, nerrors, report, ctx, err);
}

tw_status tw_config_load_for_test(const char *path, const char *const *packs, size_t npacks, tw_config **out,
                                  size_t *nerrors, tw_report_fn report, void *ctx, tw_error *err)
{
    return load_all(path, packs, npacks, 1, out, nerrors, report, ctx, err);
}
