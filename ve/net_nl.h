/* Internal to ve/net*.c: small rtnetlink verbs over libnl-3-route, and the
 * sysctl writes the routed scheme needs. Not part of the library's API.
 *
 * Every function returns 0 or a negative errno value, the errno the kernel put
 * in its NLMSG_ERROR when there was one (so callers can tell "already there"
 * from "missing" from a real failure); they never fill a struct ve_error, the
 * callers in ve/net.c do, with the context they know. */
#ifndef VE_NET_NL_H
#define VE_NET_NL_H

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

struct nl_sock;

/* One NETLINK_ROUTE socket, bound for its whole life to the network namespace
 * it was created in. */
struct ve_netnl {
        struct nl_sock *sk;
        int error; /* errno of the last NLMSG_ERROR seen on sk, positive; 0 if none */
};

/* An address parsed from the text an admin gave. */
struct ve_net_addr {
        int family;                  /* AF_INET or AF_INET6 */
        unsigned char bytes[16];     /* network order, 4 or 16 significant */
        char text[INET6_ADDRSTRLEN]; /* canonical text */
};

/* Open a socket in the caller's netns (nsfd < 0) or in the netns nsfd refers to.
 * For the latter the calling thread setns()es there, creates the socket and goes
 * back at once (a netlink socket stays in the netns it was made in); only that
 * thread moves, and only for those two calls. */
int ve_netnl_open(struct ve_netnl *nl, int nsfd);
void ve_netnl_close(struct ve_netnl *nl);
#define _cleanup_netnl_ __attribute__((cleanup(ve_netnl_close)))

/* ifindex (> 0) of the link called name, -ENODEV when there is none. */
int ve_netnl_ifindex(struct ve_netnl *nl, const char *name);
/* The same, and in *link the ifindex of its IFLA_LINK (a veth's peer, in the
 * peer's netns), 0 when it has none. */
int ve_netnl_ifindex_peer(struct ve_netnl *nl, const char *name, int *link);

/* Create a veth pair: name with mac here (up at once with up), peer with peer_mac
 * in the netns of peer_nsfd. mtu 0 leaves the kernel's default. */
int ve_netnl_veth_add(struct ve_netnl *nl, const char *name, const uint8_t mac[6], const char *peer,
                      const uint8_t peer_mac[6], int peer_nsfd, unsigned int mtu, bool up);
int ve_netnl_link_del(struct ve_netnl *nl, int ifindex);
/* The ifindex (> 0) and the counters of the link called name: rx/tx bytes and
 * packets as the kernel counts them on that link. -ENODEV when missing. */
int ve_netnl_link_stats(struct ve_netnl *nl, const char *name, uint64_t stats[4]);
int ve_netnl_link_up(struct ve_netnl *nl, int ifindex);
/* Enslave ifindex to master (a bridge). */
int ve_netnl_link_set_master(struct ve_netnl *nl, int ifindex, int master);
/* Create a link of a kind without options ("bridge", "ifb"); -EEXIST if there. */
int ve_netnl_link_add(struct ve_netnl *nl, const char *name, const char *kind);

/* Add or delete an address (IPv6 ones with IFA_F_NODAD). */
int ve_netnl_addr(struct ve_netnl *nl, bool add, int ifindex, const struct ve_net_addr *a,
                  int prefixlen);

/* Add or delete a main-table route to dst (NULL: the default route of family)
 * out of ifindex, via gw when not NULL (onlink for IPv4). Adding fails with
 * -EEXIST when the route is there. */
int ve_netnl_route(struct ve_netnl *nl, bool add, int family, const struct ve_net_addr *dst,
                   int ifindex, const struct ve_net_addr *gw);

/* Add (replacing) or delete a neighbour entry on ifindex: a permanent one to
 * lladdr, or with lladdr NULL a proxy entry (NTF_PROXY) answering ARP/NDP for
 * dst on that link. */
int ve_netnl_neigh(struct ve_netnl *nl, bool add, int ifindex, const struct ve_net_addr *dst,
                   const uint8_t *lladdr);

/* Write value to /proc/sys/net/<proto>/conf/<ifname>/<key> of the caller's
 * netns. -ENOENT when the key (or the interface) does not exist. */
int ve_net_sysctl_write(const char *proto, const char *ifname, const char *key, const char *value);
/* Read it as an integer into *out. */
int ve_net_sysctl_read(const char *proto, const char *ifname, const char *key, int *out);

/* True for the errnos that mean "no such object" in a delete. */
static inline bool ve_netnl_missing(int ret)
{
        return ret == -ENOENT || ret == -ESRCH || ret == -ENODEV || ret == -EADDRNOTAVAIL;
}

#endif
