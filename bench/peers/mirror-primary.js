'use strict';
// A primary on a mirrored region, in its own process so a test or bench/mirror-failover.js can SIGKILL it. It prints
// "ready" once it has appended its first record, then appends until killed.
// Environment: ETCD_URL, SET, REGION, PMU_USER, PMU_SECRET.
const { MirrorDirectory, MirroredRegion, PmuPool } = require('pmu/mirror');
const { openPrimary } = require('pmu');

(async () => {
  const directory = MirrorDirectory.connect(process.env.ETCD_URL, { set: process.env.SET, timeoutMs: 1000 });
  const pool = new PmuPool(directory, { user: process.env.PMU_USER, secret: process.env.PMU_SECRET, timeoutMs: 1000 });
  const region = await MirroredRegion.open(directory, pool, process.env.REGION);
  const { writer } = await openPrimary(region, { mode: 'append', heartbeatMs: 100 });
  await writer.append(Buffer.from('first'));
  process.stdout.write('ready\n');
  for (let i = 0; ; i++) await writer.append(Buffer.from(`record ${i}`));
})().catch((error) => {
  process.stderr.write(`mirror primary: ${error.code} ${error.message}\n`);
  process.exit(1);
});
