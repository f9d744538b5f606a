#include "usage.h"

#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "lxcfs.h"
#include "quota/cgroup.h"
#include "runtime.h"
#include "statfsd.h"
#include "traffic.h"
#include "ve/image.h"
#include "ve/disk.h"
#include "ve/mount.h"

#define SAMPLE_MS 1000

/* --- limits ----------------------------------------------------------------- */

static uint64_t get_u64(json_t *ve, const char *key, uint64_t unset)
{
        json_t *x = json_object_get(ve, key);

        return json_is_integer(x) ? (uint64_t)json_integer_value(x) : unset;
}

void ved_limits_from_record(json_t *ve, struct quota_limits *l)
{
        quota_limits_init(l);
        l->ram = get_u64(ve, "ram", QUOTA_UNLIMITED);
        l->swap = get_u64(ve, "swap", QUOTA_UNLIMITED);
        l->cpus = (unsigned)get_u64(ve, "cpus", 0);
        l->cpulimit = (unsigned)get_u64(ve, "cpulimit", 0);
        l->cpuunits = (unsigned)get_u64(ve, "cpuunits", 0);
        l->numproc = get_u64(ve, "numproc", QUOTA_UNLIMITED);
        l->iolimit = get_u64(ve, "iolimit", 0);
        l->iopslimit = get_u64(ve, "iopslimit", 0);
}

int ved_limits_apply(const struct quota_cgroup *cg, const char *instance, uint32_t ctid,
                     struct quota_limits *l, const char *private_area, struct ve_error *err)
{
        struct stat st;
        int ret;

        if (ve_is_mounted(private_area) > 0 && stat(private_area, &st) == 0) {
                l->blk_major = major(st.st_dev);
                l->blk_minor = minor(st.st_dev);
        }
        ret = quota_cgroup_set_limits(cg, instance, ctid, l, err);
        if (ret < 0)
                return ve_error_prefix(err, "set the limits of VE %u", ctid);
        return 0;
}

static bool changes_any(json_t *changes, const char *const *keys)
{
        for (; *keys; keys++)
                if (json_object_get(changes, *keys) != NULL)
                        return true;
        return false;
}

/* Disk space and inodes (ve/disk.h): live on a running VE, within what its
 * file system can hold; at the next start otherwise. Below what is used is
 * refused, saying how much that is. */
static int disk_change(struct ved *v, json_t *ve, json_t *changes, bool running,
                       struct ve_error *err)
{
        uint32_t ctid = (uint32_t)json_integer_value(json_object_get(ve, "ctid"));
        uint64_t old_space = get_u64(ve, "diskspace", 0);
        uint64_t new_space = old_space, old_inodes = get_u64(ve, "diskinodes", 0);
        uint64_t new_inodes = old_inodes;
        char dir[PATH_MAX / 2], img[PATH_MAX], root[PATH_MAX], priv[PATH_MAX];
        json_t *x;
        int ret;

        if ((x = json_object_get(changes, "diskspace")) != NULL)
                new_space = json_is_integer(x) ? (uint64_t)json_integer_value(x) : old_space;
        if ((x = json_object_get(changes, "diskinodes")) != NULL)
                new_inodes = json_is_integer(x) ? (uint64_t)json_integer_value(x) : 0;
        if (new_space == old_space && new_inodes == old_inodes)
                return 0;
        ved_ve_dir(v, ctid, dir, sizeof(dir));
        snprintf(img, sizeof(img), "%s/root.img", dir);
        ved_ve_mountpoints(v, ctid, root, priv, sizeof(root));
        /* A stopped VE's image is made to fit at its next start (a worker's
         * job: a rebuild can take minutes); the API's thread only checks. */
        if (running)
                ret = ve_disk_limits_apply(priv, new_space, new_inodes, err);
        else
                ret = ve_disk_check_offline(img, new_space, new_inodes, err);
        if (ret < 0)
                return ve_error_prefix(err, "VE %u", ctid);
        log_info("VE %u: disk space %llu bytes, %llu inodes", ctid, (unsigned long long)new_space,
                 (unsigned long long)new_inodes);
        return 0;
}

