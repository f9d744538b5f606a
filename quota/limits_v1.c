/* cgroup v1: limits and counters of <root>/<controller>/<instance>/<ctid>. */
#include "quota/cgroup.h"
#include "quota/limits.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CFS_PERIOD_US 100000ull

/* A limit at or above this reads as "none" (v1 shows PAGE_COUNTER_MAX pages). */
#define V1_NO_LIMIT (1ull << 62)

static void file_path(const struct quota_cgroup *cg, const char *controller, const char *instance,
                      uint32_t ctid, const char *file, char *buf, size_t len)
{
        snprintf(buf, len, "%s/%s/%s/%u/%s", cg->root, controller, instance, ctid, file);
}

static bool has_file(const struct quota_cgroup *cg, const char *controller, const char *instance,
                     uint32_t ctid, const char *file)
{
        char path[PATH_MAX];

        file_path(cg, controller, instance, ctid, file, path, sizeof(path));
        return access(path, F_OK) == 0;
}

static int put(const struct quota_cgroup *cg, const char *controller, const char *instance,
               uint32_t ctid, const char *file, const char *value, struct ve_error *err)
{
        char path[PATH_MAX];

        file_path(cg, controller, instance, ctid, file, path, sizeof(path));
        return quota_cg_write(path, value, err);
}

static int put_u64(const struct quota_cgroup *cg, const char *controller, const char *instance,
                   uint32_t ctid, const char *file, uint64_t value, struct ve_error *err)
{
        char buf[32];

        if (value == QUOTA_UNLIMITED)
                snprintf(buf, sizeof(buf), "-1");
        else
                snprintf(buf, sizeof(buf), "%llu", (unsigned long long)value);
        return put(cg, controller, instance, ctid, file, buf, err);
}

/* memsw (ram + swap) must never be below the memory limit: lift it first, then
 * set the memory limit, then bring memsw down to what is asked. */
static int set_memory(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                      const struct quota_limits *l, struct ve_error *err)
{
        bool memsw = has_file(cg, "memory", instance, ctid, "memory.memsw.limit_in_bytes");
        int ret;

        if (!memsw && l->swap != QUOTA_UNLIMITED && l->ram != QUOTA_UNLIMITED)
                return ve_error_set(err, VE_EUNSUPPORTED,
                                    "swap: this host's kernel does not account swap per cgroup "
                                    "(boot it with swapaccount=1)");
        if (memsw) {
                ret = put_u64(cg, "memory", instance, ctid, "memory.memsw.limit_in_bytes",
                              QUOTA_UNLIMITED, err);
                if (ret < 0)
                        return ret;
        }
        ret = put_u64(cg, "memory", instance, ctid, "memory.limit_in_bytes", l->ram, err);
        if (ret < 0)
                return ve_error_prefix(err, "ram");
        if (memsw && l->ram != QUOTA_UNLIMITED && l->swap != QUOTA_UNLIMITED) {
                ret = put_u64(cg, "memory", instance, ctid, "memory.memsw.limit_in_bytes",
                              l->ram + l->swap, err);
                if (ret < 0)
                        return ve_error_prefix(err, "swap");
        }
        return 0;
}

