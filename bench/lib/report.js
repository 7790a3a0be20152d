'use strict';
// Turns the rows of one run into markdown (per-suite tables, then the headline ratios against
// the floors and the peers, with the targets) and JSON.
const { formatUs } = require('./stats');

function sizeName(size) {
  if (size >= 1 << 20) return `${size / (1 << 20)} MiB`;
  if (size >= 1024) return `${size / 1024} KiB`;
  return `${size} B`;
}

function rate(opsPerSec) {
  if (opsPerSec === undefined) return '';
  if (opsPerSec >= 1e6) return `${(opsPerSec / 1e6).toFixed(2)} M/s`;
  if (opsPerSec >= 1e3) return `${(opsPerSec / 1e3).toFixed(1)} k/s`;
  return `${opsPerSec.toFixed(0)}/s`;
}

function bandwidth(bytesPerSec) {
  if (bytesPerSec === undefined) return '';
  return bytesPerSec >= 1e9 ? `${(bytesPerSec / 1e9).toFixed(2)} GB/s` : `${(bytesPerSec / 1e6).toFixed(0)} MB/s`;
}

function find(rows, suite, name, size) {
  return rows.find((r) => r.suite === suite && r.name === name && (size === undefined || r.size === size));
}

/** The comparisons the project is judged by; each names its two rows and its target. */
function headlines(rows) {
  const out = [];
  const p50 = (suite, name, size = 4096) => find(rows, suite, name, size)?.p50;
  const ops = (suite, name, size = 4096) => find(rows, suite, name, size)?.opsPerSec;
  const add = (what, value, versus, ratio, target, met) => out.push({ what, value, versus, ratio, target, met });

  const mapped = p50('embedded', "writeSync, 'mapped'");
  add("embedded 4 KiB write, 'mapped', p50", formatUs(mapped), '', '', '≤ 2 µs', mapped === undefined ? undefined : mapped <= 2);
  // The interleaved pair when the run has it (the same minutes of this drifting disk), else the two suites' rows.
  const interleaved = p50('embedded', 'memcpy + msync (C), interleaved') !== undefined;
  const msyncFloor = interleaved ? p50('embedded', 'memcpy + msync (C), interleaved') : p50('floors', 'memcpy + msync (C)');
  const durable = interleaved ? p50('embedded', "writeSync, 'flushed', interleaved") : p50('embedded', "writeSync, 'flushed'");
  if (durable !== undefined && msyncFloor !== undefined) {
    add(`embedded 4 KiB writeSync, 'flushed', p50${interleaved ? ', interleaved with the floor' : ''}`, formatUs(durable), `raw memcpy + msync ${formatUs(msyncFloor)}`, durable / msyncFloor, '≤ 1.1×', durable / msyncFloor <= 1.1);
  }
  const awaited = p50('embedded', "await write, 'flushed'");
  if (awaited !== undefined && msyncFloor !== undefined) {
    add("embedded 4 KiB await write, 'flushed' (a lone writer: msync on the calling thread), p50", formatUs(awaited), `raw memcpy + msync ${formatUs(msyncFloor)}`, awaited / msyncFloor, '(informational)', undefined);
  }
  for (const [layout, size] of [['own 4 KiB page each', 4096], ['packed 64 B records', 64]]) {
    const serial = ops('embedded', `serial durable writes, one writer (${layout})`, size);
    const group = find(rows, 'embedded', `16 concurrent durable writers (${layout})`, size);
    if (serial && group) {
      add(`16 concurrent durable writers, ${layout}, writes/s`, rate(group.opsPerSec), `one writer ${rate(serial)}`, group.opsPerSec / serial, '≥ 10×', group.opsPerSec / serial >= 10);
    }
  }
  // Why distinct pages cannot reach 10× here: one msync of 16 dirty pages costs more than 1.6×
  // one of a single page, because the device writes 64 KiB instead of 4 KiB.
  const floor4k = p50('floors', 'memcpy + msync (C)', 4096);
  const floor64k = p50('floors', 'memcpy + msync (C)', 65536);
  if (floor4k !== undefined && floor64k !== undefined) {
    add('bound for 16 writers on distinct pages: 16 × msync(4 KiB) / msync(64 KiB)', `${((16 * floor4k) / floor64k).toFixed(1)}×`, `msync 4 KiB ${formatUs(floor4k)}, 64 KiB ${formatUs(floor64k)}`, '', '(the ceiling of the row above on this disk)', undefined);
  }
  // pmu's client and server read with onread (one reused buffer, no readable stream); the
  // floor's ends read with 'data' events, as most Node code does. The same floor with onread at
  // both ends is shown under each: pmu's margin over a pair that skips the same work.
  const onreadFloorRow = (what, remote, floor) => {
    if (floor !== undefined && remote !== undefined) add(what, formatUs(remote), `the same ping-pong, onread at both ends ${formatUs(floor)}`, remote / floor, '(informational)', undefined);
  };
  for (const transport of ['TCP', 'Unix']) {
    const floor = p50('remote', `Node ${transport} ping-pong, interleaved`) ?? p50('floors', `Node ${transport} ping-pong (write → 8 B ack)`);
    const remote = p50('remote', `${transport} write, 'mapped'`);
    if (floor !== undefined && remote !== undefined) {
      add(`remote 4 KiB write over ${transport}, 'mapped', p50, client and server on two cores`, formatUs(remote), `Node ${transport} ping-pong ${formatUs(floor)}`, remote / floor, '≤ 1.15×', remote / floor <= 1.15);
    }
    onreadFloorRow(`remote 4 KiB write over ${transport}, 'mapped', p50, two cores`, remote, p50('remote', `Node ${transport} ping-pong, onread at both ends, interleaved`));
  }
  const oneCoreFloor = p50('remote', 'Node TCP ping-pong, interleaved, one core');
  const oneCore = p50('remote', "TCP write, 'mapped', one core");
  if (oneCoreFloor !== undefined && oneCore !== undefined) {
    add("remote 4 KiB write over TCP, 'mapped', p50, client and server on one core", formatUs(oneCore), `Node TCP ping-pong, one core ${formatUs(oneCoreFloor)}`, oneCore / oneCoreFloor, '≤ 1.15×', oneCore / oneCoreFloor <= 1.15);
  }
  onreadFloorRow("remote 4 KiB write over TCP, 'mapped', p50, one core", oneCore, p50('remote', 'Node TCP ping-pong, onread at both ends, interleaved, one core'));
  // The durable acks against Redis from the durable suite, where the two alternate in short
  // rounds (a burst of load lands on both); else from their own suites.
  const durablePairs = [
    ["remote 4 KiB write over TCP, 'flushed'", "pmu TCP write, 'flushed', interleaved", 'Redis SET, appendfsync always, interleaved', 'Redis SET, appendfsync always'],
    ["remote 4 KiB checkpoint append over TCP, 'flushed'", "pmu TCP checkpoint append, 'flushed', interleaved", 'Redis XADD, appendfsync always, interleaved', 'Redis XADD, appendfsync always'],
  ];
  const interleavedDurable = find(rows, 'durable', durablePairs[0][1], 4096) !== undefined;
  if (interleavedDurable) {
    for (const [what, mine, peer, peerName] of durablePairs) {
      const a = find(rows, 'durable', mine, 4096);
      const b = find(rows, 'durable', peer, 4096);
      if (!a || !b) continue;
      add(`${what}, p50, interleaved with Redis`, formatUs(a.p50), `${peerName} ${formatUs(b.p50)}`, a.p50 / b.p50, '≤ 0.9×', a.p50 / b.p50 <= 0.9);
      add(`${what}, p99, interleaved with Redis`, formatUs(a.p99), `${peerName} ${formatUs(b.p99)}`, a.p99 / b.p99, '≤ 1×', a.p99 <= b.p99);
    }
  }
  const redisAof = p50('peers', 'Redis appendfsync always: SET');
  const remoteFlushed = p50('remote', "TCP write, 'flushed'");
  if (!interleavedDurable && redisAof !== undefined && remoteFlushed !== undefined) {
    add("remote 4 KiB write over TCP, 'flushed', p50", formatUs(remoteFlushed), `Redis SET, appendfsync always ${formatUs(redisAof)}`, remoteFlushed / redisAof, '< 1× (faster)', remoteFlushed < redisAof);
  }
  const redisPlain = p50('peers', 'Redis AOF off: SET');
  const remoteMapped = p50('remote', "TCP write, 'mapped'");
  if (redisPlain !== undefined && remoteMapped !== undefined) {
    add("remote 4 KiB write over TCP, 'mapped', p50", formatUs(remoteMapped), `Redis SET, AOF off ${formatUs(redisPlain)}`, remoteMapped / redisPlain, '< 1× (faster)', remoteMapped < redisPlain);
  }
  const pipelined = ops('remote', "TCP pipelined writes, 'mapped', 64 in flight");
  // The same window of 64 over the Node ping-pong pair, for scale: on this machine it is often below the target itself.
  const pipelinedFloor = ops('floors', 'Node TCP pipelined writes, 64 in flight');
  if (pipelined !== undefined) {
    add('remote pipelined 4 KiB writes over TCP, 64 in flight', rate(pipelined), pipelinedFloor === undefined ? '' : `Node TCP ping-pong, 64 in flight ${rate(pipelinedFloor)}`, pipelinedFloor === undefined ? '' : pipelined / pipelinedFloor, '≥ 100k/s', pipelined >= 100000);
  }
  // First writes as fast as later ones (issue 10): fresh region against the same pages again.
  for (const where of ['embedded', 'remote TCP']) {
    for (const what of ["write, 'flushed'", "append, 'flushed'"]) {
      const first = p50('checkpoint', `${where}: ${what}, first pass (fresh region)`);
      const again = p50('checkpoint', `${where}: ${what}, rewrite (same pages again)`);
      if (first !== undefined && again !== undefined) add(`${where} 4 KiB ${what} on a fresh region, p50`, formatUs(first), `the same pages rewritten ${formatUs(again)}`, first / again, '≤ 1.15×', first / again <= 1.15);
    }
  }
  const append = p50('checkpoint', "embedded: append, 'flushed', one at a time");
  if (append !== undefined && msyncFloor !== undefined) {
    add("embedded 4 KiB checkpoint append, 'flushed', p50", formatUs(append), `raw memcpy + msync ${formatUs(msyncFloor)}`, append / msyncFloor, '(informational)', undefined);
  }
  const remoteAppend = p50('checkpoint', "remote TCP: append, 'flushed', one at a time");
  const xadd = p50('peers', 'Redis appendfsync always: XADD (log append)');
  if (!interleavedDurable && remoteAppend !== undefined && xadd !== undefined) {
    add("remote 4 KiB checkpoint append over TCP, 'flushed', p50", formatUs(remoteAppend), `Redis XADD, appendfsync always ${formatUs(xadd)}`, remoteAppend / xadd, '< 1× (faster)', remoteAppend < xadd);
  }
  const bigAppend = find(rows, 'record-size', "append, 'flushed', one at a time", 16 << 20);
  const bigFloor = find(rows, 'record-size', 'memcpy + msync floor (C)', 16 << 20);
  if (bigAppend?.bytesPerSec !== undefined && bigFloor?.bytesPerSec !== undefined) {
    const share = bigAppend.bytesPerSec / bigFloor.bytesPerSec;
    add("embedded 16 MiB append, 'flushed', one at a time", bandwidth(bigAppend.bytesPerSec), `memcpy + msync of 16 MiB ${bandwidth(bigFloor.bytesPerSec)}`, share, '≥ 0.5×', share >= 0.5);
  }
  const big = find(rows, 'remote', "TCP checkpoint write, 'mapped'", 16 << 20);
  if (big?.bytesPerSec !== undefined) add('16 MiB checkpoint over TCP loopback', bandwidth(big.bytesPerSec), '', '', '≥ 1 GB/s', big.bytesPerSec >= 1e9);
  return out;
}

