/* sigma/compile.c: a Sigma detection section -> a boolean rule: every field item becomes a predicate
 * (a tw__leaf on the field's deep reading), search identifiers and the condition become the AND / OR /
 * NOT tree above them, and the tree's positive requirements become anchors for the rule set's index. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "json/json_int.h"
#include "json/number.h"
#include "pattern/casefold.h"
#include "pattern/regex.h"
#include "sigma/sigma_int.h"
#include "sigma/values.h"

/* ---- modifiers ---- */

enum {
    M_CONTAINS = 0, M_STARTSWITH, M_ENDSWITH, M_ALL, M_EXISTS, M_CASED, M_NEQ, M_WINDASH, M_RE, M_RE_I,
    M_RE_M, M_RE_S, M_BASE64, M_BASE64OFFSET, M_UTF16LE, M_UTF16BE, M_UTF16, M_LT, M_LTE, M_GT, M_GTE,
    M_MINUTE, M_HOUR, M_DAY, M_WEEK, M_MONTH, M_YEAR, M_CIDR, M_EXPAND, M_FIELDREF, M_COUNT_
};

static const char *const mod_names[M_COUNT_] = {
    "contains", "startswith", "endswith", "all", "exists", "cased", "neq", "windash", "re", "i", "m", "s",
    "base64", "base64offset", "utf16le", "utf16be", "utf16", "lt", "lte", "gt", "gte", "minute", "hour", "day",
    "week", "month", "year", "cidr", "expand", "fieldref"};

#define BIT(m) (1u << (m))
#define STRING_OPS (BIT(M_CONTAINS) | BIT(M_STARTSWITH) | BIT(M_ENDSWITH))
#define NUMERIC_OPS (BIT(M_LT) | BIT(M_LTE) | BIT(M_GT) | BIT(M_GTE))
#define TIME_PARTS (BIT(M_MINUTE) | BIT(M_HOUR) | BIT(M_DAY) | BIT(M_WEEK) | BIT(M_MONTH) | BIT(M_YEAR))
#define ENCODINGS (BIT(M_BASE64) | BIT(M_BASE64OFFSET) | BIT(M_UTF16LE) | BIT(M_UTF16BE) | BIT(M_UTF16))
#define RE_FLAGS (BIT(M_RE_I) | BIT(M_RE_M) | BIT(M_RE_S))

/* ---- the builder ---- */

typedef struct ident {
    const char *name;
    size_t len;
    const tw_json *val;
    uint32_t node;              /* compiled tree, NONE until first used */
} ident;

typedef struct bld {
    const tw_sigma *s;
    tw__brule *r;
    tw_arena *a;
    tw__batom *atoms;
    uint32_t natoms, capatoms;
    tw__bnode *nodes;
    uint32_t nnodes, capnodes;
    uint32_t *kids;
    uint32_t nkids, capkids;
    ident *ids;
    size_t nids;
    unsigned line;
    char *why;
    size_t size;
    int failed;
} bld;

#define NONE UINT32_MAX

static uint32_t fail(bld *b, const tw_json *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static uint32_t fail(bld *b, const tw_json *at, const char *fmt, ...)
{
    if (!b->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->why, b->size, fmt, ap);
        va_end(ap);
        b->line = at ? tw_json_line(at) : 0;
        b->failed = 1;
    }
    return NONE;
}

static int grow(void **p, uint32_t n, uint32_t *cap, size_t elem)
{
    if (n < *cap)
        return 1;
    uint32_t c = *cap ? *cap * 2 : 16;
    void *q = realloc(*p, c * elem);
    if (!q)
        return 0;
    *p = q;
    *cap = c;
    return 1;
}

static uint32_t add_node(bld *b, uint8_t op, uint32_t a, uint32_t n)
{
    if (!grow((void **)&b->nodes, b->nnodes, &b->capnodes, sizeof *b->nodes))
        return fail(b, NULL, "out of memory");
    b->nodes[b->nnodes] = (tw__bnode){op, a, n};
    return b->nnodes++;
}

/* AND / OR over nodes (one node stands for itself). */
static uint32_t add_list(bld *b, uint8_t op, const uint32_t *kids, uint32_t n)
{
    if (n == 1)
        return kids[0];
    if (n == 0)
        return add_node(b, op == TW_BN_AND ? TW_BN_TRUE : TW_BN_FALSE, 0, 0);
    uint32_t first = b->nkids;
    for (uint32_t i = 0; i < n; i++) {
        if (!grow((void **)&b->kids, b->nkids, &b->capkids, sizeof *b->kids))
            return fail(b, NULL, "out of memory");
        b->kids[b->nkids++] = kids[i];
    }
    return add_node(b, op, first, n);
}

static uint32_t add_atom(bld *b, const tw__batom *at)
{
    if (b->natoms >= TW_SIGMA_ATOMS_MAX)
        return fail(b, NULL, "more than %u field tests in one rule", TW_SIGMA_ATOMS_MAX);
    if (!grow((void **)&b->atoms, b->natoms, &b->capatoms, sizeof *b->atoms))
        return fail(b, NULL, "out of memory");
    b->atoms[b->natoms] = *at;
    return add_node(b, TW_BN_ATOM, b->natoms++, 0);
}

/* ---- matchers ---- */

typedef struct mlist {
    tw__matcher *m;
    uint32_t n, cap;
} mlist;

