'use strict';
// Latency sampling and summaries shared by every bench script.

/** p-th percentile (0..100) of sorted samples, nearest rank. */
function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

/** Summary in microseconds of an array (or Float64Array) of nanosecond samples. */
function summarize(samplesNs) {
  const sorted = Float64Array.from(samplesNs).sort();
  const us = (ns) => ns / 1000;
  let sum = 0;
  for (const s of sorted) sum += s;
  return {
    n: sorted.length,
    p50: us(percentile(sorted, 50)),
    p99: us(percentile(sorted, 99)),
    max: us(sorted[sorted.length - 1]),
    mean: us(sum / sorted.length),
  };
}

/** Times `iterations` sequential calls of a sync function, after `warmup` untimed ones. */
function sampleSync(fn, iterations, warmup = Math.min(200, iterations)) {
  for (let i = 0; i < warmup; i++) fn(i);
  const samples = new Float64Array(iterations);
  for (let i = 0; i < iterations; i++) {
    const t0 = process.hrtime.bigint();
    fn(i);
    samples[i] = Number(process.hrtime.bigint() - t0);
  }
  return samples;
}

/** The same for an async function, awaited one at a time. */
async function sampleAsync(fn, iterations, warmup = Math.min(200, iterations)) {
  for (let i = 0; i < warmup; i++) await fn(i);
  const samples = new Float64Array(iterations);
  for (let i = 0; i < iterations; i++) {
    const t0 = process.hrtime.bigint();
    await fn(i);
    samples[i] = Number(process.hrtime.bigint() - t0);
  }
  return samples;
}

function formatUs(us) {
  if (!Number.isFinite(us)) return '–';
  if (us >= 1000) return `${(us / 1000).toFixed(2)} ms`;
  if (us >= 10) return `${us.toFixed(1)} µs`;
  return `${us.toFixed(2)} µs`;
}

module.exports = { percentile, summarize, sampleSync, sampleAsync, formatUs };
