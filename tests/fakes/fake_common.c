/*
 * fake_common: the request pipeline, recording, replies, fault injection
 * and the control endpoints the three fakes share (see fake_common.h).
 */
#include "fake_common.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <civetweb.h>

double fake_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void fake_iso_now(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000L);
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 207: return "Multi-Status";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	default: return "Status";
	}
}

/* ---- replies ----------------------------------------------------------- */

int fake_reply(struct fake_req *r, int status, struct json_object *body)
{
	json_object_put(r->resp);
	r->status = status;
	r->resp = body;
	return 0;
}

int fake_error(struct fake_req *r, int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	struct json_object *o = json_object_new_object();
	if (r->f->kind->error_has_code)
		json_object_object_add(o, "code", json_object_new_int(status));
	json_object_object_add(o, "message", json_object_new_string(msg));
	return fake_reply(r, status, o);
}

void fake_header(struct fake_req *r, const char *name, const char *value)
{
	size_t used = strlen(r->extra);
	snprintf(r->extra + used, sizeof(r->extra) - used, "%s: %s\r\n", name, value);
}

static void send_reply(struct fake_req *r)
{
	const char *text = "";
	if (r->resp)
		text = json_object_to_json_string_ext(
			r->resp, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	size_t blen = strlen(text);
	size_t cap = blen + strlen(r->extra) + 256;
	char *buf = malloc(cap);
	if (!buf)
		return;
	char length[48] = ""; /* never on a 204 (RFC 9110 8.6) */
	if (r->status != 204)
		snprintf(length, sizeof(length), "Content-Length: %zu\r\n", blen);
	int n = snprintf(buf, cap,
			 "HTTP/1.1 %d %s\r\n"
			 "%s%s"
			 "Connection: close\r\n"
			 "%s\r\n%s",
			 r->status, reason(r->status),
			 r->resp ? "Content-Type: application/json\r\n" : "", length, r->extra, text);
	mg_write(r->conn, buf, (size_t)n);
	free(buf);
}

/* ---- request parsing --------------------------------------------------- */

const char *fake_hdr(const struct fake_req *r, const char *lower_name)
{
	struct json_object *v = fake_get(r->headers, lower_name);
	return v ? json_object_get_string(v) : NULL;
}

int fake_query(const struct fake_req *r, const char *name, char *out, size_t outlen)
{
	if (!r->query[0])
		return -1;
	int n = mg_get_var(r->query, strlen(r->query), name, out, outlen);
	return n < 0 ? -1 : n;
}

int fake_is_json_type(const struct fake_req *r)
{
	const char *ct = r->content_type;
	size_t n = strlen("application/json");
	return strncasecmp(ct, "application/json", n) == 0 &&
	       (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static int read_body(struct fake_req *r)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	if (!buf)
		return -1;
	for (;;) {
		if (cap - len < 2048) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return -1;
			}
			buf = nb;
			cap *= 2;
		}
		int n = mg_read(r->conn, buf + len, cap - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len > FAKE_MAX_BODY) {
			free(buf);
			return -1;
		}
	}
	buf[len] = '\0';
	r->body = buf;
	r->body_len = len;
	return 0;
}

static struct json_object *headers_json(const struct mg_request_info *ri)
{
	struct json_object *h = json_object_new_object();
	for (int i = 0; i < ri->num_headers; i++) {
		char name[128];
		size_t j;
		for (j = 0; ri->http_headers[i].name[j] && j < sizeof(name) - 1; j++)
			name[j] = (char)tolower((unsigned char)ri->http_headers[i].name[j]);
		name[j] = '\0';
		const char *val = ri->http_headers[i].value ? ri->http_headers[i].value : "";
		struct json_object *old = fake_get(h, name);
		if (old) {
			size_t cap = strlen(json_object_get_string(old)) + strlen(val) + 3;
			char *joined = malloc(cap);
			if (!joined)
				continue;
			snprintf(joined, cap, "%s, %s", json_object_get_string(old), val);
			json_object_object_add(h, name, json_object_new_string(joined));
			free(joined);
		} else {
			json_object_object_add(h, name, json_object_new_string(val));
		}
	}
	return h;
}

