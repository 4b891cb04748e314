/* pattern/gate.c: the gate trie, the path trie cut down to the fields that find candidates.
 *
 * Sigma rules name many fields (requestParameters.*, userIdentity.*, errorCode, ...) but are found
 * through a few anchors (eventName, eventSource); only a few events in a hundred make one a
 * candidate. Recording every Sigma field of every event cost a third more than the pattern rules
 * alone. So an event is first walked through the gate trie: every pattern field, the Sigma fields
 * that anchors, scans and namespaces look up, the fields correlations capture, and every field of a
 * boolean rule that is a candidate for every event. Only when a candidate boolean rule reads a field
 * beyond those is the event walked again through the whole trie (execute.c); from there everything
 * is as without a gate. */
#include <stdlib.h>

#include "pattern/boolean.h"
#include "pattern/ruleset_int.h"

/* The fields the probes of execute.c read (an anchor, a scan or a namespace) and the captures. */
static void mark_probed(const tw_ruleset *rs, uint8_t *need)
{
    for (uint32_t f = 0; f < rs->nfields; f++)
        need[f] = !rs->fields[f].deep || rs->fields[f].probed;
    for (uint32_t i = 1; i <= rs->nns; i++)
        for (uint32_t j = 0; j < rs->ns[i].n; j++)
            need[rs->nsfields[rs->ns[i].off + j].field] = 1;
    for (uint32_t i = 0; i < rs->bset->ncaptures; i++)
        need[rs->bset->capture_field[i]] = 1;
}

/* What rule_fields does with each field a program reads. */
enum { RF_NEEDED, RF_CHEAP, RF_ADD };

/* A record's top-level key (eventType, userAgent) costs the gate one trie step; payload objects
 * (requestParameters, ...) are what the gate saves walking. */
static int cheap(const tw_ruleset *rs, const tw__field *f)
{
    return f->top && !f->payload && rs->nodes[f->node].field == TW_NONE;
}

/* Visits the fields boolean rule r's program reads. RF_NEEDED: whether all are needed; RF_CHEAP:
 * whether all that are not are cheap; RF_ADD: marks them all needed. A program may share a subtree
 * (an identifier used twice): seen[] holds this visit's stamp (new per call) for the nodes already
 * pushed, so each is pushed once and stack needs room for bs->nnodes. */
static int rule_fields(const tw_ruleset *rs, uint32_t r, int mode, uint8_t *need, uint32_t *stack, uint32_t *seen,
                       uint32_t stamp)
{
    const tw__bset *bs = rs->bset;
    int all = 1;
    uint32_t top = 0;
    stack[top++] = bs->root_of[r];
    seen[bs->root_of[r]] = stamp;
    while (top) {
        const tw__bnode *n = &bs->nodes[stack[--top]];
        uint32_t nk = n->op == TW_BN_NOT ? 1 : n->op == TW_BN_AND || n->op == TW_BN_OR ? n->n : 0;
        for (uint32_t i = 0; i < nk; i++) {
            uint32_t k = n->op == TW_BN_NOT ? n->a : bs->kids[n->a + i];
            if (seen[k] != stamp) {
                seen[k] = stamp;
                stack[top++] = k;
            }
        }
        if (n->op != TW_BN_ATOM)
            continue;
        const tw__batom_c *a = &bs->atoms[n->a];
        uint32_t f[2] = {a->kind == TW_BA_PRED ? rs->preds[a->pred].field : a->field,
                         a->kind == TW_BA_PRED ? TW_NONE : a->reffield};
        for (int j = 0; j < 2; j++) {
            if (f[j] == TW_NONE)
                continue;
            if (mode == RF_ADD)
                need[f[j]] = 1;
            else
                all &= need[f[j]] || (mode == RF_CHEAP && cheap(rs, &rs->fields[f[j]]));
        }
    }
    return all;
}

/* A node is live when a needed field ends at it or below it. Every edge goes from a node made
 * earlier to one made later (a path's prefixes first), so one pass from the last edge up would do;
 * repeating until nothing changes does not depend on that. */
static void mark_live(const tw_ruleset *rs, const uint8_t *need, uint8_t *live)
{
    for (uint32_t i = 0; i < rs->nnodes; i++) {
        const tw__node *n = &rs->nodes[i];
        live[i] = (n->field != TW_NONE && need[n->field]) || (n->dfield != TW_NONE && need[n->dfield]);
    }
    for (int changed = 1; changed;) {
        changed = 0;
        for (uint32_t s = 0; s <= rs->trans_mask; s++) {
            const tw__trans *t = &rs->trans[s];
            if (t->hash && live[t->to] && !live[t->from]) {
                live[t->from] = 1;
                changed = 1;
            }
        }
    }
}

