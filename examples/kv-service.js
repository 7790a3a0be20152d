'use strict';
// A key-value service over HTTP, run as a primary/backup pair on a PMU:
//   node examples/kv-service.js primary|backup  file.pmu | tcp://host:port  [http-port]
// The primary logs every PUT durably before answering it; the backup follows the log and, when
// the primary dies, takes over (fencing it) and serves. GET /journal lists keys in write order.
// Embedded (a file): the unit's lock admits one process, so the backup waits for the lock.
// Remote (a PMU server, PMU_USER/PMU_SECRET set): the backup follows live and watches the primary.
const http = require('node:http');
const { setTimeout: sleep } = require('node:timers/promises');
const pmu = require('..');

const [role, where, port = '0'] = process.argv.slice(2);
const remote = /^(tcp|tls|unix):/.test(where);
const state = { map: new Map(), journal: [] };
const set = (key, value) => (state.map.set(key, value), state.journal.push(key));
const apply = (record) => {
  const value = JSON.parse(record.payload);
  if (record.type === 'update') set(value[0], value[1]);
  else Object.assign(state, { map: new Map(value.map), journal: value.journal });
};

async function openRegion() {
  if (remote) {
    const client = await pmu.PmuClient.connect(where, { user: process.env.PMU_USER, secret: process.env.PMU_SECRET });
    return (await client.listRegions()).some((r) => r.name === 'kv') ? client.openRegion('kv') : client.createRegion('kv', 16 << 20);
  }
  for (let attempt = 0; ; attempt++) {
    try {
      return pmu.PersistentMemoryUnit.open(where, { size: 64 << 20 }).ensureRegion('kv', 16 << 20);
    } catch (error) {
      if (error.code !== 'ELOCKED') throw error; // ELOCKED: the primary is alive; wait for the lock
      if (attempt === 0) console.log('standing by: waiting for the unit lock');
      await sleep(1);
    }
  }
}

async function main() {
  const region = await openRegion();
  let took;
  if (role === 'backup' && remote) {
    const reader = await pmu.CheckpointReader.open(region, { waitForLogMs: 30_000 });
    console.log('standing by: following the log');
    const stop = new AbortController();
    const failure = reader.watchPrimary({ leaseMs: 500, signal: stop.signal }).finally(() => stop.abort());
    for await (const batch of reader.follow({ intervalMs: 2, signal: stop.signal, autoClear: true })) batch.forEach(apply);
    console.log(`primary lost: ${(await failure).reason}`);
    took = await pmu.openPrimary(reader);
  } else {
    took = await pmu.openPrimary(region, { mode: 'append' });
  }
  took.records.forEach(apply);
  // Start the new term with a snapshot, so the log before it can be cleared.
  const snapshot = await took.writer.snapshot(Buffer.from(JSON.stringify({ map: [...state.map], journal: state.journal })));
  await took.reader.clear(snapshot - 1);

  const server = http.createServer(async (request, response) => {
    const key = decodeURIComponent(request.url.slice(1));
    if (request.method === 'GET') return response.end(JSON.stringify(key === 'journal' ? state.journal : state.map.get(key) ?? null));
    let body = '';
    for await (const chunk of request) body += chunk;
    try {
      const sequence = await took.writer.append(Buffer.from(JSON.stringify([key, body])));
      set(key, body);
      response.end(JSON.stringify({ sequence }));
    } catch (error) {
      response.writeHead(503).end(error.code); // EFENCED: another primary took over
      if (error.code === 'EFENCED') process.exit(1);
    }
  });
  server.listen(Number(port), '127.0.0.1', () => console.log(`serving on ${server.address().port} as primary, epoch ${took.epoch}`));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
