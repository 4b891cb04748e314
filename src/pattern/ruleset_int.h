/*
 * pattern/ruleset_int.h: the compiled rule set, shared by compile.c (which builds it) and
 * execute.c / walk.c (which read it per event). Internal to src/pattern/.
 *
 * Ownership: the tw_ruleset owns every array below; after tw_ruleset_build it is never written.
 *
 * The automaton:
 *   - a path trie over the fields rules name ("detail.userIdentity.type"): an event is walked once
 *     and only objects on a named path are entered; everything else is validated and skipped;
 *   - fields -> predicates (one field and the matchers OR-ed on it), deduplicated across rules;
 *   - conjunctions (a rule's pattern after $or expansion) -> predicates, ANDed;
 *   - an anchor index: each conjunction is filed under one of its predicates, the most selective
 *     (exact values first, then prefixes/suffixes, ...). Per event, only the event's own values are
 *     looked up there, so the work grows with the rules an event could match, not with the rule count.
 */
#ifndef TW_PATTERN_RULESET_INT_H
#define TW_PATTERN_RULESET_INT_H

#include <stdint.h>
#include <string.h>

#include "common/hash.h"
#include "pattern/affix.h"
#include "pattern/contains.h"
#include "pattern/pattern_int.h"

#define TW_NONE UINT32_MAX

typedef struct tw__node {
    uint32_t field;           /* field whose path ends here, or TW_NONE */
    uint32_t dfield;          /* Sigma's deep field of the same path, or TW_NONE: it records the
                                 node's scalars and every scalar below an object or array there, plus
                                 one object/array value marking presence (Sigma's value shapes) */
    uint16_t has_children;    /* some field path continues below */
    uint16_t kmask;           /* its edge table has kmask + 1 slots (see tw__kid) */
    uint64_t keylens;         /* bit n: a child key of n bytes exists (bit 63: 63 or more) */
    uint64_t keysig;          /* bit tw__key_sig(key): a child key with that signature exists */
    uint32_t kid_off, nkids;  /* its edges in rs->kids, when nkids <= TW_NODE_KIDS_MAX (else hashed) */
} tw__node;

/* A node's edges as a small open-addressing table indexed by the key's signature (which the filter
 * computes anyway), compared by length and first 8 bytes: one or two probes, where a list scan went
 * through half the keys of a wide node (a record's top level) for every key an event spells. Nodes
 * with more edges use the rule set's hash table of all edges. */
#define TW_NODE_KIDS_MAX 24u

typedef struct tw__kid {
    uint64_t head;            /* the key's first 8 bytes, zero-padded */
    uint32_t klen, koff;      /* key bytes in keypool */
    uint32_t to;              /* TW_NONE: an empty slot */
} tw__kid;

/* Edge tables (kids.c). tw__kids_layout: with nodes[i].nkids counted, places each table (kid_off,
 * kmask) and returns the slots needed; the caller fills them with tw__kids_empty and then puts every
 * edge with tw__kids_put (edges of nodes over TW_NODE_KIDS_MAX are not put: they are hashed). */
uint32_t tw__kids_layout(tw__node *nodes, uint32_t nnodes);
void tw__kids_empty(tw__kid *kids, uint32_t n);
void tw__kids_put(const tw__node *nodes, tw__kid *kids, uint32_t from, const char *keypool, uint32_t koff,
                  uint32_t klen, uint32_t to);

/* The first 8 bytes of a key, zero-padded (the tw__kid.head form). */
static inline uint64_t tw__key_head(const char *k, size_t len)
{
    uint64_t h = 0;
    if (len >= 8)
        memcpy(&h, k, 8);
    else
        for (size_t i = 0; i < len; i++)
            h |= (uint64_t)(unsigned char)k[i] << (8 * i);
    return h;
}

/* A cheap signature of an object key (length and two bytes), so most keys no rule names are turned
 * away by one bit test instead of a hash lookup. */
static inline unsigned tw__key_sig(const char *k, size_t len)
{
    if (!len)
        return 0;
    return (unsigned)((len * 0x9e37u) ^ ((unsigned char)k[0] * 0x85ebu) ^ ((unsigned char)k[len - 1] * 0xc2b3u)) >> 4 & 63u;
}

typedef struct tw__trans {    /* path trie edge: (from, key) -> to; hash 0 = empty slot */
    uint64_t hash;
    uint32_t from, to;
    uint32_t koff, klen;      /* key bytes in keypool */
} tw__trans;

/* Anchor key tags: how an event value is turned into a lookup key. */
enum {
    TW_TAG_EXACT = 0,         /* string bytes */
    TW_TAG_PREFIX,            /* first n bytes, n from the field's prefix lengths */
    TW_TAG_SUFFIX,
    TW_TAG_PREFIX_EIC,        /* ... of the case-folded string */
    TW_TAG_SUFFIX_EIC,
    TW_TAG_EIC,               /* case-folded string */
    TW_TAG_NUMBER,            /* the double's bits */
    TW_TAG_LITERAL,           /* one byte: the tw_json_type of null / true / false */
    TW_TAG_CIDR,              /* family (4|6), prefix bits, then the masked address (4 or 16 bytes) */
    TW_TAG_NS,                /* an exact string that opens a namespace (post_off = the namespace id) */
    TW_TAG_CONTAINS,          /* a literal segment a wildcard needs somewhere in the value */
    TW_TAG_CONTAINS_EIC,      /* ... in the case-folded value (case-insensitive Sigma globs) */
    TW_TAG_COUNT_
};

