/*
 * tail: follow a Redis stream that runbridge appends to, and print each
 * event as it arrives: a readable line, or one JSON object per line.
 *
 * Alone, it reads with XREAD and remembers the last entry id, so a
 * reconnect after Redis went away continues where it stopped rather than
 * at the new end of the stream.  With --group it is a consumer of a
 * consumer group: it first re-reads the entries it was given before and
 * never acknowledged (it died between printing and XACK), then new ones,
 * and acknowledges each only after the line is written and flushed: a
 * consumer that dies prints an entry again, it never loses one.
 *
 * SIGINT and SIGTERM end it with status 0.  hiredis retries a read that a
 * signal interrupts, so the handler also shuts the socket down: the
 * blocking XREAD returns at once instead of at the end of its 5 s block.
 * This process has one thread, so the handler never sees a closed and
 * reused descriptor: the descriptor is unpublished before redisFree.
 */
#include "cli/cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <hiredis/hiredis.h>
#include <json-c/json.h>

#include "core/config.h"
#include "core/err.h"

static const char usage[] =
	"usage: runbridge tail -c FILE STREAM [--group G --consumer C] [--json]\n"
	"                      [--count N] [--from-start]\n"
	"\n"
	"Follows a Redis stream that runbridge appends to (Redis as configured\n"
	"by redis.url) and prints one line per event:\n"
	"  2026-11-23T08:00:00.123Z run.completed DEMO#42 \"Nightly\" passed=10 failed=3 (1700-0)\n"
	"\n"
	"  -c, --config FILE   configuration (default config/runbridge.yaml,\n"
	"                      or $RUNBRIDGE_CONFIG)\n"
	"  --group G           read as a member of consumer group G (created at\n"
	"                      the stream's end if missing) and XACK each entry\n"
	"                      once printed; entries this consumer was given\n"
	"                      but never acknowledged are printed first\n"
	"  --consumer C        this consumer's name in the group (required with\n"
	"                      --group; keep it stable across restarts)\n"
	"  --json              one JSON object per line: stream_id, id, type,\n"
	"                      project, run_id (as stored, strings) and event\n"
	"  --count N           exit 0 after N entries\n"
	"  --from-start        read from the stream's first entry; with --group,\n"
	"                      a group created now starts at the first entry\n"
	"\n"
	"Reconnects with backoff while Redis is away.  SIGINT or SIGTERM exits 0.\n";

enum { TAIL_RETRY = -1, TAIL_FATAL = -2 };

#define BLOCK_MS       "5000"
#define BATCH          100
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 10000

struct tail_opts {
	const char *config;
	const char *stream;
	const char *group; /* NULL: plain XREAD */
	const char *consumer;
	int json;
	long long count; /* 0: run until a signal */
	int from_start;
};

struct tail {
	const struct tail_opts *o;
	const struct config *cfg;
	redisContext *ctx;
	char cursor[64]; /* XREAD: last id seen; group: pending cursor */
	int pending;     /* group: still re-reading our unacknowledged entries */
	long long printed;
};

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t conn_fd = -1;

static void on_signal(int sig)
{
	int saved = errno, fd = conn_fd;

	(void)sig;
	stop_requested = 1;
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
	errno = saved;
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: sleeps end early */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* ---- options -------------------------------------------------------------- */

static int parse_count(const char *s, long long *out)
{
	char *end;

	errno = 0;
	*out = strtoll(s, &end, 10);
	return errno || end == s || *end || *out <= 0 ? -1 : 0;
}

static int bad_usage(const char *what, const char *arg)
{
	fprintf(stderr, "runbridge tail: %s%s%s%s\n\n%s", what, arg ? " '" : "", arg ? arg : "",
		arg ? "'" : "", usage);
	return 2;
}

static int parse_opts(int argc, char **argv, struct tail_opts *o, int *help)
{
	memset(o, 0, sizeof(*o));
	*help = 0;
	o->config = getenv("RUNBRIDGE_CONFIG");
	if (!o->config || !*o->config)
		o->config = "config/runbridge.yaml";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage, stdout);
			*help = 1;
			return 0;
		} else if ((!strcmp(a, "-c") || !strcmp(a, "--config")) && next) {
			o->config = argv[++i];
		} else if (!strcmp(a, "--group") && next && *next) {
			o->group = argv[++i];
		} else if (!strcmp(a, "--consumer") && next && *next) {
			o->consumer = argv[++i];
		} else if (!strcmp(a, "--count") && next) {
			if (parse_count(argv[++i], &o->count) < 0)
				return bad_usage("--count takes a positive number, not", next);
		} else if (!strcmp(a, "--json")) {
			o->json = 1;
		} else if (!strcmp(a, "--from-start")) {
			o->from_start = 1;
		} else if (a[0] != '-' && !o->stream) {
			o->stream = a;
		} else {
			return bad_usage("unexpected argument", a);
		}
	}
	if (!o->stream)
		return bad_usage("missing STREAM", NULL);
	if (!o->group != !o->consumer)
		return bad_usage("--group and --consumer go together", NULL);
	return 0;
}

