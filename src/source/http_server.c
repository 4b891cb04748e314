/* source/http_server.c: libmicrohttpd glue: collect the request, authenticate, route, respond.
 *
 * A few event loops (MHD's epoll threads) read every connection; nothing on them blocks. A request's
 * headers decide early what is refused before its body is read (authentication when keys are set,
 * announced sizes, the budget of body bytes in flight); the handler then runs on a worker thread
 * (http_pool.c) while the connection is suspended, and the worker resumes it with the response.
 * Streams (SSE) park the connection while they have nothing to send. Deadlines for headers and for
 * the whole request are absolute, enforced by the pool's reaper. */
#include "source/http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <netinet/in.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <sys/resource.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/budget.h"
#include "common/err.h"
#include "common/uuid.h"
#include "config/config_int.h"
#include "json/json_int.h"
#include "outbox/store.h"
#include "telemetry/log.h"
#include "source/http.h"
#include "source/http_pool.h"

#define MAX_REQUEST_HEADERS 128

/* Event loops: MHD's epoll threads, which only read, parse and write (two cores are the target). */
#define EVENT_LOOPS 2u
/* Handler threads: requests wait on them until their alerts are durable (group commit), so more of
 * them than cores lets commits batch; each costs a stack, not a connection. */
#define HANDLER_THREADS 16u
/* File descriptors beyond the connections: the outbox, archive, log files, outgoing deliveries. */
#define SPARE_FDS 256u

struct tw_http_server {
    struct MHD_Daemon *d;
    tw_http_env env;
    int port;
    int loopback;                  /* the bound address is a loopback one */
    _Atomic int active;            /* requests being handled */
    _Atomic int closing;
    int64_t started_ms;
    tw_http_cfg lim;               /* server.* as at start */
    tw__budget bodies;             /* request bytes in memory at once */
    tw__budget gunzip;             /* decompressed bytes at once */
    tw__http_pool *pool;
    tw_counter *busy, *deadline, *early;
};

typedef struct header_collect {
    tw_http_header h[MAX_REQUEST_HEADERS];
    size_t n;
} header_collect;

/* One request, from its headers to the end of its response. */
typedef struct req_state {
    tw_http_server *s;
    struct MHD_Connection *c;
    char *uri;                     /* raw request target, with the query */
    tw_buf body;
    size_t cap;
    size_t held;                   /* of s->bodies */
    int phase;                     /* 0: headers not yet seen, 1: reading the body, 2: handler running, 3: answered */
    int too_large, busy;
    char *query;                   /* into uri, NULL when none */
    tw__http_job job;
    header_collect hc;
    char peer[INET6_ADDRSTRLEN];
    tw_http_req req;
    tw_http_resp resp;
} req_state;

/* ---- addresses ---- */

static int split_listen(const char *listen, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *colon = strrchr(listen, ':');
    if (!colon)
        return 0;
    size_t hl = (size_t)(colon - listen);
    if (hl >= 2 && listen[0] == '[' && listen[hl - 1] == ']') {
        listen++;
        hl -= 2;
    }
    if (hl >= hcap || strlen(colon + 1) >= pcap || !colon[1])
        return 0;
    memcpy(host, listen, hl);
    host[hl] = '\0';
    snprintf(port, pcap, "%s", colon + 1);
    return 1;
}

static int addr_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return 1;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return 0;
}

static void peer_text(const struct sockaddr *sa, char *out, size_t cap)
{
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out, (socklen_t)cap);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out, (socklen_t)cap);
}

/* Binds the listening socket for listen ("host:port"; an empty host is every address, as AI_PASSIVE
 * resolves it). The caller decides about exposure from the address actually bound (*loopback), before
 * anything is accepted. */
