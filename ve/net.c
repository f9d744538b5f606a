/* Routed (venet-like) networking of a VE: the scheme is described in net.h. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "net.h"
#include "net_nl.h"
#include "nft.h"
#include "parse.h"

static const struct ve_net_addr gateway4 = { .family = AF_INET,
                                             .bytes = { 169, 254, 0, 1 },
                                             .text = VE_NET_GATEWAY4 };
static const struct ve_net_addr gateway6 = { .family = AF_INET6,
                                             .bytes = { 0xfe, 0x80, [15] = 1 },
                                             .text = VE_NET_GATEWAY6 };

/* --- names, MACs, addresses --- */

static int check_instance(const char *instance, struct ve_error *err)
{
        size_t len = instance != NULL ? strlen(instance) : 0;

        if (len == 0 || len > 8 || !isalpha((unsigned char)instance[0]))
                return ve_error_set(err, VE_EINVAL_INPUT,
                                    "instance '%s' must be 1 to 8 letters or digits",
                                    instance != NULL ? instance : "");
        for (size_t i = 0; i < len; i++)
                if (!isalnum((unsigned char)instance[i]))
                        return ve_error_set(err, VE_EINVAL_INPUT,
                                            "instance '%s' may hold only letters and digits",
                                            instance);
        return 0;
}

/* <instance><sep><ctid> when it fits an interface name, else
 * <instance><sep62><base62(ctid)>: 62^6 > 2^32, so six digits always do and
 * 8 + 1 + 6 = 15 fits. */
static void format_ifname(char *buf, size_t len, const char *instance, const char *sep, char sep62,
                          uint32_t ctid)
{
        static const char digits62[] =
            "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        char b62[8];
        size_t i = sizeof(b62);
        int n;

        n = snprintf(buf, len, "%s%s%u", instance, sep, ctid);
        if (n > 0 && n < VE_NET_IFNAME_LEN)
                return;
        b62[--i] = '\0';
        do {
                b62[--i] = digits62[ctid % 62];
                ctid /= 62;
        } while (ctid > 0);
        snprintf(buf, len, "%s%c%s", instance, sep62, b62 + i);
}

int ve_net_ifname(const char *instance, uint32_t ctid, char *buf, size_t len, struct ve_error *err)
{
        int ret;

        ret = check_instance(instance, err);
        if (ret < 0)
                return ret;
        if (ctid == 0)
                return ve_error_set(err, VE_EINVAL_INPUT, "CTID 0 has no network");
        if (len < VE_NET_IFNAME_LEN)
                return ve_error_set(err, EINVAL, "buffer too small for an interface name");
        format_ifname(buf, len, instance,
                      isdigit((unsigned char)instance[strlen(instance) - 1]) ? "-" : "", '_', ctid);
        return 0;
}

int ve_net_ifb_name(const char *instance, uint32_t ctid, char *buf, size_t len,
                    struct ve_error *err)
{
        char veth[VE_NET_IFNAME_LEN];
        int ret;

        /* Checks the instance, the CTID and len. */
        ret = ve_net_ifname(instance, ctid, veth, sizeof(veth), err);
        if (ret == 0 && len < VE_NET_IFNAME_LEN)
                ret = ve_error_set(err, EINVAL, "buffer too small for an interface name");
        if (ret < 0)
                return ret;
        /* '.' and '+' never occur in a veth name: no ifb can take a veth's name. */
        format_ifname(buf, len, instance, ".", '+', ctid);
        return 0;
}

void ve_net_mac(const char *instance, uint32_t ctid, bool host_side, uint8_t mac[6])
{
        uint8_t h = 0x5a;

        /* An 8-bit FNV-1a fold of the instance keeps two daemons' VEs of the same
         * CTID apart, should they ever share a segment. */
        uint32_t fnv = 2166136261u;
        for (const char *p = instance; p != NULL && *p != '\0'; p++)
                fnv = (fnv ^ (uint8_t)*p) * 16777619u;
        h ^= (uint8_t)(fnv ^ (fnv >> 8) ^ (fnv >> 16) ^ (fnv >> 24));
        /* Bit 1 of the first octet: locally administered; bit 0 clear: unicast. */
        mac[0] = host_side ? 0x06 : 0x02;
        mac[1] = h;
        mac[2] = (uint8_t)(ctid >> 24);
        mac[3] = (uint8_t)(ctid >> 16);
        mac[4] = (uint8_t)(ctid >> 8);
        mac[5] = (uint8_t)ctid;
}

static bool addr_usable(const struct ve_net_addr *a)
{
        const unsigned char *b = a->bytes;

        if (a->family == AF_INET)
                return b[0] != 0 && b[0] != 127 && b[0] < 224 && !(b[0] == 169 && b[1] == 254);
        if (b[0] == 0xff || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80))
                return false;
        /* ::ffff:a.b.c.d names an IPv4 address: the kernel would not route it. */
        if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)b))
                return false;
        return memcmp(b, in6addr_any.s6_addr, 15) != 0 || (b[15] != 0 && b[15] != 1);
}

