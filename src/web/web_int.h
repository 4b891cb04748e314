/*
 * web/web_int.h: the parts of the dashboard's server side and what they share (internal to src/web).
 *
 * Ownership: everything here belongs to the tw_web; handlers borrow it for a request.
 */
#ifndef TW_WEB_WEB_INT_H
#define TW_WEB_WEB_INT_H

#include <pthread.h>
#include <stdint.h>

#include "config/config_int.h"
#include "web/web.h"

/* ---- the live alert hub (live.c) ---- */

typedef struct tw__live tw__live;
tw_status tw__live_new(tw__live **out);
void tw__live_free(tw__live *l);
void tw__live_close(tw__live *l);
/* Adds one alert (rules and the event) to the ring and wakes the streams. */
void tw__live_publish(tw__live *l, const tw_config *cfg, const char *event, size_t len, const uint32_t *rules,
                      size_t nrules, int64_t now_ms);
/* GET /api/stream: a Server-Sent Events response (503 past TW_WEB_SSE_CLIENTS_MAX). */
void tw__live_stream(tw__live *l, const tw_http_req *req, tw_http_resp *resp);

/* ---- alerts per minute, on disk (counts.c) ---- */

typedef struct tw__counts tw__counts;
tw_status tw__counts_open(const char *data_dir, tw__counts **out, tw_error *err);
/* Writes what is pending and stops the writer thread. */
void tw__counts_close(tw__counts *c);
void tw__counts_add(tw__counts *c, const tw_config *cfg, const char *event, size_t len, const uint32_t *rules,
                    size_t nrules, int64_t now_ms);
/* The alerts of [from_ms, to_ms] per step_ms (a multiple of a minute), by "total", "rule", "source",
 * "account" or "region", as the JSON of GET /api/timeline. */
tw_status tw__counts_timeline(tw__counts *c, int64_t from_ms, int64_t to_ms, int64_t step_ms, const char *by,
                              tw_buf *out, tw_error *err);

/* ---- rule statistics (rules.c) ---- */

typedef struct tw__rule_stats tw__rule_stats;
tw_status tw__rule_stats_new(tw__rule_stats **out);
void tw__rule_stats_free(tw__rule_stats *rs);
void tw__rule_stats_hit(tw__rule_stats *rs, const char *rule, int64_t now_ms);

/* ---- access (access.c) ---- */

typedef enum tw__web_role { TW_WEB_NONE = 0, TW_WEB_READ = 1, TW_WEB_FULL = 2 } tw__web_role;

typedef struct tw__sessions tw__sessions;
tw_status tw__sessions_new(tw__sessions **out);
void tw__sessions_free(tw__sessions *s);

typedef struct tw__web_auth {
    tw__web_role role;
    const char *mode;              /* "loopback", "session", "sigv4" */
    char csrf[65];                 /* the token state-changing calls must carry ("" for sigv4) */
} tw__web_auth;

/* Decides who is calling. 0 (resp filled with 401/403) when nobody may; else 1 and *auth. */
int tw__web_access(tw_web *w, const tw_config *cfg, const tw_http_req *req, tw_http_resp *resp, tw__web_auth *auth);
/* tw__web_access from the headers alone, before the body is read: 0 (resp filled) when the request
 * would be refused whatever its body. */
int tw__web_access_early(tw_web *w, const tw_config *cfg, const tw_http_req *req, tw_http_resp *resp);
/* For calls that change something: the CSRF token and same-origin checks. 0 (resp filled) when refused. */
int tw__web_csrf_ok(const tw__web_auth *auth, const tw_http_req *req, tw_http_resp *resp);
/* GET /api/session, POST /api/login, POST /api/logout. */
void tw__web_session(tw_web *w, const tw_config *cfg, const tw_http_req *req, tw_http_resp *resp);
void tw__web_login(tw_web *w, const tw_config *cfg, const tw_http_req *req, tw_http_resp *resp);
void tw__web_logout(tw_web *w, const tw_http_req *req, tw_http_resp *resp);

/* ---- handlers ---- */

void tw__web_rules(tw_web *w, const tw_config *cfg, tw_http_resp *resp);                        /* GET /api/rules */
void tw__web_test_pattern(const tw_config *cfg, const tw_http_req *req, tw_http_resp *resp);   /* POST /api/test-pattern */
void tw__web_delivery(tw_web *w, const tw_config *cfg, tw_http_resp *resp);                     /* GET /api/delivery */
void tw__web_dlq_list(tw_web *w, const tw_http_req *req, tw_http_resp *resp);                   /* GET /api/dlq */
void tw__web_dlq_show(tw_web *w, int64_t id, tw_http_resp *resp);                               /* GET /api/dlq/ID */
void tw__web_dlq_redrive(tw_web *w, const tw_config *cfg, const tw_http_req *req, tw_http_resp *resp); /* POST */
void tw__web_timeline(tw_web *w, const tw_config *cfg, const tw_http_req *req, tw_http_resp *resp); /* GET /api/timeline */
/* The archive's calls (archive.c): GET /api/events, GET /api/who/RESOURCE (raw: the path after
 * /api/who/, still URL-encoded), GET /api/events/timeline. */
void tw__web_events(tw_web *w, const tw_config *cfg, const tw_http_req *req, tw_http_resp *resp);
void tw__web_who(tw_web *w, const tw_config *cfg, const tw_http_req *req, const char *raw, tw_http_resp *resp);
void tw__web_events_timeline(tw_web *w, const tw_config *cfg, const tw_http_req *req, tw_http_resp *resp);
/* Static files: the page and its assets (assets.c). rel: the path below the dashboard path. */
void tw__web_serve_asset(const tw_http_req *req, const char *rel, tw_http_resp *resp);

/* ---- small helpers (util.c) ---- */

/* 1 when this server keeps an archive (Search and Timeline have data) (archive.c). */
int tw__web_archive_on(const tw_config *cfg);

/* The value of a query parameter (URL-decoded into buf), NULL when absent. */
const char *tw__web_query(const tw_http_req *req, const char *name, char *buf, size_t cap);
/* A JSON error body {"error": msg}. */
void tw__web_error(tw_http_resp *resp, int status, const char *msg);
/* Security headers every dashboard response carries (CSP and friends); API responses add no-store. */
extern const char *const tw__web_page_headers[];
extern const char *const tw__web_api_headers[];
/* A store connection (opened on first use) under w's lock: tw__web_store_lock / unlock. */
struct tw_store *tw__web_store_lock(tw_web *w, tw_error *err);
void tw__web_store_unlock(tw_web *w);

struct tw_web {
    tw__web_env env;
    char *data_dir;
    tw__live *live;
    tw__rule_stats *stats;
    tw__sessions *sessions;
    tw__counts *counts;            /* NULL when dashboard.db could not be opened (the timeline says so) */
    pthread_mutex_t store_lock;
    struct tw_store *store;        /* read connection for dead letters and storm windows */
    pthread_mutex_t archive_lock;
    struct tw_archive *archive;    /* read connection to the archive (archive.c), opened on first use */
};

#endif
