/* cli/cmd_ingest.c: `trailwatch ingest PATH...`: archive CloudTrail log files, AWSLogs folders and
 * JSON lines offline, deduplicating by eventID, with a progress bar and a summary; with --alert, the
 * new events also go through a configuration's rules and their alerts out as serve sends them. */
#include <dirent.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "trailwatch/archive.h"
#include "trailwatch/event.h"
#include "trailwatch/server.h"

/* Reasons shown in the summary (the count covers them all). */
#define SHOWN_ERRORS 20
/* --alert: new events are handed to the rules this many at a time (a bound on the copies held). */
#define ALERT_PAGE 1000

static void usage(FILE *f)
{
    fprintf(f,
            "usage: trailwatch ingest [options] PATH...   (--archive PATH | --data-dir DIR | -c FILE)\n\n"
            "Archives events from CloudTrail log files ({\"Records\":[...]}, .json or .json.gz), folders\n"
            "(AWSLogs/ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/..., walked in name order; digest files are\n"
            "skipped), JSON lines (one record or EventBridge event per line, .jsonl/.ndjson, gzipped or not)\n"
            "and JSON arrays of records; '-' reads standard input. Events already archived (same eventID)\n"
            "are counted as duplicates and not stored again. A malformed record is skipped and counted\n"
            "with its reason; the rest of its file still goes in. The summary counts what was committed:\n"
            "everything it reports as archived is on disk.\n\n"
            "With --alert (and -c FILE), the events it adds also go through FILE's rules, and their alerts\n"
            "are rendered and delivered as serve delivers them (outbox, retries, storm control, dead\n"
            "letters), through an outbox of its own (--outbox, default DATA_DIR/ingest) so that a running\n"
            "serve is not disturbed. Duplicates (events already archived) do not alert again. Alerts are\n"
            "in the outbox before the events that made them are committed to the archive: an interrupted\n"
            "ingest may alert twice, never lose one. It ends once every alert is delivered (or dead-\n"
            "lettered: trailwatch dlq list --data-dir OUTBOX), or after --wait with the rest kept in the\n"
            "outbox (the next ingest --alert with that outbox sends them); the summary says which.\n"
            "SIGINT/SIGTERM then stop reading: what was read is archived and its alerts kept (exit 3).\n"
            "The archive is FILE's unless --archive or --data-dir names another.\n\n"
            "options:\n" TW_CLI_ARCHIVE_OPTIONS_HELP
            "  --alert               run FILE's rules on the new events and deliver their alerts\n"
            "  --outbox DIR          --alert: the outbox (default DATA_DIR/ingest)\n"
            "  --wait DURATION       --alert: how long to wait for deliveries at the end (default 60s)\n"
            "  --progress            progress lines on stderr even when it is not a terminal\n"
            "  --quiet, -q           no progress bar\n"
            "  --help, -h            this text\n\n"
            "Exit codes: 0 all archived (duplicates included), 2 some records or files were bad (the rest is\n"
            "archived), 3 the archive failed (disk full, damaged file): what the summary reports is kept;\n"
            "or --alert's outbox failed, or alerts were still undelivered after --wait (they stay in it).\n");
}

typedef struct ingest {
    tw_archive *a;
    uint64_t files, records, added, duplicates, errors, bytes;
    size_t nfiles_total, file_no;
    char shown[SHOWN_ERRORS][640];
    size_t nshown;
    int tty, progress_lines, quiet, fatal, interrupted;
    double start, last_draw;
    tw_error fatal_err;
    /* --alert */
    tw_server *srv;
    size_t queued;                 /* events added since the last commit */
    char *ev[ALERT_PAGE];          /* new events not yet through the rules (copies) */
    size_t len[ALERT_PAGE], nev;
    uint64_t matches, alert_invalid;
} ingest;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void note_error(ingest *in, const char *path, unsigned long line, const char *msg)
{
    in->errors++;
    if (in->nshown >= SHOWN_ERRORS)
        return;
    char *out = in->shown[in->nshown++];
    int n = line ? snprintf(out, sizeof in->shown[0], "%s:%lu: ", path, line) : snprintf(out, sizeof in->shown[0], "%s: ", path);
    if (n > 0 && (size_t)n < sizeof in->shown[0])
        snprintf(out + n, sizeof in->shown[0] - (size_t)n, "%.*s", (int)(sizeof in->shown[0] - (size_t)n - 1), msg);
}

