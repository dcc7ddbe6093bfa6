/*
 * action_redis: the redis action kind, and the connection that runs it.
 *
 * The connection belongs to one worker thread.  The append script is loaded
 * once per connection and called by EVALSHA; a NOSCRIPT answer (the server
 * was restarted or flushed its scripts) reloads it on the next connect.
 *
 * The worker logs the link's state once per change (connected, unreachable,
 * authentication refused), not once per retry: a wrong password in
 * redis.url is one error line, and the next line says when it works.
 *
 * Failures are sorted by what Redis did.  An error answer is an attempt.  A
 * link that fails with the pipeline out (reset, EOF, no answer within
 * REDIS_TIMEOUT_MS: a crashed or SIGSTOPped server) says nothing about the
 * jobs still unanswered, so they are deferred, not charged: the ones that
 * ran before the answer was lost find their dedup key when sent again, and
 * a lane sends its next job only after this one is answered, so the order
 * per run holds even when a stale connection's commands run late.  Only a
 * job that is first unanswered when the link drops SUSPECT_LOSSES times in
 * a row is charged an attempt: an append that itself makes Redis close the
 * link (over a query buffer limit) must reach dead letters, not hold its
 * batch forever.
 */
#include "actions/action_redis.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

#include "core/log.h"
#include "rules/template.h"

/* ---- the rule side: parse and render ------------------------------------ */

struct redis_spec {
	struct tmpl *stream;
	long long maxlen;
};

static void redis_free_spec(void *p)
{
	struct redis_spec *s = p;
	if (!s)
		return;
	tmpl_free(s->stream);
	free(s);
}

static int parse_stream(void *spec, const struct cfg_node *v, struct errlist *errs)
{
	struct redis_spec *s = spec;
	char where[300];
	struct err e;

	if (v->type != CFG_SCALAR || !*v->value)
		return errlist_add(errs, "%s: redis: stream must be a non-empty string",
				   cfg_where(v, where, sizeof(where)));
	if (tmpl_compile(&s->stream, v->value, &e) < 0)
		return errlist_add(errs, "%s: redis: stream: %s",
				   cfg_where(v, where, sizeof(where)), e.msg);
	return 0;
}

static int parse_maxlen(void *spec, const struct cfg_node *v, struct errlist *errs)
{
	struct redis_spec *s = spec;
	char where[300];

	if (cfg_scalar_int(v, &s->maxlen) < 0 || s->maxlen < 0)
		return errlist_add(errs, "%s: redis: maxlen must be a non-negative integer",
				   cfg_where(v, where, sizeof(where)));
	return 0;
}

static const struct cfg_key redis_keys[] = {
	{ "stream", parse_stream },
	{ "maxlen", parse_maxlen },
};

static int redis_parse(void **out, const struct cfg_node *node, struct errlist *errs)
{
	char where[300];
	struct redis_spec *s;
	unsigned seen = 0;
	int bad;

	*out = NULL;
	if (node->type != CFG_MAP)
		return errlist_add(
			errs, "%s: redis: expected a map like { stream: \"runbridge:{{project}}\" }",
			cfg_where(node, where, sizeof(where)));
	s = calloc(1, sizeof(*s));
	if (!s)
		return errlist_add(errs, "out of memory");
	bad = cfg_parse_keys(s, node, redis_keys, 2, "redis", &seen, errs);
	if (!s->stream && !bad)
		bad = errlist_add(errs, "%s: redis: stream is required",
				  cfg_where(node, where, sizeof(where)));
	if (bad) {
		redis_free_spec(s);
		return -1;
	}
	*out = s;
	return 0;
}

