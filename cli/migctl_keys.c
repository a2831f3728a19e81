/*
 * migctl_keys: `migctl keygen`, the CURVE key pairs of migd's clients,
 * operators and agents (curve_keys.h has the files' format). It writes
 * files and talks to no migd: a key reaches migd's allow-list when an
 * admin copies its .pub into migd's keys dir (clients/) and sends SIGHUP.
 */
#include <stdio.h>
#include <string.h>

#include "curve_keys.h"
#include "migctl.h"

const char keygen_usage[] =
	"usage: migctl keygen [--dir DIR] [--role ROLE] NAME\n"
	"\n"
	"Write a new CURVE key pair: DIR/NAME.key (public and secret key, mode 0600)\n"
	"and DIR/NAME.pub (the public key, 0644; with \"role = ROLE\" when given).\n"
	"An existing key is never overwritten.\n"
	"\n"
	"  --dir DIR     where to write (default: the current directory; made 0700)\n"
	"  --role ROLE   reader, operator or admin: what migd lets this key do once\n"
	"                NAME.pub is in migd's keys dir, clients/ (then SIGHUP migd)\n"
	"\n"
	"Use the key with migctl --key DIR/NAME.key (or MIGCTL_KEY), and migd's public\n"
	"key with --server-key (default: migd.pub beside the key).\n";

enum { OPT_DIR = OPT_SUBCMD_BASE, OPT_ROLE };

int cmd_keygen(struct ctl *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		CTL_COMMON_LONGOPTS,
		{ "dir", required_argument, NULL, OPT_DIR },
		{ "role", required_argument, NULL, OPT_ROLE },
		{ 0 },
	};
	const char *dir = ".";
	enum curve_role role = CURVE_ROLE_NONE;
	int opt, rc;
	while ((opt = ctl_getopt(argc, argv, "", longopts)) != -1) {
		if (opt == OPT_DIR)
			dir = optarg;
		else if (opt == OPT_ROLE && curve_role_parse(optarg, &role) < 0)
			return ctl_usage_error(c, "--role \"%s\": expected reader, operator or admin",
					       optarg);
		else if (opt != OPT_ROLE && (rc = ctl_option(c, opt, argv, keygen_usage)) != CTL_CONTINUE)
			return rc;
	}
	if ((rc = ctl_positional(c, argc, argv, 1, "NAME")) != 0)
		return rc;
	const char *name = argv[optind];
	if (!*name || strchr(name, '/') || name[0] == '.' || strlen(name) > 60)
		return ctl_usage_error(c, "NAME \"%s\": expected a file name without '/' (1 to 60 "
				       "characters, not starting with '.')", name);
	char err[4400];
	struct curve_keypair kp;
	if (curve_keygen(dir, name, role, &kp, err, sizeof(err)) < 0) {
		ctl_error(c, "%s", err);
		return MIGCTL_EXIT_FAIL;
	}
	if (c->json)
		printf("{\"key\": \"%s/%s.key\", \"pub\": \"%s/%s.pub\", \"public_key\": \"%s\"}\n", dir,
		       name, dir, name, kp.public_z85);
	else
		printf("%s/%s.key\n%s/%s.pub\npublic key %s%s%s\n", dir, name, dir, name,
		       kp.public_z85, role ? ", role " : "", role ? curve_role_name(role) : "");
	memset(&kp, 0, sizeof(kp));
	return MIGCTL_EXIT_OK;
}
