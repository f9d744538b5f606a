/* A VE's user namespace: its uid/gid map and its idmapped root. Internal to ve/.
 *
 * Parent-side functions (ve_idmap_check, ve_idmap_write, ve_idmap_clone_root) run
 * in the daemon and may allocate; child-side ones (ve_idmap_attach_root,
 * ve_idmap_become_root) only make system calls (see child.h).
 */
#ifndef VE_IDMAP_H
#define VE_IDMAP_H

#include <stdbool.h>
#include <sys/types.h>

#include "child.h"
#include "error.h"
#include "start.h"

static inline bool ve_idmap_enabled(const struct ve_idmap *map)
{
        return map->count > 0;
}

/* A map is either zeroed (no user namespace) or count == VE_IDMAP_COUNT with
 * bases above 0 that do not wrap: the host's root is never inside a VE's range.
 * -EINVAL otherwise. */
int ve_idmap_check(const struct ve_idmap *map, struct ve_error *err);

/* Write /proc/<pid>/uid_map and gid_map as "0 <base> <count>". setgroups stays
 * "allow": a map written by a privileged parent needs no "deny", and the guest's
 * su and login need setgroups(2). */
int ve_idmap_write(pid_t pid, const struct ve_idmap *map, struct ve_error *err);

/* A detached clone of rootfs (and every mount under it), idmapped with the user
 * namespace of pid, whose maps are written: open_tree(OPEN_TREE_CLONE |
 * AT_RECURSIVE) + mount_setattr(MOUNT_ATTR_IDMAP). Only the initial user
 * namespace may idmap a mount of a filesystem it owns, so the daemon does this and
 * passes the fd to the child. Returns the O_CLOEXEC fd or -errno. */
int ve_idmap_clone_root(const char *rootfs, pid_t pid, struct ve_error *err);

/* Child side: attach the detached tree tree_fd on top of the directory target_fd
 * (both in the caller's mount namespace after the move). tree_fd then names the
 * mounted tree's root. */
int ve_idmap_attach_root(int tree_fd, int target_fd, struct ve_child_err *e);

/* Child side, after the maps are written: become uid and gid 0 of the user
 * namespace (host ids base), with no supplementary groups. Until then the child
 * runs as the host's root, which the namespace does not map. */
int ve_idmap_become_root(struct ve_child_err *e);

#endif
