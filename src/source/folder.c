/*
 * source/folder.c: CloudTrail log files in a folder (the S3 AWSLogs/ layout, .json and .json.gz): one
 * pass over everything in sorted order, then inotify for what arrives.
 *
 * A file is marked done by the engine in the same transaction as its last events' alerts, with its
 * size and mtime, so a restart skips exactly the files that were finished. A file that cannot be read
 * completely (still being written, truncated, corrupt) is submitted not at all and not marked: it is
 * read again when it changes (inotify, or a stat every backoff period, which also covers writers
 * inotify cannot see). A file that is complete but is not a CloudTrail log file (no "Records") is
 * counted as rejected and marked done, so it is not read again until it changes.
 *
 * Files read one after another are committed together (a job: up to PENDING_FILES files or a
 * batch of records), and submitter threads submit the jobs while this one reads the next files: one
 * transaction and one fsync for many small files, and reading overlaps committing. At most
 * JOBS_AHEAD + SUBMITTERS jobs (PENDING_BYTES of text each) are read and not yet committed. A commit per
 * file, each waited for, is what made a folder of small files slow on a busy machine (3,872 files:
 * 17 s at load 9). A file is still marked done in the transaction that holds its last records, and
 * everything read is committed before the thread waits for news (idle means committed).
 *
 * One thread does the walk, inotify and retries, so that state needs no lock; the jobs handed to
 * the submitters are under jlock; stop and idle are atomics shared with the server's thread.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/hash.h"
#include "common/thread.h"
#include "common/vec.h"
#include "telemetry/log.h"
#include "source/batch.h"
#include "source/folder.h"

#define RETRY_FIRST_MS 30000       /* a file still being written is usually complete within this */
#define RETRY_MAX_MS   3600000
#define RESCAN_MS      60000       /* when some directory could not be watched */
#define DEPTH_MAX      32          /* AWSLogs/<org>/<account>/CloudTrail/<region>/Y/M/D is 8 deep */
#define WATCH_MASK     (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_MOVE_SELF | IN_ONLYDIR)
#define PENDING_FILES  256         /* files read but not yet committed (one commit marks them all) */
#define PENDING_BYTES  (8u << 20)  /* record text they hold until that commit */
#define JOBS_AHEAD     2           /* jobs waiting for a submitter: reading stays this far ahead */
/* Several submitters: one job's engine work overlaps another's commit (its fsync and the writer),
 * and their jobs can share one group commit; on a busy machine they also hold more of its CPU
 * (bench/README.md, "Folder ingest"). Files stay committed with their own records; only the order
 * in which neighbouring jobs' alerts commit may swap. */
#define SUBMITTERS     3

typedef struct watched {
    int wd;
    char *path;
} watched;

/* A file read completely whose records wait in the batch for the next commit. */
typedef struct pending {
    char *path;
    int64_t size, mtime;
    size_t records;
    int is_log;                    /* a CloudTrail log file ({"Records": [...]}), else it is rejected */
    char *text;                    /* its records' text, kept until the commit */
    uint64_t hash;                 /* of path: the lookups below compare it before the path */
} pending;

/* A commit's worth of files: their records (text in pend[].text) and their done marks. */
typedef struct job {
    struct job *next;
    TW_VEC(tw_ingest_item) items;
    TW_VEC(tw_event_where) where;
    pending pend[PENDING_FILES];
    tw_commit_file marks[PENDING_FILES];
    size_t npend, bytes;
    tw_status rc;                  /* the submit's outcome */
    char why[TW_ERROR_MSG_MAX];
} job;

typedef struct retry {
    char *path;
    int64_t size, mtime;           /* of the failed attempt */
    int64_t due_ms, backoff_ms;
    int content;                   /* the bytes were bad (not the disk or the engine): unchanged = same fate */
} retry;

struct tw_folder {
    tw_engine *engine;
    tw_metrics *metrics;
    char *root;
    int watch;
    pthread_t thread;
    int wake_fd;
    atomic_int stop, idle;

