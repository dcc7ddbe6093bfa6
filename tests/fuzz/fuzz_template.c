/*
 * fuzz_template: "{{path}}" templates rendered against arbitrary events.
 *
 * Input: TEMPLATE NUL EVENT-JSON.  Without a NUL the whole input is the
 * template and a fixed event is used; an event that is not JSON is replaced
 * by the fixed one too.  The event is parsed without UTF-8 validation, so
 * values can hold bytes that are not UTF-8, as well as NULs (\u0000).
 *
 * Each template that compiles is rendered in every escape mode, uncapped
 * and with a small cap, and the output is checked against the contract:
 * never longer than the cap, and, in JSON mode when the template's own
 * text is plain, always a valid JSON string body, even when truncated.
 * Sections ({{#x}} {{^x}} {{/x}}) repeat parts: rendering must still end
 * (the step budget) and stay within the cap.
 *
 * The same text compiled as a URL (tmpl_compile_url) must render with its
 * text before the first placeholder unchanged (the scheme and host are
 * literal), and, when its literal text is plain URL text, with nothing but
 * that text and %XX escapes.  Its load-time probes (tmpl_probe) must map
 * every byte back to the source.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "rules/template.h"

static const char fixed_text[] = "{\"type\":\"run.completed\",\"project\":\"DEMO\",\"run_id\":42,"
				 "\"run\":{\"title\":\"a \\\"b\\\"\\n\\u0000c \\u00e9\\ud83d\\ude00\","
				 "\"counts\":{\"failed\":3,\"passed\":10},\"duration_ms\":1.5e300,"
				 "\"public\":true,\"plan\":null},\"tags\":[\"x\",1,{\"y\":null}],"
				 "\"big\":18446744073709551615}";

static json_object *fixed;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (!(fixed = json_tokener_parse(fixed_text)))
		abort();
	return 0;
}

/* The event part, or NULL when it is not one JSON value. */
static json_object *parse_event(const char *s, size_t len)
{
	json_tokener *tok = json_tokener_new_ex(32);
	json_object *o;

	if (!tok)
		abort();
	o = json_tokener_parse_ex(tok, s, (int)len);
	if (json_tokener_get_error(tok) == json_tokener_continue)
		o = json_tokener_parse_ex(tok, "", 1);
	json_tokener_free(tok);
	return o;
}

/* 1 when s, put between quotes, is one valid JSON string (strict, UTF-8). */
static int json_string_body(const char *s)
{
	json_tokener *tok;
	json_object *o;
	size_t n = strlen(s);
	char *quoted = malloc(n + 3);
	int ok;

	if (!quoted)
		abort();
	quoted[0] = '"';
	memcpy(quoted + 1, s, n);
	quoted[n + 1] = '"';
	quoted[n + 2] = '\0';
	if (!(tok = json_tokener_new()))
		abort();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, quoted, (int)(n + 2));
	ok = json_object_is_type(o, json_type_string) &&
	     json_tokener_get_error(tok) == json_tokener_success;
	json_object_put(o);
	json_tokener_free(tok);
	free(quoted);
	return ok;
}

/* 1 when s is well-formed UTF-8 (no overlongs, surrogates or code points
 * past U+10FFFF): what libyaml lets into a rule file, and what JSON-mode
 * output must be.  json-c's own check is laxer. */
static int utf8_strict(const unsigned char *s)
{
	while (*s) {
		unsigned char c = *s, lo = 0x80, hi = 0xBF;
		size_t n;

		if (c < 0x80) {
			s++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
			n = 1;
		else if (c >= 0xE0 && c <= 0xEF)
			n = 2;
		else if (c >= 0xF0 && c <= 0xF4)
			n = 3;
		else
			return 0;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
		else if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
		if (s[1] < lo || s[1] > hi)
			return 0;
		for (size_t k = 2; k <= n; k++)
			if ((s[k] & 0xC0) != 0x80)
				return 0;
		s += n + 1;
	}
	return 1;
}

/* The template's own text has no quote, backslash or control byte and is
 * UTF-8: then its JSON-mode output must be a valid string body. */
static int plain_text(const char *s)
{
	for (const char *p = s; *p; p++)
		if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
			return 0;
	return utf8_strict((const unsigned char *)s);
}

static void render(const struct tmpl *t, json_object *ev, enum tmpl_escape esc, size_t cap, int plain)
{
	char *out = tmpl_render(t, ev, esc, cap);
	size_t n;

	if (!out)
		abort(); /* only out of memory may fail */
	n = strlen(out);
	if (cap && n > cap)
		abort();
	if (esc == TMPL_JSON && plain &&
	    (!utf8_strict((const unsigned char *)out) || !json_string_body(out)))
		abort();
	free(out);
}

/* Literal text of a URL template that percent-encoding must not break. */
static int plain_url_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       strchr("-._~:/?#[]@!$&'()*+,;={} ", c);
}

