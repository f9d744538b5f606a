/* daemon/idrange.c in a temporary directory: claims, who holds them, stale claims
 * (a holder that exited, a pid whose start time differs, a damaged file) and
 * releases. Live holders are this test and a child it keeps running. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "daemon/idrange.h"

#define BASE 1000065536LL

struct fixture {
        char dir[64];
        char file[96];
};

static int setup(void **state)
{
        struct fixture *fx = calloc(1, sizeof(*fx));
        char parent[] = "/tmp/test_idrange.XXXXXX";

        if (fx == NULL || mkdtemp(parent) == NULL)
                return -1;
        /* The registry makes its own directory. */
        snprintf(fx->dir, sizeof(fx->dir), "%s/idmap", parent);
        snprintf(fx->file, sizeof(fx->file), "%s/%lld", fx->dir, BASE);
        *state = fx;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *fx = *state;
        char cmd[128];

        snprintf(cmd, sizeof(cmd), "rm -rf '%.*s'", (int)(strrchr(fx->dir, '/') - fx->dir),
                 fx->dir);
        if (system(cmd) != 0)
                return -1;
        free(fx);
        return 0;
}

static struct ved_idrange_holder holder(const char *instance, uint32_t ctid, pid_t pid)
{
        struct ved_idrange_holder h;
        struct ve_error err = { 0 };

        assert_int_equal(ved_idrange_holder_init(&h, instance, ctid, pid, &err), 0);
        return h;
}

static void read_file(const char *path, char *buf, size_t len)
{
        FILE *f = fopen(path, "r");

        assert_non_null(f);
        buf[fread(buf, 1, len - 1, f)] = '\0';
        fclose(f);
}

static void write_file(const char *path, const char *text)
{
        FILE *f = fopen(path, "w");

        assert_non_null(f);
        fputs(text, f);
        fclose(f);
}

static int claim(struct fixture *fx, const struct ved_idrange_holder *me,
                 struct ved_idrange_holder *other)
{
        struct ve_error err = { 0 };
        int ret = ved_idrange_claim_locked(fx->dir, BASE, me, other, &err);

        if (ret == -EBUSY)
                assert_non_null(strstr(err.message, "in use by VE"));
        ve_error_clear(&err);
        return ret;
}

/* A child that sleeps until killed: a live holder other than this process. */
static pid_t sleeper(void)
{
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                pause();
                _exit(0);
        }
        return pid;
}

static void reap(pid_t pid)
{
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
}

