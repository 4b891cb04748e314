/*
 * source/folder.h: a folder of CloudTrail log files (the S3 AWSLogs layout, .json and .json.gz),
 * processed once and then watched with inotify (internal).
 *
 * Ownership: the server owns the tw_folder; stop joins its thread. Which files are done is kept in
 * the outbox database, marked in the same transaction as the file's alerts, so a restart neither
 * skips nor repeats a file (a file cut short by a crash is read again; its duplicates are dropped
 * by eventID).
 */
#ifndef TW_SOURCE_FOLDER_H
#define TW_SOURCE_FOLDER_H

#include "engine/engine.h"
#include "telemetry/metrics.h"

typedef struct tw_folder tw_folder;

tw_status tw__folder_start(tw_engine *e, tw_metrics *m, const char *path, int watch, tw_folder **out,
                          tw_error *err);
/* 1 once the first pass is done and no file is waiting. */
int tw__folder_idle(const tw_folder *f);
void tw__folder_stop(tw_folder *f);

#endif
