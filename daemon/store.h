/* The SQLite store: the only place that opens ved.db (DESIGN.md, Storage).
 *
 * WAL journal, synchronous=FULL, foreign keys, a busy timeout; every write runs
 * in BEGIN IMMEDIATE. The schema version lives in PRAGMA user_version; on open,
 * an older schema is migrated in one transaction after copying the database to
 * ved.db.bak-v<old>, and a newer one is refused.
 *
 * Records are exchanged as jansson objects in the API's shape (see api/openapi.yaml)
 * so the parameter table in params.h drives both the columns and the JSON. Every
 * function returns 0 / a positive id, or -errno / -VE_E* with err filled. Only the
 * loop thread calls the store. */
#ifndef VED_STORE_H
#define VED_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <sqlite3.h>

#include "ve/error.h"

#define VED_SCHEMA_VERSION 5

struct ved_store {
        sqlite3 *db;
        char *path;
        bool lazy;     /* in a transaction of ved_store_begin_lazy() */
        bool reserved; /* holds its reserve (ved_store_check_room()) */
};

int ved_store_open(const char *path, struct ved_store *store, struct ve_error *err);
void ved_store_close(struct ved_store *store);

/* Transactions: begin is BEGIN IMMEDIATE, so a writer never upgrades a read lock. */
int ved_store_begin(struct ved_store *store, struct ve_error *err);
int ved_store_commit(struct ved_store *store, struct ve_error *err);
/* A transaction whose commit does not wait for the disk (WAL with
 * synchronous=NORMAL): it becomes durable with the next ordinary commit. For
 * records that a power loss may take back to the last ordinary commit without
 * harm, such as an operation's progress: recovery already meets a step done but
 * not recorded. */
int ved_store_begin_lazy(struct ved_store *store, struct ve_error *err);
void ved_store_rollback(struct ved_store *store);
/* Whether a transaction is open. */
bool ved_store_in_transaction(struct ved_store *store);

/* Room for the store on a full disk: <path>-reserve, VED_STORE_RESERVE bytes
 * allocated beside the database (its file system also holds the VEs' images,
 * which grow as their VEs write). A transaction that begins on a nearly full file
 * system gives it back first, so that operations can still be recorded.
 * ved_store_check_room() makes it (again) once there is room, at startup and on
 * a timer; ved_store_release_reserve() gives it back at once (a commit that
 * failed with ENOSPC all the same): true when there was one. */
#define VED_STORE_RESERVE (8u << 20)
void ved_store_check_room(struct ved_store *store);
bool ved_store_release_reserve(struct ved_store *store);

/* VEs. ve is the full record (ctid, state and every parameter). Insert fails with
 * VE_ECONFLICT naming the clash when the CTID or name is taken. */
int ved_store_ve_insert(struct ved_store *store, json_t *ve, struct ve_error *err);
/* Look up by "101" or by name; *out is a new reference. VE_ENOTFOUND when none. */
int ved_store_ve_get(struct ved_store *store, const char *ctid_or_name, json_t **out,
                     struct ve_error *err);
int ved_store_ve_get_ctid(struct ved_store *store, uint32_t ctid, json_t **out,
                          struct ve_error *err);
/* List, ordered by CTID; state and name may be NULL (no filter). */
int ved_store_ve_list(struct ved_store *store, const char *state, const char *name, json_t **out,
                      struct ve_error *err);
/* Apply `changes` (parameter keys, already validated) and bump the version. When
 * expected_version >= 0 and differs, fails with VE_EPRECONDITION. */
int ved_store_ve_update(struct ved_store *store, uint32_t ctid, json_t *changes,
                        int64_t expected_version, struct ve_error *err);
int ved_store_ve_set_state(struct ved_store *store, uint32_t ctid, const char *state,
                           struct ve_error *err);
/* The runtime record of a running VE: init's host pid and its start time (0 = none). */
int ved_store_ve_set_runtime(struct ved_store *store, uint32_t ctid, int64_t pid, int64_t starttime,
                             struct ve_error *err);
/* The CTID of another VE (not except_ctid) that holds address addr (no prefix),
 * 0 when none. */
int64_t ved_store_ip_holder(struct ved_store *store, const char *addr, uint32_t except_ctid);

