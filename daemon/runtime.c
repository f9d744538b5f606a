#include "runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "actions.h"
#include "exec.h"
#include "idrange.h"
#include "log.h"
#include "netplan.h"
#include "ops.h"
#include "pidfile.h"
#include "traffic.h"
#include "quota/cgroup.h"
#include "ve/cgroupfs.h"
#include "ve/cleanup.h"
#include "ve/mount.h"
#include "ve/net.h"
#include "ve/statfs_notify.h"

#define CONSOLE_RETRY_MS 1000

/* A v1 host moves each start's init and each exec's command into the VE's cgroups
 * by writing cgroup.procs; v2 clones them there (CLONE_INTO_CGROUP). */
void ved_rt_favor_dynmods(struct ved *v)
{
        struct ve_error err = { 0 };
        char where[256] = "";
        int ret;

        if (strcmp(quota_cgroup_name(v->cgroup), "v1") != 0)
                return;
        if (!v->cfg.cgroup_favordynmods) {
                if (!ve_cgroupfs_favors_dynmods())
                        log_info("On this cgroup v1 host each start and exec waits for an RCU "
                                 "grace period (5-20 ms) to enter the VE's cgroups; "
                                 "cgroup-favordynmods = yes ends that wait (host-wide, see "
                                 "README)");
                return;
        }
        ret = ve_cgroupfs_favor_dynmods(where, sizeof(where), &err);
        if (ret > 0)
                log_info("Turned on the cgroup2 option favordynmods (on %s): a start or exec no "
                         "longer waits for an RCU grace period to enter the VE's cgroups",
                         where);
        else if (ret < 0)
                log_warn("Cannot turn on the cgroup2 option favordynmods (%s): starts and "
                         "execs wait for an RCU grace period to enter the VE's cgroups",
                         err.message);
        ve_error_clear(&err);
}

int ved_rt_init(struct ved *v, struct ve_error *err)
{
        int ret;

        ret = quota_cgroup_detect(&v->cgroup, err);
        if (ret < 0)
                return ve_error_prefix(err, "detect the cgroup layout");
        log_info("Using cgroup %s", quota_cgroup_name(v->cgroup));
        ved_net_init(v);
        return ved_traffic_start(v, err);
}

void ved_rt_confine_helper(struct ved *v, const char *pidfile, const char *comm, bool fresh)
{
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        unsigned permille = cpus > 4 ? (unsigned)cpus * 125 : 500;
        pid_t pid = fresh ? ved_pidfile_fresh(pidfile) : ved_pidfile_alive(pidfile, comm);
        struct ve_error err = { 0 };

        if (pid <= 0)
                return;
        if (quota_cgroup_helpers(v->cgroup, v->cfg.instance, pid, permille, &err) < 0)
                log_warn("%s (pid %d) works for the VEs without a CPU limit: %s", comm, (int)pid,
                         err.message);
        ve_error_clear(&err);
}

const char *ved_rt_cgroup_path(struct ved *v, uint32_t ctid, char *buf, size_t len)
{
        snprintf(buf, len, "/%s/%u", v->cfg.instance, ctid);
        return buf;
}

int ved_rt_teardown(const struct ved_ve_host *h, struct ve_error *err)
{
        int ret;

        ret = quota_cgroup_kill_all(h->cg, h->instance, h->ctid, SIGKILL, err);
        if (ret == 0)
                ret = quota_cgroup_destroy(h->cg, h->instance, h->ctid, err);
        if (ret == 0)
                ret = ve_net_teardown(h->instance, h->ctid, h->addrs, h->n_addrs, h->uplinks,
                                      h->n_uplinks, !h->removing, err);
        /* The view first: it is a mount of the private area's mount. */
        if (ret == 0 && ve_is_mounted(h->root) > 0 && umount2(h->root, UMOUNT_NOFOLLOW) < 0)
                ret = ve_error_errno(err, errno, "unmount %s", h->root);
        if (ret == 0 && ve_is_mounted(h->private_area) > 0)
                ret = ve_private_umount(h->private_area, err);
        if (ret < 0)
                return ve_error_prefix(err, "tear down VE %u", h->ctid);
        return 0;
}

