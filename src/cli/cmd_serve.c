/* cli/cmd_serve.c: `trailwatch serve`: signals become stop and reload; logs go to stderr. */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "trailwatch/trailwatch.h"

static volatile sig_atomic_t got_stop, got_reload;

/* Signal handlers only set a flag; the main loop acts on it. */
static void on_stop(int sig)
{
    (void)sig;
    got_stop = 1;
}

static void on_reload(int sig)
{
    (void)sig;
    got_reload = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: trailwatch serve -c FILE [--stdin] [--listen HOST:PORT] [--log-level LEVEL] [--summary]\n\n"
            "Runs trailwatch: takes events in (EventBridge PutEvents/TestEventPattern at POST /,\n"
            "POST /events, Firehose HTTP endpoint delivery, a CloudTrail log folder, stdin), matches\n"
            "them against the configured rules and delivers alerts through a durable outbox.\n"
            "FILE is trailwatch.yml or a Serverless Framework serverless.yml (docs/CONFIG.md).\n\n"
            "Signals: SIGTERM/SIGINT stop after finishing what was accepted; SIGHUP reloads FILE\n"
            "(an invalid file keeps the running configuration and logs why).\n"
            "Logs: one JSON object per line on stderr. Endpoints: GET /healthz, GET /metrics.\n"
            "Under systemd (Type=notify) it reports READY=1 once it serves, RELOADING=1 and READY=1\n"
            "around a reload and STOPPING=1 when it stops, on $NOTIFY_SOCKET.\n\n"
            "options:\n"
            "  --config, -c FILE      configuration file\n"
            "  --stdin                also read events (JSON lines) from stdin; without a listener the\n"
            "                         server exits once stdin ends and its alerts are delivered\n"
            "  --listen HOST:PORT     overrides server.listen (port 0 picks a free port)\n"
            "  --log-level LEVEL      debug, info (default), warn or error\n"
            "  --summary              for people: print where it listens and what it reads, and once the\n"
            "                         folder's first pass is read and its alerts delivered, a summary\n"
            "                         (files, records, duplicates, matches and storm-folded alerts per\n"
            "                         rule) on stdout; then keep serving (make run uses it)\n"
            "  --help, -h             this text\n");
}

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static void log_to_stderr(void *ctx, tw_log_level level, const char *json, size_t len)
{
    (void)ctx;
    (void)level;
    pthread_mutex_lock(&log_lock);
    fwrite(json, 1, len, stderr);
    fputc('\n', stderr);
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
}

