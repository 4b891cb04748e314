/* cli/cmd_match.c: `trailwatch match`: events from files (or stdin) against a rules file. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli/cli.h"
#include "trailwatch/trailwatch.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: trailwatch match [--rules FILE] [--sigma PATH]... [--count] [--stats] [EVENTS...]\n\n"
            "Matches events against the rules in FILE, a YAML or JSON mapping of rule names to\n"
            "EventBridge event patterns ({\"name\": pattern, ...}) or a rule pack (rules/README.md: all\n"
            "its rules, params at their example values), and/or Sigma rules (files or folders of .yml,\n"
            "docs/SIGMA.md), compiled into one rule set. EVENTS are files (default: stdin;\n"
            "'-' is stdin; gzip is read transparently) holding JSON lines, a CloudTrail log file\n"
            "({\"Records\": [...]}) or a JSON array. A raw CloudTrail record is wrapped into the event\n"
            "EventBridge would deliver before matching.\n\n"
            "Output: one JSON line per matching event, {\"event\": ID, \"rules\": [NAMES]}, where ID is\n"
            "the event's id (a CloudTrail record's eventID), or FILE:LINE (FILE:[INDEX] in documents)\n"
            "when it has none. With --count: one JSON object mapping every rule to its match count.\n"
            "Invalid events are reported on stderr with where they are and skipped.\n"
            "Sigma correlations run over all the events in eventTime order; each hit is one more line,\n"
            "{\"correlation\": NAME, \"value\": N, \"group\": {...}, \"first\": T, \"last\": T,\n"
            "\"events\": [IDS]}, after the events (with --count: NAME: hits). A Sigma rule that is refused\n"
            "is reported on stderr with its line and reason; the others run (exit status 2).\n\n"
            "Exit status: 0 when some event matched (always with --count), 1 when none did, 2 on\n"
            "invalid rules, unreadable input or skipped events, 3 on a runtime failure.\n\n"
            "options:\n"
            "  --rules, -r FILE         rule names to patterns (YAML or JSON)\n"
            "  --sigma, -s PATH         Sigma rules: a file or a folder (repeatable)\n"
            "  --placeholders FILE      values for Sigma's |expand placeholders ({name: [values]})\n"
            "  --count, -n              print match counts per rule instead of matching events\n"
            "  --stats                  print timing and memory figures as JSON on stderr\n"
            "  --max-event-size SIZE    largest event accepted (default 256k)\n"
            "  --help, -h               this text\n");
}

typedef struct run {
    tw_limits lim;
    const tw_ruleset *rs;
    tw_sigma *sigma;
    tw_correlator *corr;
    unsigned long *hits;        /* per Sigma rule (correlations) */
    tw_matcher *m;
    int count;
    unsigned long *counts;
    unsigned long events, matched, skipped;
    size_t bytes;
    int io_error;
} run;

/* CPU time of the process (user + system): on a shared machine the wall time includes waiting. */
static double cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void print_location(const char *path, const tw_event_where *w)
{
    char loc[64];
    if (w->format == TW_FORMAT_LINES)
        snprintf(loc, sizeof loc, ":%lu", w->line);
    else
        snprintf(loc, sizeof loc, ":[%lu]", w->index);
    size_t pl = strlen(path), ll = strlen(loc);
    char *both = malloc(pl + ll + 1);
    if (!both)
        return;
    memcpy(both, path, pl);
    memcpy(both + pl, loc, ll + 1);
    tw_cli_json_string(stdout, both, pl + ll);
    free(both);
}

