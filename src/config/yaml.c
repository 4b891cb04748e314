/* config/yaml.c: one YAML document -> JSON tree (libyaml events, YAML 1.2 core schema). */
#include "trailwatch/yaml.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/hash.h"
#include "common/utf8.h"
#include "json/json_int.h"

#define CORE "tag:yaml.org,2002:"

/* ---- string-keyed table (anchors; keys of a mapping during a merge) ---- */

/* Open addressing, cap a power of two, at most half full; v is never NULL for a used slot. */
typedef struct slot { const char *k; size_t n; void *v; } slot;
typedef struct strtab { slot *s; size_t cap, used; } strtab;

static slot *strtab_find(const strtab *t, const char *k, size_t n)
{
    size_t mask = t->cap - 1, i = (size_t)tw__hash_bytes(k, n, 0x59a3) & mask;
    while (t->s[i].k && (t->s[i].n != n || memcmp(t->s[i].k, k, n) != 0))
        i = (i + 1) & mask;
    return &t->s[i];
}

static void *strtab_get(const strtab *t, const char *k, size_t n)
{
    return t->cap ? strtab_find(t, k, n)->v : NULL;
}

/* Inserts or replaces; k must outlive the table. */
static tw_status strtab_put(strtab *t, const char *k, size_t n, void *v)
{
    if (2 * (t->used + 1) > t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        strtab big = {calloc(cap, sizeof(slot)), cap, t->used};
        if (!big.s)
            return TW_ENOMEM;
        for (size_t i = 0; i < t->cap; i++)
            if (t->s[i].k)
                *strtab_find(&big, t->s[i].k, t->s[i].n) = t->s[i];
        free(t->s);
        *t = big;
    }
    slot *s = strtab_find(t, k, n);
    if (!s->k) {
        s->k = k;
        s->n = n;
        t->used++;
    }
    s->v = v;
    return TW_OK;
}

static void strtab_free(strtab *t) { free(t->s); }

/* ---- loader ---- */

typedef struct anchor {
    tw_json *node;
    size_t count;      /* nodes of the subtree, alias expansions included */
    unsigned height;   /* container levels of the subtree */
} anchor;

enum { S_KEY, S_VALUE, S_MERGE };   /* what a mapping expects next: a key, its value, a << value */

/* An open sequence or mapping. The loader keeps these on a heap stack, not the C stack, so that the
 * deepest nesting limits allow cannot overflow it. */
typedef struct frame {
    tw_json *node;          /* the array or object being filled */
    yaml_event_t start;     /* its start event (anchor, tag), owned until the node is complete */
    size_t before;          /* nodes counted before it, for its anchor's count */
    size_t merges;          /* mapping: where its << sources start in loader.merges */
    unsigned h;             /* container levels so far */
    int state;              /* mapping: S_* */
    tw_json *key;           /* mapping, S_VALUE: the key read */
    yaml_mark_t key_mark;   /* mapping: where that key (or <<) starts */
} frame;

typedef struct loader {
    const char *text;       /* the input, for positions of reader errors */
    yaml_parser_t parser;
    yaml_event_t ev;        /* the current event, owned while have_ev */
    int have_ev;
    tw_json_doc *doc;
    tw_error *err;
    unsigned max_depth;
    size_t nodes;           /* produced so far, alias expansions included */
    tw_buf frames;          /* frame[], innermost last */
    tw_buf merges;          /* tw_json *[]: << sources of the open mappings */
    strtab anchors;         /* name -> anchor (both in scratch) */
    tw_arena scratch;
    tw_buf tmp;             /* number literals, CloudFormation keys */
} loader;

static size_t depth(const loader *ld) { return ld->frames.len / sizeof(frame); }

static frame *top(const loader *ld)
{
    return depth(ld) ? (frame *)(void *)(ld->frames.data + ld->frames.len) - 1 : NULL;
}

