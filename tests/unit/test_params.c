/* daemon/params.c: the VE parameter table, and validating a request's values into
 * their stored form (sizes as integers, IPs canonical, lists deduplicated). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>

#include "daemon/params.h"
#include "ve/error.h"

#define MiB (1024ll * 1024)
#define GiB (1024ll * MiB)
#define TiB (1024ll * GiB)

/* --- helpers --- */

static const struct ved_param *param(const char *key)
{
        const struct ved_param *p = ved_param_find(key);

        if (p == NULL)
                print_error("no parameter '%s'\n", key);
        assert_non_null(p);
        assert_string_equal(p->key, key);
        return p;
}

/* Normalise value (a reference this function takes) and expect success. */
static json_t *norm_ok(const char *key, json_t *value)
{
        struct ve_error err = { 0 };
        json_t *out = ved_param_normalize(param(key), value, &err);

        if (out == NULL)
                print_error("%s: %s\n", key, err.message);
        json_decref(value);
        assert_non_null(out);
        assert_null(err.message);
        return out;
}

static void norm_int(const char *key, json_t *value, json_int_t want)
{
        json_t *out = norm_ok(key, value);

        assert_true(json_is_integer(out));
        assert_int_equal(json_integer_value(out), want);
        json_decref(out);
}

/* Normalise value (a reference taken) and expect refusal with a message holding
 * both the key and, when given, the fragment. */
static void norm_bad(const char *key, json_t *value, const char *fragment)
{
        struct ve_error err = { 0 };
        json_t *out = ved_param_normalize(param(key), value, &err);

        if (out != NULL) {
                char *s = json_dumps(out, JSON_ENCODE_ANY);

                print_error("%s: accepted as %s\n", key, s);
                free(s);
        }
        json_decref(value);
        assert_null(out);
        assert_int_equal(err.code, VE_EINVAL_INPUT);
        assert_non_null(err.message);
        /* Template names are checked by ve/, whose message says "template name". */
        if (strcmp(key, "ostemplate") == 0)
                assert_non_null(strstr(err.message, "template"));
        else
                assert_non_null(strstr(err.message, key));
        if (fragment != NULL) {
                if (strstr(err.message, fragment) == NULL)
                        print_error("message '%s' lacks '%s'\n", err.message, fragment);
                assert_non_null(strstr(err.message, fragment));
        }
        ve_error_clear(&err);
}

/* The normalised list, compared as compact JSON text. */
static void norm_list(const char *key, const char *in, const char *want)
{
        json_t *value = json_loads(in, 0, NULL), *out;
        char *text;

        assert_non_null(value);
        out = norm_ok(key, value);
        assert_true(json_is_array(out));
        text = json_dumps(out, JSON_COMPACT);
        assert_string_equal(text, want);
        free(text);
        json_decref(out);
}

static void norm_string_same(const char *key, const char *s)
{
        json_t *out = norm_ok(key, json_string(s));

        assert_true(json_is_string(out));
        assert_string_equal(json_string_value(out), s);
        json_decref(out);
}

/* --- the table --- */

static void test_table(void **state)
{
        size_t n = 0;

        (void)state;
        for (const struct ved_param *p = ved_params; p->key != NULL; p++, n++) {
                /* Keys are unique and findable. */
                assert_ptr_equal(ved_param_find(p->key), p);
                assert_non_null(p->help);
                if (p->kind == VED_P_SIZE || p->kind == VED_P_COUNT || p->kind == VED_P_PERCENT)
                        assert_true(p->min <= p->max);
        }
        assert_true(n > 10);
        assert_null(ved_param_find("ctid"));
        assert_null(ved_param_find("state"));
        assert_null(ved_param_find("RAM"));
        assert_null(ved_param_find(""));
        assert_true(param("ostemplate")->flags & VED_PF_REQUIRED);
        assert_true(param("ostemplate")->flags & VED_PF_CREATE_ONLY);
        assert_false(param("ram")->flags & VED_PF_CREATE_ONLY);
}

