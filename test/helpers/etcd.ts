/**
 * A real etcd for tests (Debian's etcd-server), on loopback with its own data directory.
 * Absent etcd: tests skip with a loud message, except under CI=true where they must run.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Etcd3 } from 'etcd3';
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
  process: ChildProcess;
  dataDir: string;
  stop(): Promise<void>;
  /**
   * SIGSTOP / SIGCONT: etcd unreachable without losing its state. pause() resolves once every
   * thread of etcd is stopped: under load a thread can still answer a request sent just after
   * the signal.
   */
  pause(): Promise<void>;
  resume(): void;
}

export async function startEtcd(options: { host?: string } = {}): Promise<EtcdHandle> {
  const host = options.host ?? '127.0.0.1';
  const dataDir = path.join(tempDir('pmu-etcd-'), 'data');
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const url = `http://${host}:${clientPort}`;
  const child = spawn('etcd', [
    '--name', 'pmu-test',
    '--data-dir', dataDir,
    '--listen-client-urls', url,
    '--advertise-client-urls', url,
    '--listen-peer-urls', `http://${host}:${peerPort}`,
    '--initial-advertise-peer-urls', `http://${host}:${peerPort}`,
    '--initial-cluster', `pmu-test=http://${host}:${peerPort}`,
    '--log-level', 'error',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk) => (stderr = (stderr + chunk).slice(-2000)));
  // A fresh client per probe: one client's circuit breaker would keep failing for 5 s after
  // the refusals it met before etcd listened.
  await waitFor('etcd to answer', async () => {
    if (child.exitCode !== null) throw new Error(`etcd exited with ${child.exitCode}: ${stderr}`);
    const probe = new Etcd3({ hosts: url, defaultCallOptions: () => ({ deadline: Date.now() + 500 }) });
    try {
      return await probe.get('probe').string().then(() => true, () => false);
    } finally {
      probe.close();
    }
  }, 20_000, 50);
  return {
    url,
    process: child,
    dataDir,
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
