/* cgroup v2: one directory <root>/<instance>/<ctid> in the unified hierarchy. */
#include "quota/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ve/cleanup.h"

/* Controllers the daemon asks the host root to delegate to its instance. */
static const char *const wanted[] = { "cpu", "cpuset", "io", "memory", "pids" };

static void ve_dir(const struct quota_cgroup *cg, const char *instance, uint32_t ctid, char *buf,
                   size_t len)
{
        snprintf(buf, len, "%s/%s/%u", cg->root, instance, ctid);
}

static bool has_word(const char *list, const char *word)
{
        size_t len = strlen(word);

        for (const char *p = list; (p = strstr(p, word)) != NULL; p += len)
                if ((p == list || p[-1] == ' ') &&
                    (p[len] == '\0' || p[len] == ' ' || p[len] == '\n'))
                        return true;
        return false;
}

/* Enable in dir's cgroup.subtree_control each controller of `only` (or all when
 * NULL) that dir has in cgroup.controllers and does not yet delegate. One write per
 * controller, so a controller the host cannot enable is named in the error. */
static int enable_controllers(const char *dir, const char *const *only, size_t n_only,
                              struct ve_error *err)
{
        char path[PATH_MAX], avail[1024], enabled[1024];
        int ret;

        snprintf(path, sizeof(path), "%s/cgroup.controllers", dir);
        ret = quota_cg_read(path, avail, sizeof(avail), err);
        if (ret < 0)
                return ret;
        snprintf(path, sizeof(path), "%s/cgroup.subtree_control", dir);
        ret = quota_cg_read(path, enabled, sizeof(enabled), err);
        if (ret < 0)
                return ret;
        for (char *save = NULL, *tok = strtok_r(avail, " \n", &save); tok != NULL;
             tok = strtok_r(NULL, " \n", &save)) {
                char value[64];
                bool pick = only == NULL;

                for (size_t i = 0; i < n_only; i++)
                        pick |= strcmp(only[i], tok) == 0;
                if (!pick || has_word(enabled, tok))
                        continue;
                snprintf(value, sizeof(value), "+%s", tok);
                ret = quota_cg_write(path, value, err);
                if (ret < 0)
                        return ret;
        }
        return 0;
}

static int v2_create(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                     struct ve_error *err)
{
        char inst[PATH_MAX], ve[PATH_MAX];
        bool made_inst = false, made_ve = false;
        int ret;

        snprintf(inst, sizeof(inst), "%s/%s", cg->root, instance);
        ve_dir(cg, instance, ctid, ve, sizeof(ve));
        ret = enable_controllers(cg->root, wanted, sizeof(wanted) / sizeof(wanted[0]), err);
        if (ret < 0)
                return ret;
        if (mkdir(inst, 0755) == 0)
                made_inst = true;
        else if (errno != EEXIST)
                return ve_error_errno(err, errno, "create cgroup %s", inst);
        ret = enable_controllers(inst, NULL, 0, err);
        if (ret == 0 && mkdir(ve, 0755) == 0)
                made_ve = true;
        else if (ret == 0 && errno != EEXIST)
                ret = ve_error_errno(err, errno, "create cgroup %s", ve);
        if (ret == 0)
                ret = quota_cg_devices_bpf(ve, err);
        if (ret < 0 && made_ve)
                rmdir(ve);
        if (ret < 0 && made_inst)
                rmdir(inst);
        return ret;
}

static int v2_devices_allow(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                            struct ve_error *err)
{
        char dir[PATH_MAX];

        ve_dir(cg, instance, ctid, dir, sizeof(dir));
        return quota_cg_devices_bpf(dir, err);
}

static int v2_open_fd(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                      struct ve_error *err)
{
        char dir[PATH_MAX];
        int fd;

        ve_dir(cg, instance, ctid, dir, sizeof(dir));
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return ve_error_errno(err, errno, "open cgroup %s", dir);
        return fd;
}

static int v2_attach(const struct quota_cgroup *cg, const char *instance, uint32_t ctid, pid_t pid,
                     struct ve_error *err)
{
        char path[PATH_MAX], value[32];

        snprintf(path, sizeof(path), "%s/%s/%u/cgroup.procs", cg->root, instance, ctid);
        snprintf(value, sizeof(value), "%d", (int)pid);
        return quota_cg_write(path, value, err);
}

static int v2_procs(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                    pid_t **pids, size_t *n, struct ve_error *err)
{
        char dir[PATH_MAX];

        ve_dir(cg, instance, ctid, dir, sizeof(dir));
        return quota_cg_collect_procs(dir, pids, n, err);
}

/* cgroup.events covers the whole subtree, zombies excluded. */
static int v2_is_populated(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                           bool *out, struct ve_error *err)
{
        char path[PATH_MAX], buf[256];
        int ret;

        snprintf(path, sizeof(path), "%s/%s/%u/cgroup.events", cg->root, instance, ctid);
        ret = quota_cg_read(path, buf, sizeof(buf), err);
        if (ret < 0)
                return ret;
        *out = strstr(buf, "populated 1") != NULL;
        return 0;
}