static tw__matcher *new_matcher(bld *b, mlist *l)
{
    if (l->n >= TW_SIGMA_EXPAND_MAX * 2) {
        fail(b, NULL, "one field test expands to too many values");
        return NULL;
    }
    if (l->n == l->cap) {
        uint32_t cap = l->cap ? l->cap * 2 : 8;
        tw__matcher *m = tw__arena_alloc(b->a, cap * sizeof *m);
        if (!m) {
            fail(b, NULL, "out of memory");
            return NULL;
        }
        if (l->n)
            memcpy(m, l->m, l->n * sizeof *m);
        l->m = m;
        l->cap = cap;
    }
    tw__matcher *m = &l->m[l->n++];
    memset(m, 0, sizeof *m);
    m->sigma = 1;
    return m;
}

/* Case folding of text that may hold the two wildcard bytes (never UTF-8): fold the runs between. */
static char *fold_glob(bld *b, const char *s, size_t n, size_t *out)
{
    tw_buf f = TW_BUF_INIT;
    size_t i = 0;
    int ok = 1;
    while (i < n && ok) {
        size_t j = i;
        while (j < n && s[j] != TW_GLOB_STAR && s[j] != TW_GLOB_ONE)
            j++;
        if (j > i)
            ok = tw__casefold(s + i, j - i, &f) == TW_OK;
        if (ok && j < n)
            ok = tw__buf_putc(&f, s[j]) == TW_OK;
        i = j + 1;
    }
    char *r = ok ? tw__arena_strndup(b->a, f.data ? f.data : "", f.len) : NULL;
    *out = f.len;
    tw__buf_free(&f);
    if (!r)
        fail(b, NULL, "out of memory");
    return r;
}

/* The matcher of one string value under a string operator (none, contains, startswith, endswith). */
static int string_matcher(bld *b, mlist *l, const sg_val *v, int op, int cased)
{
    tw__matcher *m = new_matcher(b, l);
    if (!m)
        return 0;
    if (v->kind == SV_BYTES) {
        /* encoded bytes compare exactly */
        m->kind = op == M_STARTSWITH ? TW_M_PREFIX : op == M_ENDSWITH ? TW_M_SUFFIX
                  : op == M_CONTAINS ? TW_M_WILDCARD : TW_M_STRING;
        m->s = v->s;
        m->len = (uint32_t)v->n;
        if (op == M_CONTAINS) {
            m->flags = 1; /* distinct from an EventBridge wildcard of the same text */
            m->wc.nseg = 3;
            m->wc.seg = tw__arena_alloc(b->a, 3 * sizeof(char *));
            m->wc.seglen = tw__arena_alloc(b->a, 3 * sizeof(uint32_t));
            if (!m->wc.seg || !m->wc.seglen)
                return fail(b, NULL, "out of memory"), 0;
            m->wc.seg[0] = m->wc.seg[2] = "";
            m->wc.seglen[0] = m->wc.seglen[2] = 0;
            m->wc.seg[1] = v->s;
            m->wc.seglen[1] = (uint32_t)v->n;
        }
        return 1;
    }
    if (!tw__sv_has_wild(v) && op != M_CONTAINS) {
        size_t n;
        const char *s = cased ? v->s : fold_glob(b, v->s, v->n, &n);
        if (!s)
            return 0;
        m->kind = op == M_STARTSWITH ? (cased ? TW_M_PREFIX : TW_M_PREFIX_EIC)
                  : op == M_ENDSWITH ? (cased ? TW_M_SUFFIX : TW_M_SUFFIX_EIC)
                                     : (cased ? TW_M_STRING : TW_M_EIC);
        m->s = s;
        m->len = (uint32_t)(cased ? v->n : n);
        return 1;
    }
    /* a glob: the operator adds stars around the value */
    char *g = tw__arena_alloc(b->a, v->n + 3);
    if (!g)
        return fail(b, NULL, "out of memory"), 0;
    size_t n = 0;
    if (op == M_CONTAINS || op == M_ENDSWITH)
        g[n++] = TW_GLOB_STAR;
    memcpy(g + n, v->s, v->n);
    n += v->n;
    if (op == M_CONTAINS || op == M_STARTSWITH)
        g[n++] = TW_GLOB_STAR;
    g[n] = '\0';
    const char *s = g;
    if (!cased && !(s = fold_glob(b, g, n, &n)))
        return 0;
    m->kind = TW_M_GLOB;
    m->flags = cased ? TW_MF_CASED : 0;
    m->s = s;
    m->len = (uint32_t)n;
    const char *why = tw__glob_compile(b->a, s, n, b->s->lim.wildcard_stars, &m->wc);
    if (why)
        return fail(b, NULL, "%s", why), 0;
    return 1;
}

/* ---- items ---- */

typedef struct item {
    const tw_json *key;         /* the item's value node, for lines */
    const char *field;          /* NULL: keywords */
    uint32_t mods;              /* BIT(M_*) */
    int op;                     /* the operator modifier, -1 none */
    int order[16];              /* transformation modifiers in the order written */
    int norder;
} item;

