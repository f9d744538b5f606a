#include "template_ops.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "ve/template.h"
#include "ve/template_build.h"

struct import_data {
        char templates_dir[PATH_MAX];
        char upload[PATH_MAX];
        char name[VE_TEMPLATE_NAME_MAX + 1];
        char sha256[80];
        struct ve_template_info info;
        /* Sent from the worker once the tarball is accepted (an upload's
         * import: the request that sent it waits for it); NULL for a build. */
        uv_async_t *checked;
};

/* An upload's import: its data and the handle through which the worker tells
 * the loop that the tarball was accepted. */
struct upload_import {
        struct import_data d;
        uv_async_t checked; /* data: the operation (the handle is closed with it) */
};

static void import_fill(struct import_data *d, struct ved_op *op)
{
        const char *sha = json_string_value(json_object_get(op->params, "sha256"));

        snprintf(d->templates_dir, sizeof(d->templates_dir), "%s", op->v->templates_dir);
        snprintf(d->upload, sizeof(d->upload), "%s",
                 json_string_value(json_object_get(op->params, "upload")));
        snprintf(d->name, sizeof(d->name), "%s",
                 json_string_value(json_object_get(op->params, "name")));
        snprintf(d->sha256, sizeof(d->sha256), "%s", sha ? sha : "");
}

static void checked_cb(uv_async_t *h)
{
        struct ved_op *op = h->data;

        ved_op_notify_checked(op->v, op->id);
}

static void upload_import_closed(uv_handle_t *h)
{
        free(container_of((uv_async_t *)h, struct upload_import, checked));
}

static void upload_import_free(void *data)
{
        struct upload_import *u = data;

        uv_close((uv_handle_t *)&u->checked, upload_import_closed);
}

static int import_prepare(struct ved_op *op, struct ve_error *err)
{
        struct upload_import *u = calloc(1, sizeof(*u));

        if (u == NULL)
                return ve_error_set(err, ENOMEM, "out of memory");
        if (uv_async_init(op->v->loop, &u->checked, checked_cb) < 0) {
                free(u);
                return ve_error_set(err, ENOMEM, "cannot make an async handle");
        }
        import_fill(&u->d, op);
        u->checked.data = op;
        u->d.checked = &u->checked;
        op->data = u;
        op->free_data = upload_import_free;
        return 0;
}

static void send_checked(void *opaque)
{
        uv_async_send(opaque);
}

/* Worker: import the tarball d->upload as template d->name into d->info. */
static int import_tarball(struct import_data *d, struct ve_error *err)
{
        struct ve_template_import req = {
                .templates_dir = d->templates_dir,
                .source = d->upload,
                .name = d->name,
                .sha256 = d->sha256[0] ? d->sha256 : NULL,
                .checked_cb = d->checked ? send_checked : NULL,
                .opaque = d->checked,
        };

        return ve_template_import(&req, &d->info, err);
}

static int import_work(struct ved_op *op, struct ve_error *err)
{
        struct import_data *d = op->data;
        int ret;

        ret = import_tarball(d, err);
        unlink(d->upload);
        return ret;
}

int ved_template_record(struct ved_op *op, const struct ve_template_info *info,
                        struct ve_error *err)
{
        json_t *t =
            json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s}", "name", info->name, "distro",
                      info->distro, "release", info->release, "arch", info->arch, "size",
                      (json_int_t)info->tree_bytes, "image_size", (json_int_t)info->image_bytes,
                      "files", (json_int_t)info->files, "sha256", info->sha256);
        int ret = ved_store_template_insert(&op->v->store, t, err);

        json_decref(t);
        if (ret == 0)
                ved_event(op->v, "template.imported", 0, op->id, NULL, "Template %s imported",
                          info->name);
        return ret;
}

static int import_done(struct ved_op *op, struct ve_error *err)
{
        struct import_data *d = op->data;

        return ved_template_record(op, &d->info, err);
}

static void import_rollback_work(struct ved_op *op)
{
        struct import_data *d = op->data;

        unlink(d->upload);
        /* A golden image made before the record failed is not wanted either. */
        if (op->step > 0)
                ve_template_remove(d->templates_dir, d->name, NULL);
}

static const char *import_recover(struct ved *v, json_t *op, const char **resolution)
{
        json_t *params = json_object_get(op, "params");

        /* Its upload (templates/.upload-*) went at startup (ve_template_cleanup()). */
        if (ved_store_template_exists(&v->store,
                                      json_string_value(json_object_get(params, "name")))) {
                *resolution = "the template had been recorded: kept";
                return "succeeded";
        }
        ve_template_remove(v->templates_dir, json_string_value(json_object_get(params, "name")),
                           NULL);
        *resolution = "rolled back: the partial import was removed";
        return "failed";
}

