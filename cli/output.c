#include "output.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void table_init(struct table *t, const struct table_column *cols, size_t ncols)
{
        memset(t, 0, sizeof(*t));
        t->cols = cols;
        t->ncols = ncols;
}

static int table_grow(struct table *t, struct ve_error *err)
{
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **cells;

        cells = reallocarray(t->cells, cap * t->ncols, sizeof(*cells));
        if (cells == NULL)
                return ve_error_set(err, ENOMEM, "out of memory");
        t->cells = cells;
        t->cap = cap;
        return 0;
}

int table_add_row(struct table *t, const char *const *cells, struct ve_error *err)
{
        char **row;
        int ret;

        if (t->nrows == t->cap) {
                ret = table_grow(t, err);
                if (ret < 0)
                        return ret;
        }
        row = t->cells + t->nrows * t->ncols;
        for (size_t c = 0; c < t->ncols; c++) {
                row[c] = strdup(cells[c] ? cells[c] : "-");
                if (row[c] == NULL) {
                        while (c-- > 0)
                                free(row[c]);
                        return ve_error_set(err, ENOMEM, "out of memory");
                }
        }
        t->nrows++;
        return 0;
}

static void print_row(const struct table *t, FILE *f, const char *const *cells, const size_t *width)
{
        for (size_t c = 0; c < t->ncols; c++) {
                bool last = c + 1 == t->ncols;
                int w = (int)width[c];

                if (c > 0)
                        fputs("  ", f);
                if (t->cols[c].right)
                        fprintf(f, "%*s", w, cells[c]);
                else if (last)
                        fputs(cells[c], f);
                else
                        fprintf(f, "%-*s", w, cells[c]);
        }
        fputc('\n', f);
}

void table_print(const struct table *t, FILE *f, bool header)
{
        _cleanup_free_ size_t *width = calloc(t->ncols ? t->ncols : 1, sizeof(*width));
        _cleanup_free_ const char **head = calloc(t->ncols ? t->ncols : 1, sizeof(*head));

        if (width == NULL || head == NULL)
                return;
        for (size_t c = 0; c < t->ncols; c++) {
                head[c] = t->cols[c].header;
                width[c] = header ? strlen(head[c]) : 0;
                for (size_t r = 0; r < t->nrows; r++) {
                        size_t len = strlen(t->cells[r * t->ncols + c]);

                        if (len > width[c])
                                width[c] = len;
                }
        }
        if (header)
                print_row(t, f, head, width);
        for (size_t r = 0; r < t->nrows; r++)
                print_row(t, f, (const char *const *)t->cells + r * t->ncols, width);
}

void table_free(struct table *t)
{
        for (size_t i = 0; i < t->nrows * t->ncols; i++)
                free(t->cells[i]);
        free(t->cells);
        t->cells = NULL;
        t->nrows = t->cap = 0;
}

void cli_print_json(const json_t *v)
{
        json_dumpf(v, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
        fputc('\n', stdout);
}

static char *scalar_text(const json_t *v)
{
        char *s = NULL;

        switch (json_typeof(v)) {
        case JSON_STRING:
                return strdup(json_string_value(v));
        case JSON_INTEGER:
                if (asprintf(&s, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) < 0)
                        return NULL;
                return s;
        case JSON_REAL:
                if (asprintf(&s, "%g", json_real_value(v)) < 0)
                        return NULL;
                return s;
        case JSON_TRUE:
                return strdup("yes");
        case JSON_FALSE:
                return strdup("no");
        default:
                return NULL;
        }
}

static char *array_text(const json_t *v)
{
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        const json_t *item;
        size_t i;

        if (f == NULL)
                return NULL;
        json_array_foreach(v, i, item)
        {
                _cleanup_free_ char *s = scalar_text(item);

                fprintf(f, "%s%s", i > 0 ? "," : "", s ? s : "-");
        }
        fclose(f);
        if (out != NULL && *out == '\0') {
                free(out);
                return NULL;
        }
        return out;
}

char *cli_json_text(const json_t *v)
{
        if (v == NULL || json_is_null(v))
                return NULL;
        if (json_is_array(v))
                return array_text(v);
        return scalar_text(v);
}

long long cli_json_id(const json_t *v)
{
        const json_t *id = json_object_get(v, "id");

        return json_is_integer(id) ? (long long)json_integer_value(id) : -1;
}
