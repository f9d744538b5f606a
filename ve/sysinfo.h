/* sysinfo(2) inside a VE: its own memory, processes and uptime.
 *
 * lxcfs gives a VE its own /proc/meminfo and /proc/uptime, but sysinfo(2) is a
 * system call that no file system can answer: busybox's free and uptime, and
 * glibc's sysconf(_SC_PHYS_PAGES) (what JVMs and sort size themselves by), read
 * the host's whole memory and uptime there. So ve-statfsd, which already
 * answers a VE's statfs calls through a seccomp user notification
 * (statfs_notify.h), answers its x86-64 sysinfo calls too, as Incus does:
 *
 *   - totalram: the VE's memory limit (its memory cgroup, <instance>/<ctid>),
 *     at most the host's; freeram: that less what the cgroup uses, page cache
 *     included, as lxcfs's MemFree (busybox's free takes Cached from
 *     /proc/meminfo, lxcfs's, and shows used = total - free - cached);
 *     sharedram: its shmem; bufferram: 0;
 *   - totalswap, freeswap: its swap limit and what it uses of it (0 when the
 *     host has no swap), at most the host's;
 *   - uptime: since the VE's init started (the /proc/1/stat of the procfs in the
 *     VE, checked to be a procfs);
 *   - procs: its tasks (pids.current of its pids cgroup);
 *   - loads, high memory: the host's, as before.
 *
 * A figure that cannot be read leaves the call to the kernel (the host's answer,
 * as without ve-statfsd). i386 calls are left to the kernel too. */
#ifndef VE_SYSINFO_H
#define VE_SYSINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/sysinfo.h>

/* What the VE's cgroups say, in bytes. UINT64_MAX: no limit. */
struct ve_mem_figures {
        uint64_t limit, usage, cache, shmem;
        uint64_t swap_limit, swap_usage; /* the swap on top of limit */
};

/* The VE's answer from the host's (host, mem_unit 1 or more), its cgroups' figures,
 * its uptime in seconds and its task count. */
void ve_sysinfo_fill(struct sysinfo *out, const struct sysinfo *host,
                     const struct ve_mem_figures *m, long uptime, unsigned procs);

/* The VE's cgroup of a controller, from the /proc/<pid>/cgroup text of one of its
 * processes: the controller's path ("memory" on v1; v2's "0::" line when
 * controller is NULL) up to its first component named ctid below another (the
 * instance's): "/<instance>/<ctid>" under the hierarchy's root. 0, or -ENOENT
 * when the text has no such line or path. */
int ve_sysinfo_cgroup_top(const char *proc_cgroup, const char *controller, uint32_t ctid, char *out,
                          size_t len);

/* The start time (clock ticks after boot) from the text of a /proc/<pid>/stat.
 * 0 or -EINVAL. */
int ve_sysinfo_stat_starttime(const char *stat, uint64_t *out);

/* The whole answer for the process of /proc/<pid> (proc, a directory fd) with
 * root (its root directory, O_PATH), of VE ctid. 0, or -errno when a figure
 * cannot be read. */
int ve_sysinfo_for(int proc, int root, uint32_t ctid, struct sysinfo *out);

#endif
