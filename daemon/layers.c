#include "layers.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "ve/image.h"
#include "ve/layer.h"
#include "ve/mount.h"
#include "ve/template.h"

/* One mount or one base image at a time: two starts must not mount a layer
 * twice. */
static pthread_mutex_t layer_lock = PTHREAD_MUTEX_INITIALIZER;

#define BASE_NAME ".layered.img"
#define BASE_SIZE (64ull << 20) /* grown to the VE's size by ve_private_create() */

bool ved_layered(json_t *ve)
{
        json_t *l = json_object_get(ve, "layout");

        return json_is_string(l) && strcmp(json_string_value(l), "layered") == 0;
}

void ved_layer_path(const char *templates_dir, const char *name, char *buf, size_t len)
{
        snprintf(buf, len, "%s/%s.layer", templates_dir, name);
}

int ved_layer_get(const char *templates_dir, const char *name, char *buf, size_t len,
                  struct ve_error *err)
{
        char img[PATH_MAX];
        int ret = 0;

        ved_layer_path(templates_dir, name, buf, len);
        ret = ve_template_image_path(templates_dir, name, img, sizeof(img), err);
        if (ret < 0)
                return ret;
        pthread_mutex_lock(&layer_lock);
        if (ve_is_mounted(buf) <= 0) {
                if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                        ret = ve_error_errno(err, errno, "create %s", buf);
                if (ret == 0)
                        ret = ve_image_mount_ro(img, buf, err);
        }
        pthread_mutex_unlock(&layer_lock);
        return ret < 0 ? ve_error_prefix(err, "template layer of %s", name) : 0;
}

int ved_layer_drop(const char *templates_dir, const char *name, struct ve_error *err)
{
        char dir[PATH_MAX];
        int ret = 0;

        ved_layer_path(templates_dir, name, dir, sizeof(dir));
        pthread_mutex_lock(&layer_lock);
        if (ve_is_mounted(dir) > 0)
                ret = ve_private_umount(dir, err);
        if (ret == 0 && rmdir(dir) < 0 && errno != ENOENT)
                ret = ve_error_errno(err, errno, "remove %s", dir);
        pthread_mutex_unlock(&layer_lock);
        return ret;
}

int ved_layer_base(const char *templates_dir, char *buf, size_t len, struct ve_error *err)
{
        char tmp[PATH_MAX], tree[PATH_MAX / 2], sub[PATH_MAX];
        struct stat st;
        int ret = 0;

        snprintf(buf, len, "%s/" BASE_NAME, templates_dir);
        pthread_mutex_lock(&layer_lock);
        if (stat(buf, &st) == 0)
                goto out;
        /* upper/ is the root of the VE's overlay: root's, 0755, as a root is. */
        snprintf(tree, sizeof(tree), "%s/.layered.tree", templates_dir);
        snprintf(tmp, sizeof(tmp), "%s/.layered.img.tmp", templates_dir);
        ve_rmtree(tree, NULL);
        if (mkdir(tree, 0700) < 0)
                ret = ve_error_errno(err, errno, "create %s", tree);
        snprintf(sub, sizeof(sub), "%s/" VE_LAYER_UPPER, tree);
        if (ret == 0 && (mkdir(sub, 0755) < 0 || chmod(sub, 0755) < 0))
                ret = ve_error_errno(err, errno, "create %s", sub);
        snprintf(sub, sizeof(sub), "%s/" VE_LAYER_WORK, tree);
        if (ret == 0 && mkdir(sub, 0700) < 0)
                ret = ve_error_errno(err, errno, "create %s", sub);
        if (ret == 0)
                ret = ve_image_mkfs(tmp, BASE_SIZE, 0, tree, err);
        if (ret == 0 && rename(tmp, buf) < 0)
                ret = ve_error_errno(err, errno, "rename %s", tmp);
        if (ret < 0)
                unlink(tmp);
        ve_rmtree(tree, NULL);
out:
        pthread_mutex_unlock(&layer_lock);
        return ret < 0 ? ve_error_prefix(err, "the base image of layered VEs") : 0;
}

void ved_layers_release(const char *templates_dir)
{
        DIR *d = opendir(templates_dir);
        struct dirent *e;

        if (d == NULL)
                return;
        while ((e = readdir(d)) != NULL) {
                size_t n = strlen(e->d_name);
                char name[NAME_MAX + 1];
                struct ve_error err = { 0 };

                if (n <= 6 || strcmp(e->d_name + n - 6, ".layer") != 0)
                        continue;
                snprintf(name, sizeof(name), "%.*s", (int)(n - 6), e->d_name);
                if (ved_layer_drop(templates_dir, name, &err) < 0)
                        log_warn("Template %s: %s", name, err.message);
                ve_error_clear(&err);
        }
        closedir(d);
}
