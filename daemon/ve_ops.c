#include "ve_ops.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "guest_config.h"
#include "idrange.h"
#include "layers.h"
#include "log.h"
#include "lxcfs.h"
#include "statfsd.h"
#include "template_ops.h"
#include "quota/cgroup.h"
#include "quota/limits.h"
#include "netplan.h"
#include "runtime.h"
#include "usage.h"
#include "traffic.h"
#include "ve/cleanup.h"
#include "ve/disk.h"
#include "ve/guest.h"
#include "ve/image.h"
#include "ve/layer.h"
#include "ve/mount.h"
#include "ve/net.h"
#include "ve/start.h"

/* What an operation's worker steps need, copied on the loop when the operation is
 * made: worker threads never read struct ved or the store. */
struct ve_op_data {
        uint32_t ctid;
        char dir[PATH_MAX / 2];      /* ves/<ctid> */
        char img[PATH_MAX];          /* ves/<ctid>/root.img */
        char root[PATH_MAX];         /* ves/<ctid>/root: the host's idmapped view */
        char private_area[PATH_MAX]; /* ves/<ctid>/private: the image's mount point */
        char templates_dir[PATH_MAX / 2];
        char ostemplate[160];
        bool build_template;               /* create: its template is to be built first */
        struct ve_template_recipe *recipe; /* create: the recipe that builds it */
        struct ve_template_info built;     /* create: the template built */
        bool layered;                      /* layout "layered" (ve/layer.h, layers.h) */
        char layer[PATH_MAX];              /* start: the template's layer, mounted */
        int view_fd;                       /* start: a clone of the VE's overlay, the host's view */
        char instance[32];
        char hostname[256];
        char init[256];
        const struct quota_cgroup *cg; /* immutable after startup: thread-safe */
        struct quota_cgroup_target target;
        uint64_t diskspace, diskinodes;
        unsigned stop_timeout;
        unsigned timeout; /* this operation's wait for init, 0: stop_timeout */
        bool force;
        bool was_running;
        struct ve_idmap idmap;         /* the VE's user namespace map */
        struct quota_limits limits;    /* its resource limits (usage.h) */
        bool lxcfs;                    /* lxcfs is up */
        struct ve_lxcfs_fds lxcfs_fds; /* dups of its files (struct ved.lxcfs_fds) */
        bool statfsd;                  /* init runs under ve-statfsd (statfsd.h) */
        char unenforced[128];          /* start: cgroup controllers the host does not give */
        char guest_skipped[512];       /* start: guest files left alone (ve_guest_config) */
        char **addrs;                  /* its IP addresses without prefix, NULL-terminated */
        size_t n_addrs;
        const char *const *uplinks; /* the daemon's configuration: immutable */
        size_t n_uplinks;
        struct ved_netplan *net; /* its network (netplan.h) */
        pid_t pid;
        int pidfd;                    /* a dup of the running init's pidfd, owned */
        struct ve_proc proc;          /* start's result until the loop adopts it */
        struct ved_guest_lists guest; /* what the record says of its guest files */
        struct ved_secrets secrets;   /* create's userpasswd and ssh_key, never stored */
};

static void free_data(void *p)
{
        struct ve_op_data *d = p;

        if (d == NULL)
                return;
        if (d->pidfd >= 0)
                close(d->pidfd);
        if (d->view_fd >= 0)
                close(d->view_fd);
        ve_proc_close(&d->proc);
        ve_rootfs_lxcfs_close(&d->lxcfs_fds);
        ved_ip_list_free(d->addrs);
        ved_netplan_free(d->net);
        ved_guest_lists_free(&d->guest);
        ved_secrets_clear(&d->secrets);
        free(d->recipe);
        free(d);
}

static void copy_str(char *dst, size_t len, json_t *v)
{
        snprintf(dst, len, "%s", json_is_string(v) ? json_string_value(v) : "");
}

static void fill_from_record(struct ve_op_data *d, json_t *ve)
{
        copy_str(d->hostname, sizeof(d->hostname), json_object_get(ve, "hostname"));
        ved_guest_lists_fill(&d->guest, ve);
        copy_str(d->init, sizeof(d->init), json_object_get(ve, "init"));
        copy_str(d->ostemplate, sizeof(d->ostemplate), json_object_get(ve, "ostemplate"));
        d->layered = ved_layered(ve);
        d->diskspace = (uint64_t)json_integer_value(json_object_get(ve, "diskspace"));
        d->diskinodes = (uint64_t)json_integer_value(json_object_get(ve, "diskinodes"));
        d->stop_timeout = (unsigned)json_integer_value(json_object_get(ve, "stop_timeout"));
        d->addrs = ved_ip_list(json_object_get(ve, "ip"), &d->n_addrs);
        d->idmap = ved_rt_idmap(ve);
        ved_limits_from_record(ve, &d->limits);
}

