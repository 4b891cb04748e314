/* cli/main.c: `trailwatch <command> ...`: dispatch only. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "trailwatch/trailwatch.h"

static const tw_cli_cmd commands[] = {
    {"serve", "run the server: events in (EventBridge API, HTTP, Firehose, files, stdin), alerts out", tw_cmd_serve},
    {"rules", "rules check -c FILE: every configuration error; rules test: run the rules' example events", tw_cmd_rules},
    {"dlq", "dead letters: 'dlq list|show ID|redrive [ID]'", tw_cmd_dlq},
    {"match", "match events (JSON lines, CloudTrail log files, .gz) against a rules file", tw_cmd_match},
    {"ingest", "archive CloudTrail log files, AWSLogs folders and JSON lines (dedup by eventID)", tw_cmd_ingest},
    {"query", "search the archive: time, pattern, resource, principal, event name; newest first", tw_cmd_query},
    {"who", "who created, changed or deleted a resource (from the archive), in time order", tw_cmd_who},
    {"archive", "the archive: 'archive stats' (size, range, compression), 'archive prune --retention 400d'", tw_cmd_archive},
    {"sigma", "Sigma rules: 'sigma check|lint PATH...' loads them as serve would, reports refusals or likely mistakes", tw_cmd_sigma},
    {"test-pattern", "test one event pattern against one event, or a batch of them", tw_cmd_test_pattern},
    {"verify", "CloudTrail log file integrity: digest signatures, their chain, log file hashes (S3 or a folder)",
     tw_cmd_verify},
    {"cluster", "a cluster on NATS JetStream: 'cluster status -c FILE' (stream, consumer, workers)", tw_cmd_cluster},
    {"replay", "archived events of a time range through the rules: a dry run, or --deliver the alerts", tw_cmd_replay},
    {"dashboard", "the web dashboard: 'dashboard hash-password' for its read-only login", tw_cmd_dashboard},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: trailwatch <command> [options]\n\n"
               "trailwatch watches AWS account activity: it matches events against EventBridge event\n"
               "patterns and tells people about the ones that matter.\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'trailwatch <command> --help' describes a command. Exit codes: 0 success or yes,\n"
               "1 no / nothing found, 2 usage or input error, 3 runtime failure.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return TW_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return TW_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("trailwatch %s\n", TW_VERSION);
        return TW_EXIT_OK;
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    tw_cli_error("unknown command '%s' (see 'trailwatch --help')", cmd);
    return TW_EXIT_USAGE;
}