static tw_status at_err(loader *ld, yaml_mark_t m, tw_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static tw_status at_err(loader *ld, yaml_mark_t m, tw_status code, const char *fmt, ...)
{
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return tw__err(ld->err, code, "line %zu, column %zu: %s", m.line + 1, m.column + 1, why);
}

static tw_status oom(loader *ld) { return tw__err(ld->err, TW_ENOMEM, "out of memory loading YAML"); }

/* The mark of a byte offset (columns in characters, as libyaml counts them): error paths only. */
static yaml_mark_t mark_of(const char *text, size_t off)
{
    yaml_mark_t m = {off, 0, 0};
    for (size_t i = 0; i < off; i++) {
        if (text[i] == '\n') {
            m.line++;
            m.column = 0;
        } else if (((unsigned char)text[i] & 0xc0) != 0x80) {
            m.column++;
        }
    }
    return m;
}

static tw_status next(loader *ld)
{
    if (ld->have_ev)
        yaml_event_delete(&ld->ev);
    ld->have_ev = 0;
    if (yaml_parser_parse(&ld->parser, &ld->ev)) {
        ld->have_ev = 1;
        return TW_OK;
    }
    const yaml_parser_t *p = &ld->parser;
    const char *problem = p->problem ? p->problem : "syntax error";
    if (p->error == YAML_MEMORY_ERROR)
        return oom(ld);
    if (p->error == YAML_READER_ERROR) {  /* reader errors carry a byte offset, not a mark */
        yaml_mark_t m = mark_of(ld->text, p->problem_offset);
        if (p->problem_value >= 0)
            return at_err(ld, m, TW_EYAML, "%s (#x%X)", problem, (unsigned)p->problem_value);
        return at_err(ld, m, TW_EYAML, "%s", problem);
    }
    if (p->context)
        return at_err(ld, p->problem_mark, TW_EYAML, "%s (%s at line %zu, column %zu)", problem,
                      p->context, p->context_mark.line + 1, p->context_mark.column + 1);
    return at_err(ld, p->problem_mark, TW_EYAML, "%s", problem);
}

static tw_status count(loader *ld, size_t n, yaml_mark_t m)
{
    if (n > TW_YAML_NODES_MAX - ld->nodes)
        return at_err(ld, m, TW_ELIMIT, "the document expands to more than %u nodes (each use of an "
                      "alias counts its whole subtree; every %u bytes of a string count as a node)",
                      TW_YAML_NODES_MAX, TW_YAML_BYTES_PER_NODE);
    ld->nodes += n;
    return TW_OK;
}

/* Checks a new node, records its position and counts it. */
static tw_status place(loader *ld, tw_json *v, yaml_mark_t m)
{
    if (!v)
        return oom(ld);
    v->line = (unsigned)m.line + 1;
    v->col = (unsigned)m.column + 1;
    /* Long strings weigh more: the budget bounds the bytes an alias expansion can stand for, not
     * only the nodes (a 4 KB scalar behind nested aliases would otherwise be gigabytes of text). */
    size_t len = v->type == TW_JSON_STRING || v->type == TW_JSON_NUMBER ? v->n : 0;
    return count(ld, 1 + len / TW_YAML_BYTES_PER_NODE, m);
}

/* ---- scalars ---- */

enum { T_NONE, T_NONSPECIFIC, T_STR, T_INT, T_FLOAT, T_BOOL, T_NULL, T_CORE, T_CFN, T_BAD };
enum { NUM_NO, NUM_INT, NUM_FLOAT, NUM_SPECIAL, NUM_RANGE, NUM_NOMEM };

static int tag_kind(const char *tag)
{
    static const char *const core[] = {"str", "int", "float", "bool", "null"};
    if (!tag)
        return T_NONE;
    if (strcmp(tag, "!") == 0)
        return T_NONSPECIFIC;
    if (strncmp(tag, CORE, strlen(CORE)) == 0) {
        for (int i = 0; i < 5; i++)
            if (strcmp(tag + strlen(CORE), core[i]) == 0)
                return T_STR + i;
        return T_CORE;
    }
    return tag[0] == '!' ? T_CFN : T_BAD;
}

static int is_one_of(const char *s, size_t n, const char *const *words)
{
    for (; *words; words++)
        if (strlen(*words) == n && memcmp(*words, s, n) == 0)
            return 1;
    return 0;
}

static int is_null(const char *s, size_t n)
{
    static const char *const w[] = {"", "~", "null", "Null", "NULL", NULL};
    return is_one_of(s, n, w);
}

/* TW_JSON_TRUE, TW_JSON_FALSE, or 0 when s is not a core-schema boolean. */
static int core_bool(const char *s, size_t n)
{
    static const char *const t[] = {"true", "True", "TRUE", NULL}, *const f[] = {"false", "False", "FALSE", NULL};
    return is_one_of(s, n, t) ? TW_JSON_TRUE : is_one_of(s, n, f) ? TW_JSON_FALSE : 0;
}

static int digit_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
        return (c | 0x20) - 'a' + 10;
    return 99;
}