    /* the thread's own */
    tw_limits lim;
    tw_event_reader *rd;           /* reopened for each file: its buffers serve every file */
    int ino;
    watched *dirs;
    size_t ndirs, capdirs;
    char **queue;
    size_t nqueue, capqueue;
    retry *retries;
    size_t nretries, capretries;
    int rescan, degraded;
    int64_t next_rescan_ms;
    tw_ingest_item *items;         /* one file's records, submitted only once all are read */
    tw_event_where *where;
    size_t capitems;
    job *cur;                      /* the files being gathered */
    job *spare;                    /* reaped jobs, for reuse */
    size_t inflight;               /* jobs handed over and not reaped */

    /* the submitter threads: jobs to submit and jobs done, under jlock */
    struct submitter {
        struct tw_folder *f;
        pthread_t thread;
        job *submitting;           /* under jlock */
        tw_src_batch b;            /* this submitter's own */
    } sub[SUBMITTERS];
    size_t nsub;                   /* started */
    pthread_mutex_t jlock;
    pthread_cond_t jcond;          /* a job handed over, a job done, or the end */
    job *todo, **todo_tail, *done;
    size_t ntodo;
    int sub_stop;
    tw_counter *m_processed, *m_done, *m_rejected, *m_failed, *m_records, *m_failing;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int stopping(const tw_folder *f) { return atomic_load(&f->stop) || tw__engine_stopping(f->engine); }

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && memcmp(s + n - k, suffix, k) == 0;
}

/* Log files only: digests (CloudTrail-Digest/, *_CloudTrail-Digest_*) hold hashes, not records, and
 * dot files are other tools' temporary files (rsync, editors) that are renamed when complete. */
static int wanted_file(const char *name)
{
    return name[0] != '.' && (ends_with(name, ".json") || ends_with(name, ".json.gz")) &&
           !strstr(name, "_CloudTrail-Digest_");
}

static int wanted_dir(const char *name) { return name[0] != '.' && strcmp(name, "CloudTrail-Digest") != 0; }

/* ---- retries ---- */

static retry *find_retry(tw_folder *f, const char *path)
{
    for (size_t i = 0; i < f->nretries; i++)
        if (strcmp(f->retries[i].path, path) == 0)
            return &f->retries[i];
    return NULL;
}

static void drop_retry(tw_folder *f, const char *path)
{
    retry *r = find_retry(f, path);
    if (!r)
        return;
    free(r->path);
    *r = f->retries[--f->nretries];
    tw_gauge_set(f->m_failing, f->nretries);
}

static void schedule_retry(tw_folder *f, const char *path, int64_t size, int64_t mtime, int content)
{
    retry *r = find_retry(f, path);
    if (!r) {
        if (tw__vec_reserve(&f->retries, &f->capretries, f->nretries, 1, sizeof *f->retries))
            return; /* forgotten until it changes or the next start: it was not marked done */
        char *p = strdup(path);
        if (!p)
            return;
        r = &f->retries[f->nretries++];
        *r = (retry){.path = p, .backoff_ms = RETRY_FIRST_MS / 2};
    }
    r->size = size;
    r->mtime = mtime;
    r->content = content;
    r->backoff_ms = r->backoff_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : r->backoff_ms * 2;
    r->due_ms = mono_ms() + r->backoff_ms;
    tw_gauge_set(f->m_failing, f->nretries);
}

/* ---- one file ---- */

static int content_error(tw_status rc) { return rc != TW_EIO && rc != TW_ENOMEM; }

static void file_failed(tw_folder *f, const char *path, int64_t size, int64_t mtime, tw_status rc, const char *why)
{
    tw_count(f->m_failed, 1);
    schedule_retry(f, path, size, mtime, content_error(rc));
    tw__log(TW_LOG_WARN, "folder: file not read completely, will retry when it changes", "path", path, "error", why,
           NULL);
}

static tw_status grow_items(tw_folder *f)
{
    /* two arrays of one length: items and where they came from */
    size_t cap = f->capitems, cap2 = f->capitems;
    if (tw__vec_reserve(&f->items, &cap, f->capitems, 1, sizeof *f->items) ||
        tw__vec_reserve(&f->where, &cap2, f->capitems, cap - f->capitems, sizeof *f->where))
        return TW_ENOMEM;
    f->capitems = cap;
    return TW_OK;
}

static void pending_free(pending *p)
{
    free(p->text);
    free(p->path);
    memset(p, 0, sizeof *p);
}

