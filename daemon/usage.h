/* Resource limits of VEs put to work, and what VEs use.
 *
 * Limits come from the VE's record (daemon/params.c) and go to its cgroup through
 * quota/limits.h: at start (the "cgroup" step) and live when PATCH changes them.
 * Disk space changes resize the VE's image (online grow, offline shrink).
 *
 * Usage is read from the cgroup and the VE's file system when asked. A timer on
 * the loop samples every running VE each second for what needs history: CPU use
 * over the last interval, and the limit hits that become events (ve.limit.ram on
 * an OOM kill, ve.limit.numproc when a fork is refused, ve.limit.diskspace and
 * ve.limit.diskinodes when the VE's file system fills up). Loop thread, except
 * ved_limits_apply(). */
#ifndef VED_USAGE_H
#define VED_USAGE_H

#include <jansson.h>

#include "quota/limits.h"
#include "ved.h"

/* The limits a VE record asks for (blk_major/minor left 0). */
void ved_limits_from_record(json_t *ve, struct quota_limits *l);

/* Write l to the VE's cgroup, with the I/O limits on the block device that holds
 * private_area (its loop device) when that is mounted. Thread-safe. */
int ved_limits_apply(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                     struct quota_limits *l, const char *private_area, struct ve_error *err);

/* A PATCH's changes to a VE's limits and disk, applied before the change is
 * stored: `ve` is the record before, `changes` the normalised new values. Disk
 * space and inodes are checked against what is used and resized; cgroup limits
 * are written when the VE runs. */
int ved_limits_change(struct ved *v, json_t *ve, json_t *changes, struct ve_error *err);

/* Write the cgroup limits of the record ve to its running VE again (a refused
 * PATCH puts the old ones back). */
int ved_limits_reapply(struct ved *v, json_t *ve, struct ve_error *err);

/* The usage object of one VE record (GET /v1/ves/{ve}/usage). */
json_t *ved_usage_json(struct ved *v, json_t *ve);

/* Prometheus text exposition of every VE's usage; malloc'd. */
char *ved_metrics_text(struct ved *v, struct ve_error *err);

/* The sampling timer: started once the VEs are reconciled, stopped at exit. */
void ved_usage_start(struct ved *v);
void ved_usage_stop(struct ved *v);

#endif
