/* pattern/parse.c: JSON pattern -> validated leaves, with every $or multiplied out. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "json/json_int.h"
#include "json/number.h"
#include "pattern/casefold.h"
#include "pattern/pattern_int.h"

/* A pattern object before expansion: its own leaves (paths already dotted from the root) and its
 * $or groups, each a list of alternative objects. */
typedef struct pobj pobj;
typedef struct por {
    uint32_t n;
    pobj **alts;
} por;
struct pobj {
    uint32_t nleaves, capleaves;
    tw__leaf **leaves;
    uint32_t nors, capors;
    por *ors;
};

typedef struct pctx {
    tw_pattern *pat;
    const tw_limits *lim;
    tw_error *err;
} pctx;

static const char *shown(const char *path) { return *path ? path : "(pattern)"; }

static tw_status oom(pctx *c) { return tw__err(c->err, TW_ENOMEM, "out of memory compiling pattern"); }

static tw_status bad(pctx *c, const char *path, const char *why)
{
    return tw__err(c->err, TW_EPATTERN, "%s: %s", shown(path), why);
}

static const char *type_article(const tw_json *v)
{
    switch (tw_json_typeof(v)) {
    case TW_JSON_OBJECT: return "an object";
    case TW_JSON_ARRAY: return "an array";
    case TW_JSON_STRING: return "a string";
    case TW_JSON_NUMBER: return "a number";
    case TW_JSON_NULL: return "null";
    default: return "a boolean";
    }
}

/* Grows an arena array by doubling (the old block is left to the arena). */
static void *grow(tw_arena *a, void *old, uint32_t n, uint32_t *cap, size_t elem)
{
    if (n < *cap)
        return old;
    uint32_t nc = *cap ? *cap * 2 : 4;
    void *p = tw__arena_alloc(a, nc * elem);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, old, n * elem);
    *cap = nc;
    return p;
}

/* ---- matchers ---- */

static tw_status set_string(pctx *c, tw__matcher *m, const tw_json *v, int fold)
{
    size_t len;
    const char *s = tw_json_string(v, &len);
    if (fold) {
        tw_buf b = TW_BUF_INIT;
        tw_status rc = tw__casefold(s, len, &b);
        if (!rc) {
            m->s = tw__arena_strndup(&c->pat->arena, b.data ? b.data : "", b.len);
            m->len = (uint32_t)b.len;
        }
        tw__buf_free(&b);
        if (rc || !m->s)
            return oom(c);
        return TW_OK;
    }
    if (!(m->s = tw__arena_strndup(&c->pat->arena, s, len)))
        return oom(c);
    m->len = (uint32_t)len;
    return TW_OK;
}

static tw_status set_number(pctx *c, tw__matcher *m, const tw_json *v)
{
    size_t len;
    const char *text = tw_json_number_text(v, &len);
    m->kind = TW_M_NUMBER;
    m->d = tw_json_number(v);
    m->num_exact = (uint8_t)tw__number_exact(text, len, m->d);
    if (!(m->s = tw__arena_strndup(&c->pat->arena, text, len)))
        return oom(c);
    m->len = (uint32_t)len;
    return TW_OK;
}

/* {"prefix": "p"} or {"prefix": {"equals-ignore-case": "p"}}, the same for suffix. */
static tw_status parse_affix(pctx *c, const char *path, const char *op, const tw_json *v, tw__matcher *m,
                             int is_prefix)
{
    char why[128];
    if (tw_json_typeof(v) == TW_JSON_STRING) {
        m->kind = is_prefix ? TW_M_PREFIX : TW_M_SUFFIX;
        return set_string(c, m, v, 0);
    }
    if (tw_json_typeof(v) == TW_JSON_OBJECT && tw_json_size(v) == 1) {
        size_t klen;
        const char *k = tw_json_key(v, 0, &klen);
        const tw_json *inner = tw_json_at(v, 0);
        if (strcmp(k, "equals-ignore-case") == 0 && tw_json_typeof(inner) == TW_JSON_STRING) {
            m->kind = is_prefix ? TW_M_PREFIX_EIC : TW_M_SUFFIX_EIC;
            return set_string(c, m, inner, 1);
        }
    }
    snprintf(why, sizeof why, "\"%s\" must be a string or {\"equals-ignore-case\": string}", op);
    return bad(c, path, why);
}

