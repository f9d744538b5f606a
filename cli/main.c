/* vectl: the command line client of ved, with vzctl's verbs and options. It
 * talks only to ved's REST API, over the daemon's unix socket. */
#include "cli.h"
#include "exitcode.h"
#include "http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_SOCKET "/run/ved/ved.sock"

enum { OPT_SOCKET = 256, OPT_HOST };

struct cmd {
        const char *name;
        cmd_fn fn;
        const char *help;
};

static const struct cmd cmds[] = {
        { "create", cmd_create, "create a VE" },
        { "set", cmd_set, "change a VE's parameters" },
        { "destroy", cmd_destroy, "destroy a VE and its private area" },
        { "start", cmd_start, "start a VE" },
        { "stop", cmd_stop, "stop a VE" },
        { "restart", cmd_restart, "stop a VE, then start it (a stopped one is started)" },
        { "status", cmd_status, "print a VE's status as vzctl does" },
        { "list", cmd_list, "list VEs as vzlist does" },
        { "exec", cmd_exec, "run a command in a VE" },
        { "enter", cmd_enter, "open a shell in a VE" },
        { "console", cmd_console, "attach to a VE's console" },
        { "events", cmd_events, "follow the daemon's events" },
        { "template", cmd_template, "list, import, build or remove OS templates" },
        { "op", cmd_op, "list or show operations" },
};

#define CMDS_COUNT (sizeof(cmds) / sizeof(cmds[0]))

static void usage(FILE *f)
{
        fputs("Usage: vectl [GLOBAL OPTIONS] COMMAND [ARGS...]\n"
              "\n"
              "Manage the VEs of a ved daemon.\n"
              "\n"
              "Commands:\n",
              f);
        for (size_t i = 0; i < CMDS_COUNT; i++)
                fprintf(f, "  %-16s %s\n", cmds[i].name, cmds[i].help);
        fputs("  help [COMMAND]   show this help, or a command's options\n"
              "\n"
              "Global options (before COMMAND):\n"
              "  --socket PATH    the daemon's unix socket (default: $VED_SOCKET, else\n"
              "                   " DEFAULT_SOCKET ")\n"
              "  --host URL       a remote daemon's API (not supported yet)\n"
              "  -h, --help       show this help\n"
              "  -V, --version    print vectl's version\n"
              "\n"
              "Most commands take -j/--json to print the daemon's JSON. A VE is named by\n"
              "its CTID or, except for create, its name. 'vectl COMMAND --help' shows a\n"
              "command's options.\n"
              "\n",
              f);
        fputs(cli_exit_code_help, f);
}

static const struct cmd *find_cmd(const char *name)
{
        for (size_t i = 0; i < CMDS_COUNT; i++)
                if (strcmp(cmds[i].name, name) == 0)
                        return &cmds[i];
        return NULL;
}

/* Parses the global options; *done is set when there is nothing left to run. */
static int parse_global(int argc, char **argv, struct cli *cli, bool *done, struct ve_error *err)
{
        static const struct option opts[] = {
                { "socket", required_argument, NULL, OPT_SOCKET },
                { "host", required_argument, NULL, OPT_HOST },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { 0 },
        };
        int c;

        cli_getopt_reset();
        while ((c = cli_getopt(argc, argv, "+hV", opts, err)) != -1) {
                if (c == CLI_OPT_ERROR)
                        return -EINVAL;
                else if (c == OPT_SOCKET)
                        cli->socket = optarg;
                else if (c == OPT_HOST)
                        return ve_error_set(err, CLI_EUSAGE,
                                            "--host %s: remote API not supported yet", optarg);
                else if (c == 'h')
                        return *done = true, usage(stdout), 0;
                else if (c == 'V')
                        return *done = true, puts("vectl " VED_VERSION), 0;
        }
        if (optind >= argc)
                return ve_error_set(err, CLI_EUSAGE, "missing command (vectl --help lists them)");
        return 0;
}

/* vectl help [VERB]: a verb's help is its --help. */
static int help(const struct cli *cli, int argc, char **argv, struct ve_error *err)
{
        const struct cmd *cmd;
        char *args[] = { NULL, "--help", NULL };

        if (argc < 2) {
                usage(stdout);
                return 0;
        }
        cmd = find_cmd(argv[1]);
        if (cmd == NULL)
                return ve_error_set(err, CLI_EUSAGE, "unknown command '%s'", argv[1]);
        args[0] = argv[1];
        return cmd->fn(cli, 2, args, err);
}

static int run(const struct cli *cli, int argc, char **argv, struct ve_error *err)
{
        const struct cmd *cmd;

        if (strcmp(argv[0], "help") == 0)
                return help(cli, argc, argv, err);
        cmd = find_cmd(argv[0]);
        if (cmd == NULL)
                return ve_error_set(err, CLI_EUSAGE,
                                    "unknown command '%s' (vectl --help lists them)", argv[0]);
        return cmd->fn(cli, argc, argv, err);
}

static int fail(const char *verb, struct ve_error *err)
{
        int code = cli_exit_code(err);

        fprintf(stderr, "vectl: %s\n", err->message ? err->message : "unknown error");
        if (err->code == CLI_EUSAGE && verb != NULL)
                fprintf(stderr, "Try 'vectl %s --help'.\n", verb);
        else if (err->code == CLI_EUSAGE)
                fprintf(stderr, "Try 'vectl --help'.\n");
        ve_error_clear(err);
        return code;
}

int main(int argc, char **argv)
{
        struct cli cli = { .socket = getenv("VED_SOCKET") };
        struct ve_error err = { 0 };
        bool done = false;
        int ret, verb;

        if (cli.socket == NULL || *cli.socket == '\0')
                cli.socket = DEFAULT_SOCKET;
        ret = parse_global(argc, argv, &cli, &done, &err);
        if (ret < 0)
                return fail(NULL, &err);
        if (done)
                return 0;
        verb = optind;
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
                fprintf(stderr, "vectl: cannot initialize libcurl\n");
                return CLI_EXIT_ERROR;
        }
        ret = run(&cli, argc - verb, argv + verb, &err);
        http_cleanup();
        curl_global_cleanup();
        if (fflush(stdout) != 0 && ret >= 0)
                ret = ve_error_errno(&err, errno, "writing the output");
        if (ret < 0)
                return fail(find_cmd(argv[verb]) ? argv[verb] : NULL, &err);
        return ret;
}
