/* daemon/store.c against a real SQLite file in a temporary directory: the schema
 * and its migrations, VEs, operations, events, and what a crash in the middle of a
 * transaction leaves behind. Each test gets a fresh directory and removes it. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <sqlite3.h>

#include "daemon/store.h"
#include "ve/error.h"

#define GiB (1024ll * 1024 * 1024)

struct fixture {
        char dir[64];
        char path[128];
        struct ved_store store;
};

/* --- fixture and helpers --- */

static void remove_tree(const char *dir)
{
        DIR *d = opendir(dir);
        struct dirent *de;
        char p[512];

        if (d == NULL)
                return;
        while ((de = readdir(d)) != NULL) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
                unlink(p);
        }
        closedir(d);
        rmdir(dir);
}

static int setup(void **state)
{
        struct fixture *fx = calloc(1, sizeof(*fx));
        struct ve_error err = { 0 };

        if (fx == NULL)
                return -1;
        snprintf(fx->dir, sizeof(fx->dir), "/tmp/ved-test-store-XXXXXX");
        if (mkdtemp(fx->dir) == NULL) {
                free(fx);
                return -1;
        }
        snprintf(fx->path, sizeof(fx->path), "%s/ved.db", fx->dir);
        if (ved_store_open(fx->path, &fx->store, &err) < 0) {
                print_error("open %s: %s\n", fx->path, err.message);
                ve_error_clear(&err);
                remove_tree(fx->dir);
                free(fx);
                return -1;
        }
        *state = fx;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *fx = *state;

        ved_store_close(&fx->store);
        remove_tree(fx->dir);
        free(fx);
        return 0;
}

static void reopen(struct fixture *fx)
{
        struct ve_error err = { 0 };
        int ret;

        ved_store_close(&fx->store);
        ret = ved_store_open(fx->path, &fx->store, &err);
        if (ret < 0)
                print_error("reopen: %s\n", err.message);
        assert_int_equal(ret, 0);
        assert_non_null(fx->store.db);
}

/* Run SQL on a separate connection, as an admin with the sqlite3 shell would. */
static void raw_exec(const char *path, const char *sql)
{
        sqlite3 *db = NULL;
        char *msg = NULL;
        int rc;

        assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
        if (rc != SQLITE_OK)
                print_error("%s: %s\n", sql, msg);
        sqlite3_free(msg);
        sqlite3_close(db);
        assert_int_equal(rc, SQLITE_OK);
}

