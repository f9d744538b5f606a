/* The API's pure parts: route matching (api/router.c), body checks (api/body.c)
 * and the one mapping of error codes to HTTP statuses (api/errors.c). Requests are
 * built by hand; no server runs. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>

#include "api/body.h"
#include "api/errors.h"
#include "api/router.h"
#include "api/server.h"
#include "ve/error.h"

/* --- routes --- */

struct match {
        struct api_request req;
        char url[512];
};

static void route(struct match *m, const char *method, const char *url)
{
        memset(m, 0, sizeof(*m));
        snprintf(m->url, sizeof(m->url), "%s", url);
        m->req.method = method;
        m->req.url = m->url;
        api_route_match(&m->req);
}

static void route_free(struct match *m)
{
        free(m->req.param_buf);
        m->req.param_buf = NULL;
}

/* url under method finds handler, with the given first placeholder (or none). */
static void expect_route(const char *method, const char *url, api_handler_fn handler,
                         const char *param)
{
        struct match m;

        route(&m, method, url);
        if (m.req.route == NULL)
                print_error("%s %s: no route (status %u)\n", method, url, m.req.route_status);
        assert_non_null(m.req.route);
        assert_ptr_equal(m.req.route->handler, handler);
        assert_string_equal(m.req.route->method, method);
        if (param != NULL) {
                assert_non_null(m.req.params[0]);
                assert_string_equal(m.req.params[0], param);
        } else {
                assert_null(m.req.params[0]);
        }
        assert_null(m.req.params[1]);
        /* The URL itself is left as it was. */
        assert_string_equal(m.req.url, url);
        route_free(&m);
}

static void expect_status(const char *method, const char *url, unsigned status, const char *allow)
{
        struct match m;

        route(&m, method, url);
        if (m.req.route != NULL)
                print_error("%s %s: matched %s %s\n", method, url, m.req.route->method,
                            m.req.route->pattern);
        assert_null(m.req.route);
        assert_int_equal(m.req.route_status, status);
        assert_string_equal(m.req.allow, allow);
        assert_false(api_route_streams_body(&m.req));
        assert_false(api_route_body_chunk(&m.req, "x", 1));
        route_free(&m);
}

static void test_routes_known(void **state)
{
        (void)state;
        expect_route("GET", "/v1/host", route_host_get, NULL);
        expect_route("GET", "/v1/ves", route_ves_list, NULL);
        expect_route("POST", "/v1/ves", route_ve_create, NULL);
        expect_route("GET", "/v1/ves/101", route_ve_get, "101");
        expect_route("GET", "/v1/ves/web-1.example", route_ve_get, "web-1.example");
        expect_route("PATCH", "/v1/ves/101", route_ve_patch, "101");
        expect_route("DELETE", "/v1/ves/web", route_ve_delete, "web");
        expect_route("GET", "/v1/ves/101/state", route_ve_state_get, "101");
        expect_route("POST", "/v1/ves/web/state", route_ve_state_post, "web");
        expect_route("POST", "/v1/ves/101/exec", route_ve_exec, "101");
        expect_route("GET", "/v1/operations", route_ops_list, NULL);
        expect_route("GET", "/v1/operations/42", route_op_get, "42");
        expect_route("GET", "/v1/events", route_events_get, NULL);
        expect_route("GET", "/v1/templates", route_templates_list, NULL);
        expect_route("POST", "/v1/templates", route_template_import, NULL);
        expect_route("GET", "/v1/templates/debian-12", route_template_get, "debian-12");
        expect_route("DELETE", "/v1/templates/debian-12", route_template_delete, "debian-12");
}

static void test_routes_params(void **state)
{
        char url[400], name[300];
        struct match m;

        (void)state;
        /* A placeholder takes the whole segment, however long, and nothing more. */
        memset(name, 'n', sizeof(name) - 1);
        name[sizeof(name) - 1] = '\0';
        snprintf(url, sizeof(url), "/v1/ves/%s/state", name);
        route(&m, "GET", url);
        assert_ptr_equal(m.req.route->handler, route_ve_state_get);
        assert_string_equal(m.req.params[0], name);
        /* It is a copy, not a pointer into the URL. */
        assert_true(m.req.params[0] < m.req.url || m.req.params[0] >= m.req.url + strlen(url));
        route_free(&m);

        /* Percent-encoding and odd bytes are passed on for the handler to refuse. */
        expect_route("GET", "/v1/ves/a%2Fb", route_ve_get, "a%2Fb");
        expect_route("GET", "/v1/ves/..", route_ve_get, "..");

        /* A request that first fits another route's prefix still gets its own. */
        route(&m, "DELETE", "/v1/ves/101");
        assert_ptr_equal(m.req.route->handler, route_ve_delete);
        route_free(&m);
}

