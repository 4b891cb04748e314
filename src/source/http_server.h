/*
 * source/http_server.h: the HTTP listener (libmicrohttpd): routing, body limits, authentication,
 * and the operational endpoints GET /healthz and GET /metrics (internal).
 *
 * Ownership: the server owns the listener and its threads (event loops that never block, and worker
 * threads for handlers, which block until their alerts are durable). Handlers get a source context
 * with the configuration snapshot current when the request arrived.
 */
#ifndef TW_SOURCE_HTTP_SERVER_H
#define TW_SOURCE_HTTP_SERVER_H

#include "engine/engine.h"
#include "telemetry/metrics.h"
#include "config/snapshot.h"
#include "source/http.h"

typedef struct tw_http_server tw_http_server;

typedef struct tw_http_env {
    tw_engine *engine;
    tw_snapshots *snaps;
    tw_metrics *metrics;
    void *ctx;
    int64_t (*outbox_depth)(void *ctx);  /* for /healthz */
    /* Called once the listening socket is bound and before anything is accepted, with whether the
     * address actually bound is a loopback one; an error refuses to start. NULL: no check. */
    tw_status (*check_exposure)(void *ctx, int loopback, tw_error *err);
    /* The dashboard (src/web/): takes the request when it is one of its paths (returns 1). */
    void *web;
    int (*web_route)(void *web, const tw_source_ctx *ctx, const tw_http_req *req, tw_http_resp *resp);
    /* before the body: 1 (resp filled) to refuse a dashboard call its sender may not make; may be NULL */
    int (*web_refused_early)(void *web, const tw_config *cfg, const tw_http_req *req, tw_http_resp *resp);
} tw_http_env;

/* Request body caps by endpoint: the API carries at most 10 entries of 256 KiB in JSON; Firehose
 * documents 64 MiB before compression; /events takes whole CloudTrail log files. */
#define TW_HTTP_API_BODY_MAX (4u * 1024u * 1024u)
#define TW_HTTP_BULK_BODY_MAX (64u * 1024u * 1024u)
/* Connections the kernel queues before they are accepted: bursts of clients, not a memory cost. */
#define TW_HTTP_LISTEN_BACKLOG 1024
/* The dashboard's /api/ calls carry at most a pattern and one event (test-pattern). */
#define TW_HTTP_DASH_BODY_MAX (1024u * 1024u)

/* listen: "host:port" (IPv4, [IPv6] or a name; port 0 picks one). */
tw_status tw__http_server_start(const char *listen, const tw_http_env *env, tw_http_server **out, tw_error *err);
int tw__http_server_port(const tw_http_server *s);
/* Stops accepting, lets requests in progress finish (up to drain_ms), closes. */
void tw__http_server_stop(tw_http_server *s, int64_t drain_ms);

/* 1 when the listener is bound to a loopback address. */
int tw__http_server_loopback(const tw_http_server *s);

#endif
