/*
 * telemetry/log.h: structured logs from the long-running parts (internal).
 *
 * Ownership: messages are formatted into a caller-independent line and handed to the sink the
 * program installed (tw_log_set_sink); the library never writes to a stream itself. Without a sink,
 * logs are dropped. The sink is called from any thread and must be thread-safe.
 *
 * Secrets (webhook URLs, keys, tokens) must never be passed to these functions: log target and rule
 * names, never their settings.
 */
#ifndef TW_TELEMETRY_LOG_H
#define TW_TELEMETRY_LOG_H

#include "trailwatch/server.h"

/* Logs one event: msg is a short constant text; the varargs are key/value string pairs ending in
 * NULL, e.g. tw__log(TW_LOG_WARN, "delivery failed", "target", name, "status", "503", NULL). */
void tw__log(tw_log_level level, const char *msg, ...) __attribute__((sentinel));

#endif
