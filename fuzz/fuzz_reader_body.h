/*
 * fuzz/fuzz_reader_body.h: the checks of fuzz_reader (see fuzz_common.h for how bodies are shared).
 *
 * Input: one control byte, then the bytes of a file. The control byte picks
 *   bits 0-1  the encoding: 0 the bytes as they are, 1 gzip (zlib), 2 gzip cut short (where: bits 5-7),
 *             3 gzip followed by a second gzip member of the same bytes;
 *   bits 2-4  the delivery: 0 one memfd (read(2) returns everything), else a SOCK_SEQPACKET socket
 *             fed by a thread in packets of 1, 2, 3, 7, 64, 4093 or 4097 bytes (the first one a
 *             single byte), so that read(2) returns short, deterministic pieces.
 * Everything is read with tw_event_reader_fd under small limits (line_max 4096, file_max 1 MiB,
 * json_depth 64). Checks:
 *   1. Reading ends (bounded number of calls) and every event is non-empty, holds no newline in JSON
 *      lines mode, and is at most line_max bytes (lines) or is valid JSON (document elements).
 *   2. The events and errors do not depend on how the bytes arrive: any chunked delivery gives the
 *      same sequence as one memfd; gzip gives the same sequence as the plain bytes (unless the plain
 *      bytes themselves start with the gzip magic); two gzip members give the events of the text
 *      twice concatenated.
 *   3. A document (array or {"Records": [...]}) that is not JSON gives at least one error; a valid
 *      one read without error gives exactly the array's items.
 */
#ifndef TW_FUZZ_READER_BODY_H
#define TW_FUZZ_READER_BODY_H

#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "common/buf.h"
#include "fuzz_common.h"
#include "json/json_int.h"
#include "trailwatch/event.h"
#include "trailwatch/json.h"

static tw_limits fz_reader_lim;

FUZZ_FN void fuzz_reader_init(void)
{
    tw_limits_default(&fz_reader_lim);
    fz_reader_lim.line_max = 4096;
    fz_reader_lim.file_max = 1u << 20;
    fz_reader_lim.json_depth = 64;
}

FUZZ_FN void fuzz_reader_fini(void) {}

/* gzip of [p, p+n) appended to out. */
FUZZ_FN int fuzz_reader_gzip(tw_buf *out, const uint8_t *p, size_t n)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return 0;
    size_t bound = deflateBound(&z, (uLong)n) + 32;
    int ok = tw__buf_reserve(out, bound) == TW_OK;
    if (ok) {
        z.next_in = (Bytef *)(uintptr_t)p;
        z.avail_in = (uInt)n;
        z.next_out = (Bytef *)out->data + out->len;
        z.avail_out = (uInt)bound;
        ok = deflate(&z, Z_FINISH) == Z_STREAM_END;
        if (ok)
            out->len += bound - z.avail_out;
    }
    deflateEnd(&z);
    return ok;
}

typedef struct fz_feed {
    int fd;
    const uint8_t *p;
    size_t n, chunk;
} fz_feed;

FUZZ_FN void *fuzz_reader_feeder(void *arg)
{
    fz_feed *f = arg;
    size_t off = 0, first = 1;
    while (off < f->n) {
        size_t k = first ? 1 : f->chunk;
        first = 0;
        if (k > f->n - off)
            k = f->n - off;
        ssize_t w = send(f->fd, f->p + off, k, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;   /* the reader stopped reading (it hit a limit) */
        off += (size_t)w;
    }
    close(f->fd);
    return NULL;
}

/* One event or error as the reader gave it. */
typedef struct fz_item {
    tw_status rc;
    size_t off, len;            /* event text in the log's text buffer */
    unsigned long line, index;
    int format;
} fz_item;

typedef struct fz_log {
    tw_buf text;                /* the events' bytes, concatenated */
    fz_item *items;
    size_t n, cap;
} fz_log;

FUZZ_FN void fuzz_reader_log_free(fz_log *l)
{
    tw__buf_free(&l->text);
    free(l->items);
    memset(l, 0, sizeof *l);
}

FUZZ_FN int fuzz_reader_log_add(fz_log *l, fz_item it, const char *json)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        fz_item *p = realloc(l->items, cap * sizeof *p);
        if (!p)
            return 0;
        l->items = p;
        l->cap = cap;
    }
    it.off = l->text.len;
    if (json && it.len && tw__buf_append(&l->text, json, it.len))
        return 0;
    l->items[l->n++] = it;
    return 1;
}