int ve_net_addr_check(const char *s, struct ve_error *err)
{
        struct ve_net_addr a;
        char buf[INET6_ADDRSTRLEN + 8];

        snprintf(buf, sizeof(buf), "%.*s", (int)strcspn(s, "/"), s);
        a.family = strchr(buf, ':') != NULL ? AF_INET6 : AF_INET;
        if (inet_pton(a.family, buf, a.bytes) != 1)
                return ve_error_set(err, VE_EINVAL_INPUT, "bad IP address '%s'", s);
        if (!addr_usable(&a))
                return ve_error_set(err, VE_EINVAL_INPUT,
                                    "address '%s' cannot be a VE's (unspecified, loopback, "
                                    "multicast, link-local or IPv4-mapped)",
                                    s);
        return 0;
}

/* "198.51.100.5", "2001:db8::5"; a prefix is accepted only when it is the full
 * length. Unspecified, loopback, multicast and link-local addresses are refused. */
static int parse_addr(const char *s, struct ve_net_addr *a, struct ve_error *err)
{
        char buf[INET6_ADDRSTRLEN + 8];
        char *slash;

        if (s == NULL || strlen(s) >= sizeof(buf))
                return ve_error_set(err, VE_EINVAL_INPUT, "bad IP address '%s'", s ? s : "");
        strcpy(buf, s);
        slash = strchr(buf, '/');
        if (slash != NULL)
                *slash++ = '\0';
        a->family = strchr(buf, ':') != NULL ? AF_INET6 : AF_INET;
        if (inet_pton(a->family, buf, a->bytes) != 1)
                return ve_error_set(err, VE_EINVAL_INPUT, "bad IP address '%s'", s);
        if (slash != NULL && strcmp(slash, a->family == AF_INET ? "32" : "128") != 0)
                return ve_error_set(err, VE_EINVAL_INPUT,
                                    "address '%s': a routed VE address is a single host", s);
        if (!addr_usable(a))
                return ve_net_addr_check(s, err);
        inet_ntop(a->family, a->bytes, a->text, sizeof(a->text));
        return 0;
}

/* --- the context of one call --- */

struct net_ctx {
        const char *instance;
        uint32_t ctid;
        char ifname[VE_NET_IFNAME_LEN];
        uint8_t host_mac[6], ve_mac[6];
        int nsfd;              /* the VE's netns, -EBADF when not known */
        struct ve_netnl host;  /* socket in the caller's (the host's) netns */
        struct ve_netnl ve;    /* socket in the VE's netns, sk NULL when none */
        int host_idx, ve_idx;  /* ifindexes of the veth ends, 0 when unknown */
        size_t n_added;        /* setup: addresses fully added, for a rollback */
        bool guard;            /* keep the nftables guard in step with the addresses */
        bool gateways;         /* setup: the VE's gateway routes are in place */
        const char *ve_ifname; /* eth0, or the bridged netif's name */
        const struct ve_net_bridged *bridged; /* NULL: routed */
        struct ve_net_addr gw4, gw6;          /* bridged: the bridge's addresses */
        const char *const *uplinks;
        size_t n_uplinks;
};

static void ctx_close(struct net_ctx *c)
{
        ve_netnl_close(&c->host);
        ve_netnl_close(&c->ve);
        cleanup_closep(&c->nsfd);
}

#define _cleanup_ctx_ __attribute__((cleanup(ctx_close)))

/* A bridge's gateway of family from its text and prefix; none (gw left unset)
 * when text is NULL. */
static int bridge_gateway(struct ve_net_addr *gw, int family, const char *text, unsigned int prefix,
                          struct ve_error *err)
{
        if (text == NULL)
                return 0;
        if (inet_pton(family, text, gw->bytes) != 1 || !ve_subnet_prefix_ok(family, prefix))
                return ve_error_set(err, VE_EINVAL_INPUT, "bad bridge gateway %s/%u", text, prefix);
        gw->family = family;
        snprintf(gw->text, sizeof(gw->text), "%s", text);
        return 0;
}

static int ctx_bridged(struct net_ctx *c, const struct ve_net_bridged *b, struct ve_error *err)
{
        int ret;

        c->bridged = b;
        if (b->ve_ifname != NULL)
                c->ve_ifname = b->ve_ifname;
        if (b->mac != NULL)
                memcpy(c->ve_mac, b->mac, 6);
        if (b->host_mac != NULL)
                memcpy(c->host_mac, b->host_mac, 6);
        ret = bridge_gateway(&c->gw4, AF_INET, b->gateway4, b->prefix4, err);
        return ret < 0 ? ret : bridge_gateway(&c->gw6, AF_INET6, b->gateway6, b->prefix6, err);
}

/* Names, MACs and the host socket; the VE's netns and socket when want_ve and
 * the config names a netns. */
