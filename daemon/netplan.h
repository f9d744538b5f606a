/* A VE's network as its record asks for it, copied on the loop so that operation
 * workers can build it without the store: routed, or bridged (a "netif"), its
 * addresses and --rate. Also the live changes a PATCH makes to a running VE's
 * network, and the validation of the bridged-mode parameters. */
#ifndef VED_NETPLAN_H
#define VED_NETPLAN_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "ve/error.h"
#include "ve/net.h"
#include "ved.h"

struct ved_netplan;

/* From a VE record (loop thread); NULL when out of memory. */
struct ved_netplan *ved_netplan_new(struct ved *v, json_t *ve);
void ved_netplan_free(struct ved_netplan *p);

/* Build the network of the VE whose init is pid (worker thread). Bridged on the
 * daemon's own bridge, that bridge and its NAT are made first when missing. */
int ved_netplan_setup(const struct ved_netplan *p, pid_t pid, struct ve_error *err);

/* The ve/net.h configuration of the plan for the VE whose init is pid; b is
 * filled and pointed to when the VE is bridged. Both borrow from p. */
void ved_netplan_config(const struct ved_netplan *p, pid_t pid, struct ve_net_config *cfg,
                        struct ve_net_bridged *b);

/* The MACs of a bridged VE's two ends: netif's "mac" and "host_mac", else those
 * ve_net_mac() derives from the instance and ctid. */
/* Refuse (400) an address of the VE record ve (as it will be: its ip and netif)
 * that is the gateway, the network's own or the broadcast address of the
 * daemon's own bridge's subnet, when the VE is bridged to that bridge. */
int ved_netplan_check_addrs(struct ved *v, json_t *ve, struct ve_error *err);

void ved_netplan_macs(struct ved *v, uint32_t ctid, json_t *netif, uint8_t mac[6],
                      uint8_t host_mac[6]);

/* PATCH on a VE (loop thread, inside the PATCH's transaction, after the record
 * is updated): a running VE gets its new rate (changes["rate"], null or 0: none)
 * live; its netif and bridge cannot change while it runs (VE_ECONFLICT). A VE
 * that does not run needs nothing: its next start reads the record. */
int ved_net_patch(struct ved *v, uint32_t ctid, json_t *changes, struct ve_error *err);

/* Parameter validation (params.c). netif: an object {"ifname", "mac", "host_mac",
 * "bridge", "host_ifname"} or vzctl's "ifname[,mac,host_ifname,host_mac,bridge]",
 * normalised to an object with ifname and the other keys that were given
 * (host_ifname only empty: ved names the host side). Otherwise (netif false) a
 * host interface name. NULL with err set on bad input. */
json_t *ved_netif_normalize(const char *key, bool netif, json_t *value, struct ve_error *err);

/* At startup: prepare the configured uplinks for forwarding (a missing one is
 * logged, not fatal: VEs that do not use it still start). */
void ved_net_init(struct ved *v);

/* At a clean exit: when no VE runs, remove the instance's nftables tables and its
 * bridge (a running VE keeps its guard and bridge while the daemon is away). */
void ved_net_exit(struct ved *v);

#endif
