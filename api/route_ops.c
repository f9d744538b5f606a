#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/ops.h"
#include "daemon/ved.h"
#include "present.h"
#include "router.h"
#include "ve/parse.h"

#define WAIT_MAX 3600

static int respond_store_error(struct api_request *req, struct ve_error *err)
{
        int ret = api_respond_ve_error(req, err);

        ve_error_clear(err);
        return ret;
}

int route_ops_list(struct api_request *req)
{
        const char *ctid_s = api_query(req, "ctid"), *status = api_query(req, "status");
        const char *limit_s = api_query(req, "limit");
        struct ve_error err = { 0 };
        uint64_t limit = 100;
        uint32_t ctid = 0;
        json_t *list = NULL;
        size_t i;
        json_t *op;

        if (ctid_s != NULL && ve_parse_ctid(ctid_s, &ctid, &err) < 0) {
                if (err.code == 0)
                        ve_error_set(&err, VE_EINVAL_INPUT, "ctid '%.32s' is not a CTID", ctid_s);
                return respond_store_error(req, &err);
        }
        if (status != NULL && strcmp(status, "pending") != 0 && strcmp(status, "running") != 0 &&
            strcmp(status, "succeeded") != 0 && strcmp(status, "failed") != 0)
                return api_respond_error(req, 400,
                                         "status must be pending, running, succeeded or failed");
        if (limit_s != NULL &&
            (ve_parse_uint(limit_s, 1000, &limit, "limit", &err) < 0 ||
             (limit == 0 && ve_error_set(&err, VE_EINVAL_INPUT, "limit must be 1 to 1000") < 0)))
                return respond_store_error(req, &err);
        if (ved_store_op_list(&req->v->store, ctid, status, (int)limit, &list, &err) < 0)
                return respond_store_error(req, &err);
        json_array_foreach(list, i, op) api_present_op(op);
        return api_respond_json(req, 200, json_pack("{s:o}", "operations", list));
}

/* A request held until its operation finishes or its wait runs out. */
struct op_wait {
        struct ved_op_waiter waiter;
        uv_timer_t timer;
        struct api_request *req;
};

static void wait_closed_cb(uv_handle_t *h)
{
        free(h->data);
}

static void wait_wake(struct op_wait *w)
{
        if (w->req != NULL)
                api_request_resume(w->req);
}

static void wait_timer_cb(uv_timer_t *t)
{
        wait_wake(t->data);
}

static void wait_done_cb(struct ved_op_waiter *waiter)
{
        wait_wake(container_of(waiter, struct op_wait, waiter));
}

static void wait_release(void *data)
{
        struct op_wait *w = data;

        ved_op_unwait(&w->waiter);
        w->req = NULL;
        uv_timer_stop(&w->timer);
        uv_close((uv_handle_t *)&w->timer, wait_closed_cb);
}

static int parse_op_id(struct api_request *req, int64_t *id)
{
        struct ve_error err = { 0 };
        uint64_t v;

        if (ve_parse_uint(req->params[0], INT64_MAX, &v, "operation id", &err) < 0 || v == 0) {
                ve_error_clear(&err);
                api_respond_error(req, 400, "operation id '%.32s' is not a positive integer",
                                  req->params[0]);
                return -1;
        }
        *id = (int64_t)v;
        return 0;
}

static bool finished(json_t *op)
{
        const char *s = json_string_value(json_object_get(op, "status"));

        return strcmp(s, "succeeded") == 0 || strcmp(s, "failed") == 0;
}

/* The operation as recorded; one that is recorded as running but no longer runs
 * ended without its end recorded: say so rather than let a client wait on. */
static int respond_op(struct api_request *req, int64_t id, json_t *op)
{
        if (!finished(op) && !ved_op_active(req->v, id)) {
                json_decref(op);
                return api_respond_error(req, 500,
                                         "operation %lld has ended, but its end could not be "
                                         "recorded (is the state directory's file system "
                                         "full?): the daemon's log says how it ended",
                                         (long long)id);
        }
        return api_respond_json(req, 200, api_present_op(op));
}

static int answer_op(struct api_request *req)
{
        struct ve_error err = { 0 };
        json_t *op = NULL;
        int64_t id;

        if (req->data != NULL) {
                wait_release(req->data);
                req->data = NULL;
                req->free_data = NULL;
        }
        if (parse_op_id(req, &id) < 0)
                return 0;
        if (ved_store_op_get(&req->v->store, id, &op, &err) < 0)
                return respond_store_error(req, &err);
        return respond_op(req, id, op);
}

int route_op_get(struct api_request *req)
{
        const char *wait_s = api_query(req, "wait");
        struct ve_error err = { 0 };
        struct op_wait *w;
        uint64_t wait = 0;
        json_t *op = NULL;
        int64_t id;
        bool done;

        if (parse_op_id(req, &id) < 0)
                return 0;
        if (wait_s != NULL && ve_parse_uint(wait_s, WAIT_MAX, &wait, "wait", &err) < 0)
                return respond_store_error(req, &err);
        if (ved_store_op_get(&req->v->store, id, &op, &err) < 0)
                return respond_store_error(req, &err);
        done = finished(op) || !ved_op_active(req->v, id);
        if (done || wait == 0 || req->closing)
                return respond_op(req, id, op);
        json_decref(op);
        w = calloc(1, sizeof(*w));
        w->req = req;
        w->waiter.op_id = id;
        w->waiter.done_cb = wait_done_cb;
        w->timer.data = w;
        uv_timer_init(req->v->loop, &w->timer);
        uv_timer_start(&w->timer, wait_timer_cb, wait * 1000, 0);
        ved_op_wait(req->v, &w->waiter);
        req->data = w;
        req->free_data = wait_release;
        api_request_suspend(req, answer_op);
        return 0;
}