static int ctx_open(struct net_ctx *c, const char *instance, uint32_t ctid,
                    const struct ve_net_config *cfg, struct ve_error *err)
{
        int ret;

        c->instance = instance;
        c->ctid = ctid;
        ret = ve_net_ifname(instance, ctid, c->ifname, sizeof(c->ifname), err);
        if (ret < 0)
                return ret;
        ve_net_mac(instance, ctid, true, c->host_mac);
        ve_net_mac(instance, ctid, false, c->ve_mac);
        c->ve_ifname = VE_NET_VE_IFNAME;
        if (cfg != NULL && cfg->bridged != NULL) {
                ret = ctx_bridged(c, cfg->bridged, err);
                if (ret < 0)
                        return ret;
        }
        ret = ve_netnl_open(&c->host, -1);
        if (ret < 0)
                return ve_error_errno(err, -ret, "open a netlink socket");
        if (cfg == NULL || (cfg->pid <= 0 && cfg->netns_fd < 0))
                return 0;
        if (cfg->pid > 0) {
                char path[64];

                snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)cfg->pid);
                c->nsfd = open(path, O_RDONLY | O_CLOEXEC);
                if (c->nsfd < 0)
                        return ve_error_errno(err, errno, "open %s", path);
        } else {
                c->nsfd = fcntl(cfg->netns_fd, F_DUPFD_CLOEXEC, 3);
                if (c->nsfd < 0)
                        return ve_error_errno(err, errno, "dup the VE's netns fd");
        }
        ret = ve_netnl_open(&c->ve, c->nsfd);
        if (ret < 0)
                return ve_error_errno(err, -ret, "open a netlink socket in the VE's netns");
        return 0;
}

#define NET_CTX_INIT                                                                               \
        {                                                                                          \
                .nsfd = -EBADF                                                                     \
        }

/* Fill in host_idx and (with a VE socket) ve_idx; -ENODEV when missing. */
static int ctx_find_links(struct net_ctx *c, struct ve_error *err)
{
        int ret, peer = 0;

        ret = ve_netnl_ifindex_peer(&c->host, c->ifname, &peer);
        if (ret < 0)
                return ve_error_errno(err, -ret, "find interface %s", c->ifname);
        c->host_idx = ret;
        if (c->ve.sk == NULL)
                return 0;
        /* The veth's own link is its peer, the VE's end (found by its index: the VE
         * may have renamed it). */
        if (peer <= 0)
                return ve_error_errno(err, ENODEV, "find %s in the VE", c->ve_ifname);
        c->ve_idx = peer;
        return 0;
}

/* --- sysctls --- */

/* IPv6 may be disabled on the host (ipv6.disable=1): then there is nothing to set. */
static bool have_ipv6(void)
{
        return access("/proc/sys/net/ipv6", F_OK) == 0;
}

/* Per-interface IPv6 forwarding: force_forwarding (Linux >= 6.17) on ifname,
 * else the global switch, the only one older kernels look at. */
static int ipv6_forwarding(const char *ifname, struct ve_error *err)
{
        int ret;

        ret = ve_net_sysctl_write("ipv6", ifname, "forwarding", "1");
        if (ret == 0)
                ret = ve_net_sysctl_write("ipv6", ifname, "force_forwarding", "1");
        if (ret == -ENOENT)
                ret = ve_net_sysctl_write("ipv6", "all", "forwarding", "1");
        if (ret < 0)
                return ve_error_errno(err, -ret, "enable IPv6 forwarding on %s", ifname);
        return 0;
}

static int prepare_uplink(const char *up, struct ve_error *err)
{
        int ret, accept_ra;

        ret = ve_net_sysctl_write("ipv4", up, "forwarding", "1");
        if (ret == -ENOENT)
                return ve_error_set(err, ENODEV, "uplink %s does not exist", up);
        if (ret < 0)
                return ve_error_errno(err, -ret, "enable IPv4 forwarding on %s", up);
        if (!have_ipv6())
                return 0;
        ret = ve_net_sysctl_read("ipv6", up, "accept_ra", &accept_ra);
        if (ret == 0 && accept_ra == 1)
                ret = ve_net_sysctl_write("ipv6", up, "accept_ra", "2");
        if (ret < 0)
                return ve_error_errno(err, -ret, "keep accepting router advertisements on %s", up);
        ret = ipv6_forwarding(up, err);
        if (ret < 0)
                return ret;
        ret = ve_net_sysctl_write("ipv6", up, "proxy_ndp", "1");
        if (ret < 0)
                return ve_error_errno(err, -ret, "enable proxy NDP on %s", up);
        return 0;
}

int ve_net_host_prepare(const char *const *uplinks, size_t n_uplinks, struct ve_error *err)
{
        int ret;

        for (size_t i = 0; i < n_uplinks; i++) {
                ret = prepare_uplink(uplinks[i], err);
                if (ret < 0)
                        return ret;
        }
        return 0;
}

/* The host side of the veth routes for the VE and answers ARP for its gateway. */
static int prepare_host_side(const char *ifname, struct ve_error *err)
{
        int ret;

        ret = ve_net_sysctl_write("ipv4", ifname, "forwarding", "1");
        if (ret == 0)
                ret = ve_net_sysctl_write("ipv4", ifname, "proxy_arp", "1");
        if (ret < 0)
                return ve_error_errno(err, -ret, "set IPv4 forwarding and proxy_arp on %s", ifname);
        if (!have_ipv6())
                return 0;
        ret = ve_net_sysctl_write("ipv6", ifname, "accept_ra", "0");
        if (ret < 0)
                return ve_error_errno(err, -ret, "turn off accept_ra on %s", ifname);
        return ipv6_forwarding(ifname, err);
}

/* --- proxy entries --- */

/* Keep the first failure of a best-effort sequence: its code is returned and its
 * message moved into err; later ones are dropped. */