static tw_status bind_listen(const char *where, int *fd_out, int *family, int *port_out, int *loopback,
                             tw_error *err)
{
    char host[256], port[16];
    if (!split_listen(where, host, sizeof host, port, sizeof port))
        return tw__err(err, TW_ECONFIG, "server.listen: \"%s\" is not host:port", where);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
    int gai = getaddrinfo(*host ? host : NULL, port, &hints, &ai);
    if (gai || !ai)
        return tw__err(err, TW_ECONFIG, "server.listen: cannot resolve %s: %s", where, gai_strerror(gai));
    int fd = -1, why = 0;
    for (struct addrinfo *p = ai; p && fd < 0; p = p->ai_next) {
        fd = socket(p->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            why = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (p->ai_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        if (bind(fd, p->ai_addr, p->ai_addrlen) || listen(fd, TW_HTTP_LISTEN_BACKLOG)) {
            why = errno;
            close(fd);
            fd = -1;
            continue;
        }
        *family = p->ai_family;
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return tw__err(err, TW_ESYS, "cannot listen on %s: %s", where, strerror(why));
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl)) {
        why = errno;
        close(fd);
        return tw__err(err, TW_ESYS, "cannot listen on %s: %s", where, strerror(why));
    }
    const struct sockaddr *sa = (const struct sockaddr *)&ss;
    *loopback = addr_loopback(sa);
    *port_out = ntohs(sa->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)(const void *)sa)->sin6_port
                                                 : ((const struct sockaddr_in *)(const void *)sa)->sin_port);
    *fd_out = fd;
    return TW_OK;
}

int tw__http_server_loopback(const tw_http_server *s) { return s ? s->loopback : 1; }

/* ---- responses ---- */

/* A streamed body on an event loop: the stream never waits in its reader; when it has nothing to send
 * the connection is suspended, and the stream's waker (any thread) resumes it. The flags, under the
 * lock, settle the race of a wake arriving between "nothing yet" and the suspension. */
typedef struct stream_conn {
    tw_http_stream st;
    struct MHD_Connection *c;
    pthread_mutex_t lock;
    int suspended, woken;
} stream_conn;

static void stream_wake(void *arg)
{
    stream_conn *sc = arg;
    pthread_mutex_lock(&sc->lock);
    if (sc->suspended) {
        sc->suspended = 0;
        MHD_resume_connection(sc->c);
    } else {
        sc->woken = 1;
    }
    pthread_mutex_unlock(&sc->lock);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream_conn *sc = cls;
    for (;;) {
        long n = sc->st.read(sc->st.ctx, buf, max, sc->st.set_waker ? 0 : 1);
        if (n != TW_HTTP_STREAM_WAIT)
            return n < 0 ? (ssize_t)MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)n;
        pthread_mutex_lock(&sc->lock);
        if (!sc->woken) {
            sc->suspended = 1;
            MHD_suspend_connection(sc->c);
            pthread_mutex_unlock(&sc->lock);
            return 0;              /* MHD asks again once resumed */
        }
        sc->woken = 0;             /* woken since it answered: ask again now */
        pthread_mutex_unlock(&sc->lock);
    }
}

static void stream_free(void *cls)
{
    stream_conn *sc = cls;
    if (sc->st.release)
        sc->st.release(sc->st.ctx);
    pthread_mutex_destroy(&sc->lock);
    free(sc);
}

static struct MHD_Response *stream_response(struct MHD_Connection *c, tw_http_resp *r)
{
    stream_conn *sc = calloc(1, sizeof *sc);
    if (!sc) {
        if (r->stream.release)
            r->stream.release(r->stream.ctx);
        return NULL;
    }
    sc->st = r->stream;
    sc->c = c;
    pthread_mutex_init(&sc->lock, NULL);
    if (sc->st.set_waker)
        sc->st.set_waker(sc->st.ctx, stream_wake, sc);
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, stream_read, sc,
                                                                  stream_free);
    if (!resp)
        stream_free(sc);
    return resp;
}

static enum MHD_Result respond(struct MHD_Connection *c, tw_http_resp *r)
{
    size_t len = 0;
    char *body = NULL;
    struct MHD_Response *resp;
    if (r->stream.read) {
        resp = stream_response(c, r);
    } else if (r->static_body) {
        resp = MHD_create_response_from_buffer(r->static_len, (void *)(uintptr_t)r->static_body,
                                               MHD_RESPMEM_PERSISTENT);
    } else {
        body = tw__buf_detach(&r->body, &len);
        resp = MHD_create_response_from_buffer(len, body ? body : (char *)"",
                                               body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    }
    tw__buf_free(&r->body);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type ? r->content_type : "application/json");
    for (uint32_t i = 0; i < r->nheaders; i++)
        MHD_add_response_header(resp, r->headers[i][0], r->headers[i][1]);
    for (const char *const *h = r->static_headers; h && h[0] && h[1]; h += 2)
        MHD_add_response_header(resp, h[0], h[1]);
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)(r->status ? r->status : 500), resp);
    MHD_destroy_response(resp);
    return rc;
}

