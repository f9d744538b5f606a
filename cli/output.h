/* How vectl shows answers: aligned tables as vzlist prints them, and JSON. */
#ifndef CLI_OUTPUT_H
#define CLI_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "cli.h"

struct table_column {
        const char *header;
        bool right; /* right-aligned, for numbers */
};

struct table {
        const struct table_column *cols;
        size_t ncols;
        char **cells; /* nrows * ncols malloc'd strings */
        size_t nrows, cap;
};

void table_init(struct table *t, const struct table_column *cols, size_t ncols);

/* Appends a row of ncols cells, copied; a NULL cell prints as "-". */
int table_add_row(struct table *t, const char *const *cells, struct ve_error *err);

/* Columns are as wide as their widest cell, two spaces apart; the last column
 * is not padded. */
void table_print(const struct table *t, FILE *f, bool header);

void table_free(struct table *t);

static inline void table_freep(struct table *t)
{
        table_free(t);
}
#define _cleanup_table_ __attribute__((cleanup(table_freep)))

/* Prints v as indented JSON and a newline on stdout (for -j). */
void cli_print_json(const json_t *v);

/* A scalar or array of scalars as text: null -> NULL, true -> "yes", arrays
 * joined with ','. Returns a malloc'd string, or NULL. */
char *cli_json_text(const json_t *v);

/* The integer value of an operation's or event's id, or -1. */
long long cli_json_id(const json_t *v);

#endif
