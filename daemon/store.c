#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "log.h"
#include "params.h"
#include "ve/cleanup.h"
#include "ve/parse.h"

static inline void cleanup_stmtp(sqlite3_stmt **s)
{
        sqlite3_finalize(*s);
}
static inline void cleanup_sqlite_freep(char **s)
{
        sqlite3_free(*s);
}
#define _cleanup_stmt_        __attribute__((cleanup(cleanup_stmtp)))
#define _cleanup_sqlite_free_ __attribute__((cleanup(cleanup_sqlite_freep)))

#define NOW "strftime('%Y-%m-%dT%H:%M:%fZ','now')"

/* Schema migrations: migrations[v] takes the schema from version v to v + 1. */
static const char *const migrations[] = {
        /* 0 -> 1: the first schema. */
        "CREATE TABLE ves ("
        " ctid INTEGER PRIMARY KEY,"
        " name TEXT UNIQUE,"
        " ostemplate TEXT NOT NULL,"
        " state TEXT NOT NULL,"
        " hostname TEXT,"
        " ip TEXT NOT NULL DEFAULT '[]',"
        " nameserver TEXT NOT NULL DEFAULT '[]',"
        " searchdomain TEXT NOT NULL DEFAULT '[]',"
        " onboot INTEGER, ram INTEGER, swap INTEGER, cpus INTEGER, cpulimit INTEGER,"
        " cpuunits INTEGER, numproc INTEGER, diskspace INTEGER NOT NULL, diskinodes INTEGER,"
        " iolimit INTEGER, iopslimit INTEGER, rate INTEGER,"
        " stop_timeout INTEGER NOT NULL DEFAULT 120,"
        " init TEXT NOT NULL DEFAULT '/sbin/init',"
        " description TEXT,"
        " version INTEGER NOT NULL DEFAULT 1,"
        " pid INTEGER NOT NULL DEFAULT 0,"
        " pid_starttime INTEGER NOT NULL DEFAULT 0,"
        " created_at TEXT NOT NULL DEFAULT (" NOW "),"
        " updated_at TEXT NOT NULL DEFAULT (" NOW "));"
        "CREATE TABLE templates ("
        " name TEXT PRIMARY KEY, distro TEXT, release TEXT, arch TEXT,"
        " size INTEGER, image_size INTEGER, files INTEGER, sha256 TEXT,"
        " created_at TEXT NOT NULL DEFAULT (" NOW "));"
        "CREATE TABLE operations ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " type TEXT NOT NULL, ctid INTEGER, status TEXT NOT NULL,"
        " params TEXT NOT NULL DEFAULT '{}', steps TEXT NOT NULL DEFAULT '[]',"
        " error_code INTEGER, error_message TEXT, resolution TEXT,"
        " created_at TEXT NOT NULL DEFAULT (" NOW "),"
        " updated_at TEXT NOT NULL DEFAULT (" NOW "), finished_at TEXT);"
        "CREATE INDEX operations_status ON operations(status);"
        "CREATE TABLE events ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " time TEXT NOT NULL DEFAULT (" NOW "),"
        " type TEXT NOT NULL, ctid INTEGER,"
        " operation INTEGER REFERENCES operations(id) ON DELETE SET NULL,"
        " state TEXT, message TEXT);",
        /* 1 -> 2: daemon-wide facts, such as the host boot the VEs last ran in. */
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
        /* 2 -> 3: each VE's own host uid/gid range for its user namespace. */
        "ALTER TABLE ves ADD COLUMN idmap_base INTEGER;"
        "CREATE UNIQUE INDEX ves_idmap_base ON ves(idmap_base);",
        /* 3 -> 4: networking: bridged mode (netif as JSON, bridge) and per-VE traffic
         * counters: the sum of finished runs, and the last sample of the current run
         * (run_ifindex tells a run's veth from the next one's). */
        "ALTER TABLE ves ADD COLUMN netif TEXT;"
        "ALTER TABLE ves ADD COLUMN bridge TEXT;"
        "CREATE TABLE traffic ("
        " ctid INTEGER PRIMARY KEY REFERENCES ves(ctid) ON DELETE CASCADE,"
        " bytes_in INTEGER NOT NULL DEFAULT 0, bytes_out INTEGER NOT NULL DEFAULT 0,"
        " packets_in INTEGER NOT NULL DEFAULT 0, packets_out INTEGER NOT NULL DEFAULT 0,"
        " run_ifindex INTEGER NOT NULL DEFAULT 0,"
        " run_bytes_in INTEGER NOT NULL DEFAULT 0, run_bytes_out INTEGER NOT NULL DEFAULT 0,"
        " run_packets_in INTEGER NOT NULL DEFAULT 0,"
        " run_packets_out INTEGER NOT NULL DEFAULT 0);",
        /* 4 -> 5: the private area's layout (ve_ops.c): image, or layered over the
         * template's image shared read-only. */
        "ALTER TABLE ves ADD COLUMN layout TEXT NOT NULL DEFAULT 'image';",
};

#define N_MIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))
_Static_assert(N_MIGRATIONS == VED_SCHEMA_VERSION, "one migration per schema version");

