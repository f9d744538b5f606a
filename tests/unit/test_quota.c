/* quota/limits: the values each backend writes for a VE's limits and how it reads
 * the counters back.
 *
 * cgroup v1 is this machine's layout and is exercised for real by
 * tests/integration/test_quota.sh. cgroup v2's controllers cannot be had here (the
 * host's controllers are bound to v1 hierarchies, and a controller lives in one
 * hierarchy only), so v2 runs against a faithful fake: a directory tree with the
 * files of a cgroup2 VE directory, as the kernel lays them out and words them.
 * The same for v1, to pin its file names and write order. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "quota/cgroup.h"
#include "quota/limits.h"

struct fake {
        char root[64];
};

static void put_file(const char *dir, const char *name, const char *text)
{
        char path[512];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
}

static char *get_file(const char *dir, const char *name)
{
        static char buf[4096];
        char path[512];
        FILE *f;
        size_t n;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "r");
        if (f == NULL)
                return NULL;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        return buf;
}

static void mkdirs(const char *path)
{
        char tmp[512];

        snprintf(tmp, sizeof(tmp), "%s", path);
        for (char *p = tmp + 1; *p; p++) {
                if (*p == '/') {
                        *p = '\0';
                        mkdir(tmp, 0755);
                        *p = '/';
                }
        }
        mkdir(tmp, 0755);
}

static int rm_tree(const char *root)
{
        char cmd[600];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
        return system(cmd);
}

/* A v2 VE directory <root>/inst/101 as the kernel makes it. */
static int setup_v2(void **state)
{
        struct fake *f = calloc(1, sizeof(*f));
        char dir[256];

        snprintf(f->root, sizeof(f->root), "/tmp/test_quota.XXXXXX");
        assert_non_null(mkdtemp(f->root));
        snprintf(dir, sizeof(dir), "%s/inst", f->root);
        mkdirs(dir);
        put_file(dir, "cpuset.cpus.effective", "0-3\n");
        snprintf(dir, sizeof(dir), "%s/inst/101", f->root);
        mkdirs(dir);
        put_file(dir, "cgroup.procs", "");
        put_file(dir, "memory.max", "max\n");
        put_file(dir, "memory.swap.max", "max\n");
        put_file(dir, "memory.current", "5242880\n");
        put_file(dir, "memory.peak", "8388608\n");
        put_file(dir, "memory.swap.current", "4096\n");
        put_file(dir, "memory.events",
                 "low 0\nhigh 0\nmax 17\noom 2\noom_kill 2\noom_group_kill 0\n");
        put_file(dir, "cpu.max", "max 100000\n");
        put_file(dir, "cpu.weight", "100\n");
        put_file(dir, "cpu.stat",
                 "usage_usec 1234567\nuser_usec 1000000\nsystem_usec 234567\nnr_periods 0\n");
        put_file(dir, "cpuset.cpus", "\n");
        put_file(dir, "pids.max", "max\n");
        put_file(dir, "pids.current", "12\n");
        put_file(dir, "pids.events", "max 5\n");
        put_file(dir, "io.max", "");
        put_file(dir, "io.stat",
                 "7:2 rbytes=1048576 wbytes=2097152 rios=10 wios=20 dbytes=0 dios=0\n"
                 "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n");
        *state = f;
        return 0;
}

