/* bench_api: ved's VE lifecycle as a hosting panel drives it, through the REST API
 * on one kept connection (no process started per request), timed inside the
 * client. tests/bench/bench_runtime.sh runs it next to vectl's and LXC's figures.
 *
 *   bench_api SOCKET OUTDIR CTID0 N [TEMPLATE [LAYOUT]]
 *
 * VEs CTID0+1 .. CTID0+N are created from TEMPLATE (default busybox), started,
 * exec'd into, stopped and destroyed, each step for every VE before the next:
 *   create   POST /v1/ves, then GET its operation with ?wait until it is done
 *   start    POST /v1/ves/ID/state start, the operation waited for, then POST
 *            /v1/ves/ID/exec ["true"] until it answers exit_code 0
 *   exec     POST /v1/ves/ID/exec ["true"], plain mode
 *   stop     POST state stop and the wait (init is asked: SIGPWR for busybox)
 *   destroy  DELETE /v1/ves/ID and the wait
 * Each sample, in microseconds, is appended to OUTDIR/api.<step>; a start's parts
 * also to api.start-post (until the 202), api.start-wait (the operation's wait)
 * and api.start-exec (the execs until one answers 0). Exits 1 when a
 * step fails (the VEs it made are destroyed first, as far as ved lets it). */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct body {
        char *data;
        size_t len;
};

static CURL *curl;
static const char *outdir;

static size_t collect(char *p, size_t size, size_t n, void *userdata)
{
        struct body *b = userdata;
        char *d = realloc(b->data, b->len + size * n + 1);

        if (d == NULL)
                return 0;
        memcpy(d + b->len, p, size * n);
        b->data = d;
        b->len += size * n;
        d[b->len] = '\0';
        return size * n;
}

/* One request on the kept connection; the answer's JSON (NULL if none) and
 * HTTP status. */
static json_t *request(const char *method, const char *path, const char *json, long *status)
{
        struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
        struct body b = { 0 };
        char url[256];
        json_t *j = NULL;

        snprintf(url, sizeof(url), "http://localhost%s", path);
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json);
        if (json == NULL)
                curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
        *status = 0;
        if (curl_easy_perform(curl) == CURLE_OK) {
                curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
                if (b.len > 0)
                        j = json_loadb(b.data, b.len, 0, NULL);
        }
        curl_slist_free_all(h);
        free(b.data);
        return j;
}

static double now_us(void);
static double post_us, wait_us; /* the last operation's two requests */

/* A request that starts an operation (202), then the wait for its end. */
static int operation(const char *method, const char *path, const char *json)
{
        char wait[128];
        long status;
        double t0 = now_us();
        json_t *j = request(method, path, json, &status);
        json_int_t id = json_integer_value(json_object_get(json_object_get(j, "operation"), "id"));
        const char *end;
        int ok;

        post_us = now_us() - t0;

        json_decref(j);
        if (status != 202 || id <= 0) {
                fprintf(stderr, "bench_api: %s %s answered %ld\n", method, path, status);
                return -1;
        }
        snprintf(wait, sizeof(wait), "/v1/operations/%lld?wait=120", (long long)id);
        t0 = now_us();
        j = request("GET", wait, NULL, &status);
        wait_us = now_us() - t0;
        end = json_string_value(json_object_get(j, "status"));
        ok = status == 200 && end != NULL && strcmp(end, "succeeded") == 0;
        if (!ok)
                fprintf(stderr, "bench_api: operation %lld (%s %s) ended %s\n", (long long)id,
                        method, path, end ? end : "without an answer");
        json_decref(j);
        return ok ? 0 : -1;
}

static int exec_true(unsigned ctid)
{
        char path[64];
        long status;
        json_t *j;
        int ok;

        snprintf(path, sizeof(path), "/v1/ves/%u/exec", ctid);
        j = request("POST", path, "{\"command\":[\"true\"]}", &status);
        ok = status == 200 && json_is_integer(json_object_get(j, "exit_code")) &&
             json_integer_value(json_object_get(j, "exit_code")) == 0;
        json_decref(j);
        return ok ? 0 : -1;
}

static double now_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void sample_us(const char *step, double us)
{
        char path[4096];
        FILE *f;

        snprintf(path, sizeof(path), "%s/api.%s", outdir, step);
        f = fopen(path, "a");
        if (f != NULL) {
                fprintf(f, "%.0f\n", us);
                fclose(f);
        }
}

static void sample(const char *step, double t0)
{
        sample_us(step, now_us() - t0);
}

static int step(const char *name, unsigned ctid, const char *template, const char *layout)
{
        char path[64], body[256];
        double t0 = now_us(), deadline;
        int ret;

        snprintf(path, sizeof(path), "/v1/ves/%u/state", ctid);
        if (strcmp(name, "create") == 0) {
                snprintf(body, sizeof(body),
                         "{\"ctid\":%u,\"ostemplate\":\"%s\",\"layout\":\"%s\"}", ctid, template,
                         layout);
                ret = operation("POST", "/v1/ves", body);
        } else if (strcmp(name, "start") == 0) {
                double t1;

                ret = operation("POST", path, "{\"action\":\"start\"}");
                t1 = now_us();
                deadline = t1 + 30e6;
                while (ret == 0 && exec_true(ctid) < 0)
                        if (now_us() > deadline)
                                ret = -1;
                if (ret == 0) {
                        sample_us("start-post", post_us);
                        sample_us("start-wait", wait_us);
                        sample("start-exec", t1);
                }
        } else if (strcmp(name, "exec") == 0) {
                ret = exec_true(ctid);
        } else if (strcmp(name, "stop") == 0) {
                ret = operation("POST", path, "{\"action\":\"stop\"}");
        } else {
                snprintf(path, sizeof(path), "/v1/ves/%u", ctid);
                ret = operation("DELETE", path, NULL);
        }
        if (ret == 0)
                sample(name, t0);
        else
                fprintf(stderr, "bench_api: %s of VE %u failed\n", name, ctid);
        return ret;
}

int main(int argc, char **argv)
{
        static const char *const steps[] = { "create", "start", "exec", "stop", "destroy" };
        const char *template = argc > 5 ? argv[5] : "busybox";
        const char *layout = argc > 6 ? argv[6] : "image";
        unsigned ctid0, n, made = 0;
        int ret = 0;

        if (argc < 5) {
                fprintf(stderr, "usage: %s SOCKET OUTDIR CTID0 N [TEMPLATE [LAYOUT]]\n", argv[0]);
                return 2;
        }
        outdir = argv[2];
        ctid0 = (unsigned)strtoul(argv[3], NULL, 10);
        n = (unsigned)strtoul(argv[4], NULL, 10);
        curl_global_init(CURL_GLOBAL_NOTHING);
        curl = curl_easy_init();
        if (curl == NULL)
                return 1;
        curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, argv[1]);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        for (unsigned s = 0; s < 5 && ret == 0; s++) {
                for (unsigned i = 1; i <= n && ret == 0; i++) {
                        ret = step(steps[s], ctid0 + i, template, layout);
                        if (s == 0 && ret == 0)
                                made = i;
                }
        }
        /* A failed run leaves nothing: force the destroy of what it made. */
        if (ret < 0) {
                for (unsigned i = 1; i <= made; i++) {
                        char path[64];
                        long status;

                        snprintf(path, sizeof(path), "/v1/ves/%u?force=1", ctid0 + i);
                        json_decref(request("DELETE", path, NULL, &status));
                }
        }
        curl_easy_cleanup(curl);
        curl_global_cleanup();
        return ret < 0 ? 1 : 0;
}
