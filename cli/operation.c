#include "operation.h"
#include "exitcode.h"
#include "http.h"
#include "output.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Seconds the daemon may hold each wait request. */
#define OP_WAIT_SECONDS 30
/* How long a wait outlasts the daemon's absence, and how often it asks. */
#define RECONNECT_SECONDS 60
#define RETRY_MS          200

static const char *op_status(const json_t *op)
{
        const char *s = json_string_value(json_object_get(op, "status"));

        return s ? s : "";
}

bool cli_op_finished(const json_t *op)
{
        const char *s = op_status(op);

        return strcmp(s, "succeeded") == 0 || strcmp(s, "failed") == 0;
}

int cli_op_get(const struct cli *cli, long long id, int wait, json_t **op, struct ve_error *err)
{
        _cleanup_response_ struct http_response resp = { 0 };
        char path[128];
        int ret;

        if (wait >= 0)
                snprintf(path, sizeof(path), "/v1/operations/%lld?wait=%d", id, wait);
        else
                snprintf(path, sizeof(path), "/v1/operations/%lld", id);
        ret = http_json(cli, "GET", path, NULL, &resp, err);
        if (ret < 0)
                return ret;
        if (!json_is_object(resp.json))
                return ve_error_set(err, EPROTO, "ved's answer for operation %lld is not an object",
                                    id);
        *op = json_incref(resp.json);
        return 0;
}

static int op_failed(const json_t *op, struct ve_error *err)
{
        const json_t *e = json_object_get(op, "error");
        const char *msg = json_string_value(json_object_get(e, "message"));
        const char *resolution = json_string_value(json_object_get(op, "resolution"));

        if (resolution != NULL)
                return ve_error_set(err, CLI_EOPFAILED, "operation %lld failed: %s (%s)",
                                    cli_json_id(op), msg ? msg : "no reason given", resolution);
        return ve_error_set(err, CLI_EOPFAILED, "%s",
                            msg ? msg : "the operation failed without a reason");
}

/* The daemon went away while an operation was waited for: killed, or restarted.
 * A restarted ved resolves the operation (or runs it again, under its id), so
 * vectl waits for it to come back, asking every RETRY_MS for up to
 * RECONNECT_SECONDS; *since is when it went (0: it was there). */
static bool try_again(int ret, long long id, struct timespec *since)
{
        struct timespec now, pause = { 0, RETRY_MS * 1000000L };

        if (ret != -CLI_EUNREACHABLE)
                return false;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (since->tv_sec == 0) {
                *since = now;
                fprintf(stderr,
                        "\nvectl: lost ved while waiting for operation %lld; waiting up to "
                        "%d s for it to come back\n",
                        id, RECONNECT_SECONDS);
        } else if (now.tv_sec - since->tv_sec >= RECONNECT_SECONDS) {
                return false;
        }
        nanosleep(&pause, NULL);
        return true;
}

static int wait_finished(const struct cli *cli, json_t **op, struct ve_error *err)
{
        long long id = cli_json_id(*op);
        struct timespec gone = { 0, 0 };
        json_t *next;
        int ret;

        while (!cli_op_finished(*op)) {
                ret = cli_op_get(cli, id, OP_WAIT_SECONDS, &next, err);
                if (ret < 0 && try_again(ret, id, &gone)) {
                        ve_error_clear(err);
                        continue;
                }
                if (ret < 0)
                        return ve_error_prefix(err, "waiting for operation %lld", id);
                gone.tv_sec = 0;
                json_decref(*op);
                *op = next;
        }
        return 0;
}

static int report(const json_t *op, const struct op_follow *f, struct ve_error *err)
{
        bool ok = strcmp(op_status(op), "succeeded") == 0;

        if (f->json)
                cli_print_json(op);
        else
                printf("%s\n", ok ? "done" : "failed");
        fflush(stdout);
        return ok ? 0 : op_failed(op, err);
}

int cli_op_follow(const struct cli *cli, const json_t *answer, const struct op_follow *f,
                  struct ve_error *err)
{
        const json_t *start = json_object_get(answer, "operation");
        _cleanup_json_ json_t *op = NULL;
        int ret;

        if (start == NULL)
                start = answer;
        if (cli_json_id(start) < 0)
                return ve_error_set(err, EPROTO, "ved's answer holds no operation");
        if (f->no_wait) {
                if (f->json)
                        cli_print_json(answer);
                else
                        printf("%lld\n", cli_json_id(start));
                return 0;
        }
        if (!f->json && !f->shown) {
                printf("%s ... ", f->label);
                fflush(stdout);
        }
        op = json_deep_copy(start);
        if (op == NULL)
                return ve_error_set(err, ENOMEM, "out of memory");
        ret = wait_finished(cli, &op, err);
        if (ret < 0) {
                if (!f->json)
                        printf("\n");
                return ret;
        }
        return report(op, f, err);
}
