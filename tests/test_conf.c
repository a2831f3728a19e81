/*
 * sfs.conf: a good file loads with every value, every kind of bad input is
 * refused with a message naming file, line, option and value, and
 * overrides apply per run.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sfs_conf.h"

static struct sfs_conf *conf;
static char err[512];
static char path[64];

static void setup(void)
{
	conf = calloc(1, sizeof(*conf));
	snprintf(path, sizeof(path), "/tmp/test_conf_%d.conf", (int)getpid());
}

static void teardown(void)
{
	free(conf);
	unlink(path);
}

static void write_file(const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

TestSuite(conf, .init = setup, .fini = teardown);

Test(conf, genconfig_output_loads_back)
{
	FILE *f = fopen(path, "w");
	cr_assert_eq(sfs_conf_write_loopback(f, 4, "/tmp/sfsdata", 7000), 0);
	fclose(f);
	cr_assert_eq(sfs_conf_load(path, conf, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(conf->n_io, 4);
	cr_assert_str_eq(conf->meta.name, "meta");
	cr_assert_eq(conf->meta.port, 7000);
	cr_assert_str_eq(conf->io[3].name, "io3");
	cr_assert_eq(conf->io[3].port, 7004);
	cr_assert_str_eq(conf->io[3].dir, "/tmp/sfsdata/io3");
	cr_assert_eq(conf->strip_size, 65536);
	cr_assert_eq(conf->timeout_ms, 30000);
	cr_assert_eq(conf->tcp_nodelay, 1);
	int idx;
	cr_assert_not_null(sfs_conf_find(conf, "io2", &idx));
	cr_assert_eq(idx, 2);
	cr_assert_null(sfs_conf_find(conf, "nope", &idx));
}

Test(conf, values_and_units_are_read)
{
	write_file("[global]\nstrip_size = 1m\nsocket_sndbuf = 256KiB\ntcp_nodelay = no\n"
		   "timeout_ms = 2500\n[server m]\nrole = meta\naddress = [::1]:9000\n"
		   "dir = /x/m\n[server a]\nrole = io\naddress = localhost:9001\ndir = /x/a\n");
	cr_assert_eq(sfs_conf_load(path, conf, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(conf->strip_size, 1u << 20);
	cr_assert_eq(conf->socket_sndbuf_bytes, 256u << 10);
	cr_assert_eq(conf->tcp_nodelay, 0);
	cr_assert_eq(conf->timeout_ms, 2500);
	cr_assert_str_eq(conf->meta.host, "::1");
	cr_assert_str_eq(conf->io[0].host, "localhost");
}

static void expect_error(const char *text, const char *needle1, const char *needle2)
{
	write_file(text);
	cr_assert_eq(sfs_conf_load(path, conf, err, sizeof(err)), -EINVAL, "accepted: %s", text);
	cr_assert(strstr(err, needle1), "message \"%s\" lacks \"%s\"", err, needle1);
	if (needle2)
		cr_assert(strstr(err, needle2), "message \"%s\" lacks \"%s\"", err, needle2);
}

#define SERVERS "[server m]\nrole = meta\naddress = 127.0.0.1:1\ndir = /m\n" \
		"[server i]\nrole = io\naddress = 127.0.0.1:2\ndir = /i\n"

Test(conf, bad_values_name_line_option_and_value)
{
	expect_error("[global]\n\nstrip_size = 64x\n" SERVERS, ":3:", "strip_size \"64x\"");
	expect_error("[global]\ntcp_nodelay = maybe\n" SERVERS, ":2:", "maybe");
	expect_error("[global]\ntimeout_ms = -5\n" SERVERS, "timeout_ms", "-5");
	expect_error("[global]\nstripe_count = 65\n" SERVERS, "stripe_count", "out of range");
	expect_error("[global]\nbogus = 1\n" SERVERS, "unknown option", "bogus");
	expect_error("[weird]\nx = 1\n" SERVERS, "unknown section", "weird");
	expect_error(SERVERS "[server j]\nrole = disk\n", "role \"disk\"", NULL);
	expect_error(SERVERS "[server j]\nrole = io\naddress = nowhere\n", "address \"nowhere\"",
		     NULL);
	expect_error(SERVERS "[server j]\nrole = io\naddress = h:99999\n", "h:99999", NULL);
	expect_error(SERVERS "[server j]\nrole = io\ndir = relative\n", "dir \"relative\"", NULL);
	expect_error("this is not ini\n", ":1:", NULL);
}

Test(conf, missing_pieces_are_named)
{
	expect_error("[server i]\nrole = io\naddress = 127.0.0.1:2\ndir = /i\n",
		     "no metadata server", NULL);
	expect_error("[server m]\nrole = meta\naddress = 127.0.0.1:1\ndir = /m\n", "no I/O servers",
		     NULL);
	expect_error(SERVERS "[server k]\nrole = io\ndir = /k\n", "server k", "address missing");
	expect_error(SERVERS "[server n]\nrole = meta\naddress = 127.0.0.1:5\ndir = /n\n",
		     "second metadata server", NULL);
	expect_error("[global]\nstripe_count = 2\n" SERVERS, "stripe_count 2", "only 1");
	expect_error("[global]\nstrip_size = 5000\n" SERVERS, "strip_size 5000", "512");
}

Test(conf, missing_file_is_named)
{
	cr_assert_eq(sfs_conf_load("/nonexistent/sfs.conf", conf, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "/nonexistent/sfs.conf"), "%s", err);
}

Test(conf, overrides_apply_and_are_checked)
{
	write_file(SERVERS);
	cr_assert_eq(sfs_conf_load(path, conf, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(sfs_conf_override(conf, "socket_rcvbuf=1m", err, sizeof(err)), 0);
	cr_assert_eq(conf->socket_rcvbuf_bytes, 1u << 20);
	cr_assert_eq(sfs_conf_override(conf, "max_request=lots", err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "lots"), "%s", err);
	cr_assert_eq(sfs_conf_override(conf, "nosuch=1", err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "nosuch"), "%s", err);
	cr_assert_eq(sfs_conf_override(conf, "noequals", err, sizeof(err)), -EINVAL);
}

Test(conf, dump_reloads_to_the_same_config)
{
	write_file("[global]\nstrip_size = 128k\n" SERVERS);
	cr_assert_eq(sfs_conf_load(path, conf, err, sizeof(err)), 0, "%s", err);
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	sfs_conf_dump(conf, mem);
	fclose(mem);
	write_file(text);
	free(text);
	struct sfs_conf *again = calloc(1, sizeof(*again));
	cr_assert_eq(sfs_conf_load(path, again, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(again->strip_size, 128u << 10);
	cr_assert_str_eq(again->io[0].dir, "/i");
	free(again);
}

Test(conf, agent_socket_is_a_path_or_off)
{
	write_file(SERVERS);
	cr_assert_eq(sfs_conf_load(path, conf, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(conf->agent_socket, "/run/migagent/sfs.sock");
	cr_assert_eq(sfs_conf_override(conf, "agent_socket=/tmp/a.sock", err, sizeof(err)), 0);
	cr_assert_str_eq(conf->agent_socket, "/tmp/a.sock");
	cr_assert_eq(sfs_conf_override(conf, "agent_socket=off", err, sizeof(err)), 0);
	cr_assert_str_eq(conf->agent_socket, "off");
	cr_assert_eq(sfs_conf_override(conf, "agent_socket=", err, sizeof(err)), 0);
	cr_assert_eq(sfs_conf_override(conf, "agent_socket=run/x.sock", err, sizeof(err)),
		     -EINVAL);
	cr_assert(strstr(err, "\"run/x.sock\": expected an absolute path or off"), "%s", err);
	char long_value[200] = "agent_socket=/";
	memset(long_value + 14, 'a', 150);
	cr_assert_eq(sfs_conf_override(conf, long_value, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "longer than 107 bytes"), "%s", err);
	/* In the file too, and an empty value dumps as off and reads back. */
	write_file("[global]\nagent_socket =\n" SERVERS);
	cr_assert_eq(sfs_conf_load(path, conf, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(conf->agent_socket, "");
	write_file("[global]\nagent_socket = sock\n" SERVERS);
	cr_assert_eq(sfs_conf_load(path, conf, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, ":2: agent_socket \"sock\""), "%s", err);
}

Test(conf, capability_options_default_on_and_are_checked)
{
	write_file(SERVERS);
	cr_assert_eq(sfs_conf_load(path, conf, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(conf->capabilities, 1);
	cr_assert_str_eq(conf->capability_key, "");
	cr_assert_eq(conf->capability_lifetime_ms, 600000);
	cr_assert_eq(sfs_conf_override(conf, "capabilities=off", err, sizeof(err)), 0);
	cr_assert_eq(conf->capabilities, 0);
	cr_assert_eq(sfs_conf_override(conf, "capabilities=maybe", err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "\"maybe\""), "%s", err);
	cr_assert_eq(sfs_conf_override(conf, "capability_key=keys/k", err, sizeof(err)),
		     -EINVAL);
	cr_assert(strstr(err, "\"keys/k\": expected an absolute path"), "%s", err);
	cr_assert_eq(sfs_conf_override(conf, "capability_key=off", err, sizeof(err)), -EINVAL);
	cr_assert_eq(sfs_conf_override(conf, "capability_key=/etc/sfs/k", err, sizeof(err)), 0);
	cr_assert_str_eq(conf->capability_key, "/etc/sfs/k");
	cr_assert_eq(sfs_conf_override(conf, "capability_lifetime_ms=99", err, sizeof(err)),
		     -EINVAL);
	cr_assert(strstr(err, "out of range"), "%s", err);
	/* the default key place dumps as nothing and reads back so */
	write_file("[global]\ncapability_key =\n" SERVERS);
	cr_assert_eq(sfs_conf_load(path, conf, err, sizeof(err)), 0, "%s", err);
	FILE *f = fopen(path, "w");
	sfs_conf_dump(conf, f);
	fclose(f);
	cr_assert_eq(sfs_conf_load(path, conf, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(conf->capability_key, "");
}

Test(conf, metrics_endpoints_follow_the_server_order)
{
	char buf[160];
	/* off by default */
	write_file(SERVERS);
	cr_assert_eq(sfs_conf_load(path, conf, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(sfs_conf_metrics_listen(conf, &conf->meta, buf, sizeof(buf)), "");
	/* meta on PORT, I/O server k on PORT+1+k, a server's own setting wins */
	write_file("[metrics]\nlisten = 127.0.0.1:9464\n"
		   "[server m]\nrole = meta\naddress = 127.0.0.1:1\ndir = /m\n"
		   "[server a]\nrole = io\naddress = 127.0.0.1:2\ndir = /a\n"
		   "[server b]\nrole = io\naddress = 127.0.0.1:3\ndir = /b\n"
		   "[server c]\nrole = io\naddress = 127.0.0.1:4\ndir = /c\n"
		   "metrics_listen = [::1]:7000\n"
		   "[server d]\nrole = io\naddress = 127.0.0.1:5\ndir = /d\nmetrics_listen = off\n");
	cr_assert_eq(sfs_conf_load(path, conf, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(sfs_conf_metrics_listen(conf, &conf->meta, buf, sizeof(buf)),
			 "127.0.0.1:9464");
	cr_assert_str_eq(sfs_conf_metrics_listen(conf, &conf->io[1], buf, sizeof(buf)),
			 "127.0.0.1:9466");
	cr_assert_str_eq(sfs_conf_metrics_listen(conf, &conf->io[2], buf, sizeof(buf)),
			 "[::1]:7000");
	cr_assert_str_eq(sfs_conf_metrics_listen(conf, &conf->io[3], buf, sizeof(buf)), "");
	/* dumped and read back the same */
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	sfs_conf_dump(conf, mem);
	fclose(mem);
	write_file(text);
	free(text);
	cr_assert_eq(sfs_conf_load(path, conf, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(sfs_conf_metrics_listen(conf, &conf->io[0], buf, sizeof(buf)),
			 "127.0.0.1:9465");
	cr_assert_str_eq(sfs_conf_metrics_listen(conf, &conf->io[3], buf, sizeof(buf)), "");
	/* bad values are named */
	expect_error("[metrics]\nlisten = 9464\n" SERVERS, ":2:", "\"9464\"");
	expect_error("[metrics]\nport = 1\n" SERVERS, "unknown option", "port");
	expect_error("[metrics]\nlisten = h:65535\n" SERVERS, "h:65535", "65536");
	expect_error(SERVERS "metrics_listen = x\n", "\"x\"", NULL);
}
