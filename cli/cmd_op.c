/* vectl op list|show: the daemon's operations, /v1/operations. */
#include "cli.h"
#include "exitcode.h"
#include "http.h"
#include "operation.h"
#include "output.h"
#include "ve/parse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_VE = 256, OPT_STATUS, OPT_LIMIT, OPT_WAIT };

struct op_args {
        const char *ve, *status, *limit, *wait;
        bool header, json, help;
};

static const char list_usage[] =
    "Usage: vectl op list [OPTIONS]\n"
    "\n"
    "List operations, newest first.\n"
    "\n"
    "Options:\n"
    "  --ve CTID                only operations on this VE\n"
    "  --status S               only pending, running, succeeded or failed ones\n"
    "  --limit N                at most N (the daemon's default is 100)\n"
    "  -H, --no-header          do not print the header line\n"
    "  -j, --json               print the daemon's answer as JSON\n"
    "  -h, --help               show this help\n";

static const char show_usage[] =
    "Usage: vectl op show ID [OPTIONS]\n"
    "\n"
    "Show an operation: its steps, and its error if it failed.\n"
    "Exits 7 when the operation failed.\n"
    "\n"
    "Options:\n"
    "  --wait SEC               wait up to SEC seconds (0-3600) for it to finish\n"
    "  -j, --json               print the operation as JSON\n"
    "  -h, --help               show this help\n";

