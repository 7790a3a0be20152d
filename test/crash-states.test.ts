/**
 * Crash states after a power loss, enumerated (scripts/crash-states.js, the recorder in
 * native/crash/crash_recorder.cpp). `npm test` builds the recording addon before jest starts
 * (pretest; ~25 s on a fresh clone, nothing when it is up to date); beforeAll builds it too when
 * this file runs alone. Then, all in child processes that load it through PMU_ADDON_PATH:
 * - the recorder's model holds: a 'flushed' write is in the durable image at its ack's barrier,
 *   a 'mapped' one is not until a flush; dirty pages come back old, new or torn at 512-byte
 *   sectors, never split inside a sector;
 * - the harness catches a flush that made nothing durable (--lie-barriers);
 * - two updates the enumeration found fragile recover from every torn form (all sector masks):
 *   a table update, and an overwrite log whose 'flushed' checkpoint a 'mapped' writer follows;
 * - a bounded run of BOUNDED_STATES crash states recovers with no failure.
 * Bound: about 15 s on an idle 2-core machine, under 40 s in the loaded full suite (the build
 * aside). The long run is `npm run crash-states -- --states 100000`.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as path from 'node:path';
import { removeTempDirs, tempDir } from './helpers/temp';
import { waitForExit } from './helpers/wait';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { build } = require('../scripts/build-crash-addon');

const ROOT = path.join(__dirname, '..');
const DRIVER = path.join(ROOT, 'scripts', 'crash-states.js');
const PROBE = path.join(__dirname, 'fixtures', 'crash-recorder-probe.js');
const TORN_CASES = path.join(__dirname, 'fixtures', 'crash-torn-cases.js');
const BOUNDED_STATES = 2000;

let addonPath: string;

beforeAll(() => {
  addonPath = build();
}, 300_000);

afterAll(removeTempDirs);

async function runNode(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, PMU_ADDON_PATH: addonPath }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const { code } = await waitForExit(child, timeoutMs);
  return { code, stdout, stderr };
}

function lastJson(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

describe('the recording addon', () => {
  test('is a separate build: the normal addon has no recorder and no wrapped syscalls', () => {
    // The addon lib/unit/native.ts loads when PMU_ADDON_PATH is unset (a prebuild or build/Release).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const normalPath: string = require('node-gyp-build').path(ROOT);
    expect(path.resolve(normalPath)).not.toBe(path.resolve(addonPath));
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    expect(require(normalPath).crashRecorder).toBeUndefined();
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    expect(typeof require(addonPath).crashRecorder.barrierCount).toBe('function');
    expect(execFileSync('nm', ['-D', normalPath]).toString()).not.toMatch(/__wrap_/);
    expect(execFileSync('nm', ['-D', addonPath]).toString()).toMatch(/__wrap_msync/);
  });

  test('keeps the durable image and the dirty pages: flushed is there, mapped is old, new or torn by sector', async () => {
    const { code, stdout, stderr } = await runNode([PROBE, tempDir('pmu-crash-probe-')], 60_000);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const seen = lastJson(stdout);
    // The region's creation is one barrier (its table update); the flushed write is the next.
    expect(seen.flushedAck).toBe((seen.afterCreate as number) + 1);
    expect(seen.pointBarriers).toBe(seen.flushedAck);
    expect(seen.pointDirtyPages).toBe(1);
    expect(seen.durableHasFlushed).toBe(true);
    expect(seen.durableLacksMapped).toBe(true);
    expect(seen.allNewHasMapped).toBe(true);
    // 200 seeded images of the one dirty page: every outcome occurs, no sector is ever split.
    expect(seen.torn).toBeGreaterThan(0);
    expect(seen.wholeNew).toBeGreaterThan(0);
    expect(seen.wholeOld).toBeGreaterThan(0);
    expect(seen.splitSectors).toBe(0);
    // close() msyncs the whole mapping: one more barrier, after which the mapped write is durable.
    expect(seen.afterClose).toBe((seen.flushedAck as number) + 1);
    expect(seen.closeMadeMappedDurable).toBe(true);
  }, 60_000);
});

describe('found by the enumeration, checked under every sector mask', () => {
  let cases: { metadata: { images: number; refused: number; wrong: number; examples: string[] }; overwrite: { images: number; lost: number; examples: string[] }; zeroing: { points: number; images: number; freed: number; created: number; wrong: number; examples: string[] } };

  beforeAll(async () => {
    const { code, stdout, stderr } = await runNode([TORN_CASES, tempDir('pmu-crash-torn-')], 120_000);
    if (code !== 0) throw new Error(`crash-torn-cases.js exited ${code}: ${stderr}`);
    cases = lastJson(stdout) as typeof cases;
  }, 120_000);

  test('a torn table update opens as the table before or after it: never ECORRUPT, never a mix', () => {
    // The table CRC must depend on the entries' content: each entry ends with its own CRC32C,
    // so a CRC over whole entries is the same for any content (the CRC residue).
    expect(cases.metadata.images).toBeGreaterThanOrEqual(512);
    expect({ refused: cases.metadata.refused, wrong: cases.metadata.wrong, examples: cases.metadata.examples }).toEqual({ refused: 0, wrong: 0, examples: [] });
  });

  test('a crash midway through zeroing for a create in reused space leaves the extent free (or the region whole and zero)', () => {
    // Points: the zeroing's fdatasync (its zeros dirty: old, new or torn) and the table commit's.
    expect(cases.zeroing.points).toBeGreaterThanOrEqual(2);
    expect(cases.zeroing.freed).toBeGreaterThan(0);
    expect(cases.zeroing.created + cases.zeroing.freed).toBe(cases.zeroing.images);
    expect({ wrong: cases.zeroing.wrong, examples: cases.zeroing.examples }).toEqual({ wrong: 0, examples: [] });
  });

  test("a 'mapped' overwrite writer never tears away the last 'flushed' checkpoint", () => {
    expect(cases.overwrite.images).toBe(256);
    expect({ lost: cases.overwrite.lost, examples: cases.overwrite.examples }).toEqual({ lost: 0, examples: [] });
  });
});

describe('crash states', () => {
  test('the harness reports lost writes when a flush is taken to have made nothing durable', async () => {
    const { code, stdout } = await runNode([DRIVER, '--states', '300', '--lie-barriers', '1', '--json', '--keep', tempDir('pmu-crash-lie-')], 120_000);
    expect(code).toBe(1);
    const summary = lastJson(stdout) as { failures: number; byKind: Record<string, number> };
    expect(summary.failures).toBeGreaterThan(0);
    // Each layer's check fires: table updates, embedded writes, log records, checkpoints.
    for (const kind of ['record-lost', 'write-lost', 'checkpoint-lost']) expect(summary.byKind[kind]).toBeGreaterThan(0);
  }, 120_000);

  test(`a bounded run of ${BOUNDED_STATES} crash states recovers every acknowledged write`, async () => {
    const keep = tempDir('pmu-crash-failures-');
    const { code, stdout, stderr } = await runNode([DRIVER, '--states', String(BOUNDED_STATES), '--json', '--keep', keep], 180_000);
    const summary = lastJson(stdout) as { states: number; failures: number; byKind: Record<string, number>; ops: Record<string, number>; examples: Array<{ kind: string; detail: string; repro: string }> };
    // On failure, say what was lost and how to reproduce it.
    const report = summary.examples.map((e) => `${e.kind}: ${e.detail}\n  ${e.repro}`).join('\n');
    expect({ failures: summary.failures, byKind: summary.byKind, report }).toEqual({ failures: 0, byKind: {}, report: '' });
    expect(summary.states).toBe(BOUNDED_STATES);
    // The crash points covered local creates in reused space (region-create), some of them zeroed on the pool (createRegionAsync).
    expect(summary.ops['region-create']).toBeGreaterThan(0);
    expect(summary.ops['region-create-async']).toBeGreaterThan(0);
    expect(stderr).toBe('');
    expect(code).toBe(0);
  }, 180_000);
});