static tw_status parse_numeric(pctx *c, const char *path, const tw_json *v, tw__matcher *m)
{
    size_t n = tw_json_size(v);
    if (tw_json_typeof(v) != TW_JSON_ARRAY || (n != 2 && n != 4))
        return bad(c, path, "\"numeric\" must be an array [op, number] or [op, number, op, number]");
    const char *ops[2] = {NULL, NULL};
    double nums[2] = {0, 0};
    for (size_t i = 0; i < n; i += 2) {
        const tw_json *op = tw_json_at(v, i), *num = tw_json_at(v, i + 1);
        if (tw_json_typeof(op) != TW_JSON_STRING)
            return bad(c, path, "\"numeric\" operators must be strings (=, <, <=, >, >=)");
        if (tw_json_typeof(num) != TW_JSON_NUMBER)
            return bad(c, path, "\"numeric\" bounds must be JSON numbers");
        ops[i / 2] = tw_json_string(op, NULL);
        nums[i / 2] = tw_json_number(num);
        if (!isfinite(nums[i / 2]))
            return bad(c, path, "\"numeric\" bound is out of the range of a double");
    }
    m->kind = TW_M_NUMERIC;
    const char *o = ops[0];
    if (n == 2) {
        if (strcmp(o, "=") == 0) {
            m->has_lo = m->has_hi = m->lo_incl = m->hi_incl = 1;
            m->lo = m->hi = nums[0];
        } else if (strcmp(o, ">") == 0 || strcmp(o, ">=") == 0) {
            m->has_lo = 1;
            m->lo_incl = o[1] == '=';
            m->lo = nums[0];
        } else if (strcmp(o, "<") == 0 || strcmp(o, "<=") == 0) {
            m->has_hi = 1;
            m->hi_incl = o[1] == '=';
            m->hi = nums[0];
        } else {
            return bad(c, path, "\"numeric\" operator must be one of =, <, <=, >, >=");
        }
        return TW_OK;
    }
    const char *o2 = ops[1];
    if (strcmp(o, ">") != 0 && strcmp(o, ">=") != 0)
        return bad(c, path, "\"numeric\" range must start with a lower bound (> or >=)");
    if (strcmp(o2, "<") != 0 && strcmp(o2, "<=") != 0)
        return bad(c, path, "\"numeric\" range must end with an upper bound (< or <=)");
    if (!(nums[0] < nums[1]))
        return bad(c, path, "\"numeric\" range lower bound must be less than the upper bound");
    m->has_lo = m->has_hi = 1;
    m->lo_incl = o[1] == '=';
    m->hi_incl = o2[1] == '=';
    m->lo = nums[0];
    m->hi = nums[1];
    return TW_OK;
}

static tw_status parse_wildcard(pctx *c, const char *path, const tw_json *v, tw__matcher *m)
{
    if (tw_json_typeof(v) != TW_JSON_STRING)
        return bad(c, path, "\"wildcard\" must be a string");
    size_t len;
    const char *s = tw_json_string(v, &len);
    const char *why = tw__wildcard_compile(&c->pat->arena, s, len, c->lim->wildcard_stars, &m->wc);
    if (why)
        return bad(c, path, why);
    m->kind = TW_M_WILDCARD;
    return set_string(c, m, v, 0);
}

/* anything-but: a value, a list of strings or of numbers, or one of prefix / suffix /
 * equals-ignore-case / wildcard with a string or a list of strings. */
