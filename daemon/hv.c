/*
 * hv: the registry of hypervisor drivers (see hv.h). A host's URI names its
 * driver by its scheme, the part before "://" (libvirt style,
 * "qemu+ssh://node/system") or before ":" for schemes that take no
 * authority. Adding a backend is one line here and its hv_<scheme>.c.
 *
 * A driver claims its own name as a scheme and may claim more (hv_ops
 * schemes): the libvirt driver takes every spelling libvirt has for its
 * QEMU and Xen drivers. An exact claim beats a "driver+" one, so a driver
 * of its own for "qemu+x" could sit beside libvirt's "qemu+".
 */
#include "hv.h"

#include <string.h>

const struct hv_ops *const hv_drivers[] = {
	&hv_sim_ops,
	&hv_qmp_ops,
#ifdef MIGD_HAVE_LIBVIRT
	&hv_libvirt_ops,
#endif
#ifdef MIGD_HAVE_LIBXL
	&hv_libxl_ops,
#endif
	NULL,
};

static int claim_of(const char *claim, const char *scheme, size_t len)
{
	size_t claim_len = strlen(claim);
	if (claim_len > 1 && claim[claim_len - 1] == '+') /* "qemu+": a transport must follow */
		return len > claim_len && strncmp(claim, scheme, claim_len) == 0 ? 1 : 0;
	return claim_len == len && strncmp(claim, scheme, len) == 0 ? 2 : 0;
}

int hv_ops_claims(const struct hv_ops *ops, const char *scheme, size_t len)
{
	int best = claim_of(ops->scheme, scheme, len);
	for (size_t i = 0; ops->schemes && ops->schemes[i]; i++) {
		int c = claim_of(ops->schemes[i], scheme, len);
		if (c > best)
			best = c;
	}
	return best;
}

const struct hv_ops *hv_ops_for_uri(const char *uri)
{
	if (!uri)
		return NULL;
	/* "://" also ends at the first ':', so one search covers both forms */
	size_t scheme_len = strcspn(uri, ":");
	if (uri[scheme_len] != ':' || scheme_len == 0)
		return NULL;
	const struct hv_ops *found = NULL;
	int found_claim = 0;
	for (size_t i = 0; hv_drivers[i]; i++) {
		int c = hv_ops_claims(hv_drivers[i], uri, scheme_len);
		if (c > found_claim) {
			found = hv_drivers[i];
			found_claim = c;
		}
	}
	return found;
}