static int db_error(struct ved_store *store, struct ve_error *err, const char *what)
{
        int rc = sqlite3_extended_errcode(store->db);
        int code = EIO;

        if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
                code = EBUSY;
        else if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
                code = VE_ECONFLICT;
        else if ((rc & 0xff) == SQLITE_FULL)
                return ve_error_set(err, ENOSPC, "%s: the file system of %s is full (%s)", what,
                                    store->path, sqlite3_errmsg(store->db));
        return ve_error_set(err, code, "%s: %s", what, sqlite3_errmsg(store->db));
}

static int exec_sql(struct ved_store *store, const char *sql, struct ve_error *err)
{
        if (sqlite3_exec(store->db, sql, NULL, NULL, NULL) != SQLITE_OK)
                return db_error(store, err, "database");
        return 0;
}

static int prepare(struct ved_store *store, const char *sql, sqlite3_stmt **stmt,
                   struct ve_error *err)
{
        if (sqlite3_prepare_v2(store->db, sql, -1, stmt, NULL) != SQLITE_OK)
                return db_error(store, err, "prepare statement");
        return 0;
}

static int user_version(struct ved_store *store)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;

        if (sqlite3_prepare_v2(store->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_ROW)
                return -1;
        return sqlite3_column_int(st, 0);
}

/* Copy the database aside before changing its schema, so an admin can go back. */
static int backup_before_migration(struct ved_store *store, int from, struct ve_error *err)
{
        _cleanup_sqlite_free_ char *sql = NULL;
        _cleanup_free_ char *bak = NULL;

        if (asprintf(&bak, "%s.bak-v%d", store->path, from) < 0)
                return ve_error_set(err, ENOMEM, "out of memory");
        unlink(bak);
        sql = sqlite3_mprintf("VACUUM INTO %Q", bak);
        if (exec_sql(store, sql, err) < 0)
                return ve_error_prefix(err, "copy database to %s before migration", bak);
        log_info("Copied database to %s before migrating schema %d to %d", bak, from,
                 VED_SCHEMA_VERSION);
        return 0;
}

static int migrate(struct ved_store *store, struct ve_error *err)
{
        char sql[64];
        int from = user_version(store), ret;

        if (from < 0)
                return db_error(store, err, "read schema version");
        if (from > VED_SCHEMA_VERSION)
                return ve_error_set(err, EPROTO,
                                    "database %s has schema version %d, newer than the %d this ved "
                                    "knows: upgrade ved, or restore a backup of the database",
                                    store->path, from, VED_SCHEMA_VERSION);
        if (from == VED_SCHEMA_VERSION)
                return 0;
        if (from > 0) {
                ret = backup_before_migration(store, from, err);
                if (ret < 0)
                        return ret;
        }
        ret = ved_store_begin(store, err);
        if (ret < 0)
                return ret;
        for (int v = from; v < VED_SCHEMA_VERSION; v++) {
                ret = exec_sql(store, migrations[v], err);
                if (ret < 0) {
                        ved_store_rollback(store);
                        return ve_error_prefix(err, "migrate schema %d to %d", v, v + 1);
                }
        }
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", VED_SCHEMA_VERSION);
        ret = exec_sql(store, sql, err);
        if (ret < 0) {
                ved_store_rollback(store);
                return ret;
        }
        return ved_store_commit(store, err);
}

int ved_store_open(const char *path, struct ved_store *store, struct ve_error *err)
{
        static const char *pragmas = "PRAGMA journal_mode=WAL;"
                                     "PRAGMA synchronous=FULL;"
                                     "PRAGMA foreign_keys=ON;";
        int ret;

        memset(store, 0, sizeof(*store));
        store->path = strdup(path);
        if (sqlite3_open_v2(path, &store->db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                            NULL) != SQLITE_OK) {
                ret = ve_error_set(err, EIO, "open database %s: %s", path,
                                   store->db ? sqlite3_errmsg(store->db) : "out of memory");
                ved_store_close(store);
                return ret;
        }
        sqlite3_busy_timeout(store->db, 5000);
        sqlite3_extended_result_codes(store->db, 1);
        ret = exec_sql(store, pragmas, err);
        if (ret == 0)
                ret = migrate(store, err);
        if (ret < 0) {
                ved_store_close(store);
                return ret;
        }
        return 0;
}

void ved_store_close(struct ved_store *store)
{
        if (store->db != NULL)
                sqlite3_close_v2(store->db);
        free(store->path);
        store->db = NULL;
        store->path = NULL;
}

static void reserve_path(const struct ved_store *store, char *buf, size_t len)
{
        snprintf(buf, len, "%s-reserve", store->path);
}

bool ved_store_release_reserve(struct ved_store *store)
{
        char path[PATH_MAX];

        reserve_path(store, path, sizeof(path));
        store->reserved = false;
        if (unlink(path) < 0)
                return false;
        log_warn("The file system of %s is full: its %u MB reserve is given back so that "
                 "operations can still be recorded. Free some space on it.",
                 store->path, VED_STORE_RESERVE >> 20);
        return true;
}

static void make_reserve(struct ved_store *store, const char *path)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        int ret;

        if (fd < 0)
                return;
        ret = posix_fallocate(fd, 0, VED_STORE_RESERVE);
        if (ret == 0)
                ret = fsync(fd) < 0 ? errno : 0;
        close(fd);
        if (ret != 0) {
                unlink(path);
                return;
        }
        store->reserved = true;
        log_info("Kept %u MB in reserve for a full disk: %s", VED_STORE_RESERVE >> 20, path);
}

