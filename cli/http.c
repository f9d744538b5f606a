#include "http.h"
#include "exitcode.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* An answer larger than this is not one ved sends; refuse rather than eat memory. */
#define HTTP_MAX_BODY (64u << 20)

struct transfer {
        const struct http_request *req;
        struct http_response *resp;
        CURL *curl;
        char *buf; /* collected body, or the unfinished line when streaming */
        size_t len, cap;
        struct ve_error cb_err; /* an error raised inside a callback */
};

static void cleanup_curlp(CURL **c)
{
        if (*c != NULL)
                curl_easy_cleanup(*c);
}

static void cleanup_slistp(struct curl_slist **l)
{
        curl_slist_free_all(*l);
}

static int buf_append(struct transfer *t, const char *data, size_t n)
{
        char *p;
        size_t cap;

        if (t->len + n + 1 > HTTP_MAX_BODY)
                return ve_error_set(&t->cb_err, EFBIG, "ved's answer is larger than %u MiB",
                                    HTTP_MAX_BODY >> 20);
        if (t->len + n + 1 > t->cap) {
                cap = t->cap ? t->cap : 4096;
                while (cap < t->len + n + 1)
                        cap *= 2;
                p = realloc(t->buf, cap);
                if (p == NULL)
                        return ve_error_set(&t->cb_err, ENOMEM, "out of memory");
                t->buf = p;
                t->cap = cap;
        }
        memcpy(t->buf + t->len, data, n);
        t->len += n;
        t->buf[t->len] = '\0';
        return 0;
}

static char *header_value(const char *line, size_t n, const char *name)
{
        size_t nlen = strlen(name);

        if (n <= nlen + 1 || strncasecmp(line, name, nlen) != 0 || line[nlen] != ':')
                return NULL;
        line += nlen + 1;
        n -= nlen + 1;
        while (n > 0 && (*line == ' ' || *line == '\t'))
                line++, n--;
        while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n' || line[n - 1] == ' '))
                n--;
        return strndup(line, n);
}

static void keep_header(char **slot, char *value)
{
        if (value == NULL)
                return;
        free(*slot);
        *slot = value;
}

static size_t header_cb(char *line, size_t size, size_t nmemb, void *data)
{
        struct transfer *t = data;
        size_t n = size * nmemb;

        /* A new status line ("HTTP/1.1 100 Continue", then the real one) starts over. */
        if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
                free(t->resp->etag);
                free(t->resp->location);
                t->resp->etag = t->resp->location = NULL;
                return n;
        }
        keep_header(&t->resp->etag, header_value(line, n, "ETag"));
        keep_header(&t->resp->location, header_value(line, n, "Location"));
        return n;
}

static int stream_lines(struct transfer *t, const char *data, size_t n)
{
        const struct http_request *req = t->req;
        const char *nl;
        size_t start = 0;
        int ret;

        ret = buf_append(t, data, n);
        if (ret < 0)
                return ret;
        while ((nl = memchr(t->buf + start, '\n', t->len - start)) != NULL) {
                size_t llen = (size_t)(nl - (t->buf + start)) + 1;

                ret = req->line_cb(t->buf + start, llen, req->line_data, &t->cb_err);
                if (ret < 0)
                        return ret;
                start += llen;
        }
        memmove(t->buf, t->buf + start, t->len - start);
        t->len -= start;
        return 0;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
        struct transfer *t = userdata;
        size_t n = size * nmemb;
        long status = 0;
        int ret;

        curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
        if (t->req->line_cb != NULL && status >= 200 && status < 300)
                ret = stream_lines(t, data, n);
        else
                ret = buf_append(t, data, n);
        return ret < 0 ? 0 : n;
}

static size_t read_cb(char *buf, size_t size, size_t nmemb, void *data)
{
        FILE *f = data;
        size_t n = fread(buf, size, nmemb, f);

        if (n == 0 && ferror(f))
                return CURL_READFUNC_ABORT;
        return n;
}

static struct curl_slist *request_headers(const struct http_request *req)
{
        struct curl_slist *h = NULL;
        char line[256];

        /* ved answers at once; waiting a second for "100 Continue" gains nothing. */
        h = curl_slist_append(h, "Expect:");
        h = curl_slist_append(h, "Accept: application/json");
        if (req->body != NULL)
                h = curl_slist_append(h, "Content-Type: application/json");
        else if (req->upload != NULL)
                h = curl_slist_append(h, "Content-Type: application/octet-stream");
        if (req->if_match != NULL) {
                snprintf(line, sizeof(line), "If-Match: %s", req->if_match);
                h = curl_slist_append(h, line);
        }
        return h;
}

static void set_body(CURL *curl, const struct http_request *req, const char *json)
{
        if (json != NULL) {
                curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json);
        } else if (req->upload != NULL) {
                curl_easy_setopt(curl, CURLOPT_POST, 1L);
                curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_cb);
                curl_easy_setopt(curl, CURLOPT_READDATA, req->upload);
                curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->upload_size);
        } else if (strcmp(req->method, "POST") == 0 || strcmp(req->method, "PATCH") == 0) {
                curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
        }
        if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "POST") != 0)
                curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
}

static void set_options(CURL *curl, const struct cli *cli, struct transfer *t,
                        struct curl_slist *headers, char *errbuf)
{
        char url[4096];

        snprintf(url, sizeof(url), "http://localhost%s", t->req->path);
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, cli->socket);
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(curl, CURLOPT_USERAGENT, "vectl/" VED_VERSION);
        curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, header_cb);
        curl_easy_setopt(curl, CURLOPT_HEADERDATA, t);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_cb);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, t);
}

