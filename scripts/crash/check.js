'use strict';
/**
 * Recovery on one crash image, through the normal open path, against the model: returns the
 * failures found (empty when the image recovers as promised). Each failure names what was lost
 * or invented, so a report can be turned into a test.
 */
const { pattern } = require('./model');
const { SLOT_BYTES, SLOTS } = require('./workload');

function idOf(payload, prefix) {
  const text = payload.subarray(0, 16).toString('latin1');
  const bar = text.indexOf('|');
  if (!text.startsWith(prefix) || bar < 0) return undefined;
  return Number(text.slice(prefix.length, bar));
}

async function checkImage(pmu, model, image, k) {
  const failures = [];
  const fail = (kind, detail) => failures.push({ kind, detail });
  let unit;
  try {
    // Crash images sit on tmpfs on purpose (each is a state the device could be left in).
    unit = pmu.PersistentMemoryUnit.open(image, { onWarning: (warning) => warning.code === 'PMU_VOLATILE_FILE' || process.emitWarning(warning.message, warning.code) });
  } catch (error) {
    fail('unit-open', `${error.code}: ${error.message}`);
    return failures;
  }
  try {
    checkRegions(unit, model, k, fail);
    checkSlots(unit, model, k, fail);
    checkTmp(unit, model, k, fail);
    await checkLog(pmu, unit, model, k, fail);
    await checkCheckpoints(pmu, unit, model, k, fail);
  } catch (error) {
    fail('exception', `${error.code ?? ''} ${error.stack}`);
  } finally {
    await unit.close().catch((error) => fail('close', `${error.code}: ${error.message}`));
  }
  return failures;
}

function checkRegions(unit, model, k, fail) {
  for (const name of model.regions.keys.keys()) {
    const { base, later } = model.regions.at(name, k);
    if (later.length > 0) continue;
    const expected = base ? base.value : 'absent';
    const exists = unit.hasRegion(name);
    if (expected === 'exists' && !exists) fail('region-lost', `region '${name}' was created (acknowledged at barrier ${base.c}) and is gone`);
    if (expected === 'absent' && exists) fail('region-resurrected', `region '${name}' was deleted (acknowledged at barrier ${base?.c}) and is back`);
  }
}

function checkSlots(unit, model, k, fail) {
  if (!unit.hasRegion('data')) return; // reported by checkRegions if it should be there
  const data = unit.openRegion('data');
  for (let slot = 0; slot < SLOTS; slot++) {
    const { base, later } = model.slots.at(String(slot), k);
    if (later.length > 0) continue;
    const got = data.readSync(slot * SLOT_BYTES, SLOT_BYTES);
    const want = base ? pattern(base.value, SLOT_BYTES) : Buffer.alloc(SLOT_BYTES);
    if (!got.equals(want)) {
      fail('write-lost', `slot ${slot} of region 'data' should hold ${base ? `${base.value} (durable at barrier ${base.d})` : 'zeros'}; ${describeDiff(got, want)}`);
    }
  }
}

function checkTmp(unit, model, k, fail) {
  // A create caught by the crash (not yet acknowledged at k): its region may be absent (the
  // commit never happened, the extent stays free) or present, but then whole and all zeros,
  // never half-zeroed: the table names it only after its zero-fill is durable.
  for (const name of model.regions.keys.keys()) {
    const { later } = model.regions.at(name, k);
    if (later.length !== 1 || later[0].value !== 'exists' || !unit.hasRegion(name)) continue;
    const tmp = model.tmp.get(name);
    if (tmp && tmp.write.s <= k) continue; // its write may have started: checked below once settled
    const region = unit.openRegion(name);
    if (region.readSync(0, region.size).some((b) => b !== 0)) fail('stale-bytes', `region '${name}' is in the table before its create was acknowledged and holds non-zero bytes: named before its zero-fill was durable`);
  }
  for (const [name, tmp] of model.tmp) {
    const { base, later } = model.regions.at(name, k);
    if (!unit.hasRegion(name)) continue;
    // Only a region whose creation is settled at k, and not being deleted.
    if (later.length > 0 || !base || base.value !== 'exists') continue;
    const region = unit.openRegion(name);
    const got = region.readSync(0, region.size);
    const w = tmp.write;
    if (w.d <= k) {
      const want = pattern(w.label, w.length);
      if (!got.subarray(w.offset, w.offset + w.length).equals(want)) fail('write-lost', `region '${name}': the write of ${w.length} bytes at ${w.offset} acknowledged at barrier ${w.d} is not there`);
    }
    // Outside the write (and inside it if the write may not have happened): zeros, never a deleted region's bytes.
    const outside = Buffer.concat([got.subarray(0, w.offset), got.subarray(w.offset + w.length)]);
    if (outside.some((b) => b !== 0)) fail('stale-bytes', `region '${name}' (created at barrier ${base.c}) holds non-zero bytes outside its only write: a deleted region's bytes came back`);
    if (w.s > k && got.subarray(w.offset, w.offset + w.length).some((b) => b !== 0)) fail('stale-bytes', `region '${name}' holds bytes where nothing was written yet at this point`);
  }
}