static int parse_key(bld *b, const char *key, size_t klen, const tw_json *at, item *it)
{
    const char *bar = memchr(key, '|', klen);
    size_t fl = bar ? (size_t)(bar - key) : klen;
    it->field = fl ? tw__arena_strndup(b->a, key, fl) : NULL;
    if (fl && !it->field)
        return fail(b, at, "out of memory"), 0;
    it->mods = 0;
    it->op = -1;
    it->norder = 0;
    const char *p = bar, *end = key + klen;
    while (p && p < end) {
        const char *q = memchr(p + 1, '|', (size_t)(end - p - 1));
        size_t n = (size_t)((q ? q : end) - p - 1);
        int m = 0;
        while (m < M_COUNT_ && (strlen(mod_names[m]) != n || strncmp(mod_names[m], p + 1, n) != 0))
            m++;
        if (m == M_COUNT_ && n == 4 && strncmp(p + 1, "wide", 4) == 0)
            m = M_UTF16LE; /* the spec's alias */
        if (m == M_COUNT_)
            return fail(b, at, "unknown modifier '%.*s' in '%.*s'", (int)n, p + 1, (int)(klen > 200 ? 200 : klen), key), 0;
        if (it->mods & BIT(m))
            return fail(b, at, "modifier '%s' given twice", mod_names[m]), 0;
        it->mods |= BIT(m);
        if (BIT(m) & (ENCODINGS | BIT(M_WINDASH) | BIT(M_EXPAND))) {
            if (it->norder >= 16)
                return fail(b, at, "too many modifiers"), 0;
            it->order[it->norder++] = m;
        }
        p = q;
    }
    uint32_t others = BIT(M_RE) | BIT(M_CIDR) | BIT(M_EXISTS);
    uint32_t ops = it->mods & (STRING_OPS | NUMERIC_OPS | TIME_PARTS | others | BIT(M_FIELDREF));
    int nstr = __builtin_popcount(ops & STRING_OPS), nnum = __builtin_popcount(ops & NUMERIC_OPS),
        ntime = __builtin_popcount(ops & TIME_PARTS), nother = __builtin_popcount(ops & others),
        nref = (ops & BIT(M_FIELDREF)) != 0;
    /* At most one operator; a time part may take a comparison, a field reference a string operator. */
    int ok = __builtin_popcount(ops) <= 1 ||
             (ntime == 1 && nnum <= 1 && !nstr && !nother && !nref) ||
             (nref && nstr <= 1 && !nnum && !ntime && !nother);
    if (!ok) {
        int m1 = __builtin_ctz(ops), m2 = __builtin_ctz(ops & ~BIT(m1));
        return fail(b, at, "modifiers '%s' and '%s' cannot be combined", mod_names[m1], mod_names[m2]), 0;
    }
    for (int m = 0; m < M_COUNT_; m++)
        if ((ops & BIT(m)) && !(BIT(m) & (TIME_PARTS | BIT(M_FIELDREF))))
            it->op = m;
    if (it->op < 0 && (ops & (TIME_PARTS | BIT(M_FIELDREF))))
        it->op = __builtin_ctz(ops & (TIME_PARTS | BIT(M_FIELDREF)));
    uint32_t mods = it->mods;
    if ((mods & RE_FLAGS) && !(mods & BIT(M_RE)))
        return fail(b, at, "'i', 'm' and 's' are sub-modifiers of 're'"), 0;
    if ((mods & BIT(M_RE)) && (mods & (ENCODINGS | BIT(M_WINDASH) | BIT(M_NEQ))))
        return fail(b, at, "'re' takes a regular expression as written: it cannot be combined with %s",
                    mods & BIT(M_NEQ) ? "'neq' (use a negated selection)" : "encodings or 'windash'"), 0;
    if ((mods & BIT(M_EXISTS)) && (mods & ~BIT(M_EXISTS)))
        return fail(b, at, "'exists' takes no other modifier"), 0;
    if ((mods & (NUMERIC_OPS | TIME_PARTS | BIT(M_CIDR))) &&
        (mods & (ENCODINGS | BIT(M_WINDASH) | BIT(M_CASED) | BIT(M_NEQ) | BIT(M_EXPAND))))
        return fail(b, at, "numeric, time and 'cidr' modifiers cannot be combined with encodings, 'windash', "
                    "'cased', 'neq' or 'expand'"), 0;
    if ((mods & BIT(M_FIELDREF)) && (mods & (ENCODINGS | BIT(M_WINDASH) | BIT(M_EXPAND))))
        return fail(b, at, "'fieldref' names a field: it cannot be combined with encodings, 'windash' or "
                    "'expand'"), 0;
    if ((mods & BIT(M_NEQ)) && (mods & BIT(M_ALL)))
        return fail(b, at, "'neq' already excludes every listed value: 'all' cannot be added"), 0;
    return 1;
}

/* Values of an item: a scalar or a list of scalars. */
static int item_values(bld *b, const tw_json *v, const tw_json ***out, size_t *n)
{
    if (tw_json_typeof(v) == TW_JSON_ARRAY) {
        size_t k = tw_json_size(v);
        if (k == 0)
            return fail(b, v, "an empty list of values matches nothing: give at least one value"), 0;
        const tw_json **arr = tw__arena_alloc(b->a, k * sizeof *arr);
        if (!arr)
            return fail(b, v, "out of memory"), 0;
        for (size_t i = 0; i < k; i++) {
            arr[i] = tw_json_at(v, i);
            tw_json_type t = tw_json_typeof(arr[i]);
            if (t == TW_JSON_ARRAY || t == TW_JSON_OBJECT)
                return fail(b, arr[i], "a value must be a string, number, boolean or null, not a %s",
                            t == TW_JSON_ARRAY ? "list" : "mapping"), 0;
            if (t == TW_JSON_NULL)
                return fail(b, arr[i], "null stands alone, not inside a list (write it as its own selection "
                            "and combine with 'or')"), 0;
        }
        *out = arr;
        *n = k;
        return 1;
    }
    if (tw_json_typeof(v) == TW_JSON_OBJECT)
        return fail(b, v, "a field's value must be a string, number, boolean, null or a list of them, not a "
                    "mapping"), 0;
    const tw_json **arr = tw__arena_alloc(b->a, sizeof *arr);
    if (!arr)
        return fail(b, v, "out of memory"), 0;
    arr[0] = v;
    *out = arr;
    *n = 1;
    return 1;
}