/* A limit changed on a running VE whose controller the host does not delegate
 * (cgroup v2: quota_cgroup_unenforced()) would be skipped: refuse the change
 * rather than answer as if it held. (Created or started with it, such a VE runs
 * and is reported degraded.) */
static int refuse_unenforced(struct ved *v, uint32_t ctid, json_t *changes, struct ve_error *err)
{
        static const struct {
                const char *key, *controller;
        } needs[] = {
                { "ram", "memory" },   { "swap", "memory" },  { "cpus", "cpuset" },
                { "cpulimit", "cpu" }, { "cpuunits", "cpu" }, { "numproc", "pids" },
                { "iolimit", "io" },   { "iopslimit", "io" },
        };
        char missing[128], list[132], word[32];

        if (quota_cgroup_unenforced(v->cgroup, v->cfg.instance, ctid, missing, sizeof(missing)) <
                0 ||
            missing[0] == '\0')
                return 0;
        snprintf(list, sizeof(list), " %s ", missing);
        for (size_t i = 0; i < sizeof(needs) / sizeof(needs[0]); i++) {
                snprintf(word, sizeof(word), " %s ", needs[i].controller);
                if (json_object_get(changes, needs[i].key) != NULL && strstr(list, word) != NULL)
                        return ve_error_set(err, VE_EUNSUPPORTED,
                                            "%s cannot be enforced: the host gives ved no %s "
                                            "cgroup controller",
                                            needs[i].key, needs[i].controller);
        }
        return 0;
}

int ved_limits_change(struct ved *v, json_t *ve, json_t *changes, struct ve_error *err)
{
        static const char *const cgroup_keys[] = { "ram",      "swap",      "cpus",
                                                   "cpulimit", "cpuunits",  "numproc",
                                                   "iolimit",  "iopslimit", NULL };
        static const char *const disk_keys[] = { "diskspace", "diskinodes", NULL };
        uint32_t ctid = (uint32_t)json_integer_value(json_object_get(ve, "ctid"));
        struct ved_rt *rt = ved_rt_find(v, ctid);
        bool running = rt != NULL && !rt->exited;
        int ret;

        if (changes_any(changes, disk_keys)) {
                ret = disk_change(v, ve, changes, running, err);
                if (ret < 0)
                        return ret;
        }
        if (running && changes_any(changes, cgroup_keys)) {
                json_auto_t *merged = NULL;

                ret = refuse_unenforced(v, ctid, changes, err);
                if (ret < 0)
                        return ret;
                merged = json_deep_copy(ve);
                if (merged == NULL)
                        return ve_error_set(err, ENOMEM, "out of memory");
                json_object_update(merged, changes);
                return ved_limits_reapply(v, merged, err);
        }
        return 0;
}

int ved_limits_reapply(struct ved *v, json_t *ve, struct ve_error *err)
{
        uint32_t ctid = (uint32_t)json_integer_value(json_object_get(ve, "ctid"));
        char root[PATH_MAX], priv[PATH_MAX];
        struct quota_limits l;

        ved_limits_from_record(ve, &l);
        ved_ve_mountpoints(v, ctid, root, priv, sizeof(root));
        return ved_limits_apply(v->cgroup, v->cfg.instance, ctid, &l, priv, err);
}

/* --- usage ------------------------------------------------------------------ */

static json_t *limit_json(uint64_t v)
{
        return v == QUOTA_UNLIMITED ? json_null() : json_integer((json_int_t)v);
}

