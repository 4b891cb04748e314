/* cli/cmd_archive.c: `trailwatch archive stats|prune`, and what ingest, query and who share: where
 * the archive is, times, JSON and CSV output. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/cli.h"
#include "trailwatch/archive.h"
#include "trailwatch/server.h"

/* A libpq connection string or URI rather than a file name: the archive is in PostgreSQL. */
int tw_cli_archive_is_dsn(const char *s)
{
    return strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0 || strstr(s, "host=") ||
           strstr(s, "dbname=");
}

static int open_pg(const char *dsn, int readonly, tw_archive **out)
{
    tw_error err;
    tw_archive_opts po = {TW_ARCHIVE_POSTGRES, NULL, dsn, readonly};
    tw_status ps = tw_archive_open(out, &po, &err);
    if (ps) {
        tw_cli_error_status("", &err); /* names host and port, never a password */
        return ps == TW_ENOTFOUND || ps == TW_EINVAL ? TW_EXIT_USAGE : TW_EXIT_FAIL;
    }
    return TW_EXIT_OK;
}

int tw_cli_archive_open(const tw_cli_archive_loc *loc, int readonly, tw_archive **out)
{
    char path[4096];
    tw_error err;
    int given = !!loc->archive + !!loc->data_dir + !!loc->config;
    if (given != 1) {
        tw_cli_error("name the archive with one of --archive PATH, --data-dir DIR or -c FILE");
        return TW_EXIT_USAGE;
    }
    if (loc->archive && tw_cli_archive_is_dsn(loc->archive))
        return open_pg(loc->archive, readonly, out);
    if (loc->archive) {
        snprintf(path, sizeof path, "%s", loc->archive);
    } else if (loc->data_dir) {
        snprintf(path, sizeof path, "%s/archive.db", loc->data_dir);
    } else {
        /* the configuration's archive as serve opens it: archive.path or data_dir/archive.db, or
         * its PostgreSQL (archive.backend postgres, archive.dsn) */
        tw_config *cfg = NULL;
        size_t nerrors;
        if (tw_config_load(loc->config, &cfg, &nerrors, NULL, NULL, &err)) {
            tw_cli_error_status(loc->config, &err);
            return TW_EXIT_USAGE;
        }
        int backend = 0;
        const char *dsn = NULL;
        tw_config_archive(cfg, path, sizeof path, &backend, &dsn);
        if (backend) {
            int code = open_pg(dsn ? dsn : "", readonly, out);
            tw_config_free(cfg);
            return code;
        }
        tw_config_free(cfg);
    }
    if (!readonly) {
        /* the data directory as serve makes it */
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
            *slash = '\0';
            mkdir(dir, 0700);
        }
    }
    tw_archive_opts o = {TW_ARCHIVE_SQLITE, path, NULL, readonly};
    tw_status s = tw_archive_open(out, &o, &err);
    if (s) {
        tw_cli_error_status("", &err);
        return s == TW_ENOTFOUND ? TW_EXIT_USAGE : TW_EXIT_FAIL;
    }
    return TW_EXIT_OK;
}

void tw_cli_time(int64_t ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    int frac = (int)(((ms % 1000) + 1000) % 1000);
    if (frac && n + 5 < cap)
        n += (size_t)snprintf(out + n, cap - n, ".%03d", frac);
    if (n + 2 <= cap)
        snprintf(out + n, cap - n, "Z");
}

