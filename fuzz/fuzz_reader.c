/* fuzz/fuzz_reader.c: libFuzzer entry points of fuzz_reader; the checks are in fuzz_reader_body.h. */
#include "fuzz_reader_body.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_reader_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_reader_check(data, size);
    return 0;
}