static tw_status parse_anything_but(pctx *c, const char *path, const tw_json *v, tw__matcher *m)
{
    tw_json_type t = tw_json_typeof(v);
    tw_arena *a = &c->pat->arena;
    m->kind = TW_M_ANYTHING_BUT;
    if (t == TW_JSON_STRING || t == TW_JSON_NUMBER) {
        m->nlist = 1;
        if (!(m->list = tw__arena_calloc(a, sizeof *m->list)))
            return oom(c);
        if (t == TW_JSON_NUMBER)
            return set_number(c, m->list, v);
        m->list->kind = TW_M_STRING;
        return set_string(c, m->list, v, 0);
    }
    if (t == TW_JSON_ARRAY) {
        size_t n = tw_json_size(v);
        if (n == 0)
            return bad(c, path, "\"anything-but\" list must not be empty");
        tw_json_type first = tw_json_typeof(tw_json_at(v, 0));
        if (first != TW_JSON_STRING && first != TW_JSON_NUMBER)
            return bad(c, path, "\"anything-but\" list must hold only strings or only numbers");
        if (!(m->list = tw__arena_calloc(a, n * sizeof *m->list)))
            return oom(c);
        m->nlist = (uint32_t)n;
        for (size_t i = 0; i < n; i++) {
            const tw_json *e = tw_json_at(v, i);
            if (tw_json_typeof(e) != first)
                return bad(c, path, "\"anything-but\" list must hold only strings or only numbers");
            tw_status rc;
            if (first == TW_JSON_NUMBER) {
                rc = set_number(c, &m->list[i], e);
            } else {
                m->list[i].kind = TW_M_STRING;
                rc = set_string(c, &m->list[i], e, 0);
            }
            if (rc)
                return rc;
        }
        return TW_OK;
    }
    if (t == TW_JSON_OBJECT && tw_json_size(v) == 1) {
        const char *op = tw_json_key(v, 0, NULL);
        const tw_json *arg = tw_json_at(v, 0);
        tw__mkind kind;
        if (strcmp(op, "prefix") == 0)
            kind = TW_M_PREFIX;
        else if (strcmp(op, "suffix") == 0)
            kind = TW_M_SUFFIX;
        else if (strcmp(op, "equals-ignore-case") == 0)
            kind = TW_M_EIC;
        else if (strcmp(op, "wildcard") == 0)
            kind = TW_M_WILDCARD;
        else
            return bad(c, path, "\"anything-but\" object must hold one of \"prefix\", \"suffix\", "
                                "\"equals-ignore-case\", \"wildcard\"");
        size_t n = tw_json_typeof(arg) == TW_JSON_ARRAY ? tw_json_size(arg) : 1;
        if (tw_json_typeof(arg) == TW_JSON_ARRAY && n == 0)
            return bad(c, path, "\"anything-but\" list must not be empty");
        if (!(m->list = tw__arena_calloc(a, n * sizeof *m->list)))
            return oom(c);
        m->nlist = (uint32_t)n;
        for (size_t i = 0; i < n; i++) {
            const tw_json *e = tw_json_typeof(arg) == TW_JSON_ARRAY ? tw_json_at(arg, i) : arg;
            if (tw_json_typeof(e) != TW_JSON_STRING) {
                char why[128];
                snprintf(why, sizeof why, "\"anything-but\" \"%s\" must be a string or a list of strings", op);
                return bad(c, path, why);
            }
            /* AWS rejects an empty prefix or suffix here: it would exclude every string */
            if ((kind == TW_M_PREFIX || kind == TW_M_SUFFIX) && !*tw_json_string(e, NULL)) {
                char why[128];
                snprintf(why, sizeof why, "\"anything-but\" \"%s\" must not be the empty string", op);
                return bad(c, path, why);
            }
            tw__matcher *x = &m->list[i];
            tw_status rc = kind == TW_M_WILDCARD ? parse_wildcard(c, path, e, x)
                                                 : set_string(c, x, e, kind == TW_M_EIC);
            if (rc)
                return rc;
            x->kind = (uint8_t)kind;
        }
        return TW_OK;
    }
    return bad(c, path, "\"anything-but\" must be a string, a number, a non-empty list of strings or of "
                        "numbers, or an object with one of prefix, suffix, equals-ignore-case, wildcard");
}