static void match_file(run *r, const char *path)
{
    tw_event_reader *rd;
    tw_error err;
    const char *shown = strcmp(path, "-") == 0 ? "(stdin)" : path;
    if (tw_event_reader_open(path, &r->lim, &rd, &err)) {
        tw_cli_error_status(NULL, &err);
        r->io_error = 1;
        return;
    }
    for (;;) {
        const char *json;
        size_t len;
        tw_event_where w;
        tw_status rc = tw_event_reader_next(rd, &json, &len, &w, &err);
        if (rc) {
            r->skipped++;
            if (rc == TW_EGZIP || rc == TW_EIO)
                tw_cli_error("%s: %s", shown, err.msg);
            else
                tw_cli_error("%s:%lu: %s", shown, w.line, err.msg);
            continue;
        }
        if (!json)
            break;
        r->events++;
        tw_match_result res;
        if ((rc = tw_match(r->m, json, len, TW_EVENT_AUTO, &res, &err))) {
            r->skipped++;
            if (w.format == TW_FORMAT_LINES)
                tw_cli_error("%s:%lu: %s", shown, w.line, err.msg);
            else
                tw_cli_error("%s:[%lu] (line %lu): %s", shown, w.index, w.line, err.msg);
            if (rc == TW_ENOMEM)
                break;
            continue;
        }
        if (r->corr && tw_correlator_feed(r->corr, r->m, &res, 0, NULL, NULL, &err) == TW_ENOMEM) {
            tw_cli_error("out of memory");
            break;
        }
        if (!res.count)
            continue;
        r->matched++;
        if (r->count) {
            for (size_t i = 0; i < res.count; i++)
                r->counts[res.rules[i]]++;
            continue;
        }
        fputs("{\"event\":", stdout);
        if (res.id)
            tw_cli_json_string(stdout, res.id, res.id_len);
        else
            print_location(shown, &w);
        fputs(",\"rules\":[", stdout);
        for (size_t i = 0; i < res.count; i++) {
            if (i)
                putchar(',');
            const char *name = tw_ruleset_name(r->rs, res.rules[i]);
            tw_cli_json_str(stdout, name);
        }
        fputs("]}\n", stdout);
    }
    r->bytes += tw_event_reader_bytes(rd);
    tw_event_reader_free(rd);
}

static void report_rule_error(void *ctx, const char *msg)
{
    (void)ctx;
    tw_cli_error("%s", msg);
}

static void on_hit(void *ctx, const tw_correlation_hit *h)
{
    run *r = ctx;
    r->hits[h->rule]++;
    if (r->count)
        return;
    fputs("{\"correlation\":", stdout);
    tw_cli_json_str(stdout, h->info->name);
    printf(",\"value\":%.17g,\"group\":{", h->value);
    for (size_t i = 0; i < h->ngroup; i++) {
        if (i)
            putchar(',');
        tw_cli_json_str(stdout, h->group_names[i]);
        putchar(':');
        if (h->group_values[i])
            tw_cli_json_str(stdout, h->group_values[i]);
        else
            fputs("null", stdout);
    }
    char t0[32], t1[32];
    time_t a = (time_t)(h->first_ms / 1000), b = (time_t)(h->last_ms / 1000);
    struct tm ta, tb;
    strftime(t0, sizeof t0, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&a, &ta));
    strftime(t1, sizeof t1, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&b, &tb));
    printf("},\"first\":\"%s\",\"last\":\"%s\",\"events\":[", t0, t1);
    for (size_t i = 0; i < h->nevents; i++) {
        if (i)
            putchar(',');
        tw_cli_json_str(stdout, h->event_ids[i]);
    }
    fputs("]}\n", stdout);
}

/* The rule set of --rules and --sigma; 0 when it cannot be built (reported). *refused counts Sigma
 * rules that were refused (reported; the others still run). */
