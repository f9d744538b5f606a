/* ve_start(): clone the VE's init into its namespaces and cgroup, set up its
 * root filesystem from inside, and execve it. */
#include "ve/start.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/close_range.h>

#include "ve/caps.h"
#include "ve/cgroupfs.h"
#include "ve/child.h"
#include "ve/cleanup.h"
#include "ve/console.h"
#include "ve/devices.h"
#include "ve/idmap.h"
#include "ve/rootfs.h"
#include "ve/seccomp.h"

/* The cgroup namespace is not among these: the child unshares it once it is in
 * the VE's cgroup, so that cgroup becomes the root the VE sees. CLONE_NEWUSER
 * joins them when the VE has an idmap; the kernel makes the user namespace first,
 * so it owns the others. */
#define VE_CLONE_FLAGS (CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET)

static char *const default_init[] = { "/sbin/init", NULL };

/* init's whole environment: nothing of the daemon's leaks in. systemd reads
 * `container` to know it runs in one. */
static char *const init_env[] = {
        "container=ved",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "TERM=linux",
        NULL,
};

static int set_hostname(const struct ve_start_config *cfg, struct ve_child_err *e)
{
        char buf[16];
        const char *name = cfg->hostname;

        if (name == NULL) {
                snprintf(buf, sizeof(buf), "%u", cfg->ctid);
                name = buf;
        }
        if (sethostname(name, strlen(name)) < 0)
                return ve_child_fail(e, errno, "set hostname %s", name);
        return 0;
}

static int setup_root(int rootfd, int console, unsigned console_index, bool userns,
                      const struct ve_cgroupfs *cgroupfs, struct ve_lxcfs_fds *lxcfs,
                      struct ve_child_err *e)
{
        int ret;

        ret = ve_rootfs_mount_kernfs(rootfd, e);
        /* cgroupfs is NULL for a VE that does not want /sys/fs/cgroup and /run. */
        if (ret == 0 && cgroupfs != NULL)
                ret = ve_cgroupfs_mount(rootfd, cgroupfs, e);
        if (ret == 0 && cgroupfs != NULL)
                ret = ve_rootfs_mount_run(rootfd, e);
        /* lxcfs's meminfo, cpuinfo, uptime ...: after /proc is mounted and before
         * it is masked. */
        if (ret == 0)
                ret = ve_rootfs_mount_lxcfs(rootfd, lxcfs, e);
        if (ret == 0)
                ret = ve_devices_setup(rootfd, console, console_index, userns, e);
        if (ret == 0)
                ret = ve_rootfs_mask_kernfs(rootfd, e);
        if (ret == 0)
                ret = ve_rootfs_pivot(rootfd, e);
        return ret;
}

/* The root is opened while the child is still the host's root, who may pass
 * the 0700 ves/<ctid>/ directory; everything after runs as the VE's root. */
static int enter_root(const struct ve_start_config *cfg, int tree_fd, int *rootfd,
                      struct ve_child_err *e)
{
        int ret;

        ret = ve_rootfs_prepare(cfg->rootfs, tree_fd, rootfd, e);
        if (ret == 0 && ve_idmap_enabled(&cfg->idmap))
                ret = ve_idmap_become_root(e);
        if (ret == 0 && unshare(CLONE_NEWCGROUP) < 0)
                ret = ve_child_fail(e, errno, "unshare the cgroup namespace");
        return ret;
}

/* Runs in the child, as PID 1 of the new pid namespace, already in the VE's cgroup.
 * Without a cgroup fd it shares the daemon's memory (start()). The page cache a
 * process reads in is charged to the memory cgroup of its memory's owner, there
 * the daemon: init's binary is not read ahead then, so that it is charged to the
 * VE when init maps it. */
static int setup(const struct ve_start_config *cfg, int tree_fd, int console,
                 unsigned console_index, const struct ve_cgroupfs *cgroupfs,
                 struct ve_lxcfs_fds *lxcfs, struct ve_child_err *e)
{
        bool shared = cfg->cgroup.fd < 0; /* memory shared with the daemon: start() */
        int rootfd = -1, ret;

