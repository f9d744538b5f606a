#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "body.h"
#include "daemon/actions.h"
#include "daemon/guest_config.h"
#include "daemon/log.h"
#include "daemon/ops.h"
#include "daemon/params.h"
#include "daemon/policy.h"
#include "daemon/netplan.h"
#include "daemon/runtime.h"
#include "daemon/usage.h"
#include "daemon/ve_ops.h"
#include "daemon/ved.h"
#include "present.h"
#include "router.h"
#include "ve/parse.h"
#include "ve/template_build.h"

static const char *const ve_states[] = { "creating",   "stopped",  "starting",
                                         "running",    "stopping", "suspended",
                                         "destroying", "broken",   NULL };

bool api_ve_state_known(const char *s)
{
        for (unsigned i = 0; ve_states[i]; i++)
                if (strcmp(ve_states[i], s) == 0)
                        return true;
        return false;
}

static bool transitional(json_t *ve)
{
        const char *s = json_string_value(json_object_get(ve, "state"));

        return strcmp(s, "creating") == 0 || strcmp(s, "destroying") == 0 ||
               strcmp(s, "starting") == 0 || strcmp(s, "stopping") == 0;
}

int api_respond_bad_state(struct api_request *req, const char *state)
{
        return api_respond_error(req, 400,
                                 "unknown state '%.32s': use creating, stopped, starting, "
                                 "running, stopping, suspended, destroying or broken",
                                 state);
}

int route_ves_list(struct api_request *req)
{
        const char *state = api_query(req, "state"), *name = api_query(req, "name");
        struct ve_error err = { 0 };
        json_t *list = NULL, *out, *ve;
        size_t i;
        int ret;

        if (state != NULL && !api_ve_state_known(state))
                return api_respond_bad_state(req, state);
        /* A name no VE can have is a mistake, not an empty list. */
        ret = name != NULL ? ve_check_name(name, &err) : 0;
        if (ret == 0)
                ret = ved_store_ve_list(&req->v->store, state, name, &list, &err);
        if (ret < 0) {
                ret = api_respond_ve_error(req, &err);
                ve_error_clear(&err);
                return ret;
        }
        out = json_array();
        json_array_foreach(list, i, ve) json_array_append_new(out, api_present_ve(json_incref(ve)));
        json_decref(list);
        return api_respond_json(req, 200, json_pack("{s:o}", "ves", out));
}

/* Normalise every parameter of body into *out; keys outside the table refused. */
static int normalize_params(json_t *body, bool create, json_t *out, struct ve_error *err)
{
        const char *key;
        json_t *value;

        json_object_foreach(body, key, value)
        {
                const struct ved_param *p = ved_param_find(key);
                json_t *n;

                if (p == NULL)
                        continue; /* ctid, ipadd, ipdel: handled by the caller */
                if (!create && (p->flags & VED_PF_CREATE_ONLY))
                        return ve_error_set(err, VE_EINVAL_INPUT,
                                            "%s is set at create and cannot be changed", key);
                n = ved_param_normalize(p, value, err);
                if (n == NULL)
                        return -err->code;
                if (json_is_null(n) && (p->flags & VED_PF_NOT_NULL)) {
                        json_decref(n);
                        n = ved_param_default(p);
                }
                json_object_set_new(out, key, n);
        }
        return 0;
}

static int check_create_body(json_t *body, json_t *ve, struct ve_error *err)
{
        static const char *allowed[64] = { "ctid", "userpasswd", "ssh_key" };
        json_t *ctid = json_object_get(body, "ctid");
        unsigned n = 3;

        if (allowed[3] == NULL)
                for (const struct ved_param *p = ved_params; p->key; p++)
                        allowed[n++] = p->key;
        if (api_check_fields(body, allowed, err) < 0)
                return -err->code;
        if (ctid == NULL)
                return ve_error_set(err, VE_EINVAL_INPUT, "ctid is required");
        if (!json_is_integer(ctid))
                return ve_error_set(err, VE_EINVAL_INPUT, "ctid must be an integer");
        if (json_integer_value(ctid) < 0 ||
            ve_check_ctid((uint64_t)json_integer_value(ctid), err) < 0)
                return ve_error_set(err, VE_EINVAL_INPUT, "CTID %lld is out of range (%u to %u)",
                                    (long long)json_integer_value(ctid), VE_CTID_MIN, VE_CTID_MAX);
        for (const struct ved_param *p = ved_params; p->key; p++)
                if ((p->flags & VED_PF_REQUIRED) && (json_object_get(body, p->key) == NULL ||
                                                     json_is_null(json_object_get(body, p->key))))
                        return ve_error_set(err, VE_EINVAL_INPUT, "%s is required", p->key);
        json_object_set(ve, "ctid", ctid);
        json_object_set_new(ve, "state", json_string("creating"));
        return normalize_params(body, true, ve, err);
}

