/*
 * fuzz/fuzz_regex_lit_body.h: the checks of fuzz_regex_lit (see fuzz_common.h for how bodies are
 * shared).
 *
 * Input: one flags byte (bit 0: caseless), then a regular expression up to the first newline, then
 * a subject (the rest). The literal tw__regex_literal reads from the expression files a `|re` Sigma
 * value under a contains key, so a value without it is never tested by the expression:
 *   1. The literal is 0 or at least 2 bytes, and no longer than the expression.
 *   2. Differential: when PCRE2 compiles the expression and it matches the (valid UTF-8) subject,
 *      the subject contains the literal (caseless: the case-folded subject does).
 */
#ifndef TW_FUZZ_REGEX_LIT_BODY_H
#define TW_FUZZ_REGEX_LIT_BODY_H

#include "common/arena.h"
#include "common/buf.h"
#include "common/utf8.h"
#include "fuzz_common.h"
#include "pattern/casefold.h"
#include "pattern/pattern_int.h"
#include "pattern/regex.h"

FUZZ_FN void fuzz_regex_lit_init(void) {}
FUZZ_FN void fuzz_regex_lit_fini(void) {}

FUZZ_FN void fuzz_regex_lit_check(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return;
    int caseless = data[0] & 1;
    const char *pat = (const char *)data + 1;
    const char *nl = memchr(pat, '\n', size - 1);
    size_t plen = nl ? (size_t)(nl - pat) : size - 1;
    const char *subj = nl ? nl + 1 : "";
    size_t slen = nl ? size - 1 - plen - 1 : 0;
    char *lit = malloc(plen + 1);
    FUZZ_SETUP(lit, "malloc");
    size_t n = tw__regex_literal(pat, plen, caseless, lit);
    FUZZ_CHECK(n == 0 || (n >= 2 && n <= plen), "literal of %zu bytes from an expression of %zu", n, plen);
    tw__regex *re = NULL;
    char why[200];
    if (n && tw__utf8_check(subj, slen) == slen &&
        tw__regex_compile(pat, plen, caseless ? TW_MF_RE_I : 0, &re, why, sizeof why)) {
        tw_arena scratch = TW_ARENA_INIT;
        int limited = 0;
        if (tw__regex_match(re, subj, slen, &scratch, &limited)) {
            tw_buf folded = TW_BUF_INIT;
            const char *hay = subj;
            size_t hlen = slen;
            if (caseless) {
                FUZZ_SETUP(tw__casefold(subj, slen, &folded) == TW_OK, "tw__casefold");
                hay = folded.data;
                hlen = folded.len;
            }
            FUZZ_CHECK(memmem(hay, hlen, lit, n) != NULL, "/%.*s/%s matches a subject without \"%.*s\"",
                       (int)plen, pat, caseless ? "i" : "", (int)n, lit);
            tw__buf_free(&folded);
        }
        tw__arena_free(&scratch);
        tw__regex_free(re);
    }
    free(lit);
}

#endif
