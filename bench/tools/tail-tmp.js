'use strict';
const { PmuClient, openPrimary } = require('pmu');
const { startPmuServer } = require('../lib/pmu-server');
const { summarize } = require('../lib/stats');
const { performance } = require('node:perf_hooks');
(async () => {
  const ctx = { dir: require('fs').mkdtempSync('/tmp/tail-') };
  const server = await startPmuServer(ctx, 'srv', { env: { NODE_OPTIONS: process.env.SRV_OPTS || '' } });
  let gcLines = 0; server.child.stdout.on('data', (c) => { gcLines += (c.toString().match(/Scavenge|Mark-Compact|Mark-sweep/g) || []).length; });
  const client = await PmuClient.connect(server.urls.TCP, server.credentials);
  await client.createRegion('w', 1 << 20); await client.createRegion('log', 64 << 20);
  const region = await client.openRegion('w'); const log = await client.openRegion('log');
  const writer = (await openPrimary(log, { mode: 'append', heartbeatMs: Number(process.env.HB || 1000) })).writer;
  const data = Buffer.alloc(4096, 0x5a);
  for (const [name, op] of [['write', (i) => region.write((i % 64) * 4096, data, { durability: 'flushed' })], ['append', () => writer.append(data)]]) {
    for (let i = 0; i < 300; i++) await op(i);
    const n = 4000, lat = new Float64Array(n), at = new Float64Array(n);
    const g0 = gcLines;
    for (let i = 0; i < n; i++) { const t = performance.now(); await op(i); at[i] = t; lat[i] = (performance.now() - t) * 1000; }
    const s = summarize(Array.from(lat, (x) => x * 1000));
    const slow = []; for (let i = 0; i < n; i++) if (lat[i] > s.p50 * 2) slow.push(i);
    console.log(name, 'p50', s.p50.toFixed(0), 'p99', s.p99.toFixed(0), 'slow(>2xp50)', slow.length, 'server GC lines', gcLines - g0);
    console.log('  slow idx', slow.slice(0, 40).join(' '));
    console.log('  slow us', slow.slice(0, 40).map((i) => lat[i].toFixed(0)).join(' '));
  }
  await writer.close(); await client.close(); await server.stop();
})();
