/*
 * event: the edge between Qase's loosely specified deliveries and the one
 * schema the rest of runbridge reads.
 *
 * Qase's documentation disagrees with itself (legacy `event` vs
 * `event_name`, `skiped` vs `skipped`, `cases_added` vs `cases_count`,
 * duration in seconds or milliseconds), and most payload fields are optional
 * in practice.  So event_parse refuses only what we cannot key or route on
 * (no event name, no run id, mistyped envelope fields), and event_normalize
 * reads every payload field defensively: a field that is absent, null or of
 * the wrong type becomes JSON null.  Nothing is invented; the delivery itself
 * is kept verbatim as "raw".
 */
#include "event/event.h"
#include "core/utf8.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/printbuf.h>
#include <nettle/sha2.h>

/* 9999-12-31T23:59:59Z: timestamps past it do not fit the ISO format. */
#define TIMESTAMP_MAX 253402300799LL

/*
 * A member that is present and not JSON null.  json-c stores null as a NULL
 * pointer, so absent and null read the same, which is what we want: Qase
 * sends explicit nulls for fields it has no value for.
 */
static json_object *member(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

/* The member when it has type t, else NULL. */
static json_object *typed(json_object *o, const char *key, json_type t)
{
	json_object *v = member(o, key);

	return json_object_is_type(v, t) ? v : NULL;
}

/*
 * 0 and the value when v is an integer that fits in 64 bits.  json-c clamps
 * larger integers to INT64_MAX, which would turn an out-of-range run id into
 * a plausible one; the unsigned view tells the two apart.
 */
static int int_value(json_object *v, long long *out)
{
	if (!json_object_is_type(v, json_type_int))
		return -1;
	int64_t i = json_object_get_int64(v);
	if (i == INT64_MAX && json_object_get_uint64(v) != (uint64_t)INT64_MAX)
		return -1;
	/* json-c clamps below the range too; no field of ours can be INT64_MIN */
	if (i == INT64_MIN)
		return -1;
	*out = i;
	return 0;
}

/* One tokener per thread and depth, reset after each body: making one
 * allocates its stack and buffer, 4% of a request thread's CPU.  The
 * thread's exit frees it.  Its buffer grows to the longest string parsed,
 * so a body over TOK_KEEP_MAX gets a tokener of its own. */
enum { TOK_KEEP_MAX = 64 * 1024 };

struct tok_slot {
	json_tokener *tok;
	int depth;
};

static pthread_key_t tok_key;
static pthread_once_t tok_once = PTHREAD_ONCE_INIT;
static int tok_key_ok;

static void tok_slot_free(void *p)
{
	struct tok_slot *t = p;

	if (t->tok)
		json_tokener_free(t->tok);
	free(t);
}

static void tok_key_init(void)
{
	tok_key_ok = pthread_key_create(&tok_key, tok_slot_free) == 0;
}

/* The thread's tokener for max_depth, which stays the thread's (the caller
 * resets it); or, for a long body or when the thread cannot keep one, a
 * new one the caller frees (*own set).  NULL when out of memory. */
static json_tokener *tok_take(int max_depth, size_t len, int *own)
{
	struct tok_slot *t;

	pthread_once(&tok_once, tok_key_init);
	*own = 1;
	if (!tok_key_ok || len > TOK_KEEP_MAX)
		return json_tokener_new_ex(max_depth);
	if (!(t = pthread_getspecific(tok_key))) {
		if (!(t = calloc(1, sizeof(*t))) || pthread_setspecific(tok_key, t) != 0) {
			free(t);
			return json_tokener_new_ex(max_depth);
		}
	}
	*own = 0;
	if (t->tok && t->depth == max_depth)
		return t->tok;
	if (t->tok)
		json_tokener_free(t->tok);
	t->depth = max_depth;
	return t->tok = json_tokener_new_ex(max_depth);
}

/*
 * Tokenizes body into *out; err says why it is not one JSON value.  Depth is
 * json-c's: the top value is level 1 and each member or element one more,
 * scalars included, so {"payload":{"plan":{"id":3}}} is 4 levels deep.
 */
static int parse_json(json_object **out, const char *body, size_t len, int max_depth, struct err *err)
{
	json_tokener *tok;
	json_object *obj;
	enum json_tokener_error jerr;
	size_t end, bad;
	int rc = -1, own;

	*out = NULL;
	if (!body)
		body = "";
	if (len > INT_MAX - 1)
		return err_setc(err, ERR_INVALID, "body is too large");
	if ((bad = utf8_invalid_at((const unsigned char *)body, len)) < len)
		return err_setc(err, ERR_INVALID, "body is not valid UTF-8 (byte %zu)", bad);
	if (!(tok = tok_take(max_depth, len, &own)))
		return err_setc(err, ERR_NOMEM, "out of memory");
	/* trailing bytes are checked below, to say so rather than "unexpected
	 * character" */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS |
					    JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, body, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (jerr == json_tokener_continue) {
		/* all of body was taken; a final NUL ends a bare number */
		obj = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
		end = len;
	}
	if (jerr == json_tokener_error_depth)
		err_setc(err, ERR_INVALID,
			 "body is not acceptable JSON: nested deeper "
			 "than %d levels",
			 max_depth);
	else if (jerr == json_tokener_error_parse_utf8_string)
		err_setc(err, ERR_INVALID, "body is not valid UTF-8 (byte %zu)", end);
	else if (jerr != json_tokener_success)
		err_setc(err, ERR_INVALID, "body is not JSON: %s", json_tokener_error_desc(jerr));
	else if (end < len)
		err_setc(err, ERR_INVALID,
			 "body is not JSON: unexpected data after the "
			 "JSON value at byte %zu",
			 end);
	else
		rc = 0;
	if (own)
		json_tokener_free(tok);
	else
		json_tokener_reset(tok); /* drops what a failed parse holds */
	if (rc < 0)
		json_object_put(obj);
	else
		*out = obj;
	return rc;
}

/* An escaped NUL would cut the value short wherever C strings carry it
 * (stream names, routing, hook arguments). */
static int has_nul(json_object *v)
{
	return strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v);
}

