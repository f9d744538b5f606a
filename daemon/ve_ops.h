/* The operation kinds that change VEs: create, destroy (and, with the runtime,
 * start, stop, restart). Each is a table of steps run by the engine in ops.c. */
#ifndef VED_VE_OPS_H
#define VED_VE_OPS_H

#include "ops.h"

extern const struct ved_op_kind ved_op_create_kind;
extern const struct ved_op_kind ved_op_destroy_kind;

#endif