static void job_clear(job *j)
{
    for (size_t i = 0; i < j->npend; i++)
        pending_free(&j->pend[i]);
    j->npend = j->bytes = 0;
    j->items.n = j->where.n = 0;
    j->rc = TW_OK;
    j->why[0] = '\0';
}

static void job_free(job *j)
{
    if (!j)
        return;
    job_clear(j);
    TW_VEC_FREE(&j->items);
    TW_VEC_FREE(&j->where);
    free(j);
}

/* A submitter thread's work: the job's records in batches, the last one with the files' marks. */
static void submit_job(tw_folder *f, tw_src_batch *b, job *j)
{
    tw_status rc = TW_OK;
    for (size_t i = 0; i < j->items.n && !rc; i++)
        rc = tw__src_add(b, j->items.v[i].json, j->items.v[i].len, TW_EVENT_CLOUDTRAIL, &j->where.v[i]);
    if (!rc) {
        for (size_t i = 0; i < j->npend; i++) {
            const pending *p = &j->pend[i];
            j->marks[i] = (tw_commit_file){p->path, p->size, p->mtime, (int64_t)p->records};
        }
        b->opts.files = j->marks;
        b->opts.nfiles = j->npend;
        rc = tw__src_flush(b);
        b->opts.files = NULL;
        b->opts.nfiles = 0;
    }
    j->rc = rc;
    if (rc) {
        /* The engine failed (it is stopping, or its disk): nothing of these files counts; retried. */
        snprintf(j->why, sizeof j->why, "%s", b->err.msg);
        b->failed = TW_OK;
        b->n = 0;
        return;
    }
    for (size_t i = 0; i < j->npend; i++) {
        const pending *p = &j->pend[i];
        if (!p->is_log) {
            tw_count(f->m_rejected, 1);
            tw__log(TW_LOG_INFO, "folder: not a CloudTrail log file (no Records), skipped", "path", p->path, NULL);
        } else {
            tw_count(f->m_processed, 1);
            tw_count(f->m_records, p->records);
        }
    }
}

static void *submitter_main(void *arg)
{
    tw__thread_name("tw-submit");
    struct submitter *me = arg;
    tw_folder *f = me->f;
    pthread_mutex_lock(&f->jlock);
    for (;;) {
        while (!f->todo && !f->sub_stop)
            pthread_cond_wait(&f->jcond, &f->jlock);
        job *j = f->todo;
        if (!j)
            break; /* stopped, and everything handed over is submitted */
        if (!(f->todo = j->next))
            f->todo_tail = &f->todo;
        f->ntodo--;
        me->submitting = j;
        pthread_mutex_unlock(&f->jlock);
        submit_job(f, &me->b, j);
        pthread_mutex_lock(&f->jlock);
        me->submitting = NULL;
        j->next = f->done;
        f->done = j;
        pthread_cond_broadcast(&f->jcond);
    }
    pthread_mutex_unlock(&f->jlock);
    return NULL;
}

static int submitting(const tw_folder *f)
{
    for (size_t i = 0; i < SUBMITTERS; i++)
        if (f->sub[i].submitting)
            return 1;
    return 0;
}

/* Takes the submitted jobs back (all: waits until nothing is left to submit): a file whose commit
 * failed is retried later, one that was committed leaves the retry list. */
static void reap(tw_folder *f, int all)
{
    pthread_mutex_lock(&f->jlock);
    while (all && (f->todo || submitting(f)))
        pthread_cond_wait(&f->jcond, &f->jlock);
    job *d = f->done;
    f->done = NULL;
    pthread_mutex_unlock(&f->jlock);
    while (d) {
        job *next = d->next;
        for (size_t i = 0; i < d->npend; i++) {
            const pending *p = &d->pend[i];
            if (d->rc)
                file_failed(f, p->path, p->size, p->mtime, TW_EIO, d->why);
            else
                drop_retry(f, p->path);
        }
        job_clear(d);
        d->next = f->spare;
        f->spare = d;
        f->inflight--;
        d = next;
    }
}

