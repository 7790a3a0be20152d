#!/usr/bin/env node
'use strict';
// LangGraph checkpointers side by side: PmuSaver (embedded 'flushed' and 'mapped', remote
// through `pmu serve`), @langchain/langgraph-checkpoint-sqlite (WAL, synchronous=FULL: durable
// per commit) on the same disk, and MemorySaver.
//   node bench/langgraph.js [--quick] [--state 1024,16384] [--only name,name]
// A step is what LangGraph saves per superstep: a checkpoint whose state has four channels
// (a message list, a scratchpad, a plan, a counter) totalling --state bytes, two of which
// changed, then the pending write of the task that changed them. Threads are 50 steps long and
// deleted when done (untimed), so every store holds a bounded live state. Needs dist/ (npm run prepare).
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { parseArgs } = require('node:util');
const { MemorySaver } = require('@langchain/langgraph-checkpoint');
const { SqliteSaver } = require('@langchain/langgraph-checkpoint-sqlite');
const Database = require('better-sqlite3');
const { PersistentMemoryUnit, PmuClient } = require('..');
const { PmuSaver } = require('pmu/langgraph');
const { summarize } = require('./lib/stats');

const THREAD_STEPS = 50;
const REGION_BYTES = 64 << 20;

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    state: { type: 'string', default: '1024,16384' },
    only: { type: 'string' },
  },
});
const quick = args.quick;
const LATENCY_OPS = quick ? 100 : 1000;
const THROUGHPUT_MS = quick ? 300 : 1500;
const WARMUP_STEPS = quick ? 200 : 2000;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmu-bench-langgraph-'));

/**
 * Checkpoint ids: increasing strings, as LangGraph's uuid6 ids are. Not uuid6 itself: it costs
 * ~20-100 µs here (random bytes per call), the same for every saver, and would blur the rows.
 */
let idCounter = 0;
const idPrefix = Date.now().toString(16).padStart(12, '0');
function nextId() {
  return `${idPrefix}-${String(++idCounter).padStart(12, '0')}`;
}

/** Text of `bytes` characters that differs per step (no store here compresses, but be honest). */
function text(bytes, seed) {
  const unit = `${seed}:lorem ipsum dolor sit amet, consectetur adipiscing elit; `;
  return unit.repeat(Math.ceil(bytes / unit.length)).slice(0, bytes);
}

/** One thread's run of steps, LangGraph-shaped. */
class Thread {
  constructor(saver, stateBytes, name) {
    this.saver = saver;
    this.stateBytes = stateBytes;
    this.name = name;
    this.generation = 0;
    this.reset();
  }

  reset() {
    this.id = `${this.name}-${this.generation++}`;
    this.step = 0;
    this.config = { configurable: { thread_id: this.id, checkpoint_ns: '' } };
    const quarter = Math.floor(this.stateBytes / 4);
    this.values = {
      messages: [{ role: 'user', content: text(quarter, 'm0') }, { role: 'assistant', content: text(quarter, 'a0') }],
      scratch: text(quarter, 's0'),
      plan: { goal: 'bench', notes: text(quarter - 40, 'p0') },
      counter: 0,
    };
    this.versions = { messages: 1, scratch: 1, plan: 1, counter: 1 };
    this.first = true;
  }

  /** put + putWrites of one step; `time` receives the put's duration (ns). */
  async run(time) {
    if (this.step === THREAD_STEPS) {
      await this.saver.deleteThread(this.id);
      this.reset();
    }
    const rotating = ['messages', 'scratch', 'plan'][this.step % 3];
    const quarter = Math.floor(this.stateBytes / 4);
    const seed = `${this.id}.${this.step}`;
    const update =
      rotating === 'messages'
        ? [{ role: 'user', content: text(quarter, `m${seed}`) }, { role: 'assistant', content: text(quarter, `a${seed}`) }]
        : rotating === 'scratch'
          ? text(quarter, `s${seed}`)
          : { goal: 'bench', notes: text(quarter - 40, `p${seed}`) };
    this.values = { ...this.values, [rotating]: update, counter: this.step + 1 };
    const newVersions = this.first ? { ...this.versions } : { [rotating]: ++this.versions[rotating], counter: ++this.versions.counter };
    this.first = false;
    const checkpoint = {
      v: 4,
      id: nextId(),
      ts: new Date().toISOString(),
      channel_values: this.values,
      channel_versions: { ...this.versions },
      versions_seen: { work: { counter: this.versions.counter } },
    };
    const metadata = { source: 'loop', step: this.step, parents: {} };
    const t0 = process.hrtime.bigint();
    this.config = await this.saver.put(this.config, checkpoint, metadata, newVersions);
    if (time) time(Number(process.hrtime.bigint() - t0));
    await this.saver.putWrites(this.config, [[rotating, update], ['counter', this.step + 2]], `task-${this.step}`, `~__pregel_pull, work`);
    this.step++;
  }
}