static int setup_v1(void **state)
{
        static const char *const ctrls[] = {
                "memory", "cpu", "cpuacct", "cpuset", "pids", "blkio"
        };
        struct fake *f = calloc(1, sizeof(*f));
        char dir[256];

        snprintf(f->root, sizeof(f->root), "/tmp/test_quota.XXXXXX");
        assert_non_null(mkdtemp(f->root));
        for (size_t i = 0; i < sizeof(ctrls) / sizeof(ctrls[0]); i++) {
                snprintf(dir, sizeof(dir), "%s/%s/inst/101", f->root, ctrls[i]);
                mkdirs(dir);
        }
        snprintf(dir, sizeof(dir), "%s/memory/inst/101", f->root);
        put_file(dir, "memory.limit_in_bytes", "9223372036854771712\n");
        put_file(dir, "memory.memsw.limit_in_bytes", "9223372036854771712\n");
        put_file(dir, "memory.usage_in_bytes", "3145728\n");
        put_file(dir, "memory.memsw.usage_in_bytes", "3149824\n");
        put_file(dir, "memory.max_usage_in_bytes", "4194304\n");
        put_file(dir, "memory.failcnt", "9\n");
        put_file(dir, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n");
        snprintf(dir, sizeof(dir), "%s/cpu/inst/101", f->root);
        put_file(dir, "cpu.cfs_period_us", "100000\n");
        put_file(dir, "cpu.cfs_quota_us", "-1\n");
        put_file(dir, "cpu.shares", "1024\n");
        snprintf(dir, sizeof(dir), "%s/cpuacct/inst/101", f->root);
        put_file(dir, "cpuacct.usage", "987654321\n");
        snprintf(dir, sizeof(dir), "%s/cpuset/inst", f->root);
        put_file(dir, "cpuset.cpus", "0-1\n");
        snprintf(dir, sizeof(dir), "%s/cpuset/inst/101", f->root);
        put_file(dir, "cpuset.cpus", "0-1\n");
        snprintf(dir, sizeof(dir), "%s/pids/inst/101", f->root);
        put_file(dir, "pids.max", "max\n");
        put_file(dir, "pids.current", "4\n");
        put_file(dir, "pids.events", "max 6\n");
        snprintf(dir, sizeof(dir), "%s/blkio/inst/101", f->root);
        put_file(dir, "blkio.throttle.read_bps_device", "");
        put_file(dir, "blkio.throttle.write_bps_device", "");
        put_file(dir, "blkio.throttle.read_iops_device", "");
        put_file(dir, "blkio.throttle.write_iops_device", "");
        put_file(dir, "blkio.throttle.io_service_bytes_recursive",
                 "7:2 Read 4096\n7:2 Write 8192\n7:2 Sync 0\n7:2 Total 12288\nTotal 12288\n");
        put_file(dir, "blkio.throttle.io_serviced_recursive",
                 "7:2 Read 1\n7:2 Write 2\n7:2 Total 3\nTotal 3\n");
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fake *f = *state;

        rm_tree(f->root);
        free(f);
        return 0;
}

static struct quota_cgroup *open_fake(struct fake *f, enum quota_cgroup_version v)
{
        struct ve_error err = { 0 };
        struct quota_cgroup *cg = NULL;

        assert_int_equal(quota_cgroup_open(v, f->root, &cg, &err), 0);
        return cg;
}

static void full_limits(struct quota_limits *l)
{
        quota_limits_init(l);
        l->ram = 512ull << 20;
        l->swap = 128ull << 20;
        l->cpus = 2;
        l->cpulimit = 150;
        l->cpuunits = 3000;
        l->numproc = 200;
        l->iolimit = 10ull << 20;
        l->iopslimit = 300;
        l->blk_major = 7;
        l->blk_minor = 2;
}

/* --- v2 -------------------------------------------------------------------------- */

static void v2_limits_written(void **state)
{
        struct fake *f = *state;
        struct quota_cgroup *cg = open_fake(f, QUOTA_CGROUP_V2);
        struct ve_error err = { 0 };
        struct quota_limits l;
        char dir[256];

        full_limits(&l);
        assert_int_equal(quota_cgroup_set_limits(cg, "inst", 101, &l, &err), 0);
        snprintf(dir, sizeof(dir), "%s/inst/101", f->root);
        assert_string_equal(get_file(dir, "memory.max"), "536870912");
        assert_string_equal(get_file(dir, "memory.swap.max"), "134217728");
        assert_string_equal(get_file(dir, "cpu.max"), "150000 100000");
        assert_string_equal(get_file(dir, "cpu.weight"), "300");
        assert_string_equal(get_file(dir, "pids.max"), "200");
        /* ctid 101 on CPUs 0-3: two CPUs starting at 101 % 4 = 1. */
        assert_string_equal(get_file(dir, "cpuset.cpus"), "1-2");
        assert_string_equal(get_file(dir, "io.max"),
                            "7:2 rbps=10485760 wbps=10485760 riops=300 wiops=300");
        quota_cgroup_free(cg);
}

static void v2_unlimited_written(void **state)
{
        struct fake *f = *state;
        struct quota_cgroup *cg = open_fake(f, QUOTA_CGROUP_V2);
        struct ve_error err = { 0 };
        struct quota_limits l;
        char dir[256];

        full_limits(&l);
        assert_int_equal(quota_cgroup_set_limits(cg, "inst", 101, &l, &err), 0);
        quota_limits_init(&l);
        l.blk_major = 7;
        l.blk_minor = 2;
        assert_int_equal(quota_cgroup_set_limits(cg, "inst", 101, &l, &err), 0);
        snprintf(dir, sizeof(dir), "%s/inst/101", f->root);
        assert_string_equal(get_file(dir, "memory.max"), "max");
        assert_string_equal(get_file(dir, "memory.swap.max"), "max");
        assert_string_equal(get_file(dir, "cpu.max"), "max 100000");
        assert_string_equal(get_file(dir, "cpu.weight"), "100");
        assert_string_equal(get_file(dir, "pids.max"), "max");
        assert_string_equal(get_file(dir, "cpuset.cpus"), "0-3");
        assert_string_equal(get_file(dir, "io.max"), "7:2 rbps=max wbps=max riops=max wiops=max");
        quota_cgroup_free(cg);
}

/* cpulimit caps below what cpus allows; cpus caps when it is the lower. */
static void v2_cpu_cap_is_the_lower(void **state)
{
        struct fake *f = *state;
        struct quota_cgroup *cg = open_fake(f, QUOTA_CGROUP_V2);
        struct ve_error err = { 0 };
        struct quota_limits l;
        char dir[256];

        snprintf(dir, sizeof(dir), "%s/inst/101", f->root);
        quota_limits_init(&l);
        l.cpus = 1;
        l.cpulimit = 300;
        assert_int_equal(quota_cgroup_set_limits(cg, "inst", 101, &l, &err), 0);
        assert_string_equal(get_file(dir, "cpu.max"), "100000 100000");
        l.cpus = 0;
        l.cpulimit = 25;
        assert_int_equal(quota_cgroup_set_limits(cg, "inst", 101, &l, &err), 0);
        assert_string_equal(get_file(dir, "cpu.max"), "25000 100000");
        quota_cgroup_free(cg);
}

static void v2_usage_read(void **state)
{
        struct fake *f = *state;
        struct quota_cgroup *cg = open_fake(f, QUOTA_CGROUP_V2);
        struct ve_error err = { 0 };
        struct quota_usage u;

        assert_int_equal(quota_cgroup_usage(cg, "inst", 101, &u, &err), 0);
        assert_int_equal(u.mem_current, 5242880);
        assert_true(u.mem_limit == QUOTA_UNLIMITED);
        assert_int_equal(u.mem_max, 8388608);
        assert_int_equal(u.mem_failcnt, 17);
        assert_int_equal(u.oom_kills, 2);
        assert_int_equal(u.swap_current, 4096);
        assert_int_equal(u.cpu_ns, 1234567000ull);
        assert_int_equal(u.pids_current, 12);
        assert_true(u.pids_limit == QUOTA_UNLIMITED);
        assert_int_equal(u.pids_hits, 5);
        assert_int_equal(u.io_read_bytes, 1048577);
        assert_int_equal(u.io_write_bytes, 2097154);
        assert_int_equal(u.io_read_ops, 13);
        assert_int_equal(u.io_write_ops, 24);
        /* A VE without a cgroup is ENOENT, with a message. */
        assert_int_equal(quota_cgroup_usage(cg, "inst", 202, &u, &err), -ENOENT);
        assert_non_null(err.message);
        ve_error_clear(&err);
        quota_cgroup_free(cg);
}

static void v2_swap_without_file_refused(void **state)
{
        struct fake *f = *state;
        struct quota_cgroup *cg = open_fake(f, QUOTA_CGROUP_V2);
        struct ve_error err = { 0 };
        struct quota_limits l;
        char path[512];

        snprintf(path, sizeof(path), "%s/inst/101/memory.swap.max", f->root);
        unlink(path);
        quota_limits_init(&l);
        l.ram = 64ull << 20;
        l.swap = 0;
        assert_int_equal(quota_cgroup_set_limits(cg, "inst", 101, &l, &err), -VE_EUNSUPPORTED);
        assert_non_null(strstr(err.message, "swap"));
        ve_error_clear(&err);
        quota_cgroup_free(cg);
}

/* A host that delegates no memory, pids or io controller to the instance: those
 * limits are skipped (the VE runs), named by quota_cgroup_unenforced(), and read
 * back as no limit; the controllers it has still get theirs. */
static void v2_missing_controllers_skipped(void **state)
{
        static const char *const gone[] = { "memory.max",   "memory.swap.max", "memory.current",
                                            "memory.peak",  "memory.events",   "pids.max",
                                            "pids.current", "pids.events",     "io.max" };
        struct fake *f = *state;
        struct quota_cgroup *cg = open_fake(f, QUOTA_CGROUP_V2);
        struct ve_error err = { 0 };
        struct quota_limits l;
        struct quota_usage u;
        char dir[256], path[512], missing[64];

        snprintf(dir, sizeof(dir), "%s/inst/101", f->root);
        assert_int_equal(quota_cgroup_unenforced(cg, "inst", 101, missing, sizeof(missing)), 0);
        assert_string_equal(missing, "");
        for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
                snprintf(path, sizeof(path), "%s/%s", dir, gone[i]);
                assert_int_equal(unlink(path), 0);
        }
        assert_int_equal(quota_cgroup_unenforced(cg, "inst", 101, missing, sizeof(missing)), 0);
        assert_string_equal(missing, "memory pids io");
        assert_int_equal(quota_cgroup_unenforced(cg, "inst", 101, missing, 8), -ENOBUFS);
        full_limits(&l);
        assert_int_equal(quota_cgroup_set_limits(cg, "inst", 101, &l, &err), 0);
        assert_string_equal(get_file(dir, "cpu.max"), "150000 100000");
        snprintf(path, sizeof(path), "%s/memory.max", dir);
        assert_int_equal(access(path, F_OK), -1);
        assert_int_equal(quota_cgroup_usage(cg, "inst", 101, &u, &err), 0);
        assert_true(u.mem_limit == QUOTA_UNLIMITED);
        assert_true(u.pids_limit == QUOTA_UNLIMITED);
        assert_int_equal(u.mem_current, 0);
        assert_int_equal(u.cpu_ns, 1234567000ull);
        quota_cgroup_free(cg);
}

