/* cli: `runbridge --version` (also `runbridge version`). */
#include "cli/cli.h"
#include "build_info.h"

#include <stdio.h>
#include <civetweb.h>
#include <curl/curlver.h>
#include <hiredis/hiredis.h>
#include <json-c/json_c_version.h>
#include <nettle/version.h>
#include <sqlite3.h>
#include <yaml.h>

/* What this binary was built with: each library's header version, and
 * where the library can tell, the one loaded now. */
int cli_version(int argc, char **argv)
{
	(void)argc, (void)argv;
	printf("runbridge %s (commit %s)\n", RB_VERSION, RB_COMMIT);
	printf("civetweb %s (run time %s)\n", CIVETWEB_VERSION, mg_version());
	printf("json-c %s (run time %s)\n", JSON_C_VERSION, json_c_version());
	printf("hiredis %d.%d.%d\n", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
	printf("libyaml %s (run time %s)\n", RB_YAML_VERSION, yaml_get_version_string());
	printf("SQLite %s (run time %s)\n", SQLITE_VERSION, sqlite3_libversion());
	printf("nettle %d.%d (run time %d.%d)\n", NETTLE_VERSION_MAJOR, NETTLE_VERSION_MINOR,
	       nettle_version_major(), nettle_version_minor());
	printf("libcurl %s (header; libcurl.so.4 is loaded at the first request)\n", LIBCURL_VERSION);
	return 0;
}