static int keep_first(int first, int ret, struct ve_error *err, struct ve_error *tmp)
{
        if (ret < 0 && first == 0) {
                first = ret;
                if (err != NULL)
                        ve_error_move(err, tmp);
        }
        ve_error_clear(tmp);
        return first;
}

static int proxy_entry(struct ve_netnl *nl, bool add, const struct ve_net_addr *a,
                       const char *uplink, struct ve_error *err)
{
        int ret, idx;

        idx = ve_netnl_ifindex(nl, uplink);
        if (idx == -ENODEV && !add)
                return 0;
        if (idx < 0)
                return ve_error_errno(err, -idx, "find uplink %s", uplink);
        ret = ve_netnl_neigh(nl, add, idx, a, NULL);
        if (ret == 0 || (!add && ve_netnl_missing(ret)))
                return 0;
        return ve_error_errno(err, -ret, "%s proxy %s entry for %s on %s", add ? "add" : "delete",
                              a->family == AF_INET ? "ARP" : "NDP", a->text, uplink);
}

/* Adding stops at the first failure and removes what it added; deleting goes on
 * and returns the first failure. */
static int proxy_one(struct ve_netnl *nl, bool add, const struct ve_net_addr *a,
                     const char *const *uplinks, size_t n_uplinks, struct ve_error *err)
{
        struct ve_error tmp = { 0 };
        int ret, first = 0;

        for (size_t i = 0; i < n_uplinks; i++) {
                if (add) {
                        ret = proxy_entry(nl, true, a, uplinks[i], err);
                        if (ret < 0) {
                                /* Leave no half: entries made on earlier uplinks go. */
                                proxy_one(nl, false, a, uplinks, i, NULL);
                                return ret;
                        }
                        continue;
                }
                ret = proxy_entry(nl, false, a, uplinks[i], &tmp);
                first = keep_first(first, ret, err, &tmp);
        }
        return first;
}

static int proxy_api(bool add, const char *addr, const char *const *uplinks, size_t n_uplinks,
                     struct ve_error *err)
{
        _cleanup_netnl_ struct ve_netnl nl = { 0 };
        struct ve_net_addr a;
        int ret;

        ret = parse_addr(addr, &a, err);
        if (ret < 0)
                return ret;
        ret = ve_netnl_open(&nl, -1);
        if (ret < 0)
                return ve_error_errno(err, -ret, "open a netlink socket");
        return proxy_one(&nl, add, &a, uplinks, n_uplinks, err);
}

int ve_net_proxy_add(const char *addr, const char *const *uplinks, size_t n_uplinks,
                     struct ve_error *err)
{
        return proxy_api(true, addr, uplinks, n_uplinks, err);
}

int ve_net_proxy_del(const char *addr, const char *const *uplinks, size_t n_uplinks,
                     struct ve_error *err)
{
        return proxy_api(false, addr, uplinks, n_uplinks, err);
}

/* --- one address --- */

/* The VE's gateway for family: a permanent neighbour entry to the host side's MAC
 * and the default route through it. Both are restored when present already. */
static int ensure_gateway(struct net_ctx *c, int family, struct ve_error *err)
{
        const struct ve_net_addr *gw = family == AF_INET ? &gateway4 : &gateway6;
        int ret;

        ret = ve_netnl_neigh(&c->ve, true, c->ve_idx, gw, c->host_mac);
        if (ret < 0)
                return ve_error_errno(err, -ret, "add the neighbour entry of gateway %s", gw->text);
        ret = ve_netnl_route(&c->ve, true, family, NULL, c->ve_idx, gw);
        if (ret < 0 && ret != -EEXIST)
                return ve_error_errno(err, -ret, "add the default route via %s", gw->text);
        return 0;
}

/* The host route ADDR dev <veth>. An existing route for ADDR is ours when it can
 * be deleted with our interface as the match; anything else belongs to another
 * interface of the host: a conflict. */
static int add_host_route(struct net_ctx *c, const struct ve_net_addr *a, struct ve_error *err)
{
        int ret;

        ret = ve_netnl_route(&c->host, true, a->family, a, c->host_idx, NULL);
        if (ret == -EEXIST) {
                ret = ve_netnl_route(&c->host, false, a->family, a, c->host_idx, NULL);
                if (ret == 0)
                        ret = ve_netnl_route(&c->host, true, a->family, a, c->host_idx, NULL);
                else if (ve_netnl_missing(ret))
                        return ve_error_set(err, VE_ECONFLICT,
                                            "address %s is already routed elsewhere on this host",
                                            a->text);
        }
        if (ret < 0)
                return ve_error_errno(err, -ret, "add route %s dev %s", a->text, c->ifname);
        return 0;
}

/* Whether a and b share their first prefix bits. */
static bool same_subnet(const unsigned char *a, const unsigned char *b, unsigned int prefix)
{
        unsigned int full = prefix / 8, rest = prefix % 8;

        if (memcmp(a, b, full) != 0)
                return false;
        return rest == 0 || ((a[full] ^ b[full]) & (0xff00 >> rest) & 0xff) == 0;
}

