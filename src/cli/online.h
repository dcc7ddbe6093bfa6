/*
 * online: what `runbridge check --online` adds to the offline checks.  It
 * reaches everything the configuration names, with calls that change
 * nothing, and prints one line for each on stdout:
 *
 *   redis redis://127.0.0.1:6379/0: ok (AUTH, SELECT 0, PING)
 *   target qasphere 'main' https://acme.eu1.qasphere.com: FAILED: 401 Unauthorized (check api_key)
 *   store var: ok (writable, 12.3 GiB free)
 *
 *   redis    AUTH (only when the URL has a password), SELECT db, PING
 *   target   one GET that needs the target's credentials:
 *              testomat    /api/test_grep?type=tag&id=runbridge-check&api_key=KEY
 *              qasphere    /api/public/v0/project/{project}/run?limit=1
 *              testcenter  /api/v1/batches?project0={project}
 *   store    data_dir takes a new file (made and removed at once); when it
 *            does not exist yet, its parent, where serve creates it; the
 *            free space of that file system
 *
 * Every check gives up after ONLINE_TIMEOUT_MS (connect and answer), so an
 * address that does not answer costs seconds, not minutes.  No line holds a
 * secret: Redis URLs are redacted, target lines show only base_url.
 */
#ifndef RB_CLI_ONLINE_H
#define RB_CLI_ONLINE_H

#define ONLINE_TIMEOUT_MS 5000

struct config;

/* Runs every check, each printing its line.  Returns 0 when all answered
 * as they should, -1 when any failed (its line gives the reason). */
int online_check(const struct config *cfg);

#endif
