/*
 * zap_proto: the ZeroMQ Authentication Protocol (ZAP, RFC 27), the part
 * migd's handler reads: a request is frames version ("1.0"), request id,
 * domain, address, routing identity, mechanism, then the mechanism's
 * credentials (CURVE: one frame, the client's 32-byte public key). The
 * reply is version, request id, status code ("200", "400", "500"), status
 * text, user id and metadata (empty).
 *
 * The frames come from libzmq in the same process, but are checked as if
 * they came from the network: lengths first, every field bounded.
 */
#ifndef MIGD_ZAP_PROTO_H
#define MIGD_ZAP_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define ZAP_VERSION "1.0"
#define ZAP_FIELD_MAX 256 /* request id, domain, address, identity: bytes */
#define ZAP_MAX_FRAMES 8

struct zap_frame {
	const void *data;
	size_t size;
};

struct zap_request {
	unsigned char request_id[ZAP_FIELD_MAX];
	size_t request_id_len;
	char domain[ZAP_FIELD_MAX];      /* NUL-ended: no NUL inside */
	char address[ZAP_FIELD_MAX];     /* the peer's IP, as libzmq gives it */
	char mechanism[8];               /* "NULL", "PLAIN", "CURVE" */
	uint8_t curve_key[32];           /* CURVE: the client's public key */
	int has_curve_key;
};

/* Decode n frames into req; -EBADMSG with the reason in err. Only CURVE
 * carries a key; NULL and PLAIN requests decode (and are refused by the
 * caller). */
int zap_request_parse(const struct zap_frame *frames, size_t n, struct zap_request *req,
		      char *err, size_t errlen);

#endif