static json_t *disk_json(struct ved *v, json_t *ve, uint32_t ctid)
{
        char dir[PATH_MAX / 2], img[PATH_MAX], root[PATH_MAX], priv[PATH_MAX];
        struct ve_disk_usage du = { 0 };
        struct stat st;
        json_t *o;

        ved_ve_dir(v, ctid, dir, sizeof(dir));
        snprintf(img, sizeof(img), "%s/root.img", dir);
        ved_ve_mountpoints(v, ctid, root, priv, sizeof(root));
        if (ve_disk_usage(ve_is_mounted(priv) > 0 ? priv : NULL, img, get_u64(ve, "diskspace", 0),
                          get_u64(ve, "diskinodes", 0), &du, NULL) < 0)
                return json_null();
        o = json_pack("{s:I, s:I, s:I, s:I}", "bytes_used", (json_int_t)du.used_bytes,
                      "bytes_total", (json_int_t)du.total_bytes, "inodes_used",
                      (json_int_t)du.inodes_used, "inodes_total", (json_int_t)du.inodes_total);
        /* What the image really takes on the host: it is sparse. */
        if (o != NULL && stat(img, &st) == 0)
                json_object_set_new(o, "host_bytes", json_integer((json_int_t)st.st_blocks * 512));
        return o;
}

json_t *ved_usage_json(struct ved *v, json_t *ve)
{
        uint32_t ctid = (uint32_t)json_integer_value(json_object_get(ve, "ctid"));
        struct ved_rt *rt = ved_rt_find(v, ctid);
        bool running = rt != NULL && !rt->exited;
        struct quota_usage u;
        json_t *o = json_pack("{s:I, s:O, s:O}", "ctid", (json_int_t)ctid, "name",
                              json_object_get(ve, "name") ?: json_null(), "state",
                              json_object_get(ve, "state"));

        if (o == NULL)
                return NULL;
        if (running && quota_cgroup_usage(v->cgroup, v->cfg.instance, ctid, &u, NULL) == 0) {
                json_t *cpu = json_pack("{s:I}", "time_ns", (json_int_t)u.cpu_ns);

                json_object_set_new(cpu, "usage_percent",
                                    rt->sample.primed && rt->sample.cpu_percent >= 0
                                        ? json_real(rt->sample.cpu_percent)
                                        : json_null());
                json_object_set_new(o, "memory",
                                    json_pack("{s:I, s:o, s:I, s:I, s:I, s:I}", "current",
                                              (json_int_t)u.mem_current, "limit",
                                              limit_json(u.mem_limit), "max", (json_int_t)u.mem_max,
                                              "failcnt", (json_int_t)u.mem_failcnt, "oom_kills",
                                              (json_int_t)u.oom_kills, "swap",
                                              (json_int_t)u.swap_current));
                json_object_set_new(o, "cpu", cpu);
                json_object_set_new(
                    o, "processes",
                    json_pack("{s:I, s:o, s:I}", "current", (json_int_t)u.pids_current, "limit",
                              limit_json(u.pids_limit), "limit_hits", (json_int_t)u.pids_hits));
                json_object_set_new(
                    o, "io",
                    json_pack("{s:I, s:I, s:I, s:I}", "read_bytes", (json_int_t)u.io_read_bytes,
                              "write_bytes", (json_int_t)u.io_write_bytes, "read_ops",
                              (json_int_t)u.io_read_ops, "write_ops", (json_int_t)u.io_write_ops));
        } else {
                json_object_set_new(o, "memory", json_null());
                json_object_set_new(o, "cpu", json_null());
                json_object_set_new(o, "processes", json_null());
                json_object_set_new(o, "io", json_null());
        }
        json_object_set_new(o, "disk", disk_json(v, ve, ctid));
        json_object_set_new(o, "network", ved_traffic_json(v, ctid) ?: json_null());
        return o;
}

/* --- Prometheus ---------------------------------------------------------------- */

struct metric {
        const char *name, *type, *section, *key, *help;
        double scale;
};

