/* Disk limits of VEs: headroom in the file system, ext4 reserved clusters for
 * the limit (see disk.h).
 *
 * Measured on the development VM (host ext4 on virtio, kernel 6.18, e2fsprogs
 * 1.47.0), with a 64 MiB golden image holding 51 MiB of files:
 *
 *   file system    mkfs.ext4 (empty)      clone + resize2fs      e2fsck -f   mount
 *   1 GiB          0.005 s,    152 KiB    0.06 s, 52144 KiB
 *   9 GiB          0.006 s,    236 KiB    0.06 s, 52252 KiB      0.02 s      0.015 s
 *   100 GiB        0.008 s,   1160 KiB    0.07 s, 53212 KiB
 *   200 GiB        0.011 s,   2100 KiB    0.08 s, 54180 KiB      0.08 s      0.021 s
 *   1 TiB          0.039 s,  11996 KiB    0.15 s, 66136 KiB
 *   2 TiB          0.076 s,  24808 KiB    0.23 s, 78964 KiB      1.0 s       0.032 s
 *
 * (KiB: host bytes of the image.) So the headroom costs about 12 MiB of host
 * space and 0.1 s per TiB of file system, nothing per GiB that matters: with
 * the default of diskspace + max(diskspace, 8 GiB), a 1 GiB VE's image grows
 * from 1 GiB to 9 GiB of file system for 0.1 MiB and no measurable time.
 * Host bytes stay flat after mounting (inode tables are marked zeroed, so
 * ext4lazyinit writes nothing). A VE that fills its 1 GiB makes the image
 * take 1.0 GiB on the host, the same as without headroom. Past 1 TiB the
 * headroom stops growing (fsck time and the host's 16 TiB file size limit).
 *
 * Checked on the same VM: with reserved_clusters = f_blocks - diskspace,
 * dd as uid 1000000000 stops with ENOSPC at diskspace, so does host root
 * (without CAP_SYS_RESOURCE); lowering the reservation lets the same writer
 * go on at once. The kernel accepts a reservation above the free space (it
 * only requires less than the file system's size), so shrinking below what
 * is used is refused here, not there.
 */
#include "disk.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "caps.h"
#include "cleanup.h"
#include "loop.h"
#include "mount.h"
#include "parse.h"

#define BLOCK        4096ULL
#define GIB          (1024ULL * 1024 * 1024)
#define HEADROOM_MIN (8 * GIB)
#define HEADROOM_MAX (1024 * GIB)

/* ext4's own default reservation (ext4_calculate_resv_clusters()): kept as a
 * floor, for the allocations that may use it (unwritten extent conversion). */
#define RESV_DEFAULT_MAX 4096ULL

uint64_t ve_disk_fs_size(uint64_t diskspace)
{
        uint64_t headroom = diskspace;

        /* A daemon that may resize online needs no headroom: the file system is
         * then exactly diskspace, and df in the VE shows that size. */
        if (ve_caps_have(CAP_SYS_RESOURCE))
                return diskspace & ~(BLOCK - 1);

        if (headroom < HEADROOM_MIN)
                headroom = HEADROOM_MIN;
        if (headroom > HEADROOM_MAX)
                headroom = HEADROOM_MAX;
        return (diskspace + headroom) & ~(BLOCK - 1);
}

/* A mounted private area: its device ("loopN"), image and counts. */
struct mounted_fs {
        char dev[32];
        char img[PATH_MAX];
        struct statvfs sv;
        struct ve_image_geometry geo;
};

static int read_line(const char *path, char *buf, size_t len)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return -errno;
        n = read(fd, buf, len - 1);
        if (n < 0)
                return -errno;
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
                n--;
        buf[n] = '\0';
        return 0;
}

/* The block device under mountpoint, by st_dev, as its sysfs name. It must be
 * a loop device: the reservation must never land on the host's own file
 * system, which is what a mountpoint with nothing mounted on it would give. */
