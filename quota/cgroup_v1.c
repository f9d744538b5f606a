/* cgroup v1: one directory per VE in each hierarchy mounted under <root>. */
#include "quota/cgroup.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "ve/cleanup.h"

/* name=systemd is mounted as "systemd"; hosts that co-mount controllers (cpu,cpuacct)
 * expose the same hierarchy under several names, which dedup() folds into one. */
/* "unified" is the hybrid layout's cgroup2 mount: no controllers, but systemd in a
 * VE tracks its units there (it learns of empty cgroups only from cgroup2's
 * cgroup.events; v1 would need a release agent, which only the host may set), so
 * the VE gets a cgroup in it like in every other hierarchy. */
static const char *const controllers[] = {
        "cpu",     "cpuacct", "cpuset", "memory",  "devices",
        "freezer", "blkio",   "pids",   "systemd", "unified",
};
#define N_CONTROLLERS (sizeof(controllers) / sizeof(controllers[0]))

struct hierarchy {
        const char *controller;
        char path[256]; /* <root>/<controller>; quota_cgroup_open() bounds root */
};

struct hierarchies {
        struct hierarchy h[N_CONTROLLERS];
        size_t n;
};

static bool seen_before(const struct stat *all, size_t n, const struct stat *st)
{
        for (size_t i = 0; i < n; i++)
                if (all[i].st_dev == st->st_dev && all[i].st_ino == st->st_ino)
                        return true;
        return false;
}

/* The distinct mounted hierarchies; controllers the host lacks are skipped, but the
 * freezer is required since kill_all() depends on it. */
static int list_hierarchies(const struct quota_cgroup *cg, struct hierarchies *hs,
                            struct ve_error *err)
{
        struct stat seen[N_CONTROLLERS];
        bool have_freezer = false;

        hs->n = 0;
        for (size_t i = 0; i < N_CONTROLLERS; i++) {
                struct hierarchy *h = &hs->h[hs->n];
                struct statfs sfs;
                struct stat st;

                snprintf(h->path, sizeof(h->path), "%s/%s", cg->root, controllers[i]);
                if (statfs(h->path, &sfs) < 0 ||
                    sfs.f_type != (strcmp(controllers[i], "unified") == 0 ? CGROUP2_SUPER_MAGIC
                                                                          : CGROUP_SUPER_MAGIC) ||
                    stat(h->path, &st) < 0 || seen_before(seen, hs->n, &st))
                        continue;
                seen[hs->n] = st;
                h->controller = controllers[i];
                have_freezer |= strcmp(controllers[i], "freezer") == 0;
                hs->n++;
        }
        if (!have_freezer)
                return ve_error_set(err, VE_EUNSUPPORTED, "no cgroup v1 freezer under %s",
                                    cg->root);
        return 0;
}

static int freezer_dir(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                       char *buf, size_t len)
{
        snprintf(buf, len, "%s/freezer/%s/%u", cg->root, instance, ctid);
        return 0;
}

static bool is_blank(const char *s)
{
        return s[strspn(s, " \t\n")] == '\0';
}

/* A new cpuset starts with no cpus and no mems and refuses tasks until given some. */
static int cpuset_inherit(const char *dir, struct ve_error *err)
{
        static const char *const files[] = { "cpuset.cpus", "cpuset.mems" };

        for (size_t i = 0; i < 2; i++) {
                char path[PATH_MAX], parent[PATH_MAX], buf[4096];
                int ret;

                snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
                ret = quota_cg_read(path, buf, sizeof(buf), err);
                if (ret < 0)
                        return ret;
                if (!is_blank(buf))
                        continue;
                snprintf(parent, sizeof(parent), "%s/../%s", dir, files[i]);
                ret = quota_cg_read(parent, buf, sizeof(buf), err);
                if (ret < 0)
                        return ret;
                ret = quota_cg_write(path, buf, err);
                if (ret < 0)
                        return ret;
        }
        return 0;
}

static int make_dir(const struct hierarchy *h, const char *dir, bool *made, struct ve_error *err)
{
        *made = false;
        if (mkdir(dir, 0755) < 0) {
                if (errno != EEXIST)
                        return ve_error_errno(err, errno, "create cgroup %s", dir);
        } else {
                *made = true;
        }
        if (strcmp(h->controller, "cpuset") == 0)
                return cpuset_inherit(dir, err);
        return 0;
}

