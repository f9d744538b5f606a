/* Backend choice, argument checks and the file helpers both backends share. */
#include "quota/cgroup.h"
#include "quota/limits.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>
#include <linux/magic.h>

#include "ve/cleanup.h"

#define CGROUP_MOUNT "/sys/fs/cgroup"

int quota_cgroup_open(enum quota_cgroup_version version, const char *root,
                      struct quota_cgroup **out, struct ve_error *err)
{
        _cleanup_free_ struct quota_cgroup *cg = NULL;
        struct stat st;

        /* Bounded so that every cgroup path fits the backends' fixed buffers. */
        if (strlen(root) > 200)
                return ve_error_set(err, ENAMETOOLONG, "cgroup root %s is too long", root);
        if (stat(root, &st) < 0)
                return ve_error_errno(err, errno, "cgroup root %s", root);
        if (!S_ISDIR(st.st_mode))
                return ve_error_set(err, ENOTDIR, "cgroup root %s is not a directory", root);
        cg = calloc(1, sizeof(*cg));
        if (cg == NULL)
                return ve_error_errno(err, ENOMEM, "cgroup handle");
        cg->ops = version == QUOTA_CGROUP_V2 ? &quota_cgroup_v2_ops : &quota_cgroup_v1_ops;
        cg->root = strdup(root);
        if (cg->root == NULL)
                return ve_error_errno(err, ENOMEM, "cgroup handle");
        *out = steal_ptr(&cg);
        return 0;
}

int quota_cgroup_detect(struct quota_cgroup **out, struct ve_error *err)
{
        struct statfs sfs;

        if (statfs(CGROUP_MOUNT, &sfs) < 0)
                return ve_error_errno(err, errno, "statfs %s", CGROUP_MOUNT);
        if (sfs.f_type == CGROUP2_SUPER_MAGIC)
                return quota_cgroup_open(QUOTA_CGROUP_V2, CGROUP_MOUNT, out, err);
        if (statfs(CGROUP_MOUNT "/freezer", &sfs) < 0 || sfs.f_type != CGROUP_SUPER_MAGIC)
                return ve_error_set(err, VE_EUNSUPPORTED,
                                    "no cgroup2 on %s and no v1 freezer hierarchy under it",
                                    CGROUP_MOUNT);
        return quota_cgroup_open(QUOTA_CGROUP_V1, CGROUP_MOUNT, out, err);
}

void quota_cgroup_free(struct quota_cgroup *cg)
{
        if (cg == NULL)
                return;
        free(cg->root);
        free(cg);
}

const char *quota_cgroup_name(const struct quota_cgroup *cg)
{
        return cg->ops->name;
}

/* The instance becomes a path component under hierarchies we write to as root:
 * refuse anything that could climb out of it. */
static int check_instance(const char *instance, struct ve_error *err)
{
        if (instance == NULL || instance[0] == '\0' || strchr(instance, '/') != NULL ||
            strcmp(instance, ".") == 0 || strcmp(instance, "..") == 0 || strlen(instance) > 64)
                return ve_error_set(err, VE_EINVAL_INPUT, "bad cgroup instance name \"%s\"",
                                    instance ? instance : "");
        return 0;
}

int quota_cgroup_create(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                        struct ve_error *err)
{
        int ret = check_instance(instance, err);

        return ret < 0 ? ret : cg->ops->create(cg, instance, ctid, err);
}

int quota_cgroup_devices_allow(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                               struct ve_error *err)
{
        int ret = check_instance(instance, err);

        return ret < 0 ? ret : cg->ops->devices_allow(cg, instance, ctid, err);
}

int quota_cgroup_delegate(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                          uid_t uid, gid_t gid, struct ve_error *err)
{
        int ret = check_instance(instance, err);

        if (ret == 0 && (uid == 0 || gid == 0))
                ret = ve_error_set(err, EINVAL,
                                   "cgroup %s/%u: refusing to delegate to the host's root",
                                   instance, ctid);
        return ret < 0 ? ret : cg->ops->delegate(cg, instance, ctid, uid, gid, err);
}

int quota_cgroup_open_fd(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                         struct ve_error *err)
{
        int ret = check_instance(instance, err);

        return ret < 0 ? ret : cg->ops->open_fd(cg, instance, ctid, err);
}

int quota_cgroup_attach(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                        pid_t pid, struct ve_error *err)
{
        int ret = check_instance(instance, err);

        return ret < 0 ? ret : cg->ops->attach(cg, instance, ctid, pid, err);
}

void quota_cgroup_prewarm(const struct quota_cgroup *cg)
{
        if (cg->ops->prewarm != NULL)
                cg->ops->prewarm(cg);
}

int quota_cgroup_attach_cb(pid_t pid, void *data, struct ve_error *err)
{
        const struct quota_cgroup_target *t = data;

        return quota_cgroup_attach(t->cg, t->instance, t->ctid, pid, err);
}

