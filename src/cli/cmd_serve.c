/* cli/cmd_serve.c: placeholder until the command lands. */
#include "cli/cli.h"

int tw_cmd_serve(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    tw_cli_error("serve: not built yet");
    return TW_EXIT_FAIL;
}
