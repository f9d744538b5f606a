/* The process half of the VE runtime against the real kernel: cgroup backends
 * (quota/cgroup*.c), ve_start(), ve_exec_spawn(), stopping and finding a VE.
 * Needs root; skips otherwise. The rootfs is a plain directory holding
 * busybox-static, the cgroups live under the instance vedtest-<pid>. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "quota/cgroup.h"
#include "ve/cgroupfs.h"
#include "ve/cleanup.h"
#include "ve/exec.h"
#include "ve/start.h"

#define BUSYBOX "/bin/busybox"
#define V2_ROOT "/sys/fs/cgroup/unified"
#define CTID    101u

struct fixture {
        char tmp[64];          /* mkdtemp dir holding the rootfs */
        char rootfs[PATH_MAX]; /* <tmp>/root */
        char instance[64];     /* vedtest-<pid> */
        struct quota_cgroup *cg;
        struct quota_cgroup_target target;
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

/* --- small helpers --- */

static void write_file(const char *path, const char *text, mode_t mode)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
}

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

static void make_rootfs(const char *root)
{
        static const char *const dirs[] = { "bin", "sbin", "etc", "proc",
                                            "sys", "dev",  "tmp", "root" };
        static const char *const applets[] = { "sh",  "cat",      "echo", "touch", "sleep", "ls",
                                               "tty", "hostname", "stty", "true",  "mount", "id",
                                               "tr",  "head",     "wc",   "grep" };
        char path[PATH_MAX];

        assert_int_equal(mkdir(root, 0755), 0);
        for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
                snprintf(path, sizeof(path), "%s/%s", root, dirs[i]);
                assert_int_equal(mkdir(path, 0755), 0);
        }
        snprintf(path, sizeof(path), "%s/bin/busybox", root);
        copy_file(BUSYBOX, path);
        for (size_t i = 0; i < sizeof(applets) / sizeof(applets[0]); i++) {
                snprintf(path, sizeof(path), "%s/bin/%s", root, applets[i]);
                assert_int_equal(symlink("busybox", path), 0);
        }
        snprintf(path, sizeof(path), "%s/sbin/init", root);
        assert_int_equal(symlink("../bin/busybox", path), 0);
        snprintf(path, sizeof(path), "%s/etc/inittab", root);
        write_file(path,
                   "::sysinit:/bin/touch /tmp/booted\n"
                   "::respawn:/bin/sleep 1000\n"
                   "::shutdown:/bin/echo going down\n",
                   0644);
}

/* A busybox rootfs at <tmp>/root, tmp made from its mkdtemp template. */
static void make_tmp_rootfs(char *tmp, char *root, size_t len)
{
        assert_non_null(mkdtemp(tmp));
        snprintf(root, len, "%s/root", tmp);
        make_rootfs(root);
}

/* The test process's children, zombies included (/proc/<pid>/task/<pid>/children). */
static int children(void)
{
        char path[64], buf[4096];
        int n = 0, fd;
        ssize_t len;

        snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
        fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        len = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        assert_true(len >= 0);
        buf[len] = '\0';
        for (char *p = strtok(buf, " \n"); p != NULL; p = strtok(NULL, " \n"))
                n++;
        return n;
}

static void remove_tree(const char *dir)
{
        char cmd[PATH_MAX + 32];

        /* The rootfs is ours and holds no mounts (the VE's mounts were in its own
         * namespace): a plain recursive removal is safe. */
        snprintf(cmd, sizeof(cmd), "rm -rf --one-file-system '%s'", dir);
        if (system(cmd) != 0)
                fprintf(stderr, "cleanup: could not remove %s\n", dir);
}

static int count_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        int n = 0;

        assert_non_null(d);
        while (readdir(d) != NULL)
                n++;
        closedir(d);
        return n;
}

static int count_lines(const char *path)
{
        FILE *f = fopen(path, "re");
        int n = 0, c;

        if (f == NULL)
                return -1;
        while ((c = fgetc(f)) != EOF)
                n += c == '\n';
        fclose(f);
        return n;
}

static void read_all(int fd, char *buf, size_t len)
{
        size_t off = 0;
        ssize_t n;

        while (off < len - 1 && (n = read(fd, buf + off, len - 1 - off)) > 0)
                off += (size_t)n;
        buf[off] = '\0';
}

/* Wait for pidfd to become readable (the process exited) for up to ms. */
static bool wait_exit(int pidfd, int ms)
{
        struct pollfd p = { .fd = pidfd, .events = POLLIN };

        return poll(&p, 1, ms) == 1;
}

static struct ve_cgroup_join v1_join(void)
{
        struct ve_cgroup_join j = { .fd = -1,
                                    .attach_cb = quota_cgroup_attach_cb,
                                    .data = &fx.target };

