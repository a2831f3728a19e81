/*
 * hv_qmp_tls: migration over TLS for the qmp backend (migd.conf [migration]
 * tls = on).
 *
 * Each end of a migration gets a tls-creds-x509 object, added over QMP just
 * before the migration rather than on QEMU's command line: the command
 * line is fixed when the guest is created and shared by every instance,
 * while the credentials belong to the host an instance runs on (a
 * destination is the server endpoint, the source the client), and adding
 * them afresh each time picks up renewed certificates. verify-peer is on
 * at both ends, so the receiver also checks the sender's certificate
 * against its CA: a QEMU with another CA's certificates can neither send
 * nor receive. The sender checks the receiver's certificate against the
 * address it connects to (QEMU's default tls-hostname), so certificates
 * carry each host's migration address (cluster/mktls). A receiver without
 * dh-params.pem makes QEMU generate Diffie-Hellman parameters for every
 * migration (measured here: 0.1 to 3 s before the first byte, against
 * 13-40 ms for the whole set-up with the file), so its absence is logged.
 *
 * Checkpoint saves and loads go through pipes to migd-stream, never the
 * network: they run with tls-creds "" (hv_qmp_ckpt.c), as QEMU would
 * otherwise try a TLS handshake on the pipe.
 */
#include "hv_qmp_vm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static bool is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

void hv_qmp_tls_host_dir(const char *tls_dir, const char *host, char *out, size_t len)
{
	char sub[PATH_MAX];
	int n = snprintf(sub, sizeof(sub), "%s/%s", tls_dir, host);
	if (n > 0 && (size_t)n < sizeof(sub) && is_dir(sub))
		snprintf(out, len, "%s", sub);
	else
		snprintf(out, len, "%s", tls_dir);
}

int hv_qmp_tls_check_dir(const char *dir, bool server, char *err, size_t errlen)
{
	static const char *const server_files[] = { "ca-cert.pem", "server-cert.pem",
						    "server-key.pem" };
	static const char *const client_files[] = { "ca-cert.pem", "client-cert.pem",
						    "client-key.pem" };
	const char *const *files = server ? server_files : client_files;
	for (size_t i = 0; i < 3; i++) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		if (access(path, R_OK) < 0) {
			int e = errno;
			snprintf(err, errlen, "migration TLS: %s: %s (cluster/mktls makes it)", path,
				 strerror(e));
			return -e;
		}
	}
	return 0;
}

int qvm_tls_setup(struct hv *hv, const char *guest, const char *host, bool server, char *err,
		  size_t errlen)
{
	char dir[PATH_MAX], why[256];
	hv_qmp_tls_host_dir(hv->tls_dir, host, dir, sizeof(dir));
	int rc = hv_qmp_tls_check_dir(dir, server, err, errlen);
	if (rc < 0)
		return rc;
	if (server && !hv->tls_dh_warned) {
		char dh[PATH_MAX + 16];
		snprintf(dh, sizeof(dh), "%s/dh-params.pem", dir);
		if (access(dh, R_OK) < 0) {
			/* QEMU then generates Diffie-Hellman parameters for every
			 * incoming migration: measured 0.1-3 s before the first byte */
			log_warnx("qmp: no %s: QEMU generates DH parameters at every incoming "
				  "migration, which costs seconds (cluster/mktls writes one)", dh);
			hv->tls_dh_warned = true;
		}
	}
	/* an instance that sent or received before holds one: replace it, so a
	 * renewed certificate counts from the next migration on */
	(void)qvm_exec(hv, guest, host, "object-del", json_pack("{s:s}", "id", QVM_TLS_ID), NULL,
		       why, sizeof(why));
	rc = qvm_exec(hv, guest, host, "object-add",
		      json_pack("{s:s, s:s, s:s, s:s, s:b}", "qom-type", "tls-creds-x509", "id",
				QVM_TLS_ID, "dir", dir, "endpoint", server ? "server" : "client",
				"verify-peer", 1),
		      NULL, why, sizeof(why));
	if (rc < 0) {
		snprintf(err, errlen, "migration TLS on %s (%s): %s", host, dir, why);
		return rc;
	}
	log_debug("qmp: %s on %s: TLS %s credentials from %s", guest, host,
		  server ? "server" : "client", dir);
	return 0;
}
