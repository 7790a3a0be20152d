'use strict';
/**
 * Jepsen-style nemesis for mirrored PMUs: etcd, three PMU processes (each with its replica
 * agent), two service nodes (a primary appending through a MirroredRegion, a backup following
 * and taking over), randomised faults, a history of every operation, and a checker.
 *
 *   node scripts/nemesis/run.js --minutes 10      (npm run nemesis -- --minutes 10)
 *
 * Faults: SIGKILL of a PMU (restarted, then resynced by its agent), SIGSTOP/SIGCONT of a PMU, a
 * network partition of a PMU (as root: each PMU in its own network namespace, its link cut),
 * SIGKILL of the primary, SIGSTOP of the primary past the backup's lease (a zombie once it
 * resumes), one flipped byte on an in-sync replica (of the append log: a header word or a
 * record; of an overwrite log beside it: a header word, the checkpoint mark or a slot), etcd's
 * region key restored from an older value (then the operator's restore of the newest one), and
 * a forged key marking a stale replica in sync. The checker proves: no acknowledged write lost (on every in-sync replica), nothing
 * read that was never tried, one value per sequence, no write of a fenced primary read or acked,
 * no read answered by a replica outside the in-sync set, each backup reads the log in order;
 * and of the overwrite log: no read of the newest checkpoint older than one acknowledged before
 * the read began, nothing invented, one value per checkpoint sequence.
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { CheckpointReader } = require('pmu');
const { MirrorDirectory, MirroredRegion, PmuPool, createMirroredRegion, scrubRegion } = require('pmu/mirror');
const { Etcd3 } = require('etcd3');

const { freePort, PMU_REPLICA, SECRET, spawnLogged, startEtcdProcess, USER, waitFor } = require('../../bench/lib/cluster');

const REGION = 'ckpt';
/** An overwrite log beside the append log: checkpoint slots and the mark word get damaged too. */
const STATE = 'state';
const STATE_BYTES = 64 * 1024;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const rand = (min, max) => min + Math.floor(Math.random() * (max - min + 1));

/** Every network made, so an interrupted run (Ctrl-C, a closed pipe) leaves none behind. */
const networks = new Set();
process.on('exit', () => {
  for (const network of networks) network.cleanup();
});

/** A child of this folder (node.js: a primary or backup) whose stdout lines are history events. */
function child(name, script, env, onLine, netns) {
  return spawnLogged(name, path.join(__dirname, script), env, onLine, netns);
}

function sh(command) {
  const result = spawnSync('sh', ['-c', command], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`nemesis: '${command}' failed: ${result.stderr.trim()}`);
}

/** Partitions need root and iproute2; CI runs as root. */
function canPartition() {
  return process.getuid?.() === 0 && spawnSync('sh', ['-c', 'command -v ip']).status === 0;
}

/**
 * One network namespace per PMU, each joined by a veth pair to a bridge of our own (no IP
 * forwarding needed: one L2 segment, a private /24). A partition takes the PMU's bridge port down.
 */
function makeNetwork(ids) {
  const tag = process.pid % 10000;
  const subnet = `10.201.${process.pid % 250}`;
  const bridge = `pmb${tag}`;
  const pmus = {};
  const undo = [];
  const cleanup = () => {
    for (const command of undo.reverse()) spawnSync('sh', ['-c', command]);
    undo.length = 0;
  };
  try {
    sh(`ip link add ${bridge} type bridge && ip addr add ${subnet}.1/24 dev ${bridge} && ip link set ${bridge} up`);
    undo.push(`ip link del ${bridge}`);
    ids.forEach((id, i) => {
      const ns = `pmu${tag}-${i + 1}`;
      const host = `pv${tag}h${i + 1}`;
      const inner = `pv${tag}n${i + 1}`;
      sh(`ip netns add ${ns}`);
      undo.push(`ip netns del ${ns}`);
      sh(`ip link add ${host} type veth peer name ${inner} && ip link set ${inner} netns ${ns} && ip link set ${host} master ${bridge} up`);
      undo.push(`ip link del ${host}`);
      sh(`ip -n ${ns} addr add ${subnet}.${10 + i}/24 dev ${inner} && ip -n ${ns} link set ${inner} up && ip -n ${ns} link set lo up`);
      pmus[id] = { ns, host, address: `${subnet}.${10 + i}` };
    });
  } catch (error) {
    cleanup();
    throw error;
  }
  const network = {
    gateway: `${subnet}.1`,
    pmus,
    partition: (id) => sh(`ip link set ${pmus[id].host} down`),
    heal: (id) => sh(`ip link set ${pmus[id].host} up`),
    cleanup: () => {
      cleanup();
      networks.delete(network);
    },
  };
  networks.add(network);
  return network;
}

