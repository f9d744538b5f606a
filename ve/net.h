/* Routed (venet-like) networking of a VE, done in process through rtnetlink
 * (libnl-3-route) and /proc/sys/net; no `ip`, no parsed command output.
 *
 * The scheme. Each VE gets a veth pair: the host side is named after the
 * instance and CTID (ve_net_ifname()), the peer is created directly inside the
 * VE's network namespace as eth0. MACs are stable and locally administered
 * (ve_net_mac()).
 *
 *   inside the VE            eth0 holds each address as /32 (IPv4) or /128
 *                            (IPv6, IFA_F_NODAD); lo is up;
 *                            default via 169.254.0.1 dev eth0 onlink;
 *                            default via fe80::1 dev eth0;
 *                            both gateways are permanent neighbour entries
 *                            pointing at the host side's MAC, so the VE never
 *                            has to resolve them.
 *   host side of the veth    up; fe80::1/64 (nodad), so NDP for the gateway
 *                            is answered too should the VE drop its entry;
 *                            no IPv4 address (169.254.0.1 is never a local
 *                            address of the host, so nothing on an uplink can
 *                            reach host services through it) but proxy_arp=1,
 *                            which answers ARP for it as a fallback;
 *                            ipv4 forwarding=1, ipv6 forwarding=1 and
 *                            force_forwarding=1 (Linux >= 6.17; on older
 *                            kernels net.ipv6.conf.all.forwarding=1 instead);
 *                            one route per VE address: ADDR/32|/128 dev <veth>.
 *   each uplink              a proxy neighbour entry (NTF_PROXY) per VE
 *                            address, so the host answers ARP/NDP for it on the
 *                            uplink's segment; ve_net_host_prepare() sets what
 *                            the kernel needs for that (see there).
 *
 * The host talks to a VE from its own addresses, as with venet; VE-to-VE
 * traffic is routed by the host.
 *
 * Every function here is thread-safe: each call opens its own netlink sockets
 * and no thread of the caller changes namespace (a short-lived helper thread
 * enters the VE's netns only to create a socket there, which stays bound to that
 * netns). Errors follow ve/error.h: -errno and err filled; bad input is
 * VE_EINVAL_INPUT. */
#ifndef VE_NET_H
#define VE_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

#define VE_NET_GATEWAY4  "169.254.0.1"
#define VE_NET_GATEWAY6  "fe80::1"
#define VE_NET_VE_IFNAME "eth0"
/* Room for an interface name with its NUL (IFNAMSIZ). */
#define VE_NET_IFNAME_LEN 16

/* Bridged mode: the VE's veth joins a bridge instead of being routed. Inside, the
 * interface holds each address with the bridge subnet's prefix when it lies in
 * that subnet (else as a single host) and a default route via the bridge's
 * gateway; the host side has no routes, no proxy entries, no addresses. */
struct ve_net_bridged {
        const char *bridge;      /* the bridge the host side joins: must exist */
        const char *ve_ifname;   /* the interface in the VE; NULL: eth0 */
        const uint8_t *mac;      /* of the VE's end; NULL: ve_net_mac() */
        const uint8_t *host_mac; /* of the host's end; NULL: ve_net_mac() */
        const char *gateway4;    /* the bridge's IPv4 address, "10.199.0.1"; NULL: none */
        unsigned int prefix4;    /* of the bridge's subnet, 8-30 */
        const char *gateway6;    /* its IPv6 address, "fd00:199::1"; NULL: none */
        unsigned int prefix6;    /* of the bridge's IPv6 subnet, 16-126 */
};

