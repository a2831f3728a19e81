/*
 * service: readiness and shutdown for the service manager (see service.h).
 *
 * The protocol is systemd's notify socket: one datagram of "KEY=VALUE"
 * lines to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or an
 * abstract name written with a leading '@'). systemd documents it as a
 * stable interface and gives a reference implementation in sd_notify(3)
 * for programs that should not link libsystemd; this is that, because
 * migagent runs inside every guest, whose image carries every library its
 * programs need, and libsystemd would bring five more (lz4, lzma, zstd,
 * gcrypt, cap).
 */
#include "service.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

/* 0, or -errno; a missing $NOTIFY_SOCKET is no error (not under systemd). */
static int notify_send(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (!path || !*path)
		return 0;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path))
		return -EINVAL;
	memcpy(sa.sun_path, path, len);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract namespace */
	socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	ssize_t n = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
	int rc = n < 0 ? -errno : (size_t)n == strlen(msg) ? 0 : -EPROTO;
	close(fd);
	return rc;
}

static void notify(const char *state, const char *status)
{
	char msg[512];
	if (status)
		snprintf(msg, sizeof msg, "%s\nSTATUS=%s", state, status);
	else
		snprintf(msg, sizeof msg, "%s", state);
	int rc = notify_send(msg);
	if (rc < 0)
		log_warnx("telling the service manager %s: %s: %s", state, getenv("NOTIFY_SOCKET"),
			  strerror(-rc));
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
