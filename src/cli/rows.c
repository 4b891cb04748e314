/* cli/rows.c: archive rows out, for query and who: an aligned table (buffered, its columns as wide as
 * their widest cell), JSON lines (each with the event byte for byte) or CSV; with the Sigma rules that
 * matched each row for query --sigma. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "trailwatch/archive.h"

#define MAXCOLS 7

struct tw_cli_rows {
    int format, kind, ncols;
    size_t count;
    char **cells;       /* table: ncols per row */
    size_t n, cap;
};

tw_cli_rows *tw_cli_rows_new(const char *format, int kind)
{
    int f;
    if (!format)
        f = isatty(1) ? TW_CLI_TABLE : TW_CLI_JSON;
    else if (strcmp(format, "table") == 0)
        f = TW_CLI_TABLE;
    else if (strcmp(format, "json") == 0)
        f = TW_CLI_JSON;
    else if (strcmp(format, "csv") == 0)
        f = TW_CLI_CSV;
    else
        return NULL;
    tw_cli_rows *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->format = f;
    r->kind = kind;
    r->ncols = kind == TW_CLI_ROWS_SIGMA ? 7 : 6;
    if (f == TW_CLI_CSV)
        puts(kind == TW_CLI_ROWS_WHO
                 ? "time,action,principal,principal_type,source_ip,region,event_source,account,error_code,id"
                 : kind == TW_CLI_ROWS_SIGMA
                 ? "time,event_name,event_source,principal,principal_type,source_ip,region,account,error_code,id,rules"
                 : "time,event_name,event_source,principal,principal_type,source_ip,region,account,error_code,id");
    return r;
}

int tw_cli_rows_format(const tw_cli_rows *rows) { return rows->format; }

static void json_field(const char *name, const char *v, int first)
{
    printf("%s\"%s\":", first ? "" : ",", name);
    tw_cli_json_str(stdout, v);
}

static const char *who_text(const tw_archive_row *r, char *buf, size_t cap)
{
    /* an assumed role reads better as role/session, with the identity behind it */
    if (*r->behind)
        snprintf(buf, cap, "%s (%s)", r->principal, r->behind);
    else
        snprintf(buf, cap, "%s", r->principal);
    return buf;
}

/* The rule names joined with commas (malloc'd; NULL when out of memory). */
static char *joined(const char *const *names, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(names[i]) + 1;
    char *s = malloc(len), *p = s;
    if (!s)
        return NULL;
    *p = '\0';
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s%s", i ? "," : "", names[i]);
    return s;
}

static int add_json(const tw_archive_row *r, const char *t, const char *const *rules, size_t nrules, int with_rules)
{
    printf("{\"time\":\"%s\",\"time_ms\":%" PRId64, t, r->time_ms);
    json_field("id", r->id, 0);
    json_field("eventName", r->event_name, 0);
    json_field("eventSource", r->event_source, 0);
    json_field("account", r->account, 0);
    json_field("region", r->region, 0);
    json_field("principal", r->principal, 0);
    json_field("principalType", r->principal_type, 0);
    json_field("role", r->role, 0);
    json_field("session", r->session, 0);
    json_field("behind", r->behind, 0);
    json_field("sourceIPAddress", r->source_ip, 0);
    json_field("errorCode", r->error_code, 0);
    if (with_rules) {
        fputs(",\"rules\":[", stdout);
        for (size_t i = 0; i < nrules; i++) {
            if (i)
                putchar(',');
            tw_cli_json_str(stdout, rules[i]);
        }
        putchar(']');
    }
    fputs(",\"event\":", stdout);
    /* one row, one line: a line break in valid JSON is whitespace between tokens (inside a string it
     * is escaped), so it goes out as a space; every other byte as stored */
    size_t from = 0;
    for (size_t i = 0; i < r->json_len; i++)
        if (r->json[i] == '\n' || r->json[i] == '\r') {
            fwrite(r->json + from, 1, i - from, stdout);
            putchar(' ');
            from = i + 1;
        }
    fwrite(r->json + from, 1, r->json_len - from, stdout);
    puts("}");
    return 0;
}

