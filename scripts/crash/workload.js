'use strict';
/**
 * One recorded workload: the real public API (embedded unit, regions, checkpoint log and slots),
 * each operation logged in the model with the barrier count at issue and at acknowledgement.
 * Deterministic for a seed (no timers: heartbeats are off). The server's region operations run
 * over loopback TCP against the same unit: a PmuServer in this process, one admin client.
 */
const { History, rng, pattern } = require('./model');

const UNIT_BYTES = 1 << 20;
const DATA_BYTES = 64 * 1024;
const SLOT_BYTES = 1536; // not a divisor of 4096: slots straddle sectors and pages
const SLOTS = Math.floor(DATA_BYTES / SLOT_BYTES);
const LOG_BYTES = 20 * 1024; // small ring: it wraps many times per run
const CKPT_BYTES = 16 * 1024;
const TMP_BYTES = [4096, 8192, 12288, 20480];

async function runWorkload({ pmu, recorder, file, seed, steps }) {
  const r = rng(seed);
  const count = () => recorder.barrierCount();
  const model = {
    seed,
    regions: new History(), // key: region name, value: 'exists' | 'absent'
    slots: new History(), // key: `${slot}`, value: version label
    tmp: new Map(), // name -> { write: { offset, length, label, event } }
    appends: new Map(), // id -> { payload, s, c, d, sequence }
    clears: [], // { upTo, s, c }
    checkpoints: new Map(), // id -> { payload, s, c, d, sequence }
    logFormat: undefined, // event-like { s, c, d }
    ckptFormat: undefined,
    marks: 0,
    ops: {},
  };
  const tally = (name) => (model.ops[name] = (model.ops[name] ?? 0) + 1);
  let nextId = 1;

  // The recorder's unit lives on tmpfs on purpose: the crash states model the device themselves.
  const onWarning = (warning) => warning.code === 'PMU_VOLATILE_FILE' || process.emitWarning(warning.message, warning.code);
  let unit = pmu.PersistentMemoryUnit.open(file, { size: UNIT_BYTES, maxRegions: 16, onWarning });
  const SECRET = 'crash-states-secret-0123456789abcdef';
  let server;
  let client;
  let remoteData;
  const startServer = async () => {
    server = new pmu.PmuServer({ unit, users: new pmu.UserDirectory({ admin: { secret: SECRET, admin: true } }), tcp: { host: '127.0.0.1', port: 0 }, closeUnit: false });
    const addresses = await server.listen();
    client = await pmu.PmuClient.connect(addresses.tcp, { user: 'admin', secret: SECRET, timeoutMs: 10000 });
    remoteData = undefined;
  };
  const stopServer = async () => {
    await client.close();
    await server.close();
  };
  const createRegion = (name, size) => {
    const e = model.regions.begin(name, 'exists', count(), true);
    const region = unit.createRegion(name, size);
    model.regions.ack(e, count());
    return region;
  };
  let data = createRegion('data', DATA_BYTES);
  let logRegion = createRegion('log', LOG_BYTES);
  let ckptRegion = createRegion('ckpt', CKPT_BYTES);

  const startLog = async (durability) => {
    const s = count();
    const t = await pmu.openPrimary(logRegion, { mode: 'append', durability, heartbeatMs: 0 });
    if (!model.logFormat) model.logFormat = { s, c: count(), d: count() };
    return t;
  };
  let ckptDurability = 'flushed';
  const startCkpt = async () => {
    const s = count();
    const t = await pmu.openPrimary(ckptRegion, { mode: 'overwrite', durability: ckptDurability, heartbeatMs: 0 });
    if (!model.ckptFormat) model.ckptFormat = { s, c: count(), d: count() };
    return t;
  };
  let logDurability = 'flushed';
  let log = await startLog(logDurability);
  let ckpt = await startCkpt();
  let reader = log.reader;
  await startServer();
  remoteData = await client.openRegion('data');
  let tmpNumber = 0;
  const liveTmp = [];

  const writeSlot = async (slot, durability, sync, remote) => {
    const label = `slot${slot}.v${nextId++}`;
    const e = model.slots.begin(String(slot), label, count(), durability === 'flushed');
    const bytes = pattern(label, SLOT_BYTES);
    if (remote) await remoteData.write(slot * SLOT_BYTES, bytes, { durability });
    else if (sync) data.writeSync(slot * SLOT_BYTES, bytes, { durability });
    else await data.write(slot * SLOT_BYTES, bytes, { durability });
    model.slots.ack(e, count());
  };

  const append = async (kind) => {
    const id = nextId++;
    const length = r.int(8, 700);
    const payload = Buffer.concat([Buffer.from(`rec${id}|`), pattern(`rec${id}`, length)]);
    const entry = { payload, s: count(), c: Infinity, d: Infinity, sequence: undefined, durability: logDurability };
    model.appends.set(id, entry);
    const sequence = kind === 'snapshot' ? await log.writer.snapshot(payload) : await log.writer.append(payload);
    entry.sequence = sequence;
    entry.c = count();
    if (logDurability === 'flushed') entry.d = entry.c;
    return sequence;
  };

  // A primary that is its own reader (the LangGraph saver's compaction): a snapshot, then the
  // cursor moved up to it without reading back, while more updates are placed after it.
  const compact = async () => {
    const id = nextId++;
    const payload = Buffer.concat([Buffer.from(`rec${id}|`), pattern(`rec${id}`, r.int(8, 700))]);
    const entry = { payload, s: count(), c: Infinity, d: Infinity, sequence: undefined, durability: logDurability };
    model.appends.set(id, entry);
    const placed = log.writer.placeSnapshot(payload);
    const after = Array.from({ length: r.int(0, 3) }, () => append('update'));
    const point = await placed;
    entry.sequence = point.sequence;
    entry.c = count();
    if (logDurability === 'flushed') entry.d = entry.c;
    const clear = { upTo: point.sequence - 1, s: count(), c: Infinity };
    model.clears.push(clear);
    await reader.clearBefore(point);
    clear.c = count();
    const settled = await Promise.allSettled(after);
    for (const x of settled) if (x.status === 'rejected' && x.reason?.code !== 'EFULL') throw x.reason;
  };

  const readAndClear = async (all) => {
    const s = count();
    const batch = await reader.readBatch({ maxRecords: all ? 100000 : r.int(1, 20) });
    if (batch.records.length === 0) return;
    const upTo = all ? batch.records[batch.records.length - 1].sequence : r.pick(batch.records).sequence;
    const c = { upTo, s, c: Infinity };
    model.clears.push(c);
    await reader.clear(upTo);
    c.c = count();
  };

  for (let step = 0; step < steps; step++) {
    const roll = r.next();
    if (roll < 0.2) {
      // Embedded writes: one at a time, sync or async, either durability.
      const remote = r.chance(0.3);
      tally(remote ? 'remote-slot-write' : 'slot-write');
      await writeSlot(r.int(0, SLOTS - 1), r.chance(0.7) ? 'flushed' : 'mapped', r.chance(0.3), remote);
    } else if (roll < 0.27) {
      // Several flushed writers share one group commit.
      tally('slot-group');
      const n = r.int(2, 5);
      const slots = new Set();
      while (slots.size < n) slots.add(r.int(0, SLOTS - 1));
      // Local and remote writers in one group commit.
      await Promise.all([...slots].map((slot) => writeSlot(slot, 'flushed', false, r.chance(0.4))));
    } else if (roll < 0.3) {
      // An explicit flush of the whole region makes earlier 'mapped' writes durable.
      tally('region-flush');
      const order = model.slots.order;
      await data.flush();
      model.slots.cover(() => true, order, count());
    } else if (roll < 0.5) {
      tally('append');
      const n = r.int(1, 4);
      const settled = await Promise.allSettled(Array.from({ length: n }, () => append(r.chance(0.1) ? 'snapshot' : 'update')));
      if (settled.some((x) => x.status === 'rejected' && x.reason?.code === 'EFULL')) {
        tally('append-full');
        await readAndClear(true);
      } else {
        for (const x of settled) if (x.status === 'rejected') throw x.reason;
      }
    } else if (roll < 0.56) {
      tally('read-clear');
      await readAndClear(false);
    } else if (roll < 0.6) {
      tally('compact');
      try {
        await compact();
      } catch (error) {
        if (error?.code !== 'EFULL') throw error;
        tally('append-full');
        await readAndClear(true);
      }
    } else if (roll < 0.65) {
      // A takeover by the reader: fences the writer, recovers, starts a new writer.
      tally('takeover');
      await log.writer.close();
      logDurability = r.chance(0.3) ? 'mapped' : 'flushed';
      const t = await pmu.openPrimary(reader, { durability: logDurability, heartbeatMs: 0 });
      log = t;
      reader = t.reader;
    } else if (roll < 0.67) {
      // The overwrite log changes hands too, sometimes to a 'mapped' writer.
      tally('checkpoint-takeover');
      await ckpt.writer.close();
      ckptDurability = r.chance(0.3) ? 'mapped' : 'flushed';
      ckpt = await startCkpt();
    } else if (roll < 0.75) {
      tally('checkpoint');
      const id = nextId++;
      const payload = Buffer.concat([Buffer.from(`ckp${id}|`), pattern(`ckp${id}`, r.int(8, 6000))]);
      const entry = { payload, s: count(), c: Infinity, d: Infinity, sequence: undefined };
      model.checkpoints.set(id, entry);
      entry.sequence = await ckpt.writer.checkpoint(payload);
      entry.c = count();
      if (ckptDurability === 'flushed') entry.d = entry.c;
    } else if (roll < 0.85) {
      // Region churn: extents freed and reused; a new region must read as zeros.
      // Through the server (PMM operations over the wire) or embedded.
      const remote = r.chance(0.5);
      if (liveTmp.length > 0 && (liveTmp.length >= 3 || r.chance(0.5))) {
        tally(remote ? 'remote-region-delete' : 'region-delete');
        const name = liveTmp.splice(r.int(0, liveTmp.length - 1), 1)[0];
        const e = model.regions.begin(name, 'absent', count(), true);
        if (remote) await client.deleteRegion(name);
        else unit.deleteRegion(name);
        model.regions.ack(e, count());
      } else {
        tally(remote ? 'remote-region-create' : 'region-create');
        const name = `tmp${tmpNumber++}`;
        const size = r.pick(TMP_BYTES);
        let region;
        if (remote) {
          const e = model.regions.begin(name, 'exists', count(), true);
          region = await client.createRegion(name, size);
          model.regions.ack(e, count());
        } else if (r.chance(0.5)) {
          // The zero-fill of reused space on the libuv pool, the commit after it.
          tally('region-create-async');
          const e = model.regions.begin(name, 'exists', count(), true);
          region = await unit.createRegionAsync(name, size);
          model.regions.ack(e, count());
        } else {
          region = createRegion(name, size);
        }
        liveTmp.push(name);
        const length = r.int(1, 3000);
        const offset = r.int(0, size - length);
        const label = `${name}.w`;
        const write = { offset, length, label, s: count(), c: Infinity, d: Infinity };
        model.tmp.set(name, { size, write });
        await region.write(offset, pattern(label, length), { durability: 'flushed' });
        write.c = write.d = count();
      }
    } else if (roll < 0.9) {
      // Close and open again: the new writers take the logs over, as a restarted primary does.
      tally('reopen');
      await log.writer.close();
      await ckpt.writer.close();
      await stopServer();
      await unit.close();
      unit = pmu.PersistentMemoryUnit.open(file, { onWarning });
      data = unit.openRegion('data');
      logRegion = unit.openRegion('log');
      ckptRegion = unit.openRegion('ckpt');
      logDurability = 'flushed';
      log = await startLog(logDurability);
      reader = log.reader;
      ckptDurability = 'flushed';
      ckpt = await startCkpt();
      await startServer();
      remoteData = await client.openRegion('data');
    } else {
      // A crash point between barriers: whatever is dirty right now.
      tally('mark');
      recorder.mark();
      model.marks++;
    }
  }
  recorder.mark();
  await log.writer.close();
  await ckpt.writer.close();
  await stopServer();
  await unit.close();
  return model;
}

module.exports = { runWorkload, SLOT_BYTES, SLOTS };