/* Core-schema number -> JSON literal in b. NUM_SPECIAL: .inf/.nan; NUM_RANGE: 0x/0o past 64 bits;
 * NUM_NOMEM: a number, but no memory to write it (not to be taken for a string). */
static int core_number(const char *s, size_t n, tw_buf *b)
{
    static const char *const special[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
                                          "-.Inf", "-.INF", ".nan", ".NaN", ".NAN", NULL};
    tw_buf_reset(b);
    if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
        unsigned base = s[1] == 'x' ? 16 : 8;
        uint64_t v = 0;
        int wide = 0;
        for (size_t i = 2; i < n; i++) {
            unsigned d = (unsigned)digit_val(s[i]);
            if (d >= base)
                return NUM_NO;
            if (v > (UINT64_MAX - d) / base)
                wide = 1;
            v = v * base + d;
        }
        if (wide)
            return NUM_RANGE;
        return tw__buf_printf(b, "%" PRIu64, v) ? NUM_NOMEM : NUM_INT;
    }
    if (is_one_of(s, n, special))
        return NUM_SPECIAL;
    /* [-+]? ( \.[0-9]+ | [0-9]+ ( \.[0-9]* )? ) ( [eE] [-+]? [0-9]+ )? */
    size_t i = 0, ip, ipn, fp = 0, fpn = 0, ep;
    int dot = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        i++;
    for (ip = i; i < n && s[i] >= '0' && s[i] <= '9'; i++) {}
    ipn = i - ip;
    if (i < n && s[i] == '.') {
        dot = 1;
        for (fp = ++i; i < n && s[i] >= '0' && s[i] <= '9'; i++) {}
        fpn = i - fp;
    }
    if (ipn == 0 && fpn == 0)
        return NUM_NO;
    ep = i;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        if (++i < n && (s[i] == '-' || s[i] == '+'))
            i++;
        size_t d0 = i;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {}
        if (i == d0)
            return NUM_NO;
    }
    if (i != n)
        return NUM_NO;
    /* JSON wants no '+', no leading zeros, digits on both sides of '.'. */
    while (ipn > 1 && s[ip] == '0')
        ip++, ipn--;
    tw_status rc = s[0] == '-' ? tw__buf_putc(b, '-') : TW_OK;
    if (!rc)
        rc = ipn ? tw__buf_append(b, s + ip, ipn) : tw__buf_putc(b, '0');
    if (!rc && dot)
        rc = fpn ? tw__buf_append(b, s + fp - 1, fpn + 1) : tw__buf_puts(b, ".0");
    if (!rc)
        rc = tw__buf_append(b, s + ep, n - ep);
    return rc ? NUM_NOMEM : dot || ep < n ? NUM_FLOAT : NUM_INT;
}

static tw_status bad_tag(loader *ld, yaml_mark_t m, const char *tag)
{
    return at_err(ld, m, TW_EYAML, "unsupported tag %.80s (only !!str, !!int, !!float, !!bool, !!null "
                  "and CloudFormation's !Name tags are understood)", tag);
}

