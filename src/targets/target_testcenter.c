/*
 * target_testcenter: Qase runs into Squish Test Center.
 *
 *   targets:
 *     testcenter:
 *       main: { base_url: http://tc:8800, token: ${TC_TOKEN}, project: Web,
 *               mode: import, batch: "Qase {{project}}#{{run_id}}",
 *               suite: "{{run.title}}", labels: { env: "{{run.environment}}" } }
 *
 * Results: when the event carries a "results" object (runbridge fetched
 * the run's per-case results from the Qase API into the store), the
 * results are read from the store with a->results, a page at a time, and
 * mirrored case by case; without one (null or absent), only the run's
 * counts are.  Statuses as in target-apis.md 5.2: passed PASS, failed FAIL,
 * blocked ERROR (or WARNING: setting blocked_event), invalid ERROR, skipped LOG +
 * SKIPPED, untested and in_progress left out; a custom status is treated as
 * skipped, naming it.
 *
 * How the run gets there is the mode's: import (target_testcenter_import.c)
 * or reporting (target_testcenter_report.c).  This file holds what both
 * share (login, URLs, the map, labels, the event's counts) and the
 * attempt, which picks the mode.
 *
 * Map states: import: (none) -> importing -> imported; reporting: (none) ->
 * creating -> open -> finished; both: -> deleted, a tombstone after which
 * every event of the run is ignored.
 */
#include "targets/target_testcenter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <nettle/base64.h>

/* ---- setup ------------------------------------------------------------------ */

static int has_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* "Authorization: Token <t>" or "Authorization: Basic base64(user:pass)". */
static int tc_auth(struct tc *c)
{
	const struct target_cfg *t = c->a->target;
	const char *token = target_str(t, "token");
	const char *user = target_str(t, "user"), *pass = target_str(t, "password");
	size_t ul, pl, n;
	unsigned char *plain;

	if (token) {
		if (has_ctl(token) || asprintf(&c->auth, "Authorization: Token %s", token) < 0) {
			c->auth = NULL;
			outcome_set(c->out, WORK_PERMANENT, "testcenter: token is not usable");
			return -1;
		}
		return 0;
	}
	if (!user || !pass) {
		outcome_set(c->out, WORK_PERMANENT,
			    "testcenter: target '%s' has neither token nor user and password",
			    t->name);
		return -1;
	}
	ul = strlen(user), pl = strlen(pass), n = ul + 1 + pl;
	plain = malloc(n);
	c->auth = malloc(sizeof("Authorization: Basic ") + 4 * ((n + 2) / 3) + 1);
	if (!plain || !c->auth) {
		free(plain);
		outcome_set(c->out, WORK_FAIL, "out of memory");
		return -1;
	}
	memcpy(plain, user, ul);
	plain[ul] = ':';
	memcpy(plain + ul + 1, pass, pl);
	memcpy(c->auth, "Authorization: Basic ", sizeof("Authorization: Basic ") - 1);
	char *b64 = c->auth + sizeof("Authorization: Basic ") - 1;
	base64_encode_raw(b64, n, plain);
	b64[BASE64_ENCODE_RAW_LENGTH(n)] = '\0';
	explicit_bzero(plain, n);
	free(plain);
	return 0;
}

static int tc_init(struct tc *c, struct target_attempt *a, struct target_outcome *out)
{
	c->a = a;
	c->out = out;
	c->type = event_str(a->event, "type");
	c->project = event_str(a->event, "project");
	c->run_id = event_int(a->event, "run_id", -1);
	if (!c->type || !c->project || c->run_id < 0) {
		outcome_set(out, WORK_PERMANENT,
			    "testcenter: the event has no type, project or run_id");
		return -1;
	}
	snprintf(c->ref, sizeof(c->ref), "%.60s#%lld", c->project, c->run_id);
	if (!target_str(a->target, "project")) {
		outcome_set(out, WORK_PERMANENT, "testcenter: target '%s' has no project",
			    a->target->name);
		return -1;
	}
	return tc_auth(c);
}

