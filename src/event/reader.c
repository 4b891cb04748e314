/* event/reader.c: events out of JSON lines, {"Records":[...]} files and JSON arrays. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/gunzip.h"
#include "event/input.h"
#include "json/skip.h"
#include "trailwatch/event.h"

struct tw_event_reader {
    tw_limits lim;
    tw_input in;
    int fd, own_fd;
    int of_memory;              /* made by tw_event_reader_buffer: its buffers are the input */
    int detected;
    tw_event_format fmt;
    int input_done;
    tw_status pending;          /* an input error to report once the buffered events are out */
    tw_error pending_err;

    /* JSON lines */
    char *buf;
    size_t len, off, cap;
    unsigned long line, count;
    int skipping;               /* inside a line that was too long */

    /* documents */
    tw_buf doc;
    const char *p, *end, *line_pos;
    unsigned long doc_line, index;
    int doc_state;              /* 0 before the array, 1 in it, 2 after it, 3 done */
};

tw_status tw_event_reader_fd(int fd, const tw_limits *lim, tw_event_reader **out, tw_error *err)
{
    tw_event_reader *r = calloc(1, sizeof *r);
    if (!r)
        return tw__err(err, TW_ENOMEM, "out of memory opening input");
    if (lim)
        r->lim = *lim;
    else
        tw_limits_default(&r->lim);
    r->fd = fd;
    r->cap = r->lim.line_max + TW_INPUT_CHUNK;
    if (!(r->buf = malloc(r->cap + 1))) {
        free(r);
        return tw__err(err, TW_ENOMEM, "out of memory opening input");
    }
    tw__input_init(&r->in, fd);
    tw__buf_init(&r->doc, r->lim.file_max);
    *out = r;
    return TW_OK;
}

tw_status tw_event_reader_open(const char *path, const tw_limits *lim, tw_event_reader **out, tw_error *err)
{
    *out = NULL;
    int fd = 0;
    if (strcmp(path, "-") != 0) {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return tw__err(err, TW_EIO, "%s: %s", path, strerror(errno));
    }
    tw_status rc = tw_event_reader_fd(fd, lim, out, err);
    if (rc) {
        if (fd)
            close(fd);
        return rc;
    }
    (*out)->own_fd = fd != 0;
    return TW_OK;
}

/* A document buffer above this is freed rather than kept for the next file (a large file once should
 * not hold its size for the rest of the run). */
#define KEEP_DOC_MAX (4u << 20)

tw_status tw_event_reader_reopen(tw_event_reader *r, const char *path, tw_error *err)
{
    if (r->of_memory)
        return tw__err(err, TW_EINVAL, "a reader of memory cannot read %s", path);
    int fd = 0;
    if (strcmp(path, "-") != 0) {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return tw__err(err, TW_EIO, "%s: %s", path, strerror(errno));
    }
    tw_limits lim = r->lim;
    char *buf = r->buf;
    size_t cap = r->cap;
    tw_buf doc = r->doc;
    unsigned char *raw = r->in.raw;
    r->in.raw = NULL;
    tw__input_free(&r->in);
    if (r->own_fd)
        close(r->fd);
    if (doc.cap > KEEP_DOC_MAX) {
        tw__buf_free(&doc);
        tw__buf_init(&doc, lim.file_max);
    }
    tw_buf_reset(&doc);
    memset(r, 0, sizeof *r);
    r->lim = lim;
    r->buf = buf;
    r->cap = cap;
    r->doc = doc;
    tw__input_init(&r->in, fd);
    r->in.raw = raw;
    r->fd = fd;
    r->own_fd = fd != 0;
    return TW_OK;
}

void tw_event_reader_free(tw_event_reader *r)
{
    if (!r)
        return;
    tw__input_free(&r->in);
    if (r->own_fd)
        close(r->fd);
    free(r->buf);
    tw__buf_free(&r->doc);
    free(r);
}

size_t tw_event_reader_bytes(const tw_event_reader *r) { return r->in.total; }

