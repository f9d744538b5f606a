#include "list_fields.h"
#include "exitcode.h"
#include "output.h"
#include "ve/parse.h"

#include <string.h>

static const struct list_field fields[] = {
        { "ctid", "CTID", "ctid", LIST_INT, "VE id" },
        { "name", "NAME", "name", LIST_TEXT, "VE name" },
        { "status", "STATUS", "state", LIST_TEXT, "state: running, stopped, ..." },
        { "ostemplate", "OSTEMPLATE", "ostemplate", LIST_TEXT, "OS template" },
        { "layout", "LAYOUT", "layout", LIST_TEXT, "private area: image or layered" },
        { "hostname", "HOSTNAME", "hostname", LIST_TEXT, "hostname" },
        { "ip", "IP_ADDR", "ip", LIST_LIST, "IP addresses" },
        { "numproc", "NPROC", "usage.processes.current", LIST_INT,
          "processes and threads running now" },
        { "numproc.l", "NPROC.L", "numproc", LIST_INT, "process limit (--numproc)" },
        { "numproc.f", "NPROC.F", "usage.processes.limit_hits", LIST_INT,
          "forks refused at the process limit" },
        { "physpages", "PHYSPAGES", "usage.memory.current", LIST_SIZE, "memory in use" },
        { "physpages.m", "PHYSP.M", "usage.memory.max", LIST_SIZE, "peak memory use" },
        { "physpages.l", "PHYSP.L", "usage.memory.limit", LIST_SIZE, "memory limit in force" },
        { "physpages.f", "PHYSP.F", "usage.memory.failcnt", LIST_INT,
          "times memory use hit the limit" },
        { "swappages", "SWAPPAGES", "usage.memory.swap", LIST_SIZE, "swap in use" },
        { "oomkills", "OOMKILLS", "usage.memory.oom_kills", LIST_INT,
          "processes killed by the OOM killer" },
        { "ram", "RAM", "ram", LIST_SIZE, "memory limit (--ram)" },
        { "swap", "SWAP", "swap", LIST_SIZE, "swap limit (--swap)" },
        { "cpus", "CPUS", "cpus", LIST_INT, "CPUs" },
        { "cpulimit", "CPULIM", "cpulimit", LIST_INT, "CPU cap, percent of one CPU" },
        { "cpuunits", "CPUUNITS", "cpuunits", LIST_INT, "CPU weight" },
        { "cpu", "CPU%", "usage.cpu.usage_percent", LIST_PERCENT,
          "CPU use over the last second, percent of one CPU" },
        { "cputime", "CPUTIME", "usage.cpu.time_ns", LIST_INT, "CPU time used, nanoseconds" },
        { "diskspace", "DISKSPACE", "usage.disk.host_bytes", LIST_SIZE,
          "space the VE's image takes on the host" },
        { "diskspace.u", "DISKSP.U", "usage.disk.bytes_used", LIST_SIZE,
          "space used inside the VE (as df shows)" },
        { "diskspace.l", "DISKSP.L", "diskspace", LIST_SIZE, "disk space limit (--diskspace)" },
        { "diskinodes", "DISKINODES", "usage.disk.inodes_used", LIST_INT, "inodes used" },
        { "diskinodes.l", "DISKINOD.L", "usage.disk.inodes_total", LIST_INT,
          "inodes of the VE's disk (--diskinodes)" },
        { "iolimit", "IOLIMIT", "iolimit", LIST_SIZE, "I/O limit, bytes/s" },
        { "iopslimit", "IOPSLIMIT", "iopslimit", LIST_INT, "I/O limit, operations/s" },
        { "ioread", "IOREAD", "usage.io.read_bytes", LIST_SIZE, "bytes read from its disk" },
        { "iowrite", "IOWRITE", "usage.io.write_bytes", LIST_SIZE, "bytes written to its disk" },
        { "rate", "RATE", "rate", LIST_INT, "network bandwidth, Mbit/s" },
        { "netin", "NETIN", "usage.network.bytes_in", LIST_SIZE, "bytes received by the VE" },
        { "netout", "NETOUT", "usage.network.bytes_out", LIST_SIZE, "bytes sent by the VE" },
        { "onboot", "ONBOOT", "onboot", LIST_BOOL, "started when ved starts" },
        { "description", "DESCRIPTION", "description", LIST_TEXT, "description" },
};

