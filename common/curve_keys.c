/*
 * curve_keys: see curve_keys.h. Files are read whole (they are a few
 * lines) and parsed by one function, which the key-file checks and the
 * fuzzing share.
 */
#include "curve_keys.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define KEYFILE_MAX 4096

static const char *const role_names[] = { "none", "reader", "operator", "admin" };

const char *curve_role_name(enum curve_role role)
{
	return (unsigned)role < 4 ? role_names[role] : "?";
}

int curve_role_parse(const char *text, enum curve_role *out)
{
	for (int r = CURVE_ROLE_READER; r <= CURVE_ROLE_ADMIN; r++) {
		if (strcmp(text, role_names[r]) == 0) {
			*out = (enum curve_role)r;
			return 0;
		}
	}
	return -EINVAL;
}

int curve_z85_valid(const char *text)
{
	uint8_t bin[32];
	return strlen(text) == CURVE_Z85_LEN && zmq_z85_decode(bin, text) != NULL;
}

/* value without surrounding blanks and one pair of double quotes */
static void trim_value(char *v)
{
	size_t n = strlen(v);
	while (n && isspace((unsigned char)v[n - 1]))
		v[--n] = '\0';
	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		memmove(v, v + 1, n - 2);
		v[n - 2] = '\0';
	}
}

static int parse_line(char *line, int lineno, struct curve_keypair *kp, enum curve_role *role,
		      char *err, size_t errlen)
{
	while (isspace((unsigned char)*line))
		line++;
	if (!*line || *line == '#')
		return 0;
	char *eq = strchr(line, '=');
	if (!eq) {
		snprintf(err, errlen, "line %d: \"%.40s\": expected name = value", lineno, line);
		return -EINVAL;
	}
	char *name = line, *value = eq + 1;
	*eq = '\0';
	trim_value(name);
	while (isspace((unsigned char)*value))
		value++;
	trim_value(value);
	if (strcmp(name, "public-key") == 0 || strcmp(name, "secret-key") == 0) {
		if (!curve_z85_valid(value)) {
			snprintf(err, errlen, "line %d: %s \"%.48s\": expected 40 characters of Z85",
				 lineno, name, value);
			return -EINVAL;
		}
		snprintf(name[0] == 'p' ? kp->public_z85 : kp->secret_z85, CURVE_Z85_LEN + 1, "%s",
			 value);
	} else if (strcmp(name, "role") == 0) {
		if (curve_role_parse(value, role) < 0) {
			snprintf(err, errlen, "line %d: role \"%.40s\": expected reader, operator or "
				 "admin", lineno, value);
			return -EINVAL;
		}
	} else {
		snprintf(err, errlen, "line %d: unknown name \"%.40s\" (public-key, secret-key, role)",
			 lineno, name);
		return -EINVAL;
	}
	return 0;
}

int curve_keyfile_parse(const char *text, size_t len, struct curve_keypair *kp,
			enum curve_role *role, char *err, size_t errlen)
{
	char line[256];
	int lineno = 0, rc = 0;
	memset(kp, 0, sizeof(*kp));
	*role = CURVE_ROLE_NONE;
	for (size_t at = 0; at < len && rc == 0;) {
		const char *nl = memchr(text + at, '\n', len - at);
		size_t n = nl ? (size_t)(nl - (text + at)) : len - at;
		lineno++;
		if (n >= sizeof(line) || memchr(text + at, '\0', n)) {
			snprintf(err, errlen, "line %d: too long or not text", lineno);
			return -EINVAL;
		}
		memcpy(line, text + at, n);
		line[n] = '\0';
		rc = parse_line(line, lineno, kp, role, err, errlen);
		at += n + 1;
	}
	if (rc == 0 && !*kp->public_z85) {
		snprintf(err, errlen, "no public-key line");
		rc = -EINVAL;
	}
	if (rc == 0 && *kp->secret_z85) { /* the two must be one pair */
		char derived[CURVE_Z85_LEN + 1];
		if (zmq_curve_public(derived, kp->secret_z85) < 0 ||
		    strcmp(derived, kp->public_z85) != 0) {
			snprintf(err, errlen, "secret-key does not belong to public-key \"%s\"",
				 kp->public_z85);
			rc = -EINVAL;
		}
	}
	return rc;
}

/* path's text into buf (NUL-ended); the open file's mode in *mode. */
static int read_keyfile(const char *path, char *buf, size_t size, mode_t *mode, char *err,
			size_t errlen)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		if (fd >= 0)
			close(fd);
		return -e;
	}
	ssize_t n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0 || (size_t)n == size - 1) {
		snprintf(err, errlen, "%s: %s", path, n < 0 ? strerror(errno) : "too large for a key file");
		return -EINVAL;
	}
	buf[n] = '\0';
	*mode = st.st_mode;
	return (int)n;
}

