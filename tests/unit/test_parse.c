/* ve/parse.c: the language of sizes, counts, CTIDs, names, hostnames and IP
 * addresses that the API and vectl share. Pure functions, no fixtures. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ve/error.h"
#include "ve/parse.h"

#define KiB (1024ull)
#define MiB (1024ull * KiB)
#define GiB (1024ull * MiB)
#define TiB (1024ull * GiB)
#define PiB (1024ull * TiB)

/* --- helpers --- */

static void size_ok(const char *s, uint64_t want)
{
        struct ve_error err = { 0 };
        uint64_t v = 0xdeadbeef;
        int ret = ve_parse_size(s, &v, "ram", &err);

        if (ret != 0)
                print_error("ve_parse_size(\"%s\"): %s\n", s, err.message);
        assert_int_equal(ret, 0);
        assert_int_equal(v, want);
        assert_null(err.message);
}

/* A refused size: -VE_EINVAL_INPUT, the output untouched, and a message naming the
 * option and (when not empty) the bad text. */
static void size_bad(const char *s)
{
        struct ve_error err = { 0 };
        uint64_t v = 12345;
        int ret = ve_parse_size(s, &v, "diskspace", &err);

        if (ret == 0)
                print_error("ve_parse_size(\"%s\") accepted: %llu\n", s ? s : "(null)",
                            (unsigned long long)v);
        assert_int_equal(ret, -VE_EINVAL_INPUT);
        assert_int_equal(err.code, VE_EINVAL_INPUT);
        assert_int_equal(v, 12345);
        assert_non_null(err.message);
        assert_non_null(strstr(err.message, "diskspace"));
        if (s != NULL && *s != '\0')
                assert_non_null(strstr(err.message, s));
        ve_error_clear(&err);
}

static void uint_bad(const char *s, uint64_t max)
{
        struct ve_error err = { 0 };
        uint64_t v = 7;

        assert_int_equal(ve_parse_uint(s, max, &v, "cpus", &err), -VE_EINVAL_INPUT);
        assert_int_equal(v, 7);
        assert_non_null(err.message);
        assert_non_null(strstr(err.message, "cpus"));
        ve_error_clear(&err);
}

static void check_rc(int (*check)(const char *, struct ve_error *), const char *s, bool ok)
{
        struct ve_error err = { 0 };
        int ret = check(s, &err);

        if ((ret == 0) != ok)
                print_error("'%s': expected %s, got %d (%s)\n", s, ok ? "ok" : "refused", ret,
                            err.message ? err.message : "no message");
        if (ok) {
                assert_int_equal(ret, 0);
                assert_null(err.message);
        } else {
                assert_int_equal(ret, -VE_EINVAL_INPUT);
                assert_int_equal(err.code, VE_EINVAL_INPUT);
                assert_non_null(err.message);
        }
        ve_error_clear(&err);
}

static void ip_ok(const char *s, const char *canon, int family)
{
        struct ve_error err = { 0 };
        char out[64] = "";
        int fam = -1;
        int ret = ve_parse_ip(s, out, &fam, &err);

        if (ret != 0)
                print_error("ve_parse_ip(\"%s\"): %s\n", s, err.message);
        assert_int_equal(ret, 0);
        assert_string_equal(out, canon);
        assert_int_equal(fam, family);
        assert_null(err.message);
}

static void ip_bad(const char *s)
{
        struct ve_error err = { 0 };
        char out[64] = "untouched";
        int fam = -1;

        assert_int_equal(ve_parse_ip(s, out, &fam, &err), -VE_EINVAL_INPUT);
        assert_int_equal(fam, -1);
        assert_non_null(err.message);
        if (s != NULL && *s != '\0')
                assert_non_null(strstr(err.message, s));
        ve_error_clear(&err);
}

/* --- sizes --- */

static void test_size_units(void **state)
{
        (void)state;
        size_ok("2G", 2 * GiB);
        size_ok("2g", 2 * GiB);
        size_ok("512M", 512 * MiB);
        size_ok("100k", 100 * KiB);
        size_ok("100K", 100 * KiB);
        size_ok("3T", 3 * TiB);
        size_ok("1P", PiB);
        size_ok("4096", 4096);
        size_ok("0", 0);
        size_ok("1KiB", KiB);
        size_ok("1kb", KiB);
        size_ok("1GB", GiB);
        size_ok("1gib", GiB);
        size_ok("4096B", 4096);
        size_ok("4096b", 4096);
        size_ok("007M", 7 * MiB);
}

