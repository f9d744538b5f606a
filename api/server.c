#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "daemon/log.h"
#include "daemon/ved.h"
#include "errors.h"
#include "router.h"
#include "ve/cleanup.h"

struct api_server {
        struct ved *v;
        struct MHD_Daemon *mhd;
        int listen_fd;
        char *socket_path;
        uv_poll_t poll;
        uv_timer_t timer;
        int handles_open;
        bool stopping;
        struct list_head suspended;
        struct list_head upgrades;
        void (*done_cb)(struct ved *v);
};

static void run_mhd(struct api_server *s);

static void timer_cb(uv_timer_t *t)
{
        run_mhd(container_of(t, struct api_server, timer));
}

static void poll_cb(uv_poll_t *p, int status, int events)
{
        (void)status;
        (void)events;
        run_mhd(container_of(p, struct api_server, poll));
}

/* Let MHD do what is ready, then arm the timer for what it waits on next. */
static void run_mhd(struct api_server *s)
{
        MHD_UNSIGNED_LONG_LONG timeout;

        if (s->mhd == NULL)
                return;
        MHD_run(s->mhd);
        if (MHD_get_timeout(s->mhd, &timeout) == MHD_YES)
                uv_timer_start(&s->timer, timer_cb, timeout, 0);
        else
                uv_timer_stop(&s->timer);
}

static void request_free(struct api_request *req)
{
        if (req->free_data)
                req->free_data(req->data);
        free(req->body);
        free(req->url);
        free(req->bad_query);
        free(req->param_buf);
        free(req);
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
        struct api_request *req = *con_cls;

        (void)cls;
        (void)conn;
        (void)toe;
        if (req == NULL)
                return;
        if (req->suspended)
                list_del(&req->link);
        request_free(req);
        *con_cls = NULL;
}

int api_respond_raw(struct api_request *req, struct MHD_Response *resp, unsigned status)
{
        enum MHD_Result r;

        req->answered = true;
        r = MHD_queue_response(req->conn, status, resp);
        MHD_destroy_response(resp);
        return r == MHD_YES ? 0 : -EIO;
}

int api_respond_json_hdr(struct api_request *req, unsigned status, json_t *body, const char *h1,
                         const char *v1, const char *h2, const char *v2)
{
        char *text = json_dumps(body, JSON_COMPACT);
        struct MHD_Response *resp;
        size_t len;

        json_decref(body);
        if (text == NULL)
                text = strdup("{}");
        len = strlen(text);
        text = realloc(text, len + 2);
        text[len++] = '\n';
        text[len] = '\0';
        resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(resp, "Content-Type", "application/json");
        if (h1)
                MHD_add_response_header(resp, h1, v1);
        if (h2)
                MHD_add_response_header(resp, h2, v2);
        return api_respond_raw(req, resp, status);
}

int api_respond_json(struct api_request *req, unsigned status, json_t *body)
{
        return api_respond_json_hdr(req, status, body, NULL, NULL, NULL, NULL);
}

json_t *api_error_body(unsigned status, const char *msg)
{
        json_t *m = json_string(msg && *msg ? msg : api_status_reason(status));

        /* A message quoting bytes from a request may not be UTF-8: say so instead. */
        if (m == NULL)
                m = json_string("the request held text that is not valid UTF-8");
        return json_pack("{s:{s:i, s:o}}", "error", "code", status, "message", m);
}

/* exit_code >= 0: an exec whose command could not be run, with a shell's status. */
static int respond_error(struct api_request *req, unsigned status, const char *msg, int exit_code)
{
        json_t *body = api_error_body(status, msg);

        if (status >= 500)
                log_error("%s %s: %s", req->method, req->url, msg);
        else
                log_debug("%s %s: %u %s", req->method, req->url, status, msg);
        if (exit_code >= 0)
                json_object_set_new(json_object_get(body, "error"), "exit_code",
                                    json_integer(exit_code));
        return api_respond_json(req, status, body);
}

int api_respond_error(struct api_request *req, unsigned status, const char *fmt, ...)
{
        char msg[2048];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return respond_error(req, status, msg, -1);
}

int api_respond_ve_error(struct api_request *req, struct ve_error *err)
{
        return respond_error(req, api_status_for_code(err->code),
                             err->message ? err->message : "internal error",
                             api_exit_code_for(err->code));
}

const char *api_query(struct api_request *req, const char *key)
{
        return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *api_header(struct api_request *req, const char *key)
{
        return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, key);
}

void api_request_suspend(struct api_request *req, int (*resume_cb)(struct api_request *req))
{
        req->resume_cb = resume_cb;
        if (req->suspended)
                return;
        req->suspended = true;
        list_add_tail(&req->server->suspended, &req->link);
        MHD_suspend_connection(req->conn);
}

