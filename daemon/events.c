#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "ved.h"

int ved_begin(struct ved *v, struct ve_error *err)
{
        return ved_store_begin(&v->store, err);
}

int ved_begin_lazy(struct ved *v, struct ve_error *err)
{
        return ved_store_begin_lazy(&v->store, err);
}

static void notify_subscribers(struct ved *v)
{
        struct list_head *pos, *tmp;

        v->events_pending = false;
        list_for_each_safe(pos, tmp, &v->event_subs)
        {
                struct ved_event_sub *sub = container_of(pos, struct ved_event_sub, link);

                sub->notify_cb(sub);
        }
}

int ved_commit(struct ved *v, struct ve_error *err)
{
        int ret = ved_store_commit(&v->store, err);

        if (ret == 0 && v->events_pending)
                notify_subscribers(v);
        v->events_pending = false;
        return ret;
}

void ved_rollback(struct ved *v)
{
        ved_store_rollback(&v->store);
        v->events_pending = false;
}

int ved_event(struct ved *v, const char *type, uint32_t ctid, int64_t op, const char *state,
              const char *fmt, ...)
{
        struct ve_error err = { 0 };
        char msg[1024];
        va_list ap;
        int ret;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        ret = ved_store_event_insert(&v->store, type, ctid, op, state, msg, NULL, &err);
        if (ret < 0) {
                log_info("%s", msg);
                log_error("Cannot record event %s: %s", type, err.message);
                ve_error_clear(&err);
                return ret;
        }
        v->events_pending = true;
        /* Outside a transaction the event is committed already. */
        if (!ved_store_in_transaction(&v->store))
                notify_subscribers(v);
        return 0;
}

/* The daemon's log is a subscriber like an /v1/events stream: it shows what was
 * committed, so an event of a transaction rolled back never appears in it. */
static void log_new_events(struct ved_event_sub *sub)
{
        struct ved *v = container_of(sub, struct ved, log_sub);
        json_t *list = NULL, *ev;
        size_t i, n;

        do {
                if (ved_store_event_list(&v->store, v->logged_id, 200, &list, NULL) < 0)
                        return;
                n = json_array_size(list);
                json_array_foreach(list, i, ev)
                {
                        log_info("%s", json_string_value(json_object_get(ev, "message")));
                        v->logged_id = json_integer_value(json_object_get(ev, "id"));
                }
                json_decref(list);
        } while (n == 200);
}

void ved_events_log_start(struct ved *v)
{
        v->logged_id = ved_store_event_last_id(&v->store);
        v->log_sub.notify_cb = log_new_events;
        ved_event_subscribe(v, &v->log_sub);
}

void ved_event_subscribe(struct ved *v, struct ved_event_sub *sub)
{
        list_add_tail(&v->event_subs, &sub->link);
}

void ved_event_unsubscribe(struct ved_event_sub *sub)
{
        list_del(&sub->link);
}

void ved_op_wait(struct ved *v, struct ved_op_waiter *w)
{
        list_add_tail(&v->op_waiters, &w->link);
}

void ved_op_unwait(struct ved_op_waiter *w)
{
        list_del(&w->link);
}

void ved_op_notify(struct ved *v, int64_t op_id)
{
        struct list_head *pos, *tmp;

        list_for_each_safe(pos, tmp, &v->op_waiters)
        {
                struct ved_op_waiter *w = container_of(pos, struct ved_op_waiter, link);

                if (w->op_id == op_id)
                        w->done_cb(w);
        }
}

void ved_op_notify_checked(struct ved *v, int64_t op_id)
{
        struct list_head *pos, *tmp;

        list_for_each_safe(pos, tmp, &v->op_waiters)
        {
                struct ved_op_waiter *w = container_of(pos, struct ved_op_waiter, link);

                if (w->op_id == op_id && w->checked_cb != NULL)
                        w->checked_cb(w);
        }
}

const char *ved_ve_dir(struct ved *v, uint32_t ctid, char *buf, size_t len)
{
        snprintf(buf, len, "%s/%u", v->ves_dir, ctid);
        return buf;
}
