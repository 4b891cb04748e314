/*
 * event/input.h: a byte stream from a file descriptor, gunzipped when it starts with the gzip magic
 * (internal).
 *
 * Ownership: the tw_input owns its buffers and its zlib state, not the descriptor.
 */
#ifndef TW_EVENT_INPUT_H
#define TW_EVENT_INPUT_H

#include <stddef.h>
#include <zlib.h>

#include "trailwatch/error.h"

#define TW_INPUT_CHUNK (256u * 1024u)

typedef struct tw_input {
    int fd;
    int gzip;              /* stream is gzip (possibly several members) */
    int started;           /* magic checked */
    int eof;               /* no more bytes will come */
    z_stream z;
    unsigned char *raw;    /* compressed bytes read but not yet inflated */
    size_t raw_len, raw_off;
    int raw_eof;
    size_t total;          /* decompressed bytes delivered */
} tw_input;

tw_status tw__input_init(tw_input *in, int fd);
void tw__input_free(tw_input *in);

/* Reads up to cap bytes into buf; *got = 0 only at the end. Errors: TW_EIO, TW_EGZIP; *got bytes
 * (decoded before corrupt gzip data was met) are valid on an error too. */
tw_status tw__input_read(tw_input *in, char *buf, size_t cap, size_t *got, tw_error *err);

#endif
