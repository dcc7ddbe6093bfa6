/*
 * config: the daemon's configuration file, loaded into one struct.
 *
 * Every option is one row of one table in config.c (name, type, bounds,
 * default, where it is stored): validation, defaults and `runbridge check`
 * all come from that table.  ${VAR} in any scalar value expands from the
 * environment (unset = empty).  Relative paths are relative to the working
 * directory of the process.  Unknown keys are errors (they are typos).
 */
#ifndef RB_CORE_CONFIG_H
#define RB_CORE_CONFIG_H

#include <stddef.h>

#include <json-c/json.h>

#include "core/cfgtree.h"
#include "core/err.h"

enum duration_unit { DURATION_MS, DURATION_S };

struct source_cfg {
	char *name;                       /* key under sources:, e.g. "qase" */
	char *kind;                       /* payload dialect; only "qase" today (default: name) */
	char *path;                       /* URL path, default "/webhooks/<name>" */
	char *secret;                     /* NULL or "" = no secret check */
	enum duration_unit duration_unit; /* sources.qase.duration_unit: ms|s */
	char *hmac_header;                /* optional: header carrying HMAC-SHA256(body) */
	char *hmac_secret;                /* its key; both set or neither */
	char *project;                    /* project of deliveries without project_code, or NULL */
	int refusal_warn_after_s;         /* warn when only refusals for this long, 3600 */
	/* api.*: the Qase REST API, for each finished run's per-case results */
	char *api_base_url;         /* "https://api.qase.io/v1" */
	char *api_token;            /* NULL: no results are pulled */
	int api_rate_limit_per_min; /* 600, across all runs */
	char *api_fetch_on;         /* comma-joined event types, "run.completed,run.aborted" */
	int api_wait_s;             /* 300: longest an event's actions wait for results */
	int api_failed_max;         /* 50: items in the event's results.failed */
};

/* 1 when src pulls results for events of this type (a token is set and the
 * type is in api.fetch_on). */
int source_fetches(const struct source_cfg *src, const char *type);

/* One configured target API: targets.<kind>.<name>. */
struct target_cfg {
	char *kind;            /* "testomat", "qasphere", "testcenter" */
	char *name;            /* e.g. "main" */
	json_object *settings; /* ${VAR} expanded, typed and defaulted per the
				   kind's config map (targets/target_cfg.c) */
};

struct config {
	char *file; /* path it was loaded from */
	/* "file:line:col: warning: ..." lines for what loads but is likely a
	 * mistake (a secret whose ${VAR} is unset); printed by every command
	 * that loads the config (cli_load), at start and on reload */
	struct errlist warnings;
	char *listen;               /* civetweb listening_ports, "127.0.0.1:8080" */
	char *data_dir;             /* "var" */
	size_t max_body_bytes;      /* 1048576 */
	char *rules_path;           /* "rules": file or directory */
	struct source_cfg *sources; /* default: one source "qase" */
	size_t n_sources;

	char *redis_url;  /* "redis://127.0.0.1:6379/0" */
	char *redis_host; /* parsed from redis_url */
	int redis_port;
	int redis_db;
	char *redis_password;  /* from redis://:pass@host, may be NULL */
	int redis_dedup_ttl_s; /* redis.dedup_ttl_s, 86400 */
	int redis_batch;       /* redis.batch: XADDs per pipeline, 256 */

	int http_threads;       /* http.threads, 64 */
	int request_timeout_ms; /* http.request_timeout_ms, 10000 */
	int max_json_depth;     /* http.max_json_depth, 32 */

	int retry_max_attempts; /* retry.max_attempts, 10 */
	int retry_base_ms;      /* retry.base_ms, 500 */
	int retry_max_ms;       /* retry.max_ms, 300000 */

	int exec_workers;       /* exec.workers, 4 */
	size_t exec_output_max; /* exec.output_max_bytes, 65536 */
	int exec_nice;          /* exec.nice, 10: hooks' CPU priority */

	size_t queue_window;    /* queue.window: jobs held in memory, 65536 */
	int shutdown_timeout_s; /* shutdown_timeout_s, 30 */

	char *log_level;   /* log.level: debug|info|warn|error */
	char *log_format;  /* log.format: text|json */
	char *admin_token; /* http.admin_token: Bearer token that opens
				       /metrics to non-loopback clients */

	size_t max_header_bytes;         /* http.max_header_bytes: request line + headers, 16384 */
	int rate_limit_per_s;            /* http.rate_limit_per_s: per client address, 0 = off */
	int max_connections_per_address; /* http.max_connections_per_address, 32 (0: none) */
	int keep_alive_timeout_ms;       /* http.keep_alive_timeout_ms, 2000 (0: no keep-alive) */
	int admin_trust_loopback;        /* http.admin_trust_loopback, 1: loopback needs no token */
	int max_stream_clients;          /* http.max_stream_clients, 8: /api/v1/stream clients */
	int retention_done_days;         /* store.retention.done_days, 30 (0: forever) */
	int retention_dead_days;         /* store.retention.dead_days, 90 (0: forever) */
	char *tls_certificate;           /* tls.certificate: PEM (may hold the key too) */
	char *tls_key;                   /* tls.key: PEM key, when not in the certificate */

	struct target_cfg *targets; /* targets: (issue: translated calls) */
	size_t n_targets;
	int target_workers; /* targets_workers: threads per target kind, 2 */
};

/*
 * A top-level section another module loads (targets:, whose keys belong to
 * the action kinds: targets/target_cfg.h).  The program passes its sections
 * to config_load, so core/ depends on no one above it.  load appends its
 * errors to errs and returns -1 when there were some; what it stores in cfg
 * is plain data that config_free releases.
 */
struct config_section {
	const char *name;
	int (*load)(struct config *cfg, const struct cfg_node *val, struct errlist *errs);
};

/*
 * Loads and validates path.  sections: NULL-terminated, or NULL for none (a
 * key no table knows is an error).  Returns 0 and a config, or -1 with every
 * problem appended to errs as "file:line:col: message".  A missing optional
 * key takes its default; an empty file gives all defaults.
 */
int config_load(struct config **out, const char *path, const struct config_section *const *sections,
		struct errlist *errs);

/* Same, from text (tests). */
int config_load_string(struct config **out, const char *name, const char *text,
		       const struct config_section *const *sections, struct errlist *errs);

/* Every key of the options tables, dotted as in the file ("retry.base_ms";
 * a source's as "sources.*.secret"), with its default as written (NULL:
 * none) and its one-line description.  Sections are not included: their
 * modules list their own. */
void config_keys_each(void (*fn)(void *ctx, const char *key, const char *def, const char *desc),
		      void *ctx);

/* How many keys differ between old and new that a reload cannot apply
 * (everything but rules, retry.*, exec.output_max_bytes, log.* and the
 * targets section), their names in out ("listen, http.threads", cut to
 * len).  new is otherwise taken by SIGHUP as it is. */
size_t config_restart_keys(const struct config *old, const struct config *new, char *out, size_t len);

/* All defaults, no file (used by tests and as the base of loading). */
struct config *config_defaults(void);

void config_free(struct config *cfg);

/* The target kind/name, or NULL. */
const struct target_cfg *config_target(const struct config *cfg, const char *kind, const char *name);

/* ${VAR} expansion as the loader applies it: 0 and a malloc'd *out, or -1
 * with the reason in why. */
int config_expand(const char *in, char **out, char *why, size_t len);

/* The source whose path equals path, or NULL. */
const struct source_cfg *config_source_by_path(const struct config *cfg, const char *path);

#endif