char **ved_ip_list(json_t *ips, size_t *n)
{
        char **list = calloc(json_array_size(ips) + 1, sizeof(char *));
        size_t i;
        json_t *ip;

        *n = 0;
        if (list == NULL)
                return NULL;
        json_array_foreach(ips, i, ip)
        {
                const char *s = json_string_value(ip);

                if (s != NULL)
                        list[(*n)++] = strndup(s, strcspn(s, "/"));
        }
        return list;
}

void ved_ip_list_free(char **list)
{
        for (char **p = list; p && *p; p++)
                free(*p);
        free(list);
}

struct ved_rt *ved_rt_find(struct ved *v, uint32_t ctid)
{
        struct list_head *pos, *tmp;

        list_for_each_safe(pos, tmp, &v->rts)
        {
                struct ved_rt *rt = container_of(pos, struct ved_rt, link);

                if (rt->ctid == ctid)
                        return rt;
        }
        return NULL;
}

static void rt_handle_closed_cb(uv_handle_t *h)
{
        struct ved_rt *rt = h->data;

        if (--rt->handles > 0)
                return;
        ve_proc_close(&rt->proc);
        if (rt->console_log >= 0)
                close(rt->console_log);
        free(rt);
}

static void rt_close(struct ved_rt *rt)
{
        ved_exec_console_gone(rt, !rt->v->stopping);
        list_del(&rt->link);
        if (rt->handles == 0) {
                rt->handles = 1;
                rt->pid_poll.data = rt;
                rt_handle_closed_cb((uv_handle_t *)&rt->pid_poll);
                return;
        }
        uv_close((uv_handle_t *)&rt->pid_poll, rt_handle_closed_cb);
        if (rt->console_watched) {
                uv_close((uv_handle_t *)&rt->console_poll, rt_handle_closed_cb);
                uv_close((uv_handle_t *)&rt->console_retry, rt_handle_closed_cb);
        }
}

void ved_rt_release(struct ved *v, uint32_t ctid)
{
        struct ved_rt *rt = ved_rt_find(v, ctid);

        if (rt != NULL)
                rt_close(rt);
}

static uint64_t now_ms(void)
{
        return uv_hrtime() / 1000000;
}

struct reboot_loop {
        struct list_head link;
        struct ved *v;
        uint32_t ctid;
        unsigned streak; /* fast reboots in a row */
        uv_timer_t timer;
};

static struct reboot_loop *reboot_loop_find(struct ved *v, uint32_t ctid)
{
        struct list_head *pos, *tmp;

        list_for_each_safe(pos, tmp, &v->reboot_loops)
        {
                struct reboot_loop *rl = container_of(pos, struct reboot_loop, link);

                if (rl->ctid == ctid)
                        return rl;
        }
        return NULL;
}

static void reboot_loop_closed_cb(uv_handle_t *h)
{
        free(h->data);
}

/* Off the list at once; freed once its timer is closed. */
static void reboot_loop_free(struct reboot_loop *rl)
{
        list_del(&rl->link);
        uv_close((uv_handle_t *)&rl->timer, reboot_loop_closed_cb);
}

static uint64_t wall_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct reboot_loop *reboot_loop_new(struct ved *v, uint32_t ctid)
{
        struct reboot_loop *rl = calloc(1, sizeof(*rl));

        if (rl == NULL || uv_timer_init(v->loop, &rl->timer) < 0) {
                free(rl);
                return NULL;
        }
        rl->v = v;
        rl->ctid = ctid;
        rl->timer.data = rl;
        list_add_tail(&v->reboot_loops, &rl->link);
        return rl;
}

/* A pending delayed start is also in the store's meta table, so that a daemon
 * restarted meanwhile still starts the VE: "<streak> <due, ms of CLOCK_REALTIME>". */
#define HOLD_PREFIX "reboot_hold/"

/* A stored delayed start's value: 0, or -EINVAL when garbled. */
static int hold_parse(const char *value, unsigned *streak, uint64_t *due_ms)
{
        unsigned long long due;

        if (value == NULL || sscanf(value, "%u %llu", streak, &due) != 2)
                return -EINVAL;
        *due_ms = due;
        return 0;
}

/* Write key's value, or delete key for NULL. */
static void hold_write(struct ved *v, const char *key, const char *value)
{
        struct ve_error err = { 0 };
        int ret;

        ret = ved_begin(v, &err);
        if (ret == 0)
                ret = value != NULL ? ved_store_meta_set(&v->store, key, value, &err)
                                    : ved_store_meta_delete(&v->store, key, &err);
        if (ret == 0)
                ret = ved_commit(v, &err);
        else
                ved_rollback(v);
        if (ret < 0)
                log_error("Cannot store %s: %s", key, err.message);
        ve_error_clear(&err);
}

