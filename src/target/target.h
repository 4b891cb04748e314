/*
 * target/target.h: destinations for alerts behind one small interface (internal).
 *
 * Ownership: a kind's settings are parsed once by ops->configure into an impl the configuration owns
 * (freed by ops->release). render() writes into a caller's tw_buf. Nothing here keeps state between
 * calls, so every function may be called from any thread.
 *
 * An alert is rendered once, when it is created, and the rendered body is what the outbox stores and
 * what a dead letter shows. Secrets (URLs with tokens, keys, passwords) are NOT in the body: they are
 * added at send time by http_prepare from the current configuration.
 *
 * Kinds: slack, webhook, teams, discord, pagerduty (HTTP); exec, file, console (local).
 */
#ifndef TW_TARGET_TARGET_H
#define TW_TARGET_TARGET_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "trailwatch/json.h"

typedef enum tw_transport {
    TW_TRANSPORT_HTTP = 0,
    TW_TRANSPORT_EXEC,
    TW_TRANSPORT_FILE,
    TW_TRANSPORT_CONSOLE,
} tw_transport;

/* Everything a kind may use to render one alert. */
typedef struct tw_alert_ctx {
    const tw_json *event;          /* the EventBridge event (envelope), parsed */
    const char *event_text;        /* ... and as text */
    size_t event_len;
    const char *rule_name;
    const char *rule_description;  /* "" when none */
    const char *severity;          /* critical | high | medium | low | info */
    const char *rule_arn;          /* arn:aws:events:REGION:ACCOUNT:rule/NAME */
    /* The rule's input transformation result for this target; NULL when the rule has none, and the
     * kind then renders its own default message for the event. */
    const char *input;
    size_t input_len;
    int input_is_json;             /* input is a JSON value (object, array, quoted string, ...),
                                      else plain text (a template that is not JSON) */
    uint64_t storm_count;          /* > 1: stands for this many identical alerts in the storm window */
    int64_t storm_window_ms;
    const char *idempotency_key;   /* stable per (event, rule, target): destinations may dedupe on it */
    const tw_json *extra;          /* the rule's facts and enrichment ({"facts": {...}}), NULL for none:
                                      default messages may show them */
} tw_alert_ctx;

/* What an HTTP delivery adds at send time. */
#define TW_HTTP_MAX_HEADERS 32
typedef struct tw_http_prep {
    const char *url;               /* borrowed from impl */
    const char *method;            /* "POST" unless the kind says otherwise */
    uint32_t nheaders;
    char headers[TW_HTTP_MAX_HEADERS][512]; /* "Name: value" lines (Content-Type, auth, idempotency) */
} tw_http_prep;

#define TW_RETRY_AFTER_NONE (-1)       /* retry_after_header_ms when there is no Retry-After */

typedef enum tw_outcome {
    TW_OUTCOME_DELIVERED = 0,
    TW_OUTCOME_RETRY,              /* transient: try again later (5xx, 408, 429, timeouts, refused) */
    TW_OUTCOME_PERMANENT,          /* will never work: dead-letter now (other 4xx, bad command) */
} tw_outcome;

/* Kind policy: what a target of this kind gets unless its configuration says otherwise, and how the
 * kind's destinations want to be treated. Read by the configuration loader (defaults, paths), the
 * engine (text escaping) and the dispatcher (ordering): no other module names a kind. */
typedef struct tw_target_policy {
    double rate_per_second;        /* default rate limit per target; 0: unlimited */
    double rate_burst;
    int64_t timeout_ms;            /* default per-attempt timeout */
    /* Deliveries in flight at once per target. 1 keeps the alerts in order (chat channels, where
     * the order is what people read; local kinds, which run on the shared workers). */
    uint32_t concurrency;
    /* Escapes event text inserted into the kind's message text by an input transformation (Slack:
     * & < >, so event data cannot ping or link; Discord, Teams: Markdown); NULL: inserted as is. */
    tw_status (*escape_text)(tw_buf *out, const char *s, size_t len);
    /* Settings that name files, resolved against the configuration's folder when relative
     * (NULL-terminated; NULL: none). */
    const char *const *path_settings;
    /* 1: without an input transformation the kind renders the event's text alone (its parsed tree,
     * tw_alert_ctx.event, may be NULL then: the engine parses an event only for what needs it). */
    int text_only;
} tw_target_policy;

