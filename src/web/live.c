/* web/live.c: the live alert stream: a ring of the latest alerts as ready Server-Sent Events frames,
 * shared by every open stream (each keeps its own position in it).
 *
 * One ring instead of a queue per client: memory is bounded whatever the number of clients, and a
 * client that reconnects with Last-Event-ID (or reads slower than alerts arrive) resumes from where it
 * was while that is still in the ring; past it, it gets a "gap" event saying how many it missed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/thread.h"
#include "json/json_int.h"
#include "outbox/store.h"
#include "web/web_int.h"

#define PING_EVERY_MS 15000

typedef struct frame {
    char *mem;                     /* the allocation text is in (freed with the frame) */
    const char *text;              /* "id: ...\nevent: alert\ndata: {...}\n\n" */
    size_t len;
} frame;

/* Room left before a frame for its "id: EPOCH-SEQ\n" line (24 + 20 + 6 bytes at most), written under
 * the lock into the same allocation: a frame is built and kept without a second copy. */
#define HEAD_ROOM 64

typedef struct sub sub;

struct tw__live {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    sub *subs[TW_WEB_SSE_CLIENTS_MAX]; /* open streams (for waking parked ones) */
    pthread_t ticker;              /* wakes parked streams for their keep-alive (started on first use) */
    int ticking;
    frame ring[TW_WEB_LIVE_RING];
    uint64_t first, next;          /* frames first .. next-1 are in the ring (slot = seq % RING) */
    size_t bytes;
    int closing;
    int clients;
    char epoch[24];                /* tells this process's ids from a previous one's */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

tw_status tw__live_new(tw__live **out)
{
    tw__live *l = calloc(1, sizeof *l);
    if (!l)
        return TW_ENOMEM;
    pthread_mutex_init(&l->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cond, &ca);
    pthread_condattr_destroy(&ca);
    l->first = l->next = 1;
    snprintf(l->epoch, sizeof l->epoch, "%llx", (unsigned long long)tw__now_ms());
    *out = l;
    return TW_OK;
}

static void wake_parked(tw__live *l, int only_pings);

void tw__live_close(tw__live *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->lock);
    l->closing = 1;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
    wake_parked(l, 0);
    if (l->ticking) {
        pthread_join(l->ticker, NULL);
        l->ticking = 0;
    }
}