static int device_of(const char *mountpoint, struct mounted_fs *fs, struct ve_error *err)
{
        char link[64], target[PATH_MAX], path[PATH_MAX];
        const char *name;
        struct stat st;
        ssize_t n;
        int ret;

        ret = ve_is_mounted(mountpoint);
        if (ret <= 0)
                return ve_error_set(err, EINVAL, "%s is not mounted", mountpoint);
        if (stat(mountpoint, &st) < 0)
                return ve_error_errno(err, errno, "stat %s", mountpoint);
        snprintf(link, sizeof(link), "/sys/dev/block/%u:%u", major(st.st_dev), minor(st.st_dev));
        n = readlink(link, target, sizeof(target) - 1);
        if (n < 0)
                return ve_error_set(err, EINVAL, "%s is not on a block device", mountpoint);
        target[n] = '\0';
        name = strrchr(target, '/');
        name = name ? name + 1 : target;
        if (strncmp(name, "loop", 4) != 0 || strlen(name) >= sizeof(fs->dev))
                return ve_error_set(err, EINVAL, "%s is on %s, not on a loop device", mountpoint,
                                    name);
        snprintf(fs->dev, sizeof(fs->dev), "%s", name);
        snprintf(path, sizeof(path), "/sys/block/%s/loop/backing_file", name);
        if (read_line(path, fs->img, sizeof(fs->img)) < 0)
                return ve_error_set(err, EINVAL, "/dev/%s (on %s) has no backing file", name,
                                    mountpoint);
        snprintf(path, sizeof(path), "/sys/fs/ext4/%s/reserved_clusters", name);
        if (access(path, W_OK) < 0)
                return ve_error_set(err, EINVAL, "%s is not an ext4 file system", mountpoint);
        return 0;
}

static int inspect_mounted(const char *mountpoint, struct mounted_fs *fs, struct ve_error *err)
{
        int ret;

        ret = device_of(mountpoint, fs, err);
        if (ret < 0)
                return ret;
        if (statvfs(mountpoint, &fs->sv) < 0)
                return ve_error_errno(err, errno, "statfs %s", mountpoint);
        /* Block and inode counts change only with a resize, which writes the
         * primary superblock at once, so reading it under the mount is fine. */
        return ve_image_geometry(fs->img, &fs->geo, err);
}

static uint64_t resv_floor(const struct ve_image_geometry *geo)
{
        uint64_t floor = geo->blocks / 50;

        return floor < RESV_DEFAULT_MAX ? floor : RESV_DEFAULT_MAX;
}

static int check_usage(uint64_t used, uint64_t inodes_used, uint64_t diskspace, uint64_t diskinodes,
                       struct ve_error *err)
{
        char want[16], have[16];

        if (diskspace < used) {
                ve_format_size(diskspace, want, sizeof(want));
                ve_format_size(used, have, sizeof(have));
                return ve_error_set(err, VE_EINVAL_INPUT,
                                    "diskspace: cannot shrink to %s: %s is in use", want, have);
        }
        if (diskinodes != 0 && diskinodes < inodes_used)
                return ve_error_set(err, VE_EINVAL_INPUT,
                                    "diskinodes: cannot lower to %llu: %llu inodes are in use",
                                    (unsigned long long)diskinodes,
                                    (unsigned long long)inodes_used);
        return 0;
}

/* The fewest inodes a block group holds as mke2fs lays it out (two 4 KiB
 * blocks of 256-byte inodes): a file system of many groups cannot have fewer
 * inodes than its groups times this, whatever -N asks. */
#define MIN_INODES_PER_GROUP 32

/* Does the file system's inode count stand for diskinodes? mkfs -N and
 * block groups round it up; ve_private_create() accepts 10% more, and a
 * file system already at its fewest inodes per group is as close as it gets. */
static bool inodes_match(uint64_t have, uint64_t diskinodes, uint64_t per_group)
{
        if (diskinodes == 0)
                return true;
        if (have < diskinodes)
                return false;
        return have - diskinodes <= diskinodes / 10 + per_group ||
               per_group <= MIN_INODES_PER_GROUP;
}

/* An inode count the file system already stands for (mkfs -N rounded it up to
 * whole groups) is no lowering, whatever the guest uses of the rounding: 0, for
 * check_usage() to leave inodes alone. */
static uint64_t inodes_to_check(uint64_t have, uint64_t diskinodes, uint64_t per_group)
{
        return inodes_match(have, diskinodes, per_group) ? 0 : diskinodes;
}

