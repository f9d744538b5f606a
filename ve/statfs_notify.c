/* The answers of ve-statfsd to statfs() and fstatfs() in a VE (statfs_notify.h). */
#include "ve/statfs_notify.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>

#include "ve/child.h"
#include "ve/cleanup.h"
#include "ve/sysinfo.h"

/* Not the answer itself: let the kernel run the real system call. */
#define PASS 1

#define MAX_GROUPS 64

unsigned ve_statfsd_addr(const char *instance, struct sockaddr_un *addr)
{
        int n;

        memset(addr, 0, sizeof(*addr));
        addr->sun_family = AF_UNIX;
        n = snprintf(addr->sun_path + 1, sizeof(addr->sun_path) - 1, "ved-statfsd/%s", instance);
        if (n < 0 || (size_t)n >= sizeof(addr->sun_path) - 1)
                n = (int)sizeof(addr->sun_path) - 2;
        return (unsigned)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

void ve_statfs_transform(struct statfs *sfs)
{
        if (sfs->f_bfree > sfs->f_bavail && sfs->f_blocks >= sfs->f_bfree - sfs->f_bavail) {
                sfs->f_blocks -= sfs->f_bfree - sfs->f_bavail;
                sfs->f_bfree = sfs->f_bavail;
        }
}

/* The NUL-terminated path at addr in the process's memory, read page by page:
 * a string that ends just before an unmapped page is still read. */
static int read_path(int mem, uint64_t addr, char *buf, size_t len)
{
        size_t got = 0;

        if (addr > (uint64_t)INT64_MAX - len)
                return -EFAULT;
        while (got < len) {
                size_t chunk = 4096 - ((addr + got) & 4095);
                ssize_t n;

                if (chunk > len - got)
                        chunk = len - got;
                n = pread(mem, buf + got, chunk, (off_t)(addr + got));
                if (n <= 0)
                        return -EFAULT;
                if (memchr(buf + got, '\0', (size_t)n) != NULL)
                        return 0;
                got += (size_t)n;
        }
        return -ENAMETOOLONG;
}

/* Field 4 (fs) of the "Uid:" or "Gid:" line, and the "Groups:" list. */
struct task_creds {
        uid_t fsuid;
        gid_t fsgid;
        gid_t groups[MAX_GROUPS];
        int ngroups;
};

/* The value after "\n<key>" in /proc/<pid>/status, or NULL. */
static const char *field(const char *buf, const char *key)
{
        const char *p = strstr(buf, key);

        return p == NULL ? NULL : p + strlen(key);
}

static int read_creds(int status_fd, struct task_creds *c)
{
        char buf[4096], *end;
        ssize_t n = pread(status_fd, buf, sizeof(buf) - 1, 0);
        unsigned long r, e, s, fs, fsg;
        const char *uid, *gid, *groups;

        if (n <= 0)
                return -EIO;
        buf[n] = '\0';
        uid = field(buf, "\nUid:");
        gid = field(buf, "\nGid:");
        groups = field(buf, "\nGroups:");
        if (uid == NULL || gid == NULL || groups == NULL ||
            sscanf(uid, "%lu %lu %lu %lu", &r, &e, &s, &fs) != 4 ||
            sscanf(gid, "%lu %lu %lu %lu", &r, &e, &s, &fsg) != 4)
                return -EIO;
        c->fsuid = (uid_t)fs;
        c->fsgid = (gid_t)fsg;
        c->ngroups = 0;
        for (;;) {
                unsigned long g;

                while (*groups == ' ' || *groups == '\t')
                        groups++;
                g = strtoul(groups, &end, 10);
                if (end == groups)
                        return 0;
                /* More groups than we keep: resolve with none of them, which can
                 * only refuse more than the kernel would. */
                if (c->ngroups == MAX_GROUPS) {
                        c->ngroups = 0;
                        return 0;
                }
                c->groups[c->ngroups++] = (gid_t)g;
                groups = end;
        }
}

/* openat2 with the process's file system credentials: setfsuid() away from 0
 * drops CAP_DAC_OVERRIDE and the other file capabilities from our effective set,
 * and setfsuid(0) gives them back. The server is single-threaded, so the raw
 * setgroups (one thread) is the whole process. */
static int open_as(const struct task_creds *c, int dirfd, const char *path, uint64_t resolve)
{
        int fd, saved;

        if (syscall(SYS_setgroups, c->ngroups, c->groups) < 0)
                return -errno;
        setfsgid(c->fsgid);
        setfsuid(c->fsuid);
        fd = ve_openat2(dirfd, path, O_PATH | O_CLOEXEC, resolve);
        saved = errno;
        setfsuid(0);
        setfsgid(0);
        syscall(SYS_setgroups, 0, NULL);
        return fd < 0 ? -saved : fd;
}

/* What one notification is about, with the /proc handles of its process. */
struct call {
        const struct seccomp_notif *req;
        int proc; /* /proc/<pid> */
        int mem;  /* /proc/<pid>/mem, read-write */
        int root; /* the process's root directory (O_PATH) */
        struct stat root_st;
};

/* statfs(path): the object path names, as the process resolves it. Relative
 * paths only beneath its working directory, absolute ones only under its root;
 * anything else (.., a symlink out of the working directory) is left to the
 * kernel. */
static int resolve_path(struct call *c, int *target)
{
        _cleanup_close_ int cwd = -EBADF, status = -EBADF;
        char path[PATH_MAX];
        struct task_creds creds;
        uint64_t resolve;
        int dirfd, ret;

        ret = read_path(c->mem, c->req->data.args[0], path, sizeof(path));
        if (ret < 0)
                return PASS;
        /* df's most common call: anyone reaches "/", whatever their ids, and
         * reading them (/proc/<pid>/status) is a fifth of a call's cost. */
        if (strcmp(path, "/") == 0) {
                *target = fcntl(c->root, F_DUPFD_CLOEXEC, 0);
                return *target < 0 ? PASS : 0;
        }
        if (path[0] == '/') {
                dirfd = c->root;
                resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
        } else {
                cwd = openat(c->proc, "cwd", O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (cwd < 0)
                        return PASS;
                dirfd = cwd;
                resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
        }
        status = openat(c->proc, "status", O_RDONLY | O_CLOEXEC);
        if (status < 0 || read_creds(status, &creds) < 0)
                return PASS;
        /* The owner of the root directory (the VE's root) reaches every file of
         * it; anyone else resolves with their own permissions. */
        if (creds.fsuid == c->root_st.st_uid)
                *target = ve_openat2(dirfd, path, O_PATH | O_CLOEXEC, resolve);
        else
                *target = open_as(&creds, dirfd, path, resolve);
        return *target < 0 ? PASS : 0;
}

static int resolve_fd(struct call *c, int *target)
{
        char name[32];

        if (c->req->data.args[0] > INT_MAX)
                return PASS;
        snprintf(name, sizeof(name), "fd/%d", (int)c->req->data.args[0]);
        *target = openat(c->proc, name, O_PATH | O_CLOEXEC);
        return *target < 0 ? PASS : 0;
}

/* The i386 table's calls (arch/x86/entry/syscalls/syscall_32.tbl), and the bit
 * that marks x32's calls, which share x86-64's struct statfs. */
#define I386_NR_STATFS    99
#define I386_NR_FSTATFS   100
#define I386_NR_STATFS64  268
#define I386_NR_FSTATFS64 269
#define X32_SYSCALL_BIT   0x40000000u

int ve_statfs_classify(const struct seccomp_notif *req, bool *by_fd, enum ve_statfs_layout *layout,
                       uint64_t *buf)
{
        const __u64 *a = req->data.args;
        int nr = req->data.nr;

        if (req->data.arch == AUDIT_ARCH_X86_64) {
                nr = (int)((unsigned)nr & ~X32_SYSCALL_BIT);
                if (nr != __NR_statfs && nr != __NR_fstatfs)
                        return 1;
                *by_fd = nr == __NR_fstatfs;
                *layout = VE_STATFS_NATIVE;
                *buf = a[1];
                return 0;
        }
        if (req->data.arch != AUDIT_ARCH_I386)
                return 1;
        *by_fd = nr == I386_NR_FSTATFS || nr == I386_NR_FSTATFS64;
        if (nr == I386_NR_STATFS || nr == I386_NR_FSTATFS) {
                *layout = VE_STATFS_I386;
                *buf = (uint32_t)a[1];
                return 0;
        }
        if ((nr == I386_NR_STATFS64 || nr == I386_NR_FSTATFS64) &&
            (uint32_t)a[1] == sizeof(struct ve_statfs64_i386)) {
                *layout = VE_STATFS_I386_64;
                *buf = (uint32_t)a[2];
                return 0;
        }
        return 1;
}

/* The fields both i386 layouts have, each cast to the width of d's. */
#define COPY_STATFS(d, s)                                                                          \
        do {                                                                                       \
                (d).f_type = (uint32_t)(s)->f_type;                                                \
                (d).f_bsize = (uint32_t)(s)->f_bsize;                                              \
                (d).f_blocks = (__typeof__((d).f_blocks))(s)->f_blocks;                            \
                (d).f_bfree = (__typeof__((d).f_bfree))(s)->f_bfree;                               \
                (d).f_bavail = (__typeof__((d).f_bavail))(s)->f_bavail;                            \
                (d).f_files = (__typeof__((d).f_files))(s)->f_files;                               \
                (d).f_ffree = (__typeof__((d).f_ffree))(s)->f_ffree;                               \
                memcpy((d).f_fsid, &(s)->f_fsid, sizeof((d).f_fsid));                              \
                (d).f_namelen = (uint32_t)(s)->f_namelen;                                          \
                (d).f_frsize = (uint32_t)(s)->f_frsize;                                            \
                (d).f_flags = (uint32_t)(s)->f_flags;                                              \
        } while (0)

ssize_t ve_statfs_encode(const struct statfs *sfs, enum ve_statfs_layout layout, void *out)
{
        const uint64_t high = 0xffffffff00000000ULL;
        struct ve_statfs64_i386 w = { 0 };
        struct ve_statfs_i386 n = { 0 };

        if (layout == VE_STATFS_NATIVE) {
                memcpy(out, sfs, sizeof(*sfs));
                return (ssize_t)sizeof(*sfs);
        }
        if (((uint64_t)sfs->f_bsize | (uint64_t)sfs->f_frsize) & high)
                return -EOVERFLOW;
        if (layout == VE_STATFS_I386_64) {
                COPY_STATFS(w, sfs);
                memcpy(out, &w, sizeof(w));
                return (ssize_t)sizeof(w);
        }
        /* f_files and f_ffree may be -1 ("no limit"), which 32 bits still say. */
        if (((uint64_t)sfs->f_blocks | (uint64_t)sfs->f_bfree | (uint64_t)sfs->f_bavail) & high ||
            ((uint64_t)sfs->f_files != UINT64_MAX && ((uint64_t)sfs->f_files & high)) ||
            ((uint64_t)sfs->f_ffree != UINT64_MAX && ((uint64_t)sfs->f_ffree & high)))
                return -EOVERFLOW;
        COPY_STATFS(n, sfs);
        memcpy(out, &n, sizeof(n));
        return (ssize_t)sizeof(n);
}

/* 0 with the answer written, PASS, or -errno for the process. */
static int answer(int listener, struct call *c)
{
        _cleanup_close_ int target = -EBADF;
        struct statfs sfs, root_sfs, out;
        enum ve_statfs_layout layout;
        uint64_t buf;
        ssize_t len;
        bool by_fd;
        int ret;

        if (ve_statfs_classify(c->req, &by_fd, &layout, &buf) != 0)
                return PASS;
        /* The VE's root: its image's ext4, or the overlay of a layered VE (layer.h),
         * whose statfs is its own image's. */
        if (fstat(c->root, &c->root_st) < 0 || fstatfs(c->root, &root_sfs) < 0 ||
            (root_sfs.f_type != EXT4_SUPER_MAGIC && root_sfs.f_type != OVERLAYFS_SUPER_MAGIC))
                return PASS;
        ret = by_fd ? resolve_fd(c, &target) : resolve_path(c, &target);
        if (ret != 0)
                return ret;
        /* On the root's file system: the same type and id (an overlay's files
         * show their layers' st_dev, its statfs is the overlay's). */
        if (fstatfs(target, &sfs) < 0 || sfs.f_type != root_sfs.f_type ||
            memcmp(&sfs.f_fsid, &root_sfs.f_fsid, sizeof(sfs.f_fsid)) != 0)
                return PASS;
        ve_statfs_transform(&sfs);
        len = ve_statfs_encode(&sfs, layout, &out);
        if (len < 0)
                return (int)len;
        /* Everything of /proc/<pid> was opened before this check, so it is the
         * notifying process's, not a later one's with the same pid. */
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &c->req->id) < 0)
                return -ENOENT;
        if (buf > (uint64_t)INT64_MAX - (uint64_t)len ||
            pwrite(c->mem, &out, (size_t)len, (off_t)buf) != len)
                return -EFAULT;
        return 0;
}

