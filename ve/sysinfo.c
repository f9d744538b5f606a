/* sysinfo(2) answered for a VE (sysinfo.h). Everything read here is the
 * kernel's: cgroup files under /sys/fs/cgroup, /proc/<pid>, and the procfs the
 * VE mounted, which is checked to be one (a VE could put a FIFO there, which
 * would hang the server every VE's statfs waits on). */
#include "ve/sysinfo.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>
#include <linux/magic.h>
#include <linux/openat2.h>

#include "ve/child.h"
#include "ve/cleanup.h"

#define CGROUP_ROOT "/sys/fs/cgroup"

static uint64_t min_u64(uint64_t a, uint64_t b)
{
        return a < b ? a : b;
}

void ve_sysinfo_fill(struct sysinfo *out, const struct sysinfo *host,
                     const struct ve_mem_figures *m, long uptime, unsigned procs)
{
        uint64_t unit = host->mem_unit ? host->mem_unit : 1;
        uint64_t host_ram = (uint64_t)host->totalram * unit;
        uint64_t host_swap = (uint64_t)host->totalswap * unit;
        uint64_t total = min_u64(m->limit, host_ram);
        uint64_t swap = min_u64(m->swap_limit, host_swap);

        *out = *host;
        out->mem_unit = 1;
        out->uptime = uptime;
        out->procs = (unsigned short)(procs > 0xffff ? 0xffff : procs);
        out->totalram = total;
        out->freeram = total - min_u64(m->usage, total);
        out->sharedram = min_u64(m->shmem, total);
        out->bufferram = 0;
        out->totalswap = swap;
        out->freeswap = swap - min_u64(m->swap_usage, swap);
        /* High memory is a 32-bit kernel's; x86-64 has none. */
        out->totalhigh = out->freehigh = 0;
}

/* The controller's path in one line of /proc/<pid>/cgroup ("4:cpu,memory:/a/b"),
 * or NULL when the line is another hierarchy's. *plen gets the path's length. */
static const char *line_path(const char *line, const char *eol, const char *controller,
                             size_t *plen)
{
        const char *names = memchr(line, ':', (size_t)(eol - line)), *path;
        size_t clen = controller ? strlen(controller) : 0;

        if (names == NULL)
                return NULL;
        names++;
        path = memchr(names, ':', (size_t)(eol - names));
        if (path == NULL)
                return NULL;
        *plen = (size_t)(eol - path - 1);
        if (controller == NULL) /* v2: "0::/a/b" */
                return strncmp(line, "0::", 3) == 0 ? path + 1 : NULL;
        for (const char *p = names; p < path;) {
                const char *comma = memchr(p, ',', (size_t)(path - p));
                const char *stop = comma ? comma : path;

                if ((size_t)(stop - p) == clen && strncmp(p, controller, clen) == 0)
                        return path + 1;
                p = stop + 1;
        }
        return NULL;
}

int ve_sysinfo_cgroup_top(const char *proc_cgroup, const char *controller, uint32_t ctid, char *out,
                          size_t len)
{
        char name[16];
        size_t nlen = (size_t)snprintf(name, sizeof(name), "%u", ctid);

        for (const char *line = proc_cgroup; *line != '\0';) {
                const char *eol = strchr(line, '\n') ?: line + strlen(line);
                size_t plen;
                const char *path = line_path(line, eol, controller, &plen);

                /* The first component named ctid below another (its instance's):
                 * the VE's own cgroup, whatever the VE made beneath it. */
                for (size_t i = 1; path != NULL && i + nlen <= plen; i++) {
                        if (path[i - 1] == '/' && i > 1 && strncmp(path + i, name, nlen) == 0 &&
                            (i + nlen == plen || path[i + nlen] == '/')) {
                                if (i + nlen >= len)
                                        return -ENAMETOOLONG;
                                memcpy(out, path, i + nlen);
                                out[i + nlen] = '\0';
                                return 0;
                        }
                }
                if (path != NULL)
                        return -ENOENT;
                line = *eol ? eol + 1 : eol;
        }
        return -ENOENT;
}

int ve_sysinfo_stat_starttime(const char *stat, uint64_t *out)
{
        const char *p = strrchr(stat, ')');
        unsigned long long v;

        /* After ')' come fields 3, 4, ...: field 22 is the start time. */
        for (int field = 2; p != NULL && field < 22; field++)
                p = strchr(p + 1, ' ');
        if (p == NULL || sscanf(p + 1, "%llu", &v) != 1)
                return -EINVAL;
        *out = v;
        return 0;
}

/* Up to len - 1 bytes of an open file, NUL-terminated. */
static int read_fd(int fd, char *buf, size_t len)
{
        ssize_t n = pread(fd, buf, len - 1, 0);

        if (n < 0)
                return -errno;
        buf[n] = '\0';
        return 0;
}

static int read_at(int dirfd, const char *path, char *buf, size_t len)
{
        _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

        if (fd < 0)
                return -errno;
        return read_fd(fd, buf, len);
}

/* A cgroup file's number: "max" (v2) is UINT64_MAX. */
static int read_u64(const char *dir, const char *file, uint64_t *out)
{
        char path[300], buf[64];
        int ret;

        snprintf(path, sizeof(path), "%s/%s", dir, file);
        ret = read_at(AT_FDCWD, path, buf, sizeof(buf));
        if (ret < 0)
                return ret;
        if (strncmp(buf, "max", 3) == 0) {
                *out = UINT64_MAX;
                return 0;
        }
        *out = strtoull(buf, NULL, 10);
        return 0;
}

