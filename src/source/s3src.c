/* source/s3src.c: poll a CloudTrail bucket: discover streams, list in key order, fetch in parallel. */
#include "common/thread.h"
#include "source/s3src.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aws/s3.h"
#include "common/err.h"
#include "source/batch.h"
#include "source/s3obj.h"
#include "common/uuid.h"
#include "json/json_int.h"
#include "telemetry/log.h"
#include "trailwatch/verify.h"

#define REDISCOVER_POLLS 10        /* new accounts and regions are looked for every this many polls */
#define STREAMS_MAX      4096      /* accounts x regions; an organization of 300 accounts x 13 regions fits */

typedef struct stream {
    char *prefix;                  /* ".../ACCOUNT/CloudTrail/REGION/" */
    char *account, *region;
    int64_t position_ms;           /* every file delivered up to here is done; 0: never polled */
} stream;

typedef struct job {
    const char *key;
    int64_t size;
    int state;                     /* 0 to do, 1 ok, 2 failed */
} job;

struct tw_s3src {
    tw_engine *engine;
    tw_metrics *metrics;
    tw_aws_client *client;
    tw_limits lim;
    char *bucket, *base, *org, *state_path, *prefix;
    int verify;                    /* digest validation every verify_ms (sources.s3.verify) */
    char *verify_keys, *profile, *endpoint;
    int64_t verify_ms, verified_at; /* monotonic ms of the last run, 0: never */
    char **accounts, **regions;
    size_t naccounts, nregions;
    int64_t start_ms, poll_ms, lookback_ms;
    unsigned nworkers;
    tw_src_batch *batches;         /* one per worker */
    stream *streams;
    size_t nstreams;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    atomic_int stop, idle;
    /* the page being fetched */
    job *jobs;
    size_t njobs;
    atomic_size_t next_job;
    tw_counter *m_files[4], *m_failed, *m_records, *m_lists;
};

static int stopping(const tw_s3src *s) { return atomic_load(&s->stop) || tw__engine_stopping(s->engine); }

int64_t tw__s3src_key_time(const char *key)
{
    const char *slash = strrchr(key, '/');
    const char *p = strstr(slash ? slash : key, "_CloudTrail_");
    if (!p)
        return -1;
    /* the time follows the region: "_CloudTrail_us-east-1_20240501T1205Z_" */
    const char *t = strchr(p + 12, '_');
    if (!t || strlen(t) < 15 || t[9] != 'T' || t[14] != 'Z')
        return -1;
    struct tm tm = {0};
    char buf[16];
    memcpy(buf, t + 1, 14);
    buf[14] = '\0';
    if (!strptime(buf, "%Y%m%dT%H%MZ", &tm))
        return -1;
    return (int64_t)timegm(&tm) * 1000;
}

/* ---- positions (DATA_DIR/s3-positions: "PREFIX<TAB>MS" lines) ---- */

static void load_positions(tw_s3src *s)
{
    FILE *f = fopen(s->state_path, "r");
    if (!f)
        return;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        char *tab = strchr(line, '\t');
        if (!tab)
            continue;
        *tab = '\0';
        int64_t ms = strtoll(tab + 1, NULL, 10);
        for (size_t i = 0; i < s->nstreams; i++)
            if (strcmp(s->streams[i].prefix, line) == 0)
                s->streams[i].position_ms = ms;
    }
    fclose(f);
}

static void save_positions(tw_s3src *s)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", s->state_path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        tw__log(TW_LOG_WARN, "s3: cannot write the positions file", "path", tmp, "error", strerror(errno), NULL);
        return;
    }
    for (size_t i = 0; i < s->nstreams; i++)
        if (s->streams[i].position_ms)
            fprintf(f, "%s\t%lld\n", s->streams[i].prefix, (long long)s->streams[i].position_ms);
    int ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, s->state_path) != 0)
        tw__log(TW_LOG_WARN, "s3: cannot write the positions file", "path", s->state_path, NULL);
}

/* ---- discovery ---- */

