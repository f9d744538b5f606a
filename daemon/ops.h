/* The operation engine (DESIGN.md, VE lifecycle and crash safety).
 *
 * Every change is an operation. Its record is committed to the store, in the same
 * transaction as the change that starts it, before anything touches the kernel.
 * An operation is a list of steps; a step's `work` runs on a libuv worker thread
 * (it may block: extraction, mkfs, waits) and its `done` runs on the loop inside a
 * transaction that also records the step, so after a crash the steps list tells
 * exactly what was done. On failure the kind's rollback undoes the steps done.
 * At startup, ved_ops_recover() resolves every operation left unfinished by a crash
 * with the kind's `recover`, and records the resolution; an interrupted start, stop
 * or restart runs again (ved_ops_resume()), once.
 *
 * Test hook: VED_TEST_CRASH_AT=<type>:<step> makes the daemon _exit(137) right after
 * that step's work and before its record is committed, to test recovery. */
#ifndef VED_OPS_H
#define VED_OPS_H

#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "ve/error.h"
#include "ved.h"

struct ved_op;

struct ved_step {
        const char *name;
        /* Worker thread: no store, no loop. NULL for a loop-only step. */
        int (*work)(struct ved_op *op, struct ve_error *err);
        /* Loop, inside the transaction that records the step; may be NULL. */
        int (*done)(struct ved_op *op, struct ve_error *err);
        /* Loop, after work: an fd to wait for, in the loop rather than on a worker,
         * before the step counts as done (a pidfd: readable once its process has
         * exited), and the wait's limit in seconds; past it the step is done all
         * the same, with op->wait_timed_out set. -1: nothing to wait for. May be
         * NULL. */
        int (*wait_fd)(struct ved_op *op, unsigned *timeout_s);
};

struct ved_op_kind {
        const char *type;
        const struct ved_step *steps; /* terminated by a NULL name */
        /* Loop, at creation: fill op->data with what the workers need (worker
         * threads never read struct ved). May be NULL. */
        int (*prepare)(struct ved_op *op, struct ve_error *err);
        /* Loop, in a transaction, after the last step: commit the result. */
        int (*finish)(struct ved_op *op, struct ve_error *err);
        /* The result's transaction need not wait for the disk (SQLite's
         * synchronous=NORMAL: kept if the daemon dies, maybe not if the host
         * does): for kinds whose recover() judges by what runs on the host (start,
         * stop, restart), which a host's crash ends anyway. The next operation's
         * record or result syncs it. */
        bool lazy_finish;
        /* Undo after a failed step: work on a worker thread, done on the loop in a
         * transaction. Either may be NULL. op->step is the failed step's index. */
        void (*rollback_work)(struct ved_op *op);
        void (*rollback_done)(struct ved_op *op);
        /* Loop, when the finish could not be recorded, before rollback_work runs:
         * take back what the steps' done callbacks handed on (a start's init from
         * the runtime's exit watch). May be NULL. */
        void (*finish_failed)(struct ved_op *op);
        /* Startup: resolve an operation a crash left unfinished (loop, may block
         * briefly; inside a transaction). Returns "succeeded" or "failed" and sets
         * *resolution to a static sentence saying what was done; or "resume" to
         * have the operation run again, from its first step and under its id,
         * once every VE has been reconciled (ved_ops_resume()). */
        const char *(*recover)(struct ved *v, json_t *op, const char **resolution);
        /* Loop, in a transaction, before a resumed operation is prepared: make the
         * record ready for it (the VE's state). May be NULL. */
        int (*resume)(struct ved *v, json_t *op, struct ve_error *err);
};

struct ved_op {
        struct ved *v;
        int64_t id;
        uint32_t ctid;
        const struct ved_op_kind *kind;
        unsigned step;
        json_t *params; /* the request's normalised parameters, owned */
        void *data;     /* kind-specific, freed with free_data */
        void (*free_data)(void *data);
        int work_ret;
        struct ve_error err;
        uv_work_t work;
        uint64_t queued_ns, began_ns, ended_ns; /* the step's, for the debug log */
        bool wait_timed_out;                    /* the last step's wait_fd ran out */
        struct list_head link;
};

/* Create the operation record (status running) and an operation.started event,
 * inside the caller's open transaction. The op is not started: call ved_op_run()
 * after the commit, or ved_op_free() if the commit failed. */
int ved_op_create(struct ved *v, const struct ved_op_kind *kind, uint32_t ctid, json_t *params,
                  struct ved_op **out, struct ve_error *err);
void ved_op_run(struct ved_op *op);
void ved_op_free(struct ved_op *op);

/* Record a whole operation that is done at once (PATCH): inside the caller's
 * transaction, status succeeded. Returns its id. */
int64_t ved_op_record_done(struct ved *v, const char *type, uint32_t ctid, json_t *params,
                           struct ve_error *err);

/* The operation kinds, by type name; NULL when unknown. */
const struct ved_op_kind *ved_op_kind_find(const char *type);

/* Resolve operations left unfinished by a crash (startup, before serving). */
int ved_ops_recover(struct ved *v, struct ve_error *err);

/* Run again the operations ved_ops_recover() let run on (startup, after the
 * VEs are reconciled), and run the loop until they end, for up to wait_ms: so
 * that the API, started next, shows no VE half way through its recovery (a
 * stop that waits longer for init goes on while it serves). One that cannot
 * begin again fails, with the reason. */
void ved_ops_resume(struct ved *v, unsigned wait_ms);

/* Is an operation on VE ctid waiting for ved_ops_resume()? */
bool ved_ops_resume_pending(struct ved *v, uint32_t ctid);

/* Is operation id running in this daemon? An operation the store says is
 * running but that is not, ended without its end recorded (a full disk). */
bool ved_op_active(struct ved *v, int64_t id);

/* Is an operation of kind running whose parameter key is the string value (an
 * import of the same template name)? */
bool ved_op_running_on(struct ved *v, const struct ved_op_kind *kind, const char *key,
                       const char *value);

/* Number of operations running now; the daemon waits for them on shutdown. */
unsigned ved_ops_running(struct ved *v);

#endif