static int load(const char *path, int secret, struct curve_keypair *kp, enum curve_role *role,
		char *err, size_t errlen)
{
	char buf[KEYFILE_MAX], why[256];
	mode_t mode = 0;
	enum curve_role r = CURVE_ROLE_NONE;
	int n = read_keyfile(path, buf, sizeof(buf), &mode, err, errlen);
	if (n < 0)
		return n;
	if (secret && (mode & 077)) {
		snprintf(err, errlen, "%s: mode %04o: a secret key must be readable by its owner only "
			 "(chmod 600 %s)", path, (unsigned)(mode & 07777), path);
		return -EPERM;
	}
	int rc = curve_keyfile_parse(buf, (size_t)n, kp, &r, why, sizeof(why));
	memset(buf, 0, sizeof(buf));
	if (rc == 0 && secret && !*kp->secret_z85) {
		snprintf(why, sizeof(why), "no secret-key line (a .pub file?)");
		rc = -EINVAL;
	}
	if (rc < 0)
		snprintf(err, errlen, "%s: %s", path, why);
	if (role)
		*role = r;
	return rc;
}

int curve_secret_load(const char *path, struct curve_keypair *kp, char *err, size_t errlen)
{
	return load(path, 1, kp, NULL, err, errlen);
}

int curve_public_load(const char *path, struct curve_keypair *kp, enum curve_role *role,
		      char *err, size_t errlen)
{
	int rc = load(path, 0, kp, role, err, errlen);
	memset(kp->secret_z85, 0, sizeof(kp->secret_z85)); /* a public file needs none */
	return rc;
}

static int write_file(const char *path, mode_t mode, const char *text, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s%s", path, strerror(e),
			 e == EEXIST ? " (a key is never overwritten; remove it first)" : "");
		return -e;
	}
	size_t len = strlen(text);
	int rc = write(fd, text, len) == (ssize_t)len && fchmod(fd, mode) == 0 ? 0 : -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		unlink(path);
	}
	return rc;
}

int curve_keygen(const char *dir, const char *name, enum curve_role role,
		 struct curve_keypair *out, char *err, size_t errlen)
{
	struct curve_keypair kp;
	char path[4096], text[512], role_line[32] = "";
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -errno;
	}
	if (zmq_curve_keypair(kp.public_z85, kp.secret_z85) < 0) {
		snprintf(err, errlen, "no CURVE in this ZeroMQ (%s)", zmq_strerror(zmq_errno()));
		return -ENOTSUP;
	}
	snprintf(path, sizeof(path), "%s/%s.key", dir, name);
	snprintf(text, sizeof(text), "# migd CURVE key pair \"%s\" (migctl keygen): keep it secret\n"
		 "public-key = \"%s\"\nsecret-key = \"%s\"\n", name, kp.public_z85, kp.secret_z85);
	int rc = write_file(path, 0600, text, err, errlen);
	memset(text, 0, sizeof(text));
	if (rc < 0)
		return rc;
	if (role != CURVE_ROLE_NONE)
		snprintf(role_line, sizeof(role_line), "role = %s\n", curve_role_name(role));
	snprintf(path, sizeof(path), "%s/%s.pub", dir, name);
	snprintf(text, sizeof(text), "# migd CURVE public key \"%s\" (migctl keygen)\n"
		 "public-key = \"%s\"\n%s", name, kp.public_z85, role_line);
	if ((rc = write_file(path, 0644, text, err, errlen)) < 0) {
		snprintf(path, sizeof(path), "%s/%s.key", dir, name);
		unlink(path);
		return rc;
	}
	if (out)
		*out = kp;
	memset(&kp, 0, sizeof(kp));
	return 0;
}

int curve_client_setup(void *socket, const struct curve_keypair *client,
		       const char *server_public_z85)
{
	if (zmq_setsockopt(socket, ZMQ_CURVE_SERVERKEY, server_public_z85, CURVE_Z85_LEN) < 0 ||
	    zmq_setsockopt(socket, ZMQ_CURVE_PUBLICKEY, client->public_z85, CURVE_Z85_LEN) < 0 ||
	    zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, client->secret_z85, CURVE_Z85_LEN) < 0)
		return -zmq_errno();
	return 0;
}

int curve_server_setup(void *socket, const struct curve_keypair *server, const char *zap_domain)
{
	int one = 1;
	if (zmq_setsockopt(socket, ZMQ_CURVE_SERVER, &one, sizeof(one)) < 0 ||
	    zmq_setsockopt(socket, ZMQ_CURVE_SECRETKEY, server->secret_z85, CURVE_Z85_LEN) < 0 ||
	    zmq_setsockopt(socket, ZMQ_ZAP_DOMAIN, zap_domain, strlen(zap_domain)) < 0)
		return -zmq_errno();
	return 0;
}