static int respond(int listener, const struct seccomp_notif *req, int ret)
{
        struct seccomp_notif_resp resp;

        memset(&resp, 0, sizeof(resp));
        resp.id = req->id;
        if (ret == PASS)
                resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
        else
                resp.error = ret;
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

/* sysinfo(buf) of an x86-64 (or x32) process: the VE's own figures, or PASS
 * when they cannot be read. */
static int answer_sysinfo(int listener, struct call *c, uint32_t ctid)
{
        struct sysinfo si;
        uint64_t buf = c->req->data.args[0];

        if (ve_sysinfo_for(c->proc, c->root, ctid, &si) < 0)
                return PASS;
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &c->req->id) < 0)
                return -ENOENT;
        if (buf > (uint64_t)INT64_MAX - sizeof(si) ||
            pwrite(c->mem, &si, sizeof(si), (off_t)buf) != (ssize_t)sizeof(si))
                return -EFAULT;
        return 0;
}

static bool is_sysinfo(const struct seccomp_notif *req)
{
        return req->data.arch == AUDIT_ARCH_X86_64 &&
               ((unsigned)req->data.nr & ~X32_SYSCALL_BIT) == __NR_sysinfo;
}

int ve_statfs_notify_serve(int listener, uint32_t ctid)
{
        _cleanup_close_ int proc = -EBADF, mem = -EBADF, root = -EBADF;
        struct seccomp_notif req;
        struct call c = { .req = &req };
        char name[32];

        memset(&req, 0, sizeof(req));
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0)
                /* ENOENT: the process was gone before we read it (a signal). */
                return errno == ENOENT || errno == EINTR ? 0 : -errno;
        snprintf(name, sizeof(name), "/proc/%u", req.pid);
        proc = open(name, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (proc >= 0) {
                mem = openat(proc, "mem", O_RDWR | O_CLOEXEC);
                root = openat(proc, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);
        }
        c.proc = proc;
        c.mem = mem;
        c.root = root;
        if (proc < 0 || mem < 0 || root < 0)
                return respond(listener, &req, PASS);
        return respond(listener, &req,
                       is_sysinfo(&req) ? answer_sysinfo(listener, &c, ctid)
                                        : answer(listener, &c));
}

