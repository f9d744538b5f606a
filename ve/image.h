/* Private areas: one ext4 image file per VE (ves/<ctid>/root.img), cloned from
 * a template's golden image, grown and shrunk with e2fsprogs.
 *
 * Disk space is the image size; inodes are fixed when the file system is made
 * and grow in proportion when it grows (resize2fs adds block groups). Images
 * are made with -m 0: a VE's root runs in a user namespace and cannot use the
 * root-reserved blocks, so reserving them would only hide space from it.
 * Forking mkfs.ext4, resize2fs, e2fsck and tune2fs is accepted; forking
 * losetup or mount(8) is not (see loop.h, mount.h). */
#ifndef VE_IMAGE_H
#define VE_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"

/* Bytes per inode of golden images: inode density of every VE cloned from
 * them, as ext4's default. */
#define VE_IMAGE_BYTES_PER_INODE 16384

/* What df shows inside a VE, from statvfs() on its mount point. */
struct ve_disk_usage {
        uint64_t used_bytes;
        uint64_t total_bytes;
        uint64_t inodes_used;
        uint64_t inodes_total;
};

/* What an image's ext4 superblock says (free counts are exact only while it is
 * not mounted). */
struct ve_image_geometry {
        uint64_t block_size;
        uint64_t blocks;
        uint64_t free_blocks;
        uint64_t blocks_per_group;
        uint64_t inodes;
        uint64_t free_inodes;
        uint64_t inodes_per_group;
        uint64_t reserved_blocks; /* for root (mkfs -m); 0 in ved's images */
        /* Blocks statfs() leaves out of f_blocks: superblocks, group
         * descriptors, bitmaps, inode tables, the journal (as ext4's
         * ext4_calculate_overhead() counts them). (blocks - free_blocks -
         * overhead_blocks) is what df calls used. */
        uint64_t overhead_blocks;
};

/* Make img (created, or truncated if it exists) as an ext4 file system of size
 * bytes holding a copy of the tree src_dir (NULL: empty), root owned by 0:0.
 * inodes 0 means one inode per VE_IMAGE_BYTES_PER_INODE bytes. The journal is
 * kept: VEs write to their images live, and a host crash must not cost a
 * fsck. The file is made afresh, so it reads as zeros: mkfs is told so
 * (assume_storage_prezeroed) and marks the inode tables initialised without
 * writing them, so the kernel's lazy init never writes after a mount and
 * images and their clones stay sparse. */
int ve_image_mkfs(const char *img, uint64_t size, uint64_t inodes, const char *src_dir,
                  struct ve_error *err);

/* Read img's ext4 superblock. -EINVAL (err filled) if it is not ext4. */
int ve_image_geometry(const char *img, struct ve_image_geometry *geo, struct ve_error *err);

/* Create the private area dest_img from golden_img, its file system grown to
 * ve_disk_fs_size(diskspace) bytes: larger than diskspace, so that the VE's
 * space can later grow while it runs (see disk.h; diskspace must not be smaller
 * than the golden image). diskinodes 0 keeps the golden image's inode density
 * (over the whole file system); otherwise, when the clone would not have
 * between diskinodes and diskinodes + 10% inodes, the image is made afresh with
 * mkfs.ext4 -N diskinodes -d from the golden image mounted read-only. The clone is a reflink (FICLONE) where the file system can, else
 * a sparse copy. The first clone grown to a size is kept next to the golden image
 * ("<name>.sizes/<size>.img", the 4 sizes used last) and later creates of that size
 * clone it instead, so they need no resize2fs; each clone gets a random UUID
 * (written in process when the file system has metadata_csum_seed). Works on a temporary name in dest's directory and renames it
 * into place; dest_img must not exist (-EEXIST). On failure nothing is left. */
int ve_private_create(const char *golden_img, const char *dest_img, uint64_t diskspace,
                      uint64_t diskinodes, struct ve_error *err);

/* Resize the private area img to new_size bytes (rounded down to 4 KiB).
 * mounted: the VE's file system is mounted (its loop device is found with
 * ve_loop_find()); it can then only grow, online. Offline it can grow or
 * shrink; shrinking below the space in use is refused with a message saying
 * how much is used. An image attached to a loop device while mounted is false
 * is refused (-EBUSY). */
int ve_private_resize(const char *img, uint64_t new_size, bool mounted, struct ve_error *err);

/* Make img afresh (offline) as an ext4 of size bytes with `inodes` inodes (0:
 * the default density), holding a copy of its own files (mkfs.ext4 -d from the
 * old image mounted read-only), then rename it over the old one. For a change of
 * the inode count, which resize2fs cannot make. */
int ve_private_rebuild(const char *img, uint64_t size, uint64_t inodes, struct ve_error *err);

/* Disk usage of the file system mounted on mountpoint; total_bytes is Used +
 * Avail, i.e. diskspace once ve_disk_limits_apply() has run (disk.h), not the
 * file system's size. The same as ve_disk_usage() with a mount point. */
int ve_private_usage(const char *mountpoint, struct ve_disk_usage *usage, struct ve_error *err);

#endif
