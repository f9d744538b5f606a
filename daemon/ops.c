#include "ops.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "template_ops.h"
#include "ve_ops.h"

/* " of VE 101", or "" for operations on no VE (templates). */
static const char *of_ve(uint32_t ctid, char *buf, size_t len)
{
        if (ctid == 0)
                return "";
        snprintf(buf, len, " of VE %u", ctid);
        return buf;
}

static const struct ved_op_kind *const kinds[] = {
        &ved_op_create_kind,         &ved_op_destroy_kind,
        &ved_op_start_kind,          &ved_op_stop_kind,
        &ved_op_restart_kind,        &ved_op_template_import_kind,
        &ved_op_template_build_kind, NULL,
};

const struct ved_op_kind *ved_op_kind_find(const char *type)
{
        for (unsigned i = 0; kinds[i] != NULL; i++)
                if (strcmp(kinds[i]->type, type) == 0)
                        return kinds[i];
        return NULL;
}

/* The in-memory operation for record id, prepared; not started. */
static int op_new(struct ved *v, const struct ved_op_kind *kind, int64_t id, uint32_t ctid,
                  json_t *params, struct ved_op **out, struct ve_error *err)
{
        struct ved_op *op = calloc(1, sizeof(*op));

        if (op == NULL)
                return ve_error_set(err, ENOMEM, "out of memory");
        op->v = v;
        op->id = id;
        op->ctid = ctid;
        op->kind = kind;
        op->params = params ? json_incref(params) : json_object();
        list_init(&op->link);
        if (kind->prepare != NULL && kind->prepare(op, err) < 0) {
                ved_op_free(op);
                return -err->code;
        }
        *out = op;
        return 0;
}

int ved_op_create(struct ved *v, const struct ved_op_kind *kind, uint32_t ctid, json_t *params,
                  struct ved_op **out, struct ve_error *err)
{
        char who[32];
        int64_t id;

        id = ved_store_op_insert(&v->store, kind->type, ctid, params, err);
        if (id < 0)
                return (int)id;
        ved_event(v, "operation.started", ctid, id, NULL, "Operation %lld (%s)%s started",
                  (long long)id, kind->type, of_ve(ctid, who, sizeof(who)));
        return op_new(v, kind, id, ctid, params, out, err);
}

int64_t ved_op_record_done(struct ved *v, const char *type, uint32_t ctid, json_t *params,
                           struct ve_error *err)
{
        char who[32];
        int64_t id;
        int ret;

        id = ved_store_op_insert(&v->store, type, ctid, params, err);
        if (id < 0)
                return id;
        /* The events a follower of any operation waits for, as a queued one sends. */
        ved_event(v, "operation.started", ctid, id, NULL, "Operation %lld (%s)%s started",
                  (long long)id, type, of_ve(ctid, who, sizeof(who)));
        ret = ved_store_op_finish(&v->store, id, "succeeded", 0, NULL, NULL, err);
        if (ret < 0)
                return ret;
        ved_event(v, "operation.succeeded", ctid, id, NULL, "Operation %lld (%s)%s done",
                  (long long)id, type, of_ve(ctid, who, sizeof(who)));
        return id;
}

void ved_op_free(struct ved_op *op)
{
        if (op == NULL)
                return;
        list_del(&op->link);
        if (op->free_data)
                op->free_data(op->data);
        json_decref(op->params);
        ve_error_clear(&op->err);
        free(op);
}

bool ved_op_active(struct ved *v, int64_t id)
{
        struct list_head *pos, *tmp;

        list_for_each_safe(pos, tmp, &v->ops)
        {
                if (container_of(pos, struct ved_op, link)->id == id)
                        return true;
        }
        return false;
}

bool ved_op_running_on(struct ved *v, const struct ved_op_kind *kind, const char *key,
                       const char *value)
{
        struct list_head *pos, *tmp;

        list_for_each_safe(pos, tmp, &v->ops)
        {
                struct ved_op *op = container_of(pos, struct ved_op, link);
                const char *s = json_string_value(json_object_get(op->params, key));

                if (op->kind == kind && s != NULL && strcmp(s, value) == 0)
                        return true;
        }
        return false;
}

