/* POST /v1/ves/{ve}/exec: a command in a running VE.
 *
 * Plain mode answers once the command ends, with its output as JSON (panels,
 * curl). With `Upgrade: ved-exec/1` the connection becomes a framed byte stream
 * both ways (vectl exec, vectl enter): frame = type byte, 4-byte big-endian length,
 * payload; see api/openapi.yaml.
 *
 * POST /v1/ves/{ve}/console attaches to the VE's console through the same
 * stream (vectl console); GET /v1/ves/{ve}/console is its log. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "body.h"
#include "errors.h"
#include "daemon/exec.h"
#include "daemon/ved.h"
#include "router.h"

#define OUTPUT_MAX   (1024 * 1024)
#define STDIN_MAX    (1024 * 1024)
#define FRAME_MAX    (1024 * 1024)
#define EXEC_UPGRADE "ved-exec/1"

struct exec_call {
        struct api_request *req; /* plain mode, until answered */
        struct ved_exec *x;
        json_t *stdin_text;
        uv_timer_t timer;
        bool timer_open;
        char *out[2];
        size_t len[2];
        bool truncated;
        int code;
        bool done;
        struct ve_error start_err; /* why the command did not start */
        /* upgrade mode */
        struct api_upgrade upgrade;
        struct MHD_UpgradeResponseHandle *urh;
        struct api_server *server; /* for api_server_kick() */
        uv_pipe_t sock;
        bool sock_open;
        char *in;
        size_t in_len;
        bool out_paused; /* flow control: see VED_EXEC_QUEUE_HIGH */
        bool in_paused;  /* the client's input is not read: the command's stdin is full */
        /* While in_paused, a client that leaves is seen on a dup of the socket
         * (one libuv handle per fd): its command is then killed, not left to run
         * until it ends on its own. */
        uv_poll_t hup;
        int hup_fd;
        bool hup_open;
        bool closing;
        int handles;
};

/* "rows" and "cols" of a terminal, each 0 to 10000 (0 when absent). */
static int parse_size(json_t *body, unsigned short *rows, unsigned short *cols,
                      struct ve_error *err)
{
        for (int k = 0; k < 2; k++) {
                const char *key = k ? "cols" : "rows";
                json_t *n = json_object_get(body, key);

                if (n != NULL && (!json_is_integer(n) || json_integer_value(n) < 0 ||
                                  json_integer_value(n) > 10000))
                        return ve_error_set(err, VE_EINVAL_INPUT, "%s must be 0 to 10000", key);
                *(k ? cols : rows) = (unsigned short)json_integer_value(n);
        }
        return 0;
}

static int parse_request(json_t *body, struct ved_exec_request *rq, bool upgrade,
                         struct ve_error *err)
{
        static const char *const allowed[] = { "command", "tty",   "rows",    "cols",
                                               "term",    "stdin", "timeout", NULL };
        json_t *cmd = json_object_get(body, "command"), *a, *v;
        size_t i;

