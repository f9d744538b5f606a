/* vectl list: vzlist's table of VEs from GET /v1/ves. */
#include "cli.h"
#include "exitcode.h"
#include "http.h"
#include "list_fields.h"
#include "output.h"
#include "ve/parse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct list_args {
        bool all, stopped;
        const char *name;
        const char *output;
        const char *sort;
        bool header, json, fields_only, help;
};

static int usage(void)
{
        puts("Usage: vectl list [OPTIONS]\n"
             "\n"
             "List VEs as vzlist does. By default: running VEs, with the columns\n"
             "CTID NPROC STATUS IP_ADDR HOSTNAME, sorted by CTID.\n"
             "\n"
             "Options:\n"
             "  -a, --all                all VEs, whatever their state\n"
             "  -S, --stopped            only stopped VEs (wins over -a)\n"
             "  -N, --name NAME          only the VE with this name, in any state unless -S\n"
             "  -o, --output FIELDS      comma-separated fields to show (see -L)\n"
             "  -s, --sort [-]FIELD      sort by FIELD; '-' sorts in descending order\n"
             "  -H, --no-header          do not print the header line\n"
             "  -j, --json               print a JSON array of the VEs (only the -o fields\n"
             "                           when -o is given)\n"
             "  -L, --list               list the fields and exit\n"
             "  -h, --help               show this help\n"
             "A field with no value shows as '-'.");
        return 0;
}