/* A scalar as text: strings as they are, numbers as written, booleans as true/false. */
static const char *scalar_text(const tw_json *v, size_t *n)
{
    switch (tw_json_typeof(v)) {
    case TW_JSON_STRING: return tw_json_string(v, n);
    case TW_JSON_NUMBER: return tw_json_number_text(v, n);
    case TW_JSON_TRUE: *n = 4; return "true";
    case TW_JSON_FALSE: *n = 5; return "false";
    default: return NULL;
    }
}

/* The values one YAML value stands for after the transformation modifiers, as kind. */
static int transform(bld *b, const item *it, const tw_json *v, sg_vkind kind, sg_vlist *out)
{
    size_t n;
    const char *s = scalar_text(v, &n);
    const char *why, *missing = NULL;
    *out = (sg_vlist){NULL, 0, 0, TW_SIGMA_EXPAND_MAX};
    if (it->mods & BIT(M_EXPAND))
        why = tw__sv_expand(b->a, b->s->placeholders ? tw_json_root(b->s->placeholders) : NULL, s, n, kind, out,
                            &missing);
    else
        why = tw__sv_add(b->a, out, kind, s, n);
    if (why && missing)
        return fail(b, v, "placeholder %%%s%% has no values configured (sigma placeholders); a rule with an "
                    "unresolved placeholder cannot run", missing), 0;
    for (int i = 0; !why && i < it->norder; i++) {
        switch (it->order[i]) {
        case M_WINDASH: why = tw__sv_windash(b->a, out); break;
        case M_BASE64: why = tw__sv_base64(b->a, out, 0); break;
        case M_BASE64OFFSET: why = tw__sv_base64(b->a, out, 1); break;
        case M_UTF16LE: why = tw__sv_utf16(b->a, out, 0, 0); break;
        case M_UTF16BE: why = tw__sv_utf16(b->a, out, 1, 0); break;
        case M_UTF16: why = tw__sv_utf16(b->a, out, 0, 1); break;
        default: break;
        }
    }
    if (why)
        return fail(b, v, "%s", why), 0;
    return 1;
}

static const char *leaf_path(bld *b, const item *it, uint32_t *plen)
{
    if (!it->field) {
        *plen = 6;
        return "detail";
    }
    size_t fl = strlen(it->field);
    char *p = tw__arena_alloc(b->a, sizeof TW_SIGMA_PREFIX + fl);
    if (!p)
        return NULL;
    memcpy(p, TW_SIGMA_PREFIX, sizeof TW_SIGMA_PREFIX - 1);
    memcpy(p + sizeof TW_SIGMA_PREFIX - 1, it->field, fl + 1);
    *plen = (uint32_t)(sizeof TW_SIGMA_PREFIX - 1 + fl);
    return p;
}

static uint32_t pred_atom(bld *b, const item *it, mlist *ml, int exists_false)
{
    tw__batom a;
    memset(&a, 0, sizeof a);
    a.kind = TW_BA_PRED;
    if (!(a.leaf.path = leaf_path(b, it, &a.leaf.plen)))
        return fail(b, it->key, "out of memory");
    a.leaf.deep = 1;
    a.leaf.exists_false = (uint8_t)exists_false;
    a.leaf.nm = ml->n;
    a.leaf.m = ml->m;
    return add_atom(b, &a);
}

/* The matchers of one YAML value under the item's modifiers, appended to ml. */
static int value_matchers(bld *b, const item *it, const tw_json *v, mlist *ml)
{
    tw_json_type t = tw_json_typeof(v);
    int op = it->op, cased = (it->mods & BIT(M_CASED)) != 0;
    if (op == M_RE) {
        if (t != TW_JSON_STRING)
            return fail(b, v, "'re' needs a string (a regular expression)"), 0;
        sg_vlist vl;
        if (!transform(b, it, v, SV_RAW, &vl))
            return 0;
        unsigned flags = (it->mods & BIT(M_RE_I) ? TW_MF_RE_I : 0) | (it->mods & BIT(M_RE_M) ? TW_MF_RE_M : 0) |
                         (it->mods & BIT(M_RE_S) ? TW_MF_RE_S : 0);
        for (size_t i = 0; i < vl.n; i++) {
            struct tw__regex *re = NULL;
            char why[240];
            if (!tw__regex_compile(vl.v[i].s, vl.v[i].n, flags, &re, why, sizeof why))
                return fail(b, v, "%s", why), 0;
            tw__regex_free(re);
            tw__matcher *m = new_matcher(b, ml);
            if (!m)
                return 0;
            m->kind = TW_M_REGEX;
            m->flags = (uint8_t)flags;
            m->s = vl.v[i].s;
            m->len = (uint32_t)vl.v[i].n;
        }
        return 1;
    }
    if (op == M_CIDR) {
        if (t != TW_JSON_STRING)
            return fail(b, v, "'cidr' needs a string such as 10.0.0.0/8"), 0;
        size_t n;
        const char *s = tw_json_string(v, &n);
        tw__matcher *m = new_matcher(b, ml);
        if (!m)
            return 0;
        m->kind = TW_M_CIDR;
        const char *why = tw__cidr_parse(s, n, m);
        if (why)
            return fail(b, v, "cidr %.60s: %s", s, why), 0;
        return 1;
    }
    if (op == M_LT || op == M_LTE || op == M_GT || op == M_GTE || (op >= M_MINUTE && op <= M_YEAR)) {
        if (t != TW_JSON_NUMBER)
            return fail(b, v, "'%s' needs a number", mod_names[op]), 0;
        tw__matcher *m = new_matcher(b, ml);
        if (!m)
            return 0;
        double d = tw_json_number(v);
        uint32_t cmp = it->mods & NUMERIC_OPS;
        m->kind = TW_M_NUMERIC;
        if (it->mods & TIME_PARTS) {
            m->kind = TW_M_TIMEPART;
            m->flags = (uint8_t)(TW_TP_MINUTE + __builtin_ctz((it->mods & TIME_PARTS) >> M_MINUTE));
        }
        m->has_lo = !cmp || (cmp & (BIT(M_GT) | BIT(M_GTE)));
        m->has_hi = !cmp || (cmp & (BIT(M_LT) | BIT(M_LTE)));
        m->lo = m->hi = d;
        m->lo_incl = !(cmp & BIT(M_GT));
        m->hi_incl = !(cmp & BIT(M_LT));
        return 1;
    }
    /* equality and the string operators: strings with wildcards, numbers, booleans */
    sg_vlist vl;
    if (!transform(b, it, v, SV_GLOB, &vl))
        return 0;
    if (t == TW_JSON_NUMBER && op < 0 && !(it->mods & (ENCODINGS | BIT(M_WINDASH) | BIT(M_EXPAND)))) {
        /* a number also equals the same number written otherwise (4769.0) */
        size_t n;
        const char *text = tw_json_number_text(v, &n);
        tw__matcher *m = new_matcher(b, ml);
        if (!m)
            return 0;
        m->kind = TW_M_NUMBER;
        m->d = tw_json_number(v);
        m->num_exact = (uint8_t)tw__number_exact(text, n, m->d);
        m->s = text;
        m->len = (uint32_t)n;
    }
    if (t != TW_JSON_STRING && (it->mods & BIT(M_EXPAND)))
        return fail(b, v, "'expand' needs a string holding %%placeholders%%"), 0;
    for (size_t i = 0; i < vl.n; i++)
        if (!string_matcher(b, ml, &vl.v[i], op, cased || vl.v[i].kind == SV_BYTES))
            return 0;
    return 1;
}

