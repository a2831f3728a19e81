/*
 * meta: the sfs metadata server. It owns the namespace and every file's
 * layout, in one SQLite database (<dir>/meta.db, WAL, synchronous=FULL),
 * and creates and removes datafiles on the I/O servers on the files'
 * behalf. A reply is sent only after its change is committed.
 *
 * Ordering rule that makes crashes harmless: datafiles are created before
 * the row that names them is committed, and removed after the row is gone.
 * A crash can leave orphan datafiles, never a file whose datafiles are
 * missing.
 */
#ifndef MIGD_SFSD_META_H
#define MIGD_SFSD_META_H

#include "server.h"

struct meta;

extern const struct server_role_ops meta_role_ops;

#endif