static int hex_upper(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

/* src (placeholders and all) is plain URL text without '%'. */
static int plain_url_text(const char *src)
{
	for (const char *p = src; *p; p++)
		if (!plain_url_char((unsigned char)*p))
			return 0;
	return 1;
}

static void render_url(const char *src, json_object *ev, size_t cap)
{
	struct tmpl *t = NULL;
	struct err err = { 0 };
	const char *first = strstr(src, "{{");
	size_t lit = first ? (size_t)(first - src) : strlen(src), n;
	char *out;

	if (tmpl_compile_url(&t, src, &err) < 0) {
		if (t != NULL || err.msg[0] == '\0')
			abort();
		return;
	}
	if (!(out = tmpl_render(t, ev, TMPL_URL, cap)))
		abort();
	n = strlen(out);
	if ((cap && n > cap) || memcmp(out, src, n < lit ? n : lit) != 0)
		abort();
	/* with no '%' of its own, every '%' is an escape the values made */
	if (plain_url_text(src))
		for (size_t i = 0; i < n; i++)
			if (out[i] == '%' ? !hex_upper((unsigned char)out[i + 1]) ||
						    !hex_upper((unsigned char)out[i + 2])
					  : !plain_url_char((unsigned char)out[i]))
				abort();
	free(out);
	tmpl_free(t);
}

/* Every probe byte is its source byte, or an "x" standing for a "{{". */
static void probe(const struct tmpl *t, const char *src)
{
	size_t len = strlen(src);

	for (unsigned reps = 0; reps < 3; reps++) {
		struct err err = { 0 };
		char *out;
		size_t *map, n;

		if (tmpl_probe(t, reps, (int)(reps & 1), &out, &map, &err) < 0) {
			if (err.msg[0] == '\0')
				abort();
			continue;
		}
		n = strlen(out);
		for (size_t i = 0; i < n; i++)
			if (map[i] >= len || (out[i] != src[map[i]] &&
					      (out[i] != 'x' || memcmp(src + map[i], "{{", 2) != 0)))
				abort();
		if (map[n] != len)
			abort();
		free(out);
		free(map);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nul = memchr(data, '\0', size);
	size_t tlen = nul ? (size_t)(nul - (const char *)data) : size;
	json_object *ev = NULL;
	struct tmpl *t = NULL;
	struct err err = { 0 };
	char *src = malloc(tlen + 1);
	int plain;

	if (!src)
		return 0;
	memcpy(src, data, tlen);
	src[tlen] = '\0';
	if (nul)
		ev = parse_event(nul + 1, size - tlen - 1);
	if (tmpl_compile(&t, src, &err) == 0) {
		json_object *use = ev ? ev : fixed;
		size_t cap = 1 + size % 61;

		if (strcmp(tmpl_source(t), src) != 0)
			abort();
		plain = plain_text(src);
		render(t, use, TMPL_RAW, 0, plain);
		render(t, use, TMPL_JSON, 0, plain);
		render(t, use, TMPL_RAW, cap, plain);
		render(t, use, TMPL_JSON, cap, plain);
		render(t, use, TMPL_URL, cap, 0);
		probe(t, src);
		tmpl_free(t);
		render_url(src, use, 0);
		render_url(src, use, cap);
	} else if (t != NULL || err.msg[0] == '\0') {
		abort();
	}
	json_object_put(ev);
	free(src);
	return 0;
}