async function readAll(reader) {
  const records = [];
  let batch;
  do {
    batch = await reader.readBatch();
    records.push(...batch.records);
  } while (batch.stop.reason === 'limit');
  return { records, stop: batch.stop };
}

function checkRecords(model, records, k, fail, context) {
  for (const rec of records) {
    const id = idOf(rec.payload, 'rec');
    const entry = id === undefined ? undefined : model.appends.get(id);
    if (!entry) {
      if (context.allowMarker && rec.payload.toString('latin1').startsWith('marker|')) continue;
      fail('record-invented', `${context.what}: record ${rec.sequence} holds a payload never appended`);
      continue;
    }
    if (entry.s > k) fail('record-from-future', `${context.what}: record ${rec.sequence} (rec${id}) was appended after this crash point (barrier ${entry.s} > ${k})`);
    if (entry.sequence !== undefined && entry.sequence !== rec.sequence) fail('record-sequence', `${context.what}: rec${id} was acknowledged as sequence ${entry.sequence}, read as ${rec.sequence}`);
    if (!entry.payload.equals(rec.payload)) fail('record-torn', `${context.what}: record ${rec.sequence} (rec${id}) differs from what was appended`);
  }
  const seen = new Set(records.map((rec) => rec.sequence));
  for (const [id, entry] of model.appends) {
    if (entry.d <= k && entry.sequence >= context.cursorSequence && !seen.has(entry.sequence)) {
      fail('record-lost', `${context.what}: rec${id}, sequence ${entry.sequence}, acknowledged 'flushed' at barrier ${entry.d}, is missing (cursor at sequence ${context.cursorSequence}, records read: ${records.length ? `${records[0].sequence}..${records[records.length - 1].sequence}` : 'none'})`);
    }
  }
}

async function checkLog(pmu, unit, model, k, fail) {
  if (!model.logFormat || model.logFormat.d > k || !unit.hasRegion('log')) return;
  const region = unit.openRegion('log');
  let reader;
  try {
    reader = await pmu.CheckpointReader.open(region);
  } catch (error) {
    fail('log-open', `${error.code}: ${error.message}`);
    return;
  }
  const cursorSequence = reader.next.sequence;
  const clearStarted = Math.max(0, ...model.clears.filter((c) => c.s <= k).map((c) => c.upTo));
  const clearAcked = Math.max(0, ...model.clears.filter((c) => c.c <= k).map((c) => c.upTo));
  if (cursorSequence > clearStarted + 1) fail('cursor-hides', `the cursor says sequence ${cursorSequence}, but no clear past ${clearStarted} had begun: records not consumed are hidden`);
  if (cursorSequence < clearAcked + 1) fail('clear-lost', `the cursor says sequence ${cursorSequence}, but a clear up to ${clearAcked} was acknowledged`);
  let scanned;
  try {
    scanned = await readAll(reader);
  } catch (error) {
    fail('log-read', `${error.code}: ${error.message}`);
    return;
  }
  checkRecords(model, scanned.records, k, fail, { what: 'reader', cursorSequence });
  // Recovery as a restarted primary does it, then one new record: nothing acknowledged may be lost.
  let t;
  try {
    t = await pmu.openPrimary(region, { mode: 'append', heartbeatMs: 0 });
  } catch (error) {
    fail('log-takeover', `${error.code}: ${error.message}`);
    return;
  }
  try {
    const last = scanned.records.length ? scanned.records[scanned.records.length - 1].sequence : cursorSequence - 1;
    if (t.records.length !== scanned.records.length) fail('takeover-differs', `takeover recovered ${t.records.length} records, the reader read ${scanned.records.length}`);
    let sequence;
    try {
      sequence = await t.writer.append(Buffer.from('marker|after-recovery'));
    } catch (error) {
      if (error.code !== 'EFULL') throw error;
      await t.reader.clear(last);
      sequence = await t.writer.append(Buffer.from('marker|after-recovery'));
    }
    if (sequence !== last + 1) fail('takeover-sequence', `the first record after recovery got sequence ${sequence}, expected ${last + 1}`);
    const again = await pmu.CheckpointReader.open(region);
    const after = await readAll(again);
    checkRecords(model, after.records, k, fail, { what: 'after takeover', cursorSequence: again.next.sequence, allowMarker: true });
    const tail = after.records[after.records.length - 1];
    if (!tail || tail.sequence !== sequence) fail('marker-lost', `the record appended after recovery (sequence ${sequence}) is not the last one read back`);
  } finally {
    await t.writer.close();
  }
}

