#include "loop.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"

/* How often to retry when another process grabs the free device first. */
#define ATTACH_TRIES 64

static void short_sleep(void)
{
        struct timespec ts = { .tv_sec = 0, .tv_nsec = 2 * 1000 * 1000 };

        nanosleep(&ts, NULL);
}

/* Open /dev/loopN; the node can lag a moment behind LOOP_CTL_GET_FREE. */
static int open_loop_dev(const char *dev)
{
        int fd, i;

        for (i = 0; i < 50; i++) {
                fd = open(dev, O_RDWR | O_CLOEXEC);
                if (fd >= 0 || errno != ENOENT)
                        return fd;
                short_sleep();
        }
        return -1;
}

static void fill_config(struct loop_config *cfg, int file_fd, const char *path, bool read_only)
{
        memset(cfg, 0, sizeof(*cfg));
        cfg->fd = (unsigned)file_fd;
        /* Direct I/O keeps the image's data out of the host page cache twice
         * (once for the loop device, once for the file); the kernel quietly
         * falls back to buffered I/O where the backing file cannot do it. */
        cfg->info.lo_flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO;
        if (read_only)
                cfg->info.lo_flags |= LO_FLAGS_READ_ONLY;
        /* Informational only (64 bytes, may be cut): ve_loop_find() uses sysfs. */
        snprintf((char *)cfg->info.lo_file_name, sizeof(cfg->info.lo_file_name), "%s", path);
}

/* One attempt: returns the loop fd, -EBUSY/-ENXIO/-ENOENT to retry, or -errno. */
static int try_attach(int ctl_fd, int file_fd, const char *path, bool read_only, char *dev,
                      size_t len)
{
        struct loop_config cfg;
        int nr, fd, ret;

        nr = ioctl(ctl_fd, LOOP_CTL_GET_FREE);
        if (nr < 0)
                return -errno;
        snprintf(dev, len, "/dev/loop%d", nr);
        fd = open_loop_dev(dev);
        if (fd < 0)
                return -errno;
        fill_config(&cfg, file_fd, path, read_only);
        ret = ioctl(fd, LOOP_CONFIGURE, &cfg);
        if (ret < 0) {
                ret = -errno;
                close(fd);
                return ret;
        }
        return fd;
}

int ve_loop_attach(const char *img, bool read_only, char *dev, size_t len, struct ve_error *err)
{
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int file_fd = -EBADF;
        _cleanup_close_ int ctl_fd = -EBADF;
        int i, ret = -EBUSY;

        path = realpath(img, NULL);
        if (path == NULL)
                return ve_error_errno(err, errno, "resolve image %s", img);
        file_fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOFOLLOW);
        if (file_fd < 0)
                return ve_error_errno(err, errno, "open image %s", path);
        ctl_fd = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
        if (ctl_fd < 0)
                return ve_error_errno(err, errno, "open /dev/loop-control");
        for (i = 0; i < ATTACH_TRIES; i++) {
                ret = try_attach(ctl_fd, file_fd, path, read_only, dev, len);
                if (ret >= 0)
                        return ret;
                /* Someone else configured the device between GET_FREE and
                 * CONFIGURE, or it is being torn down: take the next one. */
                if (ret != -EBUSY && ret != -ENXIO && ret != -ENOENT)
                        break;
                short_sleep();
        }
        return ve_error_errno(err, -ret, "attach %s to a loop device", path);
}

/* Read /sys/block/<name>/loop/backing_file into buf without the newline. */
static int read_backing_file(const char *name, char *buf, size_t len)
{
        char sysfs[PATH_MAX];
        _cleanup_fclose_ FILE *f = NULL;
        size_t n;

        snprintf(sysfs, sizeof(sysfs), "/sys/block/%s/loop/backing_file", name);
        f = fopen(sysfs, "re");
        if (f == NULL)
                return -errno;
        if (fgets(buf, (int)len, f) == NULL)
                return -ENOENT;
        n = strlen(buf);
        if (n > 0 && buf[n - 1] == '\n')
                buf[n - 1] = '\0';
        return 0;
}

static bool is_loop_name(const char *name)
{
        const char *p;

        if (strncmp(name, "loop", 4) != 0 || name[4] == '\0')
                return false;
        for (p = name + 4; *p; p++)
                if (!isdigit((unsigned char)*p))
                        return false;
        return true;
}

int ve_loop_find(const char *img, char *dev, size_t len, struct ve_error *err)
{
        _cleanup_closedir_ DIR *d = NULL;
        _cleanup_free_ char *path = NULL;
        char backing[PATH_MAX];
        struct dirent *de;

        path = realpath(img, NULL);
        if (path == NULL) {
                if (errno == ENOENT)
                        return -ENOENT;
                return ve_error_errno(err, errno, "resolve image %s", img);
        }
        d = opendir("/sys/block");
        if (d == NULL)
                return ve_error_errno(err, errno, "open /sys/block");
        while ((de = readdir(d)) != NULL) {
                if (!is_loop_name(de->d_name))
                        continue;
                if (read_backing_file(de->d_name, backing, sizeof(backing)) < 0)
                        continue;
                if (strcmp(backing, path) == 0) {
                        snprintf(dev, len, "/dev/%s", de->d_name);
                        return 0;
                }
        }
        return -ENOENT;
}

int ve_loop_detach(const char *dev, struct ve_error *err)
{
        _cleanup_close_ int fd = -EBADF;
        int ret;

        fd = open(dev, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
                if (errno == ENOENT || errno == ENXIO)
                        return 0;
                return ve_error_errno(err, errno, "open %s", dev);
        }
        ret = ioctl(fd, LOOP_CLR_FD, 0);
        if (ret < 0 && errno != ENXIO)
                return ve_error_errno(err, errno, "detach %s", dev);
        return 0;
}

int ve_loop_set_capacity(const char *dev, struct ve_error *err)
{
        _cleanup_close_ int fd = -EBADF;
        int ret;

        fd = open(dev, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return ve_error_errno(err, errno, "open %s", dev);
        ret = ioctl(fd, LOOP_SET_CAPACITY, 0);
        if (ret < 0)
                return ve_error_errno(err, errno, "update capacity of %s", dev);
        return 0;
}

int ve_loop_refuse_attached(const char *img, struct ve_error *err)
{
        char dev[64];
        int ret;

        ret = ve_loop_find(img, dev, sizeof(dev), err);
        if (ret == -ENOENT)
                return 0;
        if (ret < 0)
                return ret;
        return ve_error_set(err, EBUSY, "%s is attached to %s; stop the VE first", img, dev);
}