static void draw(ingest *in, int force)
{
    if (in->quiet || (!in->tty && !in->progress_lines))
        return;
    double t = now_s();
    if (!force && t - in->last_draw < (in->tty ? 0.1 : 1.0))
        return;
    in->last_draw = t;
    uint64_t archived = tw_archive_committed(in->a), dups = in->duplicates + tw_archive_duplicates(in->a);
    if (in->tty) {
        size_t total = in->nfiles_total ? in->nfiles_total : 1;
        int width = 30, done = (int)((double)in->file_no * width / (double)total);
        char bar[40];
        for (int i = 0; i < width; i++)
            bar[i] = i < done ? '#' : '.';
        bar[width] = '\0';
        fprintf(stderr, "\r[%s] %zu/%zu files  %" PRIu64 " records  %" PRIu64 " archived  %" PRIu64 " dup  %" PRIu64
                        " errors ",
                bar, in->file_no, in->nfiles_total, in->records, archived, dups, in->errors);
    } else {
        fprintf(stderr, "progress: files %zu/%zu records %" PRIu64 " archived %" PRIu64 " duplicates %" PRIu64
                        " errors %" PRIu64 "\n",
                in->file_no, in->nfiles_total, in->records, archived, dups, in->errors);
    }
    fflush(stderr);
}

/* ---- files ---- */

typedef struct paths {
    char **v;
    size_t n, cap;
} paths;

static int push(paths *p, const char *s)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        char **v = realloc(p->v, cap * sizeof *v);
        if (!v)
            return -1;
        p->v = v;
        p->cap = cap;
    }
    if (!(p->v[p->n] = strdup(s)))
        return -1;
    p->n++;
    return 0;
}

static int wanted(const char *name)
{
    static const char *const ext[] = {".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", NULL};
    size_t n = strlen(name);
    if (name[0] == '.')
        return 0;
    for (size_t i = 0; ext[i]; i++) {
        size_t k = strlen(ext[i]);
        if (n > k && strcmp(name + n - k, ext[i]) == 0)
            return 1;
    }
    return 0;
}

/* Files of a folder, recursively, in name order. CloudTrail-Digest folders hold signatures, not events. */
static int walk(const char *dir, paths *out, ingest *in, unsigned depth)
{
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);
    if (n < 0) {
        note_error(in, dir, 0, "cannot read the folder");
        return 0;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        char path[4096];
        struct stat sb;
        if (rc || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strcmp(name, "CloudTrail-Digest") == 0)
            goto next;
        snprintf(path, sizeof path, "%s/%s", dir, name);
        if (stat(path, &sb) != 0)
            goto next;
        if (S_ISDIR(sb.st_mode) && depth < 16)
            rc = walk(path, out, in, depth + 1);
        else if (S_ISREG(sb.st_mode) && wanted(name))
            rc = push(out, path);
    next:
        free(names[i]);
    }
    free(names);
    return rc;
}

/* --alert: the new events held so far through the rules; their alerts are in the outbox on return. */
static int alert_pending(ingest *in)
{
    tw_error err;
    tw_status s = in->nev ? tw_server_replay(in->srv, (const char *const *)in->ev, in->len, in->nev, &in->matches,
                                             &in->alert_invalid, &err)
                          : TW_OK;
    for (size_t i = 0; i < in->nev; i++)
        free(in->ev[i]);
    in->nev = 0;
    if (s) {
        in->fatal = 1;
        in->fatal_err = err;
        return -1;
    }
    return 0;
}

/* Commits the archive's queue; with --alert, once the alerts of its events are in the outbox (an
 * alert is never lost to a crash between the two: at worst sent twice). */
static int commit(ingest *in)
{
    tw_error err;
    if (in->srv && alert_pending(in))
        return -1;
    in->queued = 0;
    if (tw_archive_flush(in->a, &err)) {
        in->fatal = 1;
        in->fatal_err = err;
        return -1;
    }
    return 0;
}

/* A new event (added to the archive's queue): held for the rules with --alert. The queue is
 * committed here before tw_archive_add would commit it on its own (at TW_ARCHIVE_BATCH), so that
 * the alerts go first. */
