/* telemetry/log.c: structured log events handed to the program's sink as JSON objects. */
#include "telemetry/log.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "json/json_int.h"

static tw_log_sink sink_fn;
static void *sink_ctx;
static tw_log_level sink_min = TW_LOG_INFO;

void tw_log_set_sink(tw_log_sink sink, void *ctx, tw_log_level min_level)
{
    sink_fn = sink;
    sink_ctx = ctx;
    sink_min = min_level;
}

void tw__log(tw_log_level level, const char *msg, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    if (!sink_fn || level < sink_min)
        return;
    tw_buf b;
    tw__buf_init(&b, 16384); /* a log line longer than this is cut (the event is still logged) */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    int ok = tw__buf_printf(&b, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":", when, ts.tv_nsec / 1000000,
                           names[level]) == TW_OK &&
             tw__json_write_string(&b, msg, strlen(msg)) == TW_OK;
    va_list ap;
    va_start(ap, msg);
    for (const char *k; ok && (k = va_arg(ap, const char *));) {
        const char *v = va_arg(ap, const char *);
        ok = tw__buf_putc(&b, ',') == TW_OK && tw__json_write_string(&b, k, strlen(k)) == TW_OK &&
             tw__buf_putc(&b, ':') == TW_OK && tw__json_write_string(&b, v ? v : "", v ? strlen(v) : 0) == TW_OK;
    }
    va_end(ap);
    if (ok && tw__buf_putc(&b, '}') == TW_OK)
        sink_fn(sink_ctx, level, b.data, b.len);
    tw__buf_free(&b);
}