        umask(0);
        ret = enter_root(cfg, tree_fd, &rootfd, e);
        if (ret == 0 && !shared)
                ve_rootfs_prefetch(rootfd, (cfg->init_argv ? cfg->init_argv : default_init)[0]);
        if (ret == 0)
                ret = setup_root(rootfd, console, console_index, ve_idmap_enabled(&cfg->idmap),
                                 cgroupfs, lxcfs, e);
        if (rootfd >= 0)
                close(rootfd);
        if (ret < 0)
                return ret;
        ret = set_hostname(cfg, e);
        if (ret < 0)
                return ret;
        ret = ve_pty_make_stdio(console);
        if (ret < 0)
                return ve_child_fail(e, ret, "make /dev/console init's terminal");
        umask(022);
        /* Mark rather than close: the report socket must live until execve. */
        if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
                return ve_child_fail(e, errno, "close_range");
        return 0;
}

__attribute__((noreturn)) static void start_child(const struct ve_start_config *cfg, int sock,
                                                  int console, unsigned console_index,
                                                  const struct ve_cgroupfs *cgroupfs,
                                                  struct ve_lxcfs_fds *lxcfs)
{
        char *const *argv = cfg->init_argv ? cfg->init_argv : default_init;
        struct ve_child_err e = { 0 };
        int tree_fd = -1, ret;

        if (ve_child_wait_go_fd(sock, &tree_fd) < 0)
                _exit(127);
        ret = setup(cfg, tree_fd, console, console_index, cgroupfs, lxcfs, &e);
        if (ret == 0)
                ret = ve_caps_drop(&e);
        /* Last, so that nothing of the setup runs under the filter. */
        if (ret == 0)
                ret = ve_seccomp_load(&e);
        if (ret == 0)
                ret = ve_seccomp_load_notify(cfg->statfs_notify ? cfg->statfsd : -1, cfg->ctid,
                                             sock, &e);
        /* The parent's ready_cb (the network...) ran meanwhile; an EOF here is a
         * parent that died or gave up. */
        if (ret == 0 && cfg->ready_cb != NULL && ve_child_wait_go(sock) < 0)
                ret = ve_child_fail_plain(&e, EPIPE, "the daemon did not let init start");
        if (ret == 0) {
                ve_child_reset_signals();
                execve(argv[0], argv, init_env);
                /* What an admin meets with a template of another architecture (an
                 * i386 one where the kernel runs no 32-bit programs). */
                if (errno == ENOEXEC)
                        ve_child_fail_plain(&e, ENOEXEC,
                                            "execute %s: Exec format error (a program of "
                                            "another architecture, or a script without #!)",
                                            argv[0]);
                else
                        ve_child_fail(&e, errno, "execute %s", argv[0]);
        }
        ve_child_die(sock, &e);
}

/* --- the child ---------------------------------------------------------------
 *
 * It shares the daemon's memory until its execve (ve_spawn_begin()): the worker
 * that called ve_start() goes on meanwhile with the parent's part. It reads only
 * what the parent no longer changes: its own copy of the lxcfs trees, which the
 * parent closes on its side at once. glibc's clone() has no CLONE_INTO_CGROUP:
 * with a cgroup fd (cgroup v2) the child is forked (ve_clone3()). */

/* What the child gets, forked or not. */
struct child_args {
        const struct ve_start_config *cfg;
        const struct ve_cgroupfs *cgroupfs;
        struct ve_lxcfs_fds lxcfs; /* the child's */
        int csock, psock, master, slave;
        unsigned console_index;
};

/* The child's side. The parent's ends are closed in its own file table only:
 * without them, a daemon dying before "go" is an EOF on csock. */
__attribute__((noreturn)) static int child_main(void *data)
{
        struct child_args *a = data;

        close(a->psock);
        close(a->master);
        start_child(a->cfg, a->csock, a->slave, a->console_index, a->cgroupfs, &a->lxcfs);
}

/* The child is ours until reaped: kill and reap it on any failure after clone. */
static void kill_and_reap(int pidfd)
{
        ve_pidfd_send_signal(pidfd, SIGKILL);
        ve_proc_wait(pidfd, 0, &(int){ 0 }, NULL);
}