/* ---- authentication ---- */

static const char *secret_for(void *ctx, const char *akid)
{
    const tw_config *cfg = ctx;
    for (uint32_t i = 0; i < cfg->nkeys; i++)
        if (strcmp(cfg->keys[i].id, akid) == 0)
            return cfg->keys[i].secret;
    return NULL;
}

/* The credential scope names the service and region the request was signed for: EventBridge's
 * service, and a region this server answers for (server.region, server.regions). NULL when fine. */
const char *tw__http_scope_problem(const struct tw_config *cfg, const tw_sigv4_result *res, char *msg, size_t cap)
{
    if (strcmp(res->service, "events") != 0) {
        snprintf(msg, cap, "Credential should be scoped to correct service: 'events'.");
        return msg;
    }
    if (cfg->any_region || strcmp(res->region, cfg->region) == 0)
        return NULL;
    for (uint32_t i = 0; i < cfg->nregions; i++)
        if (strcmp(res->region, cfg->regions[i]) == 0)
            return NULL;
    snprintf(msg, cap, "Credential should be scoped to a valid region, not '%s'.", res->region);
    return msg;
}

/* POST /events with sources.http.api_key: the key in its header (constant time; an EventBridge API
 * destination's API_KEY connection sends it so). */
static int api_key_ok(const tw_config *cfg, const tw_http_req *req)
{
    const char *want = cfg->src.http_key;
    const char *got = want ? tw__http_req_header(req, cfg->src.http_key_header) : NULL;
    size_t n = want ? strlen(want) : 0;
    return got && strlen(got) == n && CRYPTO_memcmp(got, want, n) == 0;
}

/* Requests to the API and /events must be signed with a configured key (or, for /events, carry the
 * configured API key); without either, only local clients may call (the server also refuses to
 * listen beyond loopback then). */
static int authorized(const tw_config *cfg, const tw_http_req *req, int aws_shape, int headers_only,
                      tw_http_resp *resp)
{
    if (!aws_shape && cfg->src.http_key) {
        if (api_key_ok(cfg, req))
            return 1;
        if (!cfg->nkeys || !tw__http_req_header(req, "Authorization")) {
            tw__http_resp_json(resp, 401, "{\"error\":\"missing or wrong %s header\"}", cfg->src.http_key_header);
            tw__log(TW_LOG_WARN, "request refused", "path", req->path, "reason", "missing or wrong API key", NULL);
            return 0;
        }
    }
    if (!cfg->nkeys) {
        if (req->loopback)
            return 1;
        tw__http_resp_json(resp, 403, "{\"__type\":\"AccessDeniedException\",\"message\":\"no access keys are "
                                     "configured: only loopback clients may call\"}");
        if (aws_shape) {
            char rid[TW_UUID_LEN + 1];
            tw__uuid4(rid);
            resp->content_type = "application/x-amz-json-1.1";
            tw__http_resp_header(resp, "x-amzn-RequestId", rid);
        }
        return 0;
    }
    tw_sigv4_request sr = {req->method, req->path, req->query, req->headers, req->nheaders, req->body, req->body_len};
    tw_sigv4_verifier v = {secret_for, (void *)cfg, time(NULL), 300, 0, headers_only};
    tw_sigv4_result res;
    tw_error err;
    char scope[160];
    if (tw__sigv4_verify(&sr, &v, &res, &err) == TW_OK) {
        if (!tw__http_scope_problem(cfg, &res, scope, sizeof scope))
            return 1;
        res.fail = TW_SIGV4_INVALID_SIGNATURE;
        tw__err(&err, TW_EAUTH, "%s", scope);
    }
    int status = res.fail == TW_SIGV4_INCOMPLETE_SIGNATURE ? 400 : res.fail == TW_SIGV4_INTERNAL ? 500 : 403;
    tw__http_resp_json(resp, status, "{\"__type\":\"%s\",\"message\":", tw__sigv4_fail_code(res.fail));
    tw__json_write_string(&resp->body, err.msg, strlen(err.msg));
    tw__buf_putc(&resp->body, '}');
    if (aws_shape) {
        char rid[TW_UUID_LEN + 1];
        tw__uuid4(rid);
        resp->content_type = "application/x-amz-json-1.1";
        tw__http_resp_header(resp, "x-amzn-RequestId", rid);
    }
    tw__log(TW_LOG_WARN, "request refused", "path", req->path, "reason", tw__sigv4_fail_code(res.fail),
           "access_key", res.access_key_id, NULL);
    return 0;
}

