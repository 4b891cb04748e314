/*
 * target/kinds.h: the target kinds and what they share: settings, message text and JSON building
 * (internal to src/target/).
 *
 * Ownership: settings helpers return malloc'd copies that the kind's impl owns (its release frees
 * them); the settings tree itself belongs to the configuration loader and is not kept. A tw_jb owns
 * its tree until tw__jb_finish writes and frees it.
 */
#ifndef TW_TARGET_KINDS_H
#define TW_TARGET_KINDS_H

#include <stddef.h>
#include <stdint.h>

#include "target/target.h"
#include "trailwatch/trailwatch.h"

extern const tw_target_ops tw__target_slack;
extern const tw_target_ops tw__target_webhook;
extern const tw_target_ops tw__target_teams;
extern const tw_target_ops tw__target_discord;
extern const tw_target_ops tw__target_pagerduty;
extern const tw_target_ops tw__target_exec;
extern const tw_target_ops tw__target_file;
extern const tw_target_ops tw__target_console;

#define TW_USER_AGENT "trailwatch/" TW_VERSION
#define TW_URL_MAX 2048                 /* EventBridge API destination endpoints: <= 2048 characters */

/* ---- settings ---- */

/* A string setting (numbers and booleans are taken as written, as YAML users expect), malloc'd into
 * *out; NULL when absent and not required. Errors name the setting, never its value. */
tw_status tw__setting_str(const tw_json *settings, const char *name, int required, char **out, tw_error *err);
/* An http(s) URL setting. The value is a secret (webhook URLs carry tokens): errors never show it. */
tw_status tw__setting_url(const tw_json *settings, const char *name, int required, char **out, tw_error *err);
/* A mapping setting of string values (env, headers), or NULL when absent. */
tw_status tw__setting_map(const tw_json *settings, const char *name, const tw_json **out, tw_error *err);
/* TW_ECONFIG when settings holds a key not in known (NULL-terminated): "unknown setting \"urll\"
 * (did you mean \"url\"?)". A misspelled optional setting must not be silently ignored. */
tw_status tw__setting_known(const tw_json *settings, const char *const *known, tw_error *err);
/* A scalar as text ("8080", "true"), or NULL for arrays, objects and null. */
const char *tw__scalar_text(const tw_json *v, char *tmp, size_t tmplen);

/* ---- text ---- */

/* How tw__put_text escapes: not at all, Slack mrkdwn (& < >), Markdown (Discord, Teams cards). */
enum { TW_TEXT_PLAIN = 0, TW_TEXT_SLACK = 1, TW_TEXT_MARKDOWN = 2 };
/* Appends s, escaped for mode, keeping the appended part within max bytes: a cut falls on a UTF-8
 * character boundary, never inside an escape, and is marked with "…". */
tw_status tw__put_text(tw_buf *b, const char *s, size_t n, size_t max, int mode);
/* Length of the longest prefix of s (n bytes) of at most max bytes that ends on a character boundary. */
size_t tw__utf8_prefix(const char *s, size_t n, size_t max);

/* Per severity (critical | high | medium | low | info, anything else counts as medium). */
const char *tw__sev_emoji(const char *severity);      /* Slack emoji code */
uint32_t tw__sev_color(const char *severity);         /* 0xRRGGBB */
/* 1 when s starts like an ISO-8601 time ("2018-01-12T18:06:01"): destinations reject bad ones. */
int tw__iso_time(const char *s);
/* "5m", "90s", "2h" for a storm window. */
void tw__duration_text(int64_t ms, char *out, size_t outlen);

/* ---- JSON building (tree builders with out-of-memory remembered, checked once at the end) ---- */

typedef struct tw_jb {
    tw_json_doc *d;
    int failed;
} tw_jb;

tw_status tw__jb_init(tw_jb *jb);
tw_json *tw__jb_obj(tw_jb *jb);
tw_json *tw__jb_arr(tw_jb *jb);
tw_json *tw__jb_str(tw_jb *jb, const char *s);      /* NULL s: "" */
tw_json *tw__jb_strn(tw_jb *jb, const char *s, size_t n);
tw_json *tw__jb_int(tw_jb *jb, int64_t v);
tw_json *tw__jb_lit(tw_jb *jb, tw_json_type t);      /* null, true, false */
tw_json *tw__jb_copy(tw_jb *jb, const tw_json *v);
/* Adds key: v to obj (or v to arr) and returns v, so calls nest. NULL in, NULL out. */
tw_json *tw__jb_put(tw_jb *jb, tw_json *obj, const char *key, tw_json *v);
tw_json *tw__jb_push(tw_jb *jb, tw_json *arr, tw_json *v);
/* Records a failure that happened beside the tree (a scratch tw_buf's sticky error, facts that
 * could not be composed): tw__jb_finish then fails. Returns rc. */
tw_status tw__jb_check(tw_jb *jb, tw_status rc);
/* A string node from a scratch buffer's text; its error (tw_buf_error) fails the builder. */
tw_json *tw__jb_buf(tw_jb *jb, const tw_buf *b, size_t n);
/* Writes root's JSON text into out and frees the tree; fails when anything failed on the way
 * (a node, a checked buffer, out itself). */
tw_status tw__jb_finish(tw_jb *jb, const tw_json *root, tw_buf *out, tw_error *err);

/* The alert's transformed input parsed as JSON into *v (a->input_is_json), else *v NULL (text, or
 * not parseable: shown as text). TW_ENOMEM when it could not be parsed for want of memory; *doc
 * is to be freed either way. */
tw_status tw__input_json(const tw_alert_ctx *a, tw_json_doc **doc, const tw_json **v);

/* file and console: the transformation's result or the event, JSON compacted to one line. */
tw_status tw__render_line(const void *impl, const tw_alert_ctx *a, tw_buf *out, tw_error *err);
/* The event as the body (its text as received; compact: re-written on one line); a storm summary
 * gets a "trailwatch" member, {"storm":{"suppressed":N,"window_seconds":S}}: the identical alerts it
 * stands for. */
tw_status tw__write_event(tw_buf *out, const tw_alert_ctx *a, int compact);

/* ---- HTTP ---- */

/* tw__target_http_default in the shape of tw_target_ops.http_classify, for kinds whose responses
 * mean nothing beyond their status. */
tw_outcome tw__classify_default(const void *impl, long status, const char *body, size_t len, int64_t ra_header,
                                int64_t *retry_after_ms);

/* Starts a delivery: url, method, Content-Type: application/json and User-Agent. */
void tw__prep_init(tw_http_prep *prep, const char *url, const char *method);
/* Adds one "Name: value" header line; TW_ELIMIT when it does not fit (too many, too long). */
tw_status tw__prep_add(tw_http_prep *prep, const char *name, const char *value, tw_error *err);
/* http_prepare of the kinds whose deliveries need only their URL (POST, JSON, User-Agent). Their
 * impl starts with the URL: `char *url` is its first member. */
tw_status tw__http_prepare_url(const void *impl, const char *idem_key, tw_http_prep *prep, tw_error *err);

#endif
