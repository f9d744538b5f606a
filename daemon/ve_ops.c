#include "ve_ops.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "ve/cleanup.h"

/* Paths an operation's worker steps need, copied on the loop before the work runs:
 * worker threads never read struct ved. */
struct ve_op_data {
        char dir[4096];
};

static int prepare(struct ved_op *op, struct ve_error *err)
{
        struct ve_op_data *d = calloc(1, sizeof(*d));

        if (d == NULL)
                return ve_error_set(err, ENOMEM, "out of memory");
        ved_ve_dir(op->v, op->ctid, d->dir, sizeof(d->dir));
        op->data = d;
        op->free_data = free;
        return 0;
}

/* Remove the VE's directory. It holds nothing yet beyond what create made. */
static int remove_private(const char *dir, struct ve_error *err)
{
        if (rmdir(dir) < 0 && errno != ENOENT)
                return ve_error_errno(err, errno, "remove %s", dir);
        return 0;
}

static int create_private_work(struct ved_op *op, struct ve_error *err)
{
        struct ve_op_data *d = op->data;

        if (mkdir(d->dir, 0700) < 0)
                return ve_error_errno(err, errno, "create %s", d->dir);
        return 0;
}

static int create_finish(struct ved_op *op, struct ve_error *err)
{
        int ret = ved_store_ve_set_state(&op->v->store, op->ctid, "stopped", err);

        if (ret == 0)
                ved_event(op->v, "ve.created", op->ctid, op->id, "stopped", "VE %u created",
                          op->ctid);
        return ret;
}

static void create_rollback_work(struct ved_op *op)
{
        struct ve_op_data *d = op->data;
        struct ve_error err = {0};

        if (remove_private(d->dir, &err) < 0)
                log_error("Rollback of VE %u: %s", op->ctid, err.message);
        ve_error_clear(&err);
}

static void create_rollback_done(struct ved_op *op)
{
        if (ved_store_ve_delete(&op->v->store, op->ctid, NULL) == 0)
                ved_event(op->v, "ve.destroyed", op->ctid, op->id, NULL,
                          "VE %u removed: its creation failed", op->ctid);
}

static const char *create_recover(struct ved *v, json_t *op, const char **resolution)
{
        uint32_t ctid = (uint32_t)json_integer_value(json_object_get(op, "ctid"));
        struct ve_error err = {0};
        char dir[4096];

        ved_ve_dir(v, ctid, dir, sizeof(dir));
        if (remove_private(dir, &err) < 0) {
                log_error("Recovery of VE %u: %s", ctid, err.message);
                ve_error_clear(&err);
                ved_store_ve_set_state(&v->store, ctid, "broken", NULL);
                *resolution = "could not roll back: the VE is marked broken";
                return "failed";
        }
        ved_store_ve_delete(&v->store, ctid, NULL);
        *resolution = "rolled back: the half-created VE was removed";
        return "failed";
}

static const struct ved_step create_steps[] = {
        {"private", create_private_work, NULL},
        {NULL, NULL, NULL},
};

const struct ved_op_kind ved_op_create_kind = {
        .type = "create",
        .prepare = prepare,
        .steps = create_steps,
        .finish = create_finish,
        .rollback_work = create_rollback_work,
        .rollback_done = create_rollback_done,
        .recover = create_recover,
};

static int destroy_private_work(struct ved_op *op, struct ve_error *err)
{
        return remove_private(((struct ve_op_data *)op->data)->dir, err);
}

static int destroy_finish(struct ved_op *op, struct ve_error *err)
{
        int ret = ved_store_ve_delete(&op->v->store, op->ctid, err);

        if (ret == 0)
                ved_event(op->v, "ve.destroyed", op->ctid, op->id, NULL, "VE %u destroyed",
                          op->ctid);
        return ret;
}

static void destroy_rollback_done(struct ved_op *op)
{
        const char *prev = json_string_value(json_object_get(op->params, "previous_state"));

        ved_store_ve_set_state(&op->v->store, op->ctid, prev ? prev : "stopped", NULL);
}

static const char *destroy_recover(struct ved *v, json_t *op, const char **resolution)
{
        uint32_t ctid = (uint32_t)json_integer_value(json_object_get(op, "ctid"));
        struct ve_error err = {0};
        char dir[4096];

        ved_ve_dir(v, ctid, dir, sizeof(dir));
        if (remove_private(dir, &err) < 0) {
                log_error("Recovery of VE %u: %s", ctid, err.message);
                ve_error_clear(&err);
                ved_store_ve_set_state(&v->store, ctid, "broken", NULL);
                *resolution = "could not finish: the VE is marked broken";
                return "failed";
        }
        ved_store_ve_delete(&v->store, ctid, NULL);
        ved_event(v, "ve.destroyed", ctid, json_integer_value(json_object_get(op, "id")), NULL,
                  "VE %u destroyed (finished after a restart)", ctid);
        *resolution = "rolled forward: the VE was removed";
        return "succeeded";
}

static const struct ved_step destroy_steps[] = {
        {"private", destroy_private_work, NULL},
        {NULL, NULL, NULL},
};

const struct ved_op_kind ved_op_destroy_kind = {
        .type = "destroy",
        .prepare = prepare,
        .steps = destroy_steps,
        .finish = destroy_finish,
        .rollback_done = destroy_rollback_done,
        .recover = destroy_recover,
};