/* ---- routing ---- */

static void healthz(tw_http_server *s, tw_http_resp *resp)
{
    int64_t depth = s->env.outbox_depth ? s->env.outbox_depth(s->env.ctx) : 0;
    tw__http_resp_json(resp, 200, "{\"status\":\"ok\",\"outbox_depth\":%lld,\"uptime_seconds\":%lld}",
                      (long long)depth, (long long)((tw__now_ms() - s->started_ms) / 1000));
}

static void route(tw_http_server *s, const tw_http_req *req, tw_http_resp *resp)
{
    tw_snapshot *snap = tw__snapshot_acquire(s->env.snaps);
    const tw_config *cfg = snap->cfg;
    tw_source_ctx ctx = {s->env.engine, cfg, s->env.metrics, &s->gunzip};
    int get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    int post = strcmp(req->method, "POST") == 0;
    const char *p = req->path;
    int known = 1;
    if (s->env.web_route && s->env.web_route(s->env.web, &ctx, req, resp)) {
        /* the dashboard: its page, assets and /api/ (src/web/) */
    } else if (strcmp(p, "/healthz") == 0) {
        if (get)
            healthz(s, resp);
        else
            known = 0;
    } else if (strcmp(p, "/metrics") == 0) {
        if (get) {
            resp->status = 200;
            resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
            tw__metrics_render(s->env.metrics, &resp->body);
        } else {
            known = 0;
        }
    } else if (strcmp(p, "/") == 0 && cfg->src.eventbridge) {
        if (!post)
            known = 0;
        else if (authorized(cfg, req, 1, 0, resp))
            tw__api_handle(&ctx, req, resp);
    } else if (strcmp(p, "/events") == 0 && cfg->src.http) {
        if (!post)
            known = 0;
        else if (authorized(cfg, req, 0, 0, resp))
            tw__ingest_handle(&ctx, req, resp);
    } else if (cfg->src.firehose && cfg->src.firehose_path && strcmp(p, cfg->src.firehose_path) == 0) {
        if (!post)
            known = 0;
        else
            tw__firehose_handle(&ctx, req, resp); /* Firehose authenticates with its own access key */
    } else {
        tw__http_resp_json(resp, 404, "{\"error\":\"not found\"}");
    }
    if (!known) {
        tw__http_resp_json(resp, 405, "{\"error\":\"method not allowed\"}");
        tw__http_resp_header(resp, "Allow", strncmp(p, "/healthz", 8) == 0 || strcmp(p, "/metrics") == 0 ? "GET" : "POST");
    }
    tw__snapshot_release(snap);
}

/* ---- libmicrohttpd callbacks ---- */

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    header_collect *hc = cls;
    if (hc->n < MAX_REQUEST_HEADERS)
        hc->h[hc->n++] = (tw_http_header){key, value ? value : ""};
    return MHD_YES;
}

static size_t body_cap(const tw_http_server *s, const char *url)
{
    (void)s;
    if (url && strncmp(url, "/api/", 5) == 0)
        return TW_HTTP_DASH_BODY_MAX;
    return url && (strcmp(url, "/") == 0) ? TW_HTTP_API_BODY_MAX : TW_HTTP_BULK_BODY_MAX;
}

/* 413 in the shape each endpoint's clients expect: AWS's error for the API, the Firehose response
 * contract for Firehose, plain JSON elsewhere. */
static void too_large(tw_http_server *s, struct MHD_Connection *c, const char *url, size_t cap, tw_http_resp *resp)
{
    tw_snapshot *snap = tw__snapshot_acquire(s->env.snaps);
    const tw_config *cfg = snap->cfg;
    if (strcmp(url, "/") == 0) {
        char rid[TW_UUID_LEN + 1];
        tw__uuid4(rid);
        tw__http_resp_json(resp, 413, "{\"__type\":\"ValidationException\",\"message\":\"Request body larger "
                                     "than the limit of %zu bytes\"}", cap);
        resp->content_type = "application/x-amz-json-1.1";
        tw__http_resp_header(resp, "x-amzn-RequestId", rid);
    } else if (cfg->src.firehose && cfg->src.firehose_path && strcmp(url, cfg->src.firehose_path) == 0) {
        const char *rid = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Amz-Firehose-Request-Id");
        tw__http_resp_json(resp, 413, "{\"requestId\":");
        tw__json_write_string(&resp->body, rid ? rid : "", rid ? strnlen(rid, 256) : 0);
        tw__buf_printf(&resp->body, ",\"timestamp\":%lld,\"errorMessage\":\"request body larger than the limit "
                                   "of %zu bytes\"}", (long long)tw__now_ms(), cap);
    } else {
        tw__http_resp_json(resp, 413, "{\"error\":\"request body larger than the limit of %zu bytes\"}", cap);
    }
    tw__snapshot_release(snap);
}