static int set_cpu(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                   const struct quota_limits *l, struct ve_error *err)
{
        uint64_t quota = 0;
        unsigned shares = l->cpuunits ? l->cpuunits * 1024u / 1000u : 1024u;
        int ret;

        if (l->cpulimit)
                quota = l->cpulimit * CFS_PERIOD_US / 100;
        if (l->cpus && (quota == 0 || l->cpus * CFS_PERIOD_US < quota))
                quota = l->cpus * CFS_PERIOD_US;
        if (shares < 2)
                shares = 2;
        if (has_file(cg, "cpuset", instance, ctid, "cpuset.cpus")) {
                char parent[PATH_MAX], list[8192], cpus[8192];

                snprintf(parent, sizeof(parent), "%s/cpuset/%s/cpuset.cpus", cg->root, instance);
                ret = quota_cg_read(parent, list, sizeof(list), err);
                if (ret < 0 ||
                    (ret = quota_pick_cpus(list, l->cpus, ctid, cpus, sizeof(cpus), err)) < 0 ||
                    (ret = put(cg, "cpuset", instance, ctid, "cpuset.cpus", cpus, err)) < 0)
                        return ve_error_prefix(err, "cpus");
        }
        ret = put_u64(cg, "cpu", instance, ctid, "cpu.cfs_period_us", CFS_PERIOD_US, err);
        if (ret == 0)
                ret = put_u64(cg, "cpu", instance, ctid, "cpu.cfs_quota_us",
                              quota ? quota : QUOTA_UNLIMITED, err);
        if (ret < 0)
                return ve_error_prefix(err, "cpulimit");
        ret = put_u64(cg, "cpu", instance, ctid, "cpu.shares", shares, err);
        return ret < 0 ? ve_error_prefix(err, "cpuunits") : 0;
}

static int set_io(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                  const struct quota_limits *l, struct ve_error *err)
{
        static const char *const bps[] = { "blkio.throttle.read_bps_device",
                                           "blkio.throttle.write_bps_device" };
        static const char *const iops[] = { "blkio.throttle.read_iops_device",
                                            "blkio.throttle.write_iops_device" };

        if (l->blk_major == 0 && l->blk_minor == 0)
                return 0;
        if (!has_file(cg, "blkio", instance, ctid, bps[0]))
                return l->iolimit || l->iopslimit
                           ? ve_error_set(err, VE_EUNSUPPORTED,
                                          "iolimit: no blkio throttling on this host")
                           : 0;
        for (size_t i = 0; i < 2; i++) {
                char value[64];
                int ret;

                /* 0 removes the rule. */
                snprintf(value, sizeof(value), "%u:%u %llu", l->blk_major, l->blk_minor,
                         (unsigned long long)l->iolimit);
                ret = put(cg, "blkio", instance, ctid, bps[i], value, err);
                if (ret < 0)
                        return ve_error_prefix(err, "iolimit");
                snprintf(value, sizeof(value), "%u:%u %llu", l->blk_major, l->blk_minor,
                         (unsigned long long)l->iopslimit);
                ret = put(cg, "blkio", instance, ctid, iops[i], value, err);
                if (ret < 0)
                        return ve_error_prefix(err, "iopslimit");
        }
        return 0;
}

int quota_v1_set_limits(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                        const struct quota_limits *l, struct ve_error *err)
{
        int ret = set_memory(cg, instance, ctid, l, err);

        if (ret == 0)
                ret = set_cpu(cg, instance, ctid, l, err);
        if (ret == 0) {
                char value[32];

                if (l->numproc == QUOTA_UNLIMITED)
                        snprintf(value, sizeof(value), "max");
                else
                        snprintf(value, sizeof(value), "%llu", (unsigned long long)l->numproc);
                ret = put(cg, "pids", instance, ctid, "pids.max", value, err);
                if (ret < 0)
                        ve_error_prefix(err, "numproc");
        }
        if (ret == 0)
                ret = set_io(cg, instance, ctid, l, err);
        return ret;
}

/* --- usage ------------------------------------------------------------------ */

/* The file's text; "" when the host lacks it. */
static int get(const struct quota_cgroup *cg, const char *controller, const char *instance,
               uint32_t ctid, const char *file, char *buf, size_t len)
{
        char path[PATH_MAX];
        int ret;

        file_path(cg, controller, instance, ctid, file, path, sizeof(path));
        ret = quota_cg_read(path, buf, len, NULL);
        if (ret < 0)
                buf[0] = '\0';
        return ret;
}

