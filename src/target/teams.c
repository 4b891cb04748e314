/* target/teams.c: Microsoft Teams, through a Power Automate "Workflows" webhook (Adaptive Card, the
 * default) or a legacy Office 365 connector (MessageCard, being retired).
 *
 * Teams cannot be pinged by text (mentions need explicit entities); event text is Markdown-escaped
 * where a card reads Markdown, so it cannot dress a link up as other text. The card stays far below
 * Teams' ~28 KB message limit because every fact is cut to a few hundred bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "target/facts.h"
#include "target/kinds.h"

#define FACT_MAX 600               /* bytes of one fact (17 at most) or line */
#define FACT_NAME_MAX 100
#define TEXT_MAX 20000              /* a transformation's text, kept under the ~28 KB card limit */

typedef struct teams {
    char *url;                     /* first: tw__http_prepare_url reads it */
    int messagecard;
} teams;

static void release(void *impl)
{
    teams *t = impl;
    if (t)
        free(t->url);
    free(t);
}

static tw_status configure(const tw_json *settings, void **impl, tw_error *err)
{
    static const char *const known[] = {"url", "format", NULL};
    if (tw__setting_known(settings, known, err))
        return err ? err->code : TW_ECONFIG;
    teams *t = calloc(1, sizeof *t);
    char *format = NULL;
    if (!t)
        return tw__err(err, TW_ENOMEM, "out of memory");
    tw_status rc = tw__setting_url(settings, "url", 1, &t->url, err);
    if (!rc)
        rc = tw__setting_str(settings, "format", 0, &format, err);
    if (!rc && format) {
        if (strcmp(format, "messagecard") == 0)
            t->messagecard = 1;
        else if (strcmp(format, "adaptive") != 0)
            rc = tw__err(err, TW_ECONFIG, "format: must be adaptive (Workflows) or messagecard (O365 connector)");
    }
    free(format);
    if (rc)
        release(t);
    else
        *impl = t;
    return rc;
}

static tw_json *text_block(tw_jb *jb, const char *s, size_t n)
{
    tw_json *b = tw__jb_obj(jb);
    tw__jb_put(jb, b, "type", tw__jb_str(jb, "TextBlock"));
    tw__jb_put(jb, b, "text", tw__jb_strn(jb, s, n));
    tw__jb_put(jb, b, "wrap", tw__jb_lit(jb, TW_JSON_TRUE));
    return b;
}

/* {"type":"message","attachments":[{..adaptive card..}]} around a card body; returns the message. */
static tw_json *adaptive(tw_jb *jb, tw_json **body)
{
    tw_json *msg = tw__jb_obj(jb);
    tw__jb_put(jb, msg, "type", tw__jb_str(jb, "message"));
    tw_json *att = tw__jb_push(jb, tw__jb_put(jb, msg, "attachments", tw__jb_arr(jb)), tw__jb_obj(jb));
    tw__jb_put(jb, att, "contentType", tw__jb_str(jb, "application/vnd.microsoft.card.adaptive"));
    tw__jb_put(jb, att, "contentUrl", tw__jb_lit(jb, TW_JSON_NULL));
    tw_json *card = tw__jb_put(jb, att, "content", tw__jb_obj(jb));
    tw__jb_put(jb, card, "$schema", tw__jb_str(jb, "http://adaptivecards.io/schemas/adaptive-card.json"));
    tw__jb_put(jb, card, "type", tw__jb_str(jb, "AdaptiveCard"));
    tw__jb_put(jb, card, "version", tw__jb_str(jb, "1.4"));
    *body = tw__jb_put(jb, card, "body", tw__jb_arr(jb));
    return msg;
}

static tw_json *messagecard(tw_jb *jb, const char *severity, const char *summary, size_t n)
{
    char color[8];
    snprintf(color, sizeof color, "%06X", (unsigned)tw__sev_color(severity));
    tw_json *msg = tw__jb_obj(jb);
    tw__jb_put(jb, msg, "@type", tw__jb_str(jb, "MessageCard"));
    tw__jb_put(jb, msg, "@context", tw__jb_str(jb, "https://schema.org/extensions"));
    tw__jb_put(jb, msg, "summary", tw__jb_strn(jb, summary, tw__utf8_prefix(summary, n, 200)));
    tw__jb_put(jb, msg, "themeColor", tw__jb_str(jb, color));
    return msg;
}

