/* The VE's mount namespace: private root, /proc, /sys, pivot_root. */
#include "ve/rootfs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/openat2.h>

#define IN_ROOT (RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)

int ve_rootfs_prepare(const char *rootfs, int *rootfd, struct ve_child_err *e)
{
        int fd;

        if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
                return ve_child_fail(e, errno, "make mounts slave");
        if (mount(rootfs, rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
                return ve_child_fail(e, errno, "bind-mount %s on itself", rootfs);
        fd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return ve_child_fail(e, errno, "open %s", rootfs);
        *rootfd = fd;
        return 0;
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
