'use strict';
// The charts of one run, from the rows the scale suites tag with `curve: { chart, series, x }`:
// each names its rows, what it plots and on which axes. A chart whose rows are missing (the
// suite was not run) is left out.
const { lineChart } = require('./chart');
const { sizeName } = require('./report');

const us = (v) => (v >= 1000 ? `${+(v / 1000).toPrecision(3)} ms` : `${+v.toPrecision(3)} µs`);
const mbs = (v) => `${+(v / 1e6).toPrecision(3)} MB/s`;
const bytes = (v) => sizeName(v);
// Size axes tick at powers of two that name well (64 B, 4 KiB, 1 MiB …), not at decades.
const SIZE_TICKS = [64, 1024, 4096, 65536, 1 << 20, 16 << 20, 64 << 20, 256 << 20, 2 ** 30, 4 * 2 ** 30, 8 * 2 ** 30];

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
    caption: "Every client waits for its write before sending the next, so once the server's one core is busy the latency per write grows with the number of clients (queueing: about clients ÷ throughput) while the aggregate rate flattens. Redis, also one thread, has the same shape; the gap between the two is per-request CPU on the server. From 1 to 4 clients the p50 may fall instead of rise: with one client both processes go idle between requests, and on this VM a wake-up from idle costs a hundred µs or more (the remote suite's one-core rows, where the pair never idles, show the same write at a fraction of the two-core time); with more clients the server stays busy.",
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
    caption: "Durable writes from many clients share one msync per group (group commit), so the latency per write grows far slower than the number of clients until the disk's flush rate is the limit; Redis `appendfsync always` also groups its fsyncs per event-loop turn.",
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
    caption: "Aggregate writes/s: rises while the server has idle time between requests, then flattens at what one server core ('mapped') or the disk's flush rate times the group size ('flushed') allows. Where it falls again at 256 connections (pmu 'mapped' and Redis alike), the bench itself is the limit: one Node thread on one core drives all 256 clients.",
    title: '4 KiB writes: aggregate throughput vs clients',
    x: { label: 'concurrent clients, one connection each', log: true },
    y: { label: 'writes/s, all clients', log: true },
    build: (rows) => series(rows, 'clients', (r) => r.opsPerSec),
  },
  {
    file: 'primaries-throughput.svg',
    caption: "Each primary appends one durable record at a time on its own connection and log region; the server's group commit lets one msync serve every primary whose append arrived meanwhile.",
    title: 'Durable 256 B appends/s vs checkpoint primaries, one server',
    x: { label: 'primaries, each its own connection and log', log: true },
    y: { label: 'appends/s, all primaries', log: true },
    build: (rows) => series(rows, 'primaries', (r) => r.opsPerSec),
  },
  {
    file: 'primaries-group-commit.svg',
    caption: "Appends served per server msync (the group-commit size reached), against the ideal of one msync for all primaries at once. Below the ideal because appends arrive spread over the msync's duration, not all at the same instant.",
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
    caption: "createRegion and deleteRegion are crash-atomic table updates: each writes the whole spare copy of the table and flushes it, then the commit record (docs/FORMAT.md), so each costs what the table's size (maxRegions × 512 B, fixed at creation: 2 MiB here, for 4,096) takes to flush, whatever the number of regions in it. The first table update after open no longer reads that copy's pages back one 4 KiB fault at a time (open drops the file's page cache, so that a later 4 KiB msync does not write back a large folio: docs/FORMAT.md): open asks for the spare copy at once, in the background, in 4 KiB folios, and `node bench/tools/first-table-update.js` times the first update of a new 4,096-region file at 4–5 ms against ~2 ms for later ones (it was ~25 ms), a reopened one at 1.1–1.3× of later ones, with the same device bytes (the copy and the commit record). openRegion is a lookup in a name table the unit keeps in step with its own changes, so it stays flat (it used to list the whole table per lookup, which grew linearly with the number of regions). The write to a random region stays flat: regions are ranges of one mapping.",
    title: 'Cost per operation vs regions in one unit (p50)',
    x: { label: 'regions in the unit', log: true },
    y: { label: 'time per operation', log: true, format: us },
    build: (rows) => series(rows, 'regions', (r) => r.p50),
  },
  {
    file: 'unit-size-time.svg',
    caption: "Creating a unit writes every byte once (zeros, so that no later write pays for converting unwritten extents: docs/FORMAT.md), so create grows linearly with the size, at disk speed: a one-time cost. Open checks the file for holes, fsyncs, maps it and reads the metadata, not the data, so it stays within a few milliseconds from 64 MiB to 8 GiB. The first durable write into a cold region at the far end costs a few milliseconds (page faults) whatever the size; the next ones cost about the msync floor.",
    title: 'Create, open and first write vs unit size',
    x: { label: 'unit size', log: true, format: bytes, ticks: SIZE_TICKS },
    y: { label: 'time', log: true, format: us },
    build: (rows) => series(rows, 'unit-size', (r) => r.p50),
  },
  {
    file: 'unit-size-rss.svg',
    caption: "Open maps the file but touches only the metadata pages: resident memory does not grow with the unit's size.",
    title: 'Resident memory added by open vs unit size',
    x: { label: 'unit size', log: true, format: bytes, ticks: SIZE_TICKS },
    y: { label: 'RSS added by open (MiB)' },
    build: (rows) => series(rows, 'unit-size', (r) => r.curve.rssBytes / 2 ** 20, (r) => r.curve.rssBytes !== undefined, () => 'open'),
  },
  {
    file: 'backup-lag.svg',
    caption: "From append (timestamp in the record) to the backup reading it over its own connection. Flat while the backup polls faster than the primary appends; it cannot keep up once the primary's rate exceeds what one reader's read-and-clear loop over the network sustains (the table's last row says so).",
    title: 'Backup lag vs primary append rate (256 B, durable, remote)',
    x: { label: 'appends/s the primary was asked for', log: true },
    y: { label: 'append → seen by the backup', log: true, format: us },
    build: (rows) => [...series(rows, 'backup-lag', (r) => r.p50, undefined, () => 'lag p50'), ...series(rows, 'backup-lag', (r) => r.p99, undefined, () => 'lag p99')],
  },
  {
    file: 'record-size.svg',
    caption: "Durable append throughput against memcpy + msync of the same size in C. Small records are bounded by the msync per append (the record header, its CRC32C and the ring's cursor come on top). A record of 256 KiB or more is written from the caller's own buffer (no copy into a record buffer: payload and padding first, the header last), and a write of 1 MiB or more goes into the file by pwrite, a 4 KiB page per call, so no page is read from the device or faulted into the mapping one at a time before it is overwritten; what is left at 16 MiB is the CRC32C pass and the copy (`node bench/tools/append-parts.js --mib 16` times the parts).",
    title: 'Durable append throughput vs record size',
    x: { label: 'record size', log: true, format: bytes, ticks: SIZE_TICKS },
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
    out.push({ file: c.file, title: c.title, caption: c.caption, svg: lineChart({ title: c.title, x: c.x, y: c.y, series: built }) });
  }
  return out;
}

module.exports = { charts, CHARTS };
