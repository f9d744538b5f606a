#include "guest.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "child.h"
#include "cleanup.h"

static int write_all(int fd, const char *buf, size_t len)
{
        while (len > 0) {
                ssize_t n = write(fd, buf, len);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                buf += n;
                len -= (size_t)n;
        }
        return 0;
}

int ve_guest_write_file(const char *root, const char *path, const char *content, size_t len,
                        mode_t mode, struct ve_error *err)
{
        _cleanup_close_ int rootfd = -EBADF, dirfd = -EBADF, fd = -EBADF;
        _cleanup_free_ char *dir = strdup(path);
        const char *name = strrchr(path, '/');
        char tmp[256];
        int ret;

        if (dir == NULL || name == NULL || name[1] == '\0' || strlen(name) > 200)
                return ve_error_set(err, EINVAL, "bad guest path %s", path);
        dir[name - path] = '\0';
        name++;
        rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                return ve_error_errno(err, errno, "open VE root %s", root);
        dirfd = ve_openat2(rootfd, dir[0] ? dir : "/", O_PATH | O_DIRECTORY | O_CLOEXEC,
                           RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV);
        if (dirfd < 0)
                return ve_error_errno(err, errno, "open %s in the VE", dir[0] ? dir : "/");
        snprintf(tmp, sizeof(tmp), ".%s.ved-tmp", name);
        unlinkat(dirfd, tmp, 0);
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0)
                return ve_error_errno(err, errno, "create %s in the VE", path);
        ret = write_all(fd, content, len);
        if (ret == 0 && (fchmod(fd, mode) < 0 || fchown(fd, 0, 0) < 0 || fsync(fd) < 0))
                ret = -errno;
        if (ret == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
                ret = -errno;
        if (ret < 0) {
                unlinkat(dirfd, tmp, 0);
                return ve_error_errno(err, -ret, "write %s in the VE", path);
        }
        fsync(dirfd);
        return 0;
}

int ve_guest_set_hostname(const char *root, const char *hostname, struct ve_error *err)
{
        char buf[300];
        int n = snprintf(buf, sizeof(buf), "%s\n", hostname);

        return ve_guest_write_file(root, "/etc/hostname", buf, (size_t)n, 0644, err);
}