async function runNemesis(options = {}) {
  const durationMs = options.durationMs ?? 60_000;
  const log = options.log ?? ((line) => process.stdout.write(line + '\n'));
  const leaseMs = options.leaseMs ?? 1500;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'pmu-nemesis-'));
  const events = [];
  const faults = {};
  const notes = [];
  /** Every value the region's key held, by epoch (a rollback makes one epoch hold several). */
  const configs = new Map();
  const sawConfig = (config) => configs.set(config.epoch, [...(configs.get(config.epoch) ?? []), config]);
  const procs = { pmus: new Map(), nodes: new Map() };
  let etcdProc;
  let network;
  let directory;
  let stopConfigWatch;
  const cleanups = [];

  const onLine = (name, line) => {
    const [t, kind, ...rest] = line.split(' ');
    events.push({ name, t: Number(t), kind, rest, line });
    if (options.verbose) log(`${name} ${line}`);
  };
  const fault = (kind) => {
    faults[kind] = (faults[kind] ?? 0) + 1;
    if (options.verbose) log(`FAULT ${kind}`);
  };

  try {
    const pmuIds = ['pmu1', 'pmu2', 'pmu3'];
    // Each PMU in its own network namespace when we may (root): partitions become possible.
    const partitions = options.partitions ?? canPartition();
    if (partitions) network = makeNetwork(pmuIds);
    const etcd = await startEtcdProcess(path.join(work, 'etcd'), network?.gateway);
    etcdProc = etcd.proc;
    const etcdUrl = etcd.url;
    directory = MirrorDirectory.connect(etcdUrl, { set: 'nemesis', timeoutMs: 1000 });
    await directory.init(3);

    // Three PMUs.
    const pmuEnv = {};
    for (const id of pmuIds) {
      pmuEnv[id] = { UNIT: path.join(work, `${id}.pmu`), PORT: String(await freePort()), ETCD: network ? etcd.extraUrl : etcdUrl, SET: 'nemesis', ID: id };
      if (network) pmuEnv[id].HOST = network.pmus[id].address;
    }
    const startPmu = async (id) => {
      const proc = spawnLogged(id, PMU_REPLICA, pmuEnv[id], (name, line) => {
        onLine(name, line);
        if (line.includes(' READY')) proc.ready = true;
      }, network?.pmus[id].ns);
      procs.pmus.set(id, proc);
      await waitFor(`${id} ready`, () => proc.ready || proc.exitCode !== null, 15_000);
      if (!proc.ready) throw new Error(`${id} did not start: ${proc.stderrTail()}`);
    };
    for (const id of pmuIds) await startPmu(id);

    const pool = new PmuPool(directory, { user: USER, secret: SECRET, timeoutMs: 2000 });
    cleanups.push(() => pool.close());
    await createMirroredRegion(directory, pool, REGION, 1024 * 1024 + 4096, 3);
    await createMirroredRegion(directory, pool, STATE, STATE_BYTES, 3);
    stopConfigWatch = await directory.watch(REGION, sawConfig);
    sawConfig(await directory.config(REGION));
    // What a restore from an older copy, or anyone who can write etcd, does: a bare client.
    const rawEtcd = new Etcd3({ hosts: etcdUrl });
    cleanups.push(() => rawEtcd.close());
    const putConfig = (config) => rawEtcd.put(directory.regionKey(REGION)).value(JSON.stringify(config));

    // Two service nodes; a node that exits is replaced (it comes back as a backup).
    let nodeCount = 0;
    let running = true;
    const nodeEnv = { ETCD: etcdUrl, SET: 'nemesis', REGION, STATE_REGION: STATE, LEASE_MS: String(leaseMs), APPEND_INTERVAL_MS: String(options.appendIntervalMs ?? 0) };
    const startNode = () => {
      const name = `n${++nodeCount}`;
      const proc = child(name, 'node.js', nodeEnv, onLine);
      procs.nodes.set(name, proc);
      proc.done.then(({ code, signal }) => {
        procs.nodes.delete(name);
        // 3: fenced, 4: an append failed, 5: the directory went backwards (EROLLBACK, fail-stop).
        if (code !== 0 && signal === null && code !== 3 && code !== 4 && code !== 5) notes.push(`${name} exited ${code}: ${proc.stderrTail().split('\n').filter(Boolean).slice(0, 2).join(' | ')}`);
        if (running) setTimeout(() => running && startNode(), 100);
      });
      return name;
    };
    const primaryName = () => {
      let best;
      for (const e of events) if (e.kind === 'PRIMARY' && procs.nodes.has(e.name)) best = e.name;
      return best;
    };
    const acks = () => events.filter((e) => e.kind === 'ACK').length;
    startNode();
    await waitFor('first primary', () => primaryName(), 20_000);
    startNode();
    await waitFor('first backup', () => events.some((e) => e.kind === 'BACKUP'), 20_000);

    // The faults.
    const deadline = Date.now() + durationMs;
    const stopped = new Set();
    const kinds = ['pmu-kill', 'pmu-stop', 'primary-kill', 'primary-stop', 'replica-flip', 'replica-flip-slots', 'etcd-rollback', 'forge-in-sync', ...(network ? ['pmu-partition'] : [])];
    // Faults are dealt from a shuffled deck, so that even a short run tries every kind, the
    // damage faults first; a kind whose precondition does not hold yet (three replicas in sync,
    // say) goes back two cards down, so it is tried again soon without blocking the others, and
    // leaves this deck after 50 tries (a flipped byte nobody reads blocks the next flip for long).
    const shuffled = (list) => list.map((kind) => [Math.random(), kind]).sort((a, b) => a[0] - b[0]).map(([, kind]) => kind);
    const deck = [...shuffled(kinds.filter((kind) => !kind.startsWith('replica-flip'))), 'replica-flip', 'replica-flip-slots'];
    const deferred = new Map();
    const deal = () => {
      if (deck.length === 0) {
        deck.push(...shuffled(kinds));
        deferred.clear();
      }
      return deck.pop();
    };
    const later = (kind) => {
      deferred.set(kind, (deferred.get(kind) ?? 0) + 1);
      if (deferred.get(kind) < 50) deck.splice(Math.max(0, deck.length - 2), 0, kind);
    };
    const cut = new Set();
    // The replica holding a flipped byte, until it leaves that region's in-sync set or the byte
    // no longer differs (one damaged copy at a time): damaged = { id, region, at }. A byte
    // nobody reads would hold the next flip back for the rest of the run, so a second after the
    // flip the nemesis does what a set's scrubber (`pmu serve --join --scrub`) does: one pass
    // over that region, which repairs the copy that fails its checks; a pass that finds the
    // copies equal, with nothing busy or unreadable, means the primary wrote over the byte.
    let damaged;
    const damageCleared = async () => {
      if (!damaged) return true;
      const config = await directory.config(damaged.region).catch(() => undefined);
      if (config && !config.inSync.includes(damaged.id)) damaged = undefined;
      else if (config && Date.now() - damaged.at > 1000) {
        damaged.at = Date.now();
        const report = await scrubRegion(directory, pool, damaged.region).catch((error) => void notes.push(`scrub: ${error.message}`));
        if (options.verbose && report) log(`SCRUB ${damaged.region}: ${report.mismatches.length} mismatches, repaired ${report.repaired.join(',') || 'none'}${report.note ? ` (${report.note})` : ''}`);
        if (report && (report.repaired.includes(damaged.id) || (report.mismatches.length === 0 && report.busy.length === 0 && Object.keys(report.errors).length === 0 && report.inSync.includes(damaged.id)))) damaged = undefined;
      }
      return damaged === undefined;
    };
    while (Date.now() < deadline) {
      const kind = deal();
      if (kind === 'etcd-rollback') {
        // The region's key restored from an older value (what restoring an etcd snapshot does to
        // it), held a while, then the operator restores the newest value above every epoch used.
        const config = await directory.config(REGION).catch(() => undefined);
        const older = config && [...configs.keys()].filter((epoch) => epoch < config.epoch).sort((a, b) => b - a).map((epoch) => configs.get(epoch)[0]);
        if (!config || !older || older.length === 0 || !(await damageCleared())) {
          later(kind);
          await sleep(100);
          continue;
        }
        const old = older[rand(0, Math.min(older.length, 5) - 1)];
        try {
          await putConfig(old);
          fault('etcd-rollback');
          if (options.verbose) log(`ROLLBACK to ${old.epoch} from ${config.epoch}`);
          await sleep(rand(300, 1500));
          const now = await directory.config(REGION);
          await putConfig({ ...config, epoch: Math.max(now.epoch, config.epoch) + 1 });
        } catch (error) {
          notes.push(`etcd-rollback: ${error.message}`);
        }
      } else if (kind === 'forge-in-sync') {
        // Make one replica stale (stopped until it is dropped), resume it, then at once (before
        // its agent resyncs it) forge a key with a higher epoch that lists it first in sync.
        const config = await directory.config(REGION).catch(() => undefined);
        await damageCleared();
        const candidates = config ? config.inSync.filter((id) => procs.pmus.get(id)?.exitCode === null && damaged === undefined) : [];
        if (!config || config.inSync.length < 3 || candidates.length === 0) {
          later(kind);
          await sleep(100);
          continue;
        }
        const id = candidates[rand(0, candidates.length - 1)];
        const proc = procs.pmus.get(id);
        proc.kill('SIGSTOP');
        stopped.add(proc);
        const dropped = await waitFor(`${id} dropped`, async () => {
          const now = await directory.config(REGION).catch(() => undefined);
          return now && !now.inSync.includes(id) ? now : undefined;
        }, 20_000).catch((error) => notes.push(error.message));
        proc.kill('SIGCONT');
        stopped.delete(proc);
        if (dropped && typeof dropped === 'object') {
          const forged = { ...dropped, inSync: [id, ...dropped.inSync], syncing: dropped.syncing.filter((pmu) => pmu !== id), epoch: dropped.epoch + 1 };
          try {
            await putConfig(forged);
            configs.set(forged.epoch, [...(configs.get(forged.epoch) ?? []), { ...forged, forgedStale: id }]);
            fault('forge-in-sync');
            if (options.verbose) log(`FORGE ${id} in sync at ${forged.epoch}`);
          } catch (error) {
            notes.push(`forge-in-sync: ${error.message}`);
          }
        }
      } else if (kind === 'replica-flip' || kind === 'replica-flip-slots') {
        // One flipped byte on one in-sync replica of either log: a header word the log trusts
        // (epoch, cursor, heartbeat; and the overwrite log's checkpoint mark), or the data past
        // the header (the append log's ring of records, the overwrite log's two slots).
        const target = kind === 'replica-flip-slots' ? STATE : REGION;
        const config = await directory.config(target).catch(() => undefined);
        const everyInSync = await directory.config(REGION).then((c) => c.inSync.length === 3, () => false);
        if (!config || config.inSync.length < 3 || !everyInSync || !(await damageCleared())) {
          later(kind);
          await sleep(100);
          continue;
        }
        const id = config.inSync[rand(0, config.inSync.length - 1)];
        const words = target === STATE ? [16, 32, 40, 72] : [16, 32, 40];
        const offset = Math.random() < 0.3 ? words[rand(0, words.length - 1)] + rand(0, 6) : rand(4096, config.size - 1);
        try {
          const region = await pool.openRegion(id, target);
          const byte = await region.read(offset, 1);
          await region.write(offset, Buffer.from([byte[0] ^ (1 << rand(0, 7))]));
          damaged = { id, region: target, at: Date.now() };
          fault(target === STATE ? 'replica-flip-slots' : 'replica-flip');
          if (options.verbose) log(`FLIP ${id} ${target} at ${offset}`);
        } catch (error) {
          notes.push(`replica-flip on ${id}: ${error.message}`);
        }
      } else if (kind === 'pmu-kill' || kind === 'pmu-stop' || kind === 'pmu-partition') {
        // One PMU at a time, and only one that is in sync (so two copies always remain); while
        // a replica holds a flipped byte, only that one (so two intact copies remain).
        const config = await directory.config(REGION).catch(() => undefined);
        const state = await directory.config(STATE).catch(() => undefined);
        await damageCleared();
        const candidates = config && state ? config.inSync.filter((id) => procs.pmus.get(id)?.exitCode === null && state.inSync.includes(id) && (damaged === undefined || id === damaged.id)) : [];
        if (!config || config.inSync.length < 3 || state?.inSync.length !== 3 || candidates.length === 0) {
          later(kind);
          await sleep(100);
          continue;
        }
        const id = candidates[rand(0, candidates.length - 1)];
        const proc = procs.pmus.get(id);
        if (kind === 'pmu-kill') {
          proc.kill('SIGKILL');
          fault('pmu-kill');
          await proc.done;
          await sleep(rand(100, 1000));
          await startPmu(id);
        } else if (kind === 'pmu-stop') {
          proc.kill('SIGSTOP');
          stopped.add(proc);
          fault('pmu-stop');
          await sleep(rand(200, 1500));
          proc.kill('SIGCONT');
          stopped.delete(proc);
        } else {
          // Cut off from everything (writers, the other PMUs, etcd), then back.
          network.partition(id);
          cut.add(id);
          fault('pmu-partition');
          await sleep(rand(300, 2000));
          network.heal(id);
          cut.delete(id);
        }
      } else {
        const name = primaryName();
        const proc = name && procs.nodes.get(name);
        const backups = [...procs.nodes.keys()].filter((n) => n !== name && events.some((e) => e.kind === 'BACKUP' && e.name === n));
        if (!proc || backups.length === 0) {
          later(kind);
          await sleep(100);
          continue;
        }
        if (kind === 'primary-kill') {
          proc.kill('SIGKILL');
          fault('primary-kill');
        } else {
          const before = events.filter((e) => e.kind === 'FENCE').length;
          proc.kill('SIGSTOP');
          stopped.add(proc);
          fault('primary-stop');
          // Hold it past the backup's lease so the backup takes over; then it resumes as a zombie.
          await waitFor('takeover of a stopped primary', () => events.filter((e) => e.kind === 'FENCE').length > before, leaseMs * 10).catch((error) => notes.push(error.message));
          proc.kill('SIGCONT');
          stopped.delete(proc);
        }
        await waitFor('a new primary', () => primaryName() && primaryName() !== name, leaseMs * 10).catch((error) => notes.push(error.message));
      }
      // Progress between faults: the primary must ack again (liveness), else note it.
      const ackedBefore = acks();
      await waitFor('acks after a fault', () => acks() > ackedBefore, 20_000).catch((error) => notes.push(error.message));
      await sleep(rand(100, 500));
    }

    // Heal: everything running, every replica back in sync, a few more acks.
    for (const proc of stopped) proc.kill('SIGCONT');
    for (const id of cut) network.heal(id);
    // A flipped byte nobody read yet: one check of every copy (what a takeover or a read that
    // meets it does) drops that replica, and its agent resyncs it from an intact copy.
    if (damaged) {
      const checker = await MirroredRegion.open(directory, pool, damaged.region);
      await checker.repair().catch((error) => notes.push(`repair: ${error.message}`));
      await checker.close();
    }
    // A directory read can fail while etcd or a replica is still coming back: that is a retry,
    // not the end of the wait.
    const inSyncOf = async (name) => (await directory.config(name).catch(() => undefined))?.inSync.length === 3;
    const allInSync = async () => (await inSyncOf(REGION)) && (await inSyncOf(STATE));
    await waitFor('every replica in sync', allInSync, 60_000, 100).catch((error) => notes.push(error.message));
    const ackedBefore = acks();
    await waitFor('acks after healing', () => acks() > ackedBefore + 10, 20_000).catch((error) => notes.push(error.message));
    // Those acks can drop a replica whose connection died in a fault (a write to it fails, so it
    // leaves the set before the ack); its agent must bring it back on its own.
    await waitFor('every replica in sync after the last acks', allInSync, 60_000, 100).catch((error) => notes.push(error.message));
    running = false;
    for (const proc of procs.nodes.values()) proc.kill('SIGKILL');
    await Promise.all([...procs.nodes.values()].map((proc) => proc.done));

    // What each in-sync replica holds from the cursor on, and what the mirrored region shows.
    const finalConfig = await directory.config(REGION);
    const finals = {};
    const mirrored = await MirroredRegion.open(directory, pool, REGION);
    cleanups.push(() => mirrored.close());
    finals.mirrored = await readLog(mirrored);
    for (const id of finalConfig.inSync) finals[id] = await readLog(await pool.openRegion(id, REGION));
    const stateRegion = await MirroredRegion.open(directory, pool, STATE);
    cleanups.push(() => stateRegion.close());
    const finalState = await (await CheckpointReader.open(stateRegion)).latest().catch((error) => ({ error }));
    const result = check(events, configs, finals, finalState);
    result.faults = faults;
    result.notes = notes;
    result.finalConfig = finalConfig;
    result.partitions = Boolean(network);
    return result;
  } finally {
    await stopConfigWatch?.().catch(() => undefined);
    for (const cleanup of cleanups) await Promise.resolve().then(cleanup).catch(() => undefined);
    for (const proc of [...procs.nodes.values(), ...procs.pmus.values()]) {
      proc.kill('SIGCONT');
      proc.kill('SIGKILL');
    }
    await Promise.all([...procs.nodes.values(), ...procs.pmus.values()].map((proc) => proc.done));
    network?.cleanup();
    directory?.close();
    if (etcdProc) {
      etcdProc.kill('SIGKILL');
      await new Promise((resolve) => (etcdProc.exitCode !== null ? resolve() : etcdProc.on('exit', resolve)));
    }
    if (!options.keep) fs.rmSync(work, { recursive: true, force: true });
  }
}

