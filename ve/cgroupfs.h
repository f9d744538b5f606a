/* The cgroup file systems a VE sees at /sys/fs/cgroup, and its /run: what systemd
 * needs to run as a container's init (LXC's "cgroup:mixed").
 *
 * On a cgroup v1 host the VE gets a tmpfs at /sys/fs/cgroup holding one mount per
 * hierarchy the host has there, the hybrid `unified` cgroup2 mount included (the
 * v1 backend gives the VE a cgroup there too: systemd learns of empty cgroups
 * only from cgroup2, a v1 release agent being the host's). Each is mounted from
 * inside the VE's
 * cgroup namespace, so its root is the VE's own cgroup: nothing above it is
 * visible. name=systemd and unified are mounted read-write, every controller
 * read-only; the
 * daemon chowns the VE's name=systemd directory to the VE's root (quota
 * cgroup.h's quota_cgroup_delegate()), which is what makes it writable, and only
 * that subtree: the parents stay the host's root's. release_agent exists only in a
 * hierarchy's real root, never in the VE's subtree, and since Linux 5.17 needs
 * CAP_SYS_ADMIN in the initial user namespace besides. The tmpfs is remounted
 * read-only once filled, so the VE cannot add hierarchies of its own there (it
 * could not create new ones anyway: only the initial cgroup namespace may).
 *
 * On a cgroup v2 host /sys/fs/cgroup is a cgroup2 mount whose root is the VE's
 * cgroup, delegated the same way (its directory, cgroup.procs, cgroup.threads and
 * cgroup.subtree_control owned by the VE's root).
 *
 * systemd in legacy mode finds /sys/fs/cgroup a tmpfs and /sys/fs/cgroup/systemd a
 * cgroup v1 mount and runs; in unified mode it finds a cgroup2 mount.
 */
#ifndef VE_CGROUPFS_H
#define VE_CGROUPFS_H

#include <stdbool.h>

#include "child.h"
#include "error.h"

#define VE_CGROUPFS_MAX 16

struct ve_cgroupfs {
        int version; /* 0: mount nothing; 1 or 2 */
        unsigned n;  /* v1 hierarchies */
        struct {
                char dir[64];   /* name under /sys/fs/cgroup: "memory", "systemd" */
                char opts[128]; /* mount data: "memory", "name=systemd" */
                bool writable;  /* name=systemd and unified only */
                bool cgroup2;   /* the hybrid layout's "unified" cgroup2 mount */
        } h[VE_CGROUPFS_MAX];
};

/* Read the host's layout from /proc/self/mountinfo: cgroup2 on /sys/fs/cgroup is
 * v2; else each cgroup (v1) mount directly under /sys/fs/cgroup is a hierarchy.
 * Read once per process, then copied from memory (thread-safe). Call in the
 * parent, before clone (it allocates). No cgroup file system at all leaves
 * out->version 0. */
int ve_cgroupfs_probe(struct ve_cgroupfs *out, struct ve_error *err);

/* Turn on the cgroup2 root's favordynmods (Linux 6.0) through the first cgroup2
 * mount in mountinfo (a v1 host's hybrid `unified`), keeping its other options.
 * Without it, every move of a process into a cgroup (a v1 host's start and exec:
 * a write to cgroup.procs) waits for an RCU grace period, 5-20 ms, as it switches
 * the kernel's global threadgroup lock to its writers' mode; with it that lock
 * stays so, at a small cost to every fork and exit. The option is the cgroup2
 * root's, but the lock is shared with every v1 hierarchy. Host-wide; on Linux
 * 6.18 its effect outlived a remount without it. *where gets the mount point.
 * Returns 1 when turned on now, 0 when it was on, VE_EUNSUPPORTED without a
 * cgroup2 mount or on an older kernel. */
int ve_cgroupfs_favor_dynmods(char *where, size_t len, struct ve_error *err);

/* Does the first cgroup2 mount show favordynmods? */
bool ve_cgroupfs_favors_dynmods(void);

/* In the VE's init-to-be, after unsharing the cgroup namespace and mounting /sys:
 * mount the layout of fs at /sys/fs/cgroup below rootfd. Child-safe. */
int ve_cgroupfs_mount(int rootfd, const struct ve_cgroupfs *fs, struct ve_child_err *e);

/* /run as a tmpfs (mode 0755), /run/lock (1777, noexec) and /run/systemd/container
 * saying "ved", as systemd wants a container's /run. Child-safe. */
int ve_rootfs_mount_run(int rootfd, struct ve_child_err *e);

#endif
