/* The VE parameters vectl create and vectl set take, vzctl's options, in one
 * table: each option's JSON field, how its value is checked, and its help. */
#ifndef CLI_VE_OPTIONS_H
#define CLI_VE_OPTIONS_H

#include <stdio.h>

#include "cli.h"

enum ve_opt_for {
        VE_OPT_CREATE = 1,
        VE_OPT_SET = 2,
};

/* getopt_long values of the table's options are VE_OPT_BASE + index. */
#define VE_OPT_BASE 1000

/* Appends the options that apply to `which` to opts (room for max entries in
 * all), after the *n already there, and terminates the array. */
int ve_opts_longopts(enum ve_opt_for which, struct option *opts, size_t *n, size_t max);

/* Handles the option getopt returned (c >= VE_OPT_BASE) with its value: checks
 * the value as the daemon would and sets or appends the field in body. */
int ve_opts_apply(enum ve_opt_for which, int c, const char *value, json_t *body,
                  struct ve_error *err);

/* Prints the options for `which`, one per line, for --help. */
void ve_opts_help(enum ve_opt_for which, FILE *f);

#endif
