/* sigma/corr.c: correlation sections, and linking a tw_sigma into a rule set: references by id or
 * name, chains and cycles, aliases, generate, the captures correlations read. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "sigma/sigma_int.h"

static sg_corr *bad(unsigned *line, const tw_json *at, char *why, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static sg_corr *bad(unsigned *line, const tw_json *at, char *why, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, size, fmt, ap);
    va_end(ap);
    *line = at ? tw_json_line(at) : 0;
    return NULL;
}

/* "30s", "5m", "1h", "7d" (Sigma's number + one lowercase unit). */
static int timespan(const char *s, int64_t *ms)
{
    char *end;
    if (!isdigit((unsigned char)*s))
        return 0;
    unsigned long long v = strtoull(s, &end, 10);
    int64_t unit = *end == 's' ? 1000 : *end == 'm' ? 60000 : *end == 'h' ? 3600000 : *end == 'd' ? 86400000 : 0;
    if (!unit || end[1] || v == 0 || v > 366ull * 86400000 / (uint64_t)unit)
        return 0;
    *ms = (int64_t)v * unit;
    return 1;
}

static int parse_bounds(const tw_json *c, sg_bounds *b, const char **field, const tw_json **at, const char **why)
{
    memset(b, 0, sizeof *b);
    *field = NULL;
    int any = 0;
    for (size_t i = 0; i < tw_json_size(c); i++) {
        const char *k = tw_json_key(c, i, NULL);
        const tw_json *v = tw_json_at(c, i);
        *at = v;
        if (strcmp(k, "field") == 0) {
            if (tw_json_typeof(v) != TW_JSON_STRING || !*tw_json_string(v, NULL)) {
                *why = "condition.field must name one field";
                return 0;
            }
            *field = tw_json_string(v, NULL);
            continue;
        }
        if (tw_json_typeof(v) != TW_JSON_NUMBER) {
            *why = "condition values must be numbers (gt, gte, lt, lte, eq, neq)";
            return 0;
        }
        double d = tw_json_number(v);
        if (strcmp(k, "gt") == 0 || strcmp(k, "gte") == 0) {
            if (b->has_lo) {
                *why = "condition gives a lower bound twice";
                return 0;
            }
            b->has_lo = 1;
            b->lo = d;
            b->lo_incl = k[2] == 'e';
        } else if (strcmp(k, "lt") == 0 || strcmp(k, "lte") == 0) {
            if (b->has_hi) {
                *why = "condition gives an upper bound twice";
                return 0;
            }
            b->has_hi = 1;
            b->hi = d;
            b->hi_incl = k[2] == 'e';
        } else if (strcmp(k, "eq") == 0) {
            if (b->has_lo || b->has_hi) {
                *why = "condition: eq cannot be combined with other bounds";
                return 0;
            }
            b->has_lo = b->has_hi = b->lo_incl = b->hi_incl = 1;
            b->lo = b->hi = d;
        } else if (strcmp(k, "neq") == 0) {
            b->has_neq = 1;
            b->neq = d;
        } else {
            *why = "condition keys are gt, gte, lt, lte, eq, neq (and field)";
            return 0;
        }
        any = 1;
    }
    if (!any) {
        *why = "condition needs a bound (gt, gte, lt, lte, eq or neq)";
        return 0;
    }
    return 1;
}

