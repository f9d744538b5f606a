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

#include "log.h"
#include "ve/cleanup.h"

#define FUSE_SUPER_MAGIC 0x65735546

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

/* Double fork: lxcfs ends up in its own session, reparented away from the daemon,
 * with nothing of the daemon's but its log file. */
static int spawn(const char *bin, const char *dir, const char *pidfile, const char *logfile)
{
        pid_t pid = fork();
        int status;

        if (pid < 0)
                return -errno;
        if (pid == 0) {
                int fd;

                setsid();
                if (fork() != 0)
                        _exit(0);
                fd = open("/dev/null", O_RDONLY);
                if (fd >= 0)
                        dup2(fd, STDIN_FILENO);
                fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND, 0600);
                if (fd >= 0) {
                        dup2(fd, STDOUT_FILENO);
                        dup2(fd, STDERR_FILENO);
                }
                close_range(3, ~0U, 0);
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                execl(bin, "lxcfs", "--foreground", "--enable-loadavg", "--enable-cfs", "--pidfile",
                      pidfile, dir, (char *)NULL);
                _exit(127);
        }
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        return 0;
}

static void end_lxcfs(const char *dir, const char *pidfile);

static bool run_lxcfs(struct ved *v)
{
        char dir[PATH_MAX], pidfile[PATH_MAX], logfile[PATH_MAX];
        const char *bin = binary();
        struct stat st;

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
        if (spawn(bin, dir, pidfile, logfile) < 0) {
                log_warn("lxcfs: cannot start %s: %s", bin, strerror(errno));
                return false;
        }
        for (int i = 0; i < 100; i++) { /* up to 5 s */
                struct timespec ts = { 0, 50 * 1000 * 1000 };

                if (answers(dir)) {
                        log_info("lxcfs serves VE /proc files from %s", dir);
                        return true;
                }
                nanosleep(&ts, NULL);
        }
        log_warn("lxcfs did not come up at %s (see %s): VEs start without it", dir, logfile);
        end_lxcfs(dir, pidfile);
        return false;
}

void ved_lxcfs_start(struct ved *v)
{
        v->lxcfs_up = run_lxcfs(v);
}

const char *ved_lxcfs_dir(struct ved *v)
{
        static char dir[PATH_MAX];

        if (!v->lxcfs_up)
                return NULL;
        snprintf(dir, sizeof(dir), "%s/lxcfs", v->cfg.state_dir);
        return dir;
}

static pid_t read_pid(const char *pidfile);

/* Whether the process of the pid file is there and not a zombie: checked without
 * touching the FUSE mount, which a hung lxcfs would block the loop on. */
static bool process_alive(const char *pidfile)
{
        char path[64], buf[512];
        pid_t pid = read_pid(pidfile);
        const char *p;
        ssize_t n;
        int fd;

        if (pid <= 0)
                return false;
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return false;
        buf[n] = '\0';
        p = strrchr(buf, ')');
        return p != NULL && strstr(buf, "(lxcfs)") != NULL && p[2] != 'Z' && p[2] != 'X';
}

void ved_lxcfs_check(struct ved *v)
{
        char dir[PATH_MAX], pidfile[PATH_MAX], logfile[PATH_MAX];

        if (!v->lxcfs_up)
                return; /* not installed or never came up: no retry loop */
        paths(v, dir, pidfile, logfile, sizeof(dir));
        if (process_alive(pidfile))
                return;
        log_warn("lxcfs at %s is gone; starting it again (running VEs keep stale "
                 "/proc files until they restart)",
                 dir);
        v->lxcfs_up = run_lxcfs(v);
}

static pid_t read_pid(const char *pidfile)
{
        char buf[32] = "";
        FILE *f = fopen(pidfile, "re");
        long pid = 0;

        if (f == NULL)
                return 0;
        if (fgets(buf, sizeof(buf), f) != NULL)
                pid = strtol(buf, NULL, 10);
        fclose(f);
        return pid > 1 ? (pid_t)pid : 0;
}

/* End the lxcfs of pidfile (only an lxcfs: the pid file may be stale) and
 * remove its mount. lxcfs 5 often ignores SIGTERM (libfuse's handler waits on
 * its idle workers), and it keeps no state, so it gets a moment and then
 * SIGKILL; the mount is removed after it. */
static void end_lxcfs(const char *dir, const char *pidfile)
{
        char comm[64], name[32] = "";
        pid_t pid = read_pid(pidfile);
        FILE *f;

        snprintf(comm, sizeof(comm), "/proc/%d/comm", (int)pid);
        f = pid ? fopen(comm, "re") : NULL;
        if (f != NULL) {
                if (fgets(name, sizeof(name), f) == NULL)
                        name[0] = '\0';
                fclose(f);
        }
        if (strncmp(name, "lxcfs", 5) == 0 && kill(pid, SIGTERM) == 0) {
                for (int i = 0; i < 40 && kill(pid, 0) == 0; i++) {
                        struct timespec ts = { 0, 25 * 1000 * 1000 };

                        if (i == 10)
                                kill(pid, SIGKILL);
                        nanosleep(&ts, NULL);
                }
        }
        clear_stale(dir);
        unlink(pidfile);
}

void ved_lxcfs_stop(struct ved *v, bool ves_running)
{
        char dir[PATH_MAX], pidfile[PATH_MAX], logfile[PATH_MAX];

        if (ves_running || !v->lxcfs_up)
                return;
        paths(v, dir, pidfile, logfile, sizeof(dir));
        end_lxcfs(dir, pidfile);
        rmdir(dir);
        v->lxcfs_up = false;
}
