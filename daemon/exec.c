#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "runtime.h"
#include "ve/cleanup.h"

struct ved_exec {
        struct ved *v;
        uint32_t ctid;
        const struct ved_exec_ops *ops;
        void *data;
        char **argv;
        char term[64];
        bool tty;
        unsigned short rows, cols;
        int init_pidfd; /* dup of the VE init's pidfd, for the worker */
        int cgroup_fd;
        struct quota_cgroup_target target;
        struct ve_idmap idmap;
        struct ve_exec_proc proc;
        struct ve_error err;
        int spawn_ret;
        uv_work_t work;
        uv_pipe_t out, errp, in;
        uv_poll_t pid_poll;
        bool out_open, err_open, in_open, pid_watched;
        bool in_eof; /* stdin is being shut down */
        uv_timer_t drain; /* tty: how long to wait for the pty's last output */
        bool drain_open, drain_expired;
        uint64_t drain_start;
        size_t dbg_total;
        int open_readers;
        bool exited, released, reported;
        int code;
        int handles;
};

/* After a tty command's exit, its output is awaited until the pty has been quiet
 * this long, or this long in all. */
#define DRAIN_QUIET_MS 100
#define DRAIN_MAX_MS   2000

static void maybe_finish(struct ved_exec *x);
static void drain_wait(struct ved_exec *x);

void *ved_exec_data(struct ved_exec *x)
{
        return x->data;
}

static void free_exec(struct ved_exec *x)
{
        for (char **a = x->argv; a && *a; a++)
                free(*a);
        free(x->argv);
        if (x->init_pidfd >= 0)
                close(x->init_pidfd);
        if (x->cgroup_fd >= 0)
                close(x->cgroup_fd);
        ve_exec_proc_close(&x->proc);
        ve_error_clear(&x->err);
        free(x);
}

static void handle_closed_cb(uv_handle_t *h)
{
        struct ved_exec *x = h->data;

        if (--x->handles == 0 && x->released)
                free_exec(x);
}

static void close_handle(struct ved_exec *x, uv_handle_t *h, bool *open)
{
        if (!*open)
                return;
        *open = false;
        h->data = x;
        uv_close(h, handle_closed_cb);
}

static void spawn_work_cb(uv_work_t *req)
{
        struct ved_exec *x = container_of(req, struct ved_exec, work);
        struct ve_exec_config cfg = {
                .init_pidfd = x->init_pidfd,
                .cgroup = { .fd = x->cgroup_fd },
                .argv = x->argv,
                .term = x->term[0] ? x->term : NULL,
                .pty = x->tty,
                .rows = x->rows,
                .cols = x->cols,
                .idmap = x->idmap,
        };

        if (x->cgroup_fd < 0) {
                cfg.cgroup.attach_cb = quota_cgroup_attach_cb;
                cfg.cgroup.data = &x->target;
        }
        x->spawn_ret = ve_exec_spawn(&cfg, &x->proc, &x->err);
}

static void pid_cb(uv_poll_t *h, int status, int events)
{
        struct ved_exec *x = h->data;
        int ws = 0;

        (void)status;
        (void)events;
        if (ve_proc_wait(x->proc.pidfd, 1, &ws, NULL) == 0)
                return; /* not yet: spurious wake-up */
        uv_poll_stop(h);
        x->exited = true;
        x->code = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
        maybe_finish(x);
}

static int open_pipe(struct ved_exec *x, uv_pipe_t *p, int *fd, bool *open)
{
        int ret;

        if (*fd < 0)
                return 0;
        uv_pipe_init(x->v->loop, p, 0);
        p->data = x;
        x->handles++;
        *open = true;
        ret = uv_pipe_open(p, *fd);
        if (ret == 0)
                *fd = -EBADF; /* the pipe handle owns it now */
        return ret;
}