/* What an unprivileged writer may still take. The daemon (root) and the loop
 * devices under the VEs' images may also take the root reserve, but not ext4's
 * own reserved clusters, which f_bfree counts: f_bavail is the measure that is
 * never above what root can really write. */
static uint64_t available(const struct statvfs *sv)
{
        return (uint64_t)sv->f_bavail * sv->f_frsize;
}

void ved_store_check_room(struct ved_store *store)
{
        char path[PATH_MAX];
        struct statvfs sv;
        uint64_t room;

        reserve_path(store, path, sizeof(path));
        if (statvfs(store->path, &sv) < 0)
                return;
        room = available(&sv);
        store->reserved = access(path, F_OK) == 0;
        if (store->reserved && room < VED_STORE_RESERVE / 2)
                ved_store_release_reserve(store);
        else if (!store->reserved && room > 4ull * VED_STORE_RESERVE)
                make_reserve(store, path);
}

/* Before each write: a nearly full file system gets the reserve back first, so
 * that the transaction finds room. One statvfs, next to a commit's fsync. */
static void release_if_full(struct ved_store *store)
{
        struct statvfs sv;

        if (store->reserved && statvfs(store->path, &sv) == 0 &&
            available(&sv) < VED_STORE_RESERVE / 2)
                ved_store_release_reserve(store);
}

int ved_store_begin(struct ved_store *store, struct ve_error *err)
{
        release_if_full(store);
        return exec_sql(store, "BEGIN IMMEDIATE", err);
}

/* SQLite refuses a change of the setting inside a transaction. */
int ved_store_begin_lazy(struct ved_store *store, struct ve_error *err)
{
        int ret = exec_sql(store, "PRAGMA synchronous=NORMAL", err);

        if (ret == 0) {
                store->lazy = true;
                ret = ved_store_begin(store, err);
        }
        if (ret < 0)
                ved_store_rollback(store);
        return ret;
}

static void end_lazy(struct ved_store *store)
{
        if (store->lazy && sqlite3_get_autocommit(store->db)) {
                store->lazy = false;
                sqlite3_exec(store->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
        }
}

int ved_store_commit(struct ved_store *store, struct ve_error *err)
{
        int ret = exec_sql(store, "COMMIT", err);

        if (ret < 0)
                ved_store_rollback(store);
        end_lazy(store);
        return ret;
}

void ved_store_rollback(struct ved_store *store)
{
        if (!sqlite3_get_autocommit(store->db))
                sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL);
        end_lazy(store);
}

bool ved_store_in_transaction(struct ved_store *store)
{
        return !sqlite3_get_autocommit(store->db);
}

/* Bind a parameter's JSON value: lists as JSON text, booleans as 0/1. */
static int bind_json(sqlite3_stmt *st, int idx, json_t *v)
{
        _cleanup_free_ char *text = NULL;

        if (v == NULL || json_is_null(v))
                return sqlite3_bind_null(st, idx);
        if (json_is_integer(v))
                return sqlite3_bind_int64(st, idx, json_integer_value(v));
        if (json_is_boolean(v))
                return sqlite3_bind_int(st, idx, json_is_true(v));
        if (json_is_string(v))
                return sqlite3_bind_text(st, idx, json_string_value(v), -1, SQLITE_TRANSIENT);
        text = json_dumps(v, JSON_COMPACT);
        return sqlite3_bind_text(st, idx, text, -1, SQLITE_TRANSIENT);
}

static json_t *column_json(sqlite3_stmt *st, int i, const struct ved_param *p)
{
        switch (sqlite3_column_type(st, i)) {
        case SQLITE_NULL:
                return json_null();
        case SQLITE_INTEGER:
                if (p != NULL && p->kind == VED_P_BOOL)
                        return json_boolean(sqlite3_column_int(st, i));
                return json_integer(sqlite3_column_int64(st, i));
        default:
                if (p != NULL &&
                    (p->kind == VED_P_IPLIST || p->kind == VED_P_DOMAINS || p->kind == VED_P_NETIF))
                        return json_loads((const char *)sqlite3_column_text(st, i), 0, NULL);
                return json_string((const char *)sqlite3_column_text(st, i));
        }
}

static json_t *row_to_json(sqlite3_stmt *st)
{
        json_t *obj = json_object();
        int n = sqlite3_column_count(st);

        for (int i = 0; i < n; i++) {
                const char *col = sqlite3_column_name(st, i);
                json_t *v = column_json(st, i, ved_param_find(col));

                json_object_set_new(obj, col, v ? v : json_null());
        }
        return obj;
}

/* Step st to its end, making each row a JSON value with row(), into *out. */
static int collect_rows(struct ved_store *store, sqlite3_stmt *st, json_t *(*row)(sqlite3_stmt *),
                        const char *what, json_t **out, struct ve_error *err)
{
        json_t *list = json_array();
        int rc;

        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                json_array_append_new(list, row(st));
        if (rc != SQLITE_DONE) {
                json_decref(list);
                return db_error(store, err, what);
        }
        *out = list;
        return 0;
}

