/* json/parse.c: strict JSON text -> tree (recursive descent, depth-capped). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "json/json_int.h"
#include "json/lex.h"
#include "json/number.h"

typedef struct parser {
    const char *start, *p, *end;
    unsigned line;            /* current line (1-based) */
    const char *line_start;   /* first byte of the current line */
    unsigned depth, max_depth;
    tw_json_doc *doc;
    tw_error *err;
    tw_buf stack;             /* scratch: children pointers while a container is open */
} parser;

static void where(const parser *ps, const char *at, unsigned *line, unsigned *col)
{
    /* Recount from the start: error path only, and it handles `at` before line_start. */
    unsigned l = 1;
    const char *ls = ps->start;
    for (const char *q = ps->start; q < at && q < ps->end; q++) {
        if (*q == '\n') {
            l++;
            ls = q + 1;
        }
    }
    *line = l;
    *col = (unsigned)(at - ls) + 1;
}

static tw_status perr(parser *ps, const char *at, tw_status code, const char *why)
{
    unsigned line, col;
    where(ps, at, &line, &col);
    if (at >= ps->end)
        return tw__err(ps->err, code, "line %u, column %u: %s (input ends at byte %zu)", line, col,
                       why, (size_t)(ps->end - ps->start));
    return tw__err(ps->err, code, "line %u, column %u: %s", line, col, why);
}

static void ws(parser *ps)
{
    const char *p = ps->p, *end = ps->end;
    while (p < end) {
        char c = *p;
        if (c == '\n') {
            ps->line++;
            ps->line_start = p + 1;
        } else if (c != ' ' && c != '\t' && c != '\r') {
            break;
        }
        p++;
    }
    ps->p = p;
}

static tw_json *node(parser *ps, tw_json_type t)
{
    tw_json *v = tw__json_new(ps->doc, t);
    if (v) {
        v->line = ps->line;
        v->col = (unsigned)(ps->p - ps->line_start) + 1;
    }
    return v;
}

static tw_status parse_value(parser *ps, tw_json **out);

/* Reads a string token at ps->p (the opening quote) into the arena. */
static tw_status parse_string(parser *ps, const char **s, size_t *len)
{
    tw_lex_err e;
    int escaped = 0;
    const char *body = ps->p + 1;
    const char *close = tw__lex_string(body, ps->end, &escaped, &e);
    if (!close)
        return perr(ps, e.at, e.code, e.why);
    size_t raw = (size_t)(close - body);
    char *dst = tw__arena_alloc(&ps->doc->arena, raw + 1);
    if (!dst)
        return tw__err(ps->err, TW_ENOMEM, "out of memory parsing JSON");
    size_t n = escaped ? tw__lex_unescape(body, raw, dst) : (memcpy(dst, body, raw), raw);
    dst[n] = '\0';
    *s = dst;
    *len = n;
    ps->p = close + 1;
    return TW_OK;
}

/* Moves the children collected on the scratch stack since `mark` into the container. */
static tw_status close_container(parser *ps, tw_json *v, size_t mark, size_t elem)
{
    size_t bytes = ps->stack.len - mark;
    void *dst = tw__arena_alloc(&ps->doc->arena, bytes ? bytes : 1);
    if (!dst)
        return tw__err(ps->err, TW_ENOMEM, "out of memory parsing JSON");
    if (bytes)
        memcpy(dst, ps->stack.data + mark, bytes);
    ps->stack.len = mark;
    v->n = v->cap = bytes / elem;
    if (v->type == TW_JSON_ARRAY)
        v->u.items = dst;
    else
        v->u.members = dst;
    return TW_OK;
}

static tw_status push_scratch(parser *ps, const void *p, size_t n)
{
    tw_status rc = tw__buf_append(&ps->stack, p, n);
    return rc ? tw__err(ps->err, rc, "out of memory parsing JSON") : TW_OK;
}

static tw_status parse_array(parser *ps, tw_json *v)
{
    size_t mark = ps->stack.len;
    ps->p++; /* [ */
    ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        return close_container(ps, v, mark, sizeof(tw_json *));
    }
    for (;;) {
        tw_json *item;
        tw_status rc = parse_value(ps, &item);
        if (rc)
            return rc;
        if ((rc = push_scratch(ps, &item, sizeof item)))
            return rc;
        ws(ps);
        if (ps->p >= ps->end)
            return perr(ps, ps->p, TW_EJSON, "unterminated array (expected ',' or ']')");
        if (*ps->p == ',') {
            ps->p++;
            ws(ps);
            continue;
        }
        if (*ps->p == ']') {
            ps->p++;
            return close_container(ps, v, mark, sizeof(tw_json *));
        }
        return perr(ps, ps->p, TW_EJSON, "expected ',' or ']' in array");
    }
}