unsigned ved_ops_running(struct ved *v)
{
        struct list_head *pos, *tmp;
        unsigned n = 0;

        list_for_each_safe(pos, tmp, &v->ops) n++;
        return n;
}

static void crash_hook(struct ved_op *op, const char *step)
{
        const char *at = getenv("VED_TEST_CRASH_AT");
        char want[128];

        if (at == NULL)
                return;
        snprintf(want, sizeof(want), "%s:%s", op->kind->type, step);
        if (strcmp(at, want) == 0) {
                log_warn("VED_TEST_CRASH_AT=%s: exiting now", at);
                _exit(137);
        }
}

static void finish_op(struct ved_op *op, bool ok);
static void next_step(struct ved_op *op);

static void rollback_work_cb(uv_work_t *req)
{
        struct ved_op *op = container_of(req, struct ved_op, work);

        op->kind->rollback_work(op);
}

static void rollback_after_cb(uv_work_t *req, int status)
{
        struct ved_op *op = container_of(req, struct ved_op, work);

        (void)status;
        finish_op(op, false);
}

static void fail_op(struct ved_op *op)
{
        char who[32];

        log_warn("Operation %lld (%s)%s failed at step %s: %s", (long long)op->id, op->kind->type,
                 of_ve(op->ctid, who, sizeof(who)), op->kind->steps[op->step].name,
                 op->err.message ? op->err.message : "error");
        if (op->kind->rollback_work != NULL &&
            uv_queue_work(op->v->loop, &op->work, rollback_work_cb, rollback_after_cb) == 0)
                return;
        finish_op(op, false);
}

/* Loop: record the step done (with its `done` hook) in one transaction, which
 * need not wait for the disk: the operation's end does (or, for a kind with a
 * lazy finish, the next operation's record). */
static int record_step(struct ved_op *op)
{
        const struct ved_step *step = &op->kind->steps[op->step];
        int ret;

        ret = ved_begin_lazy(op->v, &op->err);
        if (ret < 0)
                return ret;
        ret = step->done ? step->done(op, &op->err) : 0;
        if (ret == 0)
                ret = ved_store_op_add_step(&op->v->store, op->id, step->name, &op->err);
        if (ret < 0) {
                ved_rollback(op->v);
                return ret;
        }
        return ved_commit(op->v, &op->err);
}

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Where a step's time goes: waiting for a worker, its work, back to the loop. */
static void log_step_times(const struct ved_op *op)
{
        uint64_t back = now_ns();

        if (op->began_ns == 0)
                return;
        log_debug("Operation %lld (%s) step %s: %.2f ms queued, %.2f ms work, %.2f ms to the "
                  "loop",
                  (long long)op->id, op->kind->type, op->kind->steps[op->step].name,
                  (double)(op->began_ns - op->queued_ns) / 1e6,
                  (double)(op->ended_ns - op->began_ns) / 1e6, (double)(back - op->ended_ns) / 1e6);
}

/* The step's work is done (and its wait, if any): record it, go on. */
static void step_done(struct ved_op *op)
{
        crash_hook(op, op->kind->steps[op->step].name);
        if (record_step(op) < 0) {
                fail_op(op);
                return;
        }
        op->step++;
        next_step(op);
}

/* A step's wait (struct ved_step.wait_fd): a poll of its fd and a timer, in
 * the loop; the step goes on once both handles are closed. */
struct step_wait {
        uv_poll_t poll;
        uv_timer_t timer;
        struct ved_op *op;
        int open; /* handles not closed yet */
};

static void wait_closed_cb(uv_handle_t *h)
{
        struct step_wait *w = h->data;
        struct ved_op *op = w->op;

        if (--w->open > 0)
                return;
        free(w);
        step_done(op);
}

