'use strict';
// What sealing a session costs (docs/PROTOCOL.md, "Sessions bound to the connection"):
//   1. FrameSeal.next per frame, for a 4 KiB write's frame, a small reply and a 64 KiB frame;
//   2. a remote 4 KiB 'mapped' write over loopback TCP to the bench's PMU server process, p50 and
//      p99, unsealed and sealed, interleaved in rounds so both see the same machine.
// Usage: node bench/tools/seal-cost.js [--rounds N] [--writes N]
const crypto = require('node:crypto');
const os = require('node:os');
const path = require('node:path');
const fs = require('node:fs');
const { PmuClient } = require('pmu');
const { FrameSeal } = require('pmu/wire');
const { startPmuServer } = require('../lib/pmu-server');
const { sampleAsync, sampleSync, summarize } = require('../lib/stats');

const arg = (name, fallback) => {
  const at = process.argv.indexOf(name);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
};
const rounds = arg('--rounds', 5);
const writes = arg('--writes', 4000);

(async () => {
  console.log(`machine: ${os.cpus().length} × ${os.cpus()[0].model}, Node ${process.version}, load ${os.loadavg()[0].toFixed(2)}`);
  const seal = new FrameSeal(crypto.randomBytes(32));
  for (const bytes of [12, 12 + 60 + 4096, 64 * 1024]) {
    const frame = crypto.randomBytes(bytes);
    const s = summarize(sampleSync(() => seal.next([frame]), 20_000, 2000));
    console.log(`FrameSeal.next, ${bytes} B frame: p50 ${(s.p50 * 1000).toFixed(0)} ns, p99 ${(s.p99 * 1000).toFixed(0)} ns`);
  }

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmu-seal-bench-'));
  const server = await startPmuServer({ dir }, 'seal');
  try {
    const admin = await PmuClient.connect(server.urls.TCP, server.credentials);
    await admin.createRegion('seal-bench', 1 << 20);
    const clients = {
      unsealed: await PmuClient.connect(server.urls.TCP, { ...server.credentials, seal: false }),
      sealed: await PmuClient.connect(server.urls.TCP, { ...server.credentials, seal: true }),
    };
    const regions = {};
    for (const [name, client] of Object.entries(clients)) regions[name] = await client.openRegion('seal-bench');
    const payload = crypto.randomBytes(4096);
    const samples = { unsealed: [], sealed: [] };
    for (let round = 0; round < rounds; round++) {
      for (const name of round % 2 ? ['sealed', 'unsealed'] : ['unsealed', 'sealed']) {
        samples[name].push(...(await sampleAsync((i) => regions[name].write((i % 200) * 4096, payload, { durability: 'mapped' }), writes, 500)));
      }
    }
    const summary = Object.fromEntries(Object.entries(samples).map(([name, s]) => [name, summarize(s)]));
    for (const [name, s] of Object.entries(summary)) console.log(`remote 4 KiB 'mapped' write over TCP, ${name}: p50 ${s.p50.toFixed(1)} µs, p99 ${s.p99.toFixed(1)} µs (${s.n} writes)`);
    console.log(`sealed / unsealed: p50 ${(summary.sealed.p50 / summary.unsealed.p50).toFixed(2)}×, p99 ${(summary.sealed.p99 / summary.unsealed.p99).toFixed(2)}×; per round trip +${(summary.sealed.p50 - summary.unsealed.p50).toFixed(1)} µs at p50`);
    for (const client of [admin, ...Object.values(clients)]) await client.close();
  } finally {
    server.child.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
