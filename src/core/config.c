/*
 * config: the configuration file, read through one table.
 *
 * Every scalar option is a row of options[] (dotted name, type, bounds,
 * default, where it lives in struct config, an optional validator), as in
 * Redis's static_configs[]: defaults, type checks and messages all come from
 * the row, so an option cannot be documented one way and checked another.
 * A dotted name is also its place in the YAML: "retry.max_attempts" is
 * max_attempts under retry:.  The sources: map is the one irregular part
 * (its keys are names the user chooses); each source's fields are rows of a
 * second table, source_options[], read by the same code.
 *
 * Loading starts from the defaults and overwrites what the file sets.  It
 * never stops at the first problem: every error is collected with its
 * file:line:col, so one run of `runbridge check` shows them all.
 */
#include "core/config.h"
#include "core/expand.h"
#include "core/redis_url.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

enum opt_type {
	OPT_STRING, /* char *, non-empty */
	OPT_PATH,   /* char *, non-empty, a file system path */
	OPT_INT,    /* int, within [min, max] */
	OPT_SIZE,   /* size_t, within [min, max] */
	OPT_ENUM,   /* char *, one of values[] */
	OPT_CHOICE, /* int: the index of the value in values[] */
	OPT_LIST,   /* char *: a YAML list (or one scalar) of names, stored
		       comma-joined; an empty list is "" */
};

#define OPT_EMPTY_NULL   0x1 /* an empty value means "unset" and stores NULL */
#define OPT_SECRET       0x2 /* never echo the value in a message */
#define OPT_RELOAD       0x4 /* SIGHUP applies a new value (else: a restart) */
#define OPT_HOLDS_SECRET 0x8 /* shown, but part of it is a secret (a URL's password) */

/* Writes what was expected into why when val is unacceptable. */
typedef int (*opt_valid)(const char *val, char *why, size_t len);

struct option {
	const char *name;
	enum opt_type type;
	long long min, max;
	const char *def;           /* as written in the file; NULL = none */
	size_t offset;             /* into struct config or struct source_cfg */
	const char *const *values; /* OPT_ENUM, OPT_CHOICE; NULL-terminated */
	opt_valid valid;
	int flags;
	const char *desc; /* one line, for docs and tests */
};

static int valid_listen(const char *val, char *why, size_t len);
static int valid_redis_url(const char *val, char *why, size_t len);
static int valid_url_path(const char *val, char *why, size_t len);
static int valid_http_url(const char *val, char *why, size_t len);

static const char *const log_levels[] = { "debug", "info", "warn", "error", NULL };
static const char *const log_formats[] = { "text", "json", NULL };
static const char *const duration_units[] = { "ms", "s", NULL }; /* enum order */
static const char *const source_kinds[] = { "qase", NULL };
static const char *const booleans[] = { "false", "true", NULL }; /* CHOICE: 0, 1 */

#define C(f) offsetof(struct config, f)
#define S(f) offsetof(struct source_cfg, f)
/* One row each: name, where it is stored, bounds or values, default,
 * flags, description. */
/* clang-format off */
#define STR(n, off, d, v, fl, ds) { n, OPT_STRING, 0, 0, d, off, NULL, v, fl, ds }
#define PATH(n, off, d, fl, ds) { n, OPT_PATH, 0, 0, d, off, NULL, NULL, fl, ds }
#define INT(n, off, lo, hi, d, fl, ds) { n, OPT_INT, lo, hi, d, off, NULL, NULL, fl, ds }
#define SIZE(n, off, lo, hi, d, fl, ds) { n, OPT_SIZE, lo, hi, d, off, NULL, NULL, fl, ds }
#define ENUM(n, off, vals, d, fl, ds) { n, OPT_ENUM, 0, 0, d, off, vals, NULL, fl, ds }
#define CHOICE(n, off, vals, d, fl, ds) { n, OPT_CHOICE, 0, 0, d, off, vals, NULL, fl, ds }
#define LIST(n, off, d, fl, ds) { n, OPT_LIST, 0, 0, d, off, NULL, NULL, fl, ds }
/* clang-format on */