let servers = 0;
async function startServer() {
  const dataDir = path.join(dir, `serve-${++servers}`);
  const server = spawn(process.execPath, [path.join(__dirname, '..', 'bin', 'pmu.js'), 'serve', '--data', dataDir, '--port', '0', '--size', '256MiB'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (chunk) => {
      out += chunk;
      const match = out.match(/listening on (tcp:\/\/\S+)/);
      if (match) resolve(match[1]);
    });
    server.once('exit', (code) => reject(new Error(`pmu serve exited (${code}): ${out}`)));
  });
  const credential = JSON.parse(fs.readFileSync(path.join(dataDir, 'admin.credential.json'), 'utf8'));
  const client = await PmuClient.connect(url, { user: credential.user, secret: credential.secret });
  return { server, client };
}

/**
 * Writes zeros over the whole region and flushes it, as PostgreSQL's wal_init_zero does: the
 * measured saver then writes over blocks already written (steady state, once the ring has
 * lapped), not blocks fallocate left unwritten (FLOORS.md, trap 5). The header is zeroed too,
 * so the saver formats a blank region.
 */
async function preWrite(region) {
  const zeros = Buffer.alloc(1 << 20);
  for (let offset = 0; offset < region.size; offset += zeros.length) {
    await region.write(offset, zeros.subarray(0, Math.min(zeros.length, region.size - offset)), { durability: 'mapped' });
  }
  await region.flush();
}

const SAVERS = {
  'pmu-flushed': {
    label: "PmuSaver, embedded, 'flushed'",
    async open(stateBytes, n) {
      const unit = PersistentMemoryUnit.open(path.join(dir, `flushed-${stateBytes}-${n}.pmu`), { size: REGION_BYTES + (8 << 20) });
      const region = unit.createRegion('lg', REGION_BYTES);
      await preWrite(region);
      const saver = await PmuSaver.open(region, { durability: 'flushed' });
      return { saver, close: async () => (await saver.close(), await unit.close()) };
    },
  },
  'pmu-mapped': {
    label: "PmuSaver, embedded, 'mapped'",
    async open(stateBytes, n) {
      const unit = PersistentMemoryUnit.open(path.join(dir, `mapped-${stateBytes}-${n}.pmu`), { size: REGION_BYTES + (8 << 20) });
      const region = unit.createRegion('lg', REGION_BYTES);
      await preWrite(region);
      const saver = await PmuSaver.open(region, { durability: 'mapped' });
      return { saver, close: async () => (await saver.close(), await unit.close()) };
    },
  },
  'pmu-remote': {
    label: "PmuSaver, remote (pmu serve, TCP loopback), 'flushed'",
    async open(stateBytes, n) {
      const { server, client } = await startServer();
      const region = await client.createRegion(`lg-${stateBytes}-${n}`, REGION_BYTES);
      await preWrite(region);
      const saver = await PmuSaver.open(region, { durability: 'flushed' });
      return {
        saver,
        close: async () => {
          await saver.close();
          await client.close();
          server.kill('SIGTERM');
          await new Promise((resolve) => server.once('exit', resolve));
        },
      };
    },
  },
  sqlite: {
    label: 'SqliteSaver (WAL, synchronous=FULL)',
    async open(stateBytes, n) {
      const db = new Database(path.join(dir, `sqlite-${stateBytes}-${n}.db`));
      const saver = new SqliteSaver(db);
      saver.setup(); // sets journal_mode=WAL
      // better-sqlite3 builds SQLite with WAL commits at synchronous=NORMAL (not durable on power loss): ask for FULL.
      db.pragma('synchronous = FULL');
      return { saver, close: async () => db.close() };
    },
  },
  memory: {
    label: 'MemorySaver (in memory, not durable)',
    async open() {
      return { saver: new MemorySaver(), close: async () => undefined };
    },
  },
};