        return j;
}

/* Run argv in the fixture's VE with pipes; returns the wait status. */
static int run_in_ve(char *const *argv, const char *input, char *out, size_t outlen, char *errb,
                     size_t errlen)
{
        struct ve_exec_config cfg = { .init_pidfd = fx.ve.pidfd,
                                      .cgroup = v1_join(),
                                      .argv = argv };
        struct ve_exec_proc p;
        struct ve_error err = { 0 };
        int status = -1;

        if (ve_exec_spawn(&cfg, &p, &err) < 0)
                fail_msg("ve_exec_spawn: %s", err.message);
        if (input != NULL)
                assert_int_equal(write(p.stdin_fd, input, strlen(input)), (ssize_t)strlen(input));
        close(p.stdin_fd);
        p.stdin_fd = -1;
        read_all(p.stdout_fd, out, outlen);
        read_all(p.stderr_fd, errb, errlen);
        assert_int_equal(ve_proc_wait(p.pidfd, 0, &status, &err), 1);
        ve_exec_proc_close(&p);
        return status;
}

static int sh_in_ve(const char *script, char *out, size_t outlen)
{
        char errb[1024];
        char *argv[] = { "sh", "-c", (char *)script, NULL };

        return run_in_ve(argv, NULL, out, outlen, errb, sizeof(errb));
}

/* --- group fixture: one VE shared by the tests that inspect a running VE --- */

static int group_setup(void **state)
{
        struct ve_error err = { 0 };
        char *argv[] = { "/sbin/init", NULL };
        struct ve_start_config cfg = { .ctid = CTID, .hostname = "vetest", .init_argv = argv };

        (void)state;
        if (geteuid() != 0)
                return 0;
        snprintf(fx.tmp, sizeof(fx.tmp), "/tmp/vedtest-XXXXXX");
        if (mkdtemp(fx.tmp) == NULL)
                return -1;
        snprintf(fx.rootfs, sizeof(fx.rootfs), "%s/root", fx.tmp);
        make_rootfs(fx.rootfs);
        snprintf(fx.instance, sizeof(fx.instance), "vedtest-%d", (int)getpid());
        if (quota_cgroup_open(QUOTA_CGROUP_V1, "/sys/fs/cgroup", &fx.cg, &err) < 0)
                return -1;
        if (quota_cgroup_create(fx.cg, fx.instance, CTID, &err) < 0) {
                fprintf(stderr, "cgroup: %s\n", err.message);
                return -1;
        }
        fx.target = (struct quota_cgroup_target){ fx.cg, fx.instance, CTID };
        cfg.rootfs = fx.rootfs;
        cfg.cgroup = v1_join();
        if (ve_start(&cfg, &fx.ve, &err) < 0) {
                fprintf(stderr, "%s\n", err.message);
                ve_error_clear(&err);
                return -1;
        }
        return 0;
}

static int group_teardown(void **state);

static int group_setup_or_clean(void **state)
{
        int ret = group_setup(state);

        if (ret < 0)
                group_teardown(state);
        return ret;
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
        }
        ve_proc_close(&fx.ve);
        if (fx.tmp[0] != '\0')
                remove_tree(fx.tmp);
        ve_error_clear(&err);
        return 0;
}

/* --- the running VE --- */

static void test_init_is_pid1(void **state)
{
        char host_ns[64], ve_ns[64], path[64], out[256];
        char *argv[] = { "cat", "/proc/1/comm", NULL };
        char errb[256];
        ssize_t n;

        (void)state;
        SKIP_UNLESS_ROOT();
        n = readlink("/proc/self/ns/pid", host_ns, sizeof(host_ns) - 1);
        assert_true(n > 0);
        host_ns[n] = '\0';
        snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)fx.ve.pid);
        n = readlink(path, ve_ns, sizeof(ve_ns) - 1);
        assert_true(n > 0);
        ve_ns[n] = '\0';
        assert_string_not_equal(host_ns, ve_ns);
        assert_int_equal(run_in_ve(argv, NULL, out, sizeof(out), errb, sizeof(errb)), 0);
        assert_string_equal(out, "init\n");
        assert_int_equal(sh_in_ve("echo $$", out, sizeof(out)), 0);
        assert_true(atoi(out) > 1);
}

static void test_booted_hostname(void **state)
{
        char out[256];
        int i;

        (void)state;
        SKIP_UNLESS_ROOT();
        assert_int_equal(sh_in_ve("hostname", out, sizeof(out)), 0);
        assert_string_equal(out, "vetest\n");
        /* inittab's sysinit ran: init really is busybox init, working. */
        for (i = 0; i < 50; i++) {
                if (sh_in_ve("test -e /tmp/booted", out, sizeof(out)) == 0)
                        break;
                usleep(100 * 1000);
        }
        assert_true(i < 50);
}

