/* event/envelope.c: CloudTrail record -> EventBridge envelope field values. */
#include "event/envelope.h"

#include <string.h>

static int eq(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len == n && memcmp(s, lit, n) == 0;
}

const char *tw__envelope_detail_type(const char *t, size_t len)
{
    if (t) {
        if (eq(t, len, "AwsConsoleSignIn"))
            return "AWS Console Sign In via CloudTrail";
        if (eq(t, len, "AwsServiceEvent"))
            return "AWS Service Event via CloudTrail";
        if (eq(t, len, "AwsConsoleAction"))
            return "AWS Console Action via CloudTrail";
        if (eq(t, len, "AwsCloudTrailInsight"))
            return "AWS Insight via CloudTrail";
    }
    return "AWS API Call via CloudTrail";
}

void tw__envelope_service(const char *s, size_t len, size_t *svc_len)
{
    static const char suffix[] = ".amazonaws.com";
    size_t n = sizeof suffix - 1;
    if (len > n && memcmp(s + len - n, suffix, n) == 0) {
        *svc_len = len - n;
        return;
    }
    const char *dot = memchr(s, '.', len);
    *svc_len = dot ? (size_t)(dot - s) : len;
}
