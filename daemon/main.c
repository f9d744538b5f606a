/* ved: the daemon. One libuv loop owns all state; see DESIGN.md. */
#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/server.h"
#include "daemon/log.h"
#include "daemon/layers.h"
#include "daemon/lxcfs.h"
#include "daemon/statfsd.h"
#include "daemon/idrange.h"
#include "daemon/netplan.h"
#include "quota/cgroup.h"
#include "daemon/notify.h"
#include "daemon/ops.h"
#include "daemon/runtime.h"
#include "daemon/usage.h"
#include "daemon/ved.h"
#include "ve/cleanup.h"
#include "ve/template.h"

/* Per-instance lock files: one root-owned directory for all state directories. */
#define VED_LOCK_DIR "/run/ved"

static int make_dir(const char *path, mode_t mode, struct ve_error *err)
{
        if (mkdir(path, mode) < 0 && errno != EEXIST)
                return ve_error_errno(err, errno, "create %s", path);
        return 0;
}

/* How long (x 20 ms) a start waits for the lock of a daemon that is exiting. */
#define LOCK_TRIES 100

/* Held until the daemon exits (a kill -9 included: the kernel lets go of them). */
static int state_lock_fd = -EBADF, instance_lock_fd = -EBADF;

/* Hold an exclusive flock on path, with our pid in the file; another daemon that
 * holds it makes this fail, naming it and what it holds. The lock goes with a
 * daemonizing fork (it belongs to the open file, not the process). */
static int take_lock(const char *path, const char *what, int *fd_out, struct ve_error *err)
{
        char pid[24] = "";
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        ssize_t n;

        if (fd < 0)
                return ve_error_errno(err, errno, "open %s", path);
        /* A daemon killed a moment ago lets go of it as it exits: wait a little. */
        for (int i = 0; flock(fd, LOCK_EX | LOCK_NB) < 0; i++) {
                int e = errno;

                if (e == EWOULDBLOCK && i < LOCK_TRIES) {
                        nanosleep(&(struct timespec){ .tv_nsec = 20 * 1000 * 1000 }, NULL);
                        continue;
                }
                n = pread(fd, pid, sizeof(pid) - 1, 0);
                pid[n > 0 ? n : 0] = '\0';
                pid[strcspn(pid, "\n")] = '\0';
                close(fd);
                if (e == EWOULDBLOCK)
                        return ve_error_set(err, EBUSY,
                                            "another ved (pid %s) is running with %s (lock %s)",
                                            pid[0] ? pid : "unknown", what, path);
                return ve_error_errno(err, e, "lock %s", path);
        }
        *fd_out = fd;
        return 0;
}

/* Write our pid into the lock files (again after daemonize's fork). */
static void write_lock_pids(void)
{
        char pid[24];
        int len = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
        int fds[] = { state_lock_fd, instance_lock_fd };

        for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
                if (fds[i] >= 0 &&
                    (ftruncate(fds[i], 0) < 0 || pwrite(fds[i], pid, (size_t)len, 0) < 0))
                        log_warn("Cannot write the pid into a lock file: %s", strerror(errno));
}

/* One daemon per state directory and per instance: two would both manage the
 * same VEs, or the same cgroups, bridge and nftables tables. */
static int lock_daemon(struct ved *v, struct ve_error *err)
{
        _cleanup_free_ char *state = NULL, *instance = NULL, *what = NULL;
        int ret;

        if (asprintf(&state, "%s/ved.lock", v->cfg.state_dir) < 0 ||
            asprintf(&instance, "%s/%s.lock", VED_LOCK_DIR, v->cfg.instance) < 0 ||
            asprintf(&what, "instance '%s'", v->cfg.instance) < 0)
                return ve_error_set(err, ENOMEM, "out of memory");
        ret = take_lock(state, "this state directory", &state_lock_fd, err);
        if (ret == 0)
                ret = make_dir(VED_LOCK_DIR, 0755, err);
        if (ret == 0)
                ret = take_lock(instance, what, &instance_lock_fd, err);
        if (ret == 0)
                write_lock_pids();
        return ret;
}

