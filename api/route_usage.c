/* GET /v1/ves/{ve}/usage, GET /v1/usage (every VE) and GET /metrics. */
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "daemon/usage.h"
#include "daemon/ved.h"
#include "router.h"
#include "server.h"

static int respond_error(struct api_request *req, struct ve_error *err)
{
        int ret = api_respond_ve_error(req, err);

        ve_error_clear(err);
        return ret;
}

int route_ve_usage(struct api_request *req)
{
        struct ve_error err = { 0 };
        json_t *ve = NULL, *usage;

        if (ved_store_ve_get(&req->v->store, req->params[0], &ve, &err) < 0)
                return respond_error(req, &err);
        usage = ved_usage_json(req->v, ve);
        json_decref(ve);
        if (usage == NULL)
                return api_respond_error(req, 500, "out of memory");
        return api_respond_json(req, 200, usage);
}

int route_usage_list(struct api_request *req)
{
        const char *state = api_query(req, "state");
        struct ve_error err = { 0 };
        json_t *ves = NULL, *list, *ve;
        size_t i;

        if (state != NULL && !api_ve_state_known(state))
                return api_respond_bad_state(req, state);
        if (ved_store_ve_list(&req->v->store, state, NULL, &ves, &err) < 0)
                return respond_error(req, &err);
        list = json_array();
        json_array_foreach(ves, i, ve) json_array_append_new(list, ved_usage_json(req->v, ve));
        json_decref(ves);
        return api_respond_json(req, 200, json_pack("{s:o}", "usage", list));
}

int route_metrics(struct api_request *req)
{
        struct ve_error err = { 0 };
        struct MHD_Response *resp;
        char *text = ved_metrics_text(req->v, &err);

        if (text == NULL)
                return respond_error(req, &err);
        resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
        if (resp == NULL) {
                free(text);
                return api_respond_error(req, 500, "out of memory");
        }
        MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        return api_respond_raw(req, resp, 200);
}