function loadLine(load) {
  if (!load) return '';
  const f = (l) => l.map((v) => v.toFixed(2)).join(', ');
  return ` Load average (1, 5, 15 min) at the start ${f(load.start)}, at the end ${f(load.end)}.`;
}

/** The run as markdown; `charts` ([{ file, title, caption }]) are linked under `chartDir`, before the tables. */
function markdown(run, charts = [], chartDir = '') {
  const lines = [];
  lines.push(`Command: \`${run.command}\``);
  lines.push('');
  lines.push(`Machine: ${run.machine.cpus} × ${run.machine.cpuModel}, ${run.machine.memoryGiB} GiB, Linux ${run.machine.kernel}, Node ${run.machine.node}; files in ${run.machine.tmpdir} (${run.machine.tmpFs}); ${run.machine.pinning}. Date: ${run.date}.${loadLine(run.machine.loadAverage)}${run.quick ? ' **Quick smoke run: few samples, figures are rough.**' : ''}`);
  lines.push('');
  for (const note of run.notes) lines.push(`- ${note}`);
  if (run.notes.length) lines.push('');
  lines.push('## Headline ratios');
  lines.push('');
  lines.push('| what | pmu | compared with | ratio | target | met |');
  lines.push('|---|---:|---|---:|---|:-:|');
  for (const h of headlines(run.rows)) {
    const ratio = typeof h.ratio === 'number' ? `${h.ratio.toFixed(2)}×` : h.ratio;
    const met = h.met === undefined ? '' : h.met ? 'yes' : '**no**';
    lines.push(`| ${h.what} | ${h.value} | ${h.versus} | ${ratio} | ${h.target} | ${met} |`);
  }
  if (charts.length > 0) {
    lines.push('');
    lines.push('## Charts');
    lines.push('');
    lines.push(`Drawn from the tables below (same run, same command). Log axes where marked.`);
    for (const chart of charts) {
      lines.push('');
      lines.push(`![${chart.title}](${chartDir}${chart.file})`);
      if (chart.caption) {
        lines.push('');
        lines.push(chart.caption);
      }
    }
  }
  for (const suite of [...new Set(run.rows.map((r) => r.suite))]) {
    lines.push('');
    lines.push(`## ${suite}`);
    lines.push('');
    lines.push('| operation | size | p50 | p99 | throughput | note |');
    lines.push('|---|---:|---:|---:|---:|---|');
    for (const r of run.rows.filter((row) => row.suite === suite)) {
      const tp = [rate(r.opsPerSec), bandwidth(r.bytesPerSec)].filter(Boolean).join(', ');
      const notes = [r.note, r.deviceBytesPerOp !== undefined ? `${(r.deviceBytesPerOp / 1024).toFixed(1)} KiB written to the device per op` : ''].filter(Boolean).join('; ');
      lines.push(`| ${r.name} | ${sizeName(r.size)} | ${r.p50 !== undefined ? formatUs(r.p50) : ''} | ${r.p99 !== undefined ? formatUs(r.p99) : ''} | ${tp} | ${notes} |`);
    }
  }
  return lines.join('\n') + '\n';
}

module.exports = { markdown, headlines, sizeName };