#define FIELDS_COUNT (sizeof(fields) / sizeof(fields[0]))

const struct list_field *list_field_at(size_t i)
{
        return i < FIELDS_COUNT ? &fields[i] : NULL;
}

const struct list_field *list_field_find(const char *name)
{
        for (size_t i = 0; i < FIELDS_COUNT; i++)
                if (strcmp(fields[i].name, name) == 0)
                        return &fields[i];
        return NULL;
}

int list_fields_parse(const char *spec, const struct list_field **out, size_t max, size_t *n,
                      struct ve_error *err)
{
        _cleanup_free_ char *copy = strdup(spec);
        char *save = NULL, *tok;

        *n = 0;
        if (copy == NULL)
                return ve_error_set(err, ENOMEM, "out of memory");
        for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
                const struct list_field *f = list_field_find(tok);

                if (f == NULL)
                        return ve_error_set(err, CLI_EUSAGE,
                                            "list: unknown field '%s' (vectl list -L shows them)",
                                            tok);
                if (*n == max)
                        return ve_error_set(err, CLI_EUSAGE, "list: at most %zu fields", max);
                out[(*n)++] = f;
        }
        if (*n == 0)
                return ve_error_set(err, CLI_EUSAGE, "list: no fields given to -o");
        return 0;
}

int list_sort_parse(const char *spec, struct list_sort *sort, struct ve_error *err)
{
        sort->desc = spec[0] == '-';
        sort->field = list_field_find(spec + (sort->desc ? 1 : 0));
        if (sort->field == NULL)
                return ve_error_set(err, CLI_EUSAGE,
                                    "list: unknown sort field '%s' (vectl list -L shows them)",
                                    spec + (sort->desc ? 1 : 0));
        return 0;
}

const json_t *list_field_value(const struct list_field *f, const json_t *ve)
{
        const char *key = f->key, *dot;
        char part[64];

        while ((dot = strchr(key, '.')) != NULL && ve != NULL) {
                snprintf(part, sizeof(part), "%.*s", (int)(dot - key), key);
                ve = json_object_get(ve, part);
                key = dot + 1;
        }
        return ve != NULL ? json_object_get(ve, key) : NULL;
}

char *list_field_text(const struct list_field *f, const json_t *ve)
{
        const json_t *v = list_field_value(f, ve);
        char buf[32];

        if (f->kind == LIST_SIZE && json_is_integer(v) && json_integer_value(v) >= 0)
                return strdup(ve_format_size((uint64_t)json_integer_value(v), buf, sizeof(buf)));
        if (f->kind == LIST_PERCENT && json_is_number(v)) {
                snprintf(buf, sizeof(buf), "%.1f", json_number_value(v));
                return strdup(buf);
        }
        return cli_json_text(v);
}

static int rank(const json_t *v)
{
        return v == NULL || json_is_null(v) ? 0 : 1;
}

static int compare_values(const json_t *a, const json_t *b)
{
        _cleanup_free_ char *ta = NULL, *tb = NULL;

        if (rank(a) != rank(b) || rank(a) == 0)
                return rank(a) - rank(b);
        if (json_is_integer(a) && json_is_integer(b)) {
                json_int_t x = json_integer_value(a), y = json_integer_value(b);

                return (x > y) - (x < y);
        }
        if (json_is_number(a) && json_is_number(b)) {
                double x = json_number_value(a), y = json_number_value(b);

                return (x > y) - (x < y);
        }
        if (json_is_boolean(a) && json_is_boolean(b))
                return json_is_true(a) - json_is_true(b);
        ta = cli_json_text(a);
        tb = cli_json_text(b);
        return strverscmp(ta ? ta : "", tb ? tb : "");
}

int list_compare(const struct list_sort *sort, const json_t *a, const json_t *b)
{
        int c = 0;

        if (sort->field != NULL) {
                c = compare_values(list_field_value(sort->field, a),
                                   list_field_value(sort->field, b));
                if (sort->desc)
                        c = -c;
        }
        if (c == 0)
                c = compare_values(json_object_get(a, "ctid"), json_object_get(b, "ctid"));
        return c;
}

bool list_field_is_usage(const struct list_field *f)
{
        return f != NULL && strncmp(f->key, "usage.", 6) == 0;
}