static void test_size_fractions(void **state)
{
        (void)state;
        size_ok("1.5G", GiB + GiB / 2);
        size_ok("0.5M", MiB / 2);
        size_ok("2.25K", 2 * KiB + KiB / 4);
        size_ok("1.0G", GiB);
        /* Digits past the sixth are ignored, not an error. */
        size_ok("1.50000000G", GiB + GiB / 2);
        size_ok("1.5T", TiB + TiB / 2);
        size_ok("1.5P", PiB + PiB / 2);
        /* Many fraction digits with the largest unit must not wrap around. */
        size_ok("1.75P", PiB + 3 * PiB / 4);
        size_ok("1.99999P", PiB + (uint64_t)((unsigned __int128)99999 * PiB / 100000));
        size_ok("0.999999P", (uint64_t)((unsigned __int128)999999 * PiB / 1000000));
}

static void test_size_overflow(void **state)
{
        (void)state;
        /* 2^24 T = 2^64 bytes: one past what fits. */
        size_bad("16777216T");
        size_ok("16777215T", 16777215ull * TiB);
        size_bad("99999999999999999999");
        size_bad("18446744073709551616");
        size_ok("18446744073709551615", UINT64_MAX);
        size_bad("16384P");
        /* The largest whole number of P; a fraction of a unit can never overflow it. */
        size_ok("16383P", 16383 * PiB);
        size_ok("16383.5P", 16383 * PiB + PiB / 2);
}

static void test_size_bad_input(void **state)
{
        (void)state;
        size_bad("2X");
        size_bad("");
        size_bad(NULL);
        size_bad("G");
        size_bad("-1");
        size_bad("+1G");
        size_bad(" 1G");
        size_bad("1G ");
        size_bad("1.G");
        size_bad(".5G");
        size_bad("1.5");  /* a fraction of a byte */
        size_bad("1.5B"); /* the same, spelled with B */
        size_bad("1GG");
        size_bad("1Gx");
        size_bad("1iB");
        size_bad("1KiBB");
        size_bad("1e9");
        size_bad("0x10");
        size_bad("1,5G");
}

/* --- plain integers, percentages, booleans --- */

static void test_uint(void **state)
{
        struct ve_error err = { 0 };
        uint64_t v = 0;

        (void)state;
        assert_int_equal(ve_parse_uint("0", 10, &v, "cpus", &err), 0);
        assert_int_equal(v, 0);
        assert_int_equal(ve_parse_uint("10", 10, &v, "cpus", &err), 0);
        assert_int_equal(v, 10);
        assert_int_equal(ve_parse_uint("18446744073709551615", UINT64_MAX, &v, "cpus", &err), 0);
        assert_int_equal(v, UINT64_MAX);
        assert_null(err.message);

        uint_bad("11", 10);
        uint_bad("18446744073709551616", UINT64_MAX);
        uint_bad("", 10);
        uint_bad(NULL, 10);
        uint_bad("-1", 10);
        uint_bad("+1", 10);
        uint_bad("1k", 10);
        uint_bad("1.0", 10);
        uint_bad(" 1", 10);

        /* The range message names the maximum. */
        assert_int_equal(ve_parse_uint("4097", 4096, &v, "cpus", &err), -VE_EINVAL_INPUT);
        assert_non_null(strstr(err.message, "4096"));
        ve_error_clear(&err);
}