static tw_status parse_object(parser *ps, tw_json *v)
{
    size_t mark = ps->stack.len;
    ps->p++; /* { */
    ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return close_container(ps, v, mark, sizeof(tw_json_member));
    }
    for (;;) {
        if (ps->p >= ps->end || *ps->p != '"')
            return perr(ps, ps->p, TW_EJSON, "expected a string key in object");
        tw_json_member m;
        tw_status rc = parse_string(ps, &m.key, &m.klen);
        if (rc)
            return rc;
        ws(ps);
        if (ps->p >= ps->end || *ps->p != ':')
            return perr(ps, ps->p, TW_EJSON, "expected ':' after object key");
        ps->p++;
        ws(ps);
        if ((rc = parse_value(ps, &m.val)))
            return rc;
        if ((rc = push_scratch(ps, &m, sizeof m)))
            return rc;
        ws(ps);
        if (ps->p >= ps->end)
            return perr(ps, ps->p, TW_EJSON, "unterminated object (expected ',' or '}')");
        if (*ps->p == ',') {
            ps->p++;
            ws(ps);
            continue;
        }
        if (*ps->p == '}') {
            ps->p++;
            return close_container(ps, v, mark, sizeof(tw_json_member));
        }
        return perr(ps, ps->p, TW_EJSON, "expected ',' or '}' in object");
    }
}

static tw_status parse_value(parser *ps, tw_json **out)
{
    if (ps->p >= ps->end)
        return perr(ps, ps->p, TW_EJSON, "unexpected end of input (expected a value)");
    char c = *ps->p;
    tw_json *v;
    tw_lex_err e;
    tw_status rc = TW_OK;
    switch (c) {
    case '{':
    case '[':
        if (ps->depth >= ps->max_depth) {
            char why[96];
            snprintf(why, sizeof why, "nesting deeper than %u levels", ps->max_depth);
            return perr(ps, ps->p, TW_EDEPTH, why);
        }
        if (!(v = node(ps, c == '{' ? TW_JSON_OBJECT : TW_JSON_ARRAY)))
            return tw__err(ps->err, TW_ENOMEM, "out of memory parsing JSON");
        ps->depth++;
        rc = c == '{' ? parse_object(ps, v) : parse_array(ps, v);
        ps->depth--;
        break;
    case '"':
        if (!(v = node(ps, TW_JSON_STRING)))
            return tw__err(ps->err, TW_ENOMEM, "out of memory parsing JSON");
        rc = parse_string(ps, &v->u.str, &v->n);
        break;
    case 't': case 'f': case 'n': {
        int type;
        const char *q = tw__lex_literal(ps->p, ps->end, &type, &e);
        if (!q)
            return perr(ps, e.at, e.code, e.why);
        if (!(v = node(ps, (tw_json_type)type)))
            return tw__err(ps->err, TW_ENOMEM, "out of memory parsing JSON");
        ps->p = q;
        break;
    }
    default:
        if (c == '-' || (c >= '0' && c <= '9')) {
            const char *q = tw__lex_number(ps->p, ps->end, &e);
            if (!q)
                return perr(ps, e.at, e.code, e.why);
            if (!(v = node(ps, TW_JSON_NUMBER)))
                return tw__err(ps->err, TW_ENOMEM, "out of memory parsing JSON");
            size_t n = (size_t)(q - ps->p);
            char *text = tw__arena_strndup(&ps->doc->arena, ps->p, n);
            if (!text)
                return tw__err(ps->err, TW_ENOMEM, "out of memory parsing JSON");
            v->u.num.text = text;
            v->u.num.d = tw__number_to_double(text, n);
            v->n = n;
            ps->p = q;
            break;
        }
        return perr(ps, ps->p, TW_EJSON, "unexpected character (expected a value)");
    }
    if (rc)
        return rc;
    *out = v;
    return TW_OK;
}

tw_status tw_json_parse(const char *text, size_t len, const tw_limits *lim, tw_json_doc **out,
                        tw_error *err)
{
    tw_limits def;
    if (!lim) {
        tw_limits_default(&def);
        lim = &def;
    }
    *out = NULL;
    if (len > lim->event_max)
        return tw__err(err, TW_ETOOBIG, "JSON text of %zu bytes exceeds the limit of %zu bytes", len,
                       lim->event_max);
    parser ps = {.start = text, .p = text, .end = text + len, .line = 1, .line_start = text,
                 .max_depth = lim->json_depth, .err = err};
    tw__buf_init(&ps.stack, 0);
    tw_status rc = TW_ENOMEM;
    if (!(ps.doc = tw__json_doc_new())) {
        tw__err(err, rc, "out of memory parsing JSON");
        goto out;
    }
    ws(&ps);
    if ((rc = parse_value(&ps, &ps.doc->root)))
        goto out;
    ws(&ps);
    if (ps.p != ps.end) {
        rc = perr(&ps, ps.p, TW_EJSON, "unexpected data after the JSON value");
        goto out;
    }
    *out = ps.doc;
    ps.doc = NULL;
out:
    tw__buf_free(&ps.stack);
    tw_json_doc_free(ps.doc);
    return rc;
}
