#include "present.h"

#include <stdio.h>

#include "daemon/params.h"
#include "daemon/ved.h"
#include "errors.h"

json_t *api_present_ve(json_t *record)
{
        static const char *const fixed[] = { "ctid", "state", "version", "created_at",
                                             "updated_at" };
        json_t *out = json_object();

        for (unsigned i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
                json_object_set(out, fixed[i], json_object_get(record, fixed[i]));
        for (const struct ved_param *p = ved_params; p->key; p++) {
                json_t *v = json_object_get(record, p->key);

                json_object_set(out, p->key, v ? v : json_null());
        }
        json_object_set_new(out, "idmap", api_present_idmap(record));
        json_decref(record);
        return out;
}

json_t *api_present_idmap(json_t *record)
{
        json_t *base = json_object_get(record, "idmap_base");

        if (!json_is_integer(base))
                return json_null();
        return json_pack("{s:O, s:O, s:I}", "uid_base", base, "gid_base", base, "count",
                         (json_int_t)VED_IDMAP_COUNT);
}

json_t *api_present_op(json_t *op)
{
        json_t *e = json_object_get(op, "error");

        /* The request's parameters are the daemon's own record (paths included). */
        json_object_del(op, "params");

        if (json_is_object(e)) {
                int code = (int)json_integer_value(json_object_get(e, "code"));

                json_object_set_new(e, "code", json_integer(api_status_for_code(code)));
        }
        return op;
}

const char *api_ve_etag(json_t *record, char *buf, size_t len)
{
        snprintf(buf, len, "\"%lld\"",
                 (long long)json_integer_value(json_object_get(record, "version")));
        return buf;
}