/* One `field|mods: value(s)` item (field NULL: keywords) -> a node. */
static uint32_t compile_item(bld *b, const char *key, size_t klen, const tw_json *val, int keywords)
{
    item it;
    it.key = val;
    if (!parse_key(b, key, klen, val, &it))
        return NONE;
    if (keywords) {
        it.field = NULL;
        if (it.mods & ~(BIT(M_ALL) | BIT(M_CASED) | BIT(M_CONTAINS) | BIT(M_RE) | RE_FLAGS | ENCODINGS |
                        BIT(M_WINDASH)))
            return fail(b, val, "keywords take only the modifiers all, cased, contains, re, windash and "
                        "encodings");
        if (it.op < 0)
            it.op = M_CONTAINS; /* a keyword is found anywhere in any value */
    } else if (!it.field || !*it.field) {
        return fail(b, val, "a field name is missing before '|' (keywords are a list under an identifier)");
    }
    const tw_json **vals;
    size_t nv;
    if (!item_values(b, val, &vals, &nv))
        return NONE;
    uint32_t mods = it.mods;
    if ((mods & BIT(M_ALL)) && nv == 1)
        return fail(b, val, "'all' needs a list of two or more values");
    if (it.op == M_EXISTS) {
        if (nv != 1 || (tw_json_typeof(vals[0]) != TW_JSON_TRUE && tw_json_typeof(vals[0]) != TW_JSON_FALSE))
            return fail(b, val, "'exists' takes true or false");
        mlist ml = {NULL, 0, 0};
        int want = tw_json_typeof(vals[0]) == TW_JSON_TRUE;
        if (want) {
            tw__matcher *m = new_matcher(b, &ml);
            if (!m)
                return NONE;
            m->kind = TW_M_EXISTS;
        }
        return pred_atom(b, &it, &ml, !want);
    }
    if (nv == 1 && tw_json_typeof(vals[0]) == TW_JSON_NULL) {
        if (mods)
            return fail(b, val, "null takes no modifiers (it means: the field is absent or null)");
        mlist ml = {NULL, 0, 0};
        tw__matcher *m = new_matcher(b, &ml);
        if (!m)
            return NONE;
        m->kind = TW_M_NULL;
        return pred_atom(b, &it, &ml, 1);
    }
    if (mods & BIT(M_FIELDREF)) {
        uint32_t kids[64];
        if (nv > 64)
            return fail(b, val, "too many field references in one item");
        for (size_t i = 0; i < nv; i++) {
            if (tw_json_typeof(vals[i]) != TW_JSON_STRING)
                return fail(b, vals[i], "'fieldref' needs the name of another field");
            size_t rn;
            const char *ref = tw_json_string(vals[i], &rn);
            tw__batom a;
            memset(&a, 0, sizeof a);
            a.kind = TW_BA_FIELDREF;
            a.op = (mods & BIT(M_STARTSWITH)) ? TW_FR_PREFIX : (mods & BIT(M_ENDSWITH)) ? TW_FR_SUFFIX
                   : (mods & BIT(M_CONTAINS)) ? TW_FR_CONTAINS : TW_FR_EQ;
            a.neq = (mods & BIT(M_NEQ)) != 0;
            a.cased = (mods & BIT(M_CASED)) != 0;
            char *rp = tw__arena_alloc(b->a, sizeof TW_SIGMA_PREFIX + rn);
            if (!(a.leaf.path = leaf_path(b, &it, &a.leaf.plen)) || !rp)
                return fail(b, val, "out of memory");
            memcpy(rp, TW_SIGMA_PREFIX, sizeof TW_SIGMA_PREFIX - 1);
            memcpy(rp + sizeof TW_SIGMA_PREFIX - 1, ref, rn + 1);
            a.ref = rp;
            a.reflen = (uint32_t)(sizeof TW_SIGMA_PREFIX - 1 + rn);
            if ((kids[i] = add_atom(b, &a)) == NONE)
                return NONE;
        }
        return add_list(b, mods & BIT(M_ALL) ? TW_BN_AND : TW_BN_OR, kids, (uint32_t)nv);
    }
    if (mods & BIT(M_ALL)) {
        /* one predicate per value, all of them */
        uint32_t *kids = malloc(nv * sizeof *kids);
        if (!kids)
            return fail(b, val, "out of memory");
        uint32_t node = NONE;
        size_t i = 0;
        for (; i < nv; i++) {
            mlist ml = {NULL, 0, 0};
            if (!value_matchers(b, &it, vals[i], &ml) || (kids[i] = pred_atom(b, &it, &ml, 0)) == NONE)
                break;
        }
        if (i == nv)
            node = add_list(b, TW_BN_AND, kids, (uint32_t)nv);
        free(kids);
        return node;
    }
    /* one predicate: every value's matchers OR-ed on the field */
    mlist ml = {NULL, 0, 0};
    for (size_t i = 0; i < nv; i++)
        if (!value_matchers(b, &it, vals[i], &ml))
            return NONE;
    if (mods & BIT(M_NEQ)) {
        /* present, and none of the values */
        mlist outer = {NULL, 0, 0};
        tw__matcher *m = new_matcher(b, &outer);
        if (!m)
            return NONE;
        m->kind = TW_M_ANYTHING_BUT;
        m->nlist = ml.n;
        m->list = ml.m;
        return pred_atom(b, &it, &outer, 0);
    }
    return pred_atom(b, &it, &ml, 0);
}

