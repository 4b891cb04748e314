/* pattern/execute.c: per event, look the recorded values up in the anchor index, then check each
 * candidate conjunction in full (with array consistency). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "pattern/boolean.h"
#include "pattern/execute_int.h"

tw_status tw_matcher_new(const tw_ruleset *rs, tw_matcher **out)
{
    *out = NULL;
    tw_matcher *m = calloc(1, sizeof *m);
    if (!m)
        return TW_ENOMEM;
    m->rs = rs;
    m->nodes = rs->nodes;
    m->kids = rs->kids;
    size_t nf = rs->nfields + 1, nc = rs->nconjs + 1, nr = rs->nrules + 1, np = rs->npreds + 1;
    for (int i = 0; i < 2; i++) {
        m->head[i] = calloc(nf, sizeof(uint32_t));
        m->head_gen[i] = calloc(nf, sizeof(uint32_t));
        m->touched[i] = calloc(nf, sizeof(uint32_t));
    }
    m->conj_gen = calloc(nc, sizeof(uint32_t));
    m->cands = calloc(nc, sizeof(uint32_t));
    m->rule_gen = calloc(nr, sizeof(uint32_t));
    m->result = calloc(nr, sizeof(uint32_t));
    m->pred_mark = calloc(np, sizeof(uint32_t));
    m->chosen = calloc(rs->max_conj_preds + 1, sizeof(uint32_t));
    m->deep_node = TW_NONE;
    if (rs->bset && (!(m->bool_gen = calloc(nr, sizeof(uint32_t))) || !(m->deep_gen[0] = calloc(nf, sizeof(uint32_t))) ||
                     !(m->deep_gen[1] = calloc(nf, sizeof(uint32_t))))) {
        tw_matcher_free(m);
        return TW_ENOMEM;
    }
    m->rng = (uint64_t)(uintptr_t)m ^ 0x2545f4914f6cdd1dULL;
    if (!m->head[0] || !m->head[1] || !m->head_gen[0] || !m->head_gen[1] || !m->touched[0] ||
        !m->touched[1] || !m->conj_gen || !m->cands || !m->rule_gen || !m->result || !m->pred_mark ||
        !m->chosen) {
        tw_matcher_free(m);
        return TW_ENOMEM;
    }
    *out = m;
    return TW_OK;
}

void tw_matcher_free(tw_matcher *m)
{
    if (!m)
        return;
    for (int i = 0; i < 2; i++) {
        free(m->head[i]);
        free(m->head_gen[i]);
        free(m->touched[i]);
        free(m->deep_gen[i]);
    }
    free(m->vals);
    free(m->elems);
    free(m->conj_gen);
    free(m->cands);
    free(m->rule_gen);
    free(m->result);
    free(m->pred_mark);
    free(m->bool_gen);
    free(m->chosen);
    tw__arena_free(&m->scratch);
    free(m);
}

/* Starts a new event: a new generation invalidates every per-event mark at once. */
static void next_generation(tw_matcher *m)
{
    /* Generations live in 31 bits (pred_mark keeps a flag beside them). */
    if (++m->gen == 0x7fffffff) {
        const tw_ruleset *rs = m->rs;
        for (int i = 0; i < 2; i++)
            memset(m->head_gen[i], 0, (rs->nfields + 1) * sizeof(uint32_t));
        memset(m->conj_gen, 0, (rs->nconjs + 1) * sizeof(uint32_t));
        memset(m->rule_gen, 0, (rs->nrules + 1) * sizeof(uint32_t));
        memset(m->pred_mark, 0, (rs->npreds + 1) * sizeof(uint32_t));
        if (m->bool_gen)
            memset(m->bool_gen, 0, (rs->nrules + 1) * sizeof(uint32_t));
        for (int i = 0; i < 2 && m->deep_gen[i]; i++)
            memset(m->deep_gen[i], 0, (rs->nfields + 1) * sizeof(uint32_t));
        m->gen = 1;
    }
    m->nvals = 1; /* index 0 is the list terminator */
    m->nelems = 1;
    m->narrays = 0;
    m->ntouched[0] = m->ntouched[1] = 0;
    m->ncands = 0;
    m->nresult = 0;
    m->steps = 0;
    m->fail = TW_OK;
    m->over_limit = 0;
    m->deep_node = TW_NONE;
    tw__arena_reset(&m->scratch);
}

