/*
 * redact: the secret parts of a URL, masked for printing.
 *
 * A chat webhook URL is its own credential (Slack's
 * https://hooks.slack.com/services/T0/B0/XXXX, Discord's
 * /api/webhooks/ID/TOKEN, Microsoft Teams' webhook.office.com/...), and a
 * query often carries a key (?token=..., ?api_key=...).  redact_url keeps
 * what tells a reader where the call goes (scheme, host, port, the path of
 * any other host, the query's names) and masks the rest:
 *
 *   https://user:pw@h/p?token=abc&x=1#f  becomes
 *   https://(mask)@h/p?token=(mask)&x=(mask)#(mask)
 *   https://hooks.slack.com/services/T0/B0/XXXX  becomes
 *   https://hooks.slack.com/(mask)
 *
 * where (mask) is REDACT_MASK, three asterisks.
 */
#ifndef RB_CORE_REDACT_H
#define RB_CORE_REDACT_H

#include <stddef.h>

#define REDACT_MASK "***"

/* Writes url with its secrets masked into out (always NUL-terminated, cut
 * to len).  A string that is not an absolute URL is masked whole. */
void redact_url(const char *url, char *out, size_t len);

/* 1 when a header of this name carries a credential by its name
 * (Authorization, X-Api-Key, X-Auth-Token, Cookie, X-Hub-Signature...):
 * its value is shown as REDACT_MASK. */
int redact_header_is_secret(const char *name);

#endif
