/* ve/sysinfo.c's logic: the VE's answer from its cgroups' figures, its cgroup
 * found in /proc/<pid>/cgroup text, and the start time in /proc/<pid>/stat. The
 * whole answer, served to a real VE, is tested in tests/integration/test_quota.sh. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ve/sysinfo.h"

#define MiB (1024ull * 1024)

static struct sysinfo host_info(unsigned unit)
{
        struct sysinfo h;

        memset(&h, 0, sizeof(h));
        h.uptime = 99999;
        h.loads[0] = 12345;
        h.totalram = 24576 * MiB / unit;
        h.freeram = 20000 * MiB / unit;
        h.totalswap = 1024 * MiB / unit;
        h.freeswap = 1000 * MiB / unit;
        h.procs = 400;
        h.mem_unit = unit;
        return h;
}

static void test_fill_limited(void **state)
{
        struct sysinfo h = host_info(1), out;
        struct ve_mem_figures m = { .limit = 256 * MiB,
                                    .usage = 40 * MiB,
                                    .cache = 30 * MiB,
                                    .shmem = 2 * MiB,
                                    .swap_limit = 64 * MiB,
                                    .swap_usage = 4 * MiB };

        (void)state;
        ve_sysinfo_fill(&out, &h, &m, 42, 7);
        assert_int_equal(out.mem_unit, 1);
        assert_int_equal(out.totalram, 256 * MiB);
        assert_int_equal(out.freeram, 216 * MiB);
        assert_int_equal(out.sharedram, 2 * MiB);
        assert_int_equal(out.bufferram, 0);
        assert_int_equal(out.totalswap, 64 * MiB);
        assert_int_equal(out.freeswap, 60 * MiB);
        assert_int_equal(out.uptime, 42);
        assert_int_equal(out.procs, 7);
        /* The host's loads stay. */
        assert_int_equal(out.loads[0], 12345);
}

static void test_fill_unlimited_is_the_hosts(void **state)
{
        /* A host answer in 4 KiB units: the VE's is in bytes. */
        struct sysinfo h = host_info(4096), out;
        struct ve_mem_figures m = { .limit = UINT64_MAX,
                                    .usage = 100 * MiB,
                                    .swap_limit = UINT64_MAX };

        (void)state;
        ve_sysinfo_fill(&out, &h, &m, 5, 70000);
        assert_int_equal(out.mem_unit, 1);
        assert_int_equal(out.totalram, 24576 * MiB);
        assert_int_equal(out.freeram, 24476 * MiB);
        assert_int_equal(out.totalswap, 1024 * MiB);
        assert_int_equal(out.freeswap, 1024 * MiB);
        assert_int_equal(out.procs, 0xffff);
}

static void test_fill_usage_over_limit(void **state)
{
        struct sysinfo h = host_info(1), out;
        struct ve_mem_figures m = { .limit = 64 * MiB,
                                    .usage = 65 * MiB,
                                    .shmem = 70 * MiB,
                                    .swap_limit = 0,
                                    .swap_usage = 5 * MiB };

        (void)state;
        ve_sysinfo_fill(&out, &h, &m, 0, 1);
        assert_int_equal(out.freeram, 0);
        assert_int_equal(out.sharedram, 64 * MiB);
        assert_int_equal(out.totalswap, 0);
        assert_int_equal(out.freeswap, 0);
}

static void cgroup_top_is(const char *text, const char *controller, uint32_t ctid, const char *want)
{
        char out[128];
        int ret = ve_sysinfo_cgroup_top(text, controller, ctid, out, sizeof(out));

        if (want == NULL) {
                assert_int_equal(ret, -ENOENT);
                return;
        }
        assert_int_equal(ret, 0);
        assert_string_equal(out, want);
}

static void test_cgroup_top(void **state)
{
        const char *v1 = "12:pids:/ved/101/init.scope\n"
                         "11:memory:/ved/101\n"
                         "4:cpu,cpuacct:/ved/101/system.slice/ssh.service\n"
                         "1:name=systemd:/ved/101/init.scope\n"
                         "0::/ved/101\n";
        const char *v2 = "0::/ved.slice/vt42/7/101/7\n";

        (void)state;
        cgroup_top_is(v1, "memory", 101, "/ved/101");
        cgroup_top_is(v1, "pids", 101, "/ved/101");
        cgroup_top_is(v1, "cpuacct", 101, "/ved/101");
        cgroup_top_is(v1, NULL, 101, "/ved/101");
        cgroup_top_is(v1, "blkio", 101, NULL);
        cgroup_top_is(v1, "memory", 10, NULL);
        /* Under a deeper root, and with the VE's own cgroups named like a CTID. */
        cgroup_top_is(v2, NULL, 7, "/ved.slice/vt42/7");
        cgroup_top_is(v2, NULL, 101, "/ved.slice/vt42/7/101");
        /* The CTID must be a component below another one. */
        cgroup_top_is("0::/101\n", NULL, 101, NULL);
        cgroup_top_is("0::/ved/1011\n", NULL, 101, NULL);
        cgroup_top_is("0::/ved/101x/101\n", NULL, 101, "/ved/101x/101");
        cgroup_top_is("", NULL, 101, NULL);
        cgroup_top_is("garbage", "memory", 101, NULL);
        cgroup_top_is("3:memory\n", "memory", 101, NULL);
}

static void test_stat_starttime(void **state)
{
        uint64_t t = 0;

        (void)state;
        assert_int_equal(ve_sysinfo_stat_starttime("1 (init) S 0 1 1 0 -1 4194560 846 0 0 0 0 "
                                                   "0 0 0 20 0 1 0 3029479 2351104 45",
                                                   &t),
                         0);
        assert_int_equal(t, 3029479);
        /* A name with spaces and parentheses: the last ')' ends it. */
        assert_int_equal(ve_sysinfo_stat_starttime("7 (a) b) (c) S 0 1 1 0 -1 4194560 846 0 0 0 "
                                                   "0 0 0 0 20 0 1 0 77 2351104 45",
                                                   &t),
                         0);
        assert_int_equal(t, 77);
        assert_int_equal(ve_sysinfo_stat_starttime("1 (init) S 0 1", &t), -EINVAL);
        assert_int_equal(ve_sysinfo_stat_starttime("", &t), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fill_limited),
                cmocka_unit_test(test_fill_unlimited_is_the_hosts),
                cmocka_unit_test(test_fill_usage_over_limit),
                cmocka_unit_test(test_cgroup_top),
                cmocka_unit_test(test_stat_starttime),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