/* The VE's delayed start, due in delay ms; none for a delay of 0. */
static void hold_store(struct ved *v, uint32_t ctid, unsigned streak, unsigned delay)
{
        char key[32], value[64];

        snprintf(key, sizeof(key), HOLD_PREFIX "%u", ctid);
        snprintf(value, sizeof(value), "%u %llu", streak, (unsigned long long)(wall_ms() + delay));
        hold_write(v, key, delay > 0 ? value : NULL);
}

int ved_rt_delayed_start(struct ved *v, uint32_t ctid, unsigned *reboots, uint64_t *due_ms)
{
        struct reboot_loop *rl = reboot_loop_find(v, ctid);
        char key[32], value[64];

        /* Pending only while its timer runs; the store has when it is due. */
        if (rl == NULL || !uv_is_active((uv_handle_t *)&rl->timer))
                return -ENOENT;
        snprintf(key, sizeof(key), HOLD_PREFIX "%u", ctid);
        if (ved_store_meta_get(&v->store, key, value, sizeof(value)) < 0 ||
            hold_parse(value, reboots, due_ms) < 0)
                return -ENOENT;
        return 0;
}

bool ved_rt_reboot_loop_cancel(struct ved *v, uint32_t ctid)
{
        struct reboot_loop *rl = reboot_loop_find(v, ctid);
        bool pending;

        if (rl == NULL)
                return false;
        pending = uv_is_active((uv_handle_t *)&rl->timer);
        if (pending) {
                log_info("VE %u: its delayed start after a reboot loop is cancelled", ctid);
                hold_store(v, ctid, 0, 0);
        }
        reboot_loop_free(rl);
        return pending;
}

void ved_rt_reboot_loops_close(struct ved *v)
{
        while (!list_empty(&v->reboot_loops))
                reboot_loop_free(container_of(v->reboot_loops.next, struct reboot_loop, link));
}

static void delayed_start_cb(uv_timer_t *t)
{
        struct reboot_loop *rl = t->data;
        struct ve_error err = { 0 };
        int64_t op;

        if (rl->v->stopping)
                return;
        hold_store(rl->v, rl->ctid, 0, 0);
        if (ved_ve_action(rl->v, rl->ctid, "start", false, 0, "reboot loop: delayed start", &op,
                          &err) < 0)
                log_info("VE %u: no delayed start after its reboot loop: %s", rl->ctid,
                         err.message);
        ve_error_clear(&err);
}

/* A reboot request: the delay before the VE may start again, 0 for at once. */
static unsigned reboot_delay(struct ved_rt *rt)
{
        struct reboot_loop *rl = reboot_loop_find(rt->v, rt->ctid);
        bool fast = now_ms() - rt->adopted_ms < VED_REBOOT_FAST_MS;
        unsigned over;

        if (!fast) {
                if (rl != NULL)
                        reboot_loop_free(rl);
                return 0;
        }
        if (rl == NULL)
                rl = reboot_loop_new(rt->v, rt->ctid);
        if (rl == NULL)
                return 0;
        if (++rl->streak <= VED_REBOOT_FREE)
                return 0;
        over = rl->streak - VED_REBOOT_FREE - 1; /* 1 s, doubled `over` times */
        return over < 9 && 1000u << over < VED_REBOOT_DELAY_MAX_MS ? 1000u << over
                                                                   : VED_REBOOT_DELAY_MAX_MS;
}

/* The init exited without an operation asking for it: it halted, rebooted or
 * crashed. Clean up through a stop operation, or restart on a reboot request
 * (held back in a reboot loop). */
