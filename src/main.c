/*
 * runbridge: Qase test-run webhooks in, Redis streams and hooks out.
 * main only picks the sub-command; each lives in src/cli/.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const char usage[] = "usage: runbridge COMMAND -c FILE [options]\n"
			    "\n"
			    "commands:\n"
			    "  serve    run the daemon\n"
			    "  check    validate the config and every rule\n"
			    "  route    show what a delivery would do (dry run)\n"
			    "  replay   re-queue dead or chosen actions\n"
			    "  status   count pending, retrying and dead actions\n"
			    "  tail     follow a Redis stream of events\n"
			    "  version  the version, commit and libraries (also --version)\n"
			    "\n"
			    "runbridge COMMAND --help shows a command's options.\n";

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{ "serve", cli_serve },     { "check", cli_check },       { "route", cli_route },
		{ "replay", cli_replay },   { "status", cli_status },     { "tail", cli_tail },
		{ "version", cli_version }, { "--version", cli_version },
	};

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "runbridge: unknown command '%s'\n\n%s", argv[1], usage);
	return 2;
}
