/* Routed VE networking (ve/net.c) against the real kernel. Needs root; skips
 * otherwise. Two forked children that unshare(CLONE_NEWNET) stand in for VEs; a
 * host-only veth pair stands in for the uplink. The addresses come from ranges
 * reserved for documentation (198.51.100.64/26 of TEST-NET-2, not TEST-NET-1
 * which this VM's own uplink uses, and 2001:db8:ed::/48) and for the test's
 * lifetime both ranges get an "unreachable" route on the host, so a ping to an
 * address that was just removed fails here instead of leaving through the
 * host's default route: no packet of this test ever leaves the machine. */
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <arpa/inet.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include <netlink/netlink.h>
#include <netlink/msg.h>
#include <netlink/socket.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>

#include "ve/cleanup.h"
#include "ve/net.h"
#include "ve/nft.h"

#define BUSYBOX "/bin/busybox"
#define RANGE4  "198.51.100.64"
#define RANGE6  "2001:db8:ed::"

static const char *const ve1_addrs[] = { "198.51.100.71", "2001:db8:ed::71" };
static const char *const ve2_addrs[] = { "198.51.100.72", "2001:db8:ed::72" };
#define EXTRA4 "198.51.100.73"
#define EXTRA6 "2001:db8:ed::73"
#define CTID1  101u
#define CTID2  102u

struct fixture {
        char instance[9];
        char uplink[16];
        const char *uplinks[1];
        pid_t ve[2]; /* children holding a netns each */
        bool uplink_made, unreachable;
};

static struct fixture fx;

#define SKIP_UNLESS_ROOT()                                                                         \
        do {                                                                                       \
                if (geteuid() != 0)                                                                \
                        skip();                                                                    \
        } while (0)

/* --- host plumbing the test itself needs (libnl directly, never ve/net.c) --- */

static struct nl_sock *nl_open(void)
{
        struct nl_sock *sk = nl_socket_alloc();

        assert_non_null(sk);
        assert_int_equal(nl_connect(sk, NETLINK_ROUTE), 0);
        return sk;
}

/* The stand-in uplink: this kernel has no dummy driver, so a veth pair with
 * both ends on the host (vtup<n> and vtupp<n>), which carries no traffic. */
static int uplink_link(bool add)
{
        struct nl_sock *sk = nl_open();
        struct rtnl_link *link = rtnl_link_alloc();
        char peer[20];
        int ret;

        snprintf(peer, sizeof(peer), "%sp", fx.uplink);
        if (add) {
                ret = rtnl_link_veth_add(sk, fx.uplink, peer, getpid());
        } else {
                rtnl_link_set_name(link, fx.uplink);
                ret = rtnl_link_delete(sk, link);
        }
        rtnl_link_put(link);
        nl_socket_free(sk);
        return ret;
}

/* "unreachable 198.51.100.64/26" and "unreachable 2001:db8:ed::/48". */
static int unreachable_routes(bool add)
{
        struct nl_sock *sk = nl_open();
        int ret = 0;

        for (int i = 0; i < 2; i++) {
                struct rtnl_route *r = rtnl_route_alloc();
                struct nl_addr *dst = NULL;
                int r2;

                nl_addr_parse(i == 0 ? RANGE4 "/26" : RANGE6 "/48", i == 0 ? AF_INET : AF_INET6,
                              &dst);
                rtnl_route_set_family(r, i == 0 ? AF_INET : AF_INET6);
                rtnl_route_set_dst(r, dst);
                rtnl_route_set_table(r, RT_TABLE_MAIN);
                rtnl_route_set_type(r, RTN_UNREACHABLE);
                rtnl_route_set_scope(r, add ? RT_SCOPE_UNIVERSE : RT_SCOPE_NOWHERE);
                r2 = add ? rtnl_route_add(sk, r, NLM_F_EXCL) : rtnl_route_delete(sk, r, 0);
                if (r2 < 0 && ret == 0)
                        ret = r2;
                nl_addr_put(dst);
                rtnl_route_put(r);
        }
        nl_socket_free(sk);
        return ret;
}

