/*
 * target/transform_int.h: a compiled input transformation, shared by its compiler (transform.c) and
 * its applier (transform_apply.c) (internal).
 *
 * Ownership: every string and array of a tw_transform lives in its arena.
 */
#ifndef TW_TARGET_TRANSFORM_INT_H
#define TW_TARGET_TRANSFORM_INT_H

#include <stddef.h>

#include "common/arena.h"
#include "target/transform.h"

/* AWS limits (PutTargets model): Input and InputTemplate 8192, InputPath 256, 100 variables. */
#define XF_TEXT_MAX 8192
#define XF_PATH_MAX 256
#define XF_VARS_MAX 100
#define XF_NAME_MAX 256
/* A template may repeat <aws.events.event.json>; the result is capped so that one hostile or
 * careless template cannot turn a 256 KiB event into hundreds of megabytes of outbox. */
#define XF_OUTPUT_BASE (1024u * 1024u)

enum { XF_MODE_INPUT, XF_MODE_PATH, XF_MODE_TEMPLATE };
enum { XF_AT_TEXT, XF_AT_STRING, XF_AT_VALUE };        /* where a placeholder sits */
enum { XF_P_RULE_ARN = 1, XF_P_RULE_NAME, XF_P_INGESTION, XF_P_EVENT, XF_P_EVENT_JSON };

/* The predefined placeholders' names, by P_* id. */
extern const char *const tw__xf_predefined[];

typedef struct xf_var {
    const char *name;
    const char *path;
} xf_var;

typedef struct xf_seg {
    const char *lit;        /* literal run (points into text), or NULL for a placeholder */
    size_t len;
    int var;                /* placeholder: index in vars, or -predefined id */
    int at;
} xf_seg;

struct tw_transform {
    tw_arena arena;
    int mode;
    int json;               /* the template is JSON */
    const char *text;       /* Input (JSON text), InputPath, or InputTemplate */
    size_t len;
    xf_var *vars;
    size_t nvars;
    xf_seg *segs;
    size_t nsegs;
};

#endif
