/* vectl destroy: DELETE /v1/ves/{id}, then follow the operation. */
#include "cli.h"
#include "exitcode.h"
#include "http.h"
#include "operation.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

enum { OPT_NO_WAIT = 256 };

static int usage(void)
{
        puts("Usage: vectl destroy CTID|NAME [OPTIONS]\n"
             "\n"
             "Destroy a stopped VE and its private area. This cannot be undone.\n"
             "\n"
             "Options:\n"
             "  --force                  destroy a running VE too (it is killed first)\n"
             "  --no-wait                print the operation id and return at once\n"
             "  -j, --json               print the finished operation as JSON\n"
             "  -h, --help               show this help");
        return 0;
}

static int parse_args(int argc, char **argv, struct op_follow *f, bool *force, bool *help,
                      struct ve_error *err)
{
        static const struct option opts[] = {
                { "force", no_argument, NULL, 'f' },
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
                        *force = true;
                else if (c == OPT_NO_WAIT)
                        f->no_wait = true;
                else if (c == 'j')
                        f->json = true;
                else if (c == 'h')
                        return *help = true, 0;
        }
        return cli_check_operands(argc, argv, 1, 1, "CTID", err);
}

int cmd_destroy(const struct cli *cli, int argc, char **argv, struct ve_error *err)
{
        _cleanup_response_ struct http_response resp = { 0 };
        struct op_follow f = { 0 };
        bool force = false, help = false;
        char path[128], label[128];
        int ret;

        ret = parse_args(argc, argv, &f, &force, &help, err);
        if (ret < 0 || help)
                return help ? usage() : ret;
        ret = cli_ve_path(argv[optind], force ? "?force=1" : "", path, sizeof(path), err);
        if (ret < 0)
                return ret;
        ret = http_json(cli, "DELETE", path, NULL, &resp, err);
        if (ret < 0)
                return ret;
        snprintf(label, sizeof(label), "Destroying VE %s", argv[optind]);
        f.label = label;
        return cli_op_follow(cli, resp.json, &f, err);
}