int quota_cgroup_procs(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                       pid_t **pids, size_t *n, struct ve_error *err)
{
        int ret = check_instance(instance, err);

        *pids = NULL;
        *n = 0;
        return ret < 0 ? ret : cg->ops->procs(cg, instance, ctid, pids, n, err);
}

int quota_cgroup_is_populated(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                              bool *out, struct ve_error *err)
{
        int ret = check_instance(instance, err);

        return ret < 0 ? ret : cg->ops->is_populated(cg, instance, ctid, out, err);
}

int quota_cgroup_kill_all(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                          int sig, struct ve_error *err)
{
        int ret = check_instance(instance, err);

        return ret < 0 ? ret : cg->ops->kill_all(cg, instance, ctid, sig, err);
}

int quota_cgroup_destroy(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                         struct ve_error *err)
{
        int ret = check_instance(instance, err);

        return ret < 0 ? ret : cg->ops->destroy(cg, instance, ctid, err);
}

int quota_cgroup_exists(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                        bool *out, struct ve_error *err)
{
        int ret = check_instance(instance, err);

        return ret < 0 ? ret : cg->ops->exists(cg, instance, ctid, out, err);
}

int quota_cgroup_remove_instance(const struct quota_cgroup *cg, const char *instance,
                                 struct ve_error *err)
{
        int ret = check_instance(instance, err);

        return ret < 0 ? ret : cg->ops->remove_instance(cg, instance, err);
}

int quota_cgroup_helpers(const struct quota_cgroup *cg, const char *instance, pid_t pid,
                         unsigned cpu_permille, struct ve_error *err)
{
        int ret = check_instance(instance, err);

        if (ret == 0 && (cpu_permille == 0 || pid <= 0))
                ret = ve_error_set(err, EINVAL, "helpers: a pid and a CPU share are needed");
        return ret < 0 ? ret : cg->ops->helpers(cg, instance, pid, cpu_permille, err);
}

int quota_cgroup_set_limits(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                            const struct quota_limits *l, struct ve_error *err)
{
        int ret = check_instance(instance, err);

        return ret < 0 ? ret : cg->ops->set_limits(cg, instance, ctid, l, err);
}

int quota_cg_list_add(char *buf, size_t len, size_t *used, const char *word)
{
        int n = snprintf(buf + *used, len - *used, "%s%s", *used ? " " : "", word);

        if (n < 0 || (size_t)n >= len - *used)
                return -ENOBUFS;
        *used += (size_t)n;
        return 0;
}

int quota_cgroup_unenforced(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                            char *buf, size_t len)
{
        if (len == 0)
                return -ENOBUFS;
        buf[0] = '\0';
        if (check_instance(instance, NULL) < 0)
                return -EINVAL;
        return cg->ops->unenforced(cg, instance, ctid, buf, len);
}

int quota_cgroup_usage(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                       struct quota_usage *u, struct ve_error *err)
{
        int ret = check_instance(instance, err);

        memset(u, 0, sizeof(*u));
        return ret < 0 ? ret : cg->ops->usage(cg, instance, ctid, u, err);
}

/* --- helpers shared by the backends --- */

int quota_cg_write_in(const char *dir, const char *file, const char *value, int *ret,
                      struct ve_error *err)
{
        char path[PATH_MAX];

        if (*ret < 0)
                return *ret;
        snprintf(path, sizeof(path), "%s/%s", dir, file);
        *ret = quota_cg_write(path, value, err);
        return *ret;
}

int quota_cg_write(const char *path, const char *value, struct ve_error *err)
{
        _cleanup_close_ int fd = -EBADF;
        size_t len = strlen(value);
        ssize_t n;

        fd = open(path, O_WRONLY | O_TRUNC |
                            O_CLOEXEC); /* O_TRUNC: as a shell writes; fake trees in tests */
        if (fd < 0)
                return ve_error_errno(err, errno, "open %s", path);
        n = write(fd, value, len);
        if (n < 0)
                return ve_error_errno(err, errno, "write \"%s\" to %s", value, path);
        if ((size_t)n != len)
                return ve_error_set(err, EIO, "short write to %s", path);
        return 0;
}

/* Reads at most len - 1 bytes and NUL-terminates; returns the length read. */
int quota_cg_read(const char *path, char *buf, size_t len, struct ve_error *err)
{
        _cleanup_close_ int fd = -EBADF;
        ssize_t n;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return ve_error_errno(err, errno, "open %s", path);
        n = read(fd, buf, len - 1);
        if (n < 0)
                return ve_error_errno(err, errno, "read %s", path);
        buf[n] = '\0';
        return (int)n;
}

static int append_pid(pid_t **pids, size_t *n, size_t *cap, pid_t pid)
{
        if (*n == *cap) {
                size_t ncap = *cap ? *cap * 2 : 32;
                pid_t *p = realloc(*pids, ncap * sizeof(*p));

                if (p == NULL)
                        return -ENOMEM;
                *pids = p;
                *cap = ncap;
        }
        (*pids)[(*n)++] = pid;
        return 0;
}

