/*
 * expand: ${VAR} in config values, from the environment.  Unset is empty;
 * "$$" is a literal '$'; an unterminated "${" is an error.
 *
 * Unset is empty, which for a secret (a webhook secret, a token, the Redis
 * password) quietly turns authentication off; so config_expand_info also
 * says which variables were unset, for the loader to warn with the key's
 * position.
 */
#include "core/expand.h"
#include "core/config.h"
#include "core/buf.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An expanded value longer than this is refused (a runaway variable). */
#define VALUE_MAX 65536

static int sbuf_add(struct buf *b, const char *s, size_t n, char *why, size_t len)
{
	int rc = buf_add(b, s, n);

	if (rc == ERR_TOOLARGE)
		snprintf(why, len, "value is longer than %d bytes once expanded", VALUE_MAX);
	else if (rc)
		snprintf(why, len, "out of memory");
	return rc ? -1 : 0;
}

static int var_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > 255 || isdigit((unsigned char)s[0]))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return 0;
	return 1;
}

static void note_unset(struct expand_info *info, const char *var)
{
	size_t used = strlen(info->unset), n = strlen(var);
	size_t need = n + (used ? 2 : 0);

	info->n_unset++;
	if (used + need >= sizeof(info->unset))
		return;
	if (used)
		memcpy(info->unset + used, ", ", 2);
	memcpy(info->unset + used + need - n, var, n + 1);
}

/* One "${NAME}" at p (p[0..1] == "${"); *p moves past it. */
static int expand_var(struct buf *b, const char *in, const char **p, struct expand_info *info,
		      char *why, size_t len)
{
	const char *name = *p + 2, *close = strchr(name, '}');
	char var[256];

	if (!close) {
		snprintf(why, len, "unterminated '${' at offset %zu of the value", (size_t)(*p - in));
		return -1;
	}
	size_t n = (size_t)(close - name);
	if (!var_name_ok(name, n)) {
		snprintf(why, len, "'${%.*s}' at offset %zu is not a variable name",
			 (int)(n > 64 ? 64 : n), name, (size_t)(*p - in));
		return -1;
	}
	memcpy(var, name, n);
	var[n] = '\0';
	const char *v = getenv(var);
	*p = close + 1;
	if (!v && info)
		note_unset(info, var);
	return v ? sbuf_add(b, v, strlen(v), why, len) : 0;
}

/* ${VAR} from the environment (unset = empty); "$$" is a literal '$'. */
int config_expand(const char *in, char **out, char *why, size_t len)
{
	return config_expand_info(in, out, NULL, why, len);
}

int config_expand_info(const char *in, char **out, struct expand_info *info, char *why, size_t len)
{
	struct buf b;
	const char *p = in;

	*out = NULL;
	if (info)
		memset(info, 0, sizeof(*info));
	/* VALUE_MAX itself is refused already */
	buf_init(&b, VALUE_MAX - 1);
	if (sbuf_add(&b, "", 0, why, len) < 0)
		return -1;
	while (*p) {
		size_t n = strcspn(p, "$");
		int rc = sbuf_add(&b, p, n, why, len);
		p += n;
		if (rc == 0 && *p == '$') {
			if (p[1] == '{') {
				rc = expand_var(&b, in, &p, info, why, len);
			} else {
				rc = sbuf_add(&b, "$", 1, why, len);
				p += p[1] == '$' ? 2 : 1;
			}
		}
		if (rc < 0) {
			buf_free(&b);
			return -1;
		}
	}
	*out = buf_detach(&b, NULL);
	return 0;
}
