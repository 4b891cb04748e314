/* sigma/values.c: wildcard and escape parsing, placeholders, and the encoding modifiers. */
#include "sigma/values.h"

#include <stdint.h>
#include <string.h>

#include "common/utf8.h"
#include "pattern/pattern_int.h"

static const char *push(tw_arena *a, sg_vlist *l, sg_vkind kind, char *s, size_t n)
{
    (void)a;
    if (l->n >= l->max)
        return "the value expands to too many values";
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        sg_val *v = tw__arena_alloc(a, cap * sizeof *v);
        if (!v)
            return "out of memory";
        if (l->n)
            memcpy(v, l->v, l->n * sizeof *v);
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = (sg_val){kind, s, n};
    return NULL;
}

/* Sigma escapes: `\` before `*`, `?` or `\` makes that character literal; any other `\` is itself.
 * Unescaped `*` and `?` are wildcards. */
static size_t parse_glob(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\' && i + 1 < n && (s[i + 1] == '*' || s[i + 1] == '?' || s[i + 1] == '\\'))
            out[o++] = s[++i];
        else if (c == '*')
            out[o++] = TW_GLOB_STAR;
        else if (c == '?')
            out[o++] = TW_GLOB_ONE;
        else
            out[o++] = c;
    }
    return o;
}

const char *tw__sv_add(tw_arena *a, sg_vlist *l, sg_vkind kind, const char *s, size_t n)
{
    char *o = tw__arena_alloc(a, n + 1);
    if (!o)
        return "out of memory";
    size_t len = n;
    if (kind == SV_GLOB)
        len = parse_glob(s, n, o);
    else
        memcpy(o, s, n);
    o[len] = '\0';
    return push(a, l, kind, o, len);
}

int tw__sv_has_wild(const sg_val *v)
{
    return v->kind == SV_GLOB && (memchr(v->s, TW_GLOB_STAR, v->n) || memchr(v->s, TW_GLOB_ONE, v->n));
}

/* ---- placeholders ---- */

typedef struct piece {
    const char *s;
    size_t n;
    const tw_json *values;      /* a placeholder's list (or single string), NULL for literal text */
} piece;

static const char *expand_rec(tw_arena *a, const piece *pc, size_t np, size_t i, const char *buf, size_t len,
                              sg_vkind kind, sg_vlist *out)
{
    if (i == np)
        return tw__sv_add(a, out, kind, buf, len);
    if (!pc[i].values) {
        char *nb = tw__arena_alloc(a, len + pc[i].n + 1);
        if (!nb)
            return "out of memory";
        memcpy(nb, buf, len);
        memcpy(nb + len, pc[i].s, pc[i].n);
        return expand_rec(a, pc, np, i + 1, nb, len + pc[i].n, kind, out);
    }
    const tw_json *v = pc[i].values;
    size_t count = tw_json_typeof(v) == TW_JSON_ARRAY ? tw_json_size(v) : 1;
    for (size_t k = 0; k < count; k++) {
        const tw_json *e = tw_json_typeof(v) == TW_JSON_ARRAY ? tw_json_at(v, k) : v;
        size_t en;
        const char *es;
        if (tw_json_typeof(e) == TW_JSON_STRING)
            es = tw_json_string(e, &en);
        else if (tw_json_typeof(e) == TW_JSON_NUMBER)
            es = tw_json_number_text(e, &en);
        else
            return "a placeholder's values must be strings or numbers";
        char *nb = tw__arena_alloc(a, len + en + 1);
        if (!nb)
            return "out of memory";
        memcpy(nb, buf, len);
        memcpy(nb + len, es, en);
        const char *why = expand_rec(a, pc, np, i + 1, nb, len + en, kind, out);
        if (why)
            return why;
    }
    return NULL;
}

const char *tw__sv_expand(tw_arena *a, const tw_json *table, const char *s, size_t n, sg_vkind kind, sg_vlist *out,
                          const char **missing)
{
    /* Split into literal text and %name% pieces. */
    piece pc[64];
    size_t np = 0;
    char *text = tw__arena_alloc(a, n + 1);
    if (!text)
        return "out of memory";
    size_t tn = 0, tstart = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n && s[i + 1] == '%') {
            text[tn++] = '%';
            i++;
            continue;
        }
        const char *close = s[i] == '%' ? memchr(s + i + 1, '%', n - i - 1) : NULL;
        if (!close || close == s + i + 1) {
            text[tn++] = s[i];
            continue;
        }
        size_t nl = (size_t)(close - s - i - 1);
        if (np + 2 > sizeof pc / sizeof pc[0])
            return "too many placeholders in one value";
        if (tn > tstart)
            pc[np++] = (piece){text + tstart, tn - tstart, NULL};
        tstart = tn;
        char *name = tw__arena_strndup(a, s + i + 1, nl);
        if (!name)
            return "out of memory";
        const tw_json *vals = table ? tw_json_get(table, name) : NULL;
        if (!vals || (tw_json_typeof(vals) == TW_JSON_ARRAY && tw_json_size(vals) == 0)) {
            *missing = name;
            return "placeholder not configured";
        }
        pc[np++] = (piece){NULL, 0, vals};
        i = (size_t)(close - s);
    }
    if (tn > tstart)
        pc[np++] = (piece){text + tstart, tn - tstart, NULL};
    return expand_rec(a, pc, np, 0, "", 0, kind, out);
}

/* ---- windash ---- */

static const char *const dashes[] = {"-", "/", "\xe2\x80\x93", "\xe2\x80\x94", "\xe2\x80\x95"};
#define NDASH 5

