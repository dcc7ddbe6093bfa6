/*
 * action_exec: the exec action kind.  Parsing and rendering a rule's
 * `exec:` node, and turning stored params into a child's argv and
 * environment; spawn.c runs the child.
 *
 * Params are the only input at run time (the rule may have been reloaded
 * since the job was queued), so they are checked again there: a job row is
 * data, not code.
 */
#include "actions/action_exec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions/spawn.h"
#include "core/log.h"
#include "core/unconst.h"
#include "core/metrics.h"
#include "rules/template.h"

#define EXEC_TIMEOUT_DEFAULT 30
#define EXEC_TIMEOUT_MAX     86400
#define EXEC_DEFAULT_PATH    "/usr/local/bin:/usr/bin:/bin"

/* runbridge sets these itself; a rule may not. */
static const char *const reserved_env[] = {
	"RUNBRIDGE_EVENT",
	"RUNBRIDGE_EVENT_TRUNCATED",
	"RUNBRIDGE_DELIVERY_ID",
};

struct env_tmpl {
	char *name;
	struct tmpl *value;
};

struct exec_spec {
	struct tmpl **argv;
	size_t argc;
	struct env_tmpl *env;
	size_t nenv;
	long long timeout_s;
	char *cwd; /* NULL: the daemon's */
};

static void exec_free_spec(void *p)
{
	struct exec_spec *s = p;
	if (!s)
		return;
	for (size_t i = 0; i < s->argc; i++)
		tmpl_free(s->argv[i]);
	for (size_t i = 0; i < s->nenv; i++) {
		free(s->env[i].name);
		tmpl_free(s->env[i].value);
	}
	free(s->argv);
	free(s->env);
	free(s->cwd);
	free(s);
}

/* ---- parse --------------------------------------------------------------- */