static const struct option options[] = {
	STR("listen", C(listen), "127.0.0.1:8080", valid_listen, 0,
	    "address the HTTP server listens on (civetweb listening_ports syntax)"),
	PATH("data_dir", C(data_dir), "var", 0, "directory of the SQLite store (created if missing)"),
	SIZE("max_body_bytes", C(max_body_bytes), 1024, 1073741824, "1048576", 0,
	     "largest delivery body accepted (larger: 413)"),
	PATH("rules", C(rules_path), "rules", OPT_RELOAD,
	     "rules file, or a directory of *.yaml rules files"),
	STR("redis.url", C(redis_url), "redis://127.0.0.1:6379/0", valid_redis_url,
	    OPT_HOLDS_SECRET, "Redis for stream actions (redis:// or unix://, password in the URL)"),
	INT("redis.dedup_ttl_s", C(redis_dedup_ttl_s), 1, 315360000, "86400", 0,
	    "how long Redis remembers an appended job, so a retry appends no second entry"),
	INT("redis.batch", C(redis_batch), 1, 65536, "256", 0,
	    "stream jobs written in one pipelined round trip"),
	INT("http.threads", C(http_threads), 1, 1024, "64", 0,
	    "civetweb worker threads (requests in progress at once; waiting connections hold none)"),
	INT("http.request_timeout_ms", C(request_timeout_ms), 100, 600000, "10000", 0,
	    "longest a whole request may take to arrive; then the connection is closed"),
	/* 4: a delivery nests envelope, payload, plan and plan.id (json-c
	 * counts scalars as a level) */
	INT("http.max_json_depth", C(max_json_depth), 4, 1000, "32", 0,
	    "deepest JSON nesting accepted in a delivery (deeper: 400)"),
	INT("retry.max_attempts", C(retry_max_attempts), 1, 1000, "10", OPT_RELOAD,
	    "attempts of a job before it is dead"),
	INT("retry.base_ms", C(retry_base_ms), 1, 3600000, "500", OPT_RELOAD,
	    "first retry after about this long, doubling each attempt"),
	INT("retry.max_ms", C(retry_max_ms), 1, 86400000, "300000", OPT_RELOAD,
	    "cap on one retry wait"),
	INT("exec.workers", C(exec_workers), 1, 256, "4", 0, "exec hooks run at once"),
	SIZE("exec.output_max_bytes", C(exec_output_max), 1024, 67108864, "65536", OPT_RELOAD,
	     "hook output kept per attempt (stdout and stderr together)"),
	INT("exec.nice", C(exec_nice), 0, 19, "10", 0, "nice value hooks run at"),
	SIZE("queue.window", C(queue_window), 16, 16777216, "65536", 0,
	     "open jobs held in memory; the rest wait in the store"),
	INT("shutdown_timeout_s", C(shutdown_timeout_s), 0, 3600, "30", 0,
	    "how long SIGTERM waits for running attempts"),
	ENUM("log.level", C(log_level), log_levels, "info", OPT_RELOAD,
	     "least severe level logged: debug, info, warn or error"),
	ENUM("log.format", C(log_format), log_formats, "text", OPT_RELOAD,
	     "text (key=value) or json (one object a line)"),
	INT("targets_workers", C(target_workers), 1, 64, "2", 0,
	    "threads per translated target kind and for the http action"),
	STR("http.admin_token", C(admin_token), NULL, NULL, OPT_EMPTY_NULL | OPT_SECRET,
	    "Bearer token for /metrics from other than loopback (unset: loopback only)"),
	SIZE("http.max_header_bytes", C(max_header_bytes), 1024, 1048576, "16384", 0,
	     "largest request head accepted (request line and headers)"),
	CHOICE("http.admin_trust_loopback", C(admin_trust_loopback), booleans, "true", 0,
	       "loopback clients reach /metrics, the API and the console without the token"),
	INT("http.max_stream_clients", C(max_stream_clients), 1, 1024, "8", 0,
	    "clients of /api/v1/stream (Server-Sent Events) at once"),
	INT("http.rate_limit_per_s", C(rate_limit_per_s), 0, 10000000, "0", 0,
	    "requests a second per client address (0: no limit; over it: 429)"),
	INT("http.keep_alive_timeout_ms", C(keep_alive_timeout_ms), 0, 600000, "2000", 0,
	    "how long an idle keep-alive connection keeps its thread (0: no keep-alive)"),
	INT("store.retention.done_days", C(retention_done_days), 0, 36500, "30", OPT_RELOAD,
	    "days a delivery whose jobs are all done is kept (0: forever)"),
	INT("store.retention.dead_days", C(retention_dead_days), 0, 36500, "90", OPT_RELOAD,
	    "days a delivery with a dead job is kept (0: forever)"),
	INT("http.max_connections_per_address", C(max_connections_per_address), 0, 1000000, "32", 0,
	    "connections one client address may hold open at once (0: no limit)"),
	PATH("tls.certificate", C(tls_certificate), NULL, OPT_EMPTY_NULL,
	     "PEM certificate chain: serve HTTPS (with tls.key)"),
	PATH("tls.key", C(tls_key), NULL, OPT_EMPTY_NULL, "PEM private key of tls.certificate"),
};

