/* Layered private areas: a VE's root as an overlay of its template's golden
 * image, mounted read-only once and shared by every layered VE of that template
 * (so the page cache of its files is shared too), under the VE's own image,
 * which holds only what the VE changed: its root directory has upper/ (the
 * changes) and work/ (overlayfs's scratch directory).
 *
 * Ids. Both layers keep guest ids on disk, as an image private area does. The
 * VE sees its root through idmapped clones of the two layers (an overlay mount
 * itself cannot be idmapped: mount_setattr() refuses it); the overlay over them
 * is made by the daemon with the VE root's host ids as its fsuid and fsgid
 * (and full capabilities), because overlayfs does its own work (its work
 * directory, copy-up) with the credentials of whoever made it, and host uid 0
 * has no place in the VE's range (EOVERFLOW: overlayfs would fall back to
 * read-only). The host writes into a stopped VE through an overlay of the raw
 * layers (guest ids), never while the VE's own overlay exists: two overlays must
 * not share an upper directory; into a running one through the VE's overlay, as
 * its root (ve_guest_apply_as()).
 *
 * Needs Linux >= 6.15: overlayfs layers given as O_PATH fds (FSCONFIG_SET_FD).
 *
 * Functions follow ve/error.h. */
#ifndef VE_LAYER_H
#define VE_LAYER_H

#include <sys/types.h>

#include "error.h"
#include "idmap.h"

/* The directories a layered VE's image holds at its root. */
#define VE_LAYER_UPPER "upper"
#define VE_LAYER_WORK  "work"

/* A detached overlay mount (fd, O_CLOEXEC) of lower (a directory: the template
 * layer's root) under upper_root's upper/ and work/, with the caller's
 * credentials. lower and upper_root are O_PATH directory fds, or clones of
 * mounts (open_tree). */
int ve_layer_make(int lower, int upper_root, struct ve_error *err);

/* The VE's root: the same over idmapped clones of the mounts at lower and
 * upper_root for the user namespace of pid (map: its ids), made with the VE
 * root's host ids (see above). The calling thread's fsuid and fsgid are back to
 * 0 on return. */
int ve_layer_make_idmapped(const char *lower, const char *upper_root, pid_t pid,
                           const struct ve_idmap *map, struct ve_error *err);

/* Mount the overlay of the raw layers on target (the host's writes into a
 * stopped layered VE); unmount it with umount2(target, UMOUNT_NOFOLLOW). */
int ve_layer_mount_raw(const char *lower, const char *upper_root, const char *target,
                       struct ve_error *err);

/* Run with this thread's fsuid and fsgid set to the VE root's host ids and full
 * effective capabilities, as the creator of an idmapped overlay: files the
 * thread makes through the VE's overlay belong to the VE's root. ve_layer_as_host()
 * goes back. */
int ve_layer_as_ve_root(const struct ve_idmap *map, struct ve_error *err);
void ve_layer_as_host(void);

#endif
