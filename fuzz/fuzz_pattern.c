/* fuzz/fuzz_pattern.c: libFuzzer entry points of fuzz_pattern; the checks are in fuzz_pattern_body.h. */
#include "fuzz_pattern_body.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_pattern_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_pattern_check(data, size);
    return 0;
}