static tw_status load_scalar(loader *ld, const yaml_event_t *ev, tw_json **out)
{
    int kind = tag_kind((const char *)ev->data.scalar.tag);
    if (kind == T_BAD)
        return bad_tag(ld, ev->start_mark, (const char *)ev->data.scalar.tag);
    const char *s = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    int plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE, num = NUM_NO, b;
    tw_json_type t = TW_JSON_STRING;
    const char *want = NULL;
    switch (kind) {
    case T_NONE:
        if (!plain)
            break;
        if (is_null(s, n))
            t = TW_JSON_NULL;
        else if ((b = core_bool(s, n)))
            t = (tw_json_type)b;
        else if ((num = core_number(s, n, &ld->tmp)) == NUM_INT || num == NUM_FLOAT)
            t = TW_JSON_NUMBER;
        break;
    case T_NULL:
        t = TW_JSON_NULL;
        want = is_null(s, n) ? NULL : "a null";
        break;
    case T_BOOL:
        t = (b = core_bool(s, n)) ? (tw_json_type)b : TW_JSON_NULL;
        want = b ? NULL : "a boolean";
        break;
    case T_INT:
    case T_FLOAT:
        t = TW_JSON_NUMBER;
        num = core_number(s, n, &ld->tmp);
        want = num == NUM_INT || (num == NUM_FLOAT && kind == T_FLOAT) ? NULL
               : kind == T_INT ? "an integer" : "a number JSON can hold";
        break;
    default:  /* !!str, !, other yaml.org tags, CloudFormation tags: the text as written */
        break;
    }
    if (num == NUM_RANGE)
        return at_err(ld, ev->start_mark, TW_EYAML, "integer %.40s does not fit in 64 bits", s);
    if (num == NUM_NOMEM)
        return oom(ld);
    if (want)
        return at_err(ld, ev->start_mark, TW_EYAML, "%.40s%s is not %s", s, n > 40 ? "..." : "", want);
    tw_json *v = t == TW_JSON_STRING ? tw__json_new_string(ld->doc, s, n)
                 : t == TW_JSON_NUMBER ? tw__json_new_number(ld->doc, ld->tmp.data, ld->tmp.len)
                 : tw__json_new(ld->doc, t);
    *out = v;
    return place(ld, v, ev->start_mark);
}

/* ---- completing nodes ---- */

static void props(const yaml_event_t *e, const char **anchor_name, const char **tag)
{
    const yaml_char_t *a = NULL, *t = NULL;
    if (e->type == YAML_SCALAR_EVENT)
        a = e->data.scalar.anchor, t = e->data.scalar.tag;
    else if (e->type == YAML_SEQUENCE_START_EVENT)
        a = e->data.sequence_start.anchor, t = e->data.sequence_start.tag;
    else if (e->type == YAML_MAPPING_START_EVENT)
        a = e->data.mapping_start.anchor, t = e->data.mapping_start.tag;
    *anchor_name = (const char *)a;
    *tag = (const char *)t;
}

static tw_status push(loader *ld, tw_json *arr, tw_json *item)
{
    return tw__json_push(ld->doc, arr, item) ? oom(ld) : TW_OK;
}

