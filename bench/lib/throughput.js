'use strict';
// Throughput of a synchronous function: ops/s with the relative margin of error (95%) over
// timed samples, as Benchmark.js reports it, without a dependency: `pmu bench` runs from an
// installed package, where only pmu's runtime dependencies exist.

/** Calls `fn` in batches sized so that one sample takes ~10 ms, for about `maxTime` seconds. */
async function measure(fn, { maxTime = 1, minSamples = 5 } = {}) {
  let batch = 1;
  for (;;) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) fn();
    if (Number(process.hrtime.bigint() - t0) >= 10e6 || batch >= 2 ** 30) break;
    batch *= 2;
  }
  const rates = [];
  const deadline = process.hrtime.bigint() + BigInt(Math.round(maxTime * 1e9));
  while (rates.length < minSamples || process.hrtime.bigint() < deadline) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) fn();
    rates.push(batch / (Number(process.hrtime.bigint() - t0) / 1e9));
    // Let timers and I/O run between samples, as an async benchmark would.
    await new Promise((resolve) => setImmediate(resolve));
  }
  const mean = rates.reduce((a, b) => a + b, 0) / rates.length;
  const variance = rates.reduce((a, b) => a + (b - mean) ** 2, 0) / (rates.length - 1);
  const rme = ((1.96 * Math.sqrt(variance / rates.length)) / mean) * 100;
  return { hz: mean, rme };
}

/** Completions per second of `total` async operations kept `window` at a time in flight. */
async function windowed(start, total, window) {
  const t0 = process.hrtime.bigint();
  let issued = 0;
  async function lane() {
    while (issued < total) {
      issued++;
      await start(issued);
    }
  }
  await Promise.all(Array.from({ length: Math.min(window, total) }, lane));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return total / seconds;
}

module.exports = { measure, windowed };
