#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/ved.h"
#include "router.h"
#include "ve/parse.h"

/* One /v1/events stream. It reads events from the store after its last id, so a
 * subscriber never misses one that was committed, and sleeps (a suspended
 * connection) while there is nothing new. */
struct event_stream {
        struct ved_event_sub sub;
        struct ved *v;
        struct api_server *server;
        struct MHD_Connection *conn;
        int64_t last_id;
        bool follow;
        bool suspended;
        bool *closing; /* the server's stopping flag */
        char *buf;
        size_t len, off;
};

static void stream_notify_cb(struct ved_event_sub *sub)
{
        struct event_stream *es = container_of(sub, struct event_stream, sub);

        if (!es->suspended)
                return;
        es->suspended = false;
        MHD_resume_connection(es->conn);
        api_server_kick(es->server);
}

static void fill(struct event_stream *es)
{
        json_t *list = NULL, *ev;
        size_t i, cap = 0;

        free(es->buf);
        es->buf = NULL;
        es->len = es->off = 0;
        if (ved_store_event_list(&es->v->store, es->last_id, 200, &list, NULL) < 0)
                return;
        json_array_foreach(list, i, ev)
        {
                char *line = json_dumps(ev, JSON_COMPACT);
                size_t n = strlen(line);

                if (es->len + n + 1 > cap) {
                        cap = (es->len + n + 1) * 2;
                        es->buf = realloc(es->buf, cap);
                }
                memcpy(es->buf + es->len, line, n);
                es->buf[es->len + n] = '\n';
                es->len += n + 1;
                free(line);
                es->last_id = json_integer_value(json_object_get(ev, "id"));
        }
        json_decref(list);
}

static ssize_t stream_read_cb(void *cls, uint64_t pos, char *out, size_t max)
{
        struct event_stream *es = cls;
        size_t n;

        (void)pos;
        if (es->off >= es->len)
                fill(es);
        if (es->off < es->len) {
                n = es->len - es->off < max ? es->len - es->off : max;
                memcpy(out, es->buf + es->off, n);
                es->off += n;
                return (ssize_t)n;
        }
        if (!es->follow || api_server_stopping(es->server))
                return MHD_CONTENT_READER_END_OF_STREAM;
        es->suspended = true;
        MHD_suspend_connection(es->conn);
        return 0;
}

static void stream_free_cb(void *cls)
{
        struct event_stream *es = cls;

        ved_event_unsubscribe(&es->sub);
        free(es->buf);
        free(es);
}

int route_events_get(struct api_request *req)
{
        const char *since_s = api_query(req, "since"), *follow_s = api_query(req, "follow");
        struct ve_error err = { 0 };
        struct MHD_Response *resp;
        struct event_stream *es;
        bool follow = true;
        uint64_t since = 0;
        int ret;

        if ((since_s != NULL && ve_parse_uint(since_s, INT64_MAX, &since, "since", &err) < 0) ||
            (follow_s != NULL && ve_parse_bool(follow_s, &follow, "follow", &err) < 0)) {
                ret = api_respond_ve_error(req, &err);
                ve_error_clear(&err);
                return ret;
        }
        es = calloc(1, sizeof(*es));
        es->v = req->v;
        es->server = req->server;
        es->conn = req->conn;
        es->follow = follow;
        /* Following without `since` starts now; a one-off read gives the history. */
        es->last_id = since_s != NULL ? (int64_t)since
                      : follow        ? ved_store_event_last_id(&req->v->store)
                                      : 0;
        es->sub.notify_cb = stream_notify_cb;
        list_init(&es->sub.link);
        ved_event_subscribe(req->v, &es->sub);
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read_cb, es,
                                                 stream_free_cb);
        MHD_add_response_header(resp, "Content-Type", "application/x-ndjson");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        return api_respond_raw(req, resp, 200);
}
