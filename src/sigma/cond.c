/* sigma/cond.c: the condition grammar, loosest to tightest: or, and, not, `1 of` / `all of`, ( ).
 *
 *   cond := and ("or" and)* ; and := not ("and" not)* ; not := "not" not | atom
 *   atom := "(" cond ")" | ("1" | "all") "of" ("them" | PATTERN) | IDENT
 *
 * Keywords are case-insensitive; identifiers and patterns are [A-Za-z0-9_.-] and `*` (patterns).
 * Recursive descent with a depth cap, so a hostile condition cannot exhaust the stack. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sigma/sigma_int.h"

enum { T_END = 0, T_LP, T_RP, T_AND, T_OR, T_NOT, T_OF, T_ONE, T_ALL, T_THEM, T_ID, T_PIPE, T_BAD };

typedef struct lexer {
    const char *s, *p, *end;
    tw_arena *a;
    int tok;
    const char *ts;             /* token start */
    size_t tn;
    unsigned depth;
    char *why;
    size_t size;
    int failed;
} lexer;

static int word_char(char c) { return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.' || c == '*'; }

static int is_kw(const char *s, size_t n, const char *kw)
{
    return strlen(kw) == n && strncasecmp(s, kw, n) == 0;
}

static void next(lexer *l)
{
    while (l->p < l->end && isspace((unsigned char)*l->p))
        l->p++;
    l->ts = l->p;
    l->tn = 0;
    if (l->p >= l->end) {
        l->tok = T_END;
        return;
    }
    char c = *l->p;
    if (c == '(' || c == ')' || c == '|') {
        l->tok = c == '(' ? T_LP : c == ')' ? T_RP : T_PIPE;
        l->p++;
        l->tn = 1;
        return;
    }
    if (!word_char(c)) {
        l->tok = T_BAD;
        l->tn = 1;
        return;
    }
    while (l->p < l->end && word_char(*l->p))
        l->p++;
    l->tn = (size_t)(l->p - l->ts);
    const char *w = l->ts;
    size_t n = l->tn;
    l->tok = is_kw(w, n, "and") ? T_AND : is_kw(w, n, "or") ? T_OR : is_kw(w, n, "not") ? T_NOT
           : is_kw(w, n, "of") ? T_OF : is_kw(w, n, "all") ? T_ALL : is_kw(w, n, "them") ? T_THEM
           : n == 1 && w[0] == '1' ? T_ONE : T_ID;
}

static sg_cond *fail(lexer *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static sg_cond *fail(lexer *l, const char *fmt, ...)
{
    if (!l->failed) {
        char msg[240];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(l->why, l->size, "column %u: %s", (unsigned)(l->ts - l->s) + 1, msg);
        l->failed = 1;
    }
    return NULL;
}

static const char *shown(lexer *l)
{
    static __thread char buf[48];
    if (l->tok == T_END)
        return "the end";
    snprintf(buf, sizeof buf, "'%.*s'", (int)(l->tn > 40 ? 40 : l->tn), l->ts);
    return buf;
}

static sg_cond *node(lexer *l, sg_cop op)
{
    sg_cond *c = tw__arena_calloc(l->a, sizeof *c);
    if (!c)
        return fail(l, "%s", "out of memory");
    c->op = op;
    c->col = (unsigned)(l->ts - l->s) + 1;
    return c;
}

static sg_cond *cond(lexer *l);

static sg_cond *atom(lexer *l)
{
    if (l->tok == T_LP) {
        next(l);
        sg_cond *c = cond(l);
        if (!c)
            return NULL;
        if (l->tok != T_RP)
            return fail(l, "expected ')' instead of %s", shown(l));
        next(l);
        return c;
    }
    if (l->tok == T_ONE || l->tok == T_ALL) {
        sg_cond *c = node(l, SC_OF);
        if (!c)
            return NULL;
        c->all = l->tok == T_ALL;
        next(l);
        if (l->tok != T_OF)
            return fail(l, "expected 'of' instead of %s", shown(l));
        next(l);
        if (l->tok == T_THEM) {
            c->name = NULL;
        } else if (l->tok == T_ID) {
            if (!(c->name = tw__arena_strndup(l->a, l->ts, l->tn)))
                return fail(l, "%s", "out of memory");
            c->nlen = (uint32_t)l->tn;
        } else {
            return fail(l, "expected 'them' or a search identifier pattern after 'of' instead of %s", shown(l));
        }
        next(l);
        return c;
    }
    if (l->tok == T_ID) {
        if (isdigit((unsigned char)l->ts[0]) && l->p < l->end) {
            /* "2 of x": only 1 and all are quantifiers */
            const char *q = l->p;
            while (q < l->end && isspace((unsigned char)*q))
                q++;
            if (l->end - q >= 2 && strncasecmp(q, "of", 2) == 0 && (q + 2 == l->end || !word_char(q[2])))
                return fail(l, "%s: only '1 of' and 'all of' are Sigma quantifiers", shown(l));
        }
        if (memchr(l->ts, '*', l->tn))
            return fail(l, "%s: a wildcard needs '1 of' or 'all of' before it", shown(l));
        sg_cond *c = node(l, SC_ID);
        if (!c || !(c->name = tw__arena_strndup(l->a, l->ts, l->tn)))
            return c ? fail(l, "%s", "out of memory") : NULL;
        c->nlen = (uint32_t)l->tn;
        next(l);
        return c;
    }
    if (l->tok == T_PIPE)
        return fail(l, "%s", "'|' starts a Sigma v1 aggregation (count(), near), which Sigma v2 replaced "
                             "with correlation rules: write a correlation rule instead");
    if (l->tok == T_BAD)
        return fail(l, "unexpected character %s", shown(l));
    return fail(l, "expected a search identifier, 'not', '1 of', 'all of' or '(' instead of %s", shown(l));
}

static sg_cond *unary(lexer *l)
{
    if (++l->depth > TW_SIGMA_COND_DEPTH)
        return fail(l, "%s", "nested too deeply");
    sg_cond *c;
    if (l->tok == T_NOT) {
        if (!(c = node(l, SC_NOT)))
            return NULL;
        next(l);
        if (!(c->a = unary(l)))
            return NULL;
    } else {
        c = atom(l);
    }
    l->depth--;
    return c;
}

static sg_cond *binary(lexer *l, int tok, sg_cop op, sg_cond *(*sub)(lexer *))
{
    sg_cond *left = sub(l);
    while (left && l->tok == tok) {
        sg_cond *c = node(l, op);
        if (!c)
            return NULL;
        next(l);
        c->a = left;
        if (!(c->b = sub(l)))
            return NULL;
        left = c;
    }
    return left;
}

static sg_cond *and_list(lexer *l) { return binary(l, T_AND, SC_AND, unary); }

static sg_cond *cond(lexer *l)
{
    if (++l->depth > TW_SIGMA_COND_DEPTH)
        return fail(l, "%s", "nested too deeply");
    sg_cond *c = binary(l, T_OR, SC_OR, and_list);
    l->depth--;
    return c;
}

sg_cond *tw__sigma_cond_parse(tw_arena *a, const char *text, size_t len, char *why, size_t size)
{
    lexer l = {text, text, text + len, a, 0, text, 0, 0, why, size, 0};
    if (len > TW_SIGMA_COND_MAX) {
        snprintf(why, size, "longer than %u bytes", TW_SIGMA_COND_MAX);
        return NULL;
    }
    next(&l);
    if (l.tok == T_END) {
        snprintf(why, size, "empty");
        return NULL;
    }
    sg_cond *c = cond(&l);
    if (c && l.tok != T_END) {
        if (l.tok == T_PIPE)
            return fail(&l, "%s", "'|' starts a Sigma v1 aggregation (count(), near), which Sigma v2 replaced "
                                   "with correlation rules: write a correlation rule instead");
        return fail(&l, "expected 'and', 'or' or the end instead of %s", shown(&l));
    }
    return c;
}

int tw__sigma_glob_name(const char *p, size_t pn, const char *name, size_t n)
{
    /* Backtracking on the last star: identifiers are short. */
    size_t i = 0, j = 0, star = (size_t)-1, mark = 0;
    while (j < n) {
        if (i < pn && p[i] == '*') {
            star = i++;
            mark = j;
        } else if (i < pn && p[i] == name[j]) {
            i++;
            j++;
        } else if (star != (size_t)-1) {
            i = star + 1;
            j = ++mark;
        } else {
            return 0;
        }
    }
    while (i < pn && p[i] == '*')
        i++;
    return i == pn;
}