struct proxy_query {
        int family, ifindex;
        unsigned char addr[16];
        bool found;
};

static int proxy_cb(struct nl_msg *msg, void *arg)
{
        struct proxy_query *q = arg;
        struct nlmsghdr *h = nlmsg_hdr(msg);
        struct ndmsg *ndm = nlmsg_data(h);
        struct nlattr *tb[NDA_MAX + 1];

        if (nlmsg_parse(h, sizeof(*ndm), tb, NDA_MAX, NULL) < 0 || tb[NDA_DST] == NULL)
                return NL_OK;
        if (ndm->ndm_family == q->family && ndm->ndm_ifindex == q->ifindex &&
            (ndm->ndm_flags & NTF_PROXY) &&
            memcmp(nla_data(tb[NDA_DST]), q->addr, q->family == AF_INET ? 4 : 16) == 0)
                q->found = true;
        return NL_OK;
}

/* Is there a proxy neighbour entry for addr on the uplink? The kernel dumps its
 * proxy table when the request's ndm_flags is exactly NTF_PROXY. */
static bool proxy_exists(const char *addr)
{
        struct proxy_query q = { .family = strchr(addr, ':') ? AF_INET6 : AF_INET };
        struct ndmsg ndm = { .ndm_family = (unsigned char)q.family, .ndm_flags = NTF_PROXY };
        struct nl_sock *sk = nl_open();
        struct rtnl_link *link = NULL;

        assert_int_equal(inet_pton(q.family, addr, q.addr), 1);
        assert_int_equal(rtnl_link_get_kernel(sk, 0, fx.uplink, &link), 0);
        q.ifindex = rtnl_link_get_ifindex(link);
        rtnl_link_put(link);
        nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, proxy_cb, &q);
        assert_true(nl_send_simple(sk, RTM_GETNEIGH, NLM_F_DUMP, &ndm, sizeof(ndm)) >= 0);
        assert_int_equal(nl_recvmsgs_default(sk), 0);
        nl_socket_free(sk);
        return q.found;
}

/* --- looking from inside a netns: a forked child that setns()es --- */

static void enter_netns(pid_t pid)
{
        char path[64];
        int fd;

        snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
                _exit(125);
        close(fd);
}

/* Run fn(arg) in a child, in the netns of pid (0: the host's); its exit code. */
static int in_netns(pid_t pid, int (*fn)(const void *), const void *arg)
{
        int status;
        pid_t child = fork();

        assert_true(child >= 0);
        if (child == 0) {
                if (pid > 0)
                        enter_netns(pid);
                _exit(fn(arg));
        }
        assert_int_equal(waitpid(child, &status, 0), child);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static int ping_fn(const void *arg)
{
        int null = open("/dev/null", O_WRONLY);

        dup2(null, 1);
        dup2(null, 2);
        execl(BUSYBOX, "ping", "-c", "1", "-W", "1", (const char *)arg, (char *)NULL);
        return 127;
}

/* pid 0 pings from the host. A first packet may wait for ARP/NDP: retry. */
static bool reachable(pid_t pid, const char *addr)
{
        for (int i = 0; i < 3; i++)
                if (in_netns(pid, ping_fn, addr) == 0)
                        return true;
        return false;
}

static bool unreachable(pid_t pid, const char *addr)
{
        return in_netns(pid, ping_fn, addr) != 0;
}

/* Exit 0 when eth0 has the address (getifaddrs in the child's netns). */
static int has_addr_fn(const void *arg)
{
        const char *addr = arg;
        struct ifaddrs *ifa, *i;
        char buf[INET6_ADDRSTRLEN];
        int found = 1;

        if (getifaddrs(&ifa) < 0)
                return 2;
        for (i = ifa; i != NULL; i = i->ifa_next) {
                if (i->ifa_addr == NULL || strcmp(i->ifa_name, VE_NET_VE_IFNAME) != 0)
                        continue;
                if (i->ifa_addr->sa_family == AF_INET)
                        inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, buf,
                                  sizeof(buf));
                else if (i->ifa_addr->sa_family == AF_INET6)
                        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, buf,
                                  sizeof(buf));
                else
                        continue;
                if (strcmp(buf, addr) == 0)
                        found = 0;
        }
        freeifaddrs(ifa);
        return found;
}

