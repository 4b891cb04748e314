/*
 * telemetry/metrics.h: counters and histograms for GET /metrics (Prometheus text format) (internal).
 *
 * Ownership: a tw_metrics registry is owned by the server; the counters it hands out live as long
 * as the registry. Increments are lock-free atomics; creating a series takes a mutex, so callers
 * on hot paths look a series up once and keep the pointer.
 */
#ifndef TW_TELEMETRY_METRICS_H
#define TW_TELEMETRY_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "common/buf.h"

/* Series more than one module counts into: one spelling of each. */
#define TW_METRIC_RECEIVED "trailwatch_events_received_total"
#define TW_METRIC_RECEIVED_HELP "Events received, by source"
#define TW_METRIC_REJECTED "trailwatch_events_rejected_total"
#define TW_METRIC_REJECTED_HELP "Events a source could not read or the engine rejected, by source."
#define TW_METRIC_DUPLICATES "trailwatch_events_duplicate_total"
#define TW_METRIC_DUPLICATES_HELP "Events dropped as repeated deliveries of one CloudTrail eventID, by source"
#define TW_METRIC_FOLDED "trailwatch_alerts_folded_total"
#define TW_METRIC_FOLDED_HELP "Alerts counted into an open storm window instead of sent, by rule"
#define TW_METRIC_RULE_MATCHES "trailwatch_rule_matches_total"
#define TW_METRIC_RULE_MATCHES_HELP "Events matched, by rule"
#define TW_METRIC_DELIVERIES "trailwatch_deliveries_total"
#define TW_METRIC_DELIVERIES_HELP "Alert deliveries by target and outcome"
#define TW_METRIC_FOLDER_FILES "trailwatch_folder_files_total"
#define TW_METRIC_FOLDER_RECORDS "trailwatch_folder_records_total"

typedef struct tw_metrics tw_metrics;
typedef struct tw_counter {
    _Atomic uint64_t value;
} tw_counter;

#define TW_HIST_BUCKETS 14
typedef struct tw_histogram {
    _Atomic uint64_t buckets[TW_HIST_BUCKETS + 1]; /* last: +Inf */
    _Atomic uint64_t count;
    _Atomic uint64_t sum_us;
} tw_histogram;

tw_metrics *tw__metrics_new(void);
void tw__metrics_free(tw_metrics *m);

/* The series `name{labels}` (labels: `source="http"` text, already escaped, may be ""), created
 * on first use with help text. NULL only when out of memory (callers then skip counting). */
tw_counter *tw__metrics_counter(tw_metrics *m, const char *name, const char *help, const char *labels);
/* A gauge is a counter whose value is set. */
tw_counter *tw__metrics_gauge(tw_metrics *m, const char *name, const char *help, const char *labels);
/* The counter or gauge `name{labels}` when it exists (never creates one), else NULL. */
const tw_counter *tw__metrics_find(tw_metrics *m, const char *name, const char *labels);
tw_histogram *tw__metrics_histogram(tw_metrics *m, const char *name, const char *help, const char *labels);

static inline void tw_count(tw_counter *c, uint64_t n)
{
    if (c)
        atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}
static inline void tw_gauge_set(tw_counter *c, uint64_t v)
{
    if (c)
        atomic_store_explicit(&c->value, v, memory_order_relaxed);
}
void tw__observe(tw_histogram *h, int64_t us);

/* Label text escaping (\\, \", \n) of a value into a caller buffer; returns buf. */
const char *tw__metrics_label(char *buf, size_t cap, const char *key, const char *value);

/* The whole registry in Prometheus text exposition format 0.0.4. */
tw_status tw__metrics_render(tw_metrics *m, tw_buf *out);

#endif
