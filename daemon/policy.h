/* Host-wide policy: who may hold what. */
#ifndef VED_POLICY_H
#define VED_POLICY_H

#include <stdint.h>

#include <jansson.h>

#include "ved.h"

/* Refuse (VE_ECONFLICT, naming the holder) any address of ips that another VE or
 * the host itself already holds. Call inside the transaction that stores ips. */
int ved_policy_check_ips(struct ved *v, uint32_t ctid, json_t *ips, struct ve_error *err);

/* Refuse (VE_ECONFLICT, naming the holder) a bridged netif whose MACs (its own,
 * or the ones derived from ctid) another bridged VE of this daemon has: on a
 * bridge, the one would take the other's traffic. netif NULL or null: routed,
 * nothing to check. */
int ved_policy_check_macs(struct ved *v, uint32_t ctid, json_t *netif, struct ve_error *err);

#endif