static int conflict_message(struct ved_store *store, json_t *ve, struct ve_error *err)
{
        const char *name = json_string_value(json_object_get(ve, "name"));
        json_t *other = NULL;

        if (ved_store_ve_get_ctid(store, (uint32_t)json_integer_value(json_object_get(ve, "ctid")),
                                  &other, NULL) == 0) {
                json_decref(other);
                return ve_error_set(err, VE_ECONFLICT, "CTID %lld already exists",
                                    (long long)json_integer_value(json_object_get(ve, "ctid")));
        }
        return ve_error_set(err, VE_ECONFLICT, "name '%s' is already used by another VE",
                            name ? name : "");
}

int ved_store_ve_insert(struct ved_store *store, json_t *ve, struct ve_error *err)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        char cols[1024] = "ctid, state", vals[256] = "?, ?";
        int idx = 3, ret;

        for (const struct ved_param *p = ved_params; p->key; p++) {
                strcat(cols, ", ");
                strcat(cols, p->key);
                strcat(vals, ", ?");
        }
        {
                char sql[1400];

                snprintf(sql, sizeof(sql), "INSERT INTO ves (%s) VALUES (%s)", cols, vals);
                ret = prepare(store, sql, &st, err);
                if (ret < 0)
                        return ret;
        }
        sqlite3_bind_int64(st, 1, json_integer_value(json_object_get(ve, "ctid")));
        sqlite3_bind_text(st, 2, json_string_value(json_object_get(ve, "state")), -1,
                          SQLITE_TRANSIENT);
        for (const struct ved_param *p = ved_params; p->key; p++) {
                json_t *v = json_object_get(ve, p->key), *def;

                if (v == NULL && (p->flags & VED_PF_NOT_NULL)) {
                        def = ved_param_default(p);
                        bind_json(st, idx++, def);
                        json_decref(def);
                        continue;
                }
                bind_json(st, idx++, v);
        }
        if (sqlite3_step(st) != SQLITE_DONE) {
                if (sqlite3_extended_errcode(store->db) == SQLITE_CONSTRAINT_UNIQUE ||
                    sqlite3_extended_errcode(store->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
                        return conflict_message(store, ve, err);
                return db_error(store, err, "insert VE");
        }
        return 0;
}

static int ve_query_one(struct ved_store *store, sqlite3_stmt *st, const char *what, json_t **out,
                        struct ve_error *err)
{
        int rc = sqlite3_step(st);

        if (rc == SQLITE_ROW) {
                *out = row_to_json(st);
                return 0;
        }
        if (rc == SQLITE_DONE)
                return ve_error_set(err, VE_ENOTFOUND, "VE %s does not exist", what);
        return db_error(store, err, "read VE");
}

int ved_store_ve_get_ctid(struct ved_store *store, uint32_t ctid, json_t **out,
                          struct ve_error *err)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        char what[16];
        int ret;

        ret = prepare(store, "SELECT * FROM ves WHERE ctid = ?", &st, err);
        if (ret < 0)
                return ret;
        sqlite3_bind_int64(st, 1, ctid);
        snprintf(what, sizeof(what), "%u", ctid);
        return ve_query_one(store, st, what, out, err);
}

int ved_store_ve_get(struct ved_store *store, const char *ctid_or_name, json_t **out,
                     struct ve_error *err)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        uint32_t ctid;
        int ret;

        if (ve_parse_ctid(ctid_or_name, &ctid, NULL) == 0)
                return ved_store_ve_get_ctid(store, ctid, out, err);
        /* Neither a CTID nor a name any VE could have ("-1", "0", "a b"): 400,
         * saying why, rather than a 404 for something that cannot exist. */
        if (ctid_or_name[0] != '\0' && ctid_or_name[strspn(ctid_or_name, "0123456789")] == '\0')
                return ve_parse_ctid(ctid_or_name, &ctid, err);
        if (ve_check_name(ctid_or_name, NULL) < 0)
                return ve_error_set(err, VE_EINVAL_INPUT,
                                    "'%s' is neither a CTID nor a VE name (a name starts with "
                                    "a letter)",
                                    ctid_or_name);
        ret = prepare(store, "SELECT * FROM ves WHERE name = ?", &st, err);
        if (ret < 0)
                return ret;
        sqlite3_bind_text(st, 1, ctid_or_name, -1, SQLITE_TRANSIENT);
        return ve_query_one(store, st, ctid_or_name, out, err);
}

int ved_store_ve_list(struct ved_store *store, const char *state, const char *name, json_t **out,
                      struct ve_error *err)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int ret;

        ret = prepare(store,
                      "SELECT * FROM ves WHERE (?1 IS NULL OR state = ?1)"
                      " AND (?2 IS NULL OR name = ?2) ORDER BY ctid",
                      &st, err);
        if (ret < 0)
                return ret;
        if (state)
                sqlite3_bind_text(st, 1, state, -1, SQLITE_TRANSIENT);
        if (name)
                sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
        return collect_rows(store, st, row_to_json, "list VEs", out, err);
}

