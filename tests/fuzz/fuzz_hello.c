/* libFuzzer target: the decoders of HELLO, the frame that carries a
 * client's credential (sfs_proto.h), and of its reply, plus the root_hosts
 * list parser and matcher that decide whether root stays root. The first
 * byte picks which; a decoded HELLO must encode back to the same bytes. */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sfs_auth.h"
#include "sfs_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void hosts(const uint8_t *data, size_t size)
{
	static struct sfs_netlist list;
	char text[600], err[256];
	if (size >= sizeof(text) || memchr(data, '\0', size))
		return;
	memcpy(text, data, size);
	text[size] = '\0';
	if (sfs_netlist_parse(text, &list, err, sizeof(err)) != 0)
		return;
	struct sockaddr_in v4 = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	struct sockaddr_in6 v6 = { .sin6_family = AF_INET6 };
	v6.sin6_addr.s6_addr[15] = 1;
	sfs_netlist_match(&list, (struct sockaddr *)&v4);
	sfs_netlist_match(&list, (struct sockaddr *)&v6);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sfs_hello h;
	static uint8_t again[SFS_MAX_BODY_BYTES];
	char err[256];
	size_t len;
	if (size < 1 || size - 1 > SFS_MAX_BODY_BYTES)
		return 0;
	switch (data[0] % 3) {
	case 0:
		if (sfs_hello_decode(data + 1, size - 1, &h, err, sizeof(err)) != 0)
			return 0;
		if (sfs_hello_encode(&h, again, sizeof(again), &len) != 0 || len != size - 1 ||
		    memcmp(again, data + 1, len) != 0)
			abort(); /* decode accepted what encode cannot reproduce */
		break;
	case 1:
		if (sfs_hello_reply_decode(data + 1, size - 1, &h, err, sizeof(err)) != 0)
			return 0;
		if (sfs_hello_reply_encode(&h, again, sizeof(again), &len) != 0 || len != size - 1 ||
		    memcmp(again, data + 1, len) != 0)
			abort();
		break;
	default:
		hosts(data + 1, size - 1);
	}
	return 0;
}
