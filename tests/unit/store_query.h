/*
 * store_query: the first column of the first row of a query on a store's
 * connection, for tests that look at tables directly.
 */
#ifndef RB_TESTS_STORE_QUERY_H
#define RB_TESTS_STORE_QUERY_H

#include <sqlite3.h>

#include "store/store_db.h"

/* -1 when the query returns no row; the test fails if it cannot prepare. */
static long long store_query_one(struct store *st, const char *sql)
{
	sqlite3_stmt *s;
	long long n = -1;

	assert_int_equal(sqlite3_prepare_v2(store_sqlite(st), sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

#endif