static void test_proc_sys_dev(void **state)
{
        char out[1024];

        (void)state;
        SKIP_UNLESS_ROOT();
        assert_int_equal(sh_in_ve("cat /proc/self/mounts", out, sizeof(out)), 0);
        assert_non_null(strstr(out, "proc /proc proc rw,nosuid,nodev,noexec"));
        assert_non_null(strstr(out, "sysfs /sys sysfs ro,nosuid,nodev,noexec"));
        assert_non_null(strstr(out, "tmpfs /dev tmpfs rw,nosuid,noexec"));
        assert_non_null(strstr(out, "devpts /dev/pts devpts"));
        /* Only the VE's tree is left: nothing of the host's mounts. */
        assert_null(strstr(out, " /tmp/vedtest"));
        assert_int_equal(sh_in_ve("touch /sys/x 2>&1", out, sizeof(out)) >> 8, 1);
        assert_non_null(strstr(out, "Read-only file system"));
        assert_int_equal(sh_in_ve("echo $(ls -A /dev)", out, sizeof(out)), 0);
        assert_string_equal(out, "console fd full null ptmx pts random shm stderr stdin stdout "
                                 "tty urandom zero\n");
        assert_int_equal(sh_in_ve("echo $(ls -l /dev/ptmx)", out, sizeof(out)), 0);
        assert_non_null(strstr(out, "/dev/ptmx -> pts/ptmx"));
        assert_int_equal(
            sh_in_ve("echo hi > /dev/null && head -c 4 /dev/zero | wc -c", out, sizeof(out)), 0);
}

static void test_in_cgroup(void **state)
{
        _cleanup_free_ pid_t *pids = NULL;
        struct ve_error err = { 0 };
        char path[64], line[4096], want[128], out[512];
        bool found = false, populated = false;
        size_t n = 0;
        FILE *f;

        (void)state;
        SKIP_UNLESS_ROOT();
        assert_int_equal(quota_cgroup_procs(fx.cg, fx.instance, CTID, &pids, &n, &err), 0);
        for (size_t i = 0; i < n; i++)
                found |= pids[i] == fx.ve.pid;
        assert_true(found);
        assert_int_equal(quota_cgroup_is_populated(fx.cg, fx.instance, CTID, &populated, &err), 0);
        assert_true(populated);
        snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)fx.ve.pid);
        snprintf(want, sizeof(want), ":freezer:/%s/%u\n", fx.instance, CTID);
        f = fopen(path, "re");
        assert_non_null(f);
        found = false;
        while (fgets(line, sizeof(line), f) != NULL)
                found |= strstr(line, want) != NULL;
        fclose(f);
        assert_true(found);
        /* Inside, the cgroup namespace makes the VE's cgroup the root. */
        assert_int_equal(sh_in_ve("grep freezer /proc/1/cgroup", out, sizeof(out)), 0);
        assert_string_equal(strchr(out, ':') + 1, "freezer:/\n");
}

static void test_exec_pipes(void **state)
{
        char out[256], errb[256];
        char *argv[] = { "sh", "-c", "echo out; echo err >&2; exit 7", NULL };
        char *cat[] = { "cat", NULL };
        char *env[] = { "sh", "-c", "echo $PATH $HOME; pwd; ls /proc/self/fd | wc -l", NULL };
        int status, fds;

        (void)state;
        SKIP_UNLESS_ROOT();
        fds = count_fds();
        status = run_in_ve(argv, NULL, out, sizeof(out), errb, sizeof(errb));
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 7);
        assert_string_equal(out, "out\n");
        assert_string_equal(errb, "err\n");
        status = run_in_ve(cat, "hello\nworld\n", out, sizeof(out), errb, sizeof(errb));
        assert_int_equal(status, 0);
        assert_string_equal(out, "hello\nworld\n");
        status = run_in_ve(env, NULL, out, sizeof(out), errb, sizeof(errb));
        assert_int_equal(status, 0);
        /* 0, 1, 2 and the fd ls opens for /proc/self/fd: nothing of the host. */
        assert_string_equal(out, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "
                                 "/root\n/\n4\n");
        /* Every fd of the spawns was handed over or closed. */
        assert_int_equal(count_fds(), fds);
}

