/* cli/summary.c: `serve --summary`, the first run a person sees: where trailwatch listens and what it
 * reads, then, once the folder's first pass is read and its alerts delivered, what it found. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "trailwatch/trailwatch.h"

void tw_cli_summary_start(const char *config_path, const char *describe, const char *listen, int port,
                          const char *folder)
{
    const char *nl = describe ? strchr(describe, '\n') : NULL;
    printf("trailwatch %s: %.*s\n", TW_VERSION, describe ? (int)(nl ? nl - describe : (long)strlen(describe)) : 0,
           describe ? describe : config_path);
    if (port > 0) {
        char host[256];
        const char *colon = strrchr(listen, ':');
        snprintf(host, sizeof host, "%.*s", colon ? (int)(colon - listen) : (int)strlen(listen), listen);
        printf("listening on http://%s:%d: EventBridge API (POST /), POST /events, GET /healthz, GET /metrics\n",
               host, port);
    } else {
        printf("no HTTP listener\n");
    }
    if (folder)
        printf("reading the CloudTrail log files in %s, then watching it for new ones\n", folder);
    printf("alerts, one per line:\n");
    fflush(stdout);
}

typedef struct rows {
    size_t quiet;
} rows;

static void rule_row(void *ctx, const char *rule, uint64_t matches, uint64_t folded)
{
    rows *r = ctx;
    if (!matches) {
        r->quiet++;
        return;
    }
    printf("  %-48s %8" PRIu64 " %8" PRIu64 "\n", rule, matches, folded);
}

void tw_cli_summary_print(tw_server *s, double seconds, int port)
{
    tw_server_stats st;
    tw_server_get_stats(s, &st);
    printf("\nsummary after %.1f s:\n", seconds);
    printf("  files    %" PRIu64 " CloudTrail log files read", st.files_processed);
    if (st.files_done || st.files_rejected || st.files_failed)
        printf(" (and %" PRIu64 " read before, %" PRIu64 " not CloudTrail, %" PRIu64 " failed)", st.files_done,
               st.files_rejected, st.files_failed);
    printf("\n  records  %" PRIu64 " read, %" PRIu64 " events in all\n", st.records, st.received);
    printf("  duplicates %" PRIu64 " dropped: CloudTrail had delivered their eventID before\n", st.duplicates);
    printf("  alerts   %" PRIu64 " (event, rule) matches; storm control folded %" PRIu64 " repeated alerts into "
           "the first of their window\n", st.matches, st.folded);
    printf("  %-48s %8s %8s\n", "rule", "matches", "folded");
    rows r = {0};
    tw_server_rule_stats(s, rule_row, &r);
    if (r.quiet)
        printf("  (%zu rule%s matched nothing)\n", r.quiet, r.quiet == 1 ? "" : "s");
    if (port > 0)
        printf("still serving on port %d (Ctrl-C stops). Send it an event:\n"
               "  aws --endpoint-url http://127.0.0.1:%d events put-events --entries "
               "'[{\"Source\":\"aws.ssm\",\"DetailType\":\"Parameter Store Change\",\"Detail\":\"{}\"}]'\n",
               port, port);
    else
        printf("still watching the folder (Ctrl-C stops)\n");
    fflush(stdout);
}
