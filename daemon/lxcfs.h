/* lxcfs, started and supervised by ved, so that free, top and uptime inside a VE
 * show the VE's own limits and uptime (/proc/meminfo, cpuinfo, stat, uptime ...
 * bind-mounted from lxcfs over the VE's /proc at start).
 *
 * One lxcfs per daemon instance, mounted at <state>/lxcfs. It is not a child of
 * the daemon: VEs outlive the daemon and keep reading from it, so it is started
 * in a session of its own and found again (by its mount answering) when the
 * daemon restarts. The daemon checks its process every second and starts it
 * again if it died, on a worker thread (the loop goes on serving meanwhile);
 * running VEs then get the new one's files in place of the dead one's
 * (ve_rootfs_lxcfs_rebind()), as do VEs that started while it was down. When the
 * daemon stops and no VE runs, lxcfs is stopped and unmounted. A host without
 * lxcfs runs VEs without it and says so in the log, /v1/host and the start's
 * event. The functions below run on the loop thread. */
#ifndef VED_LXCFS_H
#define VED_LXCFS_H

#include <stdbool.h>

#include "ved.h"

/* Find or start lxcfs (startup). Never fails the daemon: on failure VEs run
 * without it. */
void ved_lxcfs_start(struct ved *v);

/* Start lxcfs again if it died (the daemon's periodic check). */
void ved_lxcfs_check(struct ved *v);

/* Give every running VE the files of an lxcfs this daemon started (after a
 * restart of lxcfs, and at startup once the VEs are adopted); nothing when the
 * lxcfs that answers is the one they already use. */
void ved_lxcfs_rebind_running(struct ved *v);

/* Daemon exit: stop lxcfs and unmount it unless a VE still runs. */
void ved_lxcfs_stop(struct ved *v, bool ves_running);

#endif
