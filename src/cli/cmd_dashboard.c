/* cli/cmd_dashboard.c: `trailwatch dashboard hash-password`: the value for dashboard.password_hash. */
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "trailwatch/trailwatch.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: trailwatch dashboard hash-password\n\n"
               "Reads a password (asked for on a terminal, else the first line of standard input) and\n"
               "prints its crypt(3) hash (yescrypt) for dashboard.password_hash in trailwatch.yml: a\n"
               "read-only login to the dashboard. Full access logs in with an access key instead.\n\n"
               "  echo 'correct horse' | trailwatch dashboard hash-password\n");
}

static int read_password(char *buf, size_t cap)
{
    int tty = isatty(0);
    struct termios old, quiet;
    if (tty) {
        fprintf(stderr, "password: ");
        tcgetattr(0, &old);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(0, TCSANOW, &quiet);
    }
    char *got = fgets(buf, (int)cap, stdin);
    if (tty) {
        tcsetattr(0, TCSANOW, &old);
        fputc('\n', stderr);
    }
    if (!got)
        return 0;
    buf[strcspn(buf, "\r\n")] = '\0';
    return 1;
}

int tw_cmd_dashboard(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? TW_EXIT_USAGE : TW_EXIT_OK;
    }
    if (strcmp(argv[1], "hash-password") != 0 || argc > 2) {
        tw_cli_error("dashboard: unknown subcommand or argument '%s' (see 'trailwatch dashboard --help')",
                     argc > 2 ? argv[2] : argv[1]);
        return TW_EXIT_USAGE;
    }
    char pw[1100], hash[256];
    if (!read_password(pw, sizeof pw)) {
        tw_cli_error("dashboard hash-password: no password on standard input");
        return TW_EXIT_USAGE;
    }
    tw_error err;
    tw_status rc = tw_dashboard_hash_password(pw, hash, sizeof hash, &err);
    memset(pw, 0, sizeof pw);
    if (rc) {
        tw_cli_error_status("dashboard hash-password", &err);
        return tw_cli_exit_for(rc);
    }
    printf("%s\n", hash);
    return TW_EXIT_OK;
}