async function measure(key, stateBytes) {
  const kind = SAVERS[key];
  const row = { saver: kind.label, state: stateBytes };
  // Latencies: one thread, one op at a time.
  {
    const { saver, close } = await kind.open(stateBytes, 1);
    const thread = new Thread(saver, stateBytes, 'latency');
    // Steady state, not V8 tiering: every saver gets the same untimed steps first.
    for (let i = 0; i < WARMUP_STEPS; i++) await thread.run();
    const puts = [];
    for (let i = 0; i < LATENCY_OPS; i++) await thread.run((ns) => puts.push(ns));
    row.put = summarize(puts);
    if (thread.step === 0) await thread.run();
    const gets = new Float64Array(LATENCY_OPS);
    const latest = { configurable: { thread_id: thread.id, checkpoint_ns: '' } };
    for (let i = 0; i < LATENCY_OPS; i++) {
      const t0 = process.hrtime.bigint();
      const tuple = await saver.getTuple(latest);
      gets[i] = Number(process.hrtime.bigint() - t0);
      if (!tuple) throw new Error(`${kind.label}: getTuple found nothing`);
    }
    row.getTuple = summarize(gets);
    await close();
  }
  // Throughput: steps (put + putWrites) per second, 1 and 16 threads each awaiting its own steps.
  for (const threads of [1, 16]) {
    const { saver, close } = await kind.open(stateBytes, 1 + threads);
    const workers = Array.from({ length: threads }, (_, i) => new Thread(saver, stateBytes, `t${i}`));
    for (const worker of workers) for (let i = 0; i < Math.ceil(WARMUP_STEPS / threads); i++) await worker.run();
    let steps = 0;
    const deadline = performance.now() + THROUGHPUT_MS;
    const t0 = performance.now();
    await Promise.all(
      workers.map(async (worker) => {
        while (performance.now() < deadline) {
          await worker.run();
          steps++;
        }
      }),
    );
    row[`steps${threads}`] = steps / ((performance.now() - t0) / 1000);
    await close();
  }
  return row;
}

function format(rows) {
  const us = (value) => (value >= 1000 ? `${(value / 1000).toFixed(2)} ms` : `${value.toFixed(value < 10 ? 1 : 0)} µs`);
  const rate = (value) => (value >= 10000 ? `${Math.round(value / 1000)}k` : String(Math.round(value)));
  const lines = ['| saver | state | put p50 | put p99 | getTuple p50 | steps/s, 1 thread | steps/s, 16 threads |', '|---|---|---|---|---|---|---|'];
  for (const row of rows) {
    lines.push(`| ${row.saver} | ${row.state >= 1024 ? `${row.state / 1024} KiB` : `${row.state} B`} | ${us(row.put.p50)} | ${us(row.put.p99)} | ${us(row.getTuple.p50)} | ${rate(row.steps1)} | ${rate(row.steps16)} |`);
  }
  return lines.join('\n');
}

async function main() {
  const sizes = args.state.split(',').map(Number);
  const keys = args.only ? args.only.split(',') : Object.keys(SAVERS);
  for (const key of keys) if (!SAVERS[key]) throw new Error(`unknown saver '${key}'; choose from ${Object.keys(SAVERS).join(', ')}`);
  console.log(`# LangGraph checkpointers (${os.cpus().length} CPUs, Node ${process.versions.node}, files in ${dir})${quick ? ' [quick: not for quoting]' : ''}`);
  const rows = [];
  for (const stateBytes of sizes) {
    for (const key of keys) {
      const row = await measure(key, stateBytes);
      rows.push(row);
      process.stderr.write(`  ${row.saver}, ${stateBytes} B: put p50 ${row.put.p50.toFixed(1)} µs, getTuple p50 ${row.getTuple.p50.toFixed(1)} µs, ${Math.round(row.steps1)} / ${Math.round(row.steps16)} steps/s\n`);
    }
  }
  console.log(format(rows));
}

main()
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(() => fs.rmSync(dir, { recursive: true, force: true }));