int api_respond_operation(struct api_request *req, int64_t id, json_t *ve)
{
        struct ve_error err = { 0 };
        char location[64];
        json_t *op = NULL, *out;

        if (ved_store_op_get(&req->v->store, id, &op, &err) < 0) {
                int ret = api_respond_ve_error(req, &err);

                ve_error_clear(&err);
                json_decref(ve);
                return ret;
        }
        out = json_pack("{s:o}", "operation", api_present_op(op));
        if (ve != NULL)
                json_object_set_new(out, "ve", api_present_ve(ve));
        snprintf(location, sizeof(location), "/v1/operations/%lld", (long long)id);
        return api_respond_json_hdr(req, 202, out, "Location", location, NULL, NULL);
}

/* Commit the transaction that created op (and its record), then start it. */
static int start_operation(struct api_request *req, struct ved_op *op, json_t *ve)
{
        struct ve_error err = { 0 };
        int64_t id = op->id;
        uint32_t ctid = op->ctid;
        int ret;

        ret = ved_commit(req->v, &err);
        if (ret < 0) {
                ved_op_free(op);
                json_decref(ve);
                ret = api_respond_ve_error(req, &err);
                ve_error_clear(&err);
                return ret;
        }
        ved_op_run(op);
        if (ve != NULL) {
                json_t *fresh = NULL;

                if (ved_store_ve_get_ctid(&req->v->store, ctid, &fresh, NULL) == 0) {
                        json_decref(ve);
                        ve = fresh;
                }
        }
        return api_respond_operation(req, id, ve);
}

static int fail(struct api_request *req, struct ve_error *err, bool rollback)
{
        int ret;

        if (rollback)
                ved_rollback(req->v);
        ret = api_respond_ve_error(req, err);
        ve_error_clear(err);
        return ret;
}

/* The template must be imported, under the name given or, for a name without
 * an architecture, under its full name (centos-7 is centos-7-x86_64 or
 * centos-7-amd64); or have a recipe that builds it: then the create builds it
 * first (*build), under its full name (debian-12 is debian-12-x86_64). */
static int check_template(struct ved *v, json_t *ve, bool *build, struct ve_error *err)
{
        const char *name = json_string_value(json_object_get(ve, "ostemplate"));
        char full[2][VE_TEMPLATE_NAME_MAX + 1];
        struct ve_template_recipe r;
        int i, n;

        *build = false;
        if (ved_store_template_exists(&v->store, name))
                return 0;
        n = ve_template_name_candidates(name, ve_template_host_arch(), full, 2);
        for (i = 0; i < n; i++)
                if (ved_store_template_exists(&v->store, full[i])) {
                        json_object_set_new(ve, "ostemplate", json_string(full[i]));
                        return 0;
                }
        if (ve_template_recipe_find(v->cfg.template_recipes, name, &r, NULL) < 0)
                return ve_error_set(err, VE_EINVAL_INPUT,
                                    "unknown OS template '%s': see vectl template list, or "
                                    "import it with vectl template import",
                                    name);
        *build = !ved_store_template_exists(&v->store, r.name);
        json_object_set_new(ve, "ostemplate", json_string(r.name));
        return 0;
}

static int allocate_idmap(struct ved *v, uint32_t ctid, struct ve_error *err)
{
        int64_t base = ved_store_idmap_allocate(&v->store, VED_IDMAP_FIRST, VED_IDMAP_COUNT,
                                                VED_IDMAP_LIMIT, err);

        if (base < 0)
                return (int)base;
        return ved_store_ve_set_idmap(&v->store, ctid, base, err);
}