static int wanted(char **list, size_t n, const char *v)
{
    if (!n)
        return 1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], v) == 0)
            return 1;
    return 0;
}

/* The last path segment of a common prefix ("a/b/c/" -> "c"), in buf. */
static const char *segment(const char *prefix, char *buf, size_t cap)
{
    size_t n = strlen(prefix);
    if (n && prefix[n - 1] == '/')
        n--;
    size_t st = n;
    while (st && prefix[st - 1] != '/')
        st--;
    snprintf(buf, cap, "%.*s", (int)(n - st), prefix + st);
    return buf;
}

/* Every common prefix under prefix (all pages). */
static tw_status subdirs(tw_s3src *s, const char *prefix, tw_s3_list *all, tw_error *err)
{
    memset(all, 0, sizeof *all);
    char *token = NULL;
    tw_status rc = TW_OK;
    do {
        tw_s3_list page;
        if ((rc = tw__s3_list(s->client, s->bucket, prefix, NULL, token, "/", 1000, &page, err)))
            break;
        tw_count(s->m_lists, 1);
        free(token);
        token = page.truncated && page.next_token ? strdup(page.next_token) : NULL;
        for (size_t i = 0; i < page.nprefixes; i++) {
            if (all->nprefixes == all->capprefixes) {
                size_t cap = all->capprefixes ? all->capprefixes * 2 : 16;
                char **p = realloc(all->prefixes, cap * sizeof *p);
                if (!p) {
                    rc = tw__err(err, TW_ENOMEM, "out of memory");
                    break;
                }
                all->prefixes = p;
                all->capprefixes = cap;
            }
            all->prefixes[all->nprefixes++] = page.prefixes[i];
            page.prefixes[i] = NULL;
        }
        tw__s3_list_free(&page);
    } while (!rc && token && !stopping(s));
    free(token);
    if (rc)
        tw__s3_list_free(all);
    return rc;
}

static void add_stream(tw_s3src *s, const char *prefix, const char *account, const char *region)
{
    for (size_t i = 0; i < s->nstreams; i++)
        if (strcmp(s->streams[i].prefix, prefix) == 0)
            return;
    if (s->nstreams == STREAMS_MAX)
        return;
    stream *n = realloc(s->streams, (s->nstreams + 1) * sizeof *n);
    if (!n)
        return;
    s->streams = n;
    stream *st = &s->streams[s->nstreams];
    st->prefix = strdup(prefix);
    st->account = strdup(account);
    st->region = strdup(region);
    st->position_ms = 0;
    if (!st->prefix || !st->account || !st->region) {
        free(st->prefix);
        free(st->account);
        free(st->region);
        return;
    }
    s->nstreams++;
    char label[300];
    snprintf(label, sizeof label, "%.128s/%.128s", account, region);
    tw__log(TW_LOG_INFO, "s3: following a CloudTrail stream", "bucket", s->bucket, "stream", label, NULL);
}

/* The regions under one account's CloudTrail/ folder. */
static tw_status discover_account(tw_s3src *s, const char *acct_prefix, const char *account, tw_error *err)
{
    if (!wanted(s->accounts, s->naccounts, account))
        return TW_OK;
    char prefix[2048];
    snprintf(prefix, sizeof prefix, "%sCloudTrail/", acct_prefix);
    tw_s3_list regions;
    tw_status rc = subdirs(s, prefix, &regions, err);
    for (size_t i = 0; !rc && i < regions.nprefixes; i++) {
        char region[128];
        segment(regions.prefixes[i], region, sizeof region);
        if (wanted(s->regions, s->nregions, region))
            add_stream(s, regions.prefixes[i], account, region);
    }
    tw__s3_list_free(&regions);
    return rc;
}

