/* pool: worker threads holding a connection, and the keep-alive mark
 * (pool.h). */
#include "http/pool.h"

static int held;
static int mark = 1;

/* Whether this worker thread holds a connection it counted: civetweb
 * calls init_connection and connection_close in the same thread. */
static __thread int holding;

void pool_init(int threads)
{
	int reserve = threads / 4 > 0 ? threads / 4 : 1;

	__atomic_store_n(&mark, threads > reserve ? threads - reserve : 0, __ATOMIC_RELAXED);
	__atomic_store_n(&held, 0, __ATOMIC_RELAXED);
}

int pool_enter(const struct mg_connection *c, void **conn_data)
{
	(void)c;
	(void)conn_data;
	if (!holding) {
		holding = 1;
		__atomic_add_fetch(&held, 1, __ATOMIC_RELAXED);
	}
	return 0;
}

void pool_leave(void)
{
	if (holding) {
		holding = 0;
		__atomic_sub_fetch(&held, 1, __ATOMIC_RELAXED);
	}
}

int pool_nearly_full(void)
{
	return __atomic_load_n(&held, __ATOMIC_RELAXED) > __atomic_load_n(&mark, __ATOMIC_RELAXED);
}

int pool_held(void)
{
	return __atomic_load_n(&held, __ATOMIC_RELAXED);
}