static int wait_empty(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                      struct ve_error *err)
{
        bool populated = true;
        int ret;

        for (int i = 0; i < 250; i++) {
                ret = v2_is_populated(cg, instance, ctid, &populated, err);
                if (ret < 0 || !populated)
                        return ret;
                quota_cg_sleep_ms(20);
        }
        return ve_error_set(err, EBUSY, "cgroup %s/%u: processes left after SIGKILL", instance,
                            ctid);
}

/* cgroup.kill (Linux 5.14) kills the subtree atomically with respect to forks. */
static int v2_kill_all(const struct quota_cgroup *cg, const char *instance, uint32_t ctid, int sig,
                       struct ve_error *err)
{
        char dir[PATH_MAX], path[PATH_MAX];
        size_t killed = 0;
        struct stat st;
        int ret;

        ve_dir(cg, instance, ctid, dir, sizeof(dir));
        if (stat(dir, &st) < 0 && errno == ENOENT)
                return 0;
        if (sig != SIGKILL)
                return quota_cg_kill_pids(dir, sig, &killed, err);
        snprintf(path, sizeof(path), "%s/%s/%u/cgroup.kill", cg->root, instance, ctid);
        ret = quota_cg_write(path, "1", err);
        if (ret < 0)
                return ret;
        return wait_empty(cg, instance, ctid, err);
}

static int v2_destroy(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                      struct ve_error *err)
{
        char dir[PATH_MAX];

        ve_dir(cg, instance, ctid, dir, sizeof(dir));
        return quota_cg_rmdir_tree(dir, err);
}

static int v2_exists(const struct quota_cgroup *cg, const char *instance, uint32_t ctid, bool *out,
                     struct ve_error *err)
{
        char dir[PATH_MAX];
        struct stat st;

        ve_dir(cg, instance, ctid, dir, sizeof(dir));
        if (stat(dir, &st) == 0) {
                *out = true;
                return 0;
        }
        if (errno != ENOENT)
                return ve_error_errno(err, errno, "stat %s", dir);
        *out = false;
        return 0;
}

static int v2_remove_instance(const struct quota_cgroup *cg, const char *instance,
                              struct ve_error *err)
{
        char dir[PATH_MAX];

        snprintf(dir, sizeof(dir), "%s/%s/" QUOTA_CGROUP_HELPERS, cg->root, instance);
        if (rmdir(dir) < 0 && errno != ENOENT)
                return ve_error_errno(err, errno == ENOTEMPTY ? EBUSY : errno, "remove cgroup %s",
                                      dir);
        snprintf(dir, sizeof(dir), "%s/%s", cg->root, instance);
        if (rmdir(dir) < 0 && errno != ENOENT)
                return ve_error_errno(err, errno == ENOTEMPTY ? EBUSY : errno, "remove cgroup %s",
                                      dir);
        return 0;
}

static int v2_helpers(const struct quota_cgroup *cg, const char *instance, pid_t pid,
                      unsigned cpu_permille, struct ve_error *err)
{
        char inst[PATH_MAX], dir[PATH_MAX + 16], value[32];
        int ret;

        snprintf(inst, sizeof(inst), "%s/%s", cg->root, instance);
        snprintf(dir, sizeof(dir), "%s/" QUOTA_CGROUP_HELPERS, inst);
        ret = enable_controllers(cg->root, wanted, sizeof(wanted) / sizeof(wanted[0]), err);
        if (ret == 0 && mkdir(inst, 0755) < 0 && errno != EEXIST)
                ret = ve_error_errno(err, errno, "create cgroup %s", inst);
        if (ret == 0)
                ret = enable_controllers(inst, NULL, 0, err);
        if (ret == 0 && mkdir(dir, 0755) < 0 && errno != EEXIST)
                ret = ve_error_errno(err, errno, "create cgroup %s", dir);
        snprintf(value, sizeof(value), "%u 100000", cpu_permille * 100);
        quota_cg_write_in(dir, "cpu.max", value, &ret, err);
        snprintf(value, sizeof(value), "%d", (int)pid);
        return quota_cg_write_in(dir, "cgroup.procs", value, &ret, err);
}

/* The VE's directory and the files that let its systemd make and populate
 * sub-cgroups and enable controllers for them (cgroup v2's delegation,
 * Documentation/admin-guide/cgroup-v2.rst); its own limits stay root's. */
static int v2_delegate(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                       uid_t uid, gid_t gid, struct ve_error *err)
{
        static const char *const files[] = { "cgroup.procs", "cgroup.threads",
                                             "cgroup.subtree_control", NULL };
        char dir[PATH_MAX];

        ve_dir(cg, instance, ctid, dir, sizeof(dir));
        return quota_cg_chown(dir, files, uid, gid, err);
}

const struct quota_cgroup_ops quota_cgroup_v2_ops = {
        .name = "v2",
        .create = v2_create,
        .open_fd = v2_open_fd,
        .attach = v2_attach,
        .procs = v2_procs,
        .is_populated = v2_is_populated,
        .kill_all = v2_kill_all,
        .destroy = v2_destroy,
        .exists = v2_exists,
        .remove_instance = v2_remove_instance,
        .helpers = v2_helpers,
        .devices_allow = v2_devices_allow,
        .delegate = v2_delegate,
        .set_limits = quota_v2_set_limits,
        .usage = quota_v2_usage,
        .unenforced = quota_v2_unenforced,
};