/* The child waits for "go" until it is in the VE's cgroup and, with a user
 * namespace, until its maps are written and its idmapped root is made. */
static int join_and_go(const struct ve_start_config *cfg, pid_t pid, int sock, struct ve_error *err)
{
        _cleanup_close_ int tree = -EBADF;
        int ret;

        if (cfg->cgroup.fd < 0 && cfg->cgroup.attach_cb != NULL) {
                ret = cfg->cgroup.attach_cb(pid, cfg->cgroup.data, err);
                if (ret < 0)
                        return ret;
        }
        if (ve_idmap_enabled(&cfg->idmap)) {
                ret = ve_idmap_write(pid, &cfg->idmap, err);
                if (ret < 0)
                        return ret;
                tree = cfg->root_cb != NULL ? cfg->root_cb(pid, cfg->root_data, err)
                                            : ve_idmap_clone_root(cfg->rootfs, pid, err);
                if (tree < 0)
                        return tree;
        }
        return ve_child_send_go_fd(sock, tree, err);
}

/* The parent's own setup (ready_cb, exec_cb) failed: a child that failed on its own
 * meanwhile (its VE's root refused, say) made it fail, as its pid's /proc went
 * away; its own report says why, and replaces ret's message. The child is killed
 * first, so a child waiting for its go reports nothing. */
static int child_reason(int sock, int pidfd, int ret, struct ve_error *err)
{
        struct ve_child_result res = { .fd = -EBADF };
        struct ve_error cerr = { 0 };

        ve_pidfd_send_signal(pidfd, SIGKILL);
        if (ve_child_collect(sock, &res, &cerr) == 0 && res.failed) {
                ve_error_clear(err);
                ret = ve_child_error(&res.err, err);
        }
        if (res.fd >= 0)
                close(res.fd);
        ve_error_clear(&cerr);
        return ret;
}

/* Until init's execve; *statfs_fd gets the copy of its statfs listener, the only
 * fd a start child reports. */
static int wait_exec(int sock, int *statfs_fd, struct ve_error *err)
{
        struct ve_child_result res = { .fd = -EBADF };
        int ret;

        ret = ve_child_collect(sock, &res, err);
        if (ret == 0 && res.failed)
                ret = ve_child_error(&res.err, err);
        if (ret < 0) {
                if (res.fd >= 0)
                        close(res.fd);
                return ret;
        }
        *statfs_fd = res.fd;
        return 0;
}

static int check_config(const struct ve_start_config *cfg, struct ve_error *err)
{
        struct stat st;
        int ret;

        if (cfg->rootfs == NULL || cfg->rootfs[0] != '/')
                return ve_error_set(err, EINVAL, "rootfs must be an absolute path");
        if (stat(cfg->rootfs, &st) < 0)
                return ve_error_errno(err, errno, "rootfs %s", cfg->rootfs);
        if (!S_ISDIR(st.st_mode))
                return ve_error_set(err, ENOTDIR, "rootfs %s is not a directory", cfg->rootfs);
        ret = ve_idmap_check(&cfg->idmap, err);
        if (ret < 0)
                return ret;
        return ve_seccomp_prepare(err);
}

