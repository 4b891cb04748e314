/*
 * pattern/pattern_int.h: a validated pattern, its matchers, and how one matcher tests one value
 * (internal to src/pattern/).
 *
 * Ownership: a tw_pattern owns (in its arena) its conjunctions, leaves, matchers and their strings.
 * The compiled rule set copies what it keeps, so a pattern may be freed once added to a builder.
 *
 * A pattern is kept in disjunctive normal form: every $or multiplied out into conjunctions; each
 * conjunction is a list of leaves (one dotted field path and the matchers OR-ed on it).
 */
#ifndef TW_PATTERN_PATTERN_INT_H
#define TW_PATTERN_PATTERN_INT_H

#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "trailwatch/pattern.h"

typedef enum tw__mkind {
    TW_M_STRING = 0,     /* exact string (byte-exact) */
    TW_M_NUMBER,         /* exact number (numeric, or by text when not exact in a double) */
    TW_M_NULL,
    TW_M_TRUE,
    TW_M_FALSE,
    TW_M_PREFIX,
    TW_M_SUFFIX,
    TW_M_PREFIX_EIC,     /* prefix, case-folded (s holds the folded prefix) */
    TW_M_SUFFIX_EIC,
    TW_M_EIC,            /* equals-ignore-case (s holds the folded string) */
    TW_M_WILDCARD,
    TW_M_NUMERIC,        /* range */
    TW_M_EXISTS,         /* exists: true (exists: false is a leaf flag, not a value test) */
    TW_M_CIDR,
    TW_M_ANYTHING_BUT,   /* matches a present value that none of `list` matches */
    TW_M_GLOB,           /* Sigma wildcard: `*` any run, `?` one character; case-folded unless
                            flags & TW_MF_CASED (wc: segments between stars, TW_GLOB_ONE for `?`) */
    TW_M_REGEX,          /* PCRE2, unanchored (s: the expression, flags: TW_MF_RE_*; compiled and
                            owned by the rule set, see regex.h) */
    TW_M_TIMEPART,       /* Sigma time modifiers: a part of an ISO 8601 date string (flags: TW_TP_*)
                            compared with the bounds, as TW_M_NUMERIC */
    TW_M_KIND_COUNT_
} tw__mkind;

enum { TW_TP_MINUTE = 1, TW_TP_HOUR, TW_TP_DAY, TW_TP_WEEK, TW_TP_MONTH, TW_TP_YEAR };

typedef struct tw__wildcard {
    uint32_t nseg;            /* segments between stars; nseg = stars + 1 */
    const char **seg;         /* unescaped segment bytes */
    uint32_t *seglen;
} tw__wildcard;

/* A Sigma glob as matcher text (TW_M_GLOB's s): these two bytes never occur in UTF-8, so they stand
 * for the wildcards while every other byte is literal (escapes already resolved). */
#define TW_GLOB_STAR ((char)0xfe)
#define TW_GLOB_ONE ((char)0xff)

/* tw__matcher.flags */
#define TW_MF_CASED 1u        /* TW_M_GLOB: compare bytes as they are */
#define TW_MF_RE_I 1u         /* TW_M_REGEX: PCRE2_CASELESS */
#define TW_MF_RE_M 2u         /* PCRE2_MULTILINE */
#define TW_MF_RE_S 4u         /* PCRE2_DOTALL */

typedef struct tw__matcher tw__matcher;
struct tw__matcher {
    uint8_t kind;             /* tw__mkind */
    uint8_t sigma;            /* Sigma value shapes: numbers and booleans are tested as their JSON
                                 text by the string kinds, numeric strings by TW_M_NUMERIC */
    uint8_t flags;            /* TW_MF_* */
    uint8_t num_exact;        /* TW_M_NUMBER: the literal survives a double */
    uint8_t lo_incl, hi_incl; /* TW_M_NUMERIC */
    uint8_t has_lo, has_hi;
    uint8_t family, bits;     /* TW_M_CIDR: 4 or 6, prefix length */
    uint32_t len;             /* bytes of s */
    const char *s;            /* string operand; number literal text for TW_M_NUMBER */
    double d;                 /* TW_M_NUMBER value */
    double lo, hi;            /* TW_M_NUMERIC bounds */
    uint8_t addr[16];         /* TW_M_CIDR network address, host bits cleared */
    tw__wildcard wc;          /* TW_M_WILDCARD, TW_M_GLOB */
    const void *re;           /* TW_M_REGEX in a rule set: its compiled tw__regex */
    uint32_t nlist;           /* TW_M_ANYTHING_BUT: the excluded forms */
    tw__matcher *list;
};