static tw_status discover(tw_s3src *s, tw_error *err)
{
    size_t before = s->nstreams;
    tw_s3_list top;
    tw_status rc = subdirs(s, s->base, &top, err);
    for (size_t i = 0; !rc && i < top.nprefixes && !stopping(s); i++) {
        char name[128];
        segment(top.prefixes[i], name, sizeof name);
        if (strncmp(name, "o-", 2) == 0) {
            if (s->org && strcmp(s->org, name) != 0)
                continue;
            tw_s3_list accts;
            rc = subdirs(s, top.prefixes[i], &accts, err);
            for (size_t k = 0; !rc && k < accts.nprefixes; k++) {
                char acct[128];
                rc = discover_account(s, accts.prefixes[k], segment(accts.prefixes[k], acct, sizeof acct), err);
            }
            tw__s3_list_free(&accts);
        } else if (!s->org) {
            rc = discover_account(s, top.prefixes[i], name, err);
        }
    }
    tw__s3_list_free(&top);
    if (s->nstreams > before)
        load_positions(s);
    return rc;
}

/* ---- fetching one page of keys ---- */

typedef struct worker_arg {
    tw_s3src *s;
    unsigned index;
} worker_arg;

static void *worker_main(void *arg)
{
    tw__thread_name("tw-s3-fetch");
    worker_arg *wa = arg;
    tw_s3src *s = wa->s;
    tw_src_batch *b = &s->batches[wa->index];
    for (;;) {
        size_t i = atomic_fetch_add(&s->next_job, 1);
        if (i >= s->njobs || stopping(s))
            break;
        job *j = &s->jobs[i];
        tw_s3obj_result res;
        size_t records = 0;
        tw_error err;
        tw_status rc = tw__s3obj_ingest(s->client, b, &s->lim, s->bucket, j->key, j->size, &res, &records, &err);
        if (rc) {
            j->state = 2;
            tw_count(s->m_failed, 1);
            tw__log(TW_LOG_WARN, "s3: log file not read, will retry", "error", err.msg, NULL);
            continue;
        }
        j->state = 1;
        tw_count(s->m_files[res], 1);
        tw_count(s->m_records, records);
    }
    return NULL;
}

