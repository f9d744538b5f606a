#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "body.h"
#include "daemon/layers.h"
#include "daemon/ops.h"
#include "daemon/template_ops.h"
#include "daemon/ved.h"
#include "router.h"
#include "ve/parse.h"
#include "ve/template.h"
#include "ve/template_build.h"

#define UPLOAD_MAX (16ull << 30)

/* A template tarball arriving as the request body, written to a file in the
 * templates directory as it comes (never held in memory). */
struct upload {
        int fd;
        char path[4096];
        uint64_t size;
        int error; /* errno of a failed write, or EFBIG */
};

static void upload_free(void *p)
{
        struct upload *u = p;

        if (u->fd >= 0)
                close(u->fd);
        if (u->path[0])
                unlink(u->path);
        free(u);
}

/* Tarballs come as application/octet-stream or one of the archive types. */
static bool tarball_type(const char *ct)
{
        static const char *const types[] = { "application/octet-stream",
                                             "application/x-tar",
                                             "application/gzip",
                                             "application/x-gzip",
                                             "application/x-xz",
                                             "application/zstd",
                                             NULL };

        for (unsigned i = 0; ct != NULL && types[i]; i++)
                if (strncasecmp(ct, types[i], strlen(types[i])) == 0)
                        return true;
        return false;
}

bool route_template_body(struct api_request *req, const char *data, size_t size)
{
        struct upload *u = req->data;

        if (u == NULL) {
                u = calloc(1, sizeof(*u));
                if (u == NULL)
                        return false;
                req->data = u;
                req->free_data = upload_free;
                u->fd = -EBADF;
                if (!tarball_type(api_header(req, "Content-Type"))) {
                        u->error = EPROTOTYPE;
                        return false;
                }
                snprintf(u->path, sizeof(u->path), "%s/.upload-XXXXXX", req->v->templates_dir);
                u->fd = mkostemp(u->path, O_CLOEXEC);
                if (u->fd < 0) {
                        u->error = errno;
                        u->path[0] = '\0';
                }
        }
        if (u->error)
                return false;
        if (u->size + size > UPLOAD_MAX) {
                u->error = EFBIG;
                return false;
        }
        /* A local disk write; small next to the network read that brought it. */
        for (size_t off = 0; off < size;) {
                ssize_t n = write(u->fd, data + off, size - off);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        u->error = errno;
                        return false;
                }
                off += (size_t)n;
        }
        u->size += size;
        return true;
}

static json_t *present_template(json_t *t)
{
        return t;
}

int route_templates_list(struct api_request *req)
{
        struct ve_error err = { 0 };
        json_t *list = NULL, *t;
        size_t i;
        int ret;

        if (ved_store_template_list(&req->v->store, &list, &err) < 0) {
                ret = api_respond_ve_error(req, &err);
                ve_error_clear(&err);
                return ret;
        }
        json_array_foreach(list, i, t) present_template(t);
        return api_respond_json(req, 200, json_pack("{s:o}", "templates", list));
}

static int check_import_args(struct api_request *req, const char *name, const char *sha,
                             struct ve_error *err)
{
        if (name == NULL)
                return ve_error_set(err, VE_EINVAL_INPUT, "give the template's name as ?name=NAME");
        if (ve_check_template_name(name, err) < 0)
                return -err->code;
        if (sha != NULL) {
                size_t len = strlen(sha);

                if (len != 64 || strspn(sha, "0123456789abcdefABCDEF") != len)
                        return ve_error_set(err, VE_EINVAL_INPUT,
                                            "sha256 must be 64 hexadecimal digits");
        }
        if (ved_store_template_exists(&req->v->store, name))
                return ve_error_set(err, VE_ECONFLICT,
                                    "template '%s' already exists: remove it first", name);
        if (ved_op_running_on(req->v, &ved_op_template_import_kind, "name", name))
                return ve_error_set(err, VE_ECONFLICT,
                                    "template '%s' is being imported by another request", name);
        return 0;
}

/* Create an operation of kind with params (taken) in a transaction of its own and
 * start it; *id gets its id. On failure nothing is left and err says why. */
static int run_op(struct api_request *req, const struct ved_op_kind *kind, json_t *params,
                  int64_t *id, struct ve_error *err)
{
        struct ved_op *op = NULL;
        int ret;

        ret = ved_begin(req->v, err);
        if (ret == 0)
                ret = ved_op_create(req->v, kind, 0, params, &op, err);
        if (ret == 0)
                ret = ved_commit(req->v, err);
        json_decref(params);
        if (ret < 0) {
                ved_rollback(req->v);
                ved_op_free(op);
                return ret;
        }
        *id = op->id;
        ved_op_run(op);
        return 0;
}

