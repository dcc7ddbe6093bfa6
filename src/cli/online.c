/*
 * online: `runbridge check --online` (see online.h).  Each probe fills a
 * short success detail, or returns -1 with the reason in err; online_check
 * prints the line.  The requests are the most harmless ones each API has
 * that still need the credentials, so that "ok" means the key works, not
 * only that the host answers.
 */
#include "cli/online.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <hiredis/hiredis.h>
#include <nettle/base64.h>

#include "targets/outbound.h"
#include "targets/target.h"
#include "targets/target_util.h"
#include "core/config.h"
#include "core/err.h"
#include "core/redis_url.h"

/* ---- redis --------------------------------------------------------------- */

/* One command; an error reply or no reply fails with the command's name. */
static int redis_run(redisContext *c, const char *name, int argc, const char **argv, struct err *err)
{
	redisReply *r = redisCommandArgv(c, argc, argv, NULL);
	int rc = 0;

	if (!r)
		return err_set(err, "%s: %s", name, c->errstr[0] ? c->errstr : "no answer");
	if (r->type == REDIS_REPLY_ERROR)
		rc = err_set(err, "%s: %.200s%s", name, r->str,
			     strncmp(r->str, "NOAUTH", 6) == 0
				     ? " (the URL has no password: redis://:PASSWORD@host)"
				     : "");
	freeReplyObject(r);
	return rc;
}

static int redis_commands(redisContext *c, const struct config *cfg, char *ok, size_t len,
			  struct err *err)
{
	char db[16];
	const char *auth[] = { "AUTH", cfg->redis_password };
	const char *select[] = { "SELECT", db };
	const char *ping[] = { "PING" };
	int with_auth = cfg->redis_password && cfg->redis_password[0];

	snprintf(db, sizeof(db), "%d", cfg->redis_db);
	if ((with_auth && redis_run(c, "AUTH", 2, auth, err) < 0) ||
	    redis_run(c, "SELECT", 2, select, err) < 0 || redis_run(c, "PING", 1, ping, err) < 0)
		return -1;
	snprintf(ok, len, "%sSELECT %d, PING", with_auth ? "AUTH, " : "", cfg->redis_db);
	return 0;
}

static int redis_probe(const struct config *cfg, char *ok, size_t len, struct err *err)
{
	struct timeval tv = { ONLINE_TIMEOUT_MS / 1000, (ONLINE_TIMEOUT_MS % 1000) * 1000 };
	redisContext *c = redisConnectWithTimeout(cfg->redis_host, cfg->redis_port, tv);
	int rc;

	if (!c)
		return err_set(err, "out of memory");
	if (c->err) {
		rc = err_set(err, "connect: %s", c->errstr);
	} else if (redisSetTimeout(c, tv) != REDIS_OK) {
		rc = err_set(err, "cannot set a timeout: %s", c->errstr);
	} else {
		rc = redis_commands(c, cfg, ok, len, err);
	}
	redisFree(c);
	return rc;
}

/* ---- targets ------------------------------------------------------------- */

/* What a target's probe sends, and what to say when it is refused. */
struct probe {
	char *url;           /* malloc'd */
	char *auth;          /* "Authorization: ..." or NULL; malloc'd */
	char shown[420];     /* "GET /api/..." without secrets */
	const char *cred;    /* the settings a 401/403 points at */
	const char *hint404; /* what a 404 points at */
	const char *secret;  /* kept out of every message */
};

static int testomat_probe(const struct target_cfg *t, struct probe *p, struct err *err)
{
	const char *key = target_str(t, "api_key");
	char enc[1200], path[1400];

	if (!key || tu_pct_encode(key, enc, sizeof(enc)) < 0)
		return err_set(err, "api_key is missing or too long");
	snprintf(path, sizeof(path), "/api/test_grep?type=tag&id=runbridge-check&api_key=%s", enc);
	snprintf(p->shown, sizeof(p->shown), "GET /api/test_grep");
	p->url = tu_url(target_str(t, "base_url"), path);
	p->cred = "api_key";
	p->hint404 = "base_url";
	p->secret = key;
	return 0;
}

/* The API prefix, unless base_url already ends with it (as qasphere.c). */
static const char *qasphere_prefix(const char *base)
{
	static const char api[] = "/api/public/v0";
	size_t n = strlen(base);

	while (n && base[n - 1] == '/')
		n--;
	if (n >= sizeof(api) - 1 && strncmp(base + n - (sizeof(api) - 1), api, sizeof(api) - 1) == 0)
		return "";
	return api;
}