static void test_exec_pty(void **state)
{
        struct ve_exec_config cfg = { .init_pidfd = fx.ve.pidfd,
                                      .cgroup = v1_join(),
                                      .pty = true,
                                      .term = "xterm",
                                      .rows = 30,
                                      .cols = 100 };
        char *argv[] = { "sh", "-c", "tty; stty size; echo $TERM", NULL };
        struct ve_error err = { 0 };
        struct ve_exec_proc p;
        char out[512];
        size_t off = 0;
        ssize_t n;
        int status = -1;

        (void)state;
        SKIP_UNLESS_ROOT();
        cfg.argv = argv;
        if (ve_exec_spawn(&cfg, &p, &err) < 0)
                fail_msg("%s", err.message);
        assert_true(p.pty_fd >= 0);
        assert_int_equal(p.stdout_fd, -EBADF);
        /* Reading the master ends with EIO once the last slave fd is closed. */
        while (off < sizeof(out) - 1 && (n = read(p.pty_fd, out + off, sizeof(out) - 1 - off)) > 0)
                off += (size_t)n;
        out[off] = '\0';
        assert_int_equal(ve_proc_wait(p.pidfd, 0, &status, &err), 1);
        assert_int_equal(status, 0);
        assert_non_null(strstr(out, "/dev/pts/0\r\n"));
        assert_non_null(strstr(out, "30 100\r\n"));
        assert_non_null(strstr(out, "xterm\r\n"));
        ve_exec_proc_close(&p);
}

static void test_exec_missing(void **state)
{
        struct ve_exec_config cfg = { .init_pidfd = fx.ve.pidfd, .cgroup = v1_join() };
        char *argv[] = { "no-such-command", NULL };
        struct ve_error err = { 0 };
        struct ve_exec_proc p;
        int kids;

        (void)state;
        SKIP_UNLESS_ROOT();
        cfg.argv = argv;
        kids = children();
        assert_int_equal(ve_exec_spawn(&cfg, &p, &err), -VE_ENOCOMMAND);
        assert_string_equal(err.message, "exec no-such-command in the VE: execute "
                                         "no-such-command: No such file or directory");
        assert_int_equal(p.pidfd, -EBADF);
        /* Nothing left to reap: the failed command was reaped inside. */
        assert_int_equal(children(), kids);
        ve_error_clear(&err);
}

static void test_proc_find(void **state)
{
        struct ve_error err = { 0 };
        struct ve_proc found = {
                .pidfd = -1, .console_fd = -1, .console_peer = -1, .statfs_fd = -1
        };
        char cgpath[128];
        const char *kind = NULL;

        (void)state;
        SKIP_UNLESS_ROOT();
        snprintf(cgpath, sizeof(cgpath), "/%s/%u", fx.instance, CTID);
        assert_int_equal(ve_proc_find(fx.ve.pid, fx.ve.starttime, cgpath, &found, &err), 0);
        assert_true(found.pidfd >= 0);
        assert_int_equal(found.console_fd, -EBADF);
        ve_proc_close(&found);
        assert_int_equal(ve_proc_find(fx.ve.pid, fx.ve.starttime + 1, cgpath, &found, &err),
                         -VE_ENOTFOUND);
        assert_int_equal(ve_proc_find(fx.ve.pid, fx.ve.starttime, "/elsewhere", &found, &err),
                         -VE_ENOTFOUND);
        assert_int_equal(ve_proc_find(getpid(), fx.ve.starttime, cgpath, &found, &err),
                         -VE_ENOTFOUND);
        assert_int_equal(ve_init_kind(fx.rootfs, &kind, &err), 0);
        assert_string_equal(kind, "sysvinit");
        ve_error_clear(&err);
}

/* Last of the group: halt the VE the way `vectl stop` does. */
static void test_stop(void **state)
{
        struct ve_error err = { 0 };
        bool exists = true;
        char buf[4096];
        int status = -1;

        (void)state;
        SKIP_UNLESS_ROOT();
        fcntl(fx.ve.console_fd, F_SETFL, O_NONBLOCK);
        while (read(fx.ve.console_fd, buf, sizeof(buf)) > 0)
                ;
        assert_int_equal(ve_stop_signal(fx.ve.pid, fx.ve.pidfd, NULL, &err), 0);
        assert_true(wait_exit(fx.ve.pidfd, 10000));
        assert_int_equal(ve_proc_wait(fx.ve.pidfd, 0, &status, &err), 1);
        /* reboot(2) from inside a pid namespace kills its init with SIGINT on halt. */
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGINT);
        assert_int_equal(quota_cgroup_kill_all(fx.cg, fx.instance, CTID, SIGKILL, &err), 0);
        assert_int_equal(quota_cgroup_destroy(fx.cg, fx.instance, CTID, &err), 0);
        assert_int_equal(quota_cgroup_exists(fx.cg, fx.instance, CTID, &exists, &err), 0);
        assert_false(exists);
        ve_proc_close(&fx.ve);
}

/* --- standalone tests --- */