/* Does a line of /proc/net/<file> (of the reader's netns) hold all the words? */
static bool proc_net_has(const char *file, const char *w1, const char *w2, const char *w3)
{
        char path[64], line[512];
        bool found = false;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/net/%s", file);
        f = fopen(path, "re");
        if (f == NULL)
                return false;
        while (!found && fgets(line, sizeof(line), f) != NULL)
                found = strstr(line, w1) && strstr(line, w2) && (w3 == NULL || strstr(line, w3));
        fclose(f);
        return found;
}

/* The VE's default routes: via 169.254.0.1 (A9FE0001 read as a little-endian
 * word) and via fe80::1, both on eth0. */
static int default_routes_fn(const void *arg)
{
        (void)arg;
        if (!proc_net_has("route", VE_NET_VE_IFNAME "\t00000000\t0100FEA9", "\t00000000", NULL))
                return 1;
        if (!proc_net_has("ipv6_route", "00000000000000000000000000000000 00 ",
                          "fe800000000000000000000000000001", VE_NET_VE_IFNAME))
                return 2;
        return 0;
}

static int has_eth0_fn(const void *arg)
{
        (void)arg;
        return access("/proc/sys/net/ipv4/conf/" VE_NET_VE_IFNAME, F_OK) == 0 ? 0 : 1;
}

/* The host route "ADDR dev ifname", from /proc/net/route or ipv6_route. */
static bool host_route(const char *addr, const char *ifname)
{
        unsigned char b[16];
        char word[64];

        if (strchr(addr, ':') == NULL) {
                uint32_t v;

                assert_int_equal(inet_pton(AF_INET, addr, &v), 1);
                snprintf(word, sizeof(word), "%s\t%08X\t", ifname, v);
                return proc_net_has("route", word, "\tFFFFFFFF\t", NULL);
        }
        assert_int_equal(inet_pton(AF_INET6, addr, b), 1);
        for (int i = 0; i < 16; i++)
                snprintf(word + 2 * i, 3, "%02x", b[i]);
        strcat(word, " 80 ");
        return proc_net_has("ipv6_route", word, ifname, NULL);
}

static bool link_exists(const char *ifname)
{
        char path[64];

        snprintf(path, sizeof(path), "/sys/class/net/%s", ifname);
        return access(path, F_OK) == 0;
}

static void ifname_of(uint32_t ctid, char *buf)
{
        assert_int_equal(ve_net_ifname(fx.instance, ctid, buf, VE_NET_IFNAME_LEN, NULL), 0);
}

static struct ve_net_config config(int which, const char *const *addrs, size_t n)
{
        struct ve_net_config cfg = {
                .instance = fx.instance,
                .ctid = which == 0 ? CTID1 : CTID2,
                .pid = fx.ve[which],
                .netns_fd = -1,
                .addrs = addrs,
                .n_addrs = n,
                .uplinks = fx.uplinks,
                .n_uplinks = 1,
        };
        return cfg;
}

#define assert_ok(call)                                                                            \
        do {                                                                                       \
                struct ve_error e_ = { 0 };                                                        \
                int r_ = (call);                                                                   \
                if (r_ != 0)                                                                       \
                        fail_msg("%s: %d %s", #call, r_, e_.message ? e_.message : "");            \
                ve_error_clear(&e_);                                                               \
        } while (0)

/* --- fixture --- */

static pid_t spawn_netns_holder(void)
{
        int p[2];
        char c = 0;
        pid_t pid;

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                close(p[0]);
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (unshare(CLONE_NEWNET) < 0)
                        _exit(1);
                if (write(p[1], "x", 1) != 1)
                        _exit(1);
                for (;;)
                        pause();
        }
        close(p[1]);
        assert_int_equal(read(p[0], &c, 1), 1);
        close(p[0]);
        return pid;
}