/* Fields of one source; path and kind default from the name (see below). */
static const struct option source_options[] = {
	STR("path", S(path), NULL, valid_url_path, 0,
	    "URL path deliveries are posted to (default /webhooks/<name>)"),
	STR("secret", S(secret), NULL, NULL, OPT_EMPTY_NULL | OPT_SECRET,
	    "the webhook's secret, compared with the X-Qase-Secret header (unset: no check)"),
	CHOICE("duration_unit", S(duration_unit), duration_units, "ms", 0,
	       "unit of Qase's `duration` in deliveries: ms or s"),
	ENUM("kind", S(kind), source_kinds, NULL, 0, "payload dialect (default: the source's name)"),
	STR("hmac_header", S(hmac_header), NULL, NULL, OPT_EMPTY_NULL,
	    "header carrying an HMAC-SHA256 of the body (with hmac_secret)"),
	STR("hmac_secret", S(hmac_secret), NULL, NULL, OPT_EMPTY_NULL | OPT_SECRET,
	    "key of the body's HMAC-SHA256"),
	/* for senders whose envelope has no project_code (the 2021 shape) */
	STR("project", S(project), NULL, NULL, OPT_EMPTY_NULL,
	    "project code for deliveries whose envelope has none"),
	INT("refusal_warn_after_s", S(refusal_warn_after_s), 1, 31536000, "3600", 0,
	    "warn when the endpoint has refused deliveries and accepted none for this long"),
	/* the Qase REST API, for each finished run's per-case results */
	STR("api.base_url", S(api_base_url), "https://api.qase.io/v1", valid_http_url, 0,
	    "Qase REST API v1 base URL, for per-case results"),
	STR("api.token", S(api_token), NULL, NULL, OPT_EMPTY_NULL | OPT_SECRET,
	    "Qase API token (unset or empty: no results are pulled)"),
	INT("api.rate_limit_per_min", S(api_rate_limit_per_min), 1, 100000, "600", 0,
	    "Qase API requests a minute, across all runs"),
	LIST("api.fetch_on", S(api_fetch_on), "run.completed,run.aborted", 0,
	     "events whose actions wait for the run's results"),
	INT("api.wait_s", S(api_wait_s), 0, 86400, "300", 0,
	    "longest an event's actions wait for its results"),
	INT("api.failed_max", S(api_failed_max), 0, 10000, "50", 0,
	    "failed, blocked and invalid cases listed in the event's results.failed"),
};

/* ---- values ---------------------------------------------------------- */