static int redis_render(json_object **out, const void *spec, json_object *event, struct err *err)
{
	const struct redis_spec *s = spec;
	json_object *o = json_object_new_object();
	char *stream = tmpl_render(s->stream, event, TMPL_RAW, 0);

	*out = NULL;
	if (!o || !stream) {
		json_object_put(o);
		free(stream);
		return err_set(err, "out of memory");
	}
	json_object_object_add(o, "stream", json_object_new_string(stream));
	json_object_object_add(o, "maxlen", json_object_new_int64(s->maxlen));
	free(stream);
	*out = o;
	return 0;
}

/* ---- the running side: connection and pipelined appends ------------------ */

/*
 * KEYS[1] stream, KEYS[2] dedup key.
 * ARGV: ttl, maxlen, id, type, project, run_id, event.
 * XADD runs before the key is set, so a failing XADD (WRONGTYPE) leaves no
 * dedup key behind and the retry can still append.
 */
static const char append_script[] = "if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end\n"
				    "local id\n"
				    "if ARGV[2] ~= '0' then\n"
				    "  id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*',"
				    "    'id', ARGV[3], 'type', ARGV[4], 'project', ARGV[5],"
				    "    'run_id', ARGV[6], 'event', ARGV[7])\n"
				    "else\n"
				    "  id = redis.call('XADD', KEYS[1], '*',"
				    "    'id', ARGV[3], 'type', ARGV[4], 'project', ARGV[5],"
				    "    'run_id', ARGV[6], 'event', ARGV[7])\n"
				    "end\n"
				    "redis.call('SET', KEYS[2], id, 'EX', ARGV[1])\n"
				    "return id\n";

struct redis_conn {
	redisContext *ctx;
	char *host;
	int port, db;
	char *password;
	int ttl_s;
	char sha[41];
	int auth_refused; /* the last connect failed on AUTH or NOAUTH */
};

int redis_conn_new(struct redis_conn **out, const struct config *cfg, struct err *err)
{
	struct redis_conn *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c)
		return err_set(err, "out of memory");
	c->host = strdup(cfg->redis_host ? cfg->redis_host : "127.0.0.1");
	c->password = cfg->redis_password ? strdup(cfg->redis_password) : NULL;
	if (!c->host || (cfg->redis_password && !c->password)) {
		redis_conn_free(c);
		return err_set(err, "out of memory");
	}
	c->port = cfg->redis_port;
	c->db = cfg->redis_db;
	c->ttl_s = cfg->redis_dedup_ttl_s;
	*out = c;
	return 0;
}

static void disconnect(struct redis_conn *c)
{
	if (c->ctx)
		redisFree(c->ctx);
	c->ctx = NULL;
}

void redis_conn_free(struct redis_conn *c)
{
	if (!c)
		return;
	disconnect(c);
	free(c->host);
	free(c->password);
	free(c);
}

int redis_conn_connected(const struct redis_conn *c)
{
	return c->ctx != NULL;
}

/* The link failed: says how (a timeout by name, not as EAGAIN) and drops it. */
static int link_failed(struct redis_conn *c, struct err *err)
{
	int timed_out = c->ctx->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);

	if (timed_out)
		err_set(err, "redis %s:%d: no answer within %d ms", c->host, c->port,
			REDIS_TIMEOUT_MS);
	else
		err_set(err, "redis %s:%d: %s", c->host, c->port,
			c->ctx->errstr[0] ? c->ctx->errstr : "connection lost");
	disconnect(c);
	return -1;
}

/* Runs one command; a reply of type error or a transport error fails. */
static int command(struct redis_conn *c, struct err *err, redisReply **out, int argc,
		   const char **argv)
{
	redisReply *r = redisCommandArgv(c->ctx, argc, argv, NULL);
	if (!r)
		return link_failed(c, err);
	if (r->type == REDIS_REPLY_ERROR) {
		/* the reply names no password, nor does argv[0] */
		err_set(err, "redis %s: %s", argv[0], r->str);
		if (strcmp(argv[0], "AUTH") == 0 || strncmp(r->str, "NOAUTH", 6) == 0 ||
		    strncmp(r->str, "WRONGPASS", 9) == 0)
			c->auth_refused = 1;
		freeReplyObject(r);
		return -1;
	}
	if (out)
		*out = r;
	else
		freeReplyObject(r);
	return 0;
}

