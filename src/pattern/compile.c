/* pattern/compile.c: named patterns -> one rule set (path trie, shared predicates, anchor index). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/vec.h"
#include "pattern/boolean.h"
#include "pattern/regex.h"
#include "pattern/ruleset_int.h"

/* ---- a build-time map from byte strings to uint32 (open addressing, keys copied) ---- */

typedef struct sentry {
    uint64_t hash;        /* 0 = empty */
    const char *key;
    uint32_t klen;
    uint32_t val;
} sentry;

/* One array of entries, so a probe touches one cache line, not four. */
typedef struct smap {
    sentry *e;
    uint32_t mask, n;
    tw_arena keys;
} smap;

static void smap_free(smap *m)
{
    free(m->e);
    tw__arena_free(&m->keys);
    memset(m, 0, sizeof *m);
}

static tw_status smap_grow(smap *m)
{
    uint32_t cap = m->mask ? (m->mask + 1) * 2 : 64;
    sentry *e = calloc(cap, sizeof *e);
    if (!e)
        return TW_ENOMEM;
    for (uint32_t i = 0; m->e && i <= m->mask; i++) {
        if (!m->e[i].hash)
            continue;
        uint32_t j = (uint32_t)m->e[i].hash & (cap - 1);
        while (e[j].hash)
            j = (j + 1) & (cap - 1);
        e[j] = m->e[i];
    }
    free(m->e);
    m->e = e;
    m->mask = cap - 1;
    return TW_OK;
}

/* Finds key; when absent, adds it with value `add` (and sets *added). Returns TW_NONE on OOM. */
static uint32_t smap_get(smap *m, const void *key, size_t len, uint64_t seed, uint32_t add, int *added)
{
    if (added)
        *added = 0;
    if ((m->n + 1) * 2 > (m->e ? m->mask + 1 : 0) && smap_grow(m))
        return TW_NONE;
    uint64_t h = tw__hash_bytes(key, len, seed) | 1;
    uint32_t j = (uint32_t)h & m->mask;
    for (; m->e[j].hash; j = (j + 1) & m->mask)
        if (m->e[j].hash == h && m->e[j].klen == len && memcmp(m->e[j].key, key, len) == 0)
            return m->e[j].val;
    if (add == TW_NONE)
        return TW_NONE;
    char *k = tw__arena_strndup(&m->keys, key, len);
    if (!k)
        return TW_NONE;
    m->e[j] = (sentry){h, k, (uint32_t)len, add};
    m->n++;
    if (added)
        *added = 1;
    return add;
}

/* The value slot of an existing key (NULL when absent), to update it in place. */
static uint32_t *smap_slot(smap *m, const void *key, size_t len, uint64_t seed)
{
    if (!m->e)
        return NULL;
    uint64_t h = tw__hash_bytes(key, len, seed) | 1;
    for (uint32_t j = (uint32_t)h & m->mask; m->e[j].hash; j = (j + 1) & m->mask)
        if (m->e[j].hash == h && m->e[j].klen == len && memcmp(m->e[j].key, key, len) == 0)
            return &m->e[j].val;
    return NULL;
}

/* ---- the builder ---- */

typedef struct brule {
    char *name;
    tw_pattern *pat;
    tw__brule *boolean;   /* a boolean rule instead of a pattern (boolean.h) */
} brule;

struct tw_ruleset_builder {
    tw_limits lim;
    size_t n, cap;
    brule *rules;
    smap names;
    uint32_t ncaptures;
    smap captures;        /* deep path -> capture id */
};

tw_status tw_ruleset_builder_new(const tw_limits *lim, tw_ruleset_builder **out)
{
    tw_ruleset_builder *b = calloc(1, sizeof *b);
    if (!b)
        return TW_ENOMEM;
    if (lim)
        b->lim = *lim;
    else
        tw_limits_default(&b->lim);
    *out = b;
    return TW_OK;
}

void tw_ruleset_builder_free(tw_ruleset_builder *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++) {
        free(b->rules[i].name);
        tw_pattern_free(b->rules[i].pat);
        tw__brule_free(b->rules[i].boolean);
    }
    free(b->rules);
    smap_free(&b->names);
    smap_free(&b->captures);
    free(b);
}

static tw_status add_rule(tw_ruleset_builder *b, const char *name, tw_pattern *pattern, tw__brule *boolean,
                         size_t *index, tw_error *err)
{
    tw_status rc = TW_OK;
    if (!name || (!pattern && !boolean)) {
        rc = tw__err(err, TW_EINVAL, "a rule needs a name and a pattern");
        goto out;
    }
    if (b->n >= b->lim.rules_max) {
        rc = tw__err(err, TW_ELIMIT, "more than %zu rules in one rule set", b->lim.rules_max);
        goto out;
    }
    int added;
    uint32_t v = smap_get(&b->names, name, strlen(name), 0, (uint32_t)b->n, &added);
    if (v == TW_NONE) {
        rc = tw__err(err, TW_ENOMEM, "out of memory adding rule");
        goto out;
    }
    if (!added) {
        rc = tw__err(err, TW_EEXIST, "rule \"%s\" is defined twice", name);
        goto out;
    }
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        brule *r = realloc(b->rules, cap * sizeof *r);
        if (!r) {
            rc = tw__err(err, TW_ENOMEM, "out of memory adding rule");
            goto out;
        }
        b->rules = r;
        b->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) {
        rc = tw__err(err, TW_ENOMEM, "out of memory adding rule");
        goto out;
    }
    b->rules[b->n] = (brule){copy, pattern, boolean};
    pattern = NULL;
    boolean = NULL;
    if (index)
        *index = b->n;
    b->n++;
out:
    tw_pattern_free(pattern);
    tw__brule_free(boolean);
    return rc;
}

tw_status tw_ruleset_builder_add(tw_ruleset_builder *b, const char *name, tw_pattern *pattern,
                                 size_t *index, tw_error *err)
{
    if (!pattern)
        return tw__err(err, TW_EINVAL, "a rule needs a name and a pattern");
    return add_rule(b, name, pattern, NULL, index, err);
}

tw_status tw__ruleset_builder_add_boolean(tw_ruleset_builder *b, const char *name, tw__brule *r, size_t *index,
                                          tw_error *err)
{
    if (!r)
        return tw__err(err, TW_EINVAL, "a rule needs a name and a pattern");
    return add_rule(b, name, NULL, r, index, err);
}

tw_status tw__ruleset_builder_capture(tw_ruleset_builder *b, const char *path, size_t len, uint32_t *id)
{
    int added;
    uint32_t v = smap_get(&b->captures, path, len, 0, b->ncaptures, &added);
    if (v == TW_NONE)
        return TW_ENOMEM;
    b->ncaptures += added;
    *id = v;
    return TW_OK;
}

/* ---- compilation ---- */

/* Growable malloc'd arrays used while building (common/vec.h), pushed with a jump on failure. */
#define VEC(T) TW_VEC(T)
#define VEC_PUSH(vec, x, fail)                                                      \
    do {                                                                            \
        if (TW_VEC_PUSH(&(vec), (x)))                                               \
            goto fail;                                                              \
    } while (0)

typedef struct anchor_tuple {
    uint32_t ns;
    uint32_t field, tag;
    const char *key;
    uint32_t klen;
    uint32_t conj;
} anchor_tuple;

typedef struct scan_tuple {
    uint32_t field, matcher, conj;
} scan_tuple;

typedef struct cstate {
    tw_ruleset *rs;
    tw_error *err;
    smap paths;      /* field path -> field id */
    smap dpaths;     /* field path -> deep field id (Sigma) */
    smap nodes;      /* path prefix -> node id */
    smap predkeys;   /* serialized predicate -> pred id */
    smap akeycount;  /* (field, tag, key) -> conjunctions using it */
    smap nsmap;      /* (field, exact value) -> namespace id */
    VEC(anchor_tuple) nskeys; /* namespace id - 1 -> (field, value) that opens it */
    VEC(tw__node) nodes_v;
    VEC(tw__field) fields_v;
    VEC(tw__matcher) matchers_v;
    VEC(tw__pred) preds_v;
    VEC(tw__cconj) conjs_v;
    VEC(uint32_t) conj_preds_v;
    VEC(anchor_tuple) tuples;
    VEC(scan_tuple) scans_v;
    VEC(uint32_t) always_v;
    VEC(tw__trans) edges;      /* before hashing */
    VEC(tw__batom_c) batoms;
    VEC(tw__bnode) bnodes;
    VEC(uint32_t) bkids;
    VEC(struct tw__regex *) regexes;
    const char *regex_error;   /* a regex the rule set could not compile (validated earlier: rare) */
    tw_buf keypool;
    tw_buf scratch;
} cstate;