/* Hands the gathered files to the submitter (waiting while JOBS_AHEAD jobs are ahead of it). */
static void flush_pending(tw_folder *f)
{
    job *j = f->cur;
    if (!j || (!j->npend && !j->items.n))
        return;
    reap(f, 0);
    f->cur = NULL;
    f->inflight++;
    pthread_mutex_lock(&f->jlock);
    while (f->ntodo >= JOBS_AHEAD)
        pthread_cond_wait(&f->jcond, &f->jlock);
    j->next = NULL;
    *f->todo_tail = j;
    f->todo_tail = &j->next;
    f->ntodo++;
    pthread_cond_broadcast(&f->jcond);
    pthread_mutex_unlock(&f->jlock);
}

/* Everything read is committed (or failed) when this returns. */
static void flush_all(tw_folder *f)
{
    flush_pending(f);
    if (f->inflight)
        reap(f, 1);
}

static uint64_t path_hash(const char *path) { return tw__hash_bytes(path, strlen(path), 0); }

static pending *find_pending(tw_folder *f, const char *path, uint64_t hash)
{
    for (size_t i = 0; f->cur && i < f->cur->npend; i++)
        if (f->cur->pend[i].hash == hash && strcmp(f->cur->pend[i].path, path) == 0)
            return &f->cur->pend[i];
    return NULL;
}

/* 1 when path is in a job handed to the submitter and not reaped yet. */
static int handed_over(tw_folder *f, const char *path, uint64_t hash)
{
    int found = 0;
    pthread_mutex_lock(&f->jlock);
    const job *lists[2 + SUBMITTERS] = {f->todo, f->done};
    for (size_t i = 0; i < SUBMITTERS; i++)
        lists[2 + i] = f->sub[i].submitting;
    for (size_t l = 0; l < 2 + SUBMITTERS && !found; l++)
        for (const job *j = lists[l]; j && !found; j = l >= 2 ? NULL : j->next)
            for (size_t i = 0; i < j->npend && !found; i++)
                found = j->pend[i].hash == hash && strcmp(j->pend[i].path, path) == 0;
    pthread_mutex_unlock(&f->jlock);
    return found;
}

/* A reader that stopped before the end of its file is freed (and the file closed) rather than kept:
 * failures are rare, and a folder that then stays quiet must not hold the file open. */
static void drop_reader(tw_folder *f)
{
    tw_event_reader_free(f->rd);
    f->rd = NULL;
}

/* Reads all of the file's records and queues them with the file; flush_pending commits them (a file
 * with more records than a batch is submitted in several, the last one marking it done). */
