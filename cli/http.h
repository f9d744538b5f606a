/* vectl's HTTP client: one request to the daemon over its unix socket (libcurl).
 *
 * A request sends a JSON body, a raw file, or nothing, and either collects the
 * answer (parsed as JSON) or, in streaming mode, hands each line of a successful
 * answer to a callback as it arrives (events, exec). An error answer (>= 400) is
 * always collected, and its {"error": {"message"}} becomes err with code
 * CLI_EHTTP + status; no answer at all is CLI_EUNREACHABLE. */
#ifndef CLI_HTTP_H
#define CLI_HTTP_H

#include <stdio.h>
#include <sys/types.h>

#include "cli.h"

/* Called with one line (its '\n' included, except maybe for the last) of a
 * streamed answer. A negative return stops the transfer with that error. */
typedef int (*http_line_cb)(const char *line, size_t len, void *data, struct ve_error *err);

struct http_request {
        const char *method; /* "GET", "POST", "PATCH", "DELETE" */
        const char *path;   /* "/v1/ves?state=running", already escaped */
        json_t *body;       /* sent as application/json when not NULL */
        FILE *upload;       /* else a raw body, application/octet-stream */
        off_t upload_size;  /* its size in bytes */
        const char *if_match;

        http_line_cb line_cb; /* streaming mode when not NULL */
        void *line_data;
};

struct http_response {
        long status;
        json_t *json; /* the parsed answer (collect mode), or NULL when empty */
        char *etag;   /* headers, or NULL */
        char *location;
};

/* Performs req; resp is zeroed first and must be freed with http_response_free()
 * (also after a failure). Returns 0 for a 2xx answer. */
int http_do(const struct cli *cli, const struct http_request *req, struct http_response *resp,
            struct ve_error *err);

/* Shorthand for a request with an optional JSON body in collect mode. */
int http_json(const struct cli *cli, const char *method, const char *path, json_t *body,
              struct http_response *resp, struct ve_error *err);

/* An error answer (status >= 400, or any status vectl did not expect) and its
 * body as err: the daemon's {"error": {"message"}} when there is one, with
 * code CLI_EHTTP + status. Returns -err->code. */
int http_error_answer(long status, const char *body, size_t len, struct ve_error *err);

void http_response_free(struct http_response *resp);

/* Closes the connection http_do() keeps to ved; before curl_global_cleanup(). */
void http_cleanup(void);

static inline void http_response_freep(struct http_response *resp)
{
        http_response_free(resp);
}
#define _cleanup_response_ __attribute__((cleanup(http_response_freep)))

/* curl_easy_escape() for one query value; returns a malloc'd string or NULL. */
char *http_escape(const char *s);

#endif