static tw_status oom(cstate *c) { return tw__err(c->err, TW_ENOMEM, "out of memory compiling rules"); }

/* A trie node stands for the first `nseg` segments of a path: the count is part of its identity,
 * so "" (the root) and the empty first segment of ".a" are different nodes. */
static uint32_t node_for(cstate *c, const char *prefix, size_t len, uint32_t nseg)
{
    char stack[512];
    char *key = len + 4 <= sizeof stack ? stack : malloc(len + 4);
    if (!key)
        return TW_NONE;
    memcpy(key, &nseg, 4);
    memcpy(key + 4, prefix, len);
    int added;
    uint32_t id = smap_get(&c->nodes, key, len + 4, 1, c->nodes_v.n, &added);
    if (key != stack)
        free(key);
    if (id == TW_NONE || !added)
        return id;
    tw__node n = {.field = TW_NONE, .dfield = TW_NONE};
    VEC_PUSH(c->nodes_v, n, fail);
    return id;
fail:
    return TW_NONE;
}

/* CloudTrail fields with few distinct values: eventSource has a few hundred (s3.amazonaws.com is most
 * of many trails), userIdentity.type a handful. A Sigma rule usually also names eventName, whose
 * values are rare: anchored there, the rule is evaluated for the events that can match, not for
 * every S3 call. Only the choice of anchor depends on this, never what matches. */
static uint32_t coarse_field(const char *path, size_t len)
{
    static const char *const coarse[] = {"eventSource", "eventType", "eventCategory", "awsRegion", "readOnly",
                                         "managementEvent", "eventVersion", "recipientAccountId", "type",
                                         "source", "detail-type", "region", "account", NULL};
    const char *last = path + len;
    while (last > path && last[-1] != '.')
        last--;
    size_t n = (size_t)(path + len - last);
    for (size_t i = 0; coarse[i]; i++)
        if (strlen(coarse[i]) == n && memcmp(coarse[i], last, n) == 0)
            return 1;
    return 0;
}

/* Whether the path goes through one of CloudTrail's free-form payload objects, which can be large and
 * which an event is otherwise walked past without looking (skipped): an anchor there makes every
 * event's payload walked, key by key. */
static uint32_t payload_field(const char *path, size_t len)
{
    static const char *const payload[] = {"requestParameters", "responseElements", "additionalEventData",
                                          "serviceEventDetails", "resources", NULL};
    for (size_t a = 0; a < len;) {
        size_t b = a;
        while (b < len && path[b] != '.')
            b++;
        for (size_t i = 0; payload[i]; i++)
            if (strlen(payload[i]) == b - a && memcmp(payload[i], path + a, b - a) == 0)
                return 1;
        a = b + 1;
    }
    return 0;
}

/* Adds the trie nodes and edges of a field path; returns the field id (its deep reading for Sigma). */
static uint32_t field_for(cstate *c, const char *path, size_t len, int deep)
{
    int added;
    uint32_t f = smap_get(deep ? &c->dpaths : &c->paths, path, len, 2, c->fields_v.n, &added);
    if (f == TW_NONE || !added)
        return f;
    /* Segment boundaries: 0 (root), then the index of every '.', then len. */
    size_t nb = 2;
    for (size_t i = 0; i < len; i++)
        nb += path[i] == '.';
    size_t *bound = malloc(nb * sizeof *bound);
    uint32_t *ids = malloc(nb * sizeof *ids);
    if (!bound || !ids)
        goto fail;
    size_t k = 0;
    bound[k++] = 0;
    for (size_t i = 0; i < len; i++)
        if (path[i] == '.')
            bound[k++] = i;
    bound[k++] = len;
    for (size_t i = 0; i < nb; i++)
        if ((ids[i] = node_for(c, path, bound[i], (uint32_t)i)) == TW_NONE)
            goto fail;
    /* An event may spell any run of segments as one dotted key: add an edge for each. Every edge's
     * key is a piece of the path, so the path is stored once and the edges point into it. */
    uint32_t base = (uint32_t)c->keypool.len;
    if (tw__buf_append(&c->keypool, path, len))
        goto fail;
    for (size_t i = 0; i + 1 < nb; i++) {
        size_t kstart = i ? bound[i] + 1 : 0;
        c->nodes_v.v[ids[i]].has_children = 1;
        for (size_t j = i + 1; j < nb; j++) {
            size_t klen = bound[j] - kstart;
            tw__trans e = {0, ids[i], ids[j], base + (uint32_t)kstart, (uint32_t)klen};
            VEC_PUSH(c->edges, e, fail);
            c->nodes_v.v[ids[i]].keylens |= (uint64_t)1 << (klen < 63 ? klen : 63);
            c->nodes_v.v[ids[i]].keysig |= (uint64_t)1 << tw__key_sig(path + kstart, klen);
        }
    }
    if (deep)
        c->nodes_v.v[ids[nb - 1]].dfield = f;
    else
        c->nodes_v.v[ids[nb - 1]].field = f;
    tw__field fld;
    memset(&fld, 0, sizeof fld);
    fld.node = ids[nb - 1];
    fld.deep = deep != 0;
    fld.coarse = coarse_field(path, len);
    fld.payload = payload_field(path, len);
    fld.top = nb == 3 && bound[1] == 6 && memcmp(path, "detail", 6) == 0;
    VEC_PUSH(c->fields_v, fld, fail);
    free(bound);
    free(ids);
    return f;
fail:
    free(bound);
    free(ids);
    return TW_NONE;
}

/* Canonical bytes of a matcher list, to share identical predicates across rules. */
static tw_status serialize_matchers(tw_buf *b, const tw__matcher *m, uint32_t n)
{
    tw_status rc = TW_OK;
    for (uint32_t i = 0; i < n && !rc; i++) {
        const tw__matcher *x = &m[i];
        uint8_t hdr[10] = {x->kind, x->num_exact, x->lo_incl, x->hi_incl, x->has_lo, x->has_hi, x->family,
                           x->bits, x->sigma, x->flags};
        rc = tw__buf_append(b, hdr, sizeof hdr);
        if (!rc)
            rc = tw__buf_append(b, &x->len, sizeof x->len);
        if (!rc && x->len)
            rc = tw__buf_append(b, x->s, x->len);
        if (!rc && x->kind == TW_M_NUMERIC) {
            rc = tw__buf_append(b, &x->lo, sizeof x->lo);
            if (!rc)
                rc = tw__buf_append(b, &x->hi, sizeof x->hi);
        }
        if (!rc && x->kind == TW_M_CIDR)
            rc = tw__buf_append(b, x->addr, sizeof x->addr);
        if (!rc && x->kind == TW_M_ANYTHING_BUT) {
            rc = tw__buf_append(b, &x->nlist, sizeof x->nlist);
            if (!rc)
                rc = serialize_matchers(b, x->list, x->nlist);
        }
    }
    return rc;
}

/* Deep copy of a matcher into the rule set's arena. */
static tw_status copy_matcher(tw_arena *a, const tw__matcher *src, tw__matcher *dst)
{
    *dst = *src;
    if (src->len || src->s)
        if (!(dst->s = tw__arena_strndup(a, src->s ? src->s : "", src->len)))
            return TW_ENOMEM;
    if (src->kind == TW_M_WILDCARD || src->kind == TW_M_GLOB) {
        uint32_t n = src->wc.nseg;
        dst->wc.seg = tw__arena_alloc(a, n * sizeof(char *));
        dst->wc.seglen = tw__arena_alloc(a, n * sizeof(uint32_t));
        if (!dst->wc.seg || !dst->wc.seglen)
            return TW_ENOMEM;
        for (uint32_t i = 0; i < n; i++) {
            dst->wc.seglen[i] = src->wc.seglen[i];
            if (!(dst->wc.seg[i] = tw__arena_strndup(a, src->wc.seg[i], src->wc.seglen[i])))
                return TW_ENOMEM;
        }
    }
    if (src->kind == TW_M_ANYTHING_BUT) {
        if (!(dst->list = tw__arena_alloc(a, src->nlist * sizeof *dst->list)))
            return TW_ENOMEM;
        for (uint32_t i = 0; i < src->nlist; i++)
            if (copy_matcher(a, &src->list[i], &dst->list[i]))
                return TW_ENOMEM;
    }
    return TW_OK;
}