static void kill_ve(int which)
{
        if (fx.ve[which] > 0) {
                kill(fx.ve[which], SIGKILL);
                waitpid(fx.ve[which], NULL, 0);
                fx.ve[which] = 0;
        }
}

static int group_setup(void **state)
{
        (void)state;
        snprintf(fx.instance, sizeof(fx.instance), "vt%u", (unsigned)getpid() % 100000);
        snprintf(fx.uplink, sizeof(fx.uplink), "vtup%u", (unsigned)getpid() % 100000);
        fx.uplinks[0] = fx.uplink;
        if (geteuid() != 0)
                return 0;
        if (uplink_link(true) < 0)
                return -1;
        fx.uplink_made = true;
        if (unreachable_routes(true) < 0)
                return -1;
        fx.unreachable = true;
        fx.ve[0] = spawn_netns_holder();
        fx.ve[1] = spawn_netns_holder();
        return 0;
}

static int group_teardown(void **state)
{
        const char *all[] = {
                ve1_addrs[0], ve1_addrs[1], ve2_addrs[0], ve2_addrs[1], EXTRA4, EXTRA6
        };

        (void)state;
        if (geteuid() != 0)
                return 0;
        ve_net_teardown(fx.instance, CTID1, all, 6, fx.uplinks, 1, false, NULL);
        ve_net_teardown(fx.instance, CTID2, all, 6, fx.uplinks, 1, false, NULL);
        /* The (now empty) nftables tables of the test's instance, as the daemon
         * removes its own when it exits. */
        ve_nft_tables_remove(fx.instance, NULL);
        kill_ve(0);
        kill_ve(1);
        if (fx.unreachable)
                unreachable_routes(false);
        if (fx.uplink_made)
                uplink_link(false);
        return 0;
}

/* --- tests without root --- */

static void test_ifname(void **state)
{
        const char *instances[] = { "a",     "a1",  "ab",       "ved",      "ved1",
                                    "ved10", "v1d", "abcdefgh", "abcdefg1", "abcdefg" };
        uint32_t ctids[] = { 1,       2,        9,         10,        11,         99,
                             100,     101,      1000,      10101,     99999,      100000,
                             1234567, 12345678, 123456789, 214748364, 2147483647, 4294967295u };
        size_t ni = sizeof(instances) / sizeof(*instances), nc = sizeof(ctids) / sizeof(*ctids);
        char(*names)[VE_NET_IFNAME_LEN] = calloc(ni * nc, VE_NET_IFNAME_LEN);
        char buf[VE_NET_IFNAME_LEN];
        struct ve_error err = { 0 };

        (void)state;
        assert_int_equal(ve_net_ifname("ved", 101, buf, sizeof(buf), NULL), 0);
        assert_string_equal(buf, "ved101");
        assert_int_equal(ve_net_ifname("ved2", 101, buf, sizeof(buf), NULL), 0);
        assert_string_equal(buf, "ved2-101");
        assert_int_equal(ve_net_ifname("abcdefgh", 2147483647u, buf, sizeof(buf), NULL), 0);
        assert_string_equal(buf, "abcdefgh_2lkCB1");
        assert_int_equal(ve_net_ifname("ved", 0, buf, sizeof(buf), &err), -VE_EINVAL_INPUT);
        ve_error_clear(&err);
        assert_int_equal(ve_net_ifname("v-d", 101, buf, sizeof(buf), &err), -VE_EINVAL_INPUT);
        ve_error_clear(&err);
        assert_int_equal(ve_net_ifname("1ved", 101, buf, sizeof(buf), NULL), -VE_EINVAL_INPUT);
        assert_int_equal(ve_net_ifname("abcdefghi", 101, buf, sizeof(buf), NULL), -VE_EINVAL_INPUT);
        /* Every name fits IFNAMSIZ and no two (instance, ctid) pairs share one. */
        for (size_t i = 0; i < ni; i++)
                for (size_t c = 0; c < nc; c++) {
                        char *n = names[i * nc + c];

                        assert_int_equal(
                            ve_net_ifname(instances[i], ctids[c], n, VE_NET_IFNAME_LEN, NULL), 0);
                        assert_true(strlen(n) >= 2 && strlen(n) <= 15);
                        assert_null(strpbrk(n, "/: .%"));
                }
        for (size_t x = 0; x < ni * nc; x++)
                for (size_t y = x + 1; y < ni * nc; y++)
                        if (strcmp(names[x], names[y]) == 0)
                                fail_msg("name %s is shared", names[x]);
        free(names);
}

