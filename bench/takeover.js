#!/usr/bin/env node
'use strict';
// Takeover time of an append log: CheckpointReader.open + takeover() (fence, read every
// unread record, look past the end for damage, flush what was recovered), on a ring of
// --ring bytes filled with 4 KiB records written 'flushed' or 'mapped', N runs.
//   node bench/takeover.js [--runs 20] [--ring 1MiB] [--durability flushed|mapped] [--dist DIR]
// --dist: the built library to load (default ./dist), e.g. another checkout's, to compare.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { parseArgs } = require('node:util');

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '20' },
    ring: { type: 'string', default: String(1 << 20) },
    durability: { type: 'string', default: 'flushed' },
    dist: { type: 'string', default: path.join(__dirname, '..', 'dist') },
  },
});
const pmu = require(path.resolve(values.dist));
const runs = Number(values.runs);
const ring = Number(values.ring.replace(/mib$/i, '')) * (/mib$/i.test(values.ring) ? 1 << 20 : 1);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmu-takeover-'));

async function main() {
  const file = path.join(dir, 'unit.pmu');
  const unit = pmu.PersistentMemoryUnit.open(file, { size: ring + (4 << 20), maxRegions: 8 });
  const region = unit.createRegion('log', ring + pmu.HEADER_BYTES);
  const payload = Buffer.alloc(4096 - pmu.RECORD_HEADER_BYTES, 7);
  const times = [];
  let records = 0;
  for (let run = 0; run < runs; run++) {
    // Each run: a primary recovers the log, clears it, fills the ring again; then a fresh
    // reader takes over, and that is what is timed.
    const { writer, reader, records: recovered } = await pmu.openPrimary(region, { mode: 'append', durability: values.durability, heartbeatMs: 0 });
    if (recovered.length > 0) await reader.clear(recovered[recovered.length - 1].sequence);
    const room = Math.floor(ring / 4096) - 1;
    for (let i = 0; i < room; i++) await writer.append(payload);
    await writer.close();
    const started = performance.now();
    const taken = await pmu.openPrimary(await pmu.CheckpointReader.open(region), { heartbeatMs: 0 });
    times.push(performance.now() - started);
    records = taken.records.length;
    await taken.writer.close();
  }
  await unit.close();
  times.sort((a, b) => a - b);
  const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))].toFixed(2);
  console.log(`takeover of a ${ring}-byte ring holding ${records} x 4 KiB records written '${values.durability}', ${runs} runs (${values.dist}): p50 ${at(0.5)} ms, p90 ${at(0.9)} ms, max ${at(1)} ms`);
}

main()
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(() => fs.rmSync(dir, { recursive: true, force: true }));