static void test_symlink_proc_refused(void **state)
{
        struct ve_error err = { 0 };
        struct ve_proc ve;
        char tmp[] = "/tmp/vedtest-XXXXXX", root[256], proc[PATH_MAX];
        struct ve_start_config cfg = { .ctid = 102, .cgroup = { .fd = -1 } };
        int before, kids, ret;

        (void)state;
        SKIP_UNLESS_ROOT();
        make_tmp_rootfs(tmp, root, sizeof(root));
        snprintf(proc, sizeof(proc), "%s/proc", root);
        assert_int_equal(rmdir(proc), 0);
        assert_int_equal(symlink("/etc", proc), 0);
        cfg.rootfs = root;
        before = count_lines("/proc/self/mountinfo");
        kids = children();
        ret = ve_start(&cfg, &ve, &err);
        assert_int_equal(count_lines("/proc/self/mountinfo"), before);
        remove_tree(tmp);
        assert_int_equal(ret, -ELOOP);
        assert_string_equal(err.message,
                            "start VE 102: /proc is a symlink in the VE's root: refused");
        assert_int_equal(ve.pidfd, -EBADF);
        assert_int_equal(children(), kids);
        ve_error_clear(&err);
}

/* ready_cb runs with the child, in its own network namespace, before init. */
static int failing_ready_cb(pid_t pid, void *data, struct ve_error *err)
{
        char path[64];
        struct stat ours, its;

        snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
        *(bool *)data = stat(path, &its) == 0 && stat("/proc/self/ns/net", &ours) == 0 &&
                        its.st_ino != ours.st_ino;
        return ve_error_set(err, EIO, "no network for it");
}

static int ok_ready_cb(pid_t pid, void *data, struct ve_error *err)
{
        (void)pid;
        (void)err;
        *(bool *)data = true;
        return 0;
}

/* exec_cb runs once the child was let go to its execve. */
static int failing_exec_cb(pid_t pid, void *data, struct ve_error *err)
{
        (void)pid;
        *(bool *)data = true;
        return ve_error_set(err, EIO, "no view for it");
}

/* A failing exec_cb fails the start and leaves no child; an ok one is called with
 * the child that becomes init. */
static void test_exec_cb(void **state)
{
        struct ve_error err = { 0 };
        struct ve_proc ve;
        char tmp[] = "/tmp/vedtest-XXXXXX", root[256];
        struct ve_start_config cfg = { .ctid = 105, .cgroup = { .fd = -1 } };
        bool ready = false, called = false;
        int kids, ret;

        (void)state;
        SKIP_UNLESS_ROOT();
        make_tmp_rootfs(tmp, root, sizeof(root));
        cfg.rootfs = root;
        cfg.ready_cb = ok_ready_cb;
        cfg.ready_data = &ready;
        cfg.exec_cb = failing_exec_cb;
        kids = children();
        ret = ve_start(&cfg, &ve, &err);
        assert_int_equal(ret, -EIO);
        assert_true(ready);
        assert_string_equal(err.message, "start VE 105: no view for it");
        assert_int_equal(ve.pidfd, -EBADF);
        assert_int_equal(children(), kids);
        ve_error_clear(&err);

        cfg.ready_data = &called;
        cfg.exec_cb = ok_ready_cb;
        ret = ve_start(&cfg, &ve, &err);
        if (ret == 0) {
                kill(ve.pid, SIGKILL);
                ve_proc_wait(ve.pidfd, 0, &(int){ 0 }, NULL);
                ve_proc_close(&ve);
        }
        remove_tree(tmp);
        assert_int_equal(ret, 0);
        assert_true(called);
        assert_int_equal(children(), kids);
        ve_error_clear(&err);
}

/* A failing ready_cb fails the start and leaves no child; a child that fails while
 * ready_cb runs reports its own error, not the broken second go. */
static void test_ready_cb(void **state)
{
        struct ve_error err = { 0 };
        struct ve_proc ve;
        char tmp[] = "/tmp/vedtest-XXXXXX", root[256], proc[PATH_MAX];
        struct ve_start_config cfg = { .ctid = 104, .cgroup = { .fd = -1 } };
        bool called = false;
        int kids;

        (void)state;
        SKIP_UNLESS_ROOT();
        make_tmp_rootfs(tmp, root, sizeof(root));
        cfg.rootfs = root;
        cfg.ready_cb = failing_ready_cb;
        cfg.ready_data = &called;
        kids = children();
        assert_int_equal(ve_start(&cfg, &ve, &err), -EIO);
        assert_true(called);
        assert_string_equal(err.message, "start VE 104: no network for it");
        assert_int_equal(ve.pidfd, -EBADF);
        assert_int_equal(children(), kids);
        ve_error_clear(&err);

        snprintf(proc, sizeof(proc), "%s/proc", root);
        assert_int_equal(rmdir(proc), 0);
        assert_int_equal(symlink("/etc", proc), 0);
        cfg.ready_cb = ok_ready_cb;
        called = false;
        assert_int_equal(ve_start(&cfg, &ve, &err), -ELOOP);
        remove_tree(tmp);
        assert_true(called);
        assert_string_equal(err.message,
                            "start VE 104: /proc is a symlink in the VE's root: refused");
        assert_int_equal(children(), kids);
        ve_error_clear(&err);
}

