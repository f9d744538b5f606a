/* Raw clone3 and the report channel between the daemon and its setup children. */
#include "ve/child.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/openat2.h>
#include <linux/sched.h>

enum report_kind {
        REPORT_ERROR = 1,
        REPORT_PID,
        REPORT_FD,
};

struct report {
        int32_t kind;
        int32_t code;
        int32_t pid;
        int32_t plain;
        int32_t command;
        char msg[256];
};

static int child_failv(struct ve_child_err *e, int code, bool plain, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static int child_failv(struct ve_child_err *e, int code, bool plain, const char *fmt, va_list ap)
{
        if (code < 0)
                code = -code;
        if (code == 0)
                code = EIO;
        e->code = code;
        e->plain = plain;
        vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
        return -code;
}

int ve_child_fail(struct ve_child_err *e, int code, const char *fmt, ...)
{
        va_list ap;
        int ret;

        va_start(ap, fmt);
        ret = child_failv(e, code, false, fmt, ap);
        va_end(ap);
        return ret;
}

int ve_child_fail_plain(struct ve_child_err *e, int code, const char *fmt, ...)
{
        va_list ap;
        int ret;

        va_start(ap, fmt);
        ret = child_failv(e, code, true, fmt, ap);
        va_end(ap);
        return ret;
}

int ve_child_wait_go(int sock)
{
        int fd = -1, ret;

        ret = ve_child_wait_go_fd(sock, &fd);
        if (fd >= 0)
                close(fd);
        return ret;
}

ssize_t ve_recv_with_fds(int sock, void *buf, size_t len, int *fds, unsigned max)
{
        char cbuf[CMSG_SPACE(sizeof(int) * VE_PASS_FDS_MAX)];
        struct iovec iov = { .iov_base = buf, .iov_len = len };
        struct msghdr msg = { .msg_iov = &iov,
                              .msg_iovlen = 1,
                              .msg_control = cbuf,
                              .msg_controllen = CMSG_SPACE(sizeof(int) * max) };
        bool lost = false;
        ssize_t n;

        if (max > VE_PASS_FDS_MAX)
                return -EINVAL;
        for (unsigned i = 0; i < max; i++)
                fds[i] = -1;
        do
                n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
                size_t got;

                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                got = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < got; i++) {
                        int fd;

                        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                        if (i < max && fds[i] < 0)
                                fds[i] = fd;
                        else {
                                close(fd);
                                lost = true;
                        }
                }
        }
        if (lost || (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC))) {
                for (unsigned i = 0; i < max; i++)
                        if (fds[i] >= 0) {
                                close(fds[i]);
                                fds[i] = -1;
                        }
                return -EBADMSG;
        }
        return n;
}

ssize_t ve_recv_with_fd(int sock, void *buf, size_t len, int *fd)
{
        return ve_recv_with_fds(sock, buf, len, fd, 1);
}

int ve_child_wait_go_fd(int sock, int *fd)
{
        char c;

        if (ve_recv_with_fd(sock, &c, 1, fd) != 1) {
                if (*fd >= 0)
                        close(*fd);
                *fd = -1;
                return -EPIPE;
        }
        return 0;
}

int ve_send_with_fds(int sock, const void *buf, size_t len, const int *fds, unsigned n)
{
        char cbuf[CMSG_SPACE(sizeof(int) * VE_PASS_FDS_MAX)] = { 0 };
        struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
        ssize_t sent;

        if (n > VE_PASS_FDS_MAX)
                return -EINVAL;
        if (n > 0) {
                struct cmsghdr *c;

                msg.msg_control = cbuf;
                msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
                c = CMSG_FIRSTHDR(&msg);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * n);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
        }
        do
                sent = sendmsg(sock, &msg, MSG_NOSIGNAL);
        while (sent < 0 && errno == EINTR);
        return sent < 0 ? -errno : 0;
}

int ve_send_with_fd(int sock, const void *buf, size_t len, int fd)
{
        return ve_send_with_fds(sock, buf, len, &fd, fd >= 0 ? 1 : 0);
}

int ve_child_send_pid(int sock, pid_t pid)
{
        struct report r = { .kind = REPORT_PID, .pid = pid };

        return ve_send_with_fd(sock, &r, sizeof(r), -1);
}