int route_ve_create(struct api_request *req)
{
        struct ve_error err = { 0 };
        struct ved_secrets secrets = { 0 };
        json_t *body = NULL, *ve, *params;
        struct ved_op *op = NULL;
        uint32_t ctid;
        bool build;
        int ret;

        if (api_body_object(req, &body) < 0)
                return 0;
        ve = json_object();
        if (check_create_body(body, ve, &err) < 0 ||
            ved_secrets_from_body(body, &secrets, &err) < 0) {
                ved_secrets_clear(&secrets);
                json_decref(body);
                json_decref(ve);
                return fail(req, &err, false);
        }
        json_decref(body);
        ctid = (uint32_t)json_integer_value(json_object_get(ve, "ctid"));
        if (check_template(req->v, ve, &build, &err) < 0) {
                json_decref(ve);
                return fail(req, &err, false);
        }
        params = build ? json_pack("{s:b}", "build_template", 1) : NULL;
        ret = 0;
        if (ved_begin(req->v, &err) < 0 ||
            ved_policy_check_ips(req->v, ctid, json_object_get(ve, "ip"), &err) < 0 ||
            ved_netplan_check_addrs(req->v, ve, &err) < 0 ||
            ved_policy_check_macs(req->v, ctid, json_object_get(ve, "netif"), &err) < 0 ||
            ved_store_ve_insert(&req->v->store, ve, &err) < 0 ||
            allocate_idmap(req->v, ctid, &err) < 0 ||
            ved_op_create(req->v, &ved_op_create_kind, ctid, params, &op, &err) < 0)
                ret = -1;
        json_decref(params);
        if (ret < 0) {
                ved_secrets_clear(&secrets);
                json_decref(ve);
                return fail(req, &err, true);
        }
        ved_ve_op_give_secrets(op, &secrets);
        ret = start_operation(req, op, ve);
        ved_secrets_clear(&secrets);
        return ret;
}

/* Look up {ve}; answers 404 itself when missing. */
static int lookup(struct api_request *req, json_t **ve)
{
        struct ve_error err = { 0 };

        if (ved_store_ve_get(&req->v->store, req->params[0], ve, &err) < 0) {
                fail(req, &err, false);
                return -1;
        }
        return 0;
}

int route_ve_get(struct api_request *req)
{
        json_t *ve = NULL;
        char etag[32];

        if (lookup(req, &ve) < 0)
                return 0;
        api_ve_etag(ve, etag, sizeof(etag));
        return api_respond_json_hdr(req, 200, api_present_ve(ve), "ETag", etag, NULL, NULL);
}

/* If-Match: "*" or one of our ETags ("\"7\"", or weak W/"7"). -1 when absent or *. */
static int parse_if_match(struct api_request *req, int64_t *version, struct ve_error *err)
{
        const char *h = api_header(req, "If-Match");
        char *end;

        *version = -1;
        if (h == NULL || strcmp(h, "*") == 0)
                return 0;
        if (strncmp(h, "W/", 2) == 0)
                h += 2;
        if (h[0] != '"' || h[1] < '0' || h[1] > '9')
                return ve_error_set(err, VE_EINVAL_INPUT,
                                    "If-Match must be an ETag from GET, such as \"3\"");
        *version = strtoll(h + 1, &end, 10);
        if (strcmp(end, "\"") != 0)
                return ve_error_set(err, VE_EINVAL_INPUT,
                                    "If-Match must be an ETag from GET, such as \"3\"");
        return 0;
}

static int apply_ip_changes(json_t *body, json_t *ve, json_t *changes, struct ve_error *err)
{
        const struct ved_param *p = ved_param_find("ip");
        json_t *add = json_object_get(body, "ipadd"), *del = json_object_get(body, "ipdel");
        json_t *ips, *cur, *n, *item;
        size_t i;

        if (add == NULL && del == NULL)
                return 0;
        if ((add != NULL && !json_is_array(add)) || (del != NULL && !json_is_array(del)))
                return ve_error_set(err, VE_EINVAL_INPUT, "%s must be an array of strings",
                                    add != NULL && !json_is_array(add) ? "ipadd" : "ipdel");
        cur = json_object_get(changes, "ip");
        ips = json_deep_copy(cur ? cur : json_object_get(ve, "ip"));
        if (json_is_array(del) && json_array_size(del) == 1 &&
            json_is_string(json_array_get(del, 0)) &&
            strcmp(json_string_value(json_array_get(del, 0)), "all") == 0) {
                json_array_clear(ips);
        } else if (del != NULL) {
                n = ved_param_normalize(p, del, err);
                if (n == NULL) {
                        json_decref(ips);
                        return ve_error_prefix(err, "ipdel");
                }
                json_array_foreach(n, i, item)
                {
                        size_t j;
                        json_t *have;
                        bool found = false;

                        json_array_foreach(ips, j, have)
                        {
                                const char *h = json_string_value(have),
                                           *d = json_string_value(item);

                                /* A bare address names the VE's entry whatever its
                                 * prefix; one with a prefix, only that entry. */
                                if (strchr(d, '/') != NULL ? strcmp(h, d) == 0
                                                           : ved_ip_same_address(h, d)) {
                                        json_array_remove(ips, j);
                                        found = true;
                                        break;
                                }
                        }
                        if (!found) {
                                int ret = ve_error_set(err, VE_EINVAL_INPUT,
                                                       "ipdel: the VE has no address %s",
                                                       json_string_value(item));
                                json_decref(n);
                                json_decref(ips);
                                return ret;
                        }
                }
                json_decref(n);
        }
        if (add != NULL) {
                n = ved_param_normalize(p, add, err);
                if (n == NULL) {
                        json_decref(ips);
                        return ve_error_prefix(err, "ipadd");
                }
                json_array_extend(ips, n);
                json_decref(n);
        }
        n = ved_param_normalize(p, ips, err); /* deduplicate, re-check the count */
        json_decref(ips);
        if (n == NULL)
                return -err->code;
        json_object_set_new(changes, "ip", n);
        return 0;
}

