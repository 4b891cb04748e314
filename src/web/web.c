/* web/web.c: the dashboard's routes (the page, its assets, /api/...) and its life cycle. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "outbox/store.h"
#include "trailwatch/archive.h"
#include "telemetry/log.h"
#include "web/web_int.h"

tw_status tw__web_new(const tw__web_env *env, tw_web **out, tw_error *err)
{
    *out = NULL;
    tw_web *w = calloc(1, sizeof *w);
    if (!w)
        return tw__err(err, TW_ENOMEM, "out of memory starting the dashboard");
    w->env = *env;
    pthread_mutex_init(&w->store_lock, NULL);
    pthread_mutex_init(&w->archive_lock, NULL);
    if (!(w->data_dir = strdup(env->data_dir ? env->data_dir : ".")) || tw__live_new(&w->live) ||
        tw__rule_stats_new(&w->stats) || tw__sessions_new(&w->sessions)) {
        tw__web_free(w);
        return tw__err(err, TW_ENOMEM, "out of memory starting the dashboard");
    }
    w->env.data_dir = w->data_dir;
    tw_error cerr;
    if (tw__counts_open(w->data_dir, &w->counts, &cerr))
        tw__log(TW_LOG_WARN, "the dashboard's timeline of alerts is off", "error", cerr.msg, NULL);
    *out = w;
    return TW_OK;
}

void tw__web_shutdown(tw_web *w)
{
    if (!w)
        return;
    tw__live_close(w->live);
}

void tw__web_free(tw_web *w)
{
    if (!w)
        return;
    tw__counts_close(w->counts);
    tw__live_free(w->live);
    tw__rule_stats_free(w->stats);
    tw__sessions_free(w->sessions);
    tw_store_close(w->store);
    pthread_mutex_destroy(&w->store_lock);
    tw_archive_close(w->archive);
    pthread_mutex_destroy(&w->archive_lock);
    free(w->data_dir);
    free(w);
}

void tw__web_observe(void *web, const tw_config *cfg, const char *event, size_t len, const uint32_t *rules,
                    size_t nrules)
{
    tw_web *w = web;
    if (!cfg->dash.enabled)
        return;
    int64_t now = tw__now_ms();
    for (size_t i = 0; i < nrules; i++)
        tw__rule_stats_hit(w->stats, cfg->rules[rules[i]].name, now);
    tw__live_publish(w->live, cfg, event, len, rules, nrules, now);
    tw__counts_add(w->counts, cfg, event, len, rules, nrules, now);
}

static void not_allowed(tw_http_resp *resp, const char *allow)
{
    tw__web_error(resp, 405, "method not allowed");
    tw__http_resp_header(resp, "Allow", allow);
}

/* 1 when p (after "/api/") is one of the dashboard's calls. */
static int dashboard_call(const char *p)
{
    static const char *const mine[] = {"session", "login", "logout", "stream", "rules", "test-pattern", "delivery",
                                       "dlq", "timeline", "events", "who", NULL};
    size_t seg = strcspn(p, "/");
    for (int i = 0; mine[i]; i++)
        if (strlen(mine[i]) == seg && strncmp(p, mine[i], seg) == 0)
            return 1;
    return 0;
}

/* /api/...: 1 when it is one of the dashboard's calls. */
static int api(tw_web *w, const tw_config *cfg, const tw_http_req *req, tw_http_resp *resp)
{
    const char *p = req->path + 5;
    int get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    int post = strcmp(req->method, "POST") == 0;
    if (!dashboard_call(p))
        return 0;                  /* another module's call, or a 404 */
    resp->static_headers = tw__web_api_headers;
    if (strcmp(p, "session") == 0) {
        if (get)
            tw__web_session(w, cfg, req, resp);
        else
            not_allowed(resp, "GET");
        return 1;
    }
    if (strcmp(p, "login") == 0 || strcmp(p, "logout") == 0) {
        if (!post)
            not_allowed(resp, "POST");
        else if (p[3] == 'i')
            tw__web_login(w, cfg, req, resp);
        else
            tw__web_logout(w, req, resp);
        return 1;
    }
    tw__web_auth auth;
    if (!tw__web_access(w, cfg, req, resp, &auth))
        return 1;
    if (post && !tw__web_csrf_ok(&auth, req, resp))
        return 1;
    if (strcmp(p, "stream") == 0) {
        if (get)
            tw__live_stream(w->live, req, resp);
        else
            not_allowed(resp, "GET");
    } else if (strcmp(p, "rules") == 0) {
        if (get)
            tw__web_rules(w, cfg, resp);
        else
            not_allowed(resp, "GET");
    } else if (strcmp(p, "test-pattern") == 0) {
        if (post)
            tw__web_test_pattern(cfg, req, resp);
        else
            not_allowed(resp, "POST");
    } else if (strcmp(p, "delivery") == 0) {
        if (get)
            tw__web_delivery(w, cfg, resp);
        else
            not_allowed(resp, "GET");
    } else if (strcmp(p, "timeline") == 0) {
        if (get)
            tw__web_timeline(w, cfg, req, resp);
        else
            not_allowed(resp, "GET");
    } else if (strcmp(p, "events") == 0 || strcmp(p, "events/timeline") == 0 || strncmp(p, "who/", 4) == 0) {
        if (!get)
            not_allowed(resp, "GET");
        else if (!tw__web_archive_on(cfg))
            tw__web_error(resp, 404, "this server keeps no archive (archive.enabled is false)");
        else if (p[0] == 'w')
            tw__web_who(w, cfg, req, p + 4, resp);
        else if (p[6])
            tw__web_events_timeline(w, cfg, req, resp);
        else
            tw__web_events(w, cfg, req, resp);
    } else if (strcmp(p, "dlq") == 0) {
        if (get)
            tw__web_dlq_list(w, req, resp);
        else
            not_allowed(resp, "GET");
    } else if (strcmp(p, "dlq/redrive") == 0) {
        if (!post)
            not_allowed(resp, "POST");
        else if (auth.role != TW_WEB_FULL)
            tw__web_error(resp, 403, "a read-only login cannot redrive: log in with an access key");
        else
            tw__web_dlq_redrive(w, cfg, req, resp);
    } else if (strncmp(p, "dlq/", 4) == 0 && p[4] >= '1' && p[4] <= '9' && strspn(p + 4, "0123456789") == strlen(p + 4) &&
               strlen(p + 4) < 16) {
        if (get)
            tw__web_dlq_show(w, atoll(p + 4), resp);
        else
            not_allowed(resp, "GET");
    } else {
        tw__web_error(resp, 404, "not found");
    }
    return 1;
}

