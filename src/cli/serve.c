/*
 * serve: start-up and shutdown order of the daemon.
 *
 * Start: config, rules, store, dispatcher (loads the backlog), writer, HTTP.
 * Stop (SIGTERM/SIGINT): HTTP first (no new deliveries; requests in progress
 * are answered), then the dispatcher (running attempts finish, up to
 * shutdown_timeout_s), then the writer (commits what is queued).  Anything
 * not finished stays in the store and resumes on the next start.
 * SIGHUP reloads the rules (see reload()).
 * Signals are taken by sigtimedwait in the main thread, never in handlers;
 * between them, once a second, the main thread saves what each source's
 * endpoint answered and warns of a source that only refuses (http_tick).
 */
#include "cli/cli.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "accept/accept.h"
#include "targets/action_target.h"
#include "dispatch/dispatch.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "http/server.h"
#include "rules/rules.h"
#include "store/checkpoint.h"
#include "store/ingest.h"
#include "store/store.h"

static const char usage[] = "usage: runbridge serve -c FILE\n"
			    "\n"
			    "Runs the daemon: receives webhooks, stores them, runs the actions of\n"
			    "matching rules.  SIGTERM or SIGINT drains and exits 0.\n"
			    "\n"
			    "  -c, --config FILE   configuration (default config/runbridge.yaml,\n"
			    "                      or $RUNBRIDGE_CONFIG)\n";

struct daemon {
	struct config *cfg;        /* the start-up one: http, store, pools */
	const struct config *live; /* the last reload's (cfg at start) */
	struct config **configs;   /* every reload's, freed at exit */
	size_t nconfigs;
	struct rules *rules;
	struct dispatch *d;
	struct ingest *in;
	struct checkpointer *ck; /* copies the writer's WAL, off its commits */
	struct acceptor *acc;
	struct http_server *http;
};

/* What /readyz and /metrics ask of the dispatcher. */
static int status_redis_up(void *ctx)
{
	return dispatch_redis_up(ctx);
}

static void status_jobs(void *ctx, long long *in_memory, long long *running)
{
	struct dispatch_stats ds;

	dispatch_stats(ctx, &ds);
	*in_memory = (long long)ds.in_memory;
	*running = (long long)ds.running;
}

static int start(struct daemon *dm)
{
	struct store *st = NULL, *ck = NULL;
	struct err err = { 0 };

	if (store_open(&st, dm->cfg->data_dir, STORE_RW, &err) < 0)
		goto fail;
	/* the checkpointer's own connection (it closes it, on failure too) */
	if (store_open(&ck, dm->cfg->data_dir, STORE_RW, &err) < 0 ||
	    checkpointer_start(&dm->ck, st, ck, &err) < 0) {
		store_close(st);
		goto fail;
	}
	if (dispatch_new(&dm->d, dm->cfg, &err) < 0 ||
	    ingest_start(&dm->in, st, dispatch_push, dm->d, &err) < 0) {
		store_close(dm->in ? NULL : st);
		goto fail;
	}
	ingest_set_checkpointer(dm->in, dm->ck);
	ingest_set_retention(dm->in, dm->cfg->retention_done_days, dm->cfg->retention_dead_days);
	if (acceptor_new(&dm->acc, dm->cfg->data_dir, dm->in, dm->rules, &err) < 0)
		goto fail;
	dispatch_set_router(dm->d, accept_route_deferred, dm->acc);
	if (dispatch_start(dm->d, dm->in, &err) < 0 ||
	    http_start(&dm->http, dm->cfg, dm->in, dm->acc,
		       &(struct http_status){
			       .ctx = dm->d, .redis_up = status_redis_up, .jobs = status_jobs },
		       &err) < 0)
		goto fail;
	return 0;
fail:
	log_kv(LOG_ERROR, "cannot start", "error", err.msg, NULL);
	return -1;
}

static void stop(struct daemon *dm)
{
	int clean = 1;

	http_stop(dm->http);
	log_msg(LOG_DEBUG, "http stopped");
	if (dm->d)
		clean = dispatch_stop(dm->d, dm->cfg->shutdown_timeout_s) == 0;
	log_msg(LOG_DEBUG, "actions stopped");
	if (dm->in)
		ingest_stop(dm->in);
	checkpointer_stop(dm->ck); /* after the writer's connection, whose hook it is */
	dm->ck = NULL;
	log_msg(LOG_DEBUG, "store closed");
	if (clean) {
		dispatch_free(dm->d);
		acceptor_free(dm->acc);
		ingest_free(dm->in);
	}
}

/*
 * SIGHUP: load the config file and rules again.  If both are valid, the
 * reloadable keys take effect: new deliveries are routed by the new rules,
 * attempts from the next batch on use the new targets and credentials,
 * retry.* and exec.output_max_bytes (dispatch_set_config), and the log
 * settings change.  Jobs already queued keep the params they were rendered
 * with.  Keys that need a restart (listen, data_dir, redis, threads,
 * sources, ...) keep their running values, and the log names them.
 *
 * A target that the new config drops while jobs for it are still open
 * would strand them, so such a reload is refused with the count.  The
 * count is taken after the new rules are in place and every delivery routed
 * by the old ones has committed (acceptor_set_rules waits for them), so no
 * job can slip in after it; until then, and for any job queued before, workers still find the
 * dropped target in the older config (dispatch_target).
 *
 * Every config loaded stays allocated until exit: workers may still read
 * an older one, and reloads are rare.
 */