static int64_t ve_version(struct ved_store *store, uint32_t ctid)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;

        if (sqlite3_prepare_v2(store->db, "SELECT version FROM ves WHERE ctid = ?", -1, &st,
                               NULL) != SQLITE_OK)
                return -1;
        sqlite3_bind_int64(st, 1, ctid);
        if (sqlite3_step(st) != SQLITE_ROW)
                return -1;
        return sqlite3_column_int64(st, 0);
}

static int update_one(struct ved_store *store, uint32_t ctid, const char *key, json_t *v,
                      struct ve_error *err)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        char sql[128];
        int ret;

        /* key comes from the parameter table, never from a request. */
        if (ved_param_find(key) == NULL)
                return ve_error_set(err, EINVAL, "unknown parameter %s", key);
        snprintf(sql, sizeof(sql), "UPDATE ves SET %s = ? WHERE ctid = ?", key);
        ret = prepare(store, sql, &st, err);
        if (ret < 0)
                return ret;
        bind_json(st, 1, v);
        sqlite3_bind_int64(st, 2, ctid);
        if (sqlite3_step(st) != SQLITE_DONE) {
                if (sqlite3_extended_errcode(store->db) == SQLITE_CONSTRAINT_UNIQUE ||
                    sqlite3_extended_errcode(store->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
                        return ve_error_set(err, VE_ECONFLICT,
                                            "%s '%s' is already used by another VE", key,
                                            json_string_value(v) ? json_string_value(v) : "");
                return db_error(store, err, "update VE");
        }
        return 0;
}

static int touch_ve(struct ved_store *store, uint32_t ctid, struct ve_error *err)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int ret;

        ret = prepare(store,
                      "UPDATE ves SET version = version + 1, updated_at = " NOW " WHERE ctid = ?",
                      &st, err);
        if (ret < 0)
                return ret;
        sqlite3_bind_int64(st, 1, ctid);
        if (sqlite3_step(st) != SQLITE_DONE)
                return db_error(store, err, "update VE");
        return 0;
}

int ved_store_ve_update(struct ved_store *store, uint32_t ctid, json_t *changes,
                        int64_t expected_version, struct ve_error *err)
{
        int64_t version = ve_version(store, ctid);
        const char *key;
        json_t *v;
        int ret;

        if (version < 0)
                return ve_error_set(err, VE_ENOTFOUND, "VE %u does not exist", ctid);
        if (expected_version >= 0 && version != expected_version)
                return ve_error_set(err, VE_EPRECONDITION,
                                    "VE %u was changed meanwhile (version %lld, If-Match gave "
                                    "%lld): fetch it again and retry",
                                    ctid, (long long)version, (long long)expected_version);
        json_object_foreach(changes, key, v)
        {
                ret = update_one(store, ctid, key, v, err);
                if (ret < 0)
                        return ret;
        }
        return touch_ve(store, ctid, err);
}

static int exec_bound(struct ved_store *store, const char *sql, const char *what,
                      struct ve_error *err, int nargs, const int64_t *ints, const char *text)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int ret, idx = 1;

        ret = prepare(store, sql, &st, err);
        if (ret < 0)
                return ret;
        if (text != NULL)
                sqlite3_bind_text(st, idx++, text, -1, SQLITE_TRANSIENT);
        for (int i = 0; i < nargs; i++)
                sqlite3_bind_int64(st, idx++, ints[i]);
        if (sqlite3_step(st) != SQLITE_DONE)
                return db_error(store, err, what);
        if (sqlite3_changes(store->db) == 0)
                return ve_error_set(err, VE_ENOTFOUND, "%s: no such record", what);
        return 0;
}

int ved_store_ve_set_state(struct ved_store *store, uint32_t ctid, const char *state,
                           struct ve_error *err)
{
        int64_t a[] = { ctid };

        return exec_bound(store,
                          "UPDATE ves SET state = ?, version = version + 1, updated_at = " NOW
                          " WHERE ctid = ?",
                          "set VE state", err, 1, a, state);
}

int ved_store_ve_set_runtime(struct ved_store *store, uint32_t ctid, int64_t pid, int64_t starttime,
                             struct ve_error *err)
{
        int64_t a[] = { pid, starttime, ctid };

        return exec_bound(store, "UPDATE ves SET pid = ?, pid_starttime = ? WHERE ctid = ?",
                          "set VE runtime", err, 3, a, NULL);
}

int ved_store_ve_set_idmap(struct ved_store *store, uint32_t ctid, int64_t base,
                           struct ve_error *err)
{
        int64_t a[] = { base, ctid };

        return exec_bound(store, "UPDATE ves SET idmap_base = ? WHERE ctid = ?", "set VE id range",
                          err, 2, a, NULL);
}

int ved_store_ve_delete(struct ved_store *store, uint32_t ctid, struct ve_error *err)
{
        int64_t a[] = { ctid };

        return exec_bound(store, "DELETE FROM ves WHERE ctid = ?", "delete VE", err, 1, a, NULL);
}