/* Length of the dash at s (0 when none). */
static size_t dash_at(const char *s, size_t left)
{
    for (int d = 0; d < NDASH; d++) {
        size_t dl = strlen(dashes[d]);
        if (dl <= left && memcmp(s, dashes[d], dl) == 0)
            return dl;
    }
    return 0;
}

static const char *windash_rec(tw_arena *a, const sg_val *v, size_t i, char *buf, size_t len, sg_vlist *out)
{
    while (i < v->n) {
        size_t dl = dash_at(v->s + i, v->n - i);
        if (!dl) {
            buf[len++] = v->s[i++];
            continue;
        }
        for (int d = 0; d < NDASH; d++) {
            char *nb = tw__arena_alloc(a, v->n * 3 + 1);
            if (!nb)
                return "out of memory";
            memcpy(nb, buf, len);
            size_t l2 = strlen(dashes[d]);
            memcpy(nb + len, dashes[d], l2);
            const char *why = windash_rec(a, v, i + dl, nb, len + l2, out);
            if (why)
                return why;
        }
        return NULL;
    }
    buf[len] = '\0';
    return push(a, out, v->kind, buf, len);
}

const char *tw__sv_windash(tw_arena *a, sg_vlist *l)
{
    sg_vlist out = {NULL, 0, 0, l->max};
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i].kind == SV_BYTES)
            return "windash cannot follow an encoding modifier";
        char *buf = tw__arena_alloc(a, l->v[i].n * 3 + 1);
        if (!buf)
            return "out of memory";
        const char *why = windash_rec(a, &l->v[i], 0, buf, 0, &out);
        if (why)
            return strcmp(why, "the value expands to too many values") == 0
                       ? "windash expands the values to too many permutations" : why;
    }
    *l = out;
    return NULL;
}

/* ---- encodings ---- */

/* The bytes a value stands for before an encoding: wildcards cannot be encoded. */
static const char *plain_bytes(const sg_val *v)
{
    if (v->kind == SV_GLOB && tw__sv_has_wild(v))
        return "an encoding modifier needs a value without wildcards";
    return NULL;
}

static size_t b64(const unsigned char *in, size_t n, char *out)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t x = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = al[x >> 18];
        out[o++] = al[x >> 12 & 63];
        out[o++] = al[x >> 6 & 63];
        out[o++] = al[x & 63];
    }
    if (i < n) {
        uint32_t x = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = al[x >> 18];
        out[o++] = al[x >> 12 & 63];
        out[o++] = i + 1 < n ? al[x >> 6 & 63] : '=';
        out[o++] = '=';
    }
    return o;
}

const char *tw__sv_base64(tw_arena *a, sg_vlist *l, int offsets)
{
    sg_vlist out = {NULL, 0, 0, l->max};
    for (size_t i = 0; i < l->n; i++) {
        const sg_val *v = &l->v[i];
        const char *why = plain_bytes(v);
        if (why)
            return why;
        for (int shift = 0; shift < (offsets ? 3 : 1); shift++) {
            /* base64offset: the value shifted by 0, 1 or 2 bytes inside a longer text; keep only the
             * characters that do not depend on its neighbours. */
            static const size_t start[3] = {0, 2, 3};
            unsigned char *in = tw__arena_alloc(a, v->n + 2);
            char *enc = tw__arena_alloc(a, (v->n + 4) / 3 * 4 + 8);
            if (!in || !enc)
                return "out of memory";
            memset(in, ' ', (size_t)shift);
            memcpy(in + shift, v->s, v->n);
            size_t en = b64(in, v->n + (size_t)shift, enc), s0 = offsets ? start[shift] : 0, cut = 0;
            if (offsets) {
                size_t r = (v->n + (size_t)shift) % 3;
                cut = r == 1 ? 3 : r == 2 ? 2 : 0;
            }
            if (s0 + cut >= en)
                continue;   /* too short to leave anything stable */
            enc[en - cut] = '\0';
            if ((why = push(a, &out, SV_BYTES, enc + s0, en - cut - s0)))
                return why;
        }
    }
    if (!out.n)
        return "the value is too short for base64offset";
    *l = out;
    return NULL;
}

const char *tw__sv_utf16(tw_arena *a, sg_vlist *l, int big_endian, int bom)
{
    for (size_t i = 0; i < l->n; i++) {
        sg_val *v = &l->v[i];
        const char *why = plain_bytes(v);
        if (why)
            return why;
        unsigned char *o = tw__arena_alloc(a, v->n * 4 + 3), *p = o;
        if (!o)
            return "out of memory";
        if (bom) {
            *p++ = big_endian ? 0xfe : 0xff;
            *p++ = big_endian ? 0xff : 0xfe;
        }
        const unsigned char *s = (const unsigned char *)v->s, *end = s + v->n;
        while (s < end) {
            uint32_t cp;
            size_t k = tw__utf8_seq(s, end, &cp);
            if (!k)
                return "a utf16 modifier needs UTF-8 text";
            s += k;
            uint16_t u[2];
            int nu = 1;
            if (cp >= 0x10000) {
                cp -= 0x10000;
                u[0] = (uint16_t)(0xd800 | cp >> 10);
                u[1] = (uint16_t)(0xdc00 | (cp & 0x3ff));
                nu = 2;
            } else {
                u[0] = (uint16_t)cp;
            }
            for (int j = 0; j < nu; j++) {
                *p++ = (unsigned char)(big_endian ? u[j] >> 8 : u[j] & 0xff);
                *p++ = (unsigned char)(big_endian ? u[j] & 0xff : u[j] >> 8);
            }
        }
        *p = '\0';
        *v = (sg_val){SV_BYTES, (char *)o, (size_t)(p - o)};
    }
    return NULL;
}
