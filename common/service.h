/*
 * service: what a daemon tells its service manager. migd, sfsd and
 * migagent run under systemd with Type=notify: they say READY=1 once they
 * serve (listening sockets open, state restored) and STOPPING=1 when a
 * signal starts their shutdown, so `systemctl start` returns when the
 * program can be used and dependent units start only then.
 *
 * Outside systemd (no $NOTIFY_SOCKET) every call is a no-op; sd_notify(3)
 * from libsystemd does the protocol, so nothing here speaks it by hand.
 */
#ifndef MIGD_SERVICE_H
#define MIGD_SERVICE_H

/* READY=1 with STATUS=status (may be NULL). */
void service_ready(const char *status);
/* STOPPING=1 with STATUS=status (may be NULL). */
void service_stopping(const char *status);
/* Forget $NOTIFY_SOCKET in this process: for children (sfsd --all's
 * servers) whose readiness their supervisor reports for them. */
void service_forget(void);

#endif