static tw_status render_input(const void *impl, const tw_alert_ctx *a, tw_buf *out, tw_error *err)
{
    const teams *t = impl;
    tw_json_doc *doc;
    const tw_json *v;
    if (tw__input_json(a, &doc, &v)) {
        tw_json_doc_free(doc);
        return tw__err(err, TW_ENOMEM, "teams: out of memory");
    }
    if (tw_json_typeof(v) == TW_JSON_OBJECT) {  /* the operator's own card or message */
        tw_json_doc_free(doc);
        tw_status rc = tw__buf_append(out, a->input, a->input_len);
        return rc ? tw__err(err, rc, "teams: %s", rc == TW_ETOOBIG ? "message too large" : tw_strerror(rc)) : TW_OK;
    }
    tw_buf text = TW_BUF_INIT;
    if (tw_json_typeof(v) == TW_JSON_STRING) {
        size_t n;
        const char *s = tw_json_string(v, &n);
        tw__put_text(&text, s, n, TEXT_MAX, 0);
    } else {
        tw__put_text(&text, a->input, a->input_len, TEXT_MAX, 0);
    }
    tw_json_doc_free(doc);
    const char *s = text.data ? text.data : "";
    tw_jb jb;
    tw_json *msg = NULL, *body;
    if (tw__jb_init(&jb) == TW_OK && !tw__jb_check(&jb, tw_buf_error(&text))) {
        if (t->messagecard) {
            msg = messagecard(&jb, a->severity, s, text.len);
            tw__jb_put(&jb, msg, "text", tw__jb_strn(&jb, s, text.len));
        } else {
            msg = adaptive(&jb, &body);
            tw_json *b = tw__jb_push(&jb, body, text_block(&jb, s, text.len));
            if (v && tw_json_typeof(v) != TW_JSON_STRING)   /* other JSON values: as code */
                tw__jb_put(&jb, b, "fontType", tw__jb_str(&jb, "Monospace"));
        }
    }
    tw__buf_free(&text);
    return tw__jb_finish(&jb, msg, out, err);
}

static const char *sev_color_name(const char *sev)
{
    if (!sev || !strcmp(sev, "medium"))
        return "Warning";
    return !strcmp(sev, "critical") || !strcmp(sev, "high") ? "Attention" : "Accent";
}

