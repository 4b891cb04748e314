/*
 * tests/unit/fake_engine.h: a fake engine for the sources' unit tests. Include it in exactly one test
 * file per test binary: it defines the engine functions that the sources call.
 *
 * Why this links: the test's object comes before libtrailwatch.a, so these definitions satisfy the
 * sources' references and the archive's engine object is never pulled in. That holds as long as
 * nothing linked into the test references another symbol of the engine's object: sources may call
 * only tw__engine_submit, tw__engine_file_done and tw__engine_stopping (the metrics registry, the log
 * and the handlers' HTTP helpers are self-contained objects and are used for real).
 *
 * The fake records every submitted item (text copied, kind, source) and every file mark; it validates
 * items as JSON objects when asked (rejecting the others, as the engine would), and calls an item a
 * duplicate when its text holds "dup":1. It can be made to fail (as a full disk would) or to stop.
 */
#ifndef TW_FAKE_ENGINE_H
#define TW_FAKE_ENGINE_H

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "trailwatch/json.h"

typedef struct fake_item {
    char *json;
    size_t len;
    tw_event_kind kind;
} fake_item;

typedef struct fake_mark {
    char *path;
    int64_t size, mtime;
    size_t items_before;        /* items submitted up to the file's last record */
    size_t commit;              /* which submit marked it (1-based) */
    size_t stream;              /* which submitting thread marked it (0-based, in order of first submit) */
    size_t stream_before;       /* items that thread submitted up to the file's last record */
} fake_mark;

/* Sources may submit from several threads (the folder's submitters): each thread's items in order. */
#define FAKE_STREAMS 16

struct tw_engine {
    pthread_mutex_t lock;
    int validate;               /* parse each item; reject what is not a JSON object */
    int keep_text;              /* copy item text (off for the big folder run) */
    int fail;                   /* submit fails as a whole */
    int stopping;
    size_t submits, max_batch, nitems;
    fake_item *items;
    size_t capitems;
    fake_mark *marks;
    size_t nmarks, capmarks;
    pthread_t stream_thread[FAKE_STREAMS];
    size_t stream_items[FAKE_STREAMS], nstreams;
    char last_source[32];
};

static inline void fake_init(tw_engine *e, int validate)
{
    memset(e, 0, sizeof *e);
    pthread_mutex_init(&e->lock, NULL);
    e->validate = validate;
    e->keep_text = 1;
}

static inline void fake_reset_items(tw_engine *e)
{
    pthread_mutex_lock(&e->lock);
    for (size_t i = 0; i < e->nitems && e->items; i++)
        free(e->items[i].json);
    e->nitems = e->submits = e->max_batch = e->nstreams = 0;
    pthread_mutex_unlock(&e->lock);
}

static inline void fake_free(tw_engine *e)
{
    fake_reset_items(e);
    free(e->items);
    for (size_t i = 0; i < e->nmarks; i++)
        free(e->marks[i].path);
    free(e->marks);
    pthread_mutex_destroy(&e->lock);
}

static inline size_t fake_count(tw_engine *e)
{
    pthread_mutex_lock(&e->lock);
    size_t n = e->nitems;
    pthread_mutex_unlock(&e->lock);
    return n;
}

tw_status tw__engine_submit(tw_engine *e, const tw_ingest_item *items, size_t n, const tw_ingest_opts *o,
                           tw_ingest_result *results, tw_error *err)
{
    pthread_mutex_lock(&e->lock);
    if (e->fail) {
        pthread_mutex_unlock(&e->lock);
        if (err) {
            err->code = TW_EDB;
            strcpy(err->msg, "fake: disk full");
        }
        return TW_EDB;
    }
    e->submits++;
    size_t k = 0;
    while (k < e->nstreams && !pthread_equal(e->stream_thread[k], pthread_self()))
        k++;
    if (k == e->nstreams && k < FAKE_STREAMS) {
        e->stream_thread[k] = pthread_self();
        e->stream_items[k] = 0;
        e->nstreams++;
    }
    if (k == FAKE_STREAMS)
        abort(); /* more submitting threads than a source has */
    e->stream_items[k] += n;
    if (n > e->max_batch)
        e->max_batch = n;
    snprintf(e->last_source, sizeof e->last_source, "%s", o && o->source ? o->source : "");
    for (size_t i = 0; i < n; i++) {
        tw_ingest_result *r = &results[i];
        memset(r, 0, sizeof *r);
        if (e->validate) {
            tw_json_doc *doc = NULL;
            tw_error perr;
            if (tw_json_parse(items[i].json, items[i].len, NULL, &doc, &perr)) {
                r->status = perr.code;
                snprintf(r->error, sizeof r->error, "%s", perr.msg);
            } else if (tw_json_typeof(tw_json_root(doc)) != TW_JSON_OBJECT) {
                r->status = TW_EEVENT;
                snprintf(r->error, sizeof r->error, "an event must be a JSON object");
            }
            tw_json_doc_free(doc);
        }
        if (!r->status && memmem(items[i].json, items[i].len, "\"dup\":1", 7))
            r->duplicate = 1;
        if (e->keep_text) {
            if (e->nitems == e->capitems) {
                e->capitems = e->capitems ? e->capitems * 2 : 1024;
                e->items = realloc(e->items, e->capitems * sizeof *e->items);
            }
            fake_item *it = &e->items[e->nitems];
            it->json = malloc(items[i].len + 1);
            memcpy(it->json, items[i].json, items[i].len);
            it->json[items[i].len] = '\0';
            it->len = items[i].len;
            it->kind = items[i].kind;
        }
        e->nitems++;
    }
    if (o && o->file_path) {
        if (e->nmarks == e->capmarks) {
            e->capmarks = e->capmarks ? e->capmarks * 2 : 256;
            e->marks = realloc(e->marks, e->capmarks * sizeof *e->marks);
        }
        e->marks[e->nmarks++] = (fake_mark){strdup(o->file_path), o->file_size, o->file_mtime, e->nitems, e->submits,
                                            k, e->stream_items[k]};
    }
    /* Several files in one call (the folder source): in order, each one's records before the next's. */
    size_t after = 0;
    for (size_t i = 0; o && i < o->nfiles; i++)
        after += (size_t)o->files[i].records;
    for (size_t i = 0; o && i < o->nfiles; i++) {
        if (e->nmarks == e->capmarks) {
            e->capmarks = e->capmarks ? e->capmarks * 2 : 256;
            e->marks = realloc(e->marks, e->capmarks * sizeof *e->marks);
        }
        after -= (size_t)o->files[i].records;
        e->marks[e->nmarks++] = (fake_mark){strdup(o->files[i].path), o->files[i].size, o->files[i].mtime,
                                            e->nitems - after, e->submits, k, e->stream_items[k] - after};
    }
    pthread_mutex_unlock(&e->lock);
    return TW_OK;
}

int tw__engine_file_done(tw_engine *e, const char *path, int64_t size, int64_t mtime)
{
    pthread_mutex_lock(&e->lock);
    int done = 0;
    for (size_t i = 0; i < e->nmarks && !done; i++)
        done = strcmp(e->marks[i].path, path) == 0 && e->marks[i].size == size && e->marks[i].mtime == mtime;
    pthread_mutex_unlock(&e->lock);
    return done;
}

int tw__engine_stopping(const tw_engine *e) { return __atomic_load_n(&e->stopping, __ATOMIC_RELAXED); }

#endif
