/* vectl events: follow GET /v1/events, one line per event, until the daemon
 * closes the stream or the user presses Ctrl-C. */
#include "cli.h"
#include "exitcode.h"
#include "http.h"
#include "output.h"
#include "ve/parse.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum { OPT_SINCE = 256, OPT_NO_FOLLOW };

/* Ctrl-C ends vectl events successfully. Each event is flushed as it is
 * printed, so there is nothing left to write and exiting here loses nothing;
 * waiting for curl to notice a flag would take up to a second or two. */
static void on_sigint(int sig)
{
        (void)sig;
        _exit(0);
}

static int usage(void)
{
        puts("Usage: vectl events [OPTIONS]\n"
             "\n"
             "Print the daemon's events as they happen, one per line:\n"
             "  TIME TYPE CTID MESSAGE     (CTID is '-' for events about no VE)\n"
             "until the daemon closes the stream or Ctrl-C (exit code 0).\n"
             "\n"
             "Options:\n"
             "  --since ID               first print the past events after event ID\n"
             "  --no-follow              print the recent past events and exit\n"
             "  -j, --json               print each event as the daemon's JSON line\n"
             "  -h, --help               show this help");
        return 0;
}

static int print_event(const char *line, size_t len, void *data, struct ve_error *err)
{
        const bool *json = data;
        _cleanup_json_ json_t *ev = NULL;
        _cleanup_free_ char *ctid = NULL;
        const char *msg;

        (void)err;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                len--;
        if (len == 0)
                return 0; /* keep-alive */
        ev = *json ? NULL : json_loadb(line, len, 0, NULL);
        if (ev == NULL) {
                printf("%.*s\n", (int)len, line);
        } else {
                ctid = cli_json_text(json_object_get(ev, "ctid"));
                msg = json_string_value(json_object_get(ev, "message"));
                if (msg == NULL || *msg == '\0')
                        msg = json_string_value(json_object_get(ev, "state"));
                printf("%s %s %s%s%s\n", json_string_value(json_object_get(ev, "time")) ?: "-",
                       json_string_value(json_object_get(ev, "type")) ?: "-", ctid ? ctid : "-",
                       msg ? " " : "", msg ? msg : "");
        }
        fflush(stdout);
        return 0;
}

static int parse_args(int argc, char **argv, const char **since, bool *follow, bool *json,
                      bool *help, struct ve_error *err)
{
        static const struct option opts[] = {
                { "since", required_argument, NULL, OPT_SINCE },
                { "no-follow", no_argument, NULL, OPT_NO_FOLLOW },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        int c;

        cli_getopt_reset();
        while ((c = cli_getopt(argc, argv, "jh", opts, err)) != -1) {
                if (c == CLI_OPT_ERROR)
                        return -EINVAL;
                else if (c == OPT_SINCE)
                        *since = optarg;
                else if (c == OPT_NO_FOLLOW)
                        *follow = false;
                else if (c == 'j')
                        *json = true;
                else if (c == 'h')
                        return *help = true, 0;
        }
        return cli_check_operands(argc, argv, 0, 0, NULL, err);
}

static int events_path(const char *since, bool follow, char *path, size_t len, struct ve_error *err)
{
        uint64_t id = 0;
        int ret;

        if (since != NULL) {
                ret = ve_parse_uint(since, INT64_MAX, &id, "--since", err);
                if (ret < 0)
                        return ret;
                snprintf(path, len, "/v1/events?since=%llu%s", (unsigned long long)id,
                         follow ? "" : "&follow=0");
        } else {
                snprintf(path, len, "/v1/events%s", follow ? "" : "?follow=0");
        }
        return 0;
}

int cmd_events(const struct cli *cli, int argc, char **argv, struct ve_error *err)
{
        _cleanup_response_ struct http_response resp = { 0 };
        struct sigaction sa = { .sa_handler = on_sigint };
        bool follow = true, json = false, help = false;
        struct http_request req = { .method = "GET", .line_cb = print_event };
        const char *since = NULL;
        char path[128];
        int ret;

        ret = parse_args(argc, argv, &since, &follow, &json, &help, err);
        if (ret < 0 || help)
                return help ? usage() : ret;
        ret = events_path(since, follow, path, sizeof(path), err);
        if (ret < 0)
                return ret;
        sigaction(SIGINT, &sa, NULL);
        req.path = path;
        req.line_data = &json;
        return http_do(cli, &req, &resp, err);
}