static void unexpected_exit(struct ved_rt *rt)
{
        struct ve_error err = { 0 };
        bool reboot = WIFSIGNALED(rt->exit_status) && WTERMSIG(rt->exit_status) == SIGHUP;
        unsigned delay = reboot ? reboot_delay(rt) : 0;
        struct reboot_loop *rl;
        int64_t op;

        log_info("VE %u: init exited (status 0x%x)%s", rt->ctid, rt->exit_status,
                 reboot ? ": reboot requested" : "");
        if (delay > 0) {
                rl = reboot_loop_find(rt->v, rt->ctid);
                /* The event says why in the log too. */
                if (ved_ve_action(rt->v, rt->ctid, "stop", true, 0, "reboot loop", &op, &err) ==
                    0) {
                        ved_event(rt->v, "ve.degraded", rt->ctid, op, NULL,
                                  "VE %u rebooted %u times in a row within %u s of its start: "
                                  "it starts again in %u s",
                                  rt->ctid, rl->streak, VED_REBOOT_FAST_MS / 1000, delay / 1000);
                        uv_timer_start(&rl->timer, delayed_start_cb, delay, 0);
                        hold_store(rt->v, rt->ctid, rl->streak, delay);
                } else {
                        log_error("VE %u: cannot clean up after its init: %s", rt->ctid,
                                  err.message);
                }
                ve_error_clear(&err);
                return;
        }
        if (!reboot)
                ved_rt_reboot_loop_cancel(rt->v, rt->ctid); /* a halt ends the row */
        if (ved_ve_action(rt->v, rt->ctid, reboot ? "restart" : "stop", true, 0,
                          reboot ? "rebooted from inside" : "init exited", &op, &err) < 0)
                log_error("VE %u: cannot clean up after its init: %s", rt->ctid, err.message);
        ve_error_clear(&err);
}

static void pid_poll_cb(uv_poll_t *h, int status, int events)
{
        struct ved_rt *rt = h->data;
        struct ve_error err = { 0 };
        int wstatus = 0;

        (void)status;
        (void)events;
        uv_poll_stop(h);
        /* Our own child is reaped here; an adopted one (after a daemon restart) is
         * reaped by the host's init, and waitid answers ECHILD. */
        if (ve_proc_wait(rt->proc.pidfd, 1, &wstatus, &err) == 1)
                rt->exit_status = wstatus;
        ve_error_clear(&err);
        rt->exited = true;
        if (!rt->busy && !rt->v->stopping)
                unexpected_exit(rt);
}

static void console_cb(uv_poll_t *h, int status, int events);

static void console_retry_cb(uv_timer_t *t)
{
        struct ved_rt *rt = t->data;

        uv_poll_start(&rt->console_poll, UV_READABLE | UV_DISCONNECT, console_cb);
}

static void console_cb(uv_poll_t *h, int status, int events)
{
        struct ved_rt *rt = h->data;
        char buf[4096];
        unsigned wait;
        ssize_t n;

        n = status < 0 || !(events & UV_READABLE) ? 0 : read(rt->proc.console_fd, buf, sizeof(buf));
        if (n <= 0) {
                if (n < 0 && errno == EAGAIN)
                        return;
                /* No VE process has the console open (a getty's vhangup() closes
                 * even our slave fd): EIO and POLLHUP until one opens it again. */
                uv_poll_stop(h);
                uv_timer_start(&rt->console_retry, console_retry_cb, CONSOLE_RETRY_MS, 0);
                return;
        }
        if (rt->console_log >= 0 && ve_console_log_write(rt->console_log, buf, (size_t)n) < 0)
                log_debug("VE %u: console log: %s", rt->ctid, strerror(errno));
        ved_exec_console_output(rt, buf, (size_t)n);
        wait = ve_console_bucket_take(&rt->console_bucket, (size_t)n);
        if (wait > 0) {
                uv_poll_stop(h);
                uv_timer_start(&rt->console_retry, console_retry_cb, wait, 0);
        }
}

void ved_rt_watch_console(struct ved_rt *rt)
{
        char path[PATH_MAX];

        if (rt->proc.console_fd < 0 || rt->console_watched)
                return;
        ved_ve_dir(rt->v, rt->ctid, path, sizeof(path));
        strncat(path, "/console.log", sizeof(path) - strlen(path) - 1);
        rt->console_log = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
        fcntl(rt->proc.console_fd, F_SETFL, fcntl(rt->proc.console_fd, F_GETFL) | O_NONBLOCK);
        if (uv_poll_init(rt->v->loop, &rt->console_poll, rt->proc.console_fd) < 0)
                return;
        uv_timer_init(rt->v->loop, &rt->console_retry);
        rt->console_poll.data = rt;
        rt->console_retry.data = rt;
        rt->console_watched = true;
        rt->handles += 2;
        uv_poll_start(&rt->console_poll, UV_READABLE | UV_DISCONNECT, console_cb);
}

struct ve_idmap ved_rt_idmap(json_t *ve)
{
        json_t *base = json_object_get(ve, "idmap_base");
        struct ve_idmap m = { 0, 0, 0 };