typedef struct framing {
    int content_length, transfer_encoding;
    const char *first_length;
    int lengths_differ;
} framing;

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    framing *f = cls;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        if (f->content_length++ && strcmp(f->first_length, value ? value : "") != 0)
            f->lengths_differ = 1;
        else if (!f->first_length)
            f->first_length = value ? value : "";
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        f->transfer_encoding++;
    }
    return MHD_YES;
}

/* A request whose body length is ambiguous (two Content-Lengths, or Transfer-Encoding with one) is
 * what request smuggling through a proxy looks like: refused, and the connection closed, since where
 * its body ends cannot be known (RFC 9112 6.3). */
static const char *ambiguous_framing(struct MHD_Connection *c)
{
    framing f = {0, 0, NULL, 0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, count_framing, &f);
    if (f.transfer_encoding && f.content_length)
        return "both Transfer-Encoding and Content-Length";
    if (f.transfer_encoding > 1)
        return "more than one Transfer-Encoding header";
    if (f.content_length > 1)
        return f.lengths_differ ? "conflicting Content-Length headers" : "a repeated Content-Length header";
    return NULL;
}

static void resp_init(tw_http_resp *r)
{
    memset(r, 0, sizeof *r);
    tw__buf_init(&r->body, 0);
}

static tw__http_conn *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* A refusal sent before the body is read (or while it is): the connection is closed after it, since
 * the rest of the body will not be read. */
static enum MHD_Result refuse(req_state *rs, tw_http_resp *resp)
{
    tw__http_resp_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    rs->phase = 4;
    return respond(rs->c, resp);
}

static void busy(tw_http_server *s, const char *path, tw_http_resp *resp)
{
    tw_count(s->busy, 1);
    if (strcmp(path, "/") == 0) {
        tw__http_resp_json(resp, 503, "{\"__type\":\"ServiceUnavailableException\",\"message\":\"request bodies in "
                                     "progress use the server's budget of %zu bytes: retry later\"}", s->bodies.cap);
        resp->content_type = "application/x-amz-json-1.1";
    } else {
        tw__http_resp_json(resp, 503, "{\"error\":\"request bodies in progress use the server's budget of %zu bytes "
                                     "(server.request_bytes_in_flight): retry later\"}", s->bodies.cap);
    }
    tw__http_resp_header(resp, "Retry-After", "1");
}

