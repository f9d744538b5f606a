/* Host-wide claims on VE uid/gid ranges (idrange.h). A claim is the file
 * <dir>/<base>, holding "<pid> <starttime> <instance> <ctid>\n"; it is written
 * whole (a temporary file renamed over it), and only under the registry's lock,
 * so a reader never sees half a claim and two claimants never both win. */
#include "daemon/idrange.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ve/cleanup.h"
#include "ve/start.h"

/* The lock file's fd while the lock is held (under lock_mutex). */
static int lock_fd = -1;

int ved_idrange_holder_init(struct ved_idrange_holder *me, const char *instance, uint32_t ctid,
                            pid_t pid, struct ve_error *err)
{
        memset(me, 0, sizeof(*me));
        me->pid = pid > 0 ? pid : getpid();
        me->ctid = ctid;
        snprintf(me->instance, sizeof(me->instance), "%s", instance);
        return ve_proc_starttime(me->pid, &me->starttime, err);
}

/* The lock is a POSIX record lock on <dir>/.lock, which belongs to the process:
 * unlike a flock or an OFD lock, a child cloned meanwhile (a VE's init waiting
 * for its go) does not hold it through its copy of the fd. It does not exclude
 * the threads of one daemon from each other: the mutex does. */
static pthread_mutex_t lock_mutex = PTHREAD_MUTEX_INITIALIZER;

int ved_idrange_lock(const char *dir, struct ve_error *err)
{
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        char path[PATH_MAX];
        int fd, dirfd;

        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return ve_error_errno(err, errno, "create %s", dir);
        dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (dirfd < 0)
                return ve_error_errno(err, errno, "open %s", dir);
        snprintf(path, sizeof(path), "%s/.lock", dir);
        pthread_mutex_lock(&lock_mutex);
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        while (fd >= 0 && fcntl(fd, F_SETLKW, &fl) < 0) {
                if (errno != EINTR) {
                        close(fd);
                        fd = -1;
                }
        }
        if (fd < 0) {
                int e = errno;

                pthread_mutex_unlock(&lock_mutex);
                close(dirfd);
                return ve_error_errno(err, e, "lock %s", path);
        }
        /* The lock's fd is kept as long as the directory's: closing it lets go. */
        lock_fd = fd;
        return dirfd;
}

void ved_idrange_unlock(int dirfd)
{
        if (dirfd < 0)
                return;
        close(dirfd);
        close(lock_fd);
        lock_fd = -1;
        pthread_mutex_unlock(&lock_mutex);
}

/* The claim on base: 1 and *h when there is one that parses, 0 when there is
 * none (or only a damaged one: nothing can vouch for it), -errno. */
static int read_claim(int dirfd, const char *name, struct ved_idrange_holder *h)
{
        _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        char buf[160];
        unsigned long long start;
        unsigned ctid;
        int pid;
        ssize_t n;

        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        memset(h, 0, sizeof(*h));
        if (sscanf(buf, "%d %llu %63s %u", &pid, &start, h->instance, &ctid) != 4 || pid <= 0)
                return 0;
        h->pid = pid;
        h->starttime = start;
        h->ctid = ctid;
        return 1;
}

/* The process that vouches for h still runs (a zombie too: until it is reaped,
 * its VE's processes may still hold the ids). */
static bool holder_alive(const struct ved_idrange_holder *h)
{
        uint64_t now;

        return ve_proc_starttime(h->pid, &now, NULL) == 0 && now == h->starttime;
}

static bool same_ve(const struct ved_idrange_holder *a, const struct ved_idrange_holder *b)
{
        return a->ctid == b->ctid && strcmp(a->instance, b->instance) == 0;
}

static int write_claim(int dirfd, const char *name, const struct ved_idrange_holder *me,
                       struct ve_error *err)
{
        char tmp[48], buf[160];
        int fd, len;

        snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
        len = snprintf(buf, sizeof(buf), "%d %" PRIu64 " %s %u\n", (int)me->pid, me->starttime,
                       me->instance, me->ctid);
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return ve_error_errno(err, errno, "create the uid range claim %s", tmp);
        if (write(fd, buf, (size_t)len) != len) {
                int e = errno ? errno : EIO;

                close(fd);
                unlinkat(dirfd, tmp, 0);
                return ve_error_errno(err, e, "write the uid range claim %s", tmp);
        }
        close(fd);
        if (renameat(dirfd, tmp, dirfd, name) < 0) {
                int e = errno;

                unlinkat(dirfd, tmp, 0);
                return ve_error_errno(err, e, "claim uid range %s", name);
        }
        return 0;
}

int ved_idrange_claim(int dirfd, int64_t base, const struct ved_idrange_holder *me,
                      struct ved_idrange_holder *other, struct ve_error *err)
{
        struct ved_idrange_holder h;
        char name[24];
        int ret;

        snprintf(name, sizeof(name), "%" PRId64, base);
        ret = read_claim(dirfd, name, &h);
        if (ret < 0)
                return ve_error_errno(err, -ret, "read the uid range claim %s", name);
        if (ret > 0 && !same_ve(&h, me) && holder_alive(&h)) {
                if (other != NULL)
                        *other = h;
                return ve_error_set(err, EBUSY,
                                    "uid range %s is in use by VE %u of ved instance %s (pid %d)",
                                    name, h.ctid, h.instance, (int)h.pid);
        }
        return write_claim(dirfd, name, me, err);
}

int ved_idrange_claim_locked(const char *dir, int64_t base, const struct ved_idrange_holder *me,
                             struct ved_idrange_holder *other, struct ve_error *err)
{
        int fd = ved_idrange_lock(dir, err), ret;

        if (fd < 0)
                return fd;
        ret = ved_idrange_claim(fd, base, me, other, err);
        ved_idrange_unlock(fd);
        return ret;
}

void ved_idrange_release(const char *dir, int64_t base, const char *instance, uint32_t ctid)
{
        int fd = ved_idrange_lock(dir, NULL);
        struct ved_idrange_holder h, me = { .ctid = ctid };
        char name[24];

        if (fd < 0)
                return;
        snprintf(me.instance, sizeof(me.instance), "%s", instance);
        snprintf(name, sizeof(name), "%" PRId64, base);
        if (read_claim(fd, name, &h) > 0 && same_ve(&h, &me))
                unlinkat(fd, name, 0);
        ved_idrange_unlock(fd);
}

void ved_idrange_sweep(const char *dir, const char *instance)
{
        int fd = ved_idrange_lock(dir, NULL), dfd;
        struct dirent *de;
        DIR *d;

        if (fd < 0)
                return;
        dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        d = dfd >= 0 ? fdopendir(dfd) : NULL;
        if (d == NULL && dfd >= 0)
                close(dfd);
        while (d != NULL && (de = readdir(d)) != NULL) {
                struct ved_idrange_holder h;
                size_t len = strlen(de->d_name);

                /* A claim's temporary file is only there while a claim is written,
                 * under the lock: one found now was left by a crash. */
                if (de->d_name[0] == '.' && len > 4 && strcmp(de->d_name + len - 4, ".tmp") == 0) {
                        unlinkat(fd, de->d_name, 0);
                        continue;
                }
                if (de->d_name[0] < '0' || de->d_name[0] > '9')
                        continue;
                if (read_claim(fd, de->d_name, &h) > 0 && strcmp(h.instance, instance) == 0 &&
                    !holder_alive(&h))
                        unlinkat(fd, de->d_name, 0);
        }
        if (d != NULL)
                closedir(d);
        ved_idrange_unlock(fd);
}