/* {base_url}{path}; a trailing slash of base_url is not doubled. */
int tc_url(struct tc *c, const char *path, char *buf, size_t len)
{
	const char *base = target_str(c->a->target, "base_url");
	size_t bl = base ? strlen(base) : 0;
	int n;

	while (bl && base[bl - 1] == '/')
		bl--;
	n = snprintf(buf, len, "%.*s%s", (int)bl, base ? base : "", path);
	if (!base || n < 0 || (size_t)n >= len) {
		outcome_set(c->out, WORK_PERMANENT, "testcenter: base_url is missing or too long");
		return -1;
	}
	return 0;
}

/* The rendered param, or NULL when missing or empty. */
const char *tc_param(struct tc *c, const char *key)
{
	const char *v = param_str(c->a->params, key);
	return v && *v ? v : NULL;
}

/* The suite name; a run whose title never reached us gets "Qase DEMO#42". */
const char *tc_suite(struct tc *c, char *buf, size_t len)
{
	const char *s = tc_param(c, "suite");

	if (s)
		return s;
	snprintf(buf, len, "Qase %s", c->ref);
	return buf;
}

int tc_is_type(const struct tc *c, const char *type)
{
	return tu_streq(c->type, type);
}

/* ---- the map ----------------------------------------------------------------- */

int tc_state_is(const struct tc *c, const char *state)
{
	return tu_streq(c->a->map.state, state);
}

/* Sets the state (unless NULL) and commits the map; -1 with out set (a retry). */
int tc_save(struct tc *c, const char *state)
{
	return target_map_state(c->a, c->out, state);
}

json_object *tc_data_get(json_object *o, const char *key)
{
	json_object *v = NULL;

	json_object_object_get_ex(o, key, &v);
	return v;
}

