/* pattern/walk.c: one pass over an event's JSON, validating all of it and recording only the values
 * of fields that some rule names (the rest is stepped over by tw__json_skip). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "event/envelope.h"
#include "json/skip.h"
#include "pattern/execute_int.h"

static const char *lex_fail(tw_matcher *m, const char *at, tw_status code, const char *why)
{
    m->lexerr.at = at;
    m->lexerr.code = code;
    m->lexerr.why = why;
    return NULL;
}

static int grow_vals(tw_matcher *m)
{
    uint32_t cap = m->capvals ? m->capvals * 2 : 256;
    tw__value *v = realloc(m->vals, cap * sizeof *v);
    if (!v) {
        m->fail = TW_ENOMEM;
        return 0;
    }
    m->vals = v;
    m->capvals = cap;
    return 1;
}

/* Records a value of field f. */
static int add_value(tw_matcher *m, uint32_t f, uint8_t type, const char *s, uint32_t len, uint32_t elem)
{
    /* Past the limit, keep validating without recording: a JSON error later in the event is the
     * better message, and the limit is reported once the whole text is known to be valid. */
    if (m->over_limit || m->nvals > m->rs->lim.event_values) {
        m->over_limit = 1;
        return 1;
    }
    if (m->nvals >= m->capvals && !grow_vals(m))
        return 0;
    uint32_t i = m->interp;
    uint32_t idx = m->nvals++;
    tw__value *v = &m->vals[idx];
    /* num, fold and ip are read only once their flag says they were computed: not cleared */
    v->s = s;
    v->len = len;
    v->type = type;
    v->interp = (uint8_t)i;
    v->have_num = 0;
    v->have_fold = 0;
    v->ip_family = 0;
    v->elem = elem;
    if (m->head_gen[i][f] != m->gen) {
        m->head_gen[i][f] = m->gen;
        m->head[i][f] = 0;
        m->touched[i][m->ntouched[i]++] = f;
    }
    v->next = m->head[i][f];
    m->head[i][f] = idx;
    return 1;
}

/* Records a scalar for the fields ending at node (if any): the pattern field, and the deep field
 * unless it lies inside an object or array recorded whole for that deep field (walk_deep). */
static int record(tw_matcher *m, uint32_t node, uint8_t type, const char *s, uint32_t len, uint32_t elem)
{
    const tw__node *n = &m->nodes[node];
    if (n->field != TW_NONE && !add_value(m, n->field, type, s, len, elem))
        return 0;
    if (n->dfield != TW_NONE && m->deep_node != node && !add_value(m, n->dfield, type, s, len, 0))
        return 0;
    return 1;
}

static const char *lex_str_escaped(tw_matcher *m, const char *p, const char *close, const char **s, uint32_t *len);

/* Lexes a string at p (the opening quote); returns the closing quote, with the decoded bytes.
 * Inline: every key and recorded value goes through here; strings with escapes are decoded apart. */
static inline const char *lex_str(tw_matcher *m, const char *p, const char *end, const char **s, uint32_t *len)
{
    int escaped = 0;
    const char *close = tw__lex_string(p + 1, end, &escaped, &m->lexerr);
    if (!close)
        return NULL;
    if (escaped)
        return lex_str_escaped(m, p, close, s, len);
    *s = p + 1;
    *len = (uint32_t)(close - p - 1);
    return close;
}

/* A string holding escapes, decoded into the event's scratch arena. */
static const char *lex_str_escaped(tw_matcher *m, const char *p, const char *close, const char **s, uint32_t *len)
{
    size_t raw = (size_t)(close - p - 1);
    char *o = tw__arena_alloc(&m->scratch, raw + 1);
    if (!o) {
        m->fail = TW_ENOMEM;
        return NULL;
    }
    *len = (uint32_t)tw__lex_unescape(p + 1, raw, o);
    *s = o;
    return close;
}

