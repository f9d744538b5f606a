/* vectl's pure logic: list fields, sorting, cells, tables and exit codes.
 *
 * Unit tests link only vedcore, which holds no cli/ objects, so this suite
 * compiles the few cli/ files it tests into itself. Were cli/ split into a
 * library (the cli/ sources but main.c, linked into vectl and this test), these
 * includes would go. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/exitcode.h"
#include "cli/list_fields.h"
#include "cli/output.h"

static json_t *ve(const char *text)
{
        json_t *j = json_loads(text, 0, NULL);

        assert_non_null(j);
        return j;
}

static void test_fields_default(void **state)
{
        const struct list_field *f[LIST_MAX_FIELDS];
        struct ve_error err = { 0 };
        size_t n = 0;

        (void)state;
        assert_int_equal(list_fields_parse(LIST_DEFAULT_FIELDS, f, LIST_MAX_FIELDS, &n, &err), 0);
        assert_int_equal(n, 5);
        assert_string_equal(f[0]->header, "CTID");
        assert_string_equal(f[1]->header, "NPROC");
        assert_string_equal(f[2]->header, "STATUS");
        assert_string_equal(f[3]->header, "IP_ADDR");
        assert_string_equal(f[4]->header, "HOSTNAME");
}

static void test_fields_unknown(void **state)
{
        const struct list_field *f[LIST_MAX_FIELDS];
        struct ve_error err = { 0 };
        size_t n = 0;

        (void)state;
        assert_true(list_fields_parse("ctid,bogus", f, LIST_MAX_FIELDS, &n, &err) < 0);
        assert_int_equal(cli_exit_code(&err), CLI_EXIT_USAGE);
        assert_non_null(strstr(err.message, "'bogus'"));
        ve_error_clear(&err);
        assert_true(list_fields_parse(",", f, LIST_MAX_FIELDS, &n, &err) < 0);
        ve_error_clear(&err);
        assert_true(list_fields_parse("ctid,ram,ram", f, 2, &n, &err) < 0);
        ve_error_clear(&err);
}

static void test_sort_parse(void **state)
{
        struct list_sort s = { 0 };
        struct ve_error err = { 0 };

        (void)state;
        assert_int_equal(list_sort_parse("-ram", &s, &err), 0);
        assert_true(s.desc);
        assert_string_equal(s.field->name, "ram");
        assert_int_equal(list_sort_parse("status", &s, &err), 0);
        assert_false(s.desc);
        assert_string_equal(s.field->key, "state");
        assert_true(list_sort_parse("-nope", &s, &err) < 0);
        assert_non_null(strstr(err.message, "'nope'"));
        ve_error_clear(&err);
}

static void test_cells(void **state)
{
        json_t *v = ve("{\"ctid\": 101, \"ram\": 536870912, \"diskspace\": 1610612736,"
                       " \"ip\": [\"192.0.2.1\", \"2001:db8::1\"], \"onboot\": true,"
                       " \"swap\": null, \"usage\": {\"processes\": {\"current\": 12},"
                       " \"cpu\": {\"usage_percent\": 12.345},"
                       " \"disk\": {\"host_bytes\": 3145728}}}");
        char *s;

        (void)state;
        s = list_field_text(list_field_find("ram"), v);
        assert_string_equal(s, "512M");
        free(s);
        s = list_field_text(list_field_find("diskspace.l"), v);
        assert_string_equal(s, "1.5G");
        free(s);
        /* diskspace: what the VE's image takes on the host (GET /v1/usage). */
        s = list_field_text(list_field_find("diskspace"), v);
        assert_string_equal(s, "3M");
        free(s);
        s = list_field_text(list_field_find("cpu"), v);
        assert_string_equal(s, "12.3");
        free(s);
        assert_true(list_field_is_usage(list_field_find("cpu")));
        assert_false(list_field_is_usage(list_field_find("ram")));
        s = list_field_text(list_field_find("ip"), v);
        assert_string_equal(s, "192.0.2.1,2001:db8::1");
        free(s);
        s = list_field_text(list_field_find("onboot"), v);
        assert_string_equal(s, "yes");
        free(s);
        s = list_field_text(list_field_find("numproc"), v);
        assert_string_equal(s, "12");
        free(s);
        assert_null(list_field_text(list_field_find("swap"), v));
        assert_null(list_field_text(list_field_find("hostname"), v));
        assert_null(list_field_text(list_field_find("numproc.l"), v));
        json_decref(v);
}

