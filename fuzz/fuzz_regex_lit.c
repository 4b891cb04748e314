/* fuzz/fuzz_regex_lit.c: libFuzzer entry points of fuzz_regex_lit; the checks are in fuzz_regex_lit_body.h. */
#include "fuzz_regex_lit_body.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_regex_lit_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_regex_lit_check(data, size);
    return 0;
}
