#include "exec_stream.h"
#include "exitcode.h"
#include "http.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EXEC_UPGRADE "ved-exec/1"

/* Limits on what ved sends: larger is not ved, and is refused rather than buffered. */
#define HEAD_MAX       (16u << 10)
#define ERROR_BODY_MAX (1u << 20)
#define FRAME_MAX      (16u << 20) /* ved's frames hold one read of output, 64 KiB */
#define READ_CHUNK     (64u << 10)

struct exec_stream {
        CURL *curl;
        int fd;
        char *buf; /* buf[pos, len) is received and not yet consumed */
        size_t pos, len, cap;
        char *out; /* out[out_pos, out_len) is queued and not yet sent */
        size_t out_pos, out_len, out_cap;
};

int exec_stream_fd(const struct exec_stream *s)
{
        return s->fd;
}

void exec_stream_free(struct exec_stream *s)
{
        if (s == NULL)
                return;
        if (s->curl != NULL)
                curl_easy_cleanup(s->curl);
        free(s->buf);
        free(s->out);
        free(s);
}

/* Wait for events on fd; *revents gets what came. */
static int wait_fd(int fd, short events, short *revents, struct ve_error *err)
{
        struct pollfd p = { .fd = fd, .events = events };
        int ret;

        do
                ret = poll(&p, 1, -1);
        while (ret < 0 && errno == EINTR);
        if (ret < 0)
                return ve_error_errno(err, errno, "waiting for ved");
        if (revents != NULL)
                *revents = p.revents;
        return 0;
}

/* Sends all of p, waiting for room: the request, before the stream is upgraded. */
static int send_all(struct exec_stream *s, const char *p, size_t len, struct ve_error *err)
{
        while (len > 0) {
                size_t n = 0;
                CURLcode rc = curl_easy_send(s->curl, p, len, &n);
                int ret;

                if (rc == CURLE_AGAIN) {
                        ret = wait_fd(s->fd, POLLOUT, NULL, err);
                        if (ret < 0)
                                return ret;
                        continue;
                }
                if (rc != CURLE_OK)
                        return ve_error_set(err, EIO, "connection to ved lost: %s",
                                            curl_easy_strerror(rc));
                p += n;
                len -= n;
        }
        return 0;
}

int exec_stream_queue(struct exec_stream *s, char type, const void *data, uint32_t len,
                      struct ve_error *err)
{
        uint32_t be = htonl(len);
        size_t need;

        if (s->out_pos > 0) {
                memmove(s->out, s->out + s->out_pos, s->out_len - s->out_pos);
                s->out_len -= s->out_pos;
                s->out_pos = 0;
        }
        need = s->out_len + 5 + len;
        if (need > s->out_cap) {
                char *p = realloc(s->out, need);

                if (p == NULL)
                        return ve_error_set(err, ENOMEM, "out of memory");
                s->out = p;
                s->out_cap = need;
        }
        s->out[s->out_len] = type;
        memcpy(s->out + s->out_len + 1, &be, 4);
        if (len > 0)
                memcpy(s->out + s->out_len + 5, data, len);
        s->out_len = need;
        return 0;
}

int exec_stream_flush(struct exec_stream *s, struct ve_error *err)
{
        while (s->out_pos < s->out_len) {
                size_t n = 0;
                CURLcode rc =
                    curl_easy_send(s->curl, s->out + s->out_pos, s->out_len - s->out_pos, &n);

                if (rc == CURLE_AGAIN)
                        return 0;
                if (rc != CURLE_OK)
                        return ve_error_set(err, EIO, "connection to ved lost: %s",
                                            curl_easy_strerror(rc));
                s->out_pos += n;
        }
        return 0;
}

size_t exec_stream_pending(const struct exec_stream *s)
{
        return s->out_len - s->out_pos;
}

void exec_stream_drop_pending(struct exec_stream *s)
{
        s->out_pos = s->out_len = 0;
}

/* Room for another read at the end of the buffer, dropping what was consumed. */
static int make_room(struct exec_stream *s, struct ve_error *err)
{
        size_t cap;
        char *p;

        if (s->pos > 0) {
                memmove(s->buf, s->buf + s->pos, s->len - s->pos);
                s->len -= s->pos;
                s->pos = 0;
        }
        if (s->cap - s->len >= READ_CHUNK)
                return 0;
        cap = s->len + READ_CHUNK;
        p = realloc(s->buf, cap + 1); /* + 1: the head is parsed as a string */
        if (p == NULL)
                return ve_error_set(err, ENOMEM, "out of memory");
        s->buf = p;
        s->cap = cap;
        return 0;
}