/* The rule set compiles and owns the regexes its matchers use, whoever made the leaf. */
static int own_regex(cstate *c, tw__matcher *m)
{
    struct tw__regex *re = NULL;
    char why[200];
    if (!tw__regex_compile(m->s, m->len, m->flags, &re, why, sizeof why)) {
        if (re == NULL && strcmp(why, "out of memory") != 0)
            c->regex_error = "a regular expression does not compile";
        return 0;
    }
    VEC_PUSH(c->regexes, re, fail);
    m->re = re;
    /* The literal every match contains, kept as a one-segment wc for anchor_key. */
    char *lit = tw__arena_alloc(&c->rs->arena, m->len + 1);
    const char **seg = tw__arena_alloc(&c->rs->arena, sizeof *seg);
    uint32_t *seglen = tw__arena_alloc(&c->rs->arena, sizeof *seglen);
    if (!lit || !seg || !seglen)
        return 0;
    size_t n = tw__regex_literal(m->s, m->len, (m->flags & TW_MF_RE_I) != 0, lit);
    if (n) {
        seg[0] = lit;
        seglen[0] = (uint32_t)n;
        m->wc = (tw__wildcard){1, seg, seglen};
    }
    return 1;
fail:
    tw__regex_free(re);
    return 0;
}

static uint32_t pred_for(cstate *c, uint32_t field, const tw__leaf *leaf)
{
    tw_buf *b = &c->scratch;
    tw_buf_reset(b);
    uint32_t ef = leaf->exists_false;
    if (tw__buf_append(b, &field, 4) || tw__buf_append(b, &ef, 4) || serialize_matchers(b, leaf->m, leaf->nm))
        return TW_NONE;
    int added;
    uint32_t id = smap_get(&c->predkeys, b->data, b->len, 3, c->preds_v.n, &added);
    if (id == TW_NONE || !added)
        return id;
    tw__pred p = {field, ef, c->matchers_v.n, leaf->nm};
    for (uint32_t i = 0; i < leaf->nm; i++) {
        tw__matcher m;
        if (copy_matcher(&c->rs->arena, &leaf->m[i], &m))
            return TW_NONE;
        if (m.kind == TW_M_REGEX && !own_regex(c, &m))
            return TW_NONE;
        VEC_PUSH(c->matchers_v, m, fail);
    }
    VEC_PUSH(c->preds_v, p, fail);
    return id;
fail:
    return TW_NONE;
}

/* The anchor key of a matcher: 1 with (tag, key) when it can be looked up, 0 when it must be tested. */
static int anchor_key(const tw__matcher *m, uint32_t *tag, const char **key, uint32_t *klen, char lit[18])
{
    switch ((tw__mkind)m->kind) {
    case TW_M_STRING: *tag = TW_TAG_EXACT; *key = m->s; *klen = m->len; return 1;
    case TW_M_PREFIX: *tag = TW_TAG_PREFIX; *key = m->s; *klen = m->len; return 1;
    case TW_M_SUFFIX: *tag = TW_TAG_SUFFIX; *key = m->s; *klen = m->len; return 1;
    case TW_M_PREFIX_EIC: *tag = TW_TAG_PREFIX_EIC; *key = m->s; *klen = m->len; return 1;
    case TW_M_SUFFIX_EIC: *tag = TW_TAG_SUFFIX_EIC; *key = m->s; *klen = m->len; return 1;
    case TW_M_EIC: *tag = TW_TAG_EIC; *key = m->s; *klen = m->len; return 1;
    case TW_M_NUMBER: {
        double d = m->d == 0 ? 0.0 : m->d; /* -0 and 0 share a key */
        if (!isfinite(d))
            return 0;
        memcpy(lit, &d, 8);
        *tag = TW_TAG_NUMBER; *key = lit; *klen = 8;
        return 1;
    }
    case TW_M_CIDR: {
        unsigned total = m->family == 4 ? 4 : 16;
        lit[0] = (char)m->family;
        lit[1] = (char)m->bits;
        memcpy(lit + 2, m->addr, total);
        *tag = TW_TAG_CIDR; *key = lit; *klen = 2 + total;
        return 1;
    }
    case TW_M_NULL: case TW_M_TRUE: case TW_M_FALSE:
        lit[0] = (char)(m->kind == TW_M_NULL ? TW_JSON_NULL : m->kind == TW_M_TRUE ? TW_JSON_TRUE : TW_JSON_FALSE);
        *tag = TW_TAG_LITERAL; *key = lit; *klen = 1;
        return 1;
    case TW_M_WILDCARD: {
        /* File it under its literal head (or tail); the full wildcard is tested afterwards. */
        uint32_t last = m->wc.nseg - 1;
        if (m->wc.nseg == 1) {
            *tag = TW_TAG_EXACT; *key = m->wc.seg[0]; *klen = m->wc.seglen[0];
            return 1;
        }
        if (m->wc.seglen[0]) {
            *tag = TW_TAG_PREFIX; *key = m->wc.seg[0]; *klen = m->wc.seglen[0];
            return 1;
        }
        if (m->wc.seglen[last]) {
            *tag = TW_TAG_SUFFIX; *key = m->wc.seg[last]; *klen = m->wc.seglen[last];
            return 1;
        }
        return 0;
    }
    case TW_M_REGEX:
        /* the text every match contains (own_regex); the expression is run on the candidates */
        if (m->wc.nseg != 1)
            return 0;
        *tag = m->flags & TW_MF_RE_I ? TW_TAG_CONTAINS_EIC : TW_TAG_CONTAINS;
        *key = m->wc.seg[0];
        *klen = m->wc.seglen[0];
        return 1;
    default:
        return 0;
    }
}

static uint64_t count_seed(uint32_t field, uint32_t tag) { return ((uint64_t)field << 8 | tag) + 11; }

/* A literal piece a wildcard or glob needs in every value it accepts, with the anchor tag it would
 * be filed under: the head as a prefix, the tail as a suffix, anything else as a contains key. */
typedef struct piece {
    uint32_t tag;
    const char *key;
    uint32_t klen;
} piece;

typedef int (*piece_fn)(void *ctx, const piece *p);

/* Calls fn for each piece of m (TW_M_WILDCARD or TW_M_GLOB) until it returns non-zero. */
static int each_piece(const tw__matcher *m, piece_fn fn, void *ctx)
{
    int glob = m->kind == TW_M_GLOB, eic = glob && !(m->flags & TW_MF_CASED);
    uint32_t last = m->wc.nseg - 1;
    for (uint32_t i = 0; i <= last; i++) {
        const char *sg = m->wc.seg[i];
        uint32_t n = m->wc.seglen[i];
        for (uint32_t a = 0, b; a < n; a = b + 1) {
            for (b = a; glob && b < n && sg[b] != TW_GLOB_ONE; b++) {}
            if (!glob)
                b = n;
            if (b == a)
                continue;
            int head = i == 0 && a == 0, tail = i == last && b == n;
            piece p = {head && tail ? (eic ? TW_TAG_EIC : TW_TAG_EXACT)
                       : head       ? (eic ? TW_TAG_PREFIX_EIC : TW_TAG_PREFIX)
                       : tail       ? (eic ? TW_TAG_SUFFIX_EIC : TW_TAG_SUFFIX)
                                    : (eic ? TW_TAG_CONTAINS_EIC : TW_TAG_CONTAINS),
                       sg + a, b - a};
            if (fn(ctx, &p))
                return 1;
        }
    }
    return 0;
}

typedef struct best_piece {
    cstate *c;
    uint32_t field;
    piece best;
    uint64_t occ;
    int found;
} best_piece;

static int consider_piece(void *ctx, const piece *p)
{
    best_piece *b = ctx;
    uint64_t occ = 0;
    if (b->c) {
        uint32_t *n = smap_slot(&b->c->akeycount, p->key, p->klen, count_seed(b->field, p->tag));
        occ = n ? *n : 0;
    }
    if (!b->found || occ < b->occ || (occ == b->occ && p->klen > b->best.klen)) {
        b->best = *p;
        b->occ = occ;
        b->found = 1;
    }
    return 0;
}

