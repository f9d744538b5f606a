#include "cli.h"
#include "exitcode.h"
#include "ve/parse.h"

#include <stdio.h>
#include <string.h>

void cli_getopt_reset(void)
{
        /* glibc: 0 also resets its internal state (e.g. after "+" in shortopts). */
        optind = 0;
        opterr = 0;
}

int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts,
               struct ve_error *err)
{
        char opts[128];
        const char *bad;
        int c;

        /* A leading ':' (after '+') makes a missing value return ':' rather than '?'. */
        if (shortopts[0] == '+')
                snprintf(opts, sizeof(opts), "+:%s", shortopts + 1);
        else
                snprintf(opts, sizeof(opts), ":%s", shortopts);
        c = getopt_long(argc, argv, opts, longopts, NULL);
        if (c != '?' && c != ':')
                return c;
        bad = argv[optind - 1];
        if (c == ':')
                ve_error_set(err, CLI_EUSAGE, "%s: option '%s' needs a value", argv[0], bad);
        else if (optopt != 0)
                ve_error_set(err, CLI_EUSAGE, "%s: unknown option '-%c'", argv[0], optopt);
        else
                ve_error_set(err, CLI_EUSAGE, "%s: unknown option '%s'", argv[0], bad);
        return CLI_OPT_ERROR;
}

int cli_check_operands(int argc, char **argv, int min, int max, const char *what,
                       struct ve_error *err)
{
        int n = argc - optind;

        if (n < min)
                return ve_error_set(err, CLI_EUSAGE, "%s: missing %s", argv[0],
                                    what ? what : "argument");
        if (max >= 0 && n > max)
                return ve_error_set(err, CLI_EUSAGE, "%s: unexpected argument '%s'", argv[0],
                                    argv[optind + max]);
        return 0;
}

int cli_ve_path(const char *arg, const char *suffix, char *path, size_t len, struct ve_error *err)
{
        uint32_t ctid;
        int ret;

        ret = ve_parse_ctid(arg, &ctid, err);
        if (ret == 0) {
                snprintf(path, len, "/v1/ves/%u%s", ctid, suffix);
                return 0;
        }
        if (err->code != 0)
                return ret;
        ret = ve_check_name(arg, err);
        if (ret < 0)
                return ve_error_set(err, VE_EINVAL_INPUT, "'%s' is neither a CTID nor a VE name",
                                    arg);
        snprintf(path, len, "/v1/ves/%s%s", arg, suffix);
        return 0;
}

int cli_usage(const char *text)
{
        fputs(text, stdout);
        return 0;
}

static int sub_usage(const struct cli_subcmd *subs, size_t n, const char *usage)
{
        fputs(usage, stdout);
        puts("\nCommands:");
        for (size_t i = 0; i < n; i++)
                printf("  %-20s %s\n", subs[i].full, subs[i].help);
        puts("Each command takes --help for its options.");
        return 0;
}

int cli_dispatch_sub(const struct cli *cli, const struct cli_subcmd *subs, size_t n,
                     const char *usage, int argc, char **argv, struct ve_error *err)
{
        const char *sub = argc > 1 ? argv[1] : NULL;

        if (sub == NULL)
                return ve_error_set(err, CLI_EUSAGE,
                                    "%s: missing command ('vectl %s help' lists them)", argv[0],
                                    argv[0]);
        if (strcmp(sub, "help") == 0 || strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0)
                return sub_usage(subs, n, usage);
        for (size_t i = 0; i < n; i++) {
                if (strcmp(sub, subs[i].name) == 0) {
                        argv[1] = (char *)subs[i].full;
                        return subs[i].fn(cli, argc - 1, argv + 1, err);
                }
        }
        return ve_error_set(err, CLI_EUSAGE, "%s: unknown command '%s'", argv[0], sub);
}