/* ---- output ----------------------------------------------------------------- */

/* The value of field name in a flat [field, value, ...] reply, or NULL. */
static const char *field(const redisReply *fv, const char *name)
{
	for (size_t i = 0; i + 1 < fv->elements; i += 2) {
		const redisReply *k = fv->element[i], *v = fv->element[i + 1];
		if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
		    !strcmp(k->str, name))
			return v->str;
	}
	return NULL;
}

/* Writes s with control characters replaced: a title is not a terminal command. */
static void put_clean(const char *s)
{
	for (; s && *s; s++)
		putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
}

static json_object *get_path(json_object *o, const char *a, const char *b)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(o, a, &v) || !b)
		return v;
	return json_object_object_get_ex(v, b, &v) ? v : NULL;
}

static void put_counts(json_object *counts)
{
	static const char *const names[] = { "passed", "failed", "blocked", "skipped", "untested" };
	json_object *v;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (json_object_object_get_ex(counts, names[i], &v) &&
		    json_object_is_type(v, json_type_int))
			printf(" %s=%lld", names[i], (long long)json_object_get_int64(v));
}

/* 2026-11-23T08:00:00.123Z run.completed DEMO#42 "Nightly" passed=10 failed=3 (1700-0) */
static void print_pretty(const char *sid, const redisReply *fv, json_object *ev)
{
	json_object *at = get_path(ev, "received_at", NULL);
	json_object *run_id = get_path(ev, "run_id", NULL);
	json_object *title = get_path(ev, "run", "title");

	if (!at)
		at = get_path(ev, "occurred_at", NULL);
	put_clean(at ? json_object_get_string(at) : "-");
	putchar(' ');
	put_clean(field(fv, "type") ? field(fv, "type") : "-");
	putchar(' ');
	put_clean(field(fv, "project") ? field(fv, "project") : "-");
	if (run_id && json_object_is_type(run_id, json_type_int))
		printf("#%lld", (long long)json_object_get_int64(run_id));
	else if (field(fv, "run_id") && *field(fv, "run_id")) {
		putchar('#');
		put_clean(field(fv, "run_id"));
	}
	if (title && json_object_is_type(title, json_type_string))
		printf(" %s", json_object_to_json_string_ext(title, JSON_C_TO_STRING_NOSLASHESCAPE));
	put_counts(get_path(ev, "run", "counts"));
	printf(" (");
	put_clean(sid);
	printf(")\n");
}

