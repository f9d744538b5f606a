/* Starting a VE's init, and finding it again.
 *
 * ve_start() runs the VE's init as PID 1 in new pid, mount, uts, ipc, net and
 * cgroup namespaces, inside the VE's cgroup, on the VE's root filesystem. No
 * helper process stays behind: init is the caller's own child (the daemon holds
 * it by pidfd), and when the daemon exits init is reparented and keeps running.
 *
 * Until its execve, init's process shares the daemon's memory (CLONE_VM |
 * CLONE_VFORK from a spawner thread, see start.c) rather than a copy of it; with a
 * cgroup v2 fd (CLONE_INTO_CGROUP) it is forked with clone3.
 *
 * With an idmap (struct ve_idmap, count > 0) init also gets a user namespace,
 * created first by the same clone so that it owns every other namespace of the
 * VE: the VE's root has CAP_SYS_ADMIN over its own mount, net, uts, ipc, pid and
 * cgroup namespaces and over nothing of the host. The parent writes uid_map and
 * gid_map ("0 <base> <count>") while the child waits for "go" (see child.h), and
 * hands it an idmapped clone of the rootfs (see idmap.h), so the private area
 * keeps guest ids 0-65535 on disk while the VE's processes are host ids
 * base..base+65535. The VE's init then runs without sys_module, sys_rawio,
 * sys_time and the other capabilities of caps.h in its bounding set, under the
 * seccomp filter of seccomp.h.
 */
#ifndef VE_START_H
#define VE_START_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

/* How a new process is put in the VE's cgroup, so ve/ needs no cgroup backend:
 * fd >= 0: a cgroup v2 directory, used with clone3's CLONE_INTO_CGROUP (the
 *          process is born in the cgroup; quota_cgroup_open_fd()).
 * else attach_cb, when not NULL, is called from the parent with the new host pid
 *          before the child proceeds (quota_cgroup_attach_cb() with a struct
 *          quota_cgroup_target as data). 0 or -errno with err filled.
 * Neither: the process stays in the caller's cgroup (tests only). */
struct ve_cgroup_join {
        int fd;
        int (*attach_cb)(pid_t pid, void *data, struct ve_error *err);
        void *data;
};

/* A VE's user namespace: guest uids and gids 0..count-1 are host ids uid_base..
 * and gid_base..; count is VE_IDMAP_COUNT. A zeroed struct (count 0) means no user
 * namespace: the VE's root is the host's root (tests of the runtime only; the
 * daemon always passes the VE's range). */
struct ve_idmap {
        uint32_t uid_base, gid_base, count;
};

#define VE_IDMAP_COUNT 65536u

struct ve_start_config {
        uint32_t ctid;
        const char *rootfs;     /* host path of the mounted private area */
        const char *hostname;   /* NULL: the CTID in decimal */
        char *const *init_argv; /* NULL: {"/sbin/init", NULL}; argv[0] is a path in the VE */
        struct ve_cgroup_join cgroup;
        struct ve_idmap idmap; /* count 0: no user namespace */
        /* /sys/fs/cgroup (the host's hierarchies, rooted at the VE's cgroup) and /run
         * tmpfs with /run/systemd/container, as systemd wants a container (see
         * cgroupfs.h). The daemon always sets it; the caller delegates the VE's
         * cgroup to its root first (quota_cgroup_delegate()). */
        bool container_mounts;
        /* lxcfs's files (ve_rootfs_lxcfs_open(), borrowed) that go over the VE's;
         * NULL: none. */
        const struct ve_lxcfs_fds *lxcfs;
        /* When statfs_notify: a socket connected to ve-statfsd (statfs_notify.h), to
         * which init's statfs notification filter goes. */
        bool statfs_notify;
        int statfsd;
        /* Called in the parent with the child's host pid while the child sets up
         * the VE's root (its mounts, /dev, pivot), so that what the host sets up
         * from outside (the VE's network, the host's view of its files) runs
         * alongside instead of after; the child waits for it before its execve,
         * so init never runs without it. 0, or -errno with err filled: the child
         * is killed and the start fails. NULL: nothing to wait for. */
        int (*ready_cb)(pid_t pid, void *data, struct ve_error *err);
        void *ready_data;
        /* Called in the parent (with ready_data) once the child goes on to its
         * execve, for what init need not wait for (the host's view of the VE's
         * files): it runs while init execs. 0, or -errno with err filled: init is
         * killed and the start fails. NULL: nothing. */
        int (*exec_cb)(pid_t pid, void *data, struct ve_error *err);
        /* With a user namespace: the VE's root as a detached mount (an fd the
         * child attaches over rootfs), made once the child's maps are written;
         * NULL: an idmapped clone of the mount at rootfs (ve_idmap_clone_root()).
         * A layered VE's overlay (layer.h). */
        int (*root_cb)(pid_t pid, void *data, struct ve_error *err);
        void *root_data;
};

