/*
 * bench/archive_pg.c: load and query a trailwatch archive through the public API (tw_archive_*),
 * for bench/archive_pg. Events are CloudTrail records shaped like the recorded ones (~1.2 KB):
 * EC2, S3, IAM and STS calls by 200 principals over a space of instances, buckets and roles, so
 * that each resource is touched by tens of events, mutating and read-only mixed.
 *
 *   archive_pg insert DSN|PATH FIRST COUNT   events FIRST..FIRST+COUNT-1 (deterministic), 120 per
 *                                            second of event time from 2026-01-01; prints JSON
 *   archive_pg who DSN|PATH SEED QUERIES      who(instance) on QUERIES instances (picked from SEED);
 *                                            prints JSON with latencies
 *   archive_pg resource|principal ...         the same with query --resource INSTANCE / query --who
 *                                            USER (newest 100 events, as the CLI's default limit)
 * A DSN ("host=..." or "postgresql://...") opens PostgreSQL, anything else is a SQLite file.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "trailwatch/archive.h"

#define EVENTS_PER_SECOND 120
#define EPOCH_MS 1767225600000LL /* 2026-01-01 */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_utime.tv_usec / 1e6 + (double)u.ru_stime.tv_sec +
           (double)u.ru_stime.tv_usec / 1e6;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* Instances: 120,000, so a who answers ~6 rows per million events archived (3/4 of them change). */
#define INSTANCES 120000u