static void test_routes_streaming(void **state)
{
        struct match m;

        (void)state;
        route(&m, "POST", "/v1/templates");
        assert_true(api_route_streams_body(&m.req));
        route_free(&m);
        route(&m, "POST", "/v1/ves");
        assert_false(api_route_streams_body(&m.req));
        assert_false(api_route_body_chunk(&m.req, "{}", 2));
        route_free(&m);
}

static void test_routes_wrong_method(void **state)
{
        (void)state;
        expect_status("PUT", "/v1/ves/101", 405, "GET, PATCH, DELETE");
        expect_status("POST", "/v1/ves/101", 405, "GET, PATCH, DELETE");
        expect_status("DELETE", "/v1/ves", 405, "GET, POST");
        expect_status("PATCH", "/v1/ves", 405, "GET, POST");
        expect_status("POST", "/v1/host", 405, "GET");
        expect_status("DELETE", "/v1/ves/101/state", 405, "GET, POST");
        expect_status("GET", "/v1/ves/101/exec", 405, "POST");
        expect_status("PUT", "/v1/templates/x", 405, "GET, DELETE");
        expect_status("DELETE", "/v1/templates", 405, "GET, POST");
        expect_status("POST", "/v1/events", 405, "GET");
        expect_status("DELETE", "/v1/operations/1", 405, "GET");
        /* Methods are case-sensitive (RFC 9110). */
        expect_status("get", "/v1/host", 405, "GET");
        expect_status("", "/v1/host", 405, "GET");
}

static void test_routes_unknown(void **state)
{
        (void)state;
        expect_status("GET", "/v1/nothing", 404, "");
        expect_status("GET", "/v2/ves", 404, "");
        expect_status("GET", "/v1", 404, "");
        expect_status("GET", "/v1/", 404, "");
        expect_status("GET", "/", 404, "");
        expect_status("GET", "", 404, "");
        expect_status("GET", "/v1/hostx", 404, "");
        expect_status("GET", "/v1/hos", 404, "");
        expect_status("GET", "/v1/ve", 404, "");
        expect_status("GET", "v1/host", 404, "");
        expect_status("GET", "//v1/host", 404, "");
        expect_status("GET", "/V1/HOST", 404, "");
        expect_status("GET", "/v1/ves/101/stat", 404, "");
        expect_status("GET", "/v1/ves/101/state/extra", 404, "");
        expect_status("GET", "/v1/ves/101/102", 404, "");
        expect_status("GET", "/v1/templates/a/b", 404, "");
        expect_status("GET", "/v1/host?x=1", 404, "");
}

static void test_routes_slashes(void **state)
{
        (void)state;
        /* A trailing slash is a different resource, as is an empty segment. */
        expect_status("GET", "/v1/host/", 404, "");
        expect_status("GET", "/v1/ves/", 404, "");
        expect_status("POST", "/v1/ves/", 404, "");
        expect_status("GET", "/v1/ves/101/", 404, "");
        expect_status("GET", "/v1/ves/101/state/", 404, "");
        expect_status("GET", "/v1/ves//state", 404, "");
        expect_status("POST", "/v1/ves//state", 404, "");
        expect_status("GET", "/v1/ves//", 404, "");
        expect_status("GET", "/v1/ves//101", 404, "");
        expect_status("GET", "/v1//ves", 404, "");
        expect_status("GET", "/v1/operations/", 404, "");
}

/* --- bodies --- */

static unsigned depth(const char *s)
{
        return api_json_depth(s, strlen(s));
}