/* Reads more input after the unconsumed bytes of the line buffer. */
static void read_more(tw_event_reader *r)
{
    if (r->off > 0) {
        memmove(r->buf, r->buf + r->off, r->len - r->off);
        r->len -= r->off;
        r->off = 0;
    }
    size_t got = 0;
    tw_status rc = tw__input_read(&r->in, r->buf + r->len, r->cap - r->len, &got, &r->pending_err);
    r->len += got;   /* also on an error: what was decoded before corrupt gzip data is events too */
    if (rc) {
        r->pending = rc;
        r->input_done = 1;
    } else if (got == 0) {
        r->input_done = 1;
    }
    if (r->input_done && r->own_fd) { /* nothing more is read: a reader kept for reopen holds no file */
        close(r->fd);
        r->own_fd = 0;
    }
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return 0;
    return 1;
}

/* Whether the bytes read so far decide the format: the first token, and after a '{' enough of the
 * next one to tell "Records" from anything else. */
static int format_known(const char *p, const char *end)
{
    p = tw__lex_ws(p, end);
    if (p >= end)
        return 0;
    if (*p != '{')
        return 1;
    p = tw__lex_ws(p + 1, end);
    size_t n = end - p < 9 ? (size_t)(end - p) : 9;
    return n == 9 || (n && memcmp(p, "\"Records\"", n) != 0);
}

/* Looks at the first bytes: '[' or {"Records" start a document, anything else is JSON lines. It reads
 * until they decide (or the buffer is full, or the input ends), not a fixed count: the format must not
 * depend on how read(2) splits the input, nor on the length of leading whitespace. */
static void detect(tw_event_reader *r)
{
    r->detected = 1;
    while (!r->input_done && r->len < r->cap && !format_known(r->buf, r->buf + r->len))
        read_more(r);
    const char *p = tw__lex_ws(r->buf, r->buf + r->len), *end = r->buf + r->len;
    if (p < end && *p == '[') {
        r->fmt = TW_FORMAT_ARRAY;
    } else if (p < end && *p == '{') {
        p = tw__lex_ws(p + 1, end);
        if (end - p >= 9 && memcmp(p, "\"Records\"", 9) == 0)
            r->fmt = TW_FORMAT_RECORDS;
    }
    if (r->fmt == TW_FORMAT_LINES)
        return;
    /* A document: take all of it (bounded by file_max). */
    if (tw__buf_append(&r->doc, r->buf, r->len)) {
        r->pending = tw__err(&r->pending_err, TW_ETOOBIG, "input larger than %zu bytes", r->lim.file_max);
        r->doc_state = 3;
        return;
    }
    while (!r->input_done) {
        r->len = r->off = 0;
        read_more(r);
        if (tw__buf_append(&r->doc, r->buf, r->len)) {
            r->pending = tw__err(&r->pending_err, TW_ETOOBIG, "input larger than %zu bytes", r->lim.file_max);
            r->doc_state = 3;
            return;
        }
    }
    r->p = r->line_pos = r->doc.data ? r->doc.data : "";
    r->end = r->p + r->doc.len;
    r->doc_line = 1;
}

static tw_status next_line(tw_event_reader *r, const char **json, size_t *len, tw_event_where *where,
                           tw_error *err)
{
    for (;;) {
        char *start = r->buf + r->off;
        char *nl = memchr(start, '\n', r->len - r->off);
        if (r->skipping) {
            if (!nl) {
                r->off = r->len;
                if (r->input_done)
                    goto end;
                read_more(r);
                continue;
            }
            r->off = (size_t)(nl + 1 - r->buf);
            r->skipping = 0;
            continue;
        }
        size_t n;
        if (nl) {
            n = (size_t)(nl - start);
            r->off += n + 1;
        } else if (r->input_done) {
            if (r->off >= r->len)
                goto end;
            n = r->len - r->off;
            r->off = r->len;
        } else if (r->len - r->off > r->lim.line_max) {
            r->line++;
            where->line = r->line;
            where->index = r->count;
            r->skipping = 1;
            r->off = r->len;
            return tw__err(err, TW_ETOOBIG, "line longer than the limit of %zu bytes (skipped)", r->lim.line_max);
        } else {
            read_more(r);
            continue;
        }
        r->line++;
        if (n > r->lim.line_max) {
            where->line = r->line;
            where->index = r->count;
            return tw__err(err, TW_ETOOBIG, "line longer than the limit of %zu bytes (skipped)", r->lim.line_max);
        }
        if (n && start[n - 1] == '\r')
            n--;
        if (is_blank(start, n))
            continue;
        where->line = r->line;
        where->index = r->count++;
        *json = start;
        *len = n;
        return TW_OK;
    }
end:
    *json = NULL;
    if (r->pending) {
        tw_status rc = r->pending;
        r->pending = TW_OK;
        if (err)
            *err = r->pending_err;
        where->line = r->line;
        return rc;
    }
    return TW_OK;
}

