/* vectl template list|import|build|remove: OS templates through /v1/templates. */
#include "cli.h"
#include "exitcode.h"
#include "http.h"
#include "operation.h"
#include "output.h"
#include "ve/parse.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { OPT_NAME = 256, OPT_SHA256, OPT_NO_WAIT };

struct template_args {
        const char *name, *sha256;
        struct op_follow f;
        bool header, help;
};

static const char list_usage[] = "Usage: vectl template list [OPTIONS]\n"
                                 "\n"
                                 "List the OS templates ved has imported.\n"
                                 "\n"
                                 "Options:\n"
                                 "  -H, --no-header          do not print the header line\n"
                                 "  -j, --json               print the daemon's answer as JSON\n"
                                 "  -h, --help               show this help\n";

static const char import_usage[] =
    "Usage: vectl template import FILE [OPTIONS]\n"
    "\n"
    "Import an OS template tarball into ved. The file is streamed to the daemon,\n"
    "which reads it whole first: a tarball holding a '..', an absolute path, a\n"
    "write through a symlink or a device node, or past the size caps, is refused\n"
    "(exit 6, naming the entry) and nothing of it is kept. Then the daemon makes\n"
    "the template's image.\n"
    "\n"
    "Options:\n"
    "  --name NAME              template name (default: FILE's name without\n"
    "                           .tar, .tar.gz, .tgz, .tar.xz, .tar.zst, .tar.bz2,\n"
    "                           .tar.lz and the like)\n"
    "  --sha256 HEX             refuse the file unless its SHA-256 is HEX\n"
    "  --no-wait                print the operation id once the file is accepted\n"
    "  -j, --json               print the finished operation as JSON\n"
    "  -h, --help               show this help\n";

static const char build_usage[] =
    "Usage: vectl template build NAME [OPTIONS]\n"
    "\n"
    "Build an OS template with its recipe on the daemon's host and import it:\n"
    "NAME is a distribution and release, such as debian-12; the template is\n"
    "named after it and the host's architecture (debian-12-x86_64). The\n"
    "recipe (templates/<distro>/build) downloads from the distribution's\n"
    "mirror: this takes minutes. The tarball is kept in the daemon's template\n"
    "cache (<state>/templates/cache).\n"
    "\n"
    "Options:\n"
    "  --no-wait                print the operation id and return at once\n"
    "  -j, --json               print the finished operation as JSON\n"
    "  -h, --help               show this help\n";

static const char remove_usage[] = "Usage: vectl template remove NAME [OPTIONS]\n"
                                   "\n"
                                   "Remove an OS template. VEs made from it keep working.\n"
                                   "\n"
                                   "Options:\n"
                                   "  --no-wait                if ved removes it as an "
                                   "operation, print its id and return\n"
                                   "  -j, --json               print the answer as JSON\n"
                                   "  -h, --help               show this help\n";