static void add_candidates(tw_matcher *m, const tw__akey *k)
{
    if (!k)
        return;
    const uint32_t *post = m->rs->postings + k->post_off;
    for (uint32_t i = 0; i < k->npost; i++) {
        uint32_t c = post[i];
        if (m->conj_gen[c] != m->gen) {
            m->conj_gen[c] = m->gen;
            m->cands[m->ncands++] = c;
        }
    }
}

static void on_affix(void *ctx, uint32_t slot)
{
    tw_matcher *m = ctx;
    add_candidates(m, &m->rs->akeys[slot]);
}

/* Every prefix (suffix) key of the field that the string starts (ends) with, in one trie walk. */
static void probe_affix(tw_matcher *m, uint32_t f, uint32_t tag, const char *s, uint32_t len)
{
    uint32_t t = m->rs->fields[f].trie[tag - TW_TAG_PREFIX];
    if (t != TW_NONE)
        tw__affix_walk(&m->rs->tries[t], s, len, tag == TW_TAG_SUFFIX || tag == TW_TAG_SUFFIX_EIC, on_affix, m);
}

/* Looks the address up once per (family, prefix length) that some cidr of the field uses. */
static void probe_cidr(tw_matcher *m, uint32_t f, tw__value *v)
{
    int fam = tw__value_ip(v);
    if (!fam)
        return;
    const tw__field *fld = &m->rs->fields[f];
    const uint32_t *codes = m->rs->lens + fld->lens_off[4];
    unsigned total = fam == 4 ? 32 : 128;
    for (uint32_t i = 0; i < fld->nlens[4]; i++) {
        if ((int)(codes[i] >> 8) != fam)
            continue;
        uint8_t key[18];
        key[0] = (uint8_t)fam;
        key[1] = (uint8_t)(codes[i] & 0xff);
        memcpy(key + 2, v->ip, total / 8);
        tw__cidr_mask(key + 2, key[1], total);
        add_candidates(m, tw__ruleset_anchor(m->rs, 0, f, TW_TAG_CIDR, key, 2 + total / 8));
    }
}

/* Whether s is all ASCII (folding keeps its length), 8 bytes at a time. */
static inline int ascii(const char *s, uint32_t len)
{
    uint64_t any = 0, w;
    uint32_t i = 0;
    for (; i + 8 <= len; i += 8) {
        memcpy(&w, s + i, 8);
        any |= w;
    }
    for (; i < len; i++)
        any |= (unsigned char)s[i];
    return !(any & 0x8080808080808080ULL);
}

