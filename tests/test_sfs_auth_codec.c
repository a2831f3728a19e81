/*
 * sfs_auth and the HELLO codec: root_hosts lists (parsing names the bad
 * item; matching IPv4, IPv6, v4-mapped, prefixes), HELLO bodies that
 * decode exactly or not at all, and the auth options of sfs.conf.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sfs_auth.h"
#include "sfs_conf.h"
#include "sfs_proto.h"

static int match(const struct sfs_netlist *l, const char *addr)
{
	struct sockaddr_in v4 = { .sin_family = AF_INET };
	struct sockaddr_in6 v6 = { .sin6_family = AF_INET6 };
	if (inet_pton(AF_INET, addr, &v4.sin_addr) == 1)
		return sfs_netlist_match(l, (struct sockaddr *)&v4);
	cr_assert_eq(inet_pton(AF_INET6, addr, &v6.sin6_addr), 1, "%s", addr);
	return sfs_netlist_match(l, (struct sockaddr *)&v6);
}

Test(sfs_auth_codec, root_hosts_match_addresses_and_prefixes)
{
	struct sfs_netlist l;
	char err[256];
	cr_assert_eq(sfs_netlist_parse("127.0.0.1, 10.77.0.0/16 fd00::/8,::1", &l, err,
				       sizeof(err)), 0, "%s", err);
	cr_assert_eq(l.n, 4);
	cr_assert(match(&l, "127.0.0.1"));
	cr_assert_not(match(&l, "127.0.0.2"));
	cr_assert(match(&l, "10.77.3.9"));
	cr_assert_not(match(&l, "10.78.0.1"));
	cr_assert(match(&l, "fd12::5"));
	cr_assert(match(&l, "::1"));
	cr_assert_not(match(&l, "::2"));
	cr_assert(match(&l, "::ffff:10.77.1.1"), "a v4-mapped peer matches its v4 net");
	cr_assert_eq(sfs_netlist_parse("10.202.99.0/20", &l, err, sizeof(err)), 0);
	cr_assert(match(&l, "10.202.111.255"));
	cr_assert_not(match(&l, "10.202.112.0"));
	cr_assert_eq(sfs_netlist_parse("", &l, err, sizeof(err)), 0);
	cr_assert_not(match(&l, "127.0.0.1"), "an empty list squashes root everywhere");
}

Test(sfs_auth_codec, bad_root_hosts_name_the_item)
{
	struct sfs_netlist l;
	char err[256];
	static const char *const bad[] = { "10.0.0.0/33", "host.example", "::1/129", "1.2.3.4/x",
					   "/8", "10.0.0.1/" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(sfs_netlist_parse(bad[i], &l, err, sizeof(err)), -EINVAL, "%s", bad[i]);
		cr_assert(strstr(err, bad[i]), "the message names \"%s\": %s", bad[i], err);
	}
}

Test(sfs_auth_codec, conf_auth_options_are_checked)
{
	struct sfs_conf *conf = malloc(sizeof(*conf));
	char err[256];
	sfs_conf_init(conf);
	cr_assert_eq(conf->auth, SFS_AUTH_MUNGE, "munge is the default");
	cr_assert_str_eq(conf->munge_socket, SFS_MUNGE_SOCKET_DEFAULT);
	cr_assert_eq(sfs_conf_override(conf, "auth=none", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(conf->auth, SFS_AUTH_NONE);
	cr_assert_eq(sfs_conf_override(conf, "auth=kerberos", err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "kerberos") && strstr(err, "munge or none"), "%s", err);
	cr_assert_eq(sfs_conf_override(conf, "root_hosts=10.1.0.0/16, bogus", err, sizeof(err)),
		     -EINVAL);
	cr_assert(strstr(err, "root_hosts") && strstr(err, "bogus"), "%s", err);
	cr_assert_eq(sfs_conf_override(conf, "root_hosts=10.1.0.0/16", err, sizeof(err)), 0);
	cr_assert_str_eq(conf->root_hosts, "10.1.0.0/16");
	free(conf);
}

Test(sfs_auth_codec, hello_decodes_exactly_or_not_at_all)
{
	static struct sfs_hello h, d;
	uint8_t buf[SFS_MAX_CRED + 16];
	char err[256];
	size_t len;
	h.mech = SFS_AUTH_MUNGE;
	memset(h.cred, 'A', SFS_MAX_CRED);
	h.cred[SFS_MAX_CRED] = '\0';
	cr_assert_eq(sfs_hello_encode(&h, buf, sizeof(buf), &len), 0);
	cr_assert_eq(sfs_hello_decode(buf, len, &d, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(d.mech, SFS_AUTH_MUNGE);
	cr_assert_eq(strlen(d.cred), SFS_MAX_CRED);
	cr_assert_eq(sfs_hello_decode(buf, len - 1, &d, err, sizeof(err)), -EBADMSG);
	buf[len] = 0;
	cr_assert_eq(sfs_hello_decode(buf, len + 1, &d, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "trailing"), "%s", err);
	buf[0] = 7;
	cr_assert_eq(sfs_hello_decode(buf, len, &d, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "mechanism"), "%s", err);
	/* a credential longer than SFS_MAX_CRED neither encodes nor decodes */
	uint8_t big[SFS_MAX_CRED + 8] = { SFS_AUTH_MUNGE, (SFS_MAX_CRED + 1) & 0xff,
					  (SFS_MAX_CRED + 1) >> 8 };
	memset(big + 3, 'A', SFS_MAX_CRED + 1);
	cr_assert_eq(sfs_hello_decode(big, SFS_MAX_CRED + 4, &d, err, sizeof(err)), -EBADMSG);
	h.uid = 1001;
	h.gid = 65534;
	cr_assert_eq(sfs_hello_reply_encode(&h, buf, sizeof(buf), &len), 0);
	cr_assert_eq(len, 8);
	cr_assert_eq(sfs_hello_reply_decode(buf, len, &d, err, sizeof(err)), 0);
	cr_assert_eq(d.uid, 1001);
	cr_assert_eq(d.gid, 65534);
}