static void run_jobs(tw_s3src *s)
{
    pthread_t th[32];
    worker_arg args[32];
    unsigned n = s->nworkers < s->njobs ? s->nworkers : (unsigned)s->njobs, started = 0;
    atomic_store(&s->next_job, 0);
    for (unsigned i = 0; i < n; i++) {
        args[i] = (worker_arg){s, i};
        if (pthread_create(&th[i], NULL, worker_main, &args[i]) == 0)
            started++;
        else
            break;
    }
    if (!started) {
        worker_arg a = {s, 0};
        worker_main(&a);
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(th[i], NULL);
}

/* "PREFIX/YYYY/MM/DD/ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHMMZ": sorts just before files of that minute. */
static void start_key(const stream *st, int64_t ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char day[16], stamp[32];
    strftime(day, sizeof day, "%Y/%m/%d/", &tm);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%MZ", &tm);
    snprintf(out, cap, "%s%s%s_CloudTrail_%s_%s", st->prefix, day, st->account, st->region, stamp);
}

/* Lists a stream from its position and reads every log file not yet done, in key order. */
static void poll_stream(tw_s3src *s, stream *st)
{
    int64_t from = st->position_ms ? st->position_ms - s->lookback_ms : s->start_ms;
    if (from < s->start_ms)
        from = s->start_ms;
    char after[4096];
    start_key(st, from, after, sizeof after);
    char *token = NULL;
    int held = 0;                  /* a file failed: the position stops before it */
    int64_t pos = st->position_ms;
    for (;;) {
        tw_s3_list page;
        tw_error err;
        if (tw__s3_list(s->client, s->bucket, st->prefix, token ? NULL : after, token, NULL, 1000, &page, &err)) {
            tw__log(TW_LOG_WARN, "s3: listing failed, will retry", "error", err.msg, NULL);
            break;
        }
        tw_count(s->m_lists, 1);
        free(token);
        token = page.truncated && page.next_token ? strdup(page.next_token) : NULL;
        job *all = calloc(page.n ? page.n : 1, sizeof *all);
        size_t nall = 0;
        for (size_t i = 0; all && i < page.n; i++)
            if (tw__s3obj_is_log_key(page.items[i].key))
                all[nall++] = (job){page.items[i].key, page.items[i].size, 0};
        if (!all)
            held = 1;
        /* In chunks, so the position moves (and is saved) while a long page is read. */
        size_t chunk = (size_t)s->nworkers * 8;
        for (size_t off = 0; all && off < nall && !held && !stopping(s); off += chunk) {
            s->jobs = all + off;
            s->njobs = nall - off < chunk ? nall - off : chunk;
            run_jobs(s);
            for (size_t i = 0; i < s->njobs && !held; i++) {
                int64_t t = tw__s3src_key_time(s->jobs[i].key);
                if (s->jobs[i].state != 1)
                    held = 1;
                else if (t > pos)
                    pos = t;
            }
            if (pos != st->position_ms) {
                st->position_ms = pos;
                save_positions(s);
            }
        }
        free(all);
        s->jobs = NULL;
        s->njobs = 0;
        if (held)
            token = (free(token), NULL);
        tw__s3_list_free(&page);
        if (!token || stopping(s))
            break;
    }
    free(token);
}

static void run_verify(tw_s3src *s);

static void *s3_main(void *arg)
{
    tw__thread_name("tw-s3");
    tw_s3src *s = arg;
    unsigned polls = 0;
    while (!stopping(s)) {
        if (polls % REDISCOVER_POLLS == 0 || !s->nstreams) {
            tw_error err;
            if (discover(s, &err))
                tw__log(TW_LOG_WARN, "s3: cannot list the bucket's accounts and regions", "error", err.msg, NULL);
        }
        for (size_t i = 0; i < s->nstreams && !stopping(s); i++)
            poll_stream(s, &s->streams[i]);
        if (!stopping(s))
            run_verify(s);
        polls++;
        atomic_store(&s->idle, 1);
        pthread_mutex_lock(&s->lock);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = (int64_t)ts.tv_nsec + (s->poll_ms % 1000) * 1000000;
        ts.tv_sec += (time_t)(s->poll_ms / 1000 + ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        /* woken early by stop; tw__engine_stopping has no wake-up, so wait at most a second at a time */
        for (int64_t waited = 0; !atomic_load(&s->stop) && !tw__engine_stopping(s->engine) && waited < s->poll_ms;
             waited += 1000) {
            struct timespec now, until;
            clock_gettime(CLOCK_REALTIME, &now);
            until = now;
            until.tv_sec += 1;
            if (until.tv_sec > ts.tv_sec || (until.tv_sec == ts.tv_sec && until.tv_nsec > ts.tv_nsec))
                until = ts;
            pthread_cond_timedwait(&s->cond, &s->lock, &until);
            clock_gettime(CLOCK_REALTIME, &now);
            if (now.tv_sec > ts.tv_sec || (now.tv_sec == ts.tv_sec && now.tv_nsec >= ts.tv_nsec))
                break;
        }
        pthread_mutex_unlock(&s->lock);
        atomic_store(&s->idle, 0);
    }
    return NULL;
}

/* ---- digest validation (sources.s3.verify): failures become an event rules can match ---- */

#define VERIFY_FINDINGS_MAX 50     /* findings carried in one event; the counts cover all */

typedef struct vfind {
    tw_buf *json;
    unsigned n;
} vfind;

static void on_finding(void *ctx, const tw_verify_finding *f)
{
    static const char *const kinds[] = {"VALID", "VALID", "MISSING", "CHANGED", "UNSIGNED", "INVALID"};
    vfind *v = ctx;
    if (f->kind == TW_VERIFY_DIGEST_OK || f->kind == TW_VERIFY_FILE_OK || v->n >= VERIFY_FINDINGS_MAX)
        return;
    tw__buf_printf(v->json, "%s{\"kind\":\"%s\",\"object\":", v->n ? "," : "", kinds[f->kind]);
    tw__json_write_string(v->json, f->object, strlen(f->object));
    tw__buf_puts(v->json, ",\"detail\":");
    tw__json_write_string(v->json, f->detail, strlen(f->detail));
    tw__buf_putc(v->json, '}');
    v->n++;
}

static int64_t mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void run_verify(tw_s3src *s)
{
    if (!s->verify || (s->verified_at && mono_now() - s->verified_at < s->verify_ms))
        return;
    s->verified_at = mono_now();
    tw_buf findings = TW_BUF_INIT, ev = TW_BUF_INIT;
    vfind vf = {&findings, 0};
    tw_verify_opts o = {NULL, s->bucket, s->prefix, s->verify_keys, tw__aws_client_region(s->client), s->profile,
                        s->endpoint, s->start_ms, 0};
    tw_verify_summary sum;
    tw_error err;
    if (tw_verify_run(&o, on_finding, &vf, &sum, &err)) {
        tw__log(TW_LOG_WARN, "s3: digest validation could not run", "bucket", s->bucket, "error", err.msg, NULL);
        goto out;
    }
    uint64_t bad = sum.missing + sum.changed + sum.unsigned_digests + sum.invalid;
    if (!bad) {
        tw__log(TW_LOG_INFO, "s3: CloudTrail digests validated", "bucket", s->bucket, NULL);
        goto out;
    }
    char id[TW_UUID_LEN + 1], when[32];
    tw__uuid4(id);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    const char *account = s->nstreams ? s->streams[0].account : "";
    tw__buf_printf(&ev, "{\"version\":\"0\",\"id\":\"%s\",\"detail-type\":\"CloudTrail Log File Validation "
                       "Failed\",\"source\":\"trailwatch\",\"account\":\"%s\",\"time\":\"%s\",\"region\":\"%s\","
                       "\"resources\":[\"arn:aws:s3:::%s\"],\"detail\":{\"bucket\":\"%s\",\"digests\":%llu,"
                       "\"log_files\":%llu,\"missing\":%llu,\"changed\":%llu,\"unsigned\":%llu,\"invalid\":%llu,"
                       "\"findings\":[%s]}}",
                  id, account, when, tw__aws_client_region(s->client), s->bucket, s->bucket,
                  (unsigned long long)sum.digests, (unsigned long long)sum.files, (unsigned long long)sum.missing,
                  (unsigned long long)sum.changed, (unsigned long long)sum.unsigned_digests,
                  (unsigned long long)sum.invalid, findings.data ? findings.data : "");
    tw__log(TW_LOG_WARN, "s3: CloudTrail log file validation failed", "bucket", s->bucket, NULL);
    tw_src_batch *b = &s->batches[0];
    if (tw__src_add(b, ev.data, ev.len, TW_EVENT_ENVELOPE, NULL) || tw__src_flush(b)) {
        tw__log(TW_LOG_WARN, "s3: the validation event could not be stored; retried next time", "error", b->err.msg,
               NULL);
        b->failed = TW_OK;
        b->n = 0;
        s->verified_at = 0;
    }
out:
    tw__buf_free(&findings);
    tw__buf_free(&ev);
}

/* ---- lifecycle ---- */

static char *dup_list(char **src, size_t n, char ***out)
{
    *out = calloc(n ? n : 1, sizeof **out);
    if (!*out)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!((*out)[i] = strdup(src[i])))
            return NULL;
    return (char *)*out;
}

static void s3src_free(tw_s3src *s)
{
    for (size_t i = 0; i < s->nstreams; i++) {
        free(s->streams[i].prefix);
        free(s->streams[i].account);
        free(s->streams[i].region);
    }
    free(s->streams);
    for (size_t i = 0; s->accounts && i < s->naccounts; i++)
        free(s->accounts[i]);
    for (size_t i = 0; s->regions && i < s->nregions; i++)
        free(s->regions[i]);
    free(s->accounts);
    free(s->regions);
    for (unsigned i = 0; s->batches && i < s->nworkers; i++)
        tw__src_batch_free(&s->batches[i]);
    free(s->batches);
    free(s->bucket);
    free(s->base);
    free(s->org);
    free(s->state_path);
    free(s->prefix);
    free(s->verify_keys);
    free(s->profile);
    free(s->endpoint);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s);
}

