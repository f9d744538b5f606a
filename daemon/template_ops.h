/* Template operations: import a tarball into a golden image. */
#ifndef VED_TEMPLATE_OPS_H
#define VED_TEMPLATE_OPS_H

#include "ops.h"

/* params: {"name": NAME, "sha256": HEX or null, "upload": path of the received file} */
extern const struct ved_op_kind ved_op_template_import_kind;

#endif
