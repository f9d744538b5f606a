/* The capabilities a VE's processes may never hold. Internal to ve/.
 *
 * The user namespace already confines what a VE's root can do with its
 * capabilities to objects the namespace owns; the bounding set is the second wall
 * for what the kernel checks against the initial namespace anyway or guards badly:
 * loading modules, raw I/O, the system clock, the kernel log, LSM policy, audit
 * configuration, BPF and perf. CAP_SYS_BOOT stays: in a pid namespace reboot(2)
 * only ends the VE's init, which is how a guest halts. */
#ifndef VE_CAPS_H
#define VE_CAPS_H

#include <stddef.h>

#include "child.h"

#include <stdbool.h>

/* Whether this process holds capability cap (CAP_*) in its effective set; false
 * when that cannot be told. */
bool ve_caps_have(int cap);

/* The dropped capabilities (CAP_* numbers) and how many there are. */
const int *ve_caps_dropped(size_t *n);

/* Child side, just before execve: remove the dropped capabilities from the
 * bounding and inheritable sets (the inheritable set would otherwise let a file's
 * inheritable capabilities bring them back past the bounding set) and clear the
 * ambient set. Needs CAP_SETPCAP in the current user namespace. */
int ve_caps_drop(struct ve_child_err *e);

#endif
