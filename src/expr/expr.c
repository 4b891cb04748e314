/* expr/expr.c: the expression parser: text -> syntax tree, names and functions resolved at compile
 * time so that a typo is a configuration error, not a silent null in an alert.
 *
 * Precedence, lowest first: or; and; not; comparisons (one per level, no chains); + -; * / %;
 * unary -; postfix steps (.name [expr] [*]); primaries. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "expr/expr_int.h"
#include "json/json_int.h"

typedef struct parser {
    tw_expr *e;
    const char *s;
    size_t len, pos;
    int depth;
    const char *const *names;
    size_t nnames;
    tw_error *err;
    tw_status rc;
} parser;

__attribute__((format(printf, 3, 4)))
static void *fail(parser *p, size_t at, const char *fmt, ...)
{
    if (!p->rc) {
        char what[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        p->rc = tw__err(p->err, TW_ECONFIG, "column %zu: %s", at + 1, what);
    }
    return NULL;
}

static void *oom(parser *p)
{
    if (!p->rc)
        p->rc = tw__err(p->err, TW_ENOMEM, "out of memory");
    return NULL;
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len && isspace((unsigned char)p->s[p->pos]))
        p->pos++;
}

static int peek(parser *p, const char *tok)
{
    skip_ws(p);
    size_t n = strlen(tok);
    return p->len - p->pos >= n && memcmp(p->s + p->pos, tok, n) == 0;
}

static int ident_char(int c, int first)
{
    return isalpha(c) || c == '_' || (!first && isdigit(c));
}

/* A keyword (and, or, not, true, ...) at the cursor, not the start of a longer name. */
static int peek_word(parser *p, const char *w)
{
    size_t n = strlen(w);
    return peek(p, w) && (p->pos + n == p->len || !ident_char((unsigned char)p->s[p->pos + n], 0));
}

static int accept(parser *p, const char *tok)
{
    if (!peek(p, tok))
        return 0;
    p->pos += strlen(tok);
    return 1;
}

static xnode *new_node(parser *p, xnode_kind k)
{
    xnode *n = tw__arena_calloc(&p->e->arena, sizeof *n);
    if (!n)
        return oom(p);
    n->kind = k;
    return n;
}

static xnode *binary(parser *p, int op, xnode *a, xnode *b)
{
    if (!a || !b)
        return NULL;
    xnode *n = new_node(p, XN_BINARY);
    xnode **args = tw__arena_alloc(&p->e->arena, 2 * sizeof *args);
    if (!n || !args)
        return oom(p);
    args[0] = a;
    args[1] = b;
    n->op = op;
    n->args = args;
    n->nargs = 2;
    return n;
}

static xnode *expr(parser *p);

/* "..." or '...' with JSON escapes in double quotes; single quotes take \' and \\ only. */
static xnode *string_lit(parser *p)
{
    char q = p->s[p->pos];
    size_t start = p->pos++;
    tw_buf b = TW_BUF_INIT;
    tw__buf_init(&b, TW_EXPR_TEXT_MAX);
    while (p->pos < p->len && p->s[p->pos] != q) {
        char c = p->s[p->pos++];
        if (c == '\\' && p->pos < p->len) {
            char d = p->s[p->pos++];
            if (q == '"' && strchr("\"\\/bfnrt", d))
                c = d == 'b' ? '\b' : d == 'f' ? '\f' : d == 'n' ? '\n' : d == 'r' ? '\r' : d == 't' ? '\t' : d;
            else if (q == '\'' && (d == '\'' || d == '\\'))
                c = d;
            else {
                tw__buf_free(&b);
                return fail(p, p->pos - 2, "unknown escape in a string");
            }
        }
        if (tw__buf_putc(&b, c)) {
            tw__buf_free(&b);
            return oom(p);
        }
    }
    if (p->pos >= p->len) {
        tw__buf_free(&b);
        return fail(p, start, "unterminated string");
    }
    p->pos++;
    xnode *n = new_node(p, XN_LITERAL);
    if (n && !(n->lit = tw__json_new_string(p->e->lits, b.data ? b.data : "", b.len)))
        n = oom(p);
    tw__buf_free(&b);
    return n;
}