/* The anchor of a wildcard or glob: its piece shared by the fewest conjunctions (then the longest).
 * Without counts (c NULL): the longest piece. Returns 0 when it has none ("*", "?"). */
static int wildcard_key(cstate *c, uint32_t field, const tw__matcher *m, uint32_t *tag, const char **key,
                        uint32_t *klen)
{
    best_piece b = {c, field, {0, NULL, 0}, 0, 0};
    each_piece(m, consider_piece, &b);
    if (!b.found)
        return 0;
    *tag = b.best.tag;
    *key = b.best.key;
    *klen = b.best.klen;
    return 1;
}

static int is_pieced(const tw__matcher *m)
{
    return (m->kind == TW_M_WILDCARD && m->wc.nseg > 1) || m->kind == TW_M_GLOB;
}

/* anchor_key, with wildcards anchored by their rarest segment. */
static int anchor_of(cstate *c, uint32_t field, const tw__matcher *m, uint32_t *tag, const char **key,
                     uint32_t *klen, char lit[18])
{
    if (is_pieced(m))
        return wildcard_key(c, field, m, tag, key, klen);
    return anchor_key(m, tag, key, klen, lit);
}

/* Estimated share of events a predicate lets through as candidates: looked-up keys cost the number
 * of conjunctions sharing them (a value common across rules is likely common in events); tested
 * matchers cost far more. Predicates that absence satisfies cannot anchor. */
static double pred_cost(cstate *c, const tw__pred *p)
{
    if (p->exists_false)
        return INFINITY;
    double cost = 0;
    for (uint32_t i = 0; i < p->nm; i++) {
        const tw__matcher *m = &c->rs->matchers[p->moff + i];
        uint32_t tag, klen;
        const char *key;
        char lit[18];
        if (anchor_of(c, p->field, m, &tag, &key, &klen, lit)) {
            uint32_t n = smap_get(&c->akeycount, key, klen, count_seed(p->field, tag), TW_NONE, NULL);
            cost += 1.0 + (n == TW_NONE ? 0 : n) + (tag == TW_TAG_EXACT ? 0 : 2.0 / (1.0 + klen));
            /* a contains key is found by scanning every value of the field: dearer than a lookup */
            if (tag == TW_TAG_CONTAINS || tag == TW_TAG_CONTAINS_EIC)
                cost += 8.0;
        } else {
            cost += 1e6;
        }
    }
    return cost;
}

static tw_status count_one(cstate *c, uint32_t field, uint32_t tag, const char *key, uint32_t klen);

typedef struct count_ctx {
    cstate *c;
    uint32_t field;
} count_ctx;

static int count_piece(void *ctx, const piece *p)
{
    count_ctx *k = ctx;
    return count_one(k->c, k->field, p->tag, p->key, p->klen) != TW_OK;
}

static tw_status count_keys(cstate *c, const tw__pred *p)
{
    for (uint32_t i = 0; i < p->nm; i++) {
        uint32_t tag, klen;
        const char *key;
        char lit[18];
        const tw__matcher *m = &c->matchers_v.v[p->moff + i];
        if (is_pieced(m)) {
            /* every piece could become the anchor: count them all */
            count_ctx k = {c, p->field};
            if (each_piece(m, count_piece, &k))
                return TW_ENOMEM;
            continue;
        }
        if (!anchor_key(m, &tag, &key, &klen, lit))
            continue;
        if (count_one(c, p->field, tag, key, klen))
            return TW_ENOMEM;
    }
    return TW_OK;
}

static tw_status count_one(cstate *c, uint32_t field, uint32_t tag, const char *key, uint32_t klen)
{
    uint64_t seed = count_seed(field, tag);
    uint32_t *slot = smap_slot(&c->akeycount, key, klen, seed);
    if (slot)
        (*slot)++;
    else if (smap_get(&c->akeycount, key, klen, seed, 1, NULL) == TW_NONE)
        return TW_ENOMEM;
    return TW_OK;
}

static int cmp_tuple(const void *a, const void *b)
{
    const anchor_tuple *x = a, *y = b;
    if (x->ns != y->ns)
        return x->ns < y->ns ? -1 : 1;
    if (x->field != y->field)
        return x->field < y->field ? -1 : 1;
    if (x->tag != y->tag)
        return x->tag < y->tag ? -1 : 1;
    if (x->klen != y->klen)
        return x->klen < y->klen ? -1 : 1;
    int r = memcmp(x->key, y->key, x->klen);
    if (r)
        return r;
    return x->conj < y->conj ? -1 : x->conj > y->conj;
}

static int cmp_scan(const void *a, const void *b)
{
    const scan_tuple *x = a, *y = b;
    if (x->field != y->field)
        return x->field < y->field ? -1 : 1;
    if (x->matcher != y->matcher)
        return x->matcher < y->matcher ? -1 : 1;
    return x->conj < y->conj ? -1 : x->conj > y->conj;
}

static int same_key(const anchor_tuple *x, const anchor_tuple *y)
{
    return x->ns == y->ns && x->field == y->field && x->tag == y->tag && x->klen == y->klen &&
           memcmp(x->key, y->key, x->klen) == 0;
}

static int all_kinds(const tw_ruleset *rs, const tw__pred *p, int affix_ok)
{
    if (p->exists_false || !p->nm)
        return 0;
    for (uint32_t i = 0; i < p->nm; i++) {
        uint8_t k = rs->matchers[p->moff + i].kind;
        if (rs->matchers[p->moff + i].sigma) /* also accepts numbers and booleans: not "proven" by a key */
            return 0;
        if (k != TW_M_STRING && !(affix_ok && (k == TW_M_PREFIX || k == TW_M_SUFFIX)))
            return 0;
    }
    return 1;
}

/* Files conjunction ci under composite anchors when its best predicate (pv[0]) is exact strings and
 * another predicate on another field is exact / prefix / suffix strings. 1 when filed, 0 when not
 * applicable, -1 when out of memory. */
static int composite(cstate *c, uint32_t *pv, uint32_t npred, uint32_t ci)
{
    tw_ruleset *rs = c->rs;
    const tw__pred *p1 = &rs->preds[pv[0]], *p2 = NULL;
    uint32_t i2 = 0;
    if (!all_kinds(rs, p1, 0))
        return 0;
    for (uint32_t i = 1; i < npred && !p2; i++) {
        const tw__pred *q = &rs->preds[pv[i]];
        if (q->field != p1->field && all_kinds(rs, q, 1)) {
            p2 = q;
            i2 = i;
        }
    }
    if (!p2 || (uint64_t)p1->nm * p2->nm > 64) /* a few combinations, not a cross product blow-up */
        return 0;
    for (uint32_t i = 0; i < p1->nm; i++)
        if (rs->matchers[p1->moff + i].len > 256)
            return 0; /* an unusually long value: plain anchoring (only pv[0] is proven then) */
    /* Both keys prove their predicates: p2 goes second, so the check starts after the two. */
    uint32_t second = pv[i2];
    memmove(pv + 2, pv + 1, (i2 - 1) * sizeof *pv);
    pv[1] = second;
    rs->conjs[ci].nanchor = 2;
    rs->conjs[ci].proven = npred == 2;
    for (uint32_t i = 0; i < p1->nm; i++) {
        const tw__matcher *m1 = &rs->matchers[p1->moff + i];
        char kb[4 + 256];
        /* the namespace of (field, value) */
        memcpy(kb, &p1->field, 4);
        memcpy(kb + 4, m1->s, m1->len);
        int added;
        uint32_t ns = smap_get(&c->nsmap, kb, 4 + m1->len, 5, c->nskeys.n + 1, &added);
        if (ns == TW_NONE)
            return -1;
        if (added) {
            anchor_tuple k = {0, p1->field, TW_TAG_NS, m1->s, m1->len, 0};
            VEC_PUSH(c->nskeys, k, fail);
        }
        for (uint32_t j = 0; j < p2->nm; j++) {
            uint32_t tag, klen;
            const char *key;
            char lit[18];
            if (!anchor_key(&rs->matchers[p2->moff + j], &tag, &key, &klen, lit))
                return -1; /* cannot happen: exact, prefix and suffix always have keys */
            char *k = tw__arena_strndup(&rs->arena, key, klen);
            if (!k)
                return -1;
            anchor_tuple t = {ns, p2->field, tag, k, klen, ci};
            VEC_PUSH(c->tuples, t, fail);
        }
    }
    return 1;
fail:
    return -1;
}

