/* The client side of ved's exec protocol, ved-exec/1 (vectl exec, vectl enter).
 *
 * POST /v1/ves/{ve}/exec with `Upgrade: ved-exec/1` turns the connection into a
 * stream of frames both ways: a type byte, a 4-byte big-endian payload length,
 * the payload. libcurl 7.88 has no API for an HTTP Upgrade, so the connection is
 * opened with CURLOPT_CONNECT_ONLY and the request written by hand; after the
 * 101 answer the socket is the caller's to poll (exec_stream_fd()).
 *
 * Errors follow cli.h: -errno with err filled; an error answer from the daemon
 * has code CLI_EHTTP + status, no answer at all CLI_EUNREACHABLE. */
#ifndef CLI_EXEC_STREAM_H
#define CLI_EXEC_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "cli.h"

/* Frame types. */
enum {
        EXEC_FRAME_STDIN = 'i',  /* to ved: stdin bytes; length 0 closes stdin */
        EXEC_FRAME_RESIZE = 'r', /* to ved: rows, cols (u16 BE each) */
        EXEC_FRAME_SIGNAL = 'k', /* to ved: one byte, a signal number */
        EXEC_FRAME_STDOUT = 'o', /* from ved: stdout, or all output with a tty */
        EXEC_FRAME_STDERR = 'e', /* from ved: stderr */
        EXEC_FRAME_EXIT = 'x',   /* from ved: exit status (i32 BE); ved then closes */
};

/* One received frame; data points into the stream's buffer and is valid until
 * the next exec_stream_read(). */
struct exec_frame {
        char type;
        const unsigned char *data;
        uint32_t len;
};

struct exec_stream;

/* Sends POST path with the JSON body to the daemon, asking for the upgrade, and
 * reads the answer's head. On 101 *out is the open stream (bytes that came
 * with the head are already buffered: call exec_stream_next() before polling);
 * any other answer is an error, with the daemon's message for a 4xx or 5xx. */
int exec_stream_open(const struct cli *cli, const char *path, json_t *body,
                     struct exec_stream **out, struct ve_error *err);

/* The socket, for poll(); it is non-blocking. */
int exec_stream_fd(const struct exec_stream *s);

/* Queues one frame to send; exec_stream_flush() sends it. */
int exec_stream_queue(struct exec_stream *s, char type, const void *data, uint32_t len,
                      struct ve_error *err);

/* Sends what the socket takes now of the queued frames, without waiting. */
int exec_stream_flush(struct exec_stream *s, struct ve_error *err);

/* Bytes queued and not yet sent: poll() for POLLOUT while there are some, and
 * read no more input meanwhile, so the queue stays one read long. */
size_t exec_stream_pending(const struct exec_stream *s);
/* Drop what is queued and unsent (ved has closed its side). */
void exec_stream_drop_pending(struct exec_stream *s);

/* Reads what the socket holds (call when poll() says it is readable) into the
 * buffer; *eof is set once the daemon has closed the connection. */
int exec_stream_read(struct exec_stream *s, bool *eof, struct ve_error *err);

/* Takes the next whole frame out of the buffer: 1 and *f filled, 0 when the
 * buffer holds no whole frame, -EPROTO for a frame no daemon sends. */
int exec_stream_next(struct exec_stream *s, struct exec_frame *f, struct ve_error *err);

/* Closes the connection; accepts NULL. */
void exec_stream_free(struct exec_stream *s);

static inline void exec_stream_freep(struct exec_stream **s)
{
        exec_stream_free(*s);
}
#define _cleanup_exec_stream_ __attribute__((cleanup(exec_stream_freep)))

#endif
