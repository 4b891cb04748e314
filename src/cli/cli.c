/* cli/cli.c: messages, exit codes and argument helpers shared by the subcommands. */
#include "cli/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trailwatch/rulefile.h"
#include "trailwatch/yaml.h"

void tw_cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("trailwatch: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void tw_cli_error_status(const char *what, const tw_error *err)
{
    if (what && *what)
        tw_cli_error("%s: %s", what, err->msg[0] ? err->msg : tw_strerror(err->code));
    else
        tw_cli_error("%s", err->msg[0] ? err->msg : tw_strerror(err->code));
}

int tw_cli_exit_for(tw_status code)
{
    switch (code) {
    case TW_OK:
        return TW_EXIT_OK;
    case TW_ENOMEM:
    case TW_ESYS:
    case TW_EDB:
    case TW_ETIMEOUT:
    case TW_EIO:
    case TW_ECORRUPT:
    case TW_ENOSPC:
    case TW_EBUSY:
        return TW_EXIT_FAIL;
    default:
        return TW_EXIT_USAGE;
    }
}

int tw_cli_read_arg(const char *arg, size_t max, char **text, size_t *len, tw_error *err)
{
    if (arg[0] == '@')
        return tw_read_file(arg + 1, max, text, len, err);
    *len = strlen(arg);
    if (*len > max) {
        err->code = TW_ETOOBIG;
        snprintf(err->msg, sizeof err->msg, "argument of %zu bytes exceeds the limit of %zu bytes", *len, max);
        return TW_ETOOBIG;
    }
    *text = strdup(arg);
    if (!*text) {
        err->code = TW_ENOMEM;
        snprintf(err->msg, sizeof err->msg, "out of memory");
        return TW_ENOMEM;
    }
    return TW_OK;
}

int tw_cli_parse_size(const char *s, size_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s)
        return 0;
    unsigned long long mult = 1;
    if (*end == 'k' || *end == 'K')
        mult = 1024, end++;
    else if (*end == 'm' || *end == 'M')
        mult = 1024 * 1024, end++;
    if (*end || v == 0 || v > ((unsigned long long)1 << 40) / mult)
        return 0;
    *out = (size_t)(v * mult);
    return 1;
}

int tw_cli_read_yaml(const char *path, const tw_limits *lim, tw_json_doc **doc, tw_error *err)
{
    char *text = NULL;
    size_t len = 0;
    *doc = NULL;
    tw_status rc = tw_read_file(path, lim->file_max, &text, &len, err);
    if (!rc)
        rc = tw_yaml_parse(text, len, lim, doc, err);
    free(text);
    return rc;
}

int64_t tw_cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