static json_object *string_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static void print_json(const char *sid, const redisReply *fv, json_object *ev)
{
	json_object *o = json_object_new_object();
	const char *raw = field(fv, "event");

	json_object_object_add(o, "stream_id", json_object_new_string(sid));
	json_object_object_add(o, "id", string_or_null(field(fv, "id")));
	json_object_object_add(o, "type", string_or_null(field(fv, "type")));
	json_object_object_add(o, "project", string_or_null(field(fv, "project")));
	json_object_object_add(o, "run_id", string_or_null(field(fv, "run_id")));
	/* Not JSON (another writer's stream): kept as the string it is. */
	json_object_object_add(o, "event", ev ? json_object_get(ev) : string_or_null(raw));
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

/* Prints one entry and flushes; -1 when stdout cannot take it. */
static int print_entry(const struct tail *t, const char *sid, const redisReply *fv)
{
	const char *raw = field(fv, "event");
	json_object *ev = raw ? json_tokener_parse(raw) : NULL;

	if (ev && !json_object_is_type(ev, json_type_object)) {
		json_object_put(ev);
		ev = NULL;
	}
	if (t->o->json)
		print_json(sid, fv, ev);
	else
		print_pretty(sid, fv, ev);
	json_object_put(ev);
	return fflush(stdout) == 0 && !ferror(stdout) ? 0 : -1;
}

/* ---- redis ------------------------------------------------------------------ */

static void disconnect(struct tail *t)
{
	conn_fd = -1;
	if (t->ctx)
		redisFree(t->ctx);
	t->ctx = NULL;
}

/*
 * Checks a reply: NULL (the connection failed) is TAIL_RETRY, an error
 * reply is TAIL_FATAL unless Redis is only starting up (LOADING).  Frees
 * the reply on failure.
 */
static int check_reply(struct tail *t, redisReply *r, const char *what, struct err *err)
{
	int rc;

	if (!r) {
		err_set(err, "redis %s:%d: %s", t->cfg->redis_host, t->cfg->redis_port,
			t->ctx->errstr);
		return TAIL_RETRY;
	}
	if (r->type != REDIS_REPLY_ERROR)
		return 0;
	rc = strncmp(r->str, "LOADING", 7) ? TAIL_FATAL : TAIL_RETRY;
	err_set(err, "redis %s: %s", what, r->str);
	freeReplyObject(r);
	return rc;
}

/* Runs a command whose answer only matters as success or failure. */
static int simple(struct tail *t, redisReply *r, const char *what, struct err *err)
{
	int rc = check_reply(t, r, what, err);

	if (rc == 0)
		freeReplyObject(r);
	return rc;
}

static int create_group(struct tail *t, struct err *err)
{
	const struct tail_opts *o = t->o;
	redisReply *r = redisCommand(t->ctx, "XGROUP CREATE %s %s %s MKSTREAM", o->stream, o->group,
				     o->from_start ? "0" : "$");

	if (r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "BUSYGROUP", 9)) {
		freeReplyObject(r);
		return 0;
	}
	return simple(t, r, "XGROUP CREATE", err);
}

/* Without --from-start: the id of the stream's last entry, so that a
 * reconnect does not skip what was appended while Redis was away. */
static int find_end(struct tail *t, struct err *err)
{
	redisReply *r = redisCommand(t->ctx, "XREVRANGE %s + - COUNT 1", t->o->stream);
	int rc = check_reply(t, r, "XREVRANGE", err);

	if (rc < 0)
		return rc;
	snprintf(t->cursor, sizeof(t->cursor), "0-0");
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
	    r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2 &&
	    r->element[0]->element[0]->type == REDIS_REPLY_STRING)
		snprintf(t->cursor, sizeof(t->cursor), "%s", r->element[0]->element[0]->str);
	freeReplyObject(r);
	return 0;
}

static int handshake(struct tail *t, struct err *err)
{
	int rc = 0;

	if (t->cfg->redis_password && *t->cfg->redis_password)
		rc = simple(t, redisCommand(t->ctx, "AUTH %s", t->cfg->redis_password), "AUTH", err);
	if (rc == 0 && t->cfg->redis_db)
		rc = simple(t, redisCommand(t->ctx, "SELECT %d", t->cfg->redis_db), "SELECT", err);
	if (rc == 0 && t->o->group) {
		rc = create_group(t, err);
		t->pending = 1;
		snprintf(t->cursor, sizeof(t->cursor), "0");
	} else if (rc == 0 && !strcmp(t->cursor, "$")) {
		rc = find_end(t, err);
	}
	return rc;
}

static int tail_connect(struct tail *t, struct err *err)
{
	struct timeval tv = { .tv_sec = 2, .tv_usec = 0 };
	int rc;

	t->ctx = redisConnectWithTimeout(t->cfg->redis_host, t->cfg->redis_port, tv);
	if (!t->ctx || t->ctx->err) {
		err_set(err, "redis %s:%d: %s", t->cfg->redis_host, t->cfg->redis_port,
			t->ctx ? t->ctx->errstr : "out of memory");
		disconnect(t);
		return TAIL_RETRY;
	}
	conn_fd = t->ctx->fd;
	/* Longer than a BLOCK, so only a stalled server trips it. */
	tv.tv_sec = 15;
	redisSetTimeout(t->ctx, tv);
	if ((rc = handshake(t, err)) < 0)
		disconnect(t);
	return rc;
}

/* ---- reading ---------------------------------------------------------------- */

