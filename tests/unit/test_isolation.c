/* Isolation of a VE at the library level, against the real kernel: the user
 * namespace and idmapped root (ve/idmap.c), the bounding set (ve/caps.c), the
 * seccomp filter (ve/seccomp.c), the device allow-list (quota/devices.c) and the
 * masked /proc and /sys (ve/rootfs.c). Needs root; skips otherwise.
 *
 * One VE with a user namespace runs for the whole suite, on a plain directory
 * holding busybox-static, in the v1 cgroup <instance>/<ctid> of the instance
 * vediso-<pid>. The tests/security scripts try the same escapes through the daemon. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>
#include <linux/capability.h>

#include "quota/cgroup.h"
#include "ve/error.h"
#include "ve/exec.h"
#include "ve/seccomp.h"
#include "ve/start.h"

#define BUSYBOX "/bin/busybox"
#define CTID    111u
/* Far from the daemon's ranges (which start at 1000000000). */
#define BASE 2100000000u

struct fixture {
        char tmp[64];
        char rootfs[128];
        char instance[64];
        struct quota_cgroup *cg;
        struct quota_cgroup_target target;
        struct ve_idmap idmap;
        struct ve_proc ve;
};

static struct fixture fx = {
        .ve = { .pidfd = -1, .console_fd = -1, .console_peer = -1, .statfs_fd = -1 }
};

#define SKIP_UNLESS_ROOT()                                                                         \
        do {                                                                                       \
                if (geteuid() != 0)                                                                \
                        skip();                                                                    \
        } while (0)

static void copy_file(const char *src, const char *dst)
{
        char buf[65536];
        int in = open(src, O_RDONLY | O_CLOEXEC);
        int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
        ssize_t n;

        assert_true(in >= 0 && out >= 0);
        while ((n = read(in, buf, sizeof(buf))) > 0)
                assert_int_equal(write(out, buf, n), n);
        close(in);
        close(out);
}

static int make_rootfs(const char *root)
{
        static const char *const dirs[] = { "bin", "sbin", "etc", "proc", "sys", "dev", "tmp" };
        static const char *const applets[] = { "sh", "cat",  "echo",  "touch", "sleep",
                                               "ls", "id",   "grep",  "stat",  "mknod",
                                               "wc", "head", "mount", "mkdir", "readlink" };
        char path[PATH_MAX];
        int fd;

        if (mkdir(root, 0755) < 0)
                return -1;
        for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
                snprintf(path, sizeof(path), "%s/%s", root, dirs[i]);
                if (mkdir(path, 0755) < 0)
                        return -1;
        }
        snprintf(path, sizeof(path), "%s/tmp", root);
        chmod(path, 01777);
        snprintf(path, sizeof(path), "%s/bin/busybox", root);
        copy_file(BUSYBOX, path);
        for (size_t i = 0; i < sizeof(applets) / sizeof(applets[0]); i++) {
                snprintf(path, sizeof(path), "%s/bin/%s", root, applets[i]);
                if (symlink("busybox", path) < 0)
                        return -1;
        }
        snprintf(path, sizeof(path), "%s/sbin/init", root);
        if (symlink("../bin/busybox", path) < 0)
                return -1;
        snprintf(path, sizeof(path), "%s/etc/inittab", root);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || dprintf(fd, "::respawn:/bin/sleep 1000\n") < 0)
                return -1;
        close(fd);
        return 0;
}

static void remove_tree(const char *dir)
{
        char cmd[PATH_MAX + 32];

        snprintf(cmd, sizeof(cmd), "rm -rf --one-file-system '%s'", dir);
        if (system(cmd) != 0)
                fprintf(stderr, "cleanup: could not remove %s\n", dir);
}

static void read_all(int fd, char *buf, size_t len)
{
        size_t off = 0;
        ssize_t n;

        while (off < len - 1 && (n = read(fd, buf + off, len - 1 - off)) > 0)
                off += (size_t)n;
        buf[off] = '\0';
}