        if (api_check_fields(body, allowed, err) < 0)
                return -err->code;
        v = json_object_get(body, "tty");
        if (v != NULL && !json_is_boolean(v))
                return ve_error_set(err, VE_EINVAL_INPUT, "tty must be true or false");
        rq->tty = json_is_true(v);
        if (rq->tty && !upgrade)
                return ve_error_set(err, VE_EINVAL_INPUT,
                                    "tty needs the streaming mode (Upgrade: " EXEC_UPGRADE ")");
        /* A login shell, bash where the VE has it (as vzctl enter). */
        if (cmd == NULL && rq->tty)
                cmd = json_pack("[s, s, s]", "/bin/sh", "-c",
                                "[ -x /bin/bash ] && exec /bin/bash -l; exec /bin/sh -l");
        else
                json_incref(cmd);
        if (!json_is_array(cmd) || json_array_size(cmd) == 0 || json_array_size(cmd) > 4096) {
                json_decref(cmd);
                return ve_error_set(err, VE_EINVAL_INPUT,
                                    "command must be a non-empty array of strings");
        }
        json_array_foreach(cmd, i, a)
        {
                if (!json_is_string(a) || strlen(json_string_value(a)) != json_string_length(a)) {
                        json_decref(cmd);
                        return ve_error_set(err, VE_EINVAL_INPUT,
                                            "command must be an array of strings without NUL "
                                            "bytes");
                }
        }
        rq->command = cmd;
        if (parse_size(body, &rq->rows, &rq->cols, err) < 0)
                return -err->code;
        v = json_object_get(body, "term");
        if (v != NULL &&
            (!json_is_string(v) || json_string_length(v) > 63 ||
             strspn(json_string_value(v), "abcdefghijklmnopqrstuvwxyz0123456789-_.+") !=
                 json_string_length(v)))
                return ve_error_set(err, VE_EINVAL_INPUT,
                                    "term must be a terminal name such as xterm");
        rq->term = json_string_value(v);
        return 0;
}

static void call_free(struct exec_call *c)
{
        ve_error_clear(&c->start_err);
        json_decref(c->stdin_text);
        free(c->out[0]);
        free(c->out[1]);
        free(c->in);
        free(c);
}

static void call_handle_closed_cb(uv_handle_t *h)
{
        struct exec_call *c = h->data;

        if (--c->handles == 0)
                call_free(c);
}

static void hup_closed_cb(uv_handle_t *h)
{
        struct exec_call *c = h->data;

        close(c->hup_fd);
        call_handle_closed_cb(h);
}

/* --- plain mode ------------------------------------------------------------- */

static int plain_answer(struct api_request *req)
{
        struct exec_call *c = req->data;
        json_t *body;

        if (req->closing && !c->done)
                return api_respond_error(req, 503, "ved is shutting down");
        /* A command that could not be run answers as a shell would (127 or 126,
         * the reason on stderr); anything else that kept it from starting is an
         * error of the request or of ved. */
        if (c->start_err.code != 0 && api_exit_code_for(c->start_err.code) < 0)
                return api_respond_ve_error(req, &c->start_err);
        body = json_pack("{s:i, s:s#, s:s#, s:b}", "exit_code", c->code, "stdout",
                         c->out[0] ? c->out[0] : "", c->len[0], "stderr",
                         c->out[1] ? c->out[1] : "", c->len[1], "truncated", c->truncated);
        if (body == NULL) /* output that is not UTF-8 */
                body = json_pack("{s:i, s:s, s:s, s:b}", "exit_code", c->code, "stdout",
                                 "(binary output)", "stderr", "", "truncated", 1);
        return api_respond_json(req, 200, body);
}

static void plain_release(void *data)
{
        struct exec_call *c = data;

        c->req = NULL;
        if (c->x != NULL)
                ved_exec_release(c->x);
        c->x = NULL;
        if (c->timer_open) {
                c->timer_open = false;
                uv_close((uv_handle_t *)&c->timer, call_handle_closed_cb);
        }
        if (--c->handles == 0)
                call_free(c);
}

/* Why the command did not start, taken from err (which lives in the exec). */
static void take_start_err(struct exec_call *c, struct ve_error *err)
{
        ve_error_move(&c->start_err, err);
        if (c->start_err.code == 0 || c->start_err.message == NULL)
                ve_error_set(&c->start_err, c->start_err.code ? c->start_err.code : EIO, "%s",
                             c->start_err.message ? c->start_err.message : "exec failed");
}