static int added(ingest *in, const char *json, size_t len)
{
    in->added++;
    if (!in->srv)
        return 0;
    char *copy = malloc(len + 1);
    if (!copy) {
        in->fatal = 1;
        snprintf(in->fatal_err.msg, sizeof in->fatal_err.msg, "out of memory");
        in->fatal_err.code = TW_ENOMEM;
        return -1;
    }
    memcpy(copy, json, len);
    copy[len] = '\0';
    in->ev[in->nev] = copy;
    in->len[in->nev++] = len;
    if (++in->queued + 1 >= TW_ARCHIVE_BATCH)
        return commit(in);
    return in->nev == ALERT_PAGE ? alert_pending(in) : 0;
}

static int ingest_file(ingest *in, const char *path)
{
    tw_event_reader *r = NULL;
    tw_error err;
    if (tw_event_reader_open(path, NULL, &r, &err)) {
        note_error(in, path, 0, err.msg);
        return 0;
    }
    in->files++;
    const char *json;
    size_t len;
    tw_event_where where;
    for (;;) {
        tw_status s = tw_event_reader_next(r, &json, &len, &where, &err);
        if (s) {
            in->records++;
            note_error(in, path, where.line, err.msg);
            if (s == TW_EIO || s == TW_EGZIP || s == TW_EJSON)
                if (where.format != TW_FORMAT_LINES)
                    break; /* a broken document ends here (the reader says so) */
            continue;
        }
        if (!json)
            break;
        if (in->srv && tw_cli_deliver_interrupted()) { /* --alert took SIGINT/SIGTERM: end cleanly */
            in->interrupted = 1;
            break;
        }
        in->records++;
        s = tw_archive_add(in->a, json, len, 0, &err);
        if (s == TW_OK) {
            if (added(in, json, len))
                break;
        } else if (s == TW_EEXIST) {
            in->duplicates++;
        } else if (s == TW_EJSON || s == TW_EUTF8 || s == TW_EEVENT || s == TW_ETOOBIG || s == TW_EDEPTH) {
            note_error(in, path, where.line, err.msg);
        } else {
            in->fatal = 1;
            in->fatal_err = err;
            break;
        }
        if ((in->records & 1023) == 0)
            draw(in, 0);
    }
    in->bytes += tw_event_reader_bytes(r);
    tw_event_reader_free(r);
    return in->fatal ? -1 : 0;
}