/* Linux 6.6; Debian 12's headers are older. */
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

void ve_statfs_notify_sync_wakeup(int listener)
{
        ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
}

int ve_statfsd_send(int sock, uint32_t op, uint32_t ctid, int fd)
{
        return ve_statfsd_sendv(sock, op, ctid, &fd, fd >= 0 ? 1 : 0);
}

int ve_statfsd_sendv(int sock, uint32_t op, uint32_t ctid, const int *fds, unsigned n)
{
        struct ve_statfsd_msg m = { .op = op, .ctid = ctid };

        return ve_send_with_fds(sock, &m, sizeof(m), fds, n);
}

int ve_statfsd_recv(int sock, struct ve_statfsd_msg *m, int *fds)
{
        ssize_t n = ve_recv_with_fds(sock, m, sizeof(*m), fds, VE_STATFSD_FDS);

        if (n < 0 || n == 0)
                return (int)n;
        if ((size_t)n != sizeof(*m)) {
                for (unsigned i = 0; i < VE_STATFSD_FDS; i++)
                        if (fds[i] >= 0) {
                                close(fds[i]);
                                fds[i] = -1;
                        }
                return -EBADMSG;
        }
        return 1;
}

/* Copy the log (an O_WRONLY fd) to <its path>.1, replacing the one before, through
 * a temporary file renamed into place. Copied, not renamed: every fd open on the
 * log (ved's, ve-statfsd's) stays on it. Best effort: a log whose path is gone
 * (its VE destroyed) or changed is not kept. */
