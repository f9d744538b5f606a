/* A VE's cgroup, behind a small backend table (crun's cgroup manager).
 *
 * Every VE lives in the cgroup `<instance>/<ctid>`: on cgroup v1 under each
 * hierarchy mounted at <root>/<controller> (cpu, cpuacct, cpuset, memory,
 * devices, freezer, blkio, pids and name=systemd), on cgroup v2 as one directory
 * under the unified mount <root>. The backend is chosen once at startup by
 * quota_cgroup_detect() and never changes; the handle is immutable afterwards, so
 * every function here is safe to call from several threads at once.
 *
 * All functions return 0 or a negative errno value and fill err (ve/error.h).
 * `instance` is the daemon's --instance name: one path component, no '/'.
 */
#ifndef QUOTA_CGROUP_H
#define QUOTA_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ve/error.h"

enum quota_cgroup_version {
        QUOTA_CGROUP_V1 = 1,
        QUOTA_CGROUP_V2 = 2,
};

struct quota_cgroup;
struct quota_limits;
struct quota_usage;

/* One backend. Every operation names the VE's cgroup by instance and ctid; the
 * public wrappers below validate the instance before calling in. Resource limits
 * (set_memory, set_pids, set_cpu, set_io ...) are added here as further members. */
struct quota_cgroup_ops {
        const char *name; /* "v1" or "v2" */
        int (*create)(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                      struct ve_error *err);
        int (*open_fd)(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                       struct ve_error *err);
        int (*attach)(const struct quota_cgroup *cg, const char *instance, uint32_t ctid, pid_t pid,
                      struct ve_error *err);
        /* quota_cgroup_prewarm(); NULL: nothing to do */
        void (*prewarm)(const struct quota_cgroup *cg);
        int (*procs)(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                     pid_t **pids, size_t *n, struct ve_error *err);
        int (*is_populated)(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                            bool *out, struct ve_error *err);
        int (*kill_all)(const struct quota_cgroup *cg, const char *instance, uint32_t ctid, int sig,
                        struct ve_error *err);
        int (*destroy)(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                       struct ve_error *err);
        int (*exists)(const struct quota_cgroup *cg, const char *instance, uint32_t ctid, bool *out,
                      struct ve_error *err);
        int (*remove_instance)(const struct quota_cgroup *cg, const char *instance,
                               struct ve_error *err);
        /* quota_cgroup_helpers() */
        int (*helpers)(const struct quota_cgroup *cg, const char *instance, pid_t pid,
                       unsigned cpu_permille, struct ve_error *err);
        int (*devices_allow)(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                             struct ve_error *err);
        /* quota_cgroup_delegate() */
        int (*delegate)(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                        uid_t uid, gid_t gid, struct ve_error *err);
        /* quota/limits.h */
        int (*set_limits)(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                          const struct quota_limits *l, struct ve_error *err);
        int (*usage)(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                     struct quota_usage *u, struct ve_error *err);
        int (*unenforced)(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                          char *buf, size_t len);
};

struct quota_cgroup {
        const struct quota_cgroup_ops *ops;
        char *root; /* v1: directory holding the hierarchies; v2: the cgroup2 mount */
};

extern const struct quota_cgroup_ops quota_cgroup_v1_ops;
extern const struct quota_cgroup_ops quota_cgroup_v2_ops;

/* Pick the backend from the host's layout: v2 when /sys/fs/cgroup is a cgroup2
 * mount (statfs magic), else v1 with its hierarchies under /sys/fs/cgroup. The
 * hybrid `unified` cgroup2 mount of a v1 host holds no controllers; the v1 backend
 * gives each VE a cgroup there too, for the VE's systemd to track its units.
 * *out is freed with quota_cgroup_free(). */
int quota_cgroup_detect(struct quota_cgroup **out, struct ve_error *err);

/* Use a given backend and root, for tests (v2 on a v1 host's unified mount).
 * The root must exist; it is not checked to be of the right filesystem type. */
int quota_cgroup_open(enum quota_cgroup_version version, const char *root,
                      struct quota_cgroup **out, struct ve_error *err);

