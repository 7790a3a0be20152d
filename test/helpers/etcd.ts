/**
 * A real etcd for tests (Debian's etcd-server), on loopback with its own data directory.
 * Absent etcd: tests skip with a loud message, except under CI=true where they must run.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Etcd3, IOptions } from 'etcd3';
import { CertFiles } from './certs';
import { tempDir } from './temp';
import { waitFor, waitForExit } from './wait';

export const ETCD_INSTALL = 'apt-get update -qq && apt-get install -y -qq etcd-server';

export function etcdAvailable(): boolean {
  const found = spawnSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' }).status === 0;
  if (!found) {
    if (process.env.CI === 'true') throw new Error(`etcd is not installed but CI=true: install it with: ${ETCD_INSTALL}`);
    process.stderr.write(`\n*** SKIPPING etcd-backed tests: etcd is not installed. Install it with: ${ETCD_INSTALL}\n\n`);
  }
  return found;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

export interface EtcdHandle {
  url: string;
  /** What a client needs to reach this etcd (TLS credentials), for the test's own Etcd3 clients. */
  clientOptions: Pick<IOptions, 'hosts' | 'credentials'>;
  readonly process: ChildProcess;
  dataDir: string;
  /** Kills etcd and starts it again on the same data and ports (a restart forgets auth tokens). */
  restart(): Promise<void>;
  stop(): Promise<void>;
  /**
   * SIGSTOP / SIGCONT: etcd unreachable without losing its state. pause() resolves once every
   * thread of etcd is stopped: under load a thread can still answer a request sent just after
   * the signal.
   */
  pause(): Promise<void>;
  resume(): void;
}

export interface EtcdTlsOptions {
  /** etcd's own certificate and key, and the CA it trusts client certificates from. */
  server: CertFiles;
  /** Refuse clients without a certificate signed by that CA (etcd --client-cert-auth). */
  clientCertAuth?: boolean;
  /** A client certificate for the test's own clients (the probe, enableAuth): a common name that is no etcd user, or enableAuth's wait never ends. */
  client?: CertFiles;
}

/**
 * `clientPort`: listen there (a test that starts a client before etcd picks the port first).
 * `tls`: serve clients over TLS (https://); peers stay on loopback http.
 */
export async function startEtcd(options: { host?: string; clientPort?: number; tls?: EtcdTlsOptions } = {}): Promise<EtcdHandle> {
  const host = options.host ?? '127.0.0.1';
  const dataDir = path.join(tempDir('pmu-etcd-'), 'data');
  const [clientPort, peerPort] = [options.clientPort ?? (await freePort()), await freePort()];
  const tls = options.tls;
  const listenUrl = `${tls ? 'https' : 'http'}://${host}:${clientPort}`;
  // Over TLS clients name etcd by a DNS name its certificate holds: Node 26 refuses an IP address
  // as a TLS server name, which gRPC would send.
  const url = tls ? `https://localhost:${clientPort}` : listenUrl;
  const tlsArgs = tls ? ['--cert-file', tls.server.cert, '--key-file', tls.server.key, '--trusted-ca-file', tls.server.ca, ...(tls.clientCertAuth ? ['--client-cert-auth'] : [])] : [];
  const credentials = tls ? { rootCertificate: fs.readFileSync(tls.server.ca), ...(tls.client ? { certChain: fs.readFileSync(tls.client.cert), privateKey: fs.readFileSync(tls.client.key) } : {}) } : undefined;
  const clientOptions = { hosts: url, credentials };
  const args = [
    '--name', 'pmu-test',
    '--data-dir', dataDir,
    '--listen-client-urls', listenUrl,
    '--advertise-client-urls', url,
    '--listen-peer-urls', `http://${host}:${peerPort}`,
    '--initial-advertise-peer-urls', `http://${host}:${peerPort}`,
    '--initial-cluster', `pmu-test=http://${host}:${peerPort}`,
    '--log-level', 'error',
    ...tlsArgs,
  ];
  let stderr = '';
  const launch = (): ChildProcess => {
    const spawned = spawn('etcd', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    spawned.stderr?.on('data', (chunk) => (stderr = (stderr + chunk).slice(-2000)));
    return spawned;
  };
  let child = launch();
  // A fresh client per probe: one client's circuit breaker would keep failing for 5 s after
  // the refusals it met before etcd listened.
  const answering = () => waitFor('etcd to answer', async () => {
    if (child.exitCode !== null) throw new Error(`etcd exited with ${child.exitCode}: ${stderr}`);
    const probe = new Etcd3({ ...clientOptions, defaultCallOptions: () => ({ deadline: Date.now() + 500 }) });
    try {
      // With auth on, an anonymous probe is refused: that is etcd answering too.
      return await probe.get('probe').string().then(() => true, (error: Error) => /user name is empty|permission denied|invalid auth token/i.test(String(error?.message)));
    } finally {
      probe.close();
    }
  }, 20_000, 50);
  await answering();
  return {
    url,
    clientOptions,
    get process() {
      return child;
    },
    dataDir,
    async restart() {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await waitForExit(child);
      child = launch();
      await answering();
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await waitForExit(child);
    },
    pause: async () => {
      child.kill('SIGSTOP');
      await waitFor('every etcd thread stopped', () => allThreadsStopped(child.pid!), 5000, 2);
    },
    resume: () => child.kill('SIGCONT'),
  };
}

/** True once every thread of `pid` is in state T (stopped), as /proc shows it. */
function allThreadsStopped(pid: number): boolean {
  const tasks = fs.readdirSync(`/proc/${pid}/task`);
  return tasks.every((task) => {
    try {
      // The state follows the parenthesised command name, which may itself hold spaces.
      const stat = fs.readFileSync(`/proc/${pid}/task/${task}/stat`, 'utf8');
      return /^[tT]$/.test(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3));
    } catch {
      return true; // the thread ended
    }
  });
}

export interface EtcdUser {
  name: string;
  password: string;
  /** The key prefix its role may read and write (readwrite), e.g. '/pmu/sets/default/'. */
  prefix?: string;
}

/**
 * Turns etcd's authentication on as an operator would (etcdctl role add root, user add root,
 * user grant-role root root, a role per user, auth enable), through etcd3's auth API: Debian's
 * etcd-server ships no etcdctl. Each user gets a role `<name>-role` with readwrite on its prefix
 * only. Resolves once a call without a user is refused.
 */
export async function enableAuth(etcd: EtcdHandle, rootPassword: string, users: EtcdUser[]): Promise<void> {
  const admin = new Etcd3({ ...etcd.clientOptions, defaultCallOptions: () => ({ deadline: Date.now() + 5000 }) });
  try {
    await admin.role('root').create();
    await admin.user('root').create(rootPassword);
    await admin.user('root').addRole('root');
    for (const user of users) {
      await admin.user(user.name).create(user.password);
      if (!user.prefix) continue;
      await admin.role(`${user.name}-role`).create();
      await admin.role(`${user.name}-role`).grant({ permission: 'Readwrite', range: admin.range({ prefix: user.prefix }) });
      await admin.user(user.name).addRole(`${user.name}-role`);
    }
    await admin.auth.authEnable();
  } finally {
    admin.close();
  }
  await waitFor('etcd to refuse a call without a user', async () => {
    const anonymous = new Etcd3({ ...etcd.clientOptions, defaultCallOptions: () => ({ deadline: Date.now() + 1000 }) });
    try {
      return await anonymous.get('probe').string().then(() => false, () => true);
    } finally {
      anonymous.close();
    }
  }, 10_000, 20);
}
