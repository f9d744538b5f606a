/* vectl exec and vectl enter: run a command, or a shell, in a VE through
 * POST /v1/ves/{id}/exec. */
#include "cli.h"
#include "exitcode.h"
#include "http.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* The shell enter starts; the daemon runs it inside the VE, not on the host. */
static const char *const enter_shell[] = {"/bin/sh", "-l"};

static int print_output(const char *line, size_t len, void *data, struct ve_error *err)
{
        (void)data, (void)err;
        fwrite(line, 1, len, stdout);
        fflush(stdout);
        return 0;
}

/* The one place the exec protocol plugs in.
 *
 * TODO(exec protocol): the streaming protocol is still being designed. The plan
 * is that the daemon answers with an HTTP Upgrade on the same socket and then
 * carries stdin, stdout, stderr, terminal size and the exit status over it;
 * enter asks for a terminal. Until then this POSTs {"command": [...]} and copies
 * whatever a 2xx answer holds to stdout as it arrives, and returns 0: the
 * command's own exit status is not known yet. An error answer (404, 405, 501
 * while the daemon has no exec) comes back as err. */
static int exec_session(const struct cli *cli, const char *path, json_t *body, struct ve_error *err)
{
        _cleanup_response_ struct http_response resp = {0};
        struct http_request req = {
            .method = "POST",
            .path = path,
            .body = body,
            .line_cb = print_output,
        };
        int ret;

        ret = http_do(cli, &req, &resp, err);
        if (ret < 0)
                return ret;
        return 0;
}

static int parse_args(int argc, char **argv, bool *help, struct ve_error *err)
{
        static const struct option opts[] = {
            {"help", no_argument, NULL, 'h'},
            {0},
        };
        int c;

        /* '+': stop at the CTID, so the command's own options are left alone. */
        cli_getopt_reset();
        while ((c = cli_getopt(argc, argv, "+h", opts, err)) != -1) {
                if (c == CLI_OPT_ERROR)
                        return -EINVAL;
                else if (c == 'h')
                        return *help = true, 0;
        }
        return 0;
}

static int run(const struct cli *cli, const char *ve, char *const *cmd, size_t n,
               struct ve_error *err)
{
        _cleanup_json_ json_t *body = json_object();
        json_t *command = json_array();
        char path[128];
        int ret;

        if (body == NULL || command == NULL || json_object_set_new(body, "command", command) < 0)
                return ve_error_set(err, ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++)
                json_array_append_new(command, json_string(cmd[i]));
        ret = cli_ve_path(ve, "/exec", path, sizeof(path), err);
        if (ret < 0)
                return ret;
        return exec_session(cli, path, body, err);
}

static int exec_usage(void)
{
        puts("Usage: vectl exec CTID|NAME COMMAND [ARGS...]\n"
             "\n"
             "Run COMMAND in the VE and print its output. Options after CTID belong\n"
             "to COMMAND. The exit code will be COMMAND's own once ved's exec protocol\n"
             "exists; until then it is 0 when ved ran it.\n"
             "\n"
             "Options:\n"
             "  -h, --help               show this help");
        return 0;
}

static int enter_usage(void)
{
        puts("Usage: vectl enter CTID|NAME\n"
             "\n"
             "Open a shell (/bin/sh -l) in the VE. Interactive use needs ved's exec\n"
             "protocol, which is not finished: for now the shell gets no input and\n"
             "vectl prints what ved answers.\n"
             "\n"
             "Options:\n"
             "  -h, --help               show this help");
        return 0;
}

int cmd_exec(const struct cli *cli, int argc, char **argv, struct ve_error *err)
{
        bool help = false;
        int ret;

        ret = parse_args(argc, argv, &help, err);
        if (ret == 0 && !help)
                ret = cli_check_operands(argc, argv, 2, -1, "CTID and COMMAND", err);
        if (ret < 0 || help)
                return help ? exec_usage() : ret;
        return run(cli, argv[optind], argv + optind + 1, (size_t)(argc - optind - 1), err);
}

int cmd_enter(const struct cli *cli, int argc, char **argv, struct ve_error *err)
{
        bool help = false;
        int ret;

        ret = parse_args(argc, argv, &help, err);
        if (ret == 0 && !help)
                ret = cli_check_operands(argc, argv, 1, 1, "CTID", err);
        if (ret < 0 || help)
                return help ? enter_usage() : ret;
        return run(cli, argv[optind], (char *const *)enter_shell,
                   sizeof(enter_shell) / sizeof(enter_shell[0]), err);
}