static int prepare_state_dir(struct ved *v, struct ve_error *err)
{
        int ret;

        ret = make_dir(v->cfg.state_dir, 0700, err);
        if (ret == 0)
                ret = lock_daemon(v, err);
        if (ret < 0)
                return ret;
        if (asprintf(&v->ves_dir, "%s/ves", v->cfg.state_dir) < 0 ||
            asprintf(&v->templates_dir, "%s/templates", v->cfg.state_dir) < 0)
                return ve_error_set(err, ENOMEM, "out of memory");
        ret = make_dir(v->ves_dir, 0700, err);
        if (ret == 0)
                ret = make_dir(v->templates_dir, 0700, err);
        return ret;
}

static void server_stopped_cb(struct ved *v)
{
        v->api = NULL;
}

static void shutdown_daemon(struct ved *v)
{
        if (v->stopping)
                return;
        v->stopping = true;
        log_info("Stopping; %u operation(s) still running will finish first", ved_ops_running(v));
        ved_notify("STOPPING=1");
        if (v->api != NULL)
                api_server_stop(v->api, server_stopped_cb);
        ved_usage_stop(v);
        ved_lxcfs_stop(v, !list_empty(&v->rts));
        if (list_empty(&v->rts))
                ved_layers_release(v->templates_dir);
        ved_statfsd_stop(v, !list_empty(&v->rts));
        ved_rt_shutdown(v);
        uv_close((uv_handle_t *)&v->sigterm, NULL);
        uv_close((uv_handle_t *)&v->sigint, NULL);
}

static void signal_cb(uv_signal_t *h, int signum)
{
        log_info("Received signal %d", signum);
        shutdown_daemon(h->data);
}

static void set_started_at(struct ved *v)
{
        time_t now = time(NULL);
        struct tm tm;

        gmtime_r(&now, &tm);
        strftime(v->started_at, sizeof(v->started_at), "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Whether the host booted since ved last ran (its boot id changed). */
static bool host_rebooted(struct ved *v)
{
        char now[64] = "", last[64] = "";
        FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
        bool rebooted;

        if (f != NULL) {
                if (fgets(now, sizeof(now), f) == NULL)
                        now[0] = '\0';
                fclose(f);
        }
        now[strcspn(now, "\n")] = '\0';
        rebooted = ved_store_meta_get(&v->store, "boot_id", last, sizeof(last)) == 0 &&
                   strcmp(last, now) != 0;
        ved_store_meta_set(&v->store, "boot_id", now, NULL);
        return rebooted;
}

/* How long the API waits for operations resumed after a crash (ops.h). */
#define RESUME_WAIT_MS 10000

static int open_state(struct ved *v, struct ve_error *err)
{
        _cleanup_free_ char *db = NULL;
        int ret;

        ret = prepare_state_dir(v, err);
        if (ret < 0)
                return ret;
        if (asprintf(&db, "%s/ved.db", v->cfg.state_dir) < 0)
                return ve_error_set(err, ENOMEM, "out of memory");
        ret = ved_store_open(db, &v->store, err);
        if (ret == 0)
                ved_events_log_start(v);
        /* Room to record the recovery's results even on a full disk. */
        if (ret == 0)
                ved_store_check_room(&v->store);
        if (ret == 0)
                ret = ved_rt_init(v, err);
        if (ret == 0) {
                ved_lxcfs_start(v);
                ved_statfsd_start(v);
                ved_rt_favor_dynmods(v);
        }
        /* What a daemon killed while it wrote templates left: uploads, staging
         * directories, images not renamed into place (no operation may own an
         * upload: one killed mid-body had none yet). */
        if (ret == 0 && ve_template_cleanup(v->templates_dir, err) < 0) {
                log_warn("%s", err->message);
                ve_error_clear(err);
        }
        /* Uid range claims of VEs that are gone (idrange.h); claims of running
         * VEs are their inits' and stay. */
        if (ret == 0)
                ved_idrange_sweep(VED_IDRANGE_DIR, v->cfg.instance);
        if (ret == 0)
                ret = ved_ops_recover(v, err);
        if (ret == 0)
                ret = ved_rt_reconcile(v, host_rebooted(v), err);
        if (ret == 0) {
                ved_lxcfs_rebind_running(v);
                ved_statfsd_collect(v);
                ved_ops_resume(v, RESUME_WAIT_MS);
                ved_event(v, "daemon.started", 0, 0, NULL, "ved %s started (instance %s)",
                          VED_VERSION, v->cfg.instance);
        }
        return ret;
}

/* Detach from the terminal when not told to stay: the parent exits once the API
 * is listening, so `ved && vectl list` works. Logs go to <state>/ved.log. */
static int daemonize(struct ved *v)
{
        _cleanup_free_ char *logpath = NULL;
        pid_t pid = fork();
        int fd;

        if (pid < 0)
                return -errno;
        if (pid > 0)
                _exit(0);
        setsid();
        if (asprintf(&logpath, "%s/ved.log", v->cfg.state_dir) < 0)
                return -ENOMEM;
        fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd >= 0) {
                dup2(fd, STDOUT_FILENO);
                dup2(fd, STDERR_FILENO);
                close(fd);
        }
        fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
                dup2(fd, STDIN_FILENO);
                close(fd);
        }
        return 0;
}