static int check_inodes_online(const struct mounted_fs *fs, uint64_t diskinodes,
                               struct ve_error *err)
{
        uint64_t have = fs->sv.f_files;

        if (inodes_match(have, diskinodes, fs->geo.inodes_per_group))
                return 0;
        return ve_error_set(err, VE_ECONFLICT,
                            "diskinodes: the file system has %llu inodes; %llu can only be set "
                            "while the VE is stopped",
                            (unsigned long long)have, (unsigned long long)diskinodes);
}

static int grow_online(const struct mounted_fs *fs, uint64_t diskspace, struct ve_error *err)
{
        uint64_t fs_bytes = fs->geo.blocks * fs->geo.block_size;
        char want[16], max[16];

        if (!ve_caps_have(CAP_SYS_RESOURCE)) {
                ve_format_size(diskspace, want, sizeof(want));
                ve_format_size(fs_bytes, max, sizeof(max));
                return ve_error_set(err, VE_ECONFLICT,
                                    "diskspace %s: the VE can grow up to %s while running; stop "
                                    "the VE to grow further",
                                    want, max);
        }
        return ve_private_resize(fs->img, ve_disk_fs_size(diskspace), true, err);
}

/* Reserve all but diskspace of what statfs calls the file system's blocks,
 * so that Avail = diskspace - Used. */
static int set_reservation(const struct mounted_fs *fs, uint64_t diskspace, struct ve_error *err)
{
        uint64_t bs = fs->sv.f_frsize, blocks = fs->sv.f_blocks;
        uint64_t want = diskspace / bs + fs->geo.reserved_blocks;
        uint64_t resv = resv_floor(&fs->geo);
        char path[PATH_MAX], val[32];
        _cleanup_close_ int fd = -EBADF;
        int n;

        if (blocks > want + resv)
                resv = blocks - want;
        if (resv >= fs->geo.blocks)
                resv = fs->geo.blocks - 1;
        snprintf(path, sizeof(path), "/sys/fs/ext4/%s/reserved_clusters", fs->dev);
        n = snprintf(val, sizeof(val), "%llu\n", (unsigned long long)resv);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, val, (size_t)n) != n)
                return ve_error_errno(err, errno, "reserve %llu blocks in %s",
                                      (unsigned long long)resv, path);
        return 0;
}

int ve_disk_limits_apply(const char *mountpoint, uint64_t diskspace, uint64_t diskinodes,
                         struct ve_error *err)
{
        struct mounted_fs fs;
        uint64_t used, inodes_used;
        int ret;

        ret = inspect_mounted(mountpoint, &fs, err);
        if (ret < 0)
                return ve_error_prefix(err, "disk limits of %s", mountpoint);
        used = (uint64_t)(fs.sv.f_blocks - fs.sv.f_bfree) * fs.sv.f_frsize;
        inodes_used = (uint64_t)(fs.sv.f_files - fs.sv.f_ffree);
        ret = check_usage(used, inodes_used, diskspace,
                          inodes_to_check(fs.sv.f_files, diskinodes, fs.geo.inodes_per_group), err);
        if (ret == 0)
                ret = check_inodes_online(&fs, diskinodes, err);
        if (ret == 0 && diskspace > fs.geo.blocks * fs.geo.block_size) {
                ret = grow_online(&fs, diskspace, err);
                if (ret == 0)
                        ret = inspect_mounted(mountpoint, &fs, err);
        }
        if (ret == 0)
                ret = set_reservation(&fs, diskspace, err);
        if (ret < 0)
                return ve_error_prefix(err, "disk limits of %s", mountpoint);
        return 0;
}

/* What the stopped image's VE has used, as statfs would say once mounted. */
static void offline_usage(const struct ve_image_geometry *geo, uint64_t *used,
                          uint64_t *inodes_used)
{
        uint64_t taken = geo->blocks - geo->free_blocks;

        taken = taken > geo->overhead_blocks ? taken - geo->overhead_blocks : 0;
        *used = taken * geo->block_size;
        *inodes_used = geo->inodes - geo->free_inodes;
}

/* The most a VE can use of geo's file system (what statfs's f_blocks leaves
 * after the root reserve and ext4's default reservation). */