static int parse_ll(const char *s, long long *out)
{
	char *end;

	if (!*s || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

static int value_index(const char *const *values, const char *val)
{
	for (int i = 0; values[i]; i++)
		if (strcmp(values[i], val) == 0)
			return i;
	return -1;
}

/* What a row accepts, for messages: "an integer between 1 and 10". */
static const char *expected(const struct option *o, char *buf, size_t len)
{
	size_t n = 0;

	switch (o->type) {
	case OPT_INT:
	case OPT_SIZE:
		snprintf(buf, len, "an integer between %lld and %lld", o->min, o->max);
		return buf;
	case OPT_ENUM:
	case OPT_CHOICE:
		n = (size_t)snprintf(buf, len, "one of");
		for (int i = 0; o->values[i] && n < len; i++)
			n += (size_t)snprintf(buf + n, len - n, "%s %s", i ? "," : "", o->values[i]);
		return buf;
	case OPT_PATH: snprintf(buf, len, "a non-empty path"); return buf;
	case OPT_LIST: snprintf(buf, len, "a list of names"); return buf;
	default: snprintf(buf, len, "a non-empty string"); return buf;
	}
}

/*
 * Checks val against row o and stores it at base + o->offset.  On failure
 * why says what was expected.
 */
static int opt_store(void *base, const struct option *o, const char *val, char *why, size_t len)
{
	char *at = (char *)base + o->offset;
	long long n = 0;
	int i = -1;

	if (!*val && (o->flags & OPT_EMPTY_NULL)) {
		free(*(char **)at);
		*(char **)at = NULL;
		return 0;
	}
	if (((o->type == OPT_INT || o->type == OPT_SIZE) &&
	     (parse_ll(val, &n) < 0 || n < o->min || n > o->max)) ||
	    ((o->type == OPT_ENUM || o->type == OPT_CHOICE) && (i = value_index(o->values, val)) < 0) ||
	    (!*val && o->type != OPT_LIST)) {
		expected(o, why, len);
		return -1;
	}
	if (o->valid && o->valid(val, why, len) < 0)
		return -1;
	switch (o->type) {
	case OPT_INT: *(int *)at = (int)n; return 0;
	case OPT_SIZE: *(size_t *)at = (size_t)n; return 0;
	case OPT_CHOICE: *(int *)at = i; return 0;
	default: {
		char *s = strdup(val);
		if (!s) {
			snprintf(why, len, "memory to store it");
			return -1;
		}
		free(*(char **)at);
		*(char **)at = s;
		return 0;
	}
	}
}

static int is_string_type(const struct option *o)
{
	return o->type == OPT_STRING || o->type == OPT_PATH || o->type == OPT_ENUM ||
	       o->type == OPT_LIST;
}

static void opts_free(void *base, const struct option *tab, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (is_string_type(&tab[i]))
			free(*(char **)((char *)base + tab[i].offset));
}

/* Defaults are checked by the same code as values, so a bad one is a bug. */
static int opts_defaults(void *base, const struct option *tab, size_t n)
{
	char why[256];

	for (size_t i = 0; i < n; i++) {
		if (!tab[i].def)
			continue;
		if (opt_store(base, &tab[i], tab[i].def, why, sizeof(why)) < 0) {
			assert(strcmp(why, "memory to store it") == 0);
			return -1;
		}
	}
	return 0;
}

/* ---- validators ------------------------------------------------------ */

/* "8080", "8443s", "8080r": what civetweb takes after the host. */
static int valid_port(const char *s, size_t len)
{
	long v = 0;
	size_t i = 0;

	if (len && (s[len - 1] == 's' || s[len - 1] == 'r'))
		len--;
	for (; i < len && i < 6 && isdigit((unsigned char)s[i]); i++)
		v = v * 10 + (s[i] - '0');
	return i == len && len > 0 && v <= 65535 ? 0 : -1;
}

/* civetweb listening_ports: comma-separated [host:]port[s|r]. */
static int valid_listen(const char *val, char *why, size_t len)
{
	const char *p = val;

	for (;;) {
		size_t n = strcspn(p, ",");
		const char *colon = memrchr(p, ':', n);
		const char *port = colon ? colon + 1 : p;
		if (valid_port(port, n - (size_t)(port - p)) < 0 || strcspn(p, " \t") < n) {
			snprintf(why, len,
				 "[host:]port with a port between 0 and 65535 "
				 "(e.g. 127.0.0.1:8080)");
			return -1;
		}
		if (!p[n])
			return 0;
		p += n + 1;
	}
}

static int valid_http_url(const char *val, char *why, size_t len)
{
	if ((strncmp(val, "http://", 7) != 0 && strncmp(val, "https://", 8) != 0) ||
	    strcspn(val, " \t\r\n?#") != strlen(val)) {
		snprintf(why, len, "an http:// or https:// URL without query or fragment");
		return -1;
	}
	return 0;
}

static int valid_url_path(const char *val, char *why, size_t len)
{
	if (val[0] != '/' || strcspn(val, " \t\r\n?#") != strlen(val)) {
		snprintf(why, len, "a URL path starting with '/'");
		return -1;
	}
	return 0;
}

/*
 * redis://[:password@]host[:port][/db].  The password is the one part that
 * may contain anything, so it ends at the last '@'.  IPv6 hosts are written
 * in brackets and stored without them, as hiredis wants.
 */
static int valid_redis_url(const char *val, char *why, size_t len)
{
	struct redis_addr a;
	const char *detail;
	int rc = redis_url_parse(val, &a, &detail);

	explicit_bzero(a.password, sizeof(a.password));
	if (rc < 0)
		snprintf(why, len, "%s%s", REDIS_URL_FORM, detail);
	return rc;
}

static int redis_apply(struct config *cfg)
{
	struct redis_addr a;
	const char *why;

	if (redis_url_parse(cfg->redis_url, &a, &why) < 0)
		return -1;
	free(cfg->redis_host);
	free(cfg->redis_password);
	cfg->redis_host = strdup(a.host);
	cfg->redis_password = a.password[0] ? strdup(a.password) : NULL;
	cfg->redis_port = a.port;
	cfg->redis_db = a.db;
	int lost = !cfg->redis_host || (a.password[0] && !cfg->redis_password);
	explicit_bzero(a.password, sizeof(a.password));
	return lost ? -1 : 0;
}

/* ---- loading --------------------------------------------------------- */

struct load {
	struct config *cfg;
	struct errlist *errs;
	const struct config_section *const *sections;
	size_t failed;
	const struct cfg_node *seen[NELEM(options)]; /* where each was set */
	const struct cfg_node *sources;              /* the sources: key */
};

__attribute__((format(printf, 3, 4))) static void bad(struct load *ld, const struct cfg_node *at,
						      const char *fmt, ...)
{
	char where[300], msg[ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (at)
		cfg_where(at, where, sizeof(where));
	else
		snprintf(where, sizeof(where), "%s", ld->cfg->file);
	errlist_add(ld->errs, "%s: %s", where, msg);
	ld->failed++;
}

/* The value as quoted in a message: short, and never a secret. */
static const char *shown(const struct option *o, const char *val, char *buf, size_t len)
{
	char tmp[128];

	if (o->flags & OPT_SECRET)
		return "(hidden)";
	if (o->valid == valid_redis_url)
		val = redis_url_redact(val, tmp, sizeof(tmp));
	if (strlen(val) > 60)
		snprintf(buf, len, "'%.57s...'", val);
	else
		snprintf(buf, len, "'%s'", val);
	return buf;
}

/* A secret (or the Redis URL, which holds one) whose ${VAR} is unset:
 * authentication is off, or weaker than meant, without a word otherwise. */
static void warn_unset(struct load *ld, const struct option *o, const char *name,
		       const struct cfg_node *val, const struct expand_info *info, const char *text)
{
	char where[300];

	if (!info->n_unset || !(o->flags & (OPT_SECRET | OPT_HOLDS_SECRET)))
		return;
	cfg_where(val, where, sizeof(where));
	errlist_add(&ld->cfg->warnings, "%s: warning: %s uses ${%s}, which is unset: %s", where,
		    name, info->unset,
		    !*text && strstr(name, ".api.token") ? "no results are pulled"
		    : !*text                             ? "authentication is off"
		    : o->flags & OPT_SECRET ? "the secret is only the rest of the value"
					    : "its password may be missing");
}

/* A list of names (event types), stored comma-joined: [a, b] or "a". */
static void set_list(struct load *ld, void *base, const struct option *o, const char *name,
		     const struct cfg_node *val)
{
	char why[256], *joined = NULL;
	size_t len = 0;
	int one = val->type == CFG_SCALAR;

	if (!one && val->type != CFG_SEQ) {
		bad(ld, val, "%s: expected %s, got %s", name, expected(o, why, sizeof(why)),
		    cfg_type_name(val));
		return;
	}
	for (size_t i = 0; i < (one ? 1 : val->n); i++) {
		const struct cfg_node *it = one ? val : val->items[i];
		if (it->type != CFG_SCALAR || !*it->value ||
		    strcspn(it->value, ", \t") != strlen(it->value)) {
			bad(ld, it,
			    "%s: expected a list of names (no spaces or commas in one), got %s", name,
			    it->type == CFG_SCALAR ? "an empty or spaced name" : cfg_type_name(it));
			free(joined);
			return;
		}
		size_t n = strlen(it->value);
		char *grown = realloc(joined, len + n + 2);
		if (!grown) {
			free(joined);
			bad(ld, val, "%s: out of memory", name);
			return;
		}
		joined = grown;
		if (len)
			joined[len++] = ',';
		memcpy(joined + len, it->value, n + 1);
		len += n;
	}
	if (opt_store(base, o, joined ? joined : "", why, sizeof(why)) < 0)
		bad(ld, val, "%s: %s", name, why);
	free(joined);
}

/* Expands, checks and stores one scalar for row o; name is its full key. */
static void set_option(struct load *ld, void *base, const struct option *o, const char *name,
		       const struct cfg_node *val)
{
	char why[256], got[80], *text = NULL;
	int null = cfg_scalar_is_null(val) == 0;
	struct expand_info info;

	if (o->type == OPT_LIST) {
		set_list(ld, base, o, name, val);
		return;
	}
	if (val->type != CFG_SCALAR || (null && !(o->flags & OPT_EMPTY_NULL))) {
		bad(ld, val, "%s: expected %s, got %s", name, expected(o, why, sizeof(why)),
		    cfg_type_name(val));
		return;
	}
	if (config_expand_info(null ? "" : val->value, &text, &info, why, sizeof(why)) < 0) {
		bad(ld, val, "%s: %s", name, why);
		return;
	}
	warn_unset(ld, o, name, val, &info, text);
	if (opt_store(base, o, text, why, sizeof(why)) < 0)
		bad(ld, val, "%s: expected %s, got %s", name, why, shown(o, text, got, sizeof(got)));
	free(text);
}

/* Two sources of one name would be ambiguous, so that is an error. */
static int dup_source(struct load *ld, const struct cfg_node *map, size_t i)
{
	const struct cfg_node *k = map->keys[i];

	for (size_t j = 0; j < i; j++) {
		if (strcmp(map->keys[j]->value, k->value) == 0) {
			bad(ld, k,
			    "sources.%s: a second source of this name "
			    "(the first is on line %d)",
			    k->value, map->keys[j]->line);
			return 1;
		}
	}
	return 0;
}

static const struct option *find(const struct option *tab, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(tab[i].name, name) == 0)
			return &tab[i];
	return NULL;
}

/* A section is a dotted prefix of some option: "retry" for "retry.base_ms". */
static int is_section(const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < NELEM(options); i++)
		if (strncmp(options[i].name, name, n) == 0 && options[i].name[n] == '.')
			return 1;
	return 0;
}

/* ---- sources --------------------------------------------------------- */

static void source_free(struct source_cfg *s)
{
	opts_free(s, source_options, NELEM(source_options));
	free(s->name);
}

static void sources_free(struct config *cfg)
{
	for (size_t i = 0; i < cfg->n_sources; i++)
		source_free(&cfg->sources[i]);
	free(cfg->sources);
	cfg->sources = NULL;
	cfg->n_sources = 0;
}

/* The name is part of URLs and of every event, so keep it plain. */
static int source_name_ok(const char *name)
{
	size_t n = strlen(name);

	return n > 0 && n <= 64 &&
	       strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "0123456789_-") == n;
}