/* The request that sent a tarball, held until the import has accepted the
 * tarball or ended: a refused tarball is the request's error (4xx), as any
 * other bad input, not only the operation's. */
struct import_wait {
        struct ved_op_waiter waiter;
        struct api_request *req;
        int64_t op_id;
};

static void import_wake(struct ved_op_waiter *waiter)
{
        struct import_wait *w = container_of(waiter, struct import_wait, waiter);

        if (w->req != NULL) {
                api_request_resume(w->req);
                w->req = NULL;
        }
}

static void import_wait_release(void *data)
{
        struct import_wait *w = data;

        ved_op_unwait(&w->waiter);
        free(w);
}

/* The upload's answer: the operation's error if it failed (the tarball was
 * refused, most likely), else 202 while it makes the golden image. */
static int answer_import(struct api_request *req)
{
        struct import_wait *w = req->data;
        int64_t id = w->op_id;
        struct ve_error err = { 0 };
        json_t *op = NULL, *e;
        const char *status;
        int ret;

        if (ved_store_op_get(&req->v->store, id, &op, &err) < 0) {
                ret = api_respond_ve_error(req, &err);
                ve_error_clear(&err);
                return ret;
        }
        status = json_string_value(json_object_get(op, "status"));
        e = json_object_get(op, "error");
        if (status != NULL && strcmp(status, "failed") == 0 && json_is_object(e)) {
                ve_error_set(&err, (int)json_integer_value(json_object_get(e, "code")), "%s",
                             json_string_value(json_object_get(e, "message")) ?: "failed");
                json_decref(op);
                ret = api_respond_ve_error(req, &err);
                ve_error_clear(&err);
                return ret;
        }
        json_decref(op);
        return api_respond_operation(req, id, NULL);
}

/* Hand the upload over to operation id and hold req until the operation has
 * checked the tarball (or ended). */
static int wait_for_check(struct api_request *req, struct upload *u, int64_t id)
{
        struct import_wait *w = calloc(1, sizeof(*w));

        if (w == NULL)
                return api_respond_operation(req, id, NULL);
        upload_free(u);
        w->req = req;
        w->op_id = id;
        w->waiter.op_id = id;
        w->waiter.done_cb = import_wake;
        w->waiter.checked_cb = import_wake;
        ved_op_wait(req->v, &w->waiter);
        req->data = w;
        req->free_data = import_wait_release;
        api_request_suspend(req, answer_import);
        return 0;
}

int route_template_import(struct api_request *req)
{
        const char *name = api_query(req, "name"), *sha = api_query(req, "sha256");
        struct upload *u = req->data;
        struct ve_error err = { 0 };
        json_t *params;
        int64_t id;
        int ret;

        if (!tarball_type(api_header(req, "Content-Type")))
                return api_respond_error(req, 415, "send the template as application/octet-stream");
        if (check_import_args(req, name, sha, &err) < 0)
                goto fail;
        if (u == NULL || u->size == 0) {
                ve_error_set(&err, VE_EINVAL_INPUT,
                             "the request body must be the template tarball");
                goto fail;
        }
        if (u->error) {
                ve_error_errno(&err, u->error == EFBIG ? VE_ETOOLARGE : u->error,
                               "receive the template (at most %llu bytes)",
                               (unsigned long long)UPLOAD_MAX);
                goto fail;
        }
        close(u->fd);
        u->fd = -EBADF;
        params = json_pack("{s:s, s:s?, s:s}", "name", name, "sha256", sha, "upload", u->path);
        if (run_op(req, &ved_op_template_import_kind, params, &id, &err) < 0)
                goto fail;
        u->path[0] = '\0'; /* the operation owns the file now */
        return wait_for_check(req, u, id);
fail:
        ret = api_respond_ve_error(req, &err);
        ve_error_clear(&err);
        return ret;
}

static int check_build(struct api_request *req, json_t *body, struct ve_template_recipe *r,
                       struct ve_error *err)
{
        static const char *const allowed[] = { "name", NULL };
        const char *name = json_string_value(json_object_get(body, "name"));
        json_t *t = NULL;

