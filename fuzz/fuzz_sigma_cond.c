/* fuzz/fuzz_sigma_cond.c: libFuzzer entry points of fuzz_sigma_cond; the checks are in fuzz_sigma_cond_body.h. */
#include "fuzz_sigma_cond_body.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_sigma_cond_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_sigma_cond_check(data, size);
    return 0;
}
