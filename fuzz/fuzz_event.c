/* fuzz/fuzz_event.c: libFuzzer entry points of fuzz_event; the checks are in fuzz_event_body.h. */
#include "fuzz_event_body.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_event_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_event_check(data, size);
    return 0;
}
