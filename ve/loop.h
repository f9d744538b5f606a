/* Loop devices for VE private areas, driven by ioctls only (no losetup).
 *
 * An image is attached with LOOP_CONFIGURE and LO_FLAGS_AUTOCLEAR: the kernel
 * detaches the device when its last user goes away. The last user is normally
 * the mount of the private area, so a daemon crash leaves running VEs alone
 * (the mount keeps the device busy) and an unmount never leaves an orphan loop
 * device behind. The daemon re-finds the device of an image after a restart
 * with ve_loop_find(), which reads /sys/block/loopN/loop/backing_file. */
#ifndef VE_LOOP_H
#define VE_LOOP_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* Attach img to a free loop device; its path ("/dev/loopN") is written to dev
 * (len bytes, at least 32). Returns an open fd on the device (O_CLOEXEC) that
 * the caller must keep open until something else holds the device (a mount),
 * then close: with autoclear, closing it while nothing else uses the device
 * detaches it. Races with other attachers (EBUSY) are retried. read_only
 * attaches read-only. Returns -errno and fills err on failure. */
int ve_loop_attach(const char *img, bool read_only, char *dev, size_t len, struct ve_error *err);

/* Find the loop device backed by img (compared by canonical path). Returns 0
 * and writes "/dev/loopN" to dev, -ENOENT (err untouched) when no loop device
 * uses img, another -errno with err filled on failure. */
int ve_loop_find(const char *img, char *dev, size_t len, struct ve_error *err);

/* 0 when img is attached to no loop device; -EBUSY (err names the device) when it
 * is, as the image of a VE that runs; or another -errno. */
int ve_loop_refuse_attached(const char *img, struct ve_error *err);

/* Detach dev (LOOP_CLR_FD). A device still in use (mounted) is not torn down:
 * the kernel marks it autoclear and it goes when its user does; that counts as
 * success. A device that is already free returns 0. */
int ve_loop_detach(const char *dev, struct ve_error *err);

/* Tell the loop device the backing file changed size (LOOP_SET_CAPACITY), after
 * the image was grown with ftruncate. */
int ve_loop_set_capacity(const char *dev, struct ve_error *err);

#endif