static void test_default(void **state)
{
        json_t *d;

        (void)state;
        d = ved_param_default(param("diskspace"));
        assert_int_equal(json_integer_value(d), 2 * GiB);
        json_decref(d);
        d = ved_param_default(param("stop_timeout"));
        assert_int_equal(json_integer_value(d), 120);
        json_decref(d);
        d = ved_param_default(param("init"));
        assert_string_equal(json_string_value(d), "/sbin/init");
        json_decref(d);
        static const char *lists[] = { "ip", "nameserver", "searchdomain" };
        for (size_t i = 0; i < 3; i++) {
                d = ved_param_default(param(lists[i]));
                assert_true(json_is_array(d));
                assert_int_equal(json_array_size(d), 0);
                json_decref(d);
        }
        d = ved_param_default(param("ram"));
        assert_true(json_is_null(d));
        json_decref(d);
        d = ved_param_default(param("hostname"));
        assert_true(json_is_null(d));
        json_decref(d);

        /* Every NOT_NULL parameter other than the required ostemplate has a real
         * default, and each default passes its own validation. */
        for (const struct ved_param *p = ved_params; p->key != NULL; p++) {
                struct ve_error err = { 0 };
                json_t *n;

                d = ved_param_default(p);
                assert_non_null(d);
                if ((p->flags & VED_PF_NOT_NULL) && !(p->flags & VED_PF_REQUIRED))
                        assert_false(json_is_null(d));
                n = ved_param_normalize(p, d, &err);
                if (n == NULL)
                        print_error("default of %s: %s\n", p->key, err.message);
                assert_non_null(n);
                assert_true(json_equal(n, d));
                json_decref(n);
                json_decref(d);
        }
}

/* --- numbers --- */

static void test_size(void **state)
{
        (void)state;
        norm_int("ram", json_string("2G"), 2 * GiB);
        norm_int("ram", json_string("512M"), 512 * MiB);
        norm_int("ram", json_string("1.5G"), GiB + GiB / 2);
        norm_int("ram", json_integer(8 * MiB), 8 * MiB);
        norm_int("ram", json_string("4194304"), 4 * MiB);
        norm_int("diskspace", json_string("64T"), 64 * TiB);
        norm_int("diskspace", json_string("64M"), 64 * MiB);
        norm_int("swap", json_integer(0), 0);
        norm_int("swap", json_string("0"), 0);

        norm_bad("ram", json_integer(-1), "negative");
        norm_bad("ram", json_integer(4 * MiB - 1), "out of range");
        norm_bad("ram", json_string("1M"), "out of range");
        norm_bad("diskspace", json_string("65T"), "out of range");
        norm_bad("diskspace", json_string("63M"), "out of range");
        /* Sizes in the message as they are written, and what a plain number is. */
        norm_bad("diskspace", json_integer(10485760),
                 "10485760 bytes is out of range (64M to 64T); a number without a unit is bytes");
        norm_bad("ram", json_string("1M"), "1048576 bytes is out of range (4M to ");
        norm_bad("ram", json_string("1048576"), "a number without a unit is bytes");
        /* ... and no such hint for a size that has its unit. */
        {
                struct ve_error err = { 0 };
                json_t *v = json_string("63M");

                assert_null(ved_param_normalize(param("diskspace"), v, &err));
                assert_non_null(strstr(err.message, "(64M to 64T)"));
                assert_null(strstr(err.message, "without a unit"));
                json_decref(v);
                ve_error_clear(&err);
        }
        norm_bad("cpus", json_integer(0), "0 is out of range (1 to 4096)");
        /* Sizes beyond int64 cannot be stored. */
        norm_bad("swap", json_string("9223372036854775808"), "out of range");
        norm_bad("swap", json_string("16383P"), "out of range");
        norm_bad("ram", json_string("2X"), "2X");
        norm_bad("ram", json_string(""), NULL);
        norm_bad("ram", json_string("-2G"), NULL);
        norm_bad("ram", json_real(2.5), "integer");
        norm_bad("ram", json_true(), NULL);
        norm_bad("ram", json_pack("[s]", "2G"), NULL);
        norm_bad("ram", json_object(), NULL);
}