static void cgroup_lifecycle(struct quota_cgroup *cg, const char *instance)
{
        struct ve_error err = { 0 };
        _cleanup_free_ pid_t *pids = NULL;
        bool exists = false, populated = true;
        size_t n = 0;
        int status;
        pid_t child;

        assert_int_equal(quota_cgroup_create(cg, instance, 7777, &err), 0);
        assert_int_equal(quota_cgroup_create(cg, instance, 7777, &err), 0);
        assert_int_equal(quota_cgroup_exists(cg, instance, 7777, &exists, &err), 0);
        assert_true(exists);
        child = fork();
        if (child == 0) {
                pause();
                _exit(0);
        }
        assert_int_equal(quota_cgroup_attach(cg, instance, 7777, child, &err), 0);
        assert_int_equal(quota_cgroup_procs(cg, instance, 7777, &pids, &n, &err), 0);
        assert_int_equal(n, 1);
        assert_int_equal(pids[0], child);
        assert_int_equal(quota_cgroup_is_populated(cg, instance, 7777, &populated, &err), 0);
        assert_true(populated);
        assert_int_equal(quota_cgroup_remove_instance(cg, instance, &err), -EBUSY);
        assert_int_equal(quota_cgroup_kill_all(cg, instance, 7777, SIGKILL, &err), 0);
        assert_int_equal(waitpid(child, &status, 0), child);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        assert_int_equal(quota_cgroup_is_populated(cg, instance, 7777, &populated, &err), 0);
        assert_false(populated);
        assert_int_equal(quota_cgroup_destroy(cg, instance, 7777, &err), 0);
        assert_int_equal(quota_cgroup_destroy(cg, instance, 7777, &err), 0);
        assert_int_equal(quota_cgroup_exists(cg, instance, 7777, &exists, &err), 0);
        assert_false(exists);
        assert_int_equal(quota_cgroup_remove_instance(cg, instance, &err), 0);
        assert_int_equal(quota_cgroup_create(cg, "../x", 7777, &err), -VE_EINVAL_INPUT);
        ve_error_clear(&err);
}

/* Whatever a failed lifecycle left: its process, cgroup and instance. */
static void clean_instance(enum quota_cgroup_version version, const char *root, const char *suffix)
{
        struct ve_error err = { 0 };
        struct quota_cgroup *cg = NULL;
        char instance[64];

        snprintf(instance, sizeof(instance), "vedtest-%d-%s", (int)getpid(), suffix);
        if (quota_cgroup_open(version, root, &cg, &err) == 0) {
                quota_cgroup_kill_all(cg, instance, 7777, SIGKILL, &err);
                quota_cgroup_destroy(cg, instance, 7777, &err);
                quota_cgroup_remove_instance(cg, instance, &err);
                quota_cgroup_free(cg);
        }
        while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
        ve_error_clear(&err);
}

static int teardown_v1(void **state)
{
        (void)state;
        if (geteuid() == 0)
                clean_instance(QUOTA_CGROUP_V1, "/sys/fs/cgroup", "v1");
        return 0;
}

static int teardown_v2(void **state)
{
        (void)state;
        if (geteuid() == 0)
                clean_instance(QUOTA_CGROUP_V2, V2_ROOT, "v2");
        return 0;
}

static void test_cgroup_v1(void **state)
{
        struct ve_error err = { 0 };
        struct quota_cgroup *cg = NULL;
        char instance[64];

        (void)state;
        SKIP_UNLESS_ROOT();
        assert_int_equal(quota_cgroup_detect(&cg, &err), 0);
        if (strcmp(quota_cgroup_name(cg), "v1") != 0) {
                quota_cgroup_free(cg);
                skip();
        }
        snprintf(instance, sizeof(instance), "vedtest-%d-v1", (int)getpid());
        cgroup_lifecycle(cg, instance);
        quota_cgroup_free(cg);
}