async function readLog(region) {
  const reader = await CheckpointReader.open(region);
  const records = [];
  for (;;) {
    const batch = await reader.readBatch();
    records.push(...batch.records.map((record) => ({ value: record.payload.toString(), seq: record.sequence })));
    if (batch.stop.reason !== 'limit') return { records, stop: batch.stop };
  }
}

/** The checker: every rule over the whole history. */
function check(events, configs, finals, finalState) {
  const violations = [];
  const tried = new Map();
  const acked = new Map();
  const fences = [];
  const reads = [];
  for (const e of events) {
    if (e.kind === 'TRY') tried.set(e.rest[0], e.t);
    else if (e.kind === 'ACK') acked.set(e.rest[0], { seq: Number(e.rest[1]), t: e.t, name: e.name });
    else if (e.kind === 'FENCE') fences.push({ epoch: BigInt(e.rest[0]), t: e.t });
    else if (e.kind === 'READ') reads.push({ value: e.rest[0], seq: Number(e.rest[1]), pmu: e.rest[2], epoch: Number(e.rest[3]), name: e.name, t: e.t });
  }
  const bySeq = new Map();
  const claim = (seq, value, where) => {
    const had = bySeq.get(seq);
    if (had === undefined) bySeq.set(seq, value);
    else if (had !== value) violations.push(`sequence ${seq} holds '${had}' and '${value}' (${where})`);
  };
  for (const [value, ack] of acked) claim(ack.seq, value, `ack by ${ack.name}`);
  for (const r of reads) claim(r.seq, r.value, `read by ${r.name}`);
  for (const [where, final] of Object.entries(finals)) for (const r of final.records) claim(r.seq, r.value, `final read of ${where}`);

  // Nothing read that was never tried (nothing invented or torn).
  const everRead = new Set(reads.map((r) => r.value));
  for (const final of Object.values(finals)) for (const r of final.records) everRead.add(r.value);
  for (const value of everRead) if (!tried.has(value)) violations.push(`read '${value}', which no primary ever tried to write`);

  // No acknowledged write lost: each was read by a backup, or is in the log on every in-sync replica.
  const readByBackups = new Set(reads.map((r) => r.value));
  for (const [where, final] of Object.entries(finals)) {
    const held = new Set(final.records.map((r) => r.value));
    const lowest = final.records.length > 0 ? final.records[0].seq : Infinity;
    for (const [value, ack] of acked) {
      if (readByBackups.has(value) || held.has(value)) continue;
      if (ack.seq >= lowest || final.records.length === 0) violations.push(`acknowledged '${value}' (seq ${ack.seq}) is lost: not read by any backup and not in the log of ${where}`);
      else violations.push(`acknowledged '${value}' (seq ${ack.seq}) is lost: cleared without being read (${where})`);
    }
  }

  // A fenced primary: nothing it tried after the fence is acked or read.
  const epochOf = (value) => BigInt(value.split('-')[1]);
  for (const [value, t] of tried) {
    const fencedAt = fences.find((f) => f.epoch > epochOf(value) && f.t < t);
    if (!fencedAt) continue;
    if (acked.has(value)) violations.push(`zombie write '${value}' (tried after the fence of epoch ${fencedAt.epoch}) was acknowledged`);
    if (everRead.has(value)) violations.push(`zombie write '${value}' (tried after the fence of epoch ${fencedAt.epoch}) was read`);
  }

  // Reads answered only by replicas in the in-sync set of the configuration that confirmed them.
  let unknownEpochs = 0;
  for (const r of reads) {
    if (r.pmu === '-') continue;
    const values = [].concat(configs.get(r.epoch) ?? []);
    if (values.length === 0) unknownEpochs++;
    else if (values.some((config) => config.forgedStale === r.pmu)) violations.push(`'${r.value}' was read from ${r.pmu}, a stale replica a forged configuration ${r.epoch} listed in sync`);
    else if (!values.some((config) => config.inSync.includes(r.pmu))) violations.push(`'${r.value}' was read from ${r.pmu}, not in sync at configuration ${r.epoch} (${values.map((config) => config.inSync.join(',')).join(' or ')})`);
  }

  // Each backup reads the log in order, one sequence after the other.
  const lastSeq = new Map();
  for (const r of reads) {
    const last = lastSeq.get(r.name);
    if (last !== undefined && r.seq !== last + 1) violations.push(`${r.name} read sequence ${r.seq} after ${last}`);
    lastSeq.set(r.name, r.seq);
  }

  const state = checkState(events, finalState, violations);
  return {
    operations: { tried: tried.size, acked: acked.size, reads: reads.length, takeovers: fences.length, configurations: configs.size, readsWithUnknownConfig: unknownEpochs, ...state },
    finalRecords: Object.fromEntries(Object.entries(finals).map(([k, v]) => [k, v.records.length])),
    violations,
  };
}

