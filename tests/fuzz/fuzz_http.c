/*
 * fuzz_http: request bytes in, framing decision out.  The bytes go through
 * civetweb 1.15's own head parser (cw115_parse.h), in a buffer the size the
 * daemon gives civetweb, then framing_check().  Whenever framing_check()
 * calls a head well framed, an independent reading of the raw bytes must
 * agree: every line ends in CRLF, civetweb parsed every header line (none
 * dropped), no line is folded, and Content-Length and Transfer-Encoding
 * give one reading.  A disagreement aborts: it is a way past the checks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/framing.h"
#include "cw115_parse.h"

#define MAX_HEADER 4096

/* Lines of raw[0, len): -1 if one does not end in CRLF or starts with
 * whitespace (a fold). */
static int crlf_lines(const char *raw, size_t len)
{
	int lines = 0;
	size_t start = 0;

	for (size_t i = 0; i < len; i++) {
		if (raw[i] != '\n')
			continue;
		if (i == 0 || raw[i - 1] != '\r')
			return -1;
		if (raw[start] == ' ' || raw[start] == '\t')
			return -1;
		lines++;
		start = i + 1;
	}
	return lines;
}

/* buf is civetweb's parsed copy of raw: the same bytes at the same offsets. */
static void agree(const char *raw, const char *buf, int head, const struct mg_request_info *ri)
{
	size_t off = (size_t)(ri->http_version + strlen(ri->http_version) - buf);
	int cl = 0, te = 0;

	if (ri->num_headers == 0)
		return; /* framing_begin_request closes after the answer */
	/* The one blind spot (docs/reliability.md): civetweb overwrites the two
	 * bytes after the version with NULs whatever whitespace they were, so
	 * "\r " or "\n " there reads as CRLF. */
	if (raw[off] != '\r' || raw[off + 1] != '\n')
		return;
	/* The second (docs/reliability.md): a last header line ending in a
	 * bare LF ("v\n\n") reads as CRLF when the body starts with CR NUL. */
	if (head >= 2 && raw[head - 2] == '\n' && raw[head - 1] == '\n' && raw[head] == '\r' &&
	    raw[head + 1] == '\0') /* raw is NUL-terminated: head + 1 <= size */
		return;
	if (crlf_lines(raw + off + 2, (size_t)head - off - 2) != ri->num_headers + 1)
		abort();
	for (int i = 0; i < ri->num_headers; i++) {
		const char *val = ri->http_headers[i].value;
		if (strcasecmp(ri->http_headers[i].name, "Content-Length") == 0) {
			cl++;
			if (strspn(val, "0123456789, \t") != strlen(val))
				abort();
		}
		te += strcasecmp(ri->http_headers[i].name, "Transfer-Encoding") == 0;
	}
	if ((cl && te) || te > 1)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* civetweb's buffer: framing_civetweb_buffer() bytes, data at its start */
	size_t cap = framing_civetweb_buffer(MAX_HEADER);
	struct mg_request_info ri;
	struct framing_verdict v;
	char *buf, *raw;
	int head;

	if (size > cap)
		return 0;
	buf = calloc(1, cap);
	raw = malloc(size + 1);
	if (!buf || !raw)
		goto done;
	memcpy(buf, data, size);
	memcpy(raw, data, size);
	raw[size] = '\0';
	head = cw115_parse(buf, (int)size, &ri);
	if (head <= 0)
		goto done; /* civetweb answers 400 itself, or waits for more */
	framing_check(&v, &ri, MAX_HEADER);
	if (v.status == 0)
		agree(raw, buf, head, &ri);
	else if (!v.reason || (v.status != 400 && v.status != 431 && v.status != 505))
		abort();
	(void)framing_path_is(&ri, "/webhooks/qase");
done:
	free(buf);
	free(raw);
	return 0;
}
