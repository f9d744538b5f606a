#include "pidfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ve/start.h"

pid_t ved_pidfile_alive(const char *pidfile, const char *comm)
{
        char buf[32] = "", path[64];
        FILE *f = fopen(pidfile, "re");
        long pid = 0;

        if (f != NULL) {
                if (fgets(buf, sizeof(buf), f) != NULL)
                        pid = strtol(buf, NULL, 10);
                fclose(f);
        }
        if (pid <= 1 || ve_proc_exited((pid_t)pid))
                return 0;
        snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
        f = fopen(path, "re");
        if (f == NULL)
                return 0;
        if (fgets(buf, sizeof(buf), f) == NULL)
                buf[0] = '\0';
        fclose(f);
        buf[strcspn(buf, "\n")] = '\0';
        return strcmp(buf, comm) == 0 ? (pid_t)pid : 0;
}
