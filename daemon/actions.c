#include "actions.h"

#include <string.h>

#include "ops.h"
#include "ve_ops.h"
#include "quota/cgroup.h"

static int check_state(uint32_t ctid, const char *action, const char *state, struct ve_error *err)
{
        bool running = strcmp(state, "running") == 0;

        if (strcmp(action, "start") == 0 && strcmp(state, "stopped") != 0)
                return ve_error_set(err, VE_ECONFLICT, "VE %u is %s: %s", ctid, state,
                                    running ? "it is already running" : "it cannot start now");
        if (strcmp(action, "start") != 0 && !running && strcmp(state, "broken") != 0)
                return ve_error_set(err, VE_ECONFLICT, "VE %u is %s: %s", ctid, state,
                                    strcmp(state, "stopped") == 0 ? "it is not running"
                                                                  : "wait for it to finish");
        return 0;
}

int ved_ve_action(struct ved *v, uint32_t ctid, const char *action, bool force, unsigned timeout,
                  const char *reason, int64_t *op_id, struct ve_error *err)
{
        const struct ved_op_kind *kind;
        struct ved_op *op = NULL;
        json_t *ve = NULL, *params;
        const char *state;
        int ret;

        ret = ved_store_ve_get_ctid(&v->store, ctid, &ve, err);
        if (ret < 0)
                return ret;
        state = json_string_value(json_object_get(ve, "state"));
        /* As vzctl restart: a stopped VE is started. */
        if (strcmp(action, "restart") == 0 && strcmp(state, "stopped") == 0)
                action = "start";
        ret = check_state(ctid, action, state, err);
        json_decref(ve);
        if (ret < 0)
                return ret;
        /* Its first step starts it too; from here it has the record's commit more. */
        if (strcmp(action, "start") == 0)
                quota_cgroup_prewarm(v->cgroup);
        kind = ved_op_kind_find(action);
        params = json_pack("{s:b}", "force", force);
        if (reason != NULL)
                json_object_set_new(params, "reason", json_string(reason));
        if (timeout > 0)
                json_object_set_new(params, "timeout", json_integer(timeout));
        ret = ved_begin(v, err);
        if (ret == 0)
                ret = ved_store_ve_set_state(
                    &v->store, ctid, strcmp(action, "stop") == 0 ? "stopping" : "starting", err);
        if (ret == 0)
                ret = ved_op_create(v, kind, ctid, params, &op, err);
        json_decref(params);
        if (ret == 0)
                ret = ved_commit(v, err);
        if (ret < 0) {
                ved_rollback(v);
                ved_op_free(op);
                return ret;
        }
        *op_id = op->id;
        ved_op_run(op);
        return 0;
}
