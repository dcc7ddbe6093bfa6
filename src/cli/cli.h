/*
 * cli: the runbridge sub-commands.  Each takes the arguments after its
 * name and returns the process exit status: 0 success, 1 failure (with a
 * message on stderr), 2 bad usage.
 *
 *   runbridge serve  -c FILE
 *   runbridge check  -c FILE
 *   runbridge route  -c FILE DELIVERY.json
 *   runbridge replay -c FILE [--dead] [--id ID]
 *   runbridge status -c FILE [--dead]
 */
#ifndef RB_CLI_CLI_H
#define RB_CLI_CLI_H

#include <stddef.h>

int cli_serve(int argc, char **argv);
int cli_check(int argc, char **argv);
int cli_route(int argc, char **argv);
int cli_replay(int argc, char **argv);
int cli_status(int argc, char **argv);

/* Shared by the commands: -c FILE and --help handling. */
struct cli_opts {
	const char *config;     /* -c / --config, default config/runbridge.yaml */
	const char *id;         /* --id */
	const char *run;        /* --run PROJECT#ID (status) */
	int dead;               /* --dead */
	int show_secrets;       /* --show-secrets (route) */
	const char *positional; /* the one positional argument, if allowed */
	int help;
};

/* Parses argv; prints usage on error.  Returns 0, or 2 for bad usage. */
int cli_parse(int argc, char **argv, const char *usage, int allow_positional, int allow_id_dead,
	      struct cli_opts *o);

struct config;
struct rules;

/* Loads and validates the config and the rules, printing every error as
 * "file:line:col: message" on stderr.  Returns 0 or 1. */
int cli_load(const char *path, struct config **cfg, struct rules **rules);

/*
 * What `runbridge route` prints for delivery body (len bytes): the
 * normalized event, the matching rules and each rendered action, as JSON
 * (pretty or one line), into *out (malloc'd).  Runs and stores nothing.
 * -1 with err set; err->code ERR_INVALID when the delivery itself is
 * refused (what the endpoint answers 400 to).  Also POST /api/v1/route.
 */
struct err;
int cli_route_report(char **out, const struct config *cfg, const struct rules *rules,
		     const char *body, size_t len, int show_secrets, int pretty, struct err *err);

/* An http action's params with what is secret in them masked (query
 * values, chat webhook paths, credential headers).  New object. */
struct json_object;
struct json_object *cli_http_masked(struct json_object *params);

/* runbridge tail -c FILE STREAM [--group G --consumer C] [--json] [--count N]
 *                [--from-start]: follows a stream (src/cli/tail.c). */
int cli_tail(int argc, char **argv);

/* runbridge --version: the version, the commit and the libraries it was
 * built with (src/cli/version.c). */
int cli_version(int argc, char **argv);

#endif
