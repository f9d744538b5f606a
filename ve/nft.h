/* Packet filtering of VEs through nftables (libnftables): anti-spoofing guards
 * and the NAT of bridged VEs. Each change is one nftables batch, applied
 * atomically by the kernel; nothing is ever read back from nft's output.
 *
 * The guard. One table per daemon instance, `netdev ved_<instance>`; for each VE
 * a base chain on the ingress hook of its host-side interface (so it sees every
 * frame the VE sends before bridging, routing or ARP handle it) and three sets,
 * all named after that interface:
 *
 *   set <if>_4   { type ipv4_addr; }      the VE's IPv4 addresses
 *   set <if>_6   { type ipv6_addr; }      its IPv6 addresses
 *   set <if>_nd  { typeof @th,64,128; }   the same, as the 128-bit target
 *                                         field of a neighbour advertisement
 *   chain <if>   hook ingress device <if> priority -500, dropping:
 *     a source MAC other than the VE's;
 *     IPv4 from an address not in <if>_4;
 *     IPv6 from an address not in <if>_6, except :: and fe80::/10, which
 *       may carry ICMPv6 only (NDP, MLD);
 *     neighbour advertisements for a target not in <if>_nd;
 *     ARP whose sender IP is neither 0.0.0.0 (a probe) nor in <if>_4, or
 *       whose sender MAC is not the VE's;
 *     every other ethertype (VLAN tags, PPPoE...), which would carry
 *       packets past these checks; this last rule carries the mark
 *       "ved-guard <fingerprint of the batch that made the guard>".
 *
 * A guard lives from the VE's first start to its destroy: a stop leaves it (on
 * Linux >= 6.16 the chain waits for the next device of its name; older kernels
 * drop the chain with the device and keep the sets), and an install that finds
 * its own mark in the kernel (one netlink dump of the chain's rules) does nothing.
 * A live change of the sets replaces the marked rule with an unmarked one in the
 * same batch, so the next install rebuilds the guard from the VE's record.
 *
 * Interface names are at most 15 characters of [A-Za-z0-9_-] (ve_net_ifname()),
 * valid nftables identifiers as they are.
 *
 * NAT. A second table, `inet ved_<instance>`, holds a postrouting chain that
 * masquerades the bridged VEs' private subnet leaving through any interface but
 * their bridge.
 *
 * Deleting is idempotent: a batch adds an object before deleting it (adding an
 * existing object changes nothing), so removing what is already gone succeeds.
 * That is how teardown after a crash works without asking the kernel first.
 *
 * All functions are thread-safe (calls are serialised inside) and follow
 * ve/error.h; an address that does not parse is VE_EINVAL_INPUT. */
#ifndef VE_NFT_H
#define VE_NFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* "ved_<instance>" into buf (at least VE_NFT_TABLE_LEN bytes). */
#define VE_NFT_TABLE_LEN 32
void ve_nft_table_name(const char *instance, char *buf, size_t len);

/* Install (or replace, atomically) the guard of ifname: the VE may send from mac
 * and from addrs ("192.0.2.5", "2001:db8::5", without prefix); nothing when the
 * same guard is there, whole. The interface must exist (Linux < 6.16). */
int ve_nft_guard_install(const char *instance, const char *ifname, const uint8_t mac[6],
                         const char *const *addrs, size_t n_addrs, struct ve_error *err);

/* Allow (add) or forbid (!add) one more source address on ifname's guard. Adding
 * an address already there and deleting one that is not both succeed. */
int ve_nft_guard_addr(const char *instance, const char *ifname, bool add, const char *addr,
                      struct ve_error *err);

/* Remove ifname's chains (the guard's and the rate's) and sets; nothing there is
 * not an error. */
int ve_nft_guard_remove(const char *instance, const char *ifname, struct ve_error *err);

/* --rate: hand what ifname receives, once its guard has let it through, to the
 * ifb device ifb (whose qdisc shapes it; ve/net_tc.c), or stop that (ifb NULL).
 * Chain <if>_rate, ingress of ifname at priority -400 (after the guard's -500):
 * `fwd to <ifb>`. The kernel marks what it forwards so that ifb hands it back to
 * the stack as received on ifname, past both hooks. Not tc's ingress (a mirred
 * redirect there): tc runs before netfilter's ingress hook, and what ifb hands
 * back skips that hook, so the guard never saw it. The ifb must exist: fwd holds
 * its ifindex, so a new ifb needs this again. */
int ve_nft_rate_fwd(const char *instance, const char *ifname, const char *ifb,
                    struct ve_error *err);

/* Masquerade subnet ("10.199.0.0/24") and subnet6 ("fd00:199::/64"; NULL: no
 * IPv6) out of every interface but bridge, in the instance's inet table;
 * replaces the earlier rules. */
int ve_nft_nat_install(const char *instance, const char *subnet, const char *subnet6,
                       const char *bridge, struct ve_error *err);

/* Remove both tables of the instance (the daemon calls it at a clean exit when
 * no VE runs any more); missing tables are not errors. */
int ve_nft_tables_remove(const char *instance, struct ve_error *err);

#endif
