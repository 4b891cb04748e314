/* expr/expr_eval.c: evaluating a compiled expression against one event.
 *
 * Values are JSON nodes: borrowed from the event, the data tables or earlier facts when an
 * expression only selects, built in env->doc when it computes. Nothing here fails on data (a
 * missing member is null; arithmetic on a non-number is null); only the work cap and memory stop
 * an evaluation. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "expr/expr_int.h"
#include "json/json_int.h"

static int count_step(xeval *x, size_t n)
{
    x->steps += n;
    if (x->steps > TW_EXPR_STEPS_MAX && !x->rc)
        x->rc = tw__err(x->err, TW_ELIMIT, "more than %d evaluation steps", TW_EXPR_STEPS_MAX);
    return !x->rc;
}

static const tw_json *built(xeval *x, tw_json *v)
{
    if (!v && !x->rc)
        x->rc = tw__err(x->err, TW_ENOMEM, "out of memory");
    return v;
}

const tw_json *tw__xnull(xeval *x) { return built(x, tw__json_new(x->env->doc, TW_JSON_NULL)); }
const tw_json *tw__xbool(xeval *x, int v) { return built(x, tw__json_new(x->env->doc, v ? TW_JSON_TRUE : TW_JSON_FALSE)); }
/* The shortest text that reads back as v (0.475, not 0.47499999999999998): facts are shown to people. */
const tw_json *tw__xnum(xeval *x, double v)
{
    char buf[40];
    if (!isfinite(v))
        return tw__xnull(x);
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, sizeof buf, "%.0f", v);
    } else {
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(buf, sizeof buf, "%.*g", prec, v);
            if (strtod(buf, NULL) == v)
                break;
        }
    }
    return built(x, tw__json_new_number(x->env->doc, buf, strlen(buf)));
}

const tw_json *tw__xstr(xeval *x, const char *s, size_t len)
{
    if (len > TW_EXPR_STRING_MAX) {
        /* cut on a character boundary and mark the cut */
        size_t keep = TW_EXPR_STRING_MAX - 3;
        while (keep > 0 && ((unsigned char)s[keep] & 0xc0) == 0x80)
            keep--;
        char *t = malloc(keep + 3);
        if (!t)
            return built(x, NULL);
        memcpy(t, s, keep);
        memcpy(t + keep, "\xe2\x80\xa6", 3);
        const tw_json *v = built(x, tw__json_new_string(x->env->doc, t, keep + 3));
        free(t);
        return v;
    }
    return built(x, tw__json_new_string(x->env->doc, s, len));
}

int tw__xtruthy(const tw_json *v)
{
    switch (tw_json_typeof(v)) {
    case TW_JSON_NULL:
    case TW_JSON_FALSE:
        return 0;
    case TW_JSON_NUMBER:
        return tw_json_number(v) != 0;
    case TW_JSON_STRING: {
        size_t n;
        tw_json_string(v, &n);
        return n != 0;
    }
    case TW_JSON_ARRAY:
    case TW_JSON_OBJECT:
        return tw_json_size(v) != 0;
    default:
        return 1;
    }
}

int tw__xnumber(const tw_json *v, double *out)
{
    if (tw_json_typeof(v) == TW_JSON_NUMBER) {
        *out = tw_json_number(v);
        return 1;
    }
    if (tw_json_typeof(v) != TW_JSON_STRING)
        return 0;
    size_t n;
    const char *s = tw_json_string(v, &n);
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return 0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    double d = strtod(buf, &end);
    if (*end || !isfinite(d) || buf[0] == ' ' || buf[0] == '\t' || buf[0] == '\n')
        return 0;
    *out = d;
    return 1;
}

/* Appends at most what keeps b just over TW_EXPR_STRING_MAX (tw__xstr then cuts and marks it). */
static tw_status append_capped(tw_buf *b, const char *s, size_t n)
{
    size_t room = b->len > TW_EXPR_STRING_MAX ? 0 : TW_EXPR_STRING_MAX + 1 - b->len;
    return tw__buf_append(b, s, n < room ? n : room);
}