static void advance_lines(tw_event_reader *r, const char *to)
{
    for (const char *q = r->line_pos; q < to; q++) {
        q = memchr(q, '\n', (size_t)(to - q));
        if (!q)
            break;
        r->doc_line++;
    }
    r->line_pos = to;
}

static tw_status doc_error(tw_event_reader *r, const tw_lex_err *e, tw_event_where *where, tw_error *err)
{
    advance_lines(r, e->at);
    r->doc_state = 3;
    where->line = r->doc_line;
    return tw__err(err, e->code, "line %lu: %s (the rest of the document is skipped)", r->doc_line, e->why);
}

static tw_status next_element(tw_event_reader *r, const char **json, size_t *len, tw_event_where *where,
                              tw_error *err)
{
    tw_lex_err e;
    unsigned depth = r->lim.json_depth > 2 ? r->lim.json_depth - 2 : 0;
    where->format = r->fmt;
    if (r->doc_state == 0) {
        r->p = tw__lex_ws(r->p, r->end);
        if (r->fmt == TW_FORMAT_RECORDS) {
            /* {"Records": [ ... — other members before or after are validated and ignored */
            r->p = tw__lex_ws(r->p + 1, r->end);
            for (;;) {
                int escaped = 0;
                if (r->p >= r->end || *r->p != '"')
                    return doc_error(r, &(tw_lex_err){"expected a string key in object", TW_EJSON, r->p},
                                     where, err);
                const char *close = tw__lex_string(r->p + 1, r->end, &escaped, &e);
                if (!close)
                    return doc_error(r, &e, where, err);
                int is_records = close - r->p - 1 == 7 && memcmp(r->p + 1, "Records", 7) == 0;
                const char *q = tw__lex_ws(close + 1, r->end);
                if (q >= r->end || *q != ':')
                    return doc_error(r, &(tw_lex_err){"expected ':' after object key", TW_EJSON, q}, where, err);
                q = tw__lex_ws(q + 1, r->end);
                if (is_records && q < r->end && *q == '[') {
                    r->p = q;
                    break;
                }
                if (!(q = tw__json_skip(q, r->end, depth, &e)))
                    return doc_error(r, &e, where, err);
                q = tw__lex_ws(q, r->end);
                if (q < r->end && *q == ',') {
                    r->p = tw__lex_ws(q + 1, r->end);
                    continue;
                }
                return doc_error(r, &(tw_lex_err){"no \"Records\" array in the CloudTrail log file", TW_EEVENT, q},
                                 where, err);
            }
        }
        r->p = tw__lex_ws(r->p + 1, r->end); /* past '[' */
        r->doc_state = 1;
        if (r->p < r->end && *r->p == ']') {
            r->p++;
            r->doc_state = 2;
        }
    }
    if (r->doc_state == 1) {
        const char *start = r->p;
        const char *q = tw__json_skip(start, r->end, depth, &e);
        if (!q)
            return doc_error(r, &e, where, err);
        advance_lines(r, start);
        where->line = r->doc_line;
        where->index = r->index++;
        *json = start;
        *len = (size_t)(q - start);
        q = tw__lex_ws(q, r->end);
        if (q < r->end && *q == ',') {
            r->p = tw__lex_ws(q + 1, r->end);
        } else if (q < r->end && *q == ']') {
            r->p = q + 1;
            r->doc_state = 2;
        } else {
            r->p = q;
            r->doc_state = 4; /* report the break after this element */
        }
        return TW_OK;
    }
    if (r->doc_state == 4)
        return doc_error(r, &(tw_lex_err){"expected ',' or ']' in array", TW_EJSON, r->p}, where, err);
    if (r->doc_state == 2) {
        r->doc_state = 3;
        /* The rest: closing of the Records object (other members allowed), then nothing. */
        const char *q = tw__lex_ws(r->p, r->end);
        if (r->fmt == TW_FORMAT_RECORDS) {
            while (q < r->end && *q == ',') {
                q = tw__lex_ws(q + 1, r->end);
                int escaped = 0;
                const char *close = q < r->end && *q == '"' ? tw__lex_string(q + 1, r->end, &escaped, &e) : NULL;
                if (!close)
                    return doc_error(r, &(tw_lex_err){"expected a string key in object", TW_EJSON, q}, where, err);
                q = tw__lex_ws(close + 1, r->end);
                if (q >= r->end || *q != ':')
                    return doc_error(r, &(tw_lex_err){"expected ':' after object key", TW_EJSON, q}, where, err);
                if (!(q = tw__json_skip(tw__lex_ws(q + 1, r->end), r->end, depth, &e)))
                    return doc_error(r, &e, where, err);
                q = tw__lex_ws(q, r->end);
            }
            if (q >= r->end || *q != '}')
                return doc_error(r, &(tw_lex_err){"expected '}' closing the CloudTrail log file", TW_EJSON, q},
                                 where, err);
            q = tw__lex_ws(q + 1, r->end);
        }
        if (q != r->end)
            return doc_error(r, &(tw_lex_err){"unexpected data after the JSON document", TW_EJSON, q}, where, err);
    }
    *json = NULL;
    if (r->pending) {
        tw_status rc = r->pending;
        r->pending = TW_OK;
        if (err)
            *err = r->pending_err;
        return rc;
    }
    return TW_OK;
}