tw_status tw__s3src_start(tw_engine *e, tw_metrics *m, tw_aws_client *c, const tw_s3src_cfg *cfg,
                         const char *profile, const char *data_dir, const tw_limits *lim, tw_s3src **out,
                         tw_error *err)
{
    *out = NULL;
    tw_s3src *s = calloc(1, sizeof *s);
    if (!s)
        return tw__err(err, TW_ENOMEM, "out of memory");
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->engine = e;
    s->metrics = m;
    s->client = c;
    s->lim = *lim;
    s->poll_ms = cfg->poll_ms;
    s->lookback_ms = cfg->lookback_ms;
    s->start_ms = cfg->start_ms >= 0 ? cfg->start_ms : ((int64_t)time(NULL) - 86400) * 1000;
    s->nworkers = cfg->workers ? cfg->workers : 4;
    s->naccounts = cfg->naccounts;
    s->nregions = cfg->nregions;
    size_t bl = strlen(cfg->bucket) + strlen(cfg->prefix) + 16;
    s->bucket = strdup(cfg->bucket);
    s->base = malloc(bl);
    s->org = cfg->organization ? strdup(cfg->organization) : NULL;
    s->state_path = malloc(strlen(data_dir) + 32);
    s->batches = calloc(s->nworkers, sizeof *s->batches);
    tw_status rc = TW_ENOMEM;
    if (!s->bucket || !s->base || !s->state_path || !s->batches || (cfg->organization && !s->org) ||
        !dup_list(cfg->accounts, cfg->naccounts, &s->accounts) || !dup_list(cfg->regions, cfg->nregions, &s->regions)) {
        rc = tw__err(err, TW_ENOMEM, "out of memory starting the S3 source");
        goto fail;
    }
    snprintf(s->base, bl, "%s%sAWSLogs/", cfg->prefix, *cfg->prefix ? "/" : "");
    s->verify = cfg->verify;
    s->verify_ms = cfg->verify_ms > 0 ? cfg->verify_ms : 3600000;
    int configured = 0;
    const char *ep = tw__aws_endpoint(c, "s3", &configured);
    if (!(s->prefix = strdup(cfg->prefix)) || (cfg->verify_keys && !(s->verify_keys = strdup(cfg->verify_keys))) ||
        (profile && !(s->profile = strdup(profile))) || (configured && ep && !(s->endpoint = strdup(ep)))) {
        rc = tw__err(err, TW_ENOMEM, "out of memory starting the S3 source");
        goto fail;
    }
    sprintf(s->state_path, "%s/s3-positions", data_dir);
    for (unsigned i = 0; i < s->nworkers; i++)
        if ((rc = tw__src_batch_init(&s->batches[i], e, m, "s3", err)))
            goto fail;
    static const char *const results[] = {"processed", "already_done", "rejected", "gone"};
    for (size_t i = 0; i < 4; i++) {
        char label[48];
        s->m_files[i] = tw__metrics_counter(m, "trailwatch_s3_files_total", "CloudTrail log files from S3, by outcome.",
                                           tw__metrics_label(label, sizeof label, "result", results[i]));
    }
    s->m_failed = tw__metrics_counter(m, "trailwatch_s3_files_failed_total",
                                     "S3 log files that could not be read (retried on a later poll).", "");
    s->m_records = tw__metrics_counter(m, "trailwatch_s3_records_total", "CloudTrail records read from S3.", "");
    s->m_lists = tw__metrics_counter(m, "trailwatch_s3_list_requests_total", "ListObjectsV2 requests made.", "");
    int prc = pthread_create(&s->thread, NULL, s3_main, s);
    if (prc) {
        rc = tw__err(err, TW_ESYS, "cannot start the S3 source's thread: %s", strerror(prc));
        goto fail;
    }
    *out = s;
    return TW_OK;
fail:
    s3src_free(s);
    return rc;
}

int tw__s3src_idle(const tw_s3src *s) { return atomic_load(&s->idle); }

void tw__s3src_stop(tw_s3src *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    atomic_store(&s->stop, 1);
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    s3src_free(s);
}
