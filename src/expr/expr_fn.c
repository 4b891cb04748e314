/* expr/expr_fn.c: the functions expressions may call (docs/FACTS.md describes each).
 *
 * Money is the first use (a table's monthly price), so rounding is decimal, half away from zero, and
 * forgiving of binary noise: 0.4745 stored as 0.47449999... still rounds to 0.47 + 0.01. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "expr/expr_int.h"
#include "json/json_int.h"

enum {
    F_IF, F_COALESCE, F_SUM, F_COUNT, F_MIN, F_MAX, F_ROUND, F_FORMAT, F_LOWER, F_UPPER, F_CONCAT, F_JOIN,
    F_CONTAINS, F_STARTSWITH, F_ENDSWITH, F_NUMBER, F_STRING, F_GET, F_FIRST, F_LAST,
};

const tw_expr_fn_info tw__expr_functions[] = {
    [F_IF] = {"if", 2, 3},
    [F_COALESCE] = {"coalesce", 1, -1},
    [F_SUM] = {"sum", 1, -1},
    [F_COUNT] = {"count", 1, 1},
    [F_MIN] = {"min", 1, -1},
    [F_MAX] = {"max", 1, -1},
    [F_ROUND] = {"round", 1, 2},
    [F_FORMAT] = {"format", 1, -1},
    [F_LOWER] = {"lower", 1, 1},
    [F_UPPER] = {"upper", 1, 1},
    [F_CONCAT] = {"concat", 1, -1},
    [F_JOIN] = {"join", 1, 2},
    [F_CONTAINS] = {"contains", 2, 2},
    [F_STARTSWITH] = {"startswith", 2, 2},
    [F_ENDSWITH] = {"endswith", 2, 2},
    [F_NUMBER] = {"number", 1, 1},
    [F_STRING] = {"string", 1, 1},
    [F_GET] = {"get", 2, 3},
    [F_FIRST] = {"first", 1, 1},
    [F_LAST] = {"last", 1, 1},
};
const size_t tw__expr_nfunctions = sizeof tw__expr_functions / sizeof tw__expr_functions[0];

/* Rounds to `places` decimals, half away from zero; a relative nudge of 1e-12 absorbs the binary
 * representation error of decimal inputs (far below a cent for any amount a template shows). */
static double round_to(double v, int places)
{
    if (places < 0)
        places = 0;
    if (places > 15)
        places = 15;
    double p = pow(10, places), s = v * p;
    s += copysign(fabs(s) * 1e-12, s);
    return round(s) / p;
}

/* Every number among the arguments, lists flattened one level (a [*] path gives a list). */
typedef struct numbers {
    double sum, min, max;
    size_t n;
} numbers;

static void add_number(numbers *ns, const tw_json *v)
{
    double d;
    if (!tw__xnumber(v, &d))
        return;
    ns->sum += d;
    if (!ns->n || d < ns->min)
        ns->min = d;
    if (!ns->n || d > ns->max)
        ns->max = d;
    ns->n++;
}

static void collect(numbers *ns, const tw_json *v)
{
    if (tw_json_typeof(v) == TW_JSON_ARRAY)
        for (size_t i = 0; i < tw_json_size(v); i++)
            add_number(ns, tw_json_at(v, i));
    else
        add_number(ns, v);
}

/* printf-like: %s (text), %d (rounded integer), %f (6 decimals), %.Nf (N decimals, 0..15), %%.
 * Anything else is copied as written: a format string can never read past its arguments. */
