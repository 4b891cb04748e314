/* event/input.c: read(2) plus transparent gunzip (multi-member; truncation is an error). */
#include "event/input.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"

tw_status tw__input_init(tw_input *in, int fd)
{
    memset(in, 0, sizeof *in);
    in->fd = fd;
    return TW_OK;
}

void tw__input_free(tw_input *in)
{
    if (in->gzip)
        inflateEnd(&in->z);
    free(in->raw);
    in->raw = NULL;
}

static tw_status fill_raw(tw_input *in, tw_error *err)
{
    if (!in->raw && !(in->raw = malloc(TW_INPUT_CHUNK)))
        return tw__err(err, TW_ENOMEM, "out of memory reading input");
    if (in->raw_off < in->raw_len || in->raw_eof)
        return TW_OK;
    ssize_t n;
    do
        n = read(in->fd, in->raw, TW_INPUT_CHUNK);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return tw__err(err, TW_EIO, "read failed: %s", strerror(errno));
    in->raw_len = (size_t)n;
    in->raw_off = 0;
    if (n == 0)
        in->raw_eof = 1;
    return TW_OK;
}

static tw_status start(tw_input *in, tw_error *err)
{
    in->started = 1;
    tw_status rc = fill_raw(in, err);
    if (rc)
        return rc;
    /* A one-byte first read cannot show the magic; read until two bytes or the end. */
    while (in->raw_len - in->raw_off < 2 && !in->raw_eof) {
        unsigned char first = in->raw_len > in->raw_off ? in->raw[in->raw_off] : 0;
        int have = in->raw_len > in->raw_off;
        ssize_t n;
        do
            n = read(in->fd, in->raw + 1, TW_INPUT_CHUNK - 1);
        while (n < 0 && errno == EINTR);
        if (n < 0)
            return tw__err(err, TW_EIO, "read failed: %s", strerror(errno));
        if (n == 0)
            in->raw_eof = 1;
        in->raw[0] = first;
        in->raw_off = have ? 0 : 1;
        in->raw_len = (size_t)n + 1;
    }
    if (in->raw_len - in->raw_off >= 2 && in->raw[in->raw_off] == 0x1f && in->raw[in->raw_off + 1] == 0x8b) {
        if (inflateInit2(&in->z, 16 + MAX_WBITS) != Z_OK)
            return tw__err(err, TW_ENOMEM, "cannot start gzip decoding");
        in->gzip = 1;
    }
    return TW_OK;
}

tw_status tw__input_read(tw_input *in, char *buf, size_t cap, size_t *got, tw_error *err)
{
    *got = 0;
    tw_status rc;
    if (!in->started && (rc = start(in, err)))
        return rc;
    if (in->eof)
        return TW_OK;
    if (!in->gzip) {
        if (in->raw_off == in->raw_len && !in->raw_eof && cap >= TW_INPUT_CHUNK) {
            /* The first chunk is used up: read straight into the caller's buffer, not via raw. */
            ssize_t r;
            do
                r = read(in->fd, buf, cap);
            while (r < 0 && errno == EINTR);
            if (r < 0)
                return tw__err(err, TW_EIO, "read failed: %s", strerror(errno));
            if (r == 0) {
                in->raw_eof = 1;
                in->eof = 1;
                return TW_OK;
            }
            in->total += (size_t)r;
            *got = (size_t)r;
            return TW_OK;
        }
        if ((rc = fill_raw(in, err)))
            return rc;
        size_t n = in->raw_len - in->raw_off;
        if (n == 0) {
            in->eof = 1;
            return TW_OK;
        }
        if (n > cap)
            n = cap;
        memcpy(buf, in->raw + in->raw_off, n);
        in->raw_off += n;
        in->total += n;
        *got = n;
        return TW_OK;
    }
    while (*got == 0) {
        if ((rc = fill_raw(in, err)))
            return rc;
        if (in->raw_off == in->raw_len && in->raw_eof) {
            in->eof = 1;
            /* z.total_in > 0 with no stream end means the last member was cut short. */
            if (in->z.total_in > 0)
                return tw__err(err, TW_EGZIP, "truncated gzip data after %zu bytes of output", in->total);
            return TW_OK;
        }
        in->z.next_in = in->raw + in->raw_off;
        in->z.avail_in = (uInt)(in->raw_len - in->raw_off);
        in->z.next_out = (Bytef *)buf;
        in->z.avail_out = (uInt)(cap > UINT32_MAX ? UINT32_MAX : cap);
        int zr = inflate(&in->z, Z_NO_FLUSH);
        in->raw_off = in->raw_len - in->z.avail_in;
        *got = cap - in->z.avail_out;
        in->total += *got;
        if (zr == Z_STREAM_END) {
            /* Another member may follow (concatenated gzip). */
            inflateReset(&in->z);
            in->z.total_in = 0;
            continue;
        }
        if (zr == Z_BUF_ERROR && *got == 0 && in->raw_off == in->raw_len)
            continue; /* needs more input */
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            in->eof = 1;
            return tw__err(err, TW_EGZIP, "corrupt gzip data after %zu bytes of output: %s", in->total,
                           in->z.msg ? in->z.msg : "inflate failed");
        }
    }
    return TW_OK;
}