/* One operator object {"op": arg}. Sets *exists_false instead of a matcher for exists:false. */
static tw_status parse_operator(pctx *c, const char *path, const tw_json *obj, tw__matcher *m,
                                int *exists_false)
{
    /* Count distinct keys: a key given twice counts once, the last wins. */
    size_t n = tw_json_size(obj), distinct = 0;
    for (size_t i = 0; i < n; i++) {
        const char *k = tw_json_key(obj, i, NULL);
        size_t j = i + 1;
        while (j < n && strcmp(tw_json_key(obj, j, NULL), k) != 0)
            j++;
        distinct += j == n;
    }
    if (distinct != 1) {
        char why[128];
        snprintf(why, sizeof why, "an operator object must hold exactly one operator (found %zu)", distinct);
        return bad(c, path, why);
    }
    const char *op = tw_json_key(obj, n - 1, NULL);
    const tw_json *arg = tw_json_at(obj, n - 1);
    if (strcmp(op, "prefix") == 0)
        return parse_affix(c, path, op, arg, m, 1);
    if (strcmp(op, "suffix") == 0)
        return parse_affix(c, path, op, arg, m, 0);
    if (strcmp(op, "equals-ignore-case") == 0) {
        if (tw_json_typeof(arg) != TW_JSON_STRING)
            return bad(c, path, "\"equals-ignore-case\" must be a string");
        m->kind = TW_M_EIC;
        return set_string(c, m, arg, 1);
    }
    if (strcmp(op, "wildcard") == 0)
        return parse_wildcard(c, path, arg, m);
    if (strcmp(op, "anything-but") == 0)
        return parse_anything_but(c, path, arg, m);
    if (strcmp(op, "numeric") == 0)
        return parse_numeric(c, path, arg, m);
    if (strcmp(op, "exists") == 0) {
        tw_json_type t = tw_json_typeof(arg);
        if (t != TW_JSON_TRUE && t != TW_JSON_FALSE)
            return bad(c, path, "\"exists\" must be true or false");
        if (t == TW_JSON_FALSE)
            *exists_false = 1;
        else
            m->kind = TW_M_EXISTS;
        return TW_OK;
    }
    if (strcmp(op, "cidr") == 0) {
        if (tw_json_typeof(arg) != TW_JSON_STRING)
            return bad(c, path, "\"cidr\" must be a string");
        size_t len;
        const char *s = tw_json_string(arg, &len);
        const char *why = tw__cidr_parse(s, len, m);
        if (why)
            return bad(c, path, why);
        m->kind = TW_M_CIDR;
        return TW_OK;
    }
    char why[224];
    snprintf(why, sizeof why, "unknown operator \"%.64s\" (operators: prefix, suffix, equals-ignore-case, "
                              "wildcard, anything-but, numeric, exists, cidr)", op);
    return bad(c, path, why);
}

static tw_status parse_leaf(pctx *c, const char *path, const tw_json *arr, tw__leaf **out)
{
    size_t n = tw_json_size(arr);
    if (n == 0)
        return bad(c, path, "an array of matchers must not be empty");
    tw_arena *a = &c->pat->arena;
    tw__leaf *leaf = tw__arena_calloc(a, sizeof *leaf);
    tw__matcher *ms = tw__arena_calloc(a, n * sizeof *ms);
    if (!leaf || !ms || !(leaf->path = tw__arena_strndup(a, path, strlen(path))))
        return oom(c);
    leaf->plen = (uint32_t)strlen(path);
    uint32_t nm = 0;
    for (size_t i = 0; i < n; i++) {
        const tw_json *v = tw_json_at(arr, i);
        tw__matcher *m = &ms[nm];
        tw_status rc = TW_OK;
        int exists_false = 0;
        switch (tw_json_typeof(v)) {
        case TW_JSON_STRING:
            m->kind = TW_M_STRING;
            rc = set_string(c, m, v, 0);
            break;
        case TW_JSON_NUMBER:
            rc = set_number(c, m, v);
            break;
        case TW_JSON_NULL: m->kind = TW_M_NULL; break;
        case TW_JSON_TRUE: m->kind = TW_M_TRUE; break;
        case TW_JSON_FALSE: m->kind = TW_M_FALSE; break;
        case TW_JSON_ARRAY:
            return bad(c, path, "a matcher must not be an array");
        case TW_JSON_OBJECT:
            rc = parse_operator(c, path, v, m, &exists_false);
            break;
        }
        if (rc)
            return rc;
        if (exists_false)
            leaf->exists_false = 1;
        else
            nm++;
    }
    leaf->nm = nm;
    leaf->m = ms;
    *out = leaf;
    return TW_OK;
}

