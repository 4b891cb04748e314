/*
 * source/http.h: one HTTP request and its response, as the handlers see them (internal).
 *
 * Ownership: the request and everything it points to are borrowed for the handler's call; the
 * response's body buffer is the handler's to fill and the server's to send and free.
 */
#ifndef TW_SOURCE_HTTP_H
#define TW_SOURCE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "aws/sigv4.h"
#include "common/buf.h"
#include "engine/engine.h"
#include "telemetry/metrics.h"

struct tw_config;

/* The same pair SigV4 verification takes, so a request's headers go to it as they are. */
typedef tw_sigv4_header tw_http_header;

typedef struct tw_http_req {
    const char *method;            /* "POST" */
    const char *path;              /* raw path, as sent (no query) */
    const char *query;             /* raw query string without '?', NULL when none */
    const tw_http_header *headers;
    size_t nheaders;
    const char *body;              /* exactly as received (NUL-terminated copy); handlers undo a
                                      Content-Encoding: gzip themselves (tw__http_gunzip) */
    size_t body_len;
    int loopback;                  /* the peer is 127.0.0.0/8 or ::1 */
    const char *peer;              /* the peer's address as text ("127.0.0.1", "::1") */
} tw_http_req;

/* A response produced while it is sent (Server-Sent Events). read() fills buf with up to max bytes and
 * returns the count, TW_HTTP_STREAM_END at the end of the stream, or, when called with block 0 and
 * there is nothing to send yet, TW_HTTP_STREAM_WAIT: the server then parks the connection (MHD
 * suspend) and the stream calls the waker set by set_waker (from any thread) once there is something
 * (data, a keep-alive or the end). With block 1 (a thread per connection) read() waits itself.
 * release() runs once, when the connection is done. */
#define TW_HTTP_STREAM_END (-1)
#define TW_HTTP_STREAM_WAIT (-2)
typedef struct tw_http_stream {
    void *ctx;
    long (*read)(void *ctx, char *buf, size_t max, int block);
    void (*set_waker)(void *ctx, void (*wake)(void *arg), void *arg);
    void (*release)(void *ctx);
} tw_http_stream;

#define TW_HTTP_RESP_HEADERS 8
typedef struct tw_http_resp {
    int status;
    const char *content_type;      /* static string */
    tw_buf body;
    uint32_t nheaders;
    char headers[TW_HTTP_RESP_HEADERS][2][128]; /* name, value */
    const char *const *static_headers; /* NULL or {name, value, ..., NULL}: long constant headers (CSP) */
    const void *static_body;       /* when set, sent instead of body (constant data, not copied) */
    size_t static_len;
    tw_http_stream stream;         /* when stream.read is set, the body is streamed instead */
} tw_http_resp;

/* What handlers may use: the engine, the current configuration (stable for the call), metrics. */
struct tw__budget;
typedef struct tw_source_ctx {
    tw_engine *engine;
    const struct tw_config *cfg;
    tw_metrics *metrics;
    struct tw__budget *gunzip;     /* decompressed bytes in flight across requests; NULL: no budget */
} tw_source_ctx;

typedef void (*tw_http_handler)(const tw_source_ctx *ctx, const tw_http_req *req, tw_http_resp *resp);

/* What is wrong with a verified signature's credential scope (service "events", a region this server
 * answers for), as AWS words it into msg; NULL when it is fine. */
const char *tw__http_scope_problem(const struct tw_config *cfg, const tw_sigv4_result *res, char *msg, size_t cap);

/* The value of a request header (case-insensitive name), NULL when absent. */
const char *tw__http_req_header(const tw_http_req *req, const char *name);
/* Adds a response header (silently ignored past TW_HTTP_RESP_HEADERS). */
void tw__http_resp_header(tw_http_resp *resp, const char *name, const char *value);
/* Retry-After (seconds) of a 503 that a full outbox (a target's max_pending) answers. */
#define TW_HTTP_BUSY_RETRY_AFTER "5"
/* Sets status and a JSON body from printf-style text (content type application/json). */
void tw__http_resp_json(tw_http_resp *resp, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* gunzip of a whole buffer into out, at most max bytes (TW_ETOOBIG past it, TW_EGZIP if corrupt or
 * truncated), counted against the server's budget of decompressed bytes in flight (ctx->gunzip):
 * TW_EBUSY (answer 503 + Retry-After) when other requests hold it. *held (start at 0) is what out
 * holds of the budget; tw__gunzip_done gives it back once out is freed. */
tw_status tw__http_gunzip(const tw_source_ctx *ctx, const void *in, size_t len, size_t max, tw_buf *out, size_t *held,
                    tw_error *err);
void tw__gunzip_done(const tw_source_ctx *ctx, size_t *held);

/* The handlers (one file each). */
void tw__api_handle(const tw_source_ctx *ctx, const tw_http_req *req, tw_http_resp *resp);      /* POST / */
void tw__ingest_handle(const tw_source_ctx *ctx, const tw_http_req *req, tw_http_resp *resp);   /* POST /events */
void tw__firehose_handle(const tw_source_ctx *ctx, const tw_http_req *req, tw_http_resp *resp); /* Firehose */

#endif
