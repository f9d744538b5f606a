/* ve_exec_spawn(): a command in a running VE, with pipes or a pty. */
#include "ve/exec.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <linux/close_range.h>

#include "ve/caps.h"
#include "ve/child.h"
#include "ve/cleanup.h"
#include "ve/console.h"
#include "ve/idmap.h"
#include "ve/seccomp.h"

#define VE_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define VE_NS_FLAGS                                                                                \
        (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWCGROUP)

static const char *const path_dirs[] = {
        "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin",
};

/* The host-side fds of the three pipes: [0] is what the command gets. */
struct stdio_pipes {
        int child[3];
        int parent[3];
};

/* execvpe over the VE's fixed PATH, not the daemon's, without allocating. */
static int exec_in_path(char *const *argv, char *const *envp, struct ve_child_err *e)
{
        char buf[PATH_MAX];
        int saved = ENOENT;

        e->command = true; /* a failure from here on is the command's own */
        if (strchr(argv[0], '/') != NULL) {
                execve(argv[0], argv, envp);
                return ve_child_fail(e, errno, "execute %s", argv[0]);
        }
        for (size_t i = 0; i < sizeof(path_dirs) / sizeof(path_dirs[0]); i++) {
                snprintf(buf, sizeof(buf), "%s/%s", path_dirs[i], argv[0]);
                execve(buf, argv, envp);
                if (errno != ENOENT && errno != ENOTDIR)
                        saved = errno;
        }
        return ve_child_fail(e, saved, "execute %s", argv[0]);
}