/* Files every conjunction anchored on a matcher that accepts value v of field f as a candidate. */
static int probe(tw_matcher *m, uint32_t f, tw__value *v)
{
    const tw_ruleset *rs = m->rs;
    const tw__field *fld = &rs->fields[f];
    uint32_t tags = fld->tags;
    /* A deep (Sigma) field compares numbers and booleans by their JSON text too. */
    if (v->type == TW_JSON_STRING ||
        (fld->deep && (v->type == TW_JSON_NUMBER || v->type == TW_JSON_TRUE || v->type == TW_JSON_FALSE))) {
        if ((tags & (1u << TW_TAG_EXACT)) && v->len >= fld->klens[0][0] && v->len <= fld->klens[0][1])
            add_candidates(m, tw__ruleset_anchor(rs, 0, f, TW_TAG_EXACT, v->s, v->len));
        if ((tags & (1u << TW_TAG_PREFIX)) && v->len >= fld->amin[0])
            probe_affix(m, f, TW_TAG_PREFIX, v->s, v->len);
        if ((tags & (1u << TW_TAG_SUFFIX)) && v->len >= fld->amin[1])
            probe_affix(m, f, TW_TAG_SUFFIX, v->s, v->len);
        /* Simple case folding keeps a character's UTF-8 length within a third to one and a half of
         * it (Kelvin sign: 3 bytes to 1; U+023A: 2 to 3): only values that may fold to the length
         * of some key are folded and looked up. */
        uint64_t most = (uint64_t)v->len * 3 / 2;
        int eic = (tags & (1u << TW_TAG_EIC)) &&
                  ((v->len >= fld->klens[1][0] && v->len <= fld->klens[1][1]) ||
                   (most >= fld->klens[1][0] && ((uint64_t)v->len + 2) / 3 <= fld->klens[1][1] && !ascii(v->s, v->len)));
        int peic = (tags & (1u << TW_TAG_PREFIX_EIC)) && most >= fld->amin[2];
        int seic = (tags & (1u << TW_TAG_SUFFIX_EIC)) && most >= fld->amin[3];
        if (eic || peic || seic || fld->ac_eic != TW_NONE) {
            uint32_t flen;
            const char *fs = tw__value_fold(v, &m->scratch, &flen);
            if (!fs)
                return 0;
            if (eic && flen >= fld->klens[1][0] && flen <= fld->klens[1][1])
                add_candidates(m, tw__ruleset_anchor(rs, 0, f, TW_TAG_EIC, fs, flen));
            if (peic)
                probe_affix(m, f, TW_TAG_PREFIX_EIC, fs, flen);
            if (seic)
                probe_affix(m, f, TW_TAG_SUFFIX_EIC, fs, flen);
            if (fld->ac_eic != TW_NONE)
                tw__ac_scan(&rs->acs[fld->ac_eic], fs, flen, on_affix, m);
        }
        if (tags & (1u << TW_TAG_CIDR))
            probe_cidr(m, f, v);
        if (fld->ac != TW_NONE)
            tw__ac_scan(&rs->acs[fld->ac], v->s, v->len, on_affix, m);
    }
    if (v->type == TW_JSON_NUMBER) {
        if (tags & (1u << TW_TAG_NUMBER)) {
            double d = tw__value_number(v);
            if (isfinite(d)) {
                if (d == 0)
                    d = 0.0;
                add_candidates(m, tw__ruleset_anchor(rs, 0, f, TW_TAG_NUMBER, &d, 8));
            }
        }
    } else if (v->type <= TW_JSON_TRUE && (tags & (1u << TW_TAG_LITERAL))) {
        char lit = (char)v->type;
        add_candidates(m, tw__ruleset_anchor(rs, 0, f, TW_TAG_LITERAL, &lit, 1));
    }
    for (uint32_t i = 0; i < fld->nscan; i++) {
        const tw__scan *s = &rs->scans[fld->scan_off + i];
        if (m->conj_gen[s->conj] != m->gen && tw__matcher_test(&rs->matchers[s->matcher], v, &m->scratch)) {
            m->conj_gen[s->conj] = m->gen;
            m->cands[m->ncands++] = s->conj;
        }
    }
    return 1;
}

static uint32_t first_value(const tw_matcher *m, uint32_t interp, uint32_t f)
{
    return m->head_gen[interp][f] == m->gen ? m->head[interp][f] : 0;
}

/* The composite anchors of the namespace opened by value v1 (see ruleset_int.h). */
static void probe_namespace(tw_matcher *m, uint32_t interp, uint32_t f1, const tw__value *v1)
{
    const tw_ruleset *rs = m->rs;
    const tw__akey *k = tw__ruleset_anchor(rs, 0, f1, TW_TAG_NS, v1->s, v1->len);
    if (!k)
        return;
    const tw__ns *ns = &rs->ns[k->post_off];
    for (uint32_t i = 0; i < ns->n; i++) {
        const tw__nsfield *nf = &rs->nsfields[ns->off + i];
        for (uint32_t vi = first_value(m, interp, nf->field); vi; vi = m->vals[vi].next) {
            const tw__value *v = &m->vals[vi];
            if (v->type != TW_JSON_STRING)
                continue;
            if (nf->tags & (1u << TW_TAG_EXACT))
                add_candidates(m, tw__ruleset_anchor(rs, k->post_off, nf->field, TW_TAG_EXACT, v->s, v->len));
            if (nf->trie[0] != TW_NONE)
                tw__affix_walk(&rs->tries[nf->trie[0]], v->s, v->len, 0, on_affix, m);
            if (nf->trie[1] != TW_NONE)
                tw__affix_walk(&rs->tries[nf->trie[1]], v->s, v->len, 1, on_affix, m);
        }
    }
}

static int pred_accepts(tw_matcher *m, const tw__pred *p, tw__value *v)
{
    const tw__matcher *ms = &m->rs->matchers[p->moff];
    for (uint32_t i = 0; i < p->nm; i++)
        if (tw__matcher_test(&ms[i], v, &m->scratch))
            return 1;
    return 0;
}

