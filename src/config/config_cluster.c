/* config/config_cluster.c: the `cluster:` section (NATS JetStream cluster mode, docs/CLUSTER.md). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "config/load_int.h"
#include "json/json_int.h"

/* NATS URLs one node is given: a cluster has a handful of seed servers; more is a mistake. */
#define CLUSTER_URLS_MAX 32u

/* JetStream stream and durable consumer names: printable, no whitespace, none of . * > / \ (they
 * become subject tokens and file names on the servers). */
static int valid_js_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 255)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c >= 0x7f || strchr(".*>/\\", c))
            return 0;
    }
    return 1;
}

/* A subject events are published to: dot-separated tokens, none empty, no wildcards. */
static int valid_subject(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 255 || s[0] == '.' || s[n - 1] == '.' || strstr(s, ".."))
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c >= 0x7f || c == '*' || c == '>')
            return 0;
    }
    return 1;
}

static void add_url(tw_cfg_ld *ld, const tw_json *v, const char *name)
{
    tw_cluster_cfg *c = &ld->cfg->cluster;
    const char *s;
    if (tw__cl_vstring(ld, v, name, 1, &s) <= 0)
        return;
    if (strncasecmp(s, "nats://", 7) != 0 && strncasecmp(s, "tls://", 6) != 0) {
        /* The URL may hold a password: say what is wrong without quoting it. */
        tw__cl_err(ld, v->line, TW_ECONFIG, "%s: must be a NATS URL such as nats://127.0.0.1:4222 (nats:// or tls://)",
                   name);
        return;
    }
    if (c->nurls == CLUSTER_URLS_MAX) {
        tw__cl_err(ld, v->line, TW_ELIMIT, "%s: at most %u URLs", name, CLUSTER_URLS_MAX);
        return;
    }
    c->urls[c->nurls++] = tw__cl_strdup(ld, s);
}

static void urls(tw_cfg_ld *ld, const tw_json *v)
{
    tw_cluster_cfg *c = &ld->cfg->cluster;
    c->urls = tw__arena_calloc(&ld->cfg->arena, CLUSTER_URLS_MAX * sizeof *c->urls);
    if (!c->urls) {
        ld->oom = 1;
        return;
    }
    if (v && v->type == TW_JSON_ARRAY) {
        for (size_t i = 0; i < v->n; i++) {
            char name[48];
            snprintf(name, sizeof name, "cluster.urls[%zu]", i);
            add_url(ld, v->u.items[i], name);
        }
    } else if (v && v->type != TW_JSON_NULL) {
        add_url(ld, v, "cluster.urls");
    }
}

static void js_name(tw_cfg_ld *ld, const tw_json *v, const char *key, int subject, const char **out)
{
    const char *s;
    if (tw__cl_string(ld, v, "cluster", key, 1, &s) <= 0)
        return;
    if (subject ? !valid_subject(s) : !valid_js_name(s)) {
        tw__cl_err(ld, tw_json_get(v, key)->line, TW_ECONFIG,
                   subject ? "cluster.%s: a subject is dot-separated tokens without spaces or wildcards (* >)"
                           : "cluster.%s: a JetStream name has no spaces and none of . * > / \\", key);
        return;
    }
    *out = tw__cl_strdup(ld, s);
}

static void defaults(tw_cluster_cfg *c)
{
    c->role = TW_CLUSTER_BOTH;
    c->stream = "TRAILWATCH";
    c->subject = "trailwatch.events";
    c->consumer = "trailwatch-workers";
    c->replicas = 1;
    c->duplicate_window_ms = 2 * 60000;   /* JetStream's own default */
    c->ack_wait_ms = 30000;
    c->fetch_batch = 256;
    c->fetchers = 2;
    c->max_ack_pending = 20000;
    c->publish_timeout_ms = 10000;
}

