/* The VE parameters: one table that the API's validation, the store's columns and
 * the JSON form of a VE all follow, so a new parameter is one line here and one
 * column in a schema migration. */
#ifndef VED_PARAMS_H
#define VED_PARAMS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "ve/error.h"

enum ved_param_kind {
        VED_P_SIZE,    /* bytes: integer, or a string with K/M/G/T */
        VED_P_COUNT,   /* non-negative integer up to max */
        VED_P_PERCENT, /* integer, or "50%" */
        VED_P_BOOL,
        VED_P_HOSTNAME,
        VED_P_NAME,     /* the VE's unique name */
        VED_P_TEMPLATE, /* a template name */
        VED_P_PATH,     /* absolute path inside the VE */
        VED_P_TEXT,     /* free text, printable, bounded */
        VED_P_IPLIST,   /* array of IP addresses */
        VED_P_DOMAINS,  /* array of search domains */
        VED_P_NETIF,    /* a bridged interface: object, or vzctl's "ifname[,mac,...]" */
        VED_P_IFNAME,   /* a host interface name */
        VED_P_LAYOUT,   /* "image" or "layered" (ve_ops.c) */
};

enum {
        VED_PF_CREATE_ONLY = 1 << 0, /* given at create, not changed with PATCH */
        VED_PF_REQUIRED = 1 << 1,    /* required at create */
        VED_PF_NOT_NULL = 1 << 2,    /* has a default; PATCH to null resets to it */
};

struct ved_param {
        const char *key;
        enum ved_param_kind kind;
        uint64_t min, max;
        unsigned flags;
        const char *help;
};

/* The table, terminated by a NULL key. "ctid" and "state" are not parameters. */
extern const struct ved_param ved_params[];

const struct ved_param *ved_param_find(const char *key);

/* Validate one value and return it normalised (sizes as integers, IPs canonical,
 * lists deduplicated); NULL with err set on bad input. A JSON null is returned as
 * json_null() for parameters that may be unset. */
json_t *ved_param_normalize(const struct ved_param *p, json_t *value, struct ve_error *err);

/* Whether two entries of an ip list ("10.0.0.1", "10.0.0.1/24") name the same
 * address: a VE holds each address once, whatever its prefix. */
bool ved_ip_same_address(const char *a, const char *b);

/* Default for parameters with VED_PF_NOT_NULL (diskspace 2G, stop_timeout 120,
 * init /sbin/init, ip/nameserver/searchdomain []); json_null() otherwise. */
json_t *ved_param_default(const struct ved_param *p);

#endif