/* Defaults that depend on the name, once the file has had its say. */
static int source_finish(struct source_cfg *s)
{
	if (!s->path && asprintf(&s->path, "/webhooks/%s", s->name) < 0) {
		s->path = NULL;
		return -1;
	}
	if (!s->kind && !(s->kind = strdup(s->name)))
		return -1;
	return 0;
}

/* A source's keys, and those of its sections (api:) under prefix. */
static void source_fields(struct load *ld, struct source_cfg *s, const struct cfg_node *map,
			  const char *prefix)
{
	char name[128], key[96];

	for (size_t i = 0; i < map->n; i++) {
		const struct cfg_node *k = map->keys[i], *v = map->items[i];
		const struct option *o;

		snprintf(key, sizeof(key), "%s%s", prefix ? prefix : "",
			 strlen(k->value) > 40 ? "(long key)" : k->value);
		snprintf(name, sizeof(name), "sources.%s.%s", s->name, key);
		if (!prefix && strcmp(k->value, "api") == 0 && v->type == CFG_MAP)
			source_fields(ld, s, v, "api.");
		else if (!(o = find(source_options, NELEM(source_options), key)))
			bad(ld, k, "unknown key '%s'", name);
		else
			set_option(ld, s, o, name, v);
	}
}

static void load_source(struct load *ld, struct source_cfg *s, const struct cfg_node *key,
			const struct cfg_node *val)
{
	if (!(s->name = strdup(key->value)) ||
	    opts_defaults(s, source_options, NELEM(source_options)) < 0) {
		bad(ld, key, "sources: out of memory");
		return;
	}
	if (!source_name_ok(s->name)) {
		bad(ld, key,
		    "sources: a source name is 1 to 64 letters, digits, "
		    "'_' or '-'");
		return;
	}
	if (val->type == CFG_MAP)
		source_fields(ld, s, val, NULL);
	else if (cfg_scalar_is_null(val) < 0)
		bad(ld, val, "sources.%s: expected a map, got %s", s->name, cfg_type_name(val));
	if (!s->hmac_header != !s->hmac_secret)
		bad(ld, key,
		    "sources.%s: hmac_header and hmac_secret go together "
		    "(one is set, the other is missing or empty)",
		    s->name);
	if (!s->kind && !cfg_get(val, "kind") && value_index(source_kinds, s->name) < 0)
		bad(ld, key,
		    "sources.%s.kind: expected one of qase, got '%s' "
		    "(the default is the source name)",
		    s->name, s->name);
	else if (source_finish(s) < 0)
		bad(ld, key, "sources: out of memory");
}