static xnode *number_lit(parser *p)
{
    size_t start = p->pos;
    while (p->pos < p->len && (isdigit((unsigned char)p->s[p->pos]) || p->s[p->pos] == '.'))
        p->pos++;
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        while (p->pos < p->len && isdigit((unsigned char)p->s[p->pos]))
            p->pos++;
    }
    char buf[64];
    size_t n = p->pos - start;
    if (n >= sizeof buf)
        return fail(p, start, "number too long");
    memcpy(buf, p->s + start, n);
    buf[n] = '\0';
    char *end;
    double d = strtod(buf, &end);
    if (*end || buf[0] == '.' || buf[n - 1] == '.')
        return fail(p, start, "not a number: %s", buf);
    xnode *x = new_node(p, XN_LITERAL);
    if (x && !(x->lit = tw__json_new_double(p->e->lits, d)))
        return oom(p);
    return x;
}

static xnode *literal(parser *p, tw_json_type t)
{
    xnode *n = new_node(p, XN_LITERAL);
    if (n && !(n->lit = tw__json_new(p->e->lits, t)))
        return oom(p);
    return n;
}

static int find_fn(const char *name, size_t len)
{
    for (size_t i = 0; i < tw__expr_nfunctions; i++)
        if (strlen(tw__expr_functions[i].name) == len && memcmp(tw__expr_functions[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

static xnode *call(parser *p, const char *name, size_t len, size_t at)
{
    char nm[80];
    snprintf(nm, sizeof nm, "%.*s", (int)(len < 64 ? len : 64), name);
    int fn = find_fn(name, len);
    if (fn < 0)
        return fail(p, at, "unknown function \"%s\" (docs/FACTS.md lists them)", nm);
    xnode *n = new_node(p, XN_CALL);
    if (!n)
        return NULL;
    n->fn = fn;
    xnode *args[32];
    size_t na = 0;
    if (!accept(p, ")")) {
        do {
            if (na == sizeof args / sizeof args[0])
                return fail(p, p->pos, "%s: too many arguments", nm);
            if (!(args[na++] = expr(p)))
                return NULL;
        } while (accept(p, ","));
        if (!accept(p, ")"))
            return fail(p, p->pos, "expected ',' or ')' in the arguments of %s", nm);
    }
    const tw_expr_fn_info *fi = &tw__expr_functions[fn];
    if ((int)na < fi->min_args || (fi->max_args >= 0 && (int)na > fi->max_args)) {
        char why[160];
        if (fi->max_args < 0)
            snprintf(why, sizeof why, "%s() takes at least %d argument%s", nm, fi->min_args, fi->min_args == 1 ? "" : "s");
        else if (fi->min_args == fi->max_args)
            snprintf(why, sizeof why, "%s() takes %d argument%s", nm, fi->min_args, fi->min_args == 1 ? "" : "s");
        else
            snprintf(why, sizeof why, "%s() takes %d to %d arguments", nm, fi->min_args, fi->max_args);
        return fail(p, at, "%s", why);
    }
    n->args = tw__arena_alloc(&p->e->arena, (na ? na : 1) * sizeof *n->args);
    if (!n->args)
        return oom(p);
    memcpy(n->args, args, na * sizeof *args);
    n->nargs = na;
    return n;
}

static xnode *primary(parser *p)
{
    skip_ws(p);
    if (p->pos >= p->len)
        return fail(p, p->pos, "unexpected end of the expression");
    char c = p->s[p->pos];
    size_t at = p->pos;
    if (c == '"' || c == '\'')
        return string_lit(p);
    if (isdigit((unsigned char)c) || (c == '.' && p->pos + 1 < p->len && isdigit((unsigned char)p->s[p->pos + 1])))
        return number_lit(p);
    if (c == '$') {
        p->pos++;
        return new_node(p, XN_ROOT);
    }
    if (c == '(') {
        p->pos++;
        xnode *n = expr(p);
        if (n && !accept(p, ")"))
            return fail(p, p->pos, "expected ')'");
        return n;
    }
    if (!ident_char((unsigned char)c, 1))
        return fail(p, at, "unexpected '%s'", (char[]){c, 0});
    size_t len = 0;
    while (p->pos + len < p->len && ident_char((unsigned char)p->s[p->pos + len], 0))
        len++;
    const char *name = p->s + p->pos;
    p->pos += len;
    if (accept(p, "("))
        return call(p, name, len, at);
    static const struct { const char *w; tw_json_type t; } kw[] = {
        {"true", TW_JSON_TRUE}, {"false", TW_JSON_FALSE}, {"null", TW_JSON_NULL}};
    for (size_t i = 0; i < 3; i++)
        if (strlen(kw[i].w) == len && memcmp(kw[i].w, name, len) == 0)
            return literal(p, kw[i].t);
    if (len == 4 && memcmp(name, "data", 4) == 0)
        return new_node(p, XN_DATA);
    for (size_t i = 0; i < p->nnames; i++)
        if (strlen(p->names[i]) == len && memcmp(p->names[i], name, len) == 0) {
            xnode *n = new_node(p, XN_NAME);
            if (n)
                n->ref = (int)i;
            return n;
        }
    char nm[80];
    snprintf(nm, sizeof nm, "%.*s", (int)(len < 64 ? len : 64), name);
    if (find_fn(name, len) >= 0)
        return fail(p, at, "%s is a function: call it with ( )", nm);
    return fail(p, at, "unknown name \"%s\" (a fact defined above, data, or $ for the event)", nm);
}

/* .name, ['name'], [expr], [*] after a primary. */
static xnode *postfix(parser *p)
{
    xnode *base = primary(p);
    if (!base)
        return NULL;
    xstep steps[64];
    size_t ns = 0;
    int multi = 0;
    for (;;) {
        /* no whitespace before a step: "$ .a" is not a path, and "1 .5" stays an error */
        if (p->pos >= p->len || (p->s[p->pos] != '.' && p->s[p->pos] != '['))
            break;
        if (ns == sizeof steps / sizeof steps[0])
            return fail(p, p->pos, "more than 64 steps in one path");
        xstep *st = &steps[ns];
        memset(st, 0, sizeof *st);
        if (p->s[p->pos] == '.') {
            size_t start = ++p->pos, len = 0;
            /* member names as JSONPath takes them ("$.detail-type"): anything but separators and
             * operators; so "$.a - 1" needs its spaces */
            while (start + len < p->len && !strchr(" \t\r\n.[]()<>=!+*/%,'\"", p->s[start + len]))
                len++;
            if (!len)
                return fail(p, start, "a name must follow '.'");
            st->kind = XS_NAME;
            st->name = tw__arena_strndup(&p->e->arena, p->s + start, len);   /* the text is the caller's */
            st->len = len;
            if (!st->name)
                return oom(p);
            p->pos += len;
        } else {
            p->pos++;
            if (accept(p, "*")) {
                st->kind = XS_WILD;
                multi = 1;
            } else {
                st->kind = XS_INDEX;
                if (!(st->index = expr(p)))
                    return NULL;
            }
            if (!accept(p, "]"))
                return fail(p, p->pos, "expected ']'");
        }
        ns++;
    }
    if (!ns)
        return base;
    xnode *n = new_node(p, XN_PATH);
    xnode **args = tw__arena_alloc(&p->e->arena, sizeof *args);
    if (!n || !args || !(n->steps = tw__arena_alloc(&p->e->arena, ns * sizeof *n->steps)))
        return oom(p);
    args[0] = base;
    n->args = args;
    n->nargs = 1;
    memcpy(n->steps, steps, ns * sizeof *steps);
    n->nsteps = ns;
    n->multi = multi;
    return n;
}

static xnode *unary(parser *p)
{
    size_t at = p->pos;
    if (accept(p, "-")) {
        if (++p->depth > TW_EXPR_DEPTH_MAX)
            return fail(p, at, "nested too deeply");
        xnode *a = unary(p);
        p->depth--;
        xnode *n = a ? new_node(p, XN_NEG) : NULL;
        xnode **args = n ? tw__arena_alloc(&p->e->arena, sizeof *args) : NULL;
        if (!n || !args)
            return a ? oom(p) : NULL;
        args[0] = a;
        n->args = args;
        n->nargs = 1;
        return n;
    }
    return postfix(p);
}

static xnode *mul(parser *p)
{
    xnode *a = unary(p);
    for (;;) {
        int op = accept(p, "*") ? XOP_MUL : accept(p, "/") ? XOP_DIV : accept(p, "%") ? XOP_MOD : 0;
        if (!op || !a)
            return a;
        a = binary(p, op, a, unary(p));
    }
}

static xnode *add(parser *p)
{
    xnode *a = mul(p);
    for (;;) {
        int op = accept(p, "+") ? XOP_ADD : accept(p, "-") ? XOP_SUB : 0;
        if (!op || !a)
            return a;
        a = binary(p, op, a, mul(p));
    }
}

static xnode *cmp(parser *p)
{
    xnode *a = add(p);
    int op = accept(p, "==") ? XOP_EQ : accept(p, "!=") ? XOP_NE : accept(p, "<=") ? XOP_LE
             : accept(p, ">=") ? XOP_GE : accept(p, "<") ? XOP_LT : accept(p, ">") ? XOP_GT : 0;
    if (!op || !a)
        return a;
    return binary(p, op, a, add(p));
}

static xnode *not_(parser *p)
{
    size_t at = p->pos;
    if (peek_word(p, "not")) {
        p->pos += 3;
        if (++p->depth > TW_EXPR_DEPTH_MAX)
            return fail(p, at, "nested too deeply");
        xnode *a = not_(p);
        p->depth--;
        xnode *n = a ? new_node(p, XN_NOT) : NULL;
        xnode **args = n ? tw__arena_alloc(&p->e->arena, sizeof *args) : NULL;
        if (!n || !args)
            return a ? oom(p) : NULL;
        args[0] = a;
        n->args = args;
        n->nargs = 1;
        return n;
    }
    return cmp(p);
}

static xnode *and_(parser *p)
{
    xnode *a = not_(p);
    while (a && peek_word(p, "and")) {
        p->pos += 3;
        a = binary(p, XOP_AND, a, not_(p));
    }
    return a;
}

static xnode *expr(parser *p)
{
    size_t at = p->pos;
    if (++p->depth > TW_EXPR_DEPTH_MAX)
        return fail(p, at, "nested too deeply");
    xnode *a = and_(p);
    while (a && peek_word(p, "or")) {
        p->pos += 2;
        a = binary(p, XOP_OR, a, and_(p));
    }
    p->depth--;
    return a;
}

tw_status tw__expr_compile(const char *text, size_t len, const char *const *names, size_t nnames, tw_expr **out,
                           tw_error *err)
{
    *out = NULL;
    if (len > TW_EXPR_TEXT_MAX)
        return tw__err(err, TW_ELIMIT, "longer than %d bytes", TW_EXPR_TEXT_MAX);
    tw_expr *e = calloc(1, sizeof *e);
    if (!e || !(e->lits = tw__json_doc_new())) {
        free(e);
        return tw__err(err, TW_ENOMEM, "out of memory");
    }
    parser p = {e, text, len, 0, 0, names, nnames, err, TW_OK};
    e->root = expr(&p);
    skip_ws(&p);
    if (e->root && p.pos < len)
        fail(&p, p.pos, "unexpected '%s'", (char[]){text[p.pos], 0});
    if (!p.rc && !e->root)
        p.rc = tw__err(err, TW_ECONFIG, "empty expression");
    if (p.rc) {
        tw__expr_free(e);
        return p.rc;
    }
    *out = e;
    return TW_OK;
}

void tw__expr_free(tw_expr *e)
{
    if (!e)
        return;
    tw_json_doc_free(e->lits);
    tw__arena_free(&e->arena);
    free(e);
}

static void data_refs(const xnode *n, void (*fn)(void *, const char *, size_t), void *ctx)
{
    if (!n)
        return;
    if (n->kind == XN_PATH && n->args[0]->kind == XN_DATA && n->nsteps) {
        const xstep *st = &n->steps[0];
        if (st->kind == XS_NAME)
            fn(ctx, st->name, st->len);
        else if (st->kind == XS_INDEX && st->index->kind == XN_LITERAL && tw_json_typeof(st->index->lit) == TW_JSON_STRING) {
            size_t len;
            const char *s = tw_json_string(st->index->lit, &len);
            fn(ctx, s, len);
        }
    }
    for (size_t i = 0; i < n->nargs; i++)
        data_refs(n->args[i], fn, ctx);
    for (size_t i = 0; i < n->nsteps; i++)
        data_refs(n->steps[i].index, fn, ctx);
}

void tw__expr_data_refs(const tw_expr *e, void (*fn)(void *ctx, const char *name, size_t len), void *ctx)
{
    data_refs(e->root, fn, ctx);
}