/* The request as handlers see it, from what MHD collected (valid while the request lives). */
static void fill_req(req_state *rs, const char *url, const char *method)
{
    rs->hc.n = 0;
    MHD_get_connection_values(rs->c, MHD_HEADER_KIND, collect_header, &rs->hc);
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(rs->c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    rs->peer[0] = '\0';
    if (ci && ci->client_addr)
        peer_text(ci->client_addr, rs->peer, sizeof rs->peer);
    rs->req = (tw_http_req){method, rs->uri && *rs->uri ? rs->uri : url, rs->query, rs->hc.h, rs->hc.n, "", 0,
                            ci && ci->client_addr ? addr_loopback(ci->client_addr) : 0, rs->peer};
}

/* When keys are configured, what the headers alone say decides whether the body is read at all:
 * unauthenticated bodies are never buffered (SigV4's key, date, scope and, with x-amz-content-sha256,
 * the signature; the API key of /events; Firehose's access key). 1 when refused (resp filled). */
static int refused_early(tw_http_server *s, const tw_http_req *req, tw_http_resp *resp)
{
    tw_snapshot *snap = tw__snapshot_acquire(s->env.snaps);
    const tw_config *cfg = snap->cfg;
    int refused = 0;
    if (strcmp(req->method, "POST") == 0) {
        if (strcmp(req->path, "/") == 0 && cfg->src.eventbridge) {
            refused = !authorized(cfg, req, 1, 1, resp);
        } else if (strcmp(req->path, "/events") == 0 && cfg->src.http) {
            refused = !authorized(cfg, req, 0, 1, resp);
        } else if (cfg->src.firehose && cfg->src.firehose_path && strcmp(req->path, cfg->src.firehose_path) == 0 &&
                   cfg->src.firehose_key && *cfg->src.firehose_key) {
            const char *got = tw__http_req_header(req, "X-Amz-Firehose-Access-Key");
            size_t n = strlen(cfg->src.firehose_key);
            if (!got || strlen(got) != n || CRYPTO_memcmp(got, cfg->src.firehose_key, n) != 0) {
                tw_source_ctx ctx = {s->env.engine, cfg, s->env.metrics, &s->gunzip};
                tw__firehose_handle(&ctx, req, resp); /* its 401, in its response shape; the body is not looked at */
                refused = 1;
            }
        }
    }
    if (!refused && s->env.web_refused_early && strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0)
        refused = s->env.web_refused_early(s->env.web, cfg, req, resp);
    tw__snapshot_release(snap);
    if (refused)
        tw_count(s->early, 1);
    return refused;
}

/* The body is not needed once the handler returned: its budget goes back before the answer is sent. */
static void done_with_body(req_state *rs)
{
    tw__buf_free(&rs->body);
    rs->req.body = "";
    rs->req.body_len = 0;
    tw__budget_give(&rs->s->bodies, rs->held);
    rs->held = 0;
}

/* The handler, on a worker thread; the connection is suspended meanwhile and resumed with the answer. */
static void run_handler(void *arg)
{
    req_state *rs = arg;
    tw_http_server *s = rs->s;
    route(s, &rs->req, &rs->resp);
    done_with_body(rs);
    rs->phase = 3;
    s->active--;
    MHD_resume_connection(rs->c);
}

static int inline_route(const tw_http_req *req)
{
    /* Cheap and never blocking: answered on the event loop, so that they stay fast under any load. */
    return (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0) &&
           (strcmp(req->path, "/healthz") == 0 || strcmp(req->path, "/metrics") == 0);
}

/* First call: the headers are in. Decide what can be decided before reading the body. */
static enum MHD_Result on_headers(req_state *rs, const char *url, const char *method)
{
    tw_http_server *s = rs->s;
    tw__http_conn *k = conn_of(rs->c);
    if (k && s->lim.request_timeout_ms)    /* headers and body, from when the request's first byte could come */
        atomic_store(&k->deadline_ms, k->since_ms + s->lim.request_timeout_ms);
    rs->phase = 1;
    rs->cap = body_cap(s, url);
    tw__buf_init(&rs->body, rs->cap);
    fill_req(rs, url, method);
    resp_init(&rs->resp);
    const char *why = ambiguous_framing(rs->c);
    if (why) {
        tw__http_resp_json(&rs->resp, 400, "{\"error\":\"the request's body length is ambiguous: %s\"}", why);
        tw__log(TW_LOG_WARN, "request refused", "path", url, "reason", why, NULL);
        return refuse(rs, &rs->resp);
    }
    if (refused_early(s, &rs->req, &rs->resp))
        return refuse(rs, &rs->resp);
    const char *cl = MHD_lookup_connection_value(rs->c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;
    if (n > rs->cap) {
        too_large(s, rs->c, url, rs->cap, &rs->resp);
        return refuse(rs, &rs->resp);
    }
    if (n) {
        /* The announced body is counted whole before it is read; a body without a length, as it grows. */
        if (!tw__budget_take(&s->bodies, (size_t)n + 1)) {
            busy(s, rs->req.path, &rs->resp);
            return refuse(rs, &rs->resp);
        }
        rs->held = (size_t)n + 1;
        tw__buf_reserve(&rs->body, (size_t)n);
    }
    return MHD_YES;
}

static enum MHD_Result on_body(req_state *rs, const char *upload, size_t n)
{
    tw_http_server *s = rs->s;
    if (rs->body.len + n > rs->cap) {
        rs->too_large = 1;
    } else {
        size_t need = rs->body.len + n + 1;
        if (need > rs->held) {
            if (!tw__budget_take(&s->bodies, need - rs->held))
                rs->busy = 1;
            else
                rs->held = need;
        }
    }
    if (rs->too_large || rs->busy) {
        tw__buf_free(&rs->body);
        tw__buf_free(&rs->resp.body);
        resp_init(&rs->resp);
        if (rs->too_large)
            too_large(s, rs->c, rs->req.path, rs->cap, &rs->resp);
        else
            busy(s, rs->req.path, &rs->resp);
        return refuse(rs, &rs->resp);
    }
    if (tw__buf_append(&rs->body, upload, n)) {
        tw__buf_free(&rs->resp.body);
        resp_init(&rs->resp);
        tw__http_resp_json(&rs->resp, 500, "{\"error\":\"out of memory reading the request body\"}");
        return refuse(rs, &rs->resp);
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    (void)cls;
    req_state *rs = *con_cls;
    if (!rs)
        return MHD_NO;
    switch (rs->phase) {
    case 0:
        return on_headers(rs, url, method);
    case 1:
        if (*upload_size) {
            size_t n = *upload_size;
            *upload_size = 0;
            return on_body(rs, upload, n);
        }
        break;
    case 3:
        rs->phase = 4;
        return respond(c, &rs->resp);
    default:
        /* answered already: the rest of a refused body is not read */
        *upload_size = 0;
        return MHD_YES;
    }
    /* The whole body is in: no deadline while the handler runs and the response goes out. */
    tw__http_conn *k = conn_of(c);
    if (k)
        atomic_store(&k->deadline_ms, 0);
    rs->req.body = rs->body.data ? rs->body.data : "";
    rs->req.body_len = rs->body.len;
    if (inline_route(&rs->req)) {
        route(rs->s, &rs->req, &rs->resp);
        done_with_body(rs);
        rs->phase = 4;
        return respond(c, &rs->resp);
    }
    rs->phase = 2;
    rs->s->active++;
    rs->job.fn = run_handler;
    rs->job.arg = rs;
    MHD_suspend_connection(c);
    tw__http_pool_submit(rs->s->pool, &rs->job);
    return MHD_YES;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    req_state *rs = calloc(1, sizeof *rs);
    if (!rs)
        return NULL;
    rs->s = cls;
    rs->c = c;
    if (!(rs->uri = strdup(uri ? uri : "/"))) {
        free(rs);
        return NULL;
    }
    char *q = strchr(rs->uri, '?');
    if (q) {
        *q++ = '\0';
        rs->query = q;
    }
    return rs;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode why)
{
    (void)why;
    tw_http_server *s = cls;
    req_state *rs = *con_cls;
    tw__http_conn *k = conn_of(c);
    if (k && s->lim.header_timeout_ms) { /* the next request's headers on this connection */
        k->since_ms = tw__http_mono_ms();
        atomic_store(&k->deadline_ms, k->since_ms + s->lim.header_timeout_ms);
    }
    if (!rs)
        return;
    if (rs->phase == 3 && rs->resp.stream.release)
        rs->resp.stream.release(rs->resp.stream.ctx);   /* never handed to MHD */
    tw__budget_give(&s->bodies, rs->held);
    tw__buf_free(&rs->body);
    tw__buf_free(&rs->resp.body);
    free(rs->uri);
    free(rs);
    *con_cls = NULL;
}

/* Connections are tracked from accept to close, for their deadlines. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    tw_http_server *s = cls;
    tw__http_conn *k = *socket_context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!ci || !(k = calloc(1, sizeof *k)))
            return;
        k->fd = ci->connect_fd;
        k->since_ms = tw__http_mono_ms();
        atomic_store(&k->deadline_ms, s->lim.header_timeout_ms ? k->since_ms + s->lim.header_timeout_ms : 0);
        tw__http_pool_track(s->pool, k);
        *socket_context = k;
    } else if (k) {
        tw__http_pool_forget(s->pool, k);  /* before MHD closes the socket */
        free(k);
        *socket_context = NULL;
    }
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    tw__log(TW_LOG_DEBUG, "http", "detail", msg, NULL);
}

/* Every connection is a descriptor: the soft limit is raised as far as the hard one allows, and the
 * connection cap lowered (with a warning) when that is not enough. */
static uint32_t fit_fd_limit(uint32_t conns)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)conns + SPARE_FDS;
    if (getrlimit(RLIMIT_NOFILE, &rl))
        return conns;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        struct rlimit nl = rl;
        nl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &nl) == 0)
            rl = nl;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
        return conns;
    uint32_t fit = rl.rlim_cur > 2 * SPARE_FDS ? (uint32_t)(rl.rlim_cur - SPARE_FDS) : (uint32_t)(rl.rlim_cur / 2);
    char a[24], b[24];
    snprintf(a, sizeof a, "%u", conns);
    snprintf(b, sizeof b, "%u", fit);
    tw__log(TW_LOG_WARN, "server.max_connections lowered to what the open-file limit allows", "configured", a,
           "effective", b, NULL);
    return fit;
}