static int open_archive(const char *where, int readonly, tw_archive **a)
{
    tw_archive_opts o;
    memset(&o, 0, sizeof o);
    if (strncmp(where, "host=", 5) == 0 || strncmp(where, "postgres", 8) == 0) {
        o.backend = TW_ARCHIVE_POSTGRES;
        o.dsn = where;
    } else {
        o.backend = TW_ARCHIVE_SQLITE;
        o.path = where;
    }
    o.readonly = readonly;
    tw_error err;
    if (tw_archive_open(a, &o, &err)) {
        fprintf(stderr, "archive_pg: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static const char *const NAMES[] = {"RunInstances",  "StopInstances", "StartInstances",      "TerminateInstances",
                                    "DescribeInstances", "CreateTags", "ModifyInstanceAttribute", "GetConsoleOutput"};

static int event(char *out, size_t cap, uint64_t i)
{
    uint64_t h = mix(i + 1);
    int64_t t = EPOCH_MS + (int64_t)(i / EVENTS_PER_SECOND) * 1000;
    time_t s = (time_t)(t / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    const char *name = NAMES[h % 8];
    int ro = strncmp(name, "Describe", 8) == 0 || strncmp(name, "Get", 3) == 0;
    unsigned user = (unsigned)(h >> 8) % 200;
    uint64_t inst = (h >> 16) % INSTANCES;
    return snprintf(out, cap,
                    "{\"eventVersion\":\"1.08\",\"userIdentity\":{\"type\":\"IAMUser\",\"principalId\":\"AIDA%016llX\","
                    "\"arn\":\"arn:aws:iam::123456789012:user/user%u\",\"accountId\":\"123456789012\",\"accessKeyId\":"
                    "\"AKIA%016llX\",\"userName\":\"user%u\",\"sessionContext\":{\"attributes\":{\"creationDate\":\"%s\","
                    "\"mfaAuthenticated\":\"false\"}}},\"eventTime\":\"%s\",\"eventSource\":\"ec2.amazonaws.com\","
                    "\"eventName\":\"%s\",\"awsRegion\":\"us-east-1\",\"sourceIPAddress\":\"198.51.%u.%u\","
                    "\"userAgent\":\"aws-cli/2.15.30 Python/3.11.8 Linux/6.1.0 exe/x86_64.debian.12 prompt/off "
                    "command/ec2.%s\",\"requestParameters\":{\"instancesSet\":{\"items\":[{\"instanceId\":"
                    "\"i-%017llx\"}]},\"filterSet\":{}},\"responseElements\":{\"requestId\":\"%08llx-1111-2222-3333-"
                    "%012llx\",\"instancesSet\":{\"items\":[{\"instanceId\":\"i-%017llx\",\"currentState\":{\"code\":16,"
                    "\"name\":\"running\"}}]}},\"requestID\":\"%08llx-1111-2222-3333-%012llx\",\"eventID\":\"%08llx-"
                    "aaaa-4bbb-8ccc-%012llx\",\"readOnly\":%s,\"eventType\":\"AwsApiCall\",\"managementEvent\":true,"
                    "\"recipientAccountId\":\"123456789012\",\"eventCategory\":\"Management\",\"tlsDetails\":{"
                    "\"tlsVersion\":\"TLSv1.3\",\"cipherSuite\":\"TLS_AES_128_GCM_SHA256\",\"clientProvidedHostHeader\":"
                    "\"ec2.us-east-1.amazonaws.com\"}}",
                    (unsigned long long)(mix(user) >> 1), user, (unsigned long long)(mix(user + 7) >> 1), user, when,
                    when, name, (unsigned)(h >> 24) % 250, (unsigned)(h >> 32) % 250 + 1, name,
                    (unsigned long long)inst, (unsigned long long)(h & 0xffffffff),
                    (unsigned long long)(i & 0xffffffffffffULL), (unsigned long long)inst,
                    (unsigned long long)(h & 0xffffffff), (unsigned long long)(i & 0xffffffffffffULL),
                    (unsigned long long)(h >> 32), (unsigned long long)(i & 0xffffffffffffULL), ro ? "true" : "false");
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int count_row(void *ud, const tw_archive_row *r)
{
    (void)r;
    (*(size_t *)ud)++;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: archive_pg insert DSN|PATH FIRST COUNT | who|resource|principal DSN|PATH SEED QUERIES\n");
        return 2;
    }
    tw_archive *a;
    tw_error err;
    uint64_t x = strtoull(argv[3], NULL, 10), y = strtoull(argv[4], NULL, 10);
    if (strcmp(argv[1], "insert") == 0) {
        if (open_archive(argv[2], 0, &a))
            return 1;
        char buf[4096];
        uint64_t bytes = 0;
        double t0 = now(), c0 = cpu();
        for (uint64_t i = x; i < x + y; i++) {
            int n = event(buf, sizeof buf, i);
            bytes += (uint64_t)n;
            tw_status s = tw_archive_add(a, buf, (size_t)n, 0, &err);
            if (s && s != TW_EEXIST) {
                fprintf(stderr, "archive_pg: event %llu: %s\n", (unsigned long long)i, err.msg);
                return 1;
            }
        }
        if (tw_archive_flush(a, &err)) {
            fprintf(stderr, "archive_pg: %s\n", err.msg);
            return 1;
        }
        double t = now() - t0, c = cpu() - c0;
        printf("{\"events\":%llu,\"committed\":%llu,\"seconds\":%.3f,\"client_cpu\":%.3f,\"bytes\":%llu}\n",
               (unsigned long long)y, (unsigned long long)tw_archive_committed(a), t, c, (unsigned long long)bytes);
        tw_archive_close(a);
        return 0;
    }
    int mode = strcmp(argv[1], "who") == 0 ? 1 : strcmp(argv[1], "resource") == 0 ? 2 : strcmp(argv[1], "principal") == 0 ? 3 : 0;
    if (mode) {
        if (open_archive(argv[2], 1, &a))
            return 1;
        double *lat = calloc(y ? y : 1, sizeof *lat);
        size_t rows = 0, empty = 0;
        char res[96];
        double c0 = cpu();
        for (uint64_t q = 0; q < y; q++) {
            size_t n = 0;
            tw_status s;
            double t0 = now();
            if (mode == 3) {
                /* query --who: a principal's newest 100 events (each of the 200 users has 1/200 of all) */
                snprintf(res, sizeof res, "arn:aws:iam::123456789012:user/user%u", (unsigned)(mix(q + x) % 200));
                tw_archive_query aq = {0};
                aq.who = res;
                aq.limit = 100;
                s = tw_archive_find(a, &aq, count_row, &n, NULL, 0, &err);
            } else {
                snprintf(res, sizeof res, "i-%017llx", (unsigned long long)(mix(q + x) % INSTANCES));
                if (mode == 1) {
                    s = tw_archive_who(a, res, 0, 0, count_row, &n, &err);
                } else {
                    /* query --resource: every event naming the instance, read-only ones too (limit 100) */
                    tw_archive_query aq = {0};
                    aq.resource = res;
                    aq.limit = 100;
                    s = tw_archive_find(a, &aq, count_row, &n, NULL, 0, &err);
                }
            }
            if (s) {
                fprintf(stderr, "archive_pg: %s %s: %s\n", argv[1], res, err.msg);
                return 1;
            }
            lat[q] = (now() - t0) * 1000;
            rows += n;
            empty += n == 0;
        }
        double c = cpu() - c0;
        qsort(lat, y, sizeof *lat, cmp_double);
        printf("{\"queries\":%llu,\"rows\":%zu,\"empty\":%zu,\"p50_ms\":%.2f,\"p95_ms\":%.2f,\"p99_ms\":%.2f,"
               "\"max_ms\":%.2f,\"client_cpu\":%.3f}\n",
               (unsigned long long)y, rows, empty, lat[y / 2], lat[y * 95 / 100], lat[y * 99 / 100], lat[y - 1], c);
        free(lat);
        tw_archive_close(a);
        return 0;
    }
    fprintf(stderr, "archive_pg: unknown command %s\n", argv[1]);
    return 2;
}