static void test_json_depth(void **state)
{
        char deep[80];

        (void)state;
        assert_int_equal(depth(""), 0);
        assert_int_equal(depth("42"), 0);
        assert_int_equal(depth("\"x\""), 0);
        assert_int_equal(depth("{}"), 1);
        assert_int_equal(depth("[]"), 1);
        assert_int_equal(depth("[[]]"), 2);
        assert_int_equal(depth("{\"a\":[{}]}"), 3);
        /* Depth is the maximum, not the count of brackets. */
        assert_int_equal(depth("[[],[],[[]]]"), 3);
        assert_int_equal(depth("{\"a\":{},\"b\":{},\"c\":{}}"), 2);
        /* Brackets inside strings do not count, escaped quotes do not end strings. */
        assert_int_equal(depth("{\"a\":\"[[[[{{{{\"}"), 1);
        assert_int_equal(depth("{\"a\":\"\\\"[[[\"}"), 1);
        assert_int_equal(depth("{\"[[[\":1}"), 1);
        /* An escaped backslash ends before the quote, which does end the string. */
        assert_int_equal(depth("[\"\\\\\",[[]]]"), 3);
        assert_int_equal(depth("[\"\\u005b\"]"), 1);
        /* Unbalanced closers never make it negative. */
        assert_int_equal(depth("]]]}}}[["), 2);
        assert_int_equal(depth("[[[["), 4);
        /* A string that never ends hides everything after it. */
        assert_int_equal(depth("[\"[[[[["), 1);
        assert_int_equal(depth("\"\\"), 0);

        /* Only len bytes are read. */
        assert_int_equal(api_json_depth("[[[[", 2), 2);
        assert_int_equal(api_json_depth("[[[[", 0), 0);

        memset(deep, '[', API_DEPTH_MAX + 1);
        memset(deep + API_DEPTH_MAX + 1, ']', API_DEPTH_MAX + 1);
        deep[2 * (API_DEPTH_MAX + 1)] = '\0';
        assert_int_equal(depth(deep), API_DEPTH_MAX + 1);
        assert_int_equal(api_json_depth(deep + 1, strlen(deep) - 2), API_DEPTH_MAX);
}

static void test_check_fields(void **state)
{
        static const char *const allowed[] = { "name", "ram", "cpus", NULL };
        static const char *const none[] = { NULL };
        struct ve_error err = { 0 };
        char longkey[101];
        json_t *obj;

        (void)state;
        obj = json_pack("{s:s, s:i}", "name", "web", "ram", 5);
        assert_int_equal(api_check_fields(obj, allowed, &err), 0);
        assert_null(err.message);
        json_decref(obj);

        obj = json_object();
        assert_int_equal(api_check_fields(obj, allowed, &err), 0);
        assert_int_equal(api_check_fields(obj, none, &err), 0);
        json_decref(obj);

        obj = json_pack("{s:s, s:i}", "name", "web", "rma", 5);
        assert_int_equal(api_check_fields(obj, allowed, &err), -VE_EINVAL_INPUT);
        assert_int_equal(err.code, VE_EINVAL_INPUT);
        assert_non_null(strstr(err.message, "'rma'"));
        ve_error_clear(&err);
        json_decref(obj);

        /* Exact, case-sensitive matches only: no prefixes. */
        static const char *const bad[] = { "Name", "nam", "names", "", "ram " };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                obj = json_pack("{s:i}", bad[i], 1);
                assert_int_equal(api_check_fields(obj, allowed, &err), -VE_EINVAL_INPUT);
                assert_non_null(err.message);
                ve_error_clear(&err);
                json_decref(obj);
        }
        obj = json_pack("{s:i}", "name", 1);
        assert_int_equal(api_check_fields(obj, none, &err), -VE_EINVAL_INPUT);
        ve_error_clear(&err);
        json_decref(obj);

        /* A huge key is named, but cut short. */
        memset(longkey, 'k', sizeof(longkey) - 1);
        longkey[sizeof(longkey) - 1] = '\0';
        obj = json_pack("{s:i}", longkey, 1);
        assert_int_equal(api_check_fields(obj, allowed, &err), -VE_EINVAL_INPUT);
        assert_non_null(strstr(err.message, "kkkkkkkkkkkkkkkk"));
        assert_true(strlen(err.message) < 100);
        ve_error_clear(&err);
        json_decref(obj);
}

/* --- errors --- */