/* CloudFormation short forms, in CloudFormation's own long form. */
static tw_status cfn_wrap(loader *ld, const char *name, yaml_mark_t m, tw_json **v, unsigned *h)
{
    tw_json *inner = *v, *w = tw__json_new(ld->doc, TW_JSON_OBJECT);
    tw_status rc = place(ld, w, m);
    if (rc)
        return rc;
    tw_buf_reset(&ld->tmp);
    if (strcmp(name, "Ref") != 0 && strcmp(name, "Condition") != 0)
        rc = tw__buf_puts(&ld->tmp, "Fn::");
    if (rc || tw__buf_puts(&ld->tmp, name))
        return oom(ld);
    /* The key comes from the tag, which may be long: it weighs like a string of that length, or a
     * long tag behind nested aliases would expand past the byte budget. */
    if ((rc = count(ld, ld->tmp.len / TW_YAML_BYTES_PER_NODE, m)))
        return rc;
    if (strcmp(name, "GetAtt") == 0 && inner->type == TW_JSON_STRING) {
        /* "A.B.C" is resource A, attribute "B.C" (attributes may hold dots, resources cannot). */
        const char *s = inner->u.str, *dot = memchr(s, '.', inner->n);
        size_t n1 = dot ? (size_t)(dot - s) : inner->n;
        tw_json *arr = tw__json_new(ld->doc, TW_JSON_ARRAY), *a, *b;
        if ((rc = place(ld, arr, m)) || (rc = place(ld, a = tw__json_new_string(ld->doc, s, n1), m)) ||
            (rc = push(ld, arr, a)))
            return rc;
        if (dot && ((rc = place(ld, b = tw__json_new_string(ld->doc, dot + 1, inner->n - n1 - 1), m)) ||
                    (rc = push(ld, arr, b))))
            return rc;
        inner = arr;
        ++*h;
    }
    if (tw__json_put(ld->doc, w, ld->tmp.data, ld->tmp.len, inner))
        return oom(ld);
    ++*h;
    *v = w;
    return TW_OK;
}

static tw_status add_anchor(loader *ld, const char *name, tw_json *v, size_t n, unsigned h)
{
    size_t len = strlen(name);
    anchor *a = tw__arena_alloc(&ld->scratch, sizeof *a);
    char *k = tw__arena_strndup(&ld->scratch, name, len);
    if (!a || !k)
        return oom(ld);
    *a = (anchor){v, n, h};
    return strtab_put(&ld->anchors, k, len, a) ? oom(ld) : TW_OK;
}

/* A node whose first event is e is complete: CloudFormation wrapping, the depth check (aliases and
 * wrappers deepen the tree without nesting in the text), its anchor. */
static tw_status complete(loader *ld, const yaml_event_t *e, size_t before, tw_json **v, unsigned *h)
{
    const char *anchor_name, *tag;
    props(e, &anchor_name, &tag);
    tw_status rc = TW_OK;
    if (tag_kind(tag) == T_CFN)
        rc = cfn_wrap(ld, tag + 1, e->start_mark, v, h);
    if (!rc && depth(ld) + *h > ld->max_depth)
        rc = at_err(ld, e->start_mark, TW_EDEPTH, "nesting deeper than %u levels (aliases and "
                    "CloudFormation tags included)", ld->max_depth);
    if (!rc && anchor_name)
        rc = add_anchor(ld, anchor_name, *v, ld->nodes - before, *h);
    return rc;
}

static tw_status load_alias(loader *ld, const yaml_event_t *ev, tw_json **out, unsigned *h)
{
    const char *name = (const char *)ev->data.alias.anchor;
    const anchor *a = strtab_get(&ld->anchors, name, strlen(name));
    if (!a)
        return at_err(ld, ev->start_mark, TW_EYAML, "alias *%.64s does not name an earlier, complete "
                      "anchor", name);
    *out = a->node;
    *h = a->height;
    return count(ld, a->count, ev->start_mark);
}

/* ---- mappings: keys, merges ---- */

static int is_merge_key(const yaml_event_t *e)
{
    if (e->type != YAML_SCALAR_EVENT)
        return 0;
    if (e->data.scalar.tag)
        return strcmp((const char *)e->data.scalar.tag, CORE "merge") == 0;
    return e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && e->data.scalar.length == 2 &&
           memcmp(e->data.scalar.value, "<<", 2) == 0;
}

/* Adds a member whose key already lives in the document (or is static): shared, not copied, so that a
 * long key repeated through aliases or merges costs what the node budget accounts for, not its length
 * each time. */
static tw_status put_shared(loader *ld, tw_json *obj, const char *key, size_t klen, tw_json *v)
{
    if (tw__json_put(ld->doc, obj, "", 0, v))
        return oom(ld);
    obj->u.members[obj->n - 1].key = key;
    obj->u.members[obj->n - 1].klen = klen;
    return TW_OK;
}