/* ---- objects and $or ---- */

static tw_status add_leaf(pctx *c, pobj *o, tw__leaf *leaf)
{
    /* The same dotted path given again at this level ("a.b" and {"a":{"b":..}}): the last wins. */
    for (uint32_t i = 0; i < o->nleaves; i++) {
        if (o->leaves[i]->plen == leaf->plen && memcmp(o->leaves[i]->path, leaf->path, leaf->plen) == 0) {
            o->leaves[i] = leaf;
            return TW_OK;
        }
    }
    if (!(o->leaves = grow(&c->pat->arena, o->leaves, o->nleaves, &o->capleaves, sizeof *o->leaves)))
        return oom(c);
    o->leaves[o->nleaves++] = leaf;
    return TW_OK;
}

static tw_status parse_object(pctx *c, const char *prefix, const tw_json *obj, pobj *o, unsigned depth);

static tw_status parse_or(pctx *c, const char *prefix, const tw_json *arr, pobj *o, unsigned depth)
{
    char path[TW_ERROR_MSG_MAX / 2];
    snprintf(path, sizeof path, "%s%s$or", prefix, *prefix ? "." : "");
    size_t n = tw_json_size(arr);
    if (tw_json_typeof(arr) != TW_JSON_ARRAY || n < 2)
        return bad(c, path, "\"$or\" must be an array of at least two patterns");
    por g = {(uint32_t)n, tw__arena_calloc(&c->pat->arena, n * sizeof(pobj *))};
    if (!g.alts)
        return oom(c);
    for (size_t i = 0; i < n; i++) {
        const tw_json *alt = tw_json_at(arr, i);
        if (tw_json_typeof(alt) != TW_JSON_OBJECT || tw_json_size(alt) == 0)
            return bad(c, path, "each \"$or\" alternative must be a non-empty object");
        if (!(g.alts[i] = tw__arena_calloc(&c->pat->arena, sizeof(pobj))))
            return oom(c);
        tw_status rc = parse_object(c, prefix, alt, g.alts[i], depth + 1);
        if (rc)
            return rc;
    }
    if (!(o->ors = grow(&c->pat->arena, o->ors, o->nors, &o->capors, sizeof *o->ors)))
        return oom(c);
    o->ors[o->nors++] = g;
    return TW_OK;
}

