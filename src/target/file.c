/* target/file.c: appends each alert as one line to a file (O_APPEND, fsync before it counts). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/err.h"
#include "target/kinds.h"

typedef struct file_impl {
    char *path;
} file_impl;

static void file_release(void *impl)
{
    file_impl *f = impl;
    if (f)
        free(f->path);
    free(f);
}

static tw_status file_configure(const tw_json *settings, void **impl, tw_error *err)
{
    static const char *const known[] = {"path", NULL};
    if (tw__setting_known(settings, known, err))
        return err ? err->code : TW_ECONFIG;
    file_impl *f = calloc(1, sizeof *f);
    if (!f)
        return tw__err(err, TW_ENOMEM, "out of memory");
    tw_status rc = tw__setting_str(settings, "path", 1, &f->path, err);
    if (rc) {
        file_release(f);
        return rc;
    }
    *impl = f;
    return TW_OK;
}

/* Deliveries run on several threads: one append at a time keeps lines whole. */
static pthread_mutex_t file_lock = PTHREAD_MUTEX_INITIALIZER;

static tw_outcome file_deliver(const void *impl, const char *body, size_t len, int64_t timeout_ms, char *why,
                               size_t why_len)
{
    (void)timeout_ms;
    const file_impl *f = impl;
    int fd = open(f->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(why, why_len, "open %s: %s", f->path, strerror(errno));
        return TW_OUTCOME_RETRY;               /* a missing directory or full disk may be fixed */
    }
    struct iovec iov[2] = {{(void *)body, len}, {(void *)"\n", 1}};
    int e = 0;
    pthread_mutex_lock(&file_lock);
    while (!e && (iov[0].iov_len || iov[1].iov_len)) {
        ssize_t n = writev(fd, iov[0].iov_len ? iov : iov + 1, iov[0].iov_len ? 2 : 1);
        if (n < 0) {
            if (errno != EINTR)
                e = errno;
            continue;
        }
        for (int i = 0; i < 2 && n > 0; i++) {
            size_t k = (size_t)n < iov[i].iov_len ? (size_t)n : iov[i].iov_len;
            iov[i].iov_base = (char *)iov[i].iov_base + k;
            iov[i].iov_len -= k;
            n -= (ssize_t)k;
        }
    }
    pthread_mutex_unlock(&file_lock);
    if (!e && fsync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && !e)
        e = errno;
    if (e) {
        snprintf(why, why_len, "write %s: %s", f->path, strerror(e));
        return TW_OUTCOME_RETRY;
    }
    return TW_OUTCOME_DELIVERED;
}

static const char *const file_paths[] = {"path", NULL};

const tw_target_ops tw__target_file = {
    .kind = "file",
    .transport = TW_TRANSPORT_FILE,
    .policy = {.timeout_ms = 10000, .concurrency = 1, .path_settings = file_paths},
    .configure = file_configure,
    .release = file_release,
    .render = tw__render_line,
    .deliver_local = file_deliver,
};

