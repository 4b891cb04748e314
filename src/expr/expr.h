/*
 * expr/expr.h: small expressions over an event: the "facts" a rule computes once per matched event
 * for its alerts' templates (a table's monthly price, a caller's display name) (internal).
 *
 * Ownership: a compiled tw_expr owns its syntax tree (tw__expr_free). tw__expr_eval builds its result
 * in the caller's document (env->doc) or returns a node of the event, data or names it was given:
 * the result lives as long as the longest-lived of those.
 *
 * Language (docs/FACTS.md): numbers, "strings" / 'strings', true, false, null; `$` the event with
 * JSONPath steps (`$.detail.a`, `$.a[0]`, `$['a.b']`, `$.a[*].b` collects a list); `data.NAME...`
 * the configuration's data tables; earlier facts by name; any value followed by `.name`, `[expr]`
 * or `[*]`; `+ - * / %` on numbers; `== != < <= > >=`; `and or not`; functions (tw__expr_functions).
 * Evaluation never fails on data: a missing field is null, arithmetic on something that is not a
 * number gives null, so a rule's alert is never lost to an unexpected event; only the caps below
 * (and memory) stop an evaluation.
 */
#ifndef TW_EXPR_EXPR_H
#define TW_EXPR_EXPR_H

#include <stddef.h>

#include "trailwatch/error.h"
#include "trailwatch/json.h"

/* An expression is configuration text: a line or a few (the DynamoDB price is ~150 bytes). */
#define TW_EXPR_TEXT_MAX 4096
/* Parentheses, calls and operators nest at most this deep (the parser recurses). */
#define TW_EXPR_DEPTH_MAX 64
/* Work per evaluation: nodes visited plus list elements produced ([*] over a big event array). */
#define TW_EXPR_STEPS_MAX 200000
/* A string an expression builds (format, concat, join): longer is cut, marked with an ellipsis. */
#define TW_EXPR_STRING_MAX 65536

typedef struct tw_expr tw_expr;

/* Compiles text. names[0..nnames-1] are the names the expression may use besides `data` and `$`
 * (the facts defined before it); an unknown name, function or a wrong number of arguments is an
 * error naming the column: "column 12: unknown name \"rcuu\"". */
tw_status tw__expr_compile(const char *text, size_t len, const char *const *names, size_t nnames, tw_expr **out,
                           tw_error *err);
void tw__expr_free(tw_expr *e);

typedef struct tw_expr_env {
    const tw_json *event;          /* what `$` is */
    const tw_json *extra;          /* an object whose members `$.NAME` finds before the event's own
                                      (facts, enrichment): NULL for none */
    const tw_json *data;           /* the object `data` is (NULL: data is null) */
    const tw_json *const *values;  /* the values of the compile-time names, in their order */
    tw_json_doc *doc;              /* where computed values are built */
} tw_expr_env;

/* Evaluates e; *out is never NULL on success (JSON null for "nothing"). */
tw_status tw__expr_eval(const tw_expr *e, const tw_expr_env *env, const tw_json **out, tw_error *err);

/* Calls fn once for every data table the expression names (`data.NAME` or `data['NAME']`), so a
 * configuration can check them against its `data:` at load time. */
void tw__expr_data_refs(const tw_expr *e, void (*fn)(void *ctx, const char *name, size_t len), void *ctx);

/* The function table, for the parser and docs: name, arity. */
typedef struct tw_expr_fn_info {
    const char *name;
    int min_args, max_args;        /* max_args -1: any number */
} tw_expr_fn_info;
extern const tw_expr_fn_info tw__expr_functions[];
extern const size_t tw__expr_nfunctions;

#endif