static tw_status parse_object(pctx *c, const char *prefix, const tw_json *obj, pobj *o, unsigned depth)
{
    if (depth > c->lim->json_depth)
        return bad(c, prefix, "pattern nests too deeply");
    size_t n = tw_json_size(obj);
    if (n == 0)
        return bad(c, prefix, *prefix ? "an object in a pattern must not be empty"
                                      : "a pattern must be a non-empty JSON object");
    for (size_t i = 0; i < n; i++) {
        size_t klen;
        const char *key = tw_json_key(obj, i, &klen);
        /* A key given twice: the last one wins. */
        int later = 0;
        for (size_t j = i + 1; j < n && !later; j++) {
            size_t l2;
            const char *k2 = tw_json_key(obj, j, &l2);
            later = l2 == klen && memcmp(k2, key, klen) == 0;
        }
        if (later)
            continue;
        const tw_json *v = tw_json_at(obj, i);
        tw_status rc;
        if (strcmp(key, "$or") == 0) {
            rc = parse_or(c, prefix, v, o, depth);
        } else {
            size_t plen = strlen(prefix);
            if (plen + 1 + klen >= c->lim->pattern_max + 64)
                return bad(c, prefix, "field path too long");
            /* Paths are short; the heap only for long ones. */
            char stackpath[256];
            char *path = plen + klen + 2 <= sizeof stackpath ? stackpath : malloc(plen + klen + 2);
            if (!path)
                return oom(c);
            memcpy(path, prefix, plen);
            if (plen)
                path[plen++] = '.';
            memcpy(path + plen, key, klen);
            path[plen + klen] = '\0';
            size_t segs = 1;
            for (const char *q = path; *q; q++)
                segs += *q == '.';
            if (segs > TW_MAX_PATH_SEGMENTS) {
                char why[96];
                snprintf(why, sizeof why, "field path has more than %u segments", TW_MAX_PATH_SEGMENTS);
                rc = bad(c, prefix, why);
                if (path != stackpath)
                    free(path);
                return rc;
            }
            switch (tw_json_typeof(v)) {
            case TW_JSON_OBJECT:
                rc = parse_object(c, path, v, o, depth + 1);
                break;
            case TW_JSON_ARRAY: {
                tw__leaf *leaf = NULL;
                rc = parse_leaf(c, path, v, &leaf);
                if (!rc)
                    rc = add_leaf(c, o, leaf);
                break;
            }
            default: {
                char why[128];
                snprintf(why, sizeof why, "must be an object or an array of matchers (got %s)", type_article(v));
                rc = bad(c, path, why);
            }
            }
            if (path != stackpath)
                free(path);
        }
        if (rc)
            return rc;
    }
    return TW_OK;
}

/* ---- expansion ---- */

static size_t count_combinations(const pobj *o, size_t cap)
{
    size_t total = 1;
    for (uint32_t i = 0; i < o->nors; i++) {
        size_t sum = 0;
        for (uint32_t j = 0; j < o->ors[i].n; j++) {
            sum += count_combinations(o->ors[i].alts[j], cap);
            if (sum > cap)
                return cap + 1;
        }
        if (sum && total > cap / sum)
            return cap + 1;
        total *= sum;
    }
    return total;
}

/* A malloc'd list of conjunctions (their leaf arrays live in the pattern's arena). */
typedef struct clist {
    uint32_t n, cap;
    tw__conj *v;
} clist;

static tw_status clist_push(pctx *c, clist *l, tw__leaf **a, uint32_t na, tw__leaf **b, uint32_t nb)
{
    if (l->n == l->cap) {
        uint32_t cap = l->cap ? l->cap * 2 : 4;
        tw__conj *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return oom(c);
        l->v = v;
        l->cap = cap;
    }
    tw__leaf **leaves = tw__arena_alloc(&c->pat->arena, (na + nb) * sizeof *leaves);
    if (!leaves)
        return oom(c);
    if (na)
        memcpy(leaves, a, na * sizeof *leaves);
    if (nb)
        memcpy(leaves + na, b, nb * sizeof *leaves);
    l->v[l->n++] = (tw__conj){na + nb, leaves};
    return TW_OK;
}

/* The conjunctions of o: its own leaves, times each $or group's alternatives (already bounded by
 * count_combinations, so the lists stay small). */