tw_status tw__http_server_start(const char *listen, const tw_http_env *env, tw_http_server **out, tw_error *err)
{
    *out = NULL;
    int fd = -1, family = AF_INET, port = 0, loopback = 0;
    tw_status rc = bind_listen(listen, &fd, &family, &port, &loopback, err);
    if (rc)
        return rc;
    if (env->check_exposure && (rc = env->check_exposure(env->ctx, loopback, err))) {
        close(fd);
        return rc;
    }
    tw_http_server *s = calloc(1, sizeof *s);
    if (!s) {
        close(fd);
        return tw__err(err, TW_ENOMEM, "out of memory");
    }
    s->env = *env;
    s->started_ms = tw__now_ms();
    s->loopback = loopback;
    s->port = port;
#ifdef __GLIBC__
    /* Bodies and decompressed data are large, short-lived buffers: each in its own mapping, given back
     * to the system when freed. glibc's default raises the mmap threshold after such frees, and then
     * keeps them in its heaps, where RSS creeps up under a mix of loads. */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
    tw_snapshot *snap = tw__snapshot_acquire(env->snaps);
    s->lim = snap->cfg->http;
    tw__snapshot_release(snap);
    s->bodies.cap = s->lim.body_bytes;
    s->gunzip.cap = s->lim.gunzip_bytes;
    s->lim.max_connections = fit_fd_limit(s->lim.max_connections);
    const char *help = "HTTP requests refused before their handler: budget of bytes in flight used up (busy), "
                       "unauthenticated from their headers (auth).";
    s->busy = tw__metrics_counter(env->metrics, "trailwatch_http_refused_total", help, "reason=\"busy\"");
    s->early = tw__metrics_counter(env->metrics, "trailwatch_http_refused_total", help, "reason=\"auth\"");
    s->deadline = tw__metrics_counter(env->metrics, "trailwatch_http_deadline_closed_total",
                                     "HTTP connections closed because their headers or request were not complete in time "
                                     "(server.header_timeout, server.request_timeout).", "");
    if ((rc = tw__http_pool_start(HANDLER_THREADS, 200, s->deadline, &s->pool, err))) {
        close(fd);
        free(s);
        return rc;
    }
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                     (family == AF_INET6 ? MHD_USE_IPv6 : 0);
    unsigned idle = (unsigned)((s->lim.request_timeout_ms + 999) / 1000);
    s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                            MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                            MHD_OPTION_CONNECTION_TIMEOUT, idle ? idle : 1u,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->lim.max_connections,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)s->lim.max_per_client,
                            MHD_OPTION_THREAD_POOL_SIZE, EVENT_LOOPS,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024), MHD_OPTION_EXTERNAL_LOGGER,
                            on_mhd_log, NULL, MHD_OPTION_END);
    if (!s->d) {
        close(fd);
        tw__http_pool_stop(s->pool);
        free(s);
        return tw__err(err, TW_ESYS, "cannot start the HTTP server on %s", listen);
    }
    *out = s;
    return TW_OK;
}

int tw__http_server_port(const tw_http_server *s) { return s ? s->port : 0; }

void tw__http_server_stop(tw_http_server *s, int64_t drain_ms)
{
    if (!s)
        return;
    /* Stop accepting; requests already inside finish (their alerts become durable) before close. */
    MHD_socket fd = MHD_quiesce_daemon(s->d);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    int64_t until = tw__now_ms() + drain_ms;
    while (s->active > 0 && tw__now_ms() < until) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    /* Handlers still running are waited for: they resume connections of this daemon. The pool's
     * connection list outlives the daemon, whose stop closes (and forgets) what is still open. */
    tw__http_pool_quiesce(s->pool);
    MHD_stop_daemon(s->d);
    tw__http_pool_stop(s->pool);
    free(s);
}