static void process_file(tw_folder *f, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return; /* gone since it was listed or announced */
    int64_t size = st.st_size, mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    retry *r = find_retry(f, path);
    if (r && r->content && r->size == size && r->mtime == mtime)
        return; /* the same bytes failed before; the retry timer rechecks for a change */
    uint64_t hash = path_hash(path);
    pending *p = find_pending(f, path, hash);
    if (p && p->size == size && p->mtime == mtime) {
        tw_count(f->m_done, 1); /* announced again while its commit is still to come */
        return;
    }
    if (p || (f->inflight && handed_over(f, path, hash)))
        flush_all(f); /* read before, not committed yet: that first, then decide on this one */
    if (tw__engine_file_done(f->engine, path, size, mtime)) {
        tw_count(f->m_done, 1);
        drop_retry(f, path);
        return;
    }
    tw_event_reader *rd = NULL;
    tw_error err;
    tw_status rc;
    size_t n;
    int records;
    for (int attempt = 0;; attempt++) {
        rc = f->rd ? tw_event_reader_reopen(f->rd, path, &err) : tw_event_reader_open(path, &f->lim, &f->rd, &err);
        rd = f->rd;
        n = 0;
        records = 1;
        while (!rc) {
            const char *json;
            size_t len;
            tw_event_where w;
            tw_status got = tw_event_reader_next(rd, &json, &len, &w, &err);
            if (w.format != TW_FORMAT_RECORDS) {
                /* Not {"Records":[...]}: not a CloudTrail log file. Read to the end all the same: only a
                 * file read completely may be marked done. */
                records = 0;
                if (got == TW_EGZIP || got == TW_EIO)
                    rc = got;
                if (got || json)
                    continue;
                break;
            }
            if ((rc = got) || !json)
                break;
            if (n == f->capitems && (rc = grow_items(f))) {
                tw__err(&err, rc, "out of memory reading the file");
                break;
            }
            f->items[n] = (tw_ingest_item){json, len, TW_EVENT_CLOUDTRAIL};
            f->where[n++] = w;
        }
        if (rc) {
            file_failed(f, path, size, mtime, rc, err.msg);
            drop_reader(f); /* stopped before the end: its file is still open */
            return;
        }
        /* The size and time were taken before the read: a file written meanwhile (created empty,
         * then filled) was read as it is now, and must not be marked done as it was before. */
        struct stat now;
        if (stat(path, &now) == 0 && now.st_size == size &&
            (int64_t)now.st_mtim.tv_sec * 1000000000 + now.st_mtim.tv_nsec == mtime)
            break;
        if (stat(path, &now) != 0)
            return; /* gone */
        size = now.st_size;
        mtime = (int64_t)now.st_mtim.tv_sec * 1000000000 + now.st_mtim.tv_nsec;
        if (attempt == 2) {
            file_failed(f, path, size, mtime, TW_EIO, "the file kept changing while it was read");
            drop_reader(f);
            return;
        }
    }
    if (!records)
        n = 0;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += f->items[i].len;
    /* The records' text is copied out of the reader, whose buffers (line_max + a read chunk, far more
     * than a small log file needs) serve the next file rather than being held by every pending one. */
    char *copy = strdup(path), *text = malloc(bytes ? bytes : 1);
    if (!copy || !text) {
        free(copy);
        free(text);
        file_failed(f, path, size, mtime, TW_ENOMEM, "out of memory");
        return;
    }
    for (size_t i = 0, at = 0; i < n; i++) {
        memcpy(text + at, f->items[i].json, f->items[i].len);
        f->items[i].json = text + at;
        at += f->items[i].len;
    }
    /* The files before go first when this one would overflow the batch, the pending list or its
     * bytes: a commit then holds whole files, except a file larger than a batch. */
    job *j = f->cur;
    if (j && (j->npend == PENDING_FILES || j->items.n + n > TW_SRC_BATCH || j->bytes + bytes > PENDING_BYTES)) {
        flush_pending(f);
        j = NULL;
    }
    if (!j && (j = f->spare))
        f->spare = j->next;
    else if (!j)
        j = calloc(1, sizeof *j);
    if (!j || TW_VEC_RESERVE(&j->items, n) || TW_VEC_RESERVE(&j->where, n)) {
        if (j && !f->cur) {
            j->next = f->spare;
            f->spare = j;
        }
        free(copy);
        free(text);
        file_failed(f, path, size, mtime, TW_ENOMEM, "out of memory");
        return;
    }
    f->cur = j;
    if (n) { /* a file without records (truncated, empty) still joins the job to be marked done */
        memcpy(j->items.v + j->items.n, f->items, n * sizeof *f->items);
        memcpy(j->where.v + j->where.n, f->where, n * sizeof *f->where);
    }
    j->items.n += n;
    j->where.n += n;
    j->pend[j->npend++] = (pending){copy, size, mtime, n, records, text, hash};
    j->bytes += bytes;
}

/* ---- the walk ---- */

static void add_watch(tw_folder *f, const char *dir)
{
    if (f->ino < 0)
        return;
    int wd = inotify_add_watch(f->ino, dir, WATCH_MASK);
    if (wd < 0) {
        if (!f->degraded)
            tw__log(TW_LOG_WARN, "folder: cannot watch a directory, rescanning every minute instead", "path", dir,
                   "error", strerror(errno), NULL);
        f->degraded = 1;
        return;
    }
    /* The same directory (a rescan, or after a rename) keeps its wd: update its path. */
    for (size_t i = 0; i < f->ndirs; i++)
        if (f->dirs[i].wd == wd) {
            char *p = strdup(dir);
            if (p) {
                free(f->dirs[i].path);
                f->dirs[i].path = p;
            }
            return;
        }
    if (tw__vec_reserve(&f->dirs, &f->capdirs, f->ndirs, 1, sizeof *f->dirs))
        return;
    char *p = strdup(dir);
    if (p)
        f->dirs[f->ndirs++] = (watched){wd, p};
}

typedef struct entry {
    char *name;
    unsigned char type;
} entry;

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