typedef struct tw__leaf {
    const char *path;         /* dotted field path, NUL-terminated */
    uint32_t plen;
    uint8_t exists_false;     /* also satisfied when the field has no value */
    uint8_t deep;             /* Sigma: the field's deep reading (its scalars and those of every
                                 object or array below it, see ruleset_int.h) */
    uint32_t nm;              /* value matchers, OR-ed */
    tw__matcher *m;
} tw__leaf;

typedef struct tw__conj {
    uint32_t n;
    tw__leaf **leaves;
} tw__conj;

struct tw_pattern {
    tw_arena arena;
    uint32_t nconj;
    tw__conj *conj;
};

/* ---- testing one event value ---- */

/* An event value as the matcher sees it: strings decoded, numbers parsed on demand. */
typedef struct tw__value {
    const char *s;            /* string bytes, or the number literal */
    uint32_t len;
    uint8_t type;             /* tw_json_type (an object or array only as a deep field's presence) */
    uint8_t interp;           /* which reading of the event recorded it (see execute.c) */
    uint8_t have_num;         /* num is valid */
    uint8_t have_fold;        /* fold/flen are valid */
    uint8_t ip_family;        /* 0: not parsed yet; 4 / 6: ip holds the address; 255: not an IP */
    uint32_t elem;            /* innermost array element holding it that constrains (0: none) */
    uint32_t next;            /* next value of the same field: index + 1, 0 ends */
    double num;
    const char *fold;         /* case-folded string (equals-ignore-case forms) */
    uint32_t flen;
    uint8_t ip[16];           /* the string as an address, when ip_family is 4 or 6 */
} tw__value;

/* 1 when m accepts v. scratch is the per-event arena (reset per event by the matcher) where v's
 * case folding is kept once computed. */
int tw__matcher_test(const tw__matcher *m, tw__value *v, tw_arena *scratch);

/* Lazily computed forms of a value, shared by the tests and the anchor index. */
double tw__value_number(tw__value *v);
/* NULL only when out of memory. */
const char *tw__value_fold(tw__value *v, tw_arena *scratch, uint32_t *len);
/* Exact-number equality with the "survives a double, else compare text" rule. */
int tw__number_equal(const tw__matcher *m, tw__value *v);

/* ---- building matchers (parse.c) ---- */

/* Splits and validates a wildcard; on error returns a static reason. */
const char *tw__wildcard_compile(tw_arena *a, const char *s, size_t len, unsigned max_stars,
                                 tw__wildcard *out);
int tw__wildcard_match(const tw__wildcard *wc, const char *s, size_t len);
/* A glob (TW_GLOB_STAR / TW_GLOB_ONE text, see above) split at its stars; reason on error. */
const char *tw__glob_compile(tw_arena *a, const char *s, size_t len, unsigned max_stars, tw__wildcard *out);
/* s must be valid UTF-8 (`?` takes one character). */
int tw__glob_match(const tw__wildcard *g, const char *s, size_t len);
/* The part (TW_TP_*) of an ISO 8601 date-time text ("2021-07-28T12:34:56Z"), as written (no time
 * zone conversion); 0 when the text is not one. */
int tw__time_part(const char *s, size_t len, int part, double *out);
/* Parses "addr/bits" (IPv4 or IPv6); returns a static reason on error. */
const char *tw__cidr_parse(const char *s, size_t len, tw__matcher *m);
int tw__cidr_match(const tw__matcher *m, tw__value *v);
/* The value as an IP address (parsed once, cached in v): 4, 6, or 0 when it is not one. */
int tw__value_ip(tw__value *v);
/* Clears the bits of a (total bits long) past the first `bits`. */
void tw__cidr_mask(uint8_t *a, unsigned bits, unsigned total);

#endif
