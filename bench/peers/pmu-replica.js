'use strict';
// One PMU of a test or bench set (scripts/nemesis, bench/mirror.js): a PmuServer on its own unit file, registered in the set's
// directory, with the replica agent that resyncs it whenever it is out of sync.
// Environment: UNIT, HOST, PORT, ETCD, SET, ID, PMU_USER, PMU_SECRET.
const { PersistentMemoryUnit, PmuServer, UserDirectory } = require('pmu');
const { MirrorDirectory, PmuPool, startReplicaAgent } = require('pmu/mirror');

(async () => {
  const env = process.env;
  const unitBytes = Number(env.UNIT_BYTES || 64 * 1024 * 1024);
  const unit = PersistentMemoryUnit.open(env.UNIT, { size: unitBytes });
  const users = new UserDirectory({ [env.PMU_USER]: { secret: env.PMU_SECRET, admin: true } });
  const server = new PmuServer({ unit, users, tcp: { host: env.HOST || '127.0.0.1', port: Number(env.PORT) }, identity: env.ID, closeTimeoutMs: 100 });
  await server.listen();
  const directory = MirrorDirectory.connect(env.ETCD, { set: env.SET, timeoutMs: 1000 });
  await directory.addPmu({ id: env.ID, url: `tcp://${env.HOST || '127.0.0.1'}:${env.PORT}`, capacity: unitBytes });
  const pool = new PmuPool(directory, { user: process.env.PMU_USER, secret: process.env.PMU_SECRET, timeoutMs: 2000 });
  startReplicaAgent(directory, pool, env.ID, {
    // RESYNC_BYTES_PER_SECOND: what `pmu serve --join --resync-rate` sets.
    resyncBytesPerSecond: env.RESYNC_BYTES_PER_SECOND ? Number(env.RESYNC_BYTES_PER_SECOND) : undefined,
    onEvent: (event) => process.stdout.write(`${Date.now()} AGENT ${event.kind} ${event.region}${event.detail ? ' ' + event.detail.replace(/\n/g, ' ') : ''}\n`),
  });
  process.stdout.write(`${Date.now()} READY\n`);
})().catch((error) => {
  process.stderr.write(`pmu ${process.env.ID}: ${error.code || ''} ${error.stack}\n`);
  process.exit(1);
});
