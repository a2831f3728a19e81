/*
 * hv_libvirt: the libvirt backend's pure pieces, apart so that unit tests
 * reach them without a libvirtd: the host URI (a libvirt URI with migd's
 * own options in its fragment), the mapping of migd's knobs to libvirt's
 * flags and typed parameters, the domain XML of a new guest and the choice
 * of a guest address. The driver is hv_libvirt_ops (hv.h).
 */
#ifndef MIGD_HV_LIBVIRT_H
#define MIGD_HV_LIBVIRT_H

#include <stddef.h>
#include <stdint.h>

#include "hv.h"

#define HV_LIBVIRT_NAME_MAX 64
#define HV_LIBVIRT_URI_MAX 512

/*
 * A host URI: LIBVIRT_URI[#key=value&key=value]. libvirt never sees the
 * fragment; its keys:
 *   migrate_uri  where the hypervisor of this host, as a destination,
 *                receives the migration stream (tcp://10.0.0.12[:PORT]):
 *                VIR_MIGRATE_PARAM_URI. Default: libvirt's choice
 *                (qemu.conf migration_host, else the host's name).
 *   peer_uri     the URI the source's libvirtd uses to reach this host
 *                (peer-to-peer). Default: the libvirt URI itself.
 */
struct hv_libvirt_uri {
	char libvirt_uri[HV_LIBVIRT_URI_MAX];
	char migrate_uri[HV_LIBVIRT_URI_MAX]; /* "": libvirt's choice */
	char peer_uri[HV_LIBVIRT_URI_MAX];    /* never empty after parsing */
};

int hv_libvirt_parse_uri(const char *uri, struct hv_libvirt_uri *out, char *err,
			 size_t errlen);

/* migd's bandwidth cap (bytes/s) as VIR_MIGRATE_PARAM_BANDWIDTH (MiB/s,
 * rounded up so a cap never becomes "unlimited"); 0 stays 0. */
unsigned long long hv_libvirt_bandwidth_mib(uint64_t bandwidth_bps);

/* virDomainMigrate* flags for these knobs; persistent: the domain is
 * defined on its source (it stays defined where it goes, and only there);
 * tls: VIR_MIGRATE_TLS (migd.conf [migration] tls): the hosts' libvirtd
 * carry the stream over TLS with the x509 certificates of their qemu.conf
 * (migrate_tls_x509_cert_dir, default /etc/pki/qemu), and refuse the
 * migration when they have none. */
unsigned long hv_libvirt_migrate_flags(const struct hv_migrate_params *params, int persistent,
				       int tls);

/*
 * The XML of a transient guest: domain type ("qemu" or "kvm"), memory,
 * kernel and initrd from env->image_dir (none: a BIOS-only domain without
 * a disk), a virtio NIC on env->bridge with MAC 52:54:00 + 3 bytes of a hash
 * of the name, serial to serial_dir/NAME.serial. guest_ip "A.B.1.X" or NULL.
 * *out is the caller's to free().
 */
int hv_libvirt_domain_xml(const struct hv_libvirt_env *env, const char *domain_type,
			  const struct hv_guest_spec *spec, const char *guest_ip, char **out,
			  char *err, size_t errlen);

/* The guest's MAC, "52:54:00:xx:xx:xx" (same rule as the qmp backend). */
void hv_libvirt_guest_mac(const char *name, char out[18]);

/* The lowest X in 2..254 with "subnet.1.X" not in used[] (n entries); -ENOSPC. */
int hv_libvirt_pick_ip(const char *subnet, const char *const *used, size_t n, char *out,
		       size_t outlen);

/* Names libvirt and XML take as they are: letters, digits, '-', '_', '.'. */
int hv_libvirt_valid_name(const char *name);

/* The <name> of a domain XML (the first one: the domain's) into out;
 * -EINVAL when there is none, -ENAMETOOLONG when it does not fit. */
int hv_libvirt_xml_name(const char *xml, char *out, size_t len);

/*
 * The snapshot XML of a checkpoint save (hv_libvirt_ckpt.c): memory to the
 * external file path, every disk of domain_xml left alone (snapshot='no').
 * path: absolute, no quotes, '<', '>' or '&' (-EINVAL). *out is the
 * caller's to free().
 */
int hv_libvirt_snapshot_xml(const char *domain_xml, const char *path, char **out, char *err,
			    size_t errlen);

#endif
