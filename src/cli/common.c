/* cli: option parsing and config/rules loading shared by the commands. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "targets/action_target.h"
#include "targets/target_cfg.h"
#include "core/config.h"
#include "rules/rules.h"

/* The sections other modules own. */
static const struct config_section *const sections[] = { &target_cfg_section, NULL };

int cli_parse(int argc, char **argv, const char *usage, int allow_positional, int allow_id_dead,
	      struct cli_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->config = getenv("RUNBRIDGE_CONFIG");
	if (!o->config || !*o->config)
		o->config = "config/runbridge.yaml";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage, stdout);
			o->help = 1;
			return 0;
		} else if ((!strcmp(a, "-c") || !strcmp(a, "--config")) && i + 1 < argc) {
			o->config = argv[++i];
		} else if (allow_id_dead && !strcmp(a, "--dead")) {
			o->dead = 1;
		} else if (allow_id_dead && !strcmp(a, "--id") && i + 1 < argc) {
			o->id = argv[++i];
		} else if (allow_id_dead == 2 && !strcmp(a, "--run") && i + 1 < argc) {
			o->run = argv[++i];
		} else if (allow_positional && !strcmp(a, "--show-secrets")) {
			o->show_secrets = 1;
		} else if (allow_positional && a[0] != '-' && !o->positional) {
			o->positional = a;
		} else {
			fprintf(stderr, "runbridge: unexpected argument '%s'\n\n%s", a, usage);
			return 2;
		}
	}
	if (allow_positional && !o->positional) {
		fprintf(stderr, "runbridge: missing argument\n\n%s", usage);
		return 2;
	}
	return 0;
}

/*
 * A relative rules path is relative to the working directory; when nothing
 * is there but the config file's own directory has it, that is what the
 * author meant (a config kept next to its rules, started from elsewhere).
 */
static void rules_beside_config(struct config *cfg, const char *config_path)
{
	const char *slash = strrchr(config_path, '/');
	char *alt = NULL;
	struct stat st;

	if (cfg->rules_path[0] == '/' || !slash || stat(cfg->rules_path, &st) == 0)
		return;
	if (asprintf(&alt, "%.*s/%s", (int)(slash - config_path), config_path, cfg->rules_path) < 0)
		return;
	if (stat(alt, &st) == 0) {
		free(cfg->rules_path);
		cfg->rules_path = alt;
	} else {
		free(alt);
	}
}

int cli_load(const char *path, struct config **cfg, struct rules **rules)
{
	struct errlist errs = ERRLIST_INIT;

	*cfg = NULL;
	if (rules)
		*rules = NULL;
	if (config_load(cfg, path, sections, &errs) < 0)
		goto fail;
	rules_beside_config(*cfg, path);
	action_set_config(*cfg);
	if (rules && rules_load(rules, (*cfg)->rules_path, &errs) < 0)
		goto fail;
	/* printed like the errors, by every command that loads them */
	for (size_t i = 0; i < (*cfg)->warnings.n; i++)
		fprintf(stderr, "%s\n", (*cfg)->warnings.msgs[i]);
	for (size_t i = 0; rules && i < rules_warnings(*rules)->n; i++)
		fprintf(stderr, "%s\n", rules_warnings(*rules)->msgs[i]);
	return 0;
fail:
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.msgs[i]);
	if (!errs.n)
		fprintf(stderr, "%s: cannot be loaded\n", path);
	errlist_free(&errs);
	config_free(*cfg);
	*cfg = NULL;
	return 1;
}