static const struct metric metrics[] = {
        { "ved_memory_usage_bytes", "gauge", "memory", "current", "Memory the VE uses", 1 },
        { "ved_memory_limit_bytes", "gauge", "memory", "limit", "The VE's memory limit (--ram)",
          1 },
        { "ved_memory_max_usage_bytes", "gauge", "memory", "max", "Peak memory use", 1 },
        { "ved_memory_failcnt_total", "counter", "memory", "failcnt",
          "Times the VE's memory use hit its limit", 1 },
        { "ved_oom_kills_total", "counter", "memory", "oom_kills",
          "Processes of the VE killed by the OOM killer", 1 },
        { "ved_swap_usage_bytes", "gauge", "memory", "swap", "Swap the VE uses", 1 },
        { "ved_cpu_seconds_total", "counter", "cpu", "time_ns", "CPU time the VE used", 1e-9 },
        { "ved_cpu_usage_percent", "gauge", "cpu", "usage_percent",
          "CPU use over the last second, 100 = one CPU", 1 },
        { "ved_processes", "gauge", "processes", "current", "Processes and threads in the VE", 1 },
        { "ved_processes_limit", "gauge", "processes", "limit", "The VE's --numproc", 1 },
        { "ved_processes_limit_hits_total", "counter", "processes", "limit_hits",
          "Forks refused at the VE's process limit", 1 },
        { "ved_disk_used_bytes", "gauge", "disk", "bytes_used", "Space used in the VE's disk", 1 },
        { "ved_disk_size_bytes", "gauge", "disk", "bytes_total", "Size of the VE's disk", 1 },
        { "ved_disk_inodes_used", "gauge", "disk", "inodes_used", "Inodes used in the VE's disk",
          1 },
        { "ved_disk_inodes", "gauge", "disk", "inodes_total", "Inodes of the VE's disk", 1 },
        { "ved_disk_host_bytes", "gauge", "disk", "host_bytes",
          "Space the VE's sparse image takes on the host", 1 },
        { "ved_io_read_bytes_total", "counter", "io", "read_bytes", "Bytes read from the VE's disk",
          1 },
        { "ved_io_write_bytes_total", "counter", "io", "write_bytes",
          "Bytes written to the VE's disk", 1 },
        { "ved_io_read_ops_total", "counter", "io", "read_ops", "Read operations on the VE's disk",
          1 },
        { "ved_io_write_ops_total", "counter", "io", "write_ops",
          "Write operations on the VE's disk", 1 },
        { "ved_network_receive_bytes_total", "counter", "network", "bytes_in",
          "Bytes sent to the VE", 1 },
        { "ved_network_transmit_bytes_total", "counter", "network", "bytes_out",
          "Bytes the VE sent", 1 },
        { "ved_network_receive_packets_total", "counter", "network", "packets_in",
          "Packets sent to the VE", 1 },
        { "ved_network_transmit_packets_total", "counter", "network", "packets_out",
          "Packets the VE sent", 1 },
};

struct buf {
        char *p;
        size_t len, cap;
        bool oom;
};

static void bprintf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bprintf(struct buf *b, const char *fmt, ...)
{
        va_list ap;
        int n;

        if (b->oom)
                return;
        for (;;) {
                va_start(ap, fmt);
                n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
                va_end(ap);
                if (n < 0) {
                        b->oom = true;
                        return;
                }
                if ((size_t)n < b->cap - b->len)
                        break;
                size_t cap = (b->cap + (size_t)n + 1) * 2;
                char *p = realloc(b->p, cap);

                if (p == NULL) {
                        b->oom = true;
                        return;
                }
                b->p = p;
                b->cap = cap;
        }
        b->len += (size_t)n;
}

/* A label value: backslash, double quote and newline escaped. */
static void label(char *out, size_t len, const char *s)
{
        size_t o = 0;

        for (; s != NULL && *s && o + 3 < len; s++) {
                if (*s == '\\' || *s == '"') {
                        out[o++] = '\\';
                        out[o++] = *s;
                } else if (*s == '\n') {
                        out[o++] = '\\';
                        out[o++] = 'n';
                } else {
                        out[o++] = *s;
                }
        }
        out[o] = '\0';
}