/* ---- search identifiers ---- */

static uint32_t compile_map(bld *b, const tw_json *map)
{
    size_t n = tw_json_size(map);
    if (n == 0)
        return fail(b, map, "an empty mapping matches nothing: give at least one field");
    uint32_t *kids = malloc(n * sizeof *kids), node = NONE;
    if (!kids)
        return fail(b, map, "out of memory");
    size_t i = 0;
    for (; i < n; i++) {
        size_t klen;
        const char *key = tw_json_key(map, i, &klen);
        /* `'|all': [...]` (a key with no field) holds keywords */
        int kw = klen > 0 && key[0] == '|';
        if (kw && tw_json_typeof(tw_json_at(map, i)) != TW_JSON_ARRAY) {
            fail(b, tw_json_at(map, i), "keywords ('%.*s') need a list", (int)(klen > 60 ? 60 : klen), key);
            break;
        }
        if ((kids[i] = compile_item(b, key, klen, tw_json_at(map, i), kw)) == NONE)
            break;
    }
    if (i == n)
        node = add_list(b, TW_BN_AND, kids, (uint32_t)n);
    free(kids);
    return node;
}

static uint32_t compile_ident(bld *b, ident *id)
{
    if (id->node != NONE)
        return id->node;
    const tw_json *v = id->val;
    uint32_t node = NONE;
    switch (tw_json_typeof(v)) {
    case TW_JSON_OBJECT:
        node = compile_map(b, v);
        break;
    case TW_JSON_ARRAY: {
        size_t n = tw_json_size(v), maps = 0;
        if (n == 0)
            return fail(b, v, "search identifier '%s' is an empty list: it would match nothing", id->name);
        for (size_t i = 0; i < n; i++)
            maps += tw_json_typeof(tw_json_at(v, i)) == TW_JSON_OBJECT;
        if (maps && maps != n)
            return fail(b, v, "search identifier '%s' mixes mappings and plain values: a list holds either "
                        "mappings (OR-ed) or keywords", id->name);
        if (!maps) { /* keywords, OR-ed */
            node = compile_item(b, "", 0, v, 1);
            break;
        }
        uint32_t *kids = malloc(n * sizeof *kids);
        if (!kids)
            return fail(b, v, "out of memory");
        size_t i = 0;
        for (; i < n && (kids[i] = compile_map(b, tw_json_at(v, i))) != NONE; i++) {}
        if (i == n)
            node = add_list(b, TW_BN_OR, kids, (uint32_t)n);
        free(kids);
        break;
    }
    case TW_JSON_STRING:
    case TW_JSON_NUMBER:
        node = compile_item(b, "", 0, v, 1); /* a single keyword */
        break;
    default:
        return fail(b, v, "search identifier '%s' must be a mapping of fields or a list, not %s", id->name,
                    tw_json_typeof(v) == TW_JSON_NULL ? "empty" : "a boolean");
    }
    id->node = node;
    return node;
}

/* ---- the condition ---- */

static uint32_t cond_node(bld *b, const sg_cond *c, const tw_json *at)
{
    switch (c->op) {
    case SC_ID: {
        for (size_t i = 0; i < b->nids; i++)
            if (b->ids[i].len == c->nlen && memcmp(b->ids[i].name, c->name, c->nlen) == 0)
                return compile_ident(b, &b->ids[i]);
        return fail(b, at, "condition: column %u: '%s' is not a search identifier of this rule", c->col, c->name);
    }
    case SC_NOT: {
        uint32_t k = cond_node(b, c->a, at);
        return k == NONE ? NONE : add_node(b, TW_BN_NOT, k, 0);
    }
    case SC_AND:
    case SC_OR: {
        uint32_t k[2] = {cond_node(b, c->a, at), NONE};
        if (k[0] == NONE || (k[1] = cond_node(b, c->b, at)) == NONE)
            return NONE;
        return add_list(b, c->op == SC_AND ? TW_BN_AND : TW_BN_OR, k, 2);
    }
    case SC_OF: {
        uint32_t *kids = malloc((b->nids + 1) * sizeof *kids), n = 0;
        if (!kids)
            return fail(b, at, "out of memory");
        for (size_t i = 0; i < b->nids; i++) {
            const ident *id = &b->ids[i];
            int hit = c->name ? tw__sigma_glob_name(c->name, c->nlen, id->name, id->len) : id->name[0] != '_';
            if (hit && (kids[n++] = compile_ident(b, &b->ids[i])) == NONE) {
                free(kids);
                return NONE;
            }
        }
        uint32_t node = NONE;
        if (!n)
            fail(b, at, "condition: column %u: no search identifier matches '%s'", c->col, c->name ? c->name : "them");
        else
            node = add_list(b, c->all ? TW_BN_AND : TW_BN_OR, kids, n);
        free(kids);
        return node;
    }
    }
    return NONE;
}