/* Warnings about a configuration that loads (tw_config_warnings), one log line each. */
static void log_warnings(const tw_config *cfg)
{
    const char *w = tw_config_warnings(cfg);
    while (*w) {
        const char *end = strchr(w, '\n');
        size_t n = end ? (size_t)(end - w) : strlen(w);
        while (n && *w == ' ')
            w++, n--;
        char line[1200];
        int k = snprintf(line, sizeof line, "{\"level\":\"warn\",\"msg\":\"configuration warning\",\"warning\":\"");
        for (size_t i = 0; i < n && k < (int)sizeof line - 4; i++) {
            if (w[i] == '"' || w[i] == '\\')
                line[k++] = '\\';
            line[k++] = w[i];
        }
        k += snprintf(line + k, sizeof line - (size_t)k, "\"}");
        log_to_stderr(NULL, TW_LOG_WARN, line, (size_t)k);
        w += n + (end != NULL);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void report_config_error(void *ctx, const char *msg)
{
    (void)ctx;
    tw_cli_error("%s", msg);
}

static void log_reload_error(void *ctx, const char *msg)
{
    (void)ctx;
    char line[1200];
    int n = snprintf(line, sizeof line, "{\"level\":\"error\",\"msg\":\"reload: invalid configuration\",\"error\":\"");
    for (const char *p = msg; *p && n < (int)sizeof line - 4; p++) {
        if (*p == '"' || *p == '\\')
            line[n++] = '\\';
        line[n++] = (char)(*p == '\n' ? ' ' : *p);
    }
    n += snprintf(line + n, sizeof line - (size_t)n, "\"}");
    log_to_stderr(NULL, TW_LOG_ERROR, line, (size_t)n);
}

int tw_cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"stdin", no_argument, NULL, 'S'},
        {"listen", required_argument, NULL, 'L'}, {"log-level", required_argument, NULL, 'l'},
        {"summary", no_argument, NULL, 's'},      {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int summary = 0;
    const char *path = NULL;
    tw_server_options so = {0, NULL, 0, NULL};
    tw_log_level level = TW_LOG_INFO;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': path = optarg; break;
        case 'S': so.stdin_events = 1; break;
        case 'L': so.listen = optarg; break;
        case 's': summary = 1; break;
        case 'l':
            if (!strcmp(optarg, "debug")) level = TW_LOG_DEBUG;
            else if (!strcmp(optarg, "info")) level = TW_LOG_INFO;
            else if (!strcmp(optarg, "warn")) level = TW_LOG_WARN;
            else if (!strcmp(optarg, "error")) level = TW_LOG_ERROR;
            else {
                tw_cli_error("--log-level: expected debug, info, warn or error");
                return TW_EXIT_USAGE;
            }
            break;
        case 'h': usage(stdout); return TW_EXIT_OK;
        default: usage(stderr); return TW_EXIT_USAGE;
        }
    }
    if (!path || optind < argc) {
        tw_cli_error(path ? "serve: unexpected argument '%s'" : "serve: -c FILE is required%s",
                     path ? argv[optind] : "");
        usage(stderr);
        return TW_EXIT_USAGE;
    }
    tw_config *cfg;
    size_t nerrors = 0;
    tw_error err;
    tw_status rc = tw_config_load(path, &cfg, &nerrors, report_config_error, NULL, &err);
    if (rc) {
        if (!nerrors)
            tw_cli_error_status(NULL, &err);
        else if (nerrors > 1)
            tw_cli_error("%zu errors in %s", nerrors, path);
        return tw_cli_exit_for(rc);
    }
    tw_log_set_sink(log_to_stderr, NULL, level);
    log_warnings(cfg);
    /* what --summary shows first, taken before the server owns cfg */
    char *describe = summary ? tw_config_describe(cfg) : NULL;
    char *listen = summary ? strdup(so.listen ? so.listen : tw_config_listen(cfg)) : NULL;
    char *folder = summary && tw_config_folder(cfg) ? strdup(tw_config_folder(cfg)) : NULL;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_reload;
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    /* A file size limit (LimitFSIZE=) reached is a failed write, handled like a full disk, not a crash. */
    sigaction(SIGXFSZ, &sa, NULL);

    tw_server *s;
    double t0 = now_s();
    if ((rc = tw_server_start(cfg, &so, &s, &err))) {
        tw_cli_error_status("serve", &err);
        free(describe);
        free(listen);
        free(folder);
        return tw_cli_exit_for(rc);
    }
    tw_cli_notify("READY=1");
    if (summary)
        tw_cli_summary_start(path, describe, listen ? listen : "", tw_server_port(s), folder);
    int exit_when_idle = so.stdin_events && tw_server_port(s) == 0;
    int summary_due = summary, idle_polls = 0;
    while (!got_stop) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
        if (got_reload) {
            got_reload = 0;
            tw_cli_notify("RELOADING=1");
            tw_config *ncfg;
            if (tw_config_load(path, &ncfg, &nerrors, log_reload_error, NULL, &err)) {
                if (!nerrors)
                    log_reload_error(NULL, err.msg);
                log_reload_error(NULL, "reload failed: keeping the running configuration");
            } else {
                log_warnings(ncfg);
                if (tw_server_reload(s, ncfg, &err))
                    log_reload_error(NULL, err.msg);
            }
            tw_cli_notify("READY=1");
        }
        /* the first pass is over once the server has been idle for three polls in a row (its last
         * commit and the delivery of its alerts are not one atomic step) */
        if (summary_due && (idle_polls = tw_server_idle(s) ? idle_polls + 1 : 0) >= 3) {
            summary_due = 0;
            tw_cli_summary_print(s, now_s() - t0, tw_server_port(s));
        }
        if (exit_when_idle && tw_server_idle(s))
            break;
    }
    tw_cli_notify("STOPPING=1");
    tw_server_stop(s);
    tw_server_free(s);
    free(describe);
    free(listen);
    free(folder);
    return TW_EXIT_OK;
}
