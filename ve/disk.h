/* A VE's disk limits (diskspace, diskinodes) on its private area's ext4 image.
 *
 * ext4 can only be grown online by a process with CAP_SYS_RESOURCE in the
 * initial user namespace (every resize ioctl checks it), and ved may run
 * without it (on the development and CI VMs it is not even in the bounding
 * set). So a private area's file system is made larger than diskspace
 * (ve_disk_fs_size(): "headroom", sparse, so it costs the host nothing until
 * written), and the VE is held to diskspace by ext4's reserved clusters
 * (/sys/fs/ext4/<dev>/reserved_clusters): blocks that no allocation without
 * CAP_SYS_RESOURCE may take. A VE's root is an unprivileged uid on the host
 * and its capabilities are those of its user namespace, so it cannot dip into
 * them: a write past diskspace fails with ENOSPC, as on a disk of that size,
 * and the host's file system keeps its free space. Changing the reservation is
 * instant, so diskspace grows and shrinks online within the headroom.
 *
 * What df shows inside: Used and Avail are exact (Avail = diskspace - Used),
 * and so is Use%. The kernel's Size is the file system's, headroom included
 * (exact Size would need ext4 project quota, and the kernel of the development
 * VM has no quota format support: CONFIG_QFMT_V2 unset), so ve-statfsd answers
 * the VE's statfs() calls with Size = Used + Avail = diskspace instead
 * (statfs_notify.h).
 *
 * diskinodes is the file system's inode count (mkfs -N), fixed while mounted:
 * it changes only offline. 0 means the default density (one inode per
 * VE_IMAGE_BYTES_PER_INODE of the file system, headroom included). Creating
 * a file past it fails with ENOSPC.
 *
 * Images made before the headroom (file system exactly diskspace) keep
 * working: they simply have none, and grow online only with CAP_SYS_RESOURCE
 * (resize2fs), as before. */
#ifndef VE_DISK_H
#define VE_DISK_H

#include <stdint.h>

#include "error.h"
#include "image.h"

/* The size of the file system made (or grown offline) for diskspace bytes:
 * without CAP_SYS_RESOURCE, diskspace plus headroom, the headroom being
 * diskspace clamped to [8 GiB, 1 TiB]; with it, diskspace itself (growing
 * online is then resize2fs's job, and df in the VE shows exactly diskspace).
 * A multiple of 4 KiB. */
uint64_t ve_disk_fs_size(uint64_t diskspace);

/* Hold the private area mounted on mountpoint (a loop-mounted ext4, as
 * ve_private_mount() makes it) to diskspace bytes and check diskinodes
 * against it. Idempotent: call it after every mount, before the VE runs, and
 * for a live change of either value.
 *
 * Refused, nothing changed:
 * - VE_EINVAL_INPUT: diskspace below the space in use, or diskinodes below
 *   the inodes in use (the message says how much is used);
 * - VE_ECONFLICT: diskspace beyond the file system and no CAP_SYS_RESOURCE
 *   (the message says how far it can grow while running), or diskinodes
 *   (non-zero) not matching the file system's inode count (within 10% and a
 *   block group), which changes only while the VE is stopped;
 * - EINVAL: mountpoint is not an ext4 on a loop device.
 * Beyond the file system with CAP_SYS_RESOURCE, it is grown online with
 * resize2fs to ve_disk_fs_size(diskspace) first. If diskspace is within the
 * file system but beyond what its metadata leaves, the VE gets all there is
 * (a little less than diskspace, as images without headroom always did). */
int ve_disk_limits_apply(const char *mountpoint, uint64_t diskspace, uint64_t diskinodes,
                         struct ve_error *err);

/* Prepare the private area img of a stopped VE for new diskspace and diskinodes
 * values; the limits themselves take effect with ve_disk_limits_apply() once it
 * is mounted. The file system is grown (e2fsck, resize2fs) to
 * ve_disk_fs_size(diskspace) when it cannot hold diskspace, or shrunk to it when
 * more than twice that; when diskinodes (non-zero) does not match the resulting
 * inode count, the image is rebuilt with mkfs -N instead (ve_private_rebuild(),
 * which takes as long as copying the files). Only such work checks the usage
 * first (VE_EINVAL_INPUT with the amounts in use when either value is below
 * it). Otherwise nothing is written or judged, and this costs one read of the
 * superblock: the daemon calls it on every start, before mounting, and the
 * superblock's counts may be stale after an unclean stop (a diskspace below
 * the usage is then refused by ve_disk_limits_apply() once mounted). Work on an
 * image attached to a loop device is refused (-EBUSY). */
int ve_disk_resize_offline(const char *img, uint64_t diskspace, uint64_t diskinodes,
                           struct ve_error *err);

/* The usage check of ve_disk_resize_offline(), always made, reading the
 * superblock and writing nothing: for a change to a stopped VE, whose image is
 * made to fit at its next start. */
int ve_disk_check_offline(const char *img, uint64_t diskspace, uint64_t diskinodes,
                          struct ve_error *err);

/* Disk usage as the VE sees it, in out: used and total bytes (total = what
 * Used + Avail add up to in df, i.e. diskspace once the limits are applied),
 * used and total inodes (the file system's). mountpoint non-NULL: the
 * mounted private area, from statvfs(). NULL: the stopped VE's image img,
 * from its superblock (exact after a clean unmount; no mount, no fsck), with
 * total = diskspace, or what the file system can hold if less.
 * diskinodes is not needed today (kept for a quota-based implementation). */
int ve_disk_usage(const char *mountpoint, const char *img, uint64_t diskspace, uint64_t diskinodes,
                  struct ve_disk_usage *out, struct ve_error *err);

#endif
