'use strict';
// A small SVG line chart: x against y for a few named series (pmu, a peer, a floor), log or
// linear axes, ticks, a legend. Written here rather than taken from npm because `pmu bench`
// runs from an installed package, where only pmu's runtime dependencies exist, and the chart
// libraries that render SVG in Node (vega, chart.js + canvas) are megabytes or native code.

const WIDTH = 640;
const HEIGHT = 360;
const MARGIN = { left: 72, right: 16, top: 36, bottom: 48 };
const LEGEND_WIDTH = 190;
// Colour-blind-safe (Okabe–Ito); dashes tell the series apart in grey print too.
const COLOURS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000'];
const DASHES = ['', '6 3', '2 3', '8 3 2 3', '4 4', '1 2', '10 4'];

function escapeXml(text) {
  return String(text).replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]);
}

/** Maps [lo, hi] onto [a, b], logarithmically when `log`; the domain must be positive for log. */
function scale(lo, hi, a, b, log) {
  const f = log ? Math.log10 : (v) => v;
  const l = f(lo);
  const h = f(hi);
  const span = h - l || 1;
  return (v) => a + ((f(v) - l) / span) * (b - a);
}

/** Tick values: powers of ten (and 2, 5 between when the range is short) for log, round steps for linear. */
function ticks(lo, hi, log) {
  if (log) {
    const out = [];
    const first = Math.floor(Math.log10(lo));
    const last = Math.ceil(Math.log10(hi));
    const steps = last - first <= 2 ? [1, 2, 5] : [1];
    for (let e = first; e <= last; e++) {
      for (const m of steps) {
        const v = m * 10 ** e;
        if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
      }
    }
    return out.length >= 2 ? out : [lo, hi];
  }
  const raw = (hi - lo) / 5 || 1;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** The axis's own tick values (e.g. powers of two for sizes) within the range, else ticks(). */
function axisTicks(axis, lo, hi, log) {
  if (!Array.isArray(axis?.ticks)) return ticks(lo, hi, log);
  const inside = axis.ticks.filter((v) => v >= lo * 0.999 && v <= hi * 1.001);
  return inside.length > 0 ? inside : ticks(lo, hi, log);
}

/** A short label for a tick: 1.5k, 2M, 0.25. `format` overrides it. */
function shortNumber(v) {
  const abs = Math.abs(v);
  const trim = (x) => String(Number(x.toPrecision(3)));
  if (abs >= 1e9) return `${trim(v / 1e9)}G`;
  if (abs >= 1e6) return `${trim(v / 1e6)}M`;
  if (abs >= 1e3) return `${trim(v / 1e3)}k`;
  return trim(v);
}

/**
 * Renders one chart to an SVG string.
 *   { title, x: { label, log, format, ticks? }, y: { label, log, format, ticks? },
 *     series: [{ name, points: [[x, y], ...], dashed? }] }
 * Points that are not finite (or not positive on a log axis) are left out; a series with no
 * point left is listed in the legend as "(no data)". Throws when no series has a point.
 */
function lineChart(spec) {
  const xLog = Boolean(spec.x?.log);
  const yLog = Boolean(spec.y?.log);
  const valid = ([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!xLog || x > 0) && (!yLog || y > 0);
  const series = (spec.series || []).map((s) => ({ ...s, points: (s.points || []).filter(valid).sort((a, b) => a[0] - b[0]) }));
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) throw new Error(`chart ${JSON.stringify(spec.title)}: no series has a point to draw`);
  let [xLo, xHi] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [yLo, yHi] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (xLo === xHi) [xLo, xHi] = xLog ? [xLo / 2, xHi * 2] : [xLo - 1, xHi + 1];
  if (yLog) {
    if (yLo === yHi) [yLo, yHi] = [yLo / 2, yHi * 2];
    // Whole decades, so the ticks frame the data.
    [yLo, yHi] = [10 ** Math.floor(Math.log10(yLo)), 10 ** Math.ceil(Math.log10(yHi))];
  } else {
    yLo = Math.min(0, yLo);
    if (yLo === yHi) yHi = yLo + 1;
    yHi *= 1.05;
  }
  const plotRight = WIDTH - MARGIN.right - LEGEND_WIDTH;
  const sx = scale(xLo, xHi, MARGIN.left, plotRight, xLog);
  const sy = scale(yLo, yHi, HEIGHT - MARGIN.bottom, MARGIN.top, yLog);
  const fx = spec.x?.format || shortNumber;
  const fy = spec.y?.format || shortNumber;
  const r = (v) => v.toFixed(1);

  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="11">`);
  out.push(`<title>${escapeXml(spec.title || '')}</title>`);
  out.push(`<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`);
  out.push(`<text x="${MARGIN.left}" y="20" font-size="13" font-weight="bold">${escapeXml(spec.title || '')}</text>`);
  for (const t of axisTicks(spec.x, xLo, xHi, xLog)) {
    const x = r(sx(t));
    out.push(`<line x1="${x}" y1="${MARGIN.top}" x2="${x}" y2="${HEIGHT - MARGIN.bottom}" stroke="#e0e0e0"/>`);
    out.push(`<text x="${x}" y="${HEIGHT - MARGIN.bottom + 14}" text-anchor="middle">${escapeXml(fx(t))}</text>`);
  }
  for (const t of axisTicks(spec.y, yLo, yHi, yLog)) {
    const y = r(sy(t));
    out.push(`<line x1="${MARGIN.left}" y1="${y}" x2="${plotRight}" y2="${y}" stroke="#e0e0e0"/>`);
    out.push(`<text x="${MARGIN.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${escapeXml(fy(t))}</text>`);
  }
  out.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotRight - MARGIN.left}" height="${HEIGHT - MARGIN.top - MARGIN.bottom}" fill="none" stroke="#444"/>`);
  out.push(`<text x="${(MARGIN.left + plotRight) / 2}" y="${HEIGHT - 12}" text-anchor="middle">${escapeXml(spec.x?.label || '')}${xLog ? ' (log)' : ''}</text>`);
  out.push(`<text transform="translate(16 ${(MARGIN.top + HEIGHT - MARGIN.bottom) / 2}) rotate(-90)" text-anchor="middle">${escapeXml(spec.y?.label || '')}${yLog ? ' (log)' : ''}</text>`);
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const dash = s.dashed === false ? '' : DASHES[i % DASHES.length];
    const dashAttr = dash ? ` stroke-dasharray="${dash}"` : '';
    if (s.points.length > 0) {
      const d = s.points.map(([x, y], k) => `${k === 0 ? 'M' : 'L'}${r(sx(x))} ${r(sy(y))}`).join(' ');
      out.push(`<path class="series" data-name="${escapeXml(s.name)}" d="${d}" fill="none" stroke="${colour}" stroke-width="2"${dashAttr}/>`);
      for (const [x, y] of s.points) out.push(`<circle cx="${r(sx(x))}" cy="${r(sy(y))}" r="2.5" fill="${colour}"/>`);
    }
    const ly = MARGIN.top + 8 + i * 18;
    const lx = plotRight + 12;
    out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 22}" y2="${ly}" stroke="${colour}" stroke-width="2"${dashAttr}/>`);
    out.push(`<text x="${lx + 28}" y="${ly}" dominant-baseline="middle">${escapeXml(s.name)}${s.points.length === 0 ? ' (no data)' : ''}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

module.exports = { lineChart, ticks, axisTicks, scale, escapeXml, shortNumber };