void tw__live_free(tw__live *l)
{
    if (!l)
        return;
    tw__live_close(l);
    for (uint64_t s = l->first; s < l->next; s++)
        free(l->ring[s % TW_WEB_LIVE_RING].mem);
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

/* ---- publishing ---- */

/* An event too large for the stream: its envelope and the detail fields the live view shows. */
static void reduced_event(tw_buf *b, const tw_config *cfg, const char *event, size_t len)
{
    static const char *const top[] = {"version", "id", "detail-type", "source", "account", "time", "region", NULL};
    static const char *const det[] = {"eventName", "eventSource", "eventTime", "eventID", "awsRegion",
                                      "sourceIPAddress", "userAgent", "userIdentity", "errorCode", "errorMessage",
                                      "recipientAccountId", NULL};
    tw_json_doc *doc = NULL;
    tw_error err;
    if (tw_json_parse(event, len, &cfg->lim, &doc, &err)) {
        tw__buf_puts(b, "{\"truncated\":true}");
        return;
    }
    const tw_json *root = tw_json_root(doc);
    tw__buf_puts(b, "{\"truncated\":true");
    for (int i = 0; top[i]; i++) {
        const tw_json *v = tw_json_get(root, top[i]);
        if (v && tw_json_typeof(v) != TW_JSON_OBJECT && tw_json_typeof(v) != TW_JSON_ARRAY) {
            tw__buf_putc(b, ',');
            tw__json_write_string(b, top[i], strlen(top[i]));
            tw__buf_putc(b, ':');
            tw__json_write(b, v);
        }
    }
    const tw_json *detail = tw_json_get(root, "detail");
    tw__buf_puts(b, ",\"detail\":{");
    int n = 0;
    for (int i = 0; det[i] && tw_json_typeof(detail) == TW_JSON_OBJECT; i++) {
        const tw_json *v = tw_json_get(detail, det[i]);
        if (!v)
            continue;
        size_t before = b->len;
        if (n++)
            tw__buf_putc(b, ',');
        tw__json_write_string(b, det[i], strlen(det[i]));
        tw__buf_putc(b, ':');
        tw__json_write(b, v);
        if (b->len - before > TW_WEB_LIVE_EVENT_MAX / 4) { /* a huge userIdentity: leave it out */
            b->len = before;
            b->data[b->len] = '\0';
            n--;
        }
    }
    tw__buf_puts(b, "}}");
    tw_json_doc_free(doc);
}

void tw__live_publish(tw__live *l, const tw_config *cfg, const char *event, size_t len, const uint32_t *rules,
                      size_t nrules, int64_t now_ms)
{
    tw_buf b = TW_BUF_INIT;
    tw__buf_init(&b, TW_WEB_LIVE_EVENT_MAX * 2);
    /* The id is filled in under the lock; everything else is built outside it. */
    static const char room[HEAD_ROOM];
    tw_status rc = tw__buf_reserve(&b, HEAD_ROOM + (len <= TW_WEB_LIVE_EVENT_MAX ? len : 0) + 512);
    if (!rc)
        rc = tw__buf_append(&b, room, sizeof room);
    if (!rc)
        rc = tw__buf_printf(&b, "event: alert\ndata: {\"received\":%lld,\"rules\":[", (long long)now_ms);
    for (size_t i = 0; !rc && i < nrules; i++) {
        const tw_rule_cfg *r = &cfg->rules[rules[i]];
        rc = tw__buf_puts(&b, i ? ",{\"name\":" : "{\"name\":");
        if (!rc)
            rc = tw__json_write_string(&b, r->name, strlen(r->name));
        if (!rc)
            rc = tw__buf_puts(&b, ",\"severity\":");
        if (!rc)
            rc = tw__json_write_string(&b, r->severity, strlen(r->severity));
        if (!rc)
            rc = tw__buf_putc(&b, '}');
    }
    if (!rc)
        rc = tw__buf_puts(&b, "],\"event\":");
    size_t ev_at = b.len;
    if (!rc && len <= TW_WEB_LIVE_EVENT_MAX) {
        rc = tw__buf_append(&b, event, len);
        /* JSON has line breaks only between tokens: as spaces the event stays one data: line. */
        for (const char *nl = "\n\r"; !rc && *nl; nl++)
            for (char *p = b.data + ev_at; (p = memchr(p, *nl, (size_t)(b.data + b.len - p))); p++)
                *p = ' ';
    } else if (!rc) {
        reduced_event(&b, cfg, event, len);
    }
    if (!rc)
        rc = tw__buf_puts(&b, "}\n\n");
    if (rc) {
        tw__buf_free(&b);
        return;
    }
    size_t blen;
    char *mem = tw__buf_detach(&b, &blen);
    if (!mem)
        return;
    /* The ring keeps up to TW_WEB_LIVE_RING frames: each at its size, not the buffer's doubled one. */
    char *fit = realloc(mem, blen + 1);
    if (fit)
        mem = fit;
    pthread_mutex_lock(&l->lock);
    uint64_t seq = l->next;
    char head[HEAD_ROOM];
    size_t hl = (size_t)snprintf(head, sizeof head, "id: %s-%llu\n", l->epoch, (unsigned long long)seq);
    char *text = mem + HEAD_ROOM - hl;
    memcpy(text, head, hl);
    size_t flen = blen - HEAD_ROOM + hl;
    while (l->next - l->first >= TW_WEB_LIVE_RING ||
           (l->next > l->first && l->bytes + flen > TW_WEB_LIVE_RING_BYTES)) {
        frame *old = &l->ring[l->first % TW_WEB_LIVE_RING];
        l->bytes -= old->len;
        free(old->mem);
        old->mem = NULL;
        l->first++;
    }
    l->ring[seq % TW_WEB_LIVE_RING] = (frame){mem, text, flen};
    l->bytes += flen;
    l->next++;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->lock);
    wake_parked(l, 0);
}

/* ---- one stream ---- */

struct sub {
    tw__live *l;
    int slot;                      /* in l->subs */
    uint64_t cursor;               /* the next frame to send */
    int64_t last_write;
    tw_buf pending;                /* a frame that did not fit the last read */
    size_t pending_off;
    int hello;
    void (*wake)(void *arg);       /* an event loop's way to resume a parked connection */
    void *wake_arg;
    int parked;                    /* read() answered TW_HTTP_STREAM_WAIT; not yet woken */
};