static int qasphere_probe(const struct target_cfg *t, struct probe *p, struct err *err)
{
	const char *base = target_str(t, "base_url"), *key = target_str(t, "api_key");
	const char *project = target_str(t, "project"), *scheme = target_str(t, "auth_scheme");
	char enc[300], path[400];

	if (!base || !key || !project || tu_pct_encode(project, enc, sizeof(enc)) < 0)
		return err_set(err, "base_url, api_key or project is missing or too long");
	snprintf(path, sizeof(path), "%s/project/%s/run?limit=1", qasphere_prefix(base), enc);
	snprintf(p->shown, sizeof(p->shown), "GET %s", path);
	if (asprintf(&p->auth, "Authorization: %s %s", scheme ? scheme : "Bearer", key) < 0) {
		p->auth = NULL;
		return err_set(err, "out of memory");
	}
	p->url = tu_url(base, path);
	p->cred = "api_key and auth_scheme";
	p->hint404 = "project";
	p->secret = key;
	return 0;
}

/* "Authorization: Token <t>", or Basic base64(user:password). */
static int testcenter_auth(const struct target_cfg *t, struct probe *p)
{
	const char *token = target_str(t, "token");
	const char *user = target_str(t, "user"), *pass = target_str(t, "password");
	char *plain = NULL;
	int n = 0;

	if (token) {
		p->cred = "token";
		p->secret = token;
		return asprintf(&p->auth, "Authorization: Token %s", token) < 0 ? -1 : 0;
	}
	p->cred = "user and password";
	p->secret = pass;
	if (!user || !pass || (n = asprintf(&plain, "%s:%s", user, pass)) < 0)
		return -1;
	p->auth = malloc(sizeof("Authorization: Basic ") + BASE64_ENCODE_RAW_LENGTH(n));
	if (p->auth) {
		char *b64 = stpcpy(p->auth, "Authorization: Basic ");
		base64_encode_raw(b64, (size_t)n, (const uint8_t *)plain);
		b64[BASE64_ENCODE_RAW_LENGTH(n)] = '\0';
	}
	explicit_bzero(plain, (size_t)n);
	free(plain);
	return p->auth ? 0 : -1;
}

static int testcenter_probe(const struct target_cfg *t, struct probe *p, struct err *err)
{
	const char *project = target_str(t, "project");
	char enc[300], path[400];

	if (!project || tu_pct_encode(project, enc, sizeof(enc)) < 0)
		return err_set(err, "project is missing or too long");
	if (testcenter_auth(t, p) < 0) {
		p->auth = NULL;
		return err_set(err, "no usable token, or user and password");
	}
	snprintf(path, sizeof(path), "/api/v1/batches?project0=%s", enc);
	snprintf(p->shown, sizeof(p->shown), "GET %s", path);
	p->url = tu_url(target_str(t, "base_url"), path);
	p->hint404 = "base_url: no Test Results API under /api/v1";
	return 0;
}

static const char *reason_of(long status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "";
	}
}

/* "401 Unauthorized (check api_key)", or the status and the start of the
 * body on one line, the secret blanked. */
static int refused(const struct probe *p, const struct outbound_resp *r, struct err *err)
{
	char body[121] = "";

	if (r->status == 401 || r->status == 403)
		return err_set(err, "%ld %s (check %s)", r->status, reason_of(r->status), p->cred);
	if (r->status == 404)
		return err_set(err, "404 Not Found (check %s)", p->hint404);
	snprintf(body, sizeof(body), "%s", r->body ? r->body : "");
	for (char *s = body; *s; s++)
		if ((unsigned char)*s < 0x20)
			*s = ' ';
	tu_redact(body, p->secret);
	return err_set(err, "%ld %s%s%s", r->status, reason_of(r->status), body[0] ? ": " : "", body);
}

static int target_send(const struct target_cfg *t, const struct probe *p, char *ok, size_t len,
		       struct err *err)
{
	const char *headers[] = { "Accept: application/json", p->auth, NULL };
	struct outbound_req req = {
		.method = "GET",
		.url = p->url,
		.headers = headers,
		.connect_timeout_ms = ONLINE_TIMEOUT_MS,
		.timeout_ms = ONLINE_TIMEOUT_MS,
		.insecure = !target_bool(t, "verify_tls", 1),
	};
	struct outbound_resp resp;
	struct outbound *o;
	int rc;

	if (outbound_new(&o, err) < 0)
		return -1;
	if (outbound_send(o, &req, &resp) < 0) {
		rc = err_set(err, "%s", resp.error);
	} else if (resp.status < 200 || resp.status > 299) {
		rc = refused(p, &resp, err);
	} else {
		snprintf(ok, len, "%s %ld", p->shown, resp.status);
		rc = 0;
	}
	outbound_resp_free(&resp);
	outbound_free(o);
	return rc;
}