/* A prefix or suffix is a poor anchor alone ("Put" begins hundreds of operations, across services):
 * when the conjunction also has an exact string predicate on another field, the two are filed as a
 * composite anchor instead, whose candidates are a subset of the prefix's. Moves that exact predicate
 * (the cheapest such) to the front, so composite() takes it and then the prefix. */
static void prefer_composite(const tw_ruleset *rs, uint32_t *pv, uint32_t npred)
{
    const tw__pred *a = &rs->preds[pv[0]];
    if (npred < 2 || all_kinds(rs, a, 0) || !all_kinds(rs, a, 1))
        return;
    for (uint32_t i = 1; i < npred; i++) {
        const tw__pred *q = &rs->preds[pv[i]];
        if (q->field == a->field || !all_kinds(rs, q, 0) || (uint64_t)q->nm * a->nm > 64)
            continue;
        int long_value = 0;
        for (uint32_t k = 0; k < q->nm; k++)
            long_value |= rs->matchers[q->moff + k].len > 256;
        if (long_value)
            continue;
        uint32_t x = pv[i];
        memmove(pv + 1, pv, i * sizeof *pv);
        pv[0] = x;
        return;
    }
}

/* Files each conjunction under its anchor and orders its predicates (anchor, then cheapest first). */
static tw_status choose_anchors(cstate *c)
{
    tw_ruleset *rs = c->rs;
    double *cost = NULL;
    uint32_t maxp = 0;
    for (uint32_t i = 0; i < c->rs->nconjs; i++)
        if (c->rs->conjs[i].npred > maxp)
            maxp = c->rs->conjs[i].npred;
    rs->max_conj_preds = maxp;
    cost = malloc((maxp + 1) * sizeof *cost);
    if (!cost)
        return oom(c);
    for (uint32_t ci = 0; ci < c->rs->nconjs; ci++) {
        tw__cconj *cj = &c->rs->conjs[ci];
        uint32_t *pv = &c->rs->conj_preds[cj->poff];
        for (uint32_t i = 0; i < cj->npred; i++) {
            const tw__pred *p = &c->rs->preds[pv[i]];
            cost[i] = pred_cost(c, p);
            if (cj->boolean && rs->fields[p->field].coarse)
                cost[i] *= 16;
            if (cj->boolean && rs->fields[p->field].payload)
                cost[i] *= 8;
        }
        /* insertion sort by cost: conjunctions are short */
        for (uint32_t i = 1; i < cj->npred; i++) {
            double ck = cost[i];
            uint32_t pk = pv[i];
            uint32_t j = i;
            for (; j > 0 && cost[j - 1] > ck; j--) {
                cost[j] = cost[j - 1];
                pv[j] = pv[j - 1];
            }
            cost[j] = ck;
            pv[j] = pk;
        }
        if (cj->npred == 0 || isinf(cost[0])) {
            VEC_PUSH(c->always_v, ci, fail);
            continue;
        }
        if (!cj->boolean)
            prefer_composite(rs, pv, cj->npred);
        const tw__pred *p = &c->rs->preds[pv[0]];
        /* An exact / prefix / suffix key found the conjunction only if the value has it. */
        cj->nanchor = !cj->boolean && all_kinds(rs, p, 1);
        cj->proven = cj->npred == 1 && cj->nanchor;
        int comp = cj->boolean ? 0 : composite(c, pv, cj->npred, ci);
        if (comp < 0)
            goto fail;
        if (comp)
            continue;
        for (uint32_t i = 0; i < p->nm; i++) {
            uint32_t tag, klen;
            const char *key;
            char lit[18];
            const tw__matcher *m = &c->rs->matchers[p->moff + i];
            if (anchor_of(c, p->field, m, &tag, &key, &klen, lit)) {
                char *k = tw__arena_strndup(&rs->arena, key, klen);
                if (!k)
                    goto fail;
                anchor_tuple t = {0, p->field, tag, k, klen, ci};
                VEC_PUSH(c->tuples, t, fail);
            } else {
                scan_tuple s = {p->field, p->moff + i, ci};
                VEC_PUSH(c->scans_v, s, fail);
            }
        }
    }
    free(cost);
    return TW_OK;
fail:
    free(cost);
    return oom(c);
}

/* One Aho-Corasick automaton per field over its contains keys of one tag (values: akey slots):
 * TW_TAG_CONTAINS keys are looked for in values as they are, TW_TAG_CONTAINS_EIC in folded ones. */
static int build_acs_of(cstate *c, uint32_t tag, size_t first)
{
    tw_ruleset *rs = c->rs;
    size_t n = first;
    for (uint32_t s = 0; s <= rs->akey_mask; s++) {
        const tw__akey *a = &rs->akeys[s];
        uint32_t *slot = tag == TW_TAG_CONTAINS ? &rs->fields[a->field].ac : &rs->fields[a->field].ac_eic;
        if (a->hash && a->tag == tag && *slot == TW_NONE)
            *slot = (uint32_t)n++;
    }
    if (n == first)
        return 1;
    tw__ac *acs = realloc(rs->acs, n * sizeof *acs);
    if (!acs)
        return 0;
    memset(acs + first, 0, (n - first) * sizeof *acs);
    rs->acs = acs;
    rs->nacs = (uint32_t)n; /* zeroed entries free cleanly should a build below fail */
    tw__affix_key *keys = malloc((rs->akey_mask + 1) * sizeof *keys);
    int ok = keys != NULL;
    for (uint32_t f = 0; ok && f < rs->nfields; f++) {
        uint32_t ac = tag == TW_TAG_CONTAINS ? rs->fields[f].ac : rs->fields[f].ac_eic;
        if (ac == TW_NONE)
            continue;
        size_t k = 0;
        for (uint32_t s = 0; s <= rs->akey_mask; s++) {
            const tw__akey *a = &rs->akeys[s];
            if (a->hash && a->tag == tag && a->field == f)
                keys[k++] = (tw__affix_key){(const uint8_t *)rs->akeypool + a->koff, a->klen, s};
        }
        ok = tw__ac_build(&rs->acs[ac], keys, k);
        if (ok)
            rs->memory += tw__ac_memory(&rs->acs[ac]);
    }
    free(keys);
    return ok;
}

static int build_acs(cstate *c)
{
    tw_ruleset *rs = c->rs;
    for (uint32_t f = 0; f < rs->nfields; f++)
        rs->fields[f].ac = rs->fields[f].ac_eic = TW_NONE;
    if (!build_acs_of(c, TW_TAG_CONTAINS, 0))
        return 0;
    return build_acs_of(c, TW_TAG_CONTAINS_EIC, rs->nacs);
}

/* Namespace records from the composite tuples (sorted by namespace, field). */
static int build_namespaces(cstate *c)
{
    tw_ruleset *rs = c->rs;
    rs->nns = c->nskeys.n;
    rs->ns = calloc(rs->nns + 1, sizeof *rs->ns);
    VEC(tw__nsfield) nf = {0};
    if (!rs->ns)
        return 0;
    for (uint32_t i = 0; i < c->tuples.n; i++) {
        const anchor_tuple *t = &c->tuples.v[i];
        if (!t->ns)
            continue;
        tw__ns *ns = &rs->ns[t->ns];
        if (!ns->n || nf.v[nf.n - 1].field != t->field) {
            if (!ns->n)
                ns->off = nf.n;
            tw__nsfield f = {t->field, 0, {TW_NONE, TW_NONE}};
            VEC_PUSH(nf, f, fail);
            ns->n++;
        }
        nf.v[nf.n - 1].tags |= 1u << t->tag;
    }
    rs->nsfields = nf.v ? nf.v : malloc(sizeof *nf.v);
    rs->memory += (rs->nns + 1) * sizeof *rs->ns + nf.cap * sizeof *nf.v;
    return rs->nsfields != NULL;
fail:
    free(nf.v);
    return 0;
}

