/* fuzz/fuzz_json.c: libFuzzer entry points of fuzz_json; the checks are in fuzz_json_body.h. */
#include "fuzz_json_body.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_json_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_json_check(data, size);
    return 0;
}
