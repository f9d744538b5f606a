#include "lxcfs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/magic.h>

#include "log.h"
#include "pidfile.h"
#include "runtime.h"
#include "ve/cleanup.h"
#include "ve/rootfs.h"
#include "ve/start.h"

static const char *const lxcfs_paths[] = { "/usr/bin/lxcfs", "/usr/local/bin/lxcfs" };

static void paths(struct ved *v, char *dir, char *pidfile, char *logfile, size_t len)
{
        snprintf(dir, len, "%s/lxcfs", v->cfg.state_dir);
        snprintf(pidfile, len, "%s/lxcfs.pid", v->cfg.state_dir);
        snprintf(logfile, len, "%s/lxcfs.log", v->cfg.state_dir);
}

/* Mounted and answering: a dead FUSE daemon leaves a mount whose reads fail. */
static bool answers(const char *dir)
{
        char probe[PATH_MAX];
        struct statfs sfs;
        int fd;

        if (statfs(dir, &sfs) < 0 || sfs.f_type != FUSE_SUPER_MAGIC)
                return false;
        snprintf(probe, sizeof(probe), "%s/proc/uptime", dir);
        fd = open(probe, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        close(fd);
        return true;
}

static const char *binary(void)
{
        for (size_t i = 0; i < sizeof(lxcfs_paths) / sizeof(lxcfs_paths[0]); i++)
                if (access(lxcfs_paths[i], X_OK) == 0)
                        return lxcfs_paths[i];
        return NULL;
}

/* A mount left by an lxcfs that died. */
static void clear_stale(const char *dir)
{
        struct statfs sfs;

        if (statfs(dir, &sfs) < 0 ? errno == ENOTCONN : sfs.f_type == FUSE_SUPER_MAGIC)
                umount2(dir, MNT_DETACH);
}

/* End the lxcfs of pidfile and remove its mount. lxcfs 5 often ignores SIGTERM
 * (libfuse's handler waits on its idle workers), and it keeps no state, so it
 * gets a moment and then SIGKILL; the mount is removed after it. */
static void end_lxcfs(const char *dir, const char *pidfile)
{
        pid_t pid = ved_pidfile_alive(pidfile, "lxcfs");

        if (pid > 0 && kill(pid, SIGTERM) == 0) {
                for (int i = 0; i < 40 && !ve_proc_exited(pid); i++) {
                        struct timespec ts = { 0, 25 * 1000 * 1000 };

                        if (i == 10)
                                kill(pid, SIGKILL);
                        nanosleep(&ts, NULL);
                }
        }
        clear_stale(dir);
        unlink(pidfile);
}

static bool run_lxcfs(struct ved *v)
{
        char dir[PATH_MAX], pidfile[PATH_MAX], logfile[PATH_MAX];
        const char *bin = binary();
        struct stat st;
        int ret;

        paths(v, dir, pidfile, logfile, sizeof(dir));
        if (answers(dir))
                return true;
        if (bin == NULL) {
                log_warn("lxcfs is not installed: VEs will see the host's memory, CPUs and "
                         "uptime in free, top and /proc (apt-get install lxcfs)");
                return false;
        }
        clear_stale(dir);
        if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
                log_warn("lxcfs: cannot create %s: %s; VEs start without it", dir, strerror(errno));
                return false;
        }
        if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
                log_warn("lxcfs: %s is not a directory; VEs start without it", dir);
                return false;
        }
        ret = ved_spawn_detached(bin,
                                 (char *[]){ "lxcfs", "--foreground", "--enable-loadavg",
                                             "--enable-cfs", "--pidfile", pidfile, dir, NULL },
                                 logfile, -1, NULL);
        if (ret < 0) {
                log_warn("lxcfs: cannot start %s: %s", bin, strerror(-ret));
                return false;
        }
        for (int i = 0; i < 100; i++) { /* up to 5 s */
                struct timespec ts = { 0, 50 * 1000 * 1000 };

                if (answers(dir)) {
                        log_info("lxcfs serves VE /proc files from %s", dir);
                        v->lxcfs_fresh = true;
                        return true;
                }
                nanosleep(&ts, NULL);
        }
        log_warn("lxcfs did not come up at %s (see %s): VEs start without it", dir, logfile);
        end_lxcfs(dir, pidfile);
        return false;
}

/* The files every start binds (struct ved.lxcfs_fds), opened again for each lxcfs
 * that comes up: the old fds lead to the dead one's mount. */
static void open_files(struct ved *v)
{
        char dir[PATH_MAX], pidfile[PATH_MAX], logfile[PATH_MAX];

        ve_rootfs_lxcfs_close(&v->lxcfs_fds);
        if (!v->lxcfs_up)
                return;
        paths(v, dir, pidfile, logfile, sizeof(dir));
        ve_rootfs_lxcfs_open(dir, &v->lxcfs_fds);
}

void ved_lxcfs_start(struct ved *v)
{
        ve_rootfs_lxcfs_open(NULL, &v->lxcfs_fds);
        v->lxcfs_up = run_lxcfs(v);
        open_files(v);
}

void ved_lxcfs_check(struct ved *v)
{
        char dir[PATH_MAX], pidfile[PATH_MAX], logfile[PATH_MAX];

        if (!v->lxcfs_up)
                return; /* not installed or never came up: no retry loop */
        paths(v, dir, pidfile, logfile, sizeof(dir));
        if (ved_pidfile_alive(pidfile, "lxcfs") > 0)
                return;
        log_warn("lxcfs at %s is gone; starting it again", dir);
        v->lxcfs_up = run_lxcfs(v);
        open_files(v);
        ved_lxcfs_rebind_running(v);
}

void ved_lxcfs_rebind_running(struct ved *v)
{
        struct list_head *pos, *tmp;
        unsigned done = 0;

        if (!v->lxcfs_up || !v->lxcfs_fresh)
                return;
        v->lxcfs_fresh = false;
        list_for_each_safe(pos, tmp, &v->rts)
        {
                struct ved_rt *rt = container_of(pos, struct ved_rt, link);
                struct ve_error err = { 0 };

                if (rt->exited || rt->proc.pidfd < 0)
                        continue;
                if (ve_rootfs_lxcfs_rebind(rt->proc.pidfd, &v->lxcfs_fds, &err) < 0)
                        log_warn("VE %u keeps the /proc files of the lxcfs that died: %s", rt->ctid,
                                 err.message);
                else
                        done++;
                ve_error_clear(&err);
        }
        if (done > 0)
                log_info("lxcfs: %u running VE(s) got the new lxcfs's /proc files", done);
}

void ved_lxcfs_stop(struct ved *v, bool ves_running)
{
        char dir[PATH_MAX], pidfile[PATH_MAX], logfile[PATH_MAX];

        if (ves_running || !v->lxcfs_up)
                return;
        paths(v, dir, pidfile, logfile, sizeof(dir));
        ve_rootfs_lxcfs_close(&v->lxcfs_fds);
        end_lxcfs(dir, pidfile);
        rmdir(dir);
        v->lxcfs_up = false;
}
