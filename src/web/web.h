/*
 * web/web.h: the dashboard `serve` shows in a browser: its embedded page, the live alert stream
 * (Server-Sent Events), and the JSON calls under /api/ it reads (rules, delivery, dead letters,
 * timeline) (internal).
 *
 * Ownership: the server owns the tw_web (tw__web_new / tw__web_free); it outlives the HTTP listener
 * and the engine that call into it. The page itself is compiled into the binary (build/gen/
 * web_assets.c, made from web/ by esbuild at build time).
 *
 * Access (docs/DASHBOARD.md): the same as the API: without server.access_keys only loopback clients
 * (with a Host check against DNS rebinding); with keys, a login (an access key and its secret: full
 * access; dashboard.password_hash: read-only) or a SigV4-signed request. Calls that change state
 * need the CSRF token of the session.
 */
#ifndef TW_WEB_WEB_H
#define TW_WEB_WEB_H

#include <stddef.h>
#include <stdint.h>

#include "config/snapshot.h"
#include "source/http.h"
#include "telemetry/metrics.h"

/* ---- caps (input-fed sizes, with their reasons) ---- */

/* Open live streams: each holds a connection (and today a thread); a handful of people watch. */
#define TW_WEB_SSE_CLIENTS_MAX 64
/* The live ring: the last alerts kept for streams that reconnect (Last-Event-ID) or fall behind. */
#define TW_WEB_LIVE_RING 8192
#define TW_WEB_LIVE_RING_BYTES (32u * 1024u * 1024u)
/* One alert on the stream: larger events are sent as their envelope and key detail fields. */
#define TW_WEB_LIVE_EVENT_MAX (64u * 1024u)
/* Logged-in sessions held at once; the oldest is dropped past it. */
#define TW_WEB_SESSIONS_MAX 256
/* Rules whose statistics (matches per minute, last match) are kept. */
#define TW_WEB_RULE_STATS_MAX 100000
/* Dead letters one /api/dlq page returns; bodies shown in lists are cut to this many bytes. */
#define TW_WEB_DLQ_PAGE_MAX 500
#define TW_WEB_DLQ_BODY_SHOWN 4096
/* Open storm-control windows /api/rules lists (over all rules): a page, not a dump. */
#define TW_WEB_STORM_SHOWN 1000

typedef struct tw_web tw_web;

typedef struct tw__web_env {
    tw_snapshots *snaps;
    tw_metrics *metrics;
    const char *data_dir;          /* copied */
    void *ctx;
    int64_t (*outbox_depth)(void *ctx);
} tw__web_env;

tw_status tw__web_new(const tw__web_env *env, tw_web **out, tw_error *err);
/* Ends the live streams (their connections close) so that the HTTP server can stop. */
void tw__web_shutdown(tw_web *w);
void tw__web_free(tw_web *w);

/* The HTTP server's hook: 1 when the request was one of the dashboard's (resp filled). */
int tw__web_route(void *web, const tw_source_ctx *ctx, const tw_http_req *req, tw_http_resp *resp);
/* Called with the headers of a request, before its body is read: 1 (resp filled) when it is one of
 * the dashboard's calls with a body and its sender may not make it, so that no body is read for it. */
int tw__web_refused_early(void *web, const tw_config *cfg, const tw_http_req *req, tw_http_resp *resp);

/* The engine's observer: an event matched these rules (indices into cfg->rules) and is durable. */
struct tw_config;
void tw__web_observe(void *web, const struct tw_config *cfg, const char *event, size_t len, const uint32_t *rules,
                    size_t nrules);

#endif
