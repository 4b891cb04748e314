/* pattern/contains.c: failure links over a flat trie (Aho-Corasick), built breadth first. */
#include "pattern/contains.h"

#include <stdlib.h>
#include <string.h>

int tw__ac_build(tw__ac *ac, tw__affix_key *keys, size_t n)
{
    memset(ac, 0, sizeof *ac);
    if (n == 1 && keys[0].len) {
        if (!(ac->one = malloc(keys[0].len)))
            return 0;
        memcpy(ac->one, keys[0].bytes, keys[0].len);
        ac->onelen = keys[0].len;
        ac->oneval = keys[0].value;
    }
    if (!tw__affix_build(&ac->trie, keys, n, 0)) {
        free(ac->one);
        ac->one = NULL;
        return 0;
    }
    const tw__affix *t = &ac->trie;
    ac->fail = calloc(t->nnodes, sizeof *ac->fail);
    ac->out = malloc(t->nnodes * sizeof *ac->out);
    uint32_t *queue = malloc(t->nnodes * sizeof *queue);
    if (!ac->fail || !ac->out || !queue) {
        free(queue);
        tw__ac_free(ac);
        return 0;
    }
    ac->out[0] = UINT32_MAX;
    size_t head = 0, tail = 0;
    for (uint32_t i = 0; i < t->nchild[0]; i++) {
        uint32_t c = t->child_off[0] + i;
        ac->starts[t->byte[c]] = 1;
        ac->fail[c] = 0;
        ac->out[c] = UINT32_MAX;
        queue[tail++] = c;
    }
    while (head < tail) {
        uint32_t u = queue[head++];
        for (uint32_t i = 0; i < t->nchild[u]; i++) {
            uint32_t v = t->child_off[u] + i;
            uint8_t b = t->byte[v];
            uint32_t f = ac->fail[u], g;
            while ((g = tw__affix_child(t, f, b)) == UINT32_MAX && f != 0)
                f = ac->fail[f];
            ac->fail[v] = g != UINT32_MAX && g != v ? g : 0;
            uint32_t fv = ac->fail[v];
            ac->out[v] = t->value[fv] != UINT32_MAX ? fv : ac->out[fv];
            queue[tail++] = v;
        }
    }
    free(queue);
    return 1;
}

void tw__ac_free(tw__ac *ac)
{
    tw__affix_free(&ac->trie);
    free(ac->fail);
    free(ac->out);
    free(ac->one);
    ac->fail = ac->out = NULL;
    ac->one = NULL;
}

size_t tw__ac_memory(const tw__ac *ac)
{
    return tw__affix_memory(&ac->trie) + (size_t)ac->trie.nnodes * 2 * sizeof(uint32_t) + ac->onelen;
}

void tw__ac_scan(const tw__ac *ac, const char *s, size_t len, tw__affix_fn fn, void *ctx)
{
    const tw__affix *t = &ac->trie;
    if (!t->nnodes)
        return;
    if (ac->one) { /* every occurrence, overlapping ones too, as the automaton reports them */
        for (const char *p = s, *end = s + len, *q; (size_t)(end - p) >= ac->onelen; p = q + 1) {
            if (!(q = memmem(p, (size_t)(end - p), ac->one, ac->onelen)))
                break;
            fn(ctx, ac->oneval);
        }
        return;
    }
    uint32_t node = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)s[i];
        if (node == 0 && !ac->starts[c])
            continue;   /* at the root, a byte no key starts with leads nowhere (and matches nothing) */
        uint32_t g;
        while ((g = tw__affix_child(t, node, c)) == UINT32_MAX && node != 0)
            node = ac->fail[node];
        node = g == UINT32_MAX ? 0 : g;
        if (t->value[node] != UINT32_MAX)
            fn(ctx, t->value[node]);
        for (uint32_t o = ac->out[node]; o != UINT32_MAX; o = ac->out[o])
            fn(ctx, t->value[o]);
    }
}