static uint64_t get_u64(const struct quota_cgroup *cg, const char *controller, const char *instance,
                        uint32_t ctid, const char *file)
{
        char buf[64];

        if (get(cg, controller, instance, ctid, file, buf, sizeof(buf)) < 0)
                return 0;
        if (strncmp(buf, "max", 3) == 0)
                return QUOTA_UNLIMITED;
        return strtoull(buf, NULL, 10);
}

/* blkio.throttle.io_service*_recursive: "MAJ:MIN Read N" lines, summed. */
static void sum_rw(const char *text, uint64_t *read, uint64_t *write)
{
        for (const char *line = text; line != NULL && *line != '\0'; line = quota_next_line(line)) {
                char op[16];
                unsigned long long n;

                if (sscanf(line, "%*u:%*u %15s %llu", op, &n) != 2)
                        continue;
                if (strcmp(op, "Read") == 0)
                        *read += n;
                else if (strcmp(op, "Write") == 0)
                        *write += n;
        }
}

int quota_v1_usage(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                   struct quota_usage *u, struct ve_error *err)
{
        char buf[8192];
        uint64_t memsw;

        if (get(cg, "memory", instance, ctid, "memory.usage_in_bytes", buf, sizeof(buf)) < 0)
                return ve_error_set(err, ENOENT, "VE %u has no cgroup", ctid);
        u->mem_current = strtoull(buf, NULL, 10);
        u->mem_limit = get_u64(cg, "memory", instance, ctid, "memory.limit_in_bytes");
        if (u->mem_limit >= V1_NO_LIMIT)
                u->mem_limit = QUOTA_UNLIMITED;
        u->mem_max = get_u64(cg, "memory", instance, ctid, "memory.max_usage_in_bytes");
        u->mem_failcnt = get_u64(cg, "memory", instance, ctid, "memory.failcnt");
        memsw = get_u64(cg, "memory", instance, ctid, "memory.memsw.usage_in_bytes");
        u->swap_current = memsw > u->mem_current ? memsw - u->mem_current : 0;
        if (get(cg, "memory", instance, ctid, "memory.oom_control", buf, sizeof(buf)) >= 0)
                quota_keyed_value(buf, "oom_kill", &u->oom_kills);
        u->cpu_ns = get_u64(cg, "cpuacct", instance, ctid, "cpuacct.usage");
        u->pids_current = get_u64(cg, "pids", instance, ctid, "pids.current");
        u->pids_limit = get_u64(cg, "pids", instance, ctid, "pids.max");
        if (get(cg, "pids", instance, ctid, "pids.events", buf, sizeof(buf)) >= 0)
                quota_keyed_value(buf, "max", &u->pids_hits);
        if (get(cg, "blkio", instance, ctid, "blkio.throttle.io_service_bytes_recursive", buf,
                sizeof(buf)) >= 0)
                sum_rw(buf, &u->io_read_bytes, &u->io_write_bytes);
        if (get(cg, "blkio", instance, ctid, "blkio.throttle.io_serviced_recursive", buf,
                sizeof(buf)) >= 0)
                sum_rw(buf, &u->io_read_ops, &u->io_write_ops);
        return 0;
}

/* A v1 host mounts each controller as its own hierarchy; quota_v1_set_limits()
 * needs them all, so one missing fails the start rather than being skipped.
 * Named here all the same, for the daemon's report. */
int quota_v1_unenforced(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                        char *buf, size_t len)
{
        static const struct {
                const char *controller, *file;
        } probes[] = {
                { "memory", "memory.limit_in_bytes" },
                { "cpu", "cpu.cfs_quota_us" },
                { "cpuset", "cpuset.cpus" },
                { "pids", "pids.max" },
                { "blkio", "blkio.throttle.read_bps_device" },
        };
        size_t used = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
                if (!has_file(cg, probes[i].controller, instance, ctid, probes[i].file) &&
                    quota_cg_list_add(buf, len, &used, probes[i].controller) < 0)
                        return -ENOBUFS;
        return 0;
}