/* The first column of the first row of sql, as text, on a separate connection. */
static char *raw_query(const char *path, const char *sql)
{
        sqlite3_stmt *st = NULL;
        sqlite3 *db = NULL;
        char *out = NULL;

        assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
                out = strdup((const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        sqlite3_close(db);
        return out;
}

static long raw_int(const char *path, const char *sql)
{
        char *s = raw_query(path, sql);
        long v;

        assert_non_null(s);
        v = strtol(s, NULL, 10);
        free(s);
        return v;
}

static void assert_integrity(const char *path)
{
        char *s = raw_query(path, "PRAGMA integrity_check");

        assert_non_null(s);
        assert_string_equal(s, "ok");
        free(s);
        s = raw_query(path, "PRAGMA foreign_key_check");
        assert_null(s);
}

/* Names of the *.bak-v* files next to the database, comma separated ("" if none). */
static void backups(const struct fixture *fx, char *buf, size_t len)
{
        DIR *d = opendir(fx->dir);
        struct dirent *de;

        assert_non_null(d);
        buf[0] = '\0';
        while ((de = readdir(d)) != NULL) {
                if (strstr(de->d_name, ".bak") == NULL)
                        continue;
                if (buf[0] != '\0')
                        strncat(buf, ",", len - strlen(buf) - 1);
                strncat(buf, de->d_name, len - strlen(buf) - 1);
        }
        closedir(d);
}

static json_t *make_ve(uint32_t ctid, const char *name, const char *state)
{
        json_t *ve = json_pack("{s:I, s:s, s:s, s:I, s:b, s:[s]}", "ctid", (json_int_t)ctid,
                               "state", state, "ostemplate", "debian-12", "ram",
                               (json_int_t)(512 << 20), "onboot", 1, "ip", "10.0.0.1/24");

        assert_non_null(ve);
        if (name != NULL)
                json_object_set_new(ve, "name", json_string(name));
        return ve;
}

static void insert_ve(struct fixture *fx, uint32_t ctid, const char *name, const char *state)
{
        struct ve_error err = { 0 };
        json_t *ve = make_ve(ctid, name, state);
        int ret = ved_store_ve_insert(&fx->store, ve, &err);

        if (ret < 0)
                print_error("insert %u: %s\n", ctid, err.message);
        json_decref(ve);
        assert_int_equal(ret, 0);
}

static json_t *get_ve(struct fixture *fx, const char *id)
{
        struct ve_error err = { 0 };
        json_t *ve = NULL;
        int ret = ved_store_ve_get(&fx->store, id, &ve, &err);

        if (ret < 0)
                print_error("get %s: %s\n", id, err.message);
        assert_int_equal(ret, 0);
        assert_non_null(ve);
        return ve;
}

static void assert_no_ve(struct fixture *fx, const char *id)
{
        struct ve_error err = { 0 };
        json_t *ve = NULL;

        assert_int_equal(ved_store_ve_get(&fx->store, id, &ve, &err), -VE_ENOTFOUND);
        assert_null(ve);
        assert_non_null(strstr(err.message, id));
        ve_error_clear(&err);
}

static json_int_t ve_int(json_t *ve, const char *key)
{
        json_t *v = json_object_get(ve, key);

        assert_true(json_is_integer(v));
        return json_integer_value(v);
}

static const char *ve_str(json_t *ve, const char *key)
{
        json_t *v = json_object_get(ve, key);

        assert_true(json_is_string(v));
        return json_string_value(v);
}

/* "101,103" from a list of records. */
static void ids_of(json_t *list, const char *key, char *buf, size_t len)
{
        size_t i;
        json_t *v;

        buf[0] = '\0';
        json_array_foreach(list, i, v)
        {
                snprintf(buf + strlen(buf), len - strlen(buf), "%s%lld", i ? "," : "",
                         (long long)json_integer_value(json_object_get(v, key)));
        }
}

/* --- schema --- */

static void test_open_creates_schema(void **state)
{
        struct fixture *fx = *state;
        char *mode, bak[256];

        assert_int_equal(raw_int(fx->path, "PRAGMA user_version"), VED_SCHEMA_VERSION);
        mode = raw_query(fx->path, "PRAGMA journal_mode");
        assert_non_null(mode);
        assert_string_equal(mode, "wal");
        free(mode);
        static const char *tables[] = { "ves", "operations", "events", "templates", "meta" };
        for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
                char sql[128];

                snprintf(sql, sizeof(sql),
                         "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='%s'",
                         tables[i]);
                assert_int_equal(raw_int(fx->path, sql), 1);
        }
        assert_integrity(fx->path);
        /* A fresh database has nothing to go back to: no backup. */
        backups(fx, bak, sizeof(bak));
        assert_string_equal(bak, "");
        /* The connection enforces foreign keys. */
        {
                sqlite3_stmt *st = NULL;

                assert_int_equal(
                    sqlite3_prepare_v2(fx->store.db, "PRAGMA foreign_keys", -1, &st, NULL),
                    SQLITE_OK);
                assert_int_equal(sqlite3_step(st), SQLITE_ROW);
                assert_int_equal(sqlite3_column_int(st, 0), 1);
                sqlite3_finalize(st);
        }
}

static void test_reopen_idempotent(void **state)
{
        struct fixture *fx = *state;
        char bak[256];
        json_t *ve;

        insert_ve(fx, 101, "web", "stopped");
        reopen(fx);
        reopen(fx);
        assert_int_equal(raw_int(fx->path, "PRAGMA user_version"), VED_SCHEMA_VERSION);
        ve = get_ve(fx, "web");
        assert_int_equal(ve_int(ve, "ctid"), 101);
        assert_int_equal(ve_int(ve, "version"), 1);
        json_decref(ve);
        assert_int_equal(ved_store_ve_count(&fx->store, NULL), 1);
        backups(fx, bak, sizeof(bak));
        assert_string_equal(bak, "");
        assert_integrity(fx->path);
}

static void test_newer_schema_refused(void **state)
{
        struct fixture *fx = *state;
        struct ve_error err = { 0 };
        char sql[64], newer[16], known[16];

        insert_ve(fx, 101, "web", "stopped");
        ved_store_close(&fx->store);
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", VED_SCHEMA_VERSION + 1);
        raw_exec(fx->path, sql);

        assert_int_equal(ved_store_open(fx->path, &fx->store, &err), -EPROTO);
        assert_int_equal(err.code, EPROTO);
        assert_null(fx->store.db);
        assert_null(fx->store.path);
        /* The message names both versions and the file. */
        snprintf(newer, sizeof(newer), "%d", VED_SCHEMA_VERSION + 1);
        snprintf(known, sizeof(known), "%d", VED_SCHEMA_VERSION);
        assert_non_null(strstr(err.message, newer));
        assert_non_null(strstr(strstr(err.message, newer) + 1, known));
        assert_non_null(strstr(err.message, fx->path));
        ve_error_clear(&err);
        /* Nothing was touched. */
        assert_int_equal(raw_int(fx->path, "PRAGMA user_version"), VED_SCHEMA_VERSION + 1);
        assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM ves"), 1);

        /* Back at the known version it opens again (teardown closes it). */
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", VED_SCHEMA_VERSION);
        raw_exec(fx->path, sql);
        reopen(fx);
}

/* Undo migrations, newest first, to build a database as an older ved left it.
 * down[v] takes the schema from v + 1 back to v; a new migration needs its
 * inverse here, which the _Static_assert below asks for. */
static const char *const down[] = {
        NULL, /* 1 -> 0 would be an empty file; a fresh open covers it */
        "DROP TABLE meta;",
        "DROP INDEX ves_idmap_base; ALTER TABLE ves DROP COLUMN idmap_base;",
        "DROP TABLE traffic; ALTER TABLE ves DROP COLUMN bridge;"
        "ALTER TABLE ves DROP COLUMN netif;",
        "ALTER TABLE ves DROP COLUMN layout;",
};
_Static_assert(sizeof(down) / sizeof(down[0]) == VED_SCHEMA_VERSION,
               "add the inverse of the new migration to down[]");

static void downgrade(struct fixture *fx, int to)
{
        char sql[64];

        ved_store_close(&fx->store);
        for (int v = VED_SCHEMA_VERSION - 1; v >= to; v--)
                raw_exec(fx->path, down[v]);
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", to);
        raw_exec(fx->path, sql);
}

/* Every older schema migrates to the current one, keeping the data, after a
 * copy of the old database is made. */
static void test_migrate_from_each_older_version(void **state)
{
        struct fixture *fx = *state;

        for (int from = 1; from < VED_SCHEMA_VERSION; from++) {
                struct ve_error err = { 0 };
                char bak[256], want[64], bakpath[192], *v;
                json_t *ve;

                insert_ve(fx, (uint32_t)(200 + from), NULL, "stopped");
                downgrade(fx, from);
                assert_int_equal(raw_int(fx->path, "PRAGMA user_version"), from);
                reopen(fx);

                assert_int_equal(raw_int(fx->path, "PRAGMA user_version"), VED_SCHEMA_VERSION);
                backups(fx, bak, sizeof(bak));
                snprintf(want, sizeof(want), "ved.db.bak-v%d", from);
                assert_non_null(strstr(bak, want));
                /* The copy is the old database, data and version. */
                snprintf(bakpath, sizeof(bakpath), "%s/%s", fx->dir, want);
                assert_int_equal(raw_int(bakpath, "PRAGMA user_version"), from);
                assert_int_equal(raw_int(bakpath, "SELECT count(*) FROM ves WHERE ctid = 201"), 1);
                assert_integrity(bakpath);

                /* The data came through, and the new schema works. */
                ve = get_ve(fx, "201");
                assert_string_equal(ve_str(ve, "ostemplate"), "debian-12");
                assert_int_equal(ve_int(ve, "ram"), 512 << 20);
                json_decref(ve);
                assert_int_equal(ved_store_meta_set(&fx->store, "boot", "abc", &err), 0);
                assert_int_equal(ved_store_ve_set_idmap(&fx->store, 201, 100000 * from, &err), 0);
                ve = get_ve(fx, "201");
                assert_int_equal(ve_int(ve, "idmap_base"), 100000 * from);
                json_decref(ve);
                assert_null(err.message);
                v = raw_query(fx->path, "SELECT value FROM meta WHERE key = 'boot'");
                assert_string_equal(v, "abc");
                free(v);
                assert_integrity(fx->path);
        }
}

/* A migration that fails is rolled back whole: the database stays at its old
 * version, usable by the old ved, and the copy is there. */
static void test_failed_migration_rolls_back(void **state)
{
        struct fixture *fx = *state;
        struct ve_error err = { 0 };
        char bak[256];

        insert_ve(fx, 101, "web", "stopped");
        downgrade(fx, 1);
        /* Make migration 1 -> 2 collide with a table already there; 2 -> 3 would work. */
        raw_exec(fx->path, "CREATE TABLE meta (x INTEGER)");
        assert_true(ved_store_open(fx->path, &fx->store, &err) < 0);
        assert_non_null(strstr(err.message, "migrate schema 1 to 2"));
        assert_non_null(strstr(err.message, "meta"));
        ve_error_clear(&err);
        assert_null(fx->store.db);

        assert_int_equal(raw_int(fx->path, "PRAGMA user_version"), 1);
        assert_int_equal(raw_int(fx->path,
                                 "SELECT count(*) FROM pragma_table_info('ves') WHERE name = "
                                 "'idmap_base'"),
                         0);
        assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM ves"), 1);
        backups(fx, bak, sizeof(bak));
        assert_string_equal(bak, "ved.db.bak-v1");
        assert_integrity(fx->path);

        /* Once the admin removes the obstacle, the migration goes through. */
        raw_exec(fx->path, "DROP TABLE meta");
        reopen(fx);
        assert_int_equal(raw_int(fx->path, "PRAGMA user_version"), VED_SCHEMA_VERSION);
}

static void test_open_bad_path(void **state)
{
        struct fixture *fx = *state;
        struct ve_error err = { 0 };
        struct ved_store other;
        char path[192];

        snprintf(path, sizeof(path), "%s/missing-dir/ved.db", fx->dir);
        assert_true(ved_store_open(path, &other, &err) < 0);
        assert_null(other.db);
        assert_non_null(strstr(err.message, path));
        ve_error_clear(&err);

        /* A file that is not a database is refused, not overwritten. */
        snprintf(path, sizeof(path), "%s/garbage.db", fx->dir);
        {
                FILE *f = fopen(path, "w");

                assert_non_null(f);
                for (int i = 0; i < 200; i++)
                        fputs("this is not an SQLite database\n", f);
                fclose(f);
        }
        assert_true(ved_store_open(path, &other, &err) < 0);
        assert_null(other.db);
        assert_non_null(err.message);
        ve_error_clear(&err);
        {
                FILE *f = fopen(path, "r");
                char line[64] = "";

                assert_non_null(f);
                assert_non_null(fgets(line, sizeof(line), f));
                fclose(f);
                assert_string_equal(line, "this is not an SQLite database\n");
        }
}

/* --- VEs --- */

static void test_ve_insert_get(void **state)
{
        struct fixture *fx = *state;
        struct ve_error err = { 0 };
        json_t *ve, *by_ctid = NULL;

        insert_ve(fx, 101, "web", "stopped");
        ve = get_ve(fx, "101");
        assert_int_equal(ve_int(ve, "ctid"), 101);
        assert_string_equal(ve_str(ve, "name"), "web");
        assert_string_equal(ve_str(ve, "state"), "stopped");
        assert_string_equal(ve_str(ve, "ostemplate"), "debian-12");
        assert_int_equal(ve_int(ve, "ram"), 512 << 20);
        assert_true(json_is_true(json_object_get(ve, "onboot")));
        assert_int_equal(ve_int(ve, "version"), 1);
        /* Lists come back as arrays, unset parameters as null, NOT NULL ones with
         * their defaults. */
        assert_true(json_is_array(json_object_get(ve, "ip")));
        assert_string_equal(json_string_value(json_array_get(json_object_get(ve, "ip"), 0)),
                            "10.0.0.1/24");
        assert_true(json_is_array(json_object_get(ve, "nameserver")));
        assert_int_equal(json_array_size(json_object_get(ve, "nameserver")), 0);
        assert_true(json_is_null(json_object_get(ve, "hostname")));
        assert_true(json_is_null(json_object_get(ve, "swap")));
        assert_int_equal(ve_int(ve, "diskspace"), 2 * GiB);
        assert_int_equal(ve_int(ve, "stop_timeout"), 120);
        assert_string_equal(ve_str(ve, "init"), "/sbin/init");
        assert_non_null(strchr(ve_str(ve, "created_at"), 'T'));

        /* The same record by name and by number. */
        assert_int_equal(ved_store_ve_get_ctid(&fx->store, 101, &by_ctid, &err), 0);
        assert_true(json_equal(ve, by_ctid));
        json_decref(by_ctid);
        by_ctid = get_ve(fx, "web");
        assert_true(json_equal(ve, by_ctid));
        json_decref(by_ctid);
        json_decref(ve);

        assert_no_ve(fx, "102");
        assert_no_ve(fx, "webb");
        assert_no_ve(fx, "WEB");
        assert_int_equal(ved_store_ve_get_ctid(&fx->store, 999, &ve, &err), -VE_ENOTFOUND);
        assert_non_null(strstr(err.message, "999"));
        ve_error_clear(&err);
}

static void test_ve_without_name(void **state)
{
        struct fixture *fx = *state;
        json_t *ve;

        /* Names are optional, and many VEs may have none. */
        insert_ve(fx, 101, NULL, "stopped");
        insert_ve(fx, 102, NULL, "stopped");
        ve = get_ve(fx, "102");
        assert_true(json_is_null(json_object_get(ve, "name")));
        json_decref(ve);
        assert_int_equal(ved_store_ve_count(&fx->store, NULL), 2);
}

static void test_ve_duplicates(void **state)
{
        struct fixture *fx = *state;
        struct ve_error err = { 0 };
        json_t *ve;

        insert_ve(fx, 101, "web", "stopped");

        ve = make_ve(101, "other", "stopped");
        assert_int_equal(ved_store_ve_insert(&fx->store, ve, &err), -VE_ECONFLICT);
        assert_int_equal(err.code, VE_ECONFLICT);
        assert_non_null(strstr(err.message, "CTID 101"));
        ve_error_clear(&err);
        json_decref(ve);

        ve = make_ve(102, "web", "stopped");
        assert_int_equal(ved_store_ve_insert(&fx->store, ve, &err), -VE_ECONFLICT);
        assert_non_null(strstr(err.message, "'web'"));
        ve_error_clear(&err);
        json_decref(ve);

        assert_int_equal(ved_store_ve_count(&fx->store, NULL), 1);
        assert_no_ve(fx, "102");
        assert_no_ve(fx, "other");
        ve = get_ve(fx, "101");
        assert_string_equal(ve_str(ve, "name"), "web");
        json_decref(ve);
}

/* A record missing a required column is an internal error, not a name clash. */
static void test_ve_insert_incomplete(void **state)
{
        struct fixture *fx = *state;
        struct ve_error err = { 0 };
        json_t *ve = make_ve(101, "web", "stopped");
        int ret;

        json_object_del(ve, "ostemplate");
        ret = ved_store_ve_insert(&fx->store, ve, &err);
        json_decref(ve);
        assert_true(ret < 0);
        if (err.code == VE_ECONFLICT)
                print_error("NOT NULL failure reported as a conflict: %s\n", err.message);
        assert_int_not_equal(err.code, VE_ECONFLICT);
        assert_non_null(strstr(err.message, "ostemplate"));
        ve_error_clear(&err);
        assert_int_equal(ved_store_ve_count(&fx->store, NULL), 0);
}

static void test_ve_list_filters(void **state)
{
        struct fixture *fx = *state;
        struct ve_error err = { 0 };
        json_t *list = NULL;
        char ids[128];

        insert_ve(fx, 105, "db", "running");
        insert_ve(fx, 101, "web", "stopped");
        insert_ve(fx, 103, "cache", "running");

        assert_int_equal(ved_store_ve_list(&fx->store, NULL, NULL, &list, &err), 0);
        ids_of(list, "ctid", ids, sizeof(ids));
        assert_string_equal(ids, "101,103,105");
        json_decref(list);

        assert_int_equal(ved_store_ve_list(&fx->store, "running", NULL, &list, &err), 0);
        ids_of(list, "ctid", ids, sizeof(ids));
        assert_string_equal(ids, "103,105");
        json_decref(list);

        assert_int_equal(ved_store_ve_list(&fx->store, NULL, "web", &list, &err), 0);
        ids_of(list, "ctid", ids, sizeof(ids));
        assert_string_equal(ids, "101");
        json_decref(list);

        assert_int_equal(ved_store_ve_list(&fx->store, "running", "web", &list, &err), 0);
        assert_int_equal(json_array_size(list), 0);
        json_decref(list);

        assert_int_equal(ved_store_ve_list(&fx->store, "mounted", NULL, &list, &err), 0);
        assert_int_equal(json_array_size(list), 0);
        json_decref(list);
        assert_null(err.message);

        assert_int_equal(ved_store_ve_count(&fx->store, NULL), 3);
        assert_int_equal(ved_store_ve_count(&fx->store, "running"), 2);
        assert_int_equal(ved_store_ve_count(&fx->store, "stopped"), 1);
        assert_int_equal(ved_store_ve_count(&fx->store, "mounted"), 0);
}

static void test_ve_update_version(void **state)
{
        struct fixture *fx = *state;
        struct ve_error err = { 0 };
        json_t *changes, *ve;

        insert_ve(fx, 101, "web", "stopped");

        /* Expected version matches: applied, version bumps. */
        changes = json_pack("{s:I, s:s, s:[s,s]}", "ram", (json_int_t)GiB, "hostname",
                            "web.example.com", "nameserver", "8.8.8.8", "1.1.1.1");
        assert_int_equal(ved_store_ve_update(&fx->store, 101, changes, 1, &err), 0);
        json_decref(changes);
        ve = get_ve(fx, "101");
        assert_int_equal(ve_int(ve, "version"), 2);
        assert_int_equal(ve_int(ve, "ram"), GiB);
        assert_string_equal(ve_str(ve, "hostname"), "web.example.com");
        assert_int_equal(json_array_size(json_object_get(ve, "nameserver")), 2);
        json_decref(ve);

        /* Stale version: refused with both versions named, nothing changed. */
        changes = json_pack("{s:I}", "ram", (json_int_t)(2 * GiB));
        assert_int_equal(ved_store_ve_update(&fx->store, 101, changes, 1, &err), -VE_EPRECONDITION);
        assert_int_equal(err.code, VE_EPRECONDITION);
        assert_non_null(strstr(err.message, "version 2"));
        ve_error_clear(&err);
        ve = get_ve(fx, "101");
        assert_int_equal(ve_int(ve, "version"), 2);
        assert_int_equal(ve_int(ve, "ram"), GiB);
        json_decref(ve);

        /* No expectation (-1): always applied. */
        assert_int_equal(ved_store_ve_update(&fx->store, 101, changes, -1, &err), 0);
        json_decref(changes);
        ve = get_ve(fx, "101");
        assert_int_equal(ve_int(ve, "version"), 3);
        assert_int_equal(ve_int(ve, "ram"), 2 * GiB);
        json_decref(ve);

        /* null unsets. */
        changes = json_pack("{s:n}", "hostname");
        assert_int_equal(ved_store_ve_update(&fx->store, 101, changes, 3, &err), 0);
        json_decref(changes);
        ve = get_ve(fx, "101");
        assert_true(json_is_null(json_object_get(ve, "hostname")));
        json_decref(ve);

        /* A state change is a change too. */
        assert_int_equal(ved_store_ve_set_state(&fx->store, 101, "running", &err), 0);
        ve = get_ve(fx, "101");
        assert_int_equal(ve_int(ve, "version"), 5);
        assert_string_equal(ve_str(ve, "state"), "running");
        json_decref(ve);
        assert_null(err.message);
}

static void test_ve_update_errors(void **state)
{
        struct fixture *fx = *state;
        struct ve_error err = { 0 };
        json_t *changes, *ve;

        insert_ve(fx, 101, "web", "stopped");
        insert_ve(fx, 102, "db", "stopped");

        changes = json_pack("{s:I}", "ram", (json_int_t)GiB);
        assert_int_equal(ved_store_ve_update(&fx->store, 999, changes, -1, &err), -VE_ENOTFOUND);
        assert_non_null(strstr(err.message, "999"));
        ve_error_clear(&err);
        json_decref(changes);

        /* Renaming onto another VE's name: a conflict naming the name. */
        changes = json_pack("{s:s}", "name", "web");
        assert_int_equal(ved_store_ve_update(&fx->store, 102, changes, -1, &err), -VE_ECONFLICT);
        assert_non_null(strstr(err.message, "'web'"));
        ve_error_clear(&err);
        json_decref(changes);
        ve = get_ve(fx, "102");
        assert_string_equal(ve_str(ve, "name"), "db");
        assert_int_equal(ve_int(ve, "version"), 1);
        json_decref(ve);

        /* Keys outside the parameter table never reach SQL. */
        changes = json_pack("{s:i}", "ctid", 103);
        assert_int_equal(ved_store_ve_update(&fx->store, 102, changes, -1, &err), -EINVAL);
        ve_error_clear(&err);
        json_decref(changes);
        changes = json_pack("{s:i}", "ram = 1, ctid", 103);
        assert_int_equal(ved_store_ve_update(&fx->store, 102, changes, -1, &err), -EINVAL);
        ve_error_clear(&err);
        json_decref(changes);
        assert_no_ve(fx, "103");

        /* A column that may not be null is not a clash either. */
        changes = json_pack("{s:n}", "diskspace");
        assert_true(ved_store_ve_update(&fx->store, 102, changes, -1, &err) < 0);
        assert_int_not_equal(err.code, VE_ECONFLICT);
        assert_non_null(strstr(err.message, "diskspace"));
        ve_error_clear(&err);
        json_decref(changes);

        /* Inside a transaction the caller rolls back, so a half-applied change
         * (ram set, then the name clashes) leaves nothing. */
        assert_int_equal(ved_store_begin(&fx->store, &err), 0);
        changes = json_pack("{s:I, s:s}", "ram", (json_int_t)(3 * GiB), "name", "web");
        assert_true(ved_store_ve_update(&fx->store, 102, changes, 1, &err) < 0);
        ve_error_clear(&err);
        json_decref(changes);
        ved_store_rollback(&fx->store);
        ve = get_ve(fx, "102");
        assert_int_equal(ve_int(ve, "ram"), 512 << 20);
        assert_int_equal(ve_int(ve, "version"), 1);
        json_decref(ve);

        assert_int_equal(ved_store_ve_set_state(&fx->store, 999, "running", &err), -VE_ENOTFOUND);
        ve_error_clear(&err);
}

static void test_ve_delete(void **state)
{
        struct fixture *fx = *state;
        struct ve_error err = { 0 };

        insert_ve(fx, 101, "web", "stopped");
        insert_ve(fx, 102, "db", "stopped");
        assert_int_equal(ved_store_ve_delete(&fx->store, 101, &err), 0);
        assert_no_ve(fx, "101");
        assert_no_ve(fx, "web");
        json_decref(get_ve(fx, "102"));
        assert_int_equal(ved_store_ve_delete(&fx->store, 101, &err), -VE_ENOTFOUND);
        ve_error_clear(&err);
        /* The CTID and name are free again. */
        insert_ve(fx, 101, "web", "stopped");
        assert_int_equal(ved_store_ve_count(&fx->store, NULL), 2);
}

static void test_ve_runtime_and_ip_holder(void **state)
{
        struct fixture *fx = *state;
        struct ve_error err = { 0 };
        json_t *ve;

        insert_ve(fx, 101, "web", "running");
        assert_int_equal(ved_store_ve_set_runtime(&fx->store, 101, 4242, 987654, &err), 0);
        ve = get_ve(fx, "101");
        assert_int_equal(ve_int(ve, "pid"), 4242);
        assert_int_equal(ve_int(ve, "pid_starttime"), 987654);
        json_decref(ve);
        assert_int_equal(ved_store_ve_set_runtime(&fx->store, 999, 1, 1, &err), -VE_ENOTFOUND);
        ve_error_clear(&err);

        /* make_ve gives 10.0.0.1/24. */
        assert_int_equal(ved_store_ip_holder(&fx->store, "10.0.0.1", 0), 101);
        assert_int_equal(ved_store_ip_holder(&fx->store, "10.0.0.1", 101), 0);
        assert_int_equal(ved_store_ip_holder(&fx->store, "10.0.0.10", 0), 0);
        assert_int_equal(ved_store_ip_holder(&fx->store, "10.0.0", 0), 0);
        assert_int_equal(ved_store_ip_holder(&fx->store, "10.0.0.2", 0), 0);
}

static void test_idmap_allocate(void **state)
{
        struct fixture *fx = *state;
        struct ve_error err = { 0 };
        const int64_t first = 100000, count = 65536, limit = first + 3 * count;

        insert_ve(fx, 101, "a", "stopped");
        insert_ve(fx, 102, "b", "stopped");
        insert_ve(fx, 103, "c", "stopped");
        assert_int_equal(ved_store_idmap_allocate(&fx->store, first, count, limit, &err), first);
        assert_int_equal(ved_store_ve_set_idmap(&fx->store, 101, first, &err), 0);
        assert_int_equal(ved_store_idmap_allocate(&fx->store, first, count, limit, &err),
                         first + count);
        assert_int_equal(ved_store_ve_set_idmap(&fx->store, 102, first + 2 * count, &err), 0);
        /* The gap between the two is found. */
        assert_int_equal(ved_store_idmap_allocate(&fx->store, first, count, limit, &err),
                         first + count);
        assert_int_equal(ved_store_ve_set_idmap(&fx->store, 103, first + count, &err), 0);
        assert_int_equal(ved_store_idmap_allocate(&fx->store, first, count, limit, &err), -ENOSPC);
        ve_error_clear(&err);
        /* Two VEs never share a range. */
        assert_true(ved_store_ve_set_idmap(&fx->store, 103, first, &err) < 0);
        ve_error_clear(&err);
        /* Deleting a VE frees its range. */
        assert_int_equal(ved_store_ve_delete(&fx->store, 101, &err), 0);
        assert_int_equal(ved_store_idmap_allocate(&fx->store, first, count, limit, &err), first);
}

/* --- operations --- */

static int64_t op_insert(struct fixture *fx, const char *type, uint32_t ctid)
{
        struct ve_error err = { 0 };
        json_t *params = json_pack("{s:s}", "from", "test");
        int64_t id = ved_store_op_insert(&fx->store, type, ctid, params, &err);

        json_decref(params);
        if (id <= 0)
                print_error("insert operation: %s\n", err.message);
        assert_true(id > 0);
        return id;
}

static json_t *op_get(struct fixture *fx, int64_t id)
{
        struct ve_error err = { 0 };
        json_t *op = NULL;

        assert_int_equal(ved_store_op_get(&fx->store, id, &op, &err), 0);
        assert_non_null(op);
        return op;
}

static void test_op_lifecycle(void **state)
{
        struct fixture *fx = *state;
        struct ve_error err = { 0 };
        json_t *op, *steps;
        int64_t id;

        id = op_insert(fx, "create", 101);
        op = op_get(fx, id);
        assert_int_equal(ve_int(op, "id"), id);
        assert_string_equal(ve_str(op, "type"), "create");
        assert_int_equal(ve_int(op, "ctid"), 101);
        assert_string_equal(ve_str(op, "status"), "running");
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(op, "params"), "from")), "test");
        assert_true(json_is_array(json_object_get(op, "steps")));
        assert_int_equal(json_array_size(json_object_get(op, "steps")), 0);
        assert_true(json_is_null(json_object_get(op, "error")));
        assert_true(json_is_null(json_object_get(op, "finished_at")));
        assert_null(json_object_get(op, "error_code"));
        json_decref(op);

        assert_int_equal(ved_store_op_add_step(&fx->store, id, "rootfs", &err), 0);
        assert_int_equal(ved_store_op_add_step(&fx->store, id, "network \"eth0\"", &err), 0);
        op = op_get(fx, id);
        steps = json_object_get(op, "steps");
        assert_int_equal(json_array_size(steps), 2);
        assert_string_equal(ve_str(json_array_get(steps, 0), "name"), "rootfs");
        assert_string_equal(ve_str(json_array_get(steps, 1), "name"), "network \"eth0\"");
        assert_non_null(strchr(ve_str(json_array_get(steps, 1), "at"), 'T'));
        json_decref(op);

        assert_int_equal(ved_store_op_finish(&fx->store, id, "failed", VE_ECONFLICT, "name taken",
                                             "pick another name", &err),
                         0);
        op = op_get(fx, id);
        assert_string_equal(ve_str(op, "status"), "failed");
        assert_int_equal(ve_int(json_object_get(op, "error"), "code"), VE_ECONFLICT);
        assert_string_equal(ve_str(json_object_get(op, "error"), "message"), "name taken");
        assert_string_equal(ve_str(op, "resolution"), "pick another name");
        assert_non_null(strchr(ve_str(op, "finished_at"), 'T'));
        json_decref(op);

        /* Success has no error; a NULL resolution keeps the one recorded. */
        id = op_insert(fx, "start", 0);
        assert_int_equal(ved_store_op_set_status(&fx->store, id, "pending", &err), 0);
        op = op_get(fx, id);
        assert_string_equal(ve_str(op, "status"), "pending");
        assert_true(json_is_null(json_object_get(op, "ctid")));
        json_decref(op);
        assert_int_equal(ved_store_op_finish(&fx->store, id, "succeeded", 0, NULL, NULL, &err), 0);
        op = op_get(fx, id);
        assert_string_equal(ve_str(op, "status"), "succeeded");
        assert_true(json_is_null(json_object_get(op, "error")));
        assert_true(json_is_null(json_object_get(op, "resolution")));
        json_decref(op);
        assert_null(err.message);

        /* A resolution set while the operation runs on (resumed after a crash) is
         * kept by a finish that gives none. */
        id = op_insert(fx, "stop", 0);
        assert_int_equal(ved_store_op_set_resolution(&fx->store, id, "run again", &err), 0);
        op = op_get(fx, id);
        assert_string_equal(ve_str(op, "status"), "running");
        assert_string_equal(ve_str(op, "resolution"), "run again");
        json_decref(op);
        assert_int_equal(ved_store_op_finish(&fx->store, id, "succeeded", 0, NULL, NULL, &err), 0);
        op = op_get(fx, id);
        assert_string_equal(ve_str(op, "status"), "succeeded");
        assert_string_equal(ve_str(op, "resolution"), "run again");
        json_decref(op);

        /* No params is an empty object. */
        id = ved_store_op_insert(&fx->store, "stop", 101, NULL, &err);
        assert_true(id > 0);
        op = op_get(fx, id);
        assert_true(json_is_object(json_object_get(op, "params")));
        assert_int_equal(json_object_size(json_object_get(op, "params")), 0);
        json_decref(op);

        assert_int_equal(ved_store_op_get(&fx->store, 999, &op, &err), -VE_ENOTFOUND);
        assert_non_null(strstr(err.message, "999"));
        ve_error_clear(&err);
        assert_int_equal(ved_store_op_add_step(&fx->store, 999, "x", &err), -VE_ENOTFOUND);
        ve_error_clear(&err);
        assert_int_equal(ved_store_op_set_status(&fx->store, 999, "failed", &err), -VE_ENOTFOUND);
        ve_error_clear(&err);
        assert_int_equal(ved_store_op_set_resolution(&fx->store, 999, "x", &err), -VE_ENOTFOUND);
        ve_error_clear(&err);
}

