/* Running VEs as the daemon holds them: a pidfd watched in the loop for the
 * init's exit, and the console pty drained into ves/<ctid>/console.log.
 * Everything here runs on the loop thread. */
#ifndef VED_RUNTIME_H
#define VED_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "ve/start.h"
#include "ve/statfs_notify.h"
#include "quota/cgroup.h"
#include "ved.h"

/* What the usage timer (usage.c) remembers of a running VE between samples. */
struct ved_usage_sample {
        bool primed;        /* a first sample was taken */
        uint64_t at_ns;     /* CLOCK_MONOTONIC of the last sample */
        uint64_t cpu_ns;    /* the VE's CPU time then */
        double cpu_percent; /* over the last interval; 100 = one CPU */
        uint64_t oom_kills; /* counters at the last sample */
        uint64_t pids_hits;
        bool disk_full, inodes_full;
};

struct ved_rt {
        struct list_head link;
        struct ved *v;
        uint32_t ctid;
        struct ve_proc proc;
        uv_poll_t pid_poll;
        uv_poll_t console_poll;
        uv_timer_t console_retry; /* re-polls a console no VE process holds, or one
                                   * that wrote faster than its rate */
        struct ve_bucket console_bucket;
        int console_log;
        bool console_watched;
        struct list_head consoles; /* attached clients (exec.h's ved_exec_attach_console()) */
        bool exited;
        int exit_status;
        bool busy;             /* an operation (stop, restart, destroy) owns the VE's exit */
        struct ve_idmap idmap; /* its user namespace map, for exec */
        struct ved_usage_sample sample;
        uint64_t adopted_ms; /* CLOCK_MONOTONIC when the daemon took it: a reboot soon after
                              * counts towards a reboot loop */
        int handles;
};

/* Reboot loops. A VE whose init asks for a reboot less than VED_REBOOT_FAST_MS
 * after it started, more than VED_REBOOT_FREE times in a row, is stopped, and
 * started again only after a delay that doubles with each further such reboot
 * (1 s, 2 s, ... VED_REBOOT_DELAY_MAX_MS), as a crash-looping unit or pod is held
 * back; a ve.degraded event says when. A VE rebooting at once from its boot
 * scripts restarted ~18 times a second, kept ved at 45% of a CPU and added two
 * operations a second to the store. A start, stop, restart or destroy asked for
 * meanwhile cancels the delayed start. A pending delayed start is kept in the
 * store's meta table too, and a restarted daemon makes it (ved_rt_reconcile()). */
#define VED_REBOOT_FAST_MS      10000
#define VED_REBOOT_FREE         3
#define VED_REBOOT_DELAY_MAX_MS (5 * 60 * 1000)

/* A user's action on the VE: forget its reboot loop, and a delayed start.
 * Whether a delayed start was pending. */
bool ved_rt_reboot_loop_cancel(struct ved *v, uint32_t ctid);

/* The VE's pending delayed start after a reboot loop: 0 with the reboots in a row
 * that held it back and when it is due (ms of CLOCK_REALTIME), -ENOENT when it
 * has none. Loop thread. */
int ved_rt_delayed_start(struct ved *v, uint32_t ctid, unsigned *reboots, uint64_t *due_ms);
/* Daemon exit: drop every reboot loop's timer. */
void ved_rt_reboot_loops_close(struct ved *v);

/* Choose the cgroup backend (startup). */
int ved_rt_init(struct ved *v, struct ve_error *err);

/* --cgroup-favordynmods yes on a v1 host: turn the option on
 * (ve_cgroupfs_favor_dynmods()), or again; without the key, say at startup (info)
 * when starts and execs wait for a grace period. A mount of cgroup2 in the host's
 * cgroup namespace without it (lxcfs mounts every hierarchy) turns it off: called
 * after lxcfs has started, and after each restart of it when the key is set. */
void ved_rt_favor_dynmods(struct ved *v);
void ved_rt_shutdown(struct ved *v);

/* Start watching a running init; takes ownership of proc's fds. */
int ved_rt_adopt(struct ved *v, uint32_t ctid, struct ve_proc *proc, const struct ve_idmap *idmap,
                 struct ve_error *err);

