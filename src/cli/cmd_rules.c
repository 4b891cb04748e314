/* cli/cmd_rules.c: placeholder until the command lands. */
#include "cli/cli.h"

int tw_cmd_rules(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    tw_cli_error("rules: not built yet");
    return TW_EXIT_FAIL;
}