static int count_stranded(const struct config *old, const struct config *new, char *why, size_t len)
{
	struct store *st;
	struct err err;
	long long n;
	int stranded = 0;

	if (store_open(&st, old->data_dir, STORE_RO, &err) < 0)
		return 0; /* nothing stored yet */
	for (size_t i = 0; i < old->n_targets && !stranded; i++) {
		const struct target_cfg *t = &old->targets[i];
		if (config_target(new, t->kind, t->name))
			continue;
		if (store_target_open_jobs(st, t->kind, t->name, &n, &err) < 0) {
			snprintf(why, len, "cannot count the open jobs of target %s '%s': %.300s",
				 t->kind, t->name, err.msg);
			stranded = 1;
		} else if (n > 0) {
			snprintf(why, len,
				 "target %s '%s' still has %lld queued job%s; "
				 "keep it until they are done (runbridge status)",
				 t->kind, t->name, n, n == 1 ? "" : "s");
			stranded = 1;
		}
	}
	store_close(st);
	return stranded;
}

static void reload(struct daemon *dm, const char *path)
{
	struct config *cfg, **kept;
	struct rules *rules;
	const struct rules *old_rules;
	char why[512], restart[512];

	log_kv(LOG_INFO, "reload requested", "config", path, NULL);
	if (cli_load(path, &cfg, &rules) != 0) {
		action_set_config(dm->live);
		log_kv(LOG_ERROR,
		       "reload refused: the new configuration has errors (above); the old one keeps running",
		       NULL);
		return;
	}
	if (!(kept = realloc(dm->configs, (dm->nconfigs + 1) * sizeof(*kept))) ||
	    dispatch_set_config(dm->d, cfg) < 0) {
		if (kept)
			dm->configs = kept;
		action_set_config(dm->live);
		rules_free(rules);
		config_free(cfg);
		log_kv(LOG_ERROR, "reload refused: out of memory", NULL);
		return;
	}
	dm->configs = kept;
	/* When the swap returns, every delivery routed by the old rules has
	 * committed (or failed): the count below misses no job of theirs. */
	old_rules = acceptor_set_rules(dm->acc, rules);
	if (count_stranded(dm->live, cfg, why, sizeof(why))) {
		acceptor_set_rules(dm->acc, old_rules);
		dispatch_set_config(dm->d, dm->live); /* a node for the old one again */
		action_set_config(dm->live);
		dm->configs[dm->nconfigs++] = cfg; /* a worker may have read it */
		rules_free(rules);
		log_kv(LOG_ERROR, "reload refused: the old configuration keeps running", "reason",
		       why, NULL);
		return;
	}
	rules_free(dm->rules);
	dm->rules = rules;
	log_set_level(cfg->log_level);
	log_set_format(cfg->log_format);
	if (config_restart_keys(dm->cfg, cfg, restart, sizeof(restart)) > 0)
		log_kv(LOG_WARN,
		       "reload: these changed keys need a restart and keep their running values",
		       "keys", restart, NULL);
	dm->configs[dm->nconfigs++] = cfg;
	dm->live = cfg;
	action_set_config(cfg);
	ingest_set_checkpointer(dm->in, dm->ck);
	ingest_set_retention(dm->in, cfg->retention_done_days, cfg->retention_dead_days);
	char n[24];
	snprintf(n, sizeof(n), "%zu", rules_count(rules));
	log_kv(LOG_INFO, "reloaded", "rules", n, NULL);
}

static void wait_for_signal(struct daemon *dm, const char *path)
{
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	for (;;) {
		/* once a second: what the sources' endpoints answered */
		struct timespec tick = { .tv_sec = 1 };
		sig = sigtimedwait(&set, NULL, &tick);
		if (sig < 0) {
			http_tick(dm->http, clock_wall_ms());
			continue;
		}
		if (sig == SIGHUP) {
			reload(dm, path);
			continue;
		}
		log_kv(LOG_INFO, "shutting down", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT",
		       NULL);
		http_tick(dm->http, clock_wall_ms());
		return;
	}
}

int cli_serve(int argc, char **argv)
{
	struct cli_opts o;
	struct daemon dm = { 0 };
	sigset_t set;
	int rc;

	if ((rc = cli_parse(argc, argv, usage, 0, 0, &o)) != 0 || o.help)
		return rc;
	if (cli_load(o.config, &dm.cfg, &dm.rules) != 0)
		return 1;
	dm.live = dm.cfg;
	log_set_level(dm.cfg->log_level);
	log_set_format(dm.cfg->log_format);
	/* Block before any thread starts, so every thread inherits the mask
	 * and only sigwait sees these. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Past a file size limit, writes must fail (and the delivery get a
	 * 503) rather than kill the daemon. */
	signal(SIGXFSZ, SIG_IGN);

	rc = start(&dm);
	if (rc == 0) {
		char rules[24];
		snprintf(rules, sizeof(rules), "%zu", rules_count(dm.rules));
		if (strncmp(dm.cfg->listen, "127.", 4) != 0 &&
		    strncmp(dm.cfg->listen, "localhost:", 10) != 0)
			log_kv(LOG_WARN,
			       "plain HTTP on a non-loopback address: terminate TLS in "
			       "a proxy in front and listen on 127.0.0.1",
			       "listen", dm.cfg->listen, NULL);
		log_kv(LOG_INFO, "runbridge listening", "listen", dm.cfg->listen, "data_dir",
		       dm.cfg->data_dir, "rules", rules, "version", RB_VERSION, NULL);
		wait_for_signal(&dm, o.config);
	}
	stop(&dm);
	if (rc == 0)
		log_msg(LOG_INFO, "stopped");
	rules_free(dm.rules);
	for (size_t i = 0; i < dm.nconfigs; i++)
		config_free(dm.configs[i]);
	free(dm.configs);
	config_free(dm.cfg);
	return rc == 0 ? 0 : 1;
}