sg_corr *tw__sigma_corr_parse(tw_sigma *s, const tw_json *cj, unsigned *line, char *why, size_t size)
{
    static const char *const types[] = {"event_count", "value_count", "value_sum", "value_avg", "temporal",
                                        "temporal_ordered"};
    static const char *const known[] = {"type", "rules", "group-by", "timespan", "condition", "aliases", "generate",
                                        "field"};
    if (tw_json_typeof(cj) != TW_JSON_OBJECT)
        return bad(line, cj, why, size, "correlation must be a mapping");
    for (size_t i = 0; i < tw_json_size(cj); i++) {
        const char *k = tw_json_key(cj, i, NULL);
        size_t j = 0;
        while (j < sizeof known / sizeof known[0] && strcmp(k, known[j]) != 0)
            j++;
        if (j == sizeof known / sizeof known[0])
            return bad(line, tw_json_at(cj, i), why, size, "correlation: unknown key '%s'", k);
    }
    sg_corr *c = tw__arena_calloc(&s->arena, sizeof *c);
    if (!c)
        return bad(line, cj, why, size, "out of memory");
    c->line = tw_json_line(cj);
    const tw_json *t = tw_json_get(cj, "type");
    size_t ti = 0;
    const char *tn = tw_json_typeof(t) == TW_JSON_STRING ? tw_json_string(t, NULL) : "";
    while (ti < 6 && strcmp(tn, types[ti]) != 0)
        ti++;
    if (ti == 6) {
        if (strcmp(tn, "value_percentile") == 0 || strcmp(tn, "value_median") == 0)
            return bad(line, t, why, size, "correlation type %s is not supported (event_count, value_count, "
                       "value_sum, value_avg, temporal, temporal_ordered are)", tn);
        return bad(line, t ? t : cj, why, size, "correlation.type must be event_count, value_count, value_sum, "
                   "value_avg, temporal or temporal_ordered");
    }
    c->type = (sg_ctype)ti;
    /* rules */
    const tw_json *rl = tw_json_get(cj, "rules");
    size_t nr = tw_json_typeof(rl) == TW_JSON_ARRAY ? tw_json_size(rl) : rl && tw_json_typeof(rl) == TW_JSON_STRING;
    if (!nr || nr > TW_SIGMA_REFS_MAX)
        return bad(line, rl ? rl : cj, why, size, "correlation.rules must name 1 to %u rules (ids or names)",
                   TW_SIGMA_REFS_MAX);
    if ((c->type == SG_TEMPORAL || c->type == SG_TEMPORAL_ORDERED) && nr < 2)
        return bad(line, rl, why, size, "a %s correlation needs at least two rules", types[ti]);
    c->nrefs = nr;
    c->refs = tw__arena_calloc(&s->arena, nr * sizeof *c->refs);
    c->ref_line = tw__arena_calloc(&s->arena, nr * sizeof *c->ref_line);
    if (!c->refs || !c->ref_line)
        return bad(line, cj, why, size, "out of memory");
    for (size_t i = 0; i < nr; i++) {
        const tw_json *e = tw_json_typeof(rl) == TW_JSON_ARRAY ? tw_json_at(rl, i) : rl;
        if (tw_json_typeof(e) != TW_JSON_STRING || !*tw_json_string(e, NULL))
            return bad(line, e, why, size, "correlation.rules: each entry is a rule's id or name");
        c->refs[i] = tw__arena_strndup(&s->arena, tw_json_string(e, NULL), strlen(tw_json_string(e, NULL)));
        c->ref_line[i] = tw_json_line(e);
        for (size_t j = 0; j < i; j++)
            if (c->refs[i] && strcmp(c->refs[i], c->refs[j]) == 0)
                return bad(line, e, why, size, "correlation.rules names '%s' twice", c->refs[i]);
    }
    /* group-by */
    const tw_json *gb = tw_json_get(cj, "group-by");
    if (gb && tw_json_typeof(gb) != TW_JSON_NULL) {
        size_t ng = tw_json_typeof(gb) == TW_JSON_ARRAY ? tw_json_size(gb) : 1;
        if (ng > TW_SIGMA_REFS_MAX)
            return bad(line, gb, why, size, "group-by names more than %u fields", TW_SIGMA_REFS_MAX);
        c->ngroup = ng;
        c->group = tw__arena_calloc(&s->arena, (ng + 1) * sizeof *c->group);
        if (!c->group)
            return bad(line, cj, why, size, "out of memory");
        for (size_t i = 0; i < ng; i++) {
            const tw_json *e = tw_json_typeof(gb) == TW_JSON_ARRAY ? tw_json_at(gb, i) : gb;
            if (tw_json_typeof(e) != TW_JSON_STRING || !*tw_json_string(e, NULL))
                return bad(line, e, why, size, "group-by: each entry is a field name");
            c->group[i] = tw_json_string(e, NULL);
        }
    }
    /* timespan */
    const tw_json *ts = tw_json_get(cj, "timespan");
    if (!ts || tw_json_typeof(ts) != TW_JSON_STRING || !timespan(tw_json_string(ts, NULL), &c->timespan_ms))
        return bad(line, ts ? ts : cj, why, size, "correlation.timespan must be a number and one unit s, m, h or d "
                   "(such as 5m, 1h), up to a year");
    /* condition */
    const tw_json *cond = tw_json_get(cj, "condition");
    const tw_json *fld = tw_json_get(cj, "field");
    int valued = c->type == SG_VALUE_COUNT || c->type == SG_VALUE_SUM || c->type == SG_VALUE_AVG;
    if (cond && tw_json_typeof(cond) == TW_JSON_STRING) {
        if (c->type != SG_TEMPORAL && c->type != SG_TEMPORAL_ORDERED)
            return bad(line, cond, why, size, "only temporal correlations take a condition expression; %s needs "
                       "bounds such as gte: 10", types[ti]);
        char cwhy[300];
        size_t cl;
        const char *ct = tw_json_string(cond, &cl);
        if (!(c->expr = tw__sigma_cond_parse(&s->arena, ct, cl, cwhy, sizeof cwhy)))
            return bad(line, cond, why, size, "condition: %s", cwhy);
    } else if (cond && tw_json_typeof(cond) == TW_JSON_OBJECT) {
        const tw_json *at = cond;
        const char *w = NULL, *f = NULL;
        if (!parse_bounds(cond, &c->bounds, &f, &at, &w))
            return bad(line, at, why, size, "%s", w);
        c->has_bounds = 1;
        c->field = f;
    } else if (cond) {
        return bad(line, cond, why, size, "condition must be a mapping of bounds (gte: 10)%s",
                   c->type >= SG_TEMPORAL ? " or an expression over the rules" : "");
    } else if (c->type < SG_TEMPORAL) {
        return bad(line, cj, why, size, "a %s correlation needs a condition such as gte: 10", types[ti]);
    }
    if (fld && !c->field && tw_json_typeof(fld) == TW_JSON_STRING)
        c->field = tw_json_string(fld, NULL); /* an older spelling: field beside the condition */
    if (valued && !c->field)
        return bad(line, cond ? cond : cj, why, size, "a %s correlation needs condition.field (the field whose "
                   "values it counts, sums or averages)", types[ti]);
    if (!valued && c->field)
        return bad(line, cond ? cond : cj, why, size, "condition.field only applies to value_count, value_sum "
                   "and value_avg");
    /* generate may sit in the correlation section too */
    const tw_json *g = tw_json_get(cj, "generate");
    if (g && tw_json_typeof(g) != TW_JSON_TRUE && tw_json_typeof(g) != TW_JSON_FALSE)
        return bad(line, g, why, size, "generate must be true or false");
    c->generate = g && tw_json_typeof(g) == TW_JSON_TRUE;
    /* aliases: resolved once the rules are known (link); checked for shape here */
    const tw_json *al = tw_json_get(cj, "aliases");
    if (al && tw_json_typeof(al) != TW_JSON_OBJECT)
        return bad(line, al, why, size, "aliases must map alias names to {rule name: field}");
    for (size_t i = 0; al && i < tw_json_size(al); i++) {
        const tw_json *m = tw_json_at(al, i);
        if (tw_json_typeof(m) != TW_JSON_OBJECT)
            return bad(line, m, why, size, "alias '%s' must map rule names to fields", tw_json_key(al, i, NULL));
        for (size_t j = 0; j < tw_json_size(m); j++)
            if (tw_json_typeof(tw_json_at(m, j)) != TW_JSON_STRING)
                return bad(line, tw_json_at(m, j), why, size, "alias '%s': fields are names", tw_json_key(al, i, NULL));
    }
    return c;
}

