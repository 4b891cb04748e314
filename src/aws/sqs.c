/* aws/sqs.c: ReceiveMessage, DeleteMessage, ChangeMessageVisibility over AWS JSON 1.0. */
#include "aws/sqs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "json/json_int.h"

void tw__sqs_batch_free(tw_sqs_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->msgs[i].id);
        free(b->msgs[i].receipt);
        free(b->msgs[i].body);
    }
    b->n = 0;
}

static char *jdup(const tw_json *o, const char *k, size_t *len)
{
    const tw_json *v = tw_json_get(o, k);
    size_t n = 0;
    const char *s = tw_json_typeof(v) == TW_JSON_STRING ? tw_json_string(v, &n) : NULL;
    if (len)
        *len = n;
    return s ? strndup(s, n) : NULL;
}

static tw_status call(tw_aws_client *c, const char *action, tw_buf *body, int64_t timeout_ms, tw_json_doc **out,
                      tw_error *err)
{
    tw_json_doc *doc = NULL;
    tw_status rc = tw__aws_json(c, "sqs", action, NULL, body->data, body->len, timeout_ms, &doc, err);
    if (out)
        *out = doc;
    else
        tw_json_doc_free(doc);
    return rc;
}

tw_status tw__sqs_receive(tw_aws_client *c, const char *queue_url, unsigned max, unsigned wait_s,
                          unsigned visibility_s, tw_sqs_batch *out, tw_error *err)
{
    memset(out, 0, sizeof *out);
    tw_buf b = TW_BUF_INIT;
    tw_status rc = tw__buf_puts(&b, "{\"QueueUrl\":");
    if (!rc)
        rc = tw__json_write_string(&b, queue_url, strlen(queue_url));
    if (!rc)
        rc = tw__buf_printf(&b, ",\"MaxNumberOfMessages\":%u,\"WaitTimeSeconds\":%u,"
                               "\"MessageSystemAttributeNames\":[\"ApproximateReceiveCount\"]",
                           max < 1 ? 1 : max > TW_SQS_MAX_MESSAGES ? TW_SQS_MAX_MESSAGES : max, wait_s > 20 ? 20 : wait_s);
    if (!rc && visibility_s)
        rc = tw__buf_printf(&b, ",\"VisibilityTimeout\":%u", visibility_s);
    if (!rc)
        rc = tw__buf_putc(&b, '}');
    if (rc) {
        tw__buf_free(&b);
        return tw__err(err, rc, "out of memory");
    }
    tw_json_doc *doc = NULL;
    /* the long poll itself takes wait_s: the timeout goes beyond it */
    rc = call(c, "ReceiveMessage", &b, (int64_t)(wait_s + 10) * 1000, &doc, err);
    tw__buf_free(&b);
    if (rc)
        return rc;
    const tw_json *msgs = tw_json_get(tw_json_root(doc), "Messages");
    for (size_t i = 0; i < tw_json_size(msgs) && out->n < TW_SQS_MAX_MESSAGES; i++) {
        const tw_json *m = tw_json_at(msgs, i);
        tw_sqs_msg *d = &out->msgs[out->n];
        d->id = jdup(m, "MessageId", NULL);
        d->receipt = jdup(m, "ReceiptHandle", NULL);
        d->body = jdup(m, "Body", &d->body_len);
        char *cnt = jdup(tw_json_get(m, "Attributes"), "ApproximateReceiveCount", NULL);
        d->receive_count = cnt ? (unsigned)strtoul(cnt, NULL, 10) : 0;
        free(cnt);
        out->n++;
        if (!d->receipt || !d->body) {
            rc = tw__err(err, TW_EEVENT, "sqs ReceiveMessage: a message without ReceiptHandle or Body");
            break;
        }
    }
    tw_json_doc_free(doc);
    if (rc)
        tw__sqs_batch_free(out);
    return rc;
}

static tw_status with_receipt(tw_aws_client *c, const char *action, const char *queue_url, const char *receipt,
                              int visibility, unsigned seconds, tw_error *err)
{
    tw_buf b = TW_BUF_INIT;
    tw_status rc = tw__buf_puts(&b, "{\"QueueUrl\":");
    if (!rc)
        rc = tw__json_write_string(&b, queue_url, strlen(queue_url));
    if (!rc)
        rc = tw__buf_puts(&b, ",\"ReceiptHandle\":");
    if (!rc)
        rc = tw__json_write_string(&b, receipt, strlen(receipt));
    if (!rc && visibility)
        rc = tw__buf_printf(&b, ",\"VisibilityTimeout\":%u", seconds);
    if (!rc)
        rc = tw__buf_putc(&b, '}');
    if (!rc)
        rc = call(c, action, &b, 0, NULL, err);
    else
        rc = tw__err(err, rc, "out of memory");
    tw__buf_free(&b);
    return rc;
}

tw_status tw__sqs_delete(tw_aws_client *c, const char *queue_url, const char *receipt, tw_error *err)
{
    return with_receipt(c, "DeleteMessage", queue_url, receipt, 0, 0, err);
}

tw_status tw__sqs_visibility(tw_aws_client *c, const char *queue_url, const char *receipt, unsigned seconds,
                             tw_error *err)
{
    return with_receipt(c, "ChangeMessageVisibility", queue_url, receipt, 1, seconds, err);
}
