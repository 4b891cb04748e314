/* archive/archive.c: tw_archive: open, the write queue (dedup by eventID), flush, stats, prune. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "archive/archive_int.h"
#include "common/err.h"
#include "common/hash.h"

tw_status tw_archive_open(tw_archive **out, const tw_archive_opts *opts, tw_error *err)
{
    *out = NULL;
    if (!opts)
        return tw__err(err, TW_EINVAL, "archive: no options");
    tw_archive *a = calloc(1, sizeof *a);
    if (!a)
        return tw__err(err, TW_ENOMEM, "archive: out of memory");
    a->readonly = opts->readonly;
    tw_status s;
    if (opts->backend == TW_ARCHIVE_SQLITE)
        s = tw__archive_sqlite_open(opts, &a->be, err);
    else if (opts->backend == TW_ARCHIVE_POSTGRES)
        s = tw__archive_pg_open(opts, &a->be, err);
    else
        s = tw__err(err, TW_ECONFIG, "archive: backend %d is not built in (sqlite and postgres are)", opts->backend);
    if (s) {
        free(a);
        return s;
    }
    *out = a;
    return TW_OK;
}

static void drop_queue(tw_archive *a)
{
    a->recs.n = a->ids.n = 0;
    if (a->idset)
        memset(a->idset, 0, a->idset_cap * sizeof *a->idset);
    tw__arena_reset(&a->qa);
}

void tw_archive_close(tw_archive *a)
{
    if (!a)
        return;
    if (a->be)
        a->be->ops->close(a->be);
    TW_VEC_FREE(&a->recs);
    TW_VEC_FREE(&a->ids);
    free(a->idset);
    tw__arena_free(&a->qa);
    free(a);
}

uint64_t tw_archive_committed(const tw_archive *a) { return a ? a->committed : 0; }

uint64_t tw_archive_duplicates(const tw_archive *a) { return a ? a->dropped : 0; }

void tw_archive_check_stored(tw_archive *a, int on) { a->check_stored = on; }

tw_status tw_archive_flush(tw_archive *a, tw_error *err)
{
    if (!a->recs.n)
        return TW_OK;
    uint64_t dups = a->be->duplicates;
    tw_status s = a->be->ops->put_batch(a->be, a->recs.v, a->recs.n, err);
    if (!s) {
        a->committed += a->recs.n - (a->be->duplicates - dups);
        a->dropped += a->be->duplicates - dups;
    }
    drop_queue(a);
    return s;
}

/* ---- the queue's dedup ---- */

static size_t id_slot(const tw_archive *a, const char *id, int *found)
{
    uint64_t h = tw__hash_bytes(id, strlen(id), 0x1d);
    size_t i = (size_t)h & (a->idset_cap - 1);
    *found = 0;
    while (a->idset[i]) {
        if (strcmp(a->ids.v[a->idset[i] - 1], id) == 0) {
            *found = 1;
            break;
        }
        i = (i + 1) & (a->idset_cap - 1);
    }
    return i;
}

static int queued(tw_archive *a, const char *id)
{
    if (!a->idset)
        return 0;
    int found;
    id_slot(a, id, &found);
    return found;
}

static tw_status remember(tw_archive *a, const char *id, tw_error *err)
{
    if ((a->ids.n + 1) * 2 > a->idset_cap) {
        size_t cap = a->idset_cap ? a->idset_cap * 2 : 1024;
        uint64_t *n = calloc(cap, sizeof *n);
        if (!n)
            return tw__err(err, TW_ENOMEM, "archive: out of memory");
        free(a->idset);
        a->idset = n;
        a->idset_cap = cap;
        for (size_t k = 0; k < a->ids.n; k++) {
            int found;
            if (!*a->ids.v[k])
                continue;
            size_t i = id_slot(a, a->ids.v[k], &found);
            a->idset[i] = k + 1;
        }
    }
    if (TW_VEC_PUSH(&a->ids, id))
        return tw__err(err, TW_ENOMEM, "archive: out of memory");
    if (*id) {
        int found;
        size_t i = id_slot(a, id, &found);
        a->idset[i] = a->ids.n;
    }
    return TW_OK;
}

typedef struct stored_id {
    const char *id;
    int found;
    tw_error *err;
} stored_id;

static int same_id(void *ud, int64_t key, const char *body, size_t len)
{
    (void)key;
    stored_id *c = ud;
    tw__arch_fields f;
    if (tw__arch_extract(body, len, &f, NULL) == TW_OK && strcmp(f.id, c->id) == 0)
        c->found = 1;
    tw__arch_fields_free(&f);
    return c->found;
}

/* ---- adding ---- */

static char *keep(tw_archive *a, const char *s)
{
    return tw__arena_strndup(&a->qa, s, strlen(s));
}