static const struct option list_opts[] = {
        { "ve", required_argument, NULL, OPT_VE },
        { "status", required_argument, NULL, OPT_STATUS },
        { "limit", required_argument, NULL, OPT_LIMIT },
        { "no-header", no_argument, NULL, 'H' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
};

static const struct option show_opts[] = {
        { "wait", required_argument, NULL, OPT_WAIT },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
};

static int parse_args(int argc, char **argv, const char *shortopts, const struct option *opts,
                      struct op_args *a, struct ve_error *err)
{
        int c;

        cli_getopt_reset();
        while ((c = cli_getopt(argc, argv, shortopts, opts, err)) != -1) {
                if (c == CLI_OPT_ERROR)
                        return -EINVAL;
                else if (c == OPT_VE)
                        a->ve = optarg;
                else if (c == OPT_STATUS)
                        a->status = optarg;
                else if (c == OPT_LIMIT)
                        a->limit = optarg;
                else if (c == OPT_WAIT)
                        a->wait = optarg;
                else if (c == 'H')
                        a->header = false;
                else if (c == 'j')
                        a->json = true;
                else if (c == 'h')
                        a->help = true;
        }
        return 0;
}

static int list_path(const struct op_args *a, char *path, size_t len, struct ve_error *err)
{
        static const char *const statuses[] = { "pending", "running", "succeeded", "failed" };
        const char *sep = "?";
        uint32_t ctid;
        uint64_t limit;
        int n = snprintf(path, len, "/v1/operations");
        bool known = a->status == NULL;

        if (a->ve != NULL) {
                if (ve_parse_ctid(a->ve, &ctid, err) < 0)
                        return ve_error_set(err, VE_EINVAL_INPUT, "--ve: '%s' is not a CTID",
                                            a->ve);
                n += snprintf(path + n, len - (size_t)n, "%sctid=%u", sep, ctid);
                sep = "&";
        }
        for (size_t i = 0; !known && i < sizeof(statuses) / sizeof(statuses[0]); i++)
                known = strcmp(a->status, statuses[i]) == 0;
        if (!known)
                return ve_error_set(err, VE_EINVAL_INPUT,
                                    "--status: '%s' is not pending, running, succeeded or failed",
                                    a->status);
        if (a->status != NULL) {
                n += snprintf(path + n, len - (size_t)n, "%sstatus=%s", sep, a->status);
                sep = "&";
        }
        if (a->limit != NULL) {
                if (ve_parse_uint(a->limit, 1000, &limit, "--limit", err) < 0)
                        return -EINVAL;
                snprintf(path + n, len - (size_t)n, "%slimit=%llu", sep, (unsigned long long)limit);
        }
        return 0;
}

static const struct table_column list_cols[] = {
        { "ID", true },       { "TYPE", false },     { "CTID", true },   { "STATUS", false },
        { "CREATED", false }, { "FINISHED", false }, { "ERROR", false },
};

#define LIST_COLS (sizeof(list_cols) / sizeof(list_cols[0]))

static int add_op(struct table *t, const json_t *op, struct ve_error *err)
{
        const json_t *e = json_object_get(json_object_get(op, "error"), "message");
        char *cells[LIST_COLS] = {
                cli_json_text(json_object_get(op, "id")),
                cli_json_text(json_object_get(op, "type")),
                cli_json_text(json_object_get(op, "ctid")),
                cli_json_text(json_object_get(op, "status")),
                cli_json_text(json_object_get(op, "created_at")),
                cli_json_text(json_object_get(op, "finished_at")),
                cli_json_text(e),
        };
        int ret;

        ret = table_add_row(t, (const char *const *)cells, err);
        for (size_t c = 0; c < LIST_COLS; c++)
                free(cells[c]);
        return ret;
}

static int print_ops(const json_t *answer, bool header, struct ve_error *err)
{
        const json_t *list = json_object_get(answer, "operations"), *op;
        _cleanup_table_ struct table t = { 0 };
        size_t i;
        int ret;

        if (!json_is_array(list))
                return ve_error_set(err, EPROTO, "ved's answer holds no list of operations");
        table_init(&t, list_cols, LIST_COLS);
        json_array_foreach(list, i, op)
        {
                ret = add_op(&t, op, err);
                if (ret < 0)
                        return ret;
        }
        table_print(&t, stdout, header);
        return 0;
}

static int op_list(const struct cli *cli, int argc, char **argv, struct ve_error *err)
{
        _cleanup_response_ struct http_response resp = { 0 };
        struct op_args a = { .header = true };
        char path[256];
        int ret;

        ret = parse_args(argc, argv, "Hjh", list_opts, &a, err);
        if (ret < 0 || a.help)
                return a.help ? cli_usage(list_usage) : ret;
        ret = cli_check_operands(argc, argv, 0, 0, NULL, err);
        if (ret == 0)
                ret = list_path(&a, path, sizeof(path), err);
        if (ret == 0)
                ret = http_json(cli, "GET", path, NULL, &resp, err);
        if (ret < 0)
                return ret;
        if (a.json) {
                cli_print_json(resp.json);
                return 0;
        }
        return print_ops(resp.json, a.header, err);
}

static void print_line(const char *label, const json_t *v)
{
        _cleanup_free_ char *text = cli_json_text(v);

        if (text != NULL)
                printf("%-12s %s\n", label, text);
}

static void print_op(const json_t *op)
{
        const json_t *steps = json_object_get(op, "steps"), *step;
        size_t i;

        print_line("id:", json_object_get(op, "id"));
        print_line("type:", json_object_get(op, "type"));
        print_line("ctid:", json_object_get(op, "ctid"));
        print_line("status:", json_object_get(op, "status"));
        print_line("created:", json_object_get(op, "created_at"));
        print_line("finished:", json_object_get(op, "finished_at"));
        print_line("error:", json_object_get(json_object_get(op, "error"), "message"));
        print_line("resolution:", json_object_get(op, "resolution"));
        if (json_array_size(steps) > 0)
                printf("steps:\n");
        json_array_foreach(steps, i, step)
        {
                printf("  %-22s %s\n", json_string_value(json_object_get(step, "at")) ?: "-",
                       json_string_value(json_object_get(step, "name")) ?: "-");
        }
}

static int op_show(const struct cli *cli, int argc, char **argv, struct ve_error *err)
{
        _cleanup_json_ json_t *op = NULL;
        struct op_args a = { 0 };
        uint64_t id, wait = 0;
        int ret;

        ret = parse_args(argc, argv, "jh", show_opts, &a, err);
        if (ret < 0 || a.help)
                return a.help ? cli_usage(show_usage) : ret;
        ret = cli_check_operands(argc, argv, 1, 1, "operation ID", err);
        if (ret == 0)
                ret = ve_parse_uint(argv[optind], INT64_MAX, &id, "operation id", err);
        if (ret == 0 && a.wait != NULL)
                ret = ve_parse_uint(a.wait, 3600, &wait, "--wait", err);
        if (ret == 0)
                ret = cli_op_get(cli, (long long)id, a.wait ? (int)wait : -1, &op, err);
        if (ret < 0)
                return ret;
        if (a.json)
                cli_print_json(op);
        else
                print_op(op);
        if (strcmp(json_string_value(json_object_get(op, "status")) ?: "", "failed") == 0)
                return ve_error_set(err, CLI_EOPFAILED, "operation %llu failed",
                                    (unsigned long long)id);
        return 0;
}

static const struct cli_subcmd subs[] = {
        { "list", "op list", op_list, "list operations, newest first" },
        { "show", "op show", op_show, "show an operation, optionally waiting for it" },
};

int cmd_op(const struct cli *cli, int argc, char **argv, struct ve_error *err)
{
        return cli_dispatch_sub(cli, subs, sizeof(subs) / sizeof(subs[0]),
                                "Usage: vectl op COMMAND [ARGS...]\n", argc, argv, err);
}
