'use strict';
// N independent lanes (a client, a primary), each issuing its operations one after another:
// per-operation latency across all lanes and the aggregate rate. The shape of many users.
const { summarize } = require('./stats');

/** Runs `perLane` calls of op(lane, i) in each of `lanes` lanes at once. */
async function lanes(count, perLane, op) {
  const samples = new Float64Array(count * perLane);
  let k = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: count }, async (_, lane) => {
      for (let i = 0; i < perLane; i++) {
        const s = process.hrtime.bigint();
        await op(lane, i);
        samples[k++] = Number(process.hrtime.bigint() - s);
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { ...summarize(samples), opsPerSec: (count * perLane) / seconds };
}

/**
 * Opens `count` connections with `open()`, at most `batch` handshakes at a time: a server
 * closes connections that wait to authenticate beyond its limit (maxPendingHandshakes).
 */
async function openMany(count, open, batch = 32) {
  const out = [];
  for (let i = 0; i < count; i += batch) out.push(...(await Promise.all(Array.from({ length: Math.min(batch, count - i) }, open))));
  return out;
}

/** Operations per lane so that every point of a curve does about `total` operations, at least `min` each. */
function perLane(total, count, min = 4) {
  return Math.max(min, Math.ceil(total / count));
}

module.exports = { lanes, perLane, openMany };
