/* target/discord.c: Discord webhooks (one embed, colour by severity).
 *
 * Every message carries "allowed_mentions": {"parse": []}, so @everyone, @here, <@id> and role
 * mentions coming from event data render as text and ping nobody; event text is Markdown-escaped, so
 * it cannot format itself or dress a link up ("[click](http://evil.example)"). Limits (content 2000, embed
 * title 256, description 4096, 25 fields of 256/1024, footer 2048, 6000 in all per embed) are kept
 * by cutting in bytes, never less than Discord's characters. */
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "target/facts.h"
#include "target/kinds.h"

#define CONTENT_MAX 2000
#define EMBED_TOTAL 5800           /* of Discord's 6000, with room to spare */
#define FIELD_VALUE_MAX 300        /* shorter than Discord's 1024 so that 25 facts fit the total */

typedef struct discord {
    char *url;                     /* first: tw__http_prepare_url reads it */
    char *username, *avatar_url;
} discord;

static void release(void *impl)
{
    discord *d = impl;
    if (!d)
        return;
    free(d->url);
    free(d->username);
    free(d->avatar_url);
    free(d);
}

static tw_status configure(const tw_json *settings, void **impl, tw_error *err)
{
    static const char *const known[] = {"url", "username", "avatar_url", NULL};
    if (tw__setting_known(settings, known, err))
        return err ? err->code : TW_ECONFIG;
    discord *d = calloc(1, sizeof *d);
    if (!d)
        return tw__err(err, TW_ENOMEM, "out of memory");
    tw_status rc;
    if (!(rc = tw__setting_url(settings, "url", 1, &d->url, err)) &&
        !(rc = tw__setting_str(settings, "username", 0, &d->username, err)) &&
        !(rc = tw__setting_url(settings, "avatar_url", 0, &d->avatar_url, err)) && d->username &&
        (strlen(d->username) > 80 || !*d->username))
        rc = tw__err(err, TW_ECONFIG, "username: must be 1..80 characters");
    if (rc)
        release(d);
    else
        *impl = d;
    return rc;
}

static void common(tw_jb *jb, tw_json *msg, const discord *d)
{
    if (d->username)
        tw__jb_put(jb, msg, "username", tw__jb_str(jb, d->username));
    if (d->avatar_url)
        tw__jb_put(jb, msg, "avatar_url", tw__jb_str(jb, d->avatar_url));
    tw_json *am = tw__jb_put(jb, msg, "allowed_mentions", tw__jb_obj(jb));
    tw__jb_put(jb, am, "parse", tw__jb_arr(jb));
}

/* A string cut to at most max bytes, and what is left of the embed's budget. */
static tw_json *budgeted(tw_jb *jb, const char *s, size_t max, size_t *budget)
{
    size_t n = s ? strlen(s) : 0;
    n = tw__utf8_prefix(s ? s : "", n, max < *budget ? max : *budget);
    *budget -= n;
    return tw__jb_strn(jb, s, n);
}

static tw_status render_input(const void *impl, const tw_alert_ctx *a, tw_buf *out, tw_error *err)
{
    const discord *d = impl;
    tw_json_doc *doc;
    const tw_json *v;
    tw_status irc = tw__input_json(a, &doc, &v);
    tw_jb jb;
    tw_json *msg;
    if (irc || tw__jb_init(&jb)) {
        tw_json_doc_free(doc);
        return tw__err(err, TW_ENOMEM, "discord: out of memory");
    }
    if (tw_json_typeof(v) == TW_JSON_OBJECT) {
        /* The operator's payload, with mentions disabled unless it says otherwise itself. */
        msg = tw__jb_copy(&jb, v);
        if (!tw_json_get(v, "allowed_mentions")) {
            tw_json *am = tw__jb_put(&jb, msg, "allowed_mentions", tw__jb_obj(&jb));
            tw__jb_put(&jb, am, "parse", tw__jb_arr(&jb));
        }
    } else {
        tw_buf t = TW_BUF_INIT;
        if (tw_json_typeof(v) == TW_JSON_STRING) {
            size_t n;
            const char *s = tw_json_string(v, &n);
            tw__put_text(&t, s, n, CONTENT_MAX, 0);
        } else if (!v) {
            tw__put_text(&t, a->input, a->input_len, CONTENT_MAX, 0);
        } else {
            tw__buf_puts(&t, "```json\n");
            tw__put_text(&t, a->input, a->input_len, CONTENT_MAX - 12, 0);
            tw__buf_puts(&t, "\n```");
        }
        msg = tw__jb_obj(&jb);
        tw__jb_put(&jb, msg, "content", tw__jb_buf(&jb, &t, t.len));
        common(&jb, msg, d);
        tw__buf_free(&t);
    }
    tw_json_doc_free(doc);
    return tw__jb_finish(&jb, msg, out, err);
}