/* The first host uid (and gid) of the VE's user namespace map. */
int ved_store_ve_set_idmap(struct ved_store *store, uint32_t ctid, int64_t base,
                           struct ve_error *err);
int ved_store_ve_delete(struct ved_store *store, uint32_t ctid, struct ve_error *err);
/* Count VEs, optionally in one state. */
int ved_store_ve_count(struct ved_store *store, const char *state);

/* Operations. insert returns the new id. */
int64_t ved_store_op_insert(struct ved_store *store, const char *type, uint32_t ctid,
                            json_t *params, struct ve_error *err);
int ved_store_op_add_step(struct ved_store *store, int64_t id, const char *step,
                          struct ve_error *err);
int ved_store_op_set_status(struct ved_store *store, int64_t id, const char *status,
                            struct ve_error *err);
/* What the recovery did with an operation it lets run on (still running). */
int ved_store_op_set_resolution(struct ved_store *store, int64_t id, const char *resolution,
                                struct ve_error *err);
/* Finish: status "succeeded" or "failed"; error and resolution may be NULL. */
int ved_store_op_finish(struct ved_store *store, int64_t id, const char *status, int error_code,
                        const char *error_message, const char *resolution, struct ve_error *err);
int ved_store_op_get(struct ved_store *store, int64_t id, json_t **out, struct ve_error *err);
/* Newest first. ctid 0 and status NULL mean no filter. */
int ved_store_op_list(struct ved_store *store, uint32_t ctid, const char *status, int limit,
                      json_t **out, struct ve_error *err);
/* Operations whose status is pending or running, oldest first. */
int ved_store_op_unfinished(struct ved_store *store, json_t **out, struct ve_error *err);

/* Events. Returns the stored event (with id and time) in *out, a new reference. */
int ved_store_event_insert(struct ved_store *store, const char *type, uint32_t ctid, int64_t op,
                           const char *state, const char *message, json_t **out,
                           struct ve_error *err);
/* Events with id > since, oldest first, at most limit. */
int ved_store_event_list(struct ved_store *store, int64_t since, int limit, json_t **out,
                         struct ve_error *err);
int64_t ved_store_event_last_id(struct ved_store *store);

/* The lowest base >= first, in steps of count, that no VE's idmap_base holds
 * (call inside the transaction that stores it). ENOSPC past limit. */
int64_t ved_store_idmap_allocate(struct ved_store *store, int64_t first, int64_t count,
                                 int64_t limit, struct ve_error *err);

/* Daemon-wide facts (key/value). get answers -ENOENT when unset. */
int ved_store_meta_get(struct ved_store *store, const char *key, char *buf, size_t len);
int ved_store_meta_set(struct ved_store *store, const char *key, const char *value,
                       struct ve_error *err);
int ved_store_meta_delete(struct ved_store *store, const char *key, struct ve_error *err);
/* The facts whose key starts with prefix, as an object of key: value. */
int ved_store_meta_list(struct ved_store *store, const char *prefix, json_t **out,
                        struct ve_error *err);

/* A VE's traffic counters (bytes_in, bytes_out, packets_in, packets_out): the
 * totals of its finished runs and the last sample of its current run, whose veth
 * had run_ifindex (0: none). get fills zeros for a VE never sampled; put does
 * nothing for a VE that no longer exists. */
struct ved_traffic_row {
        int64_t total[4];
        int64_t run_ifindex;
        int64_t run[4];
};
int ved_store_traffic_get(struct ved_store *store, uint32_t ctid, struct ved_traffic_row *out,
                          struct ve_error *err);
int ved_store_traffic_put(struct ved_store *store, uint32_t ctid, const struct ved_traffic_row *row,
                          struct ve_error *err);

/* Templates: {name, distro, release, arch, size, image_size, files, sha256}. */
int ved_store_template_insert(struct ved_store *store, json_t *t, struct ve_error *err);
int ved_store_template_get(struct ved_store *store, const char *name, json_t **out,
                           struct ve_error *err);
/* Whether a template of this name is recorded (false for NULL, or on a read error). */
bool ved_store_template_exists(struct ved_store *store, const char *name);
int ved_store_template_list(struct ved_store *store, json_t **out, struct ve_error *err);
int ved_store_template_delete(struct ved_store *store, const char *name, struct ve_error *err);

#endif