/* The event name, or -1 with the message naming the field at fault. */
static int check_name(json_object *d, struct err *err)
{
	json_object *v = member(d, "event_name");
	const char *field = "event_name";

	if (!v) {
		v = member(d, "event");
		field = v ? "event" : NULL;
	}
	if (!field)
		return err_setc(err, ERR_INVALID, "event_name is required");
	if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0)
		return err_setc(err, ERR_INVALID, "%s must be a non-empty string", field);
	if (has_nul(v))
		return err_setc(err, ERR_INVALID, "%s must not contain \\u0000", field);
	return 0;
}

/* run.* events: the only family whose payload.id is a run id. */
static int is_run_type(const char *type)
{
	return type && strncmp(type, "run.", 4) == 0;
}

static int is_result_type(const char *type)
{
	return type && strncmp(type, "result.", 7) == 0;
}

static int check_envelope(json_object *d, struct err *err)
{
	json_object *payload, *v;
	long long n;

	if (!json_object_is_type(d, json_type_object))
		return err_setc(err, ERR_INVALID, "body must be a JSON object");
	if (check_name(d, err) < 0)
		return -1;
	payload = member(d, "payload");
	if (!json_object_is_type(payload, json_type_object))
		return err_setc(err, ERR_INVALID, "payload must be an object");
	/* Other families identify their entity by id or hash (shared_step has
	 * no id at all): whatever they carry is read, nothing is required. */
	if (is_run_type(event_name_of(d))) {
		v = member(payload, "id");
		if (!v)
			return err_setc(err, ERR_INVALID, "payload.id is required");
		if (int_value(v, &n) < 0 || n <= 0)
			return err_setc(err, ERR_INVALID, "payload.id must be a positive integer");
	}
	v = member(d, "timestamp");
	if (v && (int_value(v, &n) < 0 || n < 0 || n > TIMESTAMP_MAX))
		return err_setc(err, ERR_INVALID,
				"timestamp must be an integer (Unix seconds, 0..%lld)",
				TIMESTAMP_MAX);
	v = member(d, "team_member_id");
	if (v && int_value(v, &n) < 0)
		return err_setc(err, ERR_INVALID, "team_member_id must be an integer");
	v = member(d, "project_code");
	if (v && !json_object_is_type(v, json_type_string))
		return err_setc(err, ERR_INVALID, "project_code must be a string");
	if (v && has_nul(v))
		return err_setc(err, ERR_INVALID, "project_code must not contain \\u0000");
	return 0;
}

int event_parse(json_object **out, const char *body, size_t len, int max_depth, struct err *err)
{
	json_object *d;

	*out = NULL;
	if (parse_json(&d, body, len, max_depth, err) < 0)
		return -1;
	if (check_envelope(d, err) < 0) {
		json_object_put(d);
		return -1;
	}
	*out = d;
	return 0;
}

