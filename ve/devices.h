/* The VE's /dev: a fresh tmpfs holding only an allow-list of nodes. Internal to
 * ve/; child-safe (see child.h). */
#ifndef VE_DEVICES_H
#define VE_DEVICES_H

#include <stdbool.h>

#include "child.h"

/* Mount a small tmpfs on the rootfs's /dev (checked not to be a symlink) with
 * null, zero, full, random, urandom and tty (mode 0666), console (a bind mount of
 * console_fd, the host-side pty slave /dev/pts/<console_index>, so the daemon's
 * master sees init's output), pts (a new devpts instance: the VE's ptys are
 * invisible to the host's and the other VEs'), ptmx -> pts/ptmx, shm (tmpfs),
 * and the fd, stdin, stdout and stderr symlinks. Runs before pivot_root; the
 * caller's umask must be 0.
 *
 * The nodes are made with mknod, except in a user namespace (userns true), where
 * the kernel refuses mknod of devices (and a tmpfs mounted there would not honour
 * them): there each is a bind mount of the host's own node, checked to be the
 * expected character device. The VE's root cannot chmod or chown those (the host's
 * root owns them, unmapped). Which devices can be opened at all is the devices
 * cgroup's allow-list (quota_cgroup_devices_allow()). */
int ve_devices_setup(int rootfd, int console_fd, unsigned console_index, bool userns,
                     struct ve_child_err *e);

#endif