tw_status tw_event_reader_next(tw_event_reader *r, const char **json, size_t *len, tw_event_where *where,
                               tw_error *err)
{
    *json = NULL;
    *len = 0;
    memset(where, 0, sizeof *where);
    if (!r->detected)
        detect(r);
    where->format = r->fmt;
    if (r->fmt == TW_FORMAT_LINES)
        return next_line(r, json, len, where, err);
    return next_element(r, json, len, where, err);
}

/* An in-memory input needs no read loop: the reader is set up as if the whole input had been read
 * (input_done), so next_line and next_element never call read_more, and every event's text points
 * into storage that lives until the reader is freed. gzip is undone up front, all or nothing. */
tw_status tw_event_reader_buffer(const char *buf, size_t len, const tw_limits *lim, tw_event_reader **out,
                                 tw_error *err)
{
    *out = NULL;
    tw_limits l;
    if (lim)
        l = *lim;
    else
        tw_limits_default(&l);
    tw_buf data;
    tw__buf_init(&data, l.file_max);
    tw_status rc;
    if (tw__is_gzip(buf, len))
        rc = tw__gunzip(buf, len, l.file_max, &data, err);
    else if ((rc = tw__buf_append(&data, buf, len)))
        rc = rc == TW_ETOOBIG ? tw__err(err, rc, "input larger than %zu bytes", l.file_max)
                              : tw__err(err, rc, "out of memory reading input");
    if (rc) {
        tw__buf_free(&data);
        return rc;
    }
    tw_event_reader *r = calloc(1, sizeof *r);
    if (!r) {
        tw__buf_free(&data);
        return tw__err(err, TW_ENOMEM, "out of memory opening input");
    }
    r->lim = l;
    r->fd = -1;
    tw__input_init(&r->in, -1);
    r->input_done = r->detected = 1;
    size_t n = 0;
    char *text = tw__buf_detach(&data, &n);
    if (!text) {
        free(r);
        return tw__err(err, TW_ENOMEM, "out of memory opening input");
    }
    r->in.total = n; /* all of it is read already (tw_event_reader_bytes) */
    /* The same detection as detect(): '[' or {"Records" start a document, anything else is lines. */
    const char *end = text + n, *p = tw__lex_ws(text, end);
    if (p < end && *p == '[') {
        r->fmt = TW_FORMAT_ARRAY;
    } else if (p < end && *p == '{') {
        p = tw__lex_ws(p + 1, end);
        if (end - p >= 9 && memcmp(p, "\"Records\"", 9) == 0)
            r->fmt = TW_FORMAT_RECORDS;
    }
    r->of_memory = 1;
    if (r->fmt == TW_FORMAT_LINES) {
        r->buf = text;
        r->len = r->cap = n;
        tw__buf_init(&r->doc, l.file_max);
    } else {
        r->doc = (tw_buf){text, n, n + 1, l.file_max, TW_OK};
        r->p = r->line_pos = text;
        r->end = text + n;
        r->doc_line = 1;
    }
    *out = r;
    return TW_OK;
}