void event_delivery_id(char out[65], const char *source, const char *body, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t md[SHA256_DIGEST_SIZE];
	struct sha256_ctx ctx;

	sha256_init(&ctx);
	sha256_update(&ctx, strlen(source), (const uint8_t *)source);
	sha256_update(&ctx, len, (const uint8_t *)body);
	sha256_digest(&ctx, sizeof(md), md);
	for (size_t i = 0; i < sizeof(md); i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}

/* The delivery's own bytes without the whitespace between tokens (JSON has
 * none inside a string: a newline there is written as \n), so the event
 * stays one line. */
static int write_bytes(json_object *o, struct printbuf *pb, int level, int flags)
{
	const struct event_bytes *raw = json_object_get_userdata(o);
	const char *p = raw->p, *end = raw->p + raw->len, *run = p;
	int in_string = 0;

	(void)level;
	(void)flags;
	for (; p < end; p++) {
		if (in_string) {
			if (*p == '\\' && p + 1 < end)
				p++;
			else if (*p == '"')
				in_string = 0;
		} else if (*p == '"') {
			in_string = 1;
		} else if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
			if (p > run && printbuf_memappend(pb, run, (int)(p - run)) < 0)
				return -1;
			run = p + 1;
		}
	}
	if (p > run && printbuf_memappend(pb, run, (int)(p - run)) < 0)
		return -1;
	return 0;
}

void event_keep_bytes(json_object *delivery, struct event_bytes *raw)
{
	json_object_set_serializer(delivery, write_bytes, raw, NULL);
}

const char *event_name_of(json_object *delivery)
{
	json_object *v = typed(delivery, "event_name", json_type_string);

	if (!v)
		v = typed(delivery, "event", json_type_string);
	return v ? json_object_get_string(v) : NULL;
}

const char *event_project_of(json_object *delivery, const struct source_cfg *src)
{
	json_object *v = typed(delivery, "project_code", json_type_string);

	if (v && json_object_get_string_len(v) > 0)
		return json_object_get_string(v);
	return src && src->project ? src->project : NULL;
}

int event_is_run(json_object *delivery)
{
	return is_run_type(event_name_of(delivery));
}

/* A positive integer, else 0. */
static long long positive(json_object *v)
{
	long long n;

	return int_value(v, &n) == 0 && n > 0 ? n : 0;
}

/*
 * The run an event is about.  Run events carry it as payload.id; result
 * events (payload shape unverified) name their run in payload.run_id,
 * payload.run.id or an integer payload.run, and their own identity is
 * another.  Every other family is about no run: a plan's or a case's id is
 * not a run id.
 */
long long event_run_id_of(json_object *delivery)
{
	json_object *payload = member(delivery, "payload");
	const char *name = event_name_of(delivery);
	long long id;

	if (is_run_type(name))
		return positive(member(payload, "id"));
	if (!is_result_type(name))
		return 0;
	if ((id = positive(member(payload, "run_id"))) ||
	    (id = positive(member(member(payload, "run"), "id"))))
		return id;
	return positive(member(payload, "run"));
}

/*
 * Building the output.  json-c represents JSON null as NULL, so a failed
 * allocation cannot be told from a null by the return value alone; struct
 * build remembers that one happened and event_normalize fails at the end.
 */
struct build {
	int oom;
};

static void add(struct build *b, json_object *o, const char *key, json_object *v)
{
	if (json_object_object_add_ex(
		    o, key, v, JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_KEY_IS_CONSTANT) < 0) {
		json_object_put(v);
		b->oom = 1;
	}
}

static json_object *new_int(struct build *b, long long n)
{
	json_object *o = json_object_new_int64(n);

	if (!o)
		b->oom = 1;
	return o;
}

static json_object *new_str(struct build *b, const char *s)
{
	json_object *o;

	if (!s)
		return NULL;
	if (!(o = json_object_new_string(s)))
		b->oom = 1;
	return o;
}

static json_object *new_obj(struct build *b)
{
	json_object *o = json_object_new_object();

	if (!o)
		b->oom = 1;
	return o;
}

/* A shared reference to key's value when it has type t, else null. */
static json_object *ref(json_object *o, const char *key, json_type t)
{
	return json_object_get(typed(o, key, t));
}

/* "YYYY-MM-DDTHH:MM:SS" + suffix, or null when the time does not fit. */
static json_object *iso_time(struct build *b, long long secs, const char *suffix)
{
	char date[32], buf[48];
	struct tm tm;
	time_t t = (time_t)secs;

	if (secs < 0 || secs > TIMESTAMP_MAX || !gmtime_r(&t, &tm) ||
	    !strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm))
		return NULL;
	snprintf(buf, sizeof(buf), "%s%s", date, suffix);
	return new_str(b, buf);
}

static json_object *occurred_at(struct build *b, json_object *d)
{
	long long ts;

	if (int_value(member(d, "timestamp"), &ts) < 0)
		return NULL;
	return iso_time(b, ts, "Z");
}

