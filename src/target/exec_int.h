/*
 * target/exec_int.h: the exec kind's parsed settings (internal to src/target/exec*.c).
 *
 * Ownership: a tw_exec owns every string and array in it (tw__exec_release frees them).
 */
#ifndef TW_TARGET_EXEC_INT_H
#define TW_TARGET_EXEC_INT_H

#include <stddef.h>

#include "trailwatch/error.h"
#include "trailwatch/json.h"

typedef struct tw_exec {
    char **argv;                   /* NULL-terminated; for a handler: python3 -c <shim> module function */
    size_t argc;
    char **env_names, **env_values;/* `env`, applied after the base environment */
    size_t nenv;
    char *cwd;                     /* NULL: the server's */
    char *region;                  /* AWS_REGION / AWS_DEFAULT_REGION, NULL: not set */
    /* handler mode (Lambda-like), else NULL / 0 */
    char *handler, *module, *function, *code_dir, *function_name;
    long memory_size;
} tw_exec;

tw_status tw__exec_configure(const tw_json *settings, void **impl, tw_error *err);
void tw__exec_release(void *impl);

/* The Python program that calls module.function(event, context) like Lambda's runtime. */
extern const char tw__exec_python_shim[];

#endif
