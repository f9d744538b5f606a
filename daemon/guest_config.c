#include "guest_config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "layers.h"
#include "log.h"
#include "runtime.h"
#include "ve/layer.h"
#include "ve/mount.h"

static void wipe_free(char **p)
{
        if (*p != NULL) {
                explicit_bzero(*p, strlen(*p));
                free(*p);
                *p = NULL;
        }
}

void ved_secrets_clear(struct ved_secrets *s)
{
        wipe_free(&s->user);
        wipe_free(&s->pwhash);
        wipe_free(&s->ssh_keys);
}

bool ved_secrets_any(const struct ved_secrets *s)
{
        return s->pwhash != NULL || s->ssh_keys != NULL;
}

void ved_secrets_move(struct ved_secrets *dst, struct ved_secrets *src)
{
        ved_secrets_clear(dst);
        *dst = *src;
        memset(src, 0, sizeof(*src));
}

int ved_secrets_from_body(json_t *body, struct ved_secrets *s, struct ve_error *err)
{
        json_t *up = json_object_get(body, "userpasswd"), *key = json_object_get(body, "ssh_key");
        int ret;

        memset(s, 0, sizeof(*s));
        if (up != NULL) {
                if (!json_is_string(up) || strlen(json_string_value(up)) != json_string_length(up))
                        return ve_error_set(err, VE_EINVAL_INPUT,
                                            "userpasswd must be a string USER:PASSWORD");
                ret = ve_guest_hash_password(json_string_value(up), &s->user, &s->pwhash, err);
                if (ret < 0)
                        return ret;
        }
        if (key != NULL) {
                if (!json_is_string(key) ||
                    strlen(json_string_value(key)) != json_string_length(key))
                        return ve_error_set(err, VE_EINVAL_INPUT,
                                            "ssh_key must be a string of public keys");
                ret = ve_guest_check_ssh_keys(json_string_value(key), err);
                if (ret < 0)
                        return ret;
                s->ssh_keys = strdup(json_string_value(key));
                if (s->ssh_keys == NULL)
                        return ve_error_set(err, ENOMEM, "out of memory");
        }
        return 0;
}

void ved_guest_lists_fill(struct ved_guest_lists *l, json_t *ve)
{
        const char *host = json_string_value(json_object_get(ve, "hostname"));
        json_t *netif = json_object_get(ve, "netif");

        memset(l, 0, sizeof(*l));
        l->nameservers = ved_ip_list(json_object_get(ve, "nameserver"), &l->n_nameservers);
        l->searchdomains = ved_ip_list(json_object_get(ve, "searchdomain"), &l->n_searchdomains);
        l->addrs = ved_ip_list(json_object_get(ve, "ip"), &l->n_addrs);
        snprintf(l->family, sizeof(l->family), "%s",
                 ve_guest_family(json_string_value(json_object_get(ve, "ostemplate"))));
        snprintf(l->hostname, sizeof(l->hostname), "%s", host ? host : "");
        l->bridged = json_is_object(netif);
        snprintf(l->ifname, sizeof(l->ifname), "%s",
                 l->bridged && json_is_string(json_object_get(netif, "ifname"))
                     ? json_string_value(json_object_get(netif, "ifname"))
                     : "eth0");
}

void ved_guest_lists_free(struct ved_guest_lists *l)
{
        ved_ip_list_free(l->nameservers);
        ved_ip_list_free(l->searchdomains);
        ved_ip_list_free(l->addrs);
        memset(l, 0, sizeof(*l));
}

void ved_guest_config_all(const struct ved_guest_lists *l, const struct ved_secrets *s,
                          struct ve_guest_config *c)
{
        *c = (struct ve_guest_config){
                .family = l->family,
                .hostname = l->hostname[0] ? l->hostname : NULL,
                .set_dns = true,
                .nameservers = (const char *const *)l->nameservers,
                .n_nameservers = l->n_nameservers,
                .searchdomains = (const char *const *)l->searchdomains,
                .n_searchdomains = l->n_searchdomains,
                .set_net = true,
                .addrs = (const char *const *)l->addrs,
                .n_addrs = l->n_addrs,
                .ifname = l->ifname,
                .bridged = l->bridged,
                .user = s ? s->user : NULL,
                .password_hash = s ? s->pwhash : NULL,
                .ssh_keys = s ? s->ssh_keys : NULL,
                .machine_id = true,
        };
}

