/* The route table: method + path pattern -> handler, each with its help text.
 * Patterns have {placeholders}, captured into req->params in order. */
#ifndef API_ROUTER_H
#define API_ROUTER_H

#include <stdbool.h>

#include "server.h"

typedef int (*api_handler_fn)(struct api_request *req);
/* A route that streams its body (uploads) gets each chunk; returns false to
 * stop reading (the handler then answers with what it recorded). */
typedef bool (*api_body_fn)(struct api_request *req, const char *data, size_t size);

struct api_route {
        const char *method;
        const char *pattern;
        api_handler_fn handler;
        api_body_fn body;
        const char *help;
        const char *query; /* the query parameters it takes, space-separated */
};

/* Find the route of req (sets req->route and req->params, or route_status/allow),
 * and check its query's parameters against what the route takes (sets
 * req->bad_query to the message when one is unknown). */
void api_route_match(struct api_request *req);
bool api_route_streams_body(struct api_request *req);
/* Pass a body chunk to a streaming route; false when the route does not stream. */
bool api_route_body_chunk(struct api_request *req, const char *data, size_t size);
/* Answer req: 404/405 when unmatched, else call the handler. */
int api_route_dispatch(struct api_request *req);

/* Handlers, one file per resource. */
int route_host_get(struct api_request *req);
int route_ves_list(struct api_request *req);
int route_ve_create(struct api_request *req);
int route_ve_get(struct api_request *req);
int route_ve_patch(struct api_request *req);
int route_ve_delete(struct api_request *req);
int route_ve_state_get(struct api_request *req);
int route_ve_state_post(struct api_request *req);
int route_ops_list(struct api_request *req);
int route_op_get(struct api_request *req);
int route_events_get(struct api_request *req);
int route_templates_list(struct api_request *req);
int route_template_import(struct api_request *req);
bool route_template_body(struct api_request *req, const char *data, size_t size);
int route_template_build(struct api_request *req);
int route_template_get(struct api_request *req);
int route_template_delete(struct api_request *req);
int route_ve_exec(struct api_request *req);
int route_ve_console(struct api_request *req);
int route_ve_console_log(struct api_request *req);
/* The ?state= filter of the lists: a known VE state, else a 400. */
bool api_ve_state_known(const char *s);
int api_respond_bad_state(struct api_request *req, const char *state);
/* 202 with operation id's record (as GET /v1/operations/{id} shows it), its
 * Location, and ve (taken; NULL: none) as "ve". */
int api_respond_operation(struct api_request *req, int64_t id, json_t *ve);

int route_ve_usage(struct api_request *req);
int route_usage_list(struct api_request *req);
int route_metrics(struct api_request *req);

#endif
