#include "traffic.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "ve/net.h"

struct ved_traffic {
        uv_timer_t timer;
        struct ved *v;
        bool failing; /* the last tick could not record its samples */
};

/* Fold a live sample (or its absence, live == NULL) into row. */
static void fold(struct ved_traffic_row *row, const struct ve_net_stats *live)
{
        if (live == NULL || live->ifindex != row->run_ifindex) {
                for (int i = 0; i < 4; i++) {
                        row->total[i] += row->run[i];
                        row->run[i] = 0;
                }
                row->run_ifindex = 0;
        }
        if (live == NULL)
                return;
        row->run_ifindex = live->ifindex;
        row->run[0] = (int64_t)live->bytes_in;
        row->run[1] = (int64_t)live->bytes_out;
        row->run[2] = (int64_t)live->packets_in;
        row->run[3] = (int64_t)live->packets_out;
}

/* The row of ctid with the live counters folded in. */
static int current(struct ved *v, uint32_t ctid, struct ved_traffic_row *row, bool *changed,
                   struct ve_error *err)
{
        struct ve_net_stats live;
        struct ve_error tmp = { 0 };
        int ret, have;

        ret = ved_store_traffic_get(&v->store, ctid, row, err);
        if (ret < 0)
                return ret;
        have = ve_net_stats(v->cfg.instance, ctid, &live, &tmp);
        if (have < 0 && have != -ENODEV)
                log_debug("VE %u: %s", ctid, tmp.message);
        ve_error_clear(&tmp);
        if (have < 0 && have != -ENODEV)
                return 0; /* unknown now: keep what is stored */
        {
                struct ved_traffic_row before = *row;

                fold(row, have == 0 ? &live : NULL);
                *changed = memcmp(&before, row, sizeof(before)) != 0;
        }
        return 0;
}

int ved_traffic_sample(struct ved *v, uint32_t ctid, struct ve_error *err)
{
        struct ved_traffic_row row;
        bool changed = false;
        int ret;

        ret = current(v, ctid, &row, &changed, err);
        if (ret == 0 && changed)
                ret = ved_store_traffic_put(&v->store, ctid, &row, err);
        return ret;
}

json_t *ved_traffic_json(struct ved *v, uint32_t ctid)
{
        struct ved_traffic_row row;
        struct ve_error err = { 0 };
        bool changed = false;

        if (current(v, ctid, &row, &changed, &err) < 0) {
                log_error("VE %u: traffic counters: %s", ctid, err.message);
                ve_error_clear(&err);
                memset(&row, 0, sizeof(row));
        }
        return json_pack("{s:I, s:I, s:I, s:I}", "bytes_in",
                         (json_int_t)(row.total[0] + row.run[0]), "bytes_out",
                         (json_int_t)(row.total[1] + row.run[1]), "packets_in",
                         (json_int_t)(row.total[2] + row.run[2]), "packets_out",
                         (json_int_t)(row.total[3] + row.run[3]));
}

/* The samples' record failing, every few seconds (a full disk): said once, and
 * once more when it works again. */
static void report(struct ved_traffic *tr, struct ve_error *err)
{
        if (err->code != 0 && !tr->failing)
                log_error("Traffic counters: %s (said once until they are recorded again)",
                          err->message);
        else if (err->code == 0 && tr->failing)
                log_info("Traffic counters: recorded again");
        tr->failing = err->code != 0;
        ve_error_clear(err);
}

/* Every VE that is not stopped may have a veth, or have just lost it. */
static void timer_cb(uv_timer_t *t)
{
        struct ved_traffic *tr = t->data;
        struct ved *v = tr->v;
        struct ve_error err = { 0 };
        json_t *ves = NULL, *ve;
        size_t i;

        /* The same few seconds suit the store's check of its reserve (store.h). */
        ved_store_check_room(&v->store);
        if (ved_store_ve_list(&v->store, NULL, NULL, &ves, &err) < 0 || ved_begin(v, &err) < 0) {
                report(tr, &err);
                json_decref(ves);
                return;
        }
        json_array_foreach(ves, i, ve)
        {
                const char *state = json_string_value(json_object_get(ve, "state"));
                uint32_t ctid = (uint32_t)json_integer_value(json_object_get(ve, "ctid"));

                struct ved_traffic_row row;

                if (state == NULL || strcmp(state, "creating") == 0)
                        continue;
                /* A stopped VE whose last run is folded in has nothing to sample. */
                if (strcmp(state, "stopped") == 0 &&
                    ved_store_traffic_get(&v->store, ctid, &row, NULL) == 0 && row.run_ifindex == 0)
                        continue;
                if (ved_traffic_sample(v, ctid, &err) < 0) {
                        log_error("VE %u: traffic counters: %s", ctid, err.message);
                        ve_error_clear(&err);
                }
        }
        json_decref(ves);
        ved_commit(v, &err);
        report(tr, &err);
}

int ved_traffic_start(struct ved *v, struct ve_error *err)
{
        struct ved_traffic *tr = calloc(1, sizeof(*tr));
        int ret;

        if (tr == NULL)
                return ve_error_set(err, ENOMEM, "out of memory");
        tr->v = v;
        ret = uv_timer_init(v->loop, &tr->timer);
        if (ret < 0) {
                free(tr);
                return ve_error_set(err, -ret, "traffic timer: %s", uv_strerror(ret));
        }
        tr->timer.data = tr;
        uv_timer_start(&tr->timer, timer_cb, VED_TRAFFIC_INTERVAL * 1000,
                       VED_TRAFFIC_INTERVAL * 1000);
        v->traffic = tr;
        return 0;
}

static void closed_cb(uv_handle_t *h)
{
        free(h->data);
}

void ved_traffic_stop(struct ved *v)
{
        if (v->traffic == NULL)
                return;
        uv_close((uv_handle_t *)&v->traffic->timer, closed_cb);
        v->traffic = NULL;
}