void api_server_add_upgrade(struct api_server *s, struct api_upgrade *u)
{
        list_add_tail(&s->upgrades, &u->link);
}

void api_server_del_upgrade(struct api_upgrade *u)
{
        list_del(&u->link);
}

void api_server_kick(struct api_server *s)
{
        uv_timer_start(&s->timer, timer_cb, 0, 0);
}

bool api_server_stopping(struct api_server *s)
{
        return s->stopping;
}

void api_request_resume(struct api_request *req)
{
        if (!req->suspended)
                return;
        req->suspended = false;
        list_del(&req->link);
        MHD_resume_connection(req->conn);
        /* MHD's inter-thread channel wakes the poll; run soon in any case. */
        uv_timer_start(&req->server->timer, timer_cb, 0, 0);
}

static bool append_body(struct api_request *req, const char *data, size_t size)
{
        char *nb;

        if (req->too_large || req->body_len + size > API_BODY_MAX) {
                req->too_large = true;
                return false;
        }
        nb = realloc(req->body, req->body_len + size + 1);
        if (nb == NULL) {
                req->too_large = true;
                return false;
        }
        memcpy(nb + req->body_len, data, size);
        req->body = nb;
        req->body_len += size;
        req->body[req->body_len] = '\0';
        return true;
}

static enum MHD_Result first_call(struct api_server *s, struct MHD_Connection *conn,
                                  const char *url, const char *method, void **con_cls)
{
        struct api_request *req = calloc(1, sizeof(*req));
        const char *cl;

        if (req == NULL)
                return MHD_NO;
        req->server = s;
        req->v = s->v;
        req->conn = conn;
        req->method = method;
        req->url = strdup(url);
        list_init(&req->link);
        *con_cls = req;
        /* Refuse an announced oversized body before reading any of it. */
        cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        api_route_match(req);
        if (cl != NULL && strtoull(cl, NULL, 10) > API_BODY_MAX && !api_route_streams_body(req))
                req->too_large = true;
        if (s->stopping)
                req->closing = true;
        return MHD_YES;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
        struct api_server *s = cls;
        struct api_request *req = *con_cls;

        (void)version;
        if (req == NULL)
                return first_call(s, conn, url, method, con_cls);
        if (req->answered)
                return MHD_YES;
        if (*upload_data_size > 0) {
                /* A refused query: the body is read and dropped. */
                if (req->bad_query != NULL) {
                        *upload_data_size = 0;
                        return MHD_YES;
                }
                if (!api_route_body_chunk(req, upload_data, *upload_data_size))
                        append_body(req, upload_data, *upload_data_size);
                *upload_data_size = 0;
                return MHD_YES;
        }
        if (req->resume_cb != NULL) {
                int (*cb)(struct api_request *) = req->resume_cb;

                req->resume_cb = NULL;
                return cb(req) < 0 ? MHD_NO : MHD_YES;
        }
        if (req->bad_query != NULL)
                return api_respond_error(req, 400, "%s", req->bad_query) < 0 ? MHD_NO : MHD_YES;
        if (req->too_large)
                return api_respond_error(req, 413,
                                         "request body is larger than the %d bytes allowed",
                                         API_BODY_MAX) < 0
                           ? MHD_NO
                           : MHD_YES;
        return api_route_dispatch(req) < 0 ? MHD_NO : MHD_YES;
}