tw_status tw_archive_add(tw_archive *a, const char *json, size_t len, int64_t received_ms, tw_error *err)
{
    if (a->readonly)
        return tw__err(err, TW_EINVAL, "archive: opened read-only");
    tw__arch_fields f;
    tw_status s = tw__arch_extract(json, len, &f, err);
    if (s)
        return s;
    if (*f.id) {
        stored_id c = {f.id, queued(a, f.id), err};
        if (!c.found && (!a->be->dedup_on_put || a->check_stored)) {
            tw__arch_plan p;
            memset(&p, 0, sizeof p);
            p.has_term = 1;
            p.term = tw__arch_term(TW_ARCH_TERM_ID, f.id, strlen(f.id));
            if ((s = a->be->ops->find(a->be, &p, same_id, &c, err)))
                goto out;
        }
        if (c.found) {
            s = tw__err(err, TW_EEXIST, "event %s is already archived", f.id);
            goto out;
        }
    }
    int64_t t = f.time_ms ? f.time_ms : received_ms;
    if (!t) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        t = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    size_t nterms = tw__arch_terms(&f, a->terms, TW_ARCH_MAX_TERMS);
    tw__arch_rec *r = TW_VEC_ADD(&a->recs);
    if (!r) {
        s = tw__err(err, TW_ENOMEM, "archive: out of memory");
        goto out;
    }
    char *body = tw__arena_alloc(&a->qa, len ? len : 1);
    int32_t *terms = tw__arena_alloc(&a->qa, nterms * sizeof *terms);
    const char *id = keep(a, f.id);
    r->event_name = keep(a, f.event_name);
    r->source = keep(a, f.source);
    r->account = keep(a, f.account);
    r->region = keep(a, f.region);
    r->detail_type = keep(a, f.detail_type);
    r->error_code = keep(a, f.error_code);
    if (!body || !terms || !id || !r->event_name || !r->source || !r->account || !r->region || !r->detail_type ||
        !r->error_code || remember(a, id, err)) {
        a->recs.n--;
        s = tw__err(err, TW_ENOMEM, "archive: out of memory");
        goto out;
    }
    memcpy(body, json, len);
    memcpy(terms, a->terms, nterms * sizeof *terms);
    r->time_ms = t;
    r->id = id;
    r->terms = terms;
    r->nterms = nterms;
    r->body = body;
    r->body_len = len;
    tw__arch_fields_free(&f);
    if (a->recs.n >= TW_ARCHIVE_BATCH)
        return tw_archive_flush(a, err);
    return TW_OK;
out:
    tw__arch_fields_free(&f);
    return s;
}

tw_status tw_archive_stats_get(tw_archive *a, tw_archive_stats *out, tw_error *err)
{
    return a->be->ops->stats(a->be, out, err);
}

tw_status tw_archive_prune(tw_archive *a, int64_t before_ms, uint64_t *removed, tw_error *err)
{
    if (removed)
        *removed = 0;
    return a->be->ops->prune(a->be, before_ms, removed, err);
}

/* ---- durations and times (the CLI's and the API's --since, --retention, --from) ---- */

tw_status tw_archive_parse_duration(const char *text, int64_t *ms, tw_error *err)
{
    char *end;
    if (!text || !*text || *text < '0' || *text > '9')
        goto bad;
    long long n = strtoll(text, &end, 10);
    long long unit;
    if (strcmp(end, "d") == 0)
        unit = 86400000LL;
    else if (strcmp(end, "h") == 0)
        unit = 3600000LL;
    else if (strcmp(end, "m") == 0)
        unit = 60000LL;
    else if (strcmp(end, "s") == 0)
        unit = 1000LL;
    else if (strcmp(end, "w") == 0)
        unit = 7 * 86400000LL;
    else
        goto bad;
    if (n < 0 || n > 100000LL * 86400000LL / unit)
        goto bad;
    *ms = n * unit;
    return TW_OK;
bad:
    return tw__err(err, TW_EINVAL, "'%s' is not a duration (a number and s, m, h, d or w: 7d, 12h, 400d)",
                   text ? text : "");
}

tw_status tw_archive_parse_time(const char *text, int64_t *ms, tw_error *err)
{
    if (!text || !*text)
        goto bad;
    size_t n = strlen(text);
    int64_t t = tw__arch_parse_time(text, n);
    if (t >= 0) {
        *ms = t;
        return TW_OK;
    }
    char *end;
    long long v = strtoll(text, &end, 10);
    if (!*end && v >= 0 && n >= 10) {
        *ms = v;
        return TW_OK;
    }
bad:
    return tw__err(err, TW_EINVAL, "'%s' is not a time (2021-07-28T12:00:00Z, 2021-07-28, or milliseconds since 1970)",
                   text ? text : "");
}