static int env_name_valid(const char *s)
{
	if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
		return 0;
	for (s++; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return 0;
	return 1;
}

static int env_name_reserved(const char *s)
{
	for (size_t i = 0; i < sizeof(reserved_env) / sizeof(reserved_env[0]); i++)
		if (strcmp(s, reserved_env[i]) == 0)
			return 1;
	return 0;
}

/* Compiles a scalar node; what names the value in messages ("argv[1]"). */
static int compile(struct tmpl **out, const struct cfg_node *v, const char *what, struct errlist *errs)
{
	char where[300];
	struct err e;

	if (v->type != CFG_SCALAR)
		return errlist_add(errs, "%s: exec: %s must be a string, not %s",
				   cfg_where(v, where, sizeof(where)), what, cfg_type_name(v));
	if (tmpl_compile(out, v->value, &e) < 0)
		return errlist_add(errs, "%s: exec: %s: %s", cfg_where(v, where, sizeof(where)),
				   what, e.msg);
	return 0;
}

static int parse_argv(void *spec, const struct cfg_node *v, struct errlist *errs)
{
	struct exec_spec *s = spec;
	char where[300], what[32];
	int bad = 0;

	if (v->type != CFG_SEQ || v->n == 0)
		return errlist_add(errs, "%s: exec: argv must be a non-empty list of strings",
				   cfg_where(v, where, sizeof(where)));
	s->argv = calloc(v->n, sizeof(*s->argv));
	if (!s->argv)
		return errlist_add(errs, "out of memory");
	s->argc = v->n;
	for (size_t i = 0; i < v->n; i++) {
		snprintf(what, sizeof(what), "argv[%zu]", i);
		if (compile(&s->argv[i], v->items[i], what, errs) < 0)
			bad = -1;
	}
	if (v->items[0]->type == CFG_SCALAR && !*v->items[0]->value)
		bad = errlist_add(errs, "%s: exec: argv[0], the program, must not be empty",
				  cfg_where(v->items[0], where, sizeof(where)));
	return bad;
}

static int parse_env_pair(struct exec_spec *s, const struct cfg_node *map, size_t i,
			  struct errlist *errs)
{
	const struct cfg_node *k = map->keys[i];
	char where[300], what[300];

	if (!env_name_valid(k->value))
		return errlist_add(
			errs,
			"%s: exec: env name '%s' is not valid: use letters, digits and _, not starting with a digit",
			cfg_where(k, where, sizeof(where)), k->value);
	if (env_name_reserved(k->value))
		return errlist_add(errs, "%s: exec: env name '%s' is reserved: runbridge sets it",
				   cfg_where(k, where, sizeof(where)), k->value);
	for (size_t j = 0; j < i; j++)
		if (strcmp(map->keys[j]->value, k->value) == 0)
			return errlist_add(errs, "%s: exec: env name '%s' appears twice",
					   cfg_where(k, where, sizeof(where)), k->value);
	struct env_tmpl *e = &s->env[s->nenv];
	snprintf(what, sizeof(what), "env %s", k->value);
	int rc = compile(&e->value, map->items[i], what, errs);
	if (rc == 0 && !(e->name = strdup(k->value)))
		rc = errlist_add(errs, "out of memory");
	if (rc < 0) {
		tmpl_free(e->value);
		e->value = NULL;
		return -1;
	}
	s->nenv++;
	return 0;
}

static int parse_env(void *spec, const struct cfg_node *v, struct errlist *errs)
{
	struct exec_spec *s = spec;
	char where[300];
	int bad = 0;

	/* `env:` with nothing under it is a slip, not a mistake. */
	if (cfg_scalar_is_null(v) == 0)
		return 0;
	if (v->type != CFG_MAP)
		return errlist_add(errs, "%s: exec: env must be a map of NAME: value",
				   cfg_where(v, where, sizeof(where)));
	s->env = calloc(v->n ? v->n : 1, sizeof(*s->env));
	if (!s->env)
		return errlist_add(errs, "out of memory");
	for (size_t i = 0; i < v->n; i++)
		if (parse_env_pair(s, v, i, errs) < 0)
			bad = -1;
	return bad;
}

static int parse_timeout(void *spec, const struct cfg_node *v, struct errlist *errs)
{
	struct exec_spec *s = spec;
	char where[300];

	if (cfg_scalar_int(v, &s->timeout_s) < 0 || s->timeout_s < 1 ||
	    s->timeout_s > EXEC_TIMEOUT_MAX)
		return errlist_add(
			errs, "%s: exec: timeout_s must be a whole number of seconds from 1 to %d",
			cfg_where(v, where, sizeof(where)), EXEC_TIMEOUT_MAX);
	return 0;
}

static int parse_cwd(void *spec, const struct cfg_node *v, struct errlist *errs)
{
	struct exec_spec *s = spec;
	char where[300];

	if (cfg_scalar_is_null(v) == 0)
		return 0;
	if (v->type != CFG_SCALAR || !*v->value)
		return errlist_add(errs, "%s: exec: cwd must be a non-empty string",
				   cfg_where(v, where, sizeof(where)));
	if (!(s->cwd = strdup(v->value)))
		return errlist_add(errs, "out of memory");
	return 0;
}

/* One row per key; the order is the order in "expected ..." messages. */
static const struct cfg_key exec_keys[] = {
	{ "argv", parse_argv },
	{ "env", parse_env },
	{ "timeout_s", parse_timeout },
	{ "cwd", parse_cwd },
};

#define EXEC_NKEYS (sizeof(exec_keys) / sizeof(exec_keys[0]))

static int exec_parse(void **out, const struct cfg_node *node, struct errlist *errs)
{
	char where[300];
	struct exec_spec *s;
	unsigned seen = 0;
	int bad = 0;

	*out = NULL;
	if (node->type != CFG_MAP)
		return errlist_add(
			errs,
			"%s: exec: expected a map like { argv: [\"hooks/notify.sh\", \"{{run.title}}\"] }",
			cfg_where(node, where, sizeof(where)));
	s = calloc(1, sizeof(*s));
	if (!s)
		return errlist_add(errs, "out of memory");
	s->timeout_s = EXEC_TIMEOUT_DEFAULT;
	if (cfg_parse_keys(s, node, exec_keys, EXEC_NKEYS, "exec", &seen, errs) < 0)
		bad = -1;
	if (!(seen & 1u))
		bad = errlist_add(errs, "%s: exec: argv is required",
				  cfg_where(node, where, sizeof(where)));
	if (bad) {
		exec_free_spec(s);
		return -1;
	}
	*out = s;
	return 0;
}

/* ---- render -------------------------------------------------------------- */

/* Renders t as one JSON string (*cut_nul: a value in it stopped at a NUL
 * byte); NULL on OOM. */
static json_object *render_string(const struct tmpl *t, json_object *event, int *cut_nul)
{
	char *s = tmpl_render_cut(t, event, TMPL_RAW, 0, cut_nul);
	json_object *o = s ? json_object_new_string(s) : NULL;
	free(s);
	return o;
}

/*
 * A NUL byte in what an argument or variable reads makes the job fail for
 * good: params get "error" naming it (the first one), which run refuses.
 * Not a render error, which would refuse the whole delivery.
 */
static void note_nul(char *error, size_t len, const char *what)
{
	if (!*error)
		snprintf(error, len,
			 "%.120s would hold a NUL byte from the event, "
			 "which an argument or variable cannot carry: refused "
			 "rather than cut there",
			 what);
}

static int render_argv(json_object *params, const struct exec_spec *s, json_object *event,
		       char *error, size_t len)
{
	json_object *a = json_object_new_array();
	char what[32];

	if (!a || json_object_object_add(params, "argv", a) < 0) {
		json_object_put(a);
		return -1;
	}
	for (size_t i = 0; i < s->argc; i++) {
		int cut;
		json_object *v = render_string(s->argv[i], event, &cut);
		if (!v || json_object_array_add(a, v) < 0) {
			json_object_put(v);
			return -1;
		}
		if (cut) {
			snprintf(what, sizeof(what), "argv[%zu]", i);
			note_nul(error, len, what);
		}
	}
	return 0;
}

static int render_env(json_object *params, const struct exec_spec *s, json_object *event,
		      char *error, size_t len)
{
	json_object *env = json_object_new_object();
	char what[300];

	if (!env || json_object_object_add(params, "env", env) < 0) {
		json_object_put(env);
		return -1;
	}
	for (size_t i = 0; i < s->nenv; i++) {
		int cut;
		json_object *v = render_string(s->env[i].value, event, &cut);
		if (!v || json_object_object_add(env, s->env[i].name, v) < 0) {
			json_object_put(v);
			return -1;
		}
		if (cut) {
			snprintf(what, sizeof(what), "env %s", s->env[i].name);
			note_nul(error, len, what);
		}
	}
	return 0;
}

static int exec_render(json_object **out, const void *spec, json_object *event, struct err *err)
{
	const struct exec_spec *s = spec;
	json_object *o = json_object_new_object();
	json_object *t = NULL, *cwd = NULL;
	char error[256] = "";

	*out = NULL;
	if (!o || render_argv(o, s, event, error, sizeof(error)) < 0 ||
	    render_env(o, s, event, error, sizeof(error)) < 0)
		goto oom;
	if (*error &&
	    (!(t = json_object_new_string(error)) || json_object_object_add(o, "error", t) < 0))
		goto oom;
	t = NULL;
	t = json_object_new_int64(s->timeout_s);
	if (!t || json_object_object_add(o, "timeout_s", t) < 0)
		goto oom;
	t = NULL;
	/* A NULL value is JSON null: "cwd":null. */
	if (s->cwd && !(cwd = json_object_new_string(s->cwd)))
		goto oom;
	if (json_object_object_add(o, "cwd", cwd) < 0)
		goto oom;
	*out = o;
	return 0;
oom:
	json_object_put(t);
	json_object_put(cwd);
	json_object_put(o);
	return err_set(err, "out of memory");
}

/* ---- run ----------------------------------------------------------------- */

/* What a run allocates; the strings in argv are the params' own. */
struct exec_run {
	char **argv;
	char **envp;
	size_t nenv;
	const char *cwd;
	long long timeout_s;
};

static void exec_run_free(struct exec_run *r)
{
	for (size_t i = 0; i < r->nenv; i++)
		free(r->envp[i]);
	free(r->envp);
	free(r->argv);
}

/* The member called key, or NULL (also when o is NULL or not an object). */
static json_object *member(const json_object *o, const char *key)
{
	json_object *v = NULL;
	json_object_object_get_ex(o, key, &v);
	return v;
}

static int params_argv(struct exec_run *r, const json_object *params, struct err *err)
{
	json_object *a = member(params, "argv"), *e = member(params, "error");
	size_t n = json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;

	if (e)
		return err_setc(err, ERR_INVALID, "exec: %s", json_object_get_string(e));
	if (n == 0)
		return err_set(err, "exec params: argv must be a non-empty array");
	if (!(r->argv = calloc(n + 1, sizeof(*r->argv))))
		return err_set(err, "out of memory");
	for (size_t i = 0; i < n; i++) {
		json_object *v = json_object_array_get_idx(a, i);
		if (!json_object_is_type(v, json_type_string))
			return err_set(err, "exec params: argv[%zu] is not a string", i);
		r->argv[i] = RB_UNCONST(json_object_get_string(v)); /* for posix_spawn */
	}
	if (!*r->argv[0])
		return err_set(err, "exec params: argv[0], the program, is empty");
	return 0;
}

static int params_other(struct exec_run *r, const json_object *params, struct err *err)
{
	json_object *t = member(params, "timeout_s");
	json_object *cwd = member(params, "cwd");

	r->timeout_s = EXEC_TIMEOUT_DEFAULT;
	if (t) {
		r->timeout_s = json_object_get_int64(t);
		if (!json_object_is_type(t, json_type_int) || r->timeout_s < 1 ||
		    r->timeout_s > EXEC_TIMEOUT_MAX)
			return err_set(err, "exec params: timeout_s must be 1 to %d",
				       EXEC_TIMEOUT_MAX);
	}
	if (cwd && !json_object_is_type(cwd, json_type_string))
		return err_set(err, "exec params: cwd must be a string or null");
	r->cwd = cwd ? json_object_get_string(cwd) : NULL;
	return 0;
}

/* "name=value", malloc'd. */
static char *env_pair(const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);
	char *s = malloc(nl + vl + 2);

	if (!s)
		return NULL;
	memcpy(s, name, nl);
	s[nl] = '=';
	memcpy(s + nl + 1, value, vl + 1);
	return s;
}