/* Lift fds above 2 first, so dup2 onto 0-2 cannot clobber one still needed. */
static int pipes_as_stdio(const int fds[3], struct ve_child_err *e)
{
        int high[3];

        if (setsid() < 0)
                return ve_child_fail(e, errno, "setsid");
        for (int i = 0; i < 3; i++) {
                high[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
                if (high[i] < 0)
                        return ve_child_fail(e, errno, "dup stdio");
        }
        for (int i = 0; i < 3; i++)
                if (dup2(high[i], i) < 0)
                        return ve_child_fail(e, errno, "dup stdio");
        return 0;
}

/* The command's process, in the VE's pid namespace; it reports only failures. */
__attribute__((noreturn)) static void run_command(const struct ve_exec_config *cfg, int sock,
                                                  const int stdio[3], int tty)
{
        char term[128];
        char *envp[] = { "PATH=" VE_PATH, "HOME=/root", NULL, NULL };
        struct ve_child_err e = { 0 };
        int ret;

        if (cfg->term != NULL) {
                snprintf(term, sizeof(term), "TERM=%s", cfg->term);
                envp[2] = term;
        }
        if (tty >= 0) {
                ret = ve_pty_make_stdio(tty);
                if (ret < 0)
                        ve_child_fail(&e, ret, "make the pty the terminal");
        } else {
                ret = pipes_as_stdio(stdio, &e);
        }
        if (ret == 0 && chdir("/") < 0)
                ret = ve_child_fail(&e, errno, "chdir /");
        if (ret == 0 && close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
                ret = ve_child_fail(&e, errno, "close_range");
        if (ret == 0)
                ret = ve_caps_drop(&e);
        if (ret == 0)
                ret = ve_seccomp_load(&e);
        if (ret == 0)
                ret = ve_seccomp_load_notify(cfg->statfs_notify ? cfg->statfsd : -1, cfg->ctid, -1,
                                             &e);
        if (ret == 0) {
                ve_child_reset_signals();
                exec_in_path(cfg->argv, envp, &e);
        }
        ve_child_die(sock, &e);
}

/* The command's stack while it shares the helper's memory (see helper()). */
#define COMMAND_STACK (256 * 1024)

struct command_args {
        const struct ve_exec_config *cfg;
        int sock;
        const int *stdio;
        int tty;
};

static int command_main(void *data)
{
        const struct command_args *a = data;

        run_command(a->cfg, a->sock, a->stdio, a->tty);
}

/* setns() with a pidfd joins the user namespace before the others, so the rest
 * are entered with the VE's credentials; joining it gives us no ids in it, so we
 * become its root next (uid 0 inside, the VE's base uid on the host). */
static int enter_ve(const struct ve_exec_config *cfg, struct ve_child_err *e)
{
        bool userns = ve_idmap_enabled(&cfg->idmap);

        /* Before anything of the VE can see us: see exec.h. */
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                return ve_child_fail(e, errno, "prctl PR_SET_DUMPABLE");
        if (setns(cfg->init_pidfd, VE_NS_FLAGS | (userns ? CLONE_NEWUSER : 0)) < 0)
                return ve_child_fail(e, errno, "enter the VE's namespaces");
        return userns ? ve_idmap_become_root(e) : 0;
}

/* The host-side helper: enters the VE, forks the command as the daemon's child,
 * reports its pid (and pty master), and exits. */
__attribute__((noreturn)) static void helper(const struct ve_exec_config *cfg, int sock,
                                             const int stdio[3], pid_t *cmd_pid)
{
        char stack[COMMAND_STACK] __attribute__((aligned(16)));
        struct ve_child_err e = { 0 };
        int master = -1, tty = -1, ret;
        uint64_t all = ~0ULL;
        pid_t pid;

        /* Every signal blocked, the kernel's way (glibc's sigprocmask leaves two
         * out), before the command exists: from its fork until its execve it runs
         * with the daemon's handlers and is a process of the VE, which may signal
         * it. libuv's SIGTERM handler there would tell the daemon's loop to shut
         * down. run_command() restores the defaults, then unblocks. */
        syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, sizeof(all));
        if (ve_child_wait_go(sock) < 0)
                _exit(127);
        if (enter_ve(cfg, &e) < 0)
                ve_child_die(sock, &e);
        if (cfg->pty) {
                ret = ve_pty_open("/dev/ptmx", &master, &tty, NULL);
                if (ret < 0)
                        ve_child_fail(&e, ret, "open a pty in the VE");
                /* The window's size before the command runs: set after it, a
                 * quick `stty size` could still read 0 0. */
                else if (cfg->rows && cfg->cols &&
                         ioctl(master, TIOCSWINSZ,
                               &(struct winsize){ .ws_row = cfg->rows, .ws_col = cfg->cols }) < 0)
                        ret = ve_child_fail(&e, errno, "set the pty's window size");
                if (ret < 0)
                        ve_child_die(sock, &e);
        }
        /* The command runs on a stack of ours and shares our memory (the
         * daemon's) until its execve, while we wait (CLONE_VM | CLONE_VFORK, as
         * posix_spawn does). Its own file table, signal handlers and credentials
         * are copies. */
        pid = clone(command_main, stack + sizeof(stack),
                    CLONE_VM | CLONE_VFORK | CLONE_PARENT | CLONE_PARENT_SETTID,
                    &(struct command_args){ cfg, sock, stdio, tty }, cmd_pid);
        if (pid < 0) {
                ve_child_fail(&e, errno, "fork in the VE");
                ve_child_die(sock, &e);
        }
        ve_child_send_pid(sock, pid);
        if (master >= 0)
                ve_child_send_fd(sock, master);
        _exit(0);
}

static void close_fds(int *fds, int n)
{
        for (int i = 0; i < n; i++)
                if (fds[i] >= 0) {
                        close(fds[i]);
                        fds[i] = -EBADF;
                }
}

static int make_pipes(struct stdio_pipes *p, struct ve_error *err)
{
        for (int i = 0; i < 3; i++) {
                int fds[2];

                if (pipe2(fds, O_CLOEXEC) < 0)
                        return ve_error_errno(err, errno, "pipe");
                /* stdin flows to the command, stdout and stderr from it. */
                p->child[i] = i == 0 ? fds[0] : fds[1];
                p->parent[i] = i == 0 ? fds[1] : fds[0];
        }
        return 0;
}

struct helper_args {
        const struct ve_exec_config *cfg;
        int csock, psock;
        const int *stdio;
        pid_t *cmd_pid; /* where the daemon reads it (run_helper()) */
};

static int helper_main(void *data)
{
        const struct helper_args *a = data;

        close(a->psock);
        helper(a->cfg, a->csock, a->stdio, a->cmd_pid);
}

static unsigned start_timeout(const struct ve_exec_config *cfg)
{
        return cfg->start_timeout_ms ? cfg->start_timeout_ms : VE_EXEC_START_TIMEOUT_MS;
}

/* Until the command's execve, the helper waits in clone (CLONE_VFORK) and the
 * command is a process of the VE, which its root may stop (SIGSTOP cannot be
 * blocked). A command seen stopped is killed at once, so that the helper goes
 * on and ends, and the exec fails: waiting for a SIGCONT would let a VE hold a
 * worker of the daemon per exec into it. */
static int command_stuck(const struct ve_exec_config *cfg, const pid_t *cmd_pid, bool stopped,
                         struct ve_error *err)
{
        pid_t cmd = __atomic_load_n(cmd_pid, __ATOMIC_ACQUIRE);

        /* Our child (CLONE_PARENT), reaped by no one else: its pid is its own. */
        if (cmd > 0) {
                kill(cmd, SIGKILL);
                waitpid(cmd, NULL, __WALL);
        }
        if (stopped)
                return ve_error_set(err, VE_ECONFLICT,
                                    "a process of the VE stopped the command before it started");
        return ve_error_set(err, VE_ECONFLICT,
                            "the command had not started after %u ms: a process of the VE may "
                            "have stopped it",
                            start_timeout(cfg));
}

/* The helper's and the command's reports, until the start timeout; every
 * STOP_CHECK_MS the command (once it exists) is checked for being stopped. Only
 * until the helper reports its pid: the helper's clone (CLONE_VFORK) returns once
 * the command has exec'd, and what the VE then does to its own program (stop it
 * too) is its business, not a command that never started. */
#define STOP_CHECK_MS 50

static int collect_reports(const struct ve_exec_config *cfg, int psock, const pid_t *cmd_pid,
                           struct ve_child_result *res, struct ve_error *err)
{
        uint64_t deadline = ve_now_ms() + start_timeout(cfg);

        for (;;) {
                uint64_t now = ve_now_ms(), left = deadline > now ? deadline - now : 1;
                unsigned slice = left < STOP_CHECK_MS ? (unsigned)left : STOP_CHECK_MS;
                pid_t cmd;
                char state;
                int ret;

                ret = ve_child_collect_until(psock, res, slice, err);
                if (ret != -ETIMEDOUT)
                        return ret;
                cmd = __atomic_load_n(cmd_pid, __ATOMIC_ACQUIRE);
                state = cmd > 0 && res->pid <= 0 ? ve_proc_state(cmd) : '\0';
                if (state == 'T' || state == 't')
                        return command_stuck(cfg, cmd_pid, true, err);
                if (ve_now_ms() >= deadline)
                        return command_stuck(cfg, cmd_pid, false, err);
        }
}

/* Run the helper, let it go, and gather what it and the command report. The
 * helper shares the daemon's memory (ve_spawn_begin()), except with a cgroup fd
 * (cgroup v2), which only clone3 takes: then it is forked. */
static int run_helper_with(const struct ve_exec_config *cfg, const struct stdio_pipes *p,
                           pid_t *cmd_pid, struct ve_child_result *res, struct ve_error *err)
{
        _cleanup_close_ int psock = -EBADF, csock = -EBADF, pidfd = -EBADF;
        struct helper_args args;
        struct ve_spawn sp = { 0 };
        bool spawned = false;
        int sv[2], ret;
        pid_t pid;

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return ve_error_errno(err, errno, "socketpair");
        psock = sv[0];
        csock = sv[1];
        args = (struct helper_args){
                .cfg = cfg, .csock = csock, .psock = psock, .stdio = p->child, .cmd_pid = cmd_pid
        };
        if (cfg->cgroup.fd < 0) {
                sp = (struct ve_spawn){ .fn = helper_main, .arg = &args };
                ret = ve_spawn_begin(&sp, &pid, &pidfd);
                if (ret < 0)
                        return ve_error_errno(err, -ret, "clone");
                spawned = true;
        } else {
                pid = ve_clone3(CLONE_PIDFD, &pidfd, cfg->cgroup.fd);
                if (pid < 0)
                        return ve_error_errno(err, errno, "clone3");
        }
        if (pid == 0)
                helper_main(&args);
        close(steal_fd(&csock));
        ret = 0;
        if (cfg->cgroup.fd < 0 && cfg->cgroup.attach_cb != NULL)
                ret = cfg->cgroup.attach_cb(pid, cfg->cgroup.data, err);
        if (ret == 0)
                ret = ve_child_send_go(psock, err);
        if (ret == 0) {
                ret = collect_reports(cfg, psock, cmd_pid, res, err);
        }
        if (ret < 0)
                ve_pidfd_send_signal(pidfd, SIGKILL);
        ve_proc_wait(pidfd, 0, &(int){ 0 }, NULL);
        if (spawned)
                ve_spawn_end(&sp);
        return ret;
}

/* The helper writes the command's pid where the daemon reads it: in the
 * daemon's memory, which a spawned helper shares; a forked one (cgroup v2)
 * writes it in a page shared with the daemon. */
static int run_helper(const struct ve_exec_config *cfg, const struct stdio_pipes *p,
                      struct ve_child_result *res, struct ve_error *err)
{
        pid_t here = 0, *cmd_pid = &here;
        int ret;

        if (cfg->cgroup.fd >= 0) {
                cmd_pid = mmap(NULL, sizeof(*cmd_pid), PROT_READ | PROT_WRITE,
                               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
                if (cmd_pid == MAP_FAILED)
                        return ve_error_errno(err, errno, "mmap");
        }
        ret = run_helper_with(cfg, p, cmd_pid, res, err);
        if (cmd_pid != &here)
                munmap(cmd_pid, sizeof(*cmd_pid));
        return ret;
}

/* A command that was forked but failed (or whose pidfd we cannot get) is reaped
 * here, so a failed spawn leaves nothing behind. */
static int finish(struct ve_child_result *res, struct ve_exec_proc *out, struct ve_error *err)
{
        int ret = 0;

        if (res->failed)
                ret = ve_child_error(&res->err, err);
        else if (res->pid <= 0)
                ret = ve_error_set(err, ECHILD, "the exec helper died");
        if (ret == 0) {
                out->pidfd = ve_pidfd_open(res->pid);
                if (out->pidfd < 0)
                        ret = ve_error_errno(err, errno, "pidfd_open %d", (int)res->pid);
        }
        if (ret < 0 && res->pid > 0) {
                kill(res->pid, SIGKILL);
                waitpid(res->pid, NULL, 0);
        }
        if (ret == 0)
                out->pid = res->pid;
        return ret;
}

static int spawn(const struct ve_exec_config *cfg, struct ve_exec_proc *out, struct ve_error *err)
{
        struct stdio_pipes p = { { -EBADF, -EBADF, -EBADF }, { -EBADF, -EBADF, -EBADF } };
        struct ve_child_result res = { .fd = -EBADF };
        int ret = 0;

        if (cfg->argv == NULL || cfg->argv[0] == NULL)
                return ve_error_set(err, EINVAL, "no command given");
        ret = ve_idmap_check(&cfg->idmap, err);
        if (ret == 0)
                ret = ve_seccomp_prepare(err);
        if (ret < 0)
                return ret;
        if (!cfg->pty)
                ret = make_pipes(&p, err);
        if (ret == 0)
                ret = run_helper(cfg, &p, &res, err);
        close_fds(p.child, 3);
        if (ret == 0)
                ret = finish(&res, out, err);
        if (ret < 0) {
                close_fds(p.parent, 3);
                close_fds(&res.fd, 1);
                ve_exec_proc_close(out);
                return ret;
        }
        out->stdin_fd = p.parent[0];
        out->stdout_fd = p.parent[1];
        out->stderr_fd = p.parent[2];
        out->pty_fd = res.fd;
        return 0;
}

int ve_exec_spawn(const struct ve_exec_config *cfg, struct ve_exec_proc *out, struct ve_error *err)
{
        int ret;

        *out = (struct ve_exec_proc){ .pid = 0,
                                      .pidfd = -EBADF,
                                      .stdin_fd = -EBADF,
                                      .stdout_fd = -EBADF,
                                      .stderr_fd = -EBADF,
                                      .pty_fd = -EBADF };
        ret = spawn(cfg, out, err);
        if (ret < 0)
                return ve_error_prefix(err, "exec %s in the VE", cfg->argv ? cfg->argv[0] : "");
        return 0;
}

void ve_exec_proc_close(struct ve_exec_proc *p)
{
        close_fds(&p->pidfd, 1);
        close_fds(&p->stdin_fd, 1);
        close_fds(&p->stdout_fd, 1);
        close_fds(&p->stderr_fd, 1);
        close_fds(&p->pty_fd, 1);
}

int ve_exec_resize(int master_fd, unsigned short rows, unsigned short cols, struct ve_error *err)
{
        struct winsize ws = { .ws_row = rows, .ws_col = cols };

        if (ioctl(master_fd, TIOCSWINSZ, &ws) < 0)
                return ve_error_errno(err, errno, "set the window size");
        return 0;
}
