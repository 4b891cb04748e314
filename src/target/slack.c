/* target/slack.c: Slack incoming webhooks (Block Kit message with a text fallback).
 *
 * Everything taken from the event is escaped (& < >) before it reaches mrkdwn, so event data cannot
 * ping (<!channel>, <@U123>) or disguise links (<https://evil|click>); the only mention a message
 * carries is the operator's `mention` setting. Texts are cut to Slack's limits (section 3000,
 * header 150, fields 10 x 2000, text 4000 kept short of the 40000 truncation), counted in bytes,
 * which is never less than Slack's characters. */
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "target/facts.h"
#include "target/kinds.h"

#define SECTION_MAX 3000
#define HEADER_MAX 150
#define FIELD_MAX 2000
#define FALLBACK_MAX 4000
#define INPUT_TEXT_MAX 40000

typedef struct slack {
    char *url;                     /* first: tw__http_prepare_url reads it */
    char *channel, *username, *icon_emoji, *mention;
} slack;

static void release(void *impl)
{
    slack *s = impl;
    if (!s)
        return;
    free(s->url);
    free(s->channel);
    free(s->username);
    free(s->icon_emoji);
    free(s->mention);
    free(s);
}

static tw_status configure(const tw_json *settings, void **impl, tw_error *err)
{
    static const char *const known[] = {"url", "channel", "username", "icon_emoji", "mention", NULL};
    if (tw__setting_known(settings, known, err))
        return err ? err->code : TW_ECONFIG;
    slack *s = calloc(1, sizeof *s);
    if (!s)
        return tw__err(err, TW_ENOMEM, "out of memory");
    tw_status rc;
    if ((rc = tw__setting_url(settings, "url", 1, &s->url, err)) ||
        (rc = tw__setting_str(settings, "channel", 0, &s->channel, err)) ||
        (rc = tw__setting_str(settings, "username", 0, &s->username, err)) ||
        (rc = tw__setting_str(settings, "icon_emoji", 0, &s->icon_emoji, err)) ||
        (rc = tw__setting_str(settings, "mention", 0, &s->mention, err))) {
        release(s);
        return rc;
    }
    if (s->mention && strlen(s->mention) > 500) {
        release(s);
        return tw__err(err, TW_ECONFIG, "mention: longer than 500 bytes");
    }
    *impl = s;
    return TW_OK;
}

/* channel, username, icon_emoji: honoured by legacy webhooks, ignored by app webhooks. */
static void legacy(tw_jb *jb, tw_json *msg, const slack *s)
{
    if (s->channel)
        tw__jb_put(jb, msg, "channel", tw__jb_str(jb, s->channel));
    if (s->username)
        tw__jb_put(jb, msg, "username", tw__jb_str(jb, s->username));
    if (s->icon_emoji)
        tw__jb_put(jb, msg, "icon_emoji", tw__jb_str(jb, s->icon_emoji));
}

static tw_json *mrkdwn(tw_jb *jb, const tw_buf *b)
{
    tw_json *t = tw__jb_obj(jb);
    tw__jb_put(jb, t, "type", tw__jb_str(jb, "mrkdwn"));
    tw__jb_put(jb, t, "text", tw__jb_buf(jb, b, b->len));
    return t;
}

/* The transformation's result: a JSON object is the Slack payload itself; text and JSON strings are
 * the message text (already escaped by the transformation); any other JSON is shown as code. */