static tw_status render_default(const void *impl, const tw_alert_ctx *a, tw_buf *out, tw_error *err)
{
    const discord *d = impl;
    tw_facts f;
    tw_kv kv[TW_FACTS_LIST_MAX];
    tw_buf raw = TW_BUF_INIT, sum = TW_BUF_INIT, foot = TW_BUF_INIT, content = TW_BUF_INIT, val = TW_BUF_INIT;
    tw_jb jb;
    size_t budget = EMBED_TOTAL;
    const char *rule = a->rule_name ? a->rule_name : "trailwatch";
    tw_status frc = tw__facts_extract(a->event, &f);
    size_t nkv = tw__facts_list(&f, kv, 25);
    /* Event text is Markdown-escaped: "[click](http://evil.example)" must show as written. */
    tw__facts_summary(&f, &raw);
    tw__put_text(&sum, raw.data ? raw.data : "", raw.len, CONTENT_MAX, TW_TEXT_MARKDOWN);
    tw__buf_printf(&content, "%s: %s", rule, sum.data ? sum.data : "");
    if (a->rule_description && *a->rule_description)
        tw__buf_printf(&foot, "%s \xc2\xb7 ", a->rule_description);
    tw__buf_puts(&foot, "event ");
    tw__put_text(&foot, f.event_id ? f.event_id : "?", strlen(f.event_id ? f.event_id : "?"), 200, TW_TEXT_MARKDOWN);
    if (a->storm_count > 1) {
        char win[32];
        tw__duration_text(a->storm_window_ms, win, sizeof win);
        tw__buf_printf(&foot, " \xc2\xb7 +%llu identical alerts in the last %s",
                      (unsigned long long)(a->storm_count - 1), win);
    }
    tw_json *msg = NULL;
    if (tw__jb_init(&jb) == TW_OK) {
        msg = tw__jb_obj(&jb);
        tw__jb_put(&jb, msg, "content", tw__jb_strn(&jb, content.data, tw__utf8_prefix(content.data, content.len,
                                                                                        CONTENT_MAX)));
        tw_json *e = tw__jb_push(&jb, tw__jb_put(&jb, msg, "embeds", tw__jb_arr(&jb)), tw__jb_obj(&jb));
        tw__jb_put(&jb, e, "title", budgeted(&jb, rule, 256, &budget));
        tw__jb_put(&jb, e, "description", budgeted(&jb, sum.data, 1000, &budget));
        tw__jb_put(&jb, e, "color", tw__jb_int(&jb, tw__sev_color(a->severity)));
        tw_json *footer = tw__jb_put(&jb, e, "footer", tw__jb_obj(&jb));
        tw__jb_put(&jb, footer, "text", budgeted(&jb, foot.data, 500, &budget));
        if (tw__iso_time(f.when))             /* Discord rejects the message for a bad one */
            tw__jb_put(&jb, e, "timestamp", tw__jb_str(&jb, f.when));
        tw_json *fields = tw__jb_put(&jb, e, "fields", tw__jb_arr(&jb));
        for (size_t i = 0; i < nkv && budget > 40; i++) {
            tw_json *x = tw__jb_push(&jb, fields, tw__jb_obj(&jb));
            tw__jb_put(&jb, x, "name", budgeted(&jb, kv[i].name, 64, &budget));
            tw_buf_reset(&val);
            tw__put_text(&val, kv[i].value, strlen(kv[i].value), FIELD_VALUE_MAX, TW_TEXT_MARKDOWN);
            tw__jb_check(&jb, tw_buf_error(&val));
            tw__jb_put(&jb, x, "value", budgeted(&jb, val.data ? val.data : "", FIELD_VALUE_MAX, &budget));
            tw__jb_put(&jb, x, "inline", tw__jb_lit(&jb, strlen(kv[i].value) <= 40 ? TW_JSON_TRUE : TW_JSON_FALSE));
        }
        common(&jb, msg, d);
    }
    tw__jb_check(&jb, frc);
    tw__jb_check(&jb, tw_buf_error(&sum));
    tw__jb_check(&jb, tw_buf_error(&foot));
    tw__jb_check(&jb, tw_buf_error(&content));
    tw__jb_check(&jb, tw_buf_error(&raw));
    tw__buf_free(&raw);
    tw__buf_free(&sum);
    tw__buf_free(&foot);
    tw__buf_free(&content);
    tw__buf_free(&val);
    tw_status rc = tw__jb_finish(&jb, msg, out, err);
    tw__facts_free(&f);
    return rc;
}

/* 204 (200 with ?wait=true) delivered; 429 waits retry_after seconds from the JSON body (a float,
 * more precise than the header), else the header. */
static tw_outcome http_classify(const void *impl, long status, const char *body, size_t len, int64_t ra_header,
                                int64_t *retry_after_ms)
{
    (void)impl;
    tw_outcome o = tw__target_http_default(status, ra_header, retry_after_ms);
    if (status != 429 || o != TW_OUTCOME_RETRY || !retry_after_ms || !body || len == 0 || len > 64 * 1024)
        return o;
    tw_json_doc *doc = NULL;
    if (tw_json_parse(body, len, NULL, &doc, NULL) == TW_OK) {
        const tw_json *ra = tw_json_get(tw_json_root(doc), "retry_after");
        if (tw_json_typeof(ra) == TW_JSON_NUMBER && tw_json_number(ra) >= 0 && tw_json_number(ra) < 86400.0 * 7)
            *retry_after_ms = (int64_t)(tw_json_number(ra) * 1000.0 + 0.999);
    }
    tw_json_doc_free(doc);
    return o;
}

const tw_target_ops tw__target_discord = {
    .kind = "discord",
    .transport = TW_TRANSPORT_HTTP,
    /* ~5 requests per 2 s per webhook; one at a time keeps the channel in order */
    .policy = {.rate_per_second = 0.5, .rate_burst = 5, .timeout_ms = 10000, .concurrency = 1,
               .escape_text = tw__markdown_escape},
    .configure = configure,
    .release = release,
    .render = render_default,
    .render_input = render_input,
    .http_prepare = tw__http_prepare_url,
    .http_classify = http_classify,
};