static const struct option list_opts[] = {
        { "no-header", no_argument, NULL, 'H' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
};

static const struct option import_opts[] = {
        { "name", required_argument, NULL, OPT_NAME },
        { "sha256", required_argument, NULL, OPT_SHA256 },
        { "no-wait", no_argument, NULL, OPT_NO_WAIT },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
};

static const struct option build_opts[] = {
        { "no-wait", no_argument, NULL, OPT_NO_WAIT },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
};

static const struct option remove_opts[] = {
        { "no-wait", no_argument, NULL, OPT_NO_WAIT },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
};

static int parse_args(int argc, char **argv, const struct option *opts, struct template_args *a,
                      struct ve_error *err)
{
        int c;

        cli_getopt_reset();
        while ((c = cli_getopt(argc, argv, "Hjh", opts, err)) != -1) {
                if (c == CLI_OPT_ERROR)
                        return -EINVAL;
                else if (c == OPT_NAME)
                        a->name = optarg;
                else if (c == OPT_SHA256)
                        a->sha256 = optarg;
                else if (c == OPT_NO_WAIT)
                        a->f.no_wait = true;
                else if (c == 'H' && opts == list_opts)
                        a->header = false;
                else if (c == 'j')
                        a->f.json = true;
                else if (c == 'h')
                        a->help = true;
                else
                        return ve_error_set(err, CLI_EUSAGE, "%s: unknown option '-%c'", argv[0],
                                            c);
        }
        return 0;
}

static const struct table_column list_cols[] = {
        { "NAME", false }, { "DISTRO", false }, { "RELEASE", false },
        { "ARCH", false }, { "SIZE", true },    { "CREATED", false },
};

#define LIST_COLS (sizeof(list_cols) / sizeof(list_cols[0]))

static int add_template(struct table *t, const json_t *tpl, struct ve_error *err)
{
        static const char *const keys[LIST_COLS] = { "name", "distro", "release",
                                                     "arch", "size",   "created_at" };
        const json_t *size = json_object_get(tpl, "size");
        char *cells[LIST_COLS];
        char buf[32];
        int ret;

        for (size_t c = 0; c < LIST_COLS; c++)
                cells[c] = cli_json_text(json_object_get(tpl, keys[c]));
        if (json_is_integer(size) && json_integer_value(size) >= 0) {
                free(cells[4]);
                cells[4] =
                    strdup(ve_format_size((uint64_t)json_integer_value(size), buf, sizeof(buf)));
        }
        ret = table_add_row(t, (const char *const *)cells, err);
        for (size_t c = 0; c < LIST_COLS; c++)
                free(cells[c]);
        return ret;
}

static int print_templates(const json_t *answer, bool header, struct ve_error *err)
{
        const json_t *list = json_object_get(answer, "templates"), *tpl;
        _cleanup_table_ struct table t = { 0 };
        size_t i;
        int ret;

        if (!json_is_array(list))
                return ve_error_set(err, EPROTO, "ved's answer holds no list of templates");
        table_init(&t, list_cols, LIST_COLS);
        json_array_foreach(list, i, tpl)
        {
                ret = add_template(&t, tpl, err);
                if (ret < 0)
                        return ret;
        }
        table_print(&t, stdout, header);
        return 0;
}

static int template_list(const struct cli *cli, int argc, char **argv, struct ve_error *err)
{
        _cleanup_response_ struct http_response resp = { 0 };
        struct template_args a = { .header = true };
        int ret;

        ret = parse_args(argc, argv, list_opts, &a, err);
        if (ret < 0 || a.help)
                return a.help ? cli_usage(list_usage) : ret;
        ret = cli_check_operands(argc, argv, 0, 0, NULL, err);
        if (ret == 0)
                ret = http_json(cli, "GET", "/v1/templates", NULL, &resp, err);
        if (ret < 0)
                return ret;
        if (a.f.json) {
                cli_print_json(resp.json);
                return 0;
        }
        return print_templates(resp.json, a.header, err);
}

/* A compressor's suffix after ".tar" (".gz", ".lz", ".zst"): short, letters
 * and digits. */
static bool compressor_suffix(const char *s)
{
        size_t n = strlen(s);

        return s[0] == '.' && n >= 2 && n <= 6 &&
               strspn(s + 1, "abcdefghijklmnopqrstuvwxyz0123456789") == n - 1;
}

/* "debian-12-amd64.tar.gz" -> "debian-12-amd64": ".tar" and what compressed
 * it (any: libarchive reads them), or a short form (.tgz, .txz, ...). */
static char *default_name(const char *file)
{
        static const char *const short_exts[] = {
                ".tgz", ".tbz", ".tbz2", ".txz", ".tlz", ".tzst"
        };
        const char *base = strrchr(file, '/'), *tar;
        size_t len;

        base = base ? base + 1 : file;
        len = strlen(base);
        for (tar = strstr(base, ".tar"); tar != NULL; tar = strstr(tar + 1, ".tar"))
                if (tar > base && (tar[4] == '\0' || compressor_suffix(tar + 4)))
                        return strndup(base, (size_t)(tar - base));
        for (size_t i = 0; i < sizeof(short_exts) / sizeof(short_exts[0]); i++) {
                size_t elen = strlen(short_exts[i]);

                if (len > elen && strcmp(base + len - elen, short_exts[i]) == 0)
                        return strndup(base, len - elen);
        }
        return strndup(base, len);
}

static int check_sha256(const char *hex, struct ve_error *err)
{
        size_t i;

        for (i = 0; hex[i] != '\0'; i++)
                if (!isxdigit((unsigned char)hex[i]))
                        break;
        if (i != 64 || hex[i] != '\0')
                return ve_error_set(err, VE_EINVAL_INPUT,
                                    "--sha256: '%s' is not 64 hexadecimal digits", hex);
        return 0;
}

static int import_path(const struct template_args *a, const char *name, char *path, size_t len,
                       struct ve_error *err)
{
        int ret;

        ret = ve_check_template_name(name, err);
        if (ret < 0)
                return ret;
        if (a->sha256 != NULL) {
                ret = check_sha256(a->sha256, err);
                if (ret < 0)
                        return ret;
        }
        /* Both are checked to need no escaping. */
        snprintf(path, len, "/v1/templates?name=%s%s%s", name, a->sha256 ? "&sha256=" : "",
                 a->sha256 ? a->sha256 : "");
        return 0;
}

/* Send file as the body of POST path. The answer comes once the whole tarball is
 * sent and checked: f's label says what is going on meanwhile. */
static int upload(const struct cli *cli, const char *file, const char *path, struct op_follow *f,
                  struct http_response *resp, struct ve_error *err)
{
        _cleanup_fclose_ FILE *fp = fopen(file, "re");
        struct http_request req = { .method = "POST", .path = path };
        struct stat st;
        int ret;

        if (fp == NULL)
                return ve_error_errno(err, errno, "cannot open %s", file);
        if (fstat(fileno(fp), &st) < 0)
                return ve_error_errno(err, errno, "cannot stat %s", file);
        if (!S_ISREG(st.st_mode))
                return ve_error_set(err, VE_EINVAL_INPUT, "%s is not a regular file", file);
        req.upload = fp;
        req.upload_size = st.st_size;
        if (!f->no_wait && !f->json) {
                printf("%s ... ", f->label);
                fflush(stdout);
                f->shown = true;
        }
        ret = http_do(cli, &req, resp, err);
        if (ret < 0 && f->shown)
                printf("failed\n");
        return ret;
}

static int template_import(const struct cli *cli, int argc, char **argv, struct ve_error *err)
{
        _cleanup_response_ struct http_response resp = { 0 };
        struct template_args a = { 0 };
        _cleanup_free_ char *name = NULL;
        char path[512], label[256];
        int ret;

        ret = parse_args(argc, argv, import_opts, &a, err);
        if (ret < 0 || a.help)
                return a.help ? cli_usage(import_usage) : ret;
        ret = cli_check_operands(argc, argv, 1, 1, "FILE", err);
        if (ret < 0)
                return ret;
        name = a.name ? strdup(a.name) : default_name(argv[optind]);
        if (name == NULL)
                return ve_error_set(err, ENOMEM, "out of memory");
        ret = import_path(&a, name, path, sizeof(path), err);
        snprintf(label, sizeof(label), "Importing template %s", name);
        a.f.label = label;
        if (ret == 0)
                ret = upload(cli, argv[optind], path, &a.f, &resp, err);
        if (ret < 0)
                return ret;
        return cli_op_follow(cli, resp.json, &a.f, err);
}

static int template_build(const struct cli *cli, int argc, char **argv, struct ve_error *err)
{
        _cleanup_response_ struct http_response resp = { 0 };
        struct template_args a = { 0 };
        _cleanup_json_ json_t *body = NULL;
        char label[256];
        int ret;

        ret = parse_args(argc, argv, build_opts, &a, err);
        if (ret < 0 || a.help)
                return a.help ? cli_usage(build_usage) : ret;
        ret = cli_check_operands(argc, argv, 1, 1, "NAME", err);
        if (ret == 0)
                ret = ve_check_template_name(argv[optind], err);
        if (ret < 0)
                return ret;
        body = json_pack("{s:s}", "name", argv[optind]);
        ret = http_json(cli, "POST", "/v1/templates/build", body, &resp, err);
        if (ret < 0)
                return ret;
        snprintf(label, sizeof(label), "Building template %s", argv[optind]);
        a.f.label = label;
        return cli_op_follow(cli, resp.json, &a.f, err);
}

static int template_remove(const struct cli *cli, int argc, char **argv, struct ve_error *err)
{
        _cleanup_response_ struct http_response resp = { 0 };
        struct template_args a = { 0 };
        char path[256], label[256];
        int ret;

        ret = parse_args(argc, argv, remove_opts, &a, err);
        if (ret < 0 || a.help)
                return a.help ? cli_usage(remove_usage) : ret;
        ret = cli_check_operands(argc, argv, 1, 1, "NAME", err);
        if (ret == 0)
                ret = ve_check_template_name(argv[optind], err);
        if (ret < 0)
                return ret;
        snprintf(path, sizeof(path), "/v1/templates/%s", argv[optind]);
        ret = http_json(cli, "DELETE", path, NULL, &resp, err);
        if (ret < 0)
                return ret;
        if (resp.status == 202) {
                snprintf(label, sizeof(label), "Removing template %s", argv[optind]);
                a.f.label = label;
                return cli_op_follow(cli, resp.json, &a.f, err);
        }
        if (a.f.json && resp.json != NULL)
                cli_print_json(resp.json);
        else if (!a.f.json)
                printf("Template %s removed\n", argv[optind]);
        return 0;
}

static const struct cli_subcmd subs[] = {
        { "list", "template list", template_list, "list the OS templates" },
        { "import", "template import", template_import, "import an OS template tarball" },
        { "build", "template build", template_build,
          "build an OS template from its recipe (debootstrap) and import it" },
        { "remove", "template remove", template_remove, "remove an OS template" },
};

int cmd_template(const struct cli *cli, int argc, char **argv, struct ve_error *err)
{
        return cli_dispatch_sub(cli, subs, sizeof(subs) / sizeof(subs[0]),
                                "Usage: vectl template COMMAND [ARGS...]\n", argc, argv, err);
}