typedef struct tw__field {
    uint32_t node;
    /* Probe lists (in rs->lens): distinct key lengths for the four affix tags, and for cidr the
     * distinct family << 8 | bits, so a value is looked up once per length, not once per rule. */
    uint32_t lens_off[5], nlens[5];
    uint32_t trie[4];               /* affix tag -> index in rs->tries (values: akey slots), TW_NONE */
    uint32_t ac;                    /* the field's contains automaton in rs->acs, or TW_NONE */
    uint32_t ac_eic;                /* ... over its case-folded values (TW_TAG_CONTAINS_EIC) */
    uint32_t deep;                  /* a Sigma deep field: numbers and booleans also probe the
                                       string anchors, by their JSON text */
    uint32_t coarse;                /* a CloudTrail field of few distinct values (eventSource, type):
                                       a poor anchor for boolean rules (compile.c choose_anchors) */
    uint32_t payload;               /* under requestParameters, responseElements, ...: a dear anchor for
                                       boolean rules (walking every event's payload; gate.c) */
    uint32_t top;                   /* "detail.<key>": a top-level key of a CloudTrail record */
    uint32_t tags;                  /* bit per tag present for this field */
    uint32_t klens[2][2];           /* shortest and longest key of TW_TAG_EXACT [0] and TW_TAG_EIC [1]:
                                       a value of no such length is not looked up (nor folded) */
    uint32_t amin[4];               /* shortest key of each affix tag (TW_TAG_PREFIX + i) */
    uint32_t scan_off, nscan;       /* anchors that are tested, not looked up (rs->scans) */
    uint32_t probed;                /* tags, scans or contains keys: its values find candidates (the
                                       others are only read by candidates' tests) */
} tw__field;

typedef struct tw__pred {
    uint32_t field;
    uint32_t exists_false;          /* also satisfied by the field's absence */
    uint32_t moff, nm;              /* matchers in rs->matchers */
} tw__pred;

typedef struct tw__cconj {
    uint32_t rule;
    uint32_t poff;                  /* predicate ids in rs->conj_preds, anchor first */
    uint32_t npred : 28;            /* a pattern of at most TW_MAX_PATTERN_MAX bytes has fewer leaves */
    uint32_t nanchor : 2;           /* its first 0, 1 or 2 predicates hold whenever it is a candidate:
                                       the key that found it is their value (exact, prefix or suffix
                                       strings; 2 for a composite anchor). Not rechecked unless arrays
                                       are involved */
    uint32_t proven : 1;            /* nanchor == npred: no check needed unless arrays are involved */
    uint32_t boolean : 1;           /* a boolean rule's anchor (boolean.h): when it is a candidate, the
                                       rule's program decides, not this conjunction */
} tw__cconj;

typedef struct tw__akey {           /* anchor index entry; hash 0 = empty slot */
    uint64_t hash;
    uint32_t ns;                    /* 0, or the namespace (see tw__ns) the key lives in */
    uint32_t field, tag;
    uint32_t koff, klen;            /* key bytes in akeypool */
    uint32_t post_off, npost;       /* conjunction ids in rs->postings */
} tw__akey;

/* Composite anchors. A conjunction whose best predicate is an exact string on one field (say
 * eventSource = "s3.amazonaws.com") and that has another exact / prefix / suffix predicate on a
 * second field (eventName prefix "Put") is filed under the second key inside the namespace of the
 * first value. An event looks its first field's values up (TW_TAG_NS), then the second field's
 * values inside each namespace found: only conjunctions satisfying both become candidates. */
typedef struct tw__nsfield {
    uint32_t field;                 /* the second field */
    uint32_t tags;                  /* TW_TAG_EXACT / PREFIX / SUFFIX bits present */
    uint32_t trie[2];               /* prefix, suffix trie in rs->tries, or TW_NONE */
} tw__nsfield;

typedef struct tw__ns {
    uint32_t off, n;                /* its second fields in rs->nsfields */
} tw__ns;

typedef struct tw__scan {
    uint32_t matcher;               /* index in rs->matchers */
    uint32_t conj;
} tw__scan;

/* Root fields an EventBridge envelope has, filled in when a CloudTrail record is wrapped. */
enum {
    TW_ENV_VERSION = 0,
    TW_ENV_ID,
    TW_ENV_DETAIL_TYPE,
    TW_ENV_SOURCE,
    TW_ENV_ACCOUNT,
    TW_ENV_TIME,
    TW_ENV_REGION,
    TW_ENV_COUNT_
};

struct tw_ruleset {
    tw_limits lim;
    tw_arena arena;                 /* names, matcher strings and sub-arrays, key pools */

