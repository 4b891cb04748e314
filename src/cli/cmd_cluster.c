/* cli/cmd_cluster.c: `trailwatch cluster status`: the stream, the consumer and every node. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "trailwatch/cluster.h"
#include "trailwatch/trailwatch.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: trailwatch cluster status -c FILE [--wait SECONDS] [--json]\n\n"
            "Shows a trailwatch cluster on NATS JetStream (the configuration's cluster: section,\n"
            "docs/CLUSTER.md): the stream's depth (events not yet acknowledged by a worker) and\n"
            "replicas, the workers' durable consumer (pending, unacknowledged, redelivered, waiting\n"
            "pulls), and every running trailwatch node's figures: events taken from the stream, rate\n"
            "over 10 s and 60 s, redeliveries, rejects, events published, CPU time and CPU per event.\n\n"
            "options:\n"
            "  --config, -c FILE     the configuration naming the NATS servers, stream and consumer\n"
            "  --wait SECONDS        how long to collect the nodes' answers (default 1)\n"
            "  --json                one JSON object instead of the table\n"
            "  --help, -h            this text\n");
}

static double cpu_us_per_event(const tw_cluster_node *n)
{
    uint64_t events = n->fetched + n->published;
    return events ? n->cpu_seconds * 1e6 / (double)events : 0;
}

static void print_json(const tw_cluster_status *st)
{
    fputs("{\"stream\":{\"name\":", stdout);
    tw_cli_json_str(stdout, st->stream);
    printf(",\"messages\":%llu,\"bytes\":%llu,\"first_seq\":%llu,\"last_seq\":%llu,\"replicas\":%lld,"
           "\"duplicate_window_ms\":%lld,\"cluster\":",
           (unsigned long long)st->messages, (unsigned long long)st->bytes, (unsigned long long)st->first_seq,
           (unsigned long long)st->last_seq, (long long)st->replicas, (long long)st->duplicate_window_ms);
    tw_cli_json_str(stdout, st->cluster);
    fputs(",\"leader\":", stdout);
    tw_cli_json_str(stdout, st->leader);
    fputs(",\"peers\":[", stdout);
    for (size_t i = 0; i < st->npeers; i++) {
        fputs(i ? ",{\"name\":" : "{\"name\":", stdout);
        tw_cli_json_str(stdout, st->peers[i].name);
        printf(",\"current\":%s,\"offline\":%s,\"lag\":%llu}", st->peers[i].current ? "true" : "false",
               st->peers[i].offline ? "true" : "false", (unsigned long long)st->peers[i].lag);
    }
    fputs("]},\"consumer\":{\"name\":", stdout);
    tw_cli_json_str(stdout, st->consumer);
    printf(",\"exists\":%s,\"pending\":%llu,\"ack_pending\":%lld,\"redelivered\":%lld,\"waiting\":%lld,"
           "\"ack_wait_ms\":%lld},",
           st->consumer_found ? "true" : "false", (unsigned long long)st->num_pending, (long long)st->num_ack_pending,
           (long long)st->num_redelivered, (long long)st->num_waiting, (long long)st->ack_wait_ms);
    for (size_t i = 0; i < st->nconsumers; i++) {
        const tw_cluster_consumer *c = &st->consumers[i];
        fputs(i ? ",{\"name\":" : "\"consumers\":[{\"name\":", stdout);
        tw_cli_json_str(stdout, c->name);
        printf(",\"pending\":%llu,\"ack_pending\":%lld,\"redelivered\":%lld,\"waiting\":%lld,\"ack_wait_ms\":%lld}",
               (unsigned long long)c->num_pending, (long long)c->num_ack_pending, (long long)c->num_redelivered,
               (long long)c->num_waiting, (long long)c->ack_wait_ms);
    }
    fputs(st->nconsumers ? "],\"nodes\":[" : "\"consumers\":[],\"nodes\":[", stdout);
    for (size_t i = 0; i < st->nnodes; i++) {
        const tw_cluster_node *n = &st->nodes[i];
        fputs(i ? ",{\"name\":" : "{\"name\":", stdout);
        tw_cli_json_str(stdout, n->name);
        fputs(",\"role\":", stdout);
        tw_cli_json_str(stdout, n->role);
        fputs(",\"host\":", stdout);
        tw_cli_json_str(stdout, n->host);
        printf(",\"pid\":%ld,\"uptime_ms\":%lld,\"events\":%llu,\"acked\":%llu,\"redelivered\":%llu,\"rejected\":%llu,"
               "\"naks\":%llu,\"published\":%llu,\"publish_duplicates\":%llu,\"publish_retries\":%llu,"
               "\"publish_failed\":%llu,\"rate_10s\":%.1f,\"rate_60s\":%.1f,\"cpu_seconds\":%.3f,"
               "\"cpu_us_per_event\":%.2f}",
               n->pid, (long long)n->uptime_ms, (unsigned long long)n->fetched, (unsigned long long)n->acked,
               (unsigned long long)n->redelivered, (unsigned long long)n->rejected, (unsigned long long)n->naks,
               (unsigned long long)n->published, (unsigned long long)n->publish_duplicates,
               (unsigned long long)n->publish_retries, (unsigned long long)n->publish_failed, n->rate_10s,
               n->rate_60s, n->cpu_seconds, cpu_us_per_event(n));
    }
    puts("]}");
}

static void print_table(const tw_cluster_status *st, double wait)
{
    printf("stream %s: %llu events waiting (%.1f MB), sequences %llu..%llu, %lld replica%s, duplicate window %llds\n",
           st->stream, (unsigned long long)st->messages, (double)st->bytes / 1e6, (unsigned long long)st->first_seq,
           (unsigned long long)st->last_seq, (long long)st->replicas, st->replicas == 1 ? "" : "s",
           (long long)(st->duplicate_window_ms / 1000));
    if (st->leader[0])
        printf("  cluster %s, leader %s\n", st->cluster, st->leader);
    for (size_t i = 0; i < st->npeers; i++)
        printf("  replica %s: %s, lag %llu\n", st->peers[i].name,
               st->peers[i].offline ? "offline" : st->peers[i].current ? "current" : "catching up",
               (unsigned long long)st->peers[i].lag);
    if (st->consumer_found)
        printf("consumer %s: %llu pending, %lld unacknowledged, %lld redelivered, %lld pulls waiting, ack wait %llds\n",
               st->consumer, (unsigned long long)st->num_pending, (long long)st->num_ack_pending,
               (long long)st->num_redelivered, (long long)st->num_waiting, (long long)(st->ack_wait_ms / 1000));
    else
        printf("consumer %s: not created yet (no worker has started)\n", st->consumer);
    for (size_t i = 0; i < st->nconsumers; i++)
        if (strcmp(st->consumers[i].name, st->consumer) != 0)
            printf("other consumer %s: %llu pending, %lld unacknowledged, %lld redelivered, %lld pulls waiting\n",
                   st->consumers[i].name, (unsigned long long)st->consumers[i].num_pending,
                   (long long)st->consumers[i].num_ack_pending, (long long)st->consumers[i].num_redelivered,
                   (long long)st->consumers[i].num_waiting);
    printf("nodes: %zu answered within %.1f s\n", st->nnodes, wait);
    if (!st->nnodes)
        return;
    printf("  %-24s %-6s %10s %9s %9s %8s %8s %10s %6s %8s %8s\n", "NAME", "ROLE", "EVENTS", "RATE/10s",
           "RATE/60s", "REDELIV", "REJECTED", "PUBLISHED", "DUPS", "CPU s", "CPU us/ev");
    for (size_t i = 0; i < st->nnodes; i++) {
        const tw_cluster_node *n = &st->nodes[i];
        printf("  %-24.24s %-6s %10llu %9.1f %9.1f %8llu %8llu %10llu %6llu %8.2f %8.1f\n", n->name, n->role,
               (unsigned long long)n->fetched, n->rate_10s, n->rate_60s, (unsigned long long)n->redelivered,
               (unsigned long long)n->rejected, (unsigned long long)n->published,
               (unsigned long long)n->publish_duplicates, n->cpu_seconds, cpu_us_per_event(n));
    }
}

int tw_cmd_cluster(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"wait", required_argument, NULL, 'w'},
        {"json", no_argument, NULL, 'j'},         {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cfgpath = NULL;
    double wait = 1.0;
    int json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': cfgpath = optarg; break;
        case 'w': {
            char *end;
            wait = strtod(optarg, &end);
            if (*end || !(wait >= 0 && wait <= 600)) {
                tw_cli_error("cluster: --wait takes seconds from 0 to 600, not '%s'", optarg);
                return TW_EXIT_USAGE;
            }
            break;
        }
        case 'j': json = 1; break;
        case 'h': usage(stdout); return TW_EXIT_OK;
        default: usage(stderr); return TW_EXIT_USAGE;
        }
    }
    if (optind >= argc || strcmp(argv[optind], "status") != 0 || optind + 1 != argc || !cfgpath) {
        tw_cli_error("cluster: the command is 'cluster status -c FILE'");
        usage(stderr);
        return TW_EXIT_USAGE;
    }
    tw_error err;
    tw_config *cfg = NULL;
    size_t nerrors;
    if (tw_config_load(cfgpath, &cfg, &nerrors, NULL, NULL, &err)) {
        tw_cli_error_status(cfgpath, &err);
        return TW_EXIT_USAGE;
    }
    tw_cluster_status *st = NULL;
    int code = TW_EXIT_OK;
    if (tw_cluster_status_get(cfg, (int64_t)(wait * 1000), &st, &err)) {
        tw_cli_error_status("cluster status", &err);
        code = err.code == TW_ECONFIG ? TW_EXIT_USAGE : TW_EXIT_FAIL;
    } else if (json) {
        print_json(st);
    } else {
        print_table(st, wait);
    }
    tw_cluster_status_free(st);
    tw_config_free(cfg);
    return code;
}
