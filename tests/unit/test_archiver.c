/* tests/unit/test_archiver.c: serve's archive writer when it falls behind: with archive.when_full
 * wait (the default) a full queue holds the sender back and every event is archived; with drop the
 * events that do not fit are left out and counted. The writer is held back by a second SQLite
 * connection that keeps the archive's write lock for a moment. */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/archiver.h"
#include "trailwatch/archive.h"
#include "trailwatch/server.h"
#include "tw_test.h"

#define NEVENTS 600
#define PER_CALL 10

static char dir[256];

static tw_config *config(const char *when_full)
{
    snprintf(dir, sizeof dir, "/tmp/tw-archiver-XXXXXX");
    if (!mkdtemp(dir))
        return NULL;
    char path[512];
    snprintf(path, sizeof path, "%s/trailwatch.yml", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return NULL;
    fprintf(f, "data_dir: %s\nrules: []\narchive: {path: %s/archive.db, when_full: %s}\n", dir, dir, when_full);
    fclose(f);
    tw_config *cfg = NULL;
    size_t nerr = 0;
    tw_error e;
    if (tw_config_load(path, &cfg, &nerr, NULL, NULL, &e))
        printf("#   config: %s\n", e.msg);
    return cfg;
}

static void cleanup(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        printf("#   could not remove %s\n", dir);
}

typedef struct holder {
    sqlite3 *db;
    int ms;
} holder;

/* Keeps the archive's write lock for h->ms, then lets the writer go on. */
static void *hold_lock(void *arg)
{
    holder *h = arg;
    usleep((useconds_t)h->ms * 1000);
    sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL);
    return NULL;
}

/* Sends NEVENTS events, PER_CALL at a time, through the hook while the archive is locked: for
 * lock_ms by a thread (the sends wait for room meanwhile), or, with lock_ms 0, until every send has
 * returned. Returns the events archived and sets *dropped and *waits from the metrics. */
static uint64_t run(const char *when_full, int lock_ms, uint64_t *dropped, uint64_t *waits)
{
    uint64_t archived = 0;
    *dropped = ~0ull;
    tw_config *cfg = config(when_full);
    if (!cfg)
        return 0;
    tw_metrics *m = tw__metrics_new();
    tw__archiver *a = NULL;
    tw_error e;
    if (tw__archiver_start(cfg, m, &a, &e)) {
        printf("#   start: %s\n", e.msg);
        goto out;
    }
    tw__archiver_set_queue_cap(a, 50, 1 << 20);
    char path[512];
    snprintf(path, sizeof path, "%s/archive.db", dir);
    holder h = {NULL, lock_ms};
    pthread_t t;
    int locked = sqlite3_open(path, &h.db) == SQLITE_OK &&
                 sqlite3_exec(h.db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK &&
                 (!lock_ms || pthread_create(&t, NULL, hold_lock, &h) == 0);
    CHECK(locked);
    char json[PER_CALL][256];
    tw_ingest_item items[PER_CALL];
    tw_ingest_result results[PER_CALL];
    memset(results, 0, sizeof results);
    for (int i = 0; i < NEVENTS / PER_CALL; i++) {
        for (int k = 0; k < PER_CALL; k++) {
            int n = i * PER_CALL + k;
            int len = snprintf(json[k], sizeof json[k],
                               "{\"version\":\"0\",\"id\":\"00000000-0000-4000-8000-%012d\",\"detail-type\":\"T\","
                               "\"source\":\"app.t\",\"account\":\"123456789012\",\"time\":\"2026-01-01T00:00:00Z\","
                               "\"region\":\"us-east-1\",\"resources\":[],\"detail\":{\"n\":%d}}",
                               n, n);
            items[k] = (tw_ingest_item){json[k], (size_t)len, TW_EVENT_AUTO};
        }
        tw__archiver_take(a, items, results, PER_CALL);
    }
    if (locked && lock_ms)
        pthread_join(t, NULL);
    else
        sqlite3_exec(h.db, "COMMIT", NULL, NULL, NULL);
    tw__archiver_stop(a);   /* writes what is still queued */
    a = NULL;
    sqlite3_close(h.db);
    const tw_counter *c = tw__metrics_find(m, "trailwatch_archive_dropped_total", "reason=\"queue_full\"");
    *dropped = c ? c->value : 0;
    c = tw__metrics_find(m, "trailwatch_archive_queue_waits_total", "");
    *waits = c ? c->value : 0;
    tw_archive *ar = NULL;
    tw_archive_opts o = {TW_ARCHIVE_SQLITE, path, NULL, 1};
    tw_archive_stats st;
    if (tw_archive_open(&ar, &o, &e) == TW_OK && tw_archive_stats_get(ar, &st, &e) == TW_OK)
        archived = st.events;
    else
        printf("#   archive: %s\n", e.msg);
    tw_archive_close(ar);
out:
    tw__archiver_stop(a);
    tw__metrics_free(m);
    tw_config_free(cfg);
    cleanup();
    return archived;
}

TW_TEST(full_queue_holds_the_sender_and_archives_every_event)
{
    uint64_t dropped, waits;
    uint64_t archived = run("wait", 700, &dropped, &waits);
    CHECK_EQ_INT(archived, NEVENTS);
    CHECK_EQ_INT(dropped, 0);
    CHECK(waits > 0);   /* the queue was full: the test tested the wait */
}

TW_TEST(full_queue_with_when_full_drop_leaves_events_out_and_counts_them)
{
    uint64_t dropped, waits;
    uint64_t archived = run("drop", 0, &dropped, &waits);
    CHECK_EQ_INT(waits, 0);
    CHECK(dropped > 0);
    CHECK(dropped != ~0ull);
    CHECK_EQ_INT(archived + dropped, NEVENTS);
}

TW_TEST_MAIN()
