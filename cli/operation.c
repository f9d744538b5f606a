#include "operation.h"
#include "exitcode.h"
#include "http.h"
#include "output.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Seconds the daemon may hold each wait request. */
#define OP_WAIT_SECONDS 30

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

static int wait_finished(const struct cli *cli, json_t **op, struct ve_error *err)
{
        long long id = cli_json_id(*op);
        json_t *next;
        int ret;

        while (!cli_op_finished(*op)) {
                ret = cli_op_get(cli, id, OP_WAIT_SECONDS, &next, err);
                if (ret < 0)
                        return ve_error_prefix(err, "waiting for operation %lld", id);
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
        if (!f->json) {
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