static int devices_allow(const struct hierarchies *hs, const char *instance, uint32_t ctid,
                         struct ve_error *err)
{
        for (size_t i = 0; i < hs->n; i++) {
                char dir[PATH_MAX];

                if (strcmp(hs->h[i].controller, "devices") != 0)
                        continue;
                snprintf(dir, sizeof(dir), "%s/%s/%u", hs->h[i].path, instance, ctid);
                return quota_cg_devices_v1(dir, err);
        }
        return ve_error_set(
            err, VE_EUNSUPPORTED,
            "no cgroup v1 devices hierarchy: VEs cannot be confined to their devices");
}

static int v1_devices_allow(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                            struct ve_error *err)
{
        struct hierarchies hs;
        int ret;

        ret = list_hierarchies(cg, &hs, err);
        return ret < 0 ? ret : devices_allow(&hs, instance, ctid, err);
}

static int v1_create(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                     struct ve_error *err)
{
        struct hierarchies hs;
        bool made_inst[N_CONTROLLERS] = { 0 }, made_ve[N_CONTROLLERS] = { 0 };
        char inst[N_CONTROLLERS][384], ve[N_CONTROLLERS][400];
        size_t i;
        int ret;

        ret = list_hierarchies(cg, &hs, err);
        if (ret < 0)
                return ret;
        for (i = 0; i < hs.n; i++) {
                snprintf(inst[i], sizeof(inst[i]), "%s/%s", hs.h[i].path, instance);
                snprintf(ve[i], sizeof(ve[i]), "%s/%u", inst[i], ctid);
                ret = make_dir(&hs.h[i], inst[i], &made_inst[i], err);
                if (ret < 0)
                        break;
                ret = make_dir(&hs.h[i], ve[i], &made_ve[i], err);
                if (ret < 0)
                        break;
        }
        if (ret == 0)
                ret = devices_allow(&hs, instance, ctid, err);
        if (ret == 0)
                return 0;
        /* Undo only what this call made; an instance another VE uses stays busy. */
        for (size_t j = 0; j <= i && j < hs.n; j++) {
                if (made_ve[j])
                        rmdir(ve[j]);
                if (made_inst[j])
                        rmdir(inst[j]);
        }
        return ret;
}

static int v1_open_fd(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                      struct ve_error *err)
{
        (void)cg;
        return ve_error_set(err, EOPNOTSUPP, "cgroup %s/%u: CLONE_INTO_CGROUP needs cgroup v2",
                            instance, ctid);
}

static int v1_attach(const struct quota_cgroup *cg, const char *instance, uint32_t ctid, pid_t pid,
                     struct ve_error *err)
{
        struct hierarchies hs;
        char value[32];
        int ret;

        ret = list_hierarchies(cg, &hs, err);
        if (ret < 0)
                return ret;
        snprintf(value, sizeof(value), "%d", (int)pid);
        for (size_t i = 0; i < hs.n; i++) {
                char path[PATH_MAX];

                snprintf(path, sizeof(path), "%s/%s/%u/cgroup.procs", hs.h[i].path, instance, ctid);
                ret = quota_cg_write(path, value, err);
                if (ret < 0)
                        return ret;
        }
        return 0;
}

static int v1_procs(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                    pid_t **pids, size_t *n, struct ve_error *err)
{
        char dir[PATH_MAX];

        freezer_dir(cg, instance, ctid, dir, sizeof(dir));
        return quota_cg_collect_procs(dir, pids, n, err);
}

static int v1_is_populated(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                           bool *out, struct ve_error *err)
{
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0;
        int ret;

        ret = v1_procs(cg, instance, ctid, &pids, &n, err);
        if (ret < 0)
                return ret;
        *out = n > 0;
        return 0;
}

/* Freezing first means no process can fork between our reading cgroup.procs and
 * the SIGKILLs: the list is complete when the signals go out. */
static int freeze(const char *dir, const char *state, struct ve_error *err)
{
        char path[PATH_MAX], buf[64];
        int ret;

        snprintf(path, sizeof(path), "%s/freezer.state", dir);
        ret = quota_cg_write(path, state, err);
        if (ret < 0)
                return ret;
        for (int i = 0; i < 100; i++) {
                ret = quota_cg_read(path, buf, sizeof(buf), err);
                if (ret < 0)
                        return ret;
                if (strncmp(buf, state, strlen(state)) == 0)
                        return 0;
                quota_cg_sleep_ms(10);
        }
        /* Still FREEZING (a task stuck in the kernel): kill what we see anyway. */
        return 0;
}