/* ---- recording --------------------------------------------------------- */

static void record(struct fake_req *r, const char *fault)
{
	struct fake *f = r->f;
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "ts", json_object_new_double(fake_now()));
	json_object_object_add(o, "method", json_object_new_string(r->method));
	json_object_object_add(o, "path", json_object_new_string(r->path));
	json_object_object_add(o, "query", json_object_new_string(r->query));
	json_object_object_add(o, "headers", json_object_get(r->headers));
	json_object_object_add(o, "body", r->json_ok ? json_object_get(r->json) : NULL);
	if (r->parts)
		json_object_object_add(o, "raw", fake_parts_json(r));
	else
		json_object_object_add(
			o, "raw",
			json_object_new_string_len(r->body ? r->body : "", (int)r->body_len));
	json_object_object_add(o, "status", r->status ? json_object_new_int(r->status) : NULL);
	if (fault)
		json_object_object_add(o, "fault", json_object_new_string(fault));
	const char *line = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								     JSON_C_TO_STRING_NOSLASHESCAPE);
	pthread_mutex_lock(&f->rec_lock);
	fputs(line, f->record);
	fputc('\n', f->record);
	fflush(f->record);
	f->recorded++;
	pthread_mutex_unlock(&f->rec_lock);
	json_object_put(o);
}

/* ---- faults ------------------------------------------------------------ */

static const char *const fault_names[] = { "ok", "429", "503", "500", "stall", "reset", "lost", NULL };

/* Finds this connection's socket: civetweb 1.15 exports no accessor, so
 * match the (local port, peer port) pair among our own descriptors. */
static int conn_fd(const struct mg_request_info *ri)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	int found = -1;
	struct dirent *e;
	while (found < 0 && (e = readdir(d)) != NULL) {
		char *endp;
		long fd = strtol(e->d_name, &endp, 10);
		if (*endp || endp == e->d_name || fd == dirfd(d))
			continue;
		struct stat st;
		struct sockaddr_in a;
		socklen_t alen = sizeof(a);
		if (fstat((int)fd, &st) != 0 || !S_ISSOCK(st.st_mode))
			continue;
		if (getsockname((int)fd, (struct sockaddr *)&a, &alen) != 0 ||
		    a.sin_family != AF_INET || ntohs(a.sin_port) != ri->server_port)
			continue;
		alen = sizeof(a);
		if (getpeername((int)fd, (struct sockaddr *)&a, &alen) == 0 &&
		    ntohs(a.sin_port) == ri->remote_port)
			found = (int)fd;
	}
	closedir(d);
	return found;
}

/* Drops the connection with a TCP RST and no response.  The descriptor is
 * replaced (dup2) by an unconnected socket so that civetweb's own close
 * later touches nothing of ours and no descriptor is closed twice. */
static void abort_connection(struct fake_req *r)
{
	const struct mg_request_info *ri = mg_get_request_info(r->conn);
	mg_disable_connection_keep_alive(r->conn);
	int fd = conn_fd(ri);
	if (fd < 0)
		return;
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	int dummy = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (dummy < 0) {
		shutdown(fd, SHUT_RDWR);
		return;
	}
	dup2(dummy, fd);
	close(dummy);
}

static void stall(struct fake *f)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	pthread_mutex_lock(&f->lock);
	double secs = f->stall_seconds;
	until.tv_sec += (time_t)secs;
	until.tv_nsec += (long)((secs - (double)(time_t)secs) * 1e9);
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (!f->stopping) {
		if (pthread_cond_timedwait(&f->wake, &f->lock, &until) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&f->lock);
}

void fake_shutdown(struct fake *f)
{
	pthread_mutex_lock(&f->lock);
	f->stopping = 1;
	pthread_cond_broadcast(&f->wake);
	pthread_mutex_unlock(&f->lock);
}