/**
 * The overwrite log: a read of the newest checkpoint never goes back past one acknowledged
 * before the read began (no rollback to an older slot, on any replica), never returns what no
 * primary tried, and no sequence holds two values; the final read holds the last acknowledged.
 */
function checkState(events, finalState, violations) {
  const tried = new Set();
  const bySeq = new Map();
  const claim = (seq, value, where) => {
    const had = bySeq.get(seq);
    if (had === undefined) bySeq.set(seq, value);
    else if (had !== value) violations.push(`checkpoint ${seq} holds '${had}' and '${value}' (${where})`);
  };
  for (const e of events) if (e.kind === 'CTRY') tried.add(e.rest[0]);
  const acks = events.filter((e) => e.kind === 'CACK').map((e) => ({ t: e.t, seq: Number(e.rest[1]), value: e.rest[0], name: e.name }));
  for (const ack of acks) claim(ack.seq, ack.value, `ack by ${ack.name}`);
  // Each read against every ack that finished before the read started (one machine, one clock).
  const startedAt = new Map();
  let latestReads = 0;
  for (const e of events) {
    if (e.kind === 'LTRY') startedAt.set(e.name, e.t);
    if (e.kind !== 'LATEST') continue;
    latestReads++;
    const [value, seqText] = e.rest;
    const seq = Number(seqText);
    const since = startedAt.get(e.name);
    let newestAcked = 0;
    for (const ack of acks) if (ack.t < since && ack.seq > newestAcked) newestAcked = ack.seq;
    if (seq < newestAcked) violations.push(`${e.name} read checkpoint ${seq} ('${value}') after checkpoint ${newestAcked} was acknowledged: rolled back`);
    if (value !== '-') {
      if (!tried.has(value)) violations.push(`${e.name} read checkpoint '${value}', which no primary ever tried`);
      claim(seq, value, `read by ${e.name}`);
    }
  }
  const lastAcked = acks.reduce((most, ack) => Math.max(most, ack.seq), 0);
  if (finalState?.error) violations.push(`the final read of the overwrite log failed: ${finalState.error.code} ${finalState.error.message}`);
  else if ((finalState?.sequence ?? 0) < lastAcked) violations.push(`the overwrite log ends at checkpoint ${finalState?.sequence ?? 0}, before the acknowledged ${lastAcked}`);
  else if (finalState) claim(finalState.sequence, finalState.state.toString(), 'final read');
  return { checkpointsAcked: acks.length, checkpointReads: latestReads };
}