/* The prefix of a VE's address: the bridge subnet's when it lies in it. */
static int addr_prefix(const struct net_ctx *c, const struct ve_net_addr *a)
{
        bool v4 = a->family == AF_INET;
        const struct ve_net_addr *gw = v4 ? &c->gw4 : &c->gw6;

        if (c->bridged == NULL || gw->family != a->family)
                return v4 ? 32 : 128;
        if (v4)
                return same_subnet(a->bytes, gw->bytes, c->bridged->prefix4)
                           ? (int)c->bridged->prefix4
                           : 32;
        return same_subnet(a->bytes, gw->bytes, c->bridged->prefix6) ? (int)c->bridged->prefix6
                                                                     : 128;
}

/* Bridged: the address on the VE's interface and the default route of its family
 * via the bridge's gateway (the kernel drops it with the last address of the
 * family). Nothing on the host side: the bridge's segment resolves the address
 * by ARP/NDP. */
static int add_bridged_addr(struct net_ctx *c, const struct ve_net_addr *a, struct ve_error *err)
{
        const struct ve_net_addr *gw = a->family == AF_INET ? &c->gw4 : &c->gw6;
        int ret;

        if (c->ve.sk == NULL)
                return 0;
        ret = ve_netnl_addr(&c->ve, true, c->ve_idx, a, addr_prefix(c, a));
        if (ret < 0 && ret != -EEXIST)
                return ve_error_errno(err, -ret, "add %s to %s in the VE", a->text, c->ve_ifname);
        if (gw->family != a->family)
                return 0;
        ret = ve_netnl_route(&c->ve, true, a->family, NULL, c->ve_idx, gw);
        if (ret < 0 && ret != -EEXIST)
                return ve_error_errno(err, -ret, "add the default route via %s", gw->text);
        return 0;
}

static int add_addr(struct net_ctx *c, const struct ve_net_addr *a, struct ve_error *err)
{
        int ret;

        /* The guard lets the address out before anything routes to it. */
        if (c->guard) {
                ret = ve_nft_guard_addr(c->instance, c->ifname, true, a->text, err);
                if (ret < 0)
                        return ret;
        }
        if (c->bridged != NULL)
                return add_bridged_addr(c, a, err);
        if (c->ve.sk != NULL) {
                ret = ve_netnl_addr(&c->ve, true, c->ve_idx, a, a->family == AF_INET ? 32 : 128);
                if (ret < 0 && ret != -EEXIST)
                        return ve_error_errno(err, -ret, "add %s to %s in the VE", a->text,
                                              VE_NET_VE_IFNAME);
                ret = c->gateways ? 0 : ensure_gateway(c, a->family, err);
                if (ret < 0)
                        return ret;
        }
        ret = add_host_route(c, a, err);
        if (ret < 0)
                return ret;
        return proxy_one(&c->host, true, a, c->uplinks, c->n_uplinks, err);
}

/* Best effort, in the reverse order of add_addr(); returns the first failure. */
static int del_addr(struct net_ctx *c, const struct ve_net_addr *a, struct ve_error *err)
{
        struct ve_error tmp = { 0 };
        int ret, first;

        first =
            c->bridged != NULL ? 0 : proxy_one(&c->host, false, a, c->uplinks, c->n_uplinks, err);
        if (c->host_idx > 0 && c->bridged == NULL) {
                ret = ve_netnl_route(&c->host, false, a->family, a, c->host_idx, NULL);
                if (ve_netnl_missing(ret))
                        ret = 0;
                if (ret < 0)
                        ret = ve_error_errno(&tmp, -ret, "delete route %s dev %s", a->text,
                                             c->ifname);
                first = keep_first(first, ret, err, &tmp);
        }
        if (c->ve.sk != NULL && c->ve_idx > 0) {
                ret = ve_netnl_addr(&c->ve, false, c->ve_idx, a, addr_prefix(c, a));
                if (ve_netnl_missing(ret))
                        ret = 0;
                if (ret < 0)
                        ret = ve_error_errno(&tmp, -ret, "delete %s from %s in the VE", a->text,
                                             c->ve_ifname);
                first = keep_first(first, ret, err, &tmp);
        }
        /* Last: the VE may send from the address until it no longer has it. */
        if (c->guard && c->host_idx > 0) {
                ret = ve_nft_guard_addr(c->instance, c->ifname, false, a->text, &tmp);
                first = keep_first(first, ret, err, &tmp);
        }
        return first;
}

/* --- setup --- */

/* Create the pair. A host-side veth of our name left from this VE's previous run
 * disappears once the kernel has finished destroying the old netns; delete it,
 * and wait for that a little when it is already on its way. */