static void wait_end(struct step_wait *w, bool timed_out)
{
        if (uv_is_closing((uv_handle_t *)&w->timer))
                return;
        w->op->wait_timed_out = timed_out;
        uv_close((uv_handle_t *)&w->poll, wait_closed_cb);
        uv_close((uv_handle_t *)&w->timer, wait_closed_cb);
}

static void wait_poll_cb(uv_poll_t *p, int status, int events)
{
        (void)status;
        (void)events;
        wait_end(p->data, false);
}

static void wait_timer_cb(uv_timer_t *t)
{
        wait_end(t->data, true);
}

/* 0: waiting, step_done() comes later; -1: no wait (nothing to wait for, or the
 * fd cannot be polled: the step is done now). */
static int start_wait(struct ved_op *op)
{
        const struct ved_step *step = &op->kind->steps[op->step];
        struct step_wait *w;
        unsigned timeout = 0;
        int fd, ret;

        op->wait_timed_out = false;
        if (step->wait_fd == NULL || (fd = step->wait_fd(op, &timeout)) < 0)
                return -1;
        w = calloc(1, sizeof(*w));
        if (w == NULL)
                return -1;
        ret = uv_poll_init(op->v->loop, &w->poll, fd);
        if (ret < 0) {
                log_error("Operation %lld: cannot wait for fd %d: %s", (long long)op->id, fd,
                          uv_strerror(ret));
                free(w);
                return -1;
        }
        uv_timer_init(op->v->loop, &w->timer);
        w->poll.data = w->timer.data = w;
        w->op = op;
        w->open = 2;
        uv_poll_start(&w->poll, UV_READABLE | UV_DISCONNECT, wait_poll_cb);
        uv_timer_start(&w->timer, wait_timer_cb, (uint64_t)timeout * 1000, 0);
        return 0;
}

static void step_after_cb(uv_work_t *req, int status)
{
        struct ved_op *op = container_of(req, struct ved_op, work);

        log_step_times(op);

        if (status == UV_ECANCELED && op->work_ret == 0)
                op->work_ret = ve_error_set(&op->err, ECANCELED, "cancelled");
        if (op->work_ret < 0) {
                fail_op(op);
                return;
        }
        if (start_wait(op) < 0)
                step_done(op);
}

static void step_work_cb(uv_work_t *req)
{
        struct ved_op *op = container_of(req, struct ved_op, work);

        op->began_ns = now_ns();
        op->work_ret = op->kind->steps[op->step].work(op, &op->err);
        op->ended_ns = now_ns();
}

static void next_step(struct ved_op *op)
{
        const struct ved_step *step = &op->kind->steps[op->step];
        int ret;

        if (step->name == NULL) {
                finish_op(op, true);
                return;
        }
        op->work_ret = 0;
        op->queued_ns = now_ns();
        op->began_ns = 0;
        if (step->work == NULL) {
                step_after_cb(&op->work, 0);
                return;
        }
        ret = uv_queue_work(op->v->loop, &op->work, step_work_cb, step_after_cb);
        if (ret < 0) {
                op->work_ret = ve_error_set(&op->err, -ret, "queue work: %s", uv_strerror(ret));
                fail_op(op);
        }
}

void ved_op_run(struct ved_op *op)
{
        list_add_tail(&op->v->ops, &op->link);
        next_step(op);
}

/* Test hook: VED_TEST_FAIL_FINISH=<type> makes the finish transaction of every
 * operation of that type fail, as a full disk or an I/O error would. */
static bool finish_fails(const struct ved_op *op)
{
        const char *type = getenv("VED_TEST_FAIL_FINISH");

        return type != NULL && strcmp(type, op->kind->type) == 0;
}