static void plain_started(struct ved_exec *x, int ret, struct ve_error *err)
{
        struct exec_call *c = ved_exec_data(x);

        if (ret < 0) {
                take_start_err(c, err);
                c->code = api_exit_code_for(c->start_err.code);
                c->len[1] = strlen(c->start_err.message);
                c->out[1] = strdup(c->start_err.message);
                c->done = true;
                api_request_resume(c->req);
                return;
        }
        ved_exec_begin_output(x);
        if (c->stdin_text != NULL)
                ved_exec_stdin(x, json_string_value(c->stdin_text),
                               json_string_length(c->stdin_text));
        ved_exec_stdin(x, "", 0);
}

static void plain_output(struct ved_exec *x, char stream, const char *buf, size_t len)
{
        struct exec_call *c = ved_exec_data(x);
        int i = stream == 'e';

        if (c->len[i] + len > OUTPUT_MAX) {
                c->truncated = true;
                len = OUTPUT_MAX - c->len[i];
        }
        c->out[i] = realloc(c->out[i], c->len[i] + len + 1);
        memcpy(c->out[i] + c->len[i], buf, len);
        c->len[i] += len;
}

static void plain_exited(struct ved_exec *x, int code)
{
        struct exec_call *c = ved_exec_data(x);

        c->code = code;
        c->done = true;
        if (c->req != NULL)
                api_request_resume(c->req);
}

static void plain_timeout_cb(uv_timer_t *t)
{
        struct exec_call *c = t->data;

        if (c->x != NULL)
                ved_exec_cut(c->x);
}

static const struct ved_exec_ops plain_ops = { plain_started, plain_output, plain_exited, NULL };

static int plain_mode(struct api_request *req, uint32_t ctid, struct ved_exec_request *rq,
                      json_t *body, struct ve_error *err)
{
        json_t *in = json_object_get(body, "stdin"), *to = json_object_get(body, "timeout");
        struct exec_call *c;

        if (in != NULL && (!json_is_string(in) || json_string_length(in) > STDIN_MAX))
                return ve_error_set(err, VE_EINVAL_INPUT, "stdin must be text of at most %d bytes",
                                    STDIN_MAX);
        if (to != NULL &&
            (!json_is_integer(to) || json_integer_value(to) < 1 || json_integer_value(to) > 86400))
                return ve_error_set(err, VE_EINVAL_INPUT, "timeout must be 1 to 86400 seconds");
        c = calloc(1, sizeof(*c));
        c->req = req;
        c->stdin_text = json_incref(in);
        c->handles = 1;
        if (ved_exec_start(req->v, ctid, rq, &plain_ops, c, &c->x, err) < 0) {
                call_free(c);
                return -err->code;
        }
        uv_timer_init(req->v->loop, &c->timer);
        c->timer.data = c;
        c->timer_open = true;
        c->handles++;
        uv_timer_start(&c->timer, plain_timeout_cb,
                       (uint64_t)(to ? json_integer_value(to) : 60) * 1000, 0);
        req->data = c;
        req->free_data = plain_release;
        api_request_suspend(req, plain_answer);
        return 0;
}

/* --- upgrade mode ----------------------------------------------------------- */

static void sock_write(struct exec_call *c, char type, const char *buf, size_t len);

static void stream_close(struct exec_call *c)
{
        if (c->closing)
                return;
        c->closing = true;
        api_server_del_upgrade(&c->upgrade);
        if (c->x != NULL)
                ved_exec_release(c->x);
        c->x = NULL;
        if (c->sock_open) {
                c->sock_open = false;
                uv_close((uv_handle_t *)&c->sock, call_handle_closed_cb);
        }
        if (c->hup_open) {
                c->hup_open = false;
                uv_close((uv_handle_t *)&c->hup, hup_closed_cb);
        }
        /* MHD closes its socket when it next runs: run it now, or the client
         * would wait for an end of stream until some other request came. */
        if (c->urh != NULL) {
                MHD_upgrade_action(c->urh, MHD_UPGRADE_ACTION_CLOSE);
                api_server_kick(c->server);
        }
        c->urh = NULL;
        if (--c->handles == 0)
                call_free(c);
}

