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

/* What run_lxcfs() found: none, one answering already, or one it started (whose
 * files running VEs do not have yet). */
enum { LXCFS_DOWN, LXCFS_FOUND, LXCFS_STARTED };

/* Find or start lxcfs. Touches nothing of the daemon's state: a restart runs it
 * on a worker thread (it waits up to 5 s for the mount to answer). */
static int run_lxcfs(char *dir, char *pidfile, const char *logfile)
{
        const char *bin = binary();
        struct stat st;
        int ret;

        if (answers(dir))
                return LXCFS_FOUND;
        if (bin == NULL) {
                log_warn("lxcfs is not installed: VEs will see the host's memory, CPUs and "
                         "uptime in free, top and /proc (apt-get install lxcfs)");
                return LXCFS_DOWN;
        }
        clear_stale(dir);
        if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
                log_warn("lxcfs: cannot create %s: %s; VEs start without it", dir, strerror(errno));
                return LXCFS_DOWN;
        }
        if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
                log_warn("lxcfs: %s is not a directory; VEs start without it", dir);
                return LXCFS_DOWN;
        }
        ret = ved_spawn_detached(bin,
                                 (char *[]){ "lxcfs", "--foreground", "--enable-loadavg",
                                             "--enable-cfs", "--pidfile", pidfile, dir, NULL },
                                 logfile, -1, NULL);
        if (ret < 0) {
                log_warn("lxcfs: cannot start %s: %s", bin, strerror(-ret));
                return LXCFS_DOWN;
        }
        for (int i = 0; i < 100; i++) { /* up to 5 s */
                struct timespec ts = { 0, 50 * 1000 * 1000 };

                if (answers(dir)) {
                        log_info("lxcfs serves VE /proc files from %s", dir);
                        return LXCFS_STARTED;
                }
                nanosleep(&ts, NULL);
        }
        log_warn("lxcfs did not come up at %s (see %s): VEs start without it", dir, logfile);
        end_lxcfs(dir, pidfile);
        return LXCFS_DOWN;
}

void ved_lxcfs_start(struct ved *v)
{
        char dir[PATH_MAX], pidfile[PATH_MAX], logfile[PATH_MAX];
        int state;

        paths(v, dir, pidfile, logfile, sizeof(dir));
        state = run_lxcfs(dir, pidfile, logfile);
        v->lxcfs_up = state != LXCFS_DOWN;
        if (v->lxcfs_up)
                ved_rt_confine_helper(v, pidfile, "lxcfs", state == LXCFS_STARTED);
        v->lxcfs_fresh = state == LXCFS_STARTED;
        ve_rootfs_lxcfs_open(v->lxcfs_up ? dir : NULL, &v->lxcfs_fds);
}

/* Running VEs and what they are to get. */
struct rebind {
        size_t n;
        uint32_t *ctids;
        int *pidfds;
        struct ve_lxcfs_fds fds;
        unsigned done;
};

static void rebind_free(struct rebind *r)
{
        for (size_t i = 0; i < r->n; i++)
                close(r->pidfds[i]);
        free(r->ctids);
        free(r->pidfds);
        ve_rootfs_lxcfs_close(&r->fds);
}

/* Dups of the running VEs' pidfds and of the daemon's lxcfs files. */
static int rebind_prepare(struct ved *v, struct rebind *r)
{
        struct list_head *pos, *tmp;
        size_t cap = 0;

        memset(r, 0, sizeof(*r));
        list_for_each_safe(pos, tmp, &v->rts) cap++;
        r->ctids = calloc(cap ? cap : 1, sizeof(*r->ctids));
        r->pidfds = calloc(cap ? cap : 1, sizeof(*r->pidfds));
        ve_rootfs_lxcfs_dup(&v->lxcfs_fds, &r->fds);
        if (r->ctids == NULL || r->pidfds == NULL) {
                rebind_free(r);
                return -ENOMEM;
        }
        list_for_each_safe(pos, tmp, &v->rts)
        {
                struct ved_rt *rt = container_of(pos, struct ved_rt, link);
                int fd;

                if (rt->exited || rt->proc.pidfd < 0)
                        continue;
                fd = fcntl(rt->proc.pidfd, F_DUPFD_CLOEXEC, 3);
                if (fd < 0)
                        continue;
                r->ctids[r->n] = rt->ctid;
                r->pidfds[r->n++] = fd;
        }
        return 0;
}

/* A clone and a wait per VE: a worker's job after a restart. */
static void rebind_run(struct rebind *r)
{
        for (size_t i = 0; i < r->n; i++) {
                struct ve_error err = { 0 };

                if (ve_rootfs_lxcfs_rebind(r->pidfds[i], &r->fds, &err) < 0)
                        log_warn("VE %u keeps the /proc files of the lxcfs that died: %s",
                                 r->ctids[i], err.message);
                else
                        r->done++;
                ve_error_clear(&err);
        }
        if (r->done > 0)
                log_info("lxcfs: %u running VE(s) got the new lxcfs's /proc files", r->done);
}

void ved_lxcfs_rebind_running(struct ved *v)
{
        struct rebind r;

        if (!v->lxcfs_up || !v->lxcfs_fresh || rebind_prepare(v, &r) < 0)
                return;
        v->lxcfs_fresh = false;
        rebind_run(&r);
        rebind_free(&r);
}