/* A running VE init as the daemon holds it. */
struct ve_proc {
        pid_t pid;          /* host pid */
        int pidfd;          /* O_CLOEXEC; poll it for exit, reap with ve_proc_wait() */
        uint64_t starttime; /* field 22 of /proc/<pid>/stat: with pid, names the process */
        int console_fd;     /* host pty master of /dev/console (O_CLOEXEC), or -EBADF */
        int console_peer;   /* a slave fd of it, kept so that the master never reads EIO
                             * while no VE process has /dev/console open; or -EBADF */
        int statfs_fd;      /* the daemon's copy of init's statfs listener, or -EBADF */
};

/* Start the VE's init. On success *out is filled and owned by the caller
 * (ve_proc_close()). The daemon must keep reading console_fd, or init blocks once
 * the pty buffer is full. Setup errors in the child come back as
 * "start VE 101: mount proc on /proc: Permission denied"; a rootfs whose /proc,
 * /sys or /dev is a symlink is refused. Nothing of the child's mounts is visible on
 * the host, whether it succeeds or fails. The init exits by a signal when the VE
 * halts: reboot(2) in the VE kills it with SIGINT for halt and power-off and with
 * SIGHUP for a reboot, so the daemon can tell a restart request apart.
 * Thread-safe: call it from a worker thread. */
int ve_start(const struct ve_start_config *cfg, struct ve_proc *out, struct ve_error *err);

/* Close the fds of p (pid and starttime stay); safe on a zeroed/closed one. */
void ve_proc_close(struct ve_proc *p);

/* Field 22 of /proc/<pid>/stat (clock ticks since boot at which pid started). */
int ve_proc_starttime(pid_t pid, uint64_t *out, struct ve_error *err);

/* After a daemon restart: find the VE init that was recorded as pid + starttime.
 * Checks the start time (a reused pid is refused with VE_ENOTFOUND), that the
 * process is in cgroup_path or below it ("/ved/101", as /proc/<pid>/cgroup shows it
 * on the host; NULL skips the check), and opens a pidfd. out->console_fd and
 * console_peer are -EBADF: the daemon gets them back from ve-statfsd, which
 * keeps them while it is down (statfs_notify.h). */
int ve_proc_find(pid_t pid, uint64_t starttime, const char *cgroup_path, struct ve_proc *out,
                 struct ve_error *err);

/* Whether pid is gone or a zombie. A process whose parent died waits as a zombie
 * until the host's PID 1 reaps it, which can take seconds: it has exited all the
 * same (ve_proc_find() refuses it). */
bool ve_proc_exited(pid_t pid);

/* The state letter of /proc/<pid>/stat ('R', 'S', 'T' for stopped, 'Z'...), 'X'
 * when there is no such process, '\0' when it cannot be read. */
char ve_proc_state(pid_t pid);

/* Ask the VE's init to shut down: SIGRTMIN+3 for systemd, SIGPWR for sysvinit and
 * busybox init (both halt on it). init_kind: "systemd", "sysvinit", "busybox", or
 * NULL to look at what runs as init (/proc/<pid>/exe named systemd). Sent through
 * pidfd when it is >= 0, else by pid. */
int ve_stop_signal(pid_t pid, int pidfd, const char *init_kind, struct ve_error *err);

/* "systemd" when /sbin/init, resolved inside rootfs (never following a link out
 * of it), is a file named systemd; else "sysvinit". */
int ve_init_kind(const char *rootfs, const char **out, struct ve_error *err);

/* Reap the caller's child by pidfd (waitid P_PIDFD). Returns 1 with a wait(2)-style
 * *status (status may be NULL) when it exited, 0 when nohang and it still runs, or
 * -errno. */
int ve_proc_wait(int pidfd, int nohang, int *status, struct ve_error *err);

#endif
