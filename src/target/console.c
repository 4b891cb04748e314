/* target/console.c: writes each alert as one line to standard output. */
#include <stdio.h>

#include "target/kinds.h"

static tw_status console_configure(const tw_json *settings, void **impl, tw_error *err)
{
    static const char *const known[] = {NULL};
    if (tw__setting_known(settings, known, err))
        return err ? err->code : TW_ECONFIG;
    (void)settings;
    (void)err;
    *impl = NULL;
    return TW_OK;
}

static void console_release(void *impl) { (void)impl; }

static tw_outcome console_deliver(const void *impl, const char *body, size_t len, int64_t timeout_ms, char *why,
                                  size_t why_len)
{
    (void)impl;
    (void)timeout_ms;
    (void)why;
    (void)why_len;
    flockfile(stdout);
    fwrite_unlocked(body, 1, len, stdout);
    putc_unlocked('\n', stdout);
    fflush_unlocked(stdout);
    funlockfile(stdout);
    return TW_OUTCOME_DELIVERED;               /* a console cannot usefully be retried */
}

const tw_target_ops tw__target_console = {
    .kind = "console",
    .transport = TW_TRANSPORT_CONSOLE,
    .policy = {.timeout_ms = 10000, .concurrency = 1},
    .configure = console_configure,
    .release = console_release,
    .render = tw__render_line,
    .deliver_local = console_deliver,
};
