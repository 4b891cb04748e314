/* fuzz/fuzz_aws.c: libFuzzer entry points of fuzz_aws; the checks are in fuzz_aws_body.h. */
#include "fuzz_aws_body.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_aws_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_aws_check(data, size);
    return 0;
}