static int read_procs_file(const char *dir, pid_t **pids, size_t *n, size_t *cap,
                           struct ve_error *err)
{
        _cleanup_free_ char *path = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        long pid;

        if (asprintf(&path, "%s/cgroup.procs", dir) < 0)
                return ve_error_errno(err, ENOMEM, "cgroup path");
        f = fopen(path, "re");
        if (f == NULL)
                return ve_error_errno(err, errno, "open %s", path);
        while (fscanf(f, "%ld", &pid) == 1)
                if (pid > 0 && append_pid(pids, n, cap, (pid_t)pid) < 0)
                        return ve_error_errno(err, ENOMEM, "read %s", path);
        return 0;
}

/* Depth-first over dir and its sub-cgroups, as a VE may make its own (systemd does). */
static int collect(const char *dir, pid_t **pids, size_t *n, size_t *cap, struct ve_error *err)
{
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int ret;

        ret = read_procs_file(dir, pids, n, cap, err);
        if (ret < 0)
                return ret;
        d = opendir(dir);
        if (d == NULL)
                return ve_error_errno(err, errno, "open %s", dir);
        while ((de = readdir(d)) != NULL) {
                _cleanup_free_ char *sub = NULL;

                if (de->d_type != DT_DIR || de->d_name[0] == '.')
                        continue;
                if (asprintf(&sub, "%s/%s", dir, de->d_name) < 0)
                        return ve_error_errno(err, ENOMEM, "cgroup path");
                ret = collect(sub, pids, n, cap, err);
                if (ret < 0 && ret != -ENOENT)
                        return ret;
        }
        return 0;
}

int quota_cg_collect_procs(const char *dir, pid_t **pids, size_t *n, struct ve_error *err)
{
        size_t cap = 0;
        int ret;

        *pids = NULL;
        *n = 0;
        ret = collect(dir, pids, n, &cap, err);
        if (ret < 0) {
                free(*pids);
                *pids = NULL;
                *n = 0;
        }
        return ret;
}

int quota_cg_kill_pids(const char *dir, int sig, size_t *killed, struct ve_error *err)
{
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0;
        int ret;

        ret = quota_cg_collect_procs(dir, &pids, &n, err);
        if (ret < 0)
                return ret;
        for (size_t i = 0; i < n; i++)
                if (kill(pids[i], sig) < 0 && errno != ESRCH)
                        return ve_error_errno(err, errno, "kill %d", (int)pids[i]);
        *killed = n;
        return 0;
}

int quota_cg_chown(const char *dir, const char *const *files, uid_t uid, gid_t gid,
                   struct ve_error *err)
{
        _cleanup_close_ int fd = -EBADF;

        /* O_NOFOLLOW and *at: nothing in a cgroup file system is a link, but the
         * paths are built from names and must not lead elsewhere. */
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return ve_error_errno(err, errno, "open cgroup %s", dir);
        if (fchown(fd, uid, gid) < 0)
                return ve_error_errno(err, errno, "chown cgroup %s", dir);
        for (size_t i = 0; files[i] != NULL; i++)
                if (fchownat(fd, files[i], uid, gid, AT_SYMLINK_NOFOLLOW) < 0 && errno != ENOENT)
                        return ve_error_errno(err, errno, "chown %s/%s", dir, files[i]);
        return 0;
}

void quota_cg_sleep_ms(unsigned ms)
{
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static int rmdir_children(const char *dir, struct ve_error *err)
{
        _cleanup_closedir_ DIR *d = NULL;
        struct dirent *de;
        int ret;

        d = opendir(dir);
        if (d == NULL)
                return errno == ENOENT ? 0 : ve_error_errno(err, errno, "open %s", dir);
        while ((de = readdir(d)) != NULL) {
                _cleanup_free_ char *sub = NULL;

                if (de->d_type != DT_DIR || de->d_name[0] == '.')
                        continue;
                if (asprintf(&sub, "%s/%s", dir, de->d_name) < 0)
                        return ve_error_errno(err, ENOMEM, "cgroup path");
                ret = quota_cg_rmdir_tree(sub, err);
                if (ret < 0)
                        return ret;
        }
        return 0;
}

/* A cgroup stays busy for a moment after its last task was killed (the exit is
 * not instant), so retry for up to two seconds before calling it busy. */
int quota_cg_rmdir_tree(const char *dir, struct ve_error *err)
{
        int ret;

        ret = rmdir_children(dir, err);
        if (ret < 0)
                return ret;
        for (int i = 0; i < 100; i++) {
                if (rmdir(dir) == 0 || errno == ENOENT)
                        return 0;
                if (errno != EBUSY)
                        break;
                quota_cg_sleep_ms(20);
        }
        return ve_error_errno(err, errno, "remove cgroup %s", dir);
}