static int new_elem(tw_matcher *m, uint32_t parent, uint32_t array, uint32_t *out)
{
    if (m->nelems >= m->capelems) {
        uint32_t cap = m->capelems ? m->capelems * 2 : 64;
        tw__elem *e = realloc(m->elems, cap * sizeof *e);
        if (!e) {
            m->fail = TW_ENOMEM;
            return 0;
        }
        m->elems = e;
        m->capelems = cap;
    }
    m->elems[m->nelems] = (tw__elem){parent, array};
    *out = m->nelems++;
    return 1;
}

static const char *walk(tw_matcher *m, const char *p, const char *end, uint32_t node, uint32_t elem,
                        unsigned depth);

/* A deep pass: records every scalar of the value at p into deep field f (Sigma matches an object or
 * array by any value below it), validating as it goes. `depth` containers are open. */
static const char *deep(tw_matcher *m, const char *p, const char *end, uint32_t f, unsigned depth)
{
    if (p >= end)
        return lex_fail(m, p, TW_EJSON, "unexpected end of input (expected a value)");
    char open = *p;
    if (open == '{' || open == '[') {
        char close = open == '{' ? '}' : ']';
        if (depth >= m->rs->lim.json_depth)
            return lex_fail(m, p, TW_EDEPTH, "nesting too deep");
        p = tw__lex_ws(p + 1, end);
        if (p < end && *p == close)
            return p + 1;
        for (;;) {
            if (open == '{') {
                int esc;
                if (p >= end || *p != '"')
                    return lex_fail(m, p, TW_EJSON, "expected a string key in object");
                const char *q = tw__lex_string(p + 1, end, &esc, &m->lexerr);
                if (!q)
                    return NULL;
                p = tw__lex_ws(q + 1, end);
                if (p >= end || *p != ':')
                    return lex_fail(m, p, TW_EJSON, "expected ':' after object key");
                p = tw__lex_ws(p + 1, end);
            }
            if (!(p = deep(m, p, end, f, depth + 1)))
                return NULL;
            p = tw__lex_ws(p, end);
            if (p < end && *p == ',') {
                p = tw__lex_ws(p + 1, end);
                continue;
            }
            if (p < end && *p == close)
                return p + 1;
            return lex_fail(m, p, TW_EJSON, p >= end ? "unexpected end of input inside a container"
                                            : open == '{' ? "expected ',' or '}' in object"
                                                          : "expected ',' or ']' in array");
        }
    }
    const char *s = p, *q;
    uint32_t len;
    int type = TW_JSON_STRING;
    if (open == '"') {
        if (!(q = lex_str(m, p, end, &s, &len)))
            return NULL;
        q++;
    } else if (open == 't' || open == 'f' || open == 'n') {
        if (!(q = tw__lex_literal(p, end, &type, &m->lexerr)))
            return NULL;
        len = (uint32_t)(q - p);
    } else if (open == '-' || (open >= '0' && open <= '9')) {
        if (!(q = tw__lex_number(p, end, &m->lexerr)))
            return NULL;
        type = TW_JSON_NUMBER;
        len = (uint32_t)(q - p);
    } else {
        return lex_fail(m, p, TW_EJSON, "unexpected character (expected a value)");
    }
    return add_value(m, f, (uint8_t)type, s, len, 0) ? q : NULL;
}

/* The value at p is an object or array on a node with a deep field. The deep field records the
 * container's text as one value (its presence); the scalars inside are read from it only when a Sigma
 * test needs them (tw__deep_expand), so a field no candidate rule looks at costs a skip. The normal
 * walk still records the pattern fields inside. */
static const char *walk_deep(tw_matcher *m, const char *p, const char *end, uint32_t node, uint32_t elem,
                             unsigned depth)
{
    const tw__node *n = &m->nodes[node];
    const char *q;
    if (n->field == TW_NONE && !n->has_children) {
        q = tw__json_skip(p, end, m->rs->lim.json_depth - depth, &m->lexerr);
    } else {
        uint32_t saved = m->deep_node;
        m->deep_node = node;
        q = walk(m, p, end, node, elem, depth);
        m->deep_node = saved;
    }
    if (!q || !add_value(m, n->dfield, *p == '{' ? TW_JSON_OBJECT : TW_JSON_ARRAY, p, (uint32_t)(q - p), 0))
        return NULL;
    m->deep_gen[m->interp][n->dfield] = m->gen | TW_DEEP_PENDING;
    return q;
}

