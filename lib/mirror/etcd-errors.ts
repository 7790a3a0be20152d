/**
 * What etcd or gRPC threw, as one PmuError saying what to do: a refused login is EAUTH, a
 * denied key EACCESS, anything else (etcd away, a TLS handshake refused) EETCD, which callers
 * may retry. Messages name the user, never the password (etcd3's errors hold none).
 */
import { EtcdAuthenticationFailedError, EtcdPermissionDeniedError } from 'etcd3';
import { PmuError } from '../unit/errors';

export interface CallContext {
  /** The etcd URL (it never holds a user part: etcd-login.ts refuses that). */
  url: string;
  /** The etcd call, in words: 'read set', 'grant lease'. */
  what: string;
  /** The set's key prefix in etcd. */
  prefix: string;
  /** etcd's user pmu logs in as, if any. */
  user?: string;
  /** True if the connection is TLS. */
  tls: boolean;
}

/**
 * etcd sends these errors as text only (gRPC status and a fixed message, which etcd's own Go
 * client also matches on: rpctypes). etcd3 types some of them; these are the ones it does not.
 */
const USER_EMPTY = 'etcdserver: user name is empty';
const AUTH_NOT_ENABLED = 'etcdserver: authentication is not enabled';

const LOGIN_FLAGS = '--etcd-user NAME and --etcd-password-file FILE (or PMU_ETCD_USER and PMU_ETCD_PASSWORD; in the library, the etcdAuth option)';

export function etcdError(error: unknown, context: CallContext): PmuError {
  if (error instanceof PmuError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const { url, what, prefix, user } = context;
  if (error instanceof EtcdAuthenticationFailedError) {
    return new PmuError('EAUTH', `etcd at ${url} refused the login of user '${user}' (wrong user name or password): check ${LOGIN_FLAGS}; nothing was done`, { cause: error });
  }
  if (message.includes(USER_EMPTY)) {
    return new PmuError('EAUTH', `etcd at ${url} has authentication on and pmu gave it no user (${what}): log in with ${LOGIN_FLAGS}, or with a client certificate whose common name is an etcd user; nothing was done`, { cause: error });
  }
  if (message.includes(AUTH_NOT_ENABLED)) {
    return new PmuError('EAUTH', `etcd at ${url} has authentication off, yet pmu was given user '${user}' to log in with: enable authentication in etcd (docs/MIRROR.md, "etcd with authentication and TLS"), or drop the etcd user; nothing was done`, { cause: error });
  }
  if (error instanceof EtcdPermissionDeniedError) {
    const who = user ? `user '${user}'` : 'the etcd user of the client certificate (its common name)';
    return new PmuError('EACCESS', `etcd at ${url} denied ${who} access (${what}): grant it a role with readwrite on the key prefix ${prefix}/ (docs/MIRROR.md, "etcd with authentication and TLS"); nothing was done`, { cause: error });
  }
  const reach = context.tls
    ? "check that etcd runs and is reachable, that --etcd-ca is the CA that signed etcd's certificate (for its host name or IP), and, if etcd asks for client certificates, that --etcd-cert/--etcd-key are one it trusts and not expired"
    : 'check that etcd runs and is reachable';
  // gRPC's text can span lines (an OpenSSL error) and end in an empty "Resolution note": one line here.
  const detail = message.replace(/\s+/g, ' ').replace(/[. ]*Resolution note: *$/, '').trim();
  return new PmuError('EETCD', `etcd at ${url} did not answer (${what}: ${detail}); nothing was acknowledged: ${reach}, then retry`, { cause: error });
}
