/* The VE's mount namespace: private root, /proc, /sys, pivot_root. */
#include "ve/rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/magic.h>
#include <linux/openat2.h>

#include "ve/idmap.h"

#define IN_ROOT (RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)

static int attach_tree(const char *rootfs, int tree_fd, struct ve_child_err *e)
{
        int fd, ret;

        fd = open(rootfs, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return ve_child_fail(e, errno, "open %s", rootfs);
        ret = ve_idmap_attach_root(tree_fd, fd, e);
        close(fd);
        return ret;
}

int ve_rootfs_prepare(const char *rootfs, int tree_fd, int *rootfd, struct ve_child_err *e)
{
        int fd, ret;

        if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
                return ve_child_fail(e, errno, "make mounts slave");
        if (tree_fd >= 0) {
                ret = attach_tree(rootfs, tree_fd, e);
                if (ret < 0)
                        return ret;
        } else if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0) {
                return ve_child_fail(e, errno, "bind-mount %s on itself", rootfs);
        }
        /* Now the path leads to the mount just made, on top of the host's. */
        fd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return ve_child_fail(e, errno, "open %s", rootfs);
        *rootfd = fd;
        return 0;
}

/* The VE's image is read through its loop device with direct I/O, from the
 * disk every time; the readahead runs while the child sets up the VE's mounts
 * and the daemon its network. Bounded, as the binary is the VE's to choose. */
#define PREFETCH_MAX (16 << 20)

void ve_rootfs_prefetch(int rootfd, const char *path)
{
        struct stat st;
        int fd;

        while (*path == '/')
                path++;
        /* Not a device (the private area is nodev) nor a FIFO (O_NONBLOCK). */
        fd = ve_openat2(rootfd, path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
                        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV);
        if (fd < 0)
                return;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
                (void)readahead(fd, 0,
                                st.st_size < PREFETCH_MAX ? (size_t)st.st_size : PREFETCH_MAX);
        close(fd);
}

int ve_rootfs_open_dir(int rootfd, const char *name, int *fd, struct ve_child_err *e)
{
        const uint64_t flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
        int ret;

        ret = ve_openat2(rootfd, name, flags, IN_ROOT);
        if (ret < 0 && errno == ENOENT) {
                if (mkdirat(rootfd, name, 0755) < 0 && errno != EEXIST)
                        return ve_child_fail(e, errno, "create /%s", name);
                ret = ve_openat2(rootfd, name, flags, IN_ROOT);
        }
        if (ret < 0 && errno == ELOOP)
                return ve_child_fail_plain(e, ELOOP, "/%s is a symlink in the VE's root: refused",
                                           name);
        if (ret < 0 && errno == ENOTDIR)
                return ve_child_fail_plain(e, ENOTDIR, "/%s is not a directory in the VE's root",
                                           name);
        if (ret < 0)
                return ve_child_fail(e, errno, "open /%s", name);
        *fd = ret;
        return 0;
}

int ve_rootfs_mount_on(int target_fd, const char *src, const char *fstype, unsigned long flags,
                       const char *data, const char *what, struct ve_child_err *e)
{
        char target[64];

        snprintf(target, sizeof(target), "/proc/self/fd/%d", target_fd);
        if (mount(src, target, fstype, flags, data) < 0)
                return ve_child_fail(e, errno, "mount %s on %s", fstype ? fstype : src, what);
        return 0;
}

static int mount_dir(int rootfd, const char *name, const char *fstype, unsigned long flags,
                     struct ve_child_err *e)
{
        char what[32];
        int fd = -1, ret;

        ret = ve_rootfs_open_dir(rootfd, name, &fd, e);
        if (ret < 0)
                return ret;
        snprintf(what, sizeof(what), "/%s", name);
        ret = ve_rootfs_mount_on(fd, fstype, fstype, flags, NULL, what, e);
        close(fd);
        return ret;
}