static tw_status format(tw_buf *b, const tw_json *fmt, const tw_json *const *args, size_t nargs)
{
    size_t n, next = 0;
    const char *f = tw_json_string(fmt, &n);
    tw_status rc = TW_OK;
    if (!f)
        return tw__xtext(b, fmt);
    for (size_t i = 0; i < n && !rc && b->len <= TW_EXPR_STRING_MAX; i++) {
        if (f[i] != '%' || i + 1 >= n) {
            rc = tw__buf_putc(b, f[i]);
            continue;
        }
        size_t j = i + 1;
        int places = -1;
        if (f[j] == '%') {
            rc = tw__buf_putc(b, '%');
            i = j;
            continue;
        }
        if (f[j] == '.' && j + 1 < n && isdigit((unsigned char)f[j + 1])) {
            places = f[j + 1] - '0';
            j += 2;
            if (j < n && isdigit((unsigned char)f[j]))
                places = places * 10 + (f[j++] - '0');
        }
        char conv = j < n ? f[j] : 0;
        if (!(conv == 's' || conv == 'd' || conv == 'f') || (places >= 0 && conv != 'f') || places > 15) {
            rc = tw__buf_putc(b, f[i]);                  /* not a conversion we know: literal text */
            continue;
        }
        const tw_json *a = next < nargs ? args[next++] : NULL;
        double d;
        if (conv == 's')
            rc = tw__xtext(b, a);
        else if (!tw__xnumber(a, &d))
            rc = tw__xtext(b, a);                       /* not a number: shown as it is */
        else if (conv == 'd')
            rc = tw__buf_printf(b, "%.0f", round_to(d, 0));
        else
            rc = tw__buf_printf(b, "%.*f", places < 0 ? 6 : places, round_to(d, places < 0 ? 6 : places));
        i = j;
    }
    return rc;
}

static const tw_json *text_result(xeval *x, tw_buf *b, tw_status rc)
{
    const tw_json *v = NULL;
    if (rc == TW_OK || rc == TW_ETOOBIG)
        v = tw__xstr(x, b->data ? b->data : "", b->len);
    else if (!x->rc)
        x->rc = tw__err(x->err, rc, "out of memory");
    tw__buf_free(b);
    return v;
}

static int str_affix(const tw_json *s, const tw_json *a, int suffix)
{
    size_t ls, la;
    const char *ss = tw_json_string(s, &ls), *sa = tw_json_string(a, &la);
    return ss && sa && la <= ls && memcmp(ss + (suffix ? ls - la : 0), sa, la) == 0;
}