int http_error_answer(long status, const char *body, size_t len, struct ve_error *err)
{
        _cleanup_json_ json_t *j = NULL;
        const char *msg = NULL;

        if (len > 0)
                j = json_loadb(body, len, 0, NULL);
        if (j != NULL)
                msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
        if (msg != NULL)
                return ve_error_set(err, cli_error_code(status, json_object_get(j, "error")), "%s",
                                    msg);
        while (len > 0 && (body[len - 1] == '\n' || body[len - 1] == '\r'))
                len--;
        if (j != NULL || len == 0)
                return ve_error_set(err, cli_http_error_code(status),
                                    "ved answered HTTP %ld without an error message", status);
        return ve_error_set(err, cli_http_error_code(status), "ved answered HTTP %ld: %.*s", status,
                            (int)(len < 200 ? len : 200), body);
}

static int error_answer(struct transfer *t, struct ve_error *err)
{
        return http_error_answer(t->resp->status, t->buf, t->len, err);
}

static int finish_stream(struct transfer *t, struct ve_error *err)
{
        int ret;

        if (t->len == 0)
                return 0;
        ret = t->req->line_cb(t->buf, t->len, t->req->line_data, err);
        t->len = 0;
        return ret < 0 ? ret : 0;
}

static int parse_answer(struct transfer *t, struct ve_error *err)
{
        json_error_t jerr;

        if (t->req->line_cb != NULL)
                return finish_stream(t, err);
        if (t->len == 0)
                return 0;
        t->resp->json = json_loadb(t->buf, t->len, 0, &jerr);
        if (t->resp->json == NULL)
                return ve_error_set(err, EPROTO, "ved sent an answer that is not JSON: %s",
                                    jerr.text);
        return 0;
}

/* True when a stream that got a 2xx answer ended as a stream may: the daemon
 * closed the connection, maybe in the middle of its chunked answer. */
static bool stream_ended(const struct transfer *t, CURLcode rc)
{
        if (t->req->line_cb == NULL)
                return false;
        return rc == CURLE_PARTIAL_FILE || rc == CURLE_RECV_ERROR;
}

static int transfer_failed(const struct cli *cli, struct transfer *t, CURLcode rc,
                           const char *errbuf, struct ve_error *err)
{
        long oserr = 0;

        if (t->cb_err.code != 0) {
                ve_error_move(err, &t->cb_err);
                return -err->code;
        }
        if (t->resp->status == 0) {
                curl_easy_getinfo(t->curl, CURLINFO_OS_ERRNO, &oserr);
                return ve_error_set(err, CLI_EUNREACHABLE, "cannot reach ved at %s: %s",
                                    cli->socket,
                                    oserr != 0 ? strerror((int)oserr)
                                               : (*errbuf ? errbuf : curl_easy_strerror(rc)));
        }
        return ve_error_set(err, EIO, "talking to ved at %s: %s", cli->socket,
                            *errbuf ? errbuf : curl_easy_strerror(rc));
}

static int perform(const struct cli *cli, struct transfer *t, struct ve_error *err)
{
        char errbuf[CURL_ERROR_SIZE] = "";
        _cleanup_free_ char *json = NULL;
        struct curl_slist *headers __attribute__((cleanup(cleanup_slistp))) = NULL;
        CURLcode rc;

        if (t->req->body != NULL) {
                json = json_dumps(t->req->body, JSON_COMPACT);
                if (json == NULL)
                        return ve_error_set(err, ENOMEM, "encoding the request");
        }
        headers = request_headers(t->req);
        set_options(t->curl, cli, t, headers, errbuf);
        set_body(t->curl, t->req, json);
        rc = curl_easy_perform(t->curl);
        curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &t->resp->status);
        if (rc != CURLE_OK && !(t->resp->status / 100 == 2 && stream_ended(t, rc)))
                return transfer_failed(cli, t, rc, errbuf, err);
        if (t->resp->status >= 400 || t->resp->status < 200)
                return error_answer(t, err);
        return parse_answer(t, err);
}

/* One handle for the run, lent to one request at a time: curl_easy_reset()
 * keeps its live connection, so a verb's request and the wait for its operation
 * go over one connection to ved. */
static CURL *kept;

static CURL *take_handle(void)
{
        CURL *curl = kept;

        kept = NULL;
        if (curl == NULL)
                return curl_easy_init();
        curl_easy_reset(curl);
        return curl;
}

static void give_back(CURL **curl)
{
        if (kept == NULL)
                kept = *curl;
        else
                cleanup_curlp(curl);
        *curl = NULL;
}

void http_cleanup(void)
{
        cleanup_curlp(&kept);
        kept = NULL;
}

int http_do(const struct cli *cli, const struct http_request *req, struct http_response *resp,
            struct ve_error *err)
{
        CURL *curl __attribute__((cleanup(give_back))) = take_handle();
        struct transfer t = { .req = req, .resp = resp, .curl = curl };
        int ret;

        memset(resp, 0, sizeof(*resp));
        if (curl == NULL)
                return ve_error_set(err, ENOMEM, "cannot set up an HTTP request");
        ret = perform(cli, &t, err);
        ve_error_clear(&t.cb_err);
        free(t.buf);
        return ret;
}

int http_json(const struct cli *cli, const char *method, const char *path, json_t *body,
              struct http_response *resp, struct ve_error *err)
{
        struct http_request req = { .method = method, .path = path, .body = body };

        return http_do(cli, &req, resp, err);
}

void http_response_free(struct http_response *resp)
{
        json_decref(resp->json);
        free(resp->etag);
        free(resp->location);
        memset(resp, 0, sizeof(*resp));
}

char *http_escape(const char *s)
{
        char *e = curl_easy_escape(NULL, s, 0);
        char *copy;

        if (e == NULL)
                return NULL;
        copy = strdup(e);
        curl_free(e);
        return copy;
}