/* A restart after lxcfs died, off the loop: starting it waits for its mount
 * (up to 5 s), and each running VE then takes a clone and a wait. The loop only
 * swaps the daemon's files (a start takes dups of them on the loop). A start
 * that took the dead one's files just before the swap, and whose VE was not
 * running yet when the VEs to rebind were listed, keeps them until its restart. */
struct restart {
        uv_work_t work;
        struct ved *v;
        char dir[PATH_MAX], pidfile[PATH_MAX], logfile[PATH_MAX];
        int state;
        struct ve_lxcfs_fds fds;
        bool rebinding;
        struct rebind r;
};

static void restart_work(uv_work_t *w)
{
        struct restart *rs = container_of(w, struct restart, work);

        if (rs->rebinding) {
                rebind_run(&rs->r);
                return;
        }
        rs->state = run_lxcfs(rs->dir, rs->pidfile, rs->logfile);
        ve_rootfs_lxcfs_open(rs->state != LXCFS_DOWN ? rs->dir : NULL, &rs->fds);
}

/* After a restart: one that failed is tried again after 1 s, then 2, 4 ... 60 s,
 * while VEs go on (and start) without lxcfs; a restart that works gives the
 * running VEs its files. */
static void retry_later(struct ved *v, bool failed)
{
        if (!failed) {
                v->lxcfs_retry_ms = 0;
                return;
        }
        v->lxcfs_retry_ms = v->lxcfs_retry_ms ? v->lxcfs_retry_ms * 2 : 1000;
        if (v->lxcfs_retry_ms > 60000)
                v->lxcfs_retry_ms = 60000;
        v->lxcfs_retry_at = uv_now(v->loop) + v->lxcfs_retry_ms;
        log_warn("lxcfs did not come back: trying again in %u s", v->lxcfs_retry_ms / 1000);
}

static void restart_done(uv_work_t *w, int status)
{
        struct restart *rs = container_of(w, struct restart, work);
        struct ved *v = rs->v;

        (void)status;
        if (rs->rebinding) {
                rebind_free(&rs->r);
        } else {
                ve_rootfs_lxcfs_close(&v->lxcfs_fds);
                v->lxcfs_fds = rs->fds;
                v->lxcfs_up = rs->state != LXCFS_DOWN;
                if (v->lxcfs_up)
                        ved_rt_confine_helper(v, rs->pidfile, "lxcfs", rs->state == LXCFS_STARTED);
                /* Its cgroup2 mount turned the option off. */
                if (rs->state == LXCFS_STARTED && v->cfg.cgroup_favordynmods)
                        ved_rt_favor_dynmods(v);
                if (rs->state == LXCFS_STARTED && rebind_prepare(v, &rs->r) == 0) {
                        rs->rebinding = true;
                        if (uv_queue_work(v->loop, &rs->work, restart_work, restart_done) == 0)
                                return;
                        rebind_free(&rs->r);
                }
        }
        retry_later(v, rs->state == LXCFS_DOWN);
        free(rs);
        v->lxcfs_restarting = false;
        if (v->lxcfs_stop_wanted)
                ved_lxcfs_stop(v, !list_empty(&v->rts));
}

void ved_lxcfs_check(struct ved *v)
{
        char dir[PATH_MAX], pidfile[PATH_MAX], logfile[PATH_MAX];
        struct restart *rs;

        if (v->lxcfs_restarting || v->lxcfs_stop_wanted)
                return;
        /* Not installed, or never came up at the start: no retry loop. One that
         * died and did not come back is tried again (retry_later()). */
        if (!v->lxcfs_up && (v->lxcfs_retry_ms == 0 || uv_now(v->loop) < v->lxcfs_retry_at))
                return;
        paths(v, dir, pidfile, logfile, sizeof(dir));
        if (v->lxcfs_up && ved_pidfile_alive(pidfile, "lxcfs") > 0)
                return;
        rs = calloc(1, sizeof(*rs));
        if (rs == NULL)
                return;
        memcpy(rs->dir, dir, sizeof(dir));
        memcpy(rs->pidfile, pidfile, sizeof(pidfile));
        memcpy(rs->logfile, logfile, sizeof(logfile));
        if (v->lxcfs_up)
                log_warn("lxcfs at %s is gone; starting it again", rs->dir);
        else
                log_info("lxcfs at %s: trying again", rs->dir);
        rs->v = v;
        if (uv_queue_work(v->loop, &rs->work, restart_work, restart_done) < 0) {
                free(rs);
                return;
        }
        v->lxcfs_restarting = true;
}

void ved_lxcfs_stop(struct ved *v, bool ves_running)
{
        char dir[PATH_MAX], pidfile[PATH_MAX], logfile[PATH_MAX];

        /* A restart in flight ends first; it calls this again. */
        v->lxcfs_stop_wanted = true;
        if (v->lxcfs_restarting || ves_running || !v->lxcfs_up)
                return;
        paths(v, dir, pidfile, logfile, sizeof(dir));
        ve_rootfs_lxcfs_close(&v->lxcfs_fds);
        end_lxcfs(dir, pidfile);
        rmdir(dir);
        v->lxcfs_up = false;
}