/* Records the mappings a merge key names, in order, in ld->merges. */
static tw_status add_merge(loader *ld, tw_json *v, yaml_mark_t m)
{
    size_t n = v->type == TW_JSON_ARRAY ? v->n : 1;
    for (size_t i = 0; i < n; i++) {
        tw_json *src = v->type == TW_JSON_ARRAY ? v->u.items[i] : v;
        if (src->type != TW_JSON_OBJECT) {
            const char *t = tw_json_type_name(src->type);
            return at_err(ld, m, TW_EYAML, "the merge key << needs a mapping or a list of mappings, "
                          "not %s%s %s", v == src ? "" : "a list holding ", t[0] == 'a' ? "an" : "a", t);
        }
        if (tw__buf_append(&ld->merges, &src, sizeof src))
            return oom(ld);
    }
    return TW_OK;
}

/* YAML 1.1 merge of the sources recorded from offset `from`: the mapping's own keys win, then earlier
 * sources over later ones. A source's own duplicate keys are all taken, so its last one still wins. */
static tw_status merge(loader *ld, tw_json *obj, size_t from)
{
    strtab seen = {0};
    tw_status rc = TW_OK;
    for (size_t i = 0; !rc && i < obj->n; i++)
        if (strtab_put(&seen, obj->u.members[i].key, obj->u.members[i].klen, obj))
            rc = oom(ld);
    for (size_t off = from; !rc && off < ld->merges.len; off += sizeof(tw_json *)) {
        tw_json *src;
        memcpy(&src, ld->merges.data + off, sizeof src);
        size_t mark = obj->n;
        for (size_t i = 0; !rc && i < src->n; i++) {
            const tw_json_member *m = &src->u.members[i];
            if (!strtab_get(&seen, m->key, m->klen))
                rc = put_shared(ld, obj, m->key, m->klen, m->val);
        }
        for (size_t i = mark; !rc && i < obj->n; i++)
            if (strtab_put(&seen, obj->u.members[i].key, obj->u.members[i].klen, obj))
                rc = oom(ld);
    }
    strtab_free(&seen);
    ld->merges.len = from;
    return rc;
}

/* ---- the tree ---- */

static tw_status open_node(loader *ld)
{
    const yaml_event_t *e = &ld->ev;
    const frame *parent = top(ld);
    int seq = e->type == YAML_SEQUENCE_START_EVENT;
    const char *anchor_name, *tag;
    props(e, &anchor_name, &tag);
    int kind = tag_kind(tag);
    if (parent && parent->node->type == TW_JSON_OBJECT && parent->state == S_KEY)
        return at_err(ld, e->start_mark, TW_EYAML, "a mapping key must be a scalar, not a %s",
                      seq ? "sequence" : "mapping");
    if (kind == T_BAD)
        return bad_tag(ld, e->start_mark, tag);
    if (kind >= T_STR && kind <= T_NULL)
        return at_err(ld, e->start_mark, TW_EYAML, "tag !!%s applies to scalars, not to a %s",
                      tag + strlen(CORE), seq ? "sequence" : "mapping");
    if (depth(ld) >= ld->max_depth)
        return at_err(ld, e->start_mark, TW_EDEPTH, "nesting deeper than %u levels", ld->max_depth);
    frame f = {.before = ld->nodes, .merges = ld->merges.len, .h = 1, .state = S_KEY};
    tw_status rc = place(ld, f.node = tw__json_new(ld->doc, seq ? TW_JSON_ARRAY : TW_JSON_OBJECT),
                         e->start_mark);
    if (rc)
        return rc;
    f.start = ld->ev;
    if (tw__buf_append(&ld->frames, &f, sizeof f))
        return oom(ld);
    ld->have_ev = 0;  /* the frame owns the start event now */
    return TW_OK;
}

