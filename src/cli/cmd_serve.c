/* cli/cmd_serve.c: `trailwatch serve`: signals become stop and reload; logs go to stderr. */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
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
            "usage: trailwatch serve -c FILE [--stdin] [--listen HOST:PORT] [--log-level LEVEL]\n\n"
            "Runs trailwatch: takes events in (EventBridge PutEvents/TestEventPattern at POST /,\n"
            "POST /events, Firehose HTTP endpoint delivery, a CloudTrail log folder, stdin), matches\n"
            "them against the configured rules and delivers alerts through a durable outbox.\n"
            "FILE is trailwatch.yml or a Serverless Framework serverless.yml (docs/CONFIG.md).\n\n"
            "Signals: SIGTERM/SIGINT stop after finishing what was accepted; SIGHUP reloads FILE\n"
            "(an invalid file keeps the running configuration and logs why).\n"
            "Logs: one JSON object per line on stderr. Endpoints: GET /healthz, GET /metrics.\n\n"
            "options:\n"
            "  --config, -c FILE      configuration file\n"
            "  --stdin                also read events (JSON lines) from stdin; without a listener the\n"
            "                         server exits once stdin ends and its alerts are delivered\n"
            "  --listen HOST:PORT     overrides server.listen (port 0 picks a free port)\n"
            "  --log-level LEVEL      debug, info (default), warn or error\n"
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
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    tw_server_options so = {0, NULL};
    tw_log_level level = TW_LOG_INFO;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': path = optarg; break;
        case 'S': so.stdin_events = 1; break;
        case 'L': so.listen = optarg; break;
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

    tw_server *s;
    if ((rc = tw_server_start(cfg, &so, &s, &err))) {
        tw_cli_error_status("serve", &err);
        return tw_cli_exit_for(rc);
    }
    int exit_when_idle = so.stdin_events && tw_server_port(s) == 0;
    while (!got_stop) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
        if (got_reload) {
            got_reload = 0;
            tw_config *ncfg;
            if (tw_config_load(path, &ncfg, &nerrors, log_reload_error, NULL, &err)) {
                if (!nerrors)
                    log_reload_error(NULL, err.msg);
                log_reload_error(NULL, "reload failed: keeping the running configuration");
            } else if (tw_server_reload(s, ncfg, &err)) {
                log_reload_error(NULL, err.msg);
            }
        }
        if (exit_when_idle && tw_server_idle(s))
            break;
    }
    tw_server_stop(s);
    tw_server_free(s);
    return TW_EXIT_OK;
}