/* Takes one request's worth of the head of the fault queue. */
static int take_fault(struct fake *f, struct fault *out)
{
	int got = 0;
	pthread_mutex_lock(&f->lock);
	if (f->nfaults) {
		*out = f->faults[0];
		got = 1;
		if (--f->faults[0].count <= 0) {
			memmove(f->faults, f->faults + 1, (f->nfaults - 1) * sizeof(f->faults[0]));
			f->nfaults--;
		}
	}
	pthread_mutex_unlock(&f->lock);
	return got;
}

/* Answers r with the fault; returns 1 if the connection was dropped. */
static int apply_fault(struct fake_req *r, const struct fault *ft)
{
	char ra[16];
	snprintf(ra, sizeof(ra), "%d", ft->retry_after);
	switch (ft->mode) {
	case FAULT_429: fake_error(r, 429, "Too many requests, please try again later."); break;
	case FAULT_503: fake_error(r, 503, "Service Unavailable"); break;
	case FAULT_500: fake_error(r, 500, "Internal Server Error"); break;
	case FAULT_STALL:
		record(r, "stall");
		stall(r->f);
		abort_connection(r);
		return 1;
	case FAULT_RESET:
		record(r, "reset");
		abort_connection(r);
		return 1;
	case FAULT_OK:
	case FAULT_LOST: return 0;
	}
	if (ft->retry_after >= 0)
		fake_header(r, "Retry-After", ra);
	return 0;
}

/* ---- control endpoints ------------------------------------------------- */

static const char *const control_keys[] = { "mode", "count", "retry_after", "stall_seconds", NULL };

static int control_key_known(const struct fake *f, const char *key)
{
	if (fake_in(key, control_keys))
		return 1;
	return f->kind->settings && fake_in(key, f->kind->settings);
}

static int control_post(struct fake *f, struct fake_req *r)
{
	static const struct jfield spec[] = {
		{ "mode", JT_STR, 0 },
		{ "count", JT_NNINT, 0 },
		{ "retry_after", JT_NNINT, 0 },
		{ "stall_seconds", JT_NNNUM, 0 },
	};
	char err[256];
	struct json_object *b = r->json;
	if (!r->json_ok || !json_object_is_type(b, json_type_object))
		return fake_error(r, 400, "body must be a JSON object");
	json_object_object_foreach(b, key, val)
	{
		(void)val;
		if (!control_key_known(f, key))
			return fake_error(r, 400, "unknown control key %s", key);
	}
	if (fake_check(b, spec, sizeof(spec) / sizeof(spec[0]), err, sizeof(err)) < 0)
		return fake_error(r, 400, "%s", err);
	const char *mode = fake_has(b, "mode") ? json_object_get_string(fake_get(b, "mode")) : NULL;
	struct fault ft = { FAULT_OK, 1, -1 };
	if (mode && strcmp(mode, "clear") != 0) {
		int m;
		for (m = 0; fault_names[m] && strcmp(fault_names[m], mode) != 0; m++)
			;
		if (!fault_names[m])
			return fake_error(r, 400, "unknown mode %s", mode);
		ft.mode = (enum fault_mode)m;
	}
	if (fake_has(b, "count"))
		ft.count = json_object_get_int(fake_get(b, "count"));
	if (fake_has(b, "retry_after"))
		ft.retry_after = json_object_get_int(fake_get(b, "retry_after"));

	pthread_mutex_lock(&f->lock);
	const char *kerr = NULL;
	if (f->kind->control && f->kind->control(f, b, &kerr) < 0) {
		pthread_mutex_unlock(&f->lock);
		return fake_error(r, 400, "%s", kerr);
	}
	if (fake_has(b, "stall_seconds"))
		f->stall_seconds = json_object_get_double(fake_get(b, "stall_seconds"));
	if (mode && strcmp(mode, "clear") == 0) {
		f->nfaults = 0;
	} else if (mode && ft.count > 0) {
		if (f->nfaults == FAKE_MAX_FAULTS) {
			pthread_mutex_unlock(&f->lock);
			return fake_error(r, 400, "fault queue full");
		}
		f->faults[f->nfaults++] = ft;
	}
	size_t queued = f->nfaults;
	pthread_mutex_unlock(&f->lock);
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "queued", json_object_new_int((int)queued));
	return fake_reply(r, 200, o);
}

