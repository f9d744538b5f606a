/* A main() for the fuzz harnesses when they are not built with libFuzzer: runs
 * LLVMFuzzerTestOneInput() once on each file named, or on each file of each
 * directory named (a corpus), so that ctest replays every corpus with a plain
 * build. A harness that finds a broken invariant aborts, which fails the run. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/fuzz/fuzz.h"

/* Optional, as with libFuzzer: a harness without one leaves it NULL. */
#pragma weak LLVMFuzzerInitialize

static int run_file(const char *path, unsigned *runs)
{
        FILE *f = fopen(path, "rb");
        uint8_t *data = NULL;
        long size;

        if (f == NULL || fseek(f, 0, SEEK_END) < 0 || (size = ftell(f)) < 0 ||
            fseek(f, 0, SEEK_SET) < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                if (f != NULL)
                        fclose(f);
                return -1;
        }
        /* One byte more, so that an empty input is a valid pointer too. */
        data = malloc((size_t)size + 1);
        if (data == NULL || fread(data, 1, (size_t)size, f) != (size_t)size) {
                fprintf(stderr, "%s: cannot read\n", path);
                free(data);
                fclose(f);
                return -1;
        }
        fclose(f);
        LLVMFuzzerTestOneInput(data, (size_t)size);
        free(data);
        (*runs)++;
        return 0;
}

static int run_path(const char *path, unsigned *runs)
{
        struct dirent **names;
        struct stat st;
        int n, ret = 0;

        if (stat(path, &st) < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -1;
        }
        if (!S_ISDIR(st.st_mode))
                return run_file(path, runs);
        n = scandir(path, &names, NULL, alphasort);
        if (n < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -1;
        }
        for (int i = 0; i < n; i++) {
                char child[4096];

                if (names[i]->d_name[0] != '.') {
                        snprintf(child, sizeof(child), "%s/%s", path, names[i]->d_name);
                        if (run_path(child, runs) < 0)
                                ret = -1;
                }
                free(names[i]);
        }
        free(names);
        return ret;
}

int main(int argc, char **argv)
{
        unsigned runs = 0;
        int ret = 0;

        if (argc < 2) {
                fprintf(stderr, "usage: %s FILE|CORPUS_DIR...\n", argv[0]);
                return 2;
        }
        if (LLVMFuzzerInitialize != NULL)
                LLVMFuzzerInitialize(&argc, &argv);
        for (int i = 1; i < argc; i++)
                if (run_path(argv[i], &runs) < 0)
                        ret = 1;
        printf("%s: %u inputs run\n", argv[0], runs);
        if (runs == 0) {
                fprintf(stderr, "%s: no inputs found\n", argv[0]);
                return 1;
        }
        return ret;
}