static void sock_write_cb(uv_write_t *w, int status)
{
        struct exec_call *c = w->handle->data;
        bool last = ((char *)w->data)[0] == 'x';

        free(w->data);
        free(w);
        if (status < 0 || last) {
                stream_close(c);
                return;
        }
        if (c->out_paused && c->x != NULL &&
            uv_stream_get_write_queue_size((uv_stream_t *)&c->sock) < VED_EXEC_QUEUE_LOW) {
                c->out_paused = false;
                ved_exec_pause_output(c->x, false);
        }
}

static void sock_write(struct exec_call *c, char type, const char *buf, size_t len)
{
        uv_write_t *w;
        uint32_t be = htonl((uint32_t)len);
        char *frame;
        uv_buf_t b;

        if (!c->sock_open || c->closing)
                return;
        frame = malloc(len + 5);
        frame[0] = type;
        memcpy(frame + 1, &be, 4);
        memcpy(frame + 5, buf, len);
        w = malloc(sizeof(*w));
        w->data = frame;
        b = uv_buf_init(frame, (unsigned)(len + 5));
        if (uv_write(w, (uv_stream_t *)&c->sock, &b, 1, sock_write_cb) < 0) {
                free(frame);
                free(w);
                stream_close(c);
        }
}

static void handle_frame(struct exec_call *c, char type, const unsigned char *p, uint32_t len)
{
        if (c->x == NULL)
                return;
        switch (type) {
        case 'i':
                ved_exec_stdin(c->x, (const char *)p, len);
                break;
        case 'r':
                if (len == 4)
                        ved_exec_resize(c->x, (unsigned short)(p[0] << 8 | p[1]),
                                        (unsigned short)(p[2] << 8 | p[3]));
                break;
        case 'k':
                if (len == 1 && p[0] > 0 && p[0] < 65)
                        ved_exec_signal(c->x, p[0]);
                break;
        default:
                break; /* unknown frames are ignored, for newer clients */
        }
}

/* Parse whole frames from the input buffer; a bad one closes the stream. */
static void consume(struct exec_call *c, const char *data, size_t len)
{
        size_t off = 0;
        /* One byte more: realloc to 0 bytes may free and answer NULL. */
        char *in = realloc(c->in, c->in_len + len + 1);

        if (in == NULL) {
                stream_close(c);
                return;
        }
        c->in = in;
        memcpy(c->in + c->in_len, data, len);
        c->in_len += len;
        while (c->in_len - off >= 5) {
                uint32_t flen;

                memcpy(&flen, c->in + off + 1, 4);
                flen = ntohl(flen);
                if (flen > FRAME_MAX) {
                        stream_close(c);
                        return;
                }
                if (c->in_len - off - 5 < flen)
                        break;
                handle_frame(c, c->in[off], (const unsigned char *)c->in + off + 5, flen);
                if (c->closing)
                        return;
                off += 5 + flen;
        }
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
}

/* The client shut its end (closed, or shut its writing half: either ends the
 * session, as an end of file read from it does). */
static void hup_cb(uv_poll_t *h, int status, int events)
{
        struct exec_call *c = h->data;

        if (status < 0 || (events & UV_DISCONNECT))
                stream_close(c);
}

static void sock_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
        (void)h;
        buf->base = malloc(suggested);
        buf->len = buf->base ? suggested : 0;
}

static void sock_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
        struct exec_call *c = s->data;

        if (n > 0)
                consume(c, buf->base, (size_t)n);
        free(buf->base);
        if (n < 0) {
                stream_close(c); /* the client went away: the command is killed */
                return;
        }
        if (!c->closing && c->x != NULL && ved_exec_stdin_full(c->x)) {
                c->in_paused = true;
                uv_read_stop(s);
                if (c->hup_open)
                        uv_poll_start(&c->hup, UV_DISCONNECT, hup_cb);
        }
}

static void upgrade_close_cb(struct api_upgrade *u)
{
        stream_close(container_of(u, struct exec_call, upgrade));
}

