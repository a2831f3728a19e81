/*
 * auth: see auth.h.
 *
 * munged checks what can be checked about a credential: the key (a
 * corrupted or forged credential does not decode), its age (TTL, and a
 * credential from the future), and that it was not decoded before
 * (EMUNGE_CRED_REPLAYED), so a credential copied off the wire or from a
 * log opens nothing. We add what only sfsd knows: which hosts' root is
 * root, and the caller's groups on this server.
 */
#include "auth.h"

#include <errno.h>
#include <grp.h>
#include <munge.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct auth {
	int mech;            /* enum sfs_auth_mech */
	char socket[108];
	struct sfs_netlist root_hosts;
};

struct auth *auth_new(const struct sfs_conf *conf)
{
	char err[256];
	struct auth *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->mech = conf->auth;
	snprintf(a->socket, sizeof(a->socket), "%s", conf->munge_socket);
	if (sfs_netlist_parse(conf->root_hosts, &a->root_hosts, err, sizeof(err)) < 0)
		a->root_hosts.n = 0; /* the config checked it: cannot happen */
	return a;
}

void auth_free(struct auth *a)
{
	free(a);
}

void auth_conn_init(const struct auth *a, struct sfs_identity *id)
{
	memset(id, 0, sizeof(*id));
	id->uid = id->gid = AUTH_NOBODY;
	if (a->mech == SFS_AUTH_NONE)
		id->known = id->trusted = 1;
}

int auth_conn_ready(const struct auth *a, const struct sfs_identity *id)
{
	(void)a;
	return id->known;
}

/* The uid's groups as this server resolves them, gid first. */
static void resolve_groups(struct sfs_identity *id)
{
	struct passwd pw, *found = NULL;
	char buf[4096];
	id->groups[0] = id->gid;
	id->n_groups = 1;
	if (getpwuid_r(id->uid, &pw, buf, sizeof(buf), &found) != 0 || !found)
		return; /* no account here: the credential's gid only */
	gid_t groups[AUTH_MAX_GROUPS];
	int n = AUTH_MAX_GROUPS;
	if (getgrouplist(found->pw_name, id->gid, groups, &n) < 0)
		n = AUTH_MAX_GROUPS; /* more than we keep: the first ones */
	for (int i = 0; i < n && id->n_groups < AUTH_MAX_GROUPS; i++)
		if (groups[i] != id->gid)
			id->groups[id->n_groups++] = groups[i];
}

static int munge_identity(const struct auth *a, const char *cred, uid_t *uid, gid_t *gid,
			  char *err, size_t errlen)
{
	munge_ctx_t ctx = munge_ctx_create();
	if (!ctx) {
		snprintf(err, errlen, "munge: out of memory");
		return -EACCES;
	}
	munge_err_t e = munge_ctx_set(ctx, MUNGE_OPT_SOCKET, a->socket);
	if (e == EMUNGE_SUCCESS)
		e = munge_decode(cred, ctx, NULL, NULL, uid, gid);
	if (e != EMUNGE_SUCCESS) {
		const char *why = munge_ctx_strerror(ctx);
		snprintf(err, errlen, "MUNGE credential refused: %s%s",
			 why ? why : munge_strerror(e),
			 e == EMUNGE_CRED_REPLAYED ? " (a credential opens one connection only)"
			 : e == EMUNGE_SOCKET ? " (is munged running on the server?)" : "");
	}
	munge_ctx_destroy(ctx);
	return e == EMUNGE_SUCCESS ? 0 : -EACCES;
}

int auth_hello(const struct auth *a, const struct sockaddr *peer, const uint8_t *body,
	       size_t len, struct sfs_identity *id, char *err, size_t errlen)
{
	struct sfs_hello *h = malloc(sizeof(*h));
	uid_t uid;
	gid_t gid;
	int rc;
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = sfs_hello_decode(body, len, h, err, errlen);
	if (rc < 0)
		goto out;
	if (a->mech == SFS_AUTH_NONE) {
		auth_conn_init(a, id); /* the credential is not even looked at */
		goto out;
	}
	if (h->mech != SFS_AUTH_MUNGE) {
		snprintf(err, errlen, "this server requires a MUNGE credential (auth = munge)");
		rc = -EACCES;
		goto out;
	}
	rc = munge_identity(a, h->cred, &uid, &gid, err, errlen);
	if (rc < 0)
		goto out;
	memset(id, 0, sizeof(*id));
	id->known = 1;
	id->uid = (uint32_t)uid;
	id->gid = (uint32_t)gid;
	if (id->uid == 0 && !sfs_netlist_match(&a->root_hosts, peer))
		id->uid = id->gid = AUTH_NOBODY; /* root squash */
	resolve_groups(id);
out:
	free(h);
	return rc;
}
