/* rtnetlink verbs for ve/net.c over libnl-3-route, and sysctl files. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>

#include "cleanup.h"
#include "net_nl.h"

static void nl_addr_putp(struct nl_addr **a)
{
        if (*a != NULL)
                nl_addr_put(*a);
}

static void rtnl_link_putp(struct rtnl_link **l)
{
        if (*l != NULL)
                rtnl_link_put(*l);
}

static void rtnl_addr_putp(struct rtnl_addr **a)
{
        if (*a != NULL)
                rtnl_addr_put(*a);
}

static void rtnl_route_putp(struct rtnl_route **r)
{
        if (*r != NULL)
                rtnl_route_put(*r);
}

static void rtnl_neigh_putp(struct rtnl_neigh **n)
{
        if (*n != NULL)
                rtnl_neigh_put(*n);
}

#define _cleanup_nladdr_ __attribute__((cleanup(nl_addr_putp)))
#define _cleanup_link_   __attribute__((cleanup(rtnl_link_putp)))
#define _cleanup_rtaddr_ __attribute__((cleanup(rtnl_addr_putp)))
#define _cleanup_route_  __attribute__((cleanup(rtnl_route_putp)))
#define _cleanup_neigh_  __attribute__((cleanup(rtnl_neigh_putp)))

/* libnl folds kernel errnos into its own codes; keep the kernel's errno via the
 * error callback and fall back to this for errors libnl makes up itself. */
static int nle_to_errno(int nle)
{
        switch (nle < 0 ? -nle : nle) {
        case NLE_NOMEM:
                return ENOMEM;
        case NLE_EXIST:
                return EEXIST;
        case NLE_INVAL:
        case NLE_MISSING_ATTR:
                return EINVAL;
        case NLE_RANGE:
                return ERANGE;
        case NLE_OPNOTSUPP:
                return EOPNOTSUPP;
        case NLE_AF_NOSUPPORT:
                return EAFNOSUPPORT;
        case NLE_OBJ_NOTFOUND:
                return ENOENT;
        case NLE_NOADDR:
                return EADDRNOTAVAIL;
        case NLE_BUSY:
                return EBUSY;
        case NLE_NOACCESS:
                return EACCES;
        case NLE_PERM:
                return EPERM;
        case NLE_NODEV:
                return ENODEV;
        case NLE_AGAIN:
                return EAGAIN;
        case NLE_INTR:
                return EINTR;
        default:
                return EIO;
        }
}

static int err_cb(struct sockaddr_nl *who, struct nlmsgerr *e, void *arg)
{
        struct ve_netnl *nl = arg;

        (void)who;
        nl->error = -e->error;
        return NL_STOP;
}

static int result(struct ve_netnl *nl, int ret)
{
        if (ret >= 0)
                return 0;
        if (nl->error > 0)
                return -nl->error;
        return -nle_to_errno(ret);
}

static int connect_here(struct ve_netnl *nl)
{
        int ret;

        nl->sk = nl_socket_alloc();
        if (nl->sk == NULL)
                return -ENOMEM;
        ret = nl_connect(nl->sk, NETLINK_ROUTE);
        if (ret < 0) {
                nl_socket_free(nl->sk);
                nl->sk = NULL;
                return -nle_to_errno(ret);
        }
        nl_socket_modify_err_cb(nl->sk, NL_CB_CUSTOM, err_cb, nl);
        return 0;
}

/* The daemon's own netns, to come back to (opened once; never closed). */
static int home_ns = -EBADF;
static pthread_once_t home_once = PTHREAD_ONCE_INIT;

static void open_home(void)
{
        home_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
}

int ve_netnl_open(struct ve_netnl *nl, int nsfd)
{
        int ret;

        nl->sk = NULL;
        nl->error = 0;
        if (nsfd < 0)
                return connect_here(nl);
        /* setns() moves the calling thread alone. A thread of its own did this
         * before: creating it took 0.8-1 ms while a VE's child was being set up. */
        pthread_once(&home_once, open_home);
        if (home_ns < 0)
                return -EBADF;
        if (setns(nsfd, CLONE_NEWNET) < 0)
                return -errno;
        ret = connect_here(nl);
        /* Back home. Only a failed allocation can stop that (the daemon has
         * CAP_SYS_ADMIN over its own netns, and the fd stays open): try for a
         * while; a thread left in a VE's netns would make its later sockets
         * there, so stop short rather than go on. */
        for (int i = 0; setns(home_ns, CLONE_NEWNET) < 0; i++) {
                if (i == 1000)
                        abort();
                nanosleep(&(struct timespec){ .tv_nsec = 1000 * 1000 }, NULL);
        }
        return ret;
}