void quota_cgroup_free(struct quota_cgroup *cg);

/* "v1" or "v2". */
const char *quota_cgroup_name(const struct quota_cgroup *cg);

/* Make <instance>/<ctid> (and <instance>) under every hierarchy. v1 copies
 * cpuset.cpus and cpuset.mems from the parent, since an empty cpuset cannot hold a
 * task; v2 enables in <instance>'s cgroup.subtree_control every controller it has.
 * An existing cgroup is kept (so a restarted operation can run again); what this
 * call made is removed again if it fails half-way. Either way the cgroup ends up
 * with the VE's device allow-list (quota_cgroup_devices_allow()). */
int quota_cgroup_create(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                        struct ve_error *err);

/* Let the VE's processes open (and mknod) only the character devices null, zero,
 * full, random, urandom, tty, console, ptmx and the pty slaves; every other open
 * of a device fails with EPERM. v1: "a" written to the VE's devices.deny, then
 * one devices.allow line each (the v1 hierarchy requires no device program, but
 * the <instance> parent must allow what the VE does: it keeps the default "a").
 * A host whose v1 layout has no devices hierarchy is refused (VE_EUNSUPPORTED):
 * a VE must not run without it. v2: a BPF_PROG_TYPE_CGROUP_DEVICE program
 * attached to the VE's cgroup (replacing an earlier one). quota_cgroup_create()
 * calls this; it may be called again. */
int quota_cgroup_devices_allow(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                               struct ve_error *err);

/* Hand the VE's cgroup to its root (host uid/gid, the base of its id range), as
 * systemd needs to run as the VE's init (LXC and systemd's Delegate= do the same):
 * v1: the VE's directory in the name=systemd hierarchy and its cgroup.procs,
 * tasks and cgroup.clone_children; v2: the VE's directory and its cgroup.procs,
 * cgroup.threads and cgroup.subtree_control. Nothing else: the limits (memory.*,
 * pids.max ...) and every parent directory stay the host's root's, and no v1
 * controller hierarchy is delegated. A host without name=systemd has nothing to
 * delegate on v1. Call after quota_cgroup_create(); may be called again. */
int quota_cgroup_delegate(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                          uid_t uid, gid_t gid, struct ve_error *err);

/* v2 only: an O_CLOEXEC directory fd of the VE's cgroup for clone3's
 * CLONE_INTO_CGROUP; the caller closes it. v1 answers -EOPNOTSUPP. */
int quota_cgroup_open_fd(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                         struct ve_error *err);

/* v1: an attach waits for an RCU grace period (5-20 ms) when the kernel's global
 * threadgroup lock must first be switched to its writers' mode, and the switch
 * lasts about one grace period after the last writer. This starts, on a thread of
 * its own, a move that changes nothing (a thread into the freezer cgroup it is
 * in), so that an attach a few ms later finds the switch done or under way: a
 * start calls it when its request arrives and at its first step. Returns at
 * once; at most one runs at a time.
 * v2 has nothing to do: its processes are cloned into their cgroup. Nor has a
 * host with favordynmods (ve/cgroupfs.h), where the lock stays switched. */
void quota_cgroup_prewarm(const struct quota_cgroup *cg);

/* Move process pid (all its threads) into the VE's cgroup, in every hierarchy. */
int quota_cgroup_attach(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                        pid_t pid, struct ve_error *err);

/* Where quota_cgroup_attach() is wanted as a callback (ve_start()'s struct
 * ve_cgroup_join): data points to a struct quota_cgroup_target that outlives the call. */
struct quota_cgroup_target {
        const struct quota_cgroup *cg;
        const char *instance;
        uint32_t ctid;
};
int quota_cgroup_attach_cb(pid_t pid, void *data, struct ve_error *err);

/* Host pids of every process in the VE's cgroup and its descendants (v1: as the
 * freezer hierarchy sees them). *pids is malloc'd (NULL when *n is 0); free it. */
int quota_cgroup_procs(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                       pid_t **pids, size_t *n, struct ve_error *err);

/* Whether any process is left in the VE's cgroup or below. */
int quota_cgroup_is_populated(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                              bool *out, struct ve_error *err);

