/* A command running inside a VE on behalf of an API client (exec, enter): the
 * process is spawned off the loop, its output read and its exit watched in the
 * loop, and every event handed to the owner through ops. */
#ifndef VED_EXEC_H
#define VED_EXEC_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "quota/cgroup.h"
#include "ve/exec.h"
#include "ved.h"

struct ved_exec;

struct ved_exec_ops {
        /* The spawn finished: ret 0, or <0 with err (then nothing more follows). */
        void (*started)(struct ved_exec *x, int ret, struct ve_error *err);
        /* Output: stream 'o' (stdout, or the pty) or 'e' (stderr). */
        void (*output)(struct ved_exec *x, char stream, const char *buf, size_t len);
        /* The process ended and all its output was delivered; code is the exit
         * status, or 128 + signal. */
        void (*exited)(struct ved_exec *x, int code);
        /* Optional: the command's stdin, found full by ved_exec_stdin_full(), has
         * drained below VED_EXEC_QUEUE_LOW (or nobody reads it any more): take
         * the client's input again. */
        void (*stdin_drained)(struct ved_exec *x);
};

/* Flow control, both ways, so that neither a command that writes without end nor
 * a client that sends faster than the command reads can grow the daemon's memory:
 * when more than VED_EXEC_QUEUE_HIGH bytes of the command's output wait to be sent
 * to the client, its output is no longer read (pause) until less than
 * VED_EXEC_QUEUE_LOW wait; when more than VED_EXEC_QUEUE_HIGH bytes of the
 * client's input wait for the command to read them, the caller stops reading the
 * client (ved_exec_stdin_full()) until stdin_drained. Input that comes after the
 * command has ended is dropped. */
#define VED_EXEC_QUEUE_HIGH (1u << 20)
#define VED_EXEC_QUEUE_LOW  (256u << 10)

struct ved_exec_request {
        json_t *command; /* array of strings */
        bool tty;
        unsigned short rows, cols;
        const char *term;
};

/* Start the command in the running VE ctid. VE_ECONFLICT when it does not run.
 * Output is read once ved_exec_begin_output() is called. */
int ved_exec_start(struct ved *v, uint32_t ctid, const struct ved_exec_request *rq,
                   const struct ved_exec_ops *ops, void *data, struct ved_exec **out,
                   struct ve_error *err);
void ved_exec_begin_output(struct ved_exec *x);
void *ved_exec_data(struct ved_exec *x);
/* Stop (pause) or go on reading the command's output. */
void ved_exec_pause_output(struct ved_exec *x, bool pause);
/* Input: len 0 closes stdin. */
void ved_exec_stdin(struct ved_exec *x, const char *buf, size_t len);
/* Whether more than VED_EXEC_QUEUE_HIGH bytes of stdin wait: then stop taking the
 * client's input until ops->stdin_drained is called. */
bool ved_exec_stdin_full(struct ved_exec *x);
void ved_exec_resize(struct ved_exec *x, unsigned short rows, unsigned short cols);
/* Signal the command: without a pty, its process group (what it started, unless
 * a process left the group), as a terminal signals its foreground job; with one,
 * the command itself. */
void ved_exec_signal(struct ved_exec *x, int sig);
/* The command's time is up: kill it and its process group, and end without
 * waiting for its output to close (a process that left the group may hold it):
 * what the output holds now is read, then ops->exited() runs, with the
 * command's own status if it had ended already. */
void ved_exec_cut(struct ved_exec *x);
/* Attach to the running VE ctid's console instead (vectl console): output is
 * what the VE writes to /dev/console from now on (stream 'o'), input is typed
 * into it, resize sets its window size; exited(x, 0) comes when the VE stops.
 * Several clients may attach at once. Nothing is started: no started callback.
 * VE_ECONFLICT when the VE does not run or its console was lost. */
int ved_exec_attach_console(struct ved *v, uint32_t ctid, const struct ved_exec_ops *ops,
                            void *data, struct ved_exec **out, struct ve_error *err);
/* The runtime's side (runtime.c): what the console's drain read, and its end:
 * the VE stopped (the clients are told), or ved stops (they are not: their
 * connections just close). */
struct ved_rt;
void ved_exec_console_output(struct ved_rt *rt, const char *buf, size_t len);
void ved_exec_console_gone(struct ved_rt *rt, bool stopped);

/* The owner is gone: kill the process if it still runs, and free everything once
 * the handles are closed. No callback runs after this. */
void ved_exec_release(struct ved_exec *x);

#endif