static void test_percent(void **state)
{
        struct ve_error err = { 0 };
        uint64_t v = 99;

        (void)state;
        assert_int_equal(ve_parse_percent("50", &v, "cpulimit", &err), 0);
        assert_int_equal(v, 50);
        assert_int_equal(ve_parse_percent("50%", &v, "cpulimit", &err), 0);
        assert_int_equal(v, 50);
        assert_int_equal(ve_parse_percent("409600%", &v, "cpulimit", &err), 0);
        assert_int_equal(v, 409600);
        /* The parser itself takes 0; callers that need at least 1 check ranges. */
        assert_int_equal(ve_parse_percent("0", &v, "cpulimit", &err), 0);
        assert_int_equal(v, 0);
        assert_null(err.message);

        v = 99;
        assert_int_equal(ve_parse_percent("409601", &v, "cpulimit", &err), -VE_EINVAL_INPUT);
        assert_non_null(strstr(err.message, "cpulimit"));
        ve_error_clear(&err);
        assert_int_equal(ve_parse_percent("99999999999999999999%", &v, "cpulimit", &err),
                         -VE_EINVAL_INPUT);
        ve_error_clear(&err);
        assert_int_equal(ve_parse_percent("%", &v, "cpulimit", &err), -VE_EINVAL_INPUT);
        ve_error_clear(&err);
        assert_int_equal(ve_parse_percent("50%%", &v, "cpulimit", &err), -VE_EINVAL_INPUT);
        ve_error_clear(&err);
        assert_int_equal(ve_parse_percent("%50", &v, "cpulimit", &err), -VE_EINVAL_INPUT);
        ve_error_clear(&err);
        assert_int_equal(ve_parse_percent("", &v, "cpulimit", &err), -VE_EINVAL_INPUT);
        ve_error_clear(&err);
        assert_int_equal(ve_parse_percent(NULL, &v, "cpulimit", &err), -VE_EINVAL_INPUT);
        ve_error_clear(&err);
        assert_int_equal(ve_parse_percent("-5%", &v, "cpulimit", &err), -VE_EINVAL_INPUT);
        ve_error_clear(&err);
        assert_int_equal(ve_parse_percent("0.5%", &v, "cpulimit", &err), -VE_EINVAL_INPUT);
        ve_error_clear(&err);
        assert_int_equal(v, 99);
}

static void test_bool(void **state)
{
        static const char *yes[] = { "yes", "YES", "true", "True", "on", "ON", "1" };
        static const char *no[] = { "no", "No", "false", "FALSE", "off", "Off", "0" };
        static const char *bad[] = { "", "y", "n", "2", "yess", "truee", "of", " yes", "-1" };
        struct ve_error err = { 0 };
        bool b;

        (void)state;
        for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
                b = false;
                assert_int_equal(ve_parse_bool(yes[i], &b, "onboot", &err), 0);
                assert_true(b);
        }
        for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
                b = true;
                assert_int_equal(ve_parse_bool(no[i], &b, "onboot", &err), 0);
                assert_false(b);
        }
        assert_null(err.message);
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                b = true;
                assert_int_equal(ve_parse_bool(bad[i], &b, "onboot", &err), -VE_EINVAL_INPUT);
                assert_true(b);
                assert_non_null(strstr(err.message, "onboot"));
                ve_error_clear(&err);
        }
        assert_int_equal(ve_parse_bool(NULL, &b, "onboot", &err), -VE_EINVAL_INPUT);
        ve_error_clear(&err);
}

/* --- CTIDs --- */

static void test_check_ctid(void **state)
{
        struct ve_error err = { 0 };

        (void)state;
        assert_int_equal(ve_check_ctid(101, &err), 0);
        assert_int_equal(ve_check_ctid(VE_CTID_MAX, &err), 0);
        assert_null(err.message);

        assert_int_equal(ve_check_ctid(100, &err), -VE_EINVAL_INPUT);
        assert_non_null(strstr(err.message, "reserved"));
        ve_error_clear(&err);
        assert_int_equal(ve_check_ctid(0, &err), -VE_EINVAL_INPUT);
        ve_error_clear(&err);
        assert_int_equal(ve_check_ctid(2147483648ull, &err), -VE_EINVAL_INPUT);
        assert_non_null(strstr(err.message, "2147483648"));
        ve_error_clear(&err);
        assert_int_equal(ve_check_ctid(UINT64_MAX, &err), -VE_EINVAL_INPUT);
        ve_error_clear(&err);
}

static void test_parse_ctid(void **state)
{
        struct ve_error err = { 0 };
        uint32_t ctid = 0;

        (void)state;
        assert_int_equal(ve_parse_ctid("101", &ctid, &err), 0);
        assert_int_equal(ctid, 101);
        assert_int_equal(ve_parse_ctid("2147483647", &ctid, &err), 0);
        assert_int_equal(ctid, 2147483647u);
        assert_null(err.message);

        /* Numbers that are CTIDs but out of range: refused with a message. */
        ctid = 5;
        assert_int_equal(ve_parse_ctid("100", &ctid, &err), -VE_EINVAL_INPUT);
        assert_non_null(err.message);
        ve_error_clear(&err);
        assert_int_equal(ve_parse_ctid("2147483648", &ctid, &err), -VE_EINVAL_INPUT);
        assert_non_null(err.message);
        ve_error_clear(&err);
        assert_int_equal(ve_parse_ctid("4294967397", &ctid, &err), -VE_EINVAL_INPUT);
        ve_error_clear(&err);
        assert_int_equal(ve_parse_ctid("99999999999999999999999", &ctid, &err), -VE_EINVAL_INPUT);
        assert_non_null(strstr(err.message, "too large"));
        ve_error_clear(&err);
        assert_int_equal(ctid, 5);

        /* Not all digits: quietly -EINVAL so the caller can try it as a name. */
        static const char *names[] = { "abc", "101x", "x101", "", " 101", "-101", "+101", "1e3" };
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                assert_int_equal(ve_parse_ctid(names[i], &ctid, &err), -EINVAL);
                assert_int_equal(err.code, 0);
                assert_null(err.message);
                assert_int_equal(ctid, 5);
        }
        assert_int_equal(ve_parse_ctid(NULL, &ctid, &err), -EINVAL);
        assert_null(err.message);
}

