/* /sys/fs/cgroup and /run inside a VE: see cgroupfs.h. */
#include "ve/cgroupfs.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "ve/cleanup.h"
#include "ve/rootfs.h"

#define CGROUP_DIR "/sys/fs/cgroup"
#define IN_ROOT    (RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
#define SAFE       (MS_NOSUID | MS_NODEV | MS_NOEXEC)

static const char *const v1_controllers[] = {
        "cpu",        "cpuacct",  "cpuset",  "memory", "devices", "freezer", "net_cls", "blkio",
        "perf_event", "net_prio", "hugetlb", "pids",   "rdma",    "misc",    NULL,
};

static bool is_controller(const char *tok, size_t len)
{
        for (unsigned i = 0; v1_controllers[i]; i++)
                if (strlen(v1_controllers[i]) == len && strncmp(v1_controllers[i], tok, len) == 0)
                        return true;
        return false;
}

/* From a v1 superblock's options ("rw,nosuid,memory" or "rw,xattr,name=systemd")
 * keep what names the hierarchy: its controllers and name=. Mounting an existing
 * hierarchy asks for exactly these. */
static bool v1_options(const char *super, char *out, size_t len, bool *writable)
{
        const char *p = super;
        size_t used = 0;

        out[0] = '\0';
        *writable = false;
        while (*p) {
                size_t n = strcspn(p, ",");
                bool keep = is_controller(p, n) || (n > 5 && strncmp(p, "name=", 5) == 0);

                if (keep && used + n + 2 < len) {
                        used += (size_t)snprintf(out + used, len - used, "%s%.*s", used ? "," : "",
                                                 (int)n, p);
                        if (n == 12 && strncmp(p, "name=systemd", 12) == 0)
                                *writable = true;
                }
                p += n + (p[n] == ',');
        }
        return used > 0;
}

/* mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER */
static int parse_line(char *line, char **mp, char **fstype, char **super)
{
        char *save = NULL, *tok;
        int field = 0;
        bool dash = false;

        *mp = *fstype = *super = NULL;
        for (tok = strtok_r(line, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
                if (!dash && field == 4)
                        *mp = tok;
                if (!dash && field >= 6 && strcmp(tok, "-") == 0) {
                        dash = true;
                        field = 0;
                        continue;
                }
                if (dash && field == 0)
                        *fstype = tok;
                if (dash && field == 2)
                        *super = tok;
                field++;
        }
        return *mp && *fstype && *super ? 0 : -EINVAL;
}

static void add_v1(struct ve_cgroupfs *out, const char *mp, const char *super)
{
        const char *name = mp + strlen(CGROUP_DIR "/");
        bool writable;

        if (out->n >= VE_CGROUPFS_MAX || strchr(name, '/') != NULL || strlen(name) >= 64)
                return;
        for (unsigned i = 0; i < out->n; i++)
                if (strcmp(out->h[i].dir, name) == 0)
                        return;
        if (!v1_options(super, out->h[out->n].opts, sizeof(out->h[out->n].opts), &writable))
                return;
        snprintf(out->h[out->n].dir, sizeof(out->h[out->n].dir), "%s", name);
        out->h[out->n].writable = writable;
        out->n++;
}

static int probe(struct ve_cgroupfs *out, struct ve_error *err)
{
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *line = NULL;
        char *mp, *fstype, *super;
        size_t cap = 0;

        memset(out, 0, sizeof(*out));
        f = fopen("/proc/self/mountinfo", "re");
        if (f == NULL)
                return ve_error_errno(err, errno, "open /proc/self/mountinfo");
        while (getline(&line, &cap, f) > 0) {
                if (parse_line(line, &mp, &fstype, &super) < 0)
                        continue;
                if (strcmp(mp, CGROUP_DIR) == 0 && strcmp(fstype, "cgroup2") == 0) {
                        out->version = 2;
                        out->n = 0;
                        return 0;
                }
                if (strcmp(fstype, "cgroup") == 0 &&
                    strncmp(mp, CGROUP_DIR "/", strlen(CGROUP_DIR "/")) == 0)
                        add_v1(out, mp, super);
                /* The hybrid layout's cgroup2: where systemd tracks its units. */
                if (strcmp(fstype, "cgroup2") == 0 && strcmp(mp, CGROUP_DIR "/unified") == 0 &&
                    out->n < VE_CGROUPFS_MAX) {
                        snprintf(out->h[out->n].dir, sizeof(out->h[out->n].dir), "unified");
                        out->h[out->n].opts[0] = '\0';
                        out->h[out->n].writable = true;
                        out->h[out->n].cgroup2 = true;
                        out->n++;
                }
        }
        out->version = out->n > 0 ? 1 : 0;
        return 0;
}

/* The host's layout, read once: mountinfo holds a line per mount, two per running
 * VE, so reading it at every start made starts slower as VEs were added (~1 ms
 * with 180 running). A host does not remount its cgroup hierarchies under a
 * running daemon. */
static pthread_mutex_t probed_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ve_cgroupfs probed;
static bool probed_ok;

int ve_cgroupfs_probe(struct ve_cgroupfs *out, struct ve_error *err)
{
        int ret = 0;

        pthread_mutex_lock(&probed_lock);
        if (!probed_ok) {
                ret = probe(&probed, err);
                probed_ok = ret == 0;
        }
        if (ret == 0)
                *out = probed;
        pthread_mutex_unlock(&probed_lock);
        return ret;
}

/* The reconfigure sets the cgroup2 root's flags to what it is given: every option
 * the superblock has now is given again, favordynmods added. */
static int reconfigure_favor(const char *mp, char *super, struct ve_error *err)
{
        _cleanup_close_ int fd = fspick(AT_FDCWD, mp, FSPICK_CLOEXEC | FSPICK_NO_AUTOMOUNT);
        char *save = NULL, *opt, *eq;
        int ret;

        if (fd < 0)
                return ve_error_errno(err, errno, "fspick %s", mp);
        for (opt = strtok_r(super, ",", &save); opt; opt = strtok_r(NULL, ",", &save)) {
                if (strcmp(opt, "rw") == 0 || strcmp(opt, "ro") == 0)
                        continue;
                eq = strchr(opt, '=');
                if (eq != NULL)
                        *eq = '\0';
                ret = eq ? fsconfig(fd, FSCONFIG_SET_STRING, opt, eq + 1, 0)
                         : fsconfig(fd, FSCONFIG_SET_FLAG, opt, NULL, 0);
                if (ret < 0)
                        return ve_error_errno(err, errno, "%s: keep its option %s", mp, opt);
        }
        if (fsconfig(fd, FSCONFIG_SET_FLAG, "favordynmods", NULL, 0) < 0)
                return errno == EINVAL ? ve_error_set(err, VE_EUNSUPPORTED,
                                                      "this kernel has no cgroup2 option "
                                                      "favordynmods (Linux 6.0 has)")
                                       : ve_error_errno(err, errno, "%s: favordynmods", mp);
        if (fsconfig(fd, FSCONFIG_CMD_RECONFIGURE, NULL, NULL, 0) < 0)
                return ve_error_errno(err, errno, "remount %s with favordynmods", mp);
        return 1;
}

/* The first cgroup2 mount in mountinfo: its mount point and superblock options,
 * pointing into *line. A mount point with a space (mountinfo's \040) is skipped. */
static int find_cgroup2(FILE *f, char **line, size_t *cap, char **mp, char **super)
{
        char *fstype;

        while (getline(line, cap, f) > 0)
                if (parse_line(*line, mp, &fstype, super) == 0 && strcmp(fstype, "cgroup2") == 0 &&
                    strchr(*mp, '\\') == NULL)
                        return 0;
        return -ENOENT;
}

static bool has_favor(const char *super)
{
        size_t n = strlen("favordynmods");

        for (const char *p = super; (p = strstr(p, "favordynmods")) != NULL; p += n)
                if ((p == super || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
                        return true;
        return false;
}

int ve_cgroupfs_favor_dynmods(char *where, size_t len, struct ve_error *err)
{
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        _cleanup_free_ char *line = NULL;
        char *mp, *super;
        size_t cap = 0;

        if (f == NULL)
                return ve_error_errno(err, errno, "open /proc/self/mountinfo");
        if (find_cgroup2(f, &line, &cap, &mp, &super) < 0)
                return ve_error_set(err, VE_EUNSUPPORTED, "no cgroup2 file system is mounted");
        snprintf(where, len, "%s", mp);
        return has_favor(super) ? 0 : reconfigure_favor(mp, super, err);
}

bool ve_cgroupfs_favors_dynmods(void)
{
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        _cleanup_free_ char *line = NULL;
        char *mp, *super;
        size_t cap = 0;

        return f != NULL && find_cgroup2(f, &line, &cap, &mp, &super) == 0 && has_favor(super);
}

static int open_cgroup_dir(int rootfd, int *fd, struct ve_child_err *e)
{
        *fd = ve_openat2(rootfd, "sys/fs/cgroup", O_PATH | O_DIRECTORY | O_CLOEXEC, IN_ROOT);
        if (*fd < 0)
                return ve_child_fail(e, errno, "open /sys/fs/cgroup");
        return 0;
}

static int mount_hierarchy(int dirfd, const char *name, const char *opts, bool writable,
                           bool cgroup2, struct ve_child_err *e)
{
        char what[96];
        int fd, ret;

        snprintf(what, sizeof(what), CGROUP_DIR "/%s", name);
        if (mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST)
                return ve_child_fail(e, errno, "create %s", what);
        fd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return ve_child_fail(e, errno, "open %s", what);
        ret = ve_rootfs_mount_on(fd, cgroup2 ? "cgroup2" : "cgroup", cgroup2 ? "cgroup2" : "cgroup",
                                 SAFE | (writable ? 0 : MS_RDONLY), cgroup2 ? NULL : opts, what, e);
        close(fd);
        return ret;
}

static int mount_v1(int rootfd, const struct ve_cgroupfs *fs, struct ve_child_err *e)
{
        int fd = -1, ret;

        ret = open_cgroup_dir(rootfd, &fd, e);
        if (ret < 0)
                return ret;
        ret = ve_rootfs_mount_on(fd, "tmpfs", "tmpfs", SAFE, "mode=755,size=64k", CGROUP_DIR, e);
        close(fd);
        if (ret < 0)
                return ret;
        /* Again: the path now leads into the tmpfs. */
        ret = open_cgroup_dir(rootfd, &fd, e);
        for (unsigned i = 0; ret == 0 && i < fs->n; i++)
                ret = mount_hierarchy(fd, fs->h[i].dir, fs->h[i].opts, fs->h[i].writable,
                                      fs->h[i].cgroup2, e);
        if (ret == 0)
                ret = ve_rootfs_mount_on(fd, NULL, NULL, MS_REMOUNT | SAFE | MS_RDONLY,
                                         "mode=755,size=64k", CGROUP_DIR " (read-only)", e);
        if (fd >= 0)
                close(fd);
        return ret;
}

int ve_cgroupfs_mount(int rootfd, const struct ve_cgroupfs *fs, struct ve_child_err *e)
{
        int fd = -1, ret;

        if (fs == NULL || fs->version == 0)
                return 0;
        if (fs->version == 1)
                return mount_v1(rootfd, fs, e);
        ret = open_cgroup_dir(rootfd, &fd, e);
        if (ret < 0)
                return ret;
        ret = ve_rootfs_mount_on(fd, "cgroup2", "cgroup2", SAFE, NULL, CGROUP_DIR, e);
        close(fd);
        return ret;
}

static int write_container_file(int rootfd, struct ve_child_err *e)
{
        static const char text[] = "ved\n";
        int dirfd, fd;
        ssize_t n;

        dirfd = ve_openat2(rootfd, "run", O_PATH | O_DIRECTORY | O_CLOEXEC, IN_ROOT);
        if (dirfd < 0)
                return ve_child_fail(e, errno, "open /run");
        if (mkdirat(dirfd, "systemd", 0755) < 0 && errno != EEXIST) {
                close(dirfd);
                return ve_child_fail(e, errno, "create /run/systemd");
        }
        fd = ve_openat2(dirfd, "systemd/container",
                        O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, IN_ROOT);
        close(dirfd);
        if (fd < 0)
                return ve_child_fail(e, errno, "create /run/systemd/container");
        n = write(fd, text, sizeof(text) - 1);
        fchmod(fd, 0444);
        close(fd);
        if (n != (ssize_t)sizeof(text) - 1)
                return ve_child_fail(e, errno, "write /run/systemd/container");
        return 0;
}

/* A boot id of the VE's own: /proc/sys/kernel/random/boot_id is the host's, one
 * per host boot, so systemd's journal in a VE could not tell its boots apart
 * (journalctl -b -1: "No such boot ID"). A random one (a UUID, as the kernel's)
 * in a file of this start's /run, bound over it, as LXC does. The child does
 * not allocate: getrandom and snprintf into the stack. */
static int bind_boot_id(int rootfd, struct ve_child_err *e)
{
        unsigned char b[16];
        char text[40], src[64];
        int fd, target, ret;

        if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
                return ve_child_fail(e, errno, "make a boot id");
        b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
        b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
        snprintf(text, sizeof(text),
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x\n", b[0],
                 b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
                 b[14], b[15]);
        target = ve_openat2(rootfd, "proc/sys/kernel/random/boot_id", O_PATH | O_CLOEXEC, IN_ROOT);
        if (target < 0) /* a kernel without it: nothing to cover */
                return errno == ENOENT ? 0 : ve_child_fail(e, errno, "open the boot id");
        fd = ve_openat2(rootfd, "run/.ved-boot-id",
                        O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, IN_ROOT);
        if (fd < 0) {
                close(target);
                return ve_child_fail(e, errno, "create /run/.ved-boot-id");
        }
        ret = write(fd, text, strlen(text)) == (ssize_t)strlen(text) && fchmod(fd, 0444) == 0
                  ? 0
                  : ve_child_fail(e, errno, "write /run/.ved-boot-id");
        if (ret == 0) {
                snprintf(src, sizeof(src), "/proc/self/fd/%d", fd);
                ret = ve_rootfs_mount_on(target, src, NULL, MS_BIND, NULL,
                                         "/proc/sys/kernel/random/boot_id", e);
        }
        close(fd);
        close(target);
        return ret;
}

int ve_rootfs_mount_run(int rootfd, struct ve_child_err *e)
{
        int fd = -1, ret;

        ret = ve_rootfs_open_dir(rootfd, "run", &fd, e);
        if (ret < 0)
                return ret;
        ret = ve_rootfs_mount_on(fd, "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=20%",
                                 "/run", e);
        close(fd);
        if (ret < 0)
                return ret;
        ret = ve_rootfs_open_dir(rootfd, "run/lock", &fd, e);
        if (ret < 0)
                return ret;
        ret = ve_rootfs_mount_on(fd, "tmpfs", "tmpfs", SAFE, "mode=1777,size=5m", "/run/lock", e);
        close(fd);
        if (ret < 0)
                return ret;
        ret = write_container_file(rootfd, e);
        if (ret == 0)
                ret = bind_boot_id(rootfd, e);
        return ret;
}
