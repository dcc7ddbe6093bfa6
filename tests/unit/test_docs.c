/* docs: config/runbridge.yaml (which shows every key, commented out where
 * it has no default) and the man page's CONFIGURATION reference name
 * exactly the keys of the option tables (core/config.c) and of the kinds'
 * config maps (targets.<kind>.<name>.<key>): a key documented but unknown,
 * or known but undocumented, fails here. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions/action.h"
#include "core/config.h"

#define KEYS_MAX 512

struct keys {
	char *v[KEYS_MAX];
	size_t n;
};

static int has(const struct keys *k, const char *s)
{
	for (size_t i = 0; i < k->n; i++)
		if (strcmp(k->v[i], s) == 0)
			return 1;
	return 0;
}

static void add(struct keys *k, const char *s)
{
	if (has(k, s))
		return;
	assert_true(k->n < KEYS_MAX);
	k->v[k->n++] = strdup(s);
}

static void keys_free(struct keys *k)
{
	for (size_t i = 0; i < k->n; i++)
		free(k->v[i]);
	k->n = 0;
}

static void add_option(void *ctx, const char *key, const char *def, const char *desc)
{
	(void)def;
	/* every key is described, in one line */
	assert_non_null(desc);
	assert_true(strlen(desc) > 10);
	assert_null(strchr(desc, '\n'));
	add(ctx, key);
}

/* What the tables know. */
static void known_keys(struct keys *k)
{
	char name[256];

	config_keys_each(add_option, k);
	for (size_t i = 0; i < action_count(); i++) {
		const struct action_ops *ops = action_at(i);
		for (const struct action_key *s = ops->settings; s && s->name; s++) {
			snprintf(name, sizeof(name), "targets.%s.*.%s", ops->name, s->name);
			add(k, name);
		}
	}
}

/* sources.qase.path -> sources.*.path; targets.testomat.main.x ->
 * targets.testomat.*.x: the names a user chooses become '*'. */
static void generalize(const char *path, char *out, size_t len)
{
	char copy[256], *part[8], *save = NULL;
	size_t n = 0;

	snprintf(copy, sizeof(copy), "%.255s", path);
	for (char *p = strtok_r(copy, ".", &save); p && n < 8; p = strtok_r(NULL, ".", &save))
		part[n++] = p;
	if (n >= 2 && strcmp(part[0], "sources") == 0)
		part[1] = "*";
	if (n >= 3 && strcmp(part[0], "targets") == 0)
		part[2] = "*";
	out[0] = '\0';
	for (size_t i = 0, o = 0; i < n && o < len; i++)
		o += (size_t)snprintf(out + o, len - o, "%s%s", i ? "." : "", part[i]);
}

static char *slurp(const char *rel)
{
	char path[512];
	FILE *f;
	long n;
	char *s;

	snprintf(path, sizeof(path), "%s/%s", RB_SOURCE_DIR, rel);
	assert_non_null(f = fopen(path, "r"));
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	assert_non_null(s = calloc(1, (size_t)n + 1));
	assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return s;
}

/*
 * The keys of the sample config, commented ones too: "  # key: v" is a key
 * whose indentation is that of its "#" line's key minus the "# ".  Only
 * leaves count (a section is a key with keys under it).
 */
static void yaml_keys(struct keys *out)
{
	char *text = slurp("config/runbridge.yaml"), *save = NULL;
	char paths[KEYS_MAX][256];
	int indent[KEYS_MAX];
	size_t n = 0, depth = 0;
	char stack[8][64];
	int stack_indent[8];
	regex_t re;
	regmatch_t m[4];

	assert_int_equal(regcomp(&re, "^( *)(# *)?([a-z_][a-z0-9_]*):( |$)", REG_EXTENDED), 0);
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (regexec(&re, line, 4, m, 0) != 0)
			continue;
		int ind = (int)(m[3].rm_so - (m[2].rm_so >= 0 ? 2 : 0));
		while (depth && stack_indent[depth - 1] >= ind)
			depth--;
		assert_true(depth < 8 && n < KEYS_MAX);
		snprintf(stack[depth], sizeof(stack[depth]), "%.*s", (int)(m[3].rm_eo - m[3].rm_so),
			 line + m[3].rm_so);
		stack_indent[depth++] = ind;
		paths[n][0] = '\0';
		for (size_t i = 0, o = 0; i < depth; i++)
			o += (size_t)snprintf(paths[n] + o, sizeof(paths[n]) - o, "%s%s",
					      i ? "." : "", stack[i]);
		indent[n++] = ind;
	}
	for (size_t i = 0; i < n; i++) {
		char g[256];
		if (i + 1 < n && indent[i + 1] > indent[i])
			continue; /* a section */
		generalize(paths[i], g, sizeof(g));
		add(out, g);
	}
	regfree(&re);
	free(text);
}