/* --- v1 -------------------------------------------------------------------------- */

static void v1_limits_written(void **state)
{
        struct fake *f = *state;
        struct quota_cgroup *cg = open_fake(f, QUOTA_CGROUP_V1);
        struct ve_error err = { 0 };
        struct quota_limits l;
        char dir[256];

        full_limits(&l);
        assert_int_equal(quota_cgroup_set_limits(cg, "inst", 101, &l, &err), 0);
        snprintf(dir, sizeof(dir), "%s/memory/inst/101", f->root);
        assert_string_equal(get_file(dir, "memory.limit_in_bytes"), "536870912");
        assert_string_equal(get_file(dir, "memory.memsw.limit_in_bytes"), "671088640");
        snprintf(dir, sizeof(dir), "%s/cpu/inst/101", f->root);
        assert_string_equal(get_file(dir, "cpu.cfs_quota_us"), "150000");
        assert_string_equal(get_file(dir, "cpu.cfs_period_us"), "100000");
        assert_string_equal(get_file(dir, "cpu.shares"), "3072");
        snprintf(dir, sizeof(dir), "%s/cpuset/inst/101", f->root);
        assert_string_equal(get_file(dir, "cpuset.cpus"), "0-1");
        snprintf(dir, sizeof(dir), "%s/pids/inst/101", f->root);
        assert_string_equal(get_file(dir, "pids.max"), "200");
        snprintf(dir, sizeof(dir), "%s/blkio/inst/101", f->root);
        assert_string_equal(get_file(dir, "blkio.throttle.write_bps_device"), "7:2 10485760");
        assert_string_equal(get_file(dir, "blkio.throttle.read_iops_device"), "7:2 300");
        /* Unset: the kernel's "no limit" (-1, max, and 0 removes a throttle rule). */
        quota_limits_init(&l);
        l.blk_major = 7;
        l.blk_minor = 2;
        assert_int_equal(quota_cgroup_set_limits(cg, "inst", 101, &l, &err), 0);
        snprintf(dir, sizeof(dir), "%s/memory/inst/101", f->root);
        assert_string_equal(get_file(dir, "memory.limit_in_bytes"), "-1");
        assert_string_equal(get_file(dir, "memory.memsw.limit_in_bytes"), "-1");
        snprintf(dir, sizeof(dir), "%s/cpu/inst/101", f->root);
        assert_string_equal(get_file(dir, "cpu.cfs_quota_us"), "-1");
        assert_string_equal(get_file(dir, "cpu.shares"), "1024");
        snprintf(dir, sizeof(dir), "%s/pids/inst/101", f->root);
        assert_string_equal(get_file(dir, "pids.max"), "max");
        snprintf(dir, sizeof(dir), "%s/blkio/inst/101", f->root);
        assert_string_equal(get_file(dir, "blkio.throttle.write_bps_device"), "7:2 0");
        quota_cgroup_free(cg);
}