static void spawn_after_cb(uv_work_t *req, int status)
{
        struct ved_exec *x = container_of(req, struct ved_exec, work);
        int ret = x->spawn_ret;

        (void)status;
        x->handles--;
        if (x->released) {
                if (ret == 0)
                        kill(x->proc.pid, SIGKILL), ve_proc_wait(x->proc.pidfd, 0, NULL, NULL);
                if (x->handles == 0)
                        free_exec(x);
                return;
        }
        if (ret == 0) {
                int *out_fd = x->tty ? &x->proc.pty_fd : &x->proc.stdout_fd;

                ret = open_pipe(x, &x->out, out_fd, &x->out_open);
                if (ret == 0 && !x->tty)
                        ret = open_pipe(x, &x->errp, &x->proc.stderr_fd, &x->err_open);
                if (ret == 0)
                        ret = open_pipe(x, &x->in, x->tty ? &x->proc.pty_fd : &x->proc.stdin_fd,
                                        &x->in_open);
                if (ret == 0 && x->tty) {
                        /* One pty fd serves both directions: the input side writes to a dup. */
                }
                if (ret == 0)
                        ret = uv_poll_init(x->v->loop, &x->pid_poll, x->proc.pidfd);
                if (ret == 0) {
                        x->pid_poll.data = x;
                        x->pid_watched = true;
                        x->handles++;
                        uv_poll_start(&x->pid_poll, UV_READABLE, pid_cb);
                }
                if (ret < 0)
                        ve_error_set(&x->err, -ret, "watch the command: %s", uv_strerror(ret));
        }
        x->ops->started(x, ret, &x->err);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
        (void)h;
        buf->base = malloc(suggested);
        buf->len = buf->base ? suggested : 0;
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
        struct ved_exec *x = s->data;
        char stream = s == (uv_stream_t *)&x->errp ? 'e' : 'o';

        if (n > 0 && !x->released)
                x->ops->output(x, stream, buf->base, (size_t)n);
        free(buf->base);
        if (n > 0 && x->exited && x->tty && !x->reported)
                drain_wait(x); /* more came: wait for the rest */
        if (n > 0) x->dbg_total += (size_t)n;
        if (n < 0) {
                log_warn("DBG read end %s total %zu exited %d", uv_strerror((int)n), x->dbg_total, x->exited);
                /* EOF, or EIO from a pty whose last writer is gone. */
                uv_read_stop(s);
                x->open_readers--;
                maybe_finish(x);
        }
}

static void drain_cb(uv_timer_t *t)
{
        struct ved_exec *x = t->data;

        x->drain_expired = true;
        maybe_finish(x);
}

/* (Re)starts the wait for the pty's output after the command's exit: until the
 * pty is quiet for DRAIN_QUIET_MS, and at most DRAIN_MAX_MS in all. */
static void drain_wait(struct ved_exec *x)
{
        if (!x->drain_open) {
                if (uv_timer_init(x->v->loop, &x->drain) < 0) {
                        x->drain_expired = true;
                        return;
                }
                x->drain.data = x;
                x->drain_open = true;
                x->handles++;
                x->drain_start = uv_now(x->v->loop);
        }
        if (uv_now(x->v->loop) - x->drain_start < DRAIN_MAX_MS)
                uv_timer_start(&x->drain, drain_cb, DRAIN_QUIET_MS, 0);
}

void ved_exec_begin_output(struct ved_exec *x)
{
        if (x->out_open && uv_read_start((uv_stream_t *)&x->out, alloc_cb, read_cb) == 0)
                x->open_readers++;
        if (x->err_open && uv_read_start((uv_stream_t *)&x->errp, alloc_cb, read_cb) == 0)
                x->open_readers++;
}

static void maybe_finish(struct ved_exec *x)
{
        if (!x->exited || x->reported)
                return;
        /* With a pty, the reader sees EIO only after every holder of the slave is
         * gone, which a background process of the command may never be. The
         * command's last output may still be on its way through the pty when
         * its exit is seen, though: wait for EIO, or for the pty to go quiet. */
        if (x->open_readers > 0 && !x->tty)
                return;
        if (x->open_readers > 0 && !x->drain_expired) {
                if (!x->drain_open)
                        drain_wait(x);
                if (!x->drain_expired)
                        return;
        }
        x->reported = true;
        log_warn("DBG report total %zu readers %d expired %d", x->dbg_total, x->open_readers, x->drain_expired);
        if (!x->released)
                x->ops->exited(x, x->code);
}

static void write_done_cb(uv_write_t *w, int status)
{
        (void)status;
        free(w->data);
        free(w);
}

/* stdin's end: the command sees EOF once the writes queued before it are done. */
static void stdin_shutdown_cb(uv_shutdown_t *req, int status)
{
        struct ved_exec *x = req->data;

        (void)status;
        free(req);
        close_handle(x, (uv_handle_t *)&x->in, &x->in_open);
}

static void stdin_close(struct ved_exec *x)
{
        uv_shutdown_t *req = malloc(sizeof(*req));

        x->in_eof = true;
        /* uv_close() would drop the queued writes: a large stdin would be cut. */
        if (req != NULL) {
                req->data = x;
                if (uv_shutdown(req, (uv_stream_t *)&x->in, stdin_shutdown_cb) == 0)
                        return;
                free(req);
        }
        close_handle(x, (uv_handle_t *)&x->in, &x->in_open);
}

