/* Overlays of a layered private area: see layer.h. */
#include "ve/layer.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ve/cleanup.h"

int ve_layer_as_ve_root(const struct ve_idmap *map, struct ve_error *err)
{
        struct __user_cap_header_struct head = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct data[2];

        /* Raw calls, as ve_idmap_become_root(): this thread only. */
        syscall(SYS_setfsgid, map->gid_base);
        syscall(SYS_setfsuid, map->uid_base);
        /* A change of fsuid from 0 clears the file capabilities from the effective
         * set; the creator of the overlay needs them (copy-up of a file only its
         * owner may read, chown to the lower file's owner). */
        if (syscall(SYS_capget, &head, data) < 0) {
                ve_layer_as_host();
                return ve_error_errno(err, errno, "capget");
        }
        data[0].effective = data[0].permitted;
        data[1].effective = data[1].permitted;
        if (syscall(SYS_capset, &head, data) < 0) {
                ve_layer_as_host();
                return ve_error_errno(err, errno, "capset");
        }
        return 0;
}

void ve_layer_as_host(void)
{
        /* Back to fsuid 0, the kernel raises the file capabilities again. */
        syscall(SYS_setfsuid, 0);
        syscall(SYS_setfsgid, 0);
}

int ve_layer_make(int lower, int upper_root, struct ve_error *err)
{
        _cleanup_close_ int fs = -EBADF, upper = -EBADF, work = -EBADF;
        int mnt;

        upper = openat(upper_root, VE_LAYER_UPPER, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        work = openat(upper_root, VE_LAYER_WORK, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (upper < 0 || work < 0)
                return ve_error_errno(err, errno, "the VE's image has no %s/ and %s/",
                                      VE_LAYER_UPPER, VE_LAYER_WORK);
        fs = fsopen("overlay", FSOPEN_CLOEXEC);
        if (fs < 0)
                return ve_error_errno(err, errno, "fsopen overlay");
        if (fsconfig(fs, FSCONFIG_SET_FD, "lowerdir+", NULL, lower) < 0 ||
            fsconfig(fs, FSCONFIG_SET_FD, "upperdir", NULL, upper) < 0 ||
            fsconfig(fs, FSCONFIG_SET_FD, "workdir", NULL, work) < 0 ||
            /* One st_dev for every file, as on a disk: du -x and find -xdev
             * would take a file from the template for another file system.
             * The layers' ext4 has 32-bit inode numbers; the high bits say
             * which layer. */
            fsconfig(fs, FSCONFIG_SET_STRING, "xino", "on", 0) < 0)
                return ve_error_errno(err, errno, "configure the overlay of the VE's root");
        if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
                return ve_error_errno(err, errno, "make the overlay of the VE's root");
        mnt = fsmount(fs, FSMOUNT_CLOEXEC, 0);
        if (mnt < 0)
                return ve_error_errno(err, errno, "mount the overlay of the VE's root");
        return mnt;
}

int ve_layer_make_idmapped(const char *lower, const char *upper_root, pid_t pid,
                           const struct ve_idmap *map, struct ve_error *err)
{
        _cleanup_close_ int lo = -EBADF, up = -EBADF;
        int ret;

        lo = ve_idmap_clone_root(lower, pid, err);
        if (lo < 0)
                return lo;
        up = ve_idmap_clone_root(upper_root, pid, err);
        if (up < 0)
                return up;
        ret = ve_layer_as_ve_root(map, err);
        if (ret < 0)
                return ret;
        ret = ve_layer_make(lo, up, err);
        ve_layer_as_host();
        return ret;
}

int ve_layer_mount_raw(const char *lower, const char *upper_root, const char *target,
                       struct ve_error *err)
{
        _cleanup_close_ int lo = -EBADF, up = -EBADF, mnt = -EBADF;

        lo = open(lower, O_PATH | O_DIRECTORY | O_CLOEXEC);
        up = open(upper_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (lo < 0 || up < 0)
                return ve_error_errno(err, errno, "open the layers %s and %s", lower, upper_root);
        mnt = ve_layer_make(lo, up, err);
        if (mnt < 0)
                return mnt;
        if (move_mount(mnt, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                return ve_error_errno(err, errno, "mount the VE's files on %s", target);
        return 0;
}