int ved_guest_apply_stopped(const char *templates_dir, const char *ostemplate, bool layered,
                            const char *private_area, const char *root,
                            const struct ve_guest_config *c, struct ve_error *err)
{
        struct ve_guest_config once = *c;
        char layer[PATH_MAX];
        int ret;

        once.sync_once = true; /* nothing runs in the VE */
        if (!layered)
                return ve_guest_apply(private_area, &once, err);
        ret = ved_layer_get(templates_dir, ostemplate, layer, sizeof(layer), err);
        if (ret < 0)
                return ret;
        if (mkdir(root, 0755) < 0 && errno != EEXIST)
                return ve_error_errno(err, errno, "create %s", root);
        ret = ve_layer_mount_raw(layer, private_area, root, err);
        if (ret < 0)
                return ret;
        ret = ve_guest_apply(root, &once, err);
        if (umount2(root, UMOUNT_NOFOLLOW) < 0 && ret == 0)
                ret = ve_error_errno(err, errno, "unmount %s", root);
        return ret;
}

/* Write into a stopped VE whose image is mounted at private_area. */
static int apply_mounted(struct ved *v, json_t *ve, const char *root, const char *private_area,
                         const struct ve_guest_config *c, struct ve_error *err)
{
        const char *name = json_string_value(json_object_get(ve, "ostemplate"));

        return ved_guest_apply_stopped(v->templates_dir, name ? name : "", ved_layered(ve),
                                       private_area, root, c, err);
}

/* A stopped VE's image, mounted for a moment to write its secrets. */
static int apply_stopped(struct ved *v, uint32_t ctid, json_t *ve, const struct ve_guest_config *c,
                         struct ve_error *err)
{
        char img[PATH_MAX], root[PATH_MAX], private_area[PATH_MAX], dir[PATH_MAX / 2];
        struct ve_error uerr = { 0 };
        int ret;

        ved_ve_dir(v, ctid, dir, sizeof(dir));
        snprintf(img, sizeof(img), "%s/root.img", dir);
        ved_ve_mountpoints(v, ctid, root, private_area, sizeof(root));
        if (mkdir(private_area, 0700) < 0 && errno != EEXIST)
                return ve_error_errno(err, errno, "create %s", private_area);
        if (ve_is_mounted(private_area) > 0)
                return apply_mounted(v, ve, root, private_area, c, err);
        ret = ve_private_mount(img, private_area, NULL, 0, err);
        if (ret < 0)
                return ret;
        ret = apply_mounted(v, ve, root, private_area, c, err);
        if (ve_private_umount(private_area, &uerr) < 0)
                log_error("VE %u: %s", ctid, uerr.message);
        ve_error_clear(&uerr);
        return ret;
}

static bool changed(json_t *changes, const char *key)
{
        return json_object_get(changes, key) != NULL;
}

int ved_guest_patch(struct ved *v, uint32_t ctid, json_t *ve, json_t *changes,
                    const struct ved_secrets *s, struct ve_error *err)
{
        struct ved_rt *rt = ved_rt_find(v, ctid);
        bool running = rt != NULL && !rt->exited;
        struct ved_guest_lists l;
        struct ve_guest_config c;
        char root[PATH_MAX], private_area[PATH_MAX], default_name[16];
        bool name_reset = json_is_null(json_object_get(changes, "hostname"));
        json_t *after = json_deep_copy(ve);
        int ret = 0;

        json_object_update(after, changes);
        ved_guest_lists_fill(&l, after);
        json_decref(after);
        ved_guest_config_all(&l, s, &c);
        c.machine_id = false;
        /* A hostname reset to null: the name a VE without one has (its CTID, which
         * start gives the kernel) replaces the old one in the guest's files once;
         * later starts leave the guest's own /etc/hostname alone. */
        if (name_reset) {
                snprintf(default_name, sizeof(default_name), "%u", ctid);
                c.hostname = default_name;
        }
        if (!running) {
                /* Only the secrets and a reset hostname cannot wait for the next
                 * start. */
                if (ved_secrets_any(s) || name_reset) {
                        if (!name_reset)
                                c.hostname = NULL;
                        c.set_dns = c.set_net = false;
                        ret = apply_stopped(v, ctid, ve, &c, err);
                }
                ved_guest_lists_free(&l);
                return ret < 0 ? ve_error_prefix(err, "VE %u", ctid) : 0;
        }
        if (!changed(changes, "hostname"))
                c.hostname = NULL;
        c.set_dns = changed(changes, "nameserver") || changed(changes, "searchdomain");
        c.set_net = changed(changes, "ip");
        ved_ve_mountpoints(v, ctid, root, private_area, sizeof(root));
        if (!ved_layered(ve)) {
                ret = ve_guest_apply(private_area, &c, err);
        } else {
                /* Through the host's view of its overlay (the VE's host ids), as its
                 * root: the image under a running overlay is not written to. */
                struct ve_idmap map = ved_rt_idmap(ve);

                ret = ve_guest_apply_as(root, &c, &map, err);
        }
        if (ret == 0 && c.hostname != NULL)
                ret = ve_guest_sethostname_live(rt->proc.pid, c.hostname, err);
        ved_guest_lists_free(&l);
        return ret < 0 ? ve_error_prefix(err, "VE %u", ctid) : 0;
}