static void upgraded_cb(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra_in,
                        size_t extra_in_size, MHD_socket sock,
                        struct MHD_UpgradeResponseHandle *urh)
{
        struct exec_call *c = cls;
        struct ved *v = ((struct api_request *)con_cls)->v;
        int fd = dup(sock);

        (void)conn;
        c->urh = urh;
        c->server = ((struct api_request *)con_cls)->server;
        c->req = NULL;
        c->upgrade.close_cb = upgrade_close_cb;
        api_server_add_upgrade(((struct api_request *)con_cls)->server, &c->upgrade);
        if (fd < 0 || uv_pipe_init(v->loop, &c->sock, 0) < 0) {
                if (fd >= 0)
                        close(fd);
                stream_close(c);
                return;
        }
        c->sock.data = c;
        c->handles++;
        c->sock_open = true;
        if (uv_pipe_open(&c->sock, fd) < 0) {
                close(fd);
                stream_close(c);
                return;
        }
        c->hup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (c->hup_fd >= 0 && uv_poll_init(v->loop, &c->hup, c->hup_fd) == 0) {
                c->hup.data = c;
                c->handles++;
                c->hup_open = true;
        } else if (c->hup_fd >= 0) {
                close(c->hup_fd);
        }
        uv_read_start((uv_stream_t *)&c->sock, sock_alloc_cb, sock_read_cb);
        if (extra_in_size > 0)
                consume(c, extra_in, extra_in_size);
        if (c->x != NULL)
                ved_exec_begin_output(c->x);
}

static int upgrade_answer(struct api_request *req)
{
        struct exec_call *c = req->data;
        struct MHD_Response *resp;

        req->data = NULL;
        req->free_data = NULL;
        if (c->x == NULL || req->closing) {
                int ret = c->x ? api_respond_error(req, 503, "ved is shutting down")
                               : api_respond_ve_error(req, &c->start_err);

                if (c->x)
                        ved_exec_release(c->x);
                call_free(c);
                return ret;
        }
        resp = MHD_create_response_for_upgrade(upgraded_cb, c);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, EXEC_UPGRADE);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "Upgrade");
        return api_respond_raw(req, resp, MHD_HTTP_SWITCHING_PROTOCOLS);
}

static void upgrade_started(struct ved_exec *x, int ret, struct ve_error *err)
{
        struct exec_call *c = ved_exec_data(x);

        if (ret < 0) {
                take_start_err(c, err); /* before releasing x frees it */
                ved_exec_release(x);
                c->x = NULL;
        }
        api_request_resume(c->req);
}

static void upgrade_output(struct ved_exec *x, char stream, const char *buf, size_t len)
{
        struct exec_call *c = ved_exec_data(x);

        sock_write(c, stream, buf, len);
        if (!c->out_paused && c->sock_open && !c->closing &&
            uv_stream_get_write_queue_size((uv_stream_t *)&c->sock) > VED_EXEC_QUEUE_HIGH) {
                c->out_paused = true;
                ved_exec_pause_output(x, true);
        }
}

static void upgrade_exited(struct ved_exec *x, int code)
{
        struct exec_call *c = ved_exec_data(x);
        uint32_t be = htonl((uint32_t)code);

        sock_write(c, 'x', (const char *)&be, 4);
}

static void upgrade_stdin_drained(struct ved_exec *x)
{
        struct exec_call *c = ved_exec_data(x);

        if (!c->in_paused || !c->sock_open || c->closing)
                return;
        c->in_paused = false;
        if (c->hup_open)
                uv_poll_stop(&c->hup);
        uv_read_start((uv_stream_t *)&c->sock, sock_alloc_cb, sock_read_cb);
}

static const struct ved_exec_ops upgrade_ops = { upgrade_started, upgrade_output, upgrade_exited,
                                                 upgrade_stdin_drained };

