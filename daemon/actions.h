/* Starting the operations that change a VE's run state, shared by the API and
 * startup (onboot) and the exit watcher. */
#ifndef VED_ACTIONS_H
#define VED_ACTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "ved.h"

/* action: "start", "stop", "restart". Checks the VE's state (VE_ECONFLICT when the
 * action does not fit it), sets the transitional state, commits the operation and
 * runs it. *op_id gets the operation's id. reason is recorded in its params;
 * timeout (seconds, 0 = the VE's stop_timeout) bounds the wait for init to halt. */
int ved_ve_action(struct ved *v, uint32_t ctid, const char *action, bool force, unsigned timeout,
                  const char *reason, int64_t *op_id, struct ve_error *err);

#endif
