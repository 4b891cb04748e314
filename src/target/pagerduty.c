/* target/pagerduty.c: PagerDuty Events API v2 ("trigger" events).
 *
 * The routing key is a secret that PagerDuty wants in the body, and the body is what the outbox and
 * dead letters keep: render() writes the event without it and finalize_body() adds it at send time.
 * dedup_key is the alert's idempotency key, so a retried delivery updates the same incident. */
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "json/json_int.h"
#include "target/facts.h"
#include "target/kinds.h"

#define PD_URL "https://events.pagerduty.com/v2/enqueue"
#define SUMMARY_MAX 1024
#define DEDUP_MAX 255

typedef struct pagerduty {
    char *url;                     /* first: tw__http_prepare_url reads it */
    char *routing_key;
} pagerduty;

static void release(void *impl)
{
    pagerduty *p = impl;
    if (!p)
        return;
    if (p->routing_key)
        memset(p->routing_key, 0, strlen(p->routing_key));
    free(p->routing_key);
    free(p->url);
    free(p);
}

static tw_status configure(const tw_json *settings, void **impl, tw_error *err)
{
    static const char *const known[] = {"routing_key", "url", NULL};
    if (tw__setting_known(settings, known, err))
        return err ? err->code : TW_ECONFIG;
    pagerduty *p = calloc(1, sizeof *p);
    if (!p)
        return tw__err(err, TW_ENOMEM, "out of memory");
    tw_status rc = tw__setting_str(settings, "routing_key", 1, &p->routing_key, err);
    for (const char *c = p->routing_key; !rc && *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f || *c == '"' || *c == '\\' ||
            c - p->routing_key >= 128)       /* never the key itself */
            rc = tw__err(err, TW_ECONFIG, "routing_key: must be the integration key (printable ASCII, "
                                          "at most 128 characters)");
    if (!rc)
        rc = tw__setting_url(settings, "url", 0, &p->url, err);
    if (!rc && !p->url && !(p->url = strdup(PD_URL)))
        rc = tw__err(err, TW_ENOMEM, "out of memory");
    if (rc)
        release(p);
    else
        *impl = p;
    return rc;
}

/* critical -> critical, high -> error, medium -> warning, low and info -> info. */
static const char *pd_severity(const char *sev)
{
    if (sev && strcmp(sev, "critical") == 0)
        return "critical";
    if (sev && strcmp(sev, "high") == 0)
        return "error";
    if (sev && (strcmp(sev, "low") == 0 || strcmp(sev, "info") == 0))
        return "info";
    return "warning";
}

/* "dynamodb" from "dynamodb.amazonaws.com" or "aws.dynamodb". */
static tw_json *component(tw_jb *jb, const tw_facts *f)
{
    const char *s = f->service ? f->service : "aws";
    if (!f->cloudtrail && strncmp(s, "aws.", 4) == 0)
        s += 4;
    const char *dot = f->cloudtrail ? strchr(s, '.') : NULL;
    return tw__jb_strn(jb, s, dot ? (size_t)(dot - s) : strlen(s));
}

/* custom_details: the transformation's result (objects as they are, other values wrapped), else the
 * event's detail. */
static tw_json *details(tw_jb *jb, const tw_alert_ctx *a)
{
    if (!a->input) {
        const tw_json *d = tw_json_get(a->event, "detail");
        d = d ? d : a->event;
        tw_json *out = d ? tw__jb_copy(jb, d) : tw__jb_obj(jb);
        if (a->storm_count > 1 && tw_json_typeof(out) == TW_JSON_OBJECT) {
            /* A storm summary: the identical alerts it stands for. */
            tw_json *t = tw__jb_put(jb, out, "trailwatch", tw__jb_obj(jb));
            tw_json *st = tw__jb_put(jb, t, "storm", tw__jb_obj(jb));
            tw__jb_put(jb, st, "suppressed", tw__jb_int(jb, (int64_t)(a->storm_count - 1)));
            tw__jb_put(jb, st, "window_seconds", tw__jb_int(jb, a->storm_window_ms / 1000));
        }
        return out;
    }
    tw_json_doc *doc;
    const tw_json *v;
    tw__jb_check(jb, tw__input_json(a, &doc, &v));
    tw_json *out;
    if (tw_json_typeof(v) == TW_JSON_OBJECT) {
        out = tw__jb_copy(jb, v);
    } else {
        out = tw__jb_obj(jb);
        tw__jb_put(jb, out, v ? "input" : "message", v ? tw__jb_copy(jb, v) : tw__jb_strn(jb, a->input, a->input_len));
    }
    tw_json_doc_free(doc);
    return out;
}