static void test_op_list_and_unfinished(void **state)
{
        struct fixture *fx = *state;
        struct ve_error err = { 0 };
        int64_t a, b, c, d;
        json_t *list;
        char ids[128], want[128];

        a = op_insert(fx, "create", 101);
        b = op_insert(fx, "create", 102);
        c = op_insert(fx, "start", 101);
        d = op_insert(fx, "stop", 101);
        assert_true(a < b && b < c && c < d);
        assert_int_equal(ved_store_op_finish(&fx->store, a, "succeeded", 0, NULL, NULL, &err), 0);
        assert_int_equal(ved_store_op_set_status(&fx->store, d, "pending", &err), 0);

        /* Newest first. */
        assert_int_equal(ved_store_op_list(&fx->store, 0, NULL, 100, &list, &err), 0);
        ids_of(list, "id", ids, sizeof(ids));
        snprintf(want, sizeof(want), "%lld,%lld,%lld,%lld", (long long)d, (long long)c,
                 (long long)b, (long long)a);
        assert_string_equal(ids, want);
        json_decref(list);

        assert_int_equal(ved_store_op_list(&fx->store, 101, NULL, 100, &list, &err), 0);
        ids_of(list, "id", ids, sizeof(ids));
        snprintf(want, sizeof(want), "%lld,%lld,%lld", (long long)d, (long long)c, (long long)a);
        assert_string_equal(ids, want);
        json_decref(list);

        assert_int_equal(ved_store_op_list(&fx->store, 101, "running", 100, &list, &err), 0);
        ids_of(list, "id", ids, sizeof(ids));
        snprintf(want, sizeof(want), "%lld", (long long)c);
        assert_string_equal(ids, want);
        json_decref(list);

        assert_int_equal(ved_store_op_list(&fx->store, 0, NULL, 2, &list, &err), 0);
        ids_of(list, "id", ids, sizeof(ids));
        snprintf(want, sizeof(want), "%lld,%lld", (long long)d, (long long)c);
        assert_string_equal(ids, want);
        json_decref(list);

        assert_int_equal(ved_store_op_list(&fx->store, 555, NULL, 100, &list, &err), 0);
        assert_int_equal(json_array_size(list), 0);
        json_decref(list);

        /* Pending and running, oldest first: what a restarted daemon must resolve. */
        assert_int_equal(ved_store_op_unfinished(&fx->store, &list, &err), 0);
        ids_of(list, "id", ids, sizeof(ids));
        snprintf(want, sizeof(want), "%lld,%lld,%lld", (long long)b, (long long)c, (long long)d);
        assert_string_equal(ids, want);
        json_decref(list);
        assert_null(err.message);
}