const char *tc_data_str(json_object *o, const char *key)
{
	json_object *v = tc_data_get(o, key);
	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* Tombstone: later events of the run are ignored. */
void tc_tombstone(struct tc *c, const char *what)
{
	if (tc_save(c, "deleted") == 0)
		outcome_set(c->out, WORK_OK, "run %s deleted in Qase: %s", c->ref, what);
}

/* ---- labels ------------------------------------------------------------------ */

static int label_has(json_object *arr, const char *key)
{
	size_t n = json_object_array_length(arr);

	for (size_t i = 0; i < n; i++)
		if (tu_streq(tc_data_str(json_object_array_get_idx(arr, i), "key"), key))
			return 1;
	return 0;
}

/* Test Center refuses newlines, commas and double quotes in labels, and a
 * key cannot hold the '=' of "key=value": those become spaces in values,
 * '_' in keys (so do other control characters). */
static json_object *label_text(const char *s, int is_key)
{
	char *copy = strdup(s);
	json_object *o;

	if (!copy)
		return NULL;
	for (char *p = copy; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == ',' || *p == '"' ||
		    (is_key && *p == '='))
			*p = is_key ? '_' : ' ';
	o = json_object_new_string(copy);
	free(copy);
	return o;
}

static void label_add(json_object *arr, const char *key, const char *value)
{
	json_object *l = json_object_new_object();

	json_object_object_add(l, "key", label_text(key, 1));
	json_object_object_add(l, "value", label_text(value, 0));
	json_object_array_add(arr, l);
}

/*
 * [{key, value}...]: qase.project, qase.run (and qase.event for imports:
 * one report per event), then the configured labels.  The qase.* keys
 * identify the report, so a configured label cannot replace them; a label
 * that rendered empty (a field the event lacks) is left out.
 */
json_object *tc_labels(struct tc *c, int with_event)
{
	json_object *arr = json_object_new_array(), *conf;
	char id[32];

	snprintf(id, sizeof(id), "%lld", c->run_id);
	label_add(arr, "qase.project", c->project);
	label_add(arr, "qase.run", id);
	if (with_event)
		label_add(arr, "qase.event", c->type);
	conf = tc_data_get(c->a->params, "labels");
	if (!json_object_is_type(conf, json_type_object))
		return arr;
	json_object_object_foreach(conf, k, v)
	{
		const char *s = json_object_get_string(v);
		if (!v || !s || !*s || label_has(arr, k))
			continue;
		if (json_object_array_length(arr) >= TC_LABELS_MAX)
			break;
		label_add(arr, k, s);
	}
	return arr;
}

/* ---- the event ------------------------------------------------------------- */

void tc_run_counts(struct tc *c, struct junit_run *r)
{
	json_object *ev = c->a->event;

	r->total = event_int(ev, "run.counts.total", -1);
	if (r->total < 0)
		r->total = event_int(ev, "run.cases_count", -1);
	r->passed = event_int(ev, "run.counts.passed", -1);
	r->failed = event_int(ev, "run.counts.failed", -1);
	r->blocked = event_int(ev, "run.counts.blocked", -1);
	r->skipped = event_int(ev, "run.counts.skipped", -1);
	r->untested = event_int(ev, "run.counts.untested", -1);
	r->duration_ms = event_int(ev, "run.duration_ms", -1);
	r->aborted = tc_is_type(c, "run.aborted");
}

/* The event's results object, or NULL when none were fetched (today's
 * counts-only behaviour). */
json_object *tc_results(struct tc *c)
{
	json_object *r = tc_data_get(c->a->event, "results");

	return c->a->results && json_object_is_type(r, json_type_object) ? r : NULL;
}

/* ---- entry ------------------------------------------------------------------- */

static void testcenter_attempt(struct target_attempt *a, struct target_outcome *out)
{
	struct tc c = { 0 };
	const char *mode;

	if (tc_init(&c, a, out) < 0)
		goto done;
	mode = target_str(a->target, "mode");
	if (tc_state_is(&c, "deleted"))
		outcome_set(out, WORK_OK, "run %s was deleted in Qase: %s ignored", c.ref, c.type);
	else if (mode && strcmp(mode, "reporting") == 0)
		tc_reporting(&c);
	else if (tc_is_type(&c, "run.deleted"))
		tc_tombstone(&c, "nothing to delete in Test Center");
	else if (tc_is_type(&c, "run.completed") || tc_is_type(&c, "run.aborted"))
		tc_import(&c);
	else
		outcome_set(out, WORK_OK, "import mode: uploaded at completion (%s)", c.type);
done:
	free(c.auth);
}

/* targets.testcenter.<name> */
static const struct action_key testcenter_keys[] = {
	{ "base_url", AK_URL, "http://localhost:8800", 0, NULL, "the Test Center server" },
	{ "token", AK_SECRET, NULL, 0, NULL, "API token (or user and password)" },
	{ "user", AK_STR, NULL, 0, NULL, "user name, with password" },
	{ "password", AK_SECRET, NULL, 0, NULL, "password, with user" },
	{ "project", AK_STR, NULL, AK_REQUIRED, NULL, "Test Center project" },
	{ "mode", AK_ENUM, "import", 0, "import|reporting", "upload at completion, or report live" },
	{ "batch", AK_TEMPLATE, "Qase {{project}}#{{run_id}}", AK_RELOAD, NULL, "the report's batch" },
	{ "suite", AK_TEMPLATE, "{{run.title}}", AK_RELOAD, NULL, "the JUnit suite name" },
	{ "labels", AK_MAP, NULL, AK_RELOAD, NULL, "label name -> template" },
	{ "blocked_event", AK_ENUM, "error", 0, "error|warning",
	  "reporting: a blocked result's event type" },
	TARGET_COMMON_KEYS,
	{ NULL, 0, NULL, 0, NULL, NULL },
};

/* Exactly one way to log in. */
static int testcenter_check(const struct target_cfg *t, const struct cfg_node *key,
			    struct errlist *errs)
{
	char where[300];
	json_object *s = t->settings;
	int token = json_object_object_get_ex(s, "token", NULL);
	int user = json_object_object_get_ex(s, "user", NULL);
	int pass = json_object_object_get_ex(s, "password", NULL);

	if (token == (user || pass) || user != pass)
		return errlist_add(errs,
				   "%s: targets.testcenter.%s: give either token, "
				   "or user and password",
				   cfg_where(key, where, sizeof(where)), t->name);
	return 0;
}

TARGET_KIND(testcenter, "report Qase runs to Test Center as JUnit", testcenter_check);