void ve_netnl_close(struct ve_netnl *nl)
{
        if (nl->sk != NULL)
                nl_socket_free(nl->sk);
        nl->sk = NULL;
}

static struct nl_addr *build_addr(const struct ve_net_addr *a, int prefixlen)
{
        struct nl_addr *na;

        na = nl_addr_build(a->family, a->bytes, a->family == AF_INET ? 4 : 16);
        if (na != NULL)
                nl_addr_set_prefixlen(na, prefixlen);
        return na;
}

/* The kernel's link of that name; -ENODEV when there is none. */
static int get_link(struct ve_netnl *nl, const char *name, struct rtnl_link **link)
{
        int ret;

        nl->error = 0;
        ret = result(nl, rtnl_link_get_kernel(nl->sk, 0, name, link));
        return ret == -ENOENT ? -ENODEV : ret;
}

int ve_netnl_ifindex(struct ve_netnl *nl, const char *name)
{
        _cleanup_link_ struct rtnl_link *link = NULL;
        int ret = get_link(nl, name, &link);

        return ret < 0 ? ret : rtnl_link_get_ifindex(link);
}

int ve_netnl_ifindex_peer(struct ve_netnl *nl, const char *name, int *peer)
{
        _cleanup_link_ struct rtnl_link *link = NULL;
        int ret = get_link(nl, name, &link);

        *peer = 0;
        if (ret < 0)
                return ret;
        *peer = rtnl_link_get_link(link);
        return rtnl_link_get_ifindex(link);
}

static int set_mac(struct rtnl_link *link, const uint8_t mac[6])
{
        _cleanup_nladdr_ struct nl_addr *a = nl_addr_build(AF_LLC, mac, 6);

        if (a == NULL)
                return -ENOMEM;
        rtnl_link_set_addr(link, a);
        return 0;
}

int ve_netnl_veth_add(struct ve_netnl *nl, const char *name, const uint8_t mac[6], const char *peer,
                      const uint8_t peer_mac[6], int peer_nsfd, unsigned int mtu, bool up)
{
        struct rtnl_link *link, *pl;
        int ret;

        link = rtnl_link_veth_alloc();
        if (link == NULL)
                return -ENOMEM;
        /* libnl >= 3.5 hands out a reference of its own to the peer. */
        pl = rtnl_link_veth_get_peer(link);
        rtnl_link_set_name(link, name);
        rtnl_link_set_name(pl, peer);
        rtnl_link_set_ns_fd(pl, peer_nsfd);
        if (mtu > 0) {
                rtnl_link_set_mtu(link, mtu);
                rtnl_link_set_mtu(pl, mtu);
        }
        /* The kernel brings this end up as it makes the pair: a round trip
         * fewer. Not the peer: veth_newlink() applies the peer's flags before the
         * two ends know each other, and opening it then fails (ENOTCONN). */
        if (up)
                rtnl_link_set_flags(link, IFF_UP);
        ret = set_mac(link, mac);
        if (ret == 0)
                ret = set_mac(pl, peer_mac);
        if (ret == 0) {
                nl->error = 0;
                ret = result(nl, rtnl_link_add(nl->sk, link, NLM_F_CREATE | NLM_F_EXCL));
        }
        rtnl_link_put(pl);
        rtnl_link_veth_release(link);
        return ret;
}

int ve_netnl_link_stats(struct ve_netnl *nl, const char *name, uint64_t stats[4])
{
        _cleanup_link_ struct rtnl_link *link = NULL;
        int ret = get_link(nl, name, &link);

        if (ret < 0)
                return ret;
        stats[0] = rtnl_link_get_stat(link, RTNL_LINK_RX_BYTES);
        stats[1] = rtnl_link_get_stat(link, RTNL_LINK_TX_BYTES);
        stats[2] = rtnl_link_get_stat(link, RTNL_LINK_RX_PACKETS);
        stats[3] = rtnl_link_get_stat(link, RTNL_LINK_TX_PACKETS);
        return rtnl_link_get_ifindex(link);
}

