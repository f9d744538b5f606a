/* vectl exec and vectl enter: run a command, or a shell, in a VE through
 * POST /v1/ves/{id}/exec in the streaming mode (exec_stream.h): stdin goes to
 * the command, its stdout and stderr come back, and vectl exits with its status.
 * vectl console attaches to the VE's console through POST /v1/ves/{id}/console,
 * the same stream, until Esc . or the end of input detaches it. */
#include "cli.h"
#include "exec_stream.h"
#include "exitcode.h"
#include "http.h"
#include "terminal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STDIN_CHUNK (64u << 10)

struct session {
        struct exec_stream *stream;
        bool stdin_open;
        int resize_fd; /* readable after SIGWINCH; -1 without a tty */
        /* Without a tty: readable after SIGINT, SIGTERM, SIGHUP or SIGQUIT, which
         * go to the command (its process group), as a terminal sends Ctrl-C to
         * its job; -1 otherwise. A second one ends vectl, and the command with
         * the connection. */
        int interrupt_fd;
        int status;     /* the command's exit status; -1 until it is known */
        bool sent_all;  /* ved closed its side: nothing more is sent, the rest is read */
        bool console;   /* vectl console */
        bool after_esc; /* console: the last byte typed was Esc */
        bool detached;  /* console: Esc . or the end of input */
};