int ve_rootfs_mount_kernfs(int rootfd, struct ve_child_err *e)
{
        const unsigned long safe = MS_NOSUID | MS_NODEV | MS_NOEXEC;
        int ret;

        ret = mount_dir(rootfd, "proc", "proc", safe, e);
        if (ret < 0)
                return ret;
        return mount_dir(rootfd, "sys", "sysfs", safe | MS_RDONLY, e);
}

/* What a VE must not write or read of the kernel's files, after crun's and
 * LXC's defaults. In a user namespace most of these are already closed (their
 * files belong to the host's root, whom the namespace does not map); these mounts
 * are the second wall, and cover kernels whose files say otherwise. */
static const char *const readonly_paths[] = {
        "proc/sys", "proc/sysrq-trigger", "proc/irq", "proc/bus", "proc/fs", "proc/asound",
};

static const char *const masked_paths[] = {
        "proc/kcore",
        "proc/keys",
        "proc/timer_list",
        "proc/sched_debug",
        "proc/kmsg",
        "proc/latency_stats",
        "proc/timer_stats",
        "proc/acpi",
        "proc/scsi",
        "sys/firmware",
        "sys/devices/virtual/powercap",
};

#define RO_FLAGS (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)

/* Open a path below rootfd for mounting on it; *fd is -1 when it does not exist
 * (this kernel has no such file), a symlink anywhere on the way is refused. */
static int open_target(int rootfd, const char *path, int *fd, struct ve_child_err *e)
{
        *fd = ve_openat2(rootfd, path, O_PATH | O_CLOEXEC, IN_ROOT);
        if (*fd < 0 && errno != ENOENT)
                return ve_child_fail(e, errno, "open /%s", path);
        return 0;
}

/* A bind mount of the path on itself, remounted read-only (a bind mount takes
 * mount flags only at the remount). */
static int make_readonly(int rootfd, const char *path, struct ve_child_err *e)
{
        char src[64];
        int fd, ret;

        ret = open_target(rootfd, path, &fd, e);
        if (ret < 0 || fd < 0)
                return ret;
        snprintf(src, sizeof(src), "/proc/self/fd/%d", fd);
        ret = ve_rootfs_mount_on(fd, src, NULL, MS_BIND | MS_REC, NULL, path, e);
        close(fd);
        if (ret < 0)
                return ret;
        ret = open_target(rootfd, path, &fd, e);
        if (ret < 0 || fd < 0)
                return ret < 0 ? ret : ve_child_fail(e, ENOENT, "reopen /%s", path);
        ret = ve_rootfs_mount_on(fd, NULL, NULL, MS_BIND | MS_REMOUNT | RO_FLAGS, NULL, path, e);
        close(fd);
        return ret;
}

/* A directory gets an empty read-only tmpfs, a file the VE's /dev/null. */
static int mask(int rootfd, int nullfd, const char *path, struct ve_child_err *e)
{
        struct stat st;
        char src[64];
        int fd, ret;

        ret = open_target(rootfd, path, &fd, e);
        if (ret < 0 || fd < 0)
                return ret;
        if (fstat(fd, &st) < 0) {
                ret = ve_child_fail(e, errno, "stat /%s", path);
        } else if (S_ISDIR(st.st_mode)) {
                ret = ve_rootfs_mount_on(fd, "tmpfs", "tmpfs", RO_FLAGS, "size=4k,mode=0555", path,
                                         e);
        } else {
                snprintf(src, sizeof(src), "/proc/self/fd/%d", nullfd);
                ret = ve_rootfs_mount_on(fd, src, NULL, MS_BIND, NULL, path, e);
        }
        close(fd);
        return ret;
}

