/**
 * The bench's SVG chart renderer (bench/lib/chart.js): points land where their values say,
 * log axes tick at decades, text is escaped, bad points are left out and an empty chart is
 * refused. Pure functions: this file runs in well under a second.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { lineChart, ticks, axisTicks, scale, escapeXml, shortNumber } = require('../bench/lib/chart');

function pathPoints(svg: string, name: string): Array<[number, number]> {
  const match = svg.match(new RegExp(`<path class="series" data-name="${name}" d="([^"]+)"`));
  if (!match) throw new Error(`no path for ${name}`);
  return match[1].split(/ ?[ML]/).filter(Boolean).map((pair) => pair.trim().split(' ').map(Number) as [number, number]);
}

describe('bench chart renderer', () => {
  test('a series is drawn left to right, higher values higher on the page, sorted by x', () => {
    const svg = lineChart({
      title: 'latency',
      x: { label: 'clients', log: true },
      y: { label: 'µs', log: true },
      series: [{ name: 'pmu', points: [[16, 200], [1, 50], [256, 3000]] }],
    });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
    const pts = pathPoints(svg, 'pmu');
    expect(pts).toHaveLength(3);
    expect(pts[0][0]).toBeLessThan(pts[1][0]);
    expect(pts[1][0]).toBeLessThan(pts[2][0]);
    // SVG y grows downwards: a larger value sits higher, i.e. at a smaller y.
    expect(pts[0][1]).toBeGreaterThan(pts[1][1]);
    expect(pts[1][1]).toBeGreaterThan(pts[2][1]);
    // Log x: 1 → 16 → 256 are equal steps of 16×, so equal distances on the page.
    expect(pts[1][0] - pts[0][0]).toBeCloseTo(pts[2][0] - pts[1][0], 0);
  });

  test('a peer and a floor are drawn on the same scale as pmu, each with its legend entry', () => {
    const svg = lineChart({
      title: 't',
      x: { label: 'x' },
      y: { label: 'y' },
      series: [
        { name: 'pmu', points: [[1, 10], [2, 20]] },
        { name: 'floor', points: [[1, 10], [2, 10]] },
      ],
    });
    const pmu = pathPoints(svg, 'pmu');
    const floor = pathPoints(svg, 'floor');
    expect(pmu[0]).toEqual(floor[0]);
    expect(floor[1][1]).toBeGreaterThan(pmu[1][1]);
    expect(svg).toContain('>pmu</text>');
    expect(svg).toContain('>floor</text>');
  });

  test('names and titles are escaped', () => {
    const svg = lineChart({ title: 'a <b> & "c"', x: {}, y: {}, series: [{ name: "Redis 'always'", points: [[1, 1], [2, 2]] }] });
    expect(svg).toContain('a &lt;b&gt; &amp; &quot;c&quot;');
    expect(svg).toContain('Redis &apos;always&apos;');
    expect(svg).not.toContain('<b>');
    expect(escapeXml('<&>')).toBe('&lt;&amp;&gt;');
  });

  test('points that cannot be drawn are left out; a series without any says (no data)', () => {
    const svg = lineChart({
      title: 't',
      x: { log: true },
      y: { log: true },
      series: [
        { name: 'pmu', points: [[0, 5], [1, NaN], [2, 4], [4, 0], [8, 16], [16, Infinity]] },
        { name: 'Redis', points: [] },
      ],
    });
    expect(pathPoints(svg, 'pmu')).toHaveLength(2);
    expect(svg).toContain('Redis (no data)');
    expect(svg).not.toContain('data-name="Redis"');
    expect(svg).not.toMatch(/NaN|Infinity/);
  });

  test('a chart with no point at all is refused with its title in the message', () => {
    expect(() => lineChart({ title: 'empty one', x: {}, y: {}, series: [{ name: 'a', points: [[NaN, 1]] }] })).toThrow(/empty one.*no series has a point/);
    expect(() => lineChart({ title: 'none', x: {}, y: {} })).toThrow(/no series/);
  });

  test('a single point still renders inside the plot', () => {
    const svg = lineChart({ title: 't', x: { log: true }, y: { log: true }, series: [{ name: 'one', points: [[64, 100]] }] });
    const [[x, y]] = pathPoints(svg, 'one');
    expect(x).toBeGreaterThan(72);
    expect(x).toBeLessThan(640);
    expect(y).toBeGreaterThan(36);
    expect(y).toBeLessThan(360 - 48);
  });

  test('ticks: decades on a wide log axis, 1-2-5 on a short one, round steps on a linear one', () => {
    expect(ticks(1, 4096, true)).toEqual([1, 10, 100, 1000]);
    expect(ticks(1, 100, true)).toEqual([1, 2, 5, 10, 20, 50, 100]);
    expect(ticks(0, 100, false)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(ticks(0, 1, false)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
  });

  test("an axis's own ticks are used within the range, and ignored when none falls inside", () => {
    expect(axisTicks({ ticks: [64, 4096, 1 << 20, 16 << 20] }, 64, 1 << 20, true)).toEqual([64, 4096, 1 << 20]);
    expect(axisTicks({ ticks: [1e9] }, 1, 100, true)).toEqual(ticks(1, 100, true));
    const svg = lineChart({ title: 't', x: { log: true, ticks: [64, 4096], format: (v: number) => `${v} B` }, y: {}, series: [{ name: 's', points: [[64, 1], [4096, 2]] }] });
    expect(svg).toContain('>64 B</text>');
    expect(svg).toContain('>4096 B</text>');
    expect(svg).not.toContain('>100</text>');
  });

  test('scale maps the ends of the domain onto the ends of the range', () => {
    const lin = scale(0, 10, 100, 200, false);
    expect(lin(0)).toBe(100);
    expect(lin(10)).toBe(200);
    expect(lin(5)).toBe(150);
    const log = scale(1, 100, 0, 2, true);
    expect(log(10)).toBeCloseTo(1);
  });

  test('short numbers', () => {
    expect(shortNumber(1500)).toBe('1.5k');
    expect(shortNumber(2e6)).toBe('2M');
    expect(shortNumber(0.25)).toBe('0.25');
    expect(shortNumber(8 * 2 ** 30)).toBe('8.59G');
  });
});
