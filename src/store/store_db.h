/*
 * store_db: the connection under a struct store, for the store's own
 * modules (results.c) that keep their statements beside their tables.
 * Nothing outside src/store/ includes this.
 */
#ifndef RB_STORE_STORE_DB_H
#define RB_STORE_STORE_DB_H

#include <sqlite3.h>

#include "store/store.h"

sqlite3 *store_sqlite(struct store *st);

#endif