int tw__deep_expand_pending(tw_matcher *m, uint32_t f, uint32_t interp)
{
    m->deep_gen[interp][f] = m->gen;
    if (m->head_gen[interp][f] != m->gen) /* over the values limit: nothing was recorded */
        return 1;
    uint32_t saved = m->interp;
    int ok = 1;
    m->interp = interp;
    /* values found are put in front of the list: the walk goes on with the older ones */
    for (uint32_t vi = m->head[interp][f]; vi && ok;) {
        const tw__value *v = &m->vals[vi];
        uint32_t next = v->next;
        if (v->type == TW_JSON_OBJECT || v->type == TW_JSON_ARRAY) {
            const char *s = v->s; /* add_value may move m->vals */
            ok = deep(m, s, s + v->len, f, 0) != NULL && !m->over_limit;
        }
        vi = next;
    }
    m->interp = saved;
    return ok;
}

/* Steps over a value no rule names: a string (most are) inline, anything else with tw__json_skip,
 * which validates it the same way. */
static inline const char *skip_value(tw_matcher *m, const char *p, const char *end, unsigned depth)
{
    if (p < end && *p == '"') {
        int esc;
        const char *close = tw__lex_string(p + 1, end, &esc, &m->lexerr);
        return close ? close + 1 : NULL;
    }
    return tw__json_skip(p, end, m->rs->lim.json_depth - depth, &m->lexerr);
}

static const char *walk_object(tw_matcher *m, const char *p, const char *end, uint32_t node, uint32_t elem,
                               unsigned depth)
{
    p = tw__lex_ws(p + 1, end);
    if (p < end && *p == '}')
        return p + 1;
    for (;;) {
        if (p >= end || *p != '"')
            return lex_fail(m, p, TW_EJSON, "expected a string key in object");
        const char *key;
        uint32_t klen;
        const char *close = lex_str(m, p, end, &key, &klen);
        if (!close)
            return NULL;
        uint32_t child = tw__trie_child(m->rs, m->nodes, m->kids, node, key, klen);
        p = tw__lex_ws(close + 1, end);
        if (p >= end || *p != ':')
            return lex_fail(m, p, TW_EJSON, "expected ':' after object key");
        p = tw__lex_ws(p + 1, end);
        if (child == TW_NONE)
            p = skip_value(m, p, end, depth);
        else
            p = walk(m, p, end, child, elem, depth);
        if (!p)
            return NULL;
        p = tw__lex_ws(p, end);
        if (p < end && *p == ',') {
            p = tw__lex_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}')
            return p + 1;
        return lex_fail(m, p, TW_EJSON, p < end ? "expected ',' or '}' in object"
                                                : "unexpected end of input inside an object");
    }
}

static const char *walk_array(tw_matcher *m, const char *p, const char *end, uint32_t node, uint32_t elem,
                              unsigned depth)
{
    uint32_t array = ++m->narrays;
    int constrains = m->nodes[node].has_children != 0;
    p = tw__lex_ws(p + 1, end);
    if (p < end && *p == ']')
        return p + 1;
    for (;;) {
        uint32_t e = elem;
        /* Fields inside objects of one array must be satisfied by one element: give each element
         * holding a container its own identity. Scalars in an array constrain nothing. */
        if (constrains && p < end && (*p == '{' || *p == '[') && !new_elem(m, elem, array, &e))
            return NULL;
        p = walk(m, p, end, node, e, depth);
        if (!p)
            return NULL;
        p = tw__lex_ws(p, end);
        if (p < end && *p == ',') {
            p = tw__lex_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == ']')
            return p + 1;
        return lex_fail(m, p, TW_EJSON, p < end ? "expected ',' or ']' in array"
                                                : "unexpected end of input inside an array");
    }
}

