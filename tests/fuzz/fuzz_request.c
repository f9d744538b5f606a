/* Fuzz harness: a hostile API request, through the checks every request meets
 * before a handler acts on it: the router (api_route_match()), the body's JSON
 * decoding as api_body_object() does it, and the validation of each VE
 * parameter (ved_param_normalize()) and of the values vectl and the API parse
 * alike (ve/parse.h, template names, SSH keys).
 *
 * An input is "METHOD URL\n" then the body. On every input:
 * - a refused value comes with a message (the API's 400 says what was wrong);
 * - a parameter's normalised value is accepted again and comes back the same
 *   (the store keeps normalised values, and a client may send back what it
 *   read); so is an IP address's canonical text;
 * - the router matches at most one route, whose placeholders are non-empty.
 *
 * A broken rule aborts. Built with libFuzzer (-DVED_FUZZ=ON, clang) it fuzzes;
 * otherwise tests/fuzz/driver.c replays tests/fuzz/corpus/fuzz_request. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "tests/fuzz/fuzz.h"
#include "api/body.h"
#include "api/router.h"
#include "api/server.h"
#include "daemon/params.h"
#include "ve/error.h"
#include "ve/guest.h"
#include "ve/parse.h"
#include "ve/template.h"

static void require_message(int ret, struct ve_error *err, const char *what, const char *value)
{
        if (ret < 0)
                require(err->message != NULL && err->message[0] != '\0',
                        "%s refused '%s' without a message", what, value);
        ve_error_clear(err);
}

static void check_route(const char *method, char *url)
{
        struct api_request req;

        memset(&req, 0, sizeof(req));
        req.method = method;
        req.url = url;
        api_route_match(&req);
        if (req.route != NULL) {
                require(strcmp(req.route->method, method) == 0, "%s %s matched a %s route", method,
                        url, req.route->method);
                for (size_t i = 0; i < sizeof(req.params) / sizeof(req.params[0]); i++)
                        require(req.params[i] == NULL || req.params[i][0] != '\0',
                                "%s %s: an empty placeholder", method, url);
        } else {
                require(req.route_status >= 400 && req.route_status < 500,
                        "%s %s: no route and status %u", method, url, req.route_status);
        }
        free(req.param_buf);
}

/* --ostemplate centos-7 stands for centos-7-x86_64: each name it may stand for
 * has an architecture, and is a valid template name when s is one. */
static void check_template_candidates(const char *s)
{
        char names[2][VE_TEMPLATE_NAME_MAX + 1];
        struct ve_template_ident id;
        struct ve_error err = { 0 };
        bool valid = ve_check_template_name(s, &err) == 0;
        int n = ve_template_name_candidates(s, "x86_64", names, 2);

        ve_error_clear(&err);
        require(n >= 0 && n <= 2, "%d names for '%s'", n, s);
        for (int i = 0; i < n; i++) {
                require(ve_template_name_parse(names[i], &id) == 0 && id.arch[0] != '\0',
                        "'%s' stands for '%s', which has no architecture", s, names[i]);
                require(!valid || ve_check_template_name(names[i], &err) == 0,
                        "'%s' stands for '%s', which is no template name", s, names[i]);
                ve_error_clear(&err);
        }
}

/* The parsers shared with vectl, on one string value. */
static void check_string(const char *s)
{
        struct ve_template_ident id;
        struct ve_error err = { 0 };
        char ip[64], again[64], size_text[16];
        uint64_t u;
        uint32_t ctid;
        bool b;
        int family, ret;

        ret = ve_parse_size(s, &u, "size", &err);
        require_message(ret, &err, "ve_parse_size", s);
        if (ret == 0) {
                ve_format_size(u, size_text, sizeof(size_text));
                require(ve_parse_size(size_text, &u, "size", &err) == 0,
                        "a formatted size '%s' is refused", size_text);
                ve_error_clear(&err);
        }
        require_message(ve_parse_uint(s, UINT32_MAX, &u, "count", &err), &err, "ve_parse_uint", s);
        require_message(ve_parse_percent(s, &u, "cpulimit", &err), &err, "ve_parse_percent", s);
        require_message(ve_parse_bool(s, &b, "onboot", &err), &err, "ve_parse_bool", s);
        require_message(ve_check_name(s, &err), &err, "ve_check_name", s);
        require_message(ve_check_hostname(s, &err), &err, "ve_check_hostname", s);
        require_message(ve_check_template_name(s, &err), &err, "ve_check_template_name", s);
        require_message(ve_guest_check_ssh_keys(s, &err), &err, "ve_guest_check_ssh_keys", s);
        ve_parse_ctid(s, &ctid, &err); /* quiet by design: a name is tried next */
        ve_error_clear(&err);
        ve_template_name_parse(s, &id);
        check_template_candidates(s);

        ret = ve_parse_ip(s, ip, &family, &err);
        require_message(ret, &err, "ve_parse_ip", s);
        if (ret == 0) {
                int family2;

                require(ve_parse_ip(ip, again, &family2, &err) == 0,
                        "the canonical address '%s' of '%s' is refused", ip, s);
                require(strcmp(ip, again) == 0 && family == family2,
                        "'%s' is canonical '%s', which is canonical '%s'", s, ip, again);
                ve_error_clear(&err);
        }
}

static void check_strings(json_t *value)
{
        size_t i;
        const char *key;
        json_t *item;

        /* No string holds a NUL: jansson refuses \u0000 (no JSON_ALLOW_NUL). */
        if (json_is_string(value)) {
                check_string(json_string_value(value));
        } else if (json_is_array(value)) {
                json_array_foreach(value, i, item) check_strings(item);
        } else if (json_is_object(value)) {
                json_object_foreach(value, key, item) check_strings(item);
        }
}

static void check_params(json_t *body)
{
        const char *key;
        json_t *value;

        json_object_foreach(body, key, value)
        {
                const struct ved_param *p = ved_param_find(key);
                struct ve_error err = { 0 };
                json_t *n, *n2;
                char *text;

                if (p == NULL)
                        continue;
                n = ved_param_normalize(p, value, &err);
                if (n == NULL) {
                        require(err.message != NULL && err.message[0] != '\0',
                                "%s: a value refused without a message", key);
                        ve_error_clear(&err);
                        continue;
                }
                n2 = ved_param_normalize(p, n, &err);
                text = json_dumps(n, JSON_ENCODE_ANY);
                require(n2 != NULL, "%s: its normalised value %s is refused: %s", key, text,
                        err.message ? err.message : "");
                require(json_equal(n, n2), "%s: normalising %s again changes it", key, text);
                free(text);
                json_decref(n2);
                json_decref(n);
                ve_error_clear(&err);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *text = (const char *)data, *nl = memchr(text, '\n', size), *body_text;
        size_t body_len;
        char *line, *url;
        json_t *body;

        if (nl == NULL)
                return 0;
        line = strndup(text, (size_t)(nl - text));
        url = line ? strchr(line, ' ') : NULL;
        if (url != NULL) {
                *url++ = '\0';
                check_route(line, url);
        }
        free(line);

        /* As api_body_object(): depth first, then jansson, duplicates refused. */
        body_text = nl + 1;
        body_len = size - (size_t)(body_text - text);
        if (api_json_depth(body_text, body_len) > API_DEPTH_MAX)
                return 0;
        body = json_loadb(body_text, body_len, JSON_REJECT_DUPLICATES, NULL);
        if (body == NULL)
                return 0;
        if (json_is_object(body))
                check_params(body);
        check_strings(body);
        json_decref(body);
        return 0;
}
