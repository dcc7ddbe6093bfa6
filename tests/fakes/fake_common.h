/*
 * fake_common: the parts every fake target shares.
 *
 * One process serves one API kind (testomat, qasphere, testcenter) on
 * 127.0.0.1.  The common layer owns the request pipeline:
 *
 *   read body -> control endpoints (/_control, /_state; never recorded)
 *             -> injected fault (429/503/500/stall/reset), if one is queued
 *             -> kind handler (under the state lock; only fills in the reply)
 *             -> record one JSON line -> write the reply
 *
 * The record line is written and flushed before the reply is sent, so a
 * client that has its answer can read the record file and find the request.
 *
 * POST /_control {"mode", "count", "retry_after", "stall_seconds", kind
 * settings...} appends {mode, count} to a FIFO of faults consumed one per
 * API request: "ok" (normal handling), "429", "503", "500" (error reply,
 * Retry-After if retry_after is given), "stall" (no reply until
 * stall_seconds, default 30, or shutdown, then a reset), "reset" (TCP RST,
 * no reply); "clear" empties the FIFO.  GET /_state shows the kind's state,
 * the FIFO and the number of recorded requests.
 */
#ifndef FAKE_COMMON_H
#define FAKE_COMMON_H

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <json-c/json.h>

#define FAKE_MAX_BODY   (16u << 20)
#define FAKE_MAX_FAULTS 64

struct fake;
struct mg_connection;

/* One part of a multipart/form-data body.  Pointers point into the body. */
struct fake_part {
	char name[256];
	char filename[256];
	int has_filename;
	char content_type[128];
	const char *data;
	size_t len;
};

struct fake_req {
	struct fake *f;
	struct mg_connection *conn;
	const char *method;
	const char *path;         /* URL-decoded path, no query */
	const char *query;        /* raw query string, "" if none */
	const char *content_type; /* "" if none */
	char *body;               /* NUL-terminated copy of the body */
	size_t body_len;
	struct json_object *json; /* body parsed as strict JSON, or NULL */
	int json_ok;              /* 1 if the body was valid JSON (json may be NULL for "null") */
	struct json_object *headers; /* lower-case name -> value */
	struct fake_part *parts;     /* multipart parts, or NULL */
	size_t nparts;
	int multipart_ok; /* 1 if the body parsed as multipart/form-data */

	/* The reply, filled in by fake_reply/fake_error. */
	int status;
	struct json_object *resp; /* owned; NULL means no body */
	char extra[256];          /* extra header lines, each ending in \r\n */
};

/* What each API kind provides.  handle() runs under f->lock and must call
 * fake_reply or fake_error at least once (the last call wins). */
struct fake_kind {
	const char *name;
	int error_has_code; /* error bodies are {code, message} instead of {message} */
	int (*init)(struct fake *f);
	int (*handle)(struct fake *f, struct fake_req *r);
	struct json_object *(*state)(struct fake *f);
	/* Kind-specific /_control settings; returns 0, or -1 with *err set.
	 * May be NULL. */
	int (*control)(struct fake *f, struct json_object *body, const char **err);
	const char *const *settings; /* the /_control keys control() accepts */
	void (*destroy)(struct fake *f);
};

/* FAULT_LOST: the request is carried out, then the connection is reset
 * before the answer: the client cannot know it succeeded. */
enum fault_mode { FAULT_OK, FAULT_429, FAULT_503, FAULT_500, FAULT_STALL, FAULT_RESET, FAULT_LOST };

struct fault {
	enum fault_mode mode;
	int count;       /* requests left for this entry */
	int retry_after; /* seconds, -1 for no Retry-After header */
};

struct fake_opts {
	const char *kind;
	int port;
	const char *record;
	const char *api_key;
	const char *token;
	const char *user;
	const char *password;
	const char *project;
};

struct fake {
	const struct fake_kind *kind;
	struct fake_opts opt;
	FILE *record;
	pthread_mutex_t lock;     /* kind state, faults, settings */
	pthread_mutex_t rec_lock; /* the record file */
	pthread_cond_t wake;      /* stalls wait on it; broadcast at shutdown */
	int stopping;
	struct fault faults[FAKE_MAX_FAULTS];
	size_t nfaults;
	double stall_seconds;
	long recorded;
	void *state; /* the kind's own state */
};

extern const struct fake_kind fake_testomat;
extern const struct fake_kind fake_qasphere;
extern const struct fake_kind fake_testcenter;

/* fake_common.c --------------------------------------------------------- */

/* civetweb begin_request callback: the whole pipeline above. */
int fake_begin_request(struct mg_connection *conn);

/* Wakes stalled requests; called once at shutdown. */
void fake_shutdown(struct fake *f);

/* Replies.  fake_reply takes ownership of body (NULL: empty body).  Both
 * return 0, so that a handler can `return fake_error(...)`. */
int fake_reply(struct fake_req *r, int status, struct json_object *body);
int fake_error(struct fake_req *r, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void fake_header(struct fake_req *r, const char *name, const char *value);

/* Request helpers. */
const char *fake_hdr(const struct fake_req *r, const char *lower_name);
/* Decoded query parameter into out; returns length or -1 if absent. */
int fake_query(const struct fake_req *r, const char *name, char *out, size_t outlen);
int fake_is_json_type(const struct fake_req *r);
double fake_now(void);
void fake_iso_now(char *buf, size_t len); /* 2026-01-02T03:04:05.678Z */

/* fake_parse.c ---------------------------------------------------------- */

/* Strict JSON parsing of a whole text; *ok tells valid JSON from "null". */
struct json_object *fake_parse_json(const char *text, size_t len, int *ok);
/* Fills r->parts from a multipart/form-data body; 0 or -1. */
int fake_parse_multipart(struct fake_req *r);
/* r's parts as [{name, filename, content_type, data}] for the record. */
struct json_object *fake_parts_json(const struct fake_req *r);
/* Splits path into at most max segments (pointers into buf).  Returns the
 * count, or -1 if the path has empty segments or too many. */
int fake_split(const char *path, char *buf, size_t buflen, char **seg, int max);

/* Field validation, one table row per field: {"title", JT_STR, 1} means
 * "title is required and must be a string". */
enum jt {
	JT_STR,
	JT_NESTR,
	JT_INT,
	JT_NNINT,
	JT_POSINT,
	JT_NUM,
	JT_NNNUM,
	JT_BOOL,
	JT_OBJ,
	JT_ARR,
	JT_STRARR,
	JT_INTARR,
	JT_OBJ_OR_STR,
	JT_NNINT_OR_NULL,
};
struct jfield {
	const char *name;
	enum jt type;
	int required;
};
/* 0 if obj satisfies spec; -1 with a message in err otherwise. */
int fake_check(struct json_object *obj, const struct jfield *spec, size_t n, char *err,
	       size_t errlen);
int fake_jt_ok(struct json_object *v, enum jt type);
struct json_object *fake_get(struct json_object *obj, const char *key);
/* A deep copy: request JSON and state never share objects, since json-c's
 * reference counts are not atomic and requests are freed outside the lock. */
struct json_object *fake_copy(struct json_object *v);
int fake_has(struct json_object *obj, const char *key);
int fake_in(const char *s, const char *const *list);
size_t fake_utf8_len(const char *s);

/* fake_xml.c ------------------------------------------------------------ */

/* Checks a JUnit XML document; on success *suites is an array
 * of the <testsuite(s)> counters found.  0, or -1 with a message in err. */
int fake_junit_check(const char *data, size_t len, struct json_object **suites, char *err,
		     size_t errlen);

#endif