/* --- events --- */

static void test_events(void **state)
{
        struct fixture *fx = *state;
        struct ve_error err = { 0 };
        json_t *ev = NULL, *list;
        int64_t op, first, last;

        assert_int_equal(ved_store_event_last_id(&fx->store), 0);
        assert_int_equal(ved_store_event_list(&fx->store, 0, 100, &list, &err), 0);
        assert_int_equal(json_array_size(list), 0);
        json_decref(list);

        op = op_insert(fx, "start", 101);
        assert_int_equal(ved_store_event_insert(&fx->store, "ve.state", 101, op, "running",
                                                "VE 101 started", &ev, &err),
                         0);
        first = ve_int(ev, "id");
        assert_true(first > 0);
        assert_string_equal(ve_str(ev, "type"), "ve.state");
        assert_int_equal(ve_int(ev, "ctid"), 101);
        assert_int_equal(ve_int(ev, "operation"), op);
        assert_string_equal(ve_str(ev, "state"), "running");
        assert_string_equal(ve_str(ev, "message"), "VE 101 started");
        assert_non_null(strchr(ve_str(ev, "time"), 'T'));
        json_decref(ev);

        /* Without a VE, an operation or a message; out may be NULL. */
        assert_int_equal(
            ved_store_event_insert(&fx->store, "daemon.start", 0, 0, NULL, NULL, &ev, &err), 0);
        assert_true(json_is_null(json_object_get(ev, "ctid")));
        assert_true(json_is_null(json_object_get(ev, "operation")));
        assert_true(json_is_null(json_object_get(ev, "message")));
        json_decref(ev);
        for (int i = 0; i < 3; i++)
                assert_int_equal(
                    ved_store_event_insert(&fx->store, "ve.changed", 102, 0, NULL, "x", NULL, &err),
                    0);
        last = ved_store_event_last_id(&fx->store);
        assert_int_equal(last, first + 4);

        assert_int_equal(ved_store_event_list(&fx->store, 0, 100, &list, &err), 0);
        assert_int_equal(json_array_size(list), 5);
        assert_int_equal(ve_int(json_array_get(list, 0), "id"), first);
        assert_int_equal(ve_int(json_array_get(list, 4), "id"), last);
        json_decref(list);

        /* since is exclusive; limit takes the oldest. */
        assert_int_equal(ved_store_event_list(&fx->store, first, 2, &list, &err), 0);
        assert_int_equal(json_array_size(list), 2);
        assert_int_equal(ve_int(json_array_get(list, 0), "id"), first + 1);
        assert_int_equal(ve_int(json_array_get(list, 1), "id"), first + 2);
        json_decref(list);
        assert_int_equal(ved_store_event_list(&fx->store, last, 100, &list, &err), 0);
        assert_int_equal(json_array_size(list), 0);
        json_decref(list);
        assert_null(err.message);

        /* Ids are never reused, even after the newest event is deleted. */
        raw_exec(fx->path, "DELETE FROM events");
        reopen(fx);
        assert_int_equal(
            ved_store_event_insert(&fx->store, "ve.changed", 102, 0, NULL, NULL, &ev, &err), 0);
        assert_true(ve_int(ev, "id") > last);
        json_decref(ev);
}