/* sh -c script in the VE; stdout and stderr both go to out. Returns the exit code. */
static int sh_in_ve(const char *script, char *out, size_t outlen)
{
        char *argv[] = { "sh", "-c", (char *)script, NULL };
        struct ve_exec_config cfg = {
                .init_pidfd = fx.ve.pidfd,
                .cgroup = { .fd = -1, .attach_cb = quota_cgroup_attach_cb, .data = &fx.target },
                .argv = argv,
                .idmap = fx.idmap
        };
        struct ve_error err = { 0 };
        struct ve_exec_proc p;
        char errb[1024];
        int status = -1;

        if (ve_exec_spawn(&cfg, &p, &err) < 0)
                fail_msg("ve_exec_spawn: %s", err.message);
        close(p.stdin_fd);
        p.stdin_fd = -1;
        read_all(p.stdout_fd, out, outlen);
        read_all(p.stderr_fd, errb, sizeof(errb));
        assert_int_equal(ve_proc_wait(p.pidfd, 0, &status, &err), 1);
        ve_exec_proc_close(&p);
        strncat(out, errb, outlen - strlen(out) - 1);
        assert_true(WIFEXITED(status));
        return WEXITSTATUS(status);
}

static int group_teardown(void **state)
{
        struct ve_error err = { 0 };

        (void)state;
        if (geteuid() != 0)
                return 0;
        if (fx.cg != NULL) {
                quota_cgroup_kill_all(fx.cg, fx.instance, CTID, SIGKILL, &err);
                if (fx.ve.pidfd >= 0)
                        ve_proc_wait(fx.ve.pidfd, 0, &(int){ 0 }, NULL);
                quota_cgroup_destroy(fx.cg, fx.instance, CTID, &err);
                quota_cgroup_remove_instance(fx.cg, fx.instance, &err);
                quota_cgroup_free(fx.cg);
                fx.cg = NULL;
        }
        ve_proc_close(&fx.ve);
        if (fx.tmp[0] != '\0')
                remove_tree(fx.tmp);
        ve_error_clear(&err);
        return 0;
}

static int start_ve(void)
{
        struct ve_error err = { 0 };
        char *argv[] = { "/sbin/init", NULL };
        struct ve_start_config cfg = { .ctid = CTID, .init_argv = argv };

        snprintf(fx.tmp, sizeof(fx.tmp), "/tmp/vediso-XXXXXX");
        if (mkdtemp(fx.tmp) == NULL)
                return -1;
        snprintf(fx.rootfs, sizeof(fx.rootfs), "%s/root", fx.tmp);
        if (make_rootfs(fx.rootfs) < 0)
                return -1;
        snprintf(fx.instance, sizeof(fx.instance), "vediso-%d", (int)getpid());
        fx.idmap = (struct ve_idmap){ BASE, BASE, VE_IDMAP_COUNT };
        if (quota_cgroup_open(QUOTA_CGROUP_V1, "/sys/fs/cgroup", &fx.cg, &err) < 0 ||
            quota_cgroup_create(fx.cg, fx.instance, CTID, &err) < 0) {
                fprintf(stderr, "cgroup: %s\n", err.message);
                ve_error_clear(&err);
                return -1;
        }
        fx.target = (struct quota_cgroup_target){ fx.cg, fx.instance, CTID };
        cfg.rootfs = fx.rootfs;
        cfg.cgroup = (struct ve_cgroup_join){ .fd = -1,
                                              .attach_cb = quota_cgroup_attach_cb,
                                              .data = &fx.target };
        cfg.idmap = fx.idmap;
        if (ve_start(&cfg, &fx.ve, &err) < 0) {
                fprintf(stderr, "%s\n", err.message);
                ve_error_clear(&err);
                return -1;
        }
        return 0;
}

static int group_setup(void **state)
{
        if (geteuid() != 0)
                return 0;
        if (start_ve() < 0) {
                group_teardown(state);
                return -1;
        }
        return 0;
}

/* --- the user namespace and the idmapped root --- */