static void v1_usage_read(void **state)
{
        struct fake *f = *state;
        struct quota_cgroup *cg = open_fake(f, QUOTA_CGROUP_V1);
        struct ve_error err = { 0 };
        struct quota_usage u;

        assert_int_equal(quota_cgroup_usage(cg, "inst", 101, &u, &err), 0);
        assert_int_equal(u.mem_current, 3145728);
        assert_true(u.mem_limit == QUOTA_UNLIMITED); /* PAGE_COUNTER_MAX reads as none */
        assert_int_equal(u.mem_max, 4194304);
        assert_int_equal(u.mem_failcnt, 9);
        assert_int_equal(u.oom_kills, 3);
        assert_int_equal(u.swap_current, 4096);
        assert_int_equal(u.cpu_ns, 987654321ull);
        assert_int_equal(u.pids_current, 4);
        assert_int_equal(u.pids_hits, 6);
        assert_int_equal(u.io_read_bytes, 4096);
        assert_int_equal(u.io_write_bytes, 8192);
        assert_int_equal(u.io_read_ops, 1);
        assert_int_equal(u.io_write_ops, 2);
        quota_cgroup_free(cg);
}

/* --- shared helpers ------------------------------------------------------------------ */

static void pick(const char *parent, unsigned want, uint32_t ctid, const char *expect)
{
        struct ve_error err = { 0 };
        char buf[256];

        assert_int_equal(quota_pick_cpus(parent, want, ctid, buf, sizeof(buf), &err), 0);
        assert_string_equal(buf, expect);
}

