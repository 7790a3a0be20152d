'use strict';
// A/B of flush strategies: one pmu server per PMU_BENCH_FLUSH value, rounds alternating.
process.chdir('/work/main');
const { PmuClient } = require("pmu");
const { startPmuServer } = require('../lib/pmu-server');
const { summarize, sampleAsync } = require('../lib/stats');
const modes = process.argv.slice(2);
(async () => {
  const ctx = { dir: require('fs').mkdtempSync('/tmp/ab-') };
  const s = [];
  for (const m of modes) {
    const server = await startPmuServer(ctx, 'srv-' + m, { env: { PMU_BENCH_FLUSH: m } });
    const client = await PmuClient.connect(server.urls.TCP, server.credentials);
    await client.createRegion('r', 1 << 20);
    s.push({ m, server, client, region: await client.openRegion('r'), samples: [] });
  }
  const data = Buffer.alloc(4096, 0x5a);
  for (let round = 0; round < 30; round++) for (const x of s) x.samples.push(...(await sampleAsync((i) => x.region.write((i % 64) * 4096, data, { durability: 'flushed' }), 150, 5)));
  for (const x of s) { const r = summarize(x.samples); console.log(x.m.padEnd(10), 'p50', r.p50.toFixed(1), 'p99', r.p99.toFixed(1), 'mean', r.mean.toFixed(1)); await x.client.close(); await x.server.stop(); }
})();
