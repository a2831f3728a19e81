/* libFuzzer target: migd's ZAP request decoder (zap_proto.c). The input is
 * cut into frames, each a length byte then that many bytes (the rest of
 * the input when fewer are left), as libzmq would hand migd's handler
 * frames; any frames must decode or be refused, never crash, and a
 * decoded request must hold what the checks promise. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zap_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct zap_frame frames[ZAP_MAX_FRAMES + 2];
	struct zap_request req;
	char err[512];
	size_t n = 0, at = 0;
	while (at < size && n < ZAP_MAX_FRAMES + 2) {
		size_t len = data[at++];
		if (len > size - at)
			len = size - at;
		frames[n++] = (struct zap_frame){ data + at, len };
		at += len;
	}
	if (zap_request_parse(frames, n, &req, err, sizeof(err)) == 0) {
		if (strlen(req.domain) >= sizeof(req.domain) || strlen(req.address) >= sizeof(req.address) ||
		    req.request_id_len >= ZAP_FIELD_MAX)
			abort();
		if (req.has_curve_key && strcmp(req.mechanism, "CURVE") != 0)
			abort();
	} else if (!memchr(err, '\0', sizeof(err))) {
		abort();
	}
	return 0;
}
