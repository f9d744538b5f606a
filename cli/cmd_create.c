/* vectl create: POST /v1/ves, then follow the operation. */
#include "cli.h"
#include "exitcode.h"
#include "http.h"
#include "operation.h"
#include "ve/parse.h"
#include "ve_options.h"

#include <errno.h>
#include <stdio.h>

enum { OPT_NO_WAIT = 'W' + 256 };

static int usage(void)
{
        puts("Usage: vectl create CTID --ostemplate NAME [OPTIONS]\n"
             "\n"
             "Create a VE from an OS template. CTID is a number from 101 up. A template\n"
             "not imported yet that a recipe of the daemon builds (busybox, debian-12) is\n"
             "built and imported first.\n"
             "\n"
             "Options:");
        ve_opts_help(VE_OPT_CREATE, stdout);
        puts("  --no-wait                print the operation id and return at once\n"
             "  -j, --json               print the finished operation as JSON\n"
             "  -h, --help               show this help\n"
             "SIZE takes K, M, G or T suffixes (binary units), e.g. 512M or 1.5G; without\n"
             "one it is bytes (vzctl reads a bare --diskspace as 1 KiB blocks: vectl\n"
             "warns).\n"
             "[:N] takes vzctl's BARRIER:LIMIT too (--diskspace 10G:11G): ved enforces\n"
             "the LIMIT.");
        return 0;
}

static int parse_ctid(const char *arg, uint32_t *ctid, struct ve_error *err)
{
        int ret = ve_parse_ctid(arg, ctid, err);

        if (ret < 0 && err->code == 0)
                return ve_error_set(err, VE_EINVAL_INPUT, "create: CTID '%s' is not a number", arg);
        return ret;
}

static int parse_args(int argc, char **argv, json_t *body, struct op_follow *f, bool *help,
                      struct ve_error *err)
{
        struct option opts[64] = {
                { "json", no_argument, NULL, 'j' },
                { "no-wait", no_argument, NULL, OPT_NO_WAIT },
                { "help", no_argument, NULL, 'h' },
        };
        size_t n = 3;
        int c, ret;

        ve_opts_longopts(VE_OPT_CREATE, opts, &n, sizeof(opts) / sizeof(opts[0]));
        cli_getopt_reset();
        while ((c = cli_getopt(argc, argv, "jh", opts, err)) != -1) {
                if (c == CLI_OPT_ERROR)
                        return -EINVAL;
                else if (c == 'j')
                        f->json = true;
                else if (c == OPT_NO_WAIT)
                        f->no_wait = true;
                else if (c == 'h')
                        return *help = true, 0;
                else if ((ret = ve_opts_apply(VE_OPT_CREATE, c, optarg, body, err)) < 0)
                        return ret;
        }
        return cli_check_operands(argc, argv, 1, 1, "CTID", err);
}

int cmd_create(const struct cli *cli, int argc, char **argv, struct ve_error *err)
{
        _cleanup_response_ struct http_response resp = { 0 };
        _cleanup_json_ json_t *body = json_object();
        struct op_follow f = { 0 };
        bool help = false;
        char label[64];
        uint32_t ctid;
        int ret;

        if (body == NULL)
                return ve_error_set(err, ENOMEM, "out of memory");
        ret = parse_args(argc, argv, body, &f, &help, err);
        if (ret < 0 || help)
                return help ? usage() : ret;
        ret = parse_ctid(argv[optind], &ctid, err);
        if (ret < 0)
                return ret;
        if (json_object_get(body, "ostemplate") == NULL)
                return ve_error_set(err, CLI_EUSAGE, "create: --ostemplate is required");
        json_object_set_new(body, "ctid", json_integer(ctid));
        ret = http_json(cli, "POST", "/v1/ves", body, &resp, err);
        if (ret < 0)
                return ret;
        snprintf(label, sizeof(label), "Creating VE %u", ctid);
        f.label = label;
        return cli_op_follow(cli, resp.json, &f, err);
}
