/*
 * expr/expr_int.h: the compiled form of an expression, shared by the parser (expr.c), the evaluator
 * (expr_eval.c) and the functions (expr_fn.c) (internal to src/expr).
 *
 * Ownership: every node, step and string lives in the tw_expr's arena.
 */
#ifndef TW_EXPR_EXPR_INT_H
#define TW_EXPR_EXPR_INT_H

#include <stddef.h>

#include "common/arena.h"
#include "common/buf.h"
#include "expr/expr.h"

typedef enum {
    XN_LITERAL,        /* lit: a number, string, true, false or null */
    XN_ROOT,           /* $ */
    XN_DATA,           /* data */
    XN_NAME,           /* ref: index of a compile-time name */
    XN_CALL,           /* fn with args */
    XN_NEG,            /* - args[0] */
    XN_NOT,            /* not args[0] */
    XN_BINARY,         /* args[0] op args[1] */
    XN_PATH,           /* args[0] followed by steps */
} xnode_kind;

enum { XOP_ADD = 1, XOP_SUB, XOP_MUL, XOP_DIV, XOP_MOD, XOP_EQ, XOP_NE, XOP_LT, XOP_LE, XOP_GT, XOP_GE, XOP_AND, XOP_OR };

typedef enum { XS_NAME, XS_INDEX, XS_WILD } xstep_kind;

typedef struct xnode xnode;

typedef struct xstep {
    xstep_kind kind;
    const char *name;  /* XS_NAME */
    size_t len;
    xnode *index;      /* XS_INDEX: a number (array index) or a string (member name) */
} xstep;

struct xnode {
    xnode_kind kind;
    int op;            /* XN_BINARY */
    int fn;            /* XN_CALL: index in tw__expr_functions */
    int ref;           /* XN_NAME */
    tw_json *lit;      /* XN_LITERAL: in the expression's own document */
    xnode **args;
    size_t nargs;
    xstep *steps;      /* XN_PATH */
    size_t nsteps;
    int multi;         /* XN_PATH: a [*] step makes the result a list */
};

struct tw_expr {
    tw_arena arena;
    tw_json_doc *lits; /* literal values */
    xnode *root;
};

/* The evaluation of one expression: the environment and the work done so far. */
typedef struct xeval {
    const tw_expr_env *env;
    size_t steps;
    tw_error *err;
    tw_status rc;      /* set on the first failure (caps, memory); evaluation then unwinds */
} xeval;

const tw_json *tw__xeval(xeval *x, const xnode *n);
/* Node builders for results, in env->doc; NULL (and x->rc set) when out of memory. */
const tw_json *tw__xnull(xeval *x);
const tw_json *tw__xbool(xeval *x, int v);
const tw_json *tw__xnum(xeval *x, double v);
const tw_json *tw__xstr(xeval *x, const char *s, size_t len);
/* Truthiness: null, false, 0, "", [] and {} are false. */
int tw__xtruthy(const tw_json *v);
/* A number from a number or a numeric string; 0 when it is neither. */
int tw__xnumber(const tw_json *v, double *out);
/* Appends v as text (strings as they are, numbers as written, others as JSON). */
tw_status tw__xtext(tw_buf *b, const tw_json *v);
/* Calls function fn with evaluated arguments (the evaluator evaluates lazily for `if` and `coalesce`). */
const tw_json *tw__xcall(xeval *x, const xnode *n);

#endif
