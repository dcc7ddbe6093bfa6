/*
 * api_query: the read side of the operator API, and what its handlers
 * share (a request's arguments, the store connections).
 *
 * Reads use read-only connections from a small pool (at most POOL_MAX
 * kept; more are opened when more requests read at once).  Every list is
 * newest first with keyset pagination: the cursor is the seq (deliveries)
 * or job id (jobs) to continue below, or the runs index position.  A
 * filter no index serves examines at most API_SCAN_BUDGET ids below the
 * cursor (or entries of a state's index), newest first: a page may then
 * hold fewer than limit items with a next_cursor to go on scanning from
 * (README "Operator API").
 */
#ifndef RB_API_API_QUERY_H
#define RB_API_API_QUERY_H

#include <stddef.h>
#include <json-c/json.h>
#include <sqlite3.h>

struct mg_connection;
struct acceptor;
struct config;
struct http_status;
struct store;

#define API_SCAN_BUDGET   20000
#define API_LIMIT_DEFAULT 50
#define API_LIMIT_MAX     500

struct api_req {
	struct mg_connection *c;
	const struct config *cfg;
	const struct http_status *status;
	struct acceptor *acc; /* its loaded rules: acceptor_with_rules; may be NULL */
	const char *qs;       /* query string, or NULL */
};

/* The indexes the API's queries need (api_query.c says why each is
 * worth its write), created once through a writable connection. */
int api_db_init(const char *data_dir);
void api_db_free(void);
/* A read-only connection's database, or NULL (the store cannot be read). */
struct store *api_db_get(void);
void api_db_put(struct store *st);

/*
 * The API's writable connection, held until api_db_writer_done (one
 * writer at a time), or NULL with err set.  Its commits are durable when
 * they return (the store's synchronous=FULL); the WAL checkpoint a large
 * write makes due runs in api_db_writer_done, which the caller calls
 * with checkpoint 1 after it answered.
 */
struct err;
struct store *api_db_writer(struct err *err);
void api_db_writer_done(struct store *st, int checkpoint);

/* Query argument name, decoded: 1 present, 0 absent, -1 too long. */
int api_arg(const struct api_req *r, const char *name, char *out, size_t len);
/* limit= (default 50, 1..500) and cursor= (a non-negative integer, or
 * LLONG_MAX when absent): 0, or an answered 400. */
int api_page(const struct api_req *r, int *limit, long long *cursor);

/* A job row as the API shows it, from the columns of API_JOB_COLS. */
#define API_JOB_COLS                                                                   \
	"j.id, d.id, j.rule, j.kind, json_extract(j.params, '$.target'), j.state,"     \
	" j.attempts, j.last_error, j.next_ms, j.created_ms, j.updated_ms, d.project," \
	" d.run_id"
json_object *api_job_row(sqlite3_stmt *s);
const char *api_state_name(int state);
int api_state_of(const char *name); /* -1 for an unknown name */

/* The handlers: each answers and returns the status. */
int api_get_deliveries(const struct api_req *r);
int api_get_delivery(const struct api_req *r, const char *id);
int api_get_jobs(const struct api_req *r);
int api_get_job(const struct api_req *r, long long id);
int api_get_runs(const struct api_req *r);
int api_get_run(const struct api_req *r, const char *project, long long run_id);
int api_get_summary(const struct api_req *r);
/* When the process started, for the summary's uptime. */
void api_runs_started(long long ms);
int api_get_rules(const struct api_req *r);
int api_post_route(const struct api_req *r, const char *body, size_t len);
int api_post_replay_job(const struct api_req *r, long long id);
int api_post_replay(const struct api_req *r, const char *body, size_t len);

/* An action's params as the API may show them: http URLs and credential
 * headers masked, exec environment values masked.  New reference. */
json_object *api_params_masked(const char *kind, json_object *params);

#endif