int ve_rootfs_mask_kernfs(int rootfd, struct ve_child_err *e)
{
        int nullfd, ret = 0;

        for (size_t i = 0; ret == 0 && i < sizeof(readonly_paths) / sizeof(readonly_paths[0]); i++)
                ret = make_readonly(rootfd, readonly_paths[i], e);
        if (ret < 0)
                return ret;
        nullfd = ve_openat2(rootfd, "dev/null", O_PATH | O_CLOEXEC, IN_ROOT);
        if (nullfd < 0)
                return ve_child_fail(e, errno, "open /dev/null");
        for (size_t i = 0; ret == 0 && i < sizeof(masked_paths) / sizeof(masked_paths[0]); i++)
                ret = mask(rootfd, nullfd, masked_paths[i], e);
        close(nullfd);
        return ret;
}

static const char *const lxcfs_paths[VE_LXCFS_FILES] = {
        "proc/cpuinfo", "proc/diskstats", "proc/loadavg",
        "proc/meminfo", "proc/stat",      "proc/swaps",
        "proc/uptime",  "proc/slabinfo",  "sys/devices/system/cpu/online",
};

void ve_rootfs_lxcfs_open(const char *dir, struct ve_lxcfs_fds *fds)
{
        for (size_t i = 0; i < VE_LXCFS_FILES; i++) {
                char path[PATH_MAX];
                int n = dir ? snprintf(path, sizeof(path), "%s/%s", dir, lxcfs_paths[i]) : -1;

                fds->fd[i] = n > 0 && (size_t)n < sizeof(path)
                                 ? open(path, O_PATH | O_CLOEXEC | O_NOFOLLOW)
                                 : -1;
        }
}

void ve_rootfs_lxcfs_close(struct ve_lxcfs_fds *fds)
{
        for (size_t i = 0; i < VE_LXCFS_FILES; i++) {
                if (fds->fd[i] >= 0)
                        close(fds->fd[i]);
                fds->fd[i] = -1;
        }
}

void ve_rootfs_lxcfs_dup(const struct ve_lxcfs_fds *fds, struct ve_lxcfs_fds *copy)
{
        for (size_t i = 0; i < VE_LXCFS_FILES; i++)
                copy->fd[i] = fds->fd[i] >= 0 ? fcntl(fds->fd[i], F_DUPFD_CLOEXEC, 3) : -1;
}

