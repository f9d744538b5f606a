/* A VE's init as a process: start time, finding it again, halting, reaping. */
#include "ve/start.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "ve/child.h"
#include "ve/cleanup.h"

void ve_proc_close(struct ve_proc *p)
{
        if (p->pidfd >= 0)
                close(p->pidfd);
        if (p->console_fd >= 0)
                close(p->console_fd);
        if (p->console_peer >= 0)
                close(p->console_peer);
        if (p->statfs_fd >= 0)
                close(p->statfs_fd);
        p->pidfd = -EBADF;
        p->console_fd = -EBADF;
        p->console_peer = -EBADF;
        p->statfs_fd = -EBADF;
}

/* The comm field (2) may hold spaces and parentheses: count from the last ')'. */
int ve_proc_starttime(pid_t pid, uint64_t *out, struct ve_error *err)
{
        char path[64], buf[1024];
        _cleanup_close_ int fd = -EBADF;
        unsigned long long v;
        const char *p;
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return ve_error_errno(err, errno == ENOENT ? ESRCH : errno, "open %s", path);
        n = read(fd, buf, sizeof(buf) - 1);
        if (n < 0)
                return ve_error_errno(err, errno, "read %s", path);
        buf[n] = '\0';
        p = strrchr(buf, ')');
        /* After ')' come fields 3, 4, ...: skip 19 of them to reach field 22. */
        for (int field = 2; p != NULL && field < 22; field++)
                p = strchr(p + 1, ' ');
        if (p == NULL || sscanf(p + 1, "%llu", &v) != 1)
                return ve_error_set(err, EIO, "cannot parse %s", path);
        *out = v;
        return 0;
}

static bool path_within(const char *path, const char *base)
{
        size_t len = strlen(base);

        return strncmp(path, base, len) == 0 && (path[len] == '\0' || path[len] == '/');
}

/* Any hierarchy line "N:controllers:/path" naming cgroup_path or below counts. */
static int check_cgroup(pid_t pid, const char *cgroup_path, struct ve_error *err)
{
        _cleanup_fclose_ FILE *f = NULL;
        char path[64], line[4096];

        snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
        f = fopen(path, "re");
        if (f == NULL)
                return ve_error_errno(err, errno == ENOENT ? ESRCH : errno, "open %s", path);
        while (fgets(line, sizeof(line), f) != NULL) {
                char *cg = strchr(line, ':');

                cg = cg ? strchr(cg + 1, ':') : NULL;
                if (cg == NULL)
                        continue;
                cg[1 + strcspn(cg + 1, "\n")] = '\0';
                if (path_within(cg + 1, cgroup_path))
                        return 0;
        }
        return ve_error_set(err, VE_ENOTFOUND, "process %d is not in cgroup %s", (int)pid,
                            cgroup_path);
}

static int verify(pid_t pid, uint64_t starttime, const char *cgroup_path, struct ve_error *err)
{
        uint64_t now = 0;
        int ret;

        ret = ve_proc_starttime(pid, &now, err);
        if (ret < 0)
                return ret;
        if (now != starttime)
                return ve_error_set(
                    err, VE_ENOTFOUND, "process %d started at %llu, not %llu: the pid was reused",
                    (int)pid, (unsigned long long)now, (unsigned long long)starttime);
        return cgroup_path ? check_cgroup(pid, cgroup_path, err) : 0;
}

char ve_proc_state(pid_t pid)
{
        char path[64], buf[512];
        _cleanup_close_ int fd = -EBADF;
        const char *p;
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 'X' : '\0';
        n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return '\0';
        buf[n] = '\0';
        /* The comm field (2) may hold spaces and parentheses: the last ')'. */
        p = strrchr(buf, ')');
        return p != NULL && p[1] == ' ' ? p[2] : '\0';
}

bool ve_proc_exited(pid_t pid)
{
        char state = ve_proc_state(pid);

        return state == 'Z' || state == 'X';
}

/* Open the pidfd first and check it is still alive last: if it is, the pid could
 * not have been reused in between, so what /proc said was about this process. */
