/* Decoding request bodies: every body is checked before any handler reads it. */
#ifndef API_BODY_H
#define API_BODY_H

#include <jansson.h>

#include "server.h"

/* Parse req's body as a JSON object: Content-Type application/json, not empty,
 * nesting at most API_DEPTH_MAX, no duplicate keys. On failure answers the request
 * (400/415) itself and returns a negative value. */
int api_body_object(struct api_request *req, json_t **out);

/* Refuse any key of obj not in allowed (NULL-terminated), naming it. */
int api_check_fields(json_t *obj, const char *const *allowed, struct ve_error *err);

/* Nesting depth of JSON text (brackets outside strings); exposed for tests. */
unsigned api_json_depth(const char *text, size_t len);

#endif
