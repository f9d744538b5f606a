/* The short-lived children of ve_start() and ve_exec_spawn(), and how they talk
 * back to the daemon. Internal to ve/.
 *
 * The daemon is multi-threaded (libuv's worker pool), and these children are made
 * with clone (ve_spawn_begin()) or the raw clone3 syscall, so glibc's fork
 * handlers never run in them: a malloc or stdio lock another thread held at clone
 * time stays held forever. Between clone and execve a child therefore only makes
 * system calls, and formats its messages with vsnprintf into stack buffers (plain
 * %s/%d/%u conversions take no lock and do not allocate). Nothing in this file
 * allocates.
 *
 * Report channel: an AF_UNIX SOCK_SEQPACKET socketpair made with SOCK_CLOEXEC. The
 * daemon sends one "go" byte when the child may proceed (after it joined the cgroup
 * and, with a user namespace, after the uid/gid maps are written; the idmapped
 * root comes along as an fd), and reads reports until end of file, which
 * comes when every child copy of the socket is gone: at a successful execve (the
 * socket is close-on-exec) or at exit. An error report is the child's last word.
 */
#ifndef VE_CHILD_H
#define VE_CHILD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

/* A child's error: the errno and what was being done, as text. plain: do not
 * append strerror(code) (the message says it all). */
struct ve_child_err {
        int code;
        bool plain;
        bool command; /* the execve of the command asked for failed: see ve_child_error() */
        char msg[256];
};

/* Fill e and return -code. */
int ve_child_fail(struct ve_child_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same without strerror appended by the parent. */
int ve_child_fail_plain(struct ve_child_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* What the parent learnt from the report channel. */
struct ve_child_result {
        pid_t pid;   /* a grandchild's host pid, or 0 */
        int fd;      /* an fd passed with SCM_RIGHTS (O_CLOEXEC), or -EBADF */
        bool failed; /* an error report came: see err */
        struct ve_child_err err;
};

/* Child side. Each returns 0 or -errno and never allocates. */
int ve_child_wait_go(int sock);
/* The same, taking the fd that came with "go" (O_CLOEXEC), or -1 when none did. */
int ve_child_wait_go_fd(int sock, int *fd);
int ve_child_send_pid(int sock, pid_t pid);
int ve_child_send_fd(int sock, int fd);
/* Report e (best effort) and _exit(127). */
__attribute__((noreturn)) void ve_child_die(int sock, const struct ve_child_err *e);

/* Parent side. */
int ve_child_send_go(int sock, struct ve_error *err);
/* "go" with fd passed along (SCM_RIGHTS) when fd >= 0; the caller keeps its copy. */
int ve_child_send_go_fd(int sock, int fd, struct ve_error *err);

/* One message of len bytes on sock, with fd as SCM_RIGHTS when fd >= 0 (retried
 * on EINTR; MSG_NOSIGNAL). 0 or -errno. Async-signal-safe: children use it. */
int ve_send_with_fd(int sock, const void *buf, size_t len, int fd);

/* Receive one message of at most len bytes, and *fd (O_CLOEXEC) when one came
 * with it, else -1. The length, or -errno; -EBADMSG (no fd kept) when the
 * message or its fd did not fit. Retried on EINTR. */
ssize_t ve_recv_with_fd(int sock, void *buf, size_t len, int *fd);

/* The same with up to VE_PASS_FDS_MAX fds: ve_send_with_fds() passes fds[0..n),
 * ve_recv_with_fds() fills fds[0..max) (-1 where none came) and refuses, closing
 * all, a message with more than max. */
#define VE_PASS_FDS_MAX 4
int ve_send_with_fds(int sock, const void *buf, size_t len, const int *fds, unsigned n);
ssize_t ve_recv_with_fds(int sock, void *buf, size_t len, int *fds, unsigned max);
/* Read reports until end of file into res (res->fd starts at -EBADF; the caller
 * owns and closes it). Returns -errno only when the channel itself fails. */
int ve_child_collect(int sock, struct ve_child_result *res, struct ve_error *err);
/* The same, giving up after timeout_ms (0: never) with -ETIMEDOUT, err left
 * alone: what came until then is in res. */
int ve_child_collect_until(int sock, struct ve_child_result *res, unsigned timeout_ms,
                           struct ve_error *err);
/* CLOCK_MONOTONIC in milliseconds: the clock of the deadlines here. */
uint64_t ve_now_ms(void);
/* Turn a child's error into err; returns -code. */
int ve_child_error(const struct ve_child_err *e, struct ve_error *err);

/* Raw clone3 that returns like fork(): 0 in the child, the pid in the parent,
 * -1 with errno on failure. flags may hold CLONE_PIDFD (the fd goes to *pidfd,
 * close-on-exec) and CLONE_PARENT (then exit_signal is 0, as the kernel demands);
 * cgroup_fd >= 0 adds CLONE_INTO_CGROUP. No stack is given: as with fork, the child
 * continues on a copy of the caller's stack, so CLONE_VM must not be set. */
pid_t ve_clone3(uint64_t flags, int *pidfd, int cgroup_fd);

/* A child that shares the daemon's memory until its execve or end (CLONE_VM |
 * CLONE_VFORK), as posix_spawn's does. A fork (clone3 without CLONE_VM) copies
 * the daemon's ~400 mappings, and while the child lives every page a thread of
 * the daemon writes is copied again, with a TLB shootdown across its CPUs: on a
 * VM, the largest part of a start's or an exec's CPU time.
 *
 * The child is cloned by a spawner thread of its own that does nothing but wait
 * in clone until the child's execve or end, so the child's errno (and any other
 * thread-local variable) is that thread's, which nothing else uses meanwhile.
 * The caller goes on at once, with the pid the kernel wrote before the child
 * ran and a pidfd opened on it. Every signal is blocked in the child (it would
 * run the daemon's handlers on the daemon's memory) until it restores them
 * (ve_child_reset_signals()). It runs fn(arg) on a stack of VE_SPAWN_STACK
 * bytes; fn must not return (it execs or _exits), and must not allocate (see
 * above); everything it reads must stay unchanged until it ends or execs.
 *
 * A child that joins a VE's pid namespace while it shares this memory (the
 * exec's command) must find it non-dumpable, or the VE's root could trace it and
 * read or write the daemon's memory: the exec helper makes it so (exec.h), and
 * ved is so from its start. */
#define VE_SPAWN_STACK (1024 * 1024)
struct ve_spawn {
        int (*fn)(void *arg);
        void *arg;
        int flags; /* clone flags besides CLONE_VM, CLONE_VFORK and SIGCHLD */
        /* ve_spawn_begin()'s: */
        char *stack;
        int ready;
        pid_t pid; /* written by the kernel before the child runs (CLONE_PARENT_SETTID) */
        int err;   /* clone's errno */
        pthread_t thread;
};

/* Start the child; its pid and a pidfd of it (close-on-exec) once it runs. Then
 * ve_spawn_end() after its execve or end. A failure leaves nothing behind: a
 * child that ran is killed and reaped. 0 or -errno. */
int ve_spawn_begin(struct ve_spawn *s, pid_t *pid, int *pidfd);
/* The child has exec'd or ended (or was killed and reaped): join its spawner. */
void ve_spawn_end(struct ve_spawn *s);

/* In a child before execve: every signal back to its default action, none blocked. */
void ve_child_reset_signals(void);

int ve_pidfd_open(pid_t pid);
int ve_pidfd_send_signal(int pidfd, int sig);
int ve_openat2(int dirfd, const char *path, uint64_t flags, uint64_t resolve);

#endif
