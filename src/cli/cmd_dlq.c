/* cli/cmd_dlq.c: placeholder until the command lands. */
#include "cli/cli.h"

int tw_cmd_dlq(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    tw_cli_error("dlq: not built yet");
    return TW_EXIT_FAIL;
}
