/* Host-wide claims on VE uid/gid ranges, shared by every ved instance of a host.
 *
 * A VE's range is kept in its record, but only as a preference: every instance
 * allocates from the same space, each from its own database. What stops two VEs
 * of different instances from running as the same host ids is a claim: one file
 * per claimed base in a directory all instances use (VED_IDRANGE_DIR, on /run: a
 * tmpfs, so that after a host reboot, when no VE runs, no claim is left). A claim
 * names the process that holds it, by pid and start time: the daemon while it
 * starts the VE, then the VE's init. Once that process is gone the claim is
 * stale and free, whatever ended it (a kill -9 of the daemon, a VE that died
 * while no daemon watched). A VE whose range is claimed by another gets a new one
 * at its start: its image keeps guest ids (ve/idmap.c), so a stopped VE's range
 * can change at no cost. */
#ifndef VED_IDRANGE_H
#define VED_IDRANGE_H

#include <stdint.h>
#include <sys/types.h>

#include "ve/error.h"

#define VED_IDRANGE_DIR "/run/ved/idmap"

/* Who holds a claim: the VE (instance, ctid) and the process that vouches for it. */
struct ved_idrange_holder {
        pid_t pid;
        uint64_t starttime; /* the pid's, from /proc/<pid>/stat: a reused pid is not it */
        char instance[64];
        uint32_t ctid;
};

/* The registry directory (created 0700 if missing), opened and locked against
 * every other claim or release on the host, by any process or thread: an fd for
 * ved_idrange_claim(), to give to ved_idrange_unlock() when done, or -errno. */
int ved_idrange_lock(const char *dir, struct ve_error *err);
void ved_idrange_unlock(int dirfd);

/* Under the lock: claim base for me. 0 when it was free, stale or already the same
 * VE's (its holder is then replaced by me); -EBUSY when another VE's live claim
 * holds it (*other, if not NULL, says whose); another -errno on an I/O error. */
int ved_idrange_claim(int dirfd, int64_t base, const struct ved_idrange_holder *me,
                      struct ved_idrange_holder *other, struct ve_error *err);

/* ved_idrange_claim() with the lock taken and let go around it. */
int ved_idrange_claim_locked(const char *dir, int64_t base, const struct ved_idrange_holder *me,
                             struct ved_idrange_holder *other, struct ve_error *err);

/* Remove the claim on base if it is (instance, ctid)'s; another's stays. */
void ved_idrange_release(const char *dir, int64_t base, const char *instance, uint32_t ctid);

/* Remove instance's stale claims (their process is gone): at a daemon's start,
 * whatever path left them (a destroy cut by a kill -9). Others' stay. */
void ved_idrange_sweep(const char *dir, const char *instance);

/* me for (instance, ctid), vouched for by pid (0: this process). 0 or -errno. */
int ved_idrange_holder_init(struct ved_idrange_holder *me, const char *instance, uint32_t ctid,
                            pid_t pid, struct ve_error *err);

#endif
