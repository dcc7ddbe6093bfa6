/*
 * srcstat: what each source's endpoint last answered, so that Qase's
 * auto-disable can be seen coming.
 *
 * Qase disables a webhook after 2 days without a successful delivery, and a
 * secret or HMAC mismatch after a rotation refuses every delivery with 401.
 * For each configured source this keeps the time of the last accepted
 * delivery (any 202, duplicates included), of the last refusal of each
 * status, and since when it has refused with no acceptance in between.
 *
 * Request threads note outcomes with plain atomic stores (no lock, no
 * read-modify-write on the accepted path).  Once a second the daemon's main
 * loop calls srcstat_save_due and srcstat_warn_due: the first gives the
 * sources whose state changed, as JSON for the store (so `runbridge status`
 * and the next start know them; a crash loses at most that second), the
 * second logs a warning at most once an hour per source while it has
 * refused deliveries and accepted none for sources.<name>.refusal_warn_after_s.
 *
 *   {"accepted_ms":1764622800123,"refusing_since_ms":0,
 *    "refused_ms":{"401":1764622700000}}
 */
#ifndef RB_HTTP_SRCSTAT_H
#define RB_HTTP_SRCSTAT_H

#include <stddef.h>

#include "core/config.h"
#include "core/err.h"

struct srcstat;

/* One entry per cfg->sources[i], in that order.  -1 on OOM. */
int srcstat_new(struct srcstat **out, const struct config *cfg, struct err *err);
void srcstat_free(struct srcstat *s);

/* Restores source i from its saved JSON (ignored when malformed). */
void srcstat_load(struct srcstat *s, size_t i, const char *json);

/* One answer of source i's endpoint: 202, or the refusing status. */
void srcstat_note(struct srcstat *s, size_t i, int status, long long now_ms);

/* Source i as JSON when it changed since the last call that returned it
 * (malloc'd, caller frees), else NULL.  Main loop only. */
char *srcstat_save_due(struct srcstat *s, size_t i);

/* Logs the refusal warning for every source that is due.  Main loop only. */
void srcstat_warn_due(struct srcstat *s, long long now_ms);

/* The Prometheus lines (malloc'd, caller frees), NULL on OOM:
 *   runbridge_source_last_accepted_timestamp_seconds{source="qase"} 1764622800.123
 *   runbridge_source_last_refused_timestamp_seconds{source="qase",status="401"} ... */
char *srcstat_render(const struct srcstat *s);

/* Reads saved JSON into plain values (for `runbridge status`): 0, or -1
 * when it is not ours.  refused_ms[k] belongs to srcstat_statuses[k]. */
#define SRCSTAT_NSTATUS 8
extern const int srcstat_statuses[SRCSTAT_NSTATUS];
struct srcstat_view {
	long long accepted_ms, refusing_since_ms;
	long long refused_ms[SRCSTAT_NSTATUS];
};
int srcstat_parse(struct srcstat_view *out, const char *json);

#endif