static int upgrade_mode(struct api_request *req, uint32_t ctid, struct ved_exec_request *rq,
                        struct ve_error *err)
{
        struct exec_call *c = calloc(1, sizeof(*c));

        c->req = req;
        c->handles = 1;
        list_init(&c->upgrade.link);
        if (ved_exec_start(req->v, ctid, rq, &upgrade_ops, c, &c->x, err) < 0) {
                call_free(c);
                return -err->code;
        }
        req->data = c;
        api_request_suspend(req, upgrade_answer);
        return 0;
}

static bool wants_upgrade(struct api_request *req)
{
        const char *up = api_header(req, "Upgrade");

        return up != NULL && strcasecmp(up, EXEC_UPGRADE) == 0;
}

int route_ve_exec(struct api_request *req)
{
        struct ved_exec_request rq = { 0 };
        struct ve_error err = { 0 };
        json_t *body = NULL, *ve = NULL;
        uint32_t ctid;
        int ret;

        if (api_body_object(req, &body) < 0)
                return 0;
        if (ved_store_ve_get(&req->v->store, req->params[0], &ve, &err) < 0 ||
            parse_request(body, &rq, wants_upgrade(req), &err) < 0)
                goto fail;
        ctid = (uint32_t)json_integer_value(json_object_get(ve, "ctid"));
        ret = wants_upgrade(req) ? upgrade_mode(req, ctid, &rq, &err)
                                 : plain_mode(req, ctid, &rq, body, &err);
        if (ret < 0)
                goto fail;
        json_decref(rq.command);
        json_decref(body);
        json_decref(ve);
        return 0;
fail:
        json_decref(rq.command);
        json_decref(body);
        json_decref(ve);
        ret = api_respond_ve_error(req, &err);
        ve_error_clear(&err);
        return ret;
}

/* --- console ---------------------------------------------------------------- */

int route_ve_console(struct api_request *req)
{
        static const char *const allowed[] = { "rows", "cols", NULL };
        struct ve_error err = { 0 };
        json_t *body = NULL, *ve = NULL;
        struct exec_call *c = NULL;
        unsigned short rows = 0, cols = 0;
        uint32_t ctid;
        int ret;

        if (!wants_upgrade(req))
                return api_respond_error(req, 400,
                                         "the console is a stream: ask for it with "
                                         "Upgrade: " EXEC_UPGRADE);
        if (req->body_len > 0 && api_body_object(req, &body) < 0)
                return 0;
        if (body != NULL &&
            (api_check_fields(body, allowed, &err) < 0 || parse_size(body, &rows, &cols, &err) < 0))
                goto fail;
        if (ved_store_ve_get(&req->v->store, req->params[0], &ve, &err) < 0)
                goto fail;
        ctid = (uint32_t)json_integer_value(json_object_get(ve, "ctid"));
        c = calloc(1, sizeof(*c));
        if (c == NULL) {
                ve_error_set(&err, ENOMEM, "out of memory");
                goto fail;
        }
        c->handles = 1;
        list_init(&c->upgrade.link);
        if (ved_exec_attach_console(req->v, ctid, &upgrade_ops, c, &c->x, &err) < 0)
                goto fail;
        if (rows > 0 && cols > 0)
                ved_exec_resize(c->x, rows, cols);
        json_decref(body);
        json_decref(ve);
        req->data = c;
        return upgrade_answer(req);
fail:
        if (c != NULL)
                call_free(c);
        json_decref(body);
        json_decref(ve);
        ret = api_respond_ve_error(req, &err);
        ve_error_clear(&err);
        return ret;
}

/* A console log in two files, console.log.1 then console.log: a part of each. */
struct log_parts {
        int fd[2];
        off_t from[2], len[2];
};