/* p is at a value (no leading whitespace) whose path is node; `depth` containers are open. */
static const char *walk(tw_matcher *m, const char *p, const char *end, uint32_t node, uint32_t elem,
                        unsigned depth)
{
    const tw__node *n = &m->nodes[node];
    if (p >= end)
        return lex_fail(m, p, TW_EJSON, "unexpected end of input (expected a value)");
    if (n->dfield != TW_NONE && m->deep_node != node && (*p == '{' || *p == '['))
        return walk_deep(m, p, end, node, elem, depth);
    switch (*p) {
    case '{':
        if (!n->has_children) /* an object where a rule expects a leaf: nothing to record */
            return tw__json_skip(p, end, m->rs->lim.json_depth - depth, &m->lexerr);
        if (depth >= m->rs->lim.json_depth)
            return lex_fail(m, p, TW_EDEPTH, "nesting too deep");
        return walk_object(m, p, end, node, elem, depth + 1);
    case '[':
        if (depth >= m->rs->lim.json_depth)
            return lex_fail(m, p, TW_EDEPTH, "nesting too deep");
        return walk_array(m, p, end, node, elem, depth + 1);
    case '"': {
        const char *s;
        uint32_t len;
        const char *close = lex_str(m, p, end, &s, &len);
        if (!close || !record(m, node, TW_JSON_STRING, s, len, elem))
            return NULL;
        return close + 1;
    }
    case 't':
    case 'f':
    case 'n': {
        int type;
        const char *q = tw__lex_literal(p, end, &type, &m->lexerr);
        if (!q || !record(m, node, (uint8_t)type, p, (uint32_t)(q - p), elem))
            return NULL;
        return q;
    }
    default: {
        if (*p != '-' && (*p < '0' || *p > '9'))
            return lex_fail(m, p, TW_EJSON, "unexpected character (expected a value)");
        const char *q = tw__lex_number(p, end, &m->lexerr);
        if (!q || !record(m, node, TW_JSON_NUMBER, p, (uint32_t)(q - p), elem))
            return NULL;
        return q;
    }
    }
}

/* ---- the root object ---- */

static int key_is(const char *k, uint32_t len, const char *lit, size_t n)
{
    return len == n && memcmp(k, lit, n) == 0;
}

static int capture_index(const char *k, uint32_t len)
{
    switch (len) {
    case 2: return key_is(k, len, "id", 2) ? TW_CAP_ID : -1;
    case 7: return key_is(k, len, "eventID", 7) ? TW_CAP_EVENT_ID : -1;
    case 9:
        if (key_is(k, len, "eventType", 9))
            return TW_CAP_EVENT_TYPE;
        if (key_is(k, len, "eventTime", 9))
            return TW_CAP_EVENT_TIME;
        if (key_is(k, len, "awsRegion", 9))
            return TW_CAP_AWS_REGION;
        return -1;
    case 11:
        if (key_is(k, len, "detail-type", 11))
            return TW_CAP_DETAIL_TYPE;
        if (key_is(k, len, "eventSource", 11))
            return TW_CAP_EVENT_SOURCE;
        return -1;
    case 12: return key_is(k, len, "eventVersion", 12) ? TW_CAP_EVENT_VERSION : -1;
    case 18: return key_is(k, len, "recipientAccountId", 18) ? TW_CAP_RECIPIENT : -1;
    default: return -1;
    }
}

static int synth(tw_matcher *m, int env, const char *s, size_t len)
{
    uint32_t f = m->rs->env_field[env];
    if (f == TW_NONE || !s)
        return 1;
    return record(m, m->rs->fields[f].node, TW_JSON_STRING, s, (uint32_t)len, 0);
}