static void test_cgroup_v2(void **state)
{
        struct ve_error err = { 0 };
        struct quota_cgroup *cg = NULL;
        char instance[64];
        int fd;

        (void)state;
        SKIP_UNLESS_ROOT();
        if (quota_cgroup_open(QUOTA_CGROUP_V2, V2_ROOT, &cg, &err) < 0 &&
            quota_cgroup_open(QUOTA_CGROUP_V2, "/sys/fs/cgroup", &cg, &err) < 0)
                fail_msg("%s", err.message);
        assert_string_equal(quota_cgroup_name(cg), "v2");
        snprintf(instance, sizeof(instance), "vedtest-%d-v2", (int)getpid());
        assert_int_equal(quota_cgroup_create(cg, instance, 7777, &err), 0);
        fd = quota_cgroup_open_fd(cg, instance, 7777, &err);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(quota_cgroup_destroy(cg, instance, 7777, &err), 0);
        cgroup_lifecycle(cg, instance);
        quota_cgroup_free(cg);
        ve_error_clear(&err);
}

/* A VE born into a cgroup v2 directory through CLONE_INTO_CGROUP, killed by
 * cgroup.kill. */
static void test_start_v2(void **state)
{
        struct ve_error err = { 0 };
        struct quota_cgroup *cg = NULL;
        struct ve_proc ve = { .pidfd = -1, .console_fd = -1, .console_peer = -1, .statfs_fd = -1 };
        char tmp[] = "/tmp/vedtest-XXXXXX", root[256], instance[64], path[64];
        char line[512], want[128];
        struct ve_start_config cfg = { .ctid = 103 };
        bool found = false;
        int ret;
        FILE *f;

        (void)state;
        SKIP_UNLESS_ROOT();
        if (quota_cgroup_open(QUOTA_CGROUP_V2, V2_ROOT, &cg, &err) < 0)
                skip();
        snprintf(instance, sizeof(instance), "vedtest-%d-v2s", (int)getpid());
        assert_int_equal(quota_cgroup_create(cg, instance, 103, &err), 0);
        make_tmp_rootfs(tmp, root, sizeof(root));
        cfg.rootfs = root;
        cfg.cgroup.fd = quota_cgroup_open_fd(cg, instance, 103, &err);
        ret = ve_start(&cfg, &ve, &err);
        if (ret < 0)
                fprintf(stderr, "%s\n", err.message);
        close(cfg.cgroup.fd);
        if (ret == 0) {
                snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)ve.pid);
                snprintf(want, sizeof(want), "0::/%s/103\n", instance);
                f = fopen(path, "re");
                while (f != NULL && fgets(line, sizeof(line), f) != NULL)
                        found |= strcmp(line, want) == 0;
                if (f != NULL)
                        fclose(f);
        }
        quota_cgroup_kill_all(cg, instance, 103, SIGKILL, &err);
        if (ret == 0)
                ve_proc_wait(ve.pidfd, 0, &(int){ 0 }, NULL);
        ve_proc_close(&ve);
        assert_int_equal(quota_cgroup_destroy(cg, instance, 103, &err), 0);
        assert_int_equal(quota_cgroup_remove_instance(cg, instance, &err), 0);
        quota_cgroup_free(cg);
        remove_tree(tmp);
        assert_int_equal(ret, 0);
        assert_true(found);
        ve_error_clear(&err);
}

/* With a user namespace: the VE's root is uid 0 inside over an idmapped root,
 * and /dev holds the same allow-list (bind mounts of the host's nodes). */
static void test_start_userns(void **state)
{
        struct ve_error err = { 0 };
        struct quota_cgroup_target target;
        struct ve_proc ve = { .pidfd = -1, .console_fd = -1, .console_peer = -1, .statfs_fd = -1 };
        char tmp[] = "/tmp/vedtest-XXXXXX", root[256], instance[64], out[512] = "";
        char *sh[] = { "sh", "-c", "id -u; echo $(ls -A /dev); echo x > /dev/null && echo ok",
                       NULL };
        struct ve_start_config cfg = { .ctid = 104, .idmap = { 2200000000u, 2200000000u, 65536 } };
        struct ve_exec_config x = { .argv = sh, .idmap = cfg.idmap };
        struct ve_exec_proc p = { .pidfd = -1 };
        int ret, status = -1;

        (void)state;
        SKIP_UNLESS_ROOT();
        snprintf(instance, sizeof(instance), "vedtest-%d-us", (int)getpid());
        assert_int_equal(quota_cgroup_open(QUOTA_CGROUP_V1, "/sys/fs/cgroup", &fx.cg, &err), 0);
        assert_int_equal(quota_cgroup_create(fx.cg, instance, 104, &err), 0);
        target = (struct quota_cgroup_target){ fx.cg, instance, 104 };
        make_tmp_rootfs(tmp, root, sizeof(root));
        cfg.rootfs = root;
        cfg.cgroup = (struct ve_cgroup_join){ .fd = -1,
                                              .attach_cb = quota_cgroup_attach_cb,
                                              .data = &target };
        ret = ve_start(&cfg, &ve, &err);
        if (ret < 0)
                fprintf(stderr, "%s\n", err.message);
        if (ret == 0) {
                x.init_pidfd = ve.pidfd;
                x.cgroup = cfg.cgroup;
                ret = ve_exec_spawn(&x, &p, &err);
        }
        if (ret == 0) {
                read_all(p.stdout_fd, out, sizeof(out));
                ve_proc_wait(p.pidfd, 0, &status, &err);
                ve_exec_proc_close(&p);
        }
        quota_cgroup_kill_all(fx.cg, instance, 104, SIGKILL, &err);
        if (ve.pidfd >= 0)
                ve_proc_wait(ve.pidfd, 0, &(int){ 0 }, NULL);
        ve_proc_close(&ve);
        assert_int_equal(quota_cgroup_destroy(fx.cg, instance, 104, &err), 0);
        assert_int_equal(quota_cgroup_remove_instance(fx.cg, instance, &err), 0);
        quota_cgroup_free(fx.cg);
        fx.cg = NULL;
        remove_tree(tmp);
        assert_int_equal(ret, 0);
        assert_int_equal(status, 0);
        assert_string_equal(out, "0\nconsole fd full null ptmx pts random shm stderr stdin stdout "
                                 "tty urandom zero\nok\n");
        ve_error_clear(&err);
}