/* ---- anchors: what must hold whenever the rule does ---- */

#define NEC_ATOMS 8

typedef struct nconj {
    uint32_t n;
    uint32_t a[NEC_ATOMS];
} nconj;

typedef struct nec {
    int always;                 /* no positive requirement known */
    uint32_t n;                 /* conjunctions; 0 and !always: never holds */
    nconj c[TW_SIGMA_ANCHORS_MAX];
} nec;

/* How expensive an atom is as an anchor: looked up (1), found through a piece (4), tested (50). */
static unsigned atom_cost(const bld *b, uint32_t atom)
{
    const tw__leaf *l = &b->atoms[atom].leaf;
    unsigned worst = 1;
    for (uint32_t i = 0; i < l->nm; i++) {
        const tw__matcher *m = &l->m[i];
        unsigned c = m->kind == TW_M_EIC || m->kind == TW_M_STRING || m->kind == TW_M_NUMBER ||
                             m->kind == TW_M_PREFIX || m->kind == TW_M_SUFFIX || m->kind == TW_M_PREFIX_EIC ||
                             m->kind == TW_M_SUFFIX_EIC || m->kind == TW_M_CIDR
                         ? 1
                     : (m->kind == TW_M_GLOB || m->kind == TW_M_WILDCARD) ? 4 : 50;
        int literal = 0; /* "*" and the like have no piece to find them by */
        for (uint32_t k = 0; m->kind == TW_M_GLOB && k < m->len && !literal; k++)
            literal = m->s[k] != TW_GLOB_STAR && m->s[k] != TW_GLOB_ONE;
        if (m->kind == TW_M_GLOB && !literal)
            c = 50;
        if (c > worst)
            worst = c;
    }
    return worst;
}

static unsigned nec_cost(const bld *b, const nec *x)
{
    unsigned total = 0;
    for (uint32_t i = 0; i < x->n; i++) {
        unsigned best = 1000;
        for (uint32_t j = 0; j < x->c[i].n; j++) {
            unsigned c = atom_cost(b, x->c[i].a[j]);
            best = c < best ? c : best;
        }
        total += best;
    }
    return total;
}

static void requirements(const bld *b, uint32_t node, nec *out, unsigned depth)
{
    const tw__bnode *n = &b->nodes[node];
    out->always = 0;
    out->n = 0;
    if (depth > 256) {
        out->always = 1;
        return;
    }
    switch (n->op) {
    case TW_BN_ATOM: {
        const tw__batom *a = &b->atoms[n->a];
        if (a->kind != TW_BA_PRED || a->leaf.exists_false) {
            out->always = 1;
            return;
        }
        out->n = 1;
        out->c[0].n = 1;
        out->c[0].a[0] = n->a;
        return;
    }
    case TW_BN_FALSE:
        return;
    case TW_BN_OR: {
        nec *k = malloc(sizeof *k);
        if (!k) {
            out->always = 1;
            return;
        }
        for (uint32_t i = 0; i < n->n && !out->always; i++) {
            requirements(b, b->kids[n->a + i], k, depth + 1);
            if (k->always || out->n + k->n > TW_SIGMA_ANCHORS_MAX) {
                out->always = 1;
                break;
            }
            memcpy(out->c + out->n, k->c, k->n * sizeof *k->c);
            out->n += k->n;
        }
        free(k);
        return;
    }
    case TW_BN_AND: {
        nec *k = malloc(sizeof *k), *prod = malloc(sizeof *prod);
        int have = 0;
        if (!k || !prod) {
            free(k);
            free(prod);
            out->always = 1;
            return;
        }
        for (uint32_t i = 0; i < n->n; i++) {
            requirements(b, b->kids[n->a + i], k, depth + 1);
            if (k->always)
                continue;
            if (!have) {
                *out = *k;
                have = 1;
                continue;
            }
            /* both must hold: every pair of their conjunctions, while that stays small; else the cheaper */
            int fits = (uint64_t)out->n * k->n <= TW_SIGMA_ANCHORS_MAX;
            prod->always = 0;
            prod->n = 0;
            for (uint32_t x = 0; fits && x < out->n; x++)
                for (uint32_t y = 0; fits && y < k->n; y++) {
                    nconj *c = &prod->c[prod->n++];
                    if (out->c[x].n + k->c[y].n > NEC_ATOMS) {
                        fits = 0;
                        break;
                    }
                    *c = out->c[x];
                    memcpy(c->a + c->n, k->c[y].a, k->c[y].n * sizeof(uint32_t));
                    c->n += k->c[y].n;
                }
            if (fits)
                *out = *prod;
            else if (nec_cost(b, k) < nec_cost(b, out))
                *out = *k;
        }
        if (!have)
            out->always = 1;
        free(k);
        free(prod);
        return;
    }
    default: /* NOT, TRUE: nothing positive is required */
        out->always = 1;
        return;
    }
}

