#include "statfsd.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "pidfile.h"
#include "runtime.h"
#include "ve/cleanup.h"
#include "ve/start.h"
#include "ve/statfs_notify.h"

/* Set once at startup, before any worker thread connects; read-only after. */
static struct sockaddr_un addr;
static socklen_t addrlen;
static bool up;
static int started;        /* run_server()'s at startup */
static int owner = -EBADF; /* our OWNER connection, for the daemon's life */

static void paths(struct ved *v, char *pidfile, char *logfile, size_t len)
{
        snprintf(pidfile, len, "%s/statfsd.pid", v->cfg.state_dir);
        snprintf(logfile, len, "%s/statfsd.log", v->cfg.state_dir);
}

int ved_statfsd_connect(void)
{
        int fd;

        if (addrlen == 0)
                return -ENOTCONN;
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&addr, addrlen) < 0) {
                int ret = -errno;

                close(fd);
                return ret;
        }
        return fd;
}

/* ve-statfsd next to the daemon's own binary (build/bin, or /usr/sbin). */
static int binary(char *buf, size_t len)
{
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

        if (n < 0)
                return -errno;
        self[n] = '\0';
        snprintf(buf, len, "%s/ve-statfsd", dirname(self));
        return access(buf, X_OK) < 0 ? -errno : 0;
}

enum { FAILED = -1, FOUND = 0, STARTED = 1 };

static int run_server(struct ved *v)
{
        char bin[PATH_MAX], pidfile[PATH_MAX], logfile[PATH_MAX];
        _cleanup_close_ int lfd = -EBADF, probe = -EBADF;
        int ret;

        probe = ved_statfsd_connect();
        if (probe >= 0)
                return FOUND;
        ret = binary(bin, sizeof(bin));
        if (ret < 0) {
                log_warn("ve-statfsd not found next to ved (%s): df in VEs shows the size of "
                         "their file systems with headroom, not their diskspace",
                         strerror(-ret));
                return FAILED;
        }
        paths(v, pidfile, logfile, sizeof(pidfile));
        lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, addrlen) < 0 || listen(lfd, 256) < 0) {
                log_warn("ve-statfsd: cannot listen on @%s: %s; VEs start without it",
                         addr.sun_path + 1, strerror(errno));
                return FAILED;
        }
        ret = ved_spawn_detached(bin, (char *[]){ "ve-statfsd", NULL }, logfile, lfd, pidfile);
        if (ret < 0) {
                log_warn("ve-statfsd: cannot start %s: %s", bin, strerror(-ret));
                return FAILED;
        }
        log_info("ve-statfsd answers statfs in VEs (@%s)", addr.sun_path + 1);
        return STARTED;
}

bool ved_statfsd_up(void)
{
        return up;
}

/* fresh: run_server() has just started it. */
static void confine(struct ved *v, bool fresh)
{
        char pidfile[PATH_MAX], logfile[PATH_MAX];

        paths(v, pidfile, logfile, sizeof(pidfile));
        ved_rt_confine_helper(v, pidfile, "ve-statfsd", fresh);
}

/* Tell the server that we drain the consoles from now on. */
static void claim_consoles(void)
{
        if (owner >= 0)
                close(owner);
        owner = ved_statfsd_connect();
        if (owner >= 0 && ve_statfsd_send(owner, VE_STATFSD_OWNER, 0, -1) < 0) {
                close(owner);
                owner = -EBADF;
        }
}

void ved_statfsd_start(struct ved *v)
{
        addrlen = ve_statfsd_addr(v->cfg.instance, &addr);
        started = run_server(v);
        up = started != FAILED;
        if (up) {
                claim_consoles();
                confine(v, started == STARTED);
        }
}

int ved_statfsd_give_console(int sock, uint32_t ctid, const struct ve_proc *p, const char *dir)
{
        char path[PATH_MAX];
        _cleanup_close_ int log = -EBADF;
        int fds[VE_STATFSD_FDS];

        if (p->console_fd < 0 || p->console_peer < 0 || p->pidfd < 0)
                return -EBADF;
        snprintf(path, sizeof(path), "%s/console.log", dir);
        log = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
        fds[VE_CONSOLE_MASTER] = p->console_fd;
        fds[VE_CONSOLE_PEER] = p->console_peer;
        fds[VE_CONSOLE_PIDFD] = p->pidfd;
        fds[VE_CONSOLE_LOG] = log;
        return ve_statfsd_sendv(sock, VE_STATFSD_ADD_CONSOLE, ctid, fds, log >= 0 ? 4 : 3);
}

