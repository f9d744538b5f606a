#include "body.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "ve/error.h"

unsigned api_json_depth(const char *text, size_t len)
{
        unsigned depth = 0, max = 0;
        bool in_string = false;

        for (size_t i = 0; i < len; i++) {
                char c = text[i];

                if (in_string) {
                        if (c == '\\')
                                i++;
                        else if (c == '"')
                                in_string = false;
                        continue;
                }
                if (c == '"') {
                        in_string = true;
                } else if (c == '{' || c == '[') {
                        if (++depth > max)
                                max = depth;
                } else if ((c == '}' || c == ']') && depth > 0) {
                        depth--;
                }
        }
        return max;
}

static bool is_json_type(const char *ct)
{
        size_t n = strlen("application/json");

        if (ct == NULL)
                return false;
        return strncasecmp(ct, "application/json", n) == 0 && (ct[n] == '\0' || ct[n] == ';');
}

int api_body_object(struct api_request *req, json_t **out)
{
        json_error_t jerr;
        json_t *obj;

        if (req->body_len == 0)
                return api_respond_error(req, 400, "the request needs a JSON object as its body"),
                       -1;
        if (!is_json_type(api_header(req, "Content-Type")))
                return api_respond_error(req, 415, "the body must be sent as application/json"), -1;
        if (api_json_depth(req->body, req->body_len) > API_DEPTH_MAX)
                return api_respond_error(req, 400, "JSON nested deeper than %d levels",
                                         API_DEPTH_MAX),
                       -1;
        obj = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
        if (obj == NULL)
                return api_respond_error(req, 400, "invalid JSON at line %d, column %d: %s",
                                         jerr.line, jerr.column, jerr.text),
                       -1;
        if (!json_is_object(obj)) {
                json_decref(obj);
                return api_respond_error(req, 400, "the body must be a JSON object"), -1;
        }
        *out = obj;
        return 0;
}

int api_check_fields(json_t *obj, const char *const *allowed, struct ve_error *err)
{
        const char *key;
        json_t *v;

        json_object_foreach(obj, key, v)
        {
                bool ok = false;

                for (unsigned i = 0; allowed[i] && !ok; i++)
                        ok = strcmp(allowed[i], key) == 0;
                if (!ok)
                        return ve_error_set(err, VE_EINVAL_INPUT, "unknown field '%.64s'", key);
        }
        return 0;
}