/* A man page text line without requests, quoted parts and font escapes. */
static void man_words(const char *line, char *out, size_t len)
{
	size_t o = 0;
	int quoted = 0;

	while (*line && *line != ' ')
		line++; /* the request (.B, .BR, .BI) */
	for (; *line && o + 1 < len; line++) {
		if (*line == '"') {
			quoted = !quoted;
			out[o++] = ' ';
		} else if (quoted) {
			continue;
		} else if (line[0] == '\\' && line[1] == 'f' && line[2]) {
			line += 2;
		} else {
			out[o++] = *line;
		}
	}
	out[o] = '\0';
}

static int is_key(const char *w)
{
	if (!islower((unsigned char)w[0]))
		return 0;
	for (const char *p = w; *p; p++)
		if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_' &&
		    *p != '.')
			return 0;
	return w[strlen(w) - 1] != '.';
}

/*
 * The CONFIGURATION section's keys: the first line after each .TP names
 * one or more keys (defaults in quotes).  A line ".BI prefix. NAME" opens a
 * family whose .RS ... .RE block lists keys under prefix.*.
 */
static void man_keys(struct keys *out)
{
	char *text = slurp("packaging/runbridge.8"), *save = NULL;
	char words[512], prefix[128] = "", family[128] = "", g[256];
	int in_section = 0, after_tp = 0, in_block = 0;

	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, ".SH", 3) == 0) {
			in_section = strstr(line, "CONFIGURATION") != NULL;
			continue;
		}
		if (!in_section)
			continue;
		if (strcmp(line, ".RS") == 0) {
			in_block = 1;
			snprintf(prefix, sizeof(prefix), "%s", family);
			continue;
		}
		if (strcmp(line, ".RE") == 0) {
			in_block = 0;
			prefix[0] = '\0';
			continue;
		}
		if (strcmp(line, ".TP") == 0) {
			after_tp = 1;
			continue;
		}
		if (!after_tp)
			continue;
		after_tp = 0;
		man_words(line, words, sizeof(words));
		char *wsave = NULL, *first = strtok_r(words, " ,", &wsave);
		char *second = first ? strtok_r(NULL, " ,", &wsave) : NULL;
		if (first && second && strcmp(second, "NAME") == 0 && !in_block) {
			snprintf(family, sizeof(family), "%s*.", first);
			continue; /* "sources. NAME": a family heading */
		}
		family[0] = '\0';
		for (char *w = first; w; w = w == first ? second : strtok_r(NULL, " ,", &wsave)) {
			if (!is_key(w) || strcmp(w, "targets") == 0)
				continue;
			snprintf(g, sizeof(g), "%s%s", in_block ? prefix : "", w);
			add(out, g);
			if (w == first && !second)
				break;
		}
	}
	free(text);
}

static void compare(const char *doc, struct keys *documented)
{
	struct keys known = { 0 };
	char report[8192] = "";
	size_t o = 0;

	known_keys(&known);
	for (size_t i = 0; i < documented->n; i++)
		if (!has(&known, documented->v[i]) && o < sizeof(report))
			o += (size_t)snprintf(report + o, sizeof(report) - o,
					      "\n  %s documents '%s', which no table knows", doc,
					      documented->v[i]);
	for (size_t i = 0; i < known.n; i++)
		if (!has(documented, known.v[i]) && o < sizeof(report))
			o += (size_t)snprintf(report + o, sizeof(report) - o,
					      "\n  %s does not document '%s'", doc, known.v[i]);
	keys_free(&known);
	keys_free(documented);
	if (o)
		fail_msg("%s", report);
}

static void test_docs__sample_config_lists_exactly_the_known_keys(void **state)
{
	struct keys k = { 0 };

	(void)state;
	yaml_keys(&k);
	compare("config/runbridge.yaml", &k);
}

static void test_docs__man_page_lists_exactly_the_known_keys(void **state)
{
	struct keys k = { 0 };

	(void)state;
	man_keys(&k);
	compare("packaging/runbridge.8", &k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_docs__sample_config_lists_exactly_the_known_keys),
		cmocka_unit_test(test_docs__man_page_lists_exactly_the_known_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