        if (json_is_integer(base)) {
                m.uid_base = m.gid_base = (uint32_t)json_integer_value(base);
                m.count = VE_IDMAP_COUNT;
        }
        return m;
}

int ved_rt_ensure_idmap(struct ved *v, uint32_t ctid, struct ve_error *err)
{
        json_t *ve = NULL;
        int64_t base;
        int ret;

        ret = ved_store_ve_get_ctid(&v->store, ctid, &ve, err);
        if (ret < 0)
                return ret;
        base = json_is_integer(json_object_get(ve, "idmap_base")) ? 0 : -1;
        json_decref(ve);
        if (base == 0)
                return 0;
        base = ved_store_idmap_allocate(&v->store, VED_IDMAP_FIRST, VED_IDMAP_COUNT,
                                        VED_IDMAP_LIMIT, err);
        if (base < 0)
                return (int)base;
        return ved_store_ve_set_idmap(&v->store, ctid, base, err);
}

/* The lowest range that neither another VE of ours holds (its record's) nor a live
 * claim of another instance: claimed for me, under the registry's lock. */
static int64_t claim_free_range(struct ved *v, int dirfd, const struct ved_idrange_holder *me,
                                struct ve_error *err)
{
        int64_t from = VED_IDMAP_FIRST;

        for (;;) {
                int64_t base = ved_store_idmap_allocate(&v->store, from, VED_IDMAP_COUNT,
                                                        VED_IDMAP_LIMIT, err);
                int ret;

                if (base < 0)
                        return base;
                ret = ved_idrange_claim(dirfd, base, me, NULL, err);
                if (ret == 0)
                        return base;
                if (ret != -EBUSY)
                        return ret;
                ve_error_clear(err);
                from = base + VED_IDMAP_COUNT;
        }
}

int ved_rt_claim_idmap(struct ved *v, uint32_t ctid, json_t *ve, struct ve_error *err)
{
        json_t *recorded = json_object_get(ve, "idmap_base");
        struct ved_idrange_holder me, other;
        int64_t base;
        int ret, dirfd;

        if (!json_is_integer(recorded)) /* no user namespace */
                return 0;
        base = json_integer_value(recorded);
        ret = ved_idrange_holder_init(&me, v->cfg.instance, ctid, 0, err);
        if (ret < 0)
                return ret;
        dirfd = ved_idrange_lock(VED_IDRANGE_DIR, err);
        if (dirfd < 0)
                return dirfd;
        ret = ved_idrange_claim(dirfd, base, &me, &other, err);
        if (ret == -EBUSY) {
                ve_error_clear(err);
                base = claim_free_range(v, dirfd, &me, err);
        }
        ved_idrange_unlock(dirfd);
        if (ret != -EBUSY)
                return ret;
        if (base < 0)
                return (int)base;
        log_info("VE %u: its uid range is in use by VE %u of ved instance %s: it gets "
                 "%lld-%lld",
                 ctid, other.ctid, other.instance, (long long)base,
                 (long long)(base + VED_IDMAP_COUNT - 1));
        ret = ved_store_ve_set_idmap(&v->store, ctid, base, err);
        if (ret < 0) {
                ved_idrange_release(VED_IDRANGE_DIR, base, v->cfg.instance, ctid);
                return ret;
        }
        json_object_set_new(ve, "idmap_base", json_integer(base));
        return 0;
}

void ved_rt_release_idmap(struct ved *v, uint32_t ctid)
{
        json_t *ve = NULL;

        if (ved_store_ve_get_ctid(&v->store, ctid, &ve, NULL) < 0)
                return;
        if (json_is_integer(json_object_get(ve, "idmap_base")))
                ved_idrange_release(VED_IDRANGE_DIR,
                                    json_integer_value(json_object_get(ve, "idmap_base")),
                                    v->cfg.instance, ctid);
        json_decref(ve);
}

int ved_rt_adopt(struct ved *v, uint32_t ctid, struct ve_proc *proc, const struct ve_idmap *idmap,
                 struct ve_error *err)
{
        struct ved_rt *rt;
        int ret;

