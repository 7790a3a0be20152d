'use strict';
// The charts of one run, from the rows the scale suites tag with `curve: { chart, series, x }`:
// each names its rows, what it plots and on which axes. A chart whose rows are missing (the
// suite was not run) is left out.
const { lineChart } = require('./chart');
const { sizeName } = require('./report');

const us = (v) => (v >= 1000 ? `${+(v / 1000).toPrecision(3)} ms` : `${+v.toPrecision(3)} µs`);
const mbs = (v) => `${+(v / 1e6).toPrecision(3)} MB/s`;
const bytes = (v) => sizeName(v);

/** Groups the rows of `chart` by series, with y taken by `pick(row)`. */
function series(rows, chart, pick, filter = () => true, rename = (n) => n) {
  const byName = new Map();
  for (const row of rows) {
    if (row.curve?.chart !== chart || !filter(row)) continue;
    const name = rename(row.curve.series, row);
    if (!byName.has(name)) byName.set(name, []);
    byName.get(name).push([row.curve.x, pick(row)]);
  }
  return [...byName].map(([name, points]) => ({ name, points }));
}

const CHARTS = [
  {
    file: 'clients-latency-mapped.svg',
    title: "4 KiB write latency vs clients: pmu 'mapped' and Redis AOF off",
    x: { label: 'concurrent clients, one connection each', log: true },
    y: { label: 'latency per write', log: true, format: us },
    build: (rows) => [
      ...series(rows, 'clients', (r) => r.p50, (r) => !r.curve.durable, (n) => `${n} p50`),
      ...series(rows, 'clients', (r) => r.p99, (r) => !r.curve.durable, (n) => `${n} p99`),
    ],
  },
  {
    file: 'clients-latency-flushed.svg',
    title: "4 KiB durable write latency vs clients: pmu 'flushed' and Redis always",
    x: { label: 'concurrent clients, one connection each', log: true },
    y: { label: 'latency per write', log: true, format: us },
    build: (rows) => [
      ...series(rows, 'clients', (r) => r.p50, (r) => r.curve.durable, (n) => `${n} p50`),
      ...series(rows, 'clients', (r) => r.p99, (r) => r.curve.durable, (n) => `${n} p99`),
    ],
  },
  {
    file: 'clients-throughput.svg',
    title: '4 KiB writes: aggregate throughput vs clients',
    x: { label: 'concurrent clients, one connection each', log: true },
    y: { label: 'writes/s, all clients', log: true },
    build: (rows) => series(rows, 'clients', (r) => r.opsPerSec),
  },
  {
    file: 'primaries-throughput.svg',
    title: 'Durable 256 B appends/s vs checkpoint primaries, one server',
    x: { label: 'primaries, each its own connection and log', log: true },
    y: { label: 'appends/s, all primaries', log: true },
    build: (rows) => series(rows, 'primaries', (r) => r.opsPerSec),
  },
  {
    file: 'primaries-group-commit.svg',
    title: 'Group commit the server reached vs primaries',
    x: { label: 'primaries', log: true },
    y: { label: 'appends per server msync', log: true },
    build: (rows) => [
      ...series(rows, 'primaries', (r) => r.curve.groupSize, (r) => r.curve.groupSize !== undefined, () => 'pmu: appends per msync'),
      { name: 'ideal: one msync for all', points: series(rows, 'primaries', (r) => r.curve.x, (r) => r.curve.groupSize !== undefined)[0]?.points ?? [] },
    ],
  },
  {
    file: 'regions.svg',
    title: 'Cost per operation vs regions in one unit (p50)',
    x: { label: 'regions in the unit', log: true },
    y: { label: 'time per operation', log: true, format: us },
    build: (rows) => series(rows, 'regions', (r) => r.p50),
  },
  {
    file: 'unit-size-time.svg',
    title: 'Open and first write vs unit size',
    x: { label: 'unit size', log: true, format: bytes },
    y: { label: 'time', log: true, format: us },
    build: (rows) => series(rows, 'unit-size', (r) => r.p50),
  },
  {
    file: 'unit-size-rss.svg',
    title: 'Resident memory added by open vs unit size',
    x: { label: 'unit size', log: true, format: bytes },
    y: { label: 'RSS added by open', format: bytes },
    build: (rows) => series(rows, 'unit-size', (r) => r.curve.rssBytes, (r) => r.curve.rssBytes !== undefined, () => 'open'),
  },
  {
    file: 'backup-lag.svg',
    title: 'Backup lag vs primary append rate (256 B, durable, remote)',
    x: { label: 'appends/s the primary was asked for', log: true },
    y: { label: 'append → seen by the backup', log: true, format: us },
    build: (rows) => [...series(rows, 'backup-lag', (r) => r.p50, undefined, () => 'lag p50'), ...series(rows, 'backup-lag', (r) => r.p99, undefined, () => 'lag p99')],
  },
  {
    file: 'record-size.svg',
    title: 'Durable append throughput vs record size',
    x: { label: 'record size', log: true, format: bytes },
    y: { label: 'MB/s', log: true, format: mbs },
    build: (rows) => series(rows, 'record-size', (r) => r.curve.bytesPerSec),
  },
];

/** [{ file, title, svg }] for every chart this run has rows for. */
function charts(rows) {
  const out = [];
  for (const c of CHARTS) {
    const built = c.build(rows).filter((s) => s.points.length > 0);
    if (built.length === 0) continue;
    out.push({ file: c.file, title: c.title, svg: lineChart({ title: c.title, x: c.x, y: c.y, series: built }) });
  }
  return out;
}

module.exports = { charts, CHARTS };