tw_status tw__xtext(tw_buf *b, const tw_json *v)
{
    size_t n;
    switch (tw_json_typeof(v)) {
    case TW_JSON_STRING: {
        const char *s = tw_json_string(v, &n);
        return append_capped(b, s, n);
    }
    case TW_JSON_NULL:
        return TW_OK;
    default: {
        tw_buf t = TW_BUF_INIT;
        tw_status rc = tw__json_write(&t, v);
        if (!rc)
            rc = append_capped(b, t.data ? t.data : "", t.len);
        tw__buf_free(&t);
        return rc;
    }
    }
}

/* ---- paths ---- */

static const tw_json *member(const tw_json *obj, const char *name, size_t len)
{
    if (tw_json_typeof(obj) != TW_JSON_OBJECT)
        return NULL;
    for (size_t i = tw_json_size(obj); i-- > 0;) {     /* the last of duplicates, as everywhere */
        size_t kl;
        const char *k = tw_json_key(obj, i, &kl);
        if (kl == len && memcmp(k, name, len) == 0)
            return tw_json_at(obj, i);
    }
    return NULL;
}

/* The first step from `$`: extra's members (facts, enrichment) come before the event's own. */
static const tw_json *root_member(xeval *x, const char *name, size_t len)
{
    const tw_json *v = member(x->env->extra, name, len);
    return v ? v : member(x->env->event, name, len);
}

/* Applies steps[i..] to v, appending every result to out (multi) or returning the one result. */
static const tw_json *walk(xeval *x, const tw_json *v, int from_root, const xstep *steps, size_t i, size_t nsteps,
                           tw_json *out)
{
    for (; v && i < nsteps; i++) {
        if (!count_step(x, 1))
            return NULL;
        const xstep *st = &steps[i];
        if (st->kind == XS_WILD) {
            size_t n = tw_json_size(v);
            tw_json_type t = tw_json_typeof(v);
            if (t != TW_JSON_ARRAY && t != TW_JSON_OBJECT)
                return NULL;
            for (size_t k = 0; k < n && !x->rc; k++)
                walk(x, tw_json_at(v, k), 0, steps, i + 1, nsteps, out);
            return NULL;
        }
        if (st->kind == XS_NAME) {
            v = from_root && i == 0 ? root_member(x, st->name, st->len) : member(v, st->name, st->len);
            continue;
        }
        const tw_json *key = tw__xeval(x, st->index);
        double d;
        if (x->rc)
            return NULL;
        if (tw_json_typeof(key) == TW_JSON_STRING) {
            size_t kl;
            const char *k = tw_json_string(key, &kl);
            v = from_root && i == 0 ? root_member(x, k, kl) : member(v, k, kl);
        } else if (tw_json_typeof(key) == TW_JSON_NUMBER && tw_json_typeof(v) == TW_JSON_ARRAY &&
                   (d = tw_json_number(key), d == floor(d))) {
            /* negative indexes count from the end: [-1] is the last element */
            double n = (double)tw_json_size(v);
            v = d >= 0 && d < n ? tw_json_at(v, (size_t)d) : d < 0 && -d <= n ? tw_json_at(v, (size_t)(n + d)) : NULL;
        } else {
            v = NULL;
        }
    }
    if (out && v && !x->rc && count_step(x, 1) && tw__json_push(x->env->doc, out, (tw_json *)v))
        built(x, NULL);
    return v;
}

static const tw_json *path(xeval *x, const xnode *n)
{
    const xnode *base = n->args[0];
    int from_root = base->kind == XN_ROOT;
    const tw_json *v = from_root ? x->env->event : tw__xeval(x, base);
    if (x->rc)
        return NULL;
    if (!n->multi) {
        const tw_json *r = walk(x, v, from_root, n->steps, 0, n->nsteps, NULL);
        return r ? r : tw__xnull(x);
    }
    tw_json *out = tw__json_new(x->env->doc, TW_JSON_ARRAY);
    if (!out)
        return built(x, NULL);
    walk(x, v, from_root, n->steps, 0, n->nsteps, out);
    return out;
}

/* ---- operators ---- */