function report(result, log) {
  log(`operations: ${result.operations.tried} appends tried, ${result.operations.acked} acknowledged, ${result.operations.reads} records read by backups, ${result.operations.takeovers} takeovers, ${result.operations.configurations} configurations; overwrite log: ${result.operations.checkpointsAcked} checkpoints acknowledged, ${result.operations.checkpointReads} reads of the newest`);
  if (!result.partitions) log('partitions: OFF (needs root and iproute2: each PMU then runs in a network namespace of its own)');
  log(`faults: ${Object.entries(result.faults).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`);
  log(`final: in sync ${result.finalConfig.inSync.join(',')} (epoch ${result.finalConfig.epoch}); log records from the cursor: ${Object.entries(result.finalRecords).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  if (result.notes.length > 0) log(`notes: ${result.notes.join('; ')}`);
  log(`violations: ${result.violations.length}`);
  for (const violation of result.violations.slice(0, 50)) log(`  ${violation}`);
}

module.exports = { runNemesis, check, report, canPartition };

if (require.main === module) {
  const args = process.argv.slice(2);
  const minutesAt = args.indexOf('--minutes');
  const minutes = minutesAt >= 0 ? Number(args[minutesAt + 1]) : 1;
  if (!(minutes > 0)) {
    process.stderr.write('usage: npm run nemesis -- --minutes N [--verbose]\n');
    process.exit(2);
  }
  if (spawnSync('sh', ['-c', 'command -v etcd']).status !== 0) {
    process.stderr.write('nemesis: etcd is not installed: apt-get update -qq && apt-get install -y -qq etcd-server\n');
    process.exit(2);
  }
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => process.exit(130));
  process.stdout.on('error', () => process.exit(1));
  const log = (line) => process.stdout.write(line + '\n');
  log(`nemesis: ${minutes} minute(s) of faults against a three-PMU set`);
  runNemesis({ durationMs: minutes * 60_000, verbose: args.includes('--verbose'), log }).then(
    (result) => {
      report(result, log);
      process.exit(result.violations.length === 0 ? 0 : 1);
    },
    (error) => {
      process.stderr.write(`nemesis: ${error.stack}\n`);
      process.exit(1);
    },
  );
}