static int kill_round(const char *dir, size_t *killed, struct ve_error *err)
{
        int ret, ret2;

        ret = freeze(dir, "FROZEN", err);
        if (ret < 0)
                return ret;
        ret = quota_cg_kill_pids(dir, SIGKILL, killed, err);
        ret2 = freeze(dir, "THAWED", ret < 0 ? NULL : err);
        return ret < 0 ? ret : ret2;
}

static int v1_kill_all(const struct quota_cgroup *cg, const char *instance, uint32_t ctid, int sig,
                       struct ve_error *err)
{
        char dir[PATH_MAX];
        size_t killed = 0;
        struct stat st;
        int ret;

        freezer_dir(cg, instance, ctid, dir, sizeof(dir));
        if (stat(dir, &st) < 0 && errno == ENOENT)
                return 0;
        if (sig != SIGKILL)
                return quota_cg_kill_pids(dir, sig, &killed, err);
        for (int i = 0; i < 250; i++) {
                ret = kill_round(dir, &killed, err);
                if (ret < 0)
                        return ret;
                if (killed == 0)
                        return 0;
                quota_cg_sleep_ms(20);
        }
        return ve_error_set(err, EBUSY, "cgroup %s/%u: processes left after SIGKILL", instance,
                            ctid);
}

static int v1_destroy(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                      struct ve_error *err)
{
        struct hierarchies hs;
        int ret;

        ret = list_hierarchies(cg, &hs, err);
        if (ret < 0)
                return ret;
        for (size_t i = 0; i < hs.n; i++) {
                char dir[PATH_MAX];

                snprintf(dir, sizeof(dir), "%s/%s/%u", hs.h[i].path, instance, ctid);
                ret = quota_cg_rmdir_tree(dir, err);
                if (ret < 0)
                        return ret;
        }
        return 0;
}

static int v1_exists(const struct quota_cgroup *cg, const char *instance, uint32_t ctid, bool *out,
                     struct ve_error *err)
{
        char dir[PATH_MAX];
        struct stat st;

        freezer_dir(cg, instance, ctid, dir, sizeof(dir));
        if (stat(dir, &st) == 0) {
                *out = true;
                return 0;
        }
        if (errno != ENOENT)
                return ve_error_errno(err, errno, "stat %s", dir);
        *out = false;
        return 0;
}

static int v1_remove_instance(const struct quota_cgroup *cg, const char *instance,
                              struct ve_error *err)
{
        struct hierarchies hs;
        int ret;

        ret = list_hierarchies(cg, &hs, err);
        if (ret < 0)
                return ret;
        for (size_t i = 0; i < hs.n; i++) {
                char dir[PATH_MAX];

                snprintf(dir, sizeof(dir), "%s/%s/" QUOTA_CGROUP_HELPERS, hs.h[i].path, instance);
                if (rmdir(dir) < 0 && errno != ENOENT)
                        return ve_error_errno(err, errno == ENOTEMPTY ? EBUSY : errno,
                                              "remove cgroup %s", dir);
                snprintf(dir, sizeof(dir), "%s/%s", hs.h[i].path, instance);
                if (rmdir(dir) < 0 && errno != ENOENT)
                        return ve_error_errno(err, errno == ENOTEMPTY ? EBUSY : errno,
                                              "remove cgroup %s", dir);
        }
        return 0;
}

/* Only the cpu hierarchy: the helpers stay in the daemon's cgroups elsewhere. */
static int v1_helpers(const struct quota_cgroup *cg, const char *instance, pid_t pid,
                      unsigned cpu_permille, struct ve_error *err)
{
        struct hierarchies hs;
        char dir[PATH_MAX], value[32];
        bool made;
        int ret;

        ret = list_hierarchies(cg, &hs, err);
        if (ret < 0)
                return ret;
        for (size_t i = 0; i < hs.n; i++) {
                if (strcmp(hs.h[i].controller, "cpu") != 0)
                        continue;
                snprintf(dir, sizeof(dir), "%s/%s", hs.h[i].path, instance);
                ret = make_dir(&hs.h[i], dir, &made, err);
                strncat(dir, "/" QUOTA_CGROUP_HELPERS, sizeof(dir) - strlen(dir) - 1);
                if (ret == 0)
                        ret = make_dir(&hs.h[i], dir, &made, err);
                quota_cg_write_in(dir, "cpu.cfs_period_us", "100000", &ret, err);
                snprintf(value, sizeof(value), "%u", cpu_permille * 100);
                quota_cg_write_in(dir, "cpu.cfs_quota_us", value, &ret, err);
                snprintf(value, sizeof(value), "%d", (int)pid);
                return quota_cg_write_in(dir, "cgroup.procs", value, &ret, err);
        }
        return ve_error_set(err, ENOENT, "the host has no cpu cgroup hierarchy");
}

