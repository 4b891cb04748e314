/* target/registry.c: the table of target kinds, the render dispatcher, the shared HTTP response
 * rules, Slack escaping. */
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "target/kinds.h"
#include "target/target.h"

static const tw_target_ops *const kinds[] = {
    &tw__target_slack, &tw__target_webhook, &tw__target_teams, &tw__target_discord,
    &tw__target_pagerduty, &tw__target_exec, &tw__target_file, &tw__target_console,
};

const tw_target_ops *tw__target_kind(const char *kind)
{
    if (!kind)
        return NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i]->kind, kind) == 0)
            return kinds[i];
    return NULL;
}

const tw_target_ops *tw__target_kind_at(size_t i)
{
    return i < sizeof kinds / sizeof kinds[0] ? kinds[i] : NULL;
}

const char *tw__target_kind_list(char *buf, size_t len)
{
    size_t at = 0;
    if (len)
        buf[0] = '\0';
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0] && at < len; i++) {
        int n = snprintf(buf + at, len - at, "%s%s", i ? ", " : "", kinds[i]->kind);
        at += n > 0 ? (size_t)n : 0;
    }
    return buf;
}

tw_status tw__target_render(const tw_target_ops *ops, const void *impl, const tw_alert_ctx *a, tw_buf *out,
                           tw_error *err)
{
    tw_status rc = a->input && ops->render_input ? ops->render_input(impl, a, out, err)
                                                 : ops->render(impl, a, out, err);
    /* A kind that wrote on after a failed append still fails (out's error is sticky). */
    if (!rc && (rc = tw_buf_error(out)))
        tw__err(err, rc, "%s: rendering the alert: %s", ops->kind, tw_strerror(rc));
    return rc;
}

/* EventBridge API destinations' rules (aws-formats 5.1): 429 and 5xx are retried, other statuses are
 * not; 408 is a timeout, retried like the 5 s client timeout; Retry-After is honoured and a negative
 * one stops retrying. */
tw_outcome tw__target_http_default(long status, int64_t retry_after_header_ms, int64_t *retry_after_ms)
{
    if (retry_after_ms)
        *retry_after_ms = -1;
    if (status >= 200 && status <= 299)
        return TW_OUTCOME_DELIVERED;
    if (status > 0 && status != 408 && status != 429 && status < 500)
        return TW_OUTCOME_PERMANENT;           /* 1xx, 3xx, other 4xx */
    if (retry_after_header_ms < TW_RETRY_AFTER_NONE)
        return TW_OUTCOME_PERMANENT;
    if (retry_after_ms && retry_after_header_ms >= 0)
        *retry_after_ms = retry_after_header_ms;
    return TW_OUTCOME_RETRY;                   /* 408, 429, 5xx, no response at all */
}

const char *tw__markdown_escape_char(char c)
{
    switch (c) {
    case '\\': return "\\\\";
    case '`': return "\\`";
    case '*': return "\\*";
    case '_': return "\\_";
    case '~': return "\\~";
    case '|': return "\\|";
    case '[': return "\\[";
    case ']': return "\\]";
    case '(': return "\\(";
    case ')': return "\\)";
    case '<': return "\\<";
    case '>': return "\\>";
    case '#': return "\\#";
    default: return NULL;
    }
}

tw_status tw__markdown_escape(tw_buf *out, const char *s, size_t len)
{
    tw_status rc = tw__buf_reserve(out, len);
    size_t run = 0;
    for (size_t i = 0; i < len && !rc; i++) {
        const char *rep = tw__markdown_escape_char(s[i]);
        if (!rep) {
            run++;
            continue;
        }
        if (!(rc = tw__buf_append(out, s + i - run, run)))
            rc = tw__buf_puts(out, rep);
        run = 0;
    }
    return rc ? rc : tw__buf_append(out, s + len - run, run);
}

tw_status tw__slack_escape(tw_buf *out, const char *s, size_t len)
{
    tw_status rc = tw__buf_reserve(out, len);
    size_t run = 0;
    for (size_t i = 0; i < len && !rc; i++) {
        const char *rep = s[i] == '&' ? "&amp;" : s[i] == '<' ? "&lt;" : s[i] == '>' ? "&gt;" : NULL;
        if (!rep) {
            run++;
            continue;
        }
        if (!(rc = tw__buf_append(out, s + i - run, run)))
            rc = tw__buf_puts(out, rep);
        run = 0;
    }
    return rc ? rc : tw__buf_append(out, s + len - run, run);
}