        if (api_check_fields(body, allowed, err) < 0)
                return -err->code;
        if (name == NULL)
                return ve_error_set(err, VE_EINVAL_INPUT,
                                    "name is required: the template to build, such as debian-12");
        if (ve_template_recipe_find(req->v->cfg.template_recipes, name, r, err) < 0)
                return -err->code;
        if (ved_store_template_get(&req->v->store, r->name, &t, NULL) == 0) {
                json_decref(t);
                return ve_error_set(err, VE_ECONFLICT,
                                    "template '%s' already exists: remove it first", r->name);
        }
        return 0;
}

/* POST /v1/templates/build {"name": "debian-12"}: run the recipe as an operation. */
int route_template_build(struct api_request *req)
{
        struct ve_template_recipe r;
        struct ve_error err = { 0 };
        json_t *body = NULL, *params;
        int64_t id;
        int ret;

        if (api_body_object(req, &body) < 0)
                return 0;
        if (check_build(req, body, &r, &err) < 0) {
                json_decref(body);
                goto fail;
        }
        params = json_pack("{s:s, s:s}", "request",
                           json_string_value(json_object_get(body, "name")), "name", r.name);
        json_decref(body);
        if (run_op(req, &ved_op_template_build_kind, params, &id, &err) < 0)
                goto fail;
        return api_respond_operation(req, id, NULL);
fail:
        ret = api_respond_ve_error(req, &err);
        ve_error_clear(&err);
        return ret;
}

int route_template_get(struct api_request *req)
{
        struct ve_error err = { 0 };
        json_t *t = NULL;
        int ret;

        if (ved_store_template_get(&req->v->store, req->params[0], &t, &err) < 0) {
                ret = api_respond_ve_error(req, &err);
                ve_error_clear(&err);
                return ret;
        }
        return api_respond_json(req, 200, t);
}

static bool template_in_use(struct ved *v, const char *name)
{
        json_t *ves = NULL, *ve;
        bool used = false;
        size_t i;

        /* A VE being created clones the golden image right now. */
        if (ved_store_ve_list(&v->store, "creating", NULL, &ves, NULL) < 0)
                return false;
        json_array_foreach(ves, i, ve) used |=
            strcmp(json_string_value(json_object_get(ve, "ostemplate")), name) == 0;
        json_decref(ves);
        return used;
}

/* A layered VE of the template (it runs on the template's image), or 0. */
static uint32_t layered_user(struct ved *v, const char *name)
{
        json_t *ves = NULL, *ve;
        uint32_t ctid = 0;
        size_t i;

        if (ved_store_ve_list(&v->store, NULL, NULL, &ves, NULL) < 0)
                return 0;
        json_array_foreach(ves, i, ve)
        {
                const char *t = json_string_value(json_object_get(ve, "ostemplate"));

                if (ctid == 0 && t != NULL && strcmp(t, name) == 0 && ved_layered(ve))
                        ctid = (uint32_t)json_integer_value(json_object_get(ve, "ctid"));
        }
        json_decref(ves);
        return ctid;
}

int route_template_delete(struct api_request *req)
{
        const char *name = req->params[0];
        struct ve_error err = { 0 };
        json_t *t = NULL;
        uint32_t user;
        int ret;

        if (ved_store_template_get(&req->v->store, name, &t, &err) < 0)
                goto fail;
        json_decref(t);
        if (template_in_use(req->v, name)) {
                ve_error_set(&err, VE_ECONFLICT,
                             "template '%s' is being cloned for a new VE: try again later", name);
                goto fail;
        }
        user = layered_user(req->v, name);
        if (user != 0) {
                ve_error_set(&err, VE_ECONFLICT,
                             "template '%s' is the shared layer of layered VE %u (and maybe "
                             "others): destroy them first",
                             name, user);
                goto fail;
        }
        /* VEs of the image layout own full clones of the golden image, so none
         * needs it once created; the layer of layered VEs (none left) goes. */
        if (ved_layer_drop(req->v->templates_dir, name, &err) < 0 ||
            ve_template_remove(req->v->templates_dir, name, &err) < 0 ||
            ved_begin(req->v, &err) < 0 ||
            ved_store_template_delete(&req->v->store, name, &err) < 0 ||
            ved_event(req->v, "template.removed", 0, 0, NULL, "Template %s removed", name) < 0 ||
            ved_commit(req->v, &err) < 0) {
                ved_rollback(req->v);
                goto fail;
        }
        return api_respond_json(req, 200, json_pack("{s:s}", "removed", name));
fail:
        ret = api_respond_ve_error(req, &err);
        ve_error_clear(&err);
        return ret;
}