int exec_stream_read(struct exec_stream *s, bool *eof, struct ve_error *err)
{
        size_t n = 0;
        CURLcode rc;
        int ret;

        ret = make_room(s, err);
        if (ret < 0)
                return ret;
        rc = curl_easy_recv(s->curl, s->buf + s->len, s->cap - s->len, &n);
        if (rc == CURLE_AGAIN)
                return 0;
        /* A reset is the daemon going away, as a close is: the caller says so. */
        if (rc != CURLE_OK || n == 0)
                *eof = true;
        s->len += n;
        s->buf[s->len] = '\0';
        return 0;
}

int exec_stream_next(struct exec_stream *s, struct exec_frame *f, struct ve_error *err)
{
        size_t avail = s->len - s->pos;
        uint32_t len;

        if (avail < 5)
                return 0;
        memcpy(&len, s->buf + s->pos + 1, 4);
        len = ntohl(len);
        if (len > FRAME_MAX)
                return ve_error_set(err, EPROTO, "ved sent a frame of %u bytes", len);
        if (avail - 5 < len)
                return 0;
        f->type = s->buf[s->pos];
        f->data = (const unsigned char *)s->buf + s->pos + 5;
        f->len = len;
        s->pos += 5 + (size_t)len;
        return 1;
}

/* Blocks until more of the answer arrives; the daemon closing first is an error. */
static int read_more(struct exec_stream *s, bool *eof, struct ve_error *err)
{
        int ret;

        ret = wait_fd(s->fd, POLLIN, NULL, err);
        if (ret == 0)
                ret = exec_stream_read(s, eof, err);
        return ret;
}

static int connect_daemon(const struct cli *cli, struct exec_stream *s, const char *path,
                          struct ve_error *err)
{
        curl_socket_t fd = CURL_SOCKET_BAD;
        char url[4096];
        long oserr = 0;
        CURLcode rc;

        snprintf(url, sizeof(url), "http://ved%s", path);
        curl_easy_setopt(s->curl, CURLOPT_URL, url);
        curl_easy_setopt(s->curl, CURLOPT_UNIX_SOCKET_PATH, cli->socket);
        curl_easy_setopt(s->curl, CURLOPT_CONNECT_ONLY, 1L);
        curl_easy_setopt(s->curl, CURLOPT_NOSIGNAL, 1L);
        rc = curl_easy_perform(s->curl);
        if (rc != CURLE_OK) {
                curl_easy_getinfo(s->curl, CURLINFO_OS_ERRNO, &oserr);
                return ve_error_set(err, CLI_EUNREACHABLE, "cannot reach ved at %s: %s",
                                    cli->socket,
                                    oserr != 0 ? strerror((int)oserr) : curl_easy_strerror(rc));
        }
        rc = curl_easy_getinfo(s->curl, CURLINFO_ACTIVESOCKET, &fd);
        if (rc != CURLE_OK || fd == CURL_SOCKET_BAD)
                return ve_error_set(err, EIO, "libcurl did not hand over the connection to ved");
        s->fd = fd;
        return 0;
}

/* The request, written by hand: libcurl 7.88 cannot ask for an Upgrade. */
static int send_request(struct exec_stream *s, const char *path, json_t *body, struct ve_error *err)
{
        _cleanup_free_ char *json = json_dumps(body, JSON_COMPACT);
        _cleanup_free_ char *req = NULL;
        int n;

        if (json == NULL)
                return ve_error_set(err, ENOMEM, "encoding the request");
        n = asprintf(&req,
                     "POST %s HTTP/1.1\r\n"
                     "Host: ved\r\n"
                     "User-Agent: vectl/" VED_VERSION "\r\n"
                     "Accept: application/json\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %zu\r\n"
                     "Connection: Upgrade\r\n"
                     "Upgrade: " EXEC_UPGRADE "\r\n"
                     "\r\n"
                     "%s",
                     path, strlen(json), json);
        if (n < 0) {
                req = NULL;
                return ve_error_set(err, ENOMEM, "out of memory");
        }
        return send_all(s, req, (size_t)n, err);
}