static int check_patch_body(json_t *body, json_t *ve, json_t *changes, struct ve_error *err)
{
        static const char *allowed[64] = { "ipadd", "ipdel", "userpasswd", "ssh_key" };
        unsigned n = 4;

        if (allowed[4] == NULL)
                for (const struct ved_param *p = ved_params; p->key; p++)
                        allowed[n++] = p->key;
        if (api_check_fields(body, allowed, err) < 0)
                return -err->code;
        if (json_object_size(body) == 0)
                return ve_error_set(err, VE_EINVAL_INPUT, "nothing to change: the body is empty");
        if (normalize_params(body, false, changes, err) < 0)
                return -err->code;
        return apply_ip_changes(body, ve, changes, err);
}

/* How far a PATCH got in changing a running VE (route_ve_patch()). */
enum live_stage { LIVE_NONE, LIVE_RATE, LIVE_LIMITS, LIVE_IP, LIVE_DONE };

/* A PATCH that failed after it began to change a running VE: what it changed live
 * is put back as the record, which keeps the old values, says. A step that failed
 * is undone too (putting back the old values again is harmless), except the
 * addresses' own, which undoes itself. The disk's size is not shrunk back. */
static void undo_live(struct ved *v, uint32_t ctid, json_t *ve, json_t *changes,
                      enum live_stage stage)
{
        struct ved_rt *rt = ved_rt_find(v, ctid);
        json_t *rate = json_object_get(ve, "rate");
        json_auto_t *old_rate = json_pack("{s:O}", "rate", rate ? rate : json_null());
        struct ve_error e = { 0 };

        if (rt == NULL || rt->exited)
                return;
        if (stage > LIVE_IP && json_object_get(changes, "ip") != NULL &&
            ved_rt_net_change(v, ctid, json_object_get(changes, "ip"), json_object_get(ve, "ip"),
                              &e) < 0)
                log_warn("VE %u: undoing a refused change: %s", ctid, e.message);
        ve_error_clear(&e);
        if (stage >= LIVE_LIMITS && ved_limits_reapply(v, ve, &e) < 0)
                log_warn("VE %u: undoing a refused change: %s", ctid, e.message);
        ve_error_clear(&e);
        if (stage >= LIVE_RATE && json_object_get(changes, "rate") != NULL && old_rate != NULL &&
            ved_net_patch(v, ctid, old_rate, &e) < 0)
                log_warn("VE %u: undoing a refused change: %s", ctid, e.message);
        ve_error_clear(&e);
}

/* The addresses and netif the VE will have, checked against its bridge. */
static int check_addrs_after(struct ved *v, json_t *ve, json_t *changes, struct ve_error *err)
{
        json_t *after = json_deep_copy(ve);
        int ret;

        if (after == NULL)
                return ve_error_set(err, ENOMEM, "out of memory");
        json_object_update(after, changes);
        ret = ved_netplan_check_addrs(v, after, err);
        json_decref(after);
        return ret;
}

/* The PATCH's record and its live changes, in the transaction; stage says how far
 * the live changes got. */
static int patch_in_transaction(struct ved *v, uint32_t ctid, json_t *ve, json_t *changes,
                                int64_t version, const struct ved_secrets *secrets,
                                enum live_stage *stage, struct ve_error *err)
{
        json_t *ips = json_object_get(changes, "ip");
        int64_t op;