/* Refuse to steal the socket of a live daemon; remove a stale one. */
static int prepare_socket_path(const char *path, struct ve_error *err)
{
        struct sockaddr_un addr = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : ve_error_errno(err, errno, "stat %s", path);
        if (!S_ISSOCK(st.st_mode))
                return ve_error_set(err, EEXIST, "%s exists and is not a socket", path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        strncpy(addr.sun_path, path, sizeof(addr.sun_path) - 1);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
                return ve_error_set(err, EADDRINUSE,
                                    "another ved is already serving %s (use --socket and "
                                    "--instance to run a second one)",
                                    path);
        if (unlink(path) < 0 && errno != ENOENT)
                return ve_error_errno(err, errno, "remove stale socket %s", path);
        return 0;
}

static int mkdir_parents(const char *path)
{
        _cleanup_free_ char *dir = strdup(path);
        char *slash;

        if (dir == NULL)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (slash == NULL || slash == dir)
                return 0;
        *slash = '\0';
        for (char *p = dir + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *p = '/';
        }
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

static int listen_unix(const char *path, struct ve_error *err)
{
        struct sockaddr_un addr = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;
        mode_t old;
        int ret;

        if (strlen(path) >= sizeof(addr.sun_path))
                return ve_error_set(err, ENAMETOOLONG, "socket path %s is too long", path);
        ret = mkdir_parents(path);
        if (ret < 0)
                return ve_error_errno(err, -ret, "create the directory of %s", path);
        ret = prepare_socket_path(path, err);
        if (ret < 0)
                return ret;
        strcpy(addr.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return ve_error_errno(err, errno, "create socket");
        /* The API is root's: the socket is born 0600, never briefly wider. */
        old = umask(0177);
        ret = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
        umask(old);
        if (ret < 0)
                return ve_error_errno(err, errno, "bind %s", path);
        if (chmod(path, 0600) < 0 || listen(fd, 128) < 0)
                return ve_error_errno(err, errno, "listen on %s", path);
        return steal_fd(&fd);
}

static void mhd_log_cb(void *cls, const char *fmt, va_list ap)
{
        char msg[1024];

        (void)cls;
        vsnprintf(msg, sizeof(msg), fmt, ap);
        msg[strcspn(msg, "\n")] = '\0';
        log_debug("HTTP: %s", msg);
}

/* Percent-decoding of the path and the query, as libmicrohttpd's own, except that
 * a string holding %00 or an encoded '/' is left as it is: decoded, the first
 * would cut the path short ("/v1/ves/101%00x" read as VE 101) and the second
 * would add parts to it ("/v1/ves/101%2Fstate" read as the state). */
static size_t unescape_cb(void *cls, struct MHD_Connection *c, char *s)
{
        (void)cls;
        (void)c;
        if (strstr(s, "%00") != NULL || strcasestr(s, "%2f") != NULL)
                return strlen(s);
        return MHD_http_unescape(s);
}

int api_server_start(struct ved *v, const char *socket_path, struct api_server **out,
                     struct ve_error *err)
{
        const union MHD_DaemonInfo *info;
        struct api_server *s;
        int fd, ret;

        fd = listen_unix(socket_path, err);
        if (fd < 0)
                return fd;
        s = calloc(1, sizeof(*s));
        s->v = v;
        s->listen_fd = fd;
        s->socket_path = strdup(socket_path);
        list_init(&s->suspended);
        list_init(&s->upgrades);
        s->mhd = MHD_start_daemon(
            MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG, 0,
            NULL, NULL, access_cb, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log_cb, NULL,
            MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_NOTIFY_COMPLETED, completed_cb, s,
            MHD_OPTION_CONNECTION_LIMIT, (unsigned)512, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)0,
            MHD_OPTION_UNESCAPE_CALLBACK, unescape_cb, NULL, MHD_OPTION_END);
        if (s->mhd == NULL) {
                close(fd);
                unlink(socket_path);
                free(s->socket_path);
                free(s);
                return ve_error_set(err, EIO, "start the HTTP server on %s", socket_path);
        }
        info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
        uv_timer_init(v->loop, &s->timer);
        ret = uv_poll_init(v->loop, &s->poll, info->epoll_fd);
        if (ret == 0)
                ret = uv_poll_start(&s->poll, UV_READABLE, poll_cb);
        s->handles_open = 2;
        if (ret < 0) {
                api_server_stop(s, NULL);
                return ve_error_set(err, -ret, "watch the HTTP server: %s", uv_strerror(ret));
        }
        run_mhd(s);
        *out = s;
        return 0;
}

static void handle_closed_cb(uv_handle_t *h)
{
        struct api_server *s = h->data;

        if (--s->handles_open > 0)
                return;
        if (s->done_cb)
                s->done_cb(s->v);
        free(s->socket_path);
        free(s);
}

void api_server_stop(struct api_server *s, void (*done_cb)(struct ved *v))
{
        struct list_head *pos, *tmp;

        s->stopping = true;
        s->done_cb = done_cb;
        /* MHD must not be stopped with suspended connections: wake each one, and
         * let it answer (streams end) in a last run. */
        list_for_each_safe(pos, tmp, &s->suspended)
        {
                struct api_request *req = container_of(pos, struct api_request, link);

                req->closing = true;
                api_request_resume(req);
        }
        /* Event streams end when they see the server stopping. */
        list_for_each_safe(pos, tmp, &s->v->event_subs)
        {
                struct ved_event_sub *sub = container_of(pos, struct ved_event_sub, link);

                sub->notify_cb(sub);
        }
        list_for_each_safe(pos, tmp, &s->upgrades)
        {
                struct api_upgrade *u = container_of(pos, struct api_upgrade, link);

                list_del(&u->link);
                u->close_cb(u);
        }
        for (int i = 0; i < 3; i++)
                MHD_run(s->mhd);
        MHD_stop_daemon(s->mhd);
        s->mhd = NULL;
        close(s->listen_fd);
        unlink(s->socket_path);
        s->poll.data = s;
        s->timer.data = s;
        uv_close((uv_handle_t *)&s->poll, handle_closed_cb);
        uv_close((uv_handle_t *)&s->timer, handle_closed_cb);
}
