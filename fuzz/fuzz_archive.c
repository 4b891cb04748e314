/* fuzz/fuzz_archive.c: libFuzzer entry points of fuzz_archive; the checks are in fuzz_archive_body.h. */
#include "fuzz_archive_body.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_archive_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_archive_check(data, size);
    return 0;
}
