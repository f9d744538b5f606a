/* cgroup v2: limits and counters of <root>/<instance>/<ctid>. */
#include "quota/cgroup.h"
#include "quota/limits.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CPU_PERIOD_US 100000ull

static void file_path(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                      const char *file, char *buf, size_t len)
{
        snprintf(buf, len, "%s/%s/%u/%s", cg->root, instance, ctid, file);
}

static bool has_file(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                     const char *file)
{
        char path[PATH_MAX];

        file_path(cg, instance, ctid, file, path, sizeof(path));
        return access(path, F_OK) == 0;
}

static int put(const struct quota_cgroup *cg, const char *instance, uint32_t ctid, const char *file,
               const char *value, struct ve_error *err)
{
        char path[PATH_MAX];

        file_path(cg, instance, ctid, file, path, sizeof(path));
        return quota_cg_write(path, value, err);
}

static void fmt_max(char *buf, size_t len, uint64_t v)
{
        if (v == QUOTA_UNLIMITED)
                snprintf(buf, len, "max");
        else
                snprintf(buf, len, "%llu", (unsigned long long)v);
}

static int set_memory(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                      const struct quota_limits *l, struct ve_error *err)
{
        char value[32];
        int ret;

        if (!has_file(cg, instance, ctid, "memory.max"))
                return 0; /* no memory controller: see quota_v2_unenforced() */
        fmt_max(value, sizeof(value), l->ram);
        ret = put(cg, instance, ctid, "memory.max", value, err);
        if (ret < 0)
                return ve_error_prefix(err, "ram");
        if (!has_file(cg, instance, ctid, "memory.swap.max"))
                return l->swap != QUOTA_UNLIMITED
                           ? ve_error_set(err, VE_EUNSUPPORTED,
                                          "swap: this host's kernel has no memory.swap.max")
                           : 0;
        fmt_max(value, sizeof(value), l->swap);
        ret = put(cg, instance, ctid, "memory.swap.max", value, err);
        return ret < 0 ? ve_error_prefix(err, "swap") : 0;
}

static int set_cpu(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                   const struct quota_limits *l, struct ve_error *err)
{
        uint64_t quota = 0;
        unsigned weight = l->cpuunits ? l->cpuunits / 10 : 100;
        char value[64];
        int ret;

        if (l->cpulimit)
                quota = l->cpulimit * CPU_PERIOD_US / 100;
        if (l->cpus && (quota == 0 || l->cpus * CPU_PERIOD_US < quota))
                quota = l->cpus * CPU_PERIOD_US;
        weight = weight < 1 ? 1 : weight > 10000 ? 10000 : weight;
        if (has_file(cg, instance, ctid, "cpuset.cpus")) {
                char parent[PATH_MAX], list[8192], cpus[8192];

                snprintf(parent, sizeof(parent), "%s/%s/cpuset.cpus.effective", cg->root, instance);
                ret = quota_cg_read(parent, list, sizeof(list), err);
                if (ret < 0 ||
                    (ret = quota_pick_cpus(list, l->cpus, ctid, cpus, sizeof(cpus), err)) < 0 ||
                    (ret = put(cg, instance, ctid, "cpuset.cpus", cpus, err)) < 0)
                        return ve_error_prefix(err, "cpus");
        }
        if (!has_file(cg, instance, ctid, "cpu.max"))
                return 0;
        if (quota)
                snprintf(value, sizeof(value), "%llu %llu", (unsigned long long)quota,
                         CPU_PERIOD_US);
        else
                snprintf(value, sizeof(value), "max %llu", CPU_PERIOD_US);
        ret = put(cg, instance, ctid, "cpu.max", value, err);
        if (ret < 0)
                return ve_error_prefix(err, "cpulimit");
        snprintf(value, sizeof(value), "%u", weight);
        ret = put(cg, instance, ctid, "cpu.weight", value, err);
        return ret < 0 ? ve_error_prefix(err, "cpuunits") : 0;
}

static int set_io(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                  const struct quota_limits *l, struct ve_error *err)
{
        char bps[32], iops[32], value[160];
        int ret;

        if (l->blk_major == 0 && l->blk_minor == 0)
                return 0;
        if (!has_file(cg, instance, ctid, "io.max"))
                return 0;
        fmt_max(bps, sizeof(bps), l->iolimit ? l->iolimit : QUOTA_UNLIMITED);
        fmt_max(iops, sizeof(iops), l->iopslimit ? l->iopslimit : QUOTA_UNLIMITED);
        snprintf(value, sizeof(value), "%u:%u rbps=%s wbps=%s riops=%s wiops=%s", l->blk_major,
                 l->blk_minor, bps, bps, iops, iops);
        ret = put(cg, instance, ctid, "io.max", value, err);
        return ret < 0 ? ve_error_prefix(err, "iolimit") : 0;
}

