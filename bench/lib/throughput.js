'use strict';
// Throughput rows. A synchronous operation's ops/s comes from Benchmark.js (a runtime dependency,
// so an installed `pmu bench` has it), with its relative margin of error. Async operations kept
// N in flight are timed here: Benchmark.js's deferred mode runs one at a time. Per-operation
// latencies (p50/p99) stay with stats.js's sampler: Benchmark.js reports means, not percentiles.
const Benchmark = require('benchmark');

/** ops/s of `fn` over about `maxTime` seconds, and the relative margin of error (%, 95%). */
async function measure(fn, { maxTime = 1, minSamples = 5 } = {}) {
  const bench = new Benchmark('throughput', fn, { maxTime, minSamples, async: false });
  bench.run();
  if (bench.error) throw bench.error;
  // Let timers and I/O that waited during the run go before the next row.
  await new Promise((resolve) => setImmediate(resolve));
  return { hz: bench.hz, rme: bench.stats.rme };
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