static int handshake(struct redis_conn *c, struct err *err)
{
	redisReply *r = NULL;
	char db[16];

	if (c->password) {
		const char *a[] = { "AUTH", c->password };
		if (command(c, err, NULL, 2, a) < 0)
			return -1;
	}
	if (c->db) {
		snprintf(db, sizeof(db), "%d", c->db);
		const char *a[] = { "SELECT", db };
		if (command(c, err, NULL, 2, a) < 0)
			return -1;
	}
	const char *a[] = { "SCRIPT", "LOAD", append_script };
	if (command(c, err, &r, 3, a) < 0)
		return -1;
	if (r->type != REDIS_REPLY_STRING || r->len != 40) {
		freeReplyObject(r);
		return err_set(err, "redis SCRIPT LOAD: unexpected reply");
	}
	memcpy(c->sha, r->str, 40);
	c->sha[40] = '\0';
	freeReplyObject(r);
	return 0;
}

int redis_conn_ensure(struct redis_conn *c, struct err *err)
{
	struct timeval tv = { .tv_sec = REDIS_TIMEOUT_MS / 1000,
			      .tv_usec = REDIS_TIMEOUT_MS % 1000 * 1000 };

	if (c->ctx)
		return 0;
	c->auth_refused = 0;
	c->ctx = redisConnectWithTimeout(c->host, c->port, tv);
	if (!c->ctx)
		return err_set(err, "redis %s:%d: out of memory", c->host, c->port);
	if (c->ctx->err) {
		err_set(err, "redis %s:%d: %s", c->host, c->port, c->ctx->errstr);
		disconnect(c);
		return -1;
	}
	/* A stalled server must not hold the worker, nor /readyz say up. */
	redisSetTimeout(c->ctx, tv);
	if (handshake(c, err) < 0) {
		disconnect(c);
		return -1;
	}
	return 0;
}

static int append_one(struct redis_conn *c, const struct redis_append *a)
{
	char ttl[24], maxlen[24];
	const char *argv[12];
	size_t len[12];

	snprintf(ttl, sizeof(ttl), "%d", c->ttl_s);
	snprintf(maxlen, sizeof(maxlen), "%lld", a->maxlen);
	const char *v[] = { "EVALSHA", c->sha, "2",     a->stream,  a->dedup_key, ttl,
			    maxlen,    a->id,  a->type, a->project, a->run_id,    a->event_json };
	for (int i = 0; i < 12; i++) {
		argv[i] = v[i];
		len[i] = strlen(v[i]);
	}
	return redisAppendCommandArgv(c->ctx, 12, argv, len) == REDIS_OK ? 0 : -1;
}

static void take_reply(struct redis_append *a, redisReply *r)
{
	a->answered = 1;
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(a->error, sizeof(a->error), "%s", r->str);
		return;
	}
	a->ok = 1;
	a->duplicate = r->type == REDIS_REPLY_INTEGER;
}