static int parse_args(int argc, char **argv, struct list_args *a, struct ve_error *err)
{
        static const struct option opts[] = {
                { "all", no_argument, NULL, 'a' },
                { "stopped", no_argument, NULL, 'S' },
                { "name", required_argument, NULL, 'N' },
                { "output", required_argument, NULL, 'o' },
                { "sort", required_argument, NULL, 's' },
                { "no-header", no_argument, NULL, 'H' },
                { "json", no_argument, NULL, 'j' },
                { "list", no_argument, NULL, 'L' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        int c;

        cli_getopt_reset();
        while ((c = cli_getopt(argc, argv, "aSN:o:s:HjLh", opts, err)) != -1) {
                switch (c) {
                case CLI_OPT_ERROR:
                        return -EINVAL;
                case 'a':
                        a->all = true;
                        break;
                case 'S':
                        a->stopped = true;
                        break;
                case 'N':
                        a->name = optarg;
                        break;
                case 'o':
                        a->output = optarg;
                        break;
                case 's':
                        a->sort = optarg;
                        break;
                case 'H':
                        a->header = false;
                        break;
                case 'j':
                        a->json = true;
                        break;
                case 'L':
                        a->fields_only = true;
                        break;
                case 'h':
                        a->help = true;
                        return 0;
                }
        }
        return cli_check_operands(argc, argv, 0, 0, NULL, err);
}

static int print_fields(void)
{
        const struct list_field *f;

        for (size_t i = 0; (f = list_field_at(i)) != NULL; i++)
                printf("%-12s %-12s %s\n", f->name, f->header, f->help);
        return 0;
}

/* GET /v1/ves with the filters: running VEs unless -a or -N; -S wins. */
static int list_path(const struct list_args *a, char *path, size_t len, struct ve_error *err)
{
        const char *state = a->stopped ? "stopped" : a->all || a->name ? NULL : "running";
        const char *sep = "?";
        int n;

        if (a->name != NULL && ve_check_name(a->name, err) < 0)
                return -EINVAL;
        n = snprintf(path, len, "/v1/ves");
        if (state != NULL) {
                n += snprintf(path + n, len - (size_t)n, "%sstate=%s", sep, state);
                sep = "&";
        }
        if (a->name != NULL)
                snprintf(path + n, len - (size_t)n, "%sname=%s", sep, a->name);
        return 0;
}

static int compare_cb(const void *x, const void *y, void *data)
{
        return list_compare(data, *(json_t *const *)x, *(json_t *const *)y);
}

/* The VEs of the answer, sorted; *ves is malloc'd, the elements borrowed. */
static int sorted_ves(const json_t *answer, const struct list_sort *sort, json_t ***ves, size_t *n,
                      struct ve_error *err)
{
        const json_t *arr = json_object_get(answer, "ves");
        json_t *ve;
        size_t i;

        if (!json_is_array(arr))
                return ve_error_set(err, EPROTO, "ved's answer holds no list of VEs");
        *n = json_array_size(arr);
        *ves = calloc(*n ? *n : 1, sizeof(**ves));
        if (*ves == NULL)
                return ve_error_set(err, ENOMEM, "out of memory");
        json_array_foreach(arr, i, ve)(*ves)[i] = ve;
        qsort_r(*ves, *n, sizeof(**ves), compare_cb, (void *)sort);
        return 0;
}

static int print_json(json_t **ves, size_t n, const struct list_field **fields, size_t nf,
                      bool selected)
{
        _cleanup_json_ json_t *out = json_array();

        for (size_t i = 0; i < n; i++) {
                json_t *o = selected ? json_object() : json_incref(ves[i]);

                for (size_t c = 0; selected && c < nf; c++) {
                        const json_t *v = list_field_value(fields[c], ves[i]);

                        json_object_set_new(o, fields[c]->name,
                                            v ? json_deep_copy(v) : json_null());
                }
                json_array_append_new(out, o);
        }
        cli_print_json(out);
        return 0;
}

static int print_table(json_t **ves, size_t n, const struct list_field **fields, size_t nf,
                       bool header, struct ve_error *err)
{
        _cleanup_table_ struct table t = { 0 };
        struct table_column cols[LIST_MAX_FIELDS];
        char *cells[LIST_MAX_FIELDS];
        int ret = 0;

        for (size_t c = 0; c < nf; c++)
                cols[c] =
                    (struct table_column){ fields[c]->header, fields[c]->kind == LIST_INT ||
                                                                  fields[c]->kind == LIST_SIZE ||
                                                                  fields[c]->kind == LIST_PERCENT };
        table_init(&t, cols, nf);
        for (size_t i = 0; i < n && ret == 0; i++) {
                for (size_t c = 0; c < nf; c++)
                        cells[c] = list_field_text(fields[c], ves[i]);
                ret = table_add_row(&t, (const char *const *)cells, err);
                for (size_t c = 0; c < nf; c++)
                        free(cells[c]);
        }
        if (ret == 0)
                table_print(&t, stdout, header);
        return ret;
}

static bool wants_usage(const struct list_field **fields, size_t nf, const struct list_sort *sort)
{
        for (size_t c = 0; c < nf; c++)
                if (list_field_is_usage(fields[c]))
                        return true;
        return list_field_is_usage(sort->field);
}

/* Put each VE's object of GET /v1/usage under its "usage" key. */
static int merge_usage(const struct cli *cli, json_t *answer, struct ve_error *err)
{
        _cleanup_response_ struct http_response resp = { 0 };
        json_t *ves = json_object_get(answer, "ves"), *u, *ve;
        size_t i, j;
        int ret;

        ret = http_json(cli, "GET", "/v1/usage", NULL, &resp, err);
        if (ret < 0)
                return ret;
        json_array_foreach(json_object_get(resp.json, "usage"), i, u)
        {
                json_array_foreach(ves, j, ve)
                {
                        if (json_equal(json_object_get(ve, "ctid"), json_object_get(u, "ctid")))
                                json_object_set(ve, "usage", u);
                }
        }
        return 0;
}

int cmd_list(const struct cli *cli, int argc, char **argv, struct ve_error *err)
{
        struct list_args a = { .header = true };
        _cleanup_response_ struct http_response resp = { 0 };
        const struct list_field *fields[LIST_MAX_FIELDS];
        struct list_sort sort = { list_field_find("ctid"), false };
        _cleanup_free_ json_t **ves = NULL;
        size_t nf = 0, n = 0;
        char path[256];
        int ret;

        ret = parse_args(argc, argv, &a, err);
        if (ret < 0 || a.help || a.fields_only)
                return a.help ? usage() : a.fields_only ? print_fields() : ret;
        ret = list_fields_parse(a.output ? a.output : LIST_DEFAULT_FIELDS, fields, LIST_MAX_FIELDS,
                                &nf, err);
        if (ret == 0 && a.sort != NULL)
                ret = list_sort_parse(a.sort, &sort, err);
        if (ret == 0)
                ret = list_path(&a, path, sizeof(path), err);
        if (ret == 0)
                ret = http_json(cli, "GET", path, NULL, &resp, err);
        if (ret == 0 && wants_usage(fields, nf, &sort))
                ret = merge_usage(cli, resp.json, err);
        if (ret == 0)
                ret = sorted_ves(resp.json, &sort, &ves, &n, err);
        if (ret < 0)
                return ret;
        if (a.json)
                return print_json(ves, n, fields, nf, a.output != NULL);
        return print_table(ves, n, fields, nf, a.header, err);
}
