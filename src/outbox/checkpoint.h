/*
 * outbox/checkpoint.h: the outbox's WAL copied into its database on a thread of its own (internal).
 *
 * Ownership: a tw_ckpt owns its thread and its own connection to the database; the writer's store is
 * borrowed and must outlive it (stop the checkpointer first).
 *
 * SQLite copies the WAL back into the database (a checkpoint) inside the commit that crosses its
 * threshold, and that commit waits for the copy and its fsync. Here the writer's commits only signal;
 * the copy runs beside the next commits (a PASSIVE checkpoint never blocks the writer).
 */
#ifndef TW_OUTBOX_CHECKPOINT_H
#define TW_OUTBOX_CHECKPOINT_H

#include <stdint.h>

#include "outbox/store.h"

typedef struct tw_ckpt tw_ckpt;

/* Opens a second connection to data_dir's database and hooks the writer's commits. */
tw_status tw__ckpt_start(const char *data_dir, tw_store *writer, tw_ckpt **out, tw_error *err);
/* Checkpoints run so far, and whether none is asked for or running (tests). */
uint64_t tw__ckpt_count(tw_ckpt *c);
int tw__ckpt_idle(tw_ckpt *c);
/* Stops the thread and closes its connection; the writer's store checkpoints on its own again. */
void tw__ckpt_stop(tw_ckpt *c);

#endif