static void cpus_picked(void **state)
{
        struct ve_error err = { 0 };
        char buf[64];

        (void)state;
        pick("0-3", 0, 7, "0-3");
        pick("0-3\n", 8, 7, "0-3");
        pick("0-3", 1, 7, "3");
        pick("0-3", 2, 7, "0,3"); /* wraps: 3 then 0 */
        pick("0-3", 3, 5, "1-3");
        pick("0,2,4,6", 2, 1, "2,4");
        pick("0-1,8-9", 4, 0, "0-1,8-9");
        pick("5", 1, 99, "5");
        assert_int_equal(quota_pick_cpus("", 1, 0, buf, sizeof(buf), &err), -EINVAL);
        ve_error_clear(&err);
        assert_int_equal(quota_pick_cpus("3-1", 1, 0, buf, sizeof(buf), &err), -EINVAL);
        ve_error_clear(&err);
        assert_int_equal(quota_pick_cpus("a-b", 1, 0, buf, sizeof(buf), &err), -EINVAL);
        ve_error_clear(&err);
}

static void keyed_values(void **state)
{
        uint64_t v = 0;

        (void)state;
        assert_true(quota_keyed_value("low 0\nmax 17\noom_kill 2\n", "max", &v));
        assert_int_equal(v, 17);
        assert_true(quota_keyed_value("low 0\nmax 17\noom_kill 2\n", "oom_kill", &v));
        assert_int_equal(v, 2);
        /* "oom" is not "oom_kill", and a key inside a line does not count. */
        assert_false(quota_keyed_value("oom_kill 2\n", "oom", &v));
        assert_false(quota_keyed_value("x max 3\n", "max", &v));
        assert_true(quota_keyed_value("rbytes=10 wbytes=3", "rbytes", &v));
        assert_int_equal(v, 10);
        assert_false(quota_keyed_value("max\n", "max", &v));
        assert_false(quota_keyed_value("", "max", &v));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(v2_limits_written, setup_v2, teardown),
                cmocka_unit_test_setup_teardown(v2_unlimited_written, setup_v2, teardown),
                cmocka_unit_test_setup_teardown(v2_cpu_cap_is_the_lower, setup_v2, teardown),
                cmocka_unit_test_setup_teardown(v2_missing_controllers_skipped, setup_v2, teardown),
                cmocka_unit_test_setup_teardown(v2_usage_read, setup_v2, teardown),
                cmocka_unit_test_setup_teardown(v2_swap_without_file_refused, setup_v2, teardown),
                cmocka_unit_test_setup_teardown(v1_limits_written, setup_v1, teardown),
                cmocka_unit_test_setup_teardown(v1_usage_read, setup_v1, teardown),
                cmocka_unit_test(cpus_picked),
                cmocka_unit_test(keyed_values),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
