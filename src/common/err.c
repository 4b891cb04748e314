/* common/err.c: tw_strerror and the helpers that fill a tw_error. */
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const status_names[TW_STATUS_COUNT_] = {
    [TW_OK] = "success",
    [TW_ENOMEM] = "out of memory",
    [TW_EINVAL] = "invalid argument",
    [TW_EJSON] = "invalid JSON",
    [TW_EUTF8] = "invalid UTF-8",
    [TW_EDEPTH] = "nesting too deep",
    [TW_ETOOBIG] = "input too large",
    [TW_EPATTERN] = "invalid event pattern",
    [TW_EEVENT] = "invalid event",
    [TW_EIO] = "I/O error",
    [TW_EGZIP] = "corrupt or truncated gzip data",
    [TW_EYAML] = "invalid YAML",
    [TW_ECONFIG] = "invalid configuration",
    [TW_ELIMIT] = "limit exceeded",
    [TW_ENOTFOUND] = "not found",
    [TW_EEXIST] = "already exists",
    [TW_EDB] = "database error",
    [TW_EHTTP] = "HTTP error",
    [TW_EAUTH] = "authentication failed",
    [TW_ETRANSFORM] = "invalid input transformation",
    [TW_ESYS] = "system error",
    [TW_ETIMEOUT] = "timed out",
    [TW_EBUSY] = "busy",
    [TW_ECORRUPT] = "damaged data",
    [TW_ENOSPC] = "disk full",
};

const char *tw_strerror(tw_status code)
{
    if ((unsigned)code >= TW_STATUS_COUNT_ || !status_names[code])
        return "unknown error";
    return status_names[code];
}

void tw_error_clear(tw_error *err)
{
    if (!err)
        return;
    err->code = TW_OK;
    err->msg[0] = '\0';
}

tw_status tw__err(tw_error *err, tw_status code, const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

tw_status tw__err_prefix(tw_error *err, const char *fmt, ...)
{
    if (!err)
        return TW_OK;
    char prefix[TW_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    if (n < 0)
        return err->code;
    /* Truncation of a long message is acceptable; keep the prefix (it says where). */
    size_t plen = strlen(prefix), cap = sizeof err->msg;
    if (plen > cap - 3)
        plen = cap - 3;
    size_t olen = strnlen(err->msg, cap - 1);
    if (plen + 2 + olen > cap - 1)
        olen = cap - 1 - plen - 2;
    memmove(err->msg + plen + 2, err->msg, olen);
    memcpy(err->msg, prefix, plen);
    memcpy(err->msg + plen, ": ", 2);
    err->msg[plen + 2 + olen] = '\0';
    return err->code;
}