void ve_rootfs_lxcfs_clone(const struct ve_lxcfs_fds *fds, struct ve_lxcfs_fds *trees)
{
        for (size_t i = 0; i < VE_LXCFS_FILES; i++)
                trees->fd[i] = fds == NULL || fds->fd[i] < 0
                                   ? -1
                                   : open_tree(fds->fd[i], "",
                                               OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
}

int ve_rootfs_mount_lxcfs(int rootfd, struct ve_lxcfs_fds *trees, struct ve_child_err *e)
{
        int ret = 0;

        for (size_t i = 0; i < VE_LXCFS_FILES; i++) {
                int target;

                if (trees->fd[i] < 0)
                        continue;
                if (ret == 0)
                        ret = open_target(rootfd, lxcfs_paths[i], &target, e);
                if (ret == 0 && target >= 0) {
                        if (move_mount(trees->fd[i], "", target, "",
                                       MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
                                ret = ve_child_fail(e, errno, "bind lxcfs's %s", lxcfs_paths[i]);
                        close(target);
                }
                close(trees->fd[i]);
                trees->fd[i] = -1;
        }
        return ret;
}

/* In the VE's mount namespace (root and cwd at its "/"): is path an lxcfs
 * bind, alive (FUSE) or left by an lxcfs that died (ENOTCONN)? 1 yes, 0 no,
 * -errno when the path cannot be opened without following a link. */
static int lxcfs_bind_at(const char *path)
{
        struct statfs sfs;
        int fd, ret;

        fd = ve_openat2(AT_FDCWD, path, O_PATH | O_CLOEXEC, IN_ROOT);
        if (fd < 0)
                return -errno;
        ret = fstatfs(fd, &sfs);
        if (ret < 0)
                ret = errno == ENOTCONN ? 1 : -errno;
        else
                ret = sfs.f_type == FUSE_SUPER_MAGIC;
        close(fd);
        return ret;
}

/* The helper: join the VE's mount namespace, take off every lxcfs bind (dead or
 * not) of each file and attach the fresh one. A file the VE covered with
 * something of its own, or replaced by a link, is left as the VE made it. */
static __attribute__((noreturn)) void rebind_child(int sock, int pidfd, const int *trees)
{
        struct ve_child_err e = { 0 };

        if (setns(pidfd, CLONE_NEWNS) < 0) {
                ve_child_fail(&e, errno, "enter the VE's mount namespace");
                ve_child_die(sock, &e);
        }
        for (size_t i = 0; i < VE_LXCFS_FILES; i++) {
                char path[64];
                int ret, fd, tries = 0;

                if (trees[i] < 0)
                        continue;
                snprintf(path, sizeof(path), "/%s", lxcfs_paths[i]);
                while ((ret = lxcfs_bind_at(path)) == 1 && tries++ < 8)
                        if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
                                break;
                if (ret != 0)
                        continue; /* still covered, or not reachable without a link */
                fd = ve_openat2(AT_FDCWD, path, O_PATH | O_CLOEXEC, IN_ROOT);
                if (fd < 0)
                        continue;
                if (move_mount(trees[i], "", fd, "",
                               MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) {
                        ve_child_fail(&e, errno, "bind lxcfs's %s", path);
                        ve_child_die(sock, &e);
                }
                close(fd);
        }
        _exit(0);
}

int ve_rootfs_lxcfs_rebind(int init_pidfd, const struct ve_lxcfs_fds *fds, struct ve_error *err)
{
        int sv[2] = { -1, -1 }, pidfd = -1, ret = 0, n = 0;
        struct ve_child_result res = { .fd = -EBADF };
        struct ve_lxcfs_fds trees;
        pid_t pid;

        ve_rootfs_lxcfs_clone(fds, &trees);
        for (size_t i = 0; i < VE_LXCFS_FILES; i++)
                n += trees.fd[i] >= 0;
        if (n == 0)
                ret = ve_error_set(err, ENOENT, "lxcfs serves none of its files");
        else if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                ret = ve_error_errno(err, errno, "socketpair");
        if (ret == 0) {
                pid = ve_clone3(CLONE_PIDFD, &pidfd, -1);
                if (pid == 0) {
                        close(sv[0]);
                        rebind_child(sv[1], init_pidfd, trees.fd);
                }
                if (pid < 0)
                        ret = ve_error_errno(err, errno, "clone3");
        }
        if (sv[1] >= 0)
                close(sv[1]);
        if (ret == 0) {
                ret = ve_child_collect(sv[0], &res, err);
                if (ret == 0 && res.failed)
                        ret = ve_child_error(&res.err, err);
                if (res.fd >= 0)
                        close(res.fd);
                waitid(P_PIDFD, (id_t)pidfd, NULL, WEXITED);
                close(pidfd);
        }
        if (sv[0] >= 0)
                close(sv[0]);
        ve_rootfs_lxcfs_close(&trees);
        return ret;
}

/* pivot_root(".", ".") stacks the old root on top of the new one at "/"; detaching
 * it leaves only the VE's tree (runc's trick, no put_old directory needed). */
int ve_rootfs_pivot(int rootfd, struct ve_child_err *e)
{
        if (fchdir(rootfd) < 0)
                return ve_child_fail(e, errno, "enter the VE's root");
        if (syscall(SYS_pivot_root, ".", ".") < 0)
                return ve_child_fail(e, errno, "pivot_root");
        if (umount2(".", MNT_DETACH) < 0)
                return ve_child_fail(e, errno, "detach the host's root");
        if (chdir("/") < 0)
                return ve_child_fail(e, errno, "chdir /");
        return 0;
}
