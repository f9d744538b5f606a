/* What networking adds to a VE's start, measured on ve/'s own calls (no daemon,
 * no HTTP, no vectl): N starts of a busybox VE (a user namespace, as the daemon
 * gives every VE) in each of four ways, printing the medians of ve_start() until
 * init runs:
 *
 *   without    no network at all: no veth, only the VE's own lo
 *   built      ve_net_setup() (veth pair, guard, one IPv4 and one IPv6 address,
 *              routes) as ve_start()'s ready_cb, while the child sets up the VE's
 *              root, with the nftables guard built anew: a VE's first start (or
 *              every start on Linux < 6.16)
 *   kept       the same with the guard kept from the previous run, as a stop
 *              leaves it: how the daemon starts a VE again
 *   after      ve_net_setup() after ve_start() returns (guard kept): how it did
 *              before 31fa22e
 *
 * and the network's own time. Addresses are in 10.23.101.0/24 and
 * fd00:23:101::/64, on this host only; the instance is bs<pid>. Needs root and
 * busybox-static. Not a test: CI does not run it (tests/bench/bench_net.sh runs it
 * at its end when it is built).
 *
 *   build/tests/bench_net_start [N]          (default 20)
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ve/child.h"
#include "ve/net.h"
#include "ve/start.h"

#define BUSYBOX "/bin/busybox"
#define CTID    7

struct run {
        struct ve_net_config net;
        double net_ms;
};

static double now_ms(void)
{
        struct timespec t;

        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
        qsort(v, (size_t)n, sizeof(*v), cmp);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int net_cb(pid_t pid, void *data, struct ve_error *err)
{
        struct run *r = data;
        double t0 = now_ms();
        int ret;

        r->net.pid = pid;
        ret = ve_net_setup(&r->net, err);
        r->net_ms = now_ms() - t0;
        return ret;
}

static int sh(const char *cmd)
{
        return system(cmd) == 0 ? 0 : -1;
}

/* busybox as init, sleeping (guest ids on disk, as a private area has them). */
static int make_rootfs(const char root[64])
{
        char cmd[4096];

        snprintf(cmd, sizeof(cmd),
                 "mkdir -p %1$s/bin %1$s/sbin %1$s/etc %1$s/proc %1$s/sys %1$s/dev %1$s/tmp && "
                 "cp %2$s %1$s/bin/busybox && ln -s busybox %1$s/bin/sh && "
                 "ln -s busybox %1$s/bin/sleep && ln -s ../bin/busybox %1$s/sbin/init && "
                 "echo '::respawn:/bin/sleep 1000' > %1$s/etc/inittab",
                 root, BUSYBOX);
        return sh(cmd);
}

static void stop(struct ve_proc *p)
{
        if (p->pidfd >= 0) {
                ve_pidfd_send_signal(p->pidfd, SIGKILL);
                ve_proc_wait(p->pidfd, 0, &(int){ 0 }, NULL);
        }
        ve_proc_close(p);
}

enum mode { WITHOUT, FIRST, ALONGSIDE, AFTER };

static int one(enum mode m, const char *root, const char *instance, double *start_ms,
               double *net_ms)
{
        static const char *const addrs[] = { "10.23.101.7", "fd00:23:101::7" };
        struct ve_proc p = { .pidfd = -1, .console_fd = -1, .console_peer = -1, .statfs_fd = -1 };
        struct ve_start_config cfg = { .ctid = CTID,
                                       .rootfs = root,
                                       .cgroup = { .fd = -1 },
                                       .idmap = { 2300000000u, 2300000000u, VE_IDMAP_COUNT },
                                       .container_mounts = true };
        struct run r = { .net = { .instance = instance,
                                  .ctid = CTID,
                                  .netns_fd = -1,
                                  .addrs = addrs,
                                  .n_addrs = 2 } };
        struct ve_error err = { 0 };
        double t0;
        int ret;

        if (m == FIRST || m == ALONGSIDE) {
                cfg.ready_cb = net_cb;
                cfg.ready_data = &r;
        }
        t0 = now_ms();
        ret = ve_start(&cfg, &p, &err);
        if (ret == 0 && m == AFTER)
                ret = net_cb(p.pid, &r, &err);
        *start_ms = now_ms() - t0;
        *net_ms = r.net_ms;
        if (ret < 0)
                fprintf(stderr, "bench_net_start: %s\n", err.message);
        stop(&p);
        /* As a stop does: the guard stays for the next start, except in FIRST,
         * which times the start that builds it. */
        if (m != WITHOUT)
                ve_net_teardown(instance, CTID, addrs, 2, NULL, 0, m != FIRST, NULL);
        ve_error_clear(&err);
        return ret;
}

int main(int argc, char **argv)
{
        static const char *const names[] = { "without network", "alongside, guard built",
                                             "alongside, guard kept (ved)", "after, guard kept" };
        int n = argc > 1 ? atoi(argv[1]) : 20;
        char tmp[] = "/var/tmp/vedbench-net-XXXXXX", root[64], instance[16], cmd[128];
        double *start = calloc((size_t)n, sizeof(double)), *net = calloc((size_t)n, sizeof(double));
        double base = 0;
        int ret = 0;

        if (geteuid() != 0 || n < 1 || start == NULL || net == NULL || mkdtemp(tmp) == NULL) {
                fprintf(stderr, "usage (as root): %s [N]\n", argv[0]);
                return 2;
        }
        snprintf(instance, sizeof(instance), "bs%d", (int)(getpid() % 100000));
        snprintf(root, sizeof(root), "%s/root", tmp);
        if (make_rootfs(root) < 0) {
                fprintf(stderr, "bench_net_start: cannot make the rootfs (busybox-static?)\n");
                ret = 1;
        }
        printf("ve_start() until init runs, busybox, user namespace; %d starts each, medians in "
               "ms\n",
               n);
        for (int m = WITHOUT; ret == 0 && m <= AFTER; m++) {
                for (int i = 0; i < n && ret == 0; i++) {
                        /* Let the kernel finish with the previous run's network
                         * namespace (a worker destroys it, holding the rtnl
                         * lock a veth creation needs): a start is timed, not
                         * the start right after a stop. */
                        nanosleep(&(struct timespec){ .tv_nsec = 100 * 1000 * 1000 }, NULL);
                        ret = one((enum mode)m, root, instance, &start[i], &net[i]);
                }
                if (ret < 0)
                        break;
                if (m == WITHOUT)
                        base = median(start, n);
                printf("%-28s start %6.2f  (+%5.2f)", names[m], median(start, n),
                       median(start, n) - base);
                if (m != WITHOUT)
                        printf("   the network itself %5.2f", median(net, n));
                printf("\n");
        }
        snprintf(cmd, sizeof(cmd), "rm -rf %s; nft delete table netdev ved_%s 2>/dev/null", tmp,
                 instance);
        sh(cmd);
        free(start);
        free(net);
        return ret < 0 ? 1 : ret;
}