/* Hold a server ved started for the VEs (lxcfs, ve-statfsd; its pid in pidfile,
 * named comm, or just started when fresh) to its CPU share: an eighth of the
 * host's CPUs, at least half a CPU, for all of them together
 * (quota_cgroup_helpers()). Logs a failure. */
void ved_rt_confine_helper(struct ved *v, const char *pidfile, const char *comm, bool fresh);

/* Start draining rt's console (rt->proc.console_fd) into its console.log. */
void ved_rt_watch_console(struct ved_rt *rt);

/* The user namespace map of a VE record (count 0 when it has no range). */
struct ve_idmap ved_rt_idmap(json_t *ve);
/* Give a VE made before ranges existed its own range (inside a transaction). */
int ved_rt_ensure_idmap(struct ved *v, uint32_t ctid, struct ve_error *err);
/* Claim the VE's range (its record ve's idmap_base) host-wide for its start
 * (idrange.h), vouched for by the daemon until its init runs; a range another
 * instance's VE holds is replaced by a free one, in the store and in ve. */
int ved_rt_claim_idmap(struct ved *v, uint32_t ctid, json_t *ve, struct ve_error *err);
/* Let go of the VE's claim once its init is gone. */
void ved_rt_release_idmap(struct ved *v, uint32_t ctid);
/* Stop watching (closes the fds) and forget it. */
void ved_rt_release(struct ved *v, uint32_t ctid);
struct ved_rt *ved_rt_find(struct ved *v, uint32_t ctid);

/* Startup: re-find every VE the store says is running (pid + start time + cgroup),
 * mark the ones that died stopped and clean what they left, then start those that
 * should run: onboot=yes VEs that were running (they died, or the host went down)
 * or any onboot=yes VE after a host reboot, and, after a host reboot, the VEs with
 * onboot unset that were running. Runs before the API serves. */
int ved_rt_reconcile(struct ved *v, bool host_rebooted, struct ve_error *err);

/* What a VE holds on the host, for its teardown. */
struct ved_ve_host {
        const struct quota_cgroup *cg;
        const char *instance;
        uint32_t ctid;
        const char *root;         /* the host's idmapped view of the private area */
        const char *private_area; /* mount point of the private area itself */
        const char *const *addrs; /* its IP addresses, without prefix */
        size_t n_addrs;
        const char *const *uplinks; /* host interfaces with proxy ARP/NDP entries */
        size_t n_uplinks;
        bool removing; /* the VE goes away: its nftables guard too (ve_net_teardown()) */
};

/* Tear down what a VE holds on the host: kill every process of its cgroup, remove
 * the cgroup, its network objects (host veth, routes, proxy entries) and unmount
 * its private area (the loop device goes with it). Thread-safe: operations call it
 * from workers. Missing pieces are not errors. */
int ved_rt_teardown(const struct ved_ve_host *h, struct ve_error *err);

/* ved_rt_teardown() for a VE record of the store (loop thread: startup recovery);
 * removing as in struct ved_ve_host. */
int ved_rt_teardown_record(struct ved *v, json_t *ve, bool removing, struct ve_error *err);

/* ves/<ctid>/root (the host's view of the VE's files, mounted while it runs) and
 * ves/<ctid>/private (where the private area's image is mounted). */
void ved_ve_mountpoints(struct ved *v, uint32_t ctid, char *root, char *private_area, size_t len);

/* Apply a change of a running VE's addresses live (netlink; a few syscalls, done on
 * the loop). A VE that does not run needs nothing: its next start uses the record. */
int ved_rt_net_change(struct ved *v, uint32_t ctid, json_t *old_ips, json_t *new_ips,
                      struct ve_error *err);

/* The addresses of a VE record's "ip" list without prefixes, as a NULL-terminated
 * malloc'd array (ved_ip_list_free()). */
char **ved_ip_list(json_t *ips, size_t *n);
void ved_ip_list_free(char **list);

/* Host cgroup path of a VE as /proc/<pid>/cgroup shows it: "/<instance>/<ctid>". */
const char *ved_rt_cgroup_path(struct ved *v, uint32_t ctid, char *buf, size_t len);

#endif