static void test_mac(void **state)
{
        uint8_t a[6], b[6], c[6], d[6];

        (void)state;
        ve_net_mac("ved", 101, false, a);
        ve_net_mac("ved", 101, true, b);
        ve_net_mac("ved", 102, false, c);
        ve_net_mac("ved", 101, false, d);
        assert_memory_equal(a, d, 6);
        assert_memory_not_equal(a, b, 6);
        assert_memory_not_equal(a, c, 6);
        for (int i = 0; i < 2; i++) {
                const uint8_t *m = i == 0 ? a : b;

                assert_int_equal(m[0] & 0x03, 0x02); /* local, unicast */
        }
        assert_int_equal(a[5], 101);
}

static void test_bad_input(void **state)
{
        const char *bad[][1] = { { "198.51.100.300" },
                                 { "198.51.100.71/24" },
                                 { "fe80::5" },
                                 { "224.0.0.1" },
                                 { "::" },
                                 { "127.0.0.1" },
                                 { "169.254.0.1" },
                                 { "2001:db8::/64" },
                                 { "" } };
        struct ve_error err = { 0 };

        (void)state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
                struct ve_net_config cfg = { .instance = "vbad",
                                             .ctid = 101,
                                             .pid = getpid(),
                                             .netns_fd = -1,
                                             .addrs = bad[i],
                                             .n_addrs = 1 };

                assert_int_equal(ve_net_setup(&cfg, &err), -VE_EINVAL_INPUT);
                assert_non_null(err.message);
                ve_error_clear(&err);
        }
        assert_false(link_exists("vbad101"));
        assert_int_equal(ve_net_proxy_add("not an address", NULL, 0, &err), -VE_EINVAL_INPUT);
        ve_error_clear(&err);
}

/* --- tests against the kernel --- */

static void check_ve(int which, const char *const *addrs, size_t n)
{
        char ifname[VE_NET_IFNAME_LEN];

        ifname_of(which == 0 ? CTID1 : CTID2, ifname);
        assert_true(link_exists(ifname));
        assert_int_equal(in_netns(fx.ve[which], default_routes_fn, NULL), 0);
        for (size_t i = 0; i < n; i++) {
                assert_int_equal(in_netns(fx.ve[which], has_addr_fn, addrs[i]), 0);
                assert_true(host_route(addrs[i], ifname));
                assert_true(proxy_exists(addrs[i]));
        }
}

static void test_setup(void **state)
{
        struct ve_net_config c1 = config(0, ve1_addrs, 2);
        struct ve_net_config c2 = config(1, ve2_addrs, 2);

        (void)state;
        SKIP_UNLESS_ROOT();
        assert_ok(ve_net_setup(&c1, &e_));
        check_ve(0, ve1_addrs, 2);
        /* An uplink that does not exist is refused before anything is made. */
        {
                const char *nope[] = { "vtnouplink0" };
                struct ve_error err = { 0 };

                c2.uplinks = nope;
                assert_int_equal(ve_net_setup(&c2, &err), -ENODEV);
                ve_error_clear(&err);
                c2.uplinks = fx.uplinks;
        }
        assert_ok(ve_net_setup(&c2, &e_));
        check_ve(1, ve2_addrs, 2);
}

