'use strict';
// Throughput with the `benchmark` package (Benchmark.js): ops/s with its relative margin of
// error, for sync functions and for deferred (async) ones.
const Benchmark = require('benchmark');

function measure(fn, { async = false, maxTime = 1, minSamples = 5 } = {}) {
  return new Promise((resolve, reject) => {
    const bench = new Benchmark({
      defer: async,
      maxTime,
      minSamples,
      fn: async ? (deferred) => fn().then(() => deferred.resolve(), (error) => deferred.benchmark.abort() && reject(error)) : fn,
      onComplete() {
        resolve({ hz: this.hz, rme: this.stats.rme });
      },
      onError(event) {
        reject(event.target.error);
      },
    });
    bench.run({ async: true });
  });
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
