/*
 * db_keys: each guest's agent key, the CURVE public key (Z85) of the one
 * migagent that may report for and act on that guest. Kept in the guest's
 * row (schema 7), so it goes with the guest.
 */
#ifndef MIGD_DB_KEYS_H
#define MIGD_DB_KEYS_H

#include <stddef.h>

#include "db.h"

#define DB_AGENT_KEY_MAX 41 /* Z85 of 32 bytes, with the NUL */

/* Set (or clear, with "") guest's agent key; -ENOENT when no such guest. */
int db_guest_set_agent_key(struct db *db, const char *guest, const char *key_z85);
/* guest's agent key into key ("" when it has none); -ENOENT when no such guest. */
int db_guest_agent_key(struct db *db, const char *guest, char key[DB_AGENT_KEY_MAX]);
/* The guest whose agent key is key_z85, into guest; -ENOENT when none. */
int db_guest_by_agent_key(struct db *db, const char *key_z85, char guest[DB_NAME_MAX]);

#endif