static int commit_result(struct ved_op *op, bool ok)
{
        struct ve_error err = { 0 };
        char who[32];
        int ret;

        ret = op->kind->lazy_finish ? ved_begin_lazy(op->v, &err) : ved_begin(op->v, &err);
        if (ret < 0)
                goto out;
        if (ok && finish_fails(op))
                ret =
                    ve_error_set(&op->err, EIO, "VED_TEST_FAIL_FINISH=%s: the result not recorded",
                                 op->kind->type);
        else if (ok && op->kind->finish)
                ret = op->kind->finish(op, &op->err);
        if (!ok && op->kind->rollback_done)
                op->kind->rollback_done(op);
        if (ret == 0)
                ret = ved_store_op_finish(&op->v->store, op->id, ok ? "succeeded" : "failed",
                                          op->err.code, ok ? NULL : op->err.message, NULL, &err);
        if (ret == 0)
                ved_event(op->v, ok ? "operation.succeeded" : "operation.failed", op->ctid, op->id,
                          NULL, "Operation %lld (%s)%s %s%s%s", (long long)op->id, op->kind->type,
                          of_ve(op->ctid, who, sizeof(who)), ok ? "succeeded" : "failed",
                          ok ? "" : ": ",
                          ok                ? ""
                          : op->err.message ? op->err.message
                                            : "");
        if (ret == 0)
                ret = ved_commit(op->v, &err);
        else
                ved_rollback(op->v);
out:
        if (ret < 0)
                log_error("Cannot record the end of operation %lld: %s", (long long)op->id,
                          err.message ? err.message : op->err.message);
        ve_error_clear(&err);
        return ret;
}

static void finish_op(struct ved_op *op, bool ok)
{
        int64_t id = op->id;
        struct ved *v = op->v;
        int ret = commit_result(op, ok);

        /* A full disk: the store's reserve is the room for this record. */
        if (ret == -ENOSPC && ved_store_release_reserve(&v->store))
                ret = commit_result(op, ok);
        if (ret < 0 && ok) {
                /* The finish itself failed, so nothing says the work was done: undo
                 * it as for a failed step (a start's init is torn down again, a
                 * create's image removed), then record the failure. Kinds without
                 * a finish record their result in their steps: that stands. */
                if (op->err.code == 0)
                        ve_error_set(&op->err, EIO, "cannot record the result");
                if (op->kind->finish != NULL && op->kind->rollback_work != NULL) {
                        if (op->kind->finish_failed != NULL)
                                op->kind->finish_failed(op);
                        if (uv_queue_work(v->loop, &op->work, rollback_work_cb,
                                          rollback_after_cb) == 0)
                                return;
                }
                commit_result(op, false);
        }
        ved_op_free(op);
        ved_op_notify(v, id);
}

int ved_ops_recover(struct ved *v, struct ve_error *err)
{
        json_t *ops = NULL, *op;
        size_t i;
        char who[32];
        int ret;

        ret = ved_store_op_unfinished(&v->store, &ops, err);
        if (ret < 0)
                return ret;
        json_array_foreach(ops, i, op)
        {
                const struct ved_op_kind *kind =
                    ved_op_kind_find(json_string_value(json_object_get(op, "type")));
                const char *resolution = "abandoned: unknown operation type", *status = "failed";
                int64_t id = json_integer_value(json_object_get(op, "id"));
                uint32_t ctid = (uint32_t)json_integer_value(json_object_get(op, "ctid"));

                ret = ved_begin(v, err);
                if (ret < 0)
                        break;
                if (kind != NULL && kind->recover != NULL)
                        status = kind->recover(v, op, &resolution);
                if (strcmp(status, "resume") == 0) {
                        ret = ved_store_op_set_resolution(&v->store, id, resolution, err);
                        if (v->resumed == NULL)
                                v->resumed = json_array();
                        json_array_append(v->resumed, op);
                } else {
                        ret = ved_store_op_finish(
                            &v->store, id, status, strcmp(status, "failed") == 0 ? ECANCELED : 0,
                            strcmp(status, "failed") == 0 ? "interrupted by a daemon restart"
                                                          : NULL,
                            resolution, err);
                }
                if (ret == 0) {
                        ved_event(v, "operation.resolved", ctid, id, NULL,
                                  "Operation %lld (%s)%s interrupted by a restart: %s",
                                  (long long)id, kind ? kind->type : "?",
                                  of_ve(ctid, who, sizeof(who)), resolution);
                        /* Its end, as for any operation, for a client that waits
                         * for operation.succeeded or operation.failed. */
                        ved_event(v,
                                  strcmp(status, "failed") == 0 ? "operation.failed"
                                                                : "operation.succeeded",
                                  ctid, id, NULL, "Operation %lld (%s)%s %s", (long long)id,
                                  kind ? kind->type : "?", of_ve(ctid, who, sizeof(who)), status);
                }
                if (ret == 0)
                        ret = ved_commit(v, err);
                else
                        ved_rollback(v);
                if (ret < 0)
                        break;
        }
        json_decref(ops);
        return ret;
}