static json_object *received_at(struct build *b, long long ms)
{
	char frac[16];
	long long secs = ms / 1000, rem = ms % 1000;

	if (rem < 0) {
		secs--;
		rem += 1000;
	}
	snprintf(frac, sizeof(frac), ".%03lldZ", rem);
	return iso_time(b, secs, frac);
}

/*
 * {id, title} from a payload's plan object; from plan_id or an integer
 * plan (the 2021 shape), {id, title: null}, or the registry's plan when it
 * is the same one (its title is known); else null.
 */
static json_object *plan_of(struct build *b, json_object *payload, json_object *prior)
{
	json_object *p = typed(payload, "plan", json_type_object), *o, *id;
	json_object *was = typed(prior, "plan", json_type_object);

	if (p) {
		if (!(o = new_obj(b)))
			return NULL;
		add(b, o, "id", ref(p, "id", json_type_int));
		add(b, o, "title", ref(p, "title", json_type_string));
		return o;
	}
	if (!(id = typed(payload, "plan_id", json_type_int)) &&
	    !(id = typed(payload, "plan", json_type_int)))
		return NULL;
	json_object *known = typed(was, "id", json_type_int);
	if (known && json_object_get_int64(known) == json_object_get_int64(id))
		return json_object_get(was);
	if (!(o = new_obj(b)))
		return NULL;
	add(b, o, "id", json_object_get(id));
	add(b, o, "title", NULL);
	return o;
}

/* The event's own value, else the registry's: these describe the run, not
 * this event, so an event that omits them has not changed them. */
static json_object *or_prior(json_object *own, json_object *prior, const char *key, json_type t)
{
	return own ? own : ref(prior, key, t);
}

/*
 * cases_count is a total; run.updated's cases_added is a delta on the total
 * we know; run.completed and run.aborted report the total as `cases`.  Without a base the
 * total stays unknown rather than being guessed from the delta.
 */
static json_object *cases_count(struct build *b, const char *type, json_object *payload,
				json_object *prior)
{
	json_object *v;
	long long was, added, sum;

	if ((v = ref(payload, "cases_count", json_type_int)))
		return v;
	if (strcmp(type, "run.updated") == 0 &&
	    int_value(member(payload, "cases_added"), &added) == 0) {
		if (int_value(member(prior, "cases_count"), &was) < 0 ||
		    __builtin_add_overflow(was, added, &sum))
			return NULL;
		return new_int(b, sum);
	}
	if ((strcmp(type, "run.completed") == 0 || strcmp(type, "run.aborted") == 0) &&
	    (v = ref(payload, "cases", json_type_int)))
		return v;
	return ref(prior, "cases_count", json_type_int);
}

/* Qase's docs disagree on the unit (see target-apis §1.5): the source says. */
static json_object *duration_ms(struct build *b, json_object *payload, const struct source_cfg *src)
{
	json_object *v = member(payload, "duration");
	long long n, scale = src->duration_unit == DURATION_S ? 1000 : 1;

	if (int_value(v, &n) == 0)
		return __builtin_mul_overflow(n, scale, &n) ? NULL : new_int(b, n);
	if (!json_object_is_type(v, json_type_double))
		return NULL;
	double ms = json_object_get_double(v) * (double)scale;
	if (!(ms > -9.0e18 && ms < 9.0e18)) /* also false for NaN */
		return NULL;
	return new_int(b, (long long)(ms < 0 ? ms - 0.5 : ms + 0.5));
}

static json_object *counts(struct build *b, json_object *payload)
{
	json_object *o = new_obj(b), *skipped;

	if (!o)
		return NULL;
	/* the aborted event's field table spells it `skiped` */
	skipped = ref(payload, "skipped", json_type_int);
	if (!skipped)
		skipped = ref(payload, "skiped", json_type_int);
	add(b, o, "total", ref(payload, "cases", json_type_int));
	add(b, o, "passed", ref(payload, "passed", json_type_int));
	add(b, o, "failed", ref(payload, "failed", json_type_int));
	add(b, o, "blocked", ref(payload, "blocked", json_type_int));
	add(b, o, "skipped", skipped);
	add(b, o, "untested", ref(payload, "untested", json_type_int));
	return o;
}

