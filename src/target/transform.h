/*
 * target/transform.h: EventBridge input transformation: Input, InputPath, InputTransformer (internal).
 *
 * Ownership: a compiled tw_transform is owned by the configuration (tw__transform_free); apply()
 * writes into a caller's tw_buf and reads the event tree only.
 *
 * Semantics: ../shared/reference/event-patterns.md, "Input transformation". Ours: values inserted
 * into a JSON template are escaped so the result is always valid JSON; when the destination is
 * Slack text, inserted values also escape & < > (see tw_xf_ctx.escape_text).
 */
#ifndef TW_TARGET_TRANSFORM_H
#define TW_TARGET_TRANSFORM_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "trailwatch/json.h"

typedef struct tw_transform tw_transform;

/* Compiles a binding's transformation. `binding` is the object holding at most one of
 * Input / InputPath / InputTransformer {InputPathsMap, InputTemplate} (also spelled input /
 * inputPath / inputTransformer {inputPathsMap, inputTemplate} as serverless.yml does). Returns
 * TW_OK with *out NULL when the binding has none. Errors (TW_ETRANSFORM) name the member:
 * "InputTransformer.InputTemplate: placeholder <x> is not defined in InputPathsMap". */
tw_status tw__transform_compile(const tw_json *binding, tw_transform **out, tw_error *err);
void tw__transform_free(tw_transform *xf);

typedef struct tw_xf_ctx {
    const char *rule_name;
    const char *rule_arn;
    int64_t ingestion_ms;          /* <aws.events.event.ingestion-time> */
    const char *event_text;        /* <aws.events.event.json> verbatim */
    size_t event_len;
    /* The target kind's text escaping for values inserted into text (Slack: & < >); NULL: none. */
    tw_status (*escape_text)(tw_buf *out, const char *s, size_t len);
    const tw_json *extra;          /* per-alert values ({"facts": ..., "enrichment": ...}) whose members
                                      paths find before the event's own ($.facts.x); NULL for none */
} tw_xf_ctx;

/* Applies xf to the event. *is_json tells whether the result is JSON text (else plain text). */
tw_status tw__transform_apply(const tw_transform *xf, const tw_json *event, const tw_xf_ctx *ctx, tw_buf *out,
                             int *is_json, tw_error *err);

/* Resolves a JSONPath of the forms $, $.a.b, $.a[0].b, $['a.b'] against v; NULL when it does not
 * resolve. Shared by InputPath, InputPathsMap and storm keys. */
const tw_json *tw__jsonpath_get(const tw_json *v, const char *path);
/* The same, where the members of extra (an object, may be NULL) stand as top-level members of v, found
 * before v's own: $.facts.price resolves in extra, $.detail in v. */
const tw_json *tw__jsonpath_get_in(const tw_json *v, const tw_json *extra, const char *path);
/* 1 when path is a JSONPath tw__jsonpath_get accepts. */
int tw__jsonpath_valid(const char *path);

#endif
