/* pattern/kids.c: a node's edges as a small open-addressing table by key signature (ruleset_int.h). */
#include "pattern/ruleset_int.h"

uint32_t tw__kids_layout(tw__node *nodes, uint32_t nnodes)
{
    uint32_t total = 0;
    for (uint32_t i = 0; i < nnodes; i++) {
        tw__node *n = &nodes[i];
        n->kid_off = total;
        n->kmask = 0;
        if (!n->nkids || n->nkids > TW_NODE_KIDS_MAX)
            continue;
        /* at least twice the edges: a probe ends at an empty slot; at most 64, the signatures' range */
        uint32_t size = 2;
        while (size < 2 * n->nkids && size < 64)
            size *= 2;
        n->kmask = (uint16_t)(size - 1);
        total += size;
    }
    return total;
}

void tw__kids_empty(tw__kid *kids, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        kids[i] = (tw__kid){0, 0, 0, TW_NONE};
}

void tw__kids_put(const tw__node *nodes, tw__kid *kids, uint32_t from, const char *keypool, uint32_t koff,
                  uint32_t klen, uint32_t to)
{
    const tw__node *n = &nodes[from];
    if (!n->nkids || n->nkids > TW_NODE_KIDS_MAX)
        return;
    const char *key = keypool + koff;
    tw__kid *k = kids + n->kid_off;
    uint32_t i = tw__key_sig(key, klen) & n->kmask;
    while (k[i].to != TW_NONE)
        i = (i + 1) & n->kmask;
    k[i] = (tw__kid){tw__key_head(key, klen), klen, koff, to};
}