static int compare(const tw_json *a, const tw_json *b, int *out)
{
    double x, y;
    if (tw_json_typeof(a) == TW_JSON_NUMBER && tw_json_typeof(b) == TW_JSON_NUMBER) {
        x = tw_json_number(a);
        y = tw_json_number(b);
        *out = x < y ? -1 : x > y;
        return 1;
    }
    if (tw_json_typeof(a) == TW_JSON_STRING && tw_json_typeof(b) == TW_JSON_STRING) {
        size_t la, lb;
        const char *sa = tw_json_string(a, &la), *sb = tw_json_string(b, &lb);
        int c = memcmp(sa, sb, la < lb ? la : lb);
        *out = c ? c : la < lb ? -1 : la > lb;
        return 1;
    }
    return 0;
}

static const tw_json *binary(xeval *x, const xnode *n)
{
    const tw_json *a = tw__xeval(x, n->args[0]);
    if (x->rc)
        return NULL;
    if (n->op == XOP_AND || n->op == XOP_OR) {     /* short-circuit; the result is a boolean */
        int ta = tw__xtruthy(a);
        if (n->op == XOP_AND ? !ta : ta)
            return tw__xbool(x, ta);
        const tw_json *b = tw__xeval(x, n->args[1]);
        return x->rc ? NULL : tw__xbool(x, tw__xtruthy(b));
    }
    const tw_json *b = tw__xeval(x, n->args[1]);
    if (x->rc)
        return NULL;
    int c;
    switch (n->op) {
    case XOP_EQ:
        return tw__xbool(x, tw__json_equal(a, b));
    case XOP_NE:
        return tw__xbool(x, !tw__json_equal(a, b));
    case XOP_LT:
    case XOP_LE:
    case XOP_GT:
    case XOP_GE:
        if (!compare(a, b, &c))
            return tw__xbool(x, 0);                 /* different kinds are not ordered */
        return tw__xbool(x, n->op == XOP_LT ? c < 0 : n->op == XOP_LE ? c <= 0 : n->op == XOP_GT ? c > 0 : c >= 0);
    default:
        break;
    }
    double l, r;
    if (!tw__xnumber(a, &l) || !tw__xnumber(b, &r))
        return tw__xnull(x);
    double v = n->op == XOP_ADD ? l + r : n->op == XOP_SUB ? l - r : n->op == XOP_MUL ? l * r
               : r == 0 ? NAN : n->op == XOP_DIV ? l / r : fmod(l, r);
    return isfinite(v) ? tw__xnum(x, v) : tw__xnull(x);
}

const tw_json *tw__xeval(xeval *x, const xnode *n)
{
    if (x->rc || !count_step(x, 1))
        return NULL;
    double d;
    switch (n->kind) {
    case XN_LITERAL:
        return n->lit;
    case XN_ROOT:
        return x->env->event ? x->env->event : tw__xnull(x);
    case XN_DATA:
        return x->env->data ? x->env->data : tw__xnull(x);
    case XN_NAME:
        return x->env->values && x->env->values[n->ref] ? x->env->values[n->ref] : tw__xnull(x);
    case XN_CALL:
        return tw__xcall(x, n);
    case XN_NEG: {
        const tw_json *a = tw__xeval(x, n->args[0]);
        if (x->rc)
            return NULL;
        return tw__xnumber(a, &d) ? tw__xnum(x, -d) : tw__xnull(x);
    }
    case XN_NOT: {
        const tw_json *a = tw__xeval(x, n->args[0]);
        return x->rc ? NULL : tw__xbool(x, !tw__xtruthy(a));
    }
    case XN_BINARY:
        return binary(x, n);
    case XN_PATH:
        return path(x, n);
    }
    return tw__xnull(x);
}

tw_status tw__expr_eval(const tw_expr *e, const tw_expr_env *env, const tw_json **out, tw_error *err)
{
    xeval x = {env, 0, err, TW_OK};
    const tw_json *v = tw__xeval(&x, e->root);
    if (x.rc) {
        *out = NULL;
        return x.rc;
    }
    *out = v ? v : tw__xnull(&x);
    return x.rc;
}