static void test_count(void **state)
{
        (void)state;
        norm_int("cpus", json_integer(1), 1);
        norm_int("cpus", json_integer(4096), 4096);
        norm_int("cpus", json_string("8"), 8);
        norm_int("diskinodes", json_integer(4294967295ll), 4294967295ll);
        norm_int("stop_timeout", json_integer(86400), 86400);

        norm_bad("cpus", json_integer(0), "out of range");
        norm_bad("cpus", json_integer(4097), "4097");
        norm_bad("cpus", json_integer(-3), "negative");
        norm_bad("cpus", json_string("2G"), NULL); /* a count has no units */
        norm_bad("cpus", json_string("1.5"), NULL);
        norm_bad("cpus", json_string("-1"), NULL);
        norm_bad("cpus", json_string("99999999999999999999"), NULL);
        norm_bad("cpus", json_real(2.0), NULL);
        norm_bad("cpus", json_false(), NULL);
        norm_bad("cpuunits", json_integer(7), "8 to 500000");
        norm_bad("diskinodes", json_integer(4294967296ll), NULL);
        norm_bad("stop_timeout", json_integer(0), NULL);
}

static void test_percent(void **state)
{
        (void)state;
        norm_int("cpulimit", json_integer(50), 50);
        norm_int("cpulimit", json_string("50"), 50);
        norm_int("cpulimit", json_string("50%"), 50);
        norm_int("cpulimit", json_string("250%"), 250);
        norm_int("cpulimit", json_integer(409600), 409600);

        norm_bad("cpulimit", json_integer(0), "out of range");
        norm_bad("cpulimit", json_string("0%"), "out of range");
        norm_bad("cpulimit", json_integer(409601), NULL);
        norm_bad("cpulimit", json_string("409601%"), NULL);
        norm_bad("cpulimit", json_string("50 %"), NULL);
        norm_bad("cpulimit", json_string("half"), NULL);
        norm_bad("cpulimit", json_integer(-50), "negative");
}

static void test_bool(void **state)
{
        json_t *out;

        (void)state;
        out = norm_ok("onboot", json_true());
        assert_true(json_is_true(out));
        json_decref(out);
        out = norm_ok("onboot", json_false());
        assert_true(json_is_false(out));
        json_decref(out);

        /* JSON booleans only: the API is typed, vectl converts words itself. */
        norm_bad("onboot", json_string("yes"), "true or false");
        norm_bad("onboot", json_string("true"), NULL);
        norm_bad("onboot", json_integer(1), NULL);
        norm_bad("onboot", json_integer(0), NULL);
        norm_bad("onboot", json_array(), NULL);
}

static void test_null(void **state)
{
        (void)state;
        /* null is passed through for every kind: the caller decides what it means. */
        for (const struct ved_param *p = ved_params; p->key != NULL; p++) {
                struct ve_error err = { 0 };
                json_t *out = ved_param_normalize(p, json_null(), &err);

                assert_true(json_is_null(out));
                assert_null(err.message);
                json_decref(out);
        }
}

/* --- lists --- */