static void test_compare(void **state)
{
        json_t *a = ve("{\"ctid\": 101, \"ram\": 10, \"name\": \"web10\"}");
        json_t *b = ve("{\"ctid\": 102, \"ram\": 9, \"name\": \"web9\"}");
        json_t *c = ve("{\"ctid\": 103, \"ram\": null, \"name\": \"web9\"}");
        struct list_sort s = { list_field_find("ram"), false };

        (void)state;
        assert_true(list_compare(&s, a, b) > 0); /* 10 > 9, not "10" < "9" */
        assert_true(list_compare(&s, c, b) < 0); /* missing values first */
        s.desc = true;
        assert_true(list_compare(&s, a, b) < 0);
        s = (struct list_sort){ list_field_find("name"), false };
        assert_true(list_compare(&s, b, a) < 0); /* web9 before web10 */
        assert_true(list_compare(&s, b, c) < 0); /* equal names: by CTID */
        json_decref(a);
        json_decref(b);
        json_decref(c);
}

static void test_table(void **state)
{
        static const struct table_column cols[] = { { "CTID", true }, { "HOSTNAME", false } };
        const char *row1[] = { "101", "a.example.com" };
        const char *row2[] = { "20000", NULL };
        struct ve_error err = { 0 };
        struct table t;
        char *out = NULL;
        size_t len = 0;
        FILE *f;

        (void)state;
        table_init(&t, cols, 2);
        assert_int_equal(table_add_row(&t, row1, &err), 0);
        assert_int_equal(table_add_row(&t, row2, &err), 0);
        f = open_memstream(&out, &len);
        assert_non_null(f);
        table_print(&t, f, true);
        fclose(f);
        assert_string_equal(out, " CTID  HOSTNAME\n"
                                 "  101  a.example.com\n"
                                 "20000  -\n");
        free(out);
        table_free(&t);
}

static void test_exit_codes(void **state)
{
        static const struct {
                int code;
                int exit;
        } cases[] = {
                { CLI_EHTTP + 404, CLI_EXIT_NOTFOUND },
                { CLI_EHTTP + 409, CLI_EXIT_CONFLICT },
                { CLI_EHTTP + 412, CLI_EXIT_CONFLICT },
                { CLI_EHTTP + 400, CLI_EXIT_INVALID },
                { CLI_EHTTP + 405, CLI_EXIT_INVALID },
                { CLI_EHTTP + 413, CLI_EXIT_INVALID },
                { CLI_EHTTP + 415, CLI_EXIT_INVALID },
                { CLI_EHTTP + 422, CLI_EXIT_INVALID },
                { CLI_EHTTP + 500, CLI_EXIT_ERROR },
                { CLI_EHTTP + 501, CLI_EXIT_ERROR },
                { CLI_EUSAGE, CLI_EXIT_USAGE },
                { VE_EINVAL_INPUT, CLI_EXIT_USAGE },
                { CLI_EUNREACHABLE, CLI_EXIT_UNREACHABLE },
                { CLI_EOPFAILED, CLI_EXIT_OPFAILED },
                { ENOMEM, CLI_EXIT_ERROR },
        };

        (void)state;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct ve_error err = { .code = cases[i].code };

                assert_int_equal(cli_exit_code(&err), cases[i].exit);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fields_default), cmocka_unit_test(test_fields_unknown),
                cmocka_unit_test(test_sort_parse),     cmocka_unit_test(test_cells),
                cmocka_unit_test(test_compare),        cmocka_unit_test(test_table),
                cmocka_unit_test(test_exit_codes),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