/* Only name=systemd and the hybrid cgroup2 (no controllers): the VE's systemd
 * makes its units' cgroups there. The
 * controllers' directories stay root's, so the VE cannot move processes around
 * under its limits or make sub-cgroups that escape them. */
static int v1_delegate(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                       uid_t uid, gid_t gid, struct ve_error *err)
{
        static const char *const files[] = { "cgroup.procs", "tasks", "cgroup.clone_children",
                                             NULL };
        static const char *const files2[] = { "cgroup.procs", "cgroup.threads",
                                              "cgroup.subtree_control", NULL };
        struct hierarchies hs;
        int ret;

        ret = list_hierarchies(cg, &hs, err);
        if (ret < 0)
                return ret;
        for (size_t i = 0; i < hs.n; i++) {
                bool unified = strcmp(hs.h[i].controller, "unified") == 0;
                char dir[PATH_MAX];

                if (strcmp(hs.h[i].controller, "systemd") != 0 && !unified)
                        continue;
                snprintf(dir, sizeof(dir), "%s/%s/%u", hs.h[i].path, instance, ctid);
                ret = quota_cg_chown(dir, unified ? files2 : files, uid, gid, err);
                if (ret < 0)
                        return ret;
        }
        return 0;
}

/* The thread moves itself into the freezer cgroup it is in: a move that changes
 * nothing but takes the kernel's threadgroup lock for writing, as an attach does. */
static atomic_bool warming;

static void *prewarm_thread(void *arg)
{
        _cleanup_free_ char *root = arg; /* its own copy: it may outlive the handle */
        _cleanup_fclose_ FILE *f = fopen("/proc/thread-self/cgroup", "re");
        char line[PATH_MAX], path[PATH_MAX + 300], tid[16];
        struct ve_error err = { 0 };

        /* "6:freezer:/path", the freezer maybe mounted with others ("6:a,freezer:/"). */
        while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
                char *ctl = strchr(line, ':'), *rel = ctl ? strchr(ctl + 1, ':') : NULL;
                char *save = NULL, *name;
                bool freezer = false;

                if (rel == NULL)
                        continue;
                *rel = '\0';
                for (name = strtok_r(ctl + 1, ",", &save); name && !freezer;
                     name = strtok_r(NULL, ",", &save))
                        freezer = strcmp(name, "freezer") == 0;
                if (!freezer)
                        continue;
                rel[1 + strcspn(rel + 1, "\n")] = '\0';
                snprintf(path, sizeof(path), "%s/freezer%s%stasks", root, rel + 1,
                         strcmp(rel + 1, "/") == 0 ? "" : "/");
                snprintf(tid, sizeof(tid), "%d", (int)gettid());
                quota_cg_write(path, tid, &err);
                ve_error_clear(&err);
                break;
        }
        atomic_store(&warming, false);
        return NULL;
}

static void v1_prewarm(const struct quota_cgroup *cg)
{
        char *root;
        sigset_t all, old;
        pthread_attr_t attr;
        pthread_t t;

        if (atomic_exchange(&warming, true))
                return; /* one in flight already switches the lock */
        root = strdup(cg->root);
        if (root == NULL) {
                atomic_store(&warming, false);
                return;
        }
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 64 * 1024);
        /* The thread takes no signal: the daemon's are the loop's. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        if (pthread_create(&t, &attr, prewarm_thread, root) != 0) {
                free(root);
                atomic_store(&warming, false);
        }
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);
}

const struct quota_cgroup_ops quota_cgroup_v1_ops = {
        .name = "v1",
        .create = v1_create,
        .open_fd = v1_open_fd,
        .attach = v1_attach,
        .prewarm = v1_prewarm,
        .procs = v1_procs,
        .is_populated = v1_is_populated,
        .kill_all = v1_kill_all,
        .destroy = v1_destroy,
        .exists = v1_exists,
        .remove_instance = v1_remove_instance,
        .helpers = v1_helpers,
        .devices_allow = v1_devices_allow,
        .delegate = v1_delegate,
        .set_limits = quota_v1_set_limits,
        .usage = quota_v1_usage,
        .unenforced = quota_v1_unenforced,
};