static int target_probe(const struct target_cfg *t, char *ok, size_t len, struct err *err)
{
	struct probe p = { 0 };
	int rc;

	if (strcmp(t->kind, "testomat") == 0)
		rc = testomat_probe(t, &p, err);
	else if (strcmp(t->kind, "qasphere") == 0)
		rc = qasphere_probe(t, &p, err);
	else
		rc = testcenter_probe(t, &p, err);
	if (rc == 0 && !p.url)
		rc = err_set(err, "base_url is missing or too long");
	if (rc == 0)
		rc = target_send(t, &p, ok, len, err);
	free(p.url);
	free(p.auth);
	return rc;
}

/* ---- store --------------------------------------------------------------- */

/* The directory that must take files: data_dir, or the parent serve will
 * create it in (one level, as store_open does). */
static int store_dir(const char *data_dir, char *dir, size_t len, int *exists, struct err *err)
{
	struct stat st;
	const char *slash;
	size_t n = strlen(data_dir);

	if (stat(data_dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			return err_set(err, "not a directory");
		*exists = 1;
		snprintf(dir, len, "%s", data_dir);
		return 0;
	}
	if (errno != ENOENT)
		return err_set(err, "%s", strerror(errno));
	*exists = 0;
	while (n > 1 && data_dir[n - 1] == '/')
		n--;
	slash = memrchr(data_dir, '/', n);
	if (!slash)
		snprintf(dir, len, ".");
	else
		snprintf(dir, len, "%.*s", slash == data_dir ? 1 : (int)(slash - data_dir), data_dir);
	if (stat(dir, &st) < 0)
		return err_set(err, "does not exist, nor does %s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return err_set(err, "does not exist, and %s is not a directory", dir);
	return 0;
}

/* Creates and removes a file in dir: access(2) says yes to root whatever
 * the mode, and no mode bit tells a read-only mount. */
static int dir_writable(const char *dir, struct err *err)
{
	char path[4200];
	int fd;

	snprintf(path, sizeof(path), "%s/.runbridge-check-XXXXXX", dir);
	if ((fd = mkstemp(path)) < 0)
		return err_set(err, "not writable: %s", strerror(errno));
	close(fd);
	unlink(path);
	return 0;
}

static int store_probe(const char *data_dir, char *ok, size_t len, struct err *err)
{
	char dir[4096];
	struct statvfs vfs;
	int exists;

	if (store_dir(data_dir, dir, sizeof(dir), &exists, err) < 0 || dir_writable(dir, err) < 0)
		return -1;
	if (statvfs(dir, &vfs) < 0)
		return err_set(err, "cannot read free space: %s", strerror(errno));
	double mib = (double)vfs.f_bavail * (double)vfs.f_frsize / (1024.0 * 1024);
	/* %.256s: a long path is shortened in the message, not the check */
	snprintf(ok, len, "%s%.256s, %.1f %s free",
		 exists ? "writable" : "writable, serve creates it in ", exists ? "" : dir,
		 mib >= 1024 ? mib / 1024 : mib, mib >= 1024 ? "GiB" : "MiB");
	return 0;
}

/* ---- all of them --------------------------------------------------------- */

static int report(const char *what, int rc, const char *ok, const struct err *err)
{
	if (rc == 0)
		printf("%s: ok (%s)\n", what, ok);
	else
		printf("%s: FAILED: %s\n", what, err->msg);
	fflush(stdout);
	return rc;
}

int online_check(const struct config *cfg)
{
	char what[1200], url[600], ok[600];
	struct err err = { 0 };
	int bad = 0;

	snprintf(what, sizeof(what), "redis %s", redis_url_redact(cfg->redis_url, url, sizeof(url)));
	bad |= report(what, redis_probe(cfg, ok, sizeof(ok), &err), ok, &err);
	for (size_t i = 0; i < cfg->n_targets; i++) {
		const struct target_cfg *t = &cfg->targets[i];
		const char *base = target_str(t, "base_url");
		snprintf(what, sizeof(what), "target %s '%s' %s", t->kind, t->name,
			 base ? base : "-");
		bad |= report(what, target_probe(t, ok, sizeof(ok), &err), ok, &err);
	}
	snprintf(what, sizeof(what), "store %s", cfg->data_dir);
	bad |= report(what, store_probe(cfg->data_dir, ok, sizeof(ok), &err), ok, &err);
	return bad ? -1 : 0;
}
