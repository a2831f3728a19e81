/* libFuzzer target: migd's reading of an API request (migd_proto.c): the
 * JSON envelope, then the argument getters every handler uses, on the
 * keys handlers read. Any bytes must parse or be refused with a message,
 * never crash; a parsed request has a string cmd and an object args, and
 * a getter that succeeds gives a value of the type it promised. The same
 * bytes go through the reply parser migctl uses: a reply it does not take
 * says why (an error reply with no message says "unspecified error"). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "migd_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const keys[] = { "guest", "host", "to", "id", "limit", "after",
				    "timeout_ms", "every", "name", "job", "hosts", "memory" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *root = NULL, *args = NULL, *result = NULL;
	const char *cmd = NULL;
	char err[512] = "";
	if (migd_req_parse((const char *)data, size, &root, &cmd, &args, err, sizeof(err)) == 0) {
		if (!cmd || !json_is_object(args))
			abort();
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			const char *s = NULL;
			unsigned long long u = 0;
			double d = 0;
			if (migd_arg_str(args, keys[i], 0, &s, err, sizeof(err)) == 0 && s &&
			    strlen(s) > size)
				abort();
			(void)migd_arg_u64(args, keys[i], 1, &u, err, sizeof(err));
			(void)migd_arg_num(args, keys[i], 0, &d, err, sizeof(err));
		}
	} else if (!err[0]) {
		abort(); /* a refusal says why */
	}
	json_decref(root);
	root = NULL;
	err[0] = '\0';
	if (migd_reply_parse((const char *)data, size, &root, &result, err, sizeof(err)) != 0 &&
	    !err[0])
		abort();
	json_decref(root);
	return 0;
}