static void test_iplist(void **state)
{
        (void)state;
        norm_list("ip", "[]", "[]");
        norm_list("ip", "[\"10.0.0.1\"]", "[\"10.0.0.1\"]");
        norm_list("ip", "[\"10.0.0.1/24\", \"2001:DB8::0:1\"]",
                  "[\"10.0.0.1/24\",\"2001:db8::1\"]");
        /* Duplicates go, also when they differ only in spelling; order is kept. */
        norm_list("ip", "[\"10.0.0.2\", \"10.0.0.1\", \"10.0.0.2\"]",
                  "[\"10.0.0.2\",\"10.0.0.1\"]");
        /* One entry per address: the same address with a prefix replaces it. */
        norm_list("ip", "[\"2001:db8::1\", \"2001:0DB8:0:0::1\", \"2001:db8::1/64\"]",
                  "[\"2001:db8::1/64\"]");
        norm_list("ip", "[\"10.0.0.1/24\", \"10.0.0.2\", \"10.0.0.1\", \"10.0.0.11/8\"]",
                  "[\"10.0.0.1\",\"10.0.0.2\",\"10.0.0.11/8\"]");
        norm_list("nameserver", "[\"8.8.8.8\", \"2001:4860:4860::8888\"]",
                  "[\"8.8.8.8\",\"2001:4860:4860::8888\"]");

        norm_bad("ip", json_string("10.0.0.1"), "array");
        norm_bad("ip", json_pack("[i]", 10), "array of strings");
        norm_bad("ip", json_pack("[s, n]", "10.0.0.1"), NULL);
        norm_bad("ip", json_pack("[s]", "10.0.0.300"), "10.0.0.300");
        norm_bad("ip", json_pack("[s]", "10.0.0.1/33"), NULL);
        /* Addresses no VE can have; a nameserver may be local. */
        norm_bad("ip", json_pack("[s]", "127.0.0.5"), "cannot be a VE's");
        norm_bad("ip", json_pack("[s]", "0.0.0.0"), "cannot be a VE's");
        norm_bad("ip", json_pack("[s]", "224.0.0.9/32"), "cannot be a VE's");
        norm_bad("ip", json_pack("[s]", "169.254.1.1"), "cannot be a VE's");
        norm_bad("ip", json_pack("[s]", "::1"), "cannot be a VE's");
        norm_bad("ip", json_pack("[s]", "fe80::1/64"), "cannot be a VE's");
        norm_bad("ip", json_pack("[s]", "ff02::1"), "cannot be a VE's");
        norm_bad("ip", json_pack("[s]", "::ffff:192.0.2.1"), "IPv4-mapped");
        norm_list("nameserver", "[\"127.0.0.53\", \"::1\"]", "[\"127.0.0.53\",\"::1\"]");
        norm_bad("ip", json_pack("[s]", "2001:db8::1/129"), NULL);
        norm_bad("nameserver", json_pack("[s]", "dns.example.com"), "dns.example.com");
        norm_bad("ip", json_pack("[s, s]", "10.0.0.1", ""), NULL);
}

static void test_iplist_too_many(void **state)
{
        json_t *list = json_array();
        char ip[32];

        (void)state;
        for (int i = 0; i < 8; i++) {
                snprintf(ip, sizeof(ip), "10.0.0.%d", i + 1);
                json_array_append_new(list, json_string(ip));
        }
        json_decref(norm_ok("nameserver", json_incref(list)));
        json_array_append_new(list, json_string("10.0.1.1"));
        norm_bad("nameserver", list, "at most 8");

        /* The limit counts entries as given, before duplicates are removed. */
        list = json_array();
        for (int i = 0; i < 9; i++)
                json_array_append_new(list, json_string("10.0.0.1"));
        norm_bad("nameserver", list, "at most 8");

        list = json_array();
        for (int i = 0; i < 256; i++) {
                snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 250, i % 250 + 1);
                json_array_append_new(list, json_string(ip));
        }
        list = norm_ok("ip", list);
        assert_int_equal(json_array_size(list), 256);
        json_array_append_new(list, json_string("10.9.9.9"));
        norm_bad("ip", list, "at most 256");
}

static void test_domains(void **state)
{
        (void)state;
        norm_list("searchdomain", "[\"example.com\", \"corp.example.com\", \"example.com\"]",
                  "[\"example.com\",\"corp.example.com\"]");
        norm_bad("searchdomain", json_pack("[s]", "bad_domain.com"), "bad_domain.com");
        norm_bad("searchdomain", json_pack("[s]", "a..b"), NULL);
        norm_bad("searchdomain", json_pack("[s]", ""), NULL);
        norm_bad("searchdomain", json_pack("[s,s,s,s,s,s,s]", "a", "b", "c", "d", "e", "f", "g"),
                 "at most 6");
        norm_bad("searchdomain", json_string("example.com"), "array");
}

/* --- strings --- */

