/* common/gunzip.c: whole-buffer gunzip with zlib (multi-member, capped, strict about the end). */
#include "common/gunzip.h"

#include <stdint.h>
#include <zlib.h>

#include "common/err.h"
#include "common/budget.h"

/* Output is produced in steps of at least this much so small bodies need one or two inflate calls. */
#define STEP (64u * 1024u)

tw_status tw__gunzip(const void *in, size_t len, size_t max, tw_buf *out, tw_error *err)
{
    return tw__gunzip_budget(in, len, max, out, NULL, NULL, err);
}

tw_status tw__gunzip_budget(const void *in, size_t len, size_t max, tw_buf *out, tw__budget *budget, size_t *held,
                            tw_error *err)
{
    if (len == 0)
        return tw__err(err, TW_EGZIP, "empty gzip data");
    if (!tw__is_gzip(in, len))
        return tw__err(err, TW_EGZIP, "not gzip data (no 1f 8b magic)");
    if (max == 0)
        max = SIZE_MAX - 1;
    z_stream z = {0};
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        return tw__err(err, TW_ENOMEM, "cannot start gzip decoding");
    const unsigned char *p = in;
    size_t left = len, produced = 0;
    tw_status rc = TW_OK;
    for (;;) {
        /* Room for one byte past the cap, so that reaching it can be told from exceeding it. */
        size_t want = out->len < STEP ? STEP : out->len;
        if (want > max - produced + 1)
            want = max - produced + 1;
        if (want > UINT32_MAX)
            want = UINT32_MAX;
        /* The budget counts what the output may hold after this step, taken before it is allocated. */
        if (budget && out->len + want + 1 > *held) {
            size_t more = out->len + want + 1 - *held;
            int fits = tw__budget_take(budget, more);
            if (!fits && want > STEP) { /* near the budget: smaller steps rather than a refusal */
                want = STEP;
                more = out->len + want + 1 > *held ? out->len + want + 1 - *held : 0;
                fits = tw__budget_take(budget, more);
            }
            if (!fits) {
                rc = tw__err(err, TW_EBUSY, "decompressed data of the requests in progress reached the budget of %zu "
                                            "bytes (after %zu bytes of this one's output): try again later",
                             budget->cap, produced);
                break;
            }
            *held += more;
        }
        if ((rc = tw__buf_reserve(out, want))) {
            rc = tw__err(err, rc, rc == TW_ETOOBIG ? "decompressed data larger than the limit"
                                                   : "out of memory decompressing gzip data");
            break;
        }
        z.next_in = (Bytef *)(uintptr_t)p;
        z.avail_in = left > UINT32_MAX ? UINT32_MAX : (uInt)left;
        uInt avail_in = z.avail_in;
        z.next_out = (Bytef *)out->data + out->len;
        z.avail_out = (uInt)want;
        int zr = inflate(&z, Z_NO_FLUSH);
        size_t got = want - z.avail_out;
        p += avail_in - z.avail_in;
        left -= avail_in - z.avail_in;
        out->len += got;
        out->data[out->len] = '\0';
        produced += got;
        if (produced > max) {
            out->len -= produced - max;
            out->data[out->len] = '\0';
            rc = tw__err(err, TW_ETOOBIG, "decompressed data larger than the limit of %zu bytes", max);
            break;
        }
        if (zr == Z_STREAM_END) {
            if (left == 0)
                break;
            /* Concatenated members are one stream (RFC 1952 2.2); anything else after is corrupt. */
            if (!tw__is_gzip(p, left)) {
                rc = tw__err(err, TW_EGZIP, "unexpected bytes after gzip data (%zu bytes of output)", produced);
                break;
            }
            inflateReset(&z);
            continue;
        }
        if (zr == Z_OK || (zr == Z_BUF_ERROR && z.avail_out == 0))
            continue;
        if (zr == Z_BUF_ERROR && left == 0) {
            rc = tw__err(err, TW_EGZIP, "truncated gzip data after %zu bytes of output", produced);
            break;
        }
        rc = tw__err(err, zr == Z_MEM_ERROR ? TW_ENOMEM : TW_EGZIP, "corrupt gzip data after %zu bytes of output: %s",
                     produced, z.msg ? z.msg : "inflate failed");
        break;
    }
    inflateEnd(&z);
    return rc;
}