static int set_anchors(bld *b, tw__brule *r)
{
    nec *x = malloc(sizeof *x);
    if (!x)
        return 0;
    requirements(b, r->root, x, 0);
    r->nanchors = 0;
    if (!x->always && x->n) {
        uint32_t total = 0;
        for (uint32_t i = 0; i < x->n; i++)
            total += x->c[i].n;
        r->anchor_off = tw__arena_alloc(&r->arena, x->n * sizeof(uint32_t));
        r->anchor_len = tw__arena_alloc(&r->arena, x->n * sizeof(uint32_t));
        r->anchor_atoms = tw__arena_alloc(&r->arena, (total + 1) * sizeof(uint32_t));
        if (!r->anchor_off || !r->anchor_len || !r->anchor_atoms) {
            free(x);
            return 0;
        }
        uint32_t o = 0;
        for (uint32_t i = 0; i < x->n; i++) {
            r->anchor_off[i] = o;
            r->anchor_len[i] = x->c[i].n;
            memcpy(r->anchor_atoms + o, x->c[i].a, x->c[i].n * sizeof(uint32_t));
            o += x->c[i].n;
        }
        r->nanchors = x->n;
    }
    free(x);
    return 1;
}

/* ---- entry ---- */

static int copy_out(bld *b, tw__brule *r)
{
    r->natoms = b->natoms;
    r->nnodes = b->nnodes;
    r->nkids = b->nkids;
    r->atoms = tw__arena_alloc(&r->arena, (b->natoms + 1) * sizeof *r->atoms);
    r->nodes = tw__arena_alloc(&r->arena, (b->nnodes + 1) * sizeof *r->nodes);
    r->kids = tw__arena_alloc(&r->arena, (b->nkids + 1) * sizeof *r->kids);
    if (!r->atoms || !r->nodes || !r->kids)
        return 0;
    if (b->natoms)
        memcpy(r->atoms, b->atoms, b->natoms * sizeof *r->atoms);
    if (b->nnodes)
        memcpy(r->nodes, b->nodes, b->nnodes * sizeof *r->nodes);
    if (b->nkids)
        memcpy(r->kids, b->kids, b->nkids * sizeof *r->kids);
    return 1;
}

tw__brule *tw__sigma_compile(const tw_sigma *s, const tw_json *det, unsigned *line, char *why, size_t size)
{
    bld b;
    memset(&b, 0, sizeof b);
    b.s = s;
    b.why = why;
    b.size = size;
    tw__brule *r = calloc(1, sizeof *r);
    uint32_t root = NONE;
    *line = 0;
    if (!r) {
        snprintf(why, size, "out of memory");
        return NULL;
    }
    b.r = r;
    b.a = &r->arena;
    const tw_json *cond = tw_json_get(det, "condition");
    size_t n = tw_json_size(det);
    b.ids = calloc(n + 1, sizeof *b.ids);
    if (!b.ids) {
        fail(&b, det, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        size_t klen;
        const char *key = tw_json_key(det, i, &klen);
        if (strcmp(key, "condition") == 0)
            continue;
        if (strcmp(key, "timeframe") == 0) {
            fail(&b, tw_json_at(det, i), "'timeframe' belongs to Sigma v1 aggregations, which v2 replaced with "
                 "correlation rules (timespan)");
            goto out;
        }
        for (size_t j = 0; j < b.nids; j++)
            if (b.ids[j].len == klen && memcmp(b.ids[j].name, key, klen) == 0) {
                fail(&b, tw_json_at(det, i), "search identifier '%s' is defined twice", key);
                goto out;
            }
        b.ids[b.nids++] = (ident){key, klen, tw_json_at(det, i), NONE};
    }
    if (!cond) {
        fail(&b, det, "detection has no condition");
        goto out;
    }
    if (!b.nids) {
        fail(&b, det, "detection has no search identifier");
        goto out;
    }
    size_t nc = tw_json_typeof(cond) == TW_JSON_ARRAY ? tw_json_size(cond) : 1;
    uint32_t kids[64];
    if (nc == 0 || nc > 64) {
        fail(&b, cond, "condition must be a text or a list of 1 to 64 texts");
        goto out;
    }
    for (size_t i = 0; i < nc; i++) {
        const tw_json *c = tw_json_typeof(cond) == TW_JSON_ARRAY ? tw_json_at(cond, i) : cond;
        if (tw_json_typeof(c) != TW_JSON_STRING) {
            fail(&b, c, "condition must be a text (or a list of texts), not %s", tw_json_type_name(tw_json_typeof(c)));
            goto out;
        }
        size_t cl;
        const char *ct = tw_json_string(c, &cl);
        char cwhy[300];
        sg_cond *tree = tw__sigma_cond_parse(&r->arena, ct, cl, cwhy, sizeof cwhy);
        if (!tree) {
            fail(&b, c, "condition: %s", cwhy);
            goto out;
        }
        if ((kids[i] = cond_node(&b, tree, c)) == NONE)
            goto out;
    }
    root = add_list(&b, TW_BN_OR, kids, (uint32_t)nc);
    if (root == NONE)
        goto out;
    r->root = root;
    if (!copy_out(&b, r) || !set_anchors(&b, r))
        fail(&b, det, "out of memory");
out:
    free(b.atoms);
    free(b.nodes);
    free(b.kids);
    free(b.ids);
    if (b.failed) {
        *line = b.line ? b.line : tw_json_line(det);
        tw__brule_free(r);
        return NULL;
    }
    return r;
}
