/* Helpers the unit tests that make real images share: paths under a test's
 * directory, and unmounting what a failed test left there. Header-only: each
 * test is one program. */
#ifndef TESTS_UNIT_FS_H
#define TESTS_UNIT_FS_H

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>

#include "ve/mount.h"

/* printf into a PATH_MAX buffer. */
static void pathf(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pathf(char *out, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(out, PATH_MAX, fmt, ap);
        va_end(ap);
}

/* Unmount whatever still lies under dir, deepest first: a private area with its
 * loop device (ve_private_umount()), anything else lazily. */
static void umount_all_under(const char *dir)
{
        char line[4096], mp[PATH_MAX], found[64][PATH_MAX];
        int n = 0;
        FILE *f = fopen("/proc/self/mountinfo", "re");

        if (f == NULL)
                return;
        while (n < 64 && fgets(line, sizeof(line), f) != NULL)
                if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 &&
                    strncmp(mp, dir, strlen(dir)) == 0)
                        pathf(found[n++], "%s", mp);
        fclose(f);
        for (int i = n - 1; i >= 0; i--)
                if (ve_private_umount(found[i], NULL) < 0)
                        umount2(found[i], MNT_DETACH);
}

#endif
