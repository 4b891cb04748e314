/*
 * sigma/values.h: Sigma values on their way to matchers: wildcard and escape parsing, and the
 * transformation modifiers (expand, windash, base64, base64offset, utf16le/wide, utf16be, utf16)
 * (internal to src/sigma/).
 *
 * Ownership: every string is allocated in the caller's arena.
 */
#ifndef TW_SIGMA_VALUES_H
#define TW_SIGMA_VALUES_H

#include <stddef.h>

#include "common/arena.h"
#include "trailwatch/json.h"

typedef enum sg_vkind {
    SV_GLOB = 0,    /* text with TW_GLOB_STAR / TW_GLOB_ONE for the wildcards (escapes resolved) */
    SV_BYTES,       /* exact bytes, no wildcards (after an encoding modifier) */
    SV_RAW,         /* text exactly as written (regex, cidr, field reference) */
} sg_vkind;

typedef struct sg_val {
    sg_vkind kind;
    char *s;
    size_t n;
} sg_val;

typedef struct sg_vlist {
    sg_val *v;
    size_t n, cap;
    size_t max;     /* TW_SIGMA_EXPAND_MAX */
} sg_vlist;

/* Each returns NULL on success, else a static reason. */

/* Appends raw text as a value of kind (SV_GLOB: escapes and wildcards parsed). */
const char *tw__sv_add(tw_arena *a, sg_vlist *l, sg_vkind kind, const char *s, size_t n);
/* `%name%` placeholders in raw text, each replaced by every value the table lists for it (a cross
 * product); `\%` is a literal percent. The results are added to out as kind. *missing names the first
 * unknown placeholder (arena), with the reason "placeholder not configured". */
const char *tw__sv_expand(tw_arena *a, const tw_json *table, const char *s, size_t n, sg_vkind kind, sg_vlist *out,
                          const char **missing);
/* In place on a list: */
const char *tw__sv_windash(tw_arena *a, sg_vlist *l);
const char *tw__sv_base64(tw_arena *a, sg_vlist *l, int offsets);
const char *tw__sv_utf16(tw_arena *a, sg_vlist *l, int big_endian, int bom);

/* 1 when a glob value has a wildcard. */
int tw__sv_has_wild(const sg_val *v);

#endif
