/**
 * Test certificates made with openssl: a CA, a server certificate for 127.0.0.1, and client
 * certificates (the common name is the etcd user a certificate logs in as).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface CertFiles {
  ca: string;
  cert: string;
  key: string;
}

export interface TestPki {
  dir: string;
  ca: string;
  server: CertFiles;
  /** A client certificate for `commonName`, signed by this CA (`days` negative: already expired). */
  client(commonName: string, options?: { days?: number }): CertFiles;
}

const EXTENSIONS = `[server]
subjectAltName = IP:127.0.0.1, DNS:localhost
extendedKeyUsage = serverAuth
[client]
extendedKeyUsage = clientAuth
`;

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

export function makePki(dir: string): TestPki {
  fs.writeFileSync(path.join(dir, 'ext.cnf'), EXTENSIONS);
  openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=pmu-test-ca']);
  const sign = (name: string, commonName: string, extensions: string, days: number): CertFiles => {
    openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${commonName}`]);
    openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', String(days), '-extfile', 'ext.cnf', '-extensions', extensions]);
    fs.chmodSync(path.join(dir, `${name}.key`), 0o600);
    return { ca: path.join(dir, 'ca.crt'), cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
  };
  let clients = 0;
  return {
    dir,
    ca: path.join(dir, 'ca.crt'),
    server: sign('server', '127.0.0.1', 'server', 2),
    client: (commonName, options = {}) => sign(`client${++clients}`, commonName, 'client', options.days ?? 2),
  };
}

export function haveOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A self-signed certificate for 127.0.0.1 in `dir` (files NAME.key, NAME.pem), and its bytes. */
export function selfSigned(dir: string, name: string): { key: Buffer; cert: Buffer; keyFile: string; certFile: string } {
  const keyFile = path.join(dir, `${name}.key`);
  const certFile = path.join(dir, `${name}.pem`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return { key: fs.readFileSync(keyFile), cert: fs.readFileSync(certFile), keyFile, certFile };
}
