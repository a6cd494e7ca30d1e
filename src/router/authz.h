/* authz.h - authorization policies of one listener, compiled.
 *
 * The same attribute conditions as routes, evaluated for every message
 * before an upstream is contacted: any matching DENY policy refuses the
 * message; otherwise, when the listener has ALLOW policies, one of them must
 * match. Protocol-generic: the caller turns a refusal into its protocol's
 * own words (HTTP 403, a closed TCP connection, ...). Immutable after build
 * and shared read-only by every worker thread. */
#ifndef STRAND_AUTHZ_H
#define STRAND_AUTHZ_H

#include <stddef.h>

#include "config/config.h"
#include "router/attr.h"

struct authz;

/* Compiles the policies of cfg that target listener_name. Borrows cfg (it
 * must outlive the result). Returns NULL with err empty when no policy
 * targets the listener (nothing to check), NULL with err set on error. */
struct authz *authz_build(const struct config *cfg, const char *listener_name, char *err,
                          size_t errlen);
void authz_free(struct authz *a);

/* NULL when src may proceed; else the policy that refused it (points into
 * the config), with *why set to a short static reason. a may be NULL. */
const struct cfg_authz *authz_check(const struct authz *a, const struct attr_src *src,
                                    const char **why);

#endif