/* Whether the predicate can hold at all in this event, ignoring array consistency (cached). */
int tw__pred_possible(tw_matcher *m, uint32_t pid, uint32_t interp)
{
    uint32_t mark = m->pred_mark[pid];
    if (mark >> 1 == m->gen)
        return (int)(mark & 1);
    const tw__pred *p = &m->rs->preds[pid];
    if (m->rs->fields[p->field].deep)
        tw__deep_expand(m, p->field, interp);
    uint32_t vi = first_value(m, interp, p->field);
    int sat = 0;
    if (!vi)
        sat = p->exists_false != 0;
    for (; vi && !sat; vi = m->vals[vi].next)
        sat = pred_accepts(m, p, &m->vals[vi]);
    m->pred_mark[pid] = m->gen << 1 | (uint32_t)(sat != 0);
    return sat;
}

/* No array holds a and b in different elements. */
static int consistent(const tw_matcher *m, uint32_t ea, uint32_t eb)
{
    if (!ea || !eb || ea == eb)
        return 1;
    for (uint32_t x = ea; x; x = m->elems[x].parent)
        for (uint32_t y = eb; y; y = m->elems[y].parent)
            if (m->elems[x].array == m->elems[y].array)
                return x == y;
    return 1;
}

/* Backtracking over the values of each predicate so that all chosen values are consistent. */
static int solve(tw_matcher *m, const uint32_t *preds, uint32_t n, uint32_t level, uint32_t interp)
{
    if (level == n)
        return 1;
    const tw__pred *p = &m->rs->preds[preds[level]];
    uint32_t vi = first_value(m, interp, p->field);
    if (!vi) {
        m->chosen[level] = 0;
        return p->exists_false && solve(m, preds, n, level + 1, interp);
    }
    for (; vi; vi = m->vals[vi].next) {
        if (++m->steps > m->rs->lim.match_steps)
            return 0;
        tw__value *v = &m->vals[vi];
        if (!pred_accepts(m, p, v))
            continue;
        int ok = 1;
        for (uint32_t j = 0; j < level && ok; j++)
            if (m->chosen[j])
                ok = consistent(m, v->elem, m->vals[m->chosen[j]].elem);
        if (!ok)
            continue;
        m->chosen[level] = vi;
        if (solve(m, preds, n, level + 1, interp))
            return 1;
    }
    return 0;
}