/* Where the trie of an affix key goes: the field's (plain anchors) or its namespace's. */
static uint32_t *trie_slot(tw_ruleset *rs, const tw__akey *k)
{
    uint32_t a = k->tag - TW_TAG_PREFIX;
    if (!k->ns)
        return &rs->fields[k->field].trie[a];
    const tw__ns *ns = &rs->ns[k->ns];
    for (uint32_t i = 0; i < ns->n; i++)
        if (rs->nsfields[ns->off + i].field == k->field)
            return &rs->nsfields[ns->off + i].trie[k->tag == TW_TAG_PREFIX ? 0 : 1];
    return NULL;
}

/* One trie per (field, affix tag) over the keys filed under that tag, so a value finds all its
 * prefixes in one walk. Values of the trie are slots of rs->akeys. */
static int build_tries(cstate *c)
{
    tw_ruleset *rs = c->rs;
    for (uint32_t f = 0; f < rs->nfields; f++)
        for (int a = 0; a < 4; a++)
            rs->fields[f].trie[a] = TW_NONE;
    size_t nkeys = 0, want = 0;
    for (uint32_t s = 0; s <= rs->akey_mask; s++) {
        const tw__akey *k = &rs->akeys[s];
        if (k->hash && k->tag >= TW_TAG_PREFIX && k->tag <= TW_TAG_SUFFIX_EIC) {
            nkeys++;
            uint32_t *slot = trie_slot(rs, k);
            if (!slot)
                return 0;
            if (*slot == TW_NONE)
                *slot = (uint32_t)want++;
        }
    }
    if (!want)
        return 1;
    rs->tries = calloc(want, sizeof *rs->tries);
    tw__affix_key *keys = malloc(nkeys * sizeof *keys);
    size_t *count = calloc(want + 1, sizeof *count);
    int ok = rs->tries && keys && count;
    /* Bucket the keys by trie, then build each trie from its bucket. */
    for (uint32_t s = 0; ok && s <= rs->akey_mask; s++) {
        const tw__akey *k = &rs->akeys[s];
        if (k->hash && k->tag >= TW_TAG_PREFIX && k->tag <= TW_TAG_SUFFIX_EIC)
            count[*trie_slot(rs, k) + 1]++;
    }
    for (size_t i = 0; ok && i < want; i++)
        count[i + 1] += count[i];
    size_t *fillp = ok ? malloc((want + 1) * sizeof *fillp) : NULL;
    ok = ok && fillp;
    if (ok)
        memcpy(fillp, count, (want + 1) * sizeof *fillp);
    int *reverse = ok ? calloc(want, sizeof *reverse) : NULL;
    ok = ok && reverse;
    for (uint32_t s = 0; ok && s <= rs->akey_mask; s++) {
        const tw__akey *k = &rs->akeys[s];
        if (!(k->hash && k->tag >= TW_TAG_PREFIX && k->tag <= TW_TAG_SUFFIX_EIC))
            continue;
        uint32_t t = *trie_slot(rs, k);
        reverse[t] = k->tag == TW_TAG_SUFFIX || k->tag == TW_TAG_SUFFIX_EIC;
        keys[fillp[t]++] = (tw__affix_key){(const uint8_t *)rs->akeypool + k->koff, k->klen, s};
    }
    for (size_t t = 0; ok && t < want; t++) {
        ok = tw__affix_build(&rs->tries[t], keys + count[t], count[t + 1] - count[t], reverse[t]);
        rs->ntries = (uint32_t)t + ok;
        if (ok)
            rs->memory += tw__affix_memory(&rs->tries[t]);
    }
    free(keys);
    free(count);
    free(fillp);
    free(reverse);
    return ok;
}

/* Hash tables and per-field probe lists from the anchor tuples and scans. */
static tw_status build_index(cstate *c)
{
    tw_ruleset *rs = c->rs;
    tw_buf pool = TW_BUF_INIT;
    VEC(uint32_t) lens = {0};
    if (c->tuples.n)
        qsort(c->tuples.v, c->tuples.n, sizeof *c->tuples.v, cmp_tuple);
    uint32_t nkeys = c->nskeys.n;
    for (uint32_t i = 0; i < c->tuples.n; i++)
        nkeys += i == 0 || !same_key(&c->tuples.v[i - 1], &c->tuples.v[i]);
    uint32_t size = 16;
    while (size < nkeys * 2 + 2)
        size *= 2;
    rs->akey_mask = size - 1;
    rs->akeys = calloc(size, sizeof *rs->akeys);
    rs->postings = malloc((c->tuples.n + 1) * sizeof *rs->postings);
    if (!rs->akeys || !rs->postings)
        goto fail;
    uint32_t np = 0;
    for (uint32_t i = 0; i < c->tuples.n;) {
        const anchor_tuple *t = &c->tuples.v[i];
        uint32_t j = i, start = np;
        for (; j < c->tuples.n && same_key(&c->tuples.v[j], t); j++)
            if (np == start || rs->postings[np - 1] != c->tuples.v[j].conj)
                rs->postings[np++] = c->tuples.v[j].conj;
        uint64_t h = tw__akey_hash(t->ns, t->field, t->tag, t->key, t->klen);
        uint32_t slot = (uint32_t)h & rs->akey_mask;
        while (rs->akeys[slot].hash)
            slot = (slot + 1) & rs->akey_mask;
        rs->akeys[slot] = (tw__akey){h, t->ns, t->field, t->tag, (uint32_t)pool.len, t->klen, start, np - start};
        if (tw__buf_append(&pool, t->key, t->klen))
            goto fail;
        if (t->ns) { /* composite: described by its namespace, not by the field */
            i = j;
            continue;
        }
        tw__field *tf = &rs->fields[t->field];
        if (t->tag == TW_TAG_EXACT || t->tag == TW_TAG_EIC) {
            uint32_t *mm = tf->klens[t->tag == TW_TAG_EIC];
            if (!(tf->tags & (1u << t->tag)) || t->klen < mm[0])
                mm[0] = t->klen;
            if (!(tf->tags & (1u << t->tag)) || t->klen > mm[1])
                mm[1] = t->klen;
        } else if (t->tag >= TW_TAG_PREFIX && t->tag <= TW_TAG_SUFFIX_EIC) {
            uint32_t *mn = &tf->amin[t->tag - TW_TAG_PREFIX];
            if (!(tf->tags & (1u << t->tag)) || t->klen < *mn)
                *mn = t->klen;
        }
        tf->tags |= 1u << t->tag;
        if (t->tag == TW_TAG_CIDR) {
            /* Distinct (family, bits) per field; few, so a linear check is enough. */
            tw__field *f = &rs->fields[t->field];
            uint32_t code = (uint32_t)(uint8_t)t->key[0] << 8 | (uint8_t)t->key[1];
            int have = 0;
            for (uint32_t q = 0; q < f->nlens[4] && !have; q++)
                have = lens.v[f->lens_off[4] + q] == code;
            if (!have) {
                if (f->nlens[4] == 0)
                    f->lens_off[4] = lens.n;
                else if (f->lens_off[4] + f->nlens[4] != lens.n)
                    goto fail; /* tuples of one field and tag are contiguous: cannot happen */
                VEC_PUSH(lens, code, fail);
                f->nlens[4]++;
            }
        }
        /* Distinct key lengths per field for the affix tags (sorted by field, tag, klen). */
        if (t->tag >= TW_TAG_PREFIX && t->tag <= TW_TAG_SUFFIX_EIC) {
            tw__field *f = &rs->fields[t->field];
            uint32_t a = t->tag - TW_TAG_PREFIX;
            if (f->nlens[a] == 0)
                f->lens_off[a] = lens.n;
            if (f->nlens[a] == 0 || lens.v[lens.n - 1] != t->klen) {
                VEC_PUSH(lens, t->klen, fail);
                f->nlens[a]++;
            }
        }
        i = j;
    }
    /* The keys that open namespaces: value -> namespace id (in post_off). */
    for (uint32_t i = 0; i < c->nskeys.n; i++) {
        const anchor_tuple *t = &c->nskeys.v[i];
        uint64_t h = tw__akey_hash(0, t->field, TW_TAG_NS, t->key, t->klen);
        uint32_t slot = (uint32_t)h & rs->akey_mask;
        while (rs->akeys[slot].hash)
            slot = (slot + 1) & rs->akey_mask;
        rs->akeys[slot] = (tw__akey){h, 0, t->field, TW_TAG_NS, (uint32_t)pool.len, t->klen, i + 1, 0};
        if (tw__buf_append(&pool, t->key, t->klen))
            goto fail;
        rs->fields[t->field].tags |= 1u << TW_TAG_NS;
    }
    if (!build_namespaces(c))
        goto fail;
    if (!(rs->akeypool = tw__buf_detach(&pool, NULL)))
        goto fail;
    rs->lens = lens.v ? lens.v : malloc(sizeof(uint32_t));
    lens.v = NULL;
    /* Tested anchors, grouped by field. */
    if (c->scans_v.n)
        qsort(c->scans_v.v, c->scans_v.n, sizeof *c->scans_v.v, cmp_scan);
    rs->scans = malloc((c->scans_v.n + 1) * sizeof *rs->scans);
    if (!rs->lens || !rs->scans)
        goto fail;
    for (uint32_t i = 0; i < c->scans_v.n; i++) {
        const scan_tuple *t = &c->scans_v.v[i];
        tw__field *f = &rs->fields[t->field];
        if (f->nscan == 0)
            f->scan_off = i;
        f->nscan++;
        rs->scans[i] = (tw__scan){t->matcher, t->conj};
    }
    rs->memory += size * sizeof *rs->akeys + (c->tuples.n + 1) * 4 + c->scans_v.n * sizeof *rs->scans +
                  c->tuples.n * 8;
    return build_tries(c) && build_acs(c) ? TW_OK : oom(c);
fail:
    tw__buf_free(&pool);
    free(lens.v);
    return oom(c);
}

