/* The VE's root filesystem as its init sees it, set up by the init-to-be in its
 * new mount namespace, before execve. Internal to ve/; child-safe (only system
 * calls, see child.h).
 *
 * Every mount target inside the rootfs is opened with openat2(RESOLVE_IN_ROOT |
 * RESOLVE_NO_SYMLINKS) and mounted on through /proc/self/fd/N (runc's way), so a
 * rootfs whose /proc, /sys or /dev is a symlink is refused instead of having the
 * kernel follow the link, possibly out of the rootfs onto the host's tree. All of
 * this happens before pivot_root, while the host's /proc is still reachable. */
#ifndef VE_ROOTFS_H
#define VE_ROOTFS_H

#include "child.h"

/* Make every mount slave (so nothing we do propagates to the host, while host
 * mounts under the private area still reach the VE), put a mount on rootfs so it
 * is a mount point pivot_root accepts, and open it: *rootfd is an O_PATH fd of
 * that new mount. The mount is tree_fd, the idmapped clone the daemon made
 * (idmap.h), or without a user namespace (tree_fd < 0) a bind of rootfs on
 * itself. */
int ve_rootfs_prepare(const char *rootfs, int tree_fd, int *rootfd, struct ve_child_err *e);

/* Start reading the VE's init binary (path, inside the root rootfd) into the page
 * cache, so that its execve and first page faults find it there instead of
 * waiting for each read in turn. Best effort: anything but a regular file, or
 * any error, is left alone. Called by the start child, already in the VE's
 * cgroup, so the pages are charged to the VE. */
void ve_rootfs_prefetch(int rootfd, const char *path);

/* Open the directory `name` (one component) of rootfd as O_PATH, creating it
 * (mode 0755) if missing; a symlink there is refused with -ELOOP. */
int ve_rootfs_open_dir(int rootfd, const char *name, int *fd, struct ve_child_err *e);

/* mount(2) onto the directory or file open as target_fd. what names the target
 * in messages ("/proc"). */
int ve_rootfs_mount_on(int target_fd, const char *src, const char *fstype, unsigned long flags,
                       const char *data, const char *what, struct ve_child_err *e);

/* /proc (proc, nosuid,nodev,noexec) and /sys (sysfs read-only: the new network
 * namespace's view). */
int ve_rootfs_mount_kernfs(int rootfd, struct ve_child_err *e);

/* Once /proc, /sys and /dev are in place: /proc/sys, /proc/sysrq-trigger and the
 * like read-only; /proc/kcore, /proc/keys, /proc/timer_list, /proc/kmsg and the
 * like covered by the VE's /dev/null, and /sys/firmware, /proc/acpi and /proc/scsi
 * by an empty read-only tmpfs. Paths this kernel lacks are skipped. */
int ve_rootfs_mask_kernfs(int rootfd, struct ve_child_err *e);

/* lxcfs's files that cover the VE's own (/proc/meminfo, cpuinfo, stat, uptime,
 * loadavg, diskstats, swaps, slabinfo and /sys/devices/system/cpu/online). */
#define VE_LXCFS_FILES 9
struct ve_lxcfs_fds {
        int fd[VE_LXCFS_FILES]; /* O_PATH, -1 where lxcfs lacks the file */
};

/* Open lxcfs's files under dir (NULL: none) as O_PATH fds; never fails: a file
 * that cannot be opened is -1. The daemon holds them while lxcfs runs: looking
 * them up again through FUSE cost each start 3-5 ms once lxcfs's entries had
 * expired. ve_rootfs_lxcfs_close() closes them. */
void ve_rootfs_lxcfs_open(const char *dir, struct ve_lxcfs_fds *fds);
void ve_rootfs_lxcfs_close(struct ve_lxcfs_fds *fds);
/* Close-on-exec dups of fds into copy (-1 where fds has none or dup fails). */
void ve_rootfs_lxcfs_dup(const struct ve_lxcfs_fds *fds, struct ve_lxcfs_fds *copy);

/* Parent side, before the VE's child is cloned: a detached copy of each file's
 * mount (open_tree OPEN_TREE_CLONE on the fd, no path lookup) into trees, for the
 * child to attach with ve_rootfs_mount_lxcfs(). A file that cannot be cloned is
 * -1 (the VE keeps its own). */
void ve_rootfs_lxcfs_clone(const struct ve_lxcfs_fds *fds, struct ve_lxcfs_fds *trees);

/* Attach each detached lxcfs tree over the VE's own file, once /proc and /sys are
 * mounted and before they are masked; closes the fds. */
int ve_rootfs_mount_lxcfs(int rootfd, struct ve_lxcfs_fds *trees, struct ve_child_err *e);

/* After lxcfs was started again: in the mount namespace of the running VE whose
 * init is init_pidfd, replace each lxcfs bind (the dead one's files answer
 * ENOTCONN) by a clone of the new one's (fds: ve_rootfs_lxcfs_open() of it),
 * through a short-lived helper (raw clone3, setns, move_mount). A VE that started without lxcfs gets its files
 * now; one the VE covered with a mount of its own, or whose path leads through a
 * link, is left alone. */
int ve_rootfs_lxcfs_rebind(int init_pidfd, const struct ve_lxcfs_fds *fds, struct ve_error *err);

/* pivot_root into rootfd and detach the old root, leaving cwd at the new "/". */
int ve_rootfs_pivot(int rootfd, struct ve_child_err *e);

#endif
