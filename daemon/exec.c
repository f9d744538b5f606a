#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "runtime.h"
#include "statfsd.h"
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
        bool in_eof;  /* stdin is being shut down */
        int pty_peer; /* a slave fd of the pty, held by ved: see drain_pty() */
        int open_readers;
        bool out_reading, err_reading; /* read started and not at its end */
        bool paused;                   /* ved_exec_pause_output() */
        bool stdin_full;               /* ved_exec_stdin_full() said so; not drained yet */
        bool exited, released, reported;
        bool cut; /* ved_exec_cut(): its end no longer waits for its output to close */
        int code;
        int handles;
        /* An attachment to a VE's console (ved_exec_attach_console()) instead of
         * a command: no process, output fanned out from the console's drain. */
        struct ved_rt *console;
        struct list_head console_link;
        bool is_console; /* stays set once the console is gone */
        bool began;      /* ved_exec_begin_output() was called */
};

/* After a tty command's exit, at most this much of the pty's output is still read. */
#define DRAIN_MAX (4u << 20)

static void maybe_finish(struct ved_exec *x);
static void stdin_gone(struct ved_exec *x);

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
        if (x->pty_peer >= 0)
                close(x->pty_peer);
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
                .ctid = x->ctid,
        };
        _cleanup_close_ int statfsd = ved_statfsd_connect();

        if (x->cgroup_fd < 0) {
                cfg.cgroup.attach_cb = quota_cgroup_attach_cb;
                cfg.cgroup.data = &x->target;
        }
        cfg.statfs_notify = statfsd >= 0;
        cfg.statfsd = statfsd;
        cfg.start_timeout_ms = x->v->cfg.exec_start_timeout_ms;
        x->spawn_ret = ve_exec_spawn(&cfg, &x->proc, &x->err);
}