        /* SIGTERM came while this VE started (a start or restart finishing): it
         * runs on without watchers, which would keep the loop, and so the
         * daemon, alive for good; the next daemon finds it again. */
        if (v->stopping) {
                ved_rt_release(v, ctid);
                ve_proc_close(proc);
                return 0;
        }
        rt = calloc(1, sizeof(*rt));
        if (rt == NULL)
                return ve_error_set(err, ENOMEM, "out of memory");
        ved_rt_release(v, ctid);
        rt->v = v;
        rt->ctid = ctid;
        rt->proc = *proc;
        rt->console_log = -EBADF;
        rt->adopted_ms = now_ms();
        list_init(&rt->consoles);
        rt->idmap = *idmap;
        proc->pidfd = proc->console_fd = proc->console_peer = proc->statfs_fd = -EBADF;
        list_add_tail(&v->rts, &rt->link);
        ret = uv_poll_init(v->loop, &rt->pid_poll, rt->proc.pidfd);
        if (ret < 0) {
                rt_close(rt);
                return ve_error_set(err, -ret, "watch VE %u: %s", ctid, uv_strerror(ret));
        }
        rt->pid_poll.data = rt;
        rt->handles = 1;
        uv_poll_start(&rt->pid_poll, UV_READABLE, pid_poll_cb);
        ved_rt_watch_console(rt);
        return 0;
}

void ved_rt_shutdown(struct ved *v)
{
        struct list_head *pos, *tmp;

        /* VEs keep running: only our watchers go. */
        list_for_each_safe(pos, tmp, &v->rts) rt_close(container_of(pos, struct ved_rt, link));
        ved_rt_reboot_loops_close(v);
        ved_traffic_stop(v);
}

void ved_ve_mountpoints(struct ved *v, uint32_t ctid, char *root, char *private_area, size_t len)
{
        char dir[PATH_MAX / 2];

        ved_ve_dir(v, ctid, dir, sizeof(dir));
        snprintf(root, len, "%s/root", dir);
        snprintf(private_area, len, "%s/private", dir);
}

int ved_rt_teardown_record(struct ved *v, json_t *ve, bool removing, struct ve_error *err)
{
        uint32_t ctid = (uint32_t)json_integer_value(json_object_get(ve, "ctid"));
        char root[PATH_MAX], private_area[PATH_MAX];
        size_t n = 0;
        char **addrs = ved_ip_list(json_object_get(ve, "ip"), &n);
        struct ved_ve_host h = {
                .cg = v->cgroup,
                .instance = v->cfg.instance,
                .ctid = ctid,
                .root = root,
                .private_area = private_area,
                .addrs = (const char *const *)addrs,
                .n_addrs = n,
                .uplinks = (const char *const *)v->cfg.uplinks,
                .n_uplinks = v->cfg.n_uplinks,
                .removing = removing,
        };
        int ret;

        ved_ve_mountpoints(v, ctid, root, private_area, sizeof(root));
        ret = ved_rt_teardown(&h, err);
        ved_ip_list_free(addrs);
        return ret;
}

/* A VE found running at startup claims its range again, for its init: a claim
 * lost with /run, or one a daemon older than claims never made. Another VE's
 * claim on it (two instances that allocated alike before claims) cannot be
 * helped while both run: said, and the next start of this one moves it. */
static void claim_running(struct ved *v, uint32_t ctid, pid_t pid, uint32_t base)
{
        struct ved_idrange_holder me, other;
        struct ve_error err = { 0 };

        if (ved_idrange_holder_init(&me, v->cfg.instance, ctid, pid, &err) == 0 &&
            ved_idrange_claim_locked(VED_IDRANGE_DIR, base, &me, &other, &err) == -EBUSY)
                log_warn("VE %u shares its uid range %u-%u with VE %u of ved instance %s: it "
                         "moves to a free range at its next start",
                         ctid, base, base + (uint32_t)VED_IDMAP_COUNT - 1, other.ctid,
                         other.instance);
        else if (err.message != NULL)
                log_warn("VE %u: cannot claim its uid range: %s", ctid, err.message);
        ve_error_clear(&err);
}

/* One VE the store says runs (or was between states): find its init again, or
 * clean up what it left and mark it stopped. Returns true when it runs. */