/* The envelope EventBridge would have put around a CloudTrail record, as recorded values. */
static int synthesize_envelope(tw_matcher *m)
{
    m->interp = TW_INTERP_RECORD;
    const tw__capture *c = m->cap;
    const tw__capture *src = &c[TW_CAP_EVENT_SOURCE], *type = &c[TW_CAP_EVENT_TYPE];
    char *o = m->synth;
    if (src->s && m->rs->env_field[TW_ENV_SOURCE] != TW_NONE) {
        size_t svc;
        tw__envelope_service(src->s, src->len, &svc);
        char *s = tw__arena_alloc(&m->scratch, svc + 5);
        if (!s) {
            m->fail = TW_ENOMEM;
            return 0;
        }
        memcpy(s, "aws.", 4);
        memcpy(s + 4, src->s, svc);
        if (!synth(m, TW_ENV_SOURCE, s, svc + 4))
            return 0;
    }
    const char *dt = tw__envelope_detail_type(type->s, type->len);
    if (m->rs->env_field[TW_ENV_ID] != TW_NONE) {
        /* A fresh id per wrapped record, as EventBridge assigns one; only built if a rule asks. */
        m->rng = m->rng * 6364136223846793005ULL + 1442695040888963407ULL;
        snprintf(o, sizeof m->synth, "%08x-%04x-4%03x-a%03x-%012llx", (unsigned)(m->rng >> 32),
                 (unsigned)(m->rng >> 16) & 0xffff, (unsigned)m->rng & 0xfff, (unsigned)(m->rng >> 52),
                 (unsigned long long)(m->rng * 0x9e3779b97f4a7c15ULL) & 0xffffffffffffULL);
    }
    return synth(m, TW_ENV_VERSION, "0", 1) && synth(m, TW_ENV_ID, o, strlen(o)) &&
           synth(m, TW_ENV_DETAIL_TYPE, dt, strlen(dt)) &&
           synth(m, TW_ENV_ACCOUNT, c[TW_CAP_RECIPIENT].s, c[TW_CAP_RECIPIENT].len) &&
           synth(m, TW_ENV_TIME, c[TW_CAP_EVENT_TIME].s, c[TW_CAP_EVENT_TIME].len) &&
           synth(m, TW_ENV_REGION, c[TW_CAP_AWS_REGION].s, c[TW_CAP_AWS_REGION].len);
}

static tw_status report(tw_matcher *m, const char *json, const char *at, tw_status code, const char *why,
                        tw_error *err)
{
    unsigned line = 1;
    const char *ls = json;
    for (const char *q = json; q < at; q++)
        if (*q == '\n') {
            line++;
            ls = q + 1;
        }
    (void)m;
    return tw__err(err, code, "line %u, column %u: %s", line, (unsigned)(at - ls) + 1, why);
}

static tw_status walk_failed(tw_matcher *m, const char *json, tw_error *err)
{
    if (m->fail == TW_ENOMEM)
        return tw__err(err, TW_ENOMEM, "out of memory matching an event");
    if (m->fail == TW_ELIMIT)
        return tw__err(err, TW_ELIMIT, "event has more than %zu values in fields that rules name",
                       m->rs->lim.event_values);
    return report(m, json, m->lexerr.at, m->lexerr.code, m->lexerr.why, err);
}

