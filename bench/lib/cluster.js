'use strict';
// Processes of a PMU set on this machine, for the mirror benches (bench/mirror.js, bench/scrub.js) and the nemesis
// (scripts/nemesis): the set's credentials, an etcd of its own, and children whose stdout lines
// are handed on. Every child is killed when this process exits, so an interrupted run leaves
// none behind.
const { spawn } = require('node:child_process');
const path = require('node:path');
const { MirrorDirectory } = require('pmu/mirror');
const { freePort } = require('./free-port');

/** The set's user: an admin on every PMU of the set. */
const USER = 'nemesis';
const SECRET = 'nemesis-secret-0123456789abcdef';
/** A PMU that joins the set and runs the replica agent (bench/peers/pmu-replica.js). */
const PMU_REPLICA = path.join(__dirname, '..', 'peers', 'pmu-replica.js');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what, probe, timeoutMs, intervalMs = 20) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

const living = new Set();
process.on('exit', () => {
  for (const proc of living) {
    proc.kill('SIGCONT');
    proc.kill('SIGKILL');
  }
});

/** `node SCRIPT` as a child named `name` (in network namespace `netns` if given); each stdout line goes to onLine(name, line). */
function spawnLogged(name, script, env, onLine, netns) {
  const argv = [process.execPath, script];
  // `ip netns exec` execs the program after entering the namespace: the pid is node's own.
  const [command, ...args] = netns ? ['ip', 'netns', 'exec', netns, ...argv] : argv;
  const proc = spawn(command, args, { env: { ...process.env, ...env, PMU_USER: USER, PMU_SECRET: SECRET, NAME: name }, stdio: ['ignore', 'pipe', 'pipe'] });
  let buffered = '';
  proc.stdout.on('data', (chunk) => {
    buffered += chunk;
    let at;
    while ((at = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, at);
      buffered = buffered.slice(at + 1);
      onLine(name, line);
    }
  });
  let stderr = '';
  proc.stderr.on('data', (chunk) => (stderr = (stderr + chunk).slice(-4000)));
  proc.stderrTail = () => stderr;
  proc.done = new Promise((resolve) => proc.on('close', (code, signal) => resolve({ code, signal })));
  living.add(proc);
  proc.on('exit', () => living.delete(proc));
  return proc;
}

/** etcd with its own data directory, on loopback (and `extraHost`); resolves once it answers. */
async function startEtcdProcess(dataDir, extraHost) {
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const url = `http://127.0.0.1:${clientPort}`;
  const listen = extraHost ? `${url},http://${extraHost}:${clientPort}` : url;
  const proc = spawn('etcd', ['--name', 'nemesis', '--data-dir', dataDir, '--listen-client-urls', listen, '--advertise-client-urls', url, '--listen-peer-urls', `http://127.0.0.1:${peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`, '--initial-cluster', `nemesis=http://127.0.0.1:${peerPort}`, '--log-level', 'error'], { stdio: 'ignore' });
  living.add(proc);
  proc.on('exit', () => living.delete(proc));
  await waitFor('etcd', async () => {
    if (proc.exitCode !== null) throw new Error(`etcd exited with ${proc.exitCode}`);
    const probe = MirrorDirectory.connect(url, { set: 'probe', timeoutMs: 500 });
    try {
      return await probe.pmus().then(() => true, () => false);
    } finally {
      probe.close();
    }
  }, 20_000, 50);
  return { url, proc, extraUrl: extraHost ? `http://${extraHost}:${clientPort}` : undefined };
}

/**
 * One PMU of the set as a child (bench/peers/pmu-replica.js: server, directory entry, replica
 * agent); resolves once it printed READY. Its agent's lines go to onAgent({ id, t, what, region }).
 * env: UNIT, UNIT_BYTES, PORT, ETCD, SET, ID.
 */
async function startPmuReplica(id, env, onAgent = () => {}) {
  const proc = spawnLogged(id, PMU_REPLICA, env, (name, line) => {
    if (line.endsWith(' READY')) proc.ready = true;
    const [t, kind, what, region] = line.split(' ');
    if (kind === 'AGENT') onAgent({ id, t: Number(t), what, region });
  });
  await waitFor(`${id} ready`, () => proc.ready || proc.exitCode !== null, 60_000);
  if (!proc.ready) throw new Error(`${id} did not start: ${proc.stderrTail()}`);
  return proc;
}

module.exports = { USER, SECRET, PMU_REPLICA, waitFor, spawnLogged, startEtcdProcess, startPmuReplica, freePort };
