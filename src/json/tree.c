/* json/tree.c: accessors and builders of the JSON tree. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json_int.h"
#include "json/number.h"

tw_json_doc *tw__json_doc_new(void)
{
    tw_json_doc *d = calloc(1, sizeof *d);
    return d;
}

void tw_json_doc_free(tw_json_doc *doc)
{
    if (!doc)
        return;
    tw__arena_free(&doc->arena);
    free(doc);
}

const tw_json *tw_json_root(const tw_json_doc *doc) { return doc ? doc->root : NULL; }

tw_json_type tw_json_typeof(const tw_json *v) { return v ? (tw_json_type)v->type : TW_JSON_NULL; }

const char *tw_json_type_name(tw_json_type t)
{
    static const char *const names[] = {"null", "false", "true", "number", "string", "array", "object"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

const char *tw_json_string(const tw_json *v, size_t *len)
{
    if (!v || v->type != TW_JSON_STRING) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = v->n;
    return v->u.str;
}

double tw_json_number(const tw_json *v) { return v && v->type == TW_JSON_NUMBER ? v->u.num.d : NAN; }

const char *tw_json_number_text(const tw_json *v, size_t *len)
{
    if (!v || v->type != TW_JSON_NUMBER) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = v->n;
    return v->u.num.text;
}

size_t tw_json_size(const tw_json *v)
{
    return v && (v->type == TW_JSON_ARRAY || v->type == TW_JSON_OBJECT) ? v->n : 0;
}

const tw_json *tw_json_at(const tw_json *v, size_t i)
{
    if (!v || i >= tw_json_size(v))
        return NULL;
    return v->type == TW_JSON_ARRAY ? v->u.items[i] : v->u.members[i].val;
}

const char *tw_json_key(const tw_json *v, size_t i, size_t *len)
{
    if (!v || v->type != TW_JSON_OBJECT || i >= v->n)
        return NULL;
    if (len)
        *len = v->u.members[i].klen;
    return v->u.members[i].key;
}

const tw_json *tw_json_get(const tw_json *v, const char *key)
{
    if (!v || v->type != TW_JSON_OBJECT)
        return NULL;
    size_t klen = strlen(key);
    for (size_t i = v->n; i-- > 0;) {
        const tw_json_member *m = &v->u.members[i];
        if (m->klen == klen && memcmp(m->key, key, klen) == 0)
            return m->val;
    }
    return NULL;
}

unsigned tw_json_line(const tw_json *v) { return v ? v->line : 0; }
unsigned tw_json_column(const tw_json *v) { return v ? v->col : 0; }

char *tw_json_dump(const tw_json *v, size_t *len)
{
    tw_buf b = TW_BUF_INIT;
    if (tw__json_write(&b, v)) {
        tw__buf_free(&b);
        return NULL;
    }
    return tw__buf_detach(&b, len);
}

/* ---- builders ---- */

tw_json *tw__json_new(tw_json_doc *d, tw_json_type t)
{
    tw_json *v = tw__arena_calloc(&d->arena, sizeof *v);
    if (v)
        v->type = (uint8_t)t;
    return v;
}

tw_json *tw__json_new_string(tw_json_doc *d, const char *s, size_t len)
{
    tw_json *v = tw__json_new(d, TW_JSON_STRING);
    if (!v || !(v->u.str = tw__arena_strndup(&d->arena, s, len)))
        return NULL;
    v->n = len;
    return v;
}

tw_json *tw__json_new_number(tw_json_doc *d, const char *text, size_t len)
{
    tw_json *v = tw__json_new(d, TW_JSON_NUMBER);
    if (!v || !(v->u.num.text = tw__arena_strndup(&d->arena, text, len)))
        return NULL;
    v->n = len;
    v->u.num.d = tw__number_to_double(text, len);
    return v;
}

