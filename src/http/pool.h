/*
 * pool: how many of civetweb's worker threads hold a connection, so that
 * answers close their connection while the pool is nearly full.
 *
 * After an answer civetweb 1.15 keeps a keep-alive connection in its
 * worker thread, waiting up to keep_alive_timeout_ms for the next request;
 * its API cannot give the connection back to the door (src/http/door.h)
 * while it idles.  So http.threads connections that each send one request
 * and then idle hold every thread.  A thread holds a connection from
 * civetweb's init_connection callback to its connection_close; once
 * more than the mark (http.threads less a quarter of them) do, every answer
 * says "Connection: close" and closes.  At most the mark threads can then
 * idle on keep-alive, and the rest serve requests the door has complete,
 * which take no waiting.  Below the mark, keep-alive works as usual.
 */
#ifndef RB_HTTP_POOL_H
#define RB_HTTP_POOL_H

struct mg_connection;

/* Sets the mark for a pool of threads workers (once, before mg_start). */
void pool_init(int threads);

/* mg_callbacks.init_connection: a worker thread takes a connection. */
int pool_enter(const struct mg_connection *c, void **conn_data);

/* From mg_callbacks.connection_close: the thread lets it go.  Only a
 * thread that entered counts (civetweb also closes TLS connections whose
 * handshake failed, which never entered). */
void pool_leave(void);

/* 1 when the answer being written must close its connection. */
int pool_nearly_full(void);

/* Threads holding a connection now (for tests and metrics). */
int pool_held(void);

#endif