/* A start, or a restart: its range is claimed host-wide first (idrange.h). */
static bool starts_init(const struct ved_op_kind *kind)
{
        for (const struct ved_step *s = kind->steps; s->name != NULL; s++)
                if (strcmp(s->name, "init") == 0)
                        return true;
        return false;
}

static int prepare(struct ved_op *op, struct ve_error *err)
{
        struct ved *v = op->v;
        struct ve_op_data *d = calloc(1, sizeof(*d));
        struct ved_rt *rt;
        json_t *ve = NULL;

        if (d == NULL)
                return ve_error_set(err, ENOMEM, "out of memory");
        op->data = d;
        op->free_data = free_data;
        d->pidfd = -EBADF;
        d->view_fd = -EBADF;
        d->proc.pidfd = d->proc.console_fd = d->proc.console_peer = d->proc.statfs_fd = -EBADF;
        d->ctid = op->ctid;
        ved_ve_dir(v, op->ctid, d->dir, sizeof(d->dir));
        snprintf(d->img, sizeof(d->img), "%s/root.img", d->dir);
        ved_ve_mountpoints(v, op->ctid, d->root, d->private_area, sizeof(d->root));
        snprintf(d->instance, sizeof(d->instance), "%s", v->cfg.instance);
        d->cg = v->cgroup;
        d->lxcfs = v->lxcfs_up;
        ve_rootfs_lxcfs_open(NULL, &d->lxcfs_fds);
        if (d->lxcfs)
                ve_rootfs_lxcfs_dup(&v->lxcfs_fds, &d->lxcfs_fds);
        d->target = (struct quota_cgroup_target){ d->cg, d->instance, d->ctid };
        d->uplinks = (const char *const *)v->cfg.uplinks;
        d->n_uplinks = v->cfg.n_uplinks;
        d->force = json_is_true(json_object_get(op->params, "force"));
        d->timeout = (unsigned)json_integer_value(json_object_get(op->params, "timeout"));
        if (ved_rt_ensure_idmap(v, op->ctid, err) < 0 ||
            ved_store_ve_get_ctid(&v->store, op->ctid, &ve, err) < 0)
                return -err->code;
        if (starts_init(op->kind) && ved_rt_claim_idmap(v, op->ctid, ve, err) < 0) {
                json_decref(ve);
                return -err->code;
        }
        /* Count the traffic of a run before a stop or destroy ends it. */
        ved_traffic_sample(v, op->ctid, NULL);
        fill_from_record(d, ve);
        d->net = ved_netplan_new(v, ve);
        snprintf(d->templates_dir, sizeof(d->templates_dir), "%s", v->templates_dir);
        json_decref(ve);
        d->build_template = json_is_true(json_object_get(op->params, "build_template"));
        if (d->build_template) {
                d->recipe = calloc(1, sizeof(*d->recipe));
                if (d->recipe == NULL)
                        return ve_error_set(err, ENOMEM, "out of memory");
                if (ve_template_recipe_find(v->cfg.template_recipes, d->ostemplate, d->recipe,
                                            err) < 0)
                        return -err->code;
        }
        rt = ved_rt_find(v, op->ctid);
        if (rt != NULL && !rt->exited) {
                /* This operation now owns the init's exit: the watcher only reaps. */
                rt->busy = true;
                d->was_running = true;
                d->pid = rt->proc.pid;
                d->pidfd = dup(rt->proc.pidfd);
        }
        return 0;
}

static int teardown(struct ve_op_data *d, bool removing, struct ve_error *err)
{
        struct ved_ve_host h = {
                .cg = d->cg,
                .instance = d->instance,
                .ctid = d->ctid,
                .root = d->root,
                .private_area = d->private_area,
                .addrs = (const char *const *)d->addrs,
                .n_addrs = d->n_addrs,
                .uplinks = d->uplinks,
                .n_uplinks = d->n_uplinks,
                .removing = removing,
        };

        return ved_rt_teardown(&h, err);
}

/* --- create ----------------------------------------------------------------- */

/* A create that names a template not imported yet, but which a recipe builds,
 * builds and imports it first, as vzctl create fetches a missing template cache.
 * A template imported meanwhile (another create of it, an import) is taken. */
static int create_template_work(struct ved_op *op, struct ve_error *err)
{
        struct ve_op_data *d = op->data;
        int ret;

        if (!d->build_template)
                return 0;
        log_info("Operation %lld: building template %s for VE %u from %s", (long long)op->id,
                 d->recipe->name, op->ctid, d->recipe->recipe);
        ret = ved_template_build_once(d->templates_dir, d->recipe, &d->built, err);
        if (ret < 0 && err->code == VE_ECONFLICT) {
                ve_error_clear(err);
                return 0;
        }
        return ret;
}

