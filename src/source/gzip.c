/* source/gzip.c: tw__http_gunzip for the HTTP handlers (Content-Encoding: gzip, gzip records).
 *
 * The work is in common/gunzip.c, which the event reader's in-memory input shares, so that a body is
 * judged corrupt or truncated the same way whichever path decompresses it. Here the output is also
 * counted against the server's budget, so that concurrent gzip bombs cannot add up (issue #10). */
#include "common/budget.h"
#include "common/gunzip.h"
#include "source/http.h"

tw_status tw__http_gunzip(const tw_source_ctx *ctx, const void *in, size_t len, size_t max, tw_buf *out, size_t *held,
                    tw_error *err)
{
    return tw__gunzip_budget(in, len, max, out, ctx ? ctx->gunzip : NULL, held, err);
}

void tw__gunzip_done(const tw_source_ctx *ctx, size_t *held)
{
    tw__budget_give(ctx ? ctx->gunzip : NULL, *held);
    *held = 0;
}