static int start(const struct ve_start_config *cfg, struct ve_proc *out, struct ve_error *err)
{
        _cleanup_close_ int master = -EBADF, slave = -EBADF, psock = -EBADF, csock = -EBADF;
        _cleanup_close_ int pidfd = -EBADF;
        unsigned console_index = 0;
        struct ve_cgroupfs cgroupfs;
        struct ve_lxcfs_fds lxcfs;
        struct child_args args;
        struct ve_spawn sp = { 0 };
        bool spawned = false;
        uint64_t flags;
        int sv[2], ret;
        pid_t pid = -1;

        ret = check_config(cfg, err);
        if (ret < 0)
                return ret;
        /* Read now: the child must not allocate. */
        if (cfg->container_mounts) {
                ret = ve_cgroupfs_probe(&cgroupfs, err);
                if (ret < 0)
                        return ret;
        }
        ret = ve_pty_open("/dev/ptmx", &master, &slave, &console_index);
        if (ret < 0)
                return ve_error_errno(err, ret, "allocate the console pty");
        /* The VE's root owns its console, as on a machine: its getty and systemd open
         * /dev/console, which a pty of the host's root (unmapped in the VE) would
         * refuse. Group tty (5) of the VE, mode 0620. */
        if (ve_idmap_enabled(&cfg->idmap) &&
            (fchown(slave, cfg->idmap.uid_base, cfg->idmap.gid_base + 5) < 0 ||
             fchmod(slave, 0620) < 0))
                return ve_error_errno(err, errno, "give the console pty to the VE's root");
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return ve_error_errno(err, errno, "socketpair");
        psock = sv[0];
        csock = sv[1];
        flags = CLONE_PIDFD | VE_CLONE_FLAGS;
        if (ve_idmap_enabled(&cfg->idmap))
                flags |= CLONE_NEWUSER;
        /* Detached copies of lxcfs's file mounts, for the child to attach. */
        ve_rootfs_lxcfs_clone(cfg->lxcfs, &lxcfs);
        args = (struct child_args){ .cfg = cfg,
                                    .cgroupfs = cfg->container_mounts ? &cgroupfs : NULL,
                                    .lxcfs = lxcfs,
                                    .csock = csock,
                                    .psock = psock,
                                    .master = master,
                                    .slave = slave,
                                    .console_index = console_index };
        if (cfg->cgroup.fd < 0) {
                sp = (struct ve_spawn){ .fn = child_main,
                                        .arg = &args,
                                        .flags = (int)(flags & ~(uint64_t)CLONE_PIDFD) };
                ret = ve_spawn_begin(&sp, &pid, &pidfd);
                if (ret < 0) {
                        ve_rootfs_lxcfs_close(&lxcfs);
                        return ve_error_errno(err, -ret, "clone");
                }
                spawned = true;
        } else {
                pid = ve_clone3(flags, &pidfd, cfg->cgroup.fd);
                if (pid < 0) {
                        ve_rootfs_lxcfs_close(&lxcfs);
                        return ve_error_errno(err, errno, "clone3");
                }
        }
        if (pid == 0)
                child_main(&args);
        ve_rootfs_lxcfs_close(&lxcfs);
        close(steal_fd(&csock));
        ret = join_and_go(cfg, pid, psock, err);
        /* A child that failed meanwhile cannot take the second go: its own report,
         * read by wait_exec(), says why. */
        if (ret == 0 && cfg->ready_cb != NULL) {
                ret = cfg->ready_cb(pid, cfg->ready_data, err);
                if (ret == 0)
                        ve_child_send_go(psock, NULL);
                else
                        ret = child_reason(psock, pidfd, ret, err);
        }
        /* A child whose execve failed may be gone before exec_cb looks at it: its
         * own report says why. */
        if (ret == 0 && cfg->exec_cb != NULL) {
                ret = cfg->exec_cb(pid, cfg->ready_data, err);
                if (ret < 0)
                        ret = child_reason(psock, pidfd, ret, err);
        }
        if (ret == 0)
                ret = wait_exec(psock, &out->statfs_fd, err);
        if (ret == 0)
                ret = ve_proc_starttime(pid, &out->starttime, err);
        if (ret < 0)
                kill_and_reap(pidfd);
        if (spawned)
                ve_spawn_end(&sp);
        if (ret < 0) {
                ve_proc_close(out);
                return ret;
        }
        out->pid = pid;
        out->pidfd = steal_fd(&pidfd);
        out->console_fd = steal_fd(&master);
        out->console_peer = steal_fd(&slave);
        return 0;
}

int ve_start(const struct ve_start_config *cfg, struct ve_proc *out, struct ve_error *err)
{
        int ret;

        out->pid = 0;
        out->pidfd = -EBADF;
        out->console_fd = -EBADF;
        out->console_peer = -EBADF;
        out->statfs_fd = -EBADF;
        out->starttime = 0;
        ret = start(cfg, out, err);
        if (ret < 0)
                return ve_error_prefix(err, "start VE %u", cfg->ctid);
        return 0;
}
