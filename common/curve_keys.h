/*
 * curve_keys: CURVE key files, shared by migd, migctl and migagent.
 *
 * A key pair lives in two text files, in the shape of CZMQ's certificates
 * (Flux's overlay keys look the same): NAME.key holds the public and the
 * secret key and must be readable by its owner only; NAME.pub holds the
 * public key and, for migd's allow-list, the role of whoever holds the
 * secret. Both are "name = value" lines, values in Z85 (40 characters),
 * '#' starts a comment:
 *
 *	public-key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
 *	secret-key = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
 *	role = operator
 *
 * A secret key file that group or others may read is refused, as ssh
 * refuses such a private key: a key others could read proves nothing.
 */
#ifndef MIGD_CURVE_KEYS_H
#define MIGD_CURVE_KEYS_H

#include <stddef.h>

#define CURVE_Z85_LEN 40 /* a 32-byte key in Z85 */

struct curve_keypair {
	char public_z85[CURVE_Z85_LEN + 1];
	char secret_z85[CURVE_Z85_LEN + 1]; /* "" when only the public key is known */
};

/* The roles of migd's allow-list, each allowed what the one before is. */
enum curve_role { CURVE_ROLE_NONE, CURVE_ROLE_READER, CURVE_ROLE_OPERATOR, CURVE_ROLE_ADMIN };

const char *curve_role_name(enum curve_role role);
/* "reader", "operator", "admin": 0, else -EINVAL. */
int curve_role_parse(const char *text, enum curve_role *out);

/* 1 when text is 40 characters of Z85 that decode, else 0. */
int curve_z85_valid(const char *text);

/*
 * Parse key-file text (len bytes, not NUL-ended): public-key (required),
 * secret-key and role (optional; CURVE_ROLE_NONE when absent). -EINVAL
 * with "line 3: ..." naming the bad value in err.
 */
int curve_keyfile_parse(const char *text, size_t len, struct curve_keypair *kp,
			enum curve_role *role, char *err, size_t errlen);

/* A secret key file: refused (-EPERM) when group or others may read it,
 * or when it holds no secret key; err names the path and the mode. */
int curve_secret_load(const char *path, struct curve_keypair *kp, char *err, size_t errlen);
/* A public key file, with its role (CURVE_ROLE_NONE when it has none). */
int curve_public_load(const char *path, struct curve_keypair *kp, enum curve_role *role,
		      char *err, size_t errlen);

/*
 * A new key pair in dir/NAME.key (0600, created exclusively: an existing
 * key is never overwritten, -EEXIST) and dir/NAME.pub (0644, with "role =
 * ROLE" when role is not CURVE_ROLE_NONE). dir is created 0700 when
 * missing. kp (may be NULL) gets the pair.
 */
int curve_keygen(const char *dir, const char *name, enum curve_role role,
		 struct curve_keypair *kp, char *err, size_t errlen);

/* Socket options of a CURVE client that pins server_public_z85, and of a
 * CURVE server; -errno from ZeroMQ. */
int curve_client_setup(void *socket, const struct curve_keypair *client,
		       const char *server_public_z85);
int curve_server_setup(void *socket, const struct curve_keypair *server, const char *zap_domain);

#endif