int tw_cmd_ingest(int argc, char **argv)
{
    static const struct option opts[] = {
        {"archive", required_argument, NULL, 'a'}, {"data-dir", required_argument, NULL, 'd'},
        {"config", required_argument, NULL, 'c'},  {"progress", no_argument, NULL, 'p'},
        {"quiet", no_argument, NULL, 'q'},         {"help", no_argument, NULL, 'h'},
        {"alert", no_argument, NULL, 'A'},         {"outbox", required_argument, NULL, 'o'},
        {"wait", required_argument, NULL, 'W'},    {NULL, 0, NULL, 0},
    };
    tw_cli_archive_loc loc = {0};
    static ingest in;   /* large (the held events): not on the stack */
    memset(&in, 0, sizeof in);
    const char *outbox = NULL, *wait = NULL;
    int c, alert = 0;
    int64_t wait_ms = 60000;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'a': loc.archive = optarg; break;
        case 'd': loc.data_dir = optarg; break;
        case 'c': loc.config = optarg; break;
        case 'p': in.progress_lines = 1; break;
        case 'q': in.quiet = 1; break;
        case 'A': alert = 1; break;
        case 'o': outbox = optarg; break;
        case 'W': wait = optarg; break;
        case 'h': usage(stdout); return TW_EXIT_OK;
        default: usage(stderr); return TW_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        tw_cli_error("ingest: name at least one file or folder (see --help)");
        return TW_EXIT_USAGE;
    }
    const char *config = loc.config;
    if (!alert && (outbox || wait)) {
        tw_cli_error("ingest: --outbox and --wait go with --alert");
        return TW_EXIT_USAGE;
    }
    if (alert && !config) {
        tw_cli_error("ingest: --alert needs -c FILE: the configuration whose rules and targets alert");
        return TW_EXIT_USAGE;
    }
    tw_error err;
    if (wait && tw_archive_parse_duration(wait, &wait_ms, &err)) {
        tw_cli_error_status("--wait", &err);
        return TW_EXIT_USAGE;
    }
    if (alert && (loc.archive || loc.data_dir))
        loc.config = NULL;   /* -c gives the rules; the archive is the one named */
    paths files = {0};
    for (int i = optind; i < argc; i++) {
        struct stat sb;
        if (strcmp(argv[i], "-") != 0 && stat(argv[i], &sb) != 0) {
            tw_cli_error("ingest: %s: no such file or folder", argv[i]);
            return TW_EXIT_USAGE;
        }
        if (strcmp(argv[i], "-") != 0 && S_ISDIR(sb.st_mode) ? walk(argv[i], &files, &in, 0) : push(&files, argv[i])) {
            tw_cli_error("ingest: out of memory");
            return TW_EXIT_FAIL;
        }
    }
    char dir[4096] = "";
    int code = tw_cli_archive_open(&loc, 0, &in.a);
    if (!code && alert)
        code = tw_cli_deliver_start(config, outbox, "ingest", &in.srv, dir, sizeof dir);
    if (code)
        goto out;
    if (alert)
        tw_archive_check_stored(in.a, 1);   /* a duplicate is known at once: it must not alert */
    in.tty = isatty(2);
    in.nfiles_total = files.n;
    in.start = now_s();
    for (size_t i = 0; i < files.n && !in.fatal && !in.interrupted; i++) {
        in.file_no = i + 1;
        ingest_file(&in, files.v[i]);
        draw(&in, 0);
    }
    if (!in.fatal)
        commit(&in);
    uint64_t pending = 0;
    if (in.srv) {
        pending = tw_cli_deliver_drain(in.srv, wait_ms);
        tw_server_stop(in.srv);
    }
    draw(&in, 1);
    if (in.tty && !in.quiet)
        fputc('\n', stderr);
    double el = now_s() - in.start;
    uint64_t archived = tw_archive_committed(in.a);
    in.duplicates += tw_archive_duplicates(in.a);
    printf("files: %" PRIu64 "  records: %" PRIu64 "  archived: %" PRIu64 "  duplicates: %" PRIu64 "  errors: %" PRIu64
           "  elapsed: %.2f s  (%.0f records/s)\n",
           in.files, in.records, archived, in.duplicates, in.errors, el, el > 0 ? (double)in.records / el : 0.0);
    for (size_t i = 0; i < in.nshown; i++)
        printf("  error: %s\n", in.shown[i]);
    if (in.errors > in.nshown)
        printf("  ... and %" PRIu64 " more errors\n", in.errors - in.nshown);
    if (in.srv) {
        printf("alerts: %" PRIu64 " rule matches of the %" PRIu64 " new events", in.matches, in.added);
        if (in.alert_invalid)
            printf(" (%" PRIu64 " events the rules could not read)", in.alert_invalid);
        if (pending)
            printf("; %" PRIu64 " alerts not yet delivered are kept in the outbox %s (the next ingest --alert "
                   "with this outbox sends them)\n", pending, dir);
        else
            printf("; every alert delivered (or dead-lettered: trailwatch dlq list --data-dir %s)\n", dir);
    }
    if (in.fatal) {
        tw_cli_error_status("ingest", &in.fatal_err);
        tw_cli_error("ingest: stopped; the %" PRIu64 " events reported archived are kept", archived);
        code = TW_EXIT_FAIL;
    } else {
        code = pending ? TW_EXIT_FAIL : in.errors ? TW_EXIT_USAGE : TW_EXIT_OK;
    }
    if (in.interrupted) {
        tw_cli_error("ingest: interrupted: what the summary reports archived is kept, and its alerts are "
                     "delivered or in the outbox; the rest of the input was not read");
        code = TW_EXIT_FAIL;
    }
out:
    tw_archive_close(in.a);
    tw_server_free(in.srv);
    for (size_t i = 0; i < in.nev; i++)
        free(in.ev[i]);
    for (size_t i = 0; i < files.n; i++)
        free(files.v[i]);
    free(files.v);
    return code;
}
