/*
 * hv: the registry of hypervisor drivers (see hv.h). A host's URI names its
 * driver by its scheme, the part before "://" (libvirt style,
 * "qemu+ssh://node/system") or before ":" for schemes that take no
 * authority. Adding a backend is one line here and its hv_<scheme>.c.
 */
#include "hv.h"

#include <string.h>

const struct hv_ops *const hv_drivers[] = {
	&hv_sim_ops,
	&hv_qmp_ops,
	NULL,
};

const struct hv_ops *hv_ops_for_uri(const char *uri)
{
	if (!uri)
		return NULL;
	/* "://" also ends at the first ':', so one search covers both forms */
	size_t scheme_len = strcspn(uri, ":");
	if (uri[scheme_len] != ':' || scheme_len == 0)
		return NULL;
	for (size_t i = 0; hv_drivers[i]; i++) {
		const char *scheme = hv_drivers[i]->scheme;
		if (strlen(scheme) == scheme_len && strncmp(uri, scheme, scheme_len) == 0)
			return hv_drivers[i];
	}
	return NULL;
}