static tw_status expand(pctx *c, const pobj *o, clist *out)
{
    clist cur = {0}, next = {0}, sub = {0};
    tw_status rc = clist_push(c, &cur, o->leaves, o->nleaves, NULL, 0);
    for (uint32_t g = 0; !rc && g < o->nors; g++) {
        for (uint32_t r = 0; !rc && r < cur.n; r++) {
            for (uint32_t j = 0; !rc && j < o->ors[g].n; j++) {
                free(sub.v);
                sub = (clist){0};
                rc = expand(c, o->ors[g].alts[j], &sub);
                for (uint32_t k = 0; !rc && k < sub.n; k++)
                    rc = clist_push(c, &next, cur.v[r].leaves, cur.v[r].n, sub.v[k].leaves, sub.v[k].n);
            }
        }
        free(cur.v);
        cur = next;
        next = (clist){0};
    }
    free(sub.v);
    free(next.v);
    if (rc) {
        free(cur.v);
        return rc;
    }
    *out = cur;
    return TW_OK;
}

static tw_status build(const tw_json *root, const tw_limits *lim, tw_pattern **out, tw_error *err)
{
    tw_limits def;
    if (!lim) {
        tw_limits_default(&def);
        lim = &def;
    }
    *out = NULL;
    tw_pattern *p = calloc(1, sizeof *p);
    if (!p)
        return tw__err(err, TW_ENOMEM, "out of memory compiling pattern");
    pctx c = {p, lim, err};
    tw_status rc;
    if (tw_json_typeof(root) != TW_JSON_OBJECT) {
        char why[96];
        snprintf(why, sizeof why, "a pattern must be a JSON object (got %s)", type_article(root));
        rc = bad(&c, "", why);
        goto out;
    }
    pobj top = {0};
    if ((rc = parse_object(&c, "", root, &top, 1)))
        goto out;
    size_t n = count_combinations(&top, lim->or_combinations);
    if (n > lim->or_combinations) {
        rc = tw__err(err, TW_EPATTERN, "$or: the pattern expands to more than %u combinations",
                     lim->or_combinations);
        goto out;
    }
    clist all = {0};
    if ((rc = expand(&c, &top, &all)))
        goto out;
    p->conj = tw__arena_alloc(&p->arena, all.n * sizeof *p->conj);
    if (!p->conj) {
        free(all.v);
        rc = oom(&c);
        goto out;
    }
    memcpy(p->conj, all.v, all.n * sizeof *p->conj);
    p->nconj = all.n;
    free(all.v);
    *out = p;
    p = NULL;
out:
    tw_pattern_free(p);
    return rc;
}

tw_status tw_pattern_from_json(const tw_json *v, const tw_limits *lim, tw_pattern **out, tw_error *err)
{
    tw_limits def;
    if (!lim) {
        tw_limits_default(&def);
        lim = &def;
    }
    /* The size limit is on the pattern's JSON text; a tree is measured in its compact form. */
    if (tw__json_compact_len(v, lim->pattern_max) > lim->pattern_max)
        return tw__err(err, TW_ETOOBIG, "pattern exceeds the limit of %zu bytes", lim->pattern_max);
    return build(v, lim, out, err);
}

tw_status tw_pattern_parse(const char *json, size_t len, const tw_limits *lim, tw_pattern **out,
                           tw_error *err)
{
    tw_limits def;
    if (!lim) {
        tw_limits_default(&def);
        lim = &def;
    }
    *out = NULL;
    if (len > lim->pattern_max)
        return tw__err(err, TW_ETOOBIG, "pattern of %zu bytes exceeds the limit of %zu bytes", len,
                       lim->pattern_max);
    tw_json_doc *doc = NULL;
    tw_limits jl = *lim;
    jl.event_max = lim->pattern_max;
    tw_status rc = tw_json_parse(json, len, &jl, &doc, err);
    if (rc) {
        if (rc == TW_ENOMEM)
            return rc;
        tw__err_prefix(err, "pattern is not valid JSON");
        if (err)
            err->code = TW_EPATTERN;
        return TW_EPATTERN;
    }
    rc = build(tw_json_root(doc), lim, out, err);
    tw_json_doc_free(doc);
    return rc;
}

void tw_pattern_free(tw_pattern *p)
{
    if (!p)
        return;
    tw__arena_free(&p->arena);
    free(p);
}

size_t tw_pattern_combinations(const tw_pattern *p) { return p ? p->nconj : 0; }
