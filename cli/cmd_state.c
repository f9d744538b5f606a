/* vectl start, stop, restart: POST /v1/ves/{id}/state, then follow the operation. */
#include "cli.h"
#include "exitcode.h"
#include "http.h"
#include "operation.h"
#include "ve/parse.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

enum { OPT_NO_WAIT = 256, OPT_TIMEOUT };

struct state_verb {
        const char *action; /* the verb and the API's action */
        const char *doing;  /* for the progress line */
        const char *summary;
        const char *force_help;
        const char *timeout_help;
};

static const struct state_verb verbs[] = {
        { "start", "Starting", "Start the VE: boot its init.",
          "sent to the daemon as \"force\" (it matters for stop and restart)",
          "sent to the daemon as \"timeout\" (it matters for stop and restart)" },
        { "stop", "Stopping",
          "Stop the VE: ask its init to shut down, wait, then kill what is left.",
          "kill the VE at once instead of asking init to shut down",
          "seconds to wait for init (default: the VE's stop timeout)" },
        { "restart", "Restarting", "Stop the VE, then start it again; a stopped VE is started.",
          "kill the VE at once instead of asking init to shut down",
          "seconds to wait for init (default: the VE's stop timeout)" },
};

struct state_args {
        struct op_follow f;
        bool force, help;
        const char *timeout;
};

static int usage(const struct state_verb *v)
{
        printf("Usage: vectl %s CTID|NAME [OPTIONS]\n"
               "\n"
               "%s\n"
               "\n"
               "Options:\n"
               "  --force, --fast          %s\n"
               "  --timeout SEC            %s\n"
               "                           (--stop-timeout SEC is the same)\n"
               "  --no-wait                print the operation id and return at once\n"
               "  -j, --json               print the finished operation as JSON\n"
               "  -h, --help               show this help\n",
               v->action, v->summary, v->force_help, v->timeout_help);
        return 0;
}

static int parse_args(int argc, char **argv, struct state_args *a, struct ve_error *err)
{
        static const struct option opts[] = {
                { "force", no_argument, NULL, 'f' },
                { "fast", no_argument, NULL, 'f' }, /* vzctl's name */
                { "timeout", required_argument, NULL, OPT_TIMEOUT },
                { "stop-timeout", required_argument, NULL, OPT_TIMEOUT },
                { "no-wait", no_argument, NULL, OPT_NO_WAIT },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        int c;

        cli_getopt_reset();
        while ((c = cli_getopt(argc, argv, "jh", opts, err)) != -1) {
                if (c == CLI_OPT_ERROR)
                        return -EINVAL;
                else if (c == 'f')
                        a->force = true;
                else if (c == OPT_TIMEOUT)
                        a->timeout = optarg;
                else if (c == OPT_NO_WAIT)
                        a->f.no_wait = true;
                else if (c == 'j')
                        a->f.json = true;
                else if (c == 'h')
                        return a->help = true, 0;
        }
        return cli_check_operands(argc, argv, 1, 1, "CTID", err);
}

static int state_body(const struct state_verb *v, const struct state_args *a, json_t *body,
                      struct ve_error *err)
{
        uint64_t timeout;
        int ret;

        json_object_set_new(body, "action", json_string(v->action));
        if (a->force)
                json_object_set_new(body, "force", json_true());
        if (a->timeout != NULL) {
                ret = ve_parse_uint(a->timeout, 2147483647u, &timeout, "--timeout", err);
                if (ret < 0)
                        return ret;
                json_object_set_new(body, "timeout", json_integer((json_int_t)timeout));
        }
        return 0;
}

static int change_state(const struct cli *cli, const struct state_verb *v, int argc, char **argv,
                        struct ve_error *err)
{
        _cleanup_response_ struct http_response resp = { 0 };
        _cleanup_json_ json_t *body = json_object();
        struct state_args a = { 0 };
        char path[128], label[128];
        int ret;

        if (body == NULL)
                return ve_error_set(err, ENOMEM, "out of memory");
        ret = parse_args(argc, argv, &a, err);
        if (ret < 0 || a.help)
                return a.help ? usage(v) : ret;
        ret = cli_ve_path(argv[optind], "/state", path, sizeof(path), err);
        if (ret < 0)
                return ret;
        ret = state_body(v, &a, body, err);
        if (ret < 0)
                return ret;
        ret = http_json(cli, "POST", path, body, &resp, err);
        if (ret < 0)
                return ret;
        snprintf(label, sizeof(label), "%s VE %s", v->doing, argv[optind]);
        a.f.label = label;
        return cli_op_follow(cli, resp.json, &a.f, err);
}

int cmd_start(const struct cli *cli, int argc, char **argv, struct ve_error *err)
{
        return change_state(cli, &verbs[0], argc, argv, err);
}

int cmd_stop(const struct cli *cli, int argc, char **argv, struct ve_error *err)
{
        return change_state(cli, &verbs[1], argc, argv, err);
}

int cmd_restart(const struct cli *cli, int argc, char **argv, struct ve_error *err)
{
        return change_state(cli, &verbs[2], argc, argv, err);
}
