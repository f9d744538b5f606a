/* Host-side writes inside a VE's root (hostname, network files, passwords).
 *
 * The VE's root is the guest's: any path in it may be a symlink planted to point
 * at the host. Every path is resolved with openat2(RESOLVE_IN_ROOT), so ".." and
 * absolute symlinks stay inside the root, and files are replaced by renaming a
 * new file over them in their directory, which replaces a symlink rather than
 * writing through it. */
#ifndef VE_GUEST_H
#define VE_GUEST_H

#include <stddef.h>
#include <sys/types.h>

#include "error.h"

/* Replace file `path` (absolute inside the VE) under the host directory root with
 * content, mode mode, owned by root. The parent directory must exist. */
int ve_guest_write_file(const char *root, const char *path, const char *content, size_t len,
                        mode_t mode, struct ve_error *err);

/* Write /etc/hostname. */
int ve_guest_set_hostname(const char *root, const char *hostname, struct ve_error *err);

#endif
