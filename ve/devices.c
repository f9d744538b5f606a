/* The VE's /dev tmpfs and its device nodes. */
#include "ve/devices.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "ve/rootfs.h"

struct node {
        const char *name;
        unsigned major, minor;
};

/* DESIGN.md's allow-list; console, ptmx and pts are made separately. */
static const struct node nodes[] = {
        { "null", 1, 3 },   { "zero", 1, 5 },    { "full", 1, 7 },
        { "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 },
};

static const struct {
        const char *target, *name;
} links[] = {
        { "pts/ptmx", "ptmx" },          { "/proc/self/fd", "fd" },
        { "/proc/self/fd/0", "stdin" },  { "/proc/self/fd/1", "stdout" },
        { "/proc/self/fd/2", "stderr" },
};

/* The host's /dev/<name>, checked to be the very device; an O_PATH fd. */
static int open_host_node(const struct node *n, struct ve_child_err *e)
{
        char path[64];
        struct stat st;
        int fd;

        snprintf(path, sizeof(path), "/dev/%s", n->name);
        fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return ve_child_fail(e, errno, "open the host's %s", path);
        if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) ||
            st.st_rdev != makedev(n->major, n->minor)) {
                close(fd);
                return ve_child_fail_plain(e, EXDEV, "the host's %s is not device %u:%u", path,
                                           n->major, n->minor);
        }
        return fd;
}

static int bind_node(int devfd, const struct node *n, struct ve_child_err *e)
{
        char src[64], what[32];
        int fd, srcfd, ret;

        srcfd = open_host_node(n, e);
        if (srcfd < 0)
                return srcfd;
        snprintf(what, sizeof(what), "/dev/%s", n->name);
        fd = openat(devfd, n->name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd < 0) {
                close(srcfd);
                return ve_child_fail(e, errno, "create %s", what);
        }
        snprintf(src, sizeof(src), "/proc/self/fd/%d", srcfd);
        ret = ve_rootfs_mount_on(fd, src, NULL, MS_BIND, NULL, what, e);
        close(fd);
        close(srcfd);
        return ret;
}

static int make_node(int devfd, const struct node *n, bool userns, struct ve_child_err *e)
{
        if (userns)
                return bind_node(devfd, n, e);
        if (mknodat(devfd, n->name, S_IFCHR | 0666, makedev(n->major, n->minor)) < 0)
                return ve_child_fail(e, errno, "mknod /dev/%s", n->name);
        return 0;
}

static int make_nodes(int devfd, bool userns, struct ve_child_err *e)
{
        int ret;

        for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
                ret = make_node(devfd, &nodes[i], userns, e);
                if (ret < 0)
                        return ret;
        }
        for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
                if (symlinkat(links[i].target, devfd, links[i].name) < 0)
                        return ve_child_fail(e, errno, "symlink /dev/%s", links[i].name);
        return 0;
}

/* The pty slave fd belongs to the host's mount namespace, and bind mounts only
 * take sources from the caller's own: reach the same node through our copy of the
 * host's /dev/pts, checked to be the very device. */
static int open_console_source(int console_fd, unsigned console_index, struct ve_child_err *e)
{
        struct stat want, got;
        char path[64];
        int fd;

        if (fstat(console_fd, &want) < 0)
                return ve_child_fail(e, errno, "stat the console pty");
        snprintf(path, sizeof(path), "/dev/pts/%u", console_index);
        fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return ve_child_fail(e, errno, "open %s", path);
        if (fstat(fd, &got) < 0 || !S_ISCHR(got.st_mode) || got.st_rdev != want.st_rdev) {
                close(fd);
                return ve_child_fail_plain(e, EXDEV, "%s is not the console pty", path);
        }
        return fd;
}

static int bind_console(int devfd, int console_fd, unsigned console_index, struct ve_child_err *e)
{
        char src[64];
        int fd, srcfd, ret;

        srcfd = open_console_source(console_fd, console_index, e);
        if (srcfd < 0)
                return srcfd;
        fd = openat(devfd, "console", O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
                close(srcfd);
                return ve_child_fail(e, errno, "create /dev/console");
        }
        snprintf(src, sizeof(src), "/proc/self/fd/%d", srcfd);
        ret = ve_rootfs_mount_on(fd, src, NULL, MS_BIND, NULL, "/dev/console", e);
        close(fd);
        close(srcfd);
        return ret;
}

static int mount_sub(int devfd, const char *name, mode_t mode, const char *fstype,
                     unsigned long flags, const char *data, struct ve_child_err *e)
{
        char what[32];
        int fd, ret;

        snprintf(what, sizeof(what), "/dev/%s", name);
        if (mkdirat(devfd, name, mode) < 0)
                return ve_child_fail(e, errno, "create %s", what);
        fd = openat(devfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return ve_child_fail(e, errno, "open %s", what);
        ret = ve_rootfs_mount_on(fd, fstype, fstype, flags, data, what, e);
        close(fd);
        return ret;
}

static int fill_dev(int devfd, int console_fd, unsigned console_index, bool userns,
                    struct ve_child_err *e)
{
        int ret;

        ret = make_nodes(devfd, userns, e);
        if (ret == 0)
                ret = bind_console(devfd, console_fd, console_index, e);
        if (ret == 0)
                ret = mount_sub(devfd, "pts", 0755, "devpts", MS_NOSUID | MS_NOEXEC,
                                "newinstance,ptmxmode=0666,mode=0620", e);
        if (ret == 0)
                ret = mount_sub(devfd, "shm", 01777, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", e);
        return ret;
}

int ve_devices_setup(int rootfd, int console_fd, unsigned console_index, bool userns,
                     struct ve_child_err *e)
{
        int fd = -1, ret;

        ret = ve_rootfs_open_dir(rootfd, "dev", &fd, e);
        if (ret < 0)
                return ret;
        ret = ve_rootfs_mount_on(fd, "tmpfs", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=1m",
                                 "/dev", e);
        close(fd);
        if (ret < 0)
                return ret;
        /* Open again: the path now leads into the tmpfs just mounted. */
        ret = ve_rootfs_open_dir(rootfd, "dev", &fd, e);
        if (ret < 0)
                return ret;
        ret = fill_dev(fd, console_fd, console_index, userns, e);
        close(fd);
        return ret;
}