/* Reads everything from fd into log, checking each event on the way. */
FUZZ_FN void fuzz_reader_drain(int fd, fz_log *log)
{
    tw_event_reader *r = NULL;
    tw_error err = {0};
    tw_status rc = tw_event_reader_fd(fd, &fz_reader_lim, &r, &err);
    FUZZ_CHECK(rc == TW_OK, "tw_event_reader_fd: %s", err.msg);
    if (rc)
        return;
    tw_limits jl = fz_reader_lim;
    jl.event_max = jl.file_max;
    size_t calls = 0, max_calls = 3 * (size_t)fz_reader_lim.file_max + 16;
    for (;;) {
        const char *json = NULL;
        size_t len = 0;
        tw_event_where w;
        rc = tw_event_reader_next(r, &json, &len, &w, &err);
        if (++calls > max_calls) {
            FUZZ_CHECK(0, "tw_event_reader_next does not come to an end (%zu calls)", calls);
            break;
        }
        if (rc == TW_OK && !json)
            break;
        fz_item it = {rc, 0, rc == TW_OK ? len : 0, w.line, w.index, (int)w.format};
        if (rc != TW_OK) {
            FUZZ_CHECK(err.code == rc && err.msg[0], "error %d without a message", rc);
            FUZZ_CHECK(json == NULL, "an error with an event");
        } else {
            FUZZ_CHECK(len > 0, "an empty event");
            FUZZ_CHECK(w.line >= 1, "event without a line number");
            if (w.format == TW_FORMAT_LINES) {
                FUZZ_CHECK(len <= fz_reader_lim.line_max, "a line of %zu bytes", len);
                FUZZ_CHECK(!memchr(json, '\n', len), "a line holds a newline");
            } else {
                tw_json_doc *d = NULL;
                tw_error e2;
                tw_status prc = tw_json_parse(json, len, &jl, &d, &e2);
                FUZZ_CHECK(prc == TW_OK, "document element %lu is not JSON: %s\n    %.200s", w.index,
                           e2.msg, json);
                tw_json_doc_free(d);
            }
        }
        if (!fuzz_reader_log_add(log, it, json))
            break;
    }
    FUZZ_CHECK(tw_event_reader_bytes(r) <= 4 * (size_t)fz_reader_lim.file_max + (1u << 20),
               "%zu bytes consumed", tw_event_reader_bytes(r));
    tw_event_reader_free(r);
}