/* The trie edges into an open-addressing table. */
static tw_status build_trie(cstate *c)
{
    tw_ruleset *rs = c->rs;
    uint32_t size = 16;
    while (size < c->edges.n * 2 + 2)
        size *= 2;
    rs->trans_mask = size - 1;
    if (!(rs->trans = calloc(size, sizeof *rs->trans)))
        return oom(c);
    const char *pool = c->keypool.data ? c->keypool.data : "";
    for (uint32_t i = 0; i < c->edges.n; i++) {
        tw__trans e = c->edges.v[i];
        e.hash = tw__trans_hash(e.from, pool + e.koff, e.klen);
        uint32_t slot = (uint32_t)e.hash & rs->trans_mask;
        int dup = 0;
        for (; rs->trans[slot].hash; slot = (slot + 1) & rs->trans_mask) {
            const tw__trans *o = &rs->trans[slot];
            if (o->hash == e.hash && o->from == e.from && o->klen == e.klen &&
                memcmp(pool + o->koff, pool + e.koff, e.klen) == 0) {
                dup = 1;
                break;
            }
        }
        if (!dup)
            rs->trans[slot] = e;
    }
    /* The same edges as per-node tables (counted, then placed), for nodes with few children. */
    for (uint32_t i = 0; i < rs->nnodes; i++)
        rs->nodes[i].nkids = 0;
    for (uint32_t s = 0; s <= rs->trans_mask; s++)
        if (rs->trans[s].hash)
            rs->nodes[rs->trans[s].from].nkids++;
    uint32_t nkids = tw__kids_layout(rs->nodes, rs->nnodes);
    if (!(rs->kids = malloc((nkids + 1) * sizeof *rs->kids)))
        return oom(c);
    tw__kids_empty(rs->kids, nkids + 1);
    for (uint32_t s = 0; s <= rs->trans_mask; s++) {
        const tw__trans *t = &rs->trans[s];
        if (t->hash)
            tw__kids_put(rs->nodes, rs->kids, t->from, pool, t->koff, t->klen, t->to);
    }
    rs->memory += size * sizeof *rs->trans + (nkids + 1) * sizeof *rs->kids + c->keypool.cap;
    if (!(rs->keypool = tw__buf_detach(&c->keypool, NULL)))
        return oom(c);
    return TW_OK;
}

static void cstate_free(cstate *c)
{
    smap_free(&c->paths);
    smap_free(&c->dpaths);
    smap_free(&c->nodes);
    smap_free(&c->predkeys);
    smap_free(&c->akeycount);
    smap_free(&c->nsmap);
    free(c->nskeys.v);
    free(c->nodes_v.v);
    free(c->fields_v.v);
    free(c->matchers_v.v);
    free(c->preds_v.v);
    free(c->conjs_v.v);
    free(c->conj_preds_v.v);
    free(c->tuples.v);
    free(c->scans_v.v);
    free(c->always_v.v);
    free(c->edges.v);
    free(c->batoms.v);
    free(c->bnodes.v);
    free(c->bkids.v);
    for (uint32_t i = 0; c->regexes.v && i < c->regexes.n; i++)
        tw__regex_free(c->regexes.v[i]);
    free(c->regexes.v);
    tw__buf_free(&c->keypool);
    tw__buf_free(&c->scratch);
}

/* Appends a conjunction of rule r over preds (the same predicate twice counts once) and counts its keys. */
static tw_status add_conj(cstate *c, uint32_t r, const uint32_t *preds, uint32_t n, int boolean)
{
    tw__cconj cc = {.rule = r, .poff = c->conj_preds_v.n, .boolean = boolean != 0};
    for (uint32_t l = 0; l < n; l++) {
        int seen = 0;
        for (uint32_t q = cc.poff; q < c->conj_preds_v.n && !seen; q++)
            seen = c->conj_preds_v.v[q] == preds[l];
        if (!seen) {
            VEC_PUSH(c->conj_preds_v, preds[l], fail);
            cc.npred++;
        }
    }
    VEC_PUSH(c->conjs_v, cc, fail);
    for (uint32_t q = cc.poff; q < cc.poff + cc.npred; q++)
        if (count_keys(c, &c->preds_v.v[c->conj_preds_v.v[q]]))
            return oom(c);
    return TW_OK;
fail:
    return oom(c);
}

static tw_status leaf_failed(cstate *c, uint32_t r)
{
    if (c->regex_error)
        return tw__err(c->err, TW_EPATTERN, "rule \"%s\": %s", c->rs->names[r], c->regex_error);
    return oom(c);
}

static uint32_t leaf_pred(cstate *c, const tw__leaf *leaf)
{
    uint32_t f = field_for(c, leaf->path, leaf->plen, leaf->deep);
    return f == TW_NONE ? TW_NONE : pred_for(c, f, leaf);
}

/* A boolean rule: its atoms become shared predicates, its tree is copied with absolute indexes, its
 * anchors become conjunctions marked boolean (none: one empty conjunction, tested on every event). */
static tw_status add_boolean(cstate *c, uint32_t r, const tw__brule *br)
{
    uint32_t atom0 = c->batoms.n, node0 = c->bnodes.n, kid0 = c->bkids.n;
    uint32_t *preds = NULL;
    tw_status rc = TW_OK;
    for (uint32_t i = 0; i < br->natoms; i++) {
        const tw__batom *a = &br->atoms[i];
        tw__batom_c ac = {a->kind, a->op, a->neq, a->cased, TW_NONE, TW_NONE, TW_NONE};
        if (a->kind == TW_BA_PRED) {
            if ((ac.pred = leaf_pred(c, &a->leaf)) == TW_NONE)
                return leaf_failed(c, r);
        } else if ((ac.field = field_for(c, a->leaf.path, a->leaf.plen, 1)) == TW_NONE ||
                   (ac.reffield = field_for(c, a->ref, a->reflen, 1)) == TW_NONE) {
            return oom(c);
        }
        VEC_PUSH(c->batoms, ac, fail);
    }
    for (uint32_t i = 0; i < br->nnodes; i++) {
        tw__bnode n = br->nodes[i];
        n.a += n.op == TW_BN_ATOM ? atom0 : n.op == TW_BN_NOT ? node0 : n.op == TW_BN_AND || n.op == TW_BN_OR ? kid0 : 0;
        VEC_PUSH(c->bnodes, n, fail);
    }
    for (uint32_t i = 0; i < br->nkids; i++)
        VEC_PUSH(c->bkids, br->kids[i] + node0, fail);
    c->rs->bset->root_of[r] = br->root + node0;
    if (!br->nanchors)
        return add_conj(c, r, NULL, 0, 1);
    for (uint32_t k = 0; k < br->nanchors && !rc; k++) {
        uint32_t n = br->anchor_len[k];
        uint32_t *np = realloc(preds, (n + 1) * sizeof *preds);
        if (!np)
            goto fail;
        preds = np;
        for (uint32_t j = 0; j < n; j++)
            preds[j] = c->batoms.v[atom0 + br->anchor_atoms[br->anchor_off[k] + j]].pred;
        rc = add_conj(c, r, preds, n, 1);
    }
    free(preds);
    return rc;
fail:
    free(preds);
    return oom(c);
}