/* Two sources on one path could not be told apart by the HTTP layer. */
static void check_paths(struct load *ld, const struct cfg_node *map)
{
	const struct config *cfg = ld->cfg;

	for (size_t i = 0; i < cfg->n_sources; i++) {
		const struct source_cfg *s = &cfg->sources[i];
		const struct cfg_node *at = cfg_get(map->items[i], "path");
		for (size_t j = 0; j < i && s->path; j++) {
			if (!cfg->sources[j].path || strcmp(cfg->sources[j].path, s->path) != 0)
				continue;
			bad(ld, at ? at : map->keys[i],
			    "sources.%s.path: '%s' is already the path of source '%s'", s->name,
			    s->path, cfg->sources[j].name);
			break;
		}
	}
}

static void load_sources(struct load *ld, const struct cfg_node *val)
{
	struct config *cfg = ld->cfg;

	if (cfg_scalar_is_null(val) == 0)
		return; /* "sources:" with nothing under it: the default */
	if (val->type != CFG_MAP || val->n == 0) {
		bad(ld, val,
		    "sources: expected a map of source names to "
		    "settings, got %s",
		    val->type == CFG_MAP ? "an empty map" : cfg_type_name(val));
		return;
	}
	sources_free(cfg);
	if (!(cfg->sources = calloc(val->n, sizeof(*cfg->sources)))) {
		bad(ld, val, "sources: out of memory");
		return;
	}
	/* one entry per key, duplicates included, so that items[i] is sources[i] */
	for (size_t i = 0; i < val->n; i++) {
		cfg->n_sources++;
		if (!dup_source(ld, val, i))
			load_source(ld, &cfg->sources[i], val->keys[i], val->items[i]);
	}
	check_paths(ld, val);
}

/* ---- the document ---------------------------------------------------- */

static const struct config_section *find_section(const struct load *ld, const char *name)
{
	for (size_t i = 0; ld->sections && ld->sections[i]; i++)
		if (strcmp(ld->sections[i]->name, name) == 0)
			return ld->sections[i];
	return NULL;
}

static void walk(struct load *ld, const struct cfg_node *map, const char *prefix);

/* A key under a section: "retry:" must hold a map of retry's options. */
static void section(struct load *ld, const char *name, const struct cfg_node *val)
{
	if (val->type == CFG_MAP)
		walk(ld, val, name);
	else if (cfg_scalar_is_null(val) < 0)
		bad(ld, val, "%s: expected a map, got %s", name, cfg_type_name(val));
}

