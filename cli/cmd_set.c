/* vectl set: PATCH /v1/ves/{id}, guarded by the ETag of a GET just before, so a
 * change made by someone else in between is refused (412) instead of lost. */
#include "cli.h"
#include "exitcode.h"
#include "http.h"
#include "output.h"
#include "ve_options.h"

#include <errno.h>
#include <stdio.h>

static int usage(void)
{
        puts("Usage: vectl set CTID|NAME OPTIONS\n"
             "\n"
             "Change a VE's parameters. Changes are saved at once (--save is accepted\n"
             "and does nothing).\n"
             "If the VE changed since vectl read it, nothing is changed and vectl exits 5.\n"
             "\n"
             "Options:");
        ve_opts_help(VE_OPT_SET, stdout);
        puts("  -j, --json               print the changed VE as JSON\n"
             "  -h, --help               show this help\n"
             "SIZE takes K, M, G or T suffixes (binary units), e.g. 512M or 1.5G; without\n"
             "one it is bytes (vzctl reads a bare --diskspace as 1 KiB blocks: vectl\n"
             "warns).\n"
             "[:N] takes vzctl's BARRIER:LIMIT too (--diskspace 10G:11G): ved enforces\n"
             "the LIMIT.");
        return 0;
}

static int parse_args(int argc, char **argv, json_t *body, bool *json, bool *help,
                      struct ve_error *err)
{
        struct option opts[64] = {
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
        };
        size_t n = 2;
        int c, ret;

        ve_opts_longopts(VE_OPT_SET, opts, &n, sizeof(opts) / sizeof(opts[0]));
        cli_getopt_reset();
        while ((c = cli_getopt(argc, argv, "jh", opts, err)) != -1) {
                if (c == CLI_OPT_ERROR)
                        return -EINVAL;
                else if (c == 'j')
                        *json = true;
                else if (c == 'h')
                        return *help = true, 0;
                else if ((ret = ve_opts_apply(VE_OPT_SET, c, optarg, body, err)) < 0)
                        return ret;
        }
        return cli_check_operands(argc, argv, 1, 1, "CTID", err);
}

/* The VE's current ETag, for If-Match. */
static int current_etag(const struct cli *cli, const char *path, char **etag, struct ve_error *err)
{
        _cleanup_response_ struct http_response resp = { 0 };
        int ret;

        ret = http_json(cli, "GET", path, NULL, &resp, err);
        if (ret < 0)
                return ret;
        *etag = steal_ptr(&resp.etag);
        return 0;
}

int cmd_set(const struct cli *cli, int argc, char **argv, struct ve_error *err)
{
        _cleanup_response_ struct http_response resp = { 0 };
        _cleanup_json_ json_t *body = json_object();
        _cleanup_free_ char *etag = NULL;
        struct http_request req = { .method = "PATCH", .body = body };
        bool json = false, help = false;
        char path[128];
        int ret;

        if (body == NULL)
                return ve_error_set(err, ENOMEM, "out of memory");
        ret = parse_args(argc, argv, body, &json, &help, err);
        if (ret < 0 || help)
                return help ? usage() : ret;
        ret = cli_ve_path(argv[optind], "", path, sizeof(path), err);
        if (ret < 0)
                return ret;
        if (json_object_size(body) == 0)
                return ve_error_set(err, CLI_EUSAGE, "set: nothing to change");
        ret = current_etag(cli, path, &etag, err);
        if (ret < 0)
                return ret;
        req.path = path;
        req.if_match = etag;
        ret = http_do(cli, &req, &resp, err);
        if (ret < 0)
                return ret;
        if (json)
                cli_print_json(resp.json);
        else
                printf("Saved parameters for VE %s\n", argv[optind]);
        return 0;
}