tw_json *tw__json_new_double(tw_json_doc *d, double x)
{
    char buf[64];
    int n;
    if (!isfinite(x))
        return tw__json_new(d, TW_JSON_NULL);
    if (x == floor(x) && fabs(x) < 1e15)
        n = snprintf(buf, sizeof buf, "%.0f", x);
    else
        n = snprintf(buf, sizeof buf, "%.17g", x);
    return tw__json_new_number(d, buf, (size_t)n);
}

static tw_status grow(tw_json_doc *d, tw_json *c, size_t elem)
{
    if (c->n < c->cap)
        return TW_OK;
    size_t cap = c->cap ? c->cap * 2 : 4;
    void *p = tw__arena_alloc(&d->arena, cap * elem);
    if (!p)
        return TW_ENOMEM;
    void *old = c->type == TW_JSON_ARRAY ? (void *)c->u.items : (void *)c->u.members;
    if (c->n)
        memcpy(p, old, c->n * elem);
    if (c->type == TW_JSON_ARRAY)
        c->u.items = p;
    else
        c->u.members = p;
    c->cap = cap;
    return TW_OK;
}

tw_status tw__json_push(tw_json_doc *d, tw_json *arr, tw_json *item)
{
    if (!item)
        return TW_ENOMEM;
    if (arr->type != TW_JSON_ARRAY)
        return TW_EINVAL;
    if (grow(d, arr, sizeof(tw_json *)))
        return TW_ENOMEM;
    arr->u.items[arr->n++] = item;
    return TW_OK;
}

tw_status tw__json_put(tw_json_doc *d, tw_json *obj, const char *key, size_t klen, tw_json *val)
{
    if (!val)
        return TW_ENOMEM;
    if (obj->type != TW_JSON_OBJECT)
        return TW_EINVAL;
    if (grow(d, obj, sizeof(tw_json_member)))
        return TW_ENOMEM;
    const char *k = tw__arena_strndup(&d->arena, key, klen);
    if (!k)
        return TW_ENOMEM;
    obj->u.members[obj->n++] = (tw_json_member){k, klen, val};
    return TW_OK;
}

tw_json *tw__json_copy(tw_json_doc *d, const tw_json *v)
{
    tw_json *c;
    switch (v->type) {
    case TW_JSON_STRING:
        c = tw__json_new_string(d, v->u.str, v->n);
        break;
    case TW_JSON_NUMBER:
        c = tw__json_new_number(d, v->u.num.text, v->n);
        break;
    case TW_JSON_ARRAY:
        c = tw__json_new(d, TW_JSON_ARRAY);
        for (size_t i = 0; c && i < v->n; i++)
            if (tw__json_push(d, c, tw__json_copy(d, v->u.items[i])))
                return NULL;
        break;
    case TW_JSON_OBJECT:
        c = tw__json_new(d, TW_JSON_OBJECT);
        for (size_t i = 0; c && i < v->n; i++) {
            const tw_json_member *m = &v->u.members[i];
            if (tw__json_put(d, c, m->key, m->klen, tw__json_copy(d, m->val)))
                return NULL;
        }
        break;
    default:
        c = tw__json_new(d, (tw_json_type)v->type);
    }
    if (c) {
        c->line = v->line;
        c->col = v->col;
    }
    return c;
}

int tw__json_equal(const tw_json *a, const tw_json *b)
{
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case TW_JSON_STRING:
        return a->n == b->n && memcmp(a->u.str, b->u.str, a->n) == 0;
    case TW_JSON_NUMBER:
        return a->u.num.d == b->u.num.d;
    case TW_JSON_ARRAY:
        if (a->n != b->n)
            return 0;
        for (size_t i = 0; i < a->n; i++)
            if (!tw__json_equal(a->u.items[i], b->u.items[i]))
                return 0;
        return 1;
    case TW_JSON_OBJECT:
        if (a->n != b->n)
            return 0;
        for (size_t i = 0; i < a->n; i++) {
            const tw_json_member *x = &a->u.members[i], *y = &b->u.members[i];
            if (x->klen != y->klen || memcmp(x->key, y->key, x->klen) || !tw__json_equal(x->val, y->val))
                return 0;
        }
        return 1;
    default:
        return 1;
    }
}