/* --- meta and templates --- */

static void test_meta(void **state)
{
        struct fixture *fx = *state;
        struct ve_error err = { 0 };
        char buf[64];

        assert_int_equal(ved_store_meta_get(&fx->store, "boot_id", buf, sizeof(buf)), -ENOENT);
        assert_int_equal(ved_store_meta_set(&fx->store, "boot_id", "1234-abcd", &err), 0);
        assert_int_equal(ved_store_meta_get(&fx->store, "boot_id", buf, sizeof(buf)), 0);
        assert_string_equal(buf, "1234-abcd");
        assert_int_equal(ved_store_meta_set(&fx->store, "boot_id", "5678", &err), 0);
        assert_int_equal(ved_store_meta_get(&fx->store, "boot_id", buf, sizeof(buf)), 0);
        assert_string_equal(buf, "5678");
        /* A short buffer is truncated, not overrun. */
        assert_int_equal(ved_store_meta_get(&fx->store, "boot_id", buf, 3), 0);
        assert_string_equal(buf, "56");
        assert_null(err.message);
}

static void test_templates(void **state)
{
        struct fixture *fx = *state;
        struct ve_error err = { 0 };
        json_t *t, *got = NULL, *list = NULL;

        t = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:i, s:s}", "name", "debian-12", "distro",
                      "debian", "release", "12", "arch", "amd64", "size", (json_int_t)123456789,
                      "image_size", (json_int_t)(2 * GiB), "files", 4321, "sha256", "ab12");
        assert_int_equal(ved_store_template_insert(&fx->store, t, &err), 0);
        assert_int_equal(ved_store_template_insert(&fx->store, t, &err), -VE_ECONFLICT);
        assert_non_null(strstr(err.message, "debian-12"));
        ve_error_clear(&err);
        json_object_set_new(t, "name", json_string("alpine-3"));
        assert_int_equal(ved_store_template_insert(&fx->store, t, &err), 0);
        json_decref(t);

        assert_int_equal(ved_store_template_get(&fx->store, "debian-12", &got, &err), 0);
        assert_string_equal(ve_str(got, "distro"), "debian");
        assert_int_equal(ve_int(got, "image_size"), 2 * GiB);
        assert_int_equal(ve_int(got, "files"), 4321);
        json_decref(got);

        assert_int_equal(ved_store_template_list(&fx->store, &list, &err), 0);
        assert_int_equal(json_array_size(list), 2);
        assert_string_equal(ve_str(json_array_get(list, 0), "name"), "alpine-3");
        json_decref(list);

        assert_true(ved_store_template_exists(&fx->store, "debian-12"));
        assert_false(ved_store_template_exists(&fx->store, "debian"));
        assert_false(ved_store_template_exists(&fx->store, NULL));
        assert_int_equal(ved_store_template_delete(&fx->store, "debian-12", &err), 0);
        assert_false(ved_store_template_exists(&fx->store, "debian-12"));
        assert_int_equal(ved_store_template_get(&fx->store, "debian-12", &got, &err),
                         -VE_ENOTFOUND);
        ve_error_clear(&err);
        assert_int_equal(ved_store_template_delete(&fx->store, "debian-12", &err), -VE_ENOTFOUND);
        ve_error_clear(&err);
}