static int run(struct ved *v)
{
        struct ve_error err = { 0 };
        int ret;

        ret = open_state(v, &err);
        if (ret == 0)
                ret = api_server_start(v, v->cfg.socket_path, &v->api, &err);
        if (ret < 0) {
                log_error("Cannot start: %s", err.message ? err.message : strerror(-ret));
                ve_error_clear(&err);
                return 1;
        }
        uv_signal_init(v->loop, &v->sigterm);
        uv_signal_init(v->loop, &v->sigint);
        v->sigterm.data = v->sigint.data = v;
        uv_signal_start(&v->sigterm, signal_cb, SIGTERM);
        uv_signal_start(&v->sigint, signal_cb, SIGINT);
        if (!v->cfg.foreground && getenv("NOTIFY_SOCKET") == NULL) {
                if (daemonize(v) < 0)
                        return 1;
                write_lock_pids();
        }
        log_info("Ready: instance %s, state %s, socket %s", v->cfg.instance, v->cfg.state_dir,
                 v->cfg.socket_path);
        ved_notify("READY=1");
        ved_usage_start(v);
        uv_run(v->loop, UV_RUN_DEFAULT);
        /* Leave no empty <instance> cgroup behind; it stays while VEs run in it. */
        quota_cgroup_remove_instance(v->cgroup, v->cfg.instance, NULL);
        ved_net_exit(v);
        log_info("Stopped");
        return 0;
}

int main(int argc, char **argv)
{
        struct ve_error err = { 0 };
        struct ved v = { 0 };
        int ret;

        signal(SIGPIPE, SIG_IGN);
        /* The VE's init and every exec's helper and command share the daemon's
         * memory until their execve (ve/child.h), the command inside the VE's pid
         * namespace: a non-dumpable memory keeps ptrace, /proc/<pid>/mem and
         * /proc/<pid>/exe closed to the VE's root (exec.h). So ved writes no core
         * dump; the host's root can still attach a debugger. */
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
                fprintf(stderr, "ved: prctl PR_SET_DUMPABLE: %s\n", strerror(errno));
                return 1;
        }
        /* Operations' steps block worker threads (a start for milliseconds, a
         * template build for minutes; a stop waits for init in the loop): more than
         * libuv's default of 4, not many more. Every VE init and exec helper is
         * cloned from this process and then execs; each thread's stack and malloc
         * arena is a mapping that the clone copies and the execve tears down (64
         * threads: 380 mappings; 16 and 2 arenas: 250). */
        if (getenv("UV_THREADPOOL_SIZE") == NULL)
                setenv("UV_THREADPOOL_SIZE", "16", 0);
        mallopt(M_ARENA_MAX, 2);
        ved_config_init(&v.cfg);
        ret = ved_config_parse_args(&v.cfg, argc, argv, &err);
        if (ret != 0) {
                if (ret < 0)
                        fprintf(stderr, "ved: %s\n", err.message);
                ve_error_clear(&err);
                ved_config_free(&v.cfg);
                return ret < 0 ? 2 : 0;
        }
        ved_log_set_level(v.cfg.log_level);
        v.loop = uv_default_loop();
        list_init(&v.event_subs);
        list_init(&v.op_waiters);
        list_init(&v.ops);
        list_init(&v.rts);
        list_init(&v.reboot_loops);
        set_started_at(&v);
        ret = run(&v);
        uv_loop_close(v.loop);
        if (v.store.db != NULL)
                ved_store_close(&v.store);
        if (v.cgroup != NULL)
                quota_cgroup_free(v.cgroup);
        free(v.ves_dir);
        free(v.templates_dir);
        ved_config_free(&v.cfg);
        return ret;
}
