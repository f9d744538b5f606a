/* Running a command inside a running VE (`vectl exec`, `vectl enter`).
 *
 * The command is the guest's own binary, run as uid 0 in every namespace of the
 * VE's init and in the VE's cgroup, with cwd "/" and the environment
 * PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin, HOME=/root and
 * TERM (when given); nothing else of the daemon leaks in: every fd but 0, 1 and 2
 * is closed at execve.
 *
 * How: a short-lived host child, which shares the daemon's memory (ve/child.h;
 * forked with a cgroup fd), marks that memory non-dumpable (PR_SET_DUMPABLE 0;
 * ved is so from its start), joins the init's namespaces with setns(pidfd,
 * CLONE_NEW*) (the user namespace among them when cfg->idmap has a count,
 * becoming the VE's root), and clones the command's process with CLONE_PARENT,
 * so that process is the daemon's own child (reapable through its pidfd) and
 * lives in the VE's pid namespace. Until its
 * execve that process still runs the daemon's image inside the VE; being
 * non-dumpable, its /proc/<pid>/exe, /proc/<pid>/mem and ptrace are closed to the
 * VE's root (the runc and LXC answer to CVE-2019-5736), and execve of the guest
 * binary resets it. With the user namespace the process is the VE's root, host
 * uid <base>, which could not write the daemon's binary even if it reached it.
 * The command runs under the same bounding set (caps.h) and seccomp filter
 * (seccomp.h) as the VE's init.
 *
 * A pty is opened inside the VE, from the VE's own devpts (/dev/ptmx after
 * entering its mount namespace), and its master is passed back over a unix
 * socket with SCM_RIGHTS: a pty of the host's devpts would put a host object in the
 * VE and show up in the host's /dev/pts. The slave is opened with TIOCGPTPEER,
 * never by a path the VE controls.
 */
#ifndef VE_EXEC_H
#define VE_EXEC_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"
#include "start.h"

struct ve_exec_config {
        int init_pidfd;               /* the VE's init (struct ve_proc.pidfd) */
        struct ve_cgroup_join cgroup; /* the VE's cgroup, as for ve_start() */
        char *const *argv;            /* argv[0]: a path in the VE, or a name looked up in PATH */
        const char *term;             /* TERM value, or NULL to leave TERM unset */
        bool pty;                     /* a terminal instead of three pipes */
        unsigned short rows, cols;    /* pty mode: initial window size, 0 to leave it */
        struct ve_idmap idmap;        /* the VE's (as given to ve_start); count 0: none */
        uint32_t ctid;                /* for ve-statfsd's log */
        bool statfs_notify;           /* as in struct ve_start_config */
        int statfsd;
        /* How long the command may take to reach its execve; 0: the default. */
        unsigned start_timeout_ms;
};

/* The command reaches its execve in milliseconds; a process of the VE can stop
 * it before that (exec.c). */
#define VE_EXEC_START_TIMEOUT_MS 30000

struct ve_exec_proc {
        pid_t pid;     /* host pid; the caller's child */
        int pidfd;     /* O_CLOEXEC; poll it, then ve_proc_wait() for the exit status */
        int stdin_fd;  /* pipe mode: write end of the command's stdin, else -EBADF */
        int stdout_fd; /* pipe mode: read end of its stdout, else -EBADF */
        int stderr_fd; /* pipe mode: read end of its stderr, else -EBADF */
        int pty_fd;    /* pty mode: the master (stdin, stdout and stderr), else -EBADF */
};

/* Start cfg->argv in the VE. All fds in *out are O_CLOEXEC and blocking (set
 * O_NONBLOCK for an event loop); the caller owns them (ve_exec_proc_close()) and
 * must reap out->pid. A command that cannot be executed (not found, not in the VE)
 * is an error here, with no process left. Thread-safe. */
int ve_exec_spawn(const struct ve_exec_config *cfg, struct ve_exec_proc *out, struct ve_error *err);

/* Close every fd of p; safe on a closed one. Does not reap. */
void ve_exec_proc_close(struct ve_exec_proc *p);

/* Set the window size of a pty master (TIOCSWINSZ); the command gets SIGWINCH. */
int ve_exec_resize(int master_fd, unsigned short rows, unsigned short cols, struct ve_error *err);

#endif
