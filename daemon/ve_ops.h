/* The operation kinds that change VEs. Each is a table of steps run by the engine
 * in ops.c; the steps call ve/ and quota/ on worker threads. */
#ifndef VED_VE_OPS_H
#define VED_VE_OPS_H

#include "ops.h"

extern const struct ved_op_kind ved_op_create_kind;
struct ved_secrets;
/* Hand a create operation the request's secrets (daemon/guest_config.h): they
 * live only in its memory, and its "guest" step writes them into the new VE.
 * Call after ved_op_create(), before ved_op_run(). */
void ved_ve_op_give_secrets(struct ved_op *op, struct ved_secrets *s);
extern const struct ved_op_kind ved_op_destroy_kind;
extern const struct ved_op_kind ved_op_start_kind;
extern const struct ved_op_kind ved_op_stop_kind;
extern const struct ved_op_kind ved_op_restart_kind;

#endif