bool ved_ops_resume_pending(struct ved *v, uint32_t ctid)
{
        json_t *op;
        size_t i;

        json_array_foreach(v->resumed, i, op)
        {
                if ((uint32_t)json_integer_value(json_object_get(op, "ctid")) == ctid)
                        return true;
        }
        return false;
}

/* One operation ved_ops_recover() let run on: again from its first step, or
 * failed when even that cannot begin. */
static void resume_one(struct ved *v, json_t *rec)
{
        const struct ved_op_kind *kind =
            ved_op_kind_find(json_string_value(json_object_get(rec, "type")));
        int64_t id = json_integer_value(json_object_get(rec, "id"));
        uint32_t ctid = (uint32_t)json_integer_value(json_object_get(rec, "ctid"));
        struct ve_error err = { 0 };
        struct ved_op *op = NULL;
        const char *msg;
        char who[32];
        int ret;

        ret = ved_begin(v, &err);
        if (ret == 0 && kind->resume != NULL)
                ret = kind->resume(v, rec, &err);
        if (ret == 0)
                ret = op_new(v, kind, id, ctid, json_object_get(rec, "params"), &op, &err);
        if (ret == 0)
                ret = ved_commit(v, &err);
        if (ret == 0) {
                log_info("Operation %lld (%s)%s runs again after the restart", (long long)id,
                         kind->type, of_ve(ctid, who, sizeof(who)));
                ved_op_run(op);
                return;
        }
        ved_rollback(v);
        ved_op_free(op);
        msg = err.message ? err.message : "interrupted by a daemon restart";
        log_warn("Operation %lld (%s)%s cannot run again: %s", (long long)id, kind->type,
                 of_ve(ctid, who, sizeof(who)), msg);
        if (ved_begin(v, NULL) == 0) {
                if (ved_store_op_finish(&v->store, id, "failed", err.code ? err.code : ECANCELED,
                                        msg, NULL, NULL) == 0)
                        ved_event(v, "operation.failed", ctid, id, NULL,
                                  "Operation %lld (%s)%s failed: %s", (long long)id, kind->type,
                                  of_ve(ctid, who, sizeof(who)), msg);
                ved_commit(v, NULL);
        }
        ve_error_clear(&err);
}

static bool resumed_running(struct ved *v)
{
        json_t *op;
        size_t i;

        json_array_foreach(v->resumed, i, op)
        {
                if (ved_op_active(v, json_integer_value(json_object_get(op, "id"))))
                        return true;
        }
        return false;
}

static void deadline_cb(uv_timer_t *t)
{
        (void)t; /* the loop woke up: that was all */
}

void ved_ops_resume(struct ved *v, unsigned wait_ms)
{
        static uv_timer_t deadline;
        json_t *op;
        size_t i;

        json_array_foreach(v->resumed, i, op)
        {
                resume_one(v, op);
        }
        if (resumed_running(v)) {
                uv_timer_init(v->loop, &deadline);
                uv_timer_start(&deadline, deadline_cb, wait_ms, 0);
                while (resumed_running(v) && uv_is_active((uv_handle_t *)&deadline))
                        uv_run(v->loop, UV_RUN_ONCE);
                if (resumed_running(v))
                        log_info("Operations resumed after the restart go on while ved serves");
                uv_close((uv_handle_t *)&deadline, NULL);
        }
        json_decref(v->resumed);
        v->resumed = NULL;
}
