/* What every fuzz harness of tests/fuzz/ shares: libFuzzer's entry points (or
 * driver.c's, which calls the same ones) and require(), which aborts on a broken
 * rule with a message, so that libFuzzer keeps the input and ctest fails. */
#ifndef VED_FUZZ_H
#define VED_FUZZ_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define require(cond, ...)                                                                         \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "%s: ", program_invocation_short_name);                    \
                        fprintf(stderr, __VA_ARGS__);                                              \
                        fputc('\n', stderr);                                                       \
                        abort();                                                                   \
                }                                                                                  \
        } while (0)

#endif