/* Watches dir first (files landing while it is listed are announced, not lost), then takes its
 * entries in byte order, descending into subdirectories (symlinked directories are not followed:
 * they could loop). */
static void scan(tw_folder *f, const char *dir, int depth)
{
    if (depth > DEPTH_MAX || stopping(f))
        return;
    add_watch(f, dir);
    DIR *d = opendir(dir);
    if (!d)
        return;
    entry *ents = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.')
            continue;
        unsigned char type = de->d_type;
        struct stat st;
        if (type == DT_UNKNOWN && fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
            type = S_ISREG(st.st_mode) ? DT_REG : S_ISDIR(st.st_mode) ? DT_DIR : S_ISLNK(st.st_mode) ? DT_LNK : 0;
        if (type == DT_LNK) /* a link to a file is taken, a link to a directory is not */
            type = fstatat(dirfd(d), de->d_name, &st, 0) == 0 && S_ISREG(st.st_mode) ? DT_REG : 0;
        if ((type == DT_REG && !wanted_file(de->d_name)) || (type == DT_DIR && !wanted_dir(de->d_name)) ||
            (type != DT_REG && type != DT_DIR))
            continue;
        if (n == cap) {
            size_t c = cap ? cap * 2 : 64;
            entry *e = realloc(ents, c * sizeof *e);
            if (!e)
                break;
            ents = e;
            cap = c;
        }
        if (!(ents[n].name = strdup(de->d_name)))
            break;
        ents[n++].type = type;
    }
    closedir(d);
    if (n) /* qsort wants a valid array even for nothing to sort */
        qsort(ents, n, sizeof *ents, entry_cmp);
    char path[PATH_MAX];
    for (size_t i = 0; i < n; i++) {
        if (!stopping(f) && (size_t)snprintf(path, sizeof path, "%s/%s", dir, ents[i].name) < sizeof path) {
            if (ents[i].type == DT_DIR)
                scan(f, path, depth + 1);
            else
                process_file(f, path);
        }
        free(ents[i].name);
    }
    free(ents);
}

/* ---- inotify ---- */

static void enqueue(tw_folder *f, const char *path)
{
    for (size_t i = 0; i < f->nqueue; i++)
        if (strcmp(f->queue[i], path) == 0)
            return;
    if (f->nqueue == f->capqueue) {
        size_t cap = f->capqueue ? f->capqueue * 2 : 32;
        char **q = realloc(f->queue, cap * sizeof *q);
        if (!q) {
            f->rescan = 1; /* found again by the walk */
            return;
        }
        f->queue = q;
        f->capqueue = cap;
    }
    if ((f->queue[f->nqueue] = strdup(path)))
        f->nqueue++;
    else
        f->rescan = 1;
}

static void forget_wd(tw_folder *f, int wd)
{
    for (size_t i = 0; i < f->ndirs; i++)
        if (f->dirs[i].wd == wd) {
            free(f->dirs[i].path);
            f->dirs[i] = f->dirs[--f->ndirs];
            return;
        }
}

static void read_events(tw_folder *f)
{
    char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t got = read(f->ino, buf, sizeof buf);
        if (got <= 0)
            return; /* EAGAIN: drained */
        for (char *p = buf; p < buf + got;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
            p += sizeof *ev + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) {
                f->rescan = 1; /* events were lost: the walk finds what they announced */
                continue;
            }
            if (ev->mask & IN_IGNORED) {
                forget_wd(f, ev->wd);
                continue;
            }
            if (ev->mask & IN_MOVE_SELF) {
                f->rescan = 1; /* a watched directory moved: the walk fixes the paths */
                continue;
            }
            const char *dir = NULL;
            for (size_t i = 0; i < f->ndirs && !dir; i++)
                if (f->dirs[i].wd == ev->wd)
                    dir = f->dirs[i].path;
            char path[PATH_MAX];
            if (!dir || !ev->len || (size_t)snprintf(path, sizeof path, "%s/%s", dir, ev->name) >= sizeof path)
                continue;
            if (ev->mask & IN_ISDIR) {
                /* Files may have landed in it before its watch exists: walk it now. */
                if ((ev->mask & (IN_CREATE | IN_MOVED_TO)) && wanted_dir(ev->name))
                    scan(f, path, 1);
            } else if ((ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) && wanted_file(ev->name)) {
                enqueue(f, path);
            }
        }
    }
}

