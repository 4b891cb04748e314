/* source/gzip.c: tw_gunzip for the HTTP handlers (Content-Encoding: gzip, gzip records).
 *
 * The work is in common/gunzip.c, which the event reader's in-memory input shares, so that a body is
 * judged corrupt or truncated the same way whichever path decompresses it. */
#include "common/gunzip.h"
#include "source/http.h"

tw_status tw_gunzip(const void *in, size_t len, size_t max, tw_buf *out, tw_error *err)
{
    return tw__gunzip(in, len, max, out, err);
}
