/* cli/cmd_verify.c: `trailwatch verify`: CloudTrail log file integrity (digest files). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "trailwatch/verify.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: trailwatch verify (--bucket BUCKET | --folder DIR) [options]\n\n"
               "Validates CloudTrail log file integrity as `aws cloudtrail validate-logs` does: every digest\n"
               "file's RSA signature, the chain of previous digests, and every log file's SHA-256. Prints\n"
               "each missing, changed or unsigned file and a summary; exit 0 when everything holds, 1 when\n"
               "something does not, 2 for usage errors, 3 when the check could not run.\n\n"
               "  --bucket BUCKET       the trail's S3 bucket (digest signatures from x-amz-meta-signature)\n"
               "  --folder DIR          a local copy holding AWSLogs/ (signatures from DIGEST.sig files or\n"
               "                        the next digest)\n"
               "  --prefix PREFIX       the trail's S3 key prefix\n"
               "  --public-keys FILE    the output of `aws cloudtrail list-public-keys` (default: ask\n"
               "                        CloudTrail ListPublicKeys)\n"
               "  --start TIME, --end TIME   only digests delivered in [start, end) (2024-05-01 or\n"
               "                        2024-05-01T10:00:00Z)\n"
               "  --region R, --profile P, --endpoint-url URL   AWS settings (default: as the AWS CLI)\n"
               "  -v, --verbose         also print the files that are fine\n"
               "  -h, --help            this text\n");
}

typedef struct out {
    int verbose;
} out;

static const char *kind_name(tw_verify_kind k)
{
    static const char *const names[] = {"valid digest", "valid", "MISSING", "CHANGED", "UNSIGNED", "INVALID"};
    return (unsigned)k < 6 ? names[k] : "?";
}

static void on_finding(void *ctx, const tw_verify_finding *f)
{
    const out *o = ctx;
    if (f->kind == TW_VERIFY_DIGEST_OK || f->kind == TW_VERIFY_FILE_OK) {
        if (o->verbose)
            printf("%-12s %s\n", kind_name(f->kind), f->object);
        return;
    }
    printf("%-12s %s: %s\n", kind_name(f->kind), f->object, f->detail);
}

static int parse_time(const char *s, int64_t *ms)
{
    struct tm tm = {0};
    const char *p = strptime(s, "%Y-%m-%d", &tm);
    if (p && (*p == 'T' || *p == ' ')) {
        p = strptime(p + 1, "%H:%M:%S", &tm);
        if (p && *p == 'Z')
            p++;
    }
    if (!p || *p)
        return 0;
    *ms = (int64_t)timegm(&tm) * 1000;
    return 1;
}

int tw_cmd_verify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"bucket", required_argument, NULL, 'b'},   {"folder", required_argument, NULL, 'f'},
        {"prefix", required_argument, NULL, 'p'},   {"public-keys", required_argument, NULL, 'k'},
        {"start", required_argument, NULL, 's'},    {"end", required_argument, NULL, 'e'},
        {"region", required_argument, NULL, 'r'},   {"profile", required_argument, NULL, 'P'},
        {"endpoint-url", required_argument, NULL, 'u'}, {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    tw_verify_opts o = {0};
    out ou = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
        switch (c) {
        case 'b': o.bucket = optarg; break;
        case 'f': o.folder = optarg; break;
        case 'p': o.prefix = optarg; break;
        case 'k': o.public_keys = optarg; break;
        case 'r': o.region = optarg; break;
        case 'P': o.profile = optarg; break;
        case 'u': o.endpoint_url = optarg; break;
        case 'v': ou.verbose = 1; break;
        case 's':
        case 'e':
            if (!parse_time(optarg, c == 's' ? &o.start_ms : &o.end_ms)) {
                tw_cli_error("--%s: expected 2024-05-01 or 2024-05-01T10:00:00Z", c == 's' ? "start" : "end");
                return TW_EXIT_USAGE;
            }
            break;
        case 'h': usage(stdout); return TW_EXIT_OK;
        default: usage(stderr); return TW_EXIT_USAGE;
        }
    }
    if (optind < argc || !!o.bucket == !!o.folder) {
        tw_cli_error(optind < argc ? "verify: unexpected argument '%s'" : "verify: give --bucket or --folder%s",
                     optind < argc ? argv[optind] : "");
        usage(stderr);
        return TW_EXIT_USAGE;
    }
    tw_verify_summary sum;
    tw_error err;
    tw_status rc = tw_verify_run(&o, on_finding, &ou, &sum, &err);
    if (rc) {
        tw_cli_error_status("verify", &err);
        return rc == TW_EINVAL || rc == TW_EJSON ? TW_EXIT_USAGE : TW_EXIT_FAIL;
    }
    uint64_t bad = sum.missing + sum.changed + sum.unsigned_digests + sum.invalid;
    printf("%llu digests (%llu valid), %llu log files (%llu valid): %llu missing, %llu changed, %llu unsigned, "
           "%llu invalid\n",
           (unsigned long long)sum.digests, (unsigned long long)sum.digests_ok, (unsigned long long)sum.files,
           (unsigned long long)sum.files_ok, (unsigned long long)sum.missing, (unsigned long long)sum.changed,
           (unsigned long long)sum.unsigned_digests, (unsigned long long)sum.invalid);
    if (!sum.digests && !bad) {
        printf("no digest files found: is log file validation enabled on the trail?\n");
        return TW_EXIT_NO;
    }
    return bad ? TW_EXIT_NO : TW_EXIT_OK;
}