int tw_cli_rows_add_rules(tw_cli_rows *rows, const tw_archive_row *r, const char *const *rules, size_t nrules)
{
    char t[40];
    tw_cli_time(r->time_ms, t, sizeof t);
    int sigma = rows->kind == TW_CLI_ROWS_SIGMA, who = rows->kind == TW_CLI_ROWS_WHO;
    rows->count++;
    if (rows->format == TW_CLI_JSON)
        return add_json(r, t, rules, nrules, sigma);
    char *names = NULL;
    if (sigma && !(names = joined(rules, nrules)))
        return 1;
    if (rows->format == TW_CLI_CSV) {
        const char *v[11] = {t, r->event_name, r->event_source, r->principal, r->principal_type, r->source_ip,
                             r->region, r->account, r->error_code, r->id, names};
        if (who) {
            const char *w[11] = {t, r->event_name, r->principal, r->principal_type, r->source_ip, r->region,
                                 r->event_source, r->account, r->error_code, r->id, NULL};
            memcpy(v, w, sizeof v);
        }
        for (int i = 0; i < 10 + sigma; i++) {
            if (i)
                putchar(',');
            tw_cli_csv_field(stdout, v[i]);
        }
        putchar('\n');
        free(names);
        return 0;
    }
    if (rows->n + (size_t)rows->ncols > rows->cap) {
        size_t cap = rows->cap ? rows->cap * 2 : 64 * (size_t)rows->ncols;
        char **c = realloc(rows->cells, cap * sizeof *c);
        if (!c) {
            free(names);
            return 1;
        }
        rows->cells = c;
        rows->cap = cap;
    }
    char whob[1024];
    const char *cells[MAXCOLS] = {t, r->event_name, who_text(r, whob, sizeof whob),
                                  who ? r->principal_type : r->source_ip, who ? r->source_ip : r->region,
                                  who ? r->region : r->error_code, names};
    for (int i = 0; i < rows->ncols; i++)
        rows->cells[rows->n++] = strdup(*cells[i] ? cells[i] : "-");
    free(names);
    return 0;
}

int tw_cli_rows_add(void *ud, const tw_archive_row *r) { return tw_cli_rows_add_rules(ud, r, NULL, 0); }

size_t tw_cli_rows_end(tw_cli_rows *rows)
{
    if (!rows)
        return 0;
    size_t count = rows->count;
    int nc = rows->ncols;
    if (rows->format == TW_CLI_TABLE && rows->n) {
        static const char *const head_q[MAXCOLS] = {"TIME", "EVENT", "PRINCIPAL", "SOURCE IP", "REGION", "ERROR",
                                                    "RULES"};
        static const char *const head_w[MAXCOLS] = {"TIME", "ACTION", "PRINCIPAL", "TYPE", "SOURCE IP", "REGION"};
        const char *const *head = rows->kind == TW_CLI_ROWS_WHO ? head_w : head_q;
        int w[MAXCOLS];
        for (int c = 0; c < nc; c++)
            w[c] = (int)strlen(head[c]);
        for (size_t i = 0; i < rows->n; i++) {
            int len = rows->cells[i] ? (int)strlen(rows->cells[i]) : 1;
            if (len > w[i % (size_t)nc])
                w[i % (size_t)nc] = len;
        }
        for (int c = 0; c < nc; c++)
            printf("%-*s%s", c + 1 < nc ? w[c] : 0, head[c], c + 1 < nc ? "  " : "\n");
        for (size_t i = 0; i < rows->n; i++) {
            int c = (int)(i % (size_t)nc);
            const char *v = rows->cells[i] ? rows->cells[i] : "?";
            printf("%-*s%s", c + 1 < nc ? w[c] : 0, v, c + 1 < nc ? "  " : "\n");
        }
    }
    for (size_t i = 0; i < rows->n; i++)
        free(rows->cells[i]);
    free(rows->cells);
    free(rows);
    fflush(stdout);
    return count;
}
