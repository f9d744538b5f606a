/* The daemon's state: one struct, touched only by the libuv loop thread. */
#ifndef VED_VED_H
#define VED_VED_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "config.h"
#include "list.h"
#include "store.h"
#include "ve/rootfs.h"

/* Each VE maps its uids/gids 0-65535 to its own host range, allocated from here
 * on, far above the ids of host users and of /etc/subuid's usual ranges. */
#define VED_IDMAP_FIRST 1000000000LL
#define VED_IDMAP_COUNT 65536LL
#define VED_IDMAP_LIMIT 4294901760LL

struct api_server;
struct quota_cgroup;
struct ved_traffic;

/* Someone waiting for new events (an /v1/events stream). notify_cb runs on the loop
 * after a transaction that added events has committed. */
struct ved_event_sub {
        struct list_head link;
        void (*notify_cb)(struct ved_event_sub *sub);
};

/* Someone waiting for an operation to finish (GET /v1/operations/{id}?wait=). */
struct ved_op_waiter {
        struct list_head link;
        int64_t op_id;
        void (*done_cb)(struct ved_op_waiter *w);
        /* Optional: the operation has checked its input (ved_op_notify_checked()). */
        void (*checked_cb)(struct ved_op_waiter *w);
};

struct ved {
        uv_loop_t *loop;
        struct ved_config cfg;
        struct ved_store store;
        struct api_server *api;
        uv_signal_t sigterm, sigint;
        struct list_head event_subs;
        struct list_head op_waiters;
        struct list_head ops;         /* operations running now */
        json_t *resumed;              /* ops.c: interrupted operations to run again, at start */
        bool events_pending;          /* events inserted since the last notify */
        struct ved_event_sub log_sub; /* the log's subscription to events (events.c) */
        int64_t logged_id;            /* the last event it logged */
        bool stopping;
        char started_at[32];
        struct quota_cgroup *cgroup;   /* the host's cgroup backend, chosen at start */
        struct list_head rts;          /* struct ved_rt: VEs whose init is running */
        struct list_head reboot_loops; /* runtime.c: VEs held back from rebooting at once */
        struct ved_traffic *traffic;   /* the sampling of traffic counters (traffic.h) */
        char *ves_dir;                 /* <state>/ves */
        char *templates_dir;           /* <state>/templates */
        bool lxcfs_up;                 /* lxcfs answers at <state>/lxcfs (lxcfs.h) */
        bool lxcfs_fresh;              /* this daemon started it: running VEs need its files */
        bool lxcfs_restarting;         /* a restart runs on a worker (lxcfs.c) */
        bool lxcfs_stop_wanted;        /* the daemon stops: no restart, stop lxcfs after one */
        unsigned lxcfs_retry_ms;       /* not 0: it died and did not come back; the wait
                                          before its next try (doubles at each) */
        uint64_t lxcfs_retry_at;       /* then: uv_now() of the next try, in ms */
        struct ve_lxcfs_fds lxcfs_fds; /* its files, O_PATH, while lxcfs_up (lxcfs.h) */
        uv_timer_t usage_timer;        /* usage.c: samples counters, raises limit events */
        bool usage_timer_on;
};

/* Transaction helpers that also wake event subscribers after a commit. */
int ved_begin(struct ved *v, struct ve_error *err);
/* ved_store_begin_lazy(): for an operation's progress. */
int ved_begin_lazy(struct ved *v, struct ve_error *err);
int ved_commit(struct ved *v, struct ve_error *err);
void ved_rollback(struct ved *v);
/* Startup, once the store is open: log each event from now on once it is
 * committed. */
void ved_events_log_start(struct ved *v);

/* Record an event (inside the caller's transaction); subscribers (the log among
 * them) hear of it at commit, and never when it is rolled back. Outside a
 * transaction they hear of it at once. */
int ved_event(struct ved *v, const char *type, uint32_t ctid, int64_t op, const char *state,
              const char *fmt, ...) __attribute__((format(printf, 6, 7)));

void ved_event_subscribe(struct ved *v, struct ved_event_sub *sub);
void ved_event_unsubscribe(struct ved_event_sub *sub);

void ved_op_wait(struct ved *v, struct ved_op_waiter *w);
void ved_op_unwait(struct ved_op_waiter *w);
/* Wake the waiters of op_id (called when it finishes). */
void ved_op_notify(struct ved *v, int64_t op_id);
/* Tell the waiters of op_id that want to know that its input is checked: from
 * now on only the host can make it fail (a template's tarball was accepted). */
void ved_op_notify_checked(struct ved *v, int64_t op_id);

/* "<state>/ves/<ctid>" into buf. */
const char *ved_ve_dir(struct ved *v, uint32_t ctid, char *buf, size_t len);

#endif