int ve_proc_find(pid_t pid, uint64_t starttime, const char *cgroup_path, struct ve_proc *out,
                 struct ve_error *err)
{
        _cleanup_close_ int pidfd = -EBADF;
        int ret;

        pidfd = ve_pidfd_open(pid);
        if (pidfd < 0)
                return ve_error_errno(err, errno == ESRCH ? VE_ENOTFOUND : errno, "pidfd_open %d",
                                      (int)pid);
        ret = verify(pid, starttime, cgroup_path, err);
        if (ret < 0)
                return ret;
        if (ve_pidfd_send_signal(pidfd, 0) < 0)
                return ve_error_errno(err, errno == ESRCH ? VE_ENOTFOUND : errno, "process %d",
                                      (int)pid);
        if (ve_proc_exited(pid))
                return ve_error_set(err, VE_ENOTFOUND, "process %d has exited", (int)pid);
        out->pid = pid;
        out->starttime = starttime;
        out->pidfd = steal_fd(&pidfd);
        out->console_fd = -EBADF;
        out->console_peer = -EBADF;
        out->statfs_fd = -EBADF;
        return 0;
}

static bool exe_is_systemd(pid_t pid)
{
        char path[64], target[PATH_MAX];
        const char *base;
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
        n = readlink(path, target, sizeof(target) - 1);
        if (n < 0)
                return false;
        target[n] = '\0';
        base = strrchr(target, '/');
        return strcmp(base ? base + 1 : target, "systemd") == 0;
}

int ve_stop_signal(pid_t pid, int pidfd, const char *init_kind, struct ve_error *err)
{
        bool systemd = init_kind ? strcmp(init_kind, "systemd") == 0 : exe_is_systemd(pid);
        int sig = systemd ? SIGRTMIN + 3 : SIGPWR;
        int ret;

        ret = pidfd >= 0 ? ve_pidfd_send_signal(pidfd, sig) : kill(pid, sig);
        if (ret < 0)
                return ve_error_errno(err, errno, "send %s to init %d",
                                      systemd ? "SIGRTMIN+3" : "SIGPWR", (int)pid);
        return 0;
}

int ve_init_kind(const char *rootfs, const char **out, struct ve_error *err)
{
        _cleanup_close_ int rootfd = -EBADF, fd = -EBADF;
        char link[64], target[PATH_MAX];
        const char *base;
        ssize_t n;

        rootfd = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
                return ve_error_errno(err, errno, "open %s", rootfs);
        fd = ve_openat2(rootfd, "sbin/init", O_PATH | O_CLOEXEC,
                        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
        if (fd < 0)
                return ve_error_errno(err, errno, "resolve /sbin/init in %s", rootfs);
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        n = readlink(link, target, sizeof(target) - 1);
        if (n < 0)
                return ve_error_errno(err, errno, "readlink %s", link);
        target[n] = '\0';
        base = strrchr(target, '/');
        *out = strcmp(base ? base + 1 : target, "systemd") == 0 ? "systemd" : "sysvinit";
        return 0;
}

int ve_proc_wait(int pidfd, int nohang, int *status, struct ve_error *err)
{
        siginfo_t si;

        memset(&si, 0, sizeof(si));
        while (waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED | (nohang ? WNOHANG : 0)) < 0) {
                struct pollfd p = { .fd = pidfd, .events = POLLIN };

                /* A pidfd watched by libuv is non-blocking (uv_poll_init sets
                 * O_NONBLOCK), and waitid on it answers EAGAIN while the process
                 * runs: wait for it to end, then reap. */
                if (errno == EAGAIN && !nohang) {
                        poll(&p, 1, -1);
                        continue;
                }
                if (errno == EAGAIN)
                        return 0;
                if (errno != EINTR)
                        return ve_error_errno(err, errno, "waitid");
        }
        if (si.si_pid == 0)
                return 0;
        if (status == NULL)
                return 1;
        if (si.si_code == CLD_EXITED)
                *status = (si.si_status & 0xff) << 8;
        else
                *status = (si.si_status & 0x7f) | (si.si_code == CLD_DUMPED ? 0x80 : 0);
        return 1;
}
