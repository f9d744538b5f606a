#include "terminal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

static const int fatal_signals[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGPIPE };

static struct termios saved;
static volatile sig_atomic_t raw_fd = -1;
static int winch_pipe[2] = { -1, -1 };
static int interrupt_pipe[2] = { -1, -1 };

void terminal_restore(void)
{
        int fd = raw_fd;

        if (fd < 0)
                return;
        tcsetattr(fd, TCSADRAIN, &saved);
        raw_fd = -1;
}

/* Undoes raw mode, then dies of the signal: SA_RESETHAND put the default action
 * back, and the raised signal is delivered once the handler returns. */
static void fatal_signal_cb(int sig)
{
        int saved_errno = errno;

        terminal_restore();
        raise(sig);
        errno = saved_errno;
}

int terminal_raw(int fd, struct ve_error *err)
{
        static bool registered;
        struct sigaction sa = { .sa_handler = fatal_signal_cb, .sa_flags = SA_RESETHAND };
        struct termios raw;

        if (tcgetattr(fd, &saved) < 0)
                return ve_error_errno(err, errno, "reading the terminal's settings");
        if (!registered && atexit(terminal_restore) != 0)
                return ve_error_set(err, ENOMEM, "cannot register the terminal's restore");
        registered = true;
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < sizeof(fatal_signals) / sizeof(fatal_signals[0]); i++)
                sigaction(fatal_signals[i], &sa, NULL);
        raw = saved;
        cfmakeraw(&raw);
        raw_fd = fd;
        if (tcsetattr(fd, TCSADRAIN, &raw) < 0) {
                raw_fd = -1;
                return ve_error_errno(err, errno, "putting the terminal in raw mode");
        }
        return 0;
}

bool terminal_size(unsigned short *rows, unsigned short *cols)
{
        struct winsize ws;

        if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) < 0 && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) < 0)
                return false;
        if (ws.ws_row == 0 || ws.ws_col == 0)
                return false;
        *rows = ws.ws_row;
        *cols = ws.ws_col;
        return true;
}

static void winch_cb(int sig)
{
        int saved_errno = errno;
        ssize_t n;

        (void)sig;
        n = write(winch_pipe[1], "w", 1); /* a full pipe already says it */
        (void)n;
        errno = saved_errno;
}

int terminal_watch_resize(struct ve_error *err)
{
        struct sigaction sa = { .sa_handler = winch_cb, .sa_flags = SA_RESTART };

        if (winch_pipe[0] >= 0)
                return winch_pipe[0];
        if (pipe2(winch_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
                return ve_error_errno(err, errno, "creating a pipe");
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGWINCH, &sa, NULL) < 0)
                return ve_error_errno(err, errno, "watching SIGWINCH");
        return winch_pipe[0];
}

void terminal_resize_drain(int fd)
{
        char buf[64];

        while (read(fd, buf, sizeof(buf)) > 0)
                ;
}

static void interrupt_cb(int sig)
{
        int saved_errno = errno;
        unsigned char b = (unsigned char)sig;
        ssize_t n;

        n = write(interrupt_pipe[1], &b, 1);
        (void)n;
        errno = saved_errno;
}

int terminal_watch_interrupts(struct ve_error *err)
{
        static const int forwarded[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM };
        struct sigaction sa = { .sa_handler = interrupt_cb, .sa_flags = SA_RESTART | SA_RESETHAND };

        if (interrupt_pipe[0] >= 0)
                return interrupt_pipe[0];
        if (pipe2(interrupt_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
                return ve_error_errno(err, errno, "creating a pipe");
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++) {
                struct sigaction old;

                /* One ignored by who started us (nohup, a shell's background
                 * job) stays ignored. */
                if (sigaction(forwarded[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
                        continue;
                if (sigaction(forwarded[i], &sa, NULL) < 0)
                        return ve_error_errno(err, errno, "watching signal %d", forwarded[i]);
        }
        return interrupt_pipe[0];
}

int terminal_next_interrupt(int fd)
{
        unsigned char b;

        return read(fd, &b, 1) == 1 ? b : 0;
}
