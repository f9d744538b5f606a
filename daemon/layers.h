/* The daemon's side of layered private areas (ve/layer.h): each template's
 * golden image mounted read-only once, at templates/<name>.layer, for every
 * layered VE of it; and the empty image a layered VE's own image is cloned from,
 * templates/.layered.img (upper/ and work/ at its root). Thread-safe: operations
 * call these from workers. */
#ifndef VED_LAYERS_H
#define VED_LAYERS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "ve/error.h"

/* Whether a VE record's layout is "layered". */
bool ved_layered(json_t *ve);

/* templates/<name>.layer into buf (len bytes). */
void ved_layer_path(const char *templates_dir, const char *name, char *buf, size_t len);

/* Mount template name's golden image read-only at its layer path unless it is
 * mounted already; its path in buf. */
int ved_layer_get(const char *templates_dir, const char *name, char *buf, size_t len,
                  struct ve_error *err);

/* Unmount template name's layer if it is mounted, and remove its mount point
 * (the template goes away; no layered VE may use it). */
int ved_layer_drop(const char *templates_dir, const char *name, struct ve_error *err);

/* Daemon exit with no VE running: unmount every template's layer. */
void ved_layers_release(const char *templates_dir);

/* The empty image layered VEs are cloned from, made once; its path in buf. */
int ved_layer_base(const char *templates_dir, char *buf, size_t len, struct ve_error *err);

#endif
