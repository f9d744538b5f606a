/* Raw clone3 and the report channel between the daemon and its setup children. */
#include "ve/child.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
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

uint64_t ve_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Until sock is readable (or hung up): 0, or -ETIMEDOUT past deadline (ms,
 * CLOCK_MONOTONIC; 0: none). */
static int wait_readable(int sock, uint64_t deadline)
{
        struct pollfd p = { .fd = sock, .events = POLLIN };

        while (deadline != 0) {
                uint64_t now = ve_now_ms();
                int r;

                if (now >= deadline)
                        return -ETIMEDOUT;
                r = poll(&p, 1, (int)(deadline - now));
                if (r > 0)
                        return 0;
                if (r < 0 && errno != EINTR)
                        return -errno;
        }
        return 0;
}

int ve_child_collect(int sock, struct ve_child_result *res, struct ve_error *err)
{
        return ve_child_collect_until(sock, res, 0, err);
}

int ve_child_collect_until(int sock, struct ve_child_result *res, unsigned timeout_ms,
                           struct ve_error *err)
{
        uint64_t deadline = timeout_ms > 0 ? ve_now_ms() + timeout_ms : 0;
        bool reset = false;

        for (;;) {
                struct report r;
                int fd, ret = wait_readable(sock, deadline);
                ssize_t n;

                if (ret == -ETIMEDOUT)
                        return -ETIMEDOUT;
                if (ret < 0)
                        return ve_error_errno(err, -ret, "wait for the child's report");
                n = ve_recv_with_fd(sock, &r, sizeof(r), &fd);
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

static int spawned_main(void *data)
{
        struct ve_spawn *s = data;
        uint64_t one = 1;

        (void)!write(s->ready, &one, sizeof(one));
        close(s->ready);
        return s->fn(s->arg);
}

static void *spawner(void *data)
{
        struct ve_spawn *s = data;
        uint64_t all = ~0ULL, one = 1;

        /* Every signal blocked the kernel's way (glibc's sigprocmask leaves two out)
         * before the child exists. */
        syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, sizeof(all));
        if (clone(spawned_main, s->stack + VE_SPAWN_STACK,
                  s->flags | CLONE_VM | CLONE_VFORK | CLONE_PARENT_SETTID | SIGCHLD, s,
                  &s->pid) < 0) {
                s->err = errno;
                (void)!write(s->ready, &one, sizeof(one));
        }
        return NULL;
}

int ve_spawn_begin(struct ve_spawn *s, pid_t *pid, int *pidfd)
{
        pthread_attr_t attr;
        bool thread = false;
        uint64_t n;
        ssize_t r;
        int ret;

        s->pid = 0;
        s->err = 0;
        s->stack = mmap(NULL, VE_SPAWN_STACK, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (s->stack == MAP_FAILED)
                return -errno;
        s->ready = eventfd(0, EFD_CLOEXEC);
        if (s->ready < 0) {
                ret = -errno;
                munmap(s->stack, VE_SPAWN_STACK);
                return ret;
        }
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 64 * 1024);
        ret = -pthread_create(&s->thread, &attr, spawner, s);
        pthread_attr_destroy(&attr);
        thread = ret == 0;
        /* Written once, by the child as it begins or by the spawner if clone failed. */
        while (ret == 0 && (r = read(s->ready, &n, sizeof(n))) != sizeof(n))
                if (r >= 0 || errno != EINTR)
                        ret = -EIO;
        if (ret == 0 && s->err != 0)
                ret = -s->err;
        *pid = __atomic_load_n(&s->pid, __ATOMIC_ACQUIRE);
        if (ret == 0) {
                /* Our child, not reaped before we wait for it: its pid is its own. */
                *pidfd = ve_pidfd_open(*pid);
                if (*pidfd < 0)
                        ret = -errno;
        }
        /* A child that runs must end before its spawner can be joined. */
        if (ret < 0 && s->err == 0 && *pid > 0) {
                kill(*pid, SIGKILL);
                waitpid(*pid, NULL, __WALL);
        }
        if (ret < 0 && thread)
                pthread_join(s->thread, NULL);
        if (ret < 0) {
                close(s->ready);
                munmap(s->stack, VE_SPAWN_STACK);
        }
        return ret;
}

void ve_spawn_end(struct ve_spawn *s)
{
        pthread_join(s->thread, NULL);
        close(s->ready);
        munmap(s->stack, VE_SPAWN_STACK);
}
