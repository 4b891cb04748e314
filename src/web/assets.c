/* web/assets.c: the page and its files from the binary: gzip when the browser takes it (it always
 * does), ETag revalidation for the page, "immutable" for the hashed asset names. */
#include <string.h>
#include <strings.h>

#include "web/assets.h"
#include "web/web_int.h"

static int takes_gzip(const tw_http_req *req)
{
    const char *ae = tw__http_req_header(req, "Accept-Encoding");
    return ae && strstr(ae, "gzip") && !strstr(ae, "gzip;q=0");
}

void tw__web_serve_asset(const tw_http_req *req, const char *rel, tw_http_resp *resp)
{
    const tw__web_asset *a = NULL;
    for (size_t i = 0; i < tw__web_nassets && !a; i++)
        if (strcmp(tw__web_assets[i].path, rel) == 0)
            a = &tw__web_assets[i];
    resp->static_headers = tw__web_page_headers;
    if (!a) {
        tw__web_error(resp, 404, "not found");
        return;
    }
    tw__http_resp_header(resp, "ETag", a->etag);
    tw__http_resp_header(resp, "Cache-Control", a->immutable ? "public, max-age=31536000, immutable" : "no-cache");
    tw__http_resp_header(resp, "Vary", "Accept-Encoding");
    const char *inm = tw__http_req_header(req, "If-None-Match");
    resp->content_type = a->content_type;
    if (inm && strstr(inm, a->etag)) {
        resp->status = 304;
        return;
    }
    resp->status = 200;
    if (takes_gzip(req)) {
        tw__http_resp_header(resp, "Content-Encoding", "gzip");
        resp->static_body = a->gz;
        resp->static_len = a->gz_len;
    } else {
        resp->static_body = a->data;
        resp->static_len = a->len;
    }
}