static void test_claim_writes_holder(void **state)
{
        struct fixture *fx = *state;
        struct ved_idrange_holder me = holder("ved", 101, 0);
        char buf[160], want[160];
        struct stat st;

        assert_int_equal(claim(fx, &me, NULL), 0);
        read_file(fx->file, buf, sizeof(buf));
        snprintf(want, sizeof(want), "%d %llu ved 101\n", (int)getpid(),
                 (unsigned long long)me.starttime);
        assert_string_equal(buf, want);
        assert_int_equal(stat(fx->dir, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);
}

static void test_other_live_claim_is_busy(void **state)
{
        struct fixture *fx = *state;
        pid_t pid = sleeper();
        struct ved_idrange_holder a = holder("vma", 101, pid), b = holder("vmb", 101, 0);
        struct ved_idrange_holder other = { 0 };

        assert_int_equal(claim(fx, &a, NULL), 0);
        /* The same ctid in another instance is another VE. */
        assert_int_equal(claim(fx, &b, &other), -EBUSY);
        assert_string_equal(other.instance, "vma");
        assert_int_equal(other.ctid, 101);
        assert_int_equal(other.pid, pid);
        /* Another ctid of the same instance too. */
        b = holder("vma", 102, 0);
        assert_int_equal(claim(fx, &b, NULL), -EBUSY);
        reap(pid);
}

static void test_same_ve_takes_over(void **state)
{
        struct fixture *fx = *state;
        pid_t pid = sleeper();
        struct ved_idrange_holder daemon = holder("ved", 101, 0), init = holder("ved", 101, pid);
        struct ved_idrange_holder other = holder("vex", 7, 0);
        char buf[160];

        assert_int_equal(claim(fx, &daemon, NULL), 0);
        assert_int_equal(claim(fx, &init, NULL), 0);
        read_file(fx->file, buf, sizeof(buf));
        assert_int_equal(atoi(buf), pid);
        /* Now the init vouches: the daemon's own life no longer counts. */
        assert_int_equal(claim(fx, &other, NULL), -EBUSY);
        reap(pid);
        assert_int_equal(claim(fx, &other, NULL), 0);
}

static void test_stale_claims_are_free(void **state)
{
        struct fixture *fx = *state;
        pid_t pid = sleeper();
        struct ved_idrange_holder gone = holder("vma", 101, pid), me = holder("vmb", 5, 0);
        char text[160];

        /* Its holder exited. */
        assert_int_equal(claim(fx, &gone, NULL), 0);
        reap(pid);
        assert_int_equal(claim(fx, &me, NULL), 0);
        /* A pid that runs, but started at another time: reused. */
        snprintf(text, sizeof(text), "%d %llu vma 101\n", (int)getpid(),
                 (unsigned long long)me.starttime + 1);
        write_file(fx->file, text);
        me.ctid = 6;
        assert_int_equal(claim(fx, &me, NULL), 0);
        /* Damaged: nothing vouches for it. */
        write_file(fx->file, "garbage\n");
        assert_int_equal(claim(fx, &me, NULL), 0);
        write_file(fx->file, "");
        assert_int_equal(claim(fx, &me, NULL), 0);
}

static void test_release_only_own(void **state)
{
        struct fixture *fx = *state;
        struct ved_idrange_holder a = holder("vma", 101, 0);
        struct stat st;

        assert_int_equal(claim(fx, &a, NULL), 0);
        ved_idrange_release(fx->dir, BASE, "vmb", 101);
        ved_idrange_release(fx->dir, BASE, "vma", 102);
        assert_int_equal(stat(fx->file, &st), 0);
        ved_idrange_release(fx->dir, BASE, "vma", 101);
        assert_int_equal(stat(fx->file, &st), -1);
        assert_int_equal(errno, ENOENT);
        /* Nothing to release: no harm. */
        ved_idrange_release(fx->dir, BASE, "vma", 101);
}

/* Whether another process can take the registry's lock within 3 s. */
static bool other_process_locks(const char *dir)
{
        int status;
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                alarm(3);
                _exit(ved_idrange_lock(dir, NULL) >= 0 ? 0 : 1);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void test_lock_excludes_other_processes(void **state)
{
        struct fixture *fx = *state;
        struct ve_error err = { 0 };
        int fd = ved_idrange_lock(fx->dir, &err);

        assert_true(fd >= 0);
        assert_false(other_process_locks(fx->dir));
        ved_idrange_unlock(fd);
        assert_true(other_process_locks(fx->dir));
}

/* A child cloned while the lock was held (a VE's init waiting for its go) keeps a
 * copy of the lock's fd, but not the lock: with a flock it kept the whole host's
 * registry locked, and the daemon's next claim waited for it forever. */
static void test_child_does_not_keep_the_lock(void **state)
{
        struct fixture *fx = *state;
        struct ve_error err = { 0 };
        int fd = ved_idrange_lock(fx->dir, &err);
        pid_t child;

        assert_true(fd >= 0);
        child = sleeper();
        ved_idrange_unlock(fd);
        assert_true(other_process_locks(fx->dir));
        /* And this process takes it again, as the daemon's next claim does. */
        fd = ved_idrange_lock(fx->dir, &err);
        assert_true(fd >= 0);
        ved_idrange_unlock(fd);
        reap(child);
}

/* A daemon's start removes its own instance's stale claims (a destroy cut by a
 * kill -9 left one), and the temporary file of a claim a crash cut; live claims
 * and other instances' stay. */
static void test_sweep(void **state)
{
        struct fixture *fx = *state;
        struct ve_error err = { 0 };
        pid_t dead = sleeper();
        struct ved_idrange_holder gone = holder("vma", 101, dead), mine = holder("vma", 102, 0);
        struct ved_idrange_holder theirs = holder("vmb", 101, dead);
        char path[160];
        struct stat st;
        int fd;

        fd = ved_idrange_lock(fx->dir, &err);
        assert_true(fd >= 0);
        assert_int_equal(ved_idrange_claim(fd, BASE, &gone, NULL, &err), 0);
        assert_int_equal(ved_idrange_claim(fd, BASE + 65536, &mine, NULL, &err), 0);
        assert_int_equal(ved_idrange_claim(fd, BASE + 131072, &theirs, NULL, &err), 0);
        ved_idrange_unlock(fd);
        reap(dead);
        snprintf(path, sizeof(path), "%s/.%lld.tmp", fx->dir, BASE + 196608);
        write_file(path, "half");
        ved_idrange_sweep(fx->dir, "vma");
        assert_int_equal(stat(fx->file, &st), -1);
        assert_int_equal(stat(path, &st), -1);
        snprintf(path, sizeof(path), "%s/%lld", fx->dir, BASE + 65536);
        assert_int_equal(stat(path, &st), 0);
        snprintf(path, sizeof(path), "%s/%lld", fx->dir, BASE + 131072);
        assert_int_equal(stat(path, &st), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_claim_writes_holder, setup, teardown),
                cmocka_unit_test_setup_teardown(test_other_live_claim_is_busy, setup, teardown),
                cmocka_unit_test_setup_teardown(test_same_ve_takes_over, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stale_claims_are_free, setup, teardown),
                cmocka_unit_test_setup_teardown(test_release_only_own, setup, teardown),
                cmocka_unit_test_setup_teardown(test_lock_excludes_other_processes, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_child_does_not_keep_the_lock, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sweep, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
