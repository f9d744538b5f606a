#include "mount.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "loop.h"

#define RMTREE_MAX_DEPTH 256

/* Undo mountinfo's octal escapes (\040 for space and so on) in place. */
static void unescape_octal(char *s)
{
        char *r = s, *w = s;

        while (*r) {
                if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
                    r[3] >= '0' && r[3] <= '7') {
                        *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
                        r += 4;
                } else {
                        *w++ = *r++;
                }
        }
        *w = '\0';
}

/* Split a mountinfo line in place into its mount point and source fields. */
static int parse_mountinfo_line(char *line, char **mp, char **source)
{
        char *save = NULL, *tok;
        int field = 0;
        bool after_dash = false;

        *mp = *source = NULL;
        for (tok = strtok_r(line, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
                if (field == 4)
                        *mp = tok;
                if (after_dash && field == 2) {
                        *source = tok;
                        break;
                }
                if (field >= 6 && !after_dash && strcmp(tok, "-") == 0) {
                        after_dash = true;
                        field = 0;
                }
                field++;
        }
        if (*mp == NULL || *source == NULL)
                return -EINVAL;
        unescape_octal(*mp);
        unescape_octal(*source);
        return 0;
}

/* Find a mount whose mount point equals path (or, with under, lies at or below
 * it). The last match wins, as it is the topmost mount. Returns 1 and copies
 * its source and mount point, 0 if none, -errno. */
static int mountinfo_find(const char *path, bool under, char *source, size_t len, char *found,
                          size_t found_len)
{
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *line = NULL;
        size_t cap = 0, plen = strlen(path);
        char *mp, *src;
        int ret = 0;

        f = fopen("/proc/self/mountinfo", "re");
        if (f == NULL)
                return -errno;
        while (getline(&line, &cap, f) > 0) {
                if (parse_mountinfo_line(line, &mp, &src) < 0)
                        continue;
                if (strcmp(mp, path) != 0 &&
                    !(under && strncmp(mp, path, plen) == 0 && mp[plen] == '/'))
                        continue;
                if (source != NULL)
                        snprintf(source, len, "%s", src);
                if (found != NULL)
                        snprintf(found, found_len, "%s", mp);
                ret = 1;
        }
        return ret;
}

int ve_is_mounted(const char *mountpoint)
{
        _cleanup_free_ char *path = NULL;
        struct statx stx;

        /* One statx, where the kernel tells (5.8+): mountinfo holds a line per
         * mount, so reading it for each of many VEs costs O(VEs^2). */
        if (statx(AT_FDCWD, mountpoint, 0, STATX_BASIC_STATS, &stx) < 0)
                return -errno;
        if (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)
                return (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
        path = realpath(mountpoint, NULL);
        if (path == NULL)
                return -errno;
        return mountinfo_find(path, false, NULL, 0, NULL, 0);
}

static int mount_image(const char *img, const char *mountpoint, bool ro, char *dev, size_t len,
                       struct ve_error *err)
{
        _cleanup_close_ int loop_fd = -EBADF;
        unsigned long flags = MS_NODEV | (ro ? MS_RDONLY : 0);
        int ret;

        loop_fd = ve_loop_attach(img, ro, dev, len, err);
        if (loop_fd < 0)
                return loop_fd;
        /* "ro" images are mounted norecovery too: replaying a journal would write.
         * A VE's own is mounted with discard: what it frees, the loop device
         * punches out of the sparse image, so the host gets the space back (a
         * 100 MB file written and removed left the image 100 MB larger before). */
        ret = mount(dev, mountpoint, "ext4", flags, ro ? "noload" : "discard");
        if (ret < 0) {
                ret = ve_error_errno(err, errno, "mount %s (%s) on %s", img, dev, mountpoint);
                ve_loop_detach(dev, NULL);
                return ret;
        }
        /* Closing loop_fd now leaves the mount as the device's only user. */
        return 0;
}

int ve_private_mount(const char *img, const char *mountpoint, char *loopdev_out, size_t len,
                     struct ve_error *err)
{
        char dev[64];
        int ret;

        ret = mount_image(img, mountpoint, false, dev, sizeof(dev), err);
        if (ret < 0)
                return ret;
        if (loopdev_out != NULL)
                snprintf(loopdev_out, len, "%s", dev);
        return 0;
}

int ve_image_mount_ro(const char *img, const char *mountpoint, struct ve_error *err)
{
        char dev[64];

        return mount_image(img, mountpoint, true, dev, sizeof(dev), err);
}

/* Is dev (e.g. /dev/loop3) still bound to a backing file? */
static bool loop_bound(const char *dev)
{
        char sysfs[PATH_MAX];
        const char *name = strrchr(dev, '/');

        name = name ? name + 1 : dev;
        snprintf(sysfs, sizeof(sysfs), "/sys/block/%s/loop/backing_file", name);
        return access(sysfs, F_OK) == 0;
}

/* Wait up to about a second for autoclear to release dev. */
static bool wait_loop_gone(const char *dev)
{
        struct timespec ts = { .tv_sec = 0, .tv_nsec = 10 * 1000 * 1000 };
        int i;

        for (i = 0; i < 100; i++) {
                if (!loop_bound(dev))
                        return true;
                nanosleep(&ts, NULL);
        }
        return false;
}

int ve_private_umount(const char *mountpoint, struct ve_error *err)
{
        _cleanup_free_ char *path = realpath(mountpoint, NULL);
        char source[PATH_MAX];
        int ret;

        if (path == NULL)
                return ve_error_errno(err, errno, "resolve %s", mountpoint);
        ret = mountinfo_find(path, false, source, sizeof(source), NULL, 0);
        if (ret < 0)
                return ve_error_errno(err, ret, "read /proc/self/mountinfo");
        if (ret == 0)
                return ve_error_set(err, EINVAL, "%s is not mounted", path);
        ret = umount2(path, UMOUNT_NOFOLLOW);
        if (ret < 0)
                return ve_error_errno(err, errno, "unmount %s", path);
        if (strncmp(source, "/dev/loop", 9) != 0 || wait_loop_gone(source))
                return 0;
        ve_loop_detach(source, NULL);
        if (wait_loop_gone(source))
                return 0;
        return ve_error_set(err, EBUSY,
                            "unmounted %s but %s stays in use (another mount namespace holds "
                            "it); it detaches when that goes",
                            path, source);
}

static int64_t check_not_mount(int fd, int64_t parent_mnt, const char *name, struct ve_error *err)
{
        struct statx stx;
        int ret;

        ret = statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_TYPE | STATX_MNT_ID, &stx);
        if (ret < 0)
                return ve_error_errno(err, errno, "stat %s", name);
        if ((stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) ||
            (parent_mnt >= 0 && stx.stx_mnt_id != (uint64_t)parent_mnt))
                return ve_error_set(err, EBUSY,
                                    "refusing to delete %s: it is a mount point; "
                                    "unmount first",
                                    name);
        return (int64_t)stx.stx_mnt_id;
}

static int rm_entry(int dirfd, const char *name, int64_t parent_mnt, int depth,
                    struct ve_error *err);

static int rm_children(int fd, int64_t mnt, int depth, const char *name, struct ve_error *err)
{
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int ret;

        d = fdopendir(fd);
        if (d == NULL) {
                ret = ve_error_errno(err, errno, "read directory %s", name);
                close(fd);
                return ret;
        }
        while ((errno = 0, de = readdir(d)) != NULL) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                ret = rm_entry(dirfd(d), de->d_name, mnt, depth + 1, err);
                if (ret < 0)
                        return ret;
        }
        if (errno != 0)
                return ve_error_errno(err, errno, "read directory %s", name);
        return 0;
}