static int build_rules(run *r, const char *rules, char **sigma, int nsigma, const char *placeholders,
                       tw_ruleset **out, size_t *refused)
{
    tw_ruleset_builder *b = NULL;
    tw_error err;
    size_t nerrors = 0;
    tw_status rc;
    int ok = 0;
    if (!nsigma) { /* a rules file or a rule pack alone */
        if ((rc = tw_rulefile_load(rules, &r->lim, out, &nerrors, report_rule_error, NULL, &err))) {
            if (nerrors > 1)
                tw_cli_error("%zu invalid rules in %s", nerrors, rules);
            else if (!nerrors)
                tw_cli_error_status(NULL, &err);
            return 0;
        }
        return 1;
    }
    if ((rc = tw_ruleset_builder_new(&r->lim, &b))) {
        tw_cli_error("out of memory");
        return 0;
    }
    if (rules && (rc = tw_rulefile_add(rules, &r->lim, b, &nerrors, report_rule_error, NULL, &err))) {
        if (nerrors > 1)
            tw_cli_error("%zu invalid rules in %s", nerrors, rules);
        else if (!nerrors)
            tw_cli_error_status(NULL, &err);
        goto out;
    }
    if (nsigma) {
        if (tw_sigma_new(&r->lim, &r->sigma)) {
            tw_cli_error("out of memory");
            goto out;
        }
        if (placeholders) {
            char *text = NULL;
            size_t len = 0;
            tw_json_doc *doc = NULL;
            rc = tw_read_file(placeholders, r->lim.file_max, &text, &len, &err);
            if (!rc)
                rc = tw_yaml_parse(text, len, &r->lim, &doc, &err);
            if (!rc)
                rc = tw_sigma_set_placeholders(r->sigma, tw_json_root(doc), &err);
            free(text);
            tw_json_doc_free(doc);
            if (rc) {
                tw_cli_error_status(placeholders, &err);
                goto out;
            }
        }
        for (int i = 0; i < nsigma; i++)
            if ((rc = tw_sigma_load_path(r->sigma, sigma[i], refused, report_rule_error, NULL, &err))) {
                tw_cli_error_status(NULL, &err);
                goto out;
            }
        if ((rc = tw_sigma_add(r->sigma, b, refused, report_rule_error, NULL, &err))) {
            tw_cli_error_status(NULL, &err);
            goto out;
        }
    }
    if ((rc = tw_ruleset_build(b, out, &err))) {
        tw_cli_error_status(NULL, &err);
        goto out;
    }
    ok = 1;
out:
    tw_ruleset_builder_free(b);
    return ok;
}

