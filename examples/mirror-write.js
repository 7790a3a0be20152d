'use strict';
// Writes a line into a mirrored region and reads it back, saying which replica answered.
// Usage: PMU_ETCD=http://127.0.0.1:2379 PMU_USER=... PMU_SECRET=... node examples/mirror-write.js REGION TEXT
const { MirrorDirectory, MirroredRegion, PmuPool } = require('pmu/mirror');

(async () => {
  const [name, text = `hello at ${new Date().toISOString()}`] = process.argv.slice(2);
  const directory = MirrorDirectory.connect(process.env.PMU_ETCD || 'http://127.0.0.1:2379', { set: process.env.PMU_SET });
  const pool = new PmuPool(directory, { user: process.env.PMU_USER, secret: process.env.PMU_SECRET, timeoutMs: 1000 });
  const region = await MirroredRegion.open(directory, pool, name);
  const line = Buffer.alloc(64);
  line.write(text.slice(0, 64));
  await region.write(0, line, { durability: 'flushed' });
  const back = (await region.read(0, 64)).toString().replace(/\0+$/, '');
  console.log(`wrote and read back '${back}' (read from ${region.stats.lastRead.pmu}; in sync: ${region.configuration.inSync.join(', ')}; epoch ${region.configuration.epoch})`);
  await region.close();
  await pool.close();
  directory.close();
})().catch((error) => {
  console.error(`${error.code || ''} ${error.message}`);
  process.exit(1);
});