tw_status tw__walk_event(tw_matcher *m, const char *json, size_t len, tw_event_kind kind, int *is_record,
                         tw_error *err)
{
    const tw_ruleset *rs = m->rs;
    const char *p = json, *end = json + len;
    unsigned max = rs->lim.json_depth;
    memset(m->cap, 0, sizeof m->cap);
    m->synth[0] = '\0';
    p = tw__lex_ws(p, end);
    if (p >= end)
        return tw__err(err, TW_EJSON, "empty input (expected a JSON object)");
    if (*p != '{') {
        /* Report broken JSON as such before complaining about its shape. */
        const char *q = tw__json_skip(p, end, max, &m->lexerr);
        if (!q)
            return walk_failed(m, json, err);
        q = tw__lex_ws(q, end);
        if (q != end)
            return report(m, json, q, TW_EJSON, "unexpected data after the JSON value", err);
        return tw__err(err, TW_EEVENT, "an event must be a JSON object (got %s)",
                       *p == '[' ? "an array" : *p == '"' ? "a string" : "a scalar");
    }
    if (max < 1)
        return report(m, json, p, TW_EDEPTH, "nesting too deep", err);
    int capture = kind != TW_EVENT_ENVELOPE;
    const char *root = p;
    p = tw__lex_ws(p + 1, end);
    if (p < end && *p == '}') {
        p++;
        goto done;
    }
    for (;;) {
        if (p >= end || *p != '"') {
            lex_fail(m, p, TW_EJSON, "expected a string key in object");
            return walk_failed(m, json, err);
        }
        const char *key;
        uint32_t klen;
        const char *close = lex_str(m, p, end, &key, &klen);
        if (!close)
            return walk_failed(m, json, err);
        uint32_t env = kind != TW_EVENT_CLOUDTRAIL ? tw__trie_child(rs, m->nodes, m->kids, 0, key, klen) : TW_NONE;
        uint32_t rec = kind != TW_EVENT_ENVELOPE && rs->detail_node != TW_NONE
                           ? tw__trie_child(rs, m->nodes, m->kids, rs->detail_node, key, klen)
                           : TW_NONE;
        int ci = capture_index(key, klen);
        p = tw__lex_ws(close + 1, end);
        if (p >= end || *p != ':') {
            lex_fail(m, p, TW_EJSON, "expected ':' after object key");
            return walk_failed(m, json, err);
        }
        const char *v = tw__lex_ws(p + 1, end), *after = NULL;
        if (ci >= 0 && (capture || ci == TW_CAP_ID)) {
            tw__capture *c = &m->cap[ci];
            c->seen = 1;
            c->s = NULL;
            if (v < end && *v == '"') {
                const char *s;
                uint32_t sl;
                const char *q = lex_str(m, v, end, &s, &sl);
                if (!q)
                    return walk_failed(m, json, err);
                c->s = s;
                c->len = sl;
                after = q + 1;
            }
        }
        if (env != TW_NONE) {
            m->interp = TW_INTERP_EVENT;
            if (!(after = walk(m, v, end, env, 0, 1)))
                return walk_failed(m, json, err);
        }
        if (rec != TW_NONE) {
            m->interp = TW_INTERP_RECORD;
            if (!(after = walk(m, v, end, rec, 0, 1)))
                return walk_failed(m, json, err);
        }
        if (!after && !(after = skip_value(m, v, end, 1)))
            return walk_failed(m, json, err);
        p = tw__lex_ws(after, end);
        if (p < end && *p == ',') {
            p = tw__lex_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}') {
            p++;
            break;
        }
        lex_fail(m, p, TW_EJSON, p < end ? "expected ',' or '}' in object" : "unexpected end of input inside an object");
        return walk_failed(m, json, err);
    }
done:
    if (capture && rs->detail_node != TW_NONE && m->nodes[rs->detail_node].dfield != TW_NONE) {
        /* Sigma keywords over a raw record: the whole record, read as "detail" */
        m->interp = TW_INTERP_RECORD;
        uint32_t df = m->nodes[rs->detail_node].dfield;
        if (!add_value(m, df, TW_JSON_OBJECT, root, (uint32_t)(p - root), 0))
            return walk_failed(m, json, err);
        m->deep_gen[TW_INTERP_RECORD][df] = m->gen | TW_DEEP_PENDING;
    }
    p = tw__lex_ws(p, end);
    if (p != end)
        return report(m, json, p, TW_EJSON, "unexpected data after the JSON value", err);
    if (m->over_limit)
        return tw__err(err, TW_ELIMIT, "event has more than %zu values in fields that rules name",
                       m->rs->lim.event_values);
    const tw__capture *c = m->cap;
    *is_record = kind == TW_EVENT_CLOUDTRAIL ||
                 (kind == TW_EVENT_AUTO && c[TW_CAP_EVENT_VERSION].seen && c[TW_CAP_EVENT_SOURCE].seen &&
                  !c[TW_CAP_DETAIL_TYPE].seen);
    if (*is_record && !synthesize_envelope(m))
        return walk_failed(m, json, err);
    return TW_OK;
}