/* A new server: give it the listeners of the running VEs' inits. */
static void resend_copies(struct ved *v)
{
        _cleanup_close_ int fd = ved_statfsd_connect();
        struct list_head *pos, *tmp;
        unsigned n = 0, lost = 0;

        list_for_each_safe(pos, tmp, &v->rts)
        {
                struct ved_rt *rt = container_of(pos, struct ved_rt, link);

                if (rt->exited)
                        continue;
                if (fd >= 0) {
                        char dir[PATH_MAX];

                        ved_ve_dir(v, rt->ctid, dir, sizeof(dir));
                        ved_statfsd_give_console(fd, rt->ctid, &rt->proc, dir);
                }
                if (rt->proc.statfs_fd < 0)
                        lost++;
                else if (fd >= 0 && ve_statfsd_send(fd, VE_STATFSD_ADD_INIT, rt->ctid,
                                                    rt->proc.statfs_fd) == 0)
                        n++;
        }
        if (n > 0)
                log_info("ve-statfsd: gave it the statfs filters of %u running VE(s)", n);
        if (lost > 0)
                log_warn("ve-statfsd: %u running VE(s) have no statfs filter to hand over: "
                         "one they had is gone with the old ve-statfsd (ved was down too), and "
                         "statfs fails with ENOSYS in them until they restart",
                         lost);
}

/* One LIST answer; false at END or on an error. */
static bool take_copy(struct ved *v, int fd)
{
        struct ve_statfsd_msg m;
        struct ved_rt *rt = NULL;
        int fds[VE_STATFSD_FDS];

        if (ve_statfsd_recv(fd, &m, fds) <= 0)
                return false;
        if (m.op == VE_STATFSD_ADD_INIT || m.op == VE_STATFSD_ADD_CONSOLE)
                rt = ved_rt_find(v, m.ctid);
        if (rt != NULL && rt->exited)
                rt = NULL;
        if (rt != NULL && m.op == VE_STATFSD_ADD_INIT && fds[0] >= 0 && rt->proc.statfs_fd < 0)
                rt->proc.statfs_fd = steal_fd(&fds[0]);
        if (rt != NULL && m.op == VE_STATFSD_ADD_CONSOLE && fds[VE_CONSOLE_MASTER] >= 0 &&
            fds[VE_CONSOLE_PEER] >= 0 && rt->proc.console_fd < 0) {
                rt->proc.console_fd = steal_fd(&fds[VE_CONSOLE_MASTER]);
                rt->proc.console_peer = steal_fd(&fds[VE_CONSOLE_PEER]);
                ved_rt_watch_console(rt);
                log_info("VE %u: its console, kept by ve-statfsd, is back", m.ctid);
        }
        for (unsigned i = 0; i < VE_STATFSD_FDS; i++)
                if (fds[i] >= 0)
                        close(fds[i]);
        return m.op == VE_STATFSD_ADD_INIT || m.op == VE_STATFSD_ADD_CONSOLE;
}

void ved_statfsd_collect(struct ved *v)
{
        struct timeval tv = { .tv_sec = 5 };
        _cleanup_close_ int fd = -EBADF;

        if (started == STARTED) {
                resend_copies(v); /* only says which VEs lost theirs */
                return;
        }
        fd = ved_statfsd_connect();
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
            ve_statfsd_send(fd, VE_STATFSD_LIST, 0, -1) < 0)
                return;
        while (take_copy(v, fd))
                ;
}

void ved_statfsd_check(struct ved *v)
{
        char pidfile[PATH_MAX], logfile[PATH_MAX];
        int ret;

        if (!up)
                return; /* never came up: no retry loop */
        paths(v, pidfile, logfile, sizeof(pidfile));
        if (ved_pidfile_alive(pidfile, "ve-statfsd") > 0)
                return;
        log_warn("ve-statfsd is gone; starting it again");
        ret = run_server(v);
        up = ret != FAILED;
        if (up) {
                claim_consoles();
                confine(v, ret == STARTED);
        }
        if (ret == STARTED)
                resend_copies(v);
}

void ved_statfsd_stop(struct ved *v, bool ves_running)
{
        char pidfile[PATH_MAX], logfile[PATH_MAX];
        _cleanup_close_ int fd = -EBADF;
        pid_t pid;

        if (ves_running || !up)
                return;
        if (owner >= 0)
                close(steal_fd(&owner));
        paths(v, pidfile, logfile, sizeof(pidfile));
        pid = ved_pidfile_alive(pidfile, "ve-statfsd");
        fd = ved_statfsd_connect();
        if (fd >= 0)
                ve_statfsd_send(fd, VE_STATFSD_QUIT, 0, -1);
        for (int i = 0; pid > 0 && i < 40 && !ve_proc_exited(pid); i++)
                usleep(25 * 1000);
        unlink(pidfile);
        up = false;
}