/* The value of header name in head (a string ending in "\r\n\r\n"), or NULL. */
static char *header_value(const char *head, const char *name)
{
        size_t nlen = strlen(name);
        const char *l, *v, *e;

        for (l = strstr(head, "\r\n"); l != NULL; l = strstr(l, "\r\n")) {
                l += 2;
                if (strncasecmp(l, name, nlen) != 0 || l[nlen] != ':')
                        continue;
                v = l + nlen + 1;
                v += strspn(v, " \t");
                e = strstr(v, "\r\n");
                while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                        e--;
                return strndup(v, (size_t)(e - v));
        }
        return NULL;
}

/* Reads until the end of the answer's head; *head_len is its size. */
static int read_head(struct exec_stream *s, size_t *head_len, struct ve_error *err)
{
        bool eof = false;
        char *end;
        int ret;

        for (;;) {
                end = s->len ? memmem(s->buf, s->len, "\r\n\r\n", 4) : NULL;
                if (end != NULL) {
                        *head_len = (size_t)(end - s->buf) + 4;
                        return 0;
                }
                if (eof)
                        return ve_error_set(err, EIO,
                                            "ved closed the connection without an "
                                            "answer");
                if (s->len > HEAD_MAX)
                        return ve_error_set(err, EPROTO, "ved's answer has a head over %u KiB",
                                            HEAD_MAX >> 10);
                ret = read_more(s, &eof, err);
                if (ret < 0)
                        return ret;
        }
}

/* An answer other than 101: its body (Content-Length bytes) holds the message. */
static int error_answer(struct exec_stream *s, long status, const char *head, size_t head_len,
                        struct ve_error *err)
{
        _cleanup_free_ char *cl = header_value(head, "Content-Length");
        size_t want = cl ? strtoul(cl, NULL, 10) : ERROR_BODY_MAX;
        bool eof = false;
        int ret;

        if (status < 400)
                return ve_error_set(err, EPROTO,
                                    "ved answered HTTP %ld instead of switching to " EXEC_UPGRADE,
                                    status);
        if (want > ERROR_BODY_MAX)
                want = ERROR_BODY_MAX;
        while (s->len - head_len < want && !eof) {
                ret = read_more(s, &eof, err);
                if (ret < 0)
                        return ret;
        }
        if (s->len - head_len < want)
                want = s->len - head_len;
        return http_error_answer(status, s->buf + head_len, want, err);
}

static int read_answer(struct exec_stream *s, struct ve_error *err)
{
        _cleanup_free_ char *head = NULL, *upgrade = NULL;
        size_t head_len = 0;
        long status;
        int ret;

        ret = read_head(s, &head_len, err);
        if (ret < 0)
                return ret;
        head = strndup(s->buf, head_len);
        if (head == NULL)
                return ve_error_set(err, ENOMEM, "out of memory");
        if (strncmp(head, "HTTP/1.", 7) != 0 || head[8] != ' ')
                return ve_error_set(err, EPROTO, "ved's answer is not HTTP: %.40s", head);
        status = strtol(head + 9, NULL, 10);
        if (status != 101)
                return error_answer(s, status, head, head_len, err);
        upgrade = header_value(head, "Upgrade");
        if (upgrade == NULL || strcasecmp(upgrade, EXEC_UPGRADE) != 0)
                return ve_error_set(err, EPROTO, "ved switched to '%s', not " EXEC_UPGRADE,
                                    upgrade ? upgrade : "");
        s->pos = head_len; /* what follows is the first frames */
        return 0;
}

int exec_stream_open(const struct cli *cli, const char *path, json_t *body,
                     struct exec_stream **out, struct ve_error *err)
{
        _cleanup_exec_stream_ struct exec_stream *s = calloc(1, sizeof(*s));
        int ret;

        if (s == NULL)
                return ve_error_set(err, ENOMEM, "out of memory");
        s->fd = -EBADF;
        s->curl = curl_easy_init();
        if (s->curl == NULL)
                return ve_error_set(err, ENOMEM, "cannot set up an HTTP request");
        ret = connect_daemon(cli, s, path, err);
        if (ret == 0)
                ret = send_request(s, path, body, err);
        if (ret == 0)
                ret = read_answer(s, err);
        if (ret < 0)
                return ret;
        *out = steal_ptr(&s);
        return 0;
}
