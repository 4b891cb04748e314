/* pattern/boolean.c: evaluating boolean rules (Sigma) over the predicates' per-event memo, field
 * references, and the values a caller captured. */
#include "pattern/boolean.h"

#include <stdlib.h>
#include <string.h>

#include "pattern/execute_int.h"
#include "pattern/regex.h"

void tw__brule_free(tw__brule *r)
{
    if (!r)
        return;
    tw__arena_free(&r->arena);
    free(r);
}

void tw__bset_free(tw__bset *s)
{
    if (!s)
        return;
    for (uint32_t i = 0; i < s->nregex; i++)
        tw__regex_free(s->regex[i]);
    free(s->regex);
    free(s->root_of);
    free(s->rewalk);
    free(s->atoms);
    free(s->nodes);
    free(s->kids);
    free(s->capture_field);
    free(s);
}

static uint32_t first_value(const tw_matcher *m, uint32_t interp, uint32_t f)
{
    return m->head_gen[interp][f] == m->gen ? m->head[interp][f] : 0;
}

/* A value as text to compare (numbers and booleans by their JSON text; containers and null: none). */
static const char *text_of(tw_matcher *m, tw__value *v, int cased, uint32_t *len)
{
    if (v->type != TW_JSON_STRING && v->type != TW_JSON_NUMBER && v->type != TW_JSON_TRUE &&
        v->type != TW_JSON_FALSE)
        return NULL;
    if (cased) {
        *len = v->len;
        return v->s;
    }
    return tw__value_fold(v, &m->scratch, len);
}

static int compare(int op, const char *a, uint32_t al, const char *b, uint32_t bl)
{
    switch (op) {
    case TW_FR_EQ: return al == bl && memcmp(a, b, al) == 0;
    case TW_FR_PREFIX: return al >= bl && memcmp(a, b, bl) == 0;
    case TW_FR_SUFFIX: return al >= bl && memcmp(a + al - bl, b, bl) == 0;
    default: return bl == 0 || (al >= bl && memmem(a, al, b, bl) != NULL);
    }
}

/* field OP referenced field: some pair of their values compares (neq: both present, none does). */
static int fieldref(tw_matcher *m, const tw__batom_c *a, uint32_t interp)
{
    tw__deep_expand(m, a->field, interp);
    tw__deep_expand(m, a->reffield, interp);
    uint32_t va = first_value(m, interp, a->field), vb0 = first_value(m, interp, a->reffield);
    if (!va || !vb0)
        return 0;
    int any = 0;
    for (; va && !any; va = m->vals[va].next) {
        uint32_t al;
        const char *at = text_of(m, &m->vals[va], a->cased, &al);
        for (uint32_t vb = vb0; at && vb && !any; vb = m->vals[vb].next) {
            uint32_t bl;
            const char *bt = text_of(m, &m->vals[vb], a->cased, &bl);
            if (++m->steps > m->rs->lim.match_steps)
                return 0;
            any = bt && compare(a->op, at, al, bt, bl);
        }
    }
    return a->neq ? !any : any;
}

static int eval(tw_matcher *m, const tw__bset *bs, uint32_t node, uint32_t interp)
{
    const tw__bnode *n = &bs->nodes[node];
    switch (n->op) {
    case TW_BN_ATOM: {
        const tw__batom_c *a = &bs->atoms[n->a];
        return a->kind == TW_BA_PRED ? tw__pred_possible(m, a->pred, interp) : fieldref(m, a, interp);
    }
    case TW_BN_NOT:
        return !eval(m, bs, n->a, interp);
    case TW_BN_AND:
        for (uint32_t i = 0; i < n->n; i++)
            if (!eval(m, bs, bs->kids[n->a + i], interp))
                return 0;
        return 1;
    case TW_BN_OR:
        for (uint32_t i = 0; i < n->n; i++)
            if (eval(m, bs, bs->kids[n->a + i], interp))
                return 1;
        return 0;
    case TW_BN_TRUE:
        return 1;
    default:
        return 0;
    }
}

int tw__bool_eval(tw_matcher *m, uint32_t rule, uint32_t interp)
{
    const tw__bset *bs = m->rs->bset;
    return eval(m, bs, bs->root_of[rule], interp);
}

size_t tw__matcher_capture(tw_matcher *m, uint32_t id, tw__value_fn fn, void *ctx)
{
    const tw__bset *bs = m->rs->bset;
    if (!bs || id >= bs->ncaptures)
        return 0;
    uint32_t f = bs->capture_field[id];
    tw__deep_expand(m, f, m->last_interp);
    /* Values are linked newest first: collect, then report in document order. */
    uint32_t n = 0;
    for (uint32_t v = first_value(m, m->last_interp, f); v; v = m->vals[v].next)
        n++;
    if (!n)
        return 0;
    uint32_t stack[64], *idx = n <= 64 ? stack : malloc(n * sizeof *idx);
    if (!idx)
        return 0;
    uint32_t k = n;
    for (uint32_t v = first_value(m, m->last_interp, f); v; v = m->vals[v].next)
        idx[--k] = v;
    for (uint32_t i = 0; i < n; i++)
        fn(ctx, &m->vals[idx[i]]);
    if (idx != stack)
        free(idx);
    return n;
}