static int create_pair(struct net_ctx *c, unsigned int mtu, struct ve_error *err)
{
        const struct timespec pause = { .tv_nsec = 50 * 1000 * 1000 };
        int ret, idx;

        for (int tries = 0;; tries++) {
                /* The host's end up at once: nothing runs in the VE before its
                 * init's execve, and the guard goes on before that. */
                ret = ve_netnl_veth_add(&c->host, c->ifname, c->host_mac, c->ve_ifname, c->ve_mac,
                                        c->nsfd, mtu, true);
                if (ret != -EEXIST || tries == 40)
                        break;
                idx = ve_netnl_ifindex(&c->host, c->ifname);
                if (idx < 0)
                        break;
                if (tries > 0)
                        nanosleep(&pause, NULL);
                ve_netnl_link_del(&c->host, idx);
        }
        if (ret == -EEXIST)
                return ve_error_errno(err, EEXIST, "create veth %s: the VE already has %s",
                                      c->ifname, c->ve_ifname);
        if (ret < 0)
                return ve_error_errno(err, -ret, "create veth pair %s/%s", c->ifname, c->ve_ifname);
        ret = ctx_find_links(c, err);
        if (ret < 0 || c->bridged == NULL)
                return ret;
        idx = ve_netnl_ifindex(&c->host, c->bridged->bridge);
        if (idx == -ENODEV)
                return ve_error_set(err, VE_ECONFLICT,
                                    "bridge %s does not exist on this host: create it, or "
                                    "leave out the bridge to use ved's own",
                                    c->bridged->bridge);
        if (idx < 0)
                return ve_error_errno(err, -idx, "find bridge %s", c->bridged->bridge);
        ret = ve_netnl_link_set_master(&c->host, c->host_idx, idx);
        if (ret < 0)
                return ve_error_errno(err, -ret, "add %s to bridge %s", c->ifname,
                                      c->bridged->bridge);
        return 0;
}

/* Every network namespace's loopback device has ifindex 1 (the kernel's
 * LOOPBACK_IFINDEX). */
#define LO_IFINDEX 1

/* The host's end came up with the pair (create_pair()); lo and the VE's end, the
 * host side's settings and, routed, the gateways. */
static int bring_up(struct net_ctx *c, struct ve_error *err)
{
        int ret;

        ret = c->bridged != NULL ? 0 : prepare_host_side(c->ifname, err);
        if (ret < 0)
                return ret;
        ret = ve_netnl_link_up(&c->ve, LO_IFINDEX);
        if (ret < 0)
                return ve_error_errno(err, -ret, "bring up lo in the VE");
        ret = ve_netnl_link_up(&c->ve, c->ve_idx);
        if (ret < 0)
                return ve_error_errno(err, -ret, "bring up %s in the VE", c->ve_ifname);
        if (c->bridged != NULL)
                return 0;
        if (have_ipv6()) {
                ret = ve_netnl_addr(&c->host, true, c->host_idx, &gateway6, 64);
                if (ret < 0 && ret != -EEXIST)
                        return ve_error_errno(err, -ret, "add %s to %s", gateway6.text, c->ifname);
        }
        ret = ensure_gateway(c, AF_INET, err);
        if (ret == 0 && have_ipv6())
                ret = ensure_gateway(c, AF_INET6, err);
        c->gateways = ret == 0;
        return ret;
}

static int check_config(const struct ve_net_config *cfg, struct ve_error *err)
{
        if (cfg == NULL)
                return ve_error_set(err, EINVAL, "no network configuration");
        if (cfg->pid <= 0 && cfg->netns_fd < 0)
                return ve_error_set(err, EINVAL, "VE %u: neither a pid nor a netns fd given",
                                    cfg->ctid);
        if (cfg->n_addrs > 0 && cfg->addrs == NULL)
                return ve_error_set(err, EINVAL, "VE %u: no address list", cfg->ctid);
        return 0;
}

static int setup_addrs(struct net_ctx *c, const struct ve_net_config *cfg, struct ve_error *err)
{
        struct ve_net_addr a;
        int ret;

        for (size_t i = 0; i < cfg->n_addrs; i++) {
                ret = parse_addr(cfg->addrs[i], &a, err);
                if (ret == 0)
                        ret = add_addr(c, &a, err);
                if (ret < 0)
                        return ret;
                c->n_added = i + 1;
        }
        return 0;
}

/* Undo a failed setup: the proxy entries it made first (they live on the uplinks
 * and would outlive the veth; an address that failed has none, and may be
 * another VE's), then the veth, which takes its routes and eth0 with it. */
static void rollback(struct net_ctx *c, const struct ve_net_config *cfg)
{
        struct ve_net_addr a;

        for (size_t i = 0; i < c->n_added; i++)
                if (parse_addr(cfg->addrs[i], &a, NULL) == 0)
                        proxy_one(&c->host, false, &a, c->uplinks, c->n_uplinks, NULL);
        if (c->host_idx > 0) {
                ve_netnl_link_del(&c->host, c->host_idx);
                ve_nft_guard_remove(c->instance, c->ifname, NULL);
                ve_net_rate_set(c->instance, c->ctid, 0, NULL);
        }
}

/* The guard goes on before the links come up: the VE never sends unchecked. */
static int install_guard(struct net_ctx *c, const struct ve_net_config *cfg, struct ve_error *err)
{
        return ve_nft_guard_install(c->instance, c->ifname, c->ve_mac, cfg->addrs, cfg->n_addrs,
                                    err);
}