static int env_add(struct exec_run *r, const char *name, const char *value, struct err *err)
{
	if (!(r->envp[r->nenv] = env_pair(name, value)))
		return err_set(err, "out of memory");
	r->nenv++;
	return 0;
}

/*
 * The event for RUNBRIDGE_EVENT, malloc'd, or NULL when it cannot be made
 * to fit EXEC_ENV_VALUE_MAX.  "raw" (the delivery as received) is usually
 * what makes an event big, and a hook that wants it can read stdin.
 */
static char *event_for_env(const char *event_json)
{
	json_object *ev;
	const char *s;
	char *out = NULL;

	if (strlen(event_json) <= EXEC_ENV_VALUE_MAX)
		return strdup(event_json);
	ev = json_tokener_parse(event_json);
	if (!json_object_is_type(ev, json_type_object))
		goto done;
	json_object_object_del(ev, "raw");
	s = json_object_to_json_string_ext(ev,
					   JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (s && strlen(s) <= EXEC_ENV_VALUE_MAX)
		out = strdup(s);
done:
	json_object_put(ev);
	return out;
}

static int env_event(struct exec_run *r, const char *event_json, struct err *err)
{
	char *ev = event_for_env(event_json);
	int rc;

	if (!ev)
		return env_add(r, "RUNBRIDGE_EVENT_TRUNCATED", "1", err);
	rc = env_add(r, "RUNBRIDGE_EVENT", ev, err);
	free(ev);
	return rc;
}

/* Rule env from params; names are checked again (see the top comment). */
static int env_rule(struct exec_run *r, json_object *env, struct err *err)
{
	json_object_object_foreach(env, name, v)
	{
		if (!env_name_valid(name) || env_name_reserved(name) ||
		    !json_object_is_type(v, json_type_string))
			return err_set(err, "exec params: env '%s' is not allowed", name);
		if (env_add(r, name, json_object_get_string(v), err) < 0)
			return -1;
	}
	return 0;
}

static int params_env(struct exec_run *r, const json_object *params, const char *event_json,
		      const char *delivery_id, struct err *err)
{
	json_object *env = member(params, "env");
	size_t n = json_object_is_type(env, json_type_object)
			   ? (size_t)json_object_object_length(env)
			   : 0;
	const char *path = getenv("PATH");

	if (env && !json_object_is_type(env, json_type_object))
		return err_set(err, "exec params: env must be an object");
	/* PATH, the event, the delivery id, the rule's, NULL. */
	if (!(r->envp = calloc(n + 4, sizeof(*r->envp))))
		return err_set(err, "out of memory");
	/* A rule that sets PATH replaces ours. */
	if (!member(env, "PATH") &&
	    env_add(r, "PATH", path && *path ? path : EXEC_DEFAULT_PATH, err) < 0)
		return -1;
	if (env_event(r, event_json, err) < 0)
		return -1;
	if (delivery_id && env_add(r, "RUNBRIDGE_DELIVERY_ID", delivery_id, err) < 0)
		return -1;
	return env ? env_rule(r, env, err) : 0;
}

int action_exec_run(const json_object *params, const char *event_json, const char *delivery_id,
		    size_t output_max, struct exec_outcome *outcome, struct err *err)
{
	struct exec_run r = { 0 };
	struct spawn_req req = { 0 };
	int rc = -1;

	memset(outcome, 0, sizeof(*outcome));
	if (!event_json)
		event_json = "";
	if (params_argv(&r, params, err) < 0 || params_other(&r, params, err) < 0 ||
	    params_env(&r, params, event_json, delivery_id, err) < 0)
		goto done;
	req.argv = r.argv;
	req.envp = r.envp;
	req.cwd = r.cwd;
	req.input = event_json;
	req.input_len = strlen(event_json);
	req.timeout_ms = r.timeout_s * 1000;
	req.output_max = output_max;
	rc = spawn_run(&req, outcome, err);
done:
	exec_run_free(&r);
	return rc;
}

void exec_outcome_describe(const struct exec_outcome *o, char *buf, size_t len)
{
	if (o->timed_out)
		snprintf(buf, len, "timed out after %lld ms", o->elapsed_ms);
	else if (o->signaled)
		snprintf(buf, len, "killed by signal %d", o->term_signal);
	else
		snprintf(buf, len, "exit %d", o->exit_code);
}

/* ---- the kind: exec.workers threads, each running one child at a time -- */

static void exec_pool(const struct config *cfg, struct action_pool *out)
{
	/* Hooks yield the CPU to intake: nice is per thread on Linux and a
	 * child inherits its spawning thread's, so it covers both the worker
	 * and every hook it starts.  The backlog waits on disk. */
	*out = (struct action_pool){ .threads = cfg->exec_workers, .batch = 1, .nice = cfg->exec_nice };
}

static void exec_result(struct action_job *j, const struct exec_outcome *o)
{
	struct work_result *res = j->res;
	char what[128];
	int ok = !o->timed_out && !o->signaled && o->exit_code == 0;

	exec_outcome_describe(o, what, sizeof(what));
	res->outcome = ok ? WORK_OK : WORK_FAIL;
	/* The output's tail tells most about a failure; it is cut to fit. */
	size_t room = sizeof(res->detail) - strlen(what) - 16;
	const char *out = o->output ? o->output : "";
	size_t olen = strlen(out);
	if (olen > room)
		out += olen - room;
	int n = snprintf(res->detail, sizeof(res->detail), "%s", what);
	if (olen)
		snprintf(res->detail + n, sizeof(res->detail) - (size_t)n, "; output: %s", out);
	if (o->output_len)
		log_kv(LOG_INFO, "exec output", "delivery", j->delivery_id, "rule", j->rule,
		       "result", what, "output", o->output, NULL);
}

static void exec_run_jobs(void *state, struct action_host *host, struct action_job *jobs, size_t n)
{
	(void)state;
	for (size_t i = 0; i < n; i++) {
		struct exec_outcome o;
		struct err err = { 0 };

		memset(&o, 0, sizeof(o));
		metrics_exec_running(1);
		int rc = action_exec_run(jobs[i].params, jobs[i].event_json, jobs[i].delivery_id,
					 host->cfg->exec_output_max, &o, &err);
		metrics_exec_running(-1);
		if (rc < 0) {
			/* refused at render, or too large for exec: the same
			 * params can never run, so no retries */
			jobs[i].res->outcome = err.code == ERR_INVALID || err.code == ERR_TOOLARGE
						       ? WORK_PERMANENT
						       : WORK_FAIL;
			snprintf(jobs[i].res->detail, sizeof(jobs[i].res->detail), "%s", err.msg);
		} else {
			exec_result(&jobs[i], &o);
		}
		free(o.output);
	}
}

const struct action_ops action_exec_ops = {
	.name = "exec",
	.summary = "run a program with the event on stdin (never through a shell)",
	.parse = exec_parse,
	.render = exec_render,
	.free_spec = exec_free_spec,
	.pool = exec_pool,
	.run = exec_run_jobs,
};