/* --- names and hostnames --- */

static void test_check_name(void **state)
{
        char name[80];

        (void)state;
        check_rc(ve_check_name, "web", true);
        check_rc(ve_check_name, "Web-01.example_a", true);
        check_rc(ve_check_name, "a", true);
        check_rc(ve_check_name, "", false);
        check_rc(ve_check_name, NULL, false);
        check_rc(ve_check_name, "101", false);
        check_rc(ve_check_name, "1web", false);
        check_rc(ve_check_name, "-web", false);
        check_rc(ve_check_name, "_web", false);
        check_rc(ve_check_name, ".web", false);
        check_rc(ve_check_name, "web server", false);
        check_rc(ve_check_name, "web/1", false);
        check_rc(ve_check_name, "web:1", false);
        check_rc(ve_check_name, "wéb", false);
        check_rc(ve_check_name, "web\n", false);

        memset(name, 'a', 64);
        name[64] = '\0';
        check_rc(ve_check_name, name, true);
        name[64] = 'a';
        name[65] = '\0';
        check_rc(ve_check_name, name, false);
}

static void test_check_name_message(void **state)
{
        struct ve_error err = { 0 };

        (void)state;
        assert_int_equal(ve_check_name("9lives", &err), -VE_EINVAL_INPUT);
        assert_non_null(strstr(err.message, "9lives"));
        assert_non_null(strstr(err.message, "letter"));
        ve_error_clear(&err);
        assert_int_equal(ve_check_name("a$b", &err), -VE_EINVAL_INPUT);
        assert_non_null(strstr(err.message, "a$b"));
        ve_error_clear(&err);
}

static void test_check_hostname(void **state)
{
        char label[70], host[300];

        (void)state;
        check_rc(ve_check_hostname, "web", true);
        check_rc(ve_check_hostname, "web01.example.com", true);
        check_rc(ve_check_hostname, "a-b.c-d.example", true);
        check_rc(ve_check_hostname, "1.2.3.4", true); /* RFC 1123 allows digits first */
        check_rc(ve_check_hostname, "xn--bcher-kva.example", true);
        check_rc(ve_check_hostname, "", false);
        check_rc(ve_check_hostname, NULL, false);
        check_rc(ve_check_hostname, "web_01.example.com", false);
        check_rc(ve_check_hostname, "-web.example.com", false);
        check_rc(ve_check_hostname, "web-.example.com", false);
        check_rc(ve_check_hostname, "web.-example.com", false);
        check_rc(ve_check_hostname, "web.example-", false);
        check_rc(ve_check_hostname, "a..b", false);
        check_rc(ve_check_hostname, ".example.com", false);
        check_rc(ve_check_hostname, "-", false);
        check_rc(ve_check_hostname, ".", false);
        /* A trailing dot (absolute FQDN) is not a hostname a VE can be given. */
        check_rc(ve_check_hostname, "example.com.", false);
        check_rc(ve_check_hostname, "web example", false);
        check_rc(ve_check_hostname, "web/1", false);
        check_rc(ve_check_hostname, "wéb", false);

        /* Labels: 63 fine, 64 too long, wherever the label is. */
        memset(label, 'a', 63);
        label[63] = '\0';
        check_rc(ve_check_hostname, label, true);
        snprintf(host, sizeof(host), "x.%s.com", label);
        check_rc(ve_check_hostname, host, true);
        label[63] = 'a';
        label[64] = '\0';
        check_rc(ve_check_hostname, label, false);
        snprintf(host, sizeof(host), "x.%s.com", label);
        check_rc(ve_check_hostname, host, false);
        snprintf(host, sizeof(host), "x.%s", label);
        check_rc(ve_check_hostname, host, false);

        /* Total length: 253 fine, 254 too long (4 labels of 63 + 3 dots = 255). */
        memset(host, 'a', sizeof(host));
        for (int i = 63; i < 253; i += 64)
                host[i] = '.';
        host[253] = '\0';
        check_rc(ve_check_hostname, host, true);
        host[253] = 'b';
        host[254] = '\0';
        check_rc(ve_check_hostname, host, false);
}