static void test_ping(void **state)
{
        (void)state;
        SKIP_UNLESS_ROOT();
        for (int i = 0; i < 2; i++) {
                assert_true(reachable(0, ve1_addrs[i]));
                assert_true(reachable(0, ve2_addrs[i]));
                assert_true(reachable(fx.ve[0], ve2_addrs[i]));
                assert_true(reachable(fx.ve[1], ve1_addrs[i]));
        }
}

/* An address another VE holds is a conflict; the failed setup leaves nothing
 * behind and does not disturb the owner. */
static void test_conflict_rollback(void **state)
{
        const char *addrs[] = { EXTRA4, ve1_addrs[0] };
        struct ve_net_config c2 = config(1, addrs, 2);
        struct ve_error err = { 0 };
        char ifname[VE_NET_IFNAME_LEN];
        pid_t spare;

        (void)state;
        SKIP_UNLESS_ROOT();
        spare = spawn_netns_holder();
        c2.pid = spare;
        c2.ctid = 103;
        assert_int_equal(ve_net_setup(&c2, &err), -VE_ECONFLICT);
        assert_non_null(strstr(err.message, ve1_addrs[0]));
        ve_error_clear(&err);
        ifname_of(103, ifname);
        assert_false(link_exists(ifname));
        assert_int_equal(in_netns(spare, has_eth0_fn, NULL), 1);
        kill(spare, SIGKILL);
        waitpid(spare, NULL, 0);
        assert_false(proxy_exists(EXTRA4));
        assert_false(host_route(EXTRA4, ifname));
        assert_true(proxy_exists(ve1_addrs[0]));
        assert_true(reachable(0, ve1_addrs[0]));
}

static void test_live_addr(void **state)
{
        struct ve_net_config c1 = config(0, NULL, 0);
        struct ve_net_config c2 = config(1, NULL, 0);
        char if1[VE_NET_IFNAME_LEN];

        (void)state;
        SKIP_UNLESS_ROOT();
        ifname_of(CTID1, if1);
        for (int i = 0; i < 2; i++) {
                const char *a = ve1_addrs[i];

                assert_ok(ve_net_addr_del(&c1, a, &e_));
                assert_false(host_route(a, if1));
                assert_false(proxy_exists(a));
                assert_int_equal(in_netns(fx.ve[0], has_addr_fn, a), 1);
                assert_true(unreachable(0, a));
                assert_true(unreachable(fx.ve[1], a));
                /* Deleting again is not an error. */
                assert_ok(ve_net_addr_del(&c1, a, &e_));
        }
        /* VE 1 has no IPv4 address left, so the kernel dropped its IPv4 routes;
         * adding one back restores the gateway. */
        for (int i = 0; i < 2; i++) {
                assert_ok(ve_net_addr_add(&c1, ve1_addrs[i], &e_));
                assert_ok(ve_net_addr_add(&c1, ve1_addrs[i], &e_));
        }
        check_ve(0, ve1_addrs, 2);
        for (int i = 0; i < 2; i++) {
                assert_true(reachable(0, ve1_addrs[i]));
                assert_true(reachable(fx.ve[1], ve1_addrs[i]));
        }
        /* A new address on VE 2, live. */
        assert_ok(ve_net_addr_add(&c2, EXTRA4, &e_));
        assert_ok(ve_net_addr_add(&c2, EXTRA6, &e_));
        assert_true(reachable(0, EXTRA4));
        assert_true(reachable(fx.ve[0], EXTRA6));
        assert_ok(ve_net_addr_del(&c2, EXTRA4, &e_));
        assert_ok(ve_net_addr_del(&c2, EXTRA6, &e_));
        assert_true(unreachable(0, EXTRA4));
        assert_true(unreachable(0, EXTRA6));
        assert_true(reachable(0, ve2_addrs[0]));
}