static void walk_key(struct load *ld, const struct cfg_node *key, const struct cfg_node *val,
		     const char *prefix)
{
	char name[128];
	const struct option *o;
	const struct config_section *sec;
	int n = snprintf(name, sizeof(name), "%s%s%s", prefix ? prefix : "", prefix ? "." : "",
			 key->value);

	/* a dotted key would reach a nested option from the wrong level */
	if (n < 0 || (size_t)n >= sizeof(name) || strchr(key->value, '.') || !*key->value) {
		bad(ld, key, "unknown key '%s%s%.40s'", prefix ? prefix : "", prefix ? "." : "",
		    key->value);
	} else if (!prefix && strcmp(name, "sources") == 0) {
		if (ld->sources) {
			bad(ld, key,
			    "sources: given twice (first on line %d); "
			    "list every source in one map",
			    ld->sources->line);
		} else {
			ld->sources = key;
			load_sources(ld, val);
		}
	} else if (!prefix && (sec = find_section(ld, name))) {
		if (sec->load(ld->cfg, val, ld->errs) < 0)
			ld->failed++;
	} else if ((o = find(options, NELEM(options), name))) {
		ld->seen[o - options] = val;
		set_option(ld, ld->cfg, o, name, val);
	} else if (is_section(name)) {
		section(ld, name, val);
	} else {
		bad(ld, key, "unknown key '%s'", name);
	}
}

/*
 * A key given twice is not an error: sections merge and a later value
 * replaces an earlier one, so that a generated config can append overrides.
 */
static void walk(struct load *ld, const struct cfg_node *map, const char *prefix)
{
	for (size_t i = 0; i < map->n; i++)
		walk_key(ld, map->keys[i], map->items[i], prefix);
}

/* civetweb marks a TLS port with a trailing 's': "127.0.0.1:8443s". */
static int listen_has_tls(const char *listen)
{
	for (const char *p = listen; *p; p++)
		if (*p == 's' && (p[1] == ',' || p[1] == '\0') && p > listen &&
		    isdigit((unsigned char)p[-1]))
			return 1;
	return 0;
}

/* Rules between options, checked once every option has its value. */
static void cross_checks(struct load *ld)
{
	const struct config *cfg = ld->cfg;

	int tls_port = listen_has_tls(cfg->listen);
	if (tls_port != (cfg->tls_certificate != NULL))
		bad(ld, NULL, "%s",
		    tls_port ? "listen: a TLS port ('s' suffix) needs tls.certificate"
			     : "tls.certificate: listen needs a TLS port, e.g. 127.0.0.1:8443s");
	if (cfg->retry_base_ms > cfg->retry_max_ms) {
		const struct option *b = find(options, NELEM(options), "retry.base_ms");
		const struct option *m = find(options, NELEM(options), "retry.max_ms");
		bad(ld, ld->seen[b - options] ? ld->seen[b - options] : ld->seen[m - options],
		    "retry.base_ms: %d is greater than retry.max_ms (%d)", cfg->retry_base_ms,
		    cfg->retry_max_ms);
	}
}

static int load_doc(struct config **out, const struct cfg_doc *doc,
		    const struct config_section *const *sections, struct errlist *errs)
{
	struct load ld = { .errs = errs, .sections = sections };
	const struct cfg_node *root = doc->root;

	*out = NULL;
	if (!(ld.cfg = config_defaults()) || !(ld.cfg->file = strdup(doc->file))) {
		config_free(ld.cfg);
		return errlist_add(errs, "%s: out of memory", doc->file);
	}
	if (root && root->type == CFG_MAP)
		walk(&ld, root, NULL);
	else if (root && cfg_scalar_is_null(root) < 0)
		bad(&ld, root, "expected a map of settings, got %s", cfg_type_name(root));
	cross_checks(&ld);
	if (ld.failed == 0 && redis_apply(ld.cfg) < 0)
		bad(&ld, root, "redis.url: out of memory");
	if (ld.failed) {
		config_free(ld.cfg);
		return -1;
	}
	*out = ld.cfg;
	return 0;
}

/* ---- public ---------------------------------------------------------- */

struct config *config_defaults(void)
{
	struct config *cfg = calloc(1, sizeof(*cfg));

	if (!cfg)
		return NULL;
	if (opts_defaults(cfg, options, NELEM(options)) < 0 ||
	    !(cfg->sources = calloc(1, sizeof(*cfg->sources))))
		goto fail;
	cfg->n_sources = 1;
	if (!(cfg->sources[0].name = strdup("qase")) ||
	    opts_defaults(&cfg->sources[0], source_options, NELEM(source_options)) < 0 ||
	    source_finish(&cfg->sources[0]) < 0 || redis_apply(cfg) < 0)
		goto fail;
	return cfg;
fail:
	config_free(cfg);
	return NULL;
}