static redisReply *read_batch(struct tail *t)
{
	const struct tail_opts *o = t->o;
	long long want = BATCH;
	char count[24];

	if (o->count && o->count - t->printed < want)
		want = o->count - t->printed;
	snprintf(count, sizeof(count), "%lld", want);
	if (!o->group)
		return redisCommand(t->ctx, "XREAD COUNT %s BLOCK " BLOCK_MS " STREAMS %s %s",
				    count, o->stream, t->cursor);
	if (t->pending)
		return redisCommand(t->ctx, "XREADGROUP GROUP %s %s COUNT %s STREAMS %s %s",
				    o->group, o->consumer, count, o->stream, t->cursor);
	return redisCommand(t->ctx, "XREADGROUP GROUP %s %s COUNT %s BLOCK " BLOCK_MS " STREAMS %s >",
			    o->group, o->consumer, count, o->stream);
}

/*
 * One entry: [id, [field, value, ...]], or [id, nil] for a pending entry
 * deleted since (trimmed by MAXLEN): acknowledged without a line.
 */
static int take_entry(struct tail *t, const redisReply *e, struct err *err)
{
	const char *sid;

	if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
	    e->element[0]->type != REDIS_REPLY_STRING) {
		err_set(err, "redis: unexpected stream entry");
		return TAIL_FATAL;
	}
	sid = e->element[0]->str;
	if (e->element[1]->type == REDIS_REPLY_ARRAY) {
		if (print_entry(t, sid, e->element[1]) < 0) {
			err_set(err, "stdout: %s", strerror(errno));
			return TAIL_FATAL;
		}
		t->printed++;
	}
	if (t->o->group) {
		int rc = simple(t,
				redisCommand(t->ctx, "XACK %s %s %s", t->o->stream, t->o->group, sid),
				"XACK", err);
		if (rc < 0)
			return rc;
	}
	if (!t->o->group || t->pending)
		snprintf(t->cursor, sizeof(t->cursor), "%s", sid);
	return 0;
}

/* The entries of a [[stream, [entry...]]] reply; NULL when there are none. */
static const redisReply *entries_of(const redisReply *r)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
	    r->element[0]->type != REDIS_REPLY_ARRAY || r->element[0]->elements != 2 ||
	    r->element[0]->element[1]->type != REDIS_REPLY_ARRAY)
		return NULL;
	return r->element[0]->element[1];
}

/* One read and everything it returned.  A timed-out block reads nothing. */
static int tail_step(struct tail *t, struct err *err)
{
	redisReply *r = read_batch(t);
	const redisReply *entries;
	int rc = check_reply(t, r, t->o->group ? "XREADGROUP" : "XREAD", err);

	if (rc < 0) {
		/* The group (or the stream) was deleted: set up again. */
		if (rc == TAIL_FATAL && strstr(err->msg, "NOGROUP"))
			rc = TAIL_RETRY;
		return rc;
	}
	entries = entries_of(r);
	if (t->pending && (!entries || entries->elements == 0))
		t->pending = 0; /* our backlog is done: now the new entries */
	for (size_t i = 0; entries && i < entries->elements && rc == 0; i++)
		if (!t->o->count || t->printed < t->o->count)
			rc = take_entry(t, entries->element[i], err);
	freeReplyObject(r);
	return rc;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	if (!stop_requested)
		nanosleep(&ts, NULL); /* a signal ends it early */
}

static int tail_run(struct tail *t)
{
	struct err err = { 0 };
	long backoff = BACKOFF_MIN_MS;
	int rc = 0;

	while (!stop_requested && (!t->o->count || t->printed < t->o->count)) {
		if (!t->ctx)
			rc = tail_connect(t, &err);
		if (t->ctx && rc == 0)
			rc = tail_step(t, &err);
		if (stop_requested)
			break;
		if (rc == TAIL_FATAL) {
			fprintf(stderr, "runbridge tail: %s\n", err.msg);
			return 1;
		}
		if (rc == TAIL_RETRY) {
			fprintf(stderr, "runbridge tail: %s; retrying in %ld ms\n", err.msg, backoff);
			disconnect(t);
			sleep_ms(backoff);
			backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
			rc = 0;
			continue;
		}
		backoff = BACKOFF_MIN_MS;
	}
	return 0;
}

int cli_tail(int argc, char **argv)
{
	struct tail_opts o;
	struct config *cfg;
	struct tail t = { 0 };
	int help, rc;

	if ((rc = parse_opts(argc, argv, &o, &help)) != 0 || help)
		return rc;
	if (cli_load(o.config, &cfg, NULL) != 0)
		return 1;
	t.o = &o;
	t.cfg = cfg;
	snprintf(t.cursor, sizeof(t.cursor), "%s", o.from_start ? "0" : "$");
	stop_requested = 0;
	install_signals();
	rc = tail_run(&t);
	disconnect(&t);
	config_free(cfg);
	return rc;
}