int ve_net_setup(const struct ve_net_config *cfg, struct ve_error *err)
{
        _cleanup_ctx_ struct net_ctx c = NET_CTX_INIT;
        struct ve_net_addr a;
        int ret;

        ret = check_config(cfg, err);
        if (ret < 0)
                return ret;
        for (size_t i = 0; i < cfg->n_addrs; i++) {
                ret = parse_addr(cfg->addrs[i], &a, err);
                if (ret < 0)
                        return ve_error_prefix(err, "network of VE %u", cfg->ctid);
        }
        ret = ve_net_host_prepare(cfg->uplinks, cfg->n_uplinks, err);
        if (ret < 0)
                return ve_error_prefix(err, "network of VE %u", cfg->ctid);
        c.uplinks = cfg->uplinks;
        c.n_uplinks = cfg->n_uplinks;
        ret = ctx_open(&c, cfg->instance, cfg->ctid, cfg, err);
        if (ret == 0)
                ret = create_pair(&c, cfg->mtu, err);
        if (ret == 0)
                ret = install_guard(&c, cfg, err);
        if (ret == 0)
                ret = bring_up(&c, err);
        if (ret == 0)
                ret = setup_addrs(&c, cfg, err);
        if (ret == 0 && cfg->rate_mbit > 0)
                ret = ve_net_rate_set(cfg->instance, cfg->ctid, cfg->rate_mbit, err);
        if (ret < 0) {
                rollback(&c, cfg);
                return ve_error_prefix(err, "network of VE %u", cfg->ctid);
        }
        return 0;
}

/* --- live changes, teardown --- */

int ve_net_addr_add(const struct ve_net_config *cfg, const char *addr, struct ve_error *err)
{
        _cleanup_ctx_ struct net_ctx c = NET_CTX_INIT;
        struct ve_net_addr a;
        int ret;

        ret = check_config(cfg, err);
        if (ret == 0)
                ret = parse_addr(addr, &a, err);
        if (ret == 0)
                ret = ve_net_host_prepare(cfg->uplinks, cfg->n_uplinks, err);
        c.uplinks = cfg != NULL ? cfg->uplinks : NULL;
        c.n_uplinks = cfg != NULL ? cfg->n_uplinks : 0;
        if (ret == 0)
                ret = ctx_open(&c, cfg->instance, cfg->ctid, cfg, err);
        if (ret == 0)
                ret = ctx_find_links(&c, err);
        c.guard = true;
        if (ret == 0) {
                ret = add_addr(&c, &a, err);
                /* Nothing of a failed add stays: its guard entry would let the VE
                 * send from an address its record does not give it. */
                if (ret < 0) {
                        struct ve_error tmp = { 0 };

                        del_addr(&c, &a, &tmp);
                        ve_error_clear(&tmp);
                }
        }
        if (ret < 0)
                return ve_error_prefix(err, "add address %s to VE %u", addr ? addr : "",
                                       cfg != NULL ? cfg->ctid : 0);
        return 0;
}

int ve_net_addr_del(const struct ve_net_config *cfg, const char *addr, struct ve_error *err)
{
        _cleanup_ctx_ struct net_ctx c = NET_CTX_INIT;
        struct ve_net_addr a;
        int ret;

        if (cfg == NULL)
                return ve_error_set(err, EINVAL, "no network configuration");
        ret = parse_addr(addr, &a, err);
        c.uplinks = cfg->uplinks;
        c.n_uplinks = cfg->n_uplinks;
        if (ret == 0)
                ret = ctx_open(&c, cfg->instance, cfg->ctid, cfg, err);
        if (ret == 0) {
                int peer = 0;

                /* Whatever of the veth is left: a missing end is not an error. */
                c.host_idx = ve_netnl_ifindex_peer(&c.host, c.ifname, &peer);
                if (c.ve.sk != NULL)
                        c.ve_idx = peer;
                c.guard = true;
                ret = del_addr(&c, &a, err);
        }
        if (ret < 0)
                return ve_error_prefix(err, "delete address %s from VE %u", addr ? addr : "",
                                       cfg->ctid);
        return 0;
}

int ve_net_teardown(const char *instance, uint32_t ctid, const char *const *addrs, size_t n_addrs,
                    const char *const *uplinks, size_t n_uplinks, bool keep_guard,
                    struct ve_error *err)
{
        _cleanup_ctx_ struct net_ctx c = NET_CTX_INIT;
        struct ve_error tmp = { 0 };
        struct ve_net_addr a;
        int ret, first = 0;

        c.uplinks = uplinks;
        c.n_uplinks = n_uplinks;
        ret = ctx_open(&c, instance, ctid, NULL, err);
        if (ret < 0)
                return ve_error_prefix(err, "tear down the network of VE %u", ctid);
        c.host_idx = ve_netnl_ifindex(&c.host, c.ifname);
        for (size_t i = 0; i < n_addrs; i++) {
                ret = parse_addr(addrs[i], &a, &tmp);
                if (ret == 0)
                        ret = del_addr(&c, &a, &tmp);
                first = keep_first(first, ret, err, &tmp);
        }
        if (c.host_idx > 0) {
                ret = ve_netnl_link_del(&c.host, c.host_idx);
                if (ve_netnl_missing(ret))
                        ret = 0;
                if (ret < 0)
                        ret = ve_error_errno(&tmp, -ret, "delete veth %s", c.ifname);
                first = keep_first(first, ret, err, &tmp);
        }
        /* Whether or not the veth was there: a crash may have left the ifb and the
         * guard alone. */
        ret = ve_net_rate_set(instance, ctid, 0, &tmp);
        first = keep_first(first, ret, err, &tmp);
        if (!keep_guard) {
                ret = ve_nft_guard_remove(instance, c.ifname, &tmp);
                first = keep_first(first, ret, err, &tmp);
        }
        if (first < 0)
                return ve_error_prefix(err, "tear down the network of VE %u", ctid);
        return 0;
}