int ve_child_send_fd(int sock, int fd)
{
        struct report r = { .kind = REPORT_FD };

        return ve_send_with_fd(sock, &r, sizeof(r), fd);
}

void ve_child_die(int sock, const struct ve_child_err *e)
{
        struct report r = {
                .kind = REPORT_ERROR, .code = e->code, .plain = e->plain, .command = e->command
        };

        memcpy(r.msg, e->msg, sizeof(r.msg));
        r.msg[sizeof(r.msg) - 1] = '\0';
        ve_send_with_fd(sock, &r, sizeof(r), -1);
        _exit(127);
}

int ve_child_send_go(int sock, struct ve_error *err)
{
        return ve_child_send_go_fd(sock, -1, err);
}

int ve_child_send_go_fd(int sock, int fd, struct ve_error *err)
{
        int ret = ve_send_with_fd(sock, "g", 1, fd);

        if (ret < 0)
                return ve_error_errno(err, -ret, "wake the child");
        return 0;
}

static void apply_report(const struct report *r, struct ve_child_result *res)
{
        if (r->kind == REPORT_PID) {
                res->pid = r->pid;
        } else if (r->kind == REPORT_ERROR && !res->failed) {
                res->failed = true;
                res->err.code = r->code;
                res->err.plain = r->plain != 0;
                res->err.command = r->command != 0;
                memcpy(res->err.msg, r->msg, sizeof(res->err.msg));
                res->err.msg[sizeof(res->err.msg) - 1] = '\0';
        }
}

int ve_child_collect(int sock, struct ve_child_result *res, struct ve_error *err)
{
        bool reset = false;

        for (;;) {
                struct report r;
                int fd;
                ssize_t n = ve_recv_with_fd(sock, &r, sizeof(r), &fd);

                /* ECONNRESET: the child died with a message of ours unread (the second
                 * go of ve_start()); the error is reported once, and its report is
                 * still queued behind it. */
                if (n == -ECONNRESET && !reset) {
                        reset = true;
                        continue;
                }
                if (n < 0)
                        return ve_error_errno(err, (int)-n, "read the child's report");
                if (n == 0)
                        return 0;
                if (fd >= 0) {
                        if (res->fd >= 0)
                                close(res->fd);
                        res->fd = fd;
                }
                if ((size_t)n == sizeof(r))
                        apply_report(&r, res);
        }
}

int ve_child_error(const struct ve_child_err *e, struct ve_error *err)
{
        if (e->command) {
                ve_error_errno(err, e->code, "%s", e->msg);
                err->code =
                    e->code == ENOENT || e->code == ENOTDIR ? VE_ENOCOMMAND : VE_ECANNOTEXEC;
                return -err->code;
        }
        if (e->plain)
                return ve_error_set(err, e->code, "%s", e->msg);
        return ve_error_errno(err, e->code, "%s", e->msg);
}

pid_t ve_clone3(uint64_t flags, int *pidfd, int cgroup_fd)
{
        struct clone_args args;

        memset(&args, 0, sizeof(args));
        args.flags = flags;
        if (flags & CLONE_PIDFD)
                args.pidfd = (uint64_t)(uintptr_t)pidfd;
        if (cgroup_fd >= 0) {
                args.flags |= CLONE_INTO_CGROUP;
                args.cgroup = (uint64_t)cgroup_fd;
        }
        if (!(flags & CLONE_PARENT))
                args.exit_signal = SIGCHLD;
        return (pid_t)syscall(SYS_clone3, &args, sizeof(args));
}

int ve_pidfd_open(pid_t pid)
{
        return (int)syscall(SYS_pidfd_open, pid, 0);
}

int ve_pidfd_send_signal(int pidfd, int sig)
{
        return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

int ve_openat2(int dirfd, const char *path, uint64_t flags, uint64_t resolve)
{
        struct open_how how;

        memset(&how, 0, sizeof(how));
        how.flags = flags;
        how.resolve = resolve;
        return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

void ve_child_reset_signals(void)
{
        struct sigaction sa;
        sigset_t none;

        /* Ignored signals survive execve: the guest must not inherit the daemon's
         * SIG_IGN of SIGPIPE (a `yes | head` would complain instead of dying). */
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_DFL;
        for (int sig = 1; sig < NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        sigaction(sig, &sa, NULL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
}
