/*
 * action_redis: the redis action kind, and the connection that runs it.
 *
 * The connection belongs to one worker thread.  The append script is loaded
 * once per connection and called by EVALSHA; a NOSCRIPT answer (the server
 * was restarted or flushed its scripts) reloads it on the next connect.
 */
#include "actions/action_redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hiredis/hiredis.h>

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

static int redis_parse(void **out, const struct cfg_node *node,
		       struct errlist *errs)
{
	char where[300];
	struct redis_spec *s;
	unsigned seen = 0;
	int bad;

	*out = NULL;
	if (node->type != CFG_MAP)
		return errlist_add(errs, "%s: redis: expected a map like { stream: \"runbridge:{{project}}\" }",
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

static int redis_render(json_object **out, const void *spec, json_object *event,
			struct err *err)
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

const struct action_ops action_redis_ops = {
	.name = "redis",
	.parse = redis_parse,
	.render = redis_render,
	.free_spec = redis_free_spec,
};

/* ---- the running side: connection and pipelined appends ------------------ */

/*
 * KEYS[1] stream, KEYS[2] dedup key.
 * ARGV: ttl, maxlen, id, type, project, run_id, event.
 * XADD runs before the key is set, so a failing XADD (WRONGTYPE) leaves no
 * dedup key behind and the retry can still append.
 */
static const char append_script[] =
	"if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end\n"
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
};

int redis_conn_new(struct redis_conn **out, const struct config *cfg,
		   struct err *err)
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

/* Runs one command; a reply of type error or a transport error fails. */
static int command(struct redis_conn *c, struct err *err, redisReply **out,
		   int argc, const char **argv)
{
	redisReply *r = redisCommandArgv(c->ctx, argc, argv, NULL);
	if (!r) {
		err_set(err, "redis %s:%d: %s", c->host, c->port, c->ctx->errstr);
		disconnect(c);
		return -1;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		err_set(err, "redis %s: %s", argv[0], r->str);
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
	struct timeval tv = { .tv_sec = 2, .tv_usec = 0 };

	if (c->ctx)
		return 0;
	c->ctx = redisConnectWithTimeout(c->host, c->port, tv);
	if (!c->ctx)
		return err_set(err, "redis %s:%d: out of memory", c->host, c->port);
	if (c->ctx->err) {
		err_set(err, "redis %s:%d: %s", c->host, c->port, c->ctx->errstr);
		disconnect(c);
		return -1;
	}
	/* A stalled server must not hold the worker forever. */
	tv.tv_sec = 10;
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
	const char *v[] = { "EVALSHA", c->sha, "2", a->stream, a->dedup_key,
			    ttl, maxlen, a->id, a->type, a->project,
			    a->run_id, a->event_json };
	for (int i = 0; i < 12; i++) {
		argv[i] = v[i];
		len[i] = strlen(v[i]);
	}
	return redisAppendCommandArgv(c->ctx, 12, argv, len) == REDIS_OK ? 0 : -1;
}

static void take_reply(struct redis_append *a, redisReply *r)
{
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(a->error, sizeof(a->error), "%s", r->str);
		return;
	}
	a->ok = 1;
	a->duplicate = r->type == REDIS_REPLY_INTEGER;
}

int redis_append_batch(struct redis_conn *c, struct redis_append *items,
		       size_t n, struct err *err)
{
	for (size_t i = 0; i < n; i++) {
		items[i].ok = items[i].duplicate = 0;
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
		if (redisGetReply(c->ctx, &rv) != REDIS_OK || !rv) {
			err_set(err, "redis %s:%d: %s", c->host, c->port,
				c->ctx->errstr[0] ? c->ctx->errstr : "connection lost");
			disconnect(c);
			return -1;
		}
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