void ved_exec_stdin(struct ved_exec *x, const char *buf, size_t len)
{
        uv_write_t *w;
        uv_buf_t b;

        if (!x->in_open || x->in_eof)
                return;
        if (len == 0) {
                if (!x->tty)
                        stdin_close(x);
                return;
        }
        w = malloc(sizeof(*w));
        b = uv_buf_init(malloc(len), (unsigned)len);
        memcpy(b.base, buf, len);
        w->data = b.base;
        if (uv_write(w, (uv_stream_t *)&x->in, &b, 1, write_done_cb) < 0)
                write_done_cb(w, 0);
}

void ved_exec_resize(struct ved_exec *x, unsigned short rows, unsigned short cols)
{
        uv_os_fd_t fd;

        if (x->tty && x->out_open && uv_fileno((uv_handle_t *)&x->out, &fd) == 0)
                ve_exec_resize(fd, rows, cols, NULL);
}

void ved_exec_signal(struct ved_exec *x, int sig)
{
        if (x->proc.pid > 0 && !x->exited)
                kill(x->proc.pid, sig);
}

void ved_exec_release(struct ved_exec *x)
{
        x->released = true;
        if (x->proc.pid > 0 && !x->exited) {
                kill(x->proc.pid, SIGKILL);
                ve_proc_wait(x->proc.pidfd, 0, NULL, NULL);
                x->exited = true;
        }
        close_handle(x, (uv_handle_t *)&x->out, &x->out_open);
        close_handle(x, (uv_handle_t *)&x->errp, &x->err_open);
        close_handle(x, (uv_handle_t *)&x->in, &x->in_open);
        close_handle(x, (uv_handle_t *)&x->pid_poll, &x->pid_watched);
        close_handle(x, (uv_handle_t *)&x->drain, &x->drain_open);
        if (x->handles == 0)
                free_exec(x);
}

static int copy_argv(struct ved_exec *x, json_t *command, struct ve_error *err)
{
        size_t n = json_array_size(command), i;
        json_t *a;

        x->argv = calloc(n + 1, sizeof(char *));
        if (x->argv == NULL)
                return ve_error_set(err, ENOMEM, "out of memory");
        json_array_foreach(command, i, a) x->argv[i] = strdup(json_string_value(a));
        return 0;
}

int ved_exec_start(struct ved *v, uint32_t ctid, const struct ved_exec_request *rq,
                   const struct ved_exec_ops *ops, void *data, struct ved_exec **out,
                   struct ve_error *err)
{
        struct ved_rt *rt = ved_rt_find(v, ctid);
        struct ved_exec *x;
        int ret;

        if (rt == NULL || rt->exited || rt->busy)
                return ve_error_set(err, VE_ECONFLICT, "VE %u is not running", ctid);
        x = calloc(1, sizeof(*x));
        if (x == NULL)
                return ve_error_set(err, ENOMEM, "out of memory");
        x->v = v;
        x->ctid = ctid;
        x->ops = ops;
        x->data = data;
        x->tty = rq->tty;
        x->rows = rq->rows;
        x->cols = rq->cols;
        x->proc.pidfd = x->proc.stdin_fd = x->proc.stdout_fd = -EBADF;
        x->proc.stderr_fd = x->proc.pty_fd = -EBADF;
        x->cgroup_fd = -EBADF;
        snprintf(x->term, sizeof(x->term), "%s", rq->term ? rq->term : "");
        x->target = (struct quota_cgroup_target){ v->cgroup, v->cfg.instance, ctid };
        x->init_pidfd = dup(rt->proc.pidfd);
        x->idmap = rt->idmap;
        if (strcmp(quota_cgroup_name(v->cgroup), "v2") == 0)
                x->cgroup_fd = quota_cgroup_open_fd(v->cgroup, v->cfg.instance, ctid, NULL);
        if (copy_argv(x, rq->command, err) < 0) {
                free_exec(x);
                return -err->code;
        }
        x->handles = 1; /* the work request */
        ret = uv_queue_work(v->loop, &x->work, spawn_work_cb, spawn_after_cb);
        if (ret < 0) {
                free_exec(x);
                return ve_error_set(err, -ret, "queue exec: %s", uv_strerror(ret));
        }
        *out = x;
        return 0;
}
