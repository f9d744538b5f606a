#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "ved.h"

/* The event lines of a transaction that was rolled back, or is over: gone. */
void ved_events_free(struct ved *v)
{
        for (size_t i = 0; i < v->n_event_lines; i++)
                free(v->event_lines[i]);
        free(v->event_lines);
        v->event_lines = NULL;
        v->n_event_lines = 0;
}

/* Log the lines of the committed transaction's events. */
static void log_event_lines(struct ved *v)
{
        for (size_t i = 0; i < v->n_event_lines; i++)
                log_info("%s", v->event_lines[i]);
        ved_events_free(v);
}

/* Keep msg for the commit; an allocation failure logs it now rather than never. */
static void defer_event_line(struct ved *v, const char *msg)
{
        char **lines = realloc(v->event_lines, (v->n_event_lines + 1) * sizeof(*lines));
        char *line = strdup(msg);

        if (lines != NULL)
                v->event_lines = lines;
        if (lines == NULL || line == NULL) {
                free(line);
                log_info("%s", msg);
                return;
        }
        v->event_lines[v->n_event_lines++] = line;
}

/* A store-level rollback (inside a store call) leaves lines of a transaction that
 * is gone: a new one starts without them. */
int ved_begin(struct ved *v, struct ve_error *err)
{
        ved_events_free(v);
        return ved_store_begin(&v->store, err);
}

int ved_begin_lazy(struct ved *v, struct ve_error *err)
{
        ved_events_free(v);
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

        if (ret == 0)
                log_event_lines(v);
        else
                ved_events_free(v);
        if (ret == 0 && v->events_pending)
                notify_subscribers(v);
        v->events_pending = false;
        return ret;
}

void ved_rollback(struct ved *v)
{
        ved_store_rollback(&v->store);
        ved_events_free(v);
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
        if (ved_store_in_transaction(&v->store))
                defer_event_line(v, msg);
        else
                log_info("%s", msg);
        v->events_pending = true;
        return 0;
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

const char *ved_ve_dir(struct ved *v, uint32_t ctid, char *buf, size_t len)
{
        snprintf(buf, len, "%s/%u", v->ves_dir, ctid);
        return buf;
}