struct ve_net_config {
        const char *instance;     /* 1-8 letters/digits, starting with a letter */
        uint32_t ctid;            /* >= 1 */
        pid_t pid;                /* VE init (host view): its netns is used when pid > 0 */
        int netns_fd;             /* else an open fd of the VE's netns (borrowed) */
        const char *const *addrs; /* "192.0.2.5", "2001:db8::5" (/32, /128 accepted) */
        size_t n_addrs;
        const char *const *uplinks; /* host interfaces to answer ARP/NDP on */
        size_t n_uplinks;
        unsigned int mtu;       /* of both veth ends; 0: kernel default (1500) */
        unsigned int rate_mbit; /* --rate, both directions (ve_net_rate_set()); 0: none */
        const struct ve_net_bridged *bridged; /* NULL: routed */
};

/* Make bridge `name` if missing (up, IPv4 forwarding on, gateway "10.199.0.1/24"
 * on it; with gateway6_cidr, "fd00:199::1/64" too and IPv6 forwarding); an
 * existing one is brought up and given the addresses it lacks. For the daemon's
 * own bridge; EEXIST races with a concurrent call are fine. */
int ve_net_bridge_ensure(const char *name, const char *gateway_cidr, const char *gateway6_cidr,
                         struct ve_error *err);
/* Delete bridge `name`; a missing one is not an error. */
int ve_net_bridge_remove(const char *name, struct ve_error *err);

/* The host-side veth name of a VE, at most 15 characters, written to buf
 * (len >= VE_NET_IFNAME_LEN). Three forms, tried in order:
 *   <instance><ctid>           "ved101"     when instance ends in a letter
 *   <instance>-<ctid>          "ved2-101"   when it ends in a digit
 *   <instance>_<base62(ctid)>  "abcdefgh_2LKcb1"   when the decimal does not fit
 * base62 digits are 0-9a-zA-Z. The mapping is injective: the separator (none,
 * '-', '_') tells the form, an instance holds neither separator, and a form-one
 * name splits before its trailing digits because the instance ends in a letter
 * and a CTID has no leading zero. So two VEs never share a name, within or
 * across instances. Returns -EINVAL (VE_EINVAL_INPUT) for a bad instance or
 * ctid 0. */
int ve_net_ifname(const char *instance, uint32_t ctid, char *buf, size_t len, struct ve_error *err);

/* The stable MAC of a VE's veth end: 02:II:CC:CC:CC:CC inside the VE (eth0),
 * 06:II:CC:CC:CC:CC on the host side, II a hash of the instance and CC the CTID
 * big-endian. Both locally administered unicast. Meant for anti-spoofing rules
 * too. */
void ve_net_mac(const char *instance, uint32_t ctid, bool host_side, uint8_t mac[6]);

/* Make the host able to route for VEs through the given uplinks, idempotently:
 * for each, net.ipv4.conf.<if>.forwarding=1; for IPv6 accept_ra 1 is raised to
 * 2 first (a forwarding interface otherwise stops taking router advertisements
 * and the host could lose its SLAAC default route), then forwarding=1,
 * force_forwarding=1 (if the kernel has it; else net.ipv6.conf.all.forwarding=1,
 * which affects every interface) and proxy_ndp=1 (the kernel answers NS from its
 * proxy entries only on a forwarding interface with proxy_ndp). An uplink that
 * does not exist is -ENODEV. Called by ve_net_setup() and ve_net_addr_add() for
 * cfg->uplinks; the daemon may also call it once at start. */
int ve_net_host_prepare(const char *const *uplinks, size_t n_uplinks, struct ve_error *err);

/* Build the network of a freshly started VE as described above: the veth pair,
 * eth0 and lo up, the gateways, every address in cfg->addrs, the host routes and
 * the proxy entries on cfg->uplinks (after ve_net_host_prepare() on them). A
 * stale host-side veth of the same name (a previous run of this VE whose netns
 * is still going away) is removed first. On failure everything made is undone
 * and the VE is left without eth0. -EEXIST: the VE already has an eth0;
 * VE_ECONFLICT: an address is already routed to another interface of the host. */
