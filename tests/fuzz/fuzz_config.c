/*
 * fuzz_config: the configuration file, through libyaml, cfgtree and the
 * option table.  A config that loads is looked up the way the HTTP server
 * does; one that does not must say why (file:line:col messages).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "targets/target_cfg.h"

/* as the program wires it: targets: is read through the kinds' maps */
static const struct config_section *const sections[] = { &target_cfg_section, NULL };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct errlist errs = ERRLIST_INIT;
	struct config *cfg = NULL;
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (config_load_string(&cfg, "fuzz.yaml", text, sections, &errs) == 0) {
		if (!cfg || cfg->n_sources == 0 || !cfg->listen)
			abort();
		(void)config_source_by_path(cfg, cfg->sources[0].path);
		(void)config_source_by_path(cfg, "/webhooks/qase");
		config_free(cfg);
	} else if (cfg != NULL || errs.n == 0) {
		abort(); /* failure leaves no config and names a problem */
	}
	errlist_free(&errs);
	free(text);
	return 0;
}