static tw_status render_input(const void *impl, const tw_alert_ctx *a, tw_buf *out, tw_error *err)
{
    const slack *s = impl;
    tw_json_doc *doc;
    const tw_json *v;
    if (tw__input_json(a, &doc, &v)) {
        tw_json_doc_free(doc);
        return tw__err(err, TW_ENOMEM, "slack: out of memory");
    }
    if (tw_json_typeof(v) == TW_JSON_OBJECT) {
        tw_json_doc_free(doc);
        tw_status rc = tw__buf_append(out, a->input, a->input_len);
        return rc ? tw__err(err, rc, "slack: %s", rc == TW_ETOOBIG ? "message too large" : tw_strerror(rc)) : TW_OK;
    }
    tw_buf text = TW_BUF_INIT;
    tw_status rc = TW_OK;
    if (s->mention)
        rc = tw__buf_printf(&text, "%s ", s->mention);
    if (!rc && !v) {
        rc = tw__put_text(&text, a->input, a->input_len, INPUT_TEXT_MAX, 0);
    } else if (!rc && tw_json_typeof(v) == TW_JSON_STRING) {
        size_t n;
        const char *str = tw_json_string(v, &n);
        rc = tw__put_text(&text, str, n, INPUT_TEXT_MAX, 0);
    } else if (!rc) {
        if (!(rc = tw__buf_puts(&text, "```")) && !(rc = tw__put_text(&text, a->input, a->input_len,
                                                                      INPUT_TEXT_MAX - 6, 1)))
            rc = tw__buf_puts(&text, "```");
    }
    tw_json_doc_free(doc);
    tw_jb jb;
    if (!rc)
        rc = tw__jb_init(&jb);
    if (rc) {
        tw__buf_free(&text);
        return tw__err(err, rc, "slack: out of memory");
    }
    tw_json *msg = tw__jb_obj(&jb);
    tw__jb_put(&jb, msg, "text", tw__jb_strn(&jb, text.data, text.len));
    legacy(&jb, msg, s);
    tw__buf_free(&text);
    return tw__jb_finish(&jb, msg, out, err);
}

/* Appends event text, escaped and cut to max bytes. */
static void put(tw_buf *b, const char *s, size_t max)
{
    if (s)
        tw__put_text(b, s, strlen(s), max, 1);
}

static void main_section(tw_buf *b, const slack *s, const tw_facts *f)
{
    if (s->mention)
        tw__buf_printf(b, "%s\n", s->mention);
    if (f->cloudtrail) {
        tw__buf_puts(b, "*");
        f->who ? put(b, f->who, 300) : (void)tw__buf_puts(b, "unknown caller");
        tw__buf_puts(b, "*");
        if (f->who_type) {
            tw__buf_puts(b, " (");
            put(b, f->who_type, 60);
            tw__buf_puts(b, ")");
        }
        tw__buf_puts(b, " called *");
        put(b, f->what, 200);
        tw__buf_puts(b, "* on `");
        put(b, f->service, 200);
        tw__buf_puts(b, "`");
    } else {
        tw__buf_puts(b, "*");
        put(b, f->detail_type ? f->detail_type : "Event", 300);
        tw__buf_puts(b, "* from `");
        put(b, f->source ? f->source : "unknown source", 200);
        tw__buf_puts(b, "`");
    }
    if (f->resource) {
        tw__buf_puts(b, f->cloudtrail ? "\n*Resource:* " : "\n*Resources:* ");
        put(b, f->resource, 800);
    }
    tw__buf_puts(b, "\n*Where:* ");
    put(b, f->region ? f->region : "unknown region", 60);
    if (f->account) {
        tw__buf_puts(b, " \xc2\xb7 account ");
        put(b, f->account, 60);
    }
    if (f->source_ip) {
        tw__buf_puts(b, " \xc2\xb7 from ");
        put(b, f->source_ip, 200);
    }
    if (f->when) {
        tw__buf_puts(b, "\n*When:* ");
        put(b, f->when, 64);
    }
}

