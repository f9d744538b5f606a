/* The API's JSON shape of stored records. */
#ifndef API_PRESENT_H
#define API_PRESENT_H

#include <jansson.h>

/* A VE record as the API shows it (internal columns dropped). Takes a reference. */
json_t *api_present_ve(json_t *record);
/* {"uid_base", "gid_base", "count"} of the VE's user namespace, or null. */
json_t *api_present_idmap(json_t *record);
/* An operation as the API shows it: error codes become HTTP statuses. */
json_t *api_present_op(json_t *op);
/* ETag of a VE record: "\"<version>\"" into buf. */
const char *api_ve_etag(json_t *record, char *buf, size_t len);

#endif
