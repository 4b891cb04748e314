/* archive/query.c: find, who and counts: a plan for the backend (term, columns, time range) from
 * the query, then each candidate confirmed against its body (pattern, exact resource / principal). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive/archive_int.h"
#include "common/err.h"
#include "trailwatch/pattern.h"

void tw__arch_row(const tw__arch_fields *f, int64_t key, const char *body, size_t len, tw_archive_row *row)
{
    row->time_ms = f->time_ms ? f->time_ms : tw__arch_key_time(key);
    row->id = f->id;
    row->event_name = f->event_name;
    row->event_source = f->event_source;
    row->account = f->account;
    row->region = f->region;
    row->principal = f->principal;
    row->principal_type = f->principal_type;
    row->role = f->role;
    row->session = f->session;
    row->behind = f->behind;
    row->source_ip = f->source_ip;
    row->error_code = f->error_code;
    row->read_only = f->read_only;
    row->json = body;
    row->json_len = len;
}

/* ---- pattern -> column constraints ---- */

/* Values of a pattern field that are all plain strings (exact matches) -> the column's allowed
 * values; anything else (prefix, anything-but, numbers, ...) constrains nothing here. */
static void plain_strings(const tw_json *v, tw__arch_plan *p, int col)
{
    if (!v || tw_json_typeof(v) != TW_JSON_ARRAY || !tw_json_size(v) || tw_json_size(v) > TW_ARCH_PLAN_VALUES ||
        p->ncols[col])
        return;
    for (size_t i = 0; i < tw_json_size(v); i++)
        if (tw_json_typeof(tw_json_at(v, i)) != TW_JSON_STRING)
            return;
    for (size_t i = 0; i < tw_json_size(v); i++) {
        p->cols[col][p->ncols[col]++] = tw_json_string(tw_json_at(v, i), NULL);
    }
}

static void constraints(const tw_json *pat, tw__arch_plan *p)
{
    if (tw_json_typeof(pat) != TW_JSON_OBJECT)
        return;
    plain_strings(tw_json_get(pat, "source"), p, TW_ARCH_COL_SOURCE);
    plain_strings(tw_json_get(pat, "account"), p, TW_ARCH_COL_ACCOUNT);
    plain_strings(tw_json_get(pat, "region"), p, TW_ARCH_COL_REGION);
    plain_strings(tw_json_get(pat, "detail-type"), p, TW_ARCH_COL_DETAIL_TYPE);
    const tw_json *d = tw_json_get(pat, "detail");
    if (d && tw_json_typeof(d) == TW_JSON_OBJECT) {
        plain_strings(tw_json_get(d, "eventName"), p, TW_ARCH_COL_NAME);
        plain_strings(tw_json_get(d, "errorCode"), p, TW_ARCH_COL_ERROR);
        if (!p->ncols[TW_ARCH_COL_REGION])
            plain_strings(tw_json_get(d, "awsRegion"), p, TW_ARCH_COL_REGION);
        if (!p->ncols[TW_ARCH_COL_ACCOUNT])
            plain_strings(tw_json_get(d, "recipientAccountId"), p, TW_ARCH_COL_ACCOUNT);
    }
}

/* ---- find ---- */

typedef struct finder {
    tw_archive *a;
    const tw_archive_query *q;
    tw_matcher *m;
    tw_archive_row_fn cb;
    void *ud;
    int who_mode;            /* who(): only changes, oldest first */
    const char *resource;
    size_t delivered;
    int64_t last_key;
    tw_error *err;
} finder;

static int candidate(void *ud, int64_t key, const char *body, size_t len)
{
    finder *fd = ud;
    const tw_archive_query *q = fd->q;
    if (fd->m) {
        tw_match_result res;
        if (tw_match(fd->m, body, len, TW_EVENT_AUTO, &res, NULL) || !res.count)
            return 0;
    }
    tw__arch_fields f;
    if (tw__arch_extract(body, len, &f, NULL))
        return 0; /* stored bodies were valid when added; a damaged one is skipped, not fatal */
    int ok = 1;
    int64_t t = f.time_ms ? f.time_ms : tw__arch_key_time(key);
    if ((q->from_ms && t < q->from_ms) || (q->to_ms && t > q->to_ms))
        ok = 0;
    else if (fd->resource && !tw__arch_has_resource(&f, fd->resource))
        ok = 0;
    else if (fd->who_mode && !tw__arch_mutating(&f))
        ok = 0;
    else if (q->who && !tw__arch_has_identity(&f, q->who))
        ok = 0;
    else if (q->event_name && strcmp(f.event_name, q->event_name) != 0)
        ok = 0;
    int stop = 0;
    if (ok) {
        tw_archive_row row;
        tw__arch_row(&f, key, body, len, &row);
        fd->delivered++;
        fd->last_key = key;
        if (fd->cb(fd->ud, &row))
            stop = 2;
        else if (q->limit && fd->delivered >= q->limit)
            stop = 1;
    }
    tw__arch_fields_free(&f);
    if (stop == 2)
        fd->delivered = 0; /* the caller stopped: no cursor */
    return stop != 0;
}

static int32_t short_term(int kind, const char *s)
{
    const char *sh;
    size_t n;
    tw__arch_short(s, strlen(s), &sh, &n);
    return tw__arch_term(kind, sh, n);
}