static void test_status_for_ve_codes(void **state)
{
        (void)state;
        assert_int_equal(api_status_for_code(VE_EINVAL_INPUT), 400);
        assert_int_equal(api_status_for_code(VE_ENOTFOUND), 404);
        assert_int_equal(api_status_for_code(VE_EMETHOD), 405);
        assert_int_equal(api_status_for_code(VE_ECONFLICT), 409);
        assert_int_equal(api_status_for_code(VE_EPRECONDITION), 412);
        assert_int_equal(api_status_for_code(VE_ETOOLARGE), 413);
        assert_int_equal(api_status_for_code(VE_EUNSUPPORTED), 501);
        /* Every domain code means something a client can act on: none is a 500,
         * so a new VE_E* code must be given a status in api/errors.c. */
        for (int code = VE_EBASE + 1; code <= VE_ECANNOTEXEC; code++) {
                unsigned status = api_status_for_code(code);

                if (status == 500)
                        print_error("VE_E* code %d has no status\n", code);
                assert_int_not_equal(status, 500);
                assert_string_not_equal(api_status_reason(status), "error");
        }
        assert_int_equal(api_status_for_code(VE_EBASE), 500);
        assert_int_equal(api_status_for_code(VE_ECANNOTEXEC + 1), 500);
        /* A command exec could not run: 400, with a shell's exit status. */
        assert_int_equal(api_status_for_code(VE_ENOCOMMAND), 400);
        assert_int_equal(api_exit_code_for(VE_ENOCOMMAND), 127);
        assert_int_equal(api_exit_code_for(VE_ECANNOTEXEC), 126);
        assert_int_equal(api_exit_code_for(ENOENT), -1);
        assert_int_equal(api_exit_code_for(VE_EINVAL_INPUT), -1);
}

static void test_status_for_errno(void **state)
{
        (void)state;
        assert_int_equal(api_status_for_code(EINVAL), 400);
        assert_int_equal(api_status_for_code(ERANGE), 400);
        assert_int_equal(api_status_for_code(ENAMETOOLONG), 400);
        assert_int_equal(api_status_for_code(ENOENT), 404);
        assert_int_equal(api_status_for_code(EEXIST), 409);
        assert_int_equal(api_status_for_code(EBUSY), 409);
        assert_int_equal(api_status_for_code(ENOTEMPTY), 409);
        assert_int_equal(api_status_for_code(EALREADY), 409);
        assert_int_equal(api_status_for_code(EFBIG), 413);
        assert_int_equal(api_status_for_code(ENOSYS), 501);
        assert_int_equal(api_status_for_code(EOPNOTSUPP), 501);
        assert_int_equal(api_status_for_code(ENOTSUP), 501);
        assert_int_equal(api_status_for_code(ENOSPC), 503);
        assert_int_equal(api_status_for_code(EAGAIN), 503);
        assert_int_equal(api_status_for_code(EWOULDBLOCK), 503);
        /* The daemon's own failures are its fault, not the client's. */
        assert_int_equal(api_status_for_code(EIO), 500);
        assert_int_equal(api_status_for_code(ENOMEM), 500);
        assert_int_equal(api_status_for_code(EPERM), 500);
        assert_int_equal(api_status_for_code(EACCES), 500);
        assert_int_equal(api_status_for_code(EPROTO), 500);
        /* Codes are positive: a -errno that slipped through, or 0, is a bug: 500. */
        assert_int_equal(api_status_for_code(0), 500);
        assert_int_equal(api_status_for_code(-EINVAL), 500);
        assert_int_equal(api_status_for_code(-VE_ENOTFOUND), 500);
}

static void test_status_reason(void **state)
{
        static const struct {
                unsigned status;
                const char *reason;
        } reasons[] = {
                { 400, "bad request" },
                { 404, "not found" },
                { 405, "method not allowed" },
                { 409, "conflict" },
                { 412, "precondition failed" },
                { 413, "request too large" },
                { 415, "unsupported media type" },
                { 501, "not implemented" },
                { 503, "unavailable" },
        };

        (void)state;
        for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
                assert_string_equal(api_status_reason(reasons[i].status), reasons[i].reason);
        assert_string_equal(api_status_reason(500), "error");
        assert_string_equal(api_status_reason(0), "error");
        /* Every status the mapping gives has a reason. */
        for (int code = -5; code < 1100; code++) {
                unsigned status = api_status_for_code(code);

                assert_true(status >= 400 && status <= 599);
                assert_non_null(api_status_reason(status));
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_routes_known),
                cmocka_unit_test(test_routes_params),
                cmocka_unit_test(test_routes_streaming),
                cmocka_unit_test(test_routes_wrong_method),
                cmocka_unit_test(test_routes_unknown),
                cmocka_unit_test(test_routes_slashes),
                cmocka_unit_test(test_json_depth),
                cmocka_unit_test(test_check_fields),
                cmocka_unit_test(test_status_for_ve_codes),
                cmocka_unit_test(test_status_for_errno),
                cmocka_unit_test(test_status_reason),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
