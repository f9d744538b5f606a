/* Per-VE traffic counters: bytes and packets in (towards the VE) and out, summed
 * over all of a VE's runs and kept across daemon restarts.
 *
 * The kernel counts on the VE's host-side veth, which lives only as long as one
 * run of the VE. The store keeps, per VE, the totals of finished runs and the last
 * sample of the current run (with the veth's ifindex); a sample folds the previous
 * run into the totals when the ifindex changed (the VE was restarted) or the veth
 * is gone (it stopped). Samples are taken every VED_TRAFFIC_INTERVAL seconds and
 * when an operation on the VE begins (so a stop loses at most what the VE sends
 * while it shuts down). Everything here runs on the loop thread. */
#ifndef VED_TRAFFIC_H
#define VED_TRAFFIC_H

#include <stdint.h>

#include <jansson.h>

#include "ved.h"

#define VED_TRAFFIC_INTERVAL 5

/* Start and stop the periodic sampling (daemon start, shutdown). */
int ved_traffic_start(struct ved *v, struct ve_error *err);
void ved_traffic_stop(struct ved *v);

/* Fold a fresh sample of ctid into the store, inside the caller's transaction. */
int ved_traffic_sample(struct ved *v, uint32_t ctid, struct ve_error *err);

/* {"bytes_in": N, "bytes_out": N, "packets_in": N, "packets_out": N}: the stored
 * counters with the live veth's folded in; reads only. A new reference; NULL only
 * when out of memory (a store that cannot be read is logged and counts zero). */
json_t *ved_traffic_json(struct ved *v, uint32_t ctid);

#endif
