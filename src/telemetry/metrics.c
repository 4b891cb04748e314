/* telemetry/metrics.c: a small registry of counters, gauges and histograms, rendered for Prometheus. */
#include "telemetry/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { M_COUNTER, M_GAUGE, M_HISTOGRAM } mtype;

typedef struct series {
    struct series *next;
    char *name, *help, *labels;
    mtype type;
    union {
        tw_counter c;
        tw_histogram h;
    } u;
} series;

struct tw_metrics {
    pthread_mutex_t lock;
    series *head, *tail;
};

/* Upper bounds of the latency buckets, in microseconds: 1 ms .. 60 s. */
static const int64_t bucket_us[TW_HIST_BUCKETS] = {1000,   2500,    5000,    10000,   20000,    50000,    100000,
                                                    250000, 500000,  1000000, 2500000, 10000000, 30000000, 60000000};

tw_metrics *tw__metrics_new(void)
{
    tw_metrics *m = calloc(1, sizeof *m);
    if (m)
        pthread_mutex_init(&m->lock, NULL);
    return m;
}

void tw__metrics_free(tw_metrics *m)
{
    if (!m)
        return;
    for (series *s = m->head, *n; s; s = n) {
        n = s->next;
        free(s->name);
        free(s->help);
        free(s->labels);
        free(s);
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static series *get(tw_metrics *m, const char *name, const char *help, const char *labels, mtype type)
{
    if (!m)
        return NULL;
    labels = labels ? labels : "";
    pthread_mutex_lock(&m->lock);
    series *s = m->head;
    for (; s; s = s->next)
        if (s->type == type && strcmp(s->name, name) == 0 && strcmp(s->labels, labels) == 0)
            break;
    if (!s && (s = calloc(1, sizeof *s))) {
        s->name = strdup(name);
        s->help = strdup(help);
        s->labels = strdup(labels);
        s->type = type;
        if (!s->name || !s->help || !s->labels) {
            free(s->name);
            free(s->help);
            free(s->labels);
            free(s);
            s = NULL;
        } else if (m->tail) {
            m->tail->next = s;
            m->tail = s;
        } else {
            m->head = m->tail = s;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return s;
}

const tw_counter *tw__metrics_find(tw_metrics *m, const char *name, const char *labels)
{
    if (!m)
        return NULL;
    pthread_mutex_lock(&m->lock);
    series *s = m->head;
    while (s && !(s->type != M_HISTOGRAM && strcmp(s->name, name) == 0 && strcmp(s->labels, labels ? labels : "") == 0))
        s = s->next;
    pthread_mutex_unlock(&m->lock);
    return s ? &s->u.c : NULL;
}

tw_counter *tw__metrics_counter(tw_metrics *m, const char *name, const char *help, const char *labels)
{
    series *s = get(m, name, help, labels, M_COUNTER);
    return s ? &s->u.c : NULL;
}

tw_counter *tw__metrics_gauge(tw_metrics *m, const char *name, const char *help, const char *labels)
{
    series *s = get(m, name, help, labels, M_GAUGE);
    return s ? &s->u.c : NULL;
}

tw_histogram *tw__metrics_histogram(tw_metrics *m, const char *name, const char *help, const char *labels)
{
    series *s = get(m, name, help, labels, M_HISTOGRAM);
    return s ? &s->u.h : NULL;
}

void tw__observe(tw_histogram *h, int64_t us)
{
    if (!h)
        return;
    int i = 0;
    while (i < TW_HIST_BUCKETS && us > bucket_us[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (uint64_t)(us < 0 ? 0 : us), memory_order_relaxed);
}

const char *tw__metrics_label(char *buf, size_t cap, const char *key, const char *value)
{
    size_t o = (size_t)snprintf(buf, cap, "%s=\"", key);
    for (const char *v = value; *v && o + 3 < cap; v++) {
        if (*v == '\\' || *v == '"') {
            buf[o++] = '\\';
            buf[o++] = *v;
        } else if (*v == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else {
            buf[o++] = *v;
        }
    }
    if (o + 2 <= cap) {
        buf[o++] = '"';
        buf[o] = '\0';
    } else if (cap) {
        buf[cap - 1] = '\0';
    }
    return buf;
}

static tw_status render_series(tw_buf *b, const series *s, const char *lastname)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    tw_status rc = TW_OK;
    if (!lastname || strcmp(lastname, s->name) != 0)
        rc = tw__buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", s->name, s->help, s->name, types[s->type]);
    if (rc)
        return rc;
    const char *sep = *s->labels ? "," : "";
    if (s->type != M_HISTOGRAM) {
        uint64_t v = atomic_load_explicit(&s->u.c.value, memory_order_relaxed);
        if (*s->labels)
            return tw__buf_printf(b, "%s{%s} %llu\n", s->name, s->labels, (unsigned long long)v);
        return tw__buf_printf(b, "%s %llu\n", s->name, (unsigned long long)v);
    }
    uint64_t cum = 0;
    for (int i = 0; i <= TW_HIST_BUCKETS && !rc; i++) {
        cum += atomic_load_explicit(&s->u.h.buckets[i], memory_order_relaxed);
        if (i < TW_HIST_BUCKETS)
            rc = tw__buf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", s->name, s->labels, sep,
                               (double)bucket_us[i] / 1e6, (unsigned long long)cum);
        else
            rc = tw__buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", s->name, s->labels, sep,
                               (unsigned long long)cum);
    }
    if (!rc)
        rc = tw__buf_printf(b, "%s_sum%s%s%s %.6f\n%s_count%s%s%s %llu\n", s->name, *s->labels ? "{" : "",
                           s->labels, *s->labels ? "}" : "",
                           (double)atomic_load_explicit(&s->u.h.sum_us, memory_order_relaxed) / 1e6, s->name,
                           *s->labels ? "{" : "", s->labels, *s->labels ? "}" : "",
                           (unsigned long long)atomic_load_explicit(&s->u.h.count, memory_order_relaxed));
    return rc;
}

tw_status tw__metrics_render(tw_metrics *m, tw_buf *out)
{
    tw_status rc = TW_OK;
    pthread_mutex_lock(&m->lock);
    /* Prometheus wants the series of one metric together: emit by name, in first-seen order. */
    for (series *s = m->head; s && !rc; s = s->next) {
        int seen = 0;
        for (series *p = m->head; p != s && !seen; p = p->next)
            seen = strcmp(p->name, s->name) == 0;
        if (seen)
            continue;
        const char *last = NULL;
        for (series *t = s; t && !rc; t = t->next)
            if (strcmp(t->name, s->name) == 0) {
                rc = render_series(out, t, last);
                last = t->name;
            }
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}