/* The controllers the host delegates to ved's instance show up as their files in
 * the VE's cgroup. A limit whose controller is missing is skipped by
 * quota_v2_set_limits() (as LXD does), and named here so the daemon can say so. */
static const struct {
        const char *controller, *file;
} probes[] = {
        { "memory", "memory.max" }, { "cpu", "cpu.max" }, { "cpuset", "cpuset.cpus" },
        { "pids", "pids.max" },     { "io", "io.max" },
};

int quota_v2_unenforced(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                        char *buf, size_t len)
{
        size_t used = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
                if (!has_file(cg, instance, ctid, probes[i].file) &&
                    quota_cg_list_add(buf, len, &used, probes[i].controller) < 0)
                        return -ENOBUFS;
        return 0;
}

int quota_v2_set_limits(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                        const struct quota_limits *l, struct ve_error *err)
{
        char value[32];
        int ret = set_memory(cg, instance, ctid, l, err);

        if (ret == 0)
                ret = set_cpu(cg, instance, ctid, l, err);
        if (ret == 0 && has_file(cg, instance, ctid, "pids.max")) {
                fmt_max(value, sizeof(value), l->numproc);
                ret = put(cg, instance, ctid, "pids.max", value, err);
                if (ret < 0)
                        ve_error_prefix(err, "numproc");
        }
        if (ret == 0)
                ret = set_io(cg, instance, ctid, l, err);
        return ret;
}

/* --- usage ------------------------------------------------------------------ */

static int get(const struct quota_cgroup *cg, const char *instance, uint32_t ctid, const char *file,
               char *buf, size_t len)
{
        char path[PATH_MAX];
        int ret;

        file_path(cg, instance, ctid, file, path, sizeof(path));
        ret = quota_cg_read(path, buf, len, NULL);
        if (ret < 0)
                buf[0] = '\0';
        return ret;
}

static uint64_t get_u64(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                        const char *file)
{
        char buf[64];

        if (get(cg, instance, ctid, file, buf, sizeof(buf)) < 0)
                return 0;
        if (strncmp(buf, "max", 3) == 0)
                return QUOTA_UNLIMITED;
        return strtoull(buf, NULL, 10);
}

/* A limit file: QUOTA_UNLIMITED when its controller is missing too. */
static uint64_t get_limit(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                          const char *file)
{
        return has_file(cg, instance, ctid, file) ? get_u64(cg, instance, ctid, file)
                                                  : QUOTA_UNLIMITED;
}

/* io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N wios=N ..." per device, summed. */
static void sum_io(const char *text, struct quota_usage *u)
{
        static const char *const keys[] = { "rbytes=", "wbytes=", "rios=", "wios=" };

        for (const char *line = text; line != NULL && *line != '\0'; line = quota_next_line(line)) {
                const char *end = strchr(line, '\n');
                uint64_t *dst[] = { &u->io_read_bytes, &u->io_write_bytes, &u->io_read_ops,
                                    &u->io_write_ops };

                for (size_t i = 0; i < 4; i++) {
                        const char *k = strstr(line, keys[i]);

                        if (k != NULL && (end == NULL || k < end))
                                *dst[i] += strtoull(k + strlen(keys[i]), NULL, 10);
                }
        }
}

int quota_v2_usage(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                   struct quota_usage *u, struct ve_error *err)
{
        char buf[8192];
        uint64_t usec = 0;

        if (!has_file(cg, instance, ctid, "cgroup.procs"))
                return ve_error_set(err, ENOENT, "VE %u has no cgroup", ctid);
        u->mem_current = get_u64(cg, instance, ctid, "memory.current");
        u->mem_limit = get_limit(cg, instance, ctid, "memory.max");
        u->mem_max = get_u64(cg, instance, ctid, "memory.peak");
        u->swap_current = get_u64(cg, instance, ctid, "memory.swap.current");
        if (get(cg, instance, ctid, "memory.events", buf, sizeof(buf)) >= 0) {
                quota_keyed_value(buf, "max", &u->mem_failcnt);
                quota_keyed_value(buf, "oom_kill", &u->oom_kills);
        }
        if (get(cg, instance, ctid, "cpu.stat", buf, sizeof(buf)) >= 0 &&
            quota_keyed_value(buf, "usage_usec", &usec))
                u->cpu_ns = usec * 1000;
        u->pids_current = get_u64(cg, instance, ctid, "pids.current");
        u->pids_limit = get_limit(cg, instance, ctid, "pids.max");
        if (get(cg, instance, ctid, "pids.events", buf, sizeof(buf)) >= 0)
                quota_keyed_value(buf, "max", &u->pids_hits);
        if (get(cg, instance, ctid, "io.stat", buf, sizeof(buf)) >= 0)
                sum_io(buf, u);
        return 0;
}