static int create_template_done(struct ved_op *op, struct ve_error *err)
{
        struct ve_op_data *d = op->data;
        json_t *t = NULL;

        if (!d->build_template ||
            ved_store_template_get(&op->v->store, d->ostemplate, &t, NULL) == 0) {
                json_decref(t);
                return 0;
        }
        if (d->built.name[0] == '\0')
                return ve_error_set(err, VE_ECONFLICT,
                                    "template %s was made by another operation that has not "
                                    "recorded it: try again",
                                    d->ostemplate);
        return ved_template_record(op, &d->built, err);
}

static int create_private_work(struct ved_op *op, struct ve_error *err)
{
        struct ve_op_data *d = op->data;
        char from[PATH_MAX];
        int ret = 0;

        if (mkdir(d->dir, 0700) < 0 && errno != EEXIST)
                return ve_error_errno(err, errno, "create %s", d->dir);
        /* A clone of the template's golden image; a layered VE's own image holds
         * only its changes: an empty one, with upper/ and work/. */
        if (!d->layered)
                ret = ve_template_image_path(d->templates_dir, d->ostemplate, from, sizeof(from),
                                             err);
        else
                ret = ved_layer_base(d->templates_dir, from, sizeof(from), err);
        if (ret == 0)
                ret = ve_private_create(from, d->img, d->diskspace, d->diskinodes, err);
        return ret;
}

static int create_finish(struct ved_op *op, struct ve_error *err)
{
        int ret = ved_store_ve_set_state(&op->v->store, op->ctid, "stopped", err);

        if (ret == 0)
                ved_event(op->v, "ve.created", op->ctid, op->id, "stopped", "VE %u created",
                          op->ctid);
        return ret;
}

static void remove_private_work(struct ved_op *op)
{
        struct ve_op_data *d = op->data;
        struct ve_error err = { 0 };

        if (ve_rmtree(d->dir, &err) < 0)
                log_error("Cleanup of VE %u: %s", op->ctid, err.message);
        ve_error_clear(&err);
}

static void create_rollback_done(struct ved_op *op)
{
        if (ved_store_ve_delete(&op->v->store, op->ctid, NULL) == 0)
                ved_event(op->v, "ve.destroyed", op->ctid, op->id, NULL,
                          "VE %u removed: its creation failed", op->ctid);
}

/* Startup: tear down whatever a VE has on the host and remove its directory. */
static int recover_remove(struct ved *v, uint32_t ctid, struct ve_error *err)
{
        char dir[PATH_MAX / 2];
        json_t *ve = NULL;
        int ret;

        ved_ve_dir(v, ctid, dir, sizeof(dir));
        ret = ved_store_ve_get_ctid(&v->store, ctid, &ve, err);
        if (ret == 0)
                ret = ved_rt_teardown_record(v, ve, true, err);
        json_decref(ve);
        if (ret < 0 && err->code != VE_ENOTFOUND)
                return ret;
        ve_error_clear(err);
        return ve_rmtree(dir, err);
}

static const char *broken(struct ved *v, uint32_t ctid, struct ve_error *err,
                          const char **resolution)
{
        log_error("Recovery of VE %u: %s", ctid, err->message);
        ve_error_clear(err);
        ved_store_ve_set_state(&v->store, ctid, "broken", NULL);
        *resolution = "could not clean up: the VE is marked broken";
        return "failed";
}

static const char *create_recover(struct ved *v, json_t *op, const char **resolution)
{
        uint32_t ctid = (uint32_t)json_integer_value(json_object_get(op, "ctid"));
        json_t *params = json_object_get(op, "params");
        struct ve_error err = { 0 };
        json_t *ve = NULL;

        /* A template it was building, and had not recorded, goes too. */
        if (json_is_true(json_object_get(params, "build_template")) &&
            ved_store_ve_get_ctid(&v->store, ctid, &ve, NULL) == 0) {
                const char *name = json_string_value(json_object_get(ve, "ostemplate"));

                if (name != NULL && !ved_store_template_exists(&v->store, name))
                        ve_template_remove(v->templates_dir, name, NULL);
                json_decref(ve);
        }
        if (recover_remove(v, ctid, &err) < 0)
                return broken(v, ctid, &err, resolution);
        ved_store_ve_delete(&v->store, ctid, NULL);
        *resolution = "rolled back: the half-created VE was removed";
        return "failed";
}

void ved_ve_op_give_secrets(struct ved_op *op, struct ved_secrets *s)
{
        struct ve_op_data *d = op->data;

        ved_secrets_move(&d->secrets, s);
}

/* Secrets given at create cannot wait for the first start (they are not stored):
 * written now into the new image, mounted for the moment, with the rest of the
 * guest's configuration. */
