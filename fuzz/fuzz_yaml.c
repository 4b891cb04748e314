/* fuzz/fuzz_yaml.c: libFuzzer entry points of fuzz_yaml; the checks are in fuzz_yaml_body.h. */
#include "fuzz_yaml_body.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_yaml_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_yaml_check(data, size);
    return 0;
}