static void test_hostname(void **state)
{
        (void)state;
        norm_string_same("hostname", "web01.example.com");
        norm_string_same("hostname", "web");
        norm_bad("hostname", json_string("web_01.example.com"), NULL);
        norm_bad("hostname", json_string("-web.example.com"), NULL);
        norm_bad("hostname", json_string("web-.example.com"), NULL);
        norm_bad("hostname", json_string("a..b"), NULL);
        norm_bad("hostname", json_string(""), NULL);
        norm_bad("hostname", json_integer(5), "string");
        norm_bad("hostname", json_stringn("web\0evil", 8), "NUL");
        /* The kernel's host name holds 64 bytes: 64 is taken, 65 refused. */
        norm_string_same("hostname",
                         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example.com");
        norm_bad("hostname",
                 json_string("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example.com"),
                 "at most 64");
}

static void test_name_and_template(void **state)
{
        (void)state;
        norm_string_same("name", "web-1");
        norm_bad("name", json_string("101"), NULL);
        norm_bad("name", json_string("web 1"), NULL);
        norm_bad("name", json_stringn("web\0", 4), "NUL");
        norm_bad("name", json_true(), NULL);
        norm_string_same("ostemplate", "debian-12-amd64");
        norm_bad("ostemplate", json_string("../debian"), NULL);
        norm_bad("ostemplate", json_string(".debian"), NULL);
        norm_bad("ostemplate", json_string("debian/12"), NULL);
}

static void test_path(void **state)
{
        char longpath[300];

        (void)state;
        norm_string_same("init", "/sbin/init");
        norm_string_same("init", "/");
        norm_string_same("init", "/usr/lib/systemd/systemd");
        norm_string_same("init", "/opt/my..init"); /* ".." inside a name is a name */
        norm_string_same("init", "/opt/..init/run");

        norm_bad("init", json_string("sbin/init"), "absolute");
        norm_bad("init", json_string(""), NULL);
        norm_bad("init", json_string("/../bin/sh"), "..");
        norm_bad("init", json_string("/sbin/../../bin/sh"), NULL);
        norm_bad("init", json_string("/sbin/.."), NULL);
        norm_bad("init", json_string("/.."), NULL);
        norm_bad("init", json_string("/sbin/init\n"), NULL);
        norm_bad("init", json_stringn("/sbin/init\0/x", 13), "NUL");
        norm_bad("init", json_integer(1), NULL);

        memset(longpath, 'a', sizeof(longpath));
        longpath[0] = '/';
        longpath[255] = '\0';
        norm_string_same("init", longpath);
        longpath[255] = 'a';
        longpath[256] = '\0';
        norm_bad("init", json_string(longpath), "255");
}

static void test_text(void **state)
{
        char text[1100];

        (void)state;
        norm_string_same("description", "Web server for team Ünicode \"quoted\"");
        norm_string_same("description", "tab\tseparated");
        norm_string_same("description", "");
        norm_bad("description", json_string("line\nbreak"), "printable");
        norm_bad("description", json_string("bell\a"), NULL);
        norm_bad("description", json_string("\x1b[31mred"), NULL);
        norm_bad("description", json_stringn("a\0b", 3), "NUL");
        norm_bad("description", json_integer(5), NULL);

        memset(text, 'x', sizeof(text));
        text[1024] = '\0';
        norm_string_same("description", text);
        text[1024] = 'x';
        text[1025] = '\0';
        norm_bad("description", json_string(text), "1024");
}

/* The result is a new reference the caller owns, independent of the input. */
static void test_ownership(void **state)
{
        struct ve_error err = { 0 };
        json_t *in = json_string("web"), *out;

        (void)state;
        out = ved_param_normalize(param("hostname"), in, &err);
        assert_non_null(out);
        json_decref(in);
        assert_string_equal(json_string_value(out), "web");
        json_decref(out);

        in = json_pack("[s]", "10.0.0.1");
        out = ved_param_normalize(param("ip"), in, &err);
        assert_non_null(out);
        assert_ptr_not_equal(out, in);
        json_decref(in);
        assert_string_equal(json_string_value(json_array_get(out, 0)), "10.0.0.1");
        json_decref(out);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_table),
                cmocka_unit_test(test_default),
                cmocka_unit_test(test_size),
                cmocka_unit_test(test_count),
                cmocka_unit_test(test_percent),
                cmocka_unit_test(test_bool),
                cmocka_unit_test(test_null),
                cmocka_unit_test(test_iplist),
                cmocka_unit_test(test_iplist_too_many),
                cmocka_unit_test(test_domains),
                cmocka_unit_test(test_hostname),
                cmocka_unit_test(test_name_and_template),
                cmocka_unit_test(test_path),
                cmocka_unit_test(test_text),
                cmocka_unit_test(test_ownership),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
