/*
 * fake_qase: the parts of the Qase TestOps API v1 fake that its two files
 * share.  fake_qase.c serves the API (routing, Token auth, paging, the
 * response envelopes, the computed run stats); fake_qase_data.c owns the
 * data: what a test seeds or generates through /_control, and the defaults
 * that make seeded entities look like the vendor's (every schema field
 * present, nullable ones null).
 *
 * The data is one JSON object, s->projects:
 *
 *   {"DEMO": {"runs":    {"42": Run, ...},      keyed by id, insertion order
 *             "results": [Result, ...],         every run's, seeding order
 *             "cases":   {"17": TestCase, ...},
 *             "suites":  {"3": Suite, ...}}}
 *
 * Entities are stored complete (as the API shows them) except the computed
 * parts: a run's stats and cases and a suite's cases_count.
 */
#ifndef FAKE_QASE_H
#define FAKE_QASE_H

#include <json-c/json.h>

#include "fake_common.h"

struct qase_state {
	struct json_object *projects;
	double delay_seconds; /* the next delay_count API requests wait this long */
	int delay_count;
};

/* The project object for code, or NULL. */
struct json_object *qase_project(struct qase_state *s, const char *code);

/* /_control settings (seed, generate, delete_run, wipe, delay_seconds,
 * delay_count); runs under f->lock.  0, or -1 with *err set. */
int qase_control(struct fake *f, struct json_object *body, const char **err);

extern const char *const qase_settings[];

#endif