static tw_status close_node(loader *ld, tw_json **v, unsigned *h)
{
    frame f = *top(ld);
    ld->frames.len -= sizeof f;
    tw_status rc = ld->merges.len > f.merges ? merge(ld, f.node, f.merges) : TW_OK;
    *v = f.node;
    *h = f.h;
    if (!rc)
        rc = complete(ld, &f.start, f.before, v, h);
    yaml_event_delete(&f.start);
    return rc;
}

/* Hands a complete node to the open container (m: where it starts), or makes it the root. */
static tw_status deliver(loader *ld, tw_json *v, unsigned h, yaml_mark_t m, tw_json **root)
{
    frame *f = top(ld);
    if (!f) {
        *root = v;
        return TW_OK;
    }
    if (h + 1 > f->h)
        f->h = h + 1;
    if (f->node->type == TW_JSON_ARRAY)
        return push(ld, f->node, v);
    if (f->state == S_MERGE) {
        f->state = S_KEY;
        return add_merge(ld, v, f->key_mark);
    }
    if (f->state == S_KEY) {
        if (v->type == TW_JSON_ARRAY || v->type == TW_JSON_OBJECT)
            return at_err(ld, m, TW_EYAML, "a mapping key must be a scalar, not a %s",
                          v->type == TW_JSON_ARRAY ? "sequence" : "mapping");
        f->key = v;
        f->key_mark = m;
        f->state = S_VALUE;
        return TW_OK;
    }
    /* The key is the scalar's JSON text: strings as they are, others as JSON writes them. */
    const tw_json *k = f->key;
    const char *key = k->type == TW_JSON_STRING ? k->u.str
                      : k->type == TW_JSON_NUMBER ? k->u.num.text : tw_json_type_name(k->type);
    size_t klen = k->type == TW_JSON_STRING || k->type == TW_JSON_NUMBER ? k->n : strlen(key);
    f->state = S_KEY;
    return put_shared(ld, f->node, key, klen, v);
}

/* Loads the document's root node, whose first event is current; leaves its last event current. */
static tw_status load_root(loader *ld, tw_json **root)
{
    tw_status rc = TW_OK;
    *root = NULL;
    while (!rc) {
        const yaml_event_t *e = &ld->ev;
        frame *f = top(ld);
        size_t before = ld->nodes;
        tw_json *v = NULL;
        unsigned h = 0;
        if (e->type == YAML_SEQUENCE_START_EVENT || e->type == YAML_MAPPING_START_EVENT) {
            if ((rc = open_node(ld)) == TW_OK)
                rc = next(ld);
            continue;
        }
        if (f && f->node->type == TW_JSON_OBJECT && f->state == S_KEY && is_merge_key(e)) {
            f->state = S_MERGE;
            f->key_mark = e->start_mark;
            rc = next(ld);
            continue;
        }
        if (e->type == YAML_SEQUENCE_END_EVENT || e->type == YAML_MAPPING_END_EVENT) {
            rc = close_node(ld, &v, &h);
        } else {
            rc = e->type == YAML_ALIAS_EVENT ? load_alias(ld, e, &v, &h) : load_scalar(ld, e, &v);
            if (!rc)
                rc = complete(ld, e, before, &v, &h);
        }
        if (!rc)
            rc = deliver(ld, v, h, e->start_mark, root);
        if (!rc && *root)
            break;
        if (!rc)
            rc = next(ld);
    }
    return rc;
}

/* ---- the document ---- */