static void test_userns_map(void **state)
{
        char path[64], out[256];
        unsigned a, b, c;
        struct stat st;
        FILE *f;

        (void)state;
        SKIP_UNLESS_ROOT();
        snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)fx.ve.pid);
        f = fopen(path, "re");
        assert_non_null(f);
        assert_non_null(fgets(out, sizeof(out), f));
        fclose(f);
        /* The kernel pads the columns: compare the numbers. */
        assert_int_equal(sscanf(out, "%u %u %u", &a, &b, &c), 3);
        assert_int_equal(a, 0);
        assert_int_equal(b, BASE);
        assert_int_equal(c, VE_IDMAP_COUNT);
        /* The VE's processes are host uid BASE, and root inside. */
        snprintf(path, sizeof(path), "/proc/%d", (int)fx.ve.pid);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_uid, BASE);
        assert_int_equal(sh_in_ve("id -u; id -g", out, sizeof(out)), 0);
        assert_string_equal(out, "0\n0\n");
}

static void test_idmapped_root(void **state)
{
        char out[256], path[PATH_MAX];
        struct stat st;

        (void)state;
        SKIP_UNLESS_ROOT();
        /* The host made the rootfs as uid 0: the VE sees its own root's files. */
        assert_int_equal(sh_in_ve("stat -c %u:%g /bin/busybox", out, sizeof(out)), 0);
        assert_string_equal(out, "0:0\n");
        assert_int_equal(
            sh_in_ve("touch /tmp/made-inside && stat -c %u /tmp/made-inside", out, sizeof(out)), 0);
        assert_string_equal(out, "0\n");
        /* Seen from the host through the VE's mount: the VE's range. */
        snprintf(path, sizeof(path), "/proc/%d/root/tmp/made-inside", (int)fx.ve.pid);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_uid, BASE);
        assert_int_equal(st.st_gid, BASE);
        /* On disk (the host's own path) the guest's id stays 0. */
        snprintf(path, sizeof(path), "%s/tmp/made-inside", fx.rootfs);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_uid, 0);
        /* A host file the map does not cover belongs to nobody inside, and the VE's
         * root cannot take it. */
        snprintf(path, sizeof(path), "%s/tmp/host-file", fx.rootfs);
        assert_int_equal(close(open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600)), 0);
        assert_int_equal(chown(path, 70000, 70000), 0);
        assert_int_equal(
            sh_in_ve("stat -c %u /tmp/host-file; cat /tmp/host-file", out, sizeof(out)), 1);
        assert_non_null(strstr(out, "65534\n"));
        assert_non_null(strstr(out, "Permission denied"));
}

/* --- capabilities and seccomp --- */

static void test_bounding_set(void **state)
{
        unsigned long long bnd = 0, eff = 0;
        char out[512], *p;

        (void)state;
        SKIP_UNLESS_ROOT();
        assert_int_equal(
            sh_in_ve("grep -E '^(CapBnd|CapEff|Seccomp|NoNewPrivs):' /proc/self/status", out,
                     sizeof(out)),
            0);
        p = strstr(out, "CapBnd:");
        assert_non_null(p);
        bnd = strtoull(p + 7, NULL, 16);
        p = strstr(out, "CapEff:");
        assert_non_null(p);
        eff = strtoull(p + 7, NULL, 16);
        for (int cap = 0; cap <= CAP_LAST_CAP; cap++) {
                bool dropped = cap == CAP_SYS_MODULE || cap == CAP_SYS_RAWIO ||
                               cap == CAP_SYS_TIME || cap == CAP_MAC_ADMIN ||
                               cap == CAP_MAC_OVERRIDE || cap == CAP_SYSLOG;

                if (dropped)
                        assert_false(bnd & (1ULL << cap));
        }
        /* VE root keeps CAP_SYS_ADMIN, valid in its user namespace only. */
        assert_true(eff & (1ULL << CAP_SYS_ADMIN));
        assert_non_null(strstr(out, "Seccomp:\t2"));
        assert_non_null(strstr(out, "NoNewPrivs:\t0"));
}