static void test_teardown(void **state)
{
        char if1[VE_NET_IFNAME_LEN], if2[VE_NET_IFNAME_LEN];

        (void)state;
        SKIP_UNLESS_ROOT();
        ifname_of(CTID1, if1);
        ifname_of(CTID2, if2);
        /* VE 1 still runs: its eth0 goes with the host side. */
        assert_ok(ve_net_teardown(fx.instance, CTID1, ve1_addrs, 2, fx.uplinks, 1, false, &e_));
        assert_false(link_exists(if1));
        assert_int_equal(in_netns(fx.ve[0], has_eth0_fn, NULL), 1);
        /* VE 2 died with the daemon away: only the database knows its addresses. */
        kill_ve(1);
        assert_ok(ve_net_teardown(fx.instance, CTID2, ve2_addrs, 2, fx.uplinks, 1, false, &e_));
        for (int i = 0; i < 2; i++) {
                assert_false(host_route(ve1_addrs[i], if1));
                assert_false(host_route(ve2_addrs[i], if2));
                assert_false(proxy_exists(ve1_addrs[i]));
                assert_false(proxy_exists(ve2_addrs[i]));
        }
        /* Its veth goes away with its netns, asynchronously. */
        for (int i = 0; i < 100 && link_exists(if2); i++)
                usleep(20000);
        assert_false(link_exists(if2));
        /* Twice is fine. */
        assert_ok(ve_net_teardown(fx.instance, CTID2, ve2_addrs, 2, fx.uplinks, 1, false, &e_));
}

/* The daemon calls in from worker threads: several VEs set up, checked and torn
 * down at once. */
#define PARALLEL 4

struct worker {
        pid_t pid;
        uint32_t ctid;
        char addr4[32], addr6[48];
        int ret;
        char *message;
};

static void *worker_main(void *arg)
{
        struct worker *w = arg;
        const char *addrs[] = { w->addr4, w->addr6 };
        struct ve_net_config cfg = { .instance = fx.instance,
                                     .ctid = w->ctid,
                                     .pid = w->pid,
                                     .netns_fd = -1,
                                     .addrs = addrs,
                                     .n_addrs = 2,
                                     .uplinks = fx.uplinks,
                                     .n_uplinks = 1 };
        struct ve_error err = { 0 };

        w->ret = ve_net_setup(&cfg, &err);
        if (w->ret == 0)
                w->ret = ve_net_addr_del(&cfg, w->addr6, &err);
        if (w->ret == 0)
                w->ret = ve_net_addr_add(&cfg, w->addr6, &err);
        w->message = err.message;
        return NULL;
}

static void *worker_teardown(void *arg)
{
        struct worker *w = arg;
        const char *addrs[] = { w->addr4, w->addr6 };
        struct ve_error err = { 0 };

        w->ret = ve_net_teardown(fx.instance, w->ctid, addrs, 2, fx.uplinks, 1, false, &err);
        w->message = err.message;
        return NULL;
}

static void run_workers(struct worker *w, void *(*fn)(void *))
{
        pthread_t th[PARALLEL];

        for (int i = 0; i < PARALLEL; i++)
                assert_int_equal(pthread_create(&th[i], NULL, fn, &w[i]), 0);
        for (int i = 0; i < PARALLEL; i++)
                pthread_join(th[i], NULL);
        for (int i = 0; i < PARALLEL; i++) {
                if (w[i].ret != 0)
                        fail_msg("VE %u: %d %s", w[i].ctid, w[i].ret,
                                 w[i].message ? w[i].message : "");
                free(w[i].message);
                w[i].message = NULL;
        }
}