static tw_status compile(const char *pattern, tw_matcher **m, tw_ruleset **rs, tw_json_doc **doc, tw_error *err)
{
    tw_pattern *p = NULL;
    tw_ruleset_builder *b = NULL;
    tw_status s;
    if ((s = tw_json_parse(pattern, strlen(pattern), NULL, doc, err)) ||
        (s = tw_pattern_parse(pattern, strlen(pattern), NULL, &p, err))) {
        tw__err_prefix(err, "pattern");
        return s;
    }
    if ((s = tw_ruleset_builder_new(NULL, &b))) {
        tw_pattern_free(p);
        return tw__err(err, s, "archive: out of memory");
    }
    if (!(s = tw_ruleset_builder_add(b, "query", p, NULL, err)) && !(s = tw_ruleset_build(b, rs, err)))
        s = tw_matcher_new(*rs, m);
    tw_ruleset_builder_free(b);
    if (s && err && !err->code)
        tw__err(err, s, "archive: compiling the pattern failed");
    return s;
}

tw_status tw_archive_find(tw_archive *a, const tw_archive_query *q, tw_archive_row_fn cb, void *ud, char *next_cursor,
                          size_t cursor_cap, tw_error *err)
{
    tw__arch_plan p;
    memset(&p, 0, sizeof p);
    p.from_ms = q->from_ms;
    p.to_ms = q->to_ms;
    if (q->cursor && *q->cursor) { /* read before next_cursor is cleared: they may be one buffer */
        char *end;
        long long k = strtoll(q->cursor, &end, 10);
        if (*end || end == q->cursor)
            return tw__err(err, TW_EINVAL, "cursor '%s' is not one this archive gave", q->cursor);
        p.has_after = 1;
        p.after_key = k;
    }
    if (next_cursor && cursor_cap)
        next_cursor[0] = '\0';
    finder fd = {.a = a, .q = q, .cb = cb, .ud = ud, .resource = q->resource, .err = err};
    tw_ruleset *rs = NULL;
    tw_json_doc *doc = NULL;
    tw_status s = TW_OK;
    if (q->pattern && *q->pattern) {
        if ((s = compile(q->pattern, &fd.m, &rs, &doc, err)))
            goto out;
        constraints(tw_json_root(doc), &p);
    }
    if (q->resource && *q->resource) {
        p.has_term = 1;
        p.term = short_term(TW_ARCH_TERM_RESOURCE, q->resource);
    } else if (q->who && *q->who) {
        p.has_term = 1;
        p.term = short_term(TW_ARCH_TERM_WHO, q->who);
    } else if (q->event_name && *q->event_name) {
        p.has_term = 1;
        p.term = tw__arch_term(TW_ARCH_TERM_NAME, q->event_name, strlen(q->event_name));
    } else if (p.ncols[TW_ARCH_COL_NAME] == 1) {
        p.has_term = 1;
        p.term = tw__arch_term(TW_ARCH_TERM_NAME, p.cols[TW_ARCH_COL_NAME][0], strlen(p.cols[TW_ARCH_COL_NAME][0]));
    }
    s = a->be->ops->find(a->be, &p, candidate, &fd, err);
    if (!s && q->limit && fd.delivered >= q->limit && next_cursor && cursor_cap)
        snprintf(next_cursor, cursor_cap, "%" PRId64, fd.last_key);
out:
    tw_matcher_free(fd.m);
    tw_ruleset_free(rs);
    tw_json_doc_free(doc);
    return s;
}

tw_status tw_archive_who(tw_archive *a, const char *resource, int64_t from_ms, int64_t to_ms, tw_archive_row_fn cb,
                         void *ud, tw_error *err)
{
    if (!resource || !*resource)
        return tw__err(err, TW_EINVAL, "who: no resource named");
    tw_archive_query q;
    memset(&q, 0, sizeof q);
    q.from_ms = from_ms;
    q.to_ms = to_ms;
    tw__arch_plan p;
    memset(&p, 0, sizeof p);
    p.from_ms = from_ms;
    p.to_ms = to_ms;
    p.has_term = 1;
    p.term = short_term(TW_ARCH_TERM_RESOURCE, resource);
    p.oldest_first = 1;
    finder fd = {.a = a, .q = &q, .cb = cb, .ud = ud, .resource = resource, .who_mode = 1, .err = err};
    return a->be->ops->find(a->be, &p, candidate, &fd, err);
}

tw_status tw_archive_counts(tw_archive *a, const tw_archive_query *q, int64_t step_ms, const char *group_by,
                            tw_archive_count_fn cb, void *ud, tw_error *err)
{
    if (step_ms <= 0)
        return tw__err(err, TW_EINVAL, "counts: the step must be positive");
    int col = -1;
    if (group_by && *group_by) {
        if (strcmp(group_by, "source") == 0)
            col = TW_ARCH_COL_SOURCE;
        else if (strcmp(group_by, "account") == 0)
            col = TW_ARCH_COL_ACCOUNT;
        else if (strcmp(group_by, "region") == 0)
            col = TW_ARCH_COL_REGION;
        else if (strcmp(group_by, "event_name") == 0)
            col = TW_ARCH_COL_NAME;
        else
            return tw__err(err, TW_EINVAL, "counts: cannot group by '%s' (source, account, region, event_name)",
                           group_by);
    }
    tw__arch_plan p;
    memset(&p, 0, sizeof p);
    p.from_ms = q ? q->from_ms : 0;
    p.to_ms = q ? q->to_ms : 0;
    if (q && q->event_name && *q->event_name) {
        p.cols[TW_ARCH_COL_NAME][0] = q->event_name;
        p.ncols[TW_ARCH_COL_NAME] = 1;
    }
    return a->be->ops->counts(a->be, &p, step_ms, col, cb, ud, err);
}