static json_object *run_of(struct build *b, const char *type, json_object *payload,
			   const struct source_cfg *src, json_object *prior)
{
	json_object *o = new_obj(b);

	if (!o)
		return NULL;
	add(b, o, "title",
	    or_prior(ref(payload, "title", json_type_string), prior, "title", json_type_string));
	add(b, o, "description",
	    or_prior(ref(payload, "description", json_type_string), prior, "description",
		     json_type_string));
	add(b, o, "plan", or_prior(plan_of(b, payload, prior), prior, "plan", json_type_object));
	add(b, o, "environment",
	    or_prior(ref(payload, "environment", json_type_string), prior, "environment",
		     json_type_string));
	add(b, o, "cases_count", cases_count(b, type, payload, prior));
	add(b, o, "cases_added", ref(payload, "cases_added", json_type_int));
	add(b, o, "public",
	    or_prior(ref(payload, "visible", json_type_boolean), prior, "public", json_type_boolean));
	add(b, o, "counts", counts(b, payload));
	add(b, o, "duration_ms", duration_ms(b, payload, src));
	return o;
}

/* "run" from "run.completed": the event name up to its first dot. */
static json_object *entity_of(struct build *b, const char *type)
{
	size_t n = strcspn(type, ".");
	json_object *o = json_object_new_string_len(type, (int)n);

	if (!o)
		b->oom = 1;
	return o;
}

/* payload.id when it is an integer, else payload.hash when a string. */
static json_object *entity_id_of(json_object *payload)
{
	json_object *v = typed(payload, "id", json_type_int);
	long long n;

	if (v && int_value(v, &n) == 0)
		return json_object_get(v);
	return ref(payload, "hash", json_type_string);
}

/* What a result.* payload says of the result (Qase publishes no example:
 * every field is read when present, with the REST API's names). */
static json_object *result_of(struct build *b, json_object *payload)
{
	json_object *o = new_obj(b), *ms;

	if (!o)
		return NULL;
	ms = ref(payload, "time_ms", json_type_int);
	if (!ms)
		ms = ref(payload, "time_spent_ms", json_type_int);
	add(b, o, "case_id", ref(payload, "case_id", json_type_int));
	add(b, o, "status", ref(payload, "status", json_type_string));
	add(b, o, "hash", ref(payload, "hash", json_type_string));
	add(b, o, "time_ms", ms);
	add(b, o, "comment", ref(payload, "comment", json_type_string));
	add(b, o, "stacktrace", ref(payload, "stacktrace", json_type_string));
	return o;
}

/* run (and result) by family: run events describe their run, result
 * events borrow the registry's view of theirs, the rest have none. */
static void add_family(struct build *b, json_object *ev, const char *type, json_object *payload,
		       const struct source_cfg *src, long long run_id, json_object *prior)
{
	if (is_run_type(type)) {
		add(b, ev, "run", run_of(b, type, payload, src, prior));
	} else if (is_result_type(type)) {
		add(b, ev, "run",
		    run_id > 0 && json_object_is_type(prior, json_type_object)
			    ? json_object_get(prior)
			    : NULL);
		add(b, ev, "result", result_of(b, payload));
	} else {
		add(b, ev, "run", NULL);
	}
}

int event_normalize(json_object **out, json_object *delivery, const struct source_cfg *src,
		    const char *id, long long received_ms, json_object *prior_run, struct err *err)
{
	struct build b = { 0 };
	const char *type = event_name_of(delivery), *project;
	json_object *payload = member(delivery, "payload"), *ev;
	long long actor, run_id = event_run_id_of(delivery);

	*out = NULL;
	if (!type)
		return err_set(err, "delivery has no event name (not checked "
				    "by event_parse?)");
	if (!(ev = new_obj(&b)))
		return err_set(err, "out of memory");
	project = event_project_of(delivery, src);
	add(&b, ev, "schema", new_str(&b, EVENT_SCHEMA));
	add(&b, ev, "id", new_str(&b, id));
	add(&b, ev, "source", new_str(&b, src->name));
	add(&b, ev, "type", new_str(&b, type));
	add(&b, ev, "entity", entity_of(&b, type));
	add(&b, ev, "entity_id", entity_id_of(payload));
	add(&b, ev, "project", new_str(&b, project));
	add(&b, ev, "run_id", run_id > 0 ? new_int(&b, run_id) : NULL);
	add(&b, ev, "occurred_at", occurred_at(&b, delivery));
	add(&b, ev, "received_at", received_at(&b, received_ms));
	add(&b, ev, "actor_id",
	    int_value(member(delivery, "team_member_id"), &actor) == 0 ? new_int(&b, actor) : NULL);
	add_family(&b, ev, type, payload, src, run_id, prior_run);
	add(&b, ev, "results", NULL); /* the results stage fills it in (results/) */
	add(&b, ev, "raw", json_object_get(delivery));
	if (b.oom) {
		json_object_put(ev);
		return err_set(err, "out of memory");
	}
	*out = ev;
	return 0;
}