/* Signal every process of the VE. With SIGKILL it blocks until the cgroup is empty
 * (v2: cgroup.kill; v1: freeze, kill each pid, thaw, repeat, so a fork bomb cannot
 * outrun it) and answers -EBUSY if it is not empty after a few seconds. Any other
 * signal is sent once to each process. A missing cgroup is not an error. */
int quota_cgroup_kill_all(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                          int sig, struct ve_error *err);

/* Remove the VE's cgroup (and any sub-cgroups the VE made) in every hierarchy,
 * retrying briefly while dying processes still populate it; -EBUSY if it stays
 * busy. A missing cgroup is not an error. The <instance> directory is kept. */
int quota_cgroup_destroy(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                         struct ve_error *err);

/* Whether <instance>/<ctid> exists (v1: in the freezer hierarchy). */
int quota_cgroup_exists(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                        bool *out, struct ve_error *err);

/* Remove the empty <instance> directory everywhere (a daemon's teardown, tests).
 * -EBUSY while any VE cgroup is left in it; a missing directory is not an error. */
/* The daemon's servers that work for VEs (lxcfs, ve-statfsd) live in
 * `<instance>/helpers` (not a CTID: no VE is named so), held there to
 * cpu_permille thousandths of one CPU (v1: the cpu hierarchy's cfs quota; v2:
 * cpu.max): no VE's cgroup pays for what they do, so a VE that keeps them busy
 * (reading lxcfs's /proc files in a loop) must not get a host CPU from them.
 * Moves pid there, making the directory when it is missing; again for a pid
 * already there is harmless. quota_cgroup_remove_instance() removes it too. */
int quota_cgroup_helpers(const struct quota_cgroup *cg, const char *instance, pid_t pid,
                         unsigned cpu_permille, struct ve_error *err);
#define QUOTA_CGROUP_HELPERS "helpers"

int quota_cgroup_remove_instance(const struct quota_cgroup *cg, const char *instance,
                                 struct ve_error *err);

/* Helpers shared by the backends (cgroup.c), not for other callers. */
/* chown dir and each of files in it (NULL-terminated; missing files skipped). */
int quota_cg_chown(const char *dir, const char *const *files, uid_t uid, gid_t gid,
                   struct ve_error *err);
int quota_cg_write(const char *path, const char *value, struct ve_error *err);
/* quota_cg_write() of dir/file, when *ret is 0 (a chain of writes stops at the
 * first error); returns *ret. */
int quota_cg_write_in(const char *dir, const char *file, const char *value, int *ret,
                      struct ve_error *err);
/* Append word to the space-separated list in buf (*used bytes so far);
 * -ENOBUFS when it does not fit. */
int quota_cg_list_add(char *buf, size_t len, size_t *used, const char *word);
int quota_cg_read(const char *path, char *buf, size_t len, struct ve_error *err);
int quota_cg_collect_procs(const char *dir, pid_t **pids, size_t *n, struct ve_error *err);
int quota_cg_rmdir_tree(const char *dir, struct ve_error *err);
int quota_cg_kill_pids(const char *dir, int sig, size_t *killed, struct ve_error *err);
void quota_cg_sleep_ms(unsigned ms);
/* devices.c: the allow-list for a v1 devices cgroup directory, or as a BPF
 * program attached to a v2 cgroup directory. */
int quota_cg_devices_v1(const char *dir, struct ve_error *err);
int quota_cg_devices_bpf(const char *dir, struct ve_error *err);
/* limits_v1.c, limits_v2.c: the backends' limits and usage. */
int quota_v1_set_limits(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                        const struct quota_limits *l, struct ve_error *err);
int quota_v1_usage(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                   struct quota_usage *u, struct ve_error *err);
int quota_v2_set_limits(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                        const struct quota_limits *l, struct ve_error *err);
int quota_v2_usage(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                   struct quota_usage *u, struct ve_error *err);
int quota_v1_unenforced(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                        char *buf, size_t len);
int quota_v2_unenforced(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                        char *buf, size_t len);

#endif
