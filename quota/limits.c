/* What both cgroup backends share for limits: defaults, CPU placement and the
 * parsing of flat-keyed files (memory.events, cpu.stat, pids.events ...). */
#include "quota/limits.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CPUS 4096

void quota_limits_init(struct quota_limits *l)
{
        *l = (struct quota_limits){
                .ram = QUOTA_UNLIMITED,
                .swap = QUOTA_UNLIMITED,
                .numproc = QUOTA_UNLIMITED,
        };
}

/* "0-3,8,10-11" into a sorted list of CPU numbers. */
static int parse_cpu_list(const char *list, unsigned *cpus, size_t *n, struct ve_error *err)
{
        const char *p = list;

        *n = 0;
        while (*p != '\0' && *p != '\n') {
                char *end;
                unsigned long lo = strtoul(p, &end, 10), hi = lo;

                if (end == p)
                        goto bad;
                p = end;
                if (*p == '-') {
                        hi = strtoul(p + 1, &end, 10);
                        if (end == p + 1 || hi < lo)
                                goto bad;
                        p = end;
                }
                for (unsigned long c = lo; c <= hi; c++) {
                        if (*n == MAX_CPUS || c >= MAX_CPUS)
                                goto bad;
                        cpus[(*n)++] = (unsigned)c;
                }
                if (*p == ',')
                        p++;
                else if (*p != '\0' && *p != '\n')
                        goto bad;
        }
        return 0;
bad:
        return ve_error_set(err, EINVAL, "cannot read the CPU list \"%.64s\"", list);
}

static int cmp_unsigned(const void *a, const void *b)
{
        unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

        return (x > y) - (x < y);
}

int quota_pick_cpus(const char *parent, unsigned want, uint32_t ctid, char *buf, size_t len,
                    struct ve_error *err)
{
        unsigned all[MAX_CPUS], pick[MAX_CPUS];
        size_t n, used = 0;
        int ret;

        ret = parse_cpu_list(parent, all, &n, err);
        if (ret < 0)
                return ret;
        if (n == 0)
                return ve_error_set(err, EINVAL, "the parent cgroup has no CPUs");
        if (want == 0 || want > n)
                want = (unsigned)n;
        for (unsigned i = 0; i < want; i++)
                pick[i] = all[(ctid + i) % n];
        qsort(pick, want, sizeof(pick[0]), cmp_unsigned);
        buf[0] = '\0';
        for (unsigned i = 0; i < want; i++) {
                unsigned j = i;
                int w;

                while (j + 1 < want && pick[j + 1] == pick[j] + 1)
                        j++;
                if (j == i)
                        w = snprintf(buf + used, len - used, "%s%u", used ? "," : "", pick[i]);
                else
                        w = snprintf(buf + used, len - used, "%s%u-%u", used ? "," : "", pick[i],
                                     pick[j]);
                if (w < 0 || (size_t)w >= len - used)
                        return ve_error_set(err, ENOSPC, "CPU list too long");
                used += (size_t)w;
                i = j;
        }
        return 0;
}

bool quota_keyed_value(const char *text, const char *key, uint64_t *out)
{
        size_t klen = strlen(key);

        for (const char *line = text; line != NULL && *line != '\0';) {
                if (strncmp(line, key, klen) == 0 && (line[klen] == ' ' || line[klen] == '=')) {
                        const char *v = line + klen + 1;

                        while (*v == ' ')
                                v++;
                        if (!isdigit((unsigned char)*v))
                                return false;
                        *out = strtoull(v, NULL, 10);
                        return true;
                }
                line = quota_next_line(line);
        }
        return false;
}

const char *quota_next_line(const char *line)
{
        const char *nl = strchr(line, '\n');

        return nl != NULL ? nl + 1 : NULL;
}