int redis_append_batch(struct redis_conn *c, struct redis_append *items, size_t n, struct err *err)
{
	for (size_t i = 0; i < n; i++) {
		items[i].answered = items[i].ok = items[i].duplicate = 0;
		snprintf(items[i].error, sizeof(items[i].error), "no reply");
	}
	if (redis_conn_ensure(c, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (append_one(c, &items[i]) < 0) {
			err_set(err, "redis: cannot queue command: %s", c->ctx->errstr);
			disconnect(c);
			return -1;
		}
	}
	for (size_t i = 0; i < n; i++) {
		void *rv = NULL;
		if (redisGetReply(c->ctx, &rv) != REDIS_OK || !rv)
			return link_failed(c, err);
		take_reply(&items[i], rv);
		freeReplyObject(rv);
	}
	/* NOSCRIPT: reload on the next connect; those items retry. */
	for (size_t i = 0; i < n; i++)
		if (!items[i].ok && strncmp(items[i].error, "NOSCRIPT", 8) == 0) {
			disconnect(c);
			break;
		}
	return 0;
}

/* ---- the kind: one thread per pool, pipelined batches ------------------- */

/* What the log last said about the link. */
enum redis_link { LINK_UNKNOWN, LINK_UP, LINK_DOWN, LINK_AUTH };

struct redis_worker {
	struct redis_conn *conn;
	enum redis_link link;
	size_t n; /* batch slots */
	struct redis_append *appends;
	char (*keys)[512];
	char (*run_ids)[24];
	size_t *map;       /* appends[k] is jobs[map[k]] */
	long long suspect; /* job first unanswered when the link last dropped */
	int losses;        /* drops in a row with suspect first unanswered */
};

#define SUSPECT_LOSSES 3

static void redis_pool(const struct config *cfg, struct action_pool *out)
{
	*out = (struct action_pool){ .threads = 1, .batch = (size_t)cfg->redis_batch };
}

static void redis_close(void *p)
{
	struct redis_worker *w = p;
	if (!w)
		return;
	redis_conn_free(w->conn);
	free(w->appends);
	free(w->keys);
	free(w->run_ids);
	free(w->map);
	free(w);
}

static int redis_open(void **out, const struct action_ops *self, struct action_host *host,
		      struct err *err)
{
	struct redis_worker *w = calloc(1, sizeof(*w));
	size_t n = (size_t)host->cfg->redis_batch;

	(void)self;
	*out = NULL;
	if (!w)
		return err_set(err, "out of memory");
	w->n = n;
	w->appends = calloc(n, sizeof(*w->appends));
	w->keys = calloc(n, sizeof(*w->keys));
	w->run_ids = calloc(n, sizeof(*w->run_ids));
	w->map = calloc(n, sizeof(*w->map));
	if (!w->appends || !w->keys || !w->run_ids || !w->map) {
		redis_close(w);
		return err_set(err, "out of memory");
	}
	if (redis_conn_new(&w->conn, host->cfg, err) < 0) {
		redis_close(w);
		return -1;
	}
	*out = w;
	return 0;
}

/* One line per change of state; detail is the error (never a password). */
static void link_state(struct redis_worker *w, enum redis_link now, const char *detail)
{
	char at[300];

	if (now == w->link)
		return;
	w->link = now;
	snprintf(at, sizeof(at), "%s:%d", w->conn->host, w->conn->port);
	if (now == LINK_UP)
		log_kv(LOG_INFO, "redis connected", "redis", at, NULL);
	else if (now == LINK_AUTH)
		log_kv(LOG_ERROR,
		       "redis refused authentication: check the password "
		       "in redis.url; appends wait until it is fixed",
		       "redis", at, "detail", detail, NULL);
	else
		log_kv(LOG_WARN, "redis unreachable; appends wait", "redis", at, "detail", detail,
		       NULL);
}

static int redis_ready(void *p, struct action_host *host, struct err *err)
{
	struct redis_worker *w = p;

	if (redis_conn_ensure(w->conn, err) < 0) {
		link_state(w, w->conn->auth_refused ? LINK_AUTH : LINK_DOWN, err->msg);
		if (redis_conn_connected(w->conn) == 0)
			host->set_up(host, 0);
		return -1;
	}
	link_state(w, LINK_UP, NULL);
	host->set_up(host, 1);
	return 0;
}

static void job_set(struct action_job *j, enum work_outcome o, const char *msg)
{
	j->res->outcome = o;
	snprintf(j->res->detail, sizeof(j->res->detail), "%s", msg);
}

static int prepare_append(struct redis_worker *w, size_t k, struct action_job *j)
{
	struct redis_append *a = &w->appends[k];
	json_object *v;

	if (!json_object_object_get_ex(j->params, "stream", &v) || !json_object_get_string(v)[0]) {
		job_set(j, WORK_PERMANENT, "the rendered stream name is empty");
		return -1;
	}
	memset(a, 0, sizeof(*a));
	a->stream = json_object_get_string(v);
	a->maxlen = json_object_object_get_ex(j->params, "maxlen", &v) ? json_object_get_int64(v) : 0;
	/* the job id too: an event routed again with its results (a replayed
	 * results job) has new jobs, which append; a retry of one never does */
	snprintf(w->keys[k], sizeof(w->keys[k]), "runbridge:dedup:%s:%s:%d:%lld", j->delivery_id,
		 j->rule, j->index, j->id);
	/* events about no run (case.*, plan.*, ...) are stored with run id 0:
	 * their entry's run_id is empty, as their event's is null */
	if (j->run_id > 0)
		snprintf(w->run_ids[k], sizeof(w->run_ids[k]), "%lld", j->run_id);
	else
		w->run_ids[k][0] = '\0';
	a->dedup_key = w->keys[k];
	a->id = j->delivery_id;
	a->type = j->type;
	a->project = j->project ? j->project : "";
	a->run_id = w->run_ids[k];
	a->event_json = j->event_json;
	return 0;
}

/*
 * The link dropped with appends[first] the first unanswered (first < m):
 * returns 1 when that job has now been first SUSPECT_LOSSES times in a row.
 */
static int note_loss(struct redis_worker *w, const struct action_job *jobs, size_t first)
{
	long long id = jobs[w->map[first]].id;

	if (id != w->suspect) {
		w->suspect = id;
		w->losses = 0;
	}
	return ++w->losses >= SUSPECT_LOSSES;
}

/* The outcome of appends[k], once Redis answered or the link dropped. */
static void settle(struct redis_worker *w, size_t k, struct action_job *j, int charged,
		   const struct err *lost)
{
	char msg[sizeof(lost->msg) + 96];
	const struct redis_append *a = &w->appends[k];

	if (a->ok) {
		job_set(j, WORK_OK, a->duplicate ? "already in the stream" : "appended");
	} else if (a->answered) {
		job_set(j, WORK_FAIL, a->error);
	} else if (charged) {
		snprintf(msg, sizeof(msg), "%s (the link dropped %d times in a row at this append)",
			 lost->msg, w->losses);
		job_set(j, WORK_FAIL, msg);
	} else {
		/* maybe applied, answer lost: the re-send finds the dedup key */
		job_set(j, WORK_DEFER, lost->msg);
	}
}

static void redis_run(void *p, struct action_host *host, struct action_job *jobs, size_t n)
{
	struct redis_worker *w = p;
	size_t m = 0, first = 0;
	int charged = 0;
	struct err err = { 0 };

	for (size_t i = 0; i < n && m < w->n; i++)
		if (prepare_append(w, m, &jobs[i]) == 0)
			w->map[m++] = i;
	int rc = redis_append_batch(w->conn, w->appends, m, &err);
	if (rc < 0) {
		link_state(w, w->conn->auth_refused ? LINK_AUTH : LINK_DOWN, err.msg);
		host->set_up(host, 0);
		while (first < m && w->appends[first].answered)
			first++;
		if (first < m)
			charged = note_loss(w, jobs, first);
	} else {
		w->suspect = 0;
		w->losses = 0;
		host->set_up(host, 1);
	}
	for (size_t k = 0; k < m; k++)
		settle(w, k, &jobs[w->map[k]], charged && k == first, &err);
}

const struct action_ops action_redis_ops = {
	.name = "redis",
	.summary = "append the event to a Redis stream, once (pipelined batches)",
	.parse = redis_parse,
	.render = redis_render,
	.free_spec = redis_free_spec,
	.pool = redis_pool,
	.open = redis_open,
	.close = redis_close,
	.ready = redis_ready,
	.run = redis_run,
};