static void console_log_keep(int log, off_t size)
{
        char link[32], path[PATH_MAX], old[PATH_MAX + 8], tmp[PATH_MAX + 16];
        int in = -EBADF, out = -EBADF;
        struct stat a, b;
        off_t off = 0;
        ssize_t n;

        snprintf(link, sizeof(link), "/proc/self/fd/%d", log);
        n = readlink(link, path, sizeof(path) - 1);
        if (n <= 0 || n >= (ssize_t)sizeof(path) - 1 || path[0] != '/')
                return;
        path[n] = '\0';
        snprintf(old, sizeof(old), "%s.1", path);
        snprintf(tmp, sizeof(tmp), "%s.1.tmp", path);
        in = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (in < 0 || fstat(in, &a) < 0 || fstat(log, &b) < 0 || a.st_dev != b.st_dev ||
            a.st_ino != b.st_ino)
                goto out;
        out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (out < 0)
                goto out;
        while (off < size &&
               (n = copy_file_range(in, &off, out, NULL, (size_t)(size - off), 0)) > 0)
                ;
        if (off == size && rename(tmp, old) == 0)
                tmp[0] = '\0';
out:
        if (out >= 0) {
                close(out);
                if (tmp[0] != '\0')
                        unlink(tmp);
        }
        if (in >= 0)
                close(in);
}

int ve_console_log_write(int log, const void *buf, size_t n)
{
        off_t size = lseek(log, 0, SEEK_END);

        if (size > VE_CONSOLE_LOG_MAX) {
                console_log_keep(log, size);
                if (ftruncate(log, 0) < 0 || lseek(log, 0, SEEK_SET) < 0)
                        return -errno;
        }
        if (write(log, buf, n) < 0)
                return -errno;
        return 0;
}

unsigned ve_bucket_take(struct ve_bucket *b, double n, double rate, double burst, double resume)
{
        long long now = (long long)ve_now_ms();

        if (b->at_ms == 0)
                b->tokens = burst;
        else
                b->tokens += (double)(now - b->at_ms) * rate / 1000;
        if (b->tokens > burst)
                b->tokens = burst;
        b->at_ms = now;
        b->tokens -= n;
        if (b->tokens > 0)
                return 0;
        return (unsigned)((-b->tokens + resume) * 1000 / rate) + 1;
}
