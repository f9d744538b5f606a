/* The local terminal of vectl enter (and exec --tty): raw mode while the remote
 * pty does the line editing, and the window size with its changes.
 *
 * The state is process-wide, as a terminal is: raw mode is undone by
 * terminal_restore(), at exit, and on the signals that end vectl (SIGHUP,
 * SIGINT, SIGQUIT, SIGTERM, SIGPIPE), which then still end it. */
#ifndef CLI_TERMINAL_H
#define CLI_TERMINAL_H

#include <stdbool.h>

#include "cli.h"

/* Puts the terminal on fd in raw mode (cfmakeraw). */
int terminal_raw(int fd, struct ve_error *err);

/* Puts it back as it was; safe to call more than once, or without raw mode. */
void terminal_restore(void);

/* The window size of the terminal on stdin, else stdout; false when neither is one. */
bool terminal_size(unsigned short *rows, unsigned short *cols);

/* Starts watching SIGWINCH: returns a non-blocking fd that becomes readable after
 * each window change (drain it with terminal_resize_drain()). */
int terminal_watch_resize(struct ve_error *err);
void terminal_resize_drain(int fd);

/* Starts catching SIGHUP, SIGINT, SIGQUIT and SIGTERM (those not ignored), each
 * once (a second one has its default action): returns a non-blocking fd from which
 * terminal_next_interrupt() reads the number of each one caught, or 0. */
int terminal_watch_interrupts(struct ve_error *err);
int terminal_next_interrupt(int fd);

#endif