static int conj_matches(tw_matcher *m, uint32_t ci, uint32_t interp)
{
    const tw__cconj *c = &m->rs->conjs[ci];
    const uint32_t *preds = m->rs->conj_preds + c->poff;
    uint32_t mark = m->gen << 1 | 1;
    /* The anchor's predicates hold (the key that found the conjunction is their value): remember
     * that for the other conjunctions sharing them, and test only the rest. */
    for (uint32_t i = 0; i < c->nanchor; i++)
        m->pred_mark[preds[i]] = mark;
    for (uint32_t i = c->nanchor; i < c->npred; i++) {
        uint32_t pm = m->pred_mark[preds[i]];
        if (pm >> 1 == m->gen ? !(pm & 1) : !tw__pred_possible(m, preds[i], interp))
            return 0;
    }
    if (m->nelems <= 1) /* no constraining arrays in this event: each predicate holds on its own */
        return 1;
    return solve(m, preds, c->npred, 0, interp);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Starts the event, walks it (through the gate trie when `gated`) and files the candidate
 * conjunctions of the values recorded. */
static tw_status find_candidates(tw_matcher *m, const char *json, size_t len, tw_event_kind kind, int gated,
                                 int *is_record, tw_error *err)
{
    const tw_ruleset *rs = m->rs;
    next_generation(m);
    m->gated = gated;
    m->nodes = gated ? rs->gnodes : rs->nodes;
    m->kids = gated ? rs->gkids : rs->kids;
    tw_status rc = tw__walk_event(m, json, len, kind, is_record, err);
    if (rc)
        return rc;
    uint32_t interp = *is_record ? 1 : 0;
    m->last_interp = interp;
    for (uint32_t t = 0; t < m->ntouched[interp]; t++) {
        uint32_t f = m->touched[interp][t];
        const tw__field *fld = &rs->fields[f];
        if (!fld->probed)
            continue;
        int heads_ns = (fld->tags & (1u << TW_TAG_NS)) != 0;
        /* a deep field's objects and arrays are read now only when anchors look at its values */
        if (fld->deep)
            tw__deep_expand(m, f, interp);
        for (uint32_t vi = m->head[interp][f]; vi; vi = m->vals[vi].next) {
            if (!probe(m, f, &m->vals[vi]))
                return tw__err(err, TW_ENOMEM, "out of memory matching an event");
            if (heads_ns && m->vals[vi].type == TW_JSON_STRING)
                probe_namespace(m, interp, f, &m->vals[vi]);
        }
    }
    for (uint32_t i = 0; i < rs->nalways; i++) {
        uint32_t c = rs->always[i];
        if (m->conj_gen[c] != m->gen) {
            m->conj_gen[c] = m->gen;
            m->cands[m->ncands++] = c;
        }
    }
    return TW_OK;
}

tw_status tw_match(tw_matcher *m, const char *json, size_t len, tw_event_kind kind, tw_match_result *res,
                   tw_error *err)
{
    const tw_ruleset *rs = m->rs;
    res->rules = m->result;
    res->count = 0;
    res->kind = TW_EVENT_ENVELOPE;
    res->id = NULL;
    res->id_len = 0;
    if (len > rs->lim.event_max)
        return tw__err(err, TW_ETOOBIG, "event of %zu bytes exceeds the limit of %zu bytes", len,
                       rs->lim.event_max);
    int is_record = 0;
    tw_status rc = find_candidates(m, json, len, kind, rs->gnodes != NULL, &is_record, err);
    if (rc)
        return rc;
    if (m->gated) {
        /* A candidate boolean rule's program reads fields the gate did not record: walk the event
         * again, through the whole trie, and start over from there. */
        for (uint32_t i = 0; i < m->ncands; i++)
            if (rs->conjs[m->cands[i]].boolean && rs->bset->rewalk[rs->conjs[m->cands[i]].rule]) {
                m->rewalks++;
                if ((rc = find_candidates(m, json, len, kind, 0, &is_record, err)))
                    return rc;
                break;
            }
    }
    uint32_t interp = is_record ? 1 : 0;
    for (uint32_t i = 0; i < m->ncands; i++) {
        uint32_t c = m->cands[i], r = rs->conjs[c].rule;
        if (m->rule_gen[r] == m->gen)
            continue;
        if (rs->conjs[c].boolean) {
            /* An anchor of a boolean rule: its program decides, once per event. */
            if (m->bool_gen[r] == m->gen)
                continue;
            m->bool_gen[r] = m->gen;
            if (tw__bool_eval(m, r, interp)) {
                m->rule_gen[r] = m->gen;
                m->result[m->nresult++] = r;
            }
        } else if ((rs->conjs[c].proven && m->nelems <= 1) || conj_matches(m, c, interp)) {
            /* Arrays can make two values of one conjunction come from different elements. */
            m->rule_gen[r] = m->gen;
            m->result[m->nresult++] = r;
        }
        if (m->steps > rs->lim.match_steps)
            return tw__err(err, TW_ELIMIT,
                           "event too complex to match: array consistency needs more than %zu steps",
                           rs->lim.match_steps);
    }
    if (m->over_limit)
        return tw__err(err, TW_ELIMIT, "event has more than %zu values in fields that rules name",
                       rs->lim.event_values);
    if (m->nresult > 32) {
        qsort(m->result, m->nresult, sizeof *m->result, cmp_u32);
    } else {
        /* a few rules per event: an insertion sort costs less than qsort's setup */
        for (uint32_t i = 1; i < m->nresult; i++) {
            uint32_t x = m->result[i], j = i;
            for (; j > 0 && m->result[j - 1] > x; j--)
                m->result[j] = m->result[j - 1];
            m->result[j] = x;
        }
    }
    res->count = m->nresult;
    res->kind = is_record ? TW_EVENT_CLOUDTRAIL : TW_EVENT_ENVELOPE;
    const tw__capture *id = &m->cap[is_record ? TW_CAP_EVENT_ID : TW_CAP_ID];
    res->id = id->s;
    res->id_len = id->len;
    return TW_OK;
}

size_t tw__matcher_rewalks(const tw_matcher *m) { return m->rewalks; }