static tw_status add_rules(cstate *c, tw_ruleset_builder *b)
{
    tw_ruleset *rs = c->rs;
    /* node 0 is the root: created first */
    if (node_for(c, "", 0, 0) != 0)
        return oom(c);
    VEC(uint32_t) preds = {0};
    tw_status rc = TW_OK;
    for (size_t r = 0; r < b->n && !rc; r++) {
        if (!(rs->names[r] = tw__arena_strndup(&rs->arena, b->rules[r].name, strlen(b->rules[r].name))))
            goto fail;
        if (b->rules[r].boolean) {
            rc = add_boolean(c, (uint32_t)r, b->rules[r].boolean);
            continue;
        }
        const tw_pattern *pat = b->rules[r].pat;
        for (uint32_t k = 0; k < pat->nconj && !rc; k++) {
            const tw__conj *cj = &pat->conj[k];
            preds.n = 0;
            for (uint32_t l = 0; l < cj->n; l++) {
                uint32_t p = leaf_pred(c, cj->leaves[l]);
                if (p == TW_NONE) {
                    free(preds.v);
                    return leaf_failed(c, (uint32_t)r);
                }
                VEC_PUSH(preds, p, fail);
            }
            rc = add_conj(c, (uint32_t)r, preds.v, preds.n, 0);
        }
    }
    /* Fields whose values the caller reads after matching (correlation group-by). */
    for (uint32_t i = 0; !rc && b->captures.e && i <= b->captures.mask; i++) {
        const sentry *e = &b->captures.e[i];
        if (e->hash && (rs->bset->capture_field[e->val] = field_for(c, e->key, e->klen, 1)) == TW_NONE)
            goto fail;
    }
    free(preds.v);
    return rc;
fail:
    free(preds.v);
    return oom(c);
}

static void find_env_fields(cstate *c)
{
    static const char *const names[TW_ENV_COUNT_] = {"version", "id", "detail-type", "source", "account",
                                                     "time", "region"};
    for (int i = 0; i < TW_ENV_COUNT_; i++)
        c->rs->env_field[i] = smap_get(&c->paths, names[i], strlen(names[i]), 2, TW_NONE, NULL);
    char key[4 + 6];
    uint32_t one = 1;
    memcpy(key, &one, 4);
    memcpy(key + 4, "detail", 6);
    c->rs->detail_node = smap_get(&c->nodes, key, sizeof key, 1, TW_NONE, NULL);
}

#define TAKE(dst, vec)                                                                       \
    do {                                                                                     \
        (dst) = (vec).v ? (vec).v : malloc(sizeof *(vec).v);                                 \
        c.rs->memory += (size_t)(vec).cap * sizeof *(vec).v;                                 \
        (vec).v = NULL;                                                                      \
        if (!(dst))                                                                          \
            goto nomem;                                                                      \
    } while (0)

tw_status tw_ruleset_build(tw_ruleset_builder *b, tw_ruleset **out, tw_error *err)
{
    *out = NULL;
    cstate c;
    memset(&c, 0, sizeof c);
    c.err = err;
    tw_status rc = TW_ENOMEM;
    if (!(c.rs = calloc(1, sizeof *c.rs)))
        goto nomem;
    c.rs->lim = b->lim;
    c.rs->nrules = b->n;
    if (!(c.rs->names = calloc(b->n + 1, sizeof *c.rs->names)))
        goto nomem;
    int booleans = b->ncaptures > 0;
    for (size_t r = 0; r < b->n && !booleans; r++)
        booleans = b->rules[r].boolean != NULL;
    if (booleans) {
        tw__bset *bs = c.rs->bset = calloc(1, sizeof *bs);
        if (!bs || !(bs->root_of = malloc((b->n + 1) * sizeof *bs->root_of)) ||
            !(bs->capture_field = calloc(b->ncaptures + 1, sizeof *bs->capture_field)))
            goto nomem;
        for (size_t r = 0; r < b->n; r++)
            bs->root_of[r] = TW_NONE;
        bs->ncaptures = b->ncaptures;
    }
    if ((rc = add_rules(&c, b)))
        goto out;
    if (booleans) {
        tw__bset *bs = c.rs->bset;
        bs->nregex = c.regexes.n;
        bs->nnodes = c.bnodes.n;
        TAKE(bs->atoms, c.batoms);
        TAKE(bs->nodes, c.bnodes);
        TAKE(bs->kids, c.bkids);
        TAKE(bs->regex, c.regexes);
        c.rs->memory += (b->n + 1 + bs->ncaptures) * sizeof(uint32_t);
    }
    find_env_fields(&c);
    c.rs->nfields = c.fields_v.n;
    c.rs->nnodes = c.nodes_v.n;
    c.rs->nmatchers = c.matchers_v.n;
    c.rs->npreds = c.preds_v.n;
    c.rs->nconjs = c.conjs_v.n;
    TAKE(c.rs->fields, c.fields_v);
    TAKE(c.rs->nodes, c.nodes_v);
    TAKE(c.rs->matchers, c.matchers_v);
    TAKE(c.rs->preds, c.preds_v);
    TAKE(c.rs->conjs, c.conjs_v);
    TAKE(c.rs->conj_preds, c.conj_preds_v);
    if ((rc = choose_anchors(&c)) || (rc = build_index(&c)) || (rc = build_trie(&c)))
        goto out;
    c.rs->nalways = c.always_v.n;
    TAKE(c.rs->always, c.always_v);
    for (uint32_t f = 0; f < c.rs->nfields; f++) {
        tw__field *fld = &c.rs->fields[f];
        fld->probed = fld->tags || fld->nscan || fld->ac != TW_NONE || fld->ac_eic != TW_NONE;
    }
    if (tw__ruleset_build_gate(c.rs))
        goto nomem;
    c.rs->memory += sizeof *c.rs + c.rs->arena.total + (b->n + 1) * sizeof(char *);
    *out = c.rs;
    c.rs = NULL;
    rc = TW_OK;
    goto out;
nomem:
    rc = tw__err(err, TW_ENOMEM, "out of memory compiling rules");
out:
    cstate_free(&c);
    tw_ruleset_free(c.rs);
    return rc;
}

void tw_ruleset_free(tw_ruleset *rs)
{
    if (!rs)
        return;
    free(rs->names);
    free(rs->nodes);
    free(rs->trans);
    free(rs->kids);
    free(rs->gnodes);
    free(rs->gkids);
    free(rs->keypool);
    free(rs->fields);
    free(rs->lens);
    for (uint32_t i = 0; i < rs->ntries; i++)
        tw__affix_free(&rs->tries[i]);
    free(rs->tries);
    for (uint32_t i = 0; i < rs->nacs; i++)
        tw__ac_free(&rs->acs[i]);
    free(rs->acs);
    free(rs->matchers);
    free(rs->preds);
    free(rs->conjs);
    free(rs->conj_preds);
    free(rs->akeys);
    free(rs->akeypool);
    free(rs->postings);
    free(rs->ns);
    free(rs->nsfields);
    free(rs->scans);
    free(rs->always);
    tw__bset_free(rs->bset);
    tw__arena_free(&rs->arena);
    free(rs);
}

size_t tw_ruleset_size(const tw_ruleset *rs) { return rs ? rs->nrules : 0; }

const char *tw_ruleset_name(const tw_ruleset *rs, size_t index)
{
    return rs && index < rs->nrules ? rs->names[index] : NULL;
}

size_t tw_ruleset_memory(const tw_ruleset *rs) { return rs ? rs->memory : 0; }

uint32_t tw__ruleset_child_hashed(const tw_ruleset *rs, uint32_t from, const char *key, size_t len)
{
    uint64_t h = tw__trans_hash(from, key, len);
    for (uint32_t slot = (uint32_t)h & rs->trans_mask;; slot = (slot + 1) & rs->trans_mask) {
        const tw__trans *t = &rs->trans[slot];
        if (!t->hash)
            return TW_NONE;
        if (t->hash == h && t->from == from && t->klen == len && memcmp(rs->keypool + t->koff, key, len) == 0)
            return t->to;
    }
}
