/*
 * hv_ckpt: one checkpoint call of a hypervisor backend from the command
 * line, for integration tests that need the backend's own calls before
 * migd drives them (tests/test_libvirt.sh).
 *
 *   hv_ckpt --host NAME=URI [--host ...] pause|resume|destroy|config GUEST
 *   hv_ckpt --host NAME=URI [--host ...] save GUEST PATH
 *   hv_ckpt --host NAME=URI [--host ...] load GUEST HOST PATH
 *
 * The driver is the one claiming the first host's URI. A save or load is
 * polled every 50 ms until it ends; the final figures are printed as one
 * line of key=value. Exit 0 on success (COMPLETED), 1 otherwise, 2 on bad
 * usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hv.h"

#define MAX_HOSTS 8

static const char *state_name(enum hv_mig_state s)
{
	switch (s) {
	case HV_MIG_ACTIVE: return "active";
	case HV_MIG_COMPLETED: return "completed";
	case HV_MIG_FAILED: return "failed";
	case HV_MIG_CANCELLED: return "cancelled";
	}
	return "?";
}

static int wait_job(const struct hv_ops *ops, struct hv *hv, uint64_t id, const char *what)
{
	struct hv_progress pr;
	char err[256];
	for (;;) {
		if (ops->migrate_poll(hv, id, &pr, err, sizeof(err)) < 0) {
			fprintf(stderr, "hv_ckpt: %s: %s\n", what, err);
			return 1;
		}
		if (pr.state != HV_MIG_ACTIVE)
			break;
		usleep(50000);
	}
	printf("%s state=%s total_ms=%llu pause_ms=%llu bytes=%llu total_bytes=%llu mode=%s "
	       "error=%s\n", what, state_name(pr.state), (unsigned long long)pr.total_time_ms,
	       (unsigned long long)pr.pause_ms, (unsigned long long)pr.transferred_bytes,
	       (unsigned long long)pr.total_bytes, *pr.mode ? pr.mode : "-",
	       *pr.error ? pr.error : "-");
	ops->migrate_forget(hv, id);
	return pr.state == HV_MIG_COMPLETED ? 0 : 1;
}

static int run(const struct hv_ops *ops, struct hv *hv, int argc, char **argv)
{
	char err[256];
	uint64_t id = 0;
	const char *cmd = argv[0], *guest = argc > 1 ? argv[1] : NULL;
	int rc = -EINVAL;
	if (!guest)
		return 2;
	if (strcmp(cmd, "pause") == 0 && argc == 2) {
		rc = ops->guest_pause(hv, guest, err, sizeof(err));
	} else if (strcmp(cmd, "resume") == 0 && argc == 2) {
		rc = ops->guest_resume(hv, guest, err, sizeof(err));
	} else if (strcmp(cmd, "destroy") == 0 && argc == 2) {
		rc = ops->guest_destroy(hv, guest, err, sizeof(err));
	} else if (strcmp(cmd, "config") == 0 && argc == 2) {
		char *text = NULL;
		rc = ops->guest_config(hv, guest, &text, err, sizeof(err));
		if (rc == 0)
			printf("%s\n", text);
		free(text);
	} else if (strcmp(cmd, "save") == 0 && argc == 3) {
		struct hv_image img = { .fd = -1, .path = argv[2] };
		rc = ops->save_start(hv, guest, &img, NULL, &id, err, sizeof(err));
		if (rc == 0)
			return wait_job(ops, hv, id, "save");
	} else if (strcmp(cmd, "load") == 0 && argc == 4) {
		struct hv_image img = { .fd = -1, .path = argv[3] };
		rc = ops->load_start(hv, guest, argv[2], &img, &id, err, sizeof(err));
		if (rc == 0)
			return wait_job(ops, hv, id, "load");
	} else {
		return 2;
	}
	if (rc < 0)
		fprintf(stderr, "hv_ckpt: %s %s: %s (%s)\n", cmd, guest, err, strerror(-rc));
	return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	char *names[MAX_HOSTS], *uris[MAX_HOSTS], err[256];
	int n = 0, i = 1;
	for (; i + 1 < argc && strcmp(argv[i], "--host") == 0 && n < MAX_HOSTS; i += 2) {
		char *eq = strchr(argv[i + 1], '=');
		if (!eq)
			break;
		*eq = '\0';
		names[n] = argv[i + 1];
		uris[n++] = eq + 1;
	}
	const struct hv_ops *ops = n ? hv_ops_for_uri(uris[0]) : NULL;
	if (!ops || i >= argc) {
		fprintf(stderr, "usage: hv_ckpt --host NAME=URI [--host ...] "
			"pause|resume|destroy|config GUEST | save GUEST PATH | load GUEST HOST PATH\n");
		return 2;
	}
	if (!ops->save_start) {
		fprintf(stderr, "hv_ckpt: the %s backend has no checkpoint calls\n", ops->scheme);
		return 1;
	}
	struct hv *hv = NULL;
	if (ops->open(NULL, &hv, err, sizeof(err)) < 0) {
		fprintf(stderr, "hv_ckpt: %s\n", err);
		return 1;
	}
	int rc = 0;
	for (int h = 0; h < n && rc == 0; h++)
		if (ops->host_add(hv, names[h], uris[h], err, sizeof(err)) < 0) {
			fprintf(stderr, "hv_ckpt: host %s: %s\n", names[h], err);
			rc = 1;
		}
	if (rc == 0)
		rc = run(ops, hv, argc - i, argv + i);
	if (rc == 2)
		fprintf(stderr, "hv_ckpt: %s: bad arguments\n", argv[i]);
	ops->close(hv);
	return rc;
}
