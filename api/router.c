#include "router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

static const struct api_route routes[] = {
        { "GET", "/v1/host", route_host_get, NULL, "the host and the daemon", NULL },
        { "GET", "/v1/ves", route_ves_list, NULL, "list VEs", "state name" },
        { "POST", "/v1/ves", route_ve_create, NULL, "create a VE", NULL },
        { "GET", "/v1/ves/{ve}", route_ve_get, NULL, "show a VE", NULL },
        { "PATCH", "/v1/ves/{ve}", route_ve_patch, NULL, "change a VE", NULL },
        { "DELETE", "/v1/ves/{ve}", route_ve_delete, NULL, "destroy a VE", "force" },
        { "GET", "/v1/ves/{ve}/state", route_ve_state_get, NULL, "a VE's runtime state", NULL },
        { "POST", "/v1/ves/{ve}/state", route_ve_state_post, NULL, "start, stop or restart", NULL },
        { "GET", "/v1/operations", route_ops_list, NULL, "list operations", "ctid status limit" },
        { "GET", "/v1/operations/{id}", route_op_get, NULL, "show or wait for an operation",
          "wait" },
        { "GET", "/v1/events", route_events_get, NULL, "stream of events", "since follow" },
        { "GET", "/v1/templates", route_templates_list, NULL, "list templates", NULL },
        { "POST", "/v1/templates", route_template_import, route_template_body,
          "import a template tarball (the body)", "name sha256" },
        { "POST", "/v1/templates/build", route_template_build, NULL,
          "build a template from its recipe", NULL },
        { "GET", "/v1/templates/{name}", route_template_get, NULL, "show a template", NULL },
        { "DELETE", "/v1/templates/{name}", route_template_delete, NULL, "remove a template",
          NULL },
        { "POST", "/v1/ves/{ve}/exec", route_ve_exec, NULL, "run a command in a VE", NULL },
        { "POST", "/v1/ves/{ve}/console", route_ve_console, NULL, "attach to a VE's console",
          NULL },
        { "GET", "/v1/ves/{ve}/console", route_ve_console_log, NULL, "a VE's console log", "tail" },
        { "GET", "/v1/ves/{ve}/usage", route_ve_usage, NULL, "a VE's resource usage", NULL },
        { "GET", "/v1/usage", route_usage_list, NULL, "resource usage of every VE", "state" },
        { "GET", "/metrics", route_metrics, NULL, "usage in Prometheus text format", NULL },
        { NULL, NULL, NULL, NULL, NULL, NULL },
};

/* Match path against pattern; on success fill params (pointers into buf). */
static bool match(const char *pattern, const char *path, char *buf, const char **params)
{
        unsigned n = 0;

        memset(params, 0, API_PARAMS_MAX * sizeof(*params));
        while (*pattern && *path) {
                if (*pattern == '{') {
                        const char *end = strchr(path, '/');
                        size_t len = end ? (size_t)(end - path) : strlen(path);

                        if (len == 0 || n >= API_PARAMS_MAX)
                                return false;
                        memcpy(buf, path, len);
                        buf[len] = '\0';
                        params[n++] = buf;
                        buf += len + 1;
                        path += len;
                        pattern = strchr(pattern, '}') + 1;
                        continue;
                }
                if (*pattern++ != *path++)
                        return false;
        }
        return *pattern == '\0' && *path == '\0';
}

/* Whether name is one of the space-separated words of list. */
static bool takes(const char *list, const char *name)
{
        size_t len = strlen(name);

        for (const char *p = list; p != NULL && *p;) {
                const char *end = strchr(p, ' ') ?: p + strlen(p);

                if ((size_t)(end - p) == len && strncmp(p, name, len) == 0)
                        return true;
                p = *end ? end + 1 : end;
        }
        return false;
}

struct query_check {
        const struct api_route *route;
        const char *unknown; /* the first parameter the route does not take */
};

static enum MHD_Result query_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
        struct query_check *q = cls;

        (void)kind;
        (void)value;
        if (takes(q->route->query, key))
                return MHD_YES;
        q->unknown = key;
        return MHD_NO;
}

/* A parameter the route does not take is a mistake the client should hear of
 * (a misspelt ?force=1 would otherwise be a plain, refused DELETE). */
static void check_query(struct api_request *req)
{
        struct query_check q = { .route = req->route };
        char msg[256];

        MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, query_cb, &q);
        if (q.unknown == NULL)
                return;
        if (req->route->query != NULL)
                snprintf(msg, sizeof(msg), "unknown query parameter '%.64s': %s %s takes %s",
                         q.unknown, req->route->method, req->route->pattern, req->route->query);
        else
                snprintf(msg, sizeof(msg),
                         "unknown query parameter '%.64s': %s %s takes no parameters", q.unknown,
                         req->route->method, req->route->pattern);
        req->bad_query = strdup(msg);
}

/* HEAD is GET without the body (libmicrohttpd sends none), except for the event
 * stream, which never ends. */
static bool head_of(const struct api_route *r, const char *method)
{
        return strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0 &&
               strcmp(r->pattern, "/v1/events") != 0;
}

void api_route_match(struct api_request *req)
{
        const char *params[API_PARAMS_MAX];
        bool path_known = false;

        req->param_buf = malloc(strlen(req->url) + API_PARAMS_MAX + 1);
        req->route_status = 404;
        for (const struct api_route *r = routes; r->method; r++) {
                if (!match(r->pattern, req->url, req->param_buf, params))
                        continue;
                if (strcmp(r->method, req->method) == 0 || head_of(r, req->method)) {
                        memcpy(req->params, params, sizeof(params));
                        req->route = r;
                        check_query(req);
                        return;
                }
                if (strlen(req->allow) + strlen(r->method) + 3 < sizeof(req->allow)) {
                        if (path_known)
                                strcat(req->allow, ", ");
                        strcat(req->allow, r->method);
                }
                path_known = true;
        }
        if (path_known)
                req->route_status = 405;
}

bool api_route_streams_body(struct api_request *req)
{
        return req->route != NULL && req->route->body != NULL;
}

bool api_route_body_chunk(struct api_request *req, const char *data, size_t size)
{
        if (!api_route_streams_body(req))
                return false;
        req->route->body(req, data, size);
        return true;
}

int api_route_dispatch(struct api_request *req)
{
        if (req->route != NULL)
                return req->route->handler(req);
        if (req->route_status == 405) {
                char msg[256];

                snprintf(msg, sizeof(msg), "method %.16s is not allowed on %.64s; use %s",
                         req->method, req->url, req->allow);
                return api_respond_json_hdr(req, 405, api_error_body(405, msg), "Allow", req->allow,
                                            NULL, NULL);
        }
        return api_respond_error(req, 404, "no such resource: %s", req->url);
}
