/* Following the operation a 202 answer started, until it succeeds or fails. */
#ifndef CLI_OPERATION_H
#define CLI_OPERATION_H

#include "cli.h"

struct op_follow {
        const char *label; /* "Creating VE 101": printed with " ... done" */
        bool no_wait;      /* print the operation id (or the answer with json) and return */
        bool json;         /* print the final operation as JSON instead of the label */
        bool shown;        /* the label is printed already (before a long request) */
};

/* The operation in a 202 answer: answer.operation, or the answer itself when it is
 * an operation. Waits with GET /v1/operations/<id>?wait=30 until it is succeeded
 * or failed. A failed operation is CLI_EOPFAILED with the operation's message. */
int cli_op_follow(const struct cli *cli, const json_t *answer, const struct op_follow *f,
                  struct ve_error *err);

/* One GET /v1/operations/<id>[?wait=S] (wait < 0: no wait); *op gets a reference. */
int cli_op_get(const struct cli *cli, long long id, int wait, json_t **op, struct ve_error *err);

/* True once status is succeeded or failed. */
bool cli_op_finished(const json_t *op);

#endif