    size_t nrules;
    char **names;

    uint32_t nnodes;
    tw__node *nodes;                /* node 0 = the event's root object */
    uint32_t trans_mask;
    tw__trans *trans;
    tw__kid *kids;                  /* per node, contiguous (tw__node.kid_off) */
    char *keypool;
    uint32_t detail_node;           /* node of "detail" (TW_NONE if no rule looks inside detail) */
    tw__node *gnodes;               /* the gate trie (gate.c): the same node ids, only the fields that
                                       find candidates; NULL when it would be the whole trie */
    tw__kid *gkids;

    uint32_t nfields;
    tw__field *fields;
    uint32_t ntries;
    tw__affix *tries;
    uint32_t nacs;
    tw__ac *acs;
    uint32_t *lens;

    uint32_t nmatchers;
    tw__matcher *matchers;
    uint32_t npreds;
    tw__pred *preds;
    uint32_t nconjs;
    tw__cconj *conjs;
    uint32_t *conj_preds;
    uint32_t max_conj_preds;

    uint32_t akey_mask;
    tw__akey *akeys;
    char *akeypool;
    uint32_t *postings;
    uint32_t nns;
    tw__ns *ns;                     /* index 0 unused */
    tw__nsfield *nsfields;
    tw__scan *scans;
    uint32_t nalways;
    uint32_t *always;               /* conjunctions with no anchor (every predicate allows absence) */

    uint32_t env_field[TW_ENV_COUNT_]; /* field ids of the envelope fields (TW_NONE: no rule names it) */
    struct tw__bset *bset;          /* boolean rules (Sigma), NULL when there are none */
    size_t memory;
};

/* Builds the gate trie of a built rule set (gate.c); TW_ENOMEM when out of memory. */
tw_status tw__ruleset_build_gate(tw_ruleset *rs);
/* For tests: drops the gate, so that every event is walked through the whole trie (gate.c). */
void tw__ruleset_drop_gate(tw_ruleset *rs);
/* For tests: how many events the matcher walked a second time, past the gate (execute.c). */
size_t tw__matcher_rewalks(const tw_matcher *m);

/* Trie step through the hash table (nodes with more than TW_NODE_KIDS_MAX edges). */
uint32_t tw__ruleset_child_hashed(const tw_ruleset *rs, uint32_t from, const char *key, size_t len);

/* Trie step: the child of `from` for the object key, or TW_NONE, in the trie of `nodes` and `kids`
 * (the whole trie, or the gate's: gate.c). Inline: the walk calls it for every key on a named path,
 * and most are turned away by the first test. */
static inline uint32_t tw__trie_child(const tw_ruleset *rs, const tw__node *nodes, const tw__kid *kids, uint32_t from,
                                      const char *key, size_t len)
{
    const tw__node *n = &nodes[from];
    if (!(n->keylens & ((uint64_t)1 << (len < 63 ? len : 63))) || !(n->keysig & ((uint64_t)1 << tw__key_sig(key, len))))
        return TW_NONE;
    if (n->nkids > TW_NODE_KIDS_MAX)
        return tw__ruleset_child_hashed(rs, from, key, len);
    uint64_t head = tw__key_head(key, len);
    const tw__kid *k = kids + n->kid_off;
    for (uint32_t i = tw__key_sig(key, len) & n->kmask;; i = (i + 1) & n->kmask) {
        if (k[i].to == TW_NONE)
            return TW_NONE;
        if (k[i].klen == len && k[i].head == head &&
            (len <= 8 || memcmp(rs->keypool + k[i].koff + 8, key + 8, len - 8) == 0))
            return k[i].to;
    }
}

static inline uint64_t tw__trans_hash(uint32_t from, const char *key, size_t len)
{
    return tw__hash_bytes(key, len, 0x51ed270b27d5e3f1ULL ^ ((uint64_t)from * 0x9e3779b97f4a7c15ULL)) | 1;
}

static inline uint64_t tw__akey_hash(uint32_t ns, uint32_t field, uint32_t tag, const void *key, size_t len)
{
    return tw__hash_bytes(key, len, (((uint64_t)ns << 40) ^ ((uint64_t)field << 8 | tag)) * 0xc2b2ae3d27d4eb4fULL + 7) | 1;
}

/* Anchor lookup: the entry for (namespace, field, tag, key) or NULL. Inline: a few per event value. */
static inline const tw__akey *tw__ruleset_anchor(const tw_ruleset *rs, uint32_t ns, uint32_t field, uint32_t tag,
                                                 const void *key, size_t len)
{
    uint64_t h = tw__akey_hash(ns, field, tag, key, len);
    for (uint32_t slot = (uint32_t)h & rs->akey_mask;; slot = (slot + 1) & rs->akey_mask) {
        const tw__akey *k = &rs->akeys[slot];
        if (!k->hash)
            return NULL;
        if (k->hash == h && k->ns == ns && k->field == field && k->tag == tag && k->klen == len &&
            memcmp(rs->akeypool + k->koff, key, len) == 0)
            return k;
    }
}

#endif
