/*
 * action_http: templated HTTP calls (chat webhooks and anything else).
 *
 *   - http:
 *       url: "https://hooks.slack.com/services/T000/B000/XXXX"
 *       method: POST                       # GET POST PUT PATCH DELETE; default POST
 *       headers: { X-Run: "{{project}}#{{run_id}}" }
 *       body: '{"text": "{{run.title}}: {{run.counts.failed}} failed"}'
 *       timeout_s: 10                      # 1..300, default 10
 *       json: true                         # see below
 *
 * url, header values and body are templates.  With json (the default when
 * a Content-Type header mentions "json", or when there is no Content-Type
 * and the body starts with '{' or '['), values are JSON-escaped into the
 * body, and the body is checked at load: with every placeholder read as x
 * it must be valid JSON.  So placeholders go inside string literals
 * ("{{run.counts.failed}}", not a bare {{run.counts.failed}}), and the
 * rendered body is valid JSON whatever a title contains.  A json body
 * without a Content-Type header is sent as application/json; any other body
 * without one as text/plain.  Header values have control characters
 * replaced by spaces, so a title cannot add a header.
 *
 * Values in the url are percent-encoded for where they stand (TMPL_URL in
 * rules/template.h): in the path as one segment, in the query and the
 * fragment as one component, so a project "A/../../admin?x=1#f" stays one
 * segment and a title with spaces makes a valid URL.  The scheme and host
 * are the rule's literal text: a placeholder or section before the path
 * starts ("https://{{host}}/", "{{url}}") is refused at load.  A body with
 * sections is checked as JSON three times: with each list of one item, with
 * every list empty, and with every list of two items (the last two show
 * each {{^section}} too, so every literal is checked).
 *
 * Rendered params:
 *   {"url":"https://...","method":"POST","headers":{"Content-Type":"application/json"},
 *    "body":"{\"text\":\"...\"}","timeout_s":10}
 * ("body" is null when there is none.  A body rendered over HTTP_BODY_MAX is
 * not stored: params get "error" instead, and the job fails permanently.)
 *
 * Logs and attempt records name the method and host only: a chat webhook's
 * path is its secret.
 */
#ifndef RB_ACTIONS_ACTION_HTTP_H
#define RB_ACTIONS_ACTION_HTTP_H

#include <json-c/json.h>

#include "actions/action.h"
#include "targets/outbound.h"
#include "targets/target.h"

#define HTTP_TIMEOUT_DEFAULT  10
#define HTTP_TIMEOUT_MAX      300
#define HTTP_HEADERS_MAX      32
#define HTTP_URL_MAX          8192
#define HTTP_HEADER_VALUE_MAX 8192
#define HTTP_BODY_MAX         (256 * 1024)

extern const struct action_ops action_http_ops;

/*
 * Sends params (as rendered above) and fills out: WORK_OK for a 2xx;
 * WORK_FAIL (retried, out->retry_after_ms from Retry-After) for 429, 502,
 * 503, 504 and transport errors, and for 500 before the 3rd attempt;
 * WORK_PERMANENT for other 4xx (the response body in out->detail), for 500
 * from the 3rd attempt, and for params that are not valid.
 */
void action_http_run(json_object *params, struct outbound *http, int attempt,
		     struct target_outcome *out);

#endif