int ve_netnl_link_del(struct ve_netnl *nl, int ifindex)
{
        _cleanup_link_ struct rtnl_link *link = rtnl_link_alloc();

        if (link == NULL)
                return -ENOMEM;
        rtnl_link_set_ifindex(link, ifindex);
        nl->error = 0;
        return result(nl, rtnl_link_delete(nl->sk, link));
}

int ve_netnl_link_up(struct ve_netnl *nl, int ifindex)
{
        _cleanup_link_ struct rtnl_link *orig = rtnl_link_alloc();
        _cleanup_link_ struct rtnl_link *change = rtnl_link_alloc();

        if (orig == NULL || change == NULL)
                return -ENOMEM;
        rtnl_link_set_ifindex(orig, ifindex);
        rtnl_link_set_flags(change, IFF_UP);
        nl->error = 0;
        return result(nl, rtnl_link_change(nl->sk, orig, change, 0));
}

int ve_netnl_link_set_master(struct ve_netnl *nl, int ifindex, int master)
{
        _cleanup_link_ struct rtnl_link *orig = rtnl_link_alloc();
        _cleanup_link_ struct rtnl_link *change = rtnl_link_alloc();

        if (orig == NULL || change == NULL)
                return -ENOMEM;
        rtnl_link_set_ifindex(orig, ifindex);
        rtnl_link_set_master(change, master);
        nl->error = 0;
        return result(nl, rtnl_link_change(nl->sk, orig, change, 0));
}

int ve_netnl_link_add(struct ve_netnl *nl, const char *name, const char *kind)
{
        _cleanup_link_ struct rtnl_link *link = rtnl_link_alloc();
        int ret;

        if (link == NULL)
                return -ENOMEM;
        rtnl_link_set_name(link, name);
        ret = rtnl_link_set_type(link, kind);
        if (ret < 0)
                return -nle_to_errno(ret);
        nl->error = 0;
        return result(nl, rtnl_link_add(nl->sk, link, NLM_F_CREATE | NLM_F_EXCL));
}

int ve_netnl_addr(struct ve_netnl *nl, bool add, int ifindex, const struct ve_net_addr *a,
                  int prefixlen)
{
        _cleanup_rtaddr_ struct rtnl_addr *ra = rtnl_addr_alloc();
        _cleanup_nladdr_ struct nl_addr *local = build_addr(a, prefixlen);
        int ret;

        if (ra == NULL || local == NULL)
                return -ENOMEM;
        rtnl_addr_set_ifindex(ra, ifindex);
        rtnl_addr_set_family(ra, a->family);
        ret = rtnl_addr_set_local(ra, local);
        if (ret < 0)
                return -nle_to_errno(ret);
        rtnl_addr_set_prefixlen(ra, prefixlen);
        rtnl_addr_set_scope(ra, RT_SCOPE_UNIVERSE);
        /* No duplicate address detection: the address is ours by assignment, and
         * DAD would leave it tentative (unusable) for a second or more. */
        if (a->family == AF_INET6)
                rtnl_addr_set_flags(ra, IFA_F_NODAD);
        nl->error = 0;
        if (add)
                return result(nl, rtnl_addr_add(nl->sk, ra, NLM_F_EXCL));
        return result(nl, rtnl_addr_delete(nl->sk, ra, 0));
}

static const unsigned char zero16[16];