static bool reconcile_one(struct ved *v, json_t *ve, struct ve_error *err)
{
        uint32_t ctid = (uint32_t)json_integer_value(json_object_get(ve, "ctid"));
        pid_t pid = (pid_t)json_integer_value(json_object_get(ve, "pid"));
        uint64_t start = (uint64_t)json_integer_value(json_object_get(ve, "pid_starttime"));
        char cgpath[64];
        struct ve_proc proc = {
                .pidfd = -EBADF, .console_fd = -EBADF, .console_peer = -EBADF, .statfs_fd = -EBADF
        };

        ved_rt_cgroup_path(v, ctid, cgpath, sizeof(cgpath));
        struct ve_idmap idmap = ved_rt_idmap(ve);

        if (pid > 0 && ve_proc_find(pid, start, cgpath, &proc, NULL) == 0 &&
            ved_rt_adopt(v, ctid, &proc, &idmap, err) == 0) {
                /* Found again, not changed: its version (the ETag a panel holds)
                 * stays as it was. */
                if (strcmp(json_string_value(json_object_get(ve, "state")) ?: "", "running") != 0)
                        ved_store_ve_set_state(&v->store, ctid, "running", NULL);
                if (idmap.count > 0)
                        claim_running(v, ctid, pid, idmap.uid_base);
                log_info("VE %u is still running (pid %d)", ctid, (int)pid);
                return true;
        }
        ve_proc_close(&proc);
        if (ved_rt_teardown_record(v, ve, false, err) < 0) {
                log_error("VE %u: %s", ctid, err->message);
                ve_error_clear(err);
                ved_store_ve_set_state(&v->store, ctid, "broken", NULL);
                return false;
        }
        ved_rt_release_idmap(v, ctid);
        ved_store_ve_set_runtime(&v->store, ctid, 0, 0, NULL);
        ved_store_ve_set_state(&v->store, ctid, "stopped", NULL);
        ved_event(v, "ve.state", ctid, 0, "stopped", "VE %u stopped while ved was down", ctid);
        return false;
}

static bool wants_boot(json_t *ve, bool was_running, bool host_rebooted)
{
        json_t *onboot = json_object_get(ve, "onboot");

        if (json_is_false(onboot))
                return false;
        if (json_is_true(onboot))
                return was_running || host_rebooted;
        return was_running && host_rebooted;
}

/* The delayed starts a previous daemon left pending: each is pending again, for
 * what is left of its delay (none past it), with its streak, if its VE is still
 * stopped. After a host reboot the loop it was in is a thing of the last boot:
 * the VE is one that was running, and starts with the others (boot) if
 * wants_boot() says so, unless ved_rt_reconcile() has listed it already (onboot
 * yes, which wants it even stopped). */
static void restore_holds(struct ved *v, bool host_rebooted, json_t *boot)
{
        struct ve_error err = { 0 };
        json_t *holds = NULL, *value, *ve = NULL;
        const char *key;
        void *tmp;

        if (ved_store_meta_list(&v->store, HOLD_PREFIX, &holds, &err) < 0) {
                log_error("Cannot read the delayed starts: %s", err.message);
                ve_error_clear(&err);
                return;
        }
        json_object_foreach_safe(holds, tmp, key, value)
        {
                unsigned ctid = 0, streak = 0;
                uint64_t due = 0;
                struct reboot_loop *rl;
                uint64_t now = wall_ms();
                const char *state;

                if (sscanf(key, HOLD_PREFIX "%u", &ctid) != 1 ||
                    hold_parse(json_string_value(value), &streak, &due) < 0 ||
                    ved_store_ve_get_ctid(&v->store, ctid, &ve, &err) < 0) {
                        ve_error_clear(&err);
                        hold_write(v, key, NULL); /* garbled, or its VE is gone */
                        continue;
                }
                state = json_string_value(json_object_get(ve, "state"));
                if (strcmp(state, "stopped") != 0 || host_rebooted) {
                        hold_store(v, ctid, 0, 0);
                        if (strcmp(state, "stopped") == 0 && host_rebooted &&
                            wants_boot(ve, true, true) && !wants_boot(ve, false, true))
                                json_array_append_new(boot, json_integer(ctid));
                } else if ((rl = reboot_loop_new(v, ctid)) != NULL) {
                        rl->streak = streak;
                        uv_timer_start(&rl->timer, delayed_start_cb, due > now ? due - now : 0, 0);
                        log_info("VE %u: held back after a reboot loop, starts in %llu s", ctid,
                                 due > now ? (unsigned long long)(due - now + 999) / 1000 : 0);
                }
                json_decref(ve);
                ve = NULL;
        }
        json_decref(holds);
}

