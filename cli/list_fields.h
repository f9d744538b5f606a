/* The fields of vectl list (vzlist's -o, -s): which VE value each shows, how it
 * prints and sorts. Pure logic on VE objects, without I/O, so it can be tested. */
#ifndef CLI_LIST_FIELDS_H
#define CLI_LIST_FIELDS_H

#include <stdbool.h>
#include <stddef.h>

#include "cli.h"

enum list_kind {
        LIST_INT,  /* a count: right-aligned */
        LIST_SIZE, /* bytes: printed as 2.0G, right-aligned */
        LIST_TEXT,
        LIST_LIST,    /* an array, joined with ',' */
        LIST_BOOL,    /* yes/no */
        LIST_PERCENT, /* a number with one decimal */
};

struct list_field {
        const char *name;   /* as given to -o and -s */
        const char *header; /* column header */
        const char *key;    /* the VE object's key; '.' descends into objects */
        enum list_kind kind;
        const char *help;
};

struct list_sort {
        const struct list_field *field;
        bool desc;
};

#define LIST_DEFAULT_FIELDS "ctid,numproc,status,ip,hostname"
#define LIST_MAX_FIELDS     32

/* The known fields, in the order -L prints them; NULL past the end. */
const struct list_field *list_field_at(size_t i);
const struct list_field *list_field_find(const char *name);

/* Parses "ctid,ram,status" into fields (at most max). An unknown field is
 * CLI_EUSAGE naming it. */
int list_fields_parse(const char *spec, const struct list_field **fields, size_t max, size_t *n,
                      struct ve_error *err);

/* Parses "ram" or "-ram" (descending). */
int list_sort_parse(const char *spec, struct list_sort *sort, struct ve_error *err);

/* The field's value in ve, or NULL when missing (null is returned as is). */
const json_t *list_field_value(const struct list_field *f, const json_t *ve);

/* The cell text of the field for ve, malloc'd; NULL when missing or null. */
char *list_field_text(const struct list_field *f, const json_t *ve);

/* Whether the field comes from GET /v1/usage rather than the VE record. */
bool list_field_is_usage(const struct list_field *f);

/* Orders two VEs by the sort field (numbers as numbers, text in natural order,
 * missing values first), then by CTID. */
int list_compare(const struct list_sort *sort, const json_t *a, const json_t *b);

#endif