int ved_store_ve_count(struct ved_store *store, const char *state)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;

        if (sqlite3_prepare_v2(store->db, "SELECT count(*) FROM ves WHERE ?1 IS NULL OR state = ?1",
                               -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        if (state)
                sqlite3_bind_text(st, 1, state, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_ROW)
                return -EIO;
        return sqlite3_column_int(st, 0);
}

int64_t ved_store_op_insert(struct ved_store *store, const char *type, uint32_t ctid,
                            json_t *params, struct ve_error *err)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int ret;

        ret = prepare(store,
                      "INSERT INTO operations (type, ctid, status, params) VALUES (?, ?, "
                      "'running', ?)",
                      &st, err);
        if (ret < 0)
                return ret;
        sqlite3_bind_text(st, 1, type, -1, SQLITE_TRANSIENT);
        if (ctid)
                sqlite3_bind_int64(st, 2, ctid);
        if (params != NULL)
                bind_json(st, 3, params);
        else
                sqlite3_bind_text(st, 3, "{}", -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
                return db_error(store, err, "insert operation");
        return sqlite3_last_insert_rowid(store->db);
}

int ved_store_op_add_step(struct ved_store *store, int64_t id, const char *step,
                          struct ve_error *err)
{
        int64_t a[] = { id };

        return exec_bound(store,
                          "UPDATE operations SET steps = json_insert(steps, '$[#]',"
                          " json_object('name', ?, 'at', " NOW ")), updated_at = " NOW
                          " WHERE id = ?",
                          "record operation step", err, 1, a, step);
}

/* One text column of operation id, from a statement binding the value, then id. */
static int op_set_text(struct ved_store *store, int64_t id, const char *sql, const char *what,
                       const char *value, struct ve_error *err)
{
        int64_t a[] = { id };

        return exec_bound(store, sql, what, err, 1, a, value);
}

int ved_store_op_set_status(struct ved_store *store, int64_t id, const char *status,
                            struct ve_error *err)
{
        return op_set_text(store, id,
                           "UPDATE operations SET status = ?, updated_at = " NOW " WHERE id = ?",
                           "set operation status", status, err);
}

int ved_store_op_set_resolution(struct ved_store *store, int64_t id, const char *resolution,
                                struct ve_error *err)
{
        return op_set_text(
            store, id, "UPDATE operations SET resolution = ?, updated_at = " NOW " WHERE id = ?",
            "set operation resolution", resolution, err);
}

int ved_store_op_finish(struct ved_store *store, int64_t id, const char *status, int error_code,
                        const char *error_message, const char *resolution, struct ve_error *err)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int ret;

        ret = prepare(store,
                      "UPDATE operations SET status = ?, error_code = ?, error_message = ?,"
                      " resolution = coalesce(?, resolution), updated_at = " NOW
                      ", finished_at = " NOW " WHERE id = ?",
                      &st, err);
        if (ret < 0)
                return ret;
        sqlite3_bind_text(st, 1, status, -1, SQLITE_TRANSIENT);
        if (error_message) {
                sqlite3_bind_int(st, 2, error_code);
                sqlite3_bind_text(st, 3, error_message, -1, SQLITE_TRANSIENT);
        }
        if (resolution)
                sqlite3_bind_text(st, 4, resolution, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 5, id);
        if (sqlite3_step(st) != SQLITE_DONE)
                return db_error(store, err, "finish operation");
        return 0;
}

#define OP_COLUMNS                                                                                 \
        "SELECT id, type, ctid, status, params, steps, error_code, error_message, resolution,"     \
        " created_at, updated_at, finished_at FROM operations "

static json_t *op_row(sqlite3_stmt *st)
{
        json_t *op = row_to_json(st), *e;

        json_object_set_new(op, "steps",
                            json_loads((const char *)sqlite3_column_text(st, 5), 0, NULL));
        json_object_set_new(op, "params",
                            json_loads((const char *)sqlite3_column_text(st, 4), 0, NULL));
        if (sqlite3_column_type(st, 7) == SQLITE_NULL) {
                e = json_null();
        } else {
                e = json_pack("{s:i, s:s}", "code", sqlite3_column_int(st, 6), "message",
                              (const char *)sqlite3_column_text(st, 7));
        }
        json_object_set_new(op, "error", e);
        json_object_del(op, "error_code");
        json_object_del(op, "error_message");
        return op;
}

int ved_store_op_get(struct ved_store *store, int64_t id, json_t **out, struct ve_error *err)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int ret, rc;

        ret = prepare(store, OP_COLUMNS "WHERE id = ?", &st, err);
        if (ret < 0)
                return ret;
        sqlite3_bind_int64(st, 1, id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return ve_error_set(err, VE_ENOTFOUND, "operation %lld does not exist",
                                    (long long)id);
        if (rc != SQLITE_ROW)
                return db_error(store, err, "read operation");
        *out = op_row(st);
        return 0;
}

static int op_collect(struct ved_store *store, sqlite3_stmt *st, json_t **out, struct ve_error *err)
{
        return collect_rows(store, st, op_row, "list operations", out, err);
}

int ved_store_op_list(struct ved_store *store, uint32_t ctid, const char *status, int limit,
                      json_t **out, struct ve_error *err)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int ret;

        ret = prepare(store,
                      OP_COLUMNS "WHERE (?1 = 0 OR ctid = ?1) AND (?2 IS NULL OR status = ?2)"
                                 " ORDER BY id DESC LIMIT ?3",
                      &st, err);
        if (ret < 0)
                return ret;
        sqlite3_bind_int64(st, 1, ctid);
        if (status)
                sqlite3_bind_text(st, 2, status, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 3, limit);
        return op_collect(store, st, out, err);
}