int ve_net_setup(const struct ve_net_config *cfg, struct ve_error *err);
/* 0 when s ("ADDR" or "ADDR/PREFIX") may be a VE's address; 400 (VE_EINVAL_INPUT)
 * for an unspecified, loopback, multicast, link-local or IPv4-mapped one. */
int ve_net_addr_check(const char *s, struct ve_error *err);

/* Live --ipadd on a running VE set up by ve_net_setup(): the address on eth0
 * (the gateway neighbour and default route are restored too, since the kernel
 * flushes IPv4 routes when the last IPv4 address of a link goes), the host route
 * and the proxy entries on cfg->uplinks. cfg->addrs is ignored. Adding an address
 * the VE already has succeeds. */
int ve_net_addr_add(const struct ve_net_config *cfg, const char *addr, struct ve_error *err);

/* Live --ipdel: proxy entries, host route and the address on eth0. Things
 * already missing are not errors. With cfg->pid == 0 and cfg->netns_fd < 0 only
 * the host side is touched (the VE is not running). cfg->addrs is ignored. */
int ve_net_addr_del(const struct ve_net_config *cfg, const char *addr, struct ve_error *err);

/* Proxy ARP (IPv4) / proxy NDP (IPv6) entries for addr on each of uplinks.
 * Adding replaces an existing entry; deleting a missing entry, or on an uplink
 * that no longer exists, succeeds. */
int ve_net_proxy_add(const char *addr, const char *const *uplinks, size_t n_uplinks,
                     struct ve_error *err);
int ve_net_proxy_del(const char *addr, const char *const *uplinks, size_t n_uplinks,
                     struct ve_error *err);

/* Undo ve_net_setup() for VE ctid of instance: delete the proxy entries of addrs
 * on uplinks, the host routes, the host-side veth (its peer, eth0 in the VE,
 * goes with it, and its qdiscs), the ifb of --rate and, unless keep_guard, the
 * nftables guard. A VE that stays (stopped) keeps its guard: on Linux >= 6.16 the
 * chain waits for the next veth of its name, and the next start finds it current
 * (ve_nft_guard_install()) instead of building it again; older kernels drop the
 * chain with its device and keep only its sets. Works whether the VE runs or is
 * long dead (pass the addresses from the database after a daemon crash): what is
 * missing is skipped. Every step is tried; the first failure is returned. */
int ve_net_teardown(const char *instance, uint32_t ctid, const char *const *addrs, size_t n_addrs,
                    const char *const *uplinks, size_t n_uplinks, bool keep_guard,
                    struct ve_error *err);

/* The name of a VE's ifb device (for --rate), at most 15 characters, written to
 * buf (len >= VE_NET_IFNAME_LEN): "<instance>.<ctid>", or "<instance>+<base62>"
 * when that is too long. Never a veth's name (those hold no '.' or '+'). */
int ve_net_ifb_name(const char *instance, uint32_t ctid, char *buf, size_t len,
                    struct ve_error *err);

/* Limit a running VE to mbit Mbit/s each way, live: a tbf at the root of its host
 * veth (towards the VE) and, for what the VE sends, an ingress redirect to its ifb
 * with a tbf there (see net_tc.c). Replaces an earlier limit; mbit 0 removes the
 * limit and the ifb. At most about 17000 Mbit/s (VE_EINVAL_INPUT above). */
int ve_net_rate_set(const char *instance, uint32_t ctid, unsigned int mbit, struct ve_error *err);

/* The traffic of a VE as its host-side veth counted it since the veth was made
 * (the VE's start): "in" is towards the VE (what the host side sent), "out" what
 * the VE sent, bytes of whole frames. ifindex tells one run of the VE from the
 * next. -ENODEV when the VE has no veth (it does not run). */
struct ve_net_stats {
        int ifindex;
        uint64_t bytes_in, bytes_out, packets_in, packets_out;
};
int ve_net_stats(const char *instance, uint32_t ctid, struct ve_net_stats *out,
                 struct ve_error *err);

#endif
