'use strict';
/**
 * What a /metrics scrape costs the server, against the size of an uncleared checkpoint log:
 * a PMU server process with its metrics endpoint (every scrape computed afresh, no reuse), a
 * region filled with minimal records (1-byte payloads, 48 bytes each: the red team's flood),
 * then per size: how long until the lag is exact (the background walk, once), scrape
 * latency p50/p99, and a well-behaved client's 4 KiB 'flushed' write p50/p99 alone and under
 * a scrape every 10 ms.
 *
 *   node bench/metrics-scrape.js [--sizes 1,16,128] [--writes 2000] [--reuse 0]
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { PmuClient, openPrimary } = require('pmu');
const { encodeRecord, epochTag } = require('../dist/checkpoint/format/record');
const { freePort } = require('./lib/free-port');
const { startPmuServer } = require('./lib/pmu-server');
const { summarize } = require('./lib/stats');

const args = process.argv.slice(2);
const arg = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const sizesMiB = arg('--sizes', '1,16,128').split(',').map(Number);
const writes = Number(arg('--writes', 2000));
// --reuse MS: how long the server reuses a scrape's text (default 0: every scrape computed afresh, the worst case; pmu serve uses 1000).
const reuseMs = Number(arg('--reuse', 0));
const MiB = 1 << 20;

async function scrapeOnce(url) {
  const started = process.hrtime.bigint();
  const text = await (await fetch(url)).text();
  return { ns: Number(process.hrtime.bigint() - started), text };
}

/** Fills the ring of a freshly formatted log with minimal records, written as raw bytes (seconds, not minutes). */
async function fill(region, ringBytes) {
  const { writer } = await openPrimary(region, { mode: 'append', heartbeatMs: 0 });
  const epoch = writer.epoch;
  await writer.close();
  const logId = (await region.read(64, 4)).readUInt32LE(0); // the header's log id (layout.ts), which seeds every record CRC
  const dataOffset = 4096;
  const recordBytes = 48;
  const count = Math.floor((ringBytes - recordBytes) / recordBytes);
  const chunkRecords = Math.floor(MiB / recordBytes);
  for (let first = 0; first < count; first += chunkRecords) {
    const n = Math.min(chunkRecords, count - first);
    const chunk = Buffer.alloc(n * recordBytes);
    for (let i = 0; i < n; i++) {
      const sequence = first + i + 1;
      encodeRecord({ sequence, position: (first + i) * recordBytes, durable: sequence, epoch: epochTag(epoch), type: 'update' }, Buffer.from('x'), logId).copy(chunk, i * recordBytes);
    }
    await region.write(dataOffset + first * recordBytes, chunk, { durability: 'mapped' });
  }
  return count;
}

async function writeLatencies(region, n) {
  const samples = new Float64Array(n);
  const data = Buffer.alloc(4096, 7);
  for (let i = 0; i < n; i++) {
    const started = process.hrtime.bigint();
    await region.write((i % 64) * 4096, data, { durability: 'flushed' });
    samples[i] = Number(process.hrtime.bigint() - started);
  }
  return summarize(samples);
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmu-bench-metrics-'));
  const port = await freePort();
  const unitBytes = (Math.max(...sizesMiB) + 8) * MiB;
  const server = await startPmuServer({ dir }, 'server', { unitBytes, env: { PMU_BENCH_METRICS: `127.0.0.1:${port}`, PMU_BENCH_METRICS_INTERVAL_MS: String(reuseMs) } });
  const url = `http://127.0.0.1:${port}/metrics`;
  const client = await PmuClient.connect(server.urls.TCP, server.credentials);
  const rows = [];
  try {
    const writer = await client.createRegion('client', 64 * 4096);
    for (const mib of sizesMiB) {
      const name = `flood-${mib}`;
      const region = await client.createRegion(name, mib * MiB + 4096);
      const records = await fill(region, mib * MiB);
      const started = Date.now();
      for (;;) {
        const { text } = await scrapeOnce(url);
        if (new RegExp(`pmu_checkpoint_lag_exact\\{region="#\\d+"\\} 1`).test(text) && text.includes(`pmu_checkpoint_lag_records{region="#`) && text.match(/pmu_checkpoint_lag_records\{region="#\d+"\} (\d+)/g).some((line) => line.endsWith(` ${records}`))) break;
        if (Date.now() - started > 120_000) throw new Error(`the lag of ${name} was not exact within 120 s`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const walkMs = Date.now() - started;
      const scrapes = new Float64Array(200);
      for (let i = 0; i < scrapes.length; i++) scrapes[i] = (await scrapeOnce(url)).ns;
      const scrape = summarize(scrapes);
      const alone = await writeLatencies(writer, writes);
      let scraping = true;
      const loop = (async () => {
        while (scraping) {
          await scrapeOnce(url);
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      })();
      const under = await writeLatencies(writer, writes);
      scraping = false;
      await loop;
      rows.push({ mib, records, walkMs, scrape, alone, under });
      await region.close();
      await client.deleteRegion(name);
    }
  } finally {
    await client.close();
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const f = (us) => (us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(0)} µs`);
  console.log(`metrics scrape vs uncleared log size (${os.cpus().length} cores, ${os.cpus()[0]?.model ?? ''}); ${reuseMs === 0 ? 'every scrape computed afresh' : `a scrape's text reused for ${reuseMs} ms`}; scrape times seen by an HTTP client (fetch)`);
  console.log('log MiB  records     first walk  scrape p50  scrape p99  write p50/p99 alone  under a scrape every 10 ms  p99 ratio');
  for (const r of rows) {
    console.log(
      `${String(r.mib).padStart(7)}  ${String(r.records).padStart(9)}  ${String(r.walkMs + ' ms').padStart(10)}  ${f(r.scrape.p50).padStart(10)}  ${f(r.scrape.p99).padStart(10)}  ${`${f(r.alone.p50)} / ${f(r.alone.p99)}`.padStart(19)}  ${`${f(r.under.p50)} / ${f(r.under.p99)}`.padStart(26)}  ${(r.under.p99 / r.alone.p99).toFixed(2)}x`,
    );
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