int ve_netnl_route(struct ve_netnl *nl, bool add, int family, const struct ve_net_addr *dst,
                   int ifindex, const struct ve_net_addr *gw)
{
        _cleanup_route_ struct rtnl_route *r = rtnl_route_alloc();
        _cleanup_nladdr_ struct nl_addr *d = NULL;
        _cleanup_nladdr_ struct nl_addr *g = NULL;
        struct rtnl_nexthop *nh;
        int len = family == AF_INET ? 4 : 16;

        d = dst != NULL ? build_addr(dst, len * 8) : nl_addr_build(family, zero16, len);
        if (r == NULL || d == NULL)
                return -ENOMEM;
        nl_addr_set_prefixlen(d, dst != NULL ? len * 8 : 0);
        rtnl_route_set_family(r, family);
        rtnl_route_set_table(r, RT_TABLE_MAIN);
        rtnl_route_set_protocol(r, RTPROT_STATIC);
        rtnl_route_set_type(r, RTN_UNICAST);
        rtnl_route_set_dst(r, d);
        /* A delete with scope "nowhere" matches any scope. */
        if (!add)
                rtnl_route_set_scope(r, RT_SCOPE_NOWHERE);
        else if (gw == NULL && family == AF_INET)
                rtnl_route_set_scope(r, RT_SCOPE_LINK);
        else
                rtnl_route_set_scope(r, RT_SCOPE_UNIVERSE);
        nh = rtnl_route_nh_alloc();
        if (nh == NULL)
                return -ENOMEM;
        rtnl_route_nh_set_ifindex(nh, ifindex);
        if (gw != NULL) {
                g = build_addr(gw, len * 8);
                if (g == NULL) {
                        rtnl_route_nh_free(nh);
                        return -ENOMEM;
                }
                rtnl_route_nh_set_gateway(nh, g);
                /* 169.254.0.1 is on no subnet of eth0, nor is a bridge's
                 * gateway for an address outside the bridge's subnet (a /32 or
                 * /128): "onlink" tells the kernel the gateway is directly
                 * reachable anyway. */
                rtnl_route_nh_set_flags(nh, RTNH_F_ONLINK);
                rtnl_route_set_flags(r, RTNH_F_ONLINK);
        }
        rtnl_route_add_nexthop(r, nh);
        nl->error = 0;
        if (add)
                return result(nl, rtnl_route_add(nl->sk, r, NLM_F_EXCL));
        return result(nl, rtnl_route_delete(nl->sk, r, 0));
}

int ve_netnl_neigh(struct ve_netnl *nl, bool add, int ifindex, const struct ve_net_addr *dst,
                   const uint8_t *lladdr)
{
        _cleanup_neigh_ struct rtnl_neigh *n = rtnl_neigh_alloc();
        _cleanup_nladdr_ struct nl_addr *d = build_addr(dst, dst->family == AF_INET ? 32 : 128);
        _cleanup_nladdr_ struct nl_addr *ll = NULL;
        int ret;

        if (n == NULL || d == NULL)
                return -ENOMEM;
        rtnl_neigh_set_ifindex(n, ifindex);
        rtnl_neigh_set_family(n, dst->family);
        ret = rtnl_neigh_set_dst(n, d);
        if (ret < 0)
                return -nle_to_errno(ret);
        if (lladdr != NULL) {
                ll = nl_addr_build(AF_LLC, lladdr, 6);
                if (ll == NULL)
                        return -ENOMEM;
                rtnl_neigh_set_lladdr(n, ll);
                rtnl_neigh_set_state(n, NUD_PERMANENT);
        } else {
                rtnl_neigh_set_flags(n, NTF_PROXY);
        }
        nl->error = 0;
        if (add)
                return result(nl, rtnl_neigh_add(nl->sk, n, NLM_F_CREATE | NLM_F_REPLACE));
        return result(nl, rtnl_neigh_delete(nl->sk, n, 0));
}

static int sysctl_path(char *path, size_t len, const char *proto, const char *ifname,
                       const char *key)
{
        int n = snprintf(path, len, "/proc/sys/net/%s/conf/%s/%s", proto, ifname, key);

        if (n < 0 || (size_t)n >= len || strchr(ifname, '/') != NULL)
                return -EINVAL;
        return 0;
}

int ve_net_sysctl_write(const char *proto, const char *ifname, const char *key, const char *value)
{
        _cleanup_close_ int fd = -EBADF;
        char path[PATH_MAX];
        size_t len = strlen(value);
        ssize_t n;
        int ret;

        ret = sysctl_path(path, sizeof(path), proto, ifname, key);
        if (ret < 0)
                return ret;
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        do
                n = write(fd, value, len);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        return (size_t)n == len ? 0 : -EIO;
}

int ve_net_sysctl_read(const char *proto, const char *ifname, const char *key, int *out)
{
        _cleanup_close_ int fd = -EBADF;
        char path[PATH_MAX], buf[32];
        ssize_t n;
        int ret;

        ret = sysctl_path(path, sizeof(path), proto, ifname, key);
        if (ret < 0)
                return ret;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n < 0)
                return -errno;
        buf[n] = '\0';
        *out = atoi(buf);
        return 0;
}