int ved_store_op_unfinished(struct ved_store *store, json_t **out, struct ve_error *err)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int ret;

        ret = prepare(store, OP_COLUMNS "WHERE status IN ('pending', 'running') ORDER BY id", &st,
                      err);
        if (ret < 0)
                return ret;
        return op_collect(store, st, out, err);
}

int ved_store_event_insert(struct ved_store *store, const char *type, uint32_t ctid, int64_t op,
                           const char *state, const char *message, json_t **out,
                           struct ve_error *err)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int64_t id;
        int ret;

        ret = prepare(store,
                      "INSERT INTO events (type, ctid, operation, state, message) VALUES (?, ?, "
                      "?, ?, ?) RETURNING id, time, type, ctid, operation, state, message",
                      &st, err);
        if (ret < 0)
                return ret;
        sqlite3_bind_text(st, 1, type, -1, SQLITE_TRANSIENT);
        if (ctid)
                sqlite3_bind_int64(st, 2, ctid);
        if (op > 0)
                sqlite3_bind_int64(st, 3, op);
        if (state)
                sqlite3_bind_text(st, 4, state, -1, SQLITE_TRANSIENT);
        if (message)
                sqlite3_bind_text(st, 5, message, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_ROW)
                return db_error(store, err, "insert event");
        if (out)
                *out = row_to_json(st);
        id = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        st = NULL;
        /* Keep the table bounded: the newest 10,000 events are enough to replay. */
        if (id % 500 == 0) {
                char sql[96];

                snprintf(sql, sizeof(sql), "DELETE FROM events WHERE id <= %" PRId64, id - 10000);
                exec_sql(store, sql, NULL);
        }
        return 0;
}

int ved_store_event_list(struct ved_store *store, int64_t since, int limit, json_t **out,
                         struct ve_error *err)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int ret;

        ret = prepare(store,
                      "SELECT id, time, type, ctid, operation, state, message FROM events"
                      " WHERE id > ? ORDER BY id LIMIT ?",
                      &st, err);
        if (ret < 0)
                return ret;
        sqlite3_bind_int64(st, 1, since);
        sqlite3_bind_int(st, 2, limit);
        return collect_rows(store, st, row_to_json, "list events", out, err);
}

int64_t ved_store_event_last_id(struct ved_store *store)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;

        if (sqlite3_prepare_v2(store->db, "SELECT coalesce(max(id), 0) FROM events", -1, &st,
                               NULL) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_ROW)
                return 0;
        return sqlite3_column_int64(st, 0);
}

int ved_store_meta_get(struct ved_store *store, const char *key, char *buf, size_t len)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;

        if (sqlite3_prepare_v2(store->db, "SELECT value FROM meta WHERE key = ?", -1, &st, NULL) !=
            SQLITE_OK)
                return -EIO;
        sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_ROW)
                return -ENOENT;
        snprintf(buf, len, "%s", (const char *)sqlite3_column_text(st, 0));
        return 0;
}

int ved_store_meta_set(struct ved_store *store, const char *key, const char *value,
                       struct ve_error *err)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int ret;

        ret = prepare(store, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", &st, err);
        if (ret < 0)
                return ret;
        sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, value, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_DONE)
                return db_error(store, err, "write meta");
        return 0;
}

int ved_store_meta_delete(struct ved_store *store, const char *key, struct ve_error *err)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int ret;

        ret = prepare(store, "DELETE FROM meta WHERE key = ?", &st, err);
        if (ret < 0)
                return ret;
        sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_DONE)
                return db_error(store, err, "delete meta");
        return 0;
}

int ved_store_meta_list(struct ved_store *store, const char *prefix, json_t **out,
                        struct ve_error *err)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        json_t *all = json_object();
        int ret, rc;

        *out = NULL;
        ret = prepare(store, "SELECT key, value FROM meta WHERE substr(key, 1, length(?1)) = ?1",
                      &st, err);
        if (ret < 0 || all == NULL) {
                json_decref(all);
                return ret < 0 ? ret : ve_error_set(err, ENOMEM, "out of memory");
        }
        sqlite3_bind_text(st, 1, prefix, -1, SQLITE_TRANSIENT);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                json_object_set_new(all, (const char *)sqlite3_column_text(st, 0),
                                    json_string((const char *)sqlite3_column_text(st, 1)));
        if (rc != SQLITE_DONE) {
                json_decref(all);
                return db_error(store, err, "read meta");
        }
        *out = all;
        return 0;
}

int ved_store_template_insert(struct ved_store *store, json_t *t, struct ve_error *err)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int ret;

        ret = prepare(store,
                      "INSERT INTO templates (name, distro, release, arch, size, image_size, files,"
                      " sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      &st, err);
        if (ret < 0)
                return ret;
        bind_json(st, 1, json_object_get(t, "name"));
        bind_json(st, 2, json_object_get(t, "distro"));
        bind_json(st, 3, json_object_get(t, "release"));
        bind_json(st, 4, json_object_get(t, "arch"));
        bind_json(st, 5, json_object_get(t, "size"));
        bind_json(st, 6, json_object_get(t, "image_size"));
        bind_json(st, 7, json_object_get(t, "files"));
        bind_json(st, 8, json_object_get(t, "sha256"));
        if (sqlite3_step(st) != SQLITE_DONE) {
                if ((sqlite3_extended_errcode(store->db) & 0xff) == SQLITE_CONSTRAINT)
                        return ve_error_set(err, VE_ECONFLICT, "template '%s' already exists",
                                            json_string_value(json_object_get(t, "name")));
                return db_error(store, err, "insert template");
        }
        return 0;
}