async function checkCheckpoints(pmu, unit, model, k, fail) {
  if (!model.ckptFormat || model.ckptFormat.d > k || !unit.hasRegion('ckpt')) return;
  const region = unit.openRegion('ckpt');
  let latest;
  try {
    const reader = await pmu.CheckpointReader.open(region);
    latest = await reader.latest();
  } catch (error) {
    fail('checkpoint-open', `${error.code}: ${error.message}`);
    return;
  }
  let acked;
  for (const [id, entry] of model.checkpoints) if (entry.d <= k && (!acked || entry.sequence > acked.sequence)) acked = { id, ...entry };
  if (acked && (!latest || latest.sequence < acked.sequence)) {
    fail('checkpoint-lost', `checkpoint ${acked.sequence} (ckp${acked.id}) was acknowledged at barrier ${acked.d}; the newest valid one is ${latest ? latest.sequence : 'none'}`);
  }
  if (latest) {
    const id = idOf(latest.state, 'ckp');
    const entry = id === undefined ? undefined : model.checkpoints.get(id);
    if (!entry) fail('checkpoint-invented', `checkpoint ${latest.sequence} holds a state never written`);
    else {
      if (entry.s > k) fail('checkpoint-from-future', `checkpoint ckp${id} was written after this crash point`);
      if (!entry.payload.equals(latest.state)) fail('checkpoint-torn', `checkpoint ${latest.sequence} (ckp${id}) differs from what was written`);
      if (entry.sequence !== undefined && entry.sequence !== latest.sequence) fail('checkpoint-sequence', `ckp${id} was acknowledged as ${entry.sequence}, read as ${latest.sequence}`);
    }
  }
  let t;
  try {
    t = await pmu.openPrimary(region, { mode: 'overwrite', heartbeatMs: 0 });
  } catch (error) {
    fail('checkpoint-takeover', `${error.code}: ${error.message}`);
    return;
  }
  try {
    const sequence = await t.writer.checkpoint(Buffer.from('marker|after-recovery'));
    if (latest && sequence <= latest.sequence) fail('checkpoint-sequence', `the checkpoint after recovery got sequence ${sequence}, not above ${latest.sequence}`);
    const now = await (await pmu.CheckpointReader.open(region)).latest();
    if (!now || now.sequence !== sequence) fail('checkpoint-lost', `the checkpoint written after recovery (sequence ${sequence}) is not the newest`);
  } finally {
    await t.writer.close();
  }
}

function describeDiff(got, want) {
  let first = -1;
  let differing = 0;
  for (let i = 0; i < got.length; i++) {
    if (got[i] !== want[i]) {
      differing++;
      if (first < 0) first = i;
    }
  }
  const zeros = got.every((b) => b === 0);
  return `${differing} bytes differ from offset ${first}${zeros ? ' (all zero)' : ''}`;
}

module.exports = { checkImage };