        if (ved_policy_check_ips(v, ctid, ips, err) < 0 ||
            ved_policy_check_macs(v, ctid, json_object_get(changes, "netif"), err) < 0 ||
            check_addrs_after(v, ve, changes, err) < 0 ||
            ved_store_ve_update(&v->store, ctid, changes, version, err) < 0)
                return -err->code;
        *stage = LIVE_RATE;
        if (ved_net_patch(v, ctid, changes, err) < 0)
                return -err->code;
        *stage = LIVE_LIMITS;
        if (ved_limits_change(v, ve, changes, err) < 0)
                return -err->code;
        *stage = LIVE_IP;
        if (ips != NULL && ved_rt_net_change(v, ctid, json_object_get(ve, "ip"), ips, err) < 0)
                return -err->code;
        *stage = LIVE_DONE;
        if (ved_guest_patch(v, ctid, ve, changes, secrets, err) < 0)
                return -err->code;
        op = ved_op_record_done(v, "set", ctid, changes, err);
        if (op < 0)
                return -err->code;
        if (ved_event(v, "ve.changed", ctid, op, NULL, "VE %u changed", ctid) < 0)
                return ve_error_set(err, EIO, "record the change of VE %u", ctid);
        return ved_commit(v, err) < 0 ? -err->code : 0;
}

int route_ve_patch(struct api_request *req)
{
        json_t *body = NULL, *ve = NULL, *changes;
        struct ve_error err = { 0 };
        struct ved_secrets secrets = { 0 };
        enum live_stage stage = LIVE_NONE;
        int64_t version;
        uint32_t ctid;
        char etag[32];

        if (api_body_object(req, &body) < 0 || lookup(req, &ve) < 0) {
                json_decref(body);
                return 0;
        }
        ctid = (uint32_t)json_integer_value(json_object_get(ve, "ctid"));
        changes = json_object();
        if (parse_if_match(req, &version, &err) < 0 ||
            check_patch_body(body, ve, changes, &err) < 0 ||
            ved_secrets_from_body(body, &secrets, &err) < 0)
                goto bad;
        if (transitional(ve)) {
                ve_error_set(&err, VE_ECONFLICT, "VE %u is %s: wait for it to finish", ctid,
                             json_string_value(json_object_get(ve, "state")));
                goto bad;
        }
        if (ved_begin(req->v, &err) < 0)
                goto bad;
        if (patch_in_transaction(req->v, ctid, ve, changes, version, &secrets, &stage, &err) < 0) {
                ved_rollback(req->v);
                undo_live(req->v, ctid, ve, changes, stage);
                goto bad;
        }
        ved_secrets_clear(&secrets);
        json_decref(body);
        json_decref(changes);
        json_decref(ve);
        ve = NULL;
        if (ved_store_ve_get_ctid(&req->v->store, ctid, &ve, &err) < 0)
                return fail(req, &err, false);
        api_ve_etag(ve, etag, sizeof(etag));
        return api_respond_json_hdr(req, 200, api_present_ve(ve), "ETag", etag, NULL, NULL);
bad:
        ved_secrets_clear(&secrets);
        json_decref(body);
        json_decref(changes);
        json_decref(ve);
        return fail(req, &err, false);
}

int route_ve_delete(struct api_request *req)
{
        const char *force = api_query(req, "force");
        struct ve_error err = { 0 };
        struct ved_op *op = NULL;
        json_t *ve = NULL, *params;
        const char *state;
        bool forced = false;
        uint32_t ctid;

        if (force != NULL && ve_parse_bool(force, &forced, "force", &err) < 0)
                return fail(req, &err, false);
        if (lookup(req, &ve) < 0)
                return 0;
        ctid = (uint32_t)json_integer_value(json_object_get(ve, "ctid"));
        state = json_string_value(json_object_get(ve, "state"));
        ved_rt_reboot_loop_cancel(req->v, ctid);
        if (transitional(ve) || (strcmp(state, "running") == 0 && !forced)) {
                ve_error_set(&err, VE_ECONFLICT,
                             strcmp(state, "running") == 0
                                 ? "VE %u is running: stop it first, or destroy it with force "
                                   "(?force=1; vectl destroy --force)"
                                 : "VE %u is %s: wait for it to finish",
                             ctid, state);
                json_decref(ve);
                return fail(req, &err, false);
        }
        params = json_pack("{s:s, s:b}", "previous_state", state, "force", forced);
        json_decref(ve);
        if (ved_begin(req->v, &err) < 0 ||
            ved_store_ve_set_state(&req->v->store, ctid, "destroying", &err) < 0 ||
            ved_op_create(req->v, &ved_op_destroy_kind, ctid, params, &op, &err) < 0) {
                json_decref(params);
                return fail(req, &err, true);
        }
        json_decref(params);
        return start_operation(req, op, NULL);
}

