/* vectl status: vzctl's one-line status from GET /v1/ves/{id}/state (more lines
 * with --verbose). */
#include "cli.h"
#include "exitcode.h"
#include "http.h"
#include "output.h"
#include "ve/parse.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int usage(void)
{
        puts("Usage: vectl status CTID|NAME [OPTIONS]\n"
             "\n"
             "Print the VE's status as vzctl does:\n"
             "  CTID 101 exist mounted running\n"
             "  CTID 101 exist unmounted down\n"
             "  CTID 101 deleted unmounted down      (no such VE; exit code 0 as with vzctl)\n"
             "A VE in another state (starting, stopping, ...) shows that state last, as\n"
             "vzctl shows \"down suspended\":\n"
             "  CTID 101 exist mounted down starting\n"
             "That is the only line, so that scripts written for vzctl keep working.\n"
             "A VE named by a name that does not exist is an error (exit code 4).\n"
             "\n"
             "Options:\n"
             "  -v, --verbose            also print the host uid/gid range the VE's user\n"
             "                           namespace maps to, and, for a VE held back after\n"
             "                           a reboot loop, when it starts again:\n"
             "    idmap uid 1000000000-1000065535 gid 1000000000-1000065535\n"
             "    held back after 5 reboots in a row: starts at 2026-12-07T05:50:03.120Z\n"
             "  -j, --json               print the daemon's answer as JSON\n"
             "  -h, --help               show this help");
        return 0;
}

static int parse_args(int argc, char **argv, bool *json, bool *verbose, bool *help,
                      struct ve_error *err)
{
        static const struct option opts[] = {
                { "verbose", no_argument, NULL, 'v' },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        int c;

        cli_getopt_reset();
        while ((c = cli_getopt(argc, argv, "vjh", opts, err)) != -1) {
                if (c == CLI_OPT_ERROR)
                        return -EINVAL;
                else if (c == 'j')
                        *json = true;
                else if (c == 'v')
                        *verbose = true;
                else if (c == 'h')
                        return *help = true, 0;
        }
        return cli_check_operands(argc, argv, 1, 1, "CTID", err);
}

/* vzctl's last words: "running" or "down", then (as its " suspended") a state
 * that is neither, such as starting or stopping. */
static void print_run_state(const json_t *st)
{
        const char *state = json_string_value(json_object_get(st, "state"));

        printf(" %s", json_is_true(json_object_get(st, "running")) ? "running" : "down");
        if (state != NULL && strcmp(state, "running") != 0 && strcmp(state, "stopped") != 0)
                printf(" %s", state);
        printf("\n");
}

static void print_idmap(const json_t *idmap)
{
        json_int_t uid = json_integer_value(json_object_get(idmap, "uid_base"));
        json_int_t gid = json_integer_value(json_object_get(idmap, "gid_base"));
        json_int_t count = json_integer_value(json_object_get(idmap, "count"));

        if (!json_is_object(idmap) || count <= 0)
                return;
        printf("idmap uid %" JSON_INTEGER_FORMAT "-%" JSON_INTEGER_FORMAT
               " gid %" JSON_INTEGER_FORMAT "-%" JSON_INTEGER_FORMAT "\n",
               uid, uid + count - 1, gid, gid + count - 1);
}

static void print_delayed_start(const json_t *d)
{
        if (!json_is_object(d))
                return;
        printf("held back after %" JSON_INTEGER_FORMAT " reboots in a row: starts at %s\n",
               json_integer_value(json_object_get(d, "reboots")),
               json_string_value(json_object_get(d, "at")) ?: "?");
}

static void print_status(const char *arg, const json_t *st, bool verbose)
{
        const json_t *ctid = json_object_get(st, "ctid");

        if (json_is_integer(ctid))
                printf("CTID %" JSON_INTEGER_FORMAT, json_integer_value(ctid));
        else
                printf("CTID %s", arg);
        printf(" %s %s", json_is_false(json_object_get(st, "exist")) ? "deleted" : "exist",
               json_is_true(json_object_get(st, "mounted")) ? "mounted" : "unmounted");
        print_run_state(st);
        if (!verbose)
                return;
        print_idmap(json_object_get(st, "idmap"));
        print_delayed_start(json_object_get(st, "delayed_start"));
}

int cmd_status(const struct cli *cli, int argc, char **argv, struct ve_error *err)
{
        _cleanup_response_ struct http_response resp = { 0 };
        bool json = false, verbose = false, help = false;
        char path[128];
        uint32_t ctid;
        int ret;

        ret = parse_args(argc, argv, &json, &verbose, &help, err);
        if (ret < 0 || help)
                return help ? usage() : ret;
        ret = cli_ve_path(argv[optind], "/state", path, sizeof(path), err);
        if (ret < 0)
                return ret;
        ret = http_json(cli, "GET", path, NULL, &resp, err);
        /* vzctl reports a CTID that does not exist as deleted, and succeeds. */
        if (ret < 0 && cli_error_is_http(err, 404) &&
            ve_parse_ctid(argv[optind], &ctid, NULL) == 0) {
                ve_error_clear(err);
                if (json)
                        printf("{\"ctid\": %u, \"exist\": false, \"mounted\": false, "
                               "\"running\": false, \"state\": null}\n",
                               ctid);
                else
                        printf("CTID %u deleted unmounted down\n", ctid);
                return 0;
        }
        if (ret < 0)
                return ret;
        if (json)
                cli_print_json(resp.json);
        else
                print_status(argv[optind], resp.json, verbose);
        return 0;
}