int tw_cmd_match(int argc, char **argv)
{
    static const struct option opts[] = {
        {"rules", required_argument, NULL, 'r'},
        {"sigma", required_argument, NULL, 's'},
        {"placeholders", required_argument, NULL, 'P'},
        {"count", no_argument, NULL, 'n'},
        {"stats", no_argument, NULL, 'S'},
        {"max-event-size", required_argument, NULL, 'M'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    run r;
    memset(&r, 0, sizeof r);
    tw_limits_default(&r.lim);
    const char *rules = NULL, *placeholders = NULL;
    char **sigma = calloc((size_t)argc + 1, sizeof *sigma);
    int stats = 0, c, nsigma = 0;
    if (!sigma) {
        tw_cli_error("out of memory");
        return TW_EXIT_FAIL;
    }
    optind = 1;
    while ((c = getopt_long(argc, argv, "r:s:nch", opts, NULL)) != -1) {
        switch (c) {
        case 'r': rules = optarg; break;
        case 's': sigma[nsigma++] = optarg; break;
        case 'P': placeholders = optarg; break;
        case 'n': r.count = 1; break;
        case 'c':
            /* -c is --config everywhere else; here it once meant --count: say so rather than guess */
            tw_cli_error("match: -c is not an option of match (elsewhere it is --config): use --rules FILE for the "
                         "rules and --count (-n) for counts");
            free(sigma);
            return TW_EXIT_USAGE;
        case 'S': stats = 1; break;
        case 'M':
            if (!tw_cli_parse_size(optarg, &r.lim.event_max) || r.lim.event_max > TW_MAX_EVENT_MAX) {
                tw_cli_error("--max-event-size: invalid size '%s'", optarg);
                return TW_EXIT_USAGE;
            }
            r.lim.line_max = r.lim.event_max * 4;
            break;
        case 'h': usage(stdout); free(sigma); return TW_EXIT_OK;
        default: usage(stderr); free(sigma); return TW_EXIT_USAGE;
        }
    }
    if (!rules && !nsigma) {
        tw_cli_error("match: --rules FILE or --sigma PATH is required");
        usage(stderr);
        free(sigma);
        return TW_EXIT_USAGE;
    }
    static char outbuf[1 << 20];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);

    double t0 = now_ms();
    tw_ruleset *rs = NULL;
    size_t refused = 0;
    tw_error err;
    int code = TW_EXIT_USAGE;
    if (!build_rules(&r, rules, sigma, nsigma, placeholders, &rs, &refused))
        goto out;
    double t1 = now_ms(), c1 = cpu_ms();
    r.rs = rs;
    code = TW_EXIT_FAIL;
    if (tw_matcher_new(rs, &r.m) || !(r.counts = calloc(tw_ruleset_size(rs) + 1, sizeof *r.counts)) ||
        (r.sigma && !(r.hits = calloc(tw_sigma_count(r.sigma) + 1, sizeof *r.hits)))) {
        tw_cli_error("out of memory");
        goto out;
    }
    if (r.sigma) {
        tw_correlator_opts co;
        tw_correlator_opts_default(&co);
        co.batch = 1; /* files come in any order: correlate in eventTime order at the end */
        if (tw_correlator_new(r.sigma, rs, &co, &r.corr, &err)) {
            tw_cli_error_status(NULL, &err);
            goto out;
        }
    }
    if (optind >= argc)
        match_file(&r, "-");
    for (int i = optind; i < argc; i++)
        match_file(&r, argv[i]);
    if (r.corr && tw_correlator_finish(r.corr, on_hit, &r, &err))
        tw_cli_error_status(NULL, &err);
    if (r.count) {
        putchar('{');
        size_t k = 0;
        for (size_t i = 0; i < tw_ruleset_size(rs); i++, k++) {
            fputs(k ? ",\n  " : "\n  ", stdout);
            const char *name = tw_ruleset_name(rs, i);
            tw_cli_json_str(stdout, name);
            printf(": %lu", r.counts[i]);
        }
        for (size_t i = 0; r.sigma && i < tw_sigma_count(r.sigma); i++) {
            const tw_sigma_rule_info *in = tw_sigma_rule(r.sigma, i);
            if (in->kind != TW_SIGMA_CORRELATION)
                continue;
            fputs(k++ ? ",\n  " : "\n  ", stdout);
            tw_cli_json_str(stdout, in->name);
            printf(": %lu", r.hits[i]);
        }
        puts(k ? "\n}" : "}");
    }
    fflush(stdout);
    double t2 = now_ms(), c2 = cpu_ms();
    if (r.skipped)
        tw_cli_error("skipped %lu invalid event%s (reported above)", r.skipped, r.skipped == 1 ? "" : "s");
    if (stats) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        fprintf(stderr,
                "{\"rules\":%zu,\"compile_ms\":%.3f,\"ruleset_bytes\":%zu,\"events\":%lu,\"matched\":%lu,"
                "\"skipped\":%lu,\"bytes\":%zu,\"match_ms\":%.3f,\"match_cpu_ms\":%.3f,\"peak_rss_kb\":%ld}\n",
                tw_ruleset_size(rs), t1 - t0, tw_ruleset_memory(rs), r.events, r.matched, r.skipped, r.bytes,
                t2 - t1, c2 - c1, ru.ru_maxrss);
    }
    if (r.io_error || r.skipped || refused)
        code = TW_EXIT_USAGE;
    else
        code = r.count || r.matched ? TW_EXIT_OK : TW_EXIT_NO;
out:
    free(r.counts);
    free(r.hits);
    free(sigma);
    tw_correlator_free(r.corr);
    tw_matcher_free(r.m);
    tw_ruleset_free(rs);
    tw_sigma_free(r.sigma);
    return code;
}