/* A stopped VE held back after a reboot loop: when it starts again, and after how
 * many reboots in a row; null when it is not held back. */
static json_t *delayed_start(struct ved *v, json_t *ve)
{
        uint32_t ctid = (uint32_t)json_integer_value(json_object_get(ve, "ctid"));
        unsigned reboots;
        uint64_t due;
        char at[32];
        struct tm tm;
        time_t secs;

        if (ved_rt_delayed_start(v, ctid, &reboots, &due) < 0)
                return json_null();
        secs = (time_t)(due / 1000);
        gmtime_r(&secs, &tm);
        strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(at + strlen(at), sizeof(at) - strlen(at), ".%03uZ", (unsigned)(due % 1000));
        return json_pack("{s:s, s:I}", "at", at, "reboots", (json_int_t)reboots);
}

int route_ve_state_get(struct api_request *req)
{
        json_t *ve = NULL, *out;
        const char *state;
        int64_t pid;

        if (lookup(req, &ve) < 0)
                return 0;
        state = json_string_value(json_object_get(ve, "state"));
        pid = json_integer_value(json_object_get(ve, "pid"));
        out =
            json_pack("{s:O, s:s, s:b, s:b, s:b}", "ctid", json_object_get(ve, "ctid"), "state",
                      state, "exist", 1, "mounted",
                      strcmp(state, "running") == 0 || strcmp(state, "stopping") == 0 ||
                          strcmp(state, "suspended") == 0,
                      "running", strcmp(state, "running") == 0 || strcmp(state, "suspended") == 0);
        json_object_set_new(out, "pid", pid > 0 ? json_integer(pid) : json_null());
        json_object_set_new(out, "idmap", api_present_idmap(ve));
        json_object_set_new(out, "delayed_start",
                            strcmp(state, "stopped") == 0 ? delayed_start(req->v, ve)
                                                          : json_null());
        json_decref(ve);
        return api_respond_json(req, 200, out);
}

int route_ve_state_post(struct api_request *req)
{
        static const char *const allowed[] = { "action", "force", "timeout", NULL };
        struct ve_error err = { 0 };
        json_t *body = NULL, *ve = NULL, *force, *timeout;
        const char *action;
        bool held;
        uint32_t ctid;
        int64_t id;

        if (api_body_object(req, &body) < 0)
                return 0;
        if (api_check_fields(body, allowed, &err) < 0) {
                json_decref(body);
                return fail(req, &err, false);
        }
        action = json_string_value(json_object_get(body, "action"));
        force = json_object_get(body, "force");
        if (action == NULL || (strcmp(action, "start") != 0 && strcmp(action, "stop") != 0 &&
                               strcmp(action, "restart") != 0)) {
                json_decref(body);
                return api_respond_error(req, 400, "action must be start, stop or restart");
        }
        if (force != NULL && !json_is_boolean(force)) {
                json_decref(body);
                return api_respond_error(req, 400, "force must be true or false");
        }
        timeout = json_object_get(body, "timeout");
        if (timeout != NULL && (!json_is_integer(timeout) || json_integer_value(timeout) < 1 ||
                                json_integer_value(timeout) > 86400)) {
                json_decref(body);
                return api_respond_error(req, 400, "timeout must be 1 to 86400 seconds");
        }
        if (lookup(req, &ve) < 0) {
                json_decref(body);
                return 0;
        }
        ctid = (uint32_t)json_integer_value(json_object_get(ve, "ctid"));
        json_decref(ve);
        /* The user decides now, not a delayed start after a reboot loop. */
        held = ved_rt_reboot_loop_cancel(req->v, ctid);
        if (ved_ve_action(req->v, ctid, action, json_is_true(force),
                          (unsigned)json_integer_value(timeout), "requested", &id, &err) < 0) {
                json_decref(body);
                if (held && err.code == VE_ECONFLICT)
                        ve_error_set(&err, VE_ECONFLICT,
                                     "VE %u is stopped, held back after a reboot loop: it will "
                                     "not start again by itself now",
                                     ctid);
                return fail(req, &err, false);
        }
        json_decref(body);
        return api_respond_operation(req, id, NULL);
}
