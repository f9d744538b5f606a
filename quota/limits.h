/* A VE's resource limits and usage counters, written to and read from its cgroup
 * `<instance>/<ctid>` by the backend of quota/cgroup.h (v1 or v2).
 *
 *   limit       cgroup v1                                  cgroup v2
 *   ram         memory.limit_in_bytes                      memory.max
 *   swap        memory.memsw.limit_in_bytes (ram + swap)   memory.swap.max
 *   cpus        cpuset.cpus (+ the cap below)              cpuset.cpus + cpu.max
 *   cpulimit    cpu.cfs_quota_us / cpu.cfs_period_us       cpu.max
 *   cpuunits    cpu.shares (1000 units = 1024 shares)      cpu.weight (units / 10)
 *   numproc     pids.max                                   pids.max
 *   iolimit     blkio.throttle.{read,write}_bps_device     io.max rbps, wbps
 *   iopslimit   blkio.throttle.{read,write}_iops_device    io.max riops, wiops
 *
 * Every call writes every limit, so it is both "apply at start" and "change live":
 * an unset limit is written as the kernel's "no limit". */
#ifndef QUOTA_LIMITS_H
#define QUOTA_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ve/error.h"

struct quota_cgroup;

#define QUOTA_UNLIMITED UINT64_MAX

struct quota_limits {
        uint64_t ram;                  /* bytes; QUOTA_UNLIMITED: none */
        uint64_t swap;                 /* bytes beyond ram; QUOTA_UNLIMITED: not limited */
        unsigned cpus;                 /* CPUs the VE may use; 0: all of the host's */
        unsigned cpulimit;             /* percent of one CPU; 0: no cap */
        unsigned cpuunits;             /* relative weight; 0: the default, 1000 */
        uint64_t numproc;              /* QUOTA_UNLIMITED: none */
        uint64_t iolimit;              /* bytes per second, each direction; 0: none */
        uint64_t iopslimit;            /* operations per second, each direction; 0: none */
        unsigned blk_major, blk_minor; /* the VE's block device (its loop); 0:0: none */
};

/* A limits struct with nothing limited. */
void quota_limits_init(struct quota_limits *l);

/* What the kernel counts for a VE. Counters the host's kernel does not offer read
 * as 0; limits read QUOTA_UNLIMITED when there is none. */
struct quota_usage {
        uint64_t mem_current, mem_limit, mem_max; /* bytes; mem_max: the peak */
        uint64_t mem_failcnt;                     /* times the limit was hit */
        uint64_t oom_kills;
        uint64_t swap_current; /* bytes of swap (v1: memsw usage - memory usage) */
        uint64_t cpu_ns;       /* CPU time used, all CPUs */
        uint64_t pids_current, pids_limit;
        uint64_t pids_hits; /* forks refused at pids.max */
        uint64_t io_read_bytes, io_write_bytes, io_read_ops, io_write_ops;
};

/* Write every limit of l to the VE's cgroup (which must exist); see
 * quota_cgroup_unenforced() for the controllers a host may lack. */
int quota_cgroup_set_limits(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                            const struct quota_limits *l, struct ve_error *err);

/* The controllers whose limits the VE's cgroup (which must exist) cannot take,
 * space-separated into buf ("" when none; -ENOBUFS when buf is too small). On
 * cgroup v2 a controller the host does not delegate to ved's instance (not in
 * its parent's cgroup.controllers) is skipped by quota_cgroup_set_limits(): the
 * VE runs, unlimited there, as LXD does, and the daemon says so. On v1 a
 * missing hierarchy makes quota_cgroup_set_limits() fail instead. */
int quota_cgroup_unenforced(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                            char *buf, size_t len);

/* Read the VE's counters. A missing cgroup is -ENOENT. */
int quota_cgroup_usage(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                       struct quota_usage *u, struct ve_error *err);

/* The CPUs the VE gets: `want` of the CPUs in `parent` (a cpuset list such as
 * "0-3,8"), starting at the (ctid % count)-th so VEs with few CPUs spread over
 * the host; want 0 or more than there are gives all of parent. Writes a list
 * into buf. Shared by both backends; exposed for unit tests. */
int quota_pick_cpus(const char *parent, unsigned want, uint32_t ctid, char *buf, size_t len,
                    struct ve_error *err);

/* Helpers shared by the backends: the first number after `key` (a word at the
 * start of a line, followed by a space or '=') in a flat-keyed file's text. */
bool quota_keyed_value(const char *text, const char *key, uint64_t *out);
/* The line after the one line points into, or NULL at the end. */
const char *quota_next_line(const char *line);

#endif
