/*
 * hv_libxl: the libxl backend's pure pieces (host URIs, the stream's
 * preamble, config checks), apart for unit tests that run without Xen.
 * The driver is hv_libxl_ops (hv.h), built when libxenlight is found.
 */
#ifndef MIGD_HV_LIBXL_H
#define MIGD_HV_LIBXL_H

#include <stddef.h>
#include <stdint.h>

#define HV_LIBXL_NAME_MAX 64
#define HV_LIBXL_DEFAULT_PORT 7720

/* libxl:///HOST?addr=A[&port=P][&local=1]: HOST's migration receiver
 * listens on A:P; local=1 marks the Xen host this migd runs on (default:
 * HOST equals this machine's hostname). */
struct hv_libxl_uri {
	char name[HV_LIBXL_NAME_MAX];
	char addr[64];
	unsigned port;
	int local;    /* 1 yes, 0 no, -1 not said */
};

int hv_libxl_parse_uri(const char *uri, struct hv_libxl_uri *out, char *err, size_t errlen);

/* The stream's preamble, sender to receiver: "MIGD-LIBXL 1\n", the
 * guest's config as libxl JSON (4-byte big-endian length, then the bytes),
 * then libxl's own stream (v2). Then, on the same socket: receiver "READY\n"
 * (created, paused), sender "GO\n", receiver "DONE <rc>\n". */
#define HV_LIBXL_MAGIC "MIGD-LIBXL 1\n"
#define HV_LIBXL_CONFIG_MAX (1u << 20)

/* Header into buf (at least 13 + 4 bytes); returns its length. */
size_t hv_libxl_preamble(uint32_t config_len, unsigned char *buf);
/* Check a received header (17 bytes): 0 with *config_len, or -EPROTO. */
int hv_libxl_preamble_check(const unsigned char *buf, size_t len, uint32_t *config_len);

/*
 * Check a guest's libxl config (libxl_domain_config_to_json's JSON) before
 * it is kept for guest_define: JSON, an object with a "c_info" object whose
 * "name" is guest, and a "b_info" object. 0, or -EINVAL with err naming
 * what is wrong (a JSON error with its line and column). libxl's own parse
 * (libxl_domain_config_from_json) needs a libxl context, so Xen: the
 * driver runs it after this one when it has one.
 */
int hv_libxl_config_check(const char *guest, const char *config, char *err, size_t errlen);

#endif