/* Reads bytes delivered whole (chunk 0: memfd) or in packets of `chunk` bytes. */
FUZZ_FN void fuzz_reader_read(const uint8_t *p, size_t n, size_t chunk, fz_log *log)
{
    if (chunk == 0) {
        int fd = memfd_create("fuzz_reader", MFD_CLOEXEC);
        FUZZ_SETUP(fd >= 0, "memfd_create");
        size_t off = 0;
        while (off < n) {
            ssize_t w = write(fd, p + off, n - off);
            FUZZ_SETUP(w > 0, "write to memfd");
            off += (size_t)w;
        }
        FUZZ_SETUP(lseek(fd, 0, SEEK_SET) == 0, "lseek");
        fuzz_reader_drain(fd, log);
        close(fd);
        return;
    }
    int sv[2];
    FUZZ_SETUP(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    fz_feed f = {sv[1], p, n, chunk};
    pthread_t t;
    FUZZ_SETUP(pthread_create(&t, NULL, fuzz_reader_feeder, &f) == 0, "pthread_create");
    fuzz_reader_drain(sv[0], log);
    shutdown(sv[0], SHUT_RDWR);   /* unblocks the feeder if the reader stopped early */
    pthread_join(t, NULL);
    close(sv[0]);
}

/* Two logs hold the same events and errors (messages aside: they may count bytes differently). */
FUZZ_FN void fuzz_reader_same(const fz_log *a, const fz_log *b, const char *what)
{
    size_t n = a->n < b->n ? a->n : b->n;
    for (size_t i = 0; i < n; i++) {
        const fz_item *x = &a->items[i], *y = &b->items[i];
        int same = x->rc == y->rc && x->len == y->len && x->format == y->format && x->line == y->line &&
                   x->index == y->index &&
                   (x->len == 0 || memcmp(a->text.data + x->off, b->text.data + y->off, x->len) == 0);
        FUZZ_CHECK(same, "%s: item %zu differs: rc %d/%d, len %zu/%zu, line %lu/%lu, index %lu/%lu", what, i,
                   x->rc, y->rc, x->len, y->len, x->line, y->line, x->index, y->index);
        if (!same)
            return;
    }
    FUZZ_CHECK(a->n == b->n, "%s: %zu items, against %zu", what, a->n, b->n);
}

/* A document read from the plain bytes p: if they are not JSON the reader must have said so; if
 * they are and it said nothing, its events are the items of the array (ARRAY) or of the first
 * "Records" member holding an array (RECORDS), in order. */
FUZZ_FN void fuzz_reader_document(const uint8_t *p, size_t n, const fz_log *log)
{
    if (!log->n || log->items[0].format == TW_FORMAT_LINES || n > fz_reader_lim.file_max)
        return;
    size_t errors = 0;
    for (size_t i = 0; i < log->n; i++)
        errors += log->items[i].rc != TW_OK;
    tw_limits jl = fz_reader_lim;
    jl.event_max = fz_reader_lim.file_max;
    tw_json_doc *doc = NULL;
    tw_error err = {0};
    tw_status rc = tw_json_parse((const char *)p, n, &jl, &doc, &err);
    if (rc != TW_OK) {
        FUZZ_CHECK(errors > 0, "the reader takes a document that is not JSON (%s) without an error", err.msg);
        return;
    }
    const tw_json *root = tw_json_root(doc), *items = NULL;
    if (log->items[0].format == TW_FORMAT_ARRAY) {
        items = root;
    } else {
        for (size_t i = 0; i < tw_json_size(root) && !items; i++) {
            size_t klen = 0;
            const char *k = tw_json_key(root, i, &klen);
            if (klen == 7 && memcmp(k, "Records", 7) == 0 && tw_json_typeof(tw_json_at(root, i)) == TW_JSON_ARRAY)
                items = tw_json_at(root, i);
        }
    }
    if (errors == 0 && items) {
        FUZZ_CHECK(log->n == tw_json_size(items), "%zu events from an array of %zu", log->n, tw_json_size(items));
        for (size_t i = 0; i < log->n && i < tw_json_size(items); i++) {
            const fz_item *it = &log->items[i];
            tw_json_doc *e = NULL;
            if (tw_json_parse(log->text.data + it->off, it->len, &jl, &e, &err) == TW_OK) {
                FUZZ_CHECK(tw__json_equal(tw_json_root(e), tw_json_at(items, i)), "event %zu is not item %zu", i, i);
                tw_json_doc_free(e);
            }
        }
    }
    tw_json_doc_free(doc);
}

FUZZ_FN void fuzz_reader_check(const uint8_t *data, size_t size)
{
    static const size_t chunks[8] = {0, 1, 2, 3, 7, 64, 4093, 4097};
    if (size < 1)
        return;
    unsigned ctl = data[0], enc = ctl & 3, cut = ctl >> 5;
    size_t chunk = chunks[(ctl >> 2) & 7];
    const uint8_t *body = data + 1;
    size_t n = size - 1;
    tw_buf in = TW_BUF_INIT;
    if (enc == 0) {
        FUZZ_SETUP(tw__buf_append(&in, body, n) == TW_OK, "buffer");
    } else {
        FUZZ_SETUP(fuzz_reader_gzip(&in, body, n), "gzip");
        if (enc == 2)
            in.len = in.len * cut / 8;   /* 0..7/8 of the compressed bytes */
        if (enc == 3)
            FUZZ_SETUP(fuzz_reader_gzip(&in, body, n), "gzip");
    }
    fz_log got = {0}, ref = {0};
    fuzz_reader_read((const uint8_t *)(in.data ? in.data : ""), in.len, chunk, &got);
    if (chunk) {
        /* the same bytes in one piece */
        fuzz_reader_read((const uint8_t *)(in.data ? in.data : ""), in.len, 0, &ref);
        fuzz_reader_same(&ref, &got, "chunked delivery");
        fuzz_reader_log_free(&ref);
    }
    int magic = n >= 2 && body[0] == 0x1f && body[1] == 0x8b;
    if (enc == 0 && !magic) {
        fuzz_reader_document(body, n, &got);
    } else if (enc == 1 && !magic) {
        fuzz_reader_read(body, n, 0, &ref);
        fuzz_reader_same(&ref, &got, "gzip against plain");
        fuzz_reader_log_free(&ref);
        fuzz_reader_document(body, n, &got);
    } else if (enc == 3 && !magic && n <= (1u << 19)) {
        tw_buf twice = TW_BUF_INIT;
        FUZZ_SETUP(tw__buf_append(&twice, body, n) == TW_OK && tw__buf_append(&twice, body, n) == TW_OK,
                   "buffer");
        fuzz_reader_read((const uint8_t *)(twice.data ? twice.data : ""), twice.len, 0, &ref);
        fuzz_reader_same(&ref, &got, "two gzip members against the text twice");
        fuzz_reader_log_free(&ref);
        fuzz_reader_document((const uint8_t *)(twice.data ? twice.data : ""), twice.len, &got);
        tw__buf_free(&twice);
    }
    fuzz_reader_log_free(&got);
    tw__buf_free(&in);
}

#endif