static int create_guest_work(struct ved_op *op, struct ve_error *err)
{
        struct ve_op_data *d = op->data;
        struct ve_guest_config c;
        struct ve_error uerr = { 0 };
        int ret;

        if (!ved_secrets_any(&d->secrets))
                return 0;
        if (mkdir(d->private_area, 0700) < 0 && errno != EEXIST)
                return ve_error_errno(err, errno, "create %s", d->private_area);
        ret = ve_private_mount(d->img, d->private_area, NULL, 0, err);
        if (ret < 0)
                return ret;
        ved_guest_config_all(&d->guest, &d->secrets, &c);
        ret = ved_guest_apply_stopped(d->templates_dir, d->ostemplate, d->layered, d->private_area,
                                      d->root, &c, err);
        if (ve_private_umount(d->private_area, &uerr) < 0 && ret == 0)
                ret = ve_error_set(err, uerr.code, "%s", uerr.message);
        ve_error_clear(&uerr);
        ved_secrets_clear(&d->secrets);
        return ret;
}

static const struct ved_step create_steps[] = {
        { "template", create_template_work, create_template_done, NULL },
        { "private", create_private_work, NULL, NULL },
        { "guest", create_guest_work, NULL, NULL },
        { NULL, NULL, NULL, NULL },
};

const struct ved_op_kind ved_op_create_kind = {
        .type = "create",
        .steps = create_steps,
        .prepare = prepare,
        .finish = create_finish,
        .rollback_work = remove_private_work,
        .rollback_done = create_rollback_done,
        .recover = create_recover,
};

/* --- start ------------------------------------------------------------------ */

static int mount_work(struct ved_op *op, struct ve_error *err)
{
        struct ve_op_data *d = op->data;
        char loopdev[64];

        /* While the image is attached and mounted, not when init joins its cgroup. */
        quota_cgroup_prewarm(d->cg);
        /* Both stay inside ves/<ctid> (0700): the raw mount holds guest ids, so a
         * guest's setuid file there is owned by the host's root. */
        if ((mkdir(d->private_area, 0700) < 0 && errno != EEXIST) ||
            (mkdir(d->root, 0755) < 0 && errno != EEXIST))
                return ve_error_errno(err, errno, "create the mount points in %s", d->dir);
        if (ve_is_mounted(d->private_area) <= 0) {
                /* A diskspace or diskinodes change made while stopped, or an image
                 * from before a change of the headroom rule: fit it first. */
                int ret = ve_disk_resize_offline(d->img, d->diskspace, d->diskinodes, err);

                if (ret == 0)
                        ret = ve_private_mount(d->img, d->private_area, loopdev, sizeof(loopdev),
                                               err);
                if (ret < 0)
                        return ret;
        }
        if (d->layered) {
                int ret =
                    ved_layer_get(d->templates_dir, d->ostemplate, d->layer, sizeof(d->layer), err);

                if (ret < 0)
                        return ret;
        }
        /* The disk limit lives in the mount (ext4's reserved clusters): set it on
         * every start. */
        return ve_disk_limits_apply(d->private_area, d->diskspace, d->diskinodes, err);
}

static int cgroup_work(struct ved_op *op, struct ve_error *err)
{
        struct ve_op_data *d = op->data;
        int ret;

        ret = quota_cgroup_create(d->cg, d->instance, d->ctid, err);
        /* The VE's systemd manages its own subtree (cgroupfs.h). */
        if (ret == 0 && d->idmap.count > 0)
                ret = quota_cgroup_delegate(d->cg, d->instance, d->ctid, d->idmap.uid_base,
                                            d->idmap.gid_base, err);
        if (ret == 0)
                ret =
                    ved_limits_apply(d->cg, d->instance, d->ctid, &d->limits, d->private_area, err);
        /* Said by init_done(), on the loop: the files are looked at here. */
        if (ret == 0 && quota_cgroup_unenforced(d->cg, d->instance, d->ctid, d->unenforced,
                                                sizeof(d->unenforced)) < 0)
                d->unenforced[0] = '\0';
        return ret;
}

/* The guest's own files that must agree with the VE's settings before its init
 * reads them (its rc scripts set the hostname from /etc/hostname, ifupdown reads
 * /etc/network/interfaces): hostname, DNS, the network file of its family and a
 * machine id of its own, as the record says (guest.h). Not synced: every start
 * writes them again. */
static void start_guest_config(struct ve_op_data *d, struct ve_guest_config *c)
{
        ved_guest_config_all(&d->guest, NULL, c);
        c->no_sync = true;
        c->skipped = d->guest_skipped;
        c->skipped_len = sizeof(d->guest_skipped);
}

/* An image VE's guest files, in its mounted image. A layered VE's are written
 * later, through its overlay, while its init is set up (layered_config()): an
 * overlay made here just for them took ~1.5 ms to mount and ~2.5 ms to unmount,
 * as the unmount syncs the image under it. */