static uint64_t offline_capacity(const struct ve_image_geometry *geo)
{
        uint64_t off = geo->overhead_blocks + geo->reserved_blocks + resv_floor(geo);

        return geo->blocks > off ? (geo->blocks - off) * geo->block_size : 0;
}

/* Inodes resize2fs would leave in geo's file system at size bytes. */
static uint64_t inodes_at(const struct ve_image_geometry *geo, uint64_t size)
{
        uint64_t blocks = size / geo->block_size;

        return (blocks + geo->blocks_per_group - 1) / geo->blocks_per_group * geo->inodes_per_group;
}

/* The size geo's file system should have for diskspace: unchanged while it can
 * hold diskspace and is not more than twice the size it would be made at. */
static uint64_t offline_target(const struct ve_image_geometry *geo, uint64_t diskspace)
{
        uint64_t fs_bytes = geo->blocks * geo->block_size;

        if (diskspace > offline_capacity(geo) || fs_bytes > 2 * ve_disk_fs_size(diskspace))
                return ve_disk_fs_size(diskspace);
        return fs_bytes;
}

static int offline_check(const struct ve_image_geometry *geo, uint64_t diskspace,
                         uint64_t diskinodes, struct ve_error *err)
{
        uint64_t used, inodes_used;

        offline_usage(geo, &used, &inodes_used);
        return check_usage(used, inodes_used, diskspace,
                           inodes_to_check(geo->inodes, diskinodes, geo->inodes_per_group), err);
}

int ve_disk_check_offline(const char *img, uint64_t diskspace, uint64_t diskinodes,
                          struct ve_error *err)
{
        struct ve_image_geometry geo;
        int ret = ve_image_geometry(img, &geo, err);

        if (ret == 0)
                ret = offline_check(&geo, diskspace, diskinodes, err);
        return ret < 0 ? ve_error_prefix(err, "check %s", img) : 0;
}

int ve_disk_resize_offline(const char *img, uint64_t diskspace, uint64_t diskinodes,
                           struct ve_error *err)
{
        struct ve_image_geometry geo;
        uint64_t target;
        bool rebuild;
        int ret;

        ret = ve_image_geometry(img, &geo, err);
        if (ret < 0)
                return ve_error_prefix(err, "resize %s", img);
        target = offline_target(&geo, diskspace);
        rebuild = !inodes_match(inodes_at(&geo, target), diskinodes, geo.inodes_per_group);
        /* Every start comes here: an image that needs nothing is not judged on the
         * superblock's counts, which an unclean stop may have left behind. */
        if (!rebuild && target == geo.blocks * geo.block_size)
                return 0;
        ret = offline_check(&geo, diskspace, diskinodes, err);
        if (ret == 0)
                ret = ve_loop_refuse_attached(img, err);
        if (ret < 0)
                return ve_error_prefix(err, "resize %s", img);
        if (rebuild)
                return ve_private_rebuild(img, target, diskinodes, err);
        return ve_private_resize(img, target, false, err);
}

int ve_disk_usage(const char *mountpoint, const char *img, uint64_t diskspace, uint64_t diskinodes,
                  struct ve_disk_usage *out, struct ve_error *err)
{
        struct ve_image_geometry geo;
        struct statvfs sv;
        uint64_t cap;
        int ret;

        (void)diskinodes;
        if (mountpoint != NULL) {
                if (statvfs(mountpoint, &sv) < 0)
                        return ve_error_errno(err, errno, "disk usage of %s", mountpoint);
                out->used_bytes = (uint64_t)(sv.f_blocks - sv.f_bfree) * sv.f_frsize;
                out->total_bytes = out->used_bytes + (uint64_t)sv.f_bavail * sv.f_frsize;
                out->inodes_total = sv.f_files;
                out->inodes_used = sv.f_files - sv.f_ffree;
                return 0;
        }
        ret = ve_image_geometry(img, &geo, err);
        if (ret < 0)
                return ve_error_prefix(err, "disk usage of %s", img);
        offline_usage(&geo, &out->used_bytes, &out->inodes_used);
        cap = offline_capacity(&geo);
        out->total_bytes = diskspace != 0 && diskspace < cap ? diskspace : cap;
        out->inodes_total = geo.inodes;
        return 0;
}