void tw__cl_cluster(tw_cfg_ld *ld, const tw_json *v)
{
    static const char *const known[] = {"urls", "role", "name", "stream", "subject", "consumer", "credentials",
                                        "replicas", "duplicate_window", "max_age", "max_bytes", "ack_wait",
                                        "max_deliver", "fetch_batch", "fetchers", "max_ack_pending",
                                        "publish_timeout", NULL};
    static const char *const roles[] = {"both", "ingest", "worker", NULL};
    if (!v || v->type == TW_JSON_NULL || v->type == TW_JSON_FALSE)
        return;
    if (tw__cl_keys(ld, v, "cluster", known) < 0)
        return;
    tw_cluster_cfg *c = &ld->cfg->cluster;
    defaults(c);
    const char *s;
    urls(ld, tw_json_get(v, "urls"));
    if (!tw_json_get(v, "urls"))
        tw__cl_err(ld, v->line, TW_ECONFIG, "cluster: needs urls (the NATS servers, e.g. [nats://127.0.0.1:4222])");
    if (tw__cl_string(ld, v, "cluster", "role", 1, &s) > 0) {
        int r = 0;
        while (roles[r] && strcmp(roles[r], s) != 0)
            r++;
        if (roles[r])
            c->role = (tw_cluster_role)(TW_CLUSTER_BOTH + r);
        else
            tw__cl_err(ld, tw_json_get(v, "role")->line, TW_ECONFIG,
                       "cluster.role: must be both, ingest or worker, not \"%.40s\"", s);
    }
    if (tw__cl_string(ld, v, "cluster", "name", 1, &s) > 0) {
        if (tw__cl_valid_name(s))
            c->name = tw__cl_strdup(ld, s);
        else
            tw__cl_err(ld, tw_json_get(v, "name")->line, TW_ECONFIG,
                       "cluster.name: 1 to %d of A-Z a-z 0-9 . _ -", TW_CFG_NAME_MAX);
    }
    js_name(ld, v, "stream", 0, &c->stream);
    js_name(ld, v, "subject", 1, &c->subject);
    js_name(ld, v, "consumer", 0, &c->consumer);
    if (tw__cl_string(ld, v, "cluster", "credentials", 1, &s) > 0)
        c->credentials = tw__cl_join(ld, ld->dir_abs, s);
    uint64_t u;
    /* JetStream allows 1 to 5 replicas. */
    if (tw__cl_uint(ld, v, "cluster", "replicas", 1, 5, &u) > 0)
        c->replicas = (uint32_t)u;
    tw__cl_duration(ld, v, "cluster", "duplicate_window", 1000, 7LL * 86400000, &c->duplicate_window_ms);
    tw__cl_duration(ld, v, "cluster", "max_age", 0, 3650LL * 86400000, &c->max_age_ms);
    size_t z;
    if (tw__cl_size(ld, v, "cluster", "max_bytes", 0, (size_t)1 << 50, &z) > 0)
        c->max_bytes = z;
    tw__cl_duration(ld, v, "cluster", "ack_wait", 1000, 3600000, &c->ack_wait_ms);
    if (tw__cl_uint(ld, v, "cluster", "max_deliver", 0, 1000000, &u) > 0)
        c->max_deliver = u;
    /* A fetch is one engine call: the sources' batch size bounds it for the same reasons. */
    if (tw__cl_uint(ld, v, "cluster", "fetch_batch", 1, 1000, &u) > 0)
        c->fetch_batch = (uint32_t)u;
    if (tw__cl_uint(ld, v, "cluster", "fetchers", 1, 64, &u) > 0)
        c->fetchers = (uint32_t)u;
    if (tw__cl_uint(ld, v, "cluster", "max_ack_pending", 1, 10000000, &u) > 0)
        c->max_ack_pending = (uint32_t)u;
    tw__cl_duration(ld, v, "cluster", "publish_timeout", 100, 3600000, &c->publish_timeout_ms);
}