static size_t put(char *buf, size_t max, size_t at, const char *s, size_t n)
{
    if (at + n > max)
        return 0;
    memcpy(buf + at, s, n);
    return n;
}

/* Wakes the parked streams (every one, or only those whose keep-alive is due); the wakers run
 * outside the lock, since they call into the HTTP server. A parked connection stays open until it is
 * woken, so its sub cannot be released meanwhile. */
static void wake_parked(tw__live *l, int only_pings)
{
    void (*fns[TW_WEB_SSE_CLIENTS_MAX])(void *);
    void *args[TW_WEB_SSE_CLIENTS_MAX];
    int n = 0;
    int64_t now = mono_ms();
    pthread_mutex_lock(&l->lock);
    for (int i = 0; i < TW_WEB_SSE_CLIENTS_MAX; i++) {
        sub *s = l->subs[i];
        if (s && s->parked && (!only_pings || now >= s->last_write + PING_EVERY_MS)) {
            s->parked = 0;
            fns[n] = s->wake;
            args[n++] = s->wake_arg;
        }
    }
    pthread_mutex_unlock(&l->lock);
    for (int i = 0; i < n; i++)
        fns[i](args[i]);
}

static void *ticker_main(void *arg)
{
    tw__thread_name("tw-live");
    tw__live *l = arg;
    pthread_mutex_lock(&l->lock);
    while (!l->closing) {
        int64_t due = mono_ms() + 1000;
        struct timespec ts = {(time_t)(due / 1000), (long)(due % 1000) * 1000000L};
        pthread_cond_timedwait(&l->cond, &l->lock, &ts);
        pthread_mutex_unlock(&l->lock);
        wake_parked(l, 1);
        pthread_mutex_lock(&l->lock);
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

static void sub_set_waker(void *ctx, void (*wake)(void *arg), void *arg)
{
    sub *s = ctx;
    tw__live *l = s->l;
    pthread_mutex_lock(&l->lock);
    s->wake = wake;
    s->wake_arg = arg;
    if (!l->ticking && !l->closing && pthread_create(&l->ticker, NULL, ticker_main, l) == 0)
        l->ticking = 1;
    pthread_mutex_unlock(&l->lock);
}

/* Called by the HTTP server: block 1 (a thread per connection) waits here for alerts or the next
 * keep-alive; block 0 (an event loop) answers TW_HTTP_STREAM_WAIT instead and wakes the connection
 * later. */
static long sub_read(void *ctx, char *buf, size_t max, int block)
{
    sub *s = ctx;
    tw__live *l = s->l;
    size_t at = 0;
    if (s->pending.len) {          /* the rest of a large frame first */
        size_t n = s->pending.len - s->pending_off < max ? s->pending.len - s->pending_off : max;
        memcpy(buf, s->pending.data + s->pending_off, n);
        s->pending_off += n;
        if (s->pending_off == s->pending.len) {
            tw_buf_reset(&s->pending);
            s->pending_off = 0;
        }
        s->last_write = mono_ms();
        return (long)n;
    }
    pthread_mutex_lock(&l->lock);
    if (!s->hello) {
        /* Reconnect after 2 s; the hello tells the page which process it talks to. */
        char h[160];
        int n = snprintf(h, sizeof h, "retry: 2000\nevent: hello\ndata: {\"epoch\":\"%s\",\"next\":%llu}\n\n",
                         l->epoch, (unsigned long long)l->next);
        at += put(buf, max, at, h, (size_t)n);
        s->hello = 1;
    }
    while (!l->closing && s->cursor >= l->next && !at) {
        int64_t due = s->last_write + PING_EVERY_MS;
        if (mono_ms() >= due)
            break;
        if (!block && s->wake) {
            s->parked = 1;
            pthread_mutex_unlock(&l->lock);
            return TW_HTTP_STREAM_WAIT;
        }
        struct timespec ts = {(time_t)(due / 1000), (long)(due % 1000) * 1000000L};
        int r = pthread_cond_timedwait(&l->cond, &l->lock, &ts);
        if (r && r != ETIMEDOUT && r != EINTR)
            break;
    }
    if (l->closing) {
        pthread_mutex_unlock(&l->lock);
        return TW_HTTP_STREAM_END;
    }
    if (s->cursor < l->first) {
        char g[96];
        int n = snprintf(g, sizeof g, "event: gap\ndata: {\"missed\":%llu}\n\n",
                         (unsigned long long)(l->first - s->cursor));
        size_t w = put(buf, max, at, g, (size_t)n);
        if (!w) {
            pthread_mutex_unlock(&l->lock);
            return (long)at;
        }
        at += w;
        s->cursor = l->first;
    }
    while (s->cursor < l->next) {
        const frame *f = &l->ring[s->cursor % TW_WEB_LIVE_RING];
        size_t w = put(buf, max, at, f->text, f->len);
        if (!w) {
            if (!at) {             /* larger than the whole buffer: keep a copy and send it in parts */
                tw_buf_reset(&s->pending);
                if (tw__buf_append(&s->pending, f->text, f->len) == TW_OK) {
                    size_t n = max;
                    memcpy(buf, f->text, n);
                    s->pending_off = n;
                    at = n;
                }
                s->cursor++;
            }
            break;
        }
        at += w;
        s->cursor++;
    }
    pthread_mutex_unlock(&l->lock);
    if (!at)                       /* nothing for 15 s: a comment keeps proxies and the page sure we live */
        at += put(buf, max, at, ": ping\n\n", 8);
    s->last_write = mono_ms();
    return (long)at;
}

static void sub_release(void *ctx)
{
    sub *s = ctx;
    pthread_mutex_lock(&s->l->lock);
    s->l->clients--;
    s->l->subs[s->slot] = NULL;
    pthread_mutex_unlock(&s->l->lock);
    tw__buf_free(&s->pending);
    free(s);
}

/* Where a (re)connecting stream starts: after its Last-Event-ID when that is of this process, else
 * the last `backlog` alerts (at most the ring). */
static uint64_t start_at(tw__live *l, const tw_http_req *req)
{
    const char *last = tw__http_req_header(req, "Last-Event-ID");
    char qbuf[64];
    if (!last)
        last = tw__web_query(req, "last", qbuf, sizeof qbuf);
    size_t el = strlen(l->epoch);
    if (last && strncmp(last, l->epoch, el) == 0 && last[el] == '-') {
        char *end;
        unsigned long long seq = strtoull(last + el + 1, &end, 10);
        if (!*end && seq < l->next)
            return seq + 1;
    }
    if (last)                      /* a previous process's id: everything since this one started */
        return l->first;
    char bbuf[16];
    const char *bl = tw__web_query(req, "backlog", bbuf, sizeof bbuf);
    unsigned long long backlog = bl ? strtoull(bl, NULL, 10) : 0;
    if (backlog > TW_WEB_LIVE_RING)
        backlog = TW_WEB_LIVE_RING;
    return l->next - l->first > backlog ? l->next - backlog : l->first;
}

void tw__live_stream(tw__live *l, const tw_http_req *req, tw_http_resp *resp)
{
    pthread_mutex_lock(&l->lock);
    if (l->clients >= TW_WEB_SSE_CLIENTS_MAX || l->closing) {
        pthread_mutex_unlock(&l->lock);
        tw__web_error(resp, 503, "too many live streams are open");
        tw__http_resp_header(resp, "Retry-After", "5");
        return;
    }
    sub *s = calloc(1, sizeof *s);
    if (!s) {
        pthread_mutex_unlock(&l->lock);
        tw__web_error(resp, 500, "out of memory");
        return;
    }
    s->l = l;
    s->cursor = start_at(l, req);
    s->last_write = mono_ms();
    tw__buf_init(&s->pending, TW_WEB_LIVE_EVENT_MAX * 2);
    for (s->slot = 0; l->subs[s->slot]; s->slot++)
        ;                          /* a free slot exists: clients < TW_WEB_SSE_CLIENTS_MAX */
    l->subs[s->slot] = s;
    l->clients++;
    pthread_mutex_unlock(&l->lock);
    resp->status = 200;
    resp->content_type = "text/event-stream; charset=utf-8";
    tw__http_resp_header(resp, "X-Accel-Buffering", "no");
    resp->stream = (tw_http_stream){s, sub_read, sub_set_waker, sub_release};
}
