/* Mounting VE private areas and deleting trees safely.
 *
 * A private area is an ext4 image on a loop device (see loop.h), mounted with
 * mount(2) from inside this process: no losetup or mount(8) is forked. The
 * mount is nodev (a VE's /dev is a separate tmpfs the runtime fills from an
 * allow-list) but not nosuid: nosuid would be inherited, locked, by every
 * mount of the tree in the VE's user namespace and break su and sudo inside.
 * Because setuid-root files of the guest are thus live on the host, the
 * directory holding the mount point (ves/<ctid>/) must not be searchable by
 * unprivileged host users (mode 0700); the daemon creates it so. */
#ifndef VE_MOUNT_H
#define VE_MOUNT_H

#include <stddef.h>

#include <sys/types.h>

#include "error.h"

/* Attach img to a loop device and mount its ext4 file system read-write on
 * mountpoint (an existing directory). The loop device ("/dev/loopN") is
 * written to loopdev_out (len bytes, at least 32; may be NULL). The device is
 * autoclear: it goes away with the last mount of it. On failure nothing stays
 * attached or mounted. */
int ve_private_mount(const char *img, const char *mountpoint, char *loopdev_out, size_t len,
                     struct ve_error *err);

/* The same, read-only (used to read a golden image as a directory tree). */
int ve_image_mount_ro(const char *img, const char *mountpoint, struct ve_error *err);

/* Unmount mountpoint (umount2 with UMOUNT_NOFOLLOW, never lazily) and make
 * sure its loop device is gone. -EBUSY when the file system is busy; -EBUSY
 * also when the host mount went but the loop device stays in use elsewhere
 * (a VE mount namespace still holds the file system): the device is then left
 * marked autoclear and disappears when that user does. Not mounted: -EINVAL
 * with err filled. */
int ve_private_umount(const char *mountpoint, struct ve_error *err);

/* 1 if mountpoint (canonicalised) is a mount point in /proc/self/mountinfo,
 * 0 if not, -errno if it cannot be told. */
int ve_is_mounted(const char *mountpoint);

/* Delete name (relative to dirfd, a single path component or a relative path)
 * and everything under it. Never follows a symlink (a symlink is removed, not
 * its target) and never crosses into another mount: finding a mount point
 * inside fails with -EBUSY ("unmount first"), having deleted only what lies
 * outside it on the way. A missing name is success. Trees deeper than 256
 * levels fail with -ELOOP. */
int ve_rmtree_at(int dirfd, const char *name, struct ve_error *err);

/* ve_rmtree_at() on a path. Before deleting anything it refuses (-EBUSY) when
 * /proc/self/mountinfo lists a mount point at or under path, so the common
 * mistake (a VE still mounted) deletes nothing. */
int ve_rmtree(const char *path, struct ve_error *err);

/* The host's view of a running VE's files: an idmapped clone of the private area's
 * mount (which holds guest ids 0-65535 on disk), mapped with the user namespace of
 * the VE's init pid, attached on target. Through it, files the VE owns show as its
 * host range, as they do for the VE's own processes. (ve/idmap.c) */
int ve_idmap_mount_view(const char *private_area, const char *target, pid_t pid,
                        struct ve_error *err);

#endif
