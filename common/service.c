/*
 * service: sd_notify(3) for readiness and shutdown (see service.h).
 */
#include "service.h"

#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "log.h"

static void notify(const char *state, const char *status)
{
	int rc = status ? sd_notifyf(0, "%s\nSTATUS=%s", state, status) : sd_notify(0, state);
	if (rc < 0)
		log_warnx("telling the service manager %s: sd_notify: %s", state, strerror(-rc));
}

void service_ready(const char *status)
{
	notify("READY=1", status);
}

void service_stopping(const char *status)
{
	notify("STOPPING=1", status);
}

void service_forget(void)
{
	unsetenv("NOTIFY_SOCKET");
}
