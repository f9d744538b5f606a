/* Template operations: import a tarball into a golden image; build one from a
 * recipe and import it. */
#ifndef VED_TEMPLATE_OPS_H
#define VED_TEMPLATE_OPS_H

#include "ops.h"

/* params: {"name": NAME, "sha256": HEX or null, "upload": path of the received file} */
extern const struct ved_op_kind ved_op_template_import_kind;

/* params: {"request": what was asked ("debian-12"), "name": the template it
 * makes ("debian-12-x86_64")}. Runs the recipe of the distro found in the
 * daemon's template-recipes directory into <templates>/cache/<name>.tar.zst,
 * then imports it as <name>. */
extern const struct ved_op_kind ved_op_template_build_kind;

#endif
