/* Guest configuration from the daemon's side: what a VE record and a request's
 * write-only secrets turn into for ve/guest.h, and applying a PATCH to a VE's
 * files (live on a running VE, where vzctl does it live).
 *
 * The secrets (userpasswd, ssh_key) are never stored: not in the VE's record, not
 * in an operation's parameters, not in events or logs. A password is hashed with
 * crypt(3) as soon as the request is read, and the plain text is wiped. */
#ifndef VED_GUEST_CONFIG_H
#define VED_GUEST_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "ve/error.h"
#include "ve/guest.h"
#include "ved.h"

struct ved_secrets {
        char *user;     /* userpasswd's user, or NULL */
        char *pwhash;   /* its password hashed */
        char *ssh_keys; /* root's authorized_keys lines, or NULL */
};

/* The body's "userpasswd" and "ssh_key", checked and (the password) hashed.
 * VE_EINVAL_INPUT on bad ones. Clear s with ved_secrets_clear() either way. */
int ved_secrets_from_body(json_t *body, struct ved_secrets *s, struct ve_error *err);
void ved_secrets_clear(struct ved_secrets *s);
bool ved_secrets_any(const struct ved_secrets *s);
/* Move src's secrets into dst (for an operation's data). */
void ved_secrets_move(struct ved_secrets *dst, struct ved_secrets *src);

/* The lists a struct ve_guest_config points to, owned. */
struct ved_guest_lists {
        char **nameservers, **searchdomains, **addrs;
        size_t n_nameservers, n_searchdomains, n_addrs;
        char family[16];
        char hostname[256];
        char ifname[16]; /* the VE's interface ("eth0" when routed) */
        bool bridged;
};

/* Everything a VE record says about its guest (hostname, DNS, network, family
 * from its ostemplate), into l and c (c points into l). */
void ved_guest_lists_fill(struct ved_guest_lists *l, json_t *ve);
void ved_guest_lists_free(struct ved_guest_lists *l);
void ved_guest_config_all(const struct ved_guest_lists *l, const struct ved_secrets *s,
                          struct ve_guest_config *c);

/* Apply c to a stopped VE whose image is mounted at private_area: into the image,
 * or for a layered VE (layer.h) through an overlay of the raw layers (template's
 * layer in templates_dir, mounted if need be, and the image) mounted on root for
 * the while. Nothing runs in the VE: one syncfs makes the files durable
 * (sync_once). */
int ved_guest_apply_stopped(const char *templates_dir, const char *ostemplate, bool layered,
                            const char *private_area, const char *root,
                            const struct ve_guest_config *c, struct ve_error *err);

/* A PATCH of VE ctid: changes (normalised parameters) and secrets, applied to its
 * files. Running: written into its mounted private area at once, and a new
 * hostname set in its UTS namespace too. Stopped: secrets are written into its
 * image (mounted for the moment); the rest is written at its next start. Loop
 * thread, inside the PATCH's transaction: a failure leaves the record unchanged. */
int ved_guest_patch(struct ved *v, uint32_t ctid, json_t *ve, json_t *changes,
                    const struct ved_secrets *s, struct ve_error *err);

#endif