static tw_status render_default(const void *impl, const tw_alert_ctx *a, tw_buf *out, tw_error *err)
{
    const slack *s = impl;
    tw_facts f;
    tw_jb jb;
    tw_status frc = tw__facts_extract(a->event, &f);
    if (tw__jb_init(&jb)) {
        tw__facts_free(&f);
        return tw__err(err, TW_ENOMEM, "slack: out of memory");
    }
    tw__jb_check(&jb, frc);
    const char *emoji = tw__sev_emoji(a->severity), *rule = a->rule_name ? a->rule_name : "trailwatch";
    tw_buf t = TW_BUF_INIT;
    tw_json *msg = tw__jb_obj(&jb), *blocks = tw__jb_arr(&jb), *b;

    /* header: plain text, so the operator's rule name needs no escaping */
    tw__buf_printf(&t, "%s ", emoji);
    tw__put_text(&t, rule, strlen(rule), HEADER_MAX - t.len, 0);
    b = tw__jb_push(&jb, blocks, tw__jb_obj(&jb));
    tw__jb_put(&jb, b, "type", tw__jb_str(&jb, "header"));
    tw_json *ht = tw__jb_put(&jb, b, "text", tw__jb_obj(&jb));
    tw__jb_put(&jb, ht, "type", tw__jb_str(&jb, "plain_text"));
    tw__jb_put(&jb, ht, "text", tw__jb_buf(&jb, &t, t.len));

    tw_buf_reset(&t);
    main_section(&t, s, &f);
    t.len = tw__utf8_prefix(t.data ? t.data : "", t.len, SECTION_MAX);
    b = tw__jb_push(&jb, blocks, tw__jb_obj(&jb));
    tw__jb_put(&jb, b, "type", tw__jb_str(&jb, "section"));
    tw__jb_put(&jb, b, "text", mrkdwn(&jb, &t));

    if (f.nparams) {
        b = tw__jb_push(&jb, blocks, tw__jb_obj(&jb));
        tw__jb_put(&jb, b, "type", tw__jb_str(&jb, "section"));
        tw_json *fields = tw__jb_put(&jb, b, "fields", tw__jb_arr(&jb));
        for (size_t i = 0; i < f.nparams; i++) {
            tw_buf_reset(&t);
            tw__buf_puts(&t, "*");
            put(&t, f.params[i].name, 100);
            tw__buf_puts(&t, "*\n");
            put(&t, f.params[i].value, FIELD_MAX - t.len);
            tw__jb_push(&jb, fields, mrkdwn(&jb, &t));
        }
    }
    /* the rule's facts (docs/FACTS.md), scalars only: at most Slack's 10 fields */
    const tw_json *facts = tw_json_get(a->extra, "facts");
    tw_json *ffields = NULL;
    for (size_t i = 0, shown = 0; i < tw_json_size(facts) && shown < 10; i++) {
        const tw_json *v = tw_json_at(facts, i);
        tw_json_type ty = tw_json_typeof(v);
        if (ty == TW_JSON_NULL || ty == TW_JSON_ARRAY || ty == TW_JSON_OBJECT)
            continue;
        if (!ffields) {
            b = tw__jb_push(&jb, blocks, tw__jb_obj(&jb));
            tw__jb_put(&jb, b, "type", tw__jb_str(&jb, "section"));
            ffields = tw__jb_put(&jb, b, "fields", tw__jb_arr(&jb));
        }
        tw_buf_reset(&t);
        tw__buf_puts(&t, "*");
        put(&t, tw_json_key(facts, i, NULL), 100);
        tw__buf_puts(&t, "*\n");
        if (ty == TW_JSON_STRING)
            put(&t, tw_json_string(v, NULL), FIELD_MAX - t.len);
        else if (ty == TW_JSON_NUMBER)
            put(&t, tw_json_number_text(v, NULL), FIELD_MAX - t.len);
        else
            tw__buf_puts(&t, ty == TW_JSON_TRUE ? "true" : "false");
        tw__jb_push(&jb, ffields, mrkdwn(&jb, &t));
        shown++;
    }
    /* enrichments that failed (src/enrich/): the alert says so instead of missing data silently */
    const tw_json *enr = tw_json_get(a->extra, "enrichment");
    for (size_t i = 0; i < tw_json_size(enr); i++) {
        const tw_json *why = tw_json_get(tw_json_at(enr, i), "error");
        if (tw_json_typeof(why) != TW_JSON_STRING)
            continue;
        tw_buf_reset(&t);
        tw__buf_puts(&t, ":warning: *Enrichment ");
        put(&t, tw_json_key(enr, i, NULL), 100);
        tw__buf_puts(&t, " failed:* ");
        put(&t, tw_json_string(why, NULL), SECTION_MAX - t.len);
        b = tw__jb_push(&jb, blocks, tw__jb_obj(&jb));
        tw__jb_put(&jb, b, "type", tw__jb_str(&jb, "section"));
        tw__jb_put(&jb, b, "text", mrkdwn(&jb, &t));
    }
    if (f.error) {
        tw_buf_reset(&t);
        tw__buf_puts(&t, ":x: *Error:* ");
        put(&t, f.error, SECTION_MAX - t.len);
        b = tw__jb_push(&jb, blocks, tw__jb_obj(&jb));
        tw__jb_put(&jb, b, "type", tw__jb_str(&jb, "section"));
        tw__jb_put(&jb, b, "text", mrkdwn(&jb, &t));
    }

    tw_buf_reset(&t);
    if (a->rule_description && *a->rule_description) {
        put(&t, a->rule_description, 600);
        tw__buf_puts(&t, " \xc2\xb7 ");
    }
    tw__buf_puts(&t, "event ");
    put(&t, f.event_id ? f.event_id : "?", 100);
    tw__buf_puts(&t, " \xc2\xb7 ");
    put(&t, f.account ? f.account : "?", 60);
    tw__buf_puts(&t, "/");
    put(&t, f.region ? f.region : "?", 60);
    b = tw__jb_push(&jb, blocks, tw__jb_obj(&jb));
    tw__jb_put(&jb, b, "type", tw__jb_str(&jb, "context"));
    tw__jb_push(&jb, tw__jb_put(&jb, b, "elements", tw__jb_arr(&jb)), mrkdwn(&jb, &t));
    if (a->storm_count > 1) {
        char win[32];
        tw__duration_text(a->storm_window_ms, win, sizeof win);
        tw_buf_reset(&t);
        tw__buf_printf(&t, ":repeat: +%llu identical alerts in the last %s", (unsigned long long)(a->storm_count - 1),
                      win);
        b = tw__jb_push(&jb, blocks, tw__jb_obj(&jb));
        tw__jb_put(&jb, b, "type", tw__jb_str(&jb, "context"));
        tw__jb_push(&jb, tw__jb_put(&jb, b, "elements", tw__jb_arr(&jb)), mrkdwn(&jb, &t));
    }

    /* text: the notification and fallback line */
    tw_buf_reset(&t);
    if (s->mention)
        tw__buf_printf(&t, "%s ", s->mention);
    tw__buf_printf(&t, "%s ", emoji);
    tw__put_text(&t, rule, strlen(rule), 300, 1);
    tw__buf_puts(&t, ": ");
    tw_buf sum = TW_BUF_INIT;
    tw__facts_summary(&f, &sum);
    if (f.region)
        tw__buf_printf(&sum, " (%s)", f.region);
    tw__put_text(&t, sum.data ? sum.data : "", sum.len, FALLBACK_MAX - t.len, 1);
    tw__jb_check(&jb, tw_buf_error(&sum));
    tw__buf_free(&sum);
    tw__jb_put(&jb, msg, "text", tw__jb_buf(&jb, &t, t.len));
    tw__jb_put(&jb, msg, "blocks", blocks);
    tw__jb_put(&jb, msg, "unfurl_links", tw__jb_lit(&jb, TW_JSON_FALSE));
    tw__jb_put(&jb, msg, "unfurl_media", tw__jb_lit(&jb, TW_JSON_FALSE));
    legacy(&jb, msg, s);
    tw__buf_free(&t);
    tw__facts_free(&f);
    return tw__jb_finish(&jb, msg, out, err);
}

/* 200 "ok" delivered; 429 (Retry-After) and 5xx retried; invalid_payload, no_service (404),
 * channel_is_archived (410), action_prohibited (403) will not get better: dead-letter. */
const tw_target_ops tw__target_slack = {
    .kind = "slack",
    .transport = TW_TRANSPORT_HTTP,
    /* ~1 message per second per webhook with short bursts; one at a time keeps the channel in order */
    .policy = {.rate_per_second = 1, .rate_burst = 3, .timeout_ms = 10000, .concurrency = 1,
               .escape_text = tw__slack_escape},
    .configure = configure,
    .release = release,
    .render = render_default,
    .render_input = render_input,
    .http_prepare = tw__http_prepare_url,
    .http_classify = tw__classify_default,
};