/* Failed files whose backoff ended: re-read when changed (or when the failure was not the bytes'). */
static int64_t run_retries(tw_folder *f)
{
    int64_t now = mono_ms(), next = INT64_MAX;
    for (size_t i = 0; i < f->nretries && !stopping(f);) {
        retry *r = &f->retries[i];
        if (r->due_ms > now) {
            next = r->due_ms < next ? r->due_ms : next;
            i++;
            continue;
        }
        struct stat st;
        int64_t size = 0, mtime = 0;
        if (stat(r->path, &st) != 0) {
            drop_retry(f, r->path); /* gone */
            continue;
        }
        size = st.st_size;
        mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        if (r->content && size == r->size && mtime == r->mtime) {
            schedule_retry(f, r->path, size, mtime, 1);
            next = r->due_ms < next ? r->due_ms : next;
            i++;
            continue;
        }
        r->content = 0; /* let process_file read it */
        char *path = strdup(r->path);
        if (!path)
            break;
        size_t before = f->nretries;
        process_file(f, path);
        flush_all(f); /* its outcome decides what happens to its retry entry */
        free(path);
        if (f->nretries == before)
            i++; /* still failing: rescheduled in place */
        now = mono_ms();
    }
    return next;
}

static void *folder_main(void *arg)
{
    tw__thread_name("tw-folder");
    tw_folder *f = arg;
    if (f->watch && (f->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0) {
        tw__log(TW_LOG_WARN, "folder: inotify unavailable, rescanning every minute instead", "error", strerror(errno),
               NULL);
        f->degraded = 1;
    }
    scan(f, f->root, 0);
    flush_all(f);
    if (!f->watch) {
        atomic_store(&f->idle, 1);
        return NULL;
    }
    f->next_rescan_ms = mono_ms() + RESCAN_MS;
    while (!stopping(f)) {
        flush_all(f); /* before any wait: what was read is committed now, not after the next file */
        atomic_store(&f->idle, f->nqueue == 0 && !f->rescan);
        int64_t next = run_retries(f), now = mono_ms();
        if (f->degraded && f->next_rescan_ms < next)
            next = f->next_rescan_ms;
        /* A bounded wait also notices tw__engine_stopping, which has no wake-up of its own. */
        int timeout = next - now > 1000 ? 1000 : next - now < 0 ? 0 : (int)(next - now);
        struct pollfd p[2] = {{f->wake_fd, POLLIN, 0}, {f->ino, POLLIN, 0}};
        if (poll(p, f->ino >= 0 ? 2 : 1, timeout) < 0 && errno != EINTR)
            break;
        if (stopping(f))
            break;
        if (f->ino >= 0 && (p[1].revents & POLLIN)) {
            atomic_store(&f->idle, 0);
            read_events(f);
        }
        if (f->degraded && mono_ms() >= f->next_rescan_ms) {
            f->rescan = 1;
            f->next_rescan_ms = mono_ms() + RESCAN_MS;
        }
        if (f->rescan) {
            f->rescan = 0;
            scan(f, f->root, 0);
        }
        for (size_t i = 0; i < f->nqueue; i++) {
            if (!stopping(f))
                process_file(f, f->queue[i]);
            free(f->queue[i]);
        }
        f->nqueue = 0;
    }
    return NULL;
}

/* ---- lifecycle ---- */

static void folder_free(tw_folder *f)
{
    if (f->wake_fd >= 0)
        close(f->wake_fd);
    if (f->ino >= 0)
        close(f->ino);
    for (size_t i = 0; i < f->ndirs; i++)
        free(f->dirs[i].path);
    for (size_t i = 0; i < f->nqueue; i++)
        free(f->queue[i]);
    for (size_t i = 0; i < f->nretries; i++)
        free(f->retries[i].path);
    if (f->nsub) {
        /* what was handed over is submitted first (it fails at once when the engine is stopping) */
        pthread_mutex_lock(&f->jlock);
        f->sub_stop = 1;
        pthread_cond_broadcast(&f->jcond);
        pthread_mutex_unlock(&f->jlock);
        for (size_t i = 0; i < f->nsub; i++)
            pthread_join(f->sub[i].thread, NULL);
    }
    pthread_mutex_destroy(&f->jlock);
    pthread_cond_destroy(&f->jcond);
    job_free(f->cur); /* read, not handed over: read again at the next start */
    for (job *j = f->done, *next; j; j = next) {
        next = j->next;
        job_free(j);
    }
    for (job *j = f->spare, *next; j; j = next) {
        next = j->next;
        job_free(j);
    }
    free(f->dirs);
    free(f->queue);
    free(f->retries);
    free(f->items);
    free(f->where);
    tw_event_reader_free(f->rd);
    for (size_t i = 0; i < SUBMITTERS; i++)
        tw__src_batch_free(&f->sub[i].b);
    free(f->root);
    free(f);
}

tw_status tw__folder_start(tw_engine *e, tw_metrics *m, const char *path, int watch, tw_folder **out, tw_error *err)
{
    *out = NULL;
    tw_folder *f = calloc(1, sizeof *f);
    if (!f)
        return tw__err(err, TW_ENOMEM, "out of memory starting the folder source");
    f->engine = e;
    f->metrics = m;
    f->watch = watch;
    f->wake_fd = f->ino = -1;
    tw_limits_default(&f->lim);
    pthread_mutex_init(&f->jlock, NULL);
    pthread_cond_init(&f->jcond, NULL);
    f->todo_tail = &f->todo;
    tw_status rc;
    struct stat st;
    /* The canonical path names files for the done marks, so "./trail" and "/srv/trail" agree. */
    if (!(f->root = realpath(path, NULL)) || stat(f->root, &st) != 0 || !S_ISDIR(st.st_mode)) {
        rc = tw__err(err, errno == ENOMEM ? TW_ENOMEM : TW_ENOTFOUND, "folder %s: %s", path,
                     f->root ? "not a directory" : strerror(errno));
        goto fail;
    }
    for (size_t i = 0; i < SUBMITTERS; i++)
        if ((rc = tw__src_batch_init(&f->sub[i].b, e, m, "folder", err)))
            goto fail;
    if ((f->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        rc = tw__err(err, TW_ESYS, "folder %s: eventfd: %s", path, strerror(errno));
        goto fail;
    }
    static const char *const results[] = {"processed", "already_done", "rejected", "failed"};
    tw_counter **counters[] = {&f->m_processed, &f->m_done, &f->m_rejected, &f->m_failed};
    for (size_t i = 0; i < 4; i++) {
        char label[48];
        *counters[i] = tw__metrics_counter(m, TW_METRIC_FOLDER_FILES,
                                          "CloudTrail log files seen in the folder, by what became of them.",
                                          tw__metrics_label(label, sizeof label, "result", results[i]));
    }
    f->m_records = tw__metrics_counter(m, TW_METRIC_FOLDER_RECORDS,
                                      "CloudTrail records read from log files in the folder.", "");
    f->m_failing = tw__metrics_gauge(m, "trailwatch_folder_files_failing",
                                    "Log files that could not be read completely and wait for a change.", "");
    int prc = 0;
    for (; f->nsub < SUBMITTERS; f->nsub++) {
        f->sub[f->nsub].f = f;
        if ((prc = pthread_create(&f->sub[f->nsub].thread, NULL, submitter_main, &f->sub[f->nsub]))) {
            rc = tw__err(err, TW_ESYS, "folder %s: cannot start its thread: %s", path, strerror(prc));
            goto fail;
        }
    }
    prc = pthread_create(&f->thread, NULL, folder_main, f);
    if (prc) {
        rc = tw__err(err, TW_ESYS, "folder %s: cannot start its thread: %s", path, strerror(prc));
        goto fail;
    }
    *out = f;
    return TW_OK;
fail:
    folder_free(f);
    return rc;
}

int tw__folder_idle(const tw_folder *f) { return atomic_load(&f->idle); }

void tw__folder_stop(tw_folder *f)
{
    if (!f)
        return;
    atomic_store(&f->stop, 1);
    uint64_t one = 1;
    if (write(f->wake_fd, &one, sizeof one) < 0) {
        /* the counter is full, so the thread is being woken already */
    }
    pthread_join(f->thread, NULL);
    folder_free(f);
}
