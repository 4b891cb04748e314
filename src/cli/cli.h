/*
 * cli/cli.h: what the subcommands share: messages, exit codes, reading arguments (the CLI is the only
 * part of trailwatch that prints; it uses the public library API only).
 *
 * Ownership: buffers returned by tw_cli_read_arg are malloc'd and belong to the caller.
 */
#ifndef TW_CLI_CLI_H
#define TW_CLI_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "trailwatch/error.h"
#include "trailwatch/limits.h"

/* Exit codes (docs/CLI.md): 0 yes/success, 1 no/not found, 2 usage or input error, 3 runtime failure. */
#define TW_EXIT_OK 0
#define TW_EXIT_NO 1
#define TW_EXIT_USAGE 2
#define TW_EXIT_FAIL 3

typedef struct tw_cli_cmd {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} tw_cli_cmd;

/* "trailwatch: <message>" on stderr. */
void tw_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An error from the library, with a prefix naming the subject. */
void tw_cli_error_status(const char *what, const tw_error *err);
/* Exit code for a library status: input problems are 2, resource and I/O failures 3. */
int tw_cli_exit_for(tw_status code);

/* An argument that is JSON text, or @FILE for the contents of FILE. */
int tw_cli_read_arg(const char *arg, size_t max, char **text, size_t *len, tw_error *err);

/* A YAML (or JSON) file of one document of at most lim->file_max bytes, e.g. Sigma's --placeholders
 * (the caller frees *doc). */
struct tw_json_doc;
int tw_cli_read_yaml(const char *path, const tw_limits *lim, struct tw_json_doc **doc, tw_error *err);

/* Parses a size such as 262144, 256k, 1m (bytes). Returns 0 on error. */
int tw_cli_parse_size(const char *s, size_t *out);

/* systemd's notification protocol: state ("READY=1", "STOPPING=1", "RELOADING=1") to $NOTIFY_SOCKET. */
void tw_cli_notify(const char *state);

struct tw_server;
/* Alerts delivered as serve delivers them (deliver.c; replay --deliver, ingest --alert): a replay
 * server of the configuration FILE whose outbox is data_dir, or DATA_DIR/sub without one (its path
 * into dir). SIGINT and SIGTERM then end tw_cli_deliver_drain early. Prints the error and returns an
 * exit code (0: started). */
int tw_cli_deliver_start(const char *config, const char *data_dir, const char *sub, struct tw_server **out,
                         char *dir, size_t cap);
/* Waits until the server has nothing left to send, wait_ms at most; returns the alerts still in its
 * outbox (they go out on the next start with the same outbox). */
uint64_t tw_cli_deliver_drain(struct tw_server *s, int64_t wait_ms);
/* 1 once SIGINT or SIGTERM arrived after tw_cli_deliver_start. */
int tw_cli_deliver_interrupted(void);

/* serve --summary (summary.c): the first lines, and the summary once the first pass is done. */
void tw_cli_summary_start(const char *config_path, const char *describe, const char *listen, int port,
                          const char *folder);
void tw_cli_summary_print(struct tw_server *s, double seconds, int port);

int tw_cmd_test_pattern(int argc, char **argv);
int tw_cmd_dashboard(int argc, char **argv);
int tw_cmd_serve(int argc, char **argv);  /* cmd_serve.c */
int tw_cmd_rules(int argc, char **argv);  /* cmd_rules.c */
int tw_cmd_dlq(int argc, char **argv);    /* cmd_dlq.c */
int tw_cmd_match(int argc, char **argv);
int tw_cmd_cluster(int argc, char **argv); /* cmd_cluster.c */
int tw_cmd_verify(int argc, char **argv);  /* cmd_verify.c */
int tw_cmd_sigma(int argc, char **argv);  /* cmd_sigma.c */
int tw_cmd_ingest(int argc, char **argv);  /* cmd_ingest.c */
int tw_cmd_query(int argc, char **argv);   /* cmd_query.c */
int tw_cmd_who(int argc, char **argv);     /* cmd_who.c */
int tw_cmd_archive(int argc, char **argv); /* cmd_archive.c */

/* Where the archive is (cmd_archive.c): --archive PATH (or a PostgreSQL DSN), else --data-dir DIR's
 * archive.db, or -c FILE's archive (archive.path, data_dir/archive.db, or archive.dsn with backend
 * postgres). Prints the error and returns an exit code (0 = found). */
typedef struct tw_cli_archive_loc {
    const char *archive, *data_dir, *config;
} tw_cli_archive_loc;
#define TW_CLI_ARCHIVE_OPTIONS_HELP                                                                       \
    "  --archive PATH        the archive file, or a PostgreSQL archive: a libpq connection string or\n"   \
    "                        URI (postgresql://user@host/db, 'host=... dbname=...')\n"                     \
    "  --data-dir DIR        or DIR/archive.db\n"                                                         \
    "  --config, -c FILE     or the archive of this configuration (archive.path or data_dir, or\n"       \
    "                        its PostgreSQL: archive.backend postgres, archive.dsn)\n"
struct tw_archive;
int tw_cli_archive_open(const tw_cli_archive_loc *loc, int readonly, struct tw_archive **out);
/* 1 when an --archive value is a libpq connection string or URI (a PostgreSQL archive), not a file. */
int tw_cli_archive_is_dsn(const char *s);
/* 2021-07-28T12:00:00Z (UTC, seconds; milliseconds when not whole). */
void tw_cli_time(int64_t ms, char *out, size_t cap);
/* A JSON string of n bytes to f, escaped. */
void tw_cli_json_string(FILE *f, const char *s, size_t n);
/* The same for a NUL-terminated string. */
void tw_cli_json_str(FILE *f, const char *s);
/* The wall clock in milliseconds since the epoch (where --since and retention count from). */
int64_t tw_cli_now_ms(void);
/* A CSV field to f, quoted when needed. */
void tw_cli_csv_field(FILE *f, const char *s);

/* Archive rows out (rows.c, used by query and who): an aligned table (buffered until
 * tw_cli_rows_end), JSON lines or CSV. */
enum { TW_CLI_TABLE, TW_CLI_JSON, TW_CLI_CSV };
/* What the rows are: query's events, who's changes, or query --sigma's events with their rules. */
enum { TW_CLI_ROWS_QUERY, TW_CLI_ROWS_WHO, TW_CLI_ROWS_SIGMA };
struct tw_archive_row;
typedef struct tw_cli_rows tw_cli_rows;
/* format from --format (NULL: a table on a terminal, JSON lines otherwise); NULL when unknown. */
tw_cli_rows *tw_cli_rows_new(const char *format, int kind);
int tw_cli_rows_format(const tw_cli_rows *rows);
int tw_cli_rows_add(void *rows, const struct tw_archive_row *r);   /* a tw_archive_row_fn */
/* A row with the names of the rules it matched (TW_CLI_ROWS_SIGMA); 1 when out of memory. */
int tw_cli_rows_add_rules(tw_cli_rows *rows, const struct tw_archive_row *r, const char *const *rules,
                          size_t nrules);
size_t tw_cli_rows_end(tw_cli_rows *rows);                          /* prints the table; frees; the count */
int tw_cmd_replay(int argc, char **argv); /* cmd_replay.c */
/* Monotonic seconds (for --timing). */
double tw_cli_seconds(void);

#endif
