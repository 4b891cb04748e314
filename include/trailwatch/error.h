/*
 * trailwatch/error.h: the library's one error type.
 *
 * Ownership: a tw_error is a plain value owned by the caller; the library only writes into it.
 *
 * Every library call returns a tw_status (0 = TW_OK) and, when it fails and the caller passed a
 * tw_error, fills it with the same code and a message that names what failed and where
 * ("rules.yml:12: detail.eventName: \"prefix\" must be a string"). The numbers are stable: they
 * may be stored, logged and compared across versions; new codes are only ever appended.
 */
#ifndef TRAILWATCH_ERROR_H
#define TRAILWATCH_ERROR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tw_status {
    TW_OK = 0,
    TW_ENOMEM = 1,        /* an allocation failed */
    TW_EINVAL = 2,        /* a caller passed an invalid argument */
    TW_EJSON = 3,         /* input is not valid JSON (syntax) */
    TW_EUTF8 = 4,         /* input is not valid UTF-8 */
    TW_EDEPTH = 5,        /* input nests deeper than the configured limit */
    TW_ETOOBIG = 6,       /* input is larger than the configured limit */
    TW_EPATTERN = 7,      /* an event pattern is invalid */
    TW_EEVENT = 8,        /* an event is valid JSON but not a usable event (e.g. not an object) */
    TW_EIO = 9,           /* reading or writing a file or stream failed */
    TW_EGZIP = 10,        /* compressed input is corrupt or truncated */
    TW_EYAML = 11,        /* a YAML document is invalid */
    TW_ECONFIG = 12,      /* a configuration is invalid */
    TW_ELIMIT = 13,       /* a counted limit (rules, values, combinations) was exceeded */
    TW_ENOTFOUND = 14,    /* a named thing does not exist */
    TW_EEXIST = 15,       /* a named thing already exists */
    TW_EDB = 16,          /* the embedded database failed */
    TW_EHTTP = 17,        /* an HTTP exchange failed */
    TW_EAUTH = 18,        /* authentication or signature verification failed */
    TW_ETRANSFORM = 19,   /* an input transformation is invalid or failed */
    TW_ESYS = 20,         /* a system call failed */
    TW_ETIMEOUT = 21,     /* an operation timed out */
    TW_EBUSY = 22,        /* a budget or cap of a shared resource is reached; try again later */
    TW_ECORRUPT = 23,     /* stored data is damaged (an archive file that is not one, a bad block) */
    TW_ENOSPC = 24,       /* the disk is full */
    TW_STATUS_COUNT_      /* not a status: one past the last */
} tw_status;

#define TW_ERROR_MSG_MAX 512

typedef struct tw_error {
    tw_status code;
    char msg[TW_ERROR_MSG_MAX]; /* NUL-terminated; "" when code is TW_OK */
} tw_error;

/* A short, static, human name for a status ("invalid JSON"). Never NULL. */
const char *tw_strerror(tw_status code);

/* Clears an error to TW_OK / "". Accepts NULL. */
void tw_error_clear(tw_error *err);

#ifdef __cplusplus
}
#endif
#endif