char *ved_metrics_text(struct ved *v, struct ve_error *err)
{
        json_auto_t *ves = NULL, *usages = json_array();
        struct buf b = { .cap = 4096 };
        size_t i;
        json_t *ve;

        b.p = malloc(b.cap);
        if (b.p == NULL || usages == NULL) {
                free(b.p);
                return ve_error_set(err, ENOMEM, "out of memory"), NULL;
        }
        b.p[0] = '\0';
        if (ved_store_ve_list(&v->store, NULL, NULL, &ves, err) < 0) {
                free(b.p);
                return NULL;
        }
        json_array_foreach(ves, i, ve) json_array_append_new(usages, ved_usage_json(v, ve));
        bprintf(&b, "# HELP ved_up Whether the VE runs (1) or not (0)\n# TYPE ved_up gauge\n");
        json_array_foreach(usages, i, ve)
        {
                char name[512];

                label(name, sizeof(name), json_string_value(json_object_get(ve, "name")));
                bprintf(&b, "ved_up{ctid=\"%lld\",name=\"%s\"} %d\n",
                        (long long)json_integer_value(json_object_get(ve, "ctid")), name,
                        json_object_get(ve, "memory") != NULL &&
                            !json_is_null(json_object_get(ve, "memory")));
        }
        for (size_t m = 0; m < sizeof(metrics) / sizeof(metrics[0]); m++) {
                bool head = false;

                json_array_foreach(usages, i, ve)
                {
                        json_t *x = json_object_get(json_object_get(ve, metrics[m].section),
                                                    metrics[m].key);
                        char name[512];

                        if (!json_is_number(x))
                                continue;
                        if (!head) {
                                bprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", metrics[m].name,
                                        metrics[m].help, metrics[m].name, metrics[m].type);
                                head = true;
                        }
                        label(name, sizeof(name), json_string_value(json_object_get(ve, "name")));
                        if (metrics[m].scale == 1 && json_is_integer(x))
                                bprintf(&b, "%s{ctid=\"%lld\",name=\"%s\"} %lld\n", metrics[m].name,
                                        (long long)json_integer_value(json_object_get(ve, "ctid")),
                                        name, (long long)json_integer_value(x));
                        else
                                bprintf(&b, "%s{ctid=\"%lld\",name=\"%s\"} %.9g\n", metrics[m].name,
                                        (long long)json_integer_value(json_object_get(ve, "ctid")),
                                        name, json_number_value(x) * metrics[m].scale);
                }
        }
        if (b.oom) {
                free(b.p);
                return ve_error_set(err, ENOMEM, "out of memory"), NULL;
        }
        return b.p;
}

/* --- sampling and limit events ------------------------------------------------ */

