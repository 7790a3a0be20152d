/**
 * How pmu logs in to etcd: etcd's own user and password, a client certificate, and the CA that
 * signed etcd's certificate, checked before any call is made. A URL with `user:password@` in it
 * is refused: the URL is printed in messages and logs, and on a command line `ps` shows it to
 * everyone. A password goes over plain http:// only to loopback, where no one else sees it.
 * No message here ever holds a password; a URL is shown with any user part masked.
 */
import { isIP } from 'node:net';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { IOptions } from 'etcd3';
import { isLoopback } from '../obs/metrics-endpoint';
import { PmuError } from '../unit/errors';

/** etcd's user and password (etcd3's `auth`). */
export interface EtcdAuth {
  username: string;
  password: string;
}

/** PEM buffers for TLS to etcd: the CA that signed etcd's certificate (default: the system's), and a client certificate and key. */
export interface EtcdTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

export interface EtcdLogin {
  auth?: EtcdAuth;
  tls?: EtcdTls;
}

const LOGIN_ADVICE = 'give the user with --etcd-user NAME and the password with --etcd-password-file FILE (or PMU_ETCD_USER and PMU_ETCD_PASSWORD; in the library, the etcdAuth option)';

/**
 * `http://root:pw@host:2379` -> `http://***@host:2379`. Everything up to the last '@' goes: a
 * password may hold '/', '#' or ',', which would end a URL's user part or split the host list.
 */
export function maskUrl(text: string): string {
  return text.replace(/^([a-z][a-z0-9+.-]*:\/\/)?.*@/i, '$1***@');
}

/**
 * The hosts of `etcdUrl` (comma-separated) once it and `login` are found fit to use; EINVAL
 * with what to change otherwise.
 */
export function checkEtcdLogin(etcdUrl: unknown, login: EtcdLogin = {}): string[] {
  if (typeof etcdUrl !== 'string') throw new PmuError('EINVAL', `etcd URL must look like http://127.0.0.1:2379, got ${typeof etcdUrl}`);
  // No etcd URL holds an '@' but one with a user part: refused before it is split or parsed.
  if (etcdUrl.includes('@')) {
    throw new PmuError('EINVAL', `the etcd URL ${maskUrl(etcdUrl)} has a user or password in it, which pmu never takes from a URL (it shows in ps and in messages): drop it from the URL and ${LOGIN_ADVICE}`);
  }
  const hosts = etcdUrl.split(',');
  const parsed = hosts.map((host) => {
    let url: URL | undefined;
    try {
      url = /^https?:\/\//.test(host) ? new URL(host) : undefined;
    } catch {
      url = undefined;
    }
    if (!url) throw new PmuError('EINVAL', `etcd URL must look like http://127.0.0.1:2379 or https://etcd.example:2379, got ${JSON.stringify(host)}`);
    return url;
  });
  const secure = parsed.filter((url) => url.protocol === 'https:').length;
  if (secure !== 0 && secure !== parsed.length) throw new PmuError('EINVAL', `etcd URL ${etcdUrl} mixes http:// and https:// hosts: use https:// for all of them`);
  // gRPC sets the TLS server name to the URL's host; from Node 26 on, Node refuses an IP address
  // there (RFC 6066), and the connection fails with no word of why.
  const ipHost = secure > 0 && tlsRefusesIpServerName() ? parsed.find((url) => isIP(url.hostname.replace(/^\[|\]$/g, '')) !== 0) : undefined;
  if (ipHost) {
    throw new PmuError('EINVAL', `etcd URL ${ipHost.protocol}//${ipHost.host} names an IP address, which Node ${process.versions.node} refuses as a TLS server name (RFC 6066; gRPC sends the host as one): use a DNS name that etcd's certificate holds, e.g. https://localhost:${ipHost.port || 2379} or https://etcd.example:${ipHost.port || 2379}`);
  }
  const { auth, tls } = login;
  if (auth) {
    if (typeof auth.username !== 'string' || auth.username === '') throw new PmuError('EINVAL', `the etcd user name is empty: ${LOGIN_ADVICE}`);
    if (typeof auth.password !== 'string' || auth.password === '') throw new PmuError('EINVAL', `the password of etcd user '${auth.username}' is empty: put it in the password file (or PMU_ETCD_PASSWORD)`);
    const exposed = secure === 0 ? parsed.find((url) => !isLoopback(url.hostname.replace(/^\[|\]$/g, ''))) : undefined;
    if (exposed) {
      throw new PmuError('EINVAL', `the password of etcd user '${auth.username}' would cross the network to ${exposed.host} in clear text over http://: serve etcd over TLS and use an https:// URL (with --etcd-ca FILE if a private CA signed etcd's certificate)`);
    }
  }
  if (tls) {
    if (secure === 0 && (tls.ca || tls.cert || tls.key)) throw new PmuError('EINVAL', `--etcd-ca, --etcd-cert and --etcd-key are for TLS, but ${etcdUrl} is http://: use an https:// etcd URL`);
    if (!tls.cert !== !tls.key) throw new PmuError('EINVAL', 'a client certificate for etcd needs both --etcd-cert FILE and --etcd-key FILE');
    if (tls.cert && tls.key) checkClientCertificate(tls.cert, tls.key);
  }
  return hosts;
}

/**
 * An expired or mismatched client certificate is told here, by name: gRPC would report only
 * that no connection could be established.
 */
function checkClientCertificate(cert: Buffer, key: Buffer): void {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch {
    throw new PmuError('EINVAL', 'the etcd client certificate (--etcd-cert) is not a PEM certificate: give the certificate file, not the key or a CSR');
  }
  const now = Date.now();
  if (Date.parse(certificate.validTo) < now) throw new PmuError('EINVAL', `the etcd client certificate (--etcd-cert, ${certificate.subject.replace(/\n/g, ', ')}) expired on ${certificate.validTo}: renew it`);
  if (Date.parse(certificate.validFrom) > now) throw new PmuError('EINVAL', `the etcd client certificate (--etcd-cert) is valid only from ${certificate.validFrom}: check this host's clock`);
  let matches: boolean;
  try {
    matches = certificate.checkPrivateKey(createPrivateKey(key));
  } catch {
    throw new PmuError('EINVAL', 'the etcd client key (--etcd-key) is not an unencrypted PEM private key: give the key file (decrypt it first if it has a passphrase)');
  }
  if (!matches) throw new PmuError('EINVAL', 'the etcd client key (--etcd-key) does not belong to the client certificate (--etcd-cert): give the key the certificate was made for');
}

/** etcd3's `auth` and `credentials` for `login` (already checked). */
export function etcdClientLogin(login: EtcdLogin): Pick<IOptions, 'auth' | 'credentials'> {
  const options: Pick<IOptions, 'auth' | 'credentials'> = {};
  if (login.auth) options.auth = { username: login.auth.username, password: login.auth.password };
  const { ca, cert, key } = login.tls ?? {};
  // No credentials at all and an https:// URL: etcd3 makes TLS with the system's CAs itself.
  // grpc's createSsl takes a null root certificate for the same, where etcd3's type says Buffer.
  if (ca || cert) options.credentials = { rootCertificate: ca ?? (null as unknown as Buffer), privateKey: key, certChain: cert };
  return options;
}

/** Node 26 made an IP address as a TLS server name an error (ERR_INVALID_ARG_VALUE); before, a deprecation warning. */
function tlsRefusesIpServerName(): boolean {
  return Number(process.versions.node.split('.')[0]) >= 26;
}