int ved_rt_reconcile(struct ved *v, bool host_rebooted, struct ve_error *err)
{
        json_t *ves = NULL, *ve, *boot = json_array();
        size_t i;
        int ret;

        ret = ved_store_ve_list(&v->store, NULL, NULL, &ves, err);
        if (ret < 0)
                return ret;
        json_array_foreach(ves, i, ve)
        {
                const char *state = json_string_value(json_object_get(ve, "state"));
                bool was_running = strcmp(state, "stopped") != 0 && strcmp(state, "broken") != 0;
                bool runs = false;

                if (!was_running && strcmp(state, "stopped") != 0)
                        continue;
                ved_begin(v, NULL);
                if (was_running)
                        runs = reconcile_one(v, ve, err);
                ved_commit(v, NULL);
                /* (An interrupted start or restart of it runs again instead.) */
                if (!runs && wants_boot(ve, was_running, host_rebooted) &&
                    !ved_ops_resume_pending(
                        v, (uint32_t)json_integer_value(json_object_get(ve, "ctid"))))
                        json_array_append(boot, json_object_get(ve, "ctid"));
        }
        json_decref(ves);
        restore_holds(v, host_rebooted, boot);
        json_array_foreach(boot, i, ve)
        {
                int64_t op;
                uint32_t ctid = (uint32_t)json_integer_value(ve);

                log_info("Starting VE %u (onboot)", ctid);
                if (ved_ve_action(v, ctid, "start", false, 0, "onboot", &op, err) < 0) {
                        log_error("Cannot start VE %u: %s", ctid, err->message);
                        ve_error_clear(err);
                }
        }
        json_decref(boot);
        return 0;
}

static bool list_has(char **list, const char *s)
{
        for (char **p = list; p && *p; p++)
                if (strcmp(*p, s) == 0)
                        return true;
        return false;
}

int ved_rt_net_change(struct ved *v, uint32_t ctid, json_t *old_ips, json_t *new_ips,
                      struct ve_error *err)
{
        struct ved_rt *rt = ved_rt_find(v, ctid);
        size_t n_old = 0, n_new = 0;
        char **olds, **news;
        struct ved_netplan *plan;
        struct ve_net_config cfg;
        struct ve_net_bridged bridged;
        json_t *ve = NULL;
        int ret = 0;

        if (rt == NULL || rt->exited)
                return 0;
        /* Routed or bridged, as the record says (the running VE's netif cannot
         * change: ved_net_patch()). */
        ret = ved_store_ve_get_ctid(&v->store, ctid, &ve, err);
        if (ret < 0)
                return ret;
        plan = ved_netplan_new(v, ve);
        json_decref(ve);
        if (plan == NULL)
                return ve_error_set(err, ENOMEM, "out of memory");
        ved_netplan_config(plan, rt->proc.pid, &cfg, &bridged);
        olds = ved_ip_list(old_ips, &n_old);
        news = ved_ip_list(new_ips, &n_new);
        /* How many of each list were gone through without a failure. */
        size_t dels = 0, adds = 0;

        while (ret == 0 && dels < n_old) {
                if (!list_has(news, olds[dels]))
                        ret = ve_net_addr_del(&cfg, olds[dels], err);
                if (ret == 0)
                        dels++;
        }
        while (ret == 0 && adds < n_new) {
                if (!list_has(olds, news[adds]))
                        ret = ve_net_addr_add(&cfg, news[adds], err);
                if (ret == 0)
                        adds++;
        }
        /* A change that fails is undone, as the record keeps the old addresses:
         * what was added goes (an add that fails cleans up after itself), what
         * was deleted comes back, with the one whose delete failed. */
        if (ret < 0) {
                struct ve_error tmp = { 0 };

                for (size_t i = 0; i < adds; i++)
                        if (!list_has(olds, news[i]) && ve_net_addr_del(&cfg, news[i], &tmp) < 0)
                                log_warn("VE %u: undoing an address change: %s", ctid, tmp.message);
                for (size_t i = 0; i < n_old && i <= dels; i++)
                        if (!list_has(news, olds[i]) && ve_net_addr_add(&cfg, olds[i], &tmp) < 0)
                                log_warn("VE %u: undoing an address change: %s", ctid, tmp.message);
                ve_error_clear(&tmp);
        }
        ved_ip_list_free(olds);
        ved_ip_list_free(news);
        ved_netplan_free(plan);
        if (ret < 0)
                return ve_error_prefix(err, "change the addresses of VE %u", ctid);
        return 0;
}
