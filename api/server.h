/* The HTTP server: libmicrohttpd on the daemon's unix socket, driven from the
 * daemon's libuv loop (MHD's epoll fd watched with uv_poll, its timeout with a
 * uv_timer), so every handler runs on the loop thread and may touch daemon state.
 * Handlers that must wait (an operation, the event stream) suspend their
 * connection and resume it from a loop callback. */
#ifndef API_SERVER_H
#define API_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <microhttpd.h>

#include "daemon/list.h"
#include "ve/error.h"

struct ved;
struct api_server;
struct api_route;

#define API_BODY_MAX   (1024 * 1024) /* JSON bodies */
#define API_DEPTH_MAX  32
#define API_PARAMS_MAX 4

struct api_request {
        struct api_server *server;
        struct ved *v;
        struct MHD_Connection *conn;
        const char *method;
        char *url;
        char *body;
        size_t body_len;
        bool too_large;
        char *bad_query; /* why the query is refused (api_route_match()) */
        bool answered;
        bool suspended;
        bool closing;                       /* the server is shutting down: finish at once */
        const char *params[API_PARAMS_MAX]; /* {placeholders} of the matched route */
        char *param_buf;
        const struct api_route *route; /* NULL: no route matched (404/405) */
        unsigned route_status;         /* 404 or 405 when route is NULL */
        char allow[64];                /* methods of the path, for 405 */
        /* Set by a handler that suspended: called on the loop when resumed. */
        int (*resume_cb)(struct api_request *req);
        void *data;
        void (*free_data)(void *data);
        struct list_head link; /* in the server's list of suspended requests */
};

int api_server_start(struct ved *v, const char *socket_path, struct api_server **out,
                     struct ve_error *err);
/* Resume every suspended request (they answer or end), stop MHD, close handles;
 * done_cb runs when the uv handles are closed. */
void api_server_stop(struct api_server *s, void (*done_cb)(struct ved *v));

/* A connection taken over after an HTTP upgrade (exec streams). MHD must not be
 * stopped with one open, so the server ends each with close_cb first. */
struct api_upgrade {
        struct list_head link;
        void (*close_cb)(struct api_upgrade *u);
};
void api_server_add_upgrade(struct api_server *s, struct api_upgrade *u);
void api_server_del_upgrade(struct api_upgrade *u);

/* Run MHD soon (after resuming a connection from outside a request). */
void api_server_kick(struct api_server *s);
bool api_server_stopping(struct api_server *s);

/* Responses. Each takes ownership of body. Returns 0 (MHD_YES semantics). */
int api_respond_json(struct api_request *req, unsigned status, json_t *body);
int api_respond_json_hdr(struct api_request *req, unsigned status, json_t *body, const char *h1,
                         const char *v1, const char *h2, const char *v2);
int api_respond_error(struct api_request *req, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* {"error": {"code": status, "message": msg}} */
json_t *api_error_body(unsigned status, const char *msg);
/* Map err->code to a status (errors.c) and answer with its message. */
int api_respond_ve_error(struct api_request *req, struct ve_error *err);
int api_respond_raw(struct api_request *req, struct MHD_Response *resp, unsigned status);

/* Suspend the connection until api_request_resume(); resume_cb then answers. */
void api_request_suspend(struct api_request *req, int (*resume_cb)(struct api_request *req));
void api_request_resume(struct api_request *req);

/* Query argument or header; NULL when absent. */
const char *api_query(struct api_request *req, const char *key);
const char *api_header(struct api_request *req, const char *key);

#endif
