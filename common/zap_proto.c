/*
 * zap_proto: see zap_proto.h.
 */
#include "zap_proto.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* A text field: at most ZAP_FIELD_MAX - 1 bytes, no NUL inside. */
static int text_field(const struct zap_frame *f, const char *what, char *out, size_t size,
		      char *err, size_t errlen)
{
	if (f->size >= size || (f->size && memchr(f->data, '\0', f->size))) {
		snprintf(err, errlen, "%s: %zu bytes%s (at most %zu, text)", what, f->size,
			 f->size < size ? " with a NUL" : "", size - 1);
		return -EBADMSG;
	}
	memcpy(out, f->data, f->size);
	out[f->size] = '\0';
	return 0;
}

int zap_request_parse(const struct zap_frame *frames, size_t n, struct zap_request *req,
		      char *err, size_t errlen)
{
	char version[8];
	memset(req, 0, sizeof(*req));
	if (n < 6 || n > ZAP_MAX_FRAMES) {
		snprintf(err, errlen, "%zu frames (6 to %d)", n, ZAP_MAX_FRAMES);
		return -EBADMSG;
	}
	if (text_field(&frames[0], "version", version, sizeof(version), err, errlen) < 0)
		return -EBADMSG;
	if (strcmp(version, ZAP_VERSION) != 0) {
		snprintf(err, errlen, "version \"%s\" (expected " ZAP_VERSION ")", version);
		return -EBADMSG;
	}
	if (frames[1].size >= ZAP_FIELD_MAX) {
		snprintf(err, errlen, "request id: %zu bytes (at most %d)", frames[1].size,
			 ZAP_FIELD_MAX - 1);
		return -EBADMSG;
	}
	memcpy(req->request_id, frames[1].data, frames[1].size);
	req->request_id_len = frames[1].size;
	if (text_field(&frames[2], "domain", req->domain, sizeof(req->domain), err, errlen) < 0 ||
	    text_field(&frames[3], "address", req->address, sizeof(req->address), err, errlen) < 0 ||
	    text_field(&frames[5], "mechanism", req->mechanism, sizeof(req->mechanism), err,
		       errlen) < 0)
		return -EBADMSG;
	/* frames[4], the routing identity, is not used: keys name the peer */
	if (strcmp(req->mechanism, "CURVE") == 0) {
		if (n != 7 || frames[6].size != sizeof(req->curve_key)) {
			snprintf(err, errlen, "CURVE credentials: %zu frames of %zu bytes (one of 32)",
				 n - 6, n > 6 ? frames[6].size : 0);
			return -EBADMSG;
		}
		memcpy(req->curve_key, frames[6].data, sizeof(req->curve_key));
		req->has_curve_key = 1;
	} else if (strcmp(req->mechanism, "NULL") != 0 && strcmp(req->mechanism, "PLAIN") != 0) {
		snprintf(err, errlen, "mechanism \"%s\" (NULL, PLAIN or CURVE)", req->mechanism);
		return -EBADMSG;
	}
	return 0;
}