/* ---- linking ---- */

long tw__sigma_find(const tw_sigma *s, const char *ref, size_t self)
{
    for (size_t i = 0; i < s->n; i++)
        if (i != self && !s->rules[i]->refused && *s->rules[i]->info.id && strcmp(s->rules[i]->info.id, ref) == 0)
            return (long)i;
    for (size_t i = 0; i < s->n; i++)
        if (i != self && !s->rules[i]->refused && strcmp(s->rules[i]->info.name, ref) == 0)
            return (long)i;
    return -1;
}

typedef struct linker {
    tw_sigma *s;
    size_t *nerrors;
    tw_report_fn report;
    void *ctx;
} linker;

static void drop(linker *k, size_t i, unsigned line, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void drop(linker *k, size_t i, unsigned line, const char *fmt, ...)
{
    sg_rule *r = k->s->rules[i];
    char why[400], msg[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    snprintf(msg, sizeof msg, "%s:%u: rule \"%.120s\": %s", r->info.file, line, r->info.title, why);
    r->refused = r->info.refused = 1;
    (*k->nerrors)++;
    if (k->report)
        k->report(k->ctx, msg);
}

/* The field a rule's events give for group name g (aliases), or NULL when an alias misses the rule. */
static const char *aliased(const sg_rule *corr_rule, const char *g, const sg_rule *target, const char *written)
{
    const tw_json *al = tw_json_get(tw_json_get(corr_rule->root, "correlation"), "aliases");
    const tw_json *m = al ? tw_json_get(al, g) : NULL;
    if (!m)
        return g;
    const tw_json *f = tw_json_get(m, target->info.name);
    if (!f && *target->info.id)
        f = tw_json_get(m, target->info.id);
    if (!f)
        f = tw_json_get(m, written);
    return f ? tw_json_string(f, NULL) : NULL;
}

static int resolve(linker *k, size_t i)
{
    tw_sigma *s = k->s;
    sg_rule *r = s->rules[i];
    sg_corr *c = r->corr;
    free(c->ref_rule);
    if (!(c->ref_rule = calloc(c->nrefs, sizeof *c->ref_rule)))
        return -1;
    for (size_t j = 0; j < c->nrefs; j++) {
        if ((c->ref_rule[j] = tw__sigma_find(s, c->refs[j], i)) < 0) {
            drop(k, i, c->ref_line[j], "correlation.rules: no loaded rule has the id or name '%s'", c->refs[j]);
            return 0;
        }
    }
    size_t ng = c->ngroup ? c->ngroup : 1;
    c->field_of = tw__arena_calloc(&s->arena, ng * sizeof *c->field_of);
    c->value_field = tw__arena_calloc(&s->arena, c->nrefs * sizeof *c->value_field);
    if (!c->field_of || !c->value_field)
        return -1;
    for (size_t g = 0; g < c->ngroup; g++) {
        if (!(c->field_of[g] = tw__arena_calloc(&s->arena, c->nrefs * sizeof **c->field_of)))
            return -1;
        for (size_t j = 0; j < c->nrefs; j++) {
            const sg_rule *t = s->rules[c->ref_rule[j]];
            const char *f = aliased(r, c->group[g], t, c->refs[j]);
            if (!f) {
                drop(k, i, c->line, "aliases: alias '%s' gives no field for rule '%s'", c->group[g], c->refs[j]);
                return 0;
            }
            if (t->corr) { /* a chain: the inner correlation must group by that name */
                size_t x = 0;
                while (x < t->corr->ngroup && strcmp(t->corr->group[x], f) != 0)
                    x++;
                if (x == t->corr->ngroup) {
                    drop(k, i, c->line, "group-by '%s': correlation '%s' does not group by '%s', so its hits "
                         "carry no such value", c->group[g], c->refs[j], f);
                    return 0;
                }
            }
            c->field_of[g][j] = f;
        }
    }
    for (size_t j = 0; j < c->nrefs; j++) {
        const sg_rule *t = s->rules[c->ref_rule[j]];
        if (c->field && t->corr) {
            drop(k, i, c->line, "%s over correlation '%s': its hits have no field '%s'", r->info.corr_type,
                 c->refs[j], c->field);
            return 0;
        }
        c->value_field[j] = c->field;
    }
    return 1;
}

/* Names in a temporal expression must be the correlation's rules. */
static int expr_ok(linker *k, size_t i, const sg_cond *e)
{
    if (!e)
        return 1;
    sg_corr *c = k->s->rules[i]->corr;
    if (e->op == SC_OF) {
        drop(k, i, c->line, "condition: '1 of' / 'all of' are not supported in correlation conditions");
        return 0;
    }
    if (e->op == SC_ID) {
        for (size_t j = 0; j < c->nrefs; j++) {
            const sg_rule *t = k->s->rules[c->ref_rule[j]];
            if (strcmp(e->name, c->refs[j]) == 0 || strcmp(e->name, t->info.name) == 0 ||
                (*t->info.id && strcmp(e->name, t->info.id) == 0))
                return 1;
        }
        drop(k, i, c->line, "condition: '%s' is not one of the correlation's rules", e->name);
        return 0;
    }
    return expr_ok(k, i, e->a) && expr_ok(k, i, e->b);
}

/* Depth of correlation i over detections (1: over detections only); past TW_SIGMA_CHAIN_MAX for a
 * cycle or a chain too deep. memo/state (0 new, 1 on the path, 2 done) keep it linear in the rules. */
static size_t depth_of(const tw_sigma *s, size_t i, size_t *memo, unsigned char *state, unsigned guard)
{
    const sg_corr *c = s->rules[i]->corr;
    if (!c || s->rules[i]->refused)
        return 0;
    if (state[i] == 2)
        return memo[i];
    if (state[i] == 1 || guard > TW_SIGMA_CHAIN_MAX)
        return TW_SIGMA_CHAIN_MAX + 1;
    state[i] = 1;
    size_t d = 1;
    for (size_t j = 0; j < c->nrefs && d <= TW_SIGMA_CHAIN_MAX; j++) {
        size_t x = depth_of(s, (size_t)c->ref_rule[j], memo, state, guard + 1);
        if (x + 1 > d)
            d = x + 1;
    }
    state[i] = 2;
    memo[i] = d;
    return d;
}

static tw_status link_all(linker *k)
{
    tw_sigma *s = k->s;
    /* resolve until nothing more is dropped: a correlation over a dropped rule is dropped in turn */
    for (int changed = 1; changed;) {
        changed = 0;
        for (size_t i = 0; i < s->n; i++) {
            sg_rule *r = s->rules[i];
            if (!r->corr || r->refused)
                continue;
            int ok = resolve(k, i);
            if (ok < 0)
                return TW_ENOMEM;
            if (ok && !expr_ok(k, i, r->corr->expr))
                ok = 0;
            changed |= !ok;
        }
        size_t *memo = changed ? NULL : calloc(s->n + 1, sizeof *memo);
        unsigned char *state = changed ? NULL : calloc(s->n + 1, 1);
        if (!changed && (!memo || !state)) {
            free(memo);
            free(state);
            return TW_ENOMEM;
        }
        for (size_t i = 0; i < s->n && !changed; i++) { /* every reference is resolved now */
            sg_rule *r = s->rules[i];
            if (r->corr && !r->refused && (r->corr->depth = depth_of(s, i, memo, state, 0)) > TW_SIGMA_CHAIN_MAX) {
                drop(k, i, r->corr->line, "correlation.rules: the correlations form a cycle (or a chain deeper "
                     "than %u)", TW_SIGMA_CHAIN_MAX);
                changed = 1;
            }
        }
        free(memo);
        free(state);
    }
    /* alerts: a rule alerts unless every correlation using it says generate: false */
    for (size_t i = 0; i < s->n; i++)
        s->rules[i]->info.alerts = !s->rules[i]->refused;
    for (size_t i = 0; i < s->n; i++) {
        const sg_rule *r = s->rules[i];
        if (!r->corr || r->refused)
            continue;
        for (size_t j = 0; j < r->corr->nrefs; j++)
            s->rules[r->corr->ref_rule[j]]->info.alerts = 0;
    }
    for (size_t i = 0; i < s->n; i++) {
        const sg_rule *r = s->rules[i];
        if (!r->corr || r->refused || !r->corr->generate)
            continue;
        for (size_t j = 0; j < r->corr->nrefs; j++)
            s->rules[r->corr->ref_rule[j]]->info.alerts = 1;
    }
    return TW_OK;
}

static tw_status capture(tw_ruleset_builder *b, const char *field, uint32_t *id)
{
    char path[1024];
    int n = snprintf(path, sizeof path, "%s%s", TW_SIGMA_PREFIX, field);
    if (n < 0 || (size_t)n >= sizeof path)
        return TW_ELIMIT;
    return tw__ruleset_builder_capture(b, path, (size_t)n, id);
}

tw_status tw_sigma_add(tw_sigma *s, tw_ruleset_builder *b, size_t *nerrors, tw_report_fn report, void *ctx,
                       tw_error *err)
{
    size_t dummy = 0;
    if (!nerrors)
        nerrors = &dummy;
    if (s->linked)
        return tw__err(err, TW_EINVAL, "Sigma rules were added to a rule set already");
    s->linked = 1;
    linker k = {s, nerrors, report, ctx};
    if (link_all(&k))
        return tw__err(err, TW_ENOMEM, "out of memory linking Sigma rules");
    tw_status rc = TW_OK;
    /* eventTime and eventID are recorded for every event only when a correlation reads them */
    int correlated = 0;
    for (size_t i = 0; i < s->n && !correlated; i++)
        correlated = s->rules[i]->corr && !s->rules[i]->refused;
    if (correlated &&
        ((rc = capture(b, "eventTime", &s->cap_time)) || (rc = capture(b, "eventID", &s->cap_id))))
        return tw__err(err, rc, "out of memory");
    size_t added = 0;
    for (size_t i = 0; i < s->n; i++) {
        sg_rule *r = s->rules[i];
        if (r->refused || !r->compiled)
            continue;
        size_t idx;
        tw__brule *br = r->compiled;
        r->compiled = NULL;
        if ((rc = tw__ruleset_builder_add_boolean(b, r->info.name, br, &idx, err))) {
            tw__err_prefix(err, "%s:%u", r->info.file, r->info.line);
            return rc;
        }
        r->info.ruleset_index = (long)idx;
        if (idx + 1 > added)
            added = idx + 1;
    }
    free(s->by_ruleset);
    if (!(s->by_ruleset = malloc((added + 1) * sizeof *s->by_ruleset)))
        return tw__err(err, TW_ENOMEM, "out of memory");
    for (size_t i = 0; i < added; i++)
        s->by_ruleset[i] = -1;
    s->nby = added;
    for (size_t i = 0; i < s->n; i++)
        if (s->rules[i]->info.ruleset_index >= 0)
            s->by_ruleset[s->rules[i]->info.ruleset_index] = (long)i;
    /* per detection rule: the correlations that read it */
    if (!(s->users = calloc(s->n + 1, sizeof *s->users)) || !(s->nusers = calloc(s->n + 1, sizeof *s->nusers)))
        return tw__err(err, TW_ENOMEM, "out of memory");
    for (size_t i = 0; i < s->n; i++) {
        const sg_rule *r = s->rules[i];
        if (!r->corr || r->refused)
            continue;
        for (size_t j = 0; j < r->corr->nrefs; j++) {
            size_t t = (size_t)r->corr->ref_rule[j];
            if (s->rules[t]->corr)
                continue; /* chains are fed by hits */
            size_t *u = realloc(s->users[t], (s->nusers[t] + 1) * sizeof *u);
            if (!u)
                return tw__err(err, TW_ENOMEM, "out of memory");
            u[s->nusers[t]++] = i;
            s->users[t] = u;
        }
    }
    /* captures: the group-by and value fields correlations read from their detections' events */
    for (size_t i = 0; i < s->n; i++) {
        sg_corr *c = s->rules[i]->corr;
        if (!c || s->rules[i]->refused)
            continue;
        c->cap = tw__arena_calloc(&s->arena, (c->ngroup * c->nrefs + 1) * sizeof *c->cap);
        c->vcap = tw__arena_calloc(&s->arena, (c->nrefs + 1) * sizeof *c->vcap);
        if (!c->cap || !c->vcap)
            return tw__err(err, TW_ENOMEM, "out of memory");
        for (size_t j = 0; j < c->nrefs; j++) {
            if (s->rules[c->ref_rule[j]]->corr)
                continue;
            for (size_t g = 0; g < c->ngroup; g++)
                if ((rc = capture(b, c->field_of[g][j], &c->cap[g * c->nrefs + j])))
                    return tw__err(err, rc, "group-by field '%s' is too long", c->field_of[g][j]);
            if (c->value_field[j] && (rc = capture(b, c->value_field[j], &c->vcap[j])))
                return tw__err(err, rc, "field '%s' is too long", c->value_field[j]);
        }
    }
    return TW_OK;
}
