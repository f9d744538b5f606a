/* The systemd notify protocol, without libsystemd: one datagram to $NOTIFY_SOCKET. */
#ifndef VED_NOTIFY_H
#define VED_NOTIFY_H

/* Send state ("READY=1", "STOPPING=1"); a no-op when NOTIFY_SOCKET is unset. */
int ved_notify(const char *state);

#endif