static tw_status render_default(const void *impl, const tw_alert_ctx *a, tw_buf *out, tw_error *err)
{
    const teams *t = impl;
    tw_facts f;
    tw_kv kv[TW_FACTS_LIST_MAX];
    tw_buf sum = TW_BUF_INIT, ctx = TW_BUF_INIT, val = TW_BUF_INIT;
    tw_jb jb;
    const char *rule = a->rule_name ? a->rule_name : "trailwatch";
    tw_status frc = tw__facts_extract(a->event, &f);
    size_t nkv = tw__facts_list(&f, kv, TW_FACTS_LIST_MAX);
    /* Adaptive Cards read Markdown in text and facts: event text is escaped there, so that
     * "[click](http://evil.example)" shows as written (a MessageCard section says markdown: false). */
    int md = !t->messagecard;
    tw__facts_summary(&f, &val);
    tw_status vrc = tw_buf_error(&val);
    tw__put_text(&sum, val.data ? val.data : "", val.len, 4 * FACT_MAX, md ? TW_TEXT_MARKDOWN : TW_TEXT_PLAIN);
    if (a->rule_description && *a->rule_description)
        tw__buf_printf(&ctx, "%s \xc2\xb7 ", a->rule_description);
    tw__buf_puts(&ctx, "event ");
    tw__put_text(&ctx, f.event_id ? f.event_id : "?", strlen(f.event_id ? f.event_id : "?"), 200,
                 md ? TW_TEXT_MARKDOWN : TW_TEXT_PLAIN);
    if (a->storm_count > 1) {
        char win[32];
        tw__duration_text(a->storm_window_ms, win, sizeof win);
        tw__buf_printf(&ctx, " \xc2\xb7 +%llu identical alerts in the last %s",
                      (unsigned long long)(a->storm_count - 1), win);
    }
    const char *s = sum.data ? sum.data : "", *c = ctx.data ? ctx.data : "";
    size_t slen = tw__utf8_prefix(s, sum.len, FACT_MAX), clen = tw__utf8_prefix(c, ctx.len, FACT_MAX);
    tw_json *msg = NULL, *body, *facts, *x;
    if (tw__jb_init(&jb) == TW_OK && t->messagecard) {
        msg = messagecard(&jb, a->severity, s, slen);
        tw__jb_put(&jb, msg, "title", tw__jb_str(&jb, rule));
        tw_json *sec = tw__jb_push(&jb, tw__jb_put(&jb, msg, "sections", tw__jb_arr(&jb)), tw__jb_obj(&jb));
        tw__jb_put(&jb, sec, "activityTitle", tw__jb_strn(&jb, s, slen));
        tw__jb_put(&jb, sec, "activitySubtitle", tw__jb_strn(&jb, c, clen));
        facts = tw__jb_put(&jb, sec, "facts", tw__jb_arr(&jb));
        for (size_t i = 0; i < nkv; i++) {
            x = tw__jb_push(&jb, facts, tw__jb_obj(&jb));
            tw__jb_put(&jb, x, "name", tw__jb_strn(&jb, kv[i].name, tw__utf8_prefix(kv[i].name, strlen(kv[i].name),
                                                                                    FACT_NAME_MAX)));
            tw__jb_put(&jb, x, "value", tw__jb_strn(&jb, kv[i].value, tw__utf8_prefix(kv[i].value,
                                                                                     strlen(kv[i].value), FACT_MAX)));
        }
        tw__jb_put(&jb, sec, "markdown", tw__jb_lit(&jb, TW_JSON_FALSE)); /* event text is not markup */
    } else if (jb.d) {
        msg = adaptive(&jb, &body);
        x = tw__jb_push(&jb, body, text_block(&jb, rule, strlen(rule)));
        tw__jb_put(&jb, x, "size", tw__jb_str(&jb, "Medium"));
        tw__jb_put(&jb, x, "weight", tw__jb_str(&jb, "Bolder"));
        tw__jb_put(&jb, x, "color", tw__jb_str(&jb, sev_color_name(a->severity)));
        tw__jb_push(&jb, body, text_block(&jb, s, slen));
        tw_json *fs = tw__jb_push(&jb, body, tw__jb_obj(&jb));
        tw__jb_put(&jb, fs, "type", tw__jb_str(&jb, "FactSet"));
        facts = tw__jb_put(&jb, fs, "facts", tw__jb_arr(&jb));
        for (size_t i = 0; i < nkv; i++) {
            x = tw__jb_push(&jb, facts, tw__jb_obj(&jb));
            tw__jb_put(&jb, x, "title", tw__jb_strn(&jb, kv[i].name, tw__utf8_prefix(kv[i].name, strlen(kv[i].name),
                                                                                     FACT_NAME_MAX)));
            tw_buf_reset(&val);
            tw__put_text(&val, kv[i].value, strlen(kv[i].value), FACT_MAX, TW_TEXT_MARKDOWN);
            tw__jb_check(&jb, tw_buf_error(&val));
            tw__jb_put(&jb, x, "value", tw__jb_strn(&jb, val.data ? val.data : "", val.len));
        }
        x = tw__jb_push(&jb, body, text_block(&jb, c, clen));
        tw__jb_put(&jb, x, "isSubtle", tw__jb_lit(&jb, TW_JSON_TRUE));
        tw__jb_put(&jb, x, "size", tw__jb_str(&jb, "Small"));
    }
    tw__jb_check(&jb, frc);
    tw__jb_check(&jb, vrc);
    tw__jb_check(&jb, tw_buf_error(&sum));
    tw__jb_check(&jb, tw_buf_error(&ctx));
    tw__buf_free(&sum);
    tw__buf_free(&ctx);
    tw__buf_free(&val);
    tw_status rc = tw__jb_finish(&jb, msg, out, err);
    tw__facts_free(&f);
    return rc;
}

/* Workflows answer 202. O365 connectors answer 200 even on failure: success is a number in the body
 * ("1"); a failure reads "... returned HTTP error 429 ..." and is classified by that inner status. */
static tw_outcome http_classify(const void *impl, long status, const char *body, size_t len, int64_t ra_header,
                                int64_t *retry_after_ms)
{
    const teams *t = impl;
    tw_outcome o = tw__target_http_default(status, ra_header, retry_after_ms);
    if (o != TW_OUTCOME_DELIVERED || !t->messagecard || !body || len == 0)
        return o;
    size_t i = 0;
    while (i < len && body[i] >= '0' && body[i] <= '9')
        i++;
    if (i > 0 && i == len)
        return o;
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%.*s", (int)(len < sizeof tmp - 1 ? len : sizeof tmp - 1), body);
    const char *p = strstr(tmp, "HTTP error ");
    long inner = p ? strtol(p + 11, NULL, 10) : 0;
    if (inner >= 400 && inner <= 599)
        return tw__target_http_default(inner, ra_header, retry_after_ms);
    return TW_OUTCOME_RETRY;                   /* "what they think is retryable" (Microsoft) */
}

const tw_target_ops tw__target_teams = {
    .kind = "teams",
    .transport = TW_TRANSPORT_HTTP,
    .policy = {.timeout_ms = 10000, .concurrency = 1,   /* a channel: in order */
               .escape_text = tw__markdown_escape},
    .configure = configure,
    .release = release,
    .render = render_default,
    .render_input = render_input,
    .http_prepare = tw__http_prepare_url,
    .http_classify = http_classify,
};