int ve_net_stats(const char *instance, uint32_t ctid, struct ve_net_stats *out,
                 struct ve_error *err)
{
        _cleanup_netnl_ struct ve_netnl nl = { 0 };
        char ifname[VE_NET_IFNAME_LEN];
        uint64_t st[4];
        int ret;

        ret = ve_net_ifname(instance, ctid, ifname, sizeof(ifname), err);
        if (ret < 0)
                return ret;
        ret = ve_netnl_open(&nl, -1);
        if (ret < 0)
                return ve_error_errno(err, -ret, "open a netlink socket");
        ret = ve_netnl_link_stats(&nl, ifname, st);
        if (ret == -ENODEV)
                return ve_error_set(err, ENODEV, "VE %u has no interface %s", ctid, ifname);
        if (ret < 0)
                return ve_error_errno(err, -ret, "read the counters of %s", ifname);
        *out = (struct ve_net_stats){ .ifindex = ret,
                                      .bytes_in = st[1],
                                      .bytes_out = st[0],
                                      .packets_in = st[3],
                                      .packets_out = st[2] };
        return 0;
}

/* "10.199.0.1/24" or "fd00:199::1/64" into a and its prefix. */
static int parse_cidr(const char *cidr, int family, struct ve_net_addr *a, long *prefix)
{
        struct ve_subnet s;

        if (ve_parse_subnet(cidr, family, &s) < 0)
                return -EINVAL;
        a->family = family;
        memcpy(a->bytes, s.bytes, sizeof(a->bytes));
        snprintf(a->text, sizeof(a->text), "%s", s.addr);
        *prefix = s.prefix;
        return 0;
}

int ve_net_bridge_ensure(const char *name, const char *gateway_cidr, const char *gateway6_cidr,
                         struct ve_error *err)
{
        _cleanup_netnl_ struct ve_netnl nl = { 0 };
        struct ve_net_addr gw, gw6;
        long prefix, prefix6 = 0;
        int ret, idx;

        if (parse_cidr(gateway_cidr, AF_INET, &gw, &prefix) < 0)
                return ve_error_set(err, VE_EINVAL_INPUT, "bad bridge gateway '%s' for %s",
                                    gateway_cidr ? gateway_cidr : "", name);
        if (gateway6_cidr != NULL && parse_cidr(gateway6_cidr, AF_INET6, &gw6, &prefix6) < 0)
                return ve_error_set(err, VE_EINVAL_INPUT, "bad bridge gateway '%s' for %s",
                                    gateway6_cidr, name);
        ret = ve_netnl_open(&nl, -1);
        if (ret < 0)
                return ve_error_errno(err, -ret, "open a netlink socket");
        idx = ve_netnl_ifindex(&nl, name);
        if (idx == -ENODEV) {
                ret = ve_netnl_link_add(&nl, name, "bridge");
                if (ret < 0 && ret != -EEXIST)
                        return ve_error_errno(err, -ret, "create bridge %s", name);
                idx = ve_netnl_ifindex(&nl, name);
        }
        if (idx < 0)
                return ve_error_errno(err, -idx, "find bridge %s", name);
        ret = ve_netnl_addr(&nl, true, idx, &gw, (int)prefix);
        if (ret < 0 && ret != -EEXIST)
                return ve_error_errno(err, -ret, "add %s to bridge %s", gateway_cidr, name);
        ret = ve_net_sysctl_write("ipv4", name, "forwarding", "1");
        if (ret < 0)
                return ve_error_errno(err, -ret, "enable IPv4 forwarding on %s", name);
        if (gateway6_cidr != NULL) {
                if (!have_ipv6())
                        return ve_error_set(err, VE_EUNSUPPORTED,
                                            "bridge %s: this host has IPv6 turned off", name);
                ret = ve_netnl_addr(&nl, true, idx, &gw6, (int)prefix6);
                if (ret < 0 && ret != -EEXIST)
                        return ve_error_errno(err, -ret, "add %s to bridge %s", gateway6_cidr,
                                              name);
                ret = ipv6_forwarding(name, err);
                if (ret < 0)
                        return ret;
        }
        ret = ve_netnl_link_up(&nl, idx);
        if (ret < 0)
                return ve_error_errno(err, -ret, "bring up bridge %s", name);
        return 0;
}

int ve_net_bridge_remove(const char *name, struct ve_error *err)
{
        _cleanup_netnl_ struct ve_netnl nl = { 0 };
        int ret, idx;

        ret = ve_netnl_open(&nl, -1);
        if (ret < 0)
                return ve_error_errno(err, -ret, "open a netlink socket");
        idx = ve_netnl_ifindex(&nl, name);
        if (idx == -ENODEV)
                return 0;
        ret = idx < 0 ? idx : ve_netnl_link_del(&nl, idx);
        if (ret < 0 && !ve_netnl_missing(ret))
                return ve_error_errno(err, -ret, "delete bridge %s", name);
        return 0;
}
