/*
 * bench/outbox_store.c: the outbox's SQLite work per alert, alone (not part of trailwatch).
 *
 * What the server's writer thread does for a stream of alerts that are delivered at once: each
 * commit inserts a batch of alerts (2 KB bodies, one target) and deletes the batch before it. Prints
 * the process CPU time per alert (insert + delete + its share of the commit and its fsync). Uses the
 * library's internal store (src/outbox/store.h), as the writer does. Run by bench/outbox_store.
 *
 *     outbox_store DIR COMMITS BATCH
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "outbox/store.h"

static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: outbox_store DIR COMMITS BATCH\n");
        return 2;
    }
    int commits = atoi(argv[2]), batch = atoi(argv[3]);
    if (commits < 1 || batch < 1 || batch > 10000) {
        fprintf(stderr, "outbox_store: COMMITS >= 1, 1 <= BATCH <= 10000\n");
        return 2;
    }
    static char body[2000];
    memset(body, 'x', sizeof body);
    int64_t *prev = calloc((size_t)batch, sizeof *prev);
    tw_store *st = NULL;
    tw_error err;
    int rc = 1;
    if (!prev || tw_store_open(argv[1], &st, &err)) {
        fprintf(stderr, "outbox_store: %s\n", prev ? err.msg : "out of memory");
        goto out;
    }
    int np = 0;
    double t0 = cpu_s();
    for (int c = 0; c < commits; c++) {
        if (tw__store_begin(st, &err))
            goto fail;
        for (int i = 0; i < np; i++)
            if (tw__store_delete_alert(st, prev[i], &err))
                goto fail;
        np = 0;
        for (int i = 0; i < batch; i++) {
            tw_alert_row r = {0, "hook", "rule", "evid-0123456789", "idem-0123456789abcdef", body, sizeof body,
                              1000, 1000, 0, "", 0};
            if (tw__store_insert_alert(st, &r, &err))
                goto fail;
            prev[np++] = r.id;
        }
        if (tw__store_commit(st, &err))
            goto fail;
    }
    printf("%.3f\n", (cpu_s() - t0) * 1e6 / ((double)commits * batch)); /* us of CPU per alert */
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "outbox_store: %s\n", err.msg);
out:
    tw_store_close(st);
    free(prev);
    return rc;
}