/* The filter itself, in a forked child: a denied call answers without killing. */
static void test_seccomp_denies(void **state)
{
        struct ve_error err = { 0 };
        struct ve_child_err e = { 0 };
        int status = 0;
        pid_t pid;

        (void)state;
        SKIP_UNLESS_ROOT();
        assert_int_equal(ve_seccomp_prepare(&err), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                if (ve_seccomp_load(&e) < 0)
                        _exit(10);
                if (syscall(SYS_open_by_handle_at, -1, NULL, 0) != -1 || errno != EPERM)
                        _exit(11);
                if (syscall(SYS_init_module, NULL, 0, "") != -1 || errno != EPERM)
                        _exit(12);
                if (syscall(SYS_kexec_load, 0, 0, NULL, 0) != -1 || errno != EPERM)
                        _exit(13);
                if (syscall(SYS_keyctl, 0, 0, 0, 0, 0) != -1 || errno != ENOSYS)
                        _exit(14);
                if (syscall(SYS_io_uring_setup, 1, NULL) != -1 || errno != ENOSYS)
                        _exit(16);
                /* Everything else still works. */
                if (getpid() <= 0 || syscall(SYS_getppid) <= 0)
                        _exit(15);
                _exit(0);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

/* --- devices --- */

static void test_devices_allow_list(void **state)
{
        char out[512], path[PATH_MAX], script[512];
        struct stat st;

        (void)state;
        SKIP_UNLESS_ROOT();
        /* mknod is refused in the user namespace. */
        assert_int_equal(sh_in_ve("mknod /tmp/sda b 8 0", out, sizeof(out)), 1);
        /* A node that exists anyway (here made by the host on the private area)
         * cannot be opened: the devices cgroup refuses everything off the list. */
        assert_int_equal(stat("/", &st), 0);
        snprintf(path, sizeof(path), "%s/tmp/disk", fx.rootfs);
        assert_int_equal(mknod(path, S_IFBLK | 0666, st.st_dev), 0);
        snprintf(path, sizeof(path), "%s/tmp/mem", fx.rootfs);
        assert_int_equal(mknod(path, S_IFCHR | 0666, makedev(1, 1)), 0);
        snprintf(script, sizeof(script),
                 "head -c 1 /tmp/disk >/dev/null && echo DISK-READ; "
                 "head -c 1 /tmp/mem >/dev/null && echo MEM-READ; "
                 "echo x > /dev/null && head -c 1 /dev/zero | wc -c");
        assert_int_equal(sh_in_ve(script, out, sizeof(out)), 0);
        assert_null(strstr(out, "DISK-READ"));
        assert_null(strstr(out, "MEM-READ"));
        assert_non_null(strstr(out, "Operation not permitted"));
        assert_non_null(strstr(out, "1\n"));
}

/* --- /proc and /sys --- */

static void test_masked_proc(void **state)
{
        char out[2048];

        (void)state;
        SKIP_UNLESS_ROOT();
        /* /proc/kcore exists only with CONFIG_PROC_KCORE. */
        assert_int_equal(sh_in_ve("[ ! -e /proc/kcore ] || wc -c < /proc/kcore; "
                                  "wc -c < /proc/keys; wc -c < /proc/timer_list; "
                                  "ls /sys/firmware | wc -l",
                                  out, sizeof(out)),
                         0);
        assert_string_equal(out, "0\n0\n0\n");
        /* This kernel may lack sysrq (CONFIG_MAGIC_SYSRQ): then nothing to cover. */
        assert_int_equal(sh_in_ve("[ ! -e /proc/sysrq-trigger ] || "
                                  "grep -q ' /proc/sysrq-trigger proc ro,' /proc/self/mounts",
                                  out, sizeof(out)),
                         0);
        assert_int_equal(sh_in_ve("echo '|/x' > /proc/sys/kernel/core_pattern", out, sizeof(out)),
                         1);
        assert_int_equal(sh_in_ve("grep ' /proc/sys ' /proc/self/mounts", out, sizeof(out)), 0);
        assert_non_null(strstr(out, " /proc/sys proc ro,"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_userns_map),         cmocka_unit_test(test_idmapped_root),
                cmocka_unit_test(test_bounding_set),       cmocka_unit_test(test_seccomp_denies),
                cmocka_unit_test(test_devices_allow_list), cmocka_unit_test(test_masked_proc),
        };

        return cmocka_run_group_tests_name("isolation", tests, group_setup, group_teardown);
}