static tw_status render(const void *impl, const tw_alert_ctx *a, tw_buf *out, tw_error *err)
{
    (void)impl;
    tw_facts f;
    tw_jb jb;
    tw_buf sum = TW_BUF_INIT;
    tw_status frc = tw__facts_extract(a->event, &f);
    tw__buf_printf(&sum, "%s: %s", a->rule_name ? a->rule_name : "trailwatch", f.what ? f.what : "event");
    if (f.cloudtrail)
        tw__buf_printf(&sum, " by %s", f.who ? f.who : "an unknown caller");
    tw_json *msg = NULL;
    if (tw__jb_init(&jb) == TW_OK) {
        msg = tw__jb_obj(&jb);
        tw__jb_put(&jb, msg, "event_action", tw__jb_str(&jb, "trigger"));
        if (a->idempotency_key && *a->idempotency_key)
            tw__jb_put(&jb, msg, "dedup_key", tw__jb_strn(&jb, a->idempotency_key,
                                                          tw__utf8_prefix(a->idempotency_key,
                                                                          strlen(a->idempotency_key), DEDUP_MAX)));
        tw_json *p = tw__jb_put(&jb, msg, "payload", tw__jb_obj(&jb));
        tw__jb_put(&jb, p, "summary", tw__jb_strn(&jb, sum.data, tw__utf8_prefix(sum.data, sum.len, SUMMARY_MAX)));
        tw__jb_put(&jb, p, "source", tw__jb_str(&jb, f.service ? f.service : "trailwatch"));
        tw__jb_put(&jb, p, "severity", tw__jb_str(&jb, pd_severity(a->severity)));
        if (tw__iso_time(f.when))             /* PagerDuty rejects the event for a bad one */
            tw__jb_put(&jb, p, "timestamp", tw__jb_str(&jb, f.when));
        tw__jb_put(&jb, p, "component", component(&jb, &f));
        if (f.account)
            tw__jb_put(&jb, p, "group", tw__jb_str(&jb, f.account));
        tw__jb_put(&jb, p, "class", tw__jb_str(&jb, f.what ? f.what : "event"));
        tw__jb_put(&jb, p, "custom_details", details(&jb, a));
        tw__jb_put(&jb, msg, "client", tw__jb_str(&jb, "trailwatch"));
        tw__jb_check(&jb, frc);
        tw__jb_check(&jb, tw_buf_error(&sum));
    }
    tw__buf_free(&sum);
    tw_status rc = tw__jb_finish(&jb, msg, out, err);
    tw__facts_free(&f);
    return rc;
}

/* {"routing_key":"KEY", + the stored object's members. */
static tw_status finalize_body(const void *impl, const char *body, size_t len, tw_buf *out)
{
    const pagerduty *p = impl;
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t'))
        i++;
    if (i >= len || body[i] != '{')
        return TW_EINVAL;
    size_t j = i + 1;
    while (j < len && (body[j] == ' ' || body[j] == '\n' || body[j] == '\r' || body[j] == '\t'))
        j++;
    tw_status rc = tw__buf_puts(out, "{\"routing_key\":");
    if (!rc)
        rc = tw__json_write_string(out, p->routing_key, strlen(p->routing_key));
    if (!rc && j < len && body[j] != '}')
        rc = tw__buf_putc(out, ',');
    return rc ? rc : tw__buf_append(out, body + i + 1, len - i - 1);
}

/* 202 delivered; 400 (invalid event) permanent; 429 and 5xx retried. */
const tw_target_ops tw__target_pagerduty = {
    .kind = "pagerduty",
    .transport = TW_TRANSPORT_HTTP,
    .policy = {.timeout_ms = 10000, .concurrency = 16},
    .configure = configure,
    .release = release,
    .render = render,
    .http_prepare = tw__http_prepare_url,
    .http_classify = tw__classify_default,
    .finalize_body = finalize_body,
};