static void test_check_template_name(void **state)
{
        char name[140];

        (void)state;
        check_rc(ve_check_template_name, "debian-12-amd64", true);
        check_rc(ve_check_template_name, "12debian_x.y", true);
        check_rc(ve_check_template_name, "", false);
        check_rc(ve_check_template_name, ".hidden", false);
        check_rc(ve_check_template_name, "-rf", false);
        check_rc(ve_check_template_name, "../etc", false);
        check_rc(ve_check_template_name, "a/b", false);
        memset(name, 'a', 128);
        name[128] = '\0';
        check_rc(ve_check_template_name, name, true);
        name[128] = 'a';
        name[129] = '\0';
        check_rc(ve_check_template_name, name, false);
}

/* --- IP addresses --- */

static void test_ip_v4(void **state)
{
        (void)state;
        ip_ok("10.0.0.1", "10.0.0.1", AF_INET);
        ip_ok("10.0.0.1/24", "10.0.0.1/24", AF_INET);
        ip_ok("10.0.0.1/0", "10.0.0.1/0", AF_INET);
        ip_ok("10.0.0.1/32", "10.0.0.1/32", AF_INET);
        ip_ok("10.0.0.1/024", "10.0.0.1/24", AF_INET);
        ip_bad("10.0.0.1/33");
        ip_bad("10.0.0.1/");
        ip_bad("10.0.0.1/-1");
        ip_bad("10.0.0.1/24/8");
        ip_bad("10.0.0.1/ab");
        ip_bad("10.0.0.256");
        ip_bad("10.0.0");
        ip_bad("010.0.0.1");
        ip_bad("10.0.0.1 ");
        ip_bad("/24");
}

static void test_ip_v6(void **state)
{
        (void)state;
        ip_ok("2001:DB8::0:1", "2001:db8::1", AF_INET6);
        ip_ok("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1", AF_INET6);
        ip_ok("::1", "::1", AF_INET6);
        ip_ok("::", "::", AF_INET6);
        ip_ok("2001:db8::1/64", "2001:db8::1/64", AF_INET6);
        ip_ok("2001:db8::1/128", "2001:db8::1/128", AF_INET6);
        ip_ok("::ffff:10.0.0.1", "::ffff:10.0.0.1", AF_INET6);
        ip_bad("2001:db8::1/129");
        ip_bad("2001:db8:::1");
        ip_bad("2001:db8::g");
        ip_bad("[2001:db8::1]");
        ip_bad("fe80::1%eth0");
}

static void test_ip_garbage(void **state)
{
        char longer[100];

        (void)state;
        ip_bad("");
        ip_bad(NULL);
        ip_bad("example.com");
        ip_bad("localhost");
        ip_bad("1");
        memset(longer, '1', sizeof(longer) - 1);
        longer[sizeof(longer) - 1] = '\0';
        ip_bad(longer);
}

/* family may be NULL; the error message says which address was bad. */
static void test_ip_details(void **state)
{
        struct ve_error err = { 0 };
        char out[64];

        (void)state;
        assert_int_equal(ve_parse_ip("192.0.2.7", out, NULL, &err), 0);
        assert_string_equal(out, "192.0.2.7");
        assert_int_equal(ve_parse_ip("192.0.2.7/40", out, NULL, &err), -VE_EINVAL_INPUT);
        assert_non_null(strstr(err.message, "192.0.2.7/40"));
        assert_non_null(strstr(err.message, "prefix"));
        ve_error_clear(&err);
}

/* --- formatting --- */

static void fmt_is(uint64_t bytes, const char *want)
{
        char buf[32];

        assert_ptr_equal(ve_format_size(bytes, buf, sizeof(buf)), buf);
        assert_string_equal(buf, want);
}

