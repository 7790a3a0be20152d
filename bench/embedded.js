'use strict';
// Embedded 4 KiB write/read latency next to the raw floor (memcpy, memcpy + msync, timed in C
// on a file prepared the same way), all in one run. Usage: node bench/embedded.js [iterations]
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { PersistentMemoryUnit } = require('../dist');
const { addon } = require('../dist/unit/native');
const { summarize, sampleSync, sampleAsync, formatUs } = require('./lib/stats');
const { bytesWrittenDuring } = require('./lib/disk');

async function main() {
  const iterations = Number(process.argv[2] || 2000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmu-bench-'));
  const size = 4096;
  const data = Buffer.alloc(size, 0x5a);
  const rows = [];
  let perMsync = 'unknown';
  try {
    rows.push(['floor: memcpy 4 KiB into the mapping (C)', summarize(addon.measureFloor(path.join(dir, 'floor'), 1 << 24, size, iterations, false))]);
    rows.push(['floor: memcpy + msync 4 KiB (C)', summarize(addon.measureFloor(path.join(dir, 'floor'), 1 << 24, size, iterations, true))]);

    const unit = PersistentMemoryUnit.open(path.join(dir, 'bench.pmu'), { size: 1 << 24 });
    const region = unit.createRegion('bench', 1 << 20);
    const target = Buffer.alloc(size);
    rows.push(["pmu writeSync, durability 'mapped'", summarize(sampleSync(() => region.writeSync(0, data, { durability: 'mapped' }), iterations))]);
    const flushed = await bytesWrittenDuring(dir, () => sampleSync(() => region.writeSync(0, data), iterations));
    rows.push(["pmu writeSync, durability 'flushed'", summarize(flushed.result)]);
    perMsync = flushed.bytes === undefined ? 'unknown' : `${Math.round(flushed.bytes / iterations / 1024)} KiB`;
    rows.push(["pmu await write, durability 'flushed'", summarize(await sampleAsync(() => region.write(0, data), iterations))]);
    rows.push(['pmu readIntoSync', summarize(sampleSync(() => region.readIntoSync(0, target), iterations))]);
    rows.push(['pmu readSync (fresh Buffer)', summarize(sampleSync(() => region.readSync(0, size), iterations))]);
    await unit.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const floor = rows[1][1].p50;
  console.log(`embedded 4 KiB, ${iterations} sequential ops each, ${os.cpus().length} × ${os.cpus()[0].model}, ${os.release()}, file in ${os.tmpdir()}`);
  console.log(`device bytes written per 'flushed' 4 KiB write (data + file system journal): ${perMsync}`);
  console.log('| operation | p50 | p99 | p50 / msync floor |');
  console.log('|---|---:|---:|---:|');
  for (const [name, s] of rows) console.log(`| ${name} | ${formatUs(s.p50)} | ${formatUs(s.p99)} | ${(s.p50 / floor).toFixed(2)}× |`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