const tw_json *tw__xcall(xeval *x, const xnode *n)
{
    const tw_json *a[32];
    /* if and coalesce evaluate only what they need */
    if (n->fn == F_IF) {
        const tw_json *c = tw__xeval(x, n->args[0]);
        if (x->rc)
            return NULL;
        if (tw__xtruthy(c))
            return tw__xeval(x, n->args[1]);
        return n->nargs > 2 ? tw__xeval(x, n->args[2]) : tw__xnull(x);
    }
    if (n->fn == F_COALESCE) {
        for (size_t i = 0; i < n->nargs; i++) {
            const tw_json *v = tw__xeval(x, n->args[i]);
            if (x->rc)
                return NULL;
            if (tw_json_typeof(v) != TW_JSON_NULL &&
                !(tw_json_typeof(v) == TW_JSON_STRING && !*tw_json_string(v, NULL)))
                return v;
        }
        return tw__xnull(x);
    }
    for (size_t i = 0; i < n->nargs; i++)
        if (!(a[i] = tw__xeval(x, n->args[i])) || x->rc)
            return NULL;
    tw_buf b = TW_BUF_INIT;            /* texts are capped as they grow (tw__xtext) */
    numbers ns = {0, 0, 0, 0};
    tw_status rc = TW_OK;
    double d;
    size_t len;
    const char *s;
    switch (n->fn) {
    case F_SUM:
    case F_MIN:
    case F_MAX:
        for (size_t i = 0; i < n->nargs; i++)
            collect(&ns, a[i]);
        if (n->fn == F_SUM)
            return tw__xnum(x, ns.sum);
        return ns.n ? tw__xnum(x, n->fn == F_MIN ? ns.min : ns.max) : tw__xnull(x);
    case F_COUNT:
        return tw__xnum(x, tw_json_typeof(a[0]) == TW_JSON_NULL ? 0
                           : tw_json_typeof(a[0]) == TW_JSON_ARRAY || tw_json_typeof(a[0]) == TW_JSON_OBJECT
                               ? (double)tw_json_size(a[0]) : 1);
    case F_ROUND: {
        double places = 0;
        if (!tw__xnumber(a[0], &d) || (n->nargs > 1 && !tw__xnumber(a[1], &places)))
            return tw__xnull(x);
        return tw__xnum(x, round_to(d, (int)places));
    }
    case F_FORMAT:
        return text_result(x, &b, format(&b, a[0], a + 1, n->nargs - 1));
    case F_LOWER:
    case F_UPPER:
        if (!(s = tw_json_string(a[0], &len)))
            return a[0];
        for (size_t i = 0; i < len && i <= TW_EXPR_STRING_MAX && !rc; i++)
            rc = tw__buf_putc(&b, (char)(n->fn == F_LOWER ? tolower((unsigned char)s[i]) : toupper((unsigned char)s[i])));
        return text_result(x, &b, rc);
    case F_CONCAT:
        for (size_t i = 0; i < n->nargs && !rc; i++)
            rc = tw__xtext(&b, a[i]);
        return text_result(x, &b, rc);
    case F_JOIN: {
        const char *sep = n->nargs > 1 && tw_json_string(a[1], NULL) ? tw_json_string(a[1], NULL) : ", ";
        if (tw_json_typeof(a[0]) != TW_JSON_ARRAY) {
            rc = tw__xtext(&b, a[0]);
            return text_result(x, &b, rc);
        }
        for (size_t i = 0; i < tw_json_size(a[0]) && !rc && b.len <= TW_EXPR_STRING_MAX; i++)
            if (!(rc = i ? tw__buf_puts(&b, sep) : TW_OK))
                rc = tw__xtext(&b, tw_json_at(a[0], i));
        return text_result(x, &b, rc);
    }
    case F_CONTAINS:
        if (tw_json_typeof(a[0]) == TW_JSON_ARRAY) {
            for (size_t i = 0; i < tw_json_size(a[0]); i++)
                if (tw__json_equal(tw_json_at(a[0], i), a[1]))
                    return tw__xbool(x, 1);
            return tw__xbool(x, 0);
        }
        if (tw_json_typeof(a[0]) == TW_JSON_STRING && tw_json_typeof(a[1]) == TW_JSON_STRING) {
            size_t ln;
            const char *hay = tw_json_string(a[0], &len), *needle = tw_json_string(a[1], &ln);
            return tw__xbool(x, memmem(hay, len, needle, ln) != NULL);
        }
        return tw__xbool(x, 0);
    case F_STARTSWITH:
    case F_ENDSWITH:
        return tw__xbool(x, str_affix(a[0], a[1], n->fn == F_ENDSWITH));
    case F_NUMBER:
        return tw__xnumber(a[0], &d) ? tw__xnum(x, d) : tw__xnull(x);
    case F_STRING:
        if (tw_json_typeof(a[0]) == TW_JSON_STRING)
            return a[0];
        rc = tw__xtext(&b, a[0]);
        return text_result(x, &b, rc);
    case F_GET: {
        const tw_json *v = NULL;
        if (tw_json_typeof(a[1]) == TW_JSON_STRING && tw_json_typeof(a[0]) == TW_JSON_OBJECT)
            v = tw_json_get(a[0], tw_json_string(a[1], NULL));
        else if (tw_json_typeof(a[0]) == TW_JSON_ARRAY && tw__xnumber(a[1], &d) && d >= 0 && d == floor(d) &&
                 d < (double)tw_json_size(a[0]))
            v = tw_json_at(a[0], (size_t)d);
        return v && tw_json_typeof(v) != TW_JSON_NULL ? v : n->nargs > 2 ? a[2] : tw__xnull(x);
    }
    case F_FIRST:
    case F_LAST:
        if (tw_json_typeof(a[0]) != TW_JSON_ARRAY)
            return a[0];
        return tw_json_size(a[0]) ? tw_json_at(a[0], n->fn == F_FIRST ? 0 : tw_json_size(a[0]) - 1) : tw__xnull(x);
    default:
        return tw__xnull(x);
    }
}