static uint64_t now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void limit_event(struct ved *v, uint32_t ctid, const char *limit, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void limit_event(struct ved *v, uint32_t ctid, const char *limit, const char *fmt, ...)
{
        struct ve_error err = { 0 };
        char type[64], msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        snprintf(type, sizeof(type), "ve.limit.%s", limit);
        if (ved_begin(v, &err) < 0 || ved_event(v, type, ctid, 0, NULL, "%s", msg) < 0 ||
            ved_commit(v, &err) < 0) {
                ved_rollback(v);
                log_warn("Cannot record %s for VE %u: %s", type, ctid,
                         err.message ? err.message : "store error");
                ve_error_clear(&err);
        }
}

/* Nanoseconds since the VE's init started (its start time is in clock ticks
 * since boot); 0 when unknown. */
static uint64_t since_start_ns(const struct ved_rt *rt)
{
        long hz = sysconf(_SC_CLK_TCK);
        struct timespec ts;
        uint64_t now, start;

        if (hz <= 0 || rt->proc.starttime == 0 || clock_gettime(CLOCK_BOOTTIME, &ts) < 0)
                return 0;
        now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
        start = rt->proc.starttime * (1000000000ull / (uint64_t)hz);
        return now > start ? now - start : 0;
}

static void sample_one(struct ved *v, struct ved_rt *rt, uint64_t now)
{
        struct ved_usage_sample *s = &rt->sample;
        char root[PATH_MAX], priv[PATH_MAX];
        struct ve_disk_usage du;
        struct quota_usage u;

        if (quota_cgroup_usage(v->cgroup, v->cfg.instance, rt->ctid, &u, NULL) < 0)
                return;
        if (s->primed) {
                uint64_t dt = now - s->at_ns;

                s->cpu_percent = dt ? (double)(u.cpu_ns - s->cpu_ns) * 100.0 / (double)dt : 0;
                if (u.oom_kills > s->oom_kills)
                        limit_event(v, rt->ctid, "ram",
                                    "VE %u hit its memory limit: the OOM killer killed %llu "
                                    "process(es) in it",
                                    rt->ctid, (unsigned long long)(u.oom_kills - s->oom_kills));
                if (u.pids_hits > s->pids_hits)
                        limit_event(v, rt->ctid, "numproc",
                                    "VE %u hit its process limit (numproc %llu): %llu fork(s) "
                                    "refused",
                                    rt->ctid, (unsigned long long)u.pids_limit,
                                    (unsigned long long)(u.pids_hits - s->pids_hits));
        } else {
                /* The first sample: the average since the VE's init started. */
                uint64_t up = since_start_ns(rt);

                s->cpu_percent = up ? (double)u.cpu_ns * 100.0 / (double)up : -1;
        }
        s->cpu_ns = u.cpu_ns;
        s->at_ns = now;
        s->oom_kills = u.oom_kills;
        s->pids_hits = u.pids_hits;
        ved_ve_mountpoints(v, rt->ctid, root, priv, sizeof(root));
        if (ve_private_usage(priv, &du, NULL) == 0 && du.total_bytes > 0) {
                /* Full: what is left is less than 1% or 8 MiB, whichever is less
                 * (ext4 holds some back for its metadata even at -m 0). */
                uint64_t slack =
                    du.total_bytes / 100 < (8u << 20) ? du.total_bytes / 100 : (8u << 20);
                bool full = du.total_bytes - du.used_bytes <= slack;
                bool ifull = du.inodes_used >= du.inodes_total;

                if (full && !s->disk_full)
                        limit_event(v, rt->ctid, "diskspace", "VE %u's disk is full (%llu bytes)",
                                    rt->ctid, (unsigned long long)du.total_bytes);
                if (ifull && !s->inodes_full)
                        limit_event(v, rt->ctid, "diskinodes",
                                    "VE %u has used all its inodes (%llu)", rt->ctid,
                                    (unsigned long long)du.inodes_total);
                s->disk_full = full;
                s->inodes_full = ifull;
        }
        s->primed = true;
}

static void timer_cb(uv_timer_t *t)
{
        struct ved *v = t->data;
        struct list_head *pos, *tmp;
        uint64_t now = now_ns();

        list_for_each_safe(pos, tmp, &v->rts)
        {
                struct ved_rt *rt = container_of(pos, struct ved_rt, link);

                if (!rt->exited)
                        sample_one(v, rt, now);
        }
        ved_lxcfs_check(v);
        ved_statfsd_check(v);
}

void ved_usage_start(struct ved *v)
{
        uv_timer_init(v->loop, &v->usage_timer);
        v->usage_timer.data = v;
        uv_timer_start(&v->usage_timer, timer_cb, SAMPLE_MS, SAMPLE_MS);
        v->usage_timer_on = true;
}

void ved_usage_stop(struct ved *v)
{
        if (!v->usage_timer_on)
                return;
        uv_timer_stop(&v->usage_timer);
        uv_close((uv_handle_t *)&v->usage_timer, NULL);
        v->usage_timer_on = false;
}
