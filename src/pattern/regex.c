/* pattern/regex.c: PCRE2 with JIT for Sigma's `|re`, under match, depth and heap limits. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "pattern/regex.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>

#include "pattern/pattern_int.h"

struct tw__regex {
    pcre2_code *code;
    pcre2_match_context *mctx;  /* the limits; only read while matching */
};

int tw__regex_compile(const char *pat, size_t len, unsigned flags, tw__regex **out, char *why, size_t size)
{
    *out = NULL;
    if (len > TW_REGEX_MAX) {
        snprintf(why, size, "regular expression longer than %u bytes", TW_REGEX_MAX);
        return 0;
    }
    uint32_t opt = PCRE2_UTF | (flags & TW_MF_RE_I ? PCRE2_CASELESS : 0) |
                   (flags & TW_MF_RE_M ? PCRE2_MULTILINE : 0) | (flags & TW_MF_RE_S ? PCRE2_DOTALL : 0);
    int code;
    PCRE2_SIZE off;
    pcre2_code *c = pcre2_compile((PCRE2_SPTR)pat, len, opt, &code, &off, NULL);
    if (!c) {
        PCRE2_UCHAR msg[160];
        if (pcre2_get_error_message(code, msg, sizeof msg) < 0)
            snprintf((char *)msg, sizeof msg, "error %d", code);
        snprintf(why, size, "invalid regular expression at offset %zu: %s", (size_t)off, (const char *)msg);
        return 0;
    }
    tw__regex *re = calloc(1, sizeof *re);
    pcre2_match_context *m = pcre2_match_context_create(NULL);
    if (!re || !m) {
        pcre2_code_free(c);
        pcre2_match_context_free(m);
        free(re);
        snprintf(why, size, "out of memory");
        return 0;
    }
    /* JIT is an optimisation: without it (an unsupported CPU) the interpreter runs, limits included. */
    (void)pcre2_jit_compile(c, PCRE2_JIT_COMPLETE);
    pcre2_set_match_limit(m, TW_REGEX_MATCH_LIMIT);
    pcre2_set_depth_limit(m, TW_REGEX_DEPTH_LIMIT);
    pcre2_set_heap_limit(m, TW_REGEX_HEAP_LIMIT_KB);
    re->code = c;
    re->mctx = m;
    *out = re;
    return 1;
}

void tw__regex_free(tw__regex *re)
{
    if (!re)
        return;
    pcre2_code_free(re->code);
    pcre2_match_context_free(re->mctx);
    free(re);
}

/* PCRE2's allocations for one match come from the per-event arena, released with it. */
static void *arena_malloc(PCRE2_SIZE n, void *a) { return tw__arena_alloc(a, n); }
static void arena_free(void *p, void *a)
{
    (void)p;
    (void)a;
}

int tw__regex_match(const tw__regex *re, const char *s, size_t len, tw_arena *scratch, int *limited)
{
    pcre2_general_context *g = pcre2_general_context_create(arena_malloc, arena_free, scratch);
    pcre2_match_data *md = g ? pcre2_match_data_create(1, g) : NULL;
    if (!md)
        return 0;
    /* Event strings were validated as UTF-8 when the event was read. */
    int rc = pcre2_match(re->code, (PCRE2_SPTR)s, len, 0, PCRE2_NO_UTF_CHECK, md, re->mctx);
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH && limited)
        *limited = 1;
    return rc >= 0;
}