/* "---" alone: an untagged, unanchored empty plain scalar as the whole document. */
static int empty_document(const yaml_event_t *e)
{
    return e->type == YAML_SCALAR_EVENT && e->data.scalar.length == 0 && !e->data.scalar.tag &&
           !e->data.scalar.anchor && e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

/* Loads one document or (stream) every one, handing each to fn. */
static tw_status parse(const char *text, size_t len, const tw_limits *lim, int stream, tw_yaml_doc_fn fn,
                       void *ctx, tw_json_doc **out, tw_error *err)
{
    tw_limits def;
    if (!lim) {
        tw_limits_default(&def);
        lim = &def;
    }
    if (out)
        *out = NULL;
    if (!text)
        text = "";  /* libyaml asserts on a NULL input */
    if (len > lim->file_max)
        return tw__err(err, TW_ETOOBIG, "YAML text of %zu bytes exceeds the limit of %zu bytes", len,
                       lim->file_max);
    size_t bad = tw__utf8_check(text, len);
    if (bad < len) {
        yaml_mark_t m = mark_of(text, bad);
        return tw__err(err, TW_EUTF8, "line %zu, column %zu: invalid UTF-8 (byte 0x%02x)", m.line + 1,
                       m.column + 1, (unsigned char)text[bad]);
    }
    loader ld = {.text = text, .err = err, .max_depth = lim->json_depth};
    tw__buf_init(&ld.frames, 0);
    tw__buf_init(&ld.merges, 0);
    tw__buf_init(&ld.tmp, 0);
    tw_status rc;
    size_t index = 0, loaded = 0;
    int parser_ok = yaml_parser_initialize(&ld.parser);
    if (!parser_ok) {
        rc = oom(&ld);
        goto out;
    }
    yaml_parser_set_encoding(&ld.parser, YAML_UTF8_ENCODING);
    yaml_parser_set_input_string(&ld.parser, (const unsigned char *)text, len);
    if ((rc = next(&ld)) || (rc = next(&ld)))  /* stream start, document start (or stream end) */
        goto out;
    while (ld.ev.type != YAML_STREAM_END_EVENT) {
        unsigned line = (unsigned)ld.ev.start_mark.line + 1;
        if ((rc = next(&ld)))
            goto out;
        if (empty_document(&ld.ev)) {
            if (!stream)
                break;
            index++;
            if ((rc = next(&ld)) || (rc = next(&ld)))  /* document end, next start (or stream end) */
                goto out;
            continue;
        }
        if (!(ld.doc = tw__json_doc_new())) {
            rc = oom(&ld);
            goto out;
        }
        strtab_free(&ld.anchors);  /* anchors are per document */
        memset(&ld.anchors, 0, sizeof ld.anchors);
        if ((rc = load_root(&ld, &ld.doc->root)))
            goto out;
        if ((rc = next(&ld)) || (rc = next(&ld)))  /* document end, next start (or stream end) */
            goto out;
        if (!stream) {
            if (ld.ev.type != YAML_STREAM_END_EVENT) {
                rc = at_err(&ld, ld.ev.start_mark, TW_EYAML, "a second YAML document starts here; a file "
                            "holds exactly one");
                goto out;
            }
            *out = ld.doc;
            ld.doc = NULL;
            loaded = 1;
            break;
        }
        tw_json_doc *d = ld.doc;
        ld.doc = NULL;
        loaded++;
        if ((rc = fn(ctx, d, index++, line, err)))
            goto out;
    }
    if (!loaded && !stream)
        rc = tw__err(err, TW_EYAML, "empty YAML document (nothing but blank lines, comments or ---)");
out:
    if (ld.have_ev)
        yaml_event_delete(&ld.ev);
    for (frame *f = top(&ld); f; f = top(&ld)) {  /* open containers after an error */
        yaml_event_delete(&f->start);
        ld.frames.len -= sizeof *f;
    }
    if (parser_ok)
        yaml_parser_delete(&ld.parser);
    tw__buf_free(&ld.frames);
    tw__buf_free(&ld.merges);
    strtab_free(&ld.anchors);
    tw__arena_free(&ld.scratch);
    tw__buf_free(&ld.tmp);
    tw_json_doc_free(ld.doc);
    return rc;
}

tw_status tw_yaml_parse(const char *text, size_t len, const tw_limits *lim, tw_json_doc **out,
                        tw_error *err)
{
    return parse(text, len, lim, 0, NULL, NULL, out, err);
}

tw_status tw_yaml_parse_stream(const char *text, size_t len, const tw_limits *lim, tw_yaml_doc_fn fn,
                               void *ctx, tw_error *err)
{
    return parse(text, len, lim, 1, fn, ctx, NULL, err);
}