static void test_parallel(void **state)
{
        struct worker w[PARALLEL];
        char ifname[VE_NET_IFNAME_LEN];

        (void)state;
        SKIP_UNLESS_ROOT();
        for (int i = 0; i < PARALLEL; i++) {
                w[i] = (struct worker){ .pid = spawn_netns_holder(), .ctid = 201 + i };
                snprintf(w[i].addr4, sizeof(w[i].addr4), "198.51.100.%d", 81 + i);
                snprintf(w[i].addr6, sizeof(w[i].addr6), RANGE6 "%d", 81 + i);
        }
        run_workers(w, worker_main);
        for (int i = 0; i < PARALLEL; i++) {
                assert_true(reachable(0, w[i].addr4));
                assert_true(reachable(w[(i + 1) % PARALLEL].pid, w[i].addr6));
                assert_true(proxy_exists(w[i].addr6));
        }
        run_workers(w, worker_teardown);
        for (int i = 0; i < PARALLEL; i++) {
                ifname_of(w[i].ctid, ifname);
                assert_false(link_exists(ifname));
                assert_false(proxy_exists(w[i].addr4));
                assert_false(proxy_exists(w[i].addr6));
                kill(w[i].pid, SIGKILL);
                waitpid(w[i].pid, NULL, 0);
        }
}

/* ifb names: short enough, never a veth's name, distinct per VE. */
static void test_ifb_name(void **state)
{
        char a[VE_NET_IFNAME_LEN], b[VE_NET_IFNAME_LEN], v[VE_NET_IFNAME_LEN];
        struct ve_error err = { 0 };

        (void)state;
        assert_int_equal(ve_net_ifb_name("ved", 101, a, sizeof(a), &err), 0);
        assert_string_equal(a, "ved.101");
        assert_int_equal(ve_net_ifb_name("abcdefgh", 4294967295u, a, sizeof(a), &err), 0);
        assert_true(strlen(a) <= 15);
        assert_non_null(strchr(a, '+'));
        assert_int_equal(ve_net_ifb_name("abcdefgh", 4294967294u, b, sizeof(b), &err), 0);
        assert_string_not_equal(a, b);
        assert_int_equal(ve_net_ifname("abcdefgh", 4294967295u, v, sizeof(v), &err), 0);
        assert_string_not_equal(a, v);
        assert_true(ve_net_ifb_name("ved", 0, a, sizeof(a), &err) < 0);
        assert_int_equal(err.code, VE_EINVAL_INPUT);
        ve_error_clear(&err);
}

/* A rate set on a running VE's veth makes its ifb and qdiscs; 0 removes them. */
static void test_rate(void **state)
{
        struct ve_error err = { 0 };
        char ifb[VE_NET_IFNAME_LEN];

        (void)state;
        assert_int_equal(ve_net_ifb_name(fx.instance, 901, ifb, sizeof(ifb), &err), 0);
        /* No veth: refused, and nothing is left. */
        assert_true(ve_net_rate_set(fx.instance, 901, 10, &err) < 0);
        ve_error_clear(&err);
        assert_true(if_nametoindex(ifb) == 0);
        assert_int_equal(ve_net_rate_set(fx.instance, 901, 0, &err), 0);
        assert_true(ve_net_rate_set(fx.instance, 901, 20000, &err) < 0);
        assert_int_equal(err.code, VE_EINVAL_INPUT);
        ve_error_clear(&err);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ifname),    cmocka_unit_test(test_mac),
                cmocka_unit_test(test_bad_input), cmocka_unit_test(test_setup),
                cmocka_unit_test(test_ping),      cmocka_unit_test(test_conflict_rollback),
                cmocka_unit_test(test_live_addr), cmocka_unit_test(test_teardown),
                cmocka_unit_test(test_parallel),  cmocka_unit_test(test_ifb_name),
                cmocka_unit_test(test_rate),
        };

        return cmocka_run_group_tests_name("net", tests, group_setup, group_teardown);
}