static int config_work(struct ved_op *op, struct ve_error *err)
{
        struct ve_op_data *d = op->data;
        struct ve_guest_config c;

        if (d->layered)
                return 0;
        start_guest_config(d, &c);
        return ve_guest_apply(d->private_area, &c, err);
}

/* A layered VE's guest files (see config_work()), from ready_cb: through the
 * clone of the overlay its init gets as its root (layered_root()), as the VE's
 * root, so that they show as the VE's own. */
static int layered_config(struct ve_op_data *d, struct ve_error *err)
{
        struct ve_guest_config c;
        char root[64];

        start_guest_config(d, &c);
        snprintf(root, sizeof(root), "/proc/self/fd/%d", d->view_fd);
        return ve_guest_apply_as(root, &c, &d->idmap, err);
}

/* A layered VE's root (ve_start_config.root_cb): its overlay, and a clone of it
 * for the host's view, made now: once the child has attached the overlay in its
 * own mount namespace, it can no longer be cloned from here (EINVAL). */
static int layered_root(pid_t pid, void *data, struct ve_error *err)
{
        struct ve_op_data *d = data;
        int fd;

        fd = ve_layer_make_idmapped(d->layer, d->private_area, pid, &d->idmap, err);
        if (fd < 0)
                return fd;
        d->view_fd = open_tree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
        if (d->view_fd < 0) {
                close(fd);
                return ve_error_errno(err, errno, "clone the overlay of VE %u", d->ctid);
        }
        return fd;
}

/* The host's view of a layered VE: the clone of its overlay at ves/<ctid>/root. */
static int attach_view(struct ve_op_data *d, struct ve_error *err)
{
        if (move_mount(d->view_fd, "", AT_FDCWD, d->root, MOVE_MOUNT_F_EMPTY_PATH) < 0)
                return ve_error_errno(err, errno, "mount the view of VE %u on %s", d->ctid,
                                      d->root);
        return 0;
}

static int claim_for_init(struct ve_op_data *d, pid_t pid, struct ve_error *err)
{
        struct ved_idrange_holder me;
        int ret;

        ret = ved_idrange_holder_init(&me, d->instance, d->ctid, pid, err);
        if (ret == 0)
                ret = ved_idrange_claim_locked(VED_IDRANGE_DIR, d->idmap.uid_base, &me, NULL, err);
        return ret;
}

/* While the VE's init is being set up (ve_start_config.ready_cb): a layered VE's
 * guest files, and its network (veth pair, addresses, routes, proxy entries,
 * guard), which init's own scripts expect. The child's own setup takes about as
 * long, so on two CPUs this adds little to the start. */
