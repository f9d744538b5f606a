/* A VE's user namespace map and its idmapped root.
 *
 * The private area is an ext4 image that keeps the guest's own ids 0-65535 on
 * disk; the VE sees it through an idmapped mount of its user namespace, so that a
 * file owned by guest uid 0 on disk is host uid <base> to the VE's processes, and
 * a file the VE creates (as host uid <base>) is written as 0. Chosen over shifting
 * every inode's owner to the VE's range once at create (what OpenVZ 7 and LXC's
 * old "uidshift" did):
 *
 *   - Cost. Measured on the development VM (Linux 6.18, ext4, 2 vCPUs; trees on
 *     the host's ext4): making the idmapped clone (open_tree + mount_setattr,
 *     ve_idmap_clone_root()) takes 65-75 us, whatever the tree holds. Shifting
 *     with an lstat + lchown of every inode took 11-15 ms for the busybox template
 *     (296 inodes) and 1.2-1.7 s for a copy of /usr/share (66,436 inodes); a
 *     Debian /usr holds 158,000, so 3-4 s per VE created, paid again (with ACLs
 *     and file capabilities, which carry ids too) whenever a VE changes range:
 *     migration, a backup restored on another host.
 *   - Images stay portable: templates, private areas and backups hold plain guest
 *     ids, and the daemon's own writes into a stopped VE (guest.c writes
 *     /etc/hostname as 0:0) need no knowledge of the range.
 *   - The price: on the host's own mount of the private area (ves/<ctid>/root)
 *     guest root's files show as the host's root, setuid bits included. mount.h
 *     explains why ves/<ctid>/ is mode 0700 for that reason. Seen from the host
 *     through the VE (/proc/<init>/root/...), they show as <base>.
 *
 * Only the initial user namespace may create an idmapped mount of a filesystem it
 * owns (the kernel's can_idmap_mount() wants CAP_SYS_ADMIN over the superblock's
 * namespace), so the daemon makes the detached clone and the child, in its own
 * mount namespace, attaches it with move_mount (crun and LXC do the same).
 */
#include "ve/idmap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ve/cleanup.h"
#include "ve/mount.h"

int ve_idmap_check(const struct ve_idmap *map, struct ve_error *err)
{
        if (map->count == 0 && map->uid_base == 0 && map->gid_base == 0)
                return 0;
        if (map->count != VE_IDMAP_COUNT)
                return ve_error_set(err, EINVAL, "idmap count must be %u, not %u", VE_IDMAP_COUNT,
                                    map->count);
        if (map->uid_base == 0 || map->gid_base == 0 ||
            map->uid_base > UINT32_MAX - VE_IDMAP_COUNT ||
            map->gid_base > UINT32_MAX - VE_IDMAP_COUNT)
                return ve_error_set(err, EINVAL, "bad idmap base uid %u gid %u", map->uid_base,
                                    map->gid_base);
        return 0;
}

static int write_map(pid_t pid, const char *file, uint32_t base, uint32_t count,
                     struct ve_error *err)
{
        _cleanup_close_ int fd = -EBADF;
        char path[64], line[64];
        int len;

        snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, file);
        len = snprintf(line, sizeof(line), "0 %u %u\n", base, count);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return ve_error_errno(err, errno, "open %s", path);
        if (write(fd, line, (size_t)len) != len)
                return ve_error_errno(err, errno, "write \"0 %u %u\" to %s", base, count, path);
        return 0;
}

int ve_idmap_write(pid_t pid, const struct ve_idmap *map, struct ve_error *err)
{
        int ret;

        ret = write_map(pid, "uid_map", map->uid_base, map->count, err);
        if (ret == 0)
                ret = write_map(pid, "gid_map", map->gid_base, map->count, err);
        return ret;
}

int ve_idmap_clone_root(const char *rootfs, pid_t pid, struct ve_error *err)
{
        _cleanup_close_ int userns = -EBADF, tree = -EBADF;
        struct mount_attr attr;
        char path[64];

        snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
        userns = open(path, O_RDONLY | O_CLOEXEC);
        if (userns < 0)
                return ve_error_errno(err, errno, "open %s", path);
        tree = open_tree(AT_FDCWD, rootfs, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
        if (tree < 0)
                return ve_error_errno(err, errno, "clone the mount tree of %s", rootfs);
        memset(&attr, 0, sizeof(attr));
        attr.attr_set = MOUNT_ATTR_IDMAP;
        attr.userns_fd = (uint64_t)userns;
        if (mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0)
                return ve_error_errno(err, errno, "idmap the mount of %s", rootfs);
        return steal_fd(&tree);
}

int ve_idmap_attach_root(int tree_fd, int target_fd, struct ve_child_err *e)
{
        if (move_mount(tree_fd, "", target_fd, "",
                       MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
                return ve_child_fail(e, errno, "attach the idmapped root");
        return 0;
}

/* Raw system calls: glibc's set*id wrappers signal every thread the parent had
 * (the POSIX per-process semantics), which a clone3 child of a threaded daemon
 * must not do; the child has one thread, the kernel's per-thread calls suffice. */
int ve_idmap_become_root(struct ve_child_err *e)
{
        if (syscall(SYS_setresgid, 0, 0, 0) < 0)
                return ve_child_fail(e, errno, "setresgid 0 in the VE");
        if (syscall(SYS_setgroups, 0, NULL) < 0)
                return ve_child_fail(e, errno, "setgroups in the VE");
        if (syscall(SYS_setresuid, 0, 0, 0) < 0)
                return ve_child_fail(e, errno, "setresuid 0 in the VE");
        return 0;
}

int ve_idmap_mount_view(const char *private_area, const char *target, pid_t pid,
                        struct ve_error *err)
{
        _cleanup_close_ int tree = -EBADF;

        tree = ve_idmap_clone_root(private_area, pid, err);
        if (tree < 0)
                return tree;
        if (move_mount(tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                return ve_error_errno(err, errno, "mount the VE's view of %s on %s", private_area,
                                      target);
        return 0;
}
