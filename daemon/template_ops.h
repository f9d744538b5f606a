/* Template operations: import a tarball into a golden image; build one from a
 * recipe and import it. */
#ifndef VED_TEMPLATE_OPS_H
#define VED_TEMPLATE_OPS_H

#include "ops.h"
#include "ve/template.h"
#include "ve/template_build.h"

/* params: {"name": NAME, "sha256": HEX or null, "upload": path of the received file} */
extern const struct ved_op_kind ved_op_template_import_kind;

/* params: {"request": what was asked ("debian-12"), "name": the template it
 * makes ("debian-12-x86_64")}. Runs the recipe of the distro found in the
 * daemon's template-recipes directory into <templates>/cache/<name>.tar.zst,
 * then imports it as <name>. */
extern const struct ved_op_kind ved_op_template_build_kind;

/* Worker: build template r->name from its recipe and import it, for a create
 * that names a template not imported yet (as vzctl create fetches a missing
 * template cache). Concurrent calls for one template build it once: the later
 * ones get the first one's info. */
int ved_template_build_once(const char *templates_dir, const struct ve_template_recipe *r,
                            struct ve_template_info *info, struct ve_error *err);

/* Loop: record an imported template in the store, with its event. */
int ved_template_record(struct ved_op *op, const struct ve_template_info *info,
                        struct ve_error *err);

#endif