int ved_store_template_get(struct ved_store *store, const char *name, json_t **out,
                           struct ve_error *err)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int ret, rc;

        ret = prepare(store, "SELECT * FROM templates WHERE name = ?", &st, err);
        if (ret < 0)
                return ret;
        sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return ve_error_set(err, VE_ENOTFOUND, "template '%s' does not exist", name);
        if (rc != SQLITE_ROW)
                return db_error(store, err, "read template");
        *out = row_to_json(st);
        return 0;
}

bool ved_store_template_exists(struct ved_store *store, const char *name)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;

        if (name == NULL || sqlite3_prepare_v2(store->db, "SELECT 1 FROM templates WHERE name = ?",
                                               -1, &st, NULL) != SQLITE_OK)
                return false;
        sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
        return sqlite3_step(st) == SQLITE_ROW;
}

int ved_store_template_list(struct ved_store *store, json_t **out, struct ve_error *err)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int ret;

        ret = prepare(store, "SELECT * FROM templates ORDER BY name", &st, err);
        if (ret < 0)
                return ret;
        return collect_rows(store, st, row_to_json, "list templates", out, err);
}

int ved_store_template_delete(struct ved_store *store, const char *name, struct ve_error *err)
{
        return exec_bound(store, "DELETE FROM templates WHERE name = ?", "delete template", err, 0,
                          NULL, name);
}

int64_t ved_store_idmap_allocate(struct ved_store *store, int64_t first, int64_t count,
                                 int64_t limit, struct ve_error *err)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int64_t want = first;
        int ret, rc;

        ret = prepare(store,
                      "SELECT idmap_base FROM ves WHERE idmap_base IS NOT NULL ORDER BY idmap_base",
                      &st, err);
        if (ret < 0)
                return ret;
        /* The first slot not taken: the bases are sorted, so one pass finds a gap. */
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                int64_t base = sqlite3_column_int64(st, 0);

                if (base > want)
                        break;
                if (base == want)
                        want += count;
        }
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
                return db_error(store, err, "allocate an id range");
        if (want + count > limit)
                return ve_error_set(err, ENOSPC, "no free uid/gid range left for a new VE");
        return want;
}

int64_t ved_store_ip_holder(struct ved_store *store, const char *addr, uint32_t except_ctid)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;

        if (sqlite3_prepare_v2(store->db,
                               "SELECT ves.ctid FROM ves, json_each(ves.ip) WHERE ves.ctid != ?2"
                               " AND (json_each.value = ?1 OR json_each.value LIKE ?1 || '/%')"
                               " LIMIT 1",
                               -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        sqlite3_bind_text(st, 1, addr, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, except_ctid);
        if (sqlite3_step(st) != SQLITE_ROW)
                return 0;
        return sqlite3_column_int64(st, 0);
}

int ved_store_traffic_get(struct ved_store *store, uint32_t ctid, struct ved_traffic_row *out,
                          struct ve_error *err)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int ret, rc;

        memset(out, 0, sizeof(*out));
        ret = prepare(store,
                      "SELECT bytes_in, bytes_out, packets_in, packets_out, run_ifindex,"
                      " run_bytes_in, run_bytes_out, run_packets_in, run_packets_out"
                      " FROM traffic WHERE ctid = ?",
                      &st, err);
        if (ret < 0)
                return ret;
        sqlite3_bind_int64(st, 1, ctid);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return 0;
        if (rc != SQLITE_ROW)
                return db_error(store, err, "read traffic counters");
        for (int i = 0; i < 4; i++) {
                out->total[i] = sqlite3_column_int64(st, i);
                out->run[i] = sqlite3_column_int64(st, 5 + i);
        }
        out->run_ifindex = sqlite3_column_int64(st, 4);
        return 0;
}

int ved_store_traffic_put(struct ved_store *store, uint32_t ctid, const struct ved_traffic_row *row,
                          struct ve_error *err)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int ret;

        ret = prepare(store,
                      "INSERT OR REPLACE INTO traffic (ctid, bytes_in, bytes_out, packets_in,"
                      " packets_out, run_ifindex, run_bytes_in, run_bytes_out, run_packets_in,"
                      " run_packets_out) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
                      " WHERE EXISTS (SELECT 1 FROM ves WHERE ctid = ?1)",
                      &st, err);
        if (ret < 0)
                return ret;
        sqlite3_bind_int64(st, 1, ctid);
        for (int i = 0; i < 4; i++) {
                sqlite3_bind_int64(st, 2 + i, row->total[i]);
                sqlite3_bind_int64(st, 7 + i, row->run[i]);
        }
        sqlite3_bind_int64(st, 6, row->run_ifindex);
        if (sqlite3_step(st) != SQLITE_DONE)
                return db_error(store, err, "store traffic counters");
        return 0;
}