static void pid_cb(uv_poll_t *h, int status, int events)
{
        struct ved_exec *x = h->data;
        int ws = 0, ret;

        (void)status;
        (void)events;
        ret = ve_proc_wait(x->proc.pidfd, 1, &ws, NULL);
        if (ret == 0)
                return; /* not yet: spurious wake-up */
        uv_poll_stop(h);
        x->exited = true;
        if (x->released) { /* killed by ved_exec_release(): reaped, nothing to tell */
                close_handle(x, (uv_handle_t *)h, &x->pid_watched);
                return;
        }
        stdin_gone(x);
        if (ret < 0) /* the status is lost: never report it as success */
                log_warn("Cannot wait for exec'd process %d in VE %u", (int)x->proc.pid, x->ctid);
        x->code = ret < 0 ? 255 : WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
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

/* pid_cb() runs when the command has ended. */
static int watch_pid(struct ved_exec *x)
{
        int ret = uv_poll_init(x->v->loop, &x->pid_poll, x->proc.pidfd);

        if (ret < 0)
                return ret;
        x->pid_poll.data = x;
        x->pid_watched = true;
        x->handles++;
        return uv_poll_start(&x->pid_poll, UV_READABLE, pid_cb);
}

static void spawn_after_cb(uv_work_t *req, int status)
{
        struct ved_exec *x = container_of(req, struct ved_exec, work);
        int ret = x->spawn_ret;

        (void)status;
        x->handles--;
        if (x->released) {
                /* Its owner went away meanwhile: kill it; pid_cb reaps it. */
                if (ret == 0) {
                        kill(-x->proc.pid, SIGKILL);
                        kill(x->proc.pid, SIGKILL);
                        if (watch_pid(x) < 0)
                                ve_proc_wait(x->proc.pidfd, 0, NULL, NULL);
                }
                if (x->handles == 0)
                        free_exec(x);
                return;
        }
        if (ret == 0) {
                int *out_fd = x->tty ? &x->proc.pty_fd : &x->proc.stdout_fd;

                if (x->tty)
                        x->pty_peer =
                            ioctl(x->proc.pty_fd, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
                ret = open_pipe(x, &x->out, out_fd, &x->out_open);
                if (ret == 0 && !x->tty)
                        ret = open_pipe(x, &x->errp, &x->proc.stderr_fd, &x->err_open);
                if (ret == 0 && !x->tty)
                        ret = open_pipe(x, &x->in, &x->proc.stdin_fd, &x->in_open);
                if (ret == 0)
                        ret = watch_pid(x);
                if (ret < 0)
                        ve_error_set(&x->err, -ret, "watch the command: %s", uv_strerror(ret));
        }
        x->ops->started(x, ret, &x->err);
        /* Cut while it was being started. */
        if (ret == 0 && x->cut && !x->released)
                ved_exec_cut(x);
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
        if (n < 0) {
                /* EOF, or EIO from a pty whose last writer is gone. */
                uv_read_stop(s);
                *(stream == 'e' ? &x->err_reading : &x->out_reading) = false;
                x->open_readers--;
                maybe_finish(x);
        }
}

void ved_exec_begin_output(struct ved_exec *x)
{
        x->began = true;
        /* A console that ended before its client was ready: say so now. */
        if (x->is_console && x->exited && !x->released)
                x->ops->exited(x, 0);
        if (x->out_open && uv_read_start((uv_stream_t *)&x->out, alloc_cb, read_cb) == 0) {
                x->out_reading = true;
                x->open_readers++;
        }
        if (x->err_open && uv_read_start((uv_stream_t *)&x->errp, alloc_cb, read_cb) == 0) {
                x->err_reading = true;
                x->open_readers++;
        }
}

void ved_exec_pause_output(struct ved_exec *x, bool pause)
{
        if (x->paused == pause)
                return;
        x->paused = pause;
        if (x->out_open && x->out_reading) {
                if (pause)
                        uv_read_stop((uv_stream_t *)&x->out);
                else
                        uv_read_start((uv_stream_t *)&x->out, alloc_cb, read_cb);
        }
        if (x->err_open && x->err_reading) {
                if (pause)
                        uv_read_stop((uv_stream_t *)&x->errp);
                else
                        uv_read_start((uv_stream_t *)&x->errp, alloc_cb, read_cb);
        }
}

/* Reads what an output stream (the pty, or a pipe: non-blocking, as libuv made
 * it) still holds once the end no longer waits for it, then stops reading it. A
 * pty's last writes may still be on their way to the master's side (the kernel
 * moves them in a work item); a non-blocking read of the master waits for that
 * work before it says EAGAIN, so reading until EAGAIN gets all of them. ved holds
 * a slave fd of its own (pty_peer) so that the master never reads EIO early: when
 * the last slave closed, output still in flight was lost. A background process
 * still writing is cut off after DRAIN_MAX bytes. */
static void drain(struct ved_exec *x, uv_pipe_t *p, bool open, bool *reading, char stream)
{
        char buf[16384];
        size_t total = 0;
        uv_os_fd_t fd;
        ssize_t n;

        if (!open || !*reading || uv_fileno((uv_handle_t *)p, &fd) < 0)
                return;
        while (!x->released && total < DRAIN_MAX) {
                n = read(fd, buf, sizeof(buf));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                x->ops->output(x, stream, buf, (size_t)n);
                total += (size_t)n;
        }
        uv_read_stop((uv_stream_t *)p);
        *reading = false;
        x->open_readers--;
}

static void maybe_finish(struct ved_exec *x)
{
        if (!x->exited || x->reported)
                return;
        /* With a pty, the reader sees EIO only after every holder of the slave is
         * gone, which a background process of the command may never be: the
         * command's exit is enough once the pty is drained. Pipes are read to
         * their end, unless the command was cut. */
        if (x->open_readers > 0 && !x->tty && !x->cut)
                return;
        drain(x, &x->out, x->out_open, &x->out_reading, 'o');
        drain(x, &x->errp, x->err_open, &x->err_reading, 'e');
        if (x->pty_peer >= 0)
                close(steal_fd(&x->pty_peer));
        x->reported = true;
        if (!x->released)
                x->ops->exited(x, x->code);
}

static uv_stream_t *stdin_stream(struct ved_exec *x)
{
        /* With a pty, its one fd serves both directions. */
        return x->tty ? (uv_stream_t *)&x->out : (uv_stream_t *)&x->in;
}

/* Tell the caller it may take the client's input again. */
static void stdin_drained(struct ved_exec *x)
{
        if (!x->stdin_full)
                return;
        x->stdin_full = false;
        if (!x->released && x->ops->stdin_drained != NULL)
                x->ops->stdin_drained(x);
}

bool ved_exec_stdin_full(struct ved_exec *x)
{
        if (!(x->tty ? x->out_open : x->in_open) || x->in_eof)
                return false;
        if (uv_stream_get_write_queue_size(stdin_stream(x)) > VED_EXEC_QUEUE_HIGH)
                x->stdin_full = true;
        return x->stdin_full;
}

/* Nobody reads stdin any more (the command ended, or closed it): drop what is
 * queued (closing the handle cancels the writes) and whatever comes later. */
static void stdin_gone(struct ved_exec *x)
{
        if (x->tty || x->in_eof)
                return;
        x->in_eof = true;
        close_handle(x, (uv_handle_t *)&x->in, &x->in_open);
        stdin_drained(x);
}

static void write_done_cb(uv_write_t *w, int status)
{
        struct ved_exec *x = w->handle->data;
        uv_stream_t *s = w->handle;

        free(w->data);
        free(w);
        if (status < 0 && status != UV_ECANCELED)
                stdin_gone(x);
        else if (status == 0 && uv_stream_get_write_queue_size(s) < VED_EXEC_QUEUE_LOW)
                stdin_drained(x);
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
        uv_stream_t *in = stdin_stream(x);
        uv_write_t *w;
        uv_buf_t b;

        /* Typed into the console: what its input buffer does not take now is
         * dropped, as on a serial line, rather than held for a VE that does not
         * read it. */
        if (x->console != NULL) {
                if (len > 0 && write(x->console->proc.console_fd, buf, len) < 0)
                        log_debug("VE %u: console input: %s", x->ctid, strerror(errno));
                return;
        }
        if (!(x->tty ? x->out_open : x->in_open) || x->in_eof)
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
        /* A write libuv refuses at once never reaches write_done_cb (nor sets
         * w->handle): the stream is gone, as stdin_gone() would find. */
        if (uv_write(w, in, &b, 1, write_done_cb) < 0) {
                free(b.base);
                free(w);
                stdin_gone(x);
        }
}

void ved_exec_resize(struct ved_exec *x, unsigned short rows, unsigned short cols)
{
        uv_os_fd_t fd;

        if (x->console != NULL)
                ve_exec_resize(x->console->proc.console_fd, rows, cols, NULL);
        else if (x->tty && x->out_open && uv_fileno((uv_handle_t *)&x->out, &fd) == 0)
                ve_exec_resize(fd, rows, cols, NULL);
}

/* The command is a session leader (ve/exec.c), so its process group holds what
 * it started, as a terminal's foreground job would, unless a process left it.
 * Only while the command is not reaped: its pid, the group's id, is then still
 * its own, where after the reaping it could be another process's. */
void ved_exec_signal(struct ved_exec *x, int sig)
{
        if (x->proc.pid <= 0 || x->exited)
                return;
        /* With a pty, the terminal sends the keyboard's signals to its foreground
         * job; a signal asked for goes to the shell. */
        if (x->tty || kill(-x->proc.pid, sig) < 0)
                kill(x->proc.pid, sig);
}

void ved_exec_cut(struct ved_exec *x)
{
        x->cut = true;
        if (x->proc.pid > 0 && !x->exited)
                kill(-x->proc.pid, SIGKILL);
        maybe_finish(x);
}

void ved_exec_release(struct ved_exec *x)
{
        x->released = true;
        if (x->console != NULL) {
                list_del(&x->console_link);
                x->console = NULL;
        }
        close_handle(x, (uv_handle_t *)&x->out, &x->out_open);
        close_handle(x, (uv_handle_t *)&x->errp, &x->err_open);
        close_handle(x, (uv_handle_t *)&x->in, &x->in_open);
        /* A command still running is killed, with its process group, and reaped
         * by pid_cb(): waiting here would hold the loop while it dies (seconds, in
         * throttled I/O). */
        if (x->proc.pid > 0 && !x->exited) {
                kill(-x->proc.pid, SIGKILL);
                kill(x->proc.pid, SIGKILL);
                if (!x->pid_watched)
                        ve_proc_wait(x->proc.pidfd, 0, NULL, NULL);
        }
        if (x->exited || !x->pid_watched)
                close_handle(x, (uv_handle_t *)&x->pid_poll, &x->pid_watched);
        if (x->handles == 0)
                free_exec(x);
}

static struct ved_exec *new_exec(struct ved *v, uint32_t ctid, const struct ved_exec_ops *ops,
                                 void *data)
{
        struct ved_exec *x = calloc(1, sizeof(*x));

        if (x == NULL)
                return NULL;
        x->v = v;
        x->ctid = ctid;
        x->ops = ops;
        x->data = data;
        x->proc.pidfd = x->proc.stdin_fd = x->proc.stdout_fd = -EBADF;
        x->proc.stderr_fd = x->proc.pty_fd = -EBADF;
        x->init_pidfd = x->cgroup_fd = -EBADF;
        x->pty_peer = -EBADF;
        list_init(&x->console_link);
        return x;
}

int ved_exec_attach_console(struct ved *v, uint32_t ctid, const struct ved_exec_ops *ops,
                            void *data, struct ved_exec **out, struct ve_error *err)
{
        struct ved_rt *rt = ved_rt_find(v, ctid);
        struct ved_exec *x;

        if (rt == NULL || rt->exited)
                return ve_error_set(err, VE_ECONFLICT, "VE %u is not running", ctid);
        if (!rt->console_watched)
                return ve_error_set(err, VE_ECONFLICT,
                                    "VE %u's console was lost (ved and ve-statfsd were both "
                                    "down): it comes back when the VE restarts",
                                    ctid);
        x = new_exec(v, ctid, ops, data);
        if (x == NULL)
                return ve_error_set(err, ENOMEM, "out of memory");
        x->tty = true;
        x->is_console = true;
        x->console = rt;
        list_add_tail(&rt->consoles, &x->console_link);
        *out = x;
        return 0;
}

void ved_exec_console_output(struct ved_rt *rt, const char *buf, size_t len)
{
        struct list_head *pos, *tmp;

        list_for_each_safe(pos, tmp, &rt->consoles)
        {
                struct ved_exec *x = container_of(pos, struct ved_exec, console_link);

                /* A client that does not keep up misses output, as on a serial
                 * line: the console is never held up for it. */
                if (x->began && !x->paused && !x->released)
                        x->ops->output(x, 'o', buf, len);
        }
}

void ved_exec_console_gone(struct ved_rt *rt, bool stopped)
{
        struct list_head *pos, *tmp;

        list_for_each_safe(pos, tmp, &rt->consoles)
        {
                struct ved_exec *x = container_of(pos, struct ved_exec, console_link);

                list_del(&x->console_link);
                x->console = NULL;
                if (!stopped)
                        continue; /* ved stops; its streams are closed with the server */
                x->exited = x->reported = true;
                if (x->began && !x->released)
                        x->ops->exited(x, 0);
        }
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
        x = new_exec(v, ctid, ops, data);
        if (x == NULL)
                return ve_error_set(err, ENOMEM, "out of memory");
        x->tty = rq->tty;
        x->rows = rq->rows;
        x->cols = rq->cols;
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