int config_load_string(struct config **out, const char *name, const char *text,
		       const struct config_section *const *sections, struct errlist *errs)
{
	struct cfg_doc *doc;
	struct err err;
	int rc;

	*out = NULL;
	if (cfg_load_string(&doc, name, text, strlen(text), &err) < 0)
		return errlist_add(errs, "%s", err.msg);
	rc = load_doc(out, doc, sections, errs);
	cfg_doc_free(doc);
	return rc;
}

int config_load(struct config **out, const char *path, const struct config_section *const *sections,
		struct errlist *errs)
{
	struct cfg_doc *doc;
	struct err err;
	int rc;

	*out = NULL;
	if (cfg_load_file(&doc, path, &err) < 0)
		return errlist_add(errs, "%s", err.msg);
	rc = load_doc(out, doc, sections, errs);
	cfg_doc_free(doc);
	return rc;
}

static void targets_free(struct config *cfg)
{
	for (size_t i = 0; i < cfg->n_targets; i++) {
		free(cfg->targets[i].kind);
		free(cfg->targets[i].name);
		json_object_put(cfg->targets[i].settings);
	}
	free(cfg->targets);
	cfg->targets = NULL;
	cfg->n_targets = 0;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	opts_free(cfg, options, NELEM(options));
	sources_free(cfg);
	targets_free(cfg);
	free(cfg->file);
	errlist_free(&cfg->warnings);
	free(cfg->redis_host);
	if (cfg->redis_password)
		explicit_bzero(cfg->redis_password, strlen(cfg->redis_password));
	free(cfg->redis_password);
	free(cfg);
}

const struct target_cfg *config_target(const struct config *cfg, const char *kind, const char *name)
{
	for (size_t i = 0; i < cfg->n_targets; i++)
		if (!strcmp(cfg->targets[i].kind, kind) && !strcmp(cfg->targets[i].name, name))
			return &cfg->targets[i];
	return NULL;
}

const struct source_cfg *config_source_by_path(const struct config *cfg, const char *path)
{
	for (size_t i = 0; i < cfg->n_sources; i++)
		if (cfg->sources[i].path && strcmp(cfg->sources[i].path, path) == 0)
			return &cfg->sources[i];
	return NULL;
}

/* 1 when row o holds the same value in a and b. */
static int opt_equal(const void *a, const void *b, const struct option *o)
{
	const char *pa = (const char *)a + o->offset, *pb = (const char *)b + o->offset;

	switch (o->type) {
	case OPT_INT:
	case OPT_CHOICE: return *(const int *)pa == *(const int *)pb;
	case OPT_SIZE: return *(const size_t *)pa == *(const size_t *)pb;
	default: {
		const char *sa = *(char *const *)pa, *sb = *(char *const *)pb;
		return sa == sb || (sa && sb && strcmp(sa, sb) == 0);
	}
	}
}

static void append_key(char *out, size_t len, const char *key)
{
	size_t used = strlen(out);

	if (used + 1 < len)
		snprintf(out + used, len - used, "%s%s", used ? ", " : "", key);
}

size_t config_restart_keys(const struct config *old, const struct config *new, char *out, size_t len)
{
	size_t n = 0;
	char name[128];

	if (len)
		out[0] = '\0';
	for (size_t i = 0; i < NELEM(options); i++)
		if (!(options[i].flags & OPT_RELOAD) && !opt_equal(old, new, &options[i])) {
			append_key(out, len, options[i].name);
			n++;
		}
	/* the HTTP server routes by the sources it started with */
	for (size_t i = 0; i < old->n_sources || i < new->n_sources; i++) {
		const struct source_cfg *a = i < old->n_sources ? &old->sources[i] : NULL;
		const struct source_cfg *b = i < new->n_sources ? &new->sources[i] : NULL;
		int same = a && b && strcmp(a->name, b->name) == 0;
		for (size_t k = 0; same && k < NELEM(source_options); k++)
			same = opt_equal(a, b, &source_options[k]);
		if (!same) {
			snprintf(name, sizeof(name), "sources.%s", (a ? a : b)->name);
			append_key(out, len, name);
			n++;
		}
	}
	return n;
}

void config_keys_each(void (*fn)(void *ctx, const char *key, const char *def, const char *desc),
		      void *ctx)
{
	char name[128];

	for (size_t i = 0; i < NELEM(options); i++)
		fn(ctx, options[i].name, options[i].def, options[i].desc);
	for (size_t i = 0; i < NELEM(source_options); i++) {
		snprintf(name, sizeof(name), "sources.*.%s", source_options[i].name);
		fn(ctx, name, source_options[i].def, source_options[i].desc);
	}
}

int source_fetches(const struct source_cfg *src, const char *type)
{
	size_t n = strlen(type);

	if (!src || !src->api_token || !*src->api_token || !src->api_fetch_on || !n)
		return 0;
	for (const char *p = src->api_fetch_on; *p;) {
		size_t len = strcspn(p, ",");
		if (len == n && memcmp(p, type, n) == 0)
			return 1;
		p += len + (p[len] == ',');
	}
	return 0;
}
