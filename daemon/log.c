#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum ved_log_level max_level = VED_LOG_INFO;

void ved_log_set_level(enum ved_log_level level)
{
        max_level = level;
}

int ved_log_level_parse(const char *s)
{
        static const char *names[] = { "error", "warn", "info", "debug" };

        for (int i = 0; i < 4; i++)
                if (strcmp(s, names[i]) == 0)
                        return i;
        return -1;
}

void ved_log(enum ved_log_level level, const char *fmt, ...)
{
        /* sd-daemon priority prefixes, understood by journald on stderr. */
        static const char *prefix[] = { "<3>", "<4>", "<6>", "<7>" };
        char msg[2048];
        va_list ap;

        if (level > max_level)
                return;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        fprintf(stderr, "%sved: %s\n", prefix[level], msg);
}