/* write() to our stdout or stderr, which a caller may have left non-blocking. */
static int write_all(int fd, const unsigned char *p, size_t len, struct ve_error *err)
{
        while (len > 0) {
                struct pollfd pfd = { .fd = fd, .events = POLLOUT };
                ssize_t n = write(fd, p, len);

                if (n < 0 && errno == EAGAIN && poll(&pfd, 1, -1) >= 0)
                        continue;
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return ve_error_errno(err, errno, "writing the command's %s",
                                              fd == STDOUT_FILENO ? "output" : "error output");
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

/* Output and the exit status from the frames received so far. */
static int handle_frames(struct session *ss, struct ve_error *err)
{
        struct exec_frame f;
        int32_t status;
        int ret;

        while (ss->status < 0 && (ret = exec_stream_next(ss->stream, &f, err)) > 0) {
                if (f.type == EXEC_FRAME_STDOUT)
                        ret = write_all(STDOUT_FILENO, f.data, f.len, err);
                else if (f.type == EXEC_FRAME_STDERR)
                        ret = write_all(STDERR_FILENO, f.data, f.len, err);
                else if (f.type == EXEC_FRAME_EXIT && f.len != 4)
                        ret =
                            ve_error_set(err, EPROTO, "ved sent an exit frame of %u bytes", f.len);
                else if (f.type == EXEC_FRAME_EXIT) {
                        memcpy(&status, f.data, 4);
                        status = (int32_t)ntohl((uint32_t)status);
                        ss->status = status >= 0 && status <= 255 ? status : 255;
                }
                if (ret < 0)
                        return ret;
        }
        return ss->status >= 0 ? 0 : ret;
}

/* One read of stdin, queued as a frame (session_loop() reads no more until ved
 * has taken it). */
/* vectl console: the bytes before Esc . (as vzctl console detaches). The Esc
 * itself has gone to the console: a lone Esc is not held back. */
static size_t before_detach(struct session *ss, const char *buf, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                if (ss->after_esc && buf[i] == '.')
                        return i;
                ss->after_esc = buf[i] == 0x1b;
        }
        return n;
}

static int detach(struct session *ss, struct ve_error *err)
{
        ss->detached = true;
        ss->status = 0;
        /* What was typed before: sent if the socket takes it now. */
        if (exec_stream_flush(ss->stream, err) < 0)
                ve_error_clear(err);
        return 0;
}

static int forward_stdin(struct session *ss, struct ve_error *err)
{
        static char buf[STDIN_CHUNK];
        ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

        if (n < 0 && (errno == EINTR || errno == EAGAIN))
                return 0;
        if (n > 0 && ss->console) {
                size_t keep = before_detach(ss, buf, (size_t)n);
                int ret = keep > 0 ? exec_stream_queue(ss->stream, EXEC_FRAME_STDIN, buf,
                                                       (uint32_t)keep, err)
                                   : 0;

                return ret == 0 && keep < (size_t)n ? detach(ss, err) : ret;
        }
        if (n > 0)
                return exec_stream_queue(ss->stream, EXEC_FRAME_STDIN, buf, (uint32_t)n, err);
        if (ss->console)
                return detach(ss, err);
        /* End of input, or a read error, which the command sees as the same. */
        ss->stdin_open = false;
        return exec_stream_queue(ss->stream, EXEC_FRAME_STDIN, NULL, 0, err);
}

static int forward_size(struct session *ss, struct ve_error *err)
{
        unsigned char p[4];
        unsigned short rows, cols;

        terminal_resize_drain(ss->resize_fd);
        if (!terminal_size(&rows, &cols))
                return 0;
        p[0] = (unsigned char)(rows >> 8), p[1] = (unsigned char)rows;
        p[2] = (unsigned char)(cols >> 8), p[3] = (unsigned char)cols;
        return exec_stream_queue(ss->stream, EXEC_FRAME_RESIZE, p, sizeof(p), err);
}

static int forward_interrupt(struct session *ss, struct ve_error *err)
{
        unsigned char sig = (unsigned char)terminal_next_interrupt(ss->interrupt_fd);

        if (sig == 0)
                return 0;
        return exec_stream_queue(ss->stream, EXEC_FRAME_SIGNAL, &sig, 1, err);
}

static int receive(struct session *ss, struct ve_error *err)
{
        bool eof = false;
        int ret;

        ret = exec_stream_read(ss->stream, &eof, err);
        if (ret == 0)
                ret = handle_frames(ss, err);
        if (ret == 0 && ss->status < 0 && eof)
                ret = ve_error_set(err, EIO, "connection to ved lost");
        return ret;
}

/* Until the exit frame: the socket's frames out, stdin and window changes in.
 * Input is one read at a time: while ved has not taken the last one (the
 * command reads slower than we do), stdin and window changes wait, and output
 * goes on being printed, so neither side buffers without bound. */
static int session_loop(struct session *ss, struct ve_error *err)
{
        int ret;

        ret = handle_frames(ss, err); /* what came with the 101 answer */
        while (ret == 0 && ss->status < 0) {
                bool pending = exec_stream_pending(ss->stream) > 0;
                bool quiet = pending || ss->sent_all;
                struct pollfd p[4] = {
                        { .fd = exec_stream_fd(ss->stream),
                          .events = (short)(POLLIN | (pending ? POLLOUT : 0)) },
                        { .fd = ss->stdin_open && !pending ? STDIN_FILENO : -1, .events = POLLIN },
                        { .fd = quiet ? -1 : ss->resize_fd, .events = POLLIN },
                        { .fd = quiet ? -1 : ss->interrupt_fd, .events = POLLIN },
                };

                ret = poll(p, 4, -1);
                if (ret < 0 && errno == EINTR) {
                        ret = 0;
                        continue;
                }
                if (ret < 0)
                        return ve_error_errno(err, errno, "waiting for ved");
                ret = 0;
                if ((p[0].revents & ~POLLOUT) != 0)
                        ret = receive(ss, err);
                if (ret == 0 && ss->status < 0 && p[1].revents != 0)
                        ret = forward_stdin(ss, err);
                if (ret == 0 && ss->status < 0 && p[2].revents != 0)
                        ret = forward_size(ss, err);
                if (ret == 0 && ss->status < 0 && p[3].revents != 0)
                        ret = forward_interrupt(ss, err);
                if (ret == 0 && ss->status < 0 && !ss->sent_all &&
                    exec_stream_flush(ss->stream, err) < 0) {
                        /* The command ended and ved closed the stream while we
                         * still sent: no error, once the rest of its output and
                         * its exit frame are read (the end without them is). */
                        ve_error_clear(err);
                        ss->sent_all = true;
                        ss->stdin_open = false;
                        exec_stream_drop_pending(ss->stream);
                }
        }
        return ret < 0 ? ret : ss->status;
}

/* ved takes the terminal names terminfo uses; another TERM is left out. */
static bool term_ok(const char *term)
{
        size_t len = strlen(term);

        return len > 0 && len < 64 &&
               strspn(term, "abcdefghijklmnopqrstuvwxyz0123456789-_.+") == len;
}

/* {"command": [...], "tty": bool, "rows", "cols", "term"}; without a command,
 * ved runs its login shell. */
static json_t *request_body(char *const *cmd, size_t n, bool tty)
{
        _cleanup_json_ json_t *body = json_pack("{s:b}", "tty", tty);
        const char *term = getenv("TERM");
        unsigned short rows, cols;
        json_t *command;

        if (body == NULL)
                return NULL;
        if (n > 0) {
                command = json_array();
                if (command == NULL || json_object_set_new(body, "command", command) < 0)
                        return NULL;
                for (size_t i = 0; i < n; i++)
                        if (json_array_append_new(command, json_string(cmd[i])) < 0)
                                return NULL;
        }
        if (tty && terminal_size(&rows, &cols) &&
            (json_object_set_new(body, "rows", json_integer(rows)) < 0 ||
             json_object_set_new(body, "cols", json_integer(cols)) < 0))
                return NULL;
        if (tty && term != NULL && term_ok(term) &&
            json_object_set_new(body, "term", json_string(term)) < 0)
                return NULL;
        return steal_ptr(&body);
}

/* {"rows", "cols"} of our terminal, or {}. */
static json_t *console_body(void)
{
        unsigned short rows, cols;

        if (terminal_size(&rows, &cols))
                return json_pack("{s:i, s:i}", "rows", rows, "cols", cols);
        return json_object();
}

/* A session with the terminal in raw mode when there is one to give the pty. */
static int run_session(struct session *ss, bool tty, struct ve_error *err)
{
        int ret = 0;

        if (tty && isatty(STDIN_FILENO))
                ret = terminal_raw(STDIN_FILENO, err);
        if (ret == 0)
                ret = session_loop(ss, err);
        terminal_restore();
        return ret;
}

/* The console ended: whether the VE runs again after a restart (the restart's
 * start is under way, or done, within 60 s) rather than stopped. */
static bool console_restarted(const struct cli *cli, const char *ve)
{
        char path[128];

        if (cli_ve_path(ve, "", path, sizeof(path), NULL) < 0)
                return false;
        for (int i = 0; i < 1200; i++) {
                struct http_response resp;
                struct ve_error e = { 0 };
                const char *state = NULL;
                bool running, starting;

                if (http_json(cli, "GET", path, NULL, &resp, &e) == 0)
                        state = json_string_value(json_object_get(resp.json, "state"));
                running = state != NULL && strcmp(state, "running") == 0;
                starting = state != NULL && strcmp(state, "starting") == 0;
                http_response_free(&resp);
                ve_error_clear(&e);
                if (!starting)
                        return running;
                usleep(50 * 1000);
        }
        return false;
}

/* One exec, enter or console session; for a console, again after each restart
 * of the VE, as a console on a machine stays through its reboots. */
static int run(const struct cli *cli, const char *ve, char *const *cmd, size_t n, bool tty,
               bool console, struct ve_error *err)
{
        _cleanup_json_ json_t *body = NULL;
        struct session ss = { .stdin_open = true,
                              .resize_fd = -1,
                              .interrupt_fd = -1,
                              .status = -1,
                              .console = console };
        char path[128];
        int ret;

        ret = cli_ve_path(ve, console ? "/console" : "/exec", path, sizeof(path), err);
        if (ret < 0)
                return ret;
        /* Watch for window changes before reading the size, so none is missed. */
        if (tty) {
                ss.resize_fd = terminal_watch_resize(err);
                if (ss.resize_fd < 0)
                        return ss.resize_fd;
        } else if (!console) {
                ss.interrupt_fd = terminal_watch_interrupts(err);
                if (ss.interrupt_fd < 0)
                        return ss.interrupt_fd;
        }
        body = console ? console_body() : request_body(cmd, n, tty);
        if (body == NULL)
                return ve_error_set(err, ENOMEM, "out of memory");
        if (console && isatty(STDIN_FILENO))
                fprintf(stderr, "Attached to the console of VE %s (Esc . to detach)\n", ve);
        for (;;) {
                _cleanup_exec_stream_ struct exec_stream *stream = NULL;

                ret = exec_stream_open(cli, path, body, &stream, err);
                if (ret < 0)
                        return ret;
                ss.stream = stream;
                ret = run_session(&ss, tty, err);
                if (!console || ret < 0 || ss.detached || !console_restarted(cli, ve))
                        break;
                fprintf(stderr, "\n[VE %s restarted: attached to its new console]\n", ve);
                ss.status = -1;
                ss.sent_all = false;
                ss.after_esc = false;
        }
        if (console && ret >= 0)
                fprintf(stderr, "\n%s\n",
                        ss.detached ? "Detached from the console"
                                    : "The console closed: the VE stopped");
        return ret;
}

static int parse_args(int argc, char **argv, bool with_tty, bool *tty, bool *help,
                      struct ve_error *err)
{
        static const struct option opts[] = {
                { "tty", no_argument, NULL, 't' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        int c;

        /* '+': stop at the CTID, so the command's own options are left alone. */
        cli_getopt_reset();
        while ((c = cli_getopt(argc, argv, with_tty ? "+th" : "+h", with_tty ? opts : opts + 1,
                               err)) != -1) {
                if (c == CLI_OPT_ERROR)
                        return -EINVAL;
                else if (c == 't')
                        *tty = true;
                else if (c == 'h')
                        return *help = true, 0;
        }
        return 0;
}

/* Characters no command's name holds, that a shell command line does. */
#define SHELL_CHARS " \t\n;&|<>()$`\\\"'*?~#="

/* The command after CTID, without a "--" that separates them. One argument that
 * is a shell command line ("apt-get update && apt-get -y upgrade") is run by the
 * VE's /bin/sh -c, as vzctl exec does: sh_argv holds the three words. */
static char **command_args(int argc, char **argv, char *sh_argv[4], size_t *n)
{
        int first = optind + 1;

        if (first < argc && strcmp(argv[first], "--") == 0)
                first++;
        *n = (size_t)(argc - first);
        if (*n == 1 && strpbrk(argv[first], SHELL_CHARS) != NULL) {
                sh_argv[0] = "/bin/sh";
                sh_argv[1] = "-c";
                sh_argv[2] = argv[first];
                sh_argv[3] = NULL;
                *n = 3;
                return sh_argv;
        }
        return argv + first;
}

static int exec_usage(void)
{
        puts("Usage: vectl exec [OPTIONS] CTID|NAME [--] COMMAND [ARGS...]\n"
             "\n"
             "Run COMMAND in the running VE, with vectl's stdin as its stdin and its\n"
             "stdout and stderr on vectl's. vectl exits with COMMAND's exit status\n"
             "(128+N when signal N ended it; as a shell, 127 when the VE has no\n"
             "COMMAND and 126 when it cannot be executed). Options go before CTID:\n"
             "what follows CTID is COMMAND, passed as it is. COMMAND given as one\n"
             "argument that is a shell command line (it holds spaces or ;&|<>$ and\n"
             "the like) is run by the VE's /bin/sh -c, as vzctl exec does:\n"
             "  vectl exec 101 'apt-get update && apt-get -y upgrade'\n"
             "Without --tty, SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to vectl go to\n"
             "COMMAND and what it started (its process group), as Ctrl-C does in a\n"
             "terminal; a second one ends vectl, which kills them.\n"
             "\n"
             "Options:\n"
             "  -t, --tty                give COMMAND a terminal (pty), sized as vectl's,\n"
             "                           with stderr merged into stdout; vectl's own\n"
             "                           terminal is put in raw mode meanwhile\n"
             "  -h, --help               show this help");
        return 0;
}

static int enter_usage(void)
{
        puts("Usage: vectl enter [OPTIONS] CTID|NAME [[--] COMMAND [ARGS...]]\n"
             "\n"
             "Open a shell in the running VE on a terminal (pty): a login shell, bash\n"
             "where the VE has /bin/bash, else /bin/sh, unless COMMAND is given (one\n"
             "argument that is a shell command line runs in /bin/sh -c, as with exec).\n"
             "vectl's terminal is put in raw mode until the shell exits, window size\n"
             "changes are passed on, TERM is passed when it is a terminal name ved\n"
             "accepts, and vectl exits with the shell's exit status.\n"
             "\n"
             "Options:\n"
             "  -h, --help               show this help");
        return 0;
}

int cmd_exec(const struct cli *cli, int argc, char **argv, struct ve_error *err)
{
        bool help = false, tty = false;
        char **cmd, *sh_argv[4];
        size_t n;
        int ret;

        ret = parse_args(argc, argv, true, &tty, &help, err);
        if (ret == 0 && !help)
                ret = cli_check_operands(argc, argv, 1, -1, "CTID and COMMAND", err);
        if (ret < 0 || help)
                return help ? exec_usage() : ret;
        cmd = command_args(argc, argv, sh_argv, &n);
        if (n == 0)
                return ve_error_set(err, CLI_EUSAGE, "%s: missing COMMAND", argv[0]);
        return run(cli, argv[optind], cmd, n, tty, false, err);
}

int cmd_enter(const struct cli *cli, int argc, char **argv, struct ve_error *err)
{
        bool help = false, tty = true;
        char **cmd, *sh_argv[4];
        size_t n;
        int ret;

        ret = parse_args(argc, argv, false, &tty, &help, err);
        if (ret == 0 && !help)
                ret = cli_check_operands(argc, argv, 1, -1, "CTID", err);
        if (ret < 0 || help)
                return help ? enter_usage() : ret;
        cmd = command_args(argc, argv, sh_argv, &n);
        return run(cli, argv[optind], cmd, n, true, false, err);
}

static int console_usage(void)
{
        puts("Usage: vectl console [OPTIONS] CTID|NAME\n"
             "\n"
             "Attach to the running VE's console (/dev/console in the VE: its init's\n"
             "messages, and the login prompt where the VE runs a getty on it), as vzctl\n"
             "console does. What you type goes to the console, with vectl's terminal in\n"
             "raw mode and its size passed on. Press Esc then . to detach; the end of\n"
             "input detaches too. The VE keeps running. vectl stays attached through a\n"
             "restart of the VE (vectl restart, a reboot inside it), to its new console,\n"
             "and ends when the VE stops. Several clients may attach at once.\n"
             "Everything the console shows is also kept in its log, which\n"
             "GET /v1/ves/CTID/console returns.\n"
             "\n"
             "Options:\n"
             "  -h, --help               show this help");
        return 0;
}

int cmd_console(const struct cli *cli, int argc, char **argv, struct ve_error *err)
{
        bool help = false, tty = true;
        int ret;

        ret = parse_args(argc, argv, false, &tty, &help, err);
        if (ret == 0 && !help)
                ret = cli_check_operands(argc, argv, 1, 1, "CTID", err);
        if (ret < 0 || help)
                return help ? console_usage() : ret;
        return run(cli, argv[optind], NULL, 0, true, true, err);
}