void tw_cli_json_string(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

void tw_cli_json_str(FILE *f, const char *s) { tw_cli_json_string(f, s, strlen(s)); }

void tw_cli_csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* ---- archive stats | prune ---- */

static void usage(FILE *f)
{
    fprintf(f, "usage: trailwatch archive stats [--json]            (--archive PATH | --data-dir DIR | -c FILE)\n"
               "       trailwatch archive prune --retention 400d  (--archive PATH | --data-dir DIR | -c FILE)\n\n"
               "stats: events, their date range, bytes on disk (indexes included), bytes per event, and the\n"
               "compression ratio of the bodies. prune: deletes events older than the retention (now minus\n"
               "it); freed pages are returned to the file system.\n\n"
               "options:\n" TW_CLI_ARCHIVE_OPTIONS_HELP
               "  --retention DURATION  prune: keep this much (400d, 12w, 36h)\n"
               "  --json                stats: one JSON object\n"
               "  --help, -h            this text\n");
}

static void human(uint64_t n, char *out, size_t cap)
{
    if (n >= 10ull * 1024 * 1024 * 1024)
        snprintf(out, cap, "%.1f GiB", (double)n / (1024.0 * 1024 * 1024));
    else if (n >= 10ull * 1024 * 1024)
        snprintf(out, cap, "%.1f MiB", (double)n / (1024.0 * 1024));
    else if (n >= 10ull * 1024)
        snprintf(out, cap, "%.1f KiB", (double)n / 1024.0);
    else
        snprintf(out, cap, "%" PRIu64 " B", n);
}

static int stats(tw_archive *a, int json)
{
    tw_archive_stats st;
    tw_error err;
    if (tw_archive_stats_get(a, &st, &err)) {
        tw_cli_error_status("archive stats", &err);
        return tw_cli_exit_for(err.code);
    }
    char first[40] = "-", last[40] = "-", disk[32], raw[32];
    if (st.events) {
        tw_cli_time(st.first_ms, first, sizeof first);
        tw_cli_time(st.last_ms, last, sizeof last);
    }
    double per = st.events ? (double)st.bytes_on_disk / (double)st.events : 0;
    double raw_per = st.events ? (double)st.raw_bytes / (double)st.events : 0;
    if (json) {
        printf("{\"events\":%" PRIu64 ",\"first\":\"%s\",\"last\":\"%s\",\"bytes_on_disk\":%" PRIu64
               ",\"raw_bytes\":%" PRIu64 ",\"stored_bytes\":%" PRIu64 ",\"bytes_per_event\":%.1f,"
               "\"raw_bytes_per_event\":%.1f,\"compression_ratio\":%.2f,\"disk_ratio\":%.2f,\"dictionary\":%s}\n",
               st.events, first, last, st.bytes_on_disk, st.raw_bytes, st.stored_bytes, per, raw_per, st.ratio,
               st.bytes_on_disk ? (double)st.raw_bytes / (double)st.bytes_on_disk : 0.0,
               st.dictionary ? "true" : "false");
        return TW_EXIT_OK;
    }
    human(st.bytes_on_disk, disk, sizeof disk);
    human(st.raw_bytes, raw, sizeof raw);
    printf("events:             %" PRIu64 "\n"
           "first:              %s\n"
           "last:               %s\n"
           "bytes on disk:      %s (indexes included)\n"
           "bytes per event:    %.0f (raw JSON: %.0f, so 1/%.1f)\n"
           "raw JSON:           %s\n"
           "compression ratio:  %.1f (bodies, zstd%s)\n",
           st.events, first, last, disk, per, raw_per, per > 0 ? raw_per / per : 0.0, raw, st.ratio,
           st.dictionary ? " with a trained dictionary" : "");
    return TW_EXIT_OK;
}

int tw_cmd_archive(int argc, char **argv)
{
    static const struct option opts[] = {
        {"archive", required_argument, NULL, 'a'}, {"data-dir", required_argument, NULL, 'd'},
        {"config", required_argument, NULL, 'c'},  {"retention", required_argument, NULL, 'r'},
        {"json", no_argument, NULL, 'j'},          {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    tw_cli_archive_loc loc = {0};
    const char *retention = NULL;
    int json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'a': loc.archive = optarg; break;
        case 'd': loc.data_dir = optarg; break;
        case 'c': loc.config = optarg; break;
        case 'r': retention = optarg; break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return TW_EXIT_OK;
        default: usage(stderr); return TW_EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || (strcmp(argv[optind], "stats") != 0 && strcmp(argv[optind], "prune") != 0)) {
        tw_cli_error("archive: give one subcommand: stats or prune");
        usage(stderr);
        return TW_EXIT_USAGE;
    }
    int prune = strcmp(argv[optind], "prune") == 0;
    int64_t keep = 0;
    tw_error err;
    if (prune && !retention) {
        tw_cli_error("archive prune: --retention is required (for example --retention 400d)");
        return TW_EXIT_USAGE;
    }
    if (prune && tw_archive_parse_duration(retention, &keep, &err)) {
        tw_cli_error_status("--retention", &err);
        return TW_EXIT_USAGE;
    }
    tw_archive *a;
    int code = tw_cli_archive_open(&loc, !prune, &a);
    if (code)
        return code;
    if (!prune) {
        code = stats(a, json);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t before = (int64_t)ts.tv_sec * 1000 - keep;
        uint64_t removed = 0;
        char t[40];
        tw_cli_time(before, t, sizeof t);
        if (tw_archive_prune(a, before, &removed, &err)) {
            tw_cli_error_status("archive prune", &err);
            code = tw_cli_exit_for(err.code);
        } else {
            printf("pruned %" PRIu64 " events older than %s\n", removed, t);
        }
    }
    tw_archive_close(a);
    return code;
}