static int state_get(struct fake *f, struct fake_req *r)
{
	pthread_mutex_lock(&f->lock);
	struct json_object *o = f->kind->state(f);
	json_object_object_add(o, "kind", json_object_new_string(f->kind->name));
	struct json_object *q = json_object_new_array();
	for (size_t i = 0; i < f->nfaults; i++) {
		struct json_object *e = json_object_new_object();
		json_object_object_add(e, "mode",
				       json_object_new_string(fault_names[f->faults[i].mode]));
		json_object_object_add(e, "count", json_object_new_int(f->faults[i].count));
		json_object_object_add(e, "retry_after",
				       f->faults[i].retry_after >= 0
					       ? json_object_new_int(f->faults[i].retry_after)
					       : NULL);
		json_object_array_add(q, e);
	}
	json_object_object_add(o, "faults", q);
	json_object_object_add(o, "stall_seconds", json_object_new_double(f->stall_seconds));
	pthread_mutex_unlock(&f->lock);
	pthread_mutex_lock(&f->rec_lock);
	json_object_object_add(o, "recorded", json_object_new_int64(f->recorded));
	pthread_mutex_unlock(&f->rec_lock);
	return fake_reply(r, 200, o);
}

/* Returns 1 if r was a control request (answered, not recorded). */
static int control(struct fake *f, struct fake_req *r)
{
	if (strcmp(r->path, "/_control") == 0) {
		if (strcmp(r->method, "POST") == 0)
			control_post(f, r);
		else
			fake_error(r, 405, "use POST");
		return 1;
	}
	if (strcmp(r->path, "/_state") == 0) {
		if (strcmp(r->method, "GET") == 0)
			state_get(f, r);
		else
			fake_error(r, 405, "use GET");
		return 1;
	}
	return 0;
}

/* ---- the pipeline ------------------------------------------------------ */

/* An API request: a queued fault, or the kind's handler; recorded either
 * way.  Returns 1 if the connection was dropped without a reply. */
static int api_request(struct fake *f, struct fake_req *r)
{
	struct fault ft = { .mode = FAULT_OK };
	r->multipart_ok = fake_parse_multipart(r) == 0;
	int got = take_fault(f, &ft);
	if (got && ft.mode == FAULT_LOST) {
		pthread_mutex_lock(&f->lock);
		f->kind->handle(f, r);
		pthread_mutex_unlock(&f->lock);
		record(r, "lost");
		abort_connection(r);
		return 1;
	}
	if (got && ft.mode != FAULT_OK) {
		if (apply_fault(r, &ft))
			return 1;
		record(r, fault_names[ft.mode]);
		return 0;
	}
	pthread_mutex_lock(&f->lock);
	f->kind->handle(f, r);
	pthread_mutex_unlock(&f->lock);
	record(r, NULL);
	return 0;
}

int fake_begin_request(struct mg_connection *conn)
{
	struct fake *f = mg_get_user_data(mg_get_context(conn));
	const struct mg_request_info *ri = mg_get_request_info(conn);
	struct fake_req r;
	memset(&r, 0, sizeof(r));
	r.f = f;
	r.conn = conn;
	r.method = ri->request_method;
	r.path = ri->local_uri ? ri->local_uri : "/";
	r.query = ri->query_string ? ri->query_string : "";
	r.headers = headers_json(ri);
	const char *ct = mg_get_header(conn, "Content-Type");
	r.content_type = ct ? ct : "";
	int dropped = 0;

	if (read_body(&r) < 0) {
		fake_error(&r, 413, "request body too large");
		record(&r, NULL);
	} else {
		r.json = fake_parse_json(r.body, r.body_len, &r.json_ok);
		if (!control(f, &r))
			dropped = api_request(f, &r);
	}
	if (!dropped)
		send_reply(&r);
	int status = r.status ? r.status : 1;
	json_object_put(r.resp);
	json_object_put(r.json);
	json_object_put(r.headers);
	free(r.parts);
	free(r.body);
	return status;
}