static int read_stat(const char *dir, char *buf, size_t len)
{
        char path[300];

        snprintf(path, sizeof(path), "%s/memory.stat", dir);
        return read_at(AT_FDCWD, path, buf, len);
}

/* The value of key in a memory.stat ("key value" lines); 0 when absent. */
static uint64_t stat_value(const char *stat, const char *key)
{
        size_t klen = strlen(key);

        for (const char *p = stat; p != NULL && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                if (strncmp(p, key, klen) == 0 && p[klen] == ' ')
                        return strtoull(p + klen + 1, NULL, 10);
        return 0;
}

static int memory_v1(const char *dir, struct ve_mem_figures *m)
{
        char stat[8192];
        uint64_t memsw_limit, memsw_usage;
        int ret;

        ret = read_u64(dir, "memory.limit_in_bytes", &m->limit);
        if (ret == 0)
                ret = read_u64(dir, "memory.usage_in_bytes", &m->usage);
        if (ret == 0)
                ret = read_stat(dir, stat, sizeof(stat));
        if (ret < 0)
                return ret;
        m->cache = stat_value(stat, "total_cache");
        m->shmem = stat_value(stat, "total_shmem");
        m->swap_limit = UINT64_MAX;
        m->swap_usage = stat_value(stat, "total_swap");
        /* Without swap accounting the VE's swap is the host's. */
        if (read_u64(dir, "memory.memsw.limit_in_bytes", &memsw_limit) == 0 &&
            read_u64(dir, "memory.memsw.usage_in_bytes", &memsw_usage) == 0) {
                m->swap_limit = memsw_limit >= m->limit ? memsw_limit - m->limit : 0;
                m->swap_usage = memsw_usage >= m->usage ? memsw_usage - m->usage : 0;
        }
        return 0;
}

static int memory_v2(const char *dir, struct ve_mem_figures *m)
{
        char stat[8192];
        int ret;

        ret = read_u64(dir, "memory.max", &m->limit);
        if (ret == 0)
                ret = read_u64(dir, "memory.current", &m->usage);
        if (ret == 0)
                ret = read_stat(dir, stat, sizeof(stat));
        if (ret < 0)
                return ret;
        m->cache = stat_value(stat, "file");
        m->shmem = stat_value(stat, "shmem");
        if (read_u64(dir, "memory.swap.max", &m->swap_limit) < 0)
                m->swap_limit = UINT64_MAX;
        if (read_u64(dir, "memory.swap.current", &m->swap_usage) < 0)
                m->swap_usage = 0;
        return 0;
}

/* Seconds since the VE's init started: its start time in the VE's own procfs. */
static int ve_uptime(int root, long *out)
{
        _cleanup_close_ int fd = -EBADF;
        struct timespec now;
        struct statfs sfs;
        struct stat st;
        char buf[1024];
        uint64_t start;
        long hz = sysconf(_SC_CLK_TCK);
        int ret;

        fd = ve_openat2(root, "/proc/1/stat", O_RDONLY | O_NONBLOCK | O_CLOEXEC,
                        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
        if (fd < 0)
                return -errno;
        if (fstatfs(fd, &sfs) < 0 || sfs.f_type != PROC_SUPER_MAGIC || fstat(fd, &st) < 0 ||
            !S_ISREG(st.st_mode))
                return -EINVAL;
        ret = read_fd(fd, buf, sizeof(buf));
        if (ret == 0)
                ret = ve_sysinfo_stat_starttime(buf, &start);
        if (ret < 0)
                return ret;
        if (hz <= 0 || clock_gettime(CLOCK_BOOTTIME, &now) < 0)
                return -EINVAL;
        *out = now.tv_sec - (long)(start / (uint64_t)hz);
        if (*out < 0)
                *out = 0;
        return 0;
}

int ve_sysinfo_for(int proc, int root, uint32_t ctid, struct sysinfo *out)
{
        struct ve_mem_figures m = { 0 };
        struct sysinfo host;
        char cgroups[4096], top[128], dir[256];
        uint64_t procs = 0;
        long uptime = 0;
        bool v1;
        int ret;

        ret = read_at(proc, "cgroup", cgroups, sizeof(cgroups));
        if (ret < 0)
                return ret;
        /* A memory hierarchy of its own (v1), else the unified one. */
        v1 = ve_sysinfo_cgroup_top(cgroups, "memory", ctid, top, sizeof(top)) == 0;
        if (!v1 && (ret = ve_sysinfo_cgroup_top(cgroups, NULL, ctid, top, sizeof(top))) < 0)
                return ret;
        snprintf(dir, sizeof(dir), CGROUP_ROOT "%s%s", v1 ? "/memory" : "", top);
        ret = v1 ? memory_v1(dir, &m) : memory_v2(dir, &m);
        if (ret < 0)
                return ret;
        if (v1 && (ret = ve_sysinfo_cgroup_top(cgroups, "pids", ctid, top, sizeof(top))) < 0)
                return ret;
        snprintf(dir, sizeof(dir), CGROUP_ROOT "%s%s", v1 ? "/pids" : "", top);
        ret = read_u64(dir, "pids.current", &procs);
        if (ret == 0)
                ret = ve_uptime(root, &uptime);
        if (ret < 0)
                return ret;
        if (sysinfo(&host) < 0)
                return -errno;
        ve_sysinfo_fill(out, &host, &m, uptime, (unsigned)min_u64(procs, UINT32_MAX));
        return 0;
}