static ssize_t log_parts_read(void *cls, uint64_t pos, char *buf, size_t max)
{
        struct log_parts *p = cls;
        int i = (off_t)pos < p->len[0] ? 0 : 1;
        off_t at = i ? (off_t)pos - p->len[0] : (off_t)pos;
        ssize_t n;

        if (at >= p->len[i])
                return MHD_CONTENT_READER_END_OF_STREAM;
        if ((off_t)max > p->len[i] - at)
                max = (size_t)(p->len[i] - at);
        n = pread(p->fd[i], buf, max, p->from[i] + at);
        /* A file cut short meanwhile (a rotation): the answer ends there. */
        return n > 0 ? n : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void log_parts_free(void *cls)
{
        struct log_parts *p = cls;

        close(p->fd[0]);
        close(p->fd[1]);
        free(p);
}

/* The older part too: console.log.1's last `want` bytes (all of it for -1). */
static struct MHD_Response *log_with_previous(const char *path, int fd, off_t size, long long want)
{
        char old[PATH_MAX + 8];
        struct log_parts *p;
        struct MHD_Response *resp;
        off_t osize;
        int ofd;

        snprintf(old, sizeof(old), "%s.1", path);
        ofd = open(old, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (ofd < 0)
                return NULL;
        osize = lseek(ofd, 0, SEEK_END);
        p = calloc(1, sizeof(*p));
        if (osize <= 0 || p == NULL) {
                free(p);
                close(ofd);
                return NULL;
        }
        *p = (struct log_parts){ { ofd, fd }, { 0, 0 }, { osize, size } };
        if (want >= 0 && want - size < osize) {
                p->from[0] = osize - (want - size);
                p->len[0] = want - size;
        }
        resp = MHD_create_response_from_callback((uint64_t)(p->len[0] + p->len[1]), 64 * 1024,
                                                 log_parts_read, p, log_parts_free);
        if (resp == NULL) {
                free(p);
                close(ofd);
        }
        return resp;
}

/* The last bytes of the console log: all of it (at most about 2 MiB, console.log.1
 * then console.log), or ?tail=N. MHD sends them from the files themselves. */
int route_ve_console_log(struct api_request *req)
{
        const char *tail = api_query(req, "tail");
        struct ve_error err = { 0 };
        struct MHD_Response *resp = NULL;
        char path[PATH_MAX], *end = NULL;
        long long want = -1;
        json_t *ve = NULL;
        off_t size = 0, from;
        int fd, ret;

        if (tail != NULL) {
                errno = 0;
                want = strtoll(tail, &end, 10);
                if (*tail == '\0' || *end != '\0' || errno != 0 || want < 0)
                        return api_respond_error(req, 400,
                                                 "tail must be a number of bytes, 0 or more");
        }
        if (ved_store_ve_get(&req->v->store, req->params[0], &ve, &err) < 0) {
                ret = api_respond_ve_error(req, &err);
                ve_error_clear(&err);
                return ret;
        }
        ved_ve_dir(req->v, (uint32_t)json_integer_value(json_object_get(ve, "ctid")), path,
                   sizeof(path) - 16);
        json_decref(ve);
        strcat(path, "/console.log");
        /* None yet (the VE never ran): an empty log. */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 && errno == ENOENT)
                fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd >= 0)
                size = lseek(fd, 0, SEEK_END);
        if (fd < 0 || size < 0) {
                if (fd >= 0)
                        close(fd);
                return api_respond_error(req, 500, "cannot read %s", path);
        }
        from = want >= 0 && want < size ? size - want : 0;
        if (want < 0 || want > size)
                resp = log_with_previous(path, fd, size, want);
        if (resp == NULL)
                resp = MHD_create_response_from_fd_at_offset64((uint64_t)(size - from), fd,
                                                               (uint64_t)from);
        if (resp == NULL) {
                close(fd);
                return api_respond_error(req, 500, "out of memory");
        }
        MHD_add_response_header(resp, "Content-Type", "text/plain");
        return api_respond_raw(req, resp, 200);
}