static int ready_cb(pid_t pid, void *data, struct ve_error *err)
{
        struct ve_op_data *d = data;
        struct timespec t0, t1;
        int ret;

        /* From here on the init vouches for the range the daemon claimed. */
        if (d->idmap.count > 0 && claim_for_init(d, pid, err) < 0)
                return ve_error_prefix(err, "VE %u", d->ctid);
        if (d->layered && layered_config(d, err) < 0)
                return ve_error_prefix(err, "VE %u", d->ctid);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        ret = ved_netplan_setup(d->net, pid, err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        /* tests/bench/bench_net.sh reads this line. */
        log_debug("VE %u: network ready in %.2f ms, alongside its init's setup", d->ctid,
                  (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
        return ret;
}

/* While init execs (ve_start_config.exec_cb): the host's view of its files at
 * ves/<ctid>/root, mapped as the VE sees them (what the VE creates shows as owned
 * by its host range). Init does not need it, so it does not wait for it. */
static int exec_cb(pid_t pid, void *data, struct ve_error *err)
{
        struct ve_op_data *d = data;

        if (ve_is_mounted(d->root) > 0)
                return 0;
        return d->layered ? attach_view(d, err)
                          : ve_idmap_mount_view(d->private_area, d->root, pid, err);
}

static int init_work(struct ved_op *op, struct ve_error *err)
{
        struct ve_op_data *d = op->data;
        char *argv[] = { d->init, NULL };
        _cleanup_close_ int cgfd = -EBADF, statfsd = ved_statfsd_connect();
        struct ve_start_config cfg = {
                .ctid = d->ctid,
                .rootfs = d->private_area,
                .hostname = d->hostname[0] ? d->hostname : NULL,
                .init_argv = argv,
                .cgroup = { .fd = -EBADF },
                .idmap = d->idmap,
                .container_mounts = true,
                .lxcfs = d->lxcfs ? &d->lxcfs_fds : NULL,
                .statfs_notify = statfsd >= 0,
                .statfsd = statfsd,
                .ready_cb = ready_cb,
                .ready_data = d,
                .exec_cb = exec_cb,
                .root_cb = d->layered ? layered_root : NULL,
                .root_data = d,
        };
        int ret;

        if (strcmp(quota_cgroup_name(d->cg), "v2") == 0) {
                cgfd = quota_cgroup_open_fd(d->cg, d->instance, d->ctid, err);
                if (cgfd < 0)
                        return cgfd;
                cfg.cgroup.fd = cgfd;
        } else {
                cfg.cgroup.attach_cb = quota_cgroup_attach_cb;
                cfg.cgroup.data = &d->target;
        }
        d->statfsd = statfsd >= 0;
        ret = ve_start(&cfg, &d->proc, err);
        /* So that the console outlives the daemon, as the VE does. */
        if (ret == 0 && statfsd >= 0 &&
            ved_statfsd_give_console(statfsd, d->ctid, &d->proc, d->dir) < 0)
                log_warn("VE %u: ve-statfsd did not take its console: it is lost if ved "
                         "restarts",
                         d->ctid);
        return ret;
}

static int init_done(struct ved_op *op, struct ve_error *err)
{
        struct ve_op_data *d = op->data;
        int ret;

        ret = ved_store_ve_set_runtime(&op->v->store, op->ctid, d->proc.pid,
                                       (int64_t)d->proc.starttime, err);
        if (ret < 0)
                return ret;
        ret = ved_rt_adopt(op->v, op->ctid, &d->proc, &d->idmap, err);
        d->proc.pidfd = d->proc.console_fd = d->proc.console_peer = d->proc.statfs_fd = -EBADF;
        if (ret == 0 && !d->lxcfs)
                ret = ved_event(op->v, "ve.degraded", op->ctid, op->id, NULL,
                                "VE %u runs without lxcfs: free, top and uptime in it show the "
                                "host's memory, CPUs and uptime",
                                op->ctid);
        if (ret == 0 && !d->statfsd)
                ret = ved_event(op->v, "ve.degraded", op->ctid, op->id, NULL,
                                "VE %u runs without ve-statfsd: df in it shows the size of its "
                                "file system, headroom included, not its diskspace",
                                op->ctid);
        if (ret == 0 && d->guest_skipped[0] != '\0') {
                log_warn("VE %u: guest files left as they are: %s", op->ctid, d->guest_skipped);
                ret = ved_event(op->v, "ve.degraded", op->ctid, op->id, NULL,
                                "VE %u started without ved's settings in some of its files: %s",
                                op->ctid, d->guest_skipped);
        }
        if (ret == 0 && d->unenforced[0] != '\0') {
                log_warn("VE %u: the host gives ved no cgroup controller %s: those limits "
                         "are not enforced",
                         op->ctid, d->unenforced);
                ret = ved_event(op->v, "ve.degraded", op->ctid, op->id, NULL,
                                "VE %u runs without the cgroup controllers %s: their limits are "
                                "not enforced",
                                op->ctid, d->unenforced);
        }
        return ret;
}

static int start_finish(struct ved_op *op, struct ve_error *err)
{
        int ret = ved_store_ve_set_state(&op->v->store, op->ctid, "running", err);

        if (ret == 0)
                ved_event(op->v, "ve.state", op->ctid, op->id, "running", "VE %u is running",
                          op->ctid);
        return ret;
}

static void teardown_work(struct ved_op *op)
{
        struct ve_op_data *d = op->data;
        struct ve_error err = { 0 };

        if (teardown(d, false, &err) < 0)
                log_error("Cleanup of VE %u: %s", op->ctid, err.message);
        ve_error_clear(&err);
}

/* A start whose result could not be recorded: its init, adopted by init_done(),
 * is this operation's again, so that the teardown that kills it is not taken for
 * an exit of its own (which would start a stop). */
static void start_finish_failed(struct ved_op *op)
{
        struct ved_rt *rt = ved_rt_find(op->v, op->ctid);

        if (rt != NULL)
                rt->busy = true;
}

static void mark_stopped(struct ved_op *op)
{
        ved_rt_release(op->v, op->ctid);
        ved_rt_release_idmap(op->v, op->ctid);
        ved_store_ve_set_runtime(&op->v->store, op->ctid, 0, 0, NULL);
        ved_store_ve_set_state(&op->v->store, op->ctid, "stopped", NULL);
        ved_event(op->v, "ve.state", op->ctid, op->id, "stopped", "VE %u is stopped", op->ctid);
}

static bool op_has_step(json_t *op, const char *name)
{
        json_t *step;
        size_t i;

        json_array_foreach(json_object_get(op, "steps"), i, step)
        {
                if (strcmp(json_string_value(json_object_get(step, "name")), name) == 0)
                        return true;
        }
        return false;
}

/* Startup: an interrupted start, stop or restart is judged by what runs now (the
 * VE's recorded init, checked by pid, start time and cgroup); reconciliation then
 * makes the record and the host agree. An operation whose VE is not yet as it
 * asked runs again (state_resume()): the request was accepted, and a stop cut
 * after its halt signal would otherwise leave a VE that stops on its own later
 * under a "failed" stop. A restart counts as done only once its new init runs
 * (until then the init found is the old one). Only once: an operation that was
 * already run again (it has a resolution) is rolled back, so that one that
 * brings the daemon down cannot do so at every start. */
static const char *state_recover(struct ved *v, json_t *op, const char **resolution)
{
        uint32_t ctid = (uint32_t)json_integer_value(json_object_get(op, "ctid"));
        const char *type = json_string_value(json_object_get(op, "type"));
        bool wanted_running = strcmp(type, "stop") != 0;
        bool resumed_before = json_is_string(json_object_get(op, "resolution"));
        struct ve_proc proc = {
                .pidfd = -EBADF, .console_fd = -EBADF, .console_peer = -EBADF, .statfs_fd = -EBADF
        };
        json_t *ve = NULL;
        bool runs = false;
        char cgpath[64];

        if (ved_store_ve_get_ctid(&v->store, ctid, &ve, NULL) == 0) {
                pid_t pid = (pid_t)json_integer_value(json_object_get(ve, "pid"));

                ved_rt_cgroup_path(v, ctid, cgpath, sizeof(cgpath));
                runs = pid > 0 &&
                       ve_proc_find(
                           pid, (uint64_t)json_integer_value(json_object_get(ve, "pid_starttime")),
                           cgpath, &proc, NULL) == 0;
                ve_proc_close(&proc);
                json_decref(ve);
        }
        if (runs == wanted_running && (strcmp(type, "restart") != 0 || op_has_step(op, "init"))) {
                *resolution = runs ? "rolled forward: the VE was found running"
                                   : "rolled forward: the VE was found stopped";
                return "succeeded";
        }
        if (!resumed_before) {
                *resolution = "rolled forward: run again from its first step after the restart";
                return "resume";
        }
        *resolution =
            runs ? "rolled back: the VE was found still running" : "rolled back: the VE is stopped";
        return "failed";
}

/* The VE as ved_rt_reconcile() left it: running or stopped, else (broken, or
 * gone) the operation cannot run again. */
static int state_resume(struct ved *v, json_t *op, struct ve_error *err)
{
        uint32_t ctid = (uint32_t)json_integer_value(json_object_get(op, "ctid"));
        const char *type = json_string_value(json_object_get(op, "type"));
        json_t *ve = NULL;
        const char *state;
        bool ok;
        int ret;

        ret = ved_store_ve_get_ctid(&v->store, ctid, &ve, err);
        if (ret < 0)
                return ret;
        state = json_string_value(json_object_get(ve, "state"));
        ok = strcmp(state, "running") == 0 || strcmp(state, "stopped") == 0;
        if (!ok)
                ret = ve_error_set(err, VE_ECONFLICT, "VE %u is %s after the restart", ctid, state);
        json_decref(ve);
        if (ret < 0)
                return ret;
        return ved_store_ve_set_state(&v->store, ctid,
                                      strcmp(type, "stop") == 0 ? "stopping" : "starting", err);
}

static const struct ved_step start_steps[] = {
        { "mount", mount_work, NULL, NULL },
        { "cgroup", cgroup_work, NULL, NULL },
        { "config", config_work, NULL, NULL },
        { "init", init_work, init_done, NULL }, /* with the network and the view */
        { NULL, NULL, NULL, NULL },
};

const struct ved_op_kind ved_op_start_kind = {
        .type = "start",
        .steps = start_steps,
        .prepare = prepare,
        .finish = start_finish,
        .lazy_finish = true,
        .rollback_work = teardown_work,
        .rollback_done = mark_stopped,
        .finish_failed = start_finish_failed,
        .recover = state_recover,
        .resume = state_resume,
};

/* --- stop ------------------------------------------------------------------- */

static bool halts(const struct ve_op_data *d)
{
        return d->pidfd >= 0 && !d->force;
}

static unsigned halt_timeout(const struct ve_op_data *d)
{
        return d->timeout ? d->timeout : d->stop_timeout;
}

static int signal_work(struct ved_op *op, struct ve_error *err)
{
        struct ve_op_data *d = op->data;

        return halts(d) ? ve_stop_signal(d->pid, d->pidfd, NULL, err) : 0;
}

/* Init halts in its own time, up to the timeout: waited for in the loop, so a
 * hundred VEs stopping at once hold no worker thread. */
static int signal_wait_fd(struct ved_op *op, unsigned *timeout_s)
{
        struct ve_op_data *d = op->data;

        if (!halts(d))
                return -1;
        *timeout_s = halt_timeout(d);
        return d->pidfd;
}

/* Past the timeout the cgroup is killed: teardown does it. */
static int kill_work(struct ved_op *op, struct ve_error *err)
{
        struct ve_op_data *d = op->data;

        if (op->wait_timed_out)
                log_warn("VE %u did not halt within %u s: killing it", d->ctid, halt_timeout(d));
        return teardown(d, false, err);
}

static int stop_finish(struct ved_op *op, struct ve_error *err)
{
        (void)err;
        mark_stopped(op);
        return 0;
}

static void stop_rollback_done(struct ved_op *op)
{
        struct ved_rt *rt = ved_rt_find(op->v, op->ctid);

        if (rt != NULL && !rt->exited) {
                rt->busy = false;
                ved_store_ve_set_state(&op->v->store, op->ctid, "running", NULL);
        } else {
                mark_stopped(op);
        }
}

static const struct ved_step stop_steps[] = {
        { "signal", signal_work, NULL, signal_wait_fd },
        { "kill", kill_work, NULL, NULL },
        { NULL, NULL, NULL, NULL },
};

const struct ved_op_kind ved_op_stop_kind = {
        .type = "stop",
        .steps = stop_steps,
        .prepare = prepare,
        .finish = stop_finish,
        .lazy_finish = true,
        .rollback_done = stop_rollback_done,
        .recover = state_recover,
        .resume = state_resume,
};

/* --- restart: stop, then start ---------------------------------------------- */

static int restart_stopped_done(struct ved_op *op, struct ve_error *err)
{
        (void)err;
        ved_rt_release(op->v, op->ctid);
        return ved_store_ve_set_runtime(&op->v->store, op->ctid, 0, 0, NULL);
}

static const struct ved_step restart_steps[] = {
        { "signal", signal_work, NULL, signal_wait_fd }, /* the stop half */
        { "kill", kill_work, restart_stopped_done, NULL },
        { "mount", mount_work, NULL, NULL }, /* the start half */
        { "cgroup", cgroup_work, NULL, NULL },
        { "config", config_work, NULL, NULL },
        { "init", init_work, init_done, NULL }, /* with the network and the view */
        { NULL, NULL, NULL, NULL },
};

const struct ved_op_kind ved_op_restart_kind = {
        .type = "restart",
        .steps = restart_steps,
        .prepare = prepare,
        .finish = start_finish,
        .lazy_finish = true,
        .rollback_work = teardown_work,
        .rollback_done = mark_stopped,
        .finish_failed = start_finish_failed,
        .recover = state_recover,
        .resume = state_resume,
};

/* --- destroy ---------------------------------------------------------------- */

static int destroy_private_work(struct ved_op *op, struct ve_error *err)
{
        struct ve_op_data *d = op->data;
        int ret;

        /* Never delete through a mount: everything is torn down first, and
         * ve_rmtree refuses to cross into a mount that is still there. */
        ret = teardown(d, true, err);
        if (ret < 0)
                return ret;
        return ve_rmtree(d->dir, err);
}

static int destroy_finish(struct ved_op *op, struct ve_error *err)
{
        int ret;

        ved_rt_release(op->v, op->ctid);
        ved_rt_release_idmap(op->v, op->ctid);
        ret = ved_store_ve_delete(&op->v->store, op->ctid, err);
        if (ret == 0)
                ved_event(op->v, "ve.destroyed", op->ctid, op->id, NULL, "VE %u destroyed",
                          op->ctid);
        return ret;
}

static void destroy_rollback_done(struct ved_op *op)
{
        struct ved_rt *rt = ved_rt_find(op->v, op->ctid);

        if (rt != NULL && !rt->exited) {
                rt->busy = false;
                ved_store_ve_set_state(&op->v->store, op->ctid, "running", NULL);
                return;
        }
        ved_rt_release(op->v, op->ctid);
        ved_rt_release_idmap(op->v, op->ctid);
        ved_store_ve_set_runtime(&op->v->store, op->ctid, 0, 0, NULL);
        ved_store_ve_set_state(&op->v->store, op->ctid, "broken", NULL);
}

static const char *destroy_recover(struct ved *v, json_t *op, const char **resolution)
{
        uint32_t ctid = (uint32_t)json_integer_value(json_object_get(op, "ctid"));
        struct ve_error err = { 0 };

        if (recover_remove(v, ctid, &err) < 0)
                return broken(v, ctid, &err, resolution);
        ved_store_ve_delete(&v->store, ctid, NULL);
        ved_event(v, "ve.destroyed", ctid, json_integer_value(json_object_get(op, "id")), NULL,
                  "VE %u destroyed (finished after a restart)", ctid);
        *resolution = "rolled forward: the VE was removed";
        return "succeeded";
}

static const struct ved_step destroy_steps[] = {
        { "private", destroy_private_work, NULL, NULL },
        { NULL, NULL, NULL, NULL },
};

const struct ved_op_kind ved_op_destroy_kind = {
        .type = "destroy",
        .steps = destroy_steps,
        .prepare = prepare,
        .finish = destroy_finish,
        .rollback_done = destroy_rollback_done,
        .recover = destroy_recover,
};