/* --- transactions and crashes --- */

static void test_commit_and_rollback(void **state)
{
        struct fixture *fx = *state;
        struct ve_error err = { 0 };

        assert_int_equal(ved_store_begin(&fx->store, &err), 0);
        insert_ve(fx, 101, "web", "stopped");
        assert_int_equal(ved_store_commit(&fx->store, &err), 0);

        assert_int_equal(ved_store_begin(&fx->store, &err), 0);
        insert_ve(fx, 102, "db", "stopped");
        ved_store_rollback(&fx->store);
        /* Rolling back outside a transaction is harmless. */
        ved_store_rollback(&fx->store);

        json_decref(get_ve(fx, "101"));
        assert_no_ve(fx, "102");
        /* A second BEGIN inside a transaction is an error, not a silent nest. */
        assert_int_equal(ved_store_begin(&fx->store, &err), 0);
        assert_true(ved_store_begin(&fx->store, &err) < 0);
        ve_error_clear(&err);
        ved_store_rollback(&fx->store);
}

static int synchronous(struct fixture *fx)
{
        sqlite3_stmt *st = NULL;
        int v = -1;

        assert_int_equal(sqlite3_prepare_v2(fx->store.db, "PRAGMA synchronous", -1, &st, NULL),
                         SQLITE_OK);
        if (sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        return v;
}

/* A lazy transaction commits with synchronous=NORMAL (1) and leaves FULL (2)
 * behind, after a commit as after a rollback. */
static void test_lazy_commit(void **state)
{
        struct fixture *fx = *state;
        struct ve_error err = { 0 };

        assert_int_equal(synchronous(fx), 2);
        assert_int_equal(ved_store_begin_lazy(&fx->store, &err), 0);
        assert_int_equal(synchronous(fx), 1);
        insert_ve(fx, 101, "web", "stopped");
        assert_int_equal(ved_store_commit(&fx->store, &err), 0);
        assert_int_equal(synchronous(fx), 2);
        json_decref(get_ve(fx, "101"));

        assert_int_equal(ved_store_begin_lazy(&fx->store, &err), 0);
        insert_ve(fx, 102, "db", "stopped");
        ved_store_rollback(&fx->store);
        assert_int_equal(synchronous(fx), 2);
        assert_no_ve(fx, "102");
        /* An ordinary transaction stays FULL. */
        assert_int_equal(ved_store_begin(&fx->store, &err), 0);
        assert_int_equal(synchronous(fx), 2);
        ved_store_rollback(&fx->store);
}

/* The store closes (the daemon dies) between steps of a create: neither the VE nor
 * its operation may survive half-made. */
static void test_close_mid_transaction(void **state)
{
        struct fixture *fx = *state;
        struct ve_error err = { 0 };
        json_t *list = NULL;
        int64_t op;

        insert_ve(fx, 101, "before", "stopped");
        assert_int_equal(ved_store_begin(&fx->store, &err), 0);
        insert_ve(fx, 102, "web", "stopped");
        op = op_insert(fx, "create", 102);
        assert_int_equal(ved_store_op_add_step(&fx->store, op, "rootfs", &err), 0);
        ved_store_close(&fx->store); /* no COMMIT */

        reopen(fx);
        assert_no_ve(fx, "102");
        assert_no_ve(fx, "web");
        json_decref(get_ve(fx, "101"));
        assert_int_equal(ved_store_op_list(&fx->store, 0, NULL, 100, &list, &err), 0);
        assert_int_equal(json_array_size(list), 0);
        json_decref(list);
        assert_integrity(fx->path);
}

/* A child process writes through its own connection and dies inside a transaction
 * (after committing one earlier transaction). The parent finds the committed work
 * and nothing of the interrupted one. */
static void crash_child(const char *path, bool sigkill)
{
        struct ve_error err = { 0 };
        struct ved_store s;
        json_t *ve;

        if (ved_store_open(path, &s, &err) < 0)
                _exit(10);
        if (ved_store_begin(&s, &err) < 0)
                _exit(11);
        ve = make_ve(101, "committed", "stopped");
        if (ved_store_ve_insert(&s, ve, &err) < 0 || ved_store_commit(&s, &err) < 0)
                _exit(12);
        json_decref(ve);
        /* A tiny page cache makes SQLite spill uncommitted pages into the WAL. */
        if (ved_store_begin(&s, &err) < 0 ||
            sqlite3_exec(s.db, "PRAGMA cache_size = 4", NULL, NULL, NULL) != SQLITE_OK)
                _exit(13);
        for (uint32_t ctid = 200; ctid < 1200; ctid++) {
                ve = make_ve(ctid, NULL, "stopped");
                if (ved_store_ve_insert(&s, ve, &err) < 0)
                        _exit(14);
                json_decref(ve);
        }
        if (ved_store_op_insert(&s, "create", 200, NULL, &err) <= 0)
                _exit(15);
        if (sigkill)
                kill(getpid(), SIGKILL);
        _exit(0);
}

static void crash_in_child(struct fixture *fx, bool sigkill)
{
        struct ve_error err = { 0 };
        json_t *list = NULL;
        int status = 0;
        pid_t pid;

        /* The parent's connection must not cross the fork. */
        ved_store_close(&fx->store);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                crash_child(fx->path, sigkill);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (sigkill) {
                assert_true(WIFSIGNALED(status));
                assert_int_equal(WTERMSIG(status), SIGKILL);
        } else {
                assert_true(WIFEXITED(status));
                assert_int_equal(WEXITSTATUS(status), 0);
        }

        /* The interrupted transaction did reach the disk, uncommitted, in the WAL. */
        {
                struct stat sb;
                char wal[160];

                snprintf(wal, sizeof(wal), "%s-wal", fx->path);
                assert_int_equal(stat(wal, &sb), 0);
                assert_true(sb.st_size > 64 * 1024);
        }
        assert_integrity(fx->path);
        reopen(fx);
        json_decref(get_ve(fx, "committed"));
        assert_int_equal(ved_store_ve_count(&fx->store, NULL), 1);
        assert_no_ve(fx, "200");
        assert_int_equal(ved_store_op_list(&fx->store, 0, NULL, 100, &list, &err), 0);
        assert_int_equal(json_array_size(list), 0);
        json_decref(list);
        /* And the store is writable again: the dead writer's lock is gone. */
        assert_int_equal(ved_store_begin(&fx->store, &err), 0);
        insert_ve(fx, 200, "after", "stopped");
        assert_int_equal(ved_store_commit(&fx->store, &err), 0);
        assert_integrity(fx->path);
}

static void test_crash_exit_mid_transaction(void **state)
{
        crash_in_child(*state, false);
}

static void test_crash_sigkill_mid_transaction(void **state)
{
        crash_in_child(*state, true);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_open_creates_schema, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reopen_idempotent, setup, teardown),
                cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_migrate_from_each_older_version, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_failed_migration_rolls_back, setup, teardown),
                cmocka_unit_test_setup_teardown(test_open_bad_path, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ve_insert_get, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ve_without_name, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ve_duplicates, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ve_insert_incomplete, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ve_list_filters, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ve_update_version, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ve_update_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ve_delete, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ve_runtime_and_ip_holder, setup, teardown),
                cmocka_unit_test_setup_teardown(test_idmap_allocate, setup, teardown),
                cmocka_unit_test_setup_teardown(test_op_lifecycle, setup, teardown),
                cmocka_unit_test_setup_teardown(test_op_list_and_unfinished, setup, teardown),
                cmocka_unit_test_setup_teardown(test_events, setup, teardown),
                cmocka_unit_test_setup_teardown(test_meta, setup, teardown),
                cmocka_unit_test_setup_teardown(test_templates, setup, teardown),
                cmocka_unit_test_setup_teardown(test_commit_and_rollback, setup, teardown),
                cmocka_unit_test_setup_teardown(test_lazy_commit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_close_mid_transaction, setup, teardown),
                cmocka_unit_test_setup_teardown(test_crash_exit_mid_transaction, setup, teardown),
                cmocka_unit_test_setup_teardown(test_crash_sigkill_mid_transaction, setup,
                                                teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
