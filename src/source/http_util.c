/* source/http_util.c: small helpers for handlers (headers, JSON responses). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "source/http.h"

const char *tw__http_req_header(const tw_http_req *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

void tw__http_resp_header(tw_http_resp *resp, const char *name, const char *value)
{
    if (resp->nheaders >= TW_HTTP_RESP_HEADERS)
        return;
    snprintf(resp->headers[resp->nheaders][0], sizeof resp->headers[0][0], "%s", name);
    snprintf(resp->headers[resp->nheaders][1], sizeof resp->headers[0][1], "%s", value);
    resp->nheaders++;
}

void tw__http_resp_json(tw_http_resp *resp, int status, const char *fmt, ...)
{
    resp->status = status;
    resp->content_type = "application/json";
    tw_buf_reset(&resp->body);
    va_list ap;
    va_start(ap, fmt);
    tw__buf_vprintf(&resp->body, fmt, ap);
    va_end(ap);
}
