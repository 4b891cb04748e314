/* cli/deliver.c: alerts sent as serve sends them (outbox, retries, storm control, dead letters), for
 * commands that run events through a configuration's rules outside serve: replay --deliver and
 * ingest --alert. A replay server of the configuration (no listener, no source, no archive) with an
 * outbox of its own, so that a running serve is not disturbed, and a wait for it to empty. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "trailwatch/server.h"

static volatile sig_atomic_t interrupted;
static void on_signal(int sig) { (void)sig; interrupted = 1; }

static void report_config_error(void *ctx, const char *msg)
{
    (void)ctx;
    tw_cli_error("%s", msg);
}

int tw_cli_deliver_start(const char *config, const char *data_dir, const char *sub, struct tw_server **out,
                         char *dir, size_t cap)
{
    tw_config *cfg = NULL;
    tw_error err;
    size_t nerrors = 0;
    *out = NULL;
    if (tw_config_load(config, &cfg, &nerrors, report_config_error, NULL, &err)) {
        if (!nerrors)
            tw_cli_error_status(NULL, &err);
        return TW_EXIT_USAGE;
    }
    if (data_dir)
        snprintf(dir, cap, "%s", data_dir);
    else
        snprintf(dir, cap, "%s/%s", tw_config_data_dir(cfg), sub);
    tw_server_options so = {0, NULL, 1, dir};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (tw_server_start(cfg, &so, out, &err)) { /* takes cfg over, even on error */
        tw_cli_error_status(config, &err);
        return tw_cli_exit_for(err.code);
    }
    return TW_EXIT_OK;
}

int tw_cli_deliver_interrupted(void) { return interrupted; }

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t tw_cli_deliver_drain(struct tw_server *s, int64_t wait_ms)
{
    int64_t until = mono_ms() + wait_ms;
    uint64_t left;
    while ((left = tw_server_pending(s)) && mono_ms() < until && !interrupted)
        usleep(50000);
    return left;
}