static void test_format_size(void **state)
{
        char small[4];

        (void)state;
        fmt_is(0, "0B");
        fmt_is(12, "12B");
        fmt_is(1023, "1023B");
        fmt_is(KiB, "1K");
        fmt_is(100 * KiB, "100K");
        fmt_is(1536, "1.5K");
        fmt_is(512 * MiB, "512M");
        fmt_is(2 * GiB, "2G");
        fmt_is(GiB + GiB / 2, "1.5G");
        fmt_is(3 * TiB, "3T");
        fmt_is(PiB, "1P");
        /* P is the largest unit: bigger sizes stay in P. */
        fmt_is(2048 * PiB, "2048P");

        /* What it formats parses back to the same size when it is whole. */
        for (uint64_t v = 1; v < PiB; v *= 3) {
                char buf[32];
                struct ve_error err = { 0 };
                uint64_t back = 0;

                ve_format_size(v << 10, buf, sizeof(buf));
                assert_int_equal(ve_parse_size(buf, &back, "x", &err), 0);
                if (strchr(buf, '.') == NULL)
                        assert_int_equal(back, v << 10);
        }

        /* A short buffer is truncated, not overrun. */
        memset(small, 'x', sizeof(small));
        ve_format_size(512 * MiB, small, sizeof(small));
        assert_string_equal(small, "512");
}

static void test_subnet(void **state)
{
        static const char *const bad4[] = {
                "10.199.0.1",      "10.199.0.1/",
                "10.199.0.1/7",    "10.199.0.1/31",
                "10.199.0.1/24x",  "10.199.0.1/+24",
                "10.199.0.1/ 24",  "fd00::1/64",
                "10.199.0/24",     "",
                "10.199.0.1/24/1", "10.199.0.1/99999999999999999999999",
        };
        static const char *const bad6[] = { "fd00::1/15", "fd00::1/127", "10.0.0.1/24",
                                            "fd00::1/-64", "fd00::g/64" };
        struct ve_subnet s;

        (void)state;
        assert_int_equal(ve_parse_subnet("10.199.0.1/24", AF_INET, &s), 0);
        assert_string_equal(s.addr, "10.199.0.1");
        assert_string_equal(s.network, "10.199.0.0/24");
        assert_int_equal(s.prefix, 24);
        assert_int_equal(s.family, AF_INET);
        assert_int_equal(ve_parse_subnet("172.16.33.129/25", AF_INET, &s), 0);
        assert_string_equal(s.network, "172.16.33.128/25");
        assert_int_equal(ve_parse_subnet("10.255.255.254/8", AF_INET, &s), 0);
        assert_string_equal(s.network, "10.0.0.0/8");
        assert_int_equal(ve_parse_subnet("fd00:199::1/64", AF_INET6, &s), 0);
        assert_string_equal(s.addr, "fd00:199::1");
        assert_string_equal(s.network, "fd00:199::/64");
        assert_int_equal(ve_parse_subnet("fd00:199:0:0:ffff::1/67", AF_INET6, &s), 0);
        assert_string_equal(s.network, "fd00:199:0:0:e000::/67");
        for (size_t i = 0; i < sizeof(bad4) / sizeof(bad4[0]); i++)
                assert_int_equal(ve_parse_subnet(bad4[i], AF_INET, &s), -EINVAL);
        for (size_t i = 0; i < sizeof(bad6) / sizeof(bad6[0]); i++)
                assert_int_equal(ve_parse_subnet(bad6[i], AF_INET6, &s), -EINVAL);
        assert_int_equal(ve_parse_subnet(NULL, AF_INET, &s), -EINVAL);
        assert_true(ve_subnet_prefix_ok(AF_INET, 30) && !ve_subnet_prefix_ok(AF_INET, 31));
        assert_true(ve_subnet_prefix_ok(AF_INET6, 16) && !ve_subnet_prefix_ok(AF_INET6, 127));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_size_units),     cmocka_unit_test(test_subnet),
                cmocka_unit_test(test_size_fractions), cmocka_unit_test(test_size_overflow),
                cmocka_unit_test(test_size_bad_input), cmocka_unit_test(test_uint),
                cmocka_unit_test(test_percent),        cmocka_unit_test(test_bool),
                cmocka_unit_test(test_check_ctid),     cmocka_unit_test(test_parse_ctid),
                cmocka_unit_test(test_check_name),     cmocka_unit_test(test_check_name_message),
                cmocka_unit_test(test_check_hostname), cmocka_unit_test(test_check_template_name),
                cmocka_unit_test(test_ip_v4),          cmocka_unit_test(test_ip_v6),
                cmocka_unit_test(test_ip_garbage),     cmocka_unit_test(test_ip_details),
                cmocka_unit_test(test_format_size),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
