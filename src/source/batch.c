/* source/batch.c: groups a source's events into tw__engine_submit calls and tallies the results. */
#include "source/batch.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/vec.h"
#include "common/utf8.h"
#include "json/json_int.h"

tw_status tw__src_batch_init(tw_src_batch *b, tw_engine *e, tw_metrics *m, const char *source, tw_error *err)
{
    memset(b, 0, sizeof *b);
    b->engine = e;
    b->opts.source = source;
    char label[64];
    b->rejected_metric = tw__metrics_counter(m, TW_METRIC_REJECTED, TW_METRIC_REJECTED_HELP,
                                            tw__metrics_label(label, sizeof label, "source", source));
    b->items = malloc(TW_SRC_BATCH * sizeof *b->items);
    b->where = malloc(TW_SRC_BATCH * sizeof *b->where);
    b->results = malloc(TW_SRC_BATCH * sizeof *b->results);
    if (!b->items || !b->where || !b->results) {
        tw__src_batch_free(b);
        return tw__err(err, TW_ENOMEM, "out of memory for a batch of events");
    }
    return TW_OK;
}

void tw__src_batch_free(tw_src_batch *b)
{
    tw__src_release(b);
    free(b->holds);
    free(b->items);
    free(b->where);
    free(b->results);
    b->holds = NULL;
    b->items = NULL;
    b->where = NULL;
    b->results = NULL;
    b->n = b->capholds = 0;
}

void tw__src_reject(tw_src_batch *b, const tw_event_where *w, const char *why)
{
    b->rejected++;
    tw_count(b->rejected_metric, 1);
    if (b->on_reject)
        b->on_reject(b->ctx, w, why);
}

tw_status tw__src_flush(tw_src_batch *b)
{
    if (b->failed)
        return b->failed;
    if (b->n == 0 && !b->opts.file_path && !b->opts.nfiles)
        return TW_OK;
    size_t n = b->n;
    b->n = 0;
    tw_status rc = tw__engine_submit(b->engine, b->items, n, &b->opts, b->results, &b->err);
    if (rc) {
        /* Nothing of this call counts as accepted; the caller answers with an error (or retries). */
        if (!b->err.msg[0])
            tw__err(&b->err, rc, "the engine could not accept events");
        return b->failed = rc;
    }
    for (size_t i = 0; i < n; i++) {
        const tw_ingest_result *r = &b->results[i];
        if (r->status == TW_OK) {
            b->accepted++;
            b->duplicates += r->duplicate != 0;
        } else {
            tw__src_reject(b, &b->where[i], r->error[0] ? r->error : tw_strerror(r->status));
        }
    }
    return TW_OK;
}

tw_status tw__src_add(tw_src_batch *b, const char *json, size_t len, tw_event_kind kind, const tw_event_where *w)
{
    if (b->failed)
        return b->failed;
    if (b->n == TW_SRC_BATCH) {
        /* A full batch never carries the file mark: only the caller's last flush may. */
        const char *file = b->opts.file_path;
        size_t nfiles = b->opts.nfiles;
        b->opts.file_path = NULL;
        b->opts.nfiles = 0;
        tw_status rc = tw__src_flush(b);
        b->opts.file_path = file;
        b->opts.nfiles = nfiles;
        if (rc)
            return rc;
    }
    b->items[b->n] = (tw_ingest_item){json, len, kind};
    if (w)
        b->where[b->n] = *w;
    else
        memset(&b->where[b->n], 0, sizeof b->where[b->n]);
    b->n++;
    return TW_OK;
}

tw_status tw__src_hold(tw_src_batch *b, void (*release)(void *), void *p, size_t bytes)
{
    if (tw__vec_reserve(&b->holds, &b->capholds, b->nholds, 1, sizeof *b->holds)) {
        release(p);
        return TW_ENOMEM;
    }
    b->holds[b->nholds++] = (tw_src_hold){release, p};
    b->held_bytes += bytes;
    return TW_OK;
}

void tw__src_release(tw_src_batch *b)
{
    for (size_t i = 0; i < b->nholds; i++)
        b->holds[i].release(b->holds[i].p);
    b->nholds = 0;
    b->held_bytes = 0;
}

tw_status tw__src_json_text(tw_buf *b, const char *s, size_t len)
{
    size_t ok = tw__utf8_check(s, len);
    if (ok == len)
        return tw__json_write_string(b, s, len);
    tw_buf clean;
    tw__buf_init(&clean, 0);
    tw_status rc = TW_OK;
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (!rc && p < end) {
        uint32_t cp;
        size_t n = tw__utf8_seq(p, end, &cp);
        rc = n ? tw__buf_append(&clean, p, n) : tw__buf_append(&clean, "\xef\xbf\xbd", 3);
        p += n ? n : 1;
    }
    if (!rc)
        rc = tw__json_write_string(b, clean.data ? clean.data : "", clean.len);
    tw__buf_free(&clean);
    return rc;
}