static const struct ved_step import_steps[] = {
        { "import", import_work, import_done, NULL },
        { NULL, NULL, NULL, NULL },
};

const struct ved_op_kind ved_op_template_import_kind = {
        .type = "template-import",
        .steps = import_steps,
        .prepare = import_prepare,
        .rollback_work = import_rollback_work,
        .recover = import_recover,
};

/* --- build: run a recipe, then import what it made ------------------------- */

struct build_data {
        struct import_data im; /* the import half, as above */
        struct ve_template_recipe recipe;
        char cache_dir[PATH_MAX];
};

static int build_prepare(struct ved_op *op, struct ve_error *err)
{
        struct build_data *d = calloc(1, sizeof(*d));
        int ret;

        if (d == NULL)
                return ve_error_set(err, ENOMEM, "out of memory");
        op->data = d;
        op->free_data = free;
        ret = ve_template_recipe_find(op->v->cfg.template_recipes,
                                      json_string_value(json_object_get(op->params, "request")),
                                      &d->recipe, err);
        if (ret < 0)
                return ret;
        snprintf(d->im.templates_dir, sizeof(d->im.templates_dir), "%s", op->v->templates_dir);
        snprintf(d->cache_dir, sizeof(d->cache_dir), "%s/cache", op->v->templates_dir);
        snprintf(d->im.name, sizeof(d->im.name), "%s", d->recipe.name);
        return 0;
}

/* Minutes of debootstrap on a worker thread; its output goes to cache/<name>.log. */
static int build_work(struct ved_op *op, struct ve_error *err)
{
        struct build_data *d = op->data;

        return ve_template_recipe_run(&d->recipe, d->cache_dir, d->im.upload, sizeof(d->im.upload),
                                      d->im.sha256, err);
}

/* The tarball stays in the cache (as vzctl's template cache): importing it again
 * after a remove needs no new build. */
static int build_import_work(struct ved_op *op, struct ve_error *err)
{
        struct build_data *d = op->data;

        return import_tarball(&d->im, err);
}

static int build_import_done(struct ved_op *op, struct ve_error *err)
{
        struct build_data *d = op->data;

        return ved_template_record(op, &d->im.info, err);
}

static void build_rollback_work(struct ved_op *op)
{
        struct build_data *d = op->data;

        if (op->step > 1)
                ve_template_remove(d->im.templates_dir, d->im.name, NULL);
}

static const char *build_recover(struct ved *v, json_t *op, const char **resolution)
{
        json_t *params = json_object_get(op, "params");
        const char *name = json_string_value(json_object_get(params, "name"));

        if (ved_store_template_exists(&v->store, name)) {
                *resolution = "the template had been recorded: kept";
                return "succeeded";
        }
        if (name != NULL)
                ve_template_remove(v->templates_dir, name, NULL);
        *resolution = "rolled back: build it again";
        return "failed";
}

static const struct ved_step build_steps[] = {
        { "build", build_work, NULL, NULL },
        { "import", build_import_work, build_import_done, NULL },
        { NULL, NULL, NULL, NULL },
};

const struct ved_op_kind ved_op_template_build_kind = {
        .type = "template-build",
        .steps = build_steps,
        .prepare = build_prepare,
        .rollback_work = build_rollback_work,
        .recover = build_recover,
};

/* --- a create's build of a template it names -------------------------------- */

/* Creates of one template not imported yet build it once: the first builds, the
 * others wait here and take what it made. */
static pthread_mutex_t build_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ve_template_info last_built; /* under build_lock */

int ved_template_build_once(const char *templates_dir, const struct ve_template_recipe *r,
                            struct ve_template_info *info, struct ve_error *err)
{
        char cache_dir[PATH_MAX], golden[PATH_MAX];
        struct import_data *d = calloc(1, sizeof(*d));
        int ret;

        if (d == NULL)
                return ve_error_set(err, ENOMEM, "out of memory");
        snprintf(d->templates_dir, sizeof(d->templates_dir), "%s", templates_dir);
        snprintf(d->name, sizeof(d->name), "%s", r->name);
        snprintf(cache_dir, sizeof(cache_dir), "%s/cache", templates_dir);
        ret = ve_template_image_path(templates_dir, r->name, golden, sizeof(golden), err);
        pthread_mutex_lock(&build_lock);
        if (ret == 0 && access(golden, F_OK) == 0 && strcmp(last_built.name, r->name) == 0) {
                *info = last_built;
        } else if (ret == 0) {
                ret = ve_template_recipe_run(r, cache_dir, d->upload, sizeof(d->upload), d->sha256,
                                             err);
                if (ret == 0)
                        ret = import_tarball(d, err);
                if (ret == 0)
                        *info = last_built = d->info;
        }
        pthread_mutex_unlock(&build_lock);
        free(d);
        return ret;
}
