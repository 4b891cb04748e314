/* cli/cmd_test_pattern.c: `trailwatch test-pattern`, the contract of `aws events test-event-pattern`. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "trailwatch/trailwatch.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: trailwatch test-pattern --pattern PATTERN --event EVENT\n"
            "       trailwatch test-pattern --batch < LINES\n\n"
            "Tests an EventBridge event pattern against an event. PATTERN and EVENT are JSON text, or\n"
            "@FILE to read it from FILE. A raw CloudTrail record is wrapped into the event EventBridge\n"
            "would deliver before matching. Prints true or false; exits 0 on a match, 1 on no match,\n"
            "2 (with a message on stderr) when the pattern or the event is invalid.\n\n"
            "--batch reads JSON lines {\"pattern\": P, \"event\": E} on stdin (P and E are JSON values,\n"
            "or strings holding their text) and writes exactly one line per input line: true, false,\n"
            "or error: MESSAGE. A bad line never stops the batch; the count of bad lines goes to\n"
            "stderr and the exit status is 2 when there were any.\n\n"
            "options:\n"
            "  --pattern, -p PATTERN    the event pattern (JSON or @FILE)\n"
            "  --event, -e EVENT        the event (JSON or @FILE)\n"
            "  --batch                  read pattern/event pairs as JSON lines from stdin\n"
            "  --max-event-size SIZE    largest event accepted (default 256k)\n"
            "  --help, -h               this text\n");
}

/* 1 match, 0 no match; on error returns -1 with err filled (prefixed with what was invalid). */
static int test_one(const tw_limits *lim, tw_pattern *p, const char *event, size_t len, tw_error *err)
{
    tw_ruleset_builder *b = NULL;
    tw_ruleset *rs = NULL;
    tw_matcher *m = NULL;
    int result = -1;
    tw_status rc = tw_ruleset_builder_new(lim, &b);
    if (!rc)
        rc = tw_ruleset_builder_add(b, "pattern", p, NULL, err);
    else
        tw_pattern_free(p);
    if (!rc)
        rc = tw_ruleset_build(b, &rs, err);
    if (!rc)
        rc = tw_matcher_new(rs, &m);
    if (rc) {
        if (rc == TW_ENOMEM) {
            err->code = rc;
            snprintf(err->msg, sizeof err->msg, "out of memory");
        }
        goto out;
    }
    tw_match_result res;
    if ((rc = tw_match(m, event, len, TW_EVENT_AUTO, &res, err))) {
        char msg[TW_ERROR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", err->msg);
        snprintf(err->msg, sizeof err->msg, "invalid event: %.480s", msg);
        goto out;
    }
    result = res.count > 0;
out:
    tw_matcher_free(m);
    tw_ruleset_free(rs);
    tw_ruleset_builder_free(b);
    return result;
}

static int parse_pattern_text(const tw_limits *lim, const char *text, size_t len, tw_pattern **p, tw_error *err)
{
    if (!tw_pattern_parse(text, len, lim, p, err))
        return 0;
    char msg[TW_ERROR_MSG_MAX];
    snprintf(msg, sizeof msg, "%s", err->msg);
    snprintf(err->msg, sizeof err->msg, "invalid pattern: %.470s", msg);
    return -1;
}

static int single(const tw_limits *lim, const char *parg, const char *earg)
{
    char *ptext = NULL, *etext = NULL;
    size_t plen, elen;
    tw_error err;
    tw_pattern *p = NULL;
    int code = TW_EXIT_USAGE;
    if (tw_cli_read_arg(parg, lim->file_max, &ptext, &plen, &err)) {
        tw_cli_error_status("--pattern", &err);
        goto out;
    }
    if (tw_cli_read_arg(earg, lim->file_max, &etext, &elen, &err)) {
        tw_cli_error_status("--event", &err);
        goto out;
    }
    if (parse_pattern_text(lim, ptext, plen, &p, &err)) {
        tw_cli_error_status(NULL, &err);
        goto out;
    }
    int r = test_one(lim, p, etext, elen, &err);
    if (r < 0) {
        tw_cli_error_status(NULL, &err);
        code = tw_cli_exit_for(err.code);
        goto out;
    }
    puts(r ? "true" : "false");
    code = r ? TW_EXIT_OK : TW_EXIT_NO;
out:
    free(ptext);
    free(etext);
    return code;
}

/* One batch line -> "true", "false" or "error: ...". */
static int batch_line(const tw_limits *lim, const char *line, size_t len, tw_error *err)
{
    tw_json_doc *doc = NULL;
    tw_pattern *p = NULL;
    char *dumped = NULL;
    int r = -1;
    tw_limits ll = *lim;
    ll.event_max = lim->line_max;
    if (tw_json_parse(line, len, &ll, &doc, err)) {
        char msg[TW_ERROR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", err->msg);
        snprintf(err->msg, sizeof err->msg, "line is not valid JSON: %.470s", msg);
        goto out;
    }
    const tw_json *root = tw_json_root(doc);
    const tw_json *pv = tw_json_get(root, "pattern"), *ev = tw_json_get(root, "event");
    if (!pv || !ev) {
        err->code = TW_EINVAL;
        snprintf(err->msg, sizeof err->msg, "each line must be an object with \"pattern\" and \"event\"");
        goto out;
    }
    if (tw_json_typeof(pv) == TW_JSON_STRING) {
        size_t n;
        const char *s = tw_json_string(pv, &n);
        if (parse_pattern_text(lim, s, n, &p, err))
            goto out;
    } else if (tw_pattern_from_json(pv, lim, &p, err)) {
        char msg[TW_ERROR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", err->msg);
        snprintf(err->msg, sizeof err->msg, "invalid pattern: %.470s", msg);
        goto out;
    }
    const char *etext;
    size_t elen;
    if (tw_json_typeof(ev) == TW_JSON_STRING) {
        etext = tw_json_string(ev, &elen);
    } else {
        if (!(dumped = tw_json_dump(ev, &elen))) {
            err->code = TW_ENOMEM;
            snprintf(err->msg, sizeof err->msg, "out of memory");
            goto out;
        }
        etext = dumped;
    }
    r = test_one(lim, p, etext, elen, err);
    p = NULL; /* consumed */
out:
    tw_pattern_free(p);
    free(dumped);
    tw_json_doc_free(doc);
    return r;
}

static int batch(const tw_limits *lim)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned long lines = 0, bad = 0;
    tw_error err;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        lines++;
        size_t len = (size_t)n;
        if (len && line[len - 1] == '\n')
            len--;
        if (len && line[len - 1] == '\r')
            len--;
        int r;
        if (len > lim->line_max) {
            err.code = TW_ETOOBIG;
            snprintf(err.msg, sizeof err.msg, "line longer than the limit of %zu bytes", lim->line_max);
            r = -1;
        } else {
            r = batch_line(lim, line, len, &err);
        }
        if (r < 0) {
            bad++;
            /* one output line per input line: no newlines inside the message */
            for (char *c = err.msg; *c; c++)
                if (*c == '\n' || *c == '\r')
                    *c = ' ';
            printf("error: %s\n", err.msg);
        } else {
            puts(r ? "true" : "false");
        }
        fflush(stdout);
    }
    free(line);
    if (bad)
        tw_cli_error("%lu of %lu lines had errors", bad, lines);
    return bad ? TW_EXIT_USAGE : TW_EXIT_OK;
}

int tw_cmd_test_pattern(int argc, char **argv)
{
    static const struct option opts[] = {
        {"pattern", required_argument, NULL, 'p'},
        {"event", required_argument, NULL, 'e'},
        {"batch", no_argument, NULL, 'b'},
        {"max-event-size", required_argument, NULL, 'M'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    tw_limits lim;
    tw_limits_default(&lim);
    const char *pattern = NULL, *event = NULL;
    int is_batch = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "p:e:h", opts, NULL)) != -1) {
        switch (c) {
        case 'p': pattern = optarg; break;
        case 'e': event = optarg; break;
        case 'b': is_batch = 1; break;
        case 'M':
            if (!tw_cli_parse_size(optarg, &lim.event_max) || lim.event_max > TW_MAX_EVENT_MAX) {
                tw_cli_error("--max-event-size: invalid size '%s'", optarg);
                return TW_EXIT_USAGE;
            }
            lim.line_max = lim.event_max * 4;
            break;
        case 'h': usage(stdout); return TW_EXIT_OK;
        default: usage(stderr); return TW_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        tw_cli_error("test-pattern: unexpected argument '%s'", argv[optind]);
        return TW_EXIT_USAGE;
    }
    if (is_batch) {
        if (pattern || event) {
            tw_cli_error("test-pattern: --batch reads patterns and events from stdin; drop --pattern/--event");
            return TW_EXIT_USAGE;
        }
        return batch(&lim);
    }
    if (!pattern || !event) {
        tw_cli_error("test-pattern: needs --pattern and --event (or --batch)");
        usage(stderr);
        return TW_EXIT_USAGE;
    }
    return single(&lim, pattern, event);
}
