/* Building an OS template from its recipe (templates/<distro>/build).
 *
 * A recipe is an executable run as root on the host: `build OUTPUT [RELEASE]`
 * writes the template's tarball to OUTPUT and, optionally, its metadata to
 * OUTPUT.json ({"name", "distro", "release", "arch", "size", "sha256"}). Recipes
 * come from the daemon's recipe directory (a configuration key, the installed
 * share directory by default), never from a request: a request names only the
 * template ("debian-12"), whose distro picks the recipe.
 *
 * The result is then imported like any tarball (template.h), which checks every
 * entry: the recipe is trusted to run, its output is not trusted to be tidy. */
#ifndef VE_TEMPLATE_BUILD_H
#define VE_TEMPLATE_BUILD_H

#include <stddef.h>

#include "error.h"
#include "template.h"

struct ve_template_recipe {
        char name[VE_TEMPLATE_NAME_MAX + 1]; /* full template name: debian-12-x86_64 */
        char distro[64];
        char release[64];
        char arch[32];
        char recipe[4096]; /* <recipes_dir>/<distro>/build */
};

/* Resolve a requested name ("debian-12", "debian-12-x86_64") against recipes_dir:
 * the distro must have a recipe, the arch (when given) must be the host's, and
 * the full name gets the host's arch. VE_EINVAL_INPUT for a bad name or a foreign
 * arch, VE_ENOTFOUND when no recipe builds that distro. */
int ve_template_recipe_find(const char *recipes_dir, const char *name,
                            struct ve_template_recipe *out, struct ve_error *err);

/* The host's architecture as template names spell it (uname -m: x86_64). */
const char *ve_template_host_arch(void);

/* Run the recipe, writing <cache_dir>/<name>.tar.zst (and .json) with its
 * output logged to <cache_dir>/<name>.log. Blocks until it ends (minutes for
 * debootstrap): call from a worker. *sha256 gets the metadata's checksum, or ""
 * when the recipe wrote none; a metadata name other than r->name is refused. On
 * failure the error holds the last lines of the log. */
int ve_template_recipe_run(const struct ve_template_recipe *r, const char *cache_dir, char *tarball,
                           size_t tarball_len, char sha256[65], struct ve_error *err);

#endif