typedef struct tw_target_ops {
    const char *kind;              /* "slack", ... as written in configuration */
    tw_transport transport;
    tw_target_policy policy;
    /* Validates and keeps the kind's settings (the target's mapping in the configuration, with
     * ${VAR} already substituted). Errors name the setting: "url: must be an http(s) URL". */
    tw_status (*configure)(const tw_json *settings, void **impl, tw_error *err);
    void (*release)(void *impl);
    /* The body to deliver for one alert: the kind's own message for the event. Call through
     * tw__target_render, which picks render_input when the rule transforms the input. */
    tw_status (*render)(const void *impl, const tw_alert_ctx *a, tw_buf *out, tw_error *err);
    /* Optional: the body when the rule has an input transformation (a->input set); NULL: render
     * handles both. */
    tw_status (*render_input)(const void *impl, const tw_alert_ctx *a, tw_buf *out, tw_error *err);
    /* HTTP kinds: the URL, method and headers of a delivery (idem_key: the alert's idempotency key). */
    tw_status (*http_prepare)(const void *impl, const char *idem_key, tw_http_prep *prep, tw_error *err);
    /* HTTP kinds: what a response means. *retry_after_ms is set (else left -1) from Retry-After or
     * the body (Discord's retry_after). retry_after_header_ms is TW_RETRY_AFTER_NONE (-1) when the
     * response has no Retry-After; any other negative value is a negative Retry-After, which means
     * "stop retrying" (EventBridge API destinations) and makes the outcome permanent. */
    tw_outcome (*http_classify)(const void *impl, long status, const char *body, size_t len,
                                int64_t retry_after_header_ms, int64_t *retry_after_ms);
    /* Local kinds: deliver synchronously (exec: run the command with the body on stdin). On failure
     * writes a short reason into why (no secrets). */
    tw_outcome (*deliver_local)(const void *impl, const char *body, size_t len, int64_t timeout_ms,
                                char *why, size_t why_len);
    /* Optional (NULL for most kinds): the body actually sent, built at send time from the stored one,
     * for kinds whose body must carry a secret (PagerDuty's routing_key), which the outbox must not
     * hold. */
    tw_status (*finalize_body)(const void *impl, const char *body, size_t len, tw_buf *out);
} tw_target_ops;

/* The kind named `kind`, or NULL. */
const tw_target_ops *tw__target_kind(const char *kind);
/* The i-th kind of the registry (0, 1, ...), NULL past the last: the one list of kinds. */
const tw_target_ops *tw__target_kind_at(size_t i);
/* Writes "slack, webhook, ..., console" (the kinds, for messages) into buf, cut to len. */
const char *tw__target_kind_list(char *buf, size_t len);

/* Renders one alert with its target's kind into out (render_input or render, see tw_target_ops). */
tw_status tw__target_render(const tw_target_ops *ops, const void *impl, const tw_alert_ctx *a, tw_buf *out,
                           tw_error *err);

/* Default HTTP classification shared by the kinds: 2xx delivered; 408, 429, 5xx retry; other 4xx
 * permanent; Retry-After honoured. Also: no response (status <= 0) retry; 1xx and 3xx permanent
 * (as EventBridge API destinations); a negative Retry-After permanent. */
tw_outcome tw__target_http_default(long status, int64_t retry_after_header_ms, int64_t *retry_after_ms);

/* Asks local deliveries in progress (exec) to stop now: the program's process group is killed and
 * the outcome is a retry. Used when a stop's drain time is up; 0 lets deliveries run again. */
void tw__target_cancel_local(int on);

/* Extra environment for exec targets (Lambda-style handlers): "NAME=value" lines in a malloc'd,
 * NULL-terminated array the caller frees (each line and the array). The server installs one that
 * gives trailwatch's own AWS settings (region, configured endpoints, resolved credentials), so a
 * handler's boto3 reaches AWS (or moto) exactly as trailwatch does. NULL uninstalls. */
typedef char **(*tw_exec_env_fn)(void *ctx);
void tw__target_exec_env(tw_exec_env_fn fn, void *ctx);

/* The version ("3.11") of the python3 on PATH that Python handlers run on (asked once per process),
 * "" when there is none: a serverless.yml that says python3.6 is told what it really runs on. */
const char *tw__exec_python_version(void);

/* Slack mrkdwn text from untrusted event data: escapes & < > so that "<!channel>", "<@U123>" and
 * "<http://x|y>" coming from an event cannot ping or link. */
tw_status tw__slack_escape(tw_buf *out, const char *s, size_t len);
/* Markdown text (Discord, Teams cards) from untrusted event data: a backslash before each character
 * that starts markup (links "[text](url)", emphasis, code, quotes, headings), so that event data
 * shows as written and cannot dress a link up as other text. */
tw_status tw__markdown_escape(tw_buf *out, const char *s, size_t len);
/* The escape of one character, NULL when it needs none. */
const char *tw__markdown_escape_char(char c);

#endif