/* --- favordynmods (ve/cgroupfs.c) --- */

/* The first cgroup2 line of mountinfo: "<mount flags> <superblock options>". */
static bool cgroup2_options(char *out, size_t len)
{
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        char line[4096], flags[1024], super[1024];

        while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
                char *dash = strstr(line, " - cgroup2 ");

                if (dash == NULL || sscanf(line, "%*s %*s %*s %*s %*s %1023s", flags) != 1 ||
                    sscanf(dash, " - cgroup2 %*s %1023s", super) != 1)
                        continue;
                snprintf(out, len, "%s %s", flags, super);
                return true;
        }
        return false;
}

/* The remount that turns favordynmods on, run for real but from a cgroup namespace
 * of its own: the kernel parses every option given again and answers the
 * reconfigure, but applies a cgroup2 root's flags only from the initial cgroup
 * namespace. So the host keeps its mode: once the option is on, Linux 6.18 keeps
 * its effect until reboot, and would change every later measurement here. */
static void test_favor_dynmods(void **state)
{
        char before[2048], after[2048];
        bool on;
        int status = 0;
        pid_t pid;

        (void)state;
        SKIP_UNLESS_ROOT();
        assert_true(cgroup2_options(before, sizeof(before)));
        on = strstr(strchr(before, ' '), "favordynmods") != NULL;
        assert_int_equal(ve_cgroupfs_favors_dynmods(), on);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct ve_error err = { 0 };
                char where[256] = "";
                int ret;

                if (unshare(CLONE_NEWCGROUP) < 0)
                        _exit(10);
                ret = ve_cgroupfs_favor_dynmods(where, sizeof(where), &err);
                if (ret < 0)
                        fprintf(stderr, "ve_cgroupfs_favor_dynmods: %s\n", err.message);
                if (where[0] != '/')
                        _exit(11);
                _exit(ret == 1 ? 0 : ret == 0 ? 1 : 12);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        /* 0: asked and answered; 1: the option was on already. */
        assert_int_equal(WEXITSTATUS(status), on ? 1 : 0);
        assert_true(cgroup2_options(after, sizeof(after)));
        assert_string_equal(after, before);
}

int main(void)
{
        const struct CMUnitTest running_ve[] = {
                cmocka_unit_test(test_init_is_pid1), cmocka_unit_test(test_booted_hostname),
                cmocka_unit_test(test_proc_sys_dev), cmocka_unit_test(test_in_cgroup),
                cmocka_unit_test(test_exec_pipes),   cmocka_unit_test(test_exec_pty),
                cmocka_unit_test(test_exec_missing), cmocka_unit_test(test_proc_find),
                cmocka_unit_test(test_stop),
        };
        const struct CMUnitTest standalone[] = {
                cmocka_unit_test_teardown(test_cgroup_v1, teardown_v1),
                cmocka_unit_test_teardown(test_cgroup_v2, teardown_v2),
                cmocka_unit_test(test_symlink_proc_refused),
                cmocka_unit_test(test_ready_cb),
                cmocka_unit_test(test_exec_cb),
                cmocka_unit_test(test_start_v2),
                cmocka_unit_test(test_start_userns),
                cmocka_unit_test(test_favor_dynmods),
        };
        int failed;

        failed = cmocka_run_group_tests_name("cgroup_and_errors", standalone, NULL, NULL);
        failed += cmocka_run_group_tests_name("running_ve", running_ve, group_setup_or_clean,
                                              group_teardown);
        return failed;
}