int tw__web_refused_early(void *web, const tw_config *cfg, const tw_http_req *req, tw_http_resp *resp)
{
    const char *p = req->path;
    if (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0 || strncmp(p, "/api/", 5) != 0 ||
        !dashboard_call(p + 5) || strcmp(p + 5, "login") == 0 || strcmp(p + 5, "logout") == 0 ||
        strcmp(p + 5, "session") == 0)
        return 0;                  /* no body worth refusing early, or one that the call itself needs */
    if (!cfg->dash.enabled && strcmp(p, "/api/events") != 0 && strcmp(p, "/api/events/timeline") != 0 &&
        strncmp(p, "/api/who/", 9) != 0)
        return 0;
    if (tw__web_access_early(web, cfg, req, resp))
        return 0;
    resp->static_headers = tw__web_api_headers;
    return 1;
}

int tw__web_route(void *web, const tw_source_ctx *ctx, const tw_http_req *req, tw_http_resp *resp)
{
    tw_web *w = web;
    const tw_config *cfg = ctx->cfg;
    const char *p = req->path;
    /* The archive's calls are part of the API, with or without the page. */
    if (!cfg->dash.enabled && (strcmp(p, "/api/events") == 0 || strcmp(p, "/api/events/timeline") == 0 ||
                               strncmp(p, "/api/who/", 9) == 0))
        return api(w, cfg, req, resp);
    if (!cfg->dash.enabled)
        return 0;
    if (strncmp(p, "/api/", 5) == 0)
        return api(w, cfg, req, resp);
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0)
        return 0;
    const char *base = cfg->dash.path;
    size_t bl = strlen(base);
    if (strncmp(p, base, bl) == 0) {
        const char *rel = p + bl;
        if (*rel && strncmp(rel, "assets/", 7) != 0)
            return 0;              /* /healthz, /metrics under a dashboard at / */
        tw__web_serve_asset(req, rel, resp);
        return 1;
    }
    if (bl > 1 && strlen(p) == bl - 1 && strncmp(p, base, bl - 1) == 0) {
        resp->status = 308;        /* /dashboard -> /dashboard/, so that relative asset names resolve */
        resp->static_headers = tw__web_page_headers;
        tw__http_resp_header(resp, "Location", base);
        return 1;
    }
    return 0;
}

/* GET /api/timeline?from=MS&to=MS&step=minute|hour|MS&by=total|rule|source|account|region&kind=alerts */
void tw__web_timeline(tw_web *w, const tw_config *cfg, const tw_http_req *req, tw_http_resp *resp)
{
    char fb[32], tb[32], sb[32], bb[16], kb[16];
    const char *from = tw__web_query(req, "from", fb, sizeof fb), *to = tw__web_query(req, "to", tb, sizeof tb);
    const char *step = tw__web_query(req, "step", sb, sizeof sb), *by = tw__web_query(req, "by", bb, sizeof bb);
    const char *kind = tw__web_query(req, "kind", kb, sizeof kb);
    int64_t now = tw__now_ms();
    int64_t t = to && *to ? atoll(to) : now, f = from && *from ? atoll(from) : t - 86400000;
    int64_t s = !step || !*step ? (t - f > 6 * 3600000 ? 3600000 : 60000)
                : strcmp(step, "minute") == 0 ? 60000 : strcmp(step, "hour") == 0 ? 3600000 : atoll(step);
    if (f < 0 || t < f || s < 60000 || s % 60000) {
        tw__web_error(resp, 400, "from and to are epoch milliseconds (from <= to); step is minute, hour or a "
                                 "multiple of 60000 ms");
        return;
    }
    if (kind && *kind && strcmp(kind, "alerts") != 0) {
        tw__web_error(resp, 404, tw__web_archive_on(cfg) ? "events per minute: GET /api/events/timeline"
                                 : "events per minute need the archive, which this server does not keep");
        return;
    }
    if (!w->counts) {
        tw__web_error(resp, 503, "the timeline of alerts is off (dashboard.db could not be opened: see the log)");
        return;
    }
    tw_error err;
    tw__http_resp_json(resp, 200, "%s", "");
    tw_status rc = tw__counts_timeline(w->counts, f, t, s, by && *by ? by : "total", &resp->body, &err);
    if (rc)
        tw__web_error(resp, rc == TW_EDB || rc == TW_ENOMEM ? 500 : 400, err.msg);
}