static int rm_entry(int dirfd, const char *name, int64_t parent_mnt, int depth,
                    struct ve_error *err)
{
        int64_t mnt;
        int fd, ret;

        if (depth > RMTREE_MAX_DEPTH)
                return ve_error_set(err, ELOOP, "refusing to delete %s: tree too deep", name);
        fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0 && (errno == ENOTDIR || errno == ELOOP)) {
                ret = unlinkat(dirfd, name, 0);
                if (ret < 0 && errno != ENOENT)
                        return ve_error_errno(err, errno, "delete %s", name);
                return 0;
        }
        if (fd < 0)
                return errno == ENOENT ? 0 : ve_error_errno(err, errno, "open %s", name);
        mnt = check_not_mount(fd, parent_mnt, name, err);
        if (mnt < 0) {
                close(fd);
                return (int)mnt;
        }
        ret = rm_children(fd, mnt, depth, name, err); /* takes fd */
        if (ret < 0)
                return ret;
        ret = unlinkat(dirfd, name, AT_REMOVEDIR);
        if (ret < 0 && errno != ENOENT)
                return ve_error_errno(err, errno, "delete directory %s", name);
        return 0;
}

static int64_t mnt_id_of(int fd)
{
        struct statx stx;

        if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) < 0 || !(stx.stx_mask & STATX_MNT_ID))
                return -1;
        return (int64_t)stx.stx_mnt_id;
}

int ve_rmtree_at(int dirfd, const char *name, struct ve_error *err)
{
        _cleanup_close_ int parent = -EBADF;
        _cleanup_free_ char *dir_part = strdup(name);
        _cleanup_free_ char *base_part = strdup(name);
        int ret;

        if (dir_part == NULL || base_part == NULL)
                return ve_error_errno(err, ENOMEM, "delete %s", name);
        /* Resolve the leading directories first, so the mount check compares
         * the tree against the mount its own parent lies on. */
        parent = openat(dirfd, dirname(dir_part), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (parent < 0)
                return errno == ENOENT ? 0 : ve_error_errno(err, errno, "open parent of %s", name);
        ret = rm_entry(parent, basename(base_part), mnt_id_of(parent), 0, err);
        if (ret < 0)
                return ve_error_prefix(err, "delete %s", name);
        return 0;
}

int ve_rmtree(const char *path, struct ve_error *err)
{
        _cleanup_free_ char *real = realpath(path, NULL);
        char found[PATH_MAX];
        int ret;

        if (real == NULL)
                return errno == ENOENT ? 0 : ve_error_errno(err, errno, "resolve %s", path);
        ret = mountinfo_find(real, true, NULL, 0, found, sizeof(found));
        if (ret < 0)
                return ve_error_errno(err, ret, "read /proc/self/mountinfo");
        if (ret > 0)
                return ve_error_set(err, EBUSY,
                                    "refusing to delete %s: %s is mounted; "
                                    "unmount first",
                                    path, found);
        return ve_rmtree_at(AT_FDCWD, path, err);
}