/* The gate's nodes: the same ids, fields not needed removed, edges only to live nodes. */
static tw_status cut(tw_ruleset *rs, const uint8_t *need, const uint8_t *live)
{
    tw__node *g = malloc(rs->nnodes * sizeof *g);
    if (!g)
        return TW_ENOMEM;
    for (uint32_t i = 0; i < rs->nnodes; i++) {
        const tw__node *n = &rs->nodes[i];
        g[i] = (tw__node){.field = n->field != TW_NONE && need[n->field] ? n->field : TW_NONE,
                          .dfield = n->dfield != TW_NONE && need[n->dfield] ? n->dfield : TW_NONE};
    }
    for (uint32_t s = 0; s <= rs->trans_mask; s++) {
        const tw__trans *t = &rs->trans[s];
        if (!t->hash || !live[t->to])
            continue;
        tw__node *n = &g[t->from];
        n->nkids++;
        n->has_children = 1;
        n->keylens |= (uint64_t)1 << (t->klen < 63 ? t->klen : 63);
        n->keysig |= (uint64_t)1 << tw__key_sig(rs->keypool + t->koff, t->klen);
    }
    uint32_t nkids = tw__kids_layout(g, rs->nnodes);
    tw__kid *kids = malloc((nkids + 1) * sizeof *kids);
    if (!kids) {
        free(g);
        return TW_ENOMEM;
    }
    tw__kids_empty(kids, nkids + 1);
    for (uint32_t s = 0; s <= rs->trans_mask; s++) {
        const tw__trans *t = &rs->trans[s];
        if (t->hash && live[t->to])
            tw__kids_put(g, kids, t->from, rs->keypool, t->koff, t->klen, t->to);
    }
    rs->gnodes = g;
    rs->gkids = kids;
    rs->memory += rs->nnodes * sizeof *g + (nkids + 1) * sizeof *kids;
    return TW_OK;
}

tw_status tw__ruleset_build_gate(tw_ruleset *rs)
{
    tw__bset *bs = rs->bset;
    if (!bs || !rs->nfields)
        return TW_OK;
    tw_status rc = TW_ENOMEM;
    uint8_t *need = malloc(rs->nfields), *live = malloc(rs->nnodes ? rs->nnodes : 1);
    uint32_t *stack = malloc((bs->nnodes + 1) * sizeof *stack), *seen = calloc(bs->nnodes + 1, sizeof *seen);
    uint8_t *rewalk = calloc(rs->nrules + 1, 1);
    uint32_t stamp = 0;
    if (!need || !live || !stack || !seen || !rewalk)
        goto out;
    mark_probed(rs, need);
    /* A boolean rule without anchors is a candidate for every event: the gate records its fields. So
     * it does for a rule that reads only cheap fields beyond them: aws_root_account_usage is found
     * by userIdentity.type and reads eventType, and Root is common enough for that to pay. */
    for (uint32_t i = 0; i < rs->nalways; i++)
        if (rs->conjs[rs->always[i]].boolean)
            rule_fields(rs, rs->conjs[rs->always[i]].rule, RF_ADD, need, stack, seen, ++stamp);
    for (uint32_t r = 0; r < rs->nrules; r++)
        if (bs->root_of[r] != TW_NONE && rule_fields(rs, r, RF_CHEAP, need, stack, seen, ++stamp))
            rule_fields(rs, r, RF_ADD, need, stack, seen, ++stamp);
    rc = TW_OK;
    uint32_t cut_fields = 0;
    for (uint32_t f = 0; f < rs->nfields; f++)
        cut_fields += !need[f];
    if (!cut_fields)
        goto out;
    for (size_t r = 0; r < rs->nrules; r++)
        rewalk[r] = bs->root_of[r] != TW_NONE && !rule_fields(rs, (uint32_t)r, RF_NEEDED, need, stack, seen, ++stamp);
    mark_live(rs, need, live);
    if ((rc = cut(rs, need, live)))
        goto out;
    bs->rewalk = rewalk;
    rewalk = NULL;
    rs->memory += rs->nrules + 1;
out:
    free(need);
    free(live);
    free(stack);
    free(seen);
    free(rewalk);
    return rc;
}

void tw__ruleset_drop_gate(tw_ruleset *rs)
{
    free(rs->gnodes);
    free(rs->gkids);
    rs->gnodes = NULL;
    rs->gkids = NULL;
}
