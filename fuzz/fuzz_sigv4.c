/* fuzz/fuzz_sigv4.c: libFuzzer entry points of fuzz_sigv4; the checks are in fuzz_sigv4_body.h. */
#include "fuzz_sigv4_body.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_sigv4_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_sigv4_check(data, size);
    return 0;
}
