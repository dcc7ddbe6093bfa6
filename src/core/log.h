/*
 * log: one line per thing that matters, to stderr.
 *
 * Lines are either text (`2026-11-23T08:00:00.123Z info delivery accepted
 * id=... source=qase`) or one JSON object per line (log_format: json).  Each
 * call passes key/value context pairs so that a line carries the delivery id,
 * rule and action where they apply.  Thread-safe: a line is one write(2).
 */
#ifndef RB_CORE_LOG_H
#define RB_CORE_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Returns -1 for an unknown level or format name; defaults are info, text. */
int log_set_level(const char *name);
int log_set_format(const char *name);
int log_enabled(enum log_level lvl);

/*
 * log_kv(LOG_INFO, "delivery accepted", "id", id, "source", "qase", NULL):
 * msg, then pairs of key and value (value NULL is skipped), ended by NULL key.
 */
void log_kv(enum log_level lvl, const char *msg, ...);

/* printf-style message without context. */
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
