/**
 * One Region compliance suite, run against every Region implementation: LocalRegion (a unit in
 * this process), RemoteRegion (a PmuServer on loopback) and MirroredRegion (a 2-PMU set with a
 * real etcd). The cases are the Region interface's contract (lib/unit/region.ts, DESIGN.md "The
 * Region interface" and "Durability levels"): bounds, durability levels, compare-and-swap,
 * errors and their codes, close while operations are in flight, and fences.
 *
 * Where implementations differ in a documented way, the implementation declares it (its type,
 * what closing it means, which codes an operation in flight may get, whether it has a membership
 * that closing must not change); the cases never ask which implementation they run on. Where an
 * implementation breaks the contract today, the case is listed in its `knownBugs` with why, and
 * runs as test.failing: it passes while the bug is there and fails once it is fixed (then delete
 * the entry); PMU_COMPLIANCE_STRICT=1 runs them as plain tests, to see each failure. Bound: ~5 s,
 * most of it etcd and the PMU set starting.
 */
import * as path from 'node:path';
import { PersistentMemoryUnit, PmuClient, PmuError, Region, RemoteRegion } from '../lib';
import type { PmuErrorCode } from '../lib';
import { createMirroredRegion, MirroredRegion, PmuPool } from '../lib/mirror';
import { DURABILITY_LEVELS, RegionType } from '../lib/unit/durability';
import { Harness, startServer } from './fixtures/net-harness';
import { startSet, TestSet } from './fixtures/mirror-set';
import { etcdAvailable } from './helpers/etcd';
import { removeTempDirs, tempDir } from './helpers/temp';
import { waitFor } from './helpers/wait';

const SIZE = 64 * 1024;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
/** PMU_COMPLIANCE_STRICT=1: known bugs run as plain tests, to see each one's failure. */
const STRICT = process.env.PMU_COMPLIANCE_STRICT === '1';
/** Longest an operation in flight may take to settle once its region is closed. */
const SETTLE_MS = 5000;

afterAll(removeTempDirs);

// ---------------------------------------------------------------------------------------------
// What an implementation gives the suite

/** A fresh region of one implementation, and what a case needs around it. */
interface Subject {
  readonly region: Region;
  /** Another caller on the same region: its own handle, connection or writer (with its own pool). */
  another(): Promise<Region>;
  /** After the region was closed: the same bytes through a fresh unit, client or pool. */
  reopen(): Promise<Region>;
  /** Releases whatever the subject still holds; safe after any closer. */
  dispose(): Promise<void>;
}

/** One way to close what holds a region while operations on it are in flight. */
interface Closer<S extends Subject> {
  /** What is closed, as the test titles say it ("unit.close()"). */
  readonly what: string;
  close(subject: S): Promise<void>;
  /** Codes an operation in flight may reject with (it may also resolve). */
  readonly inFlightCodes: readonly PmuErrorCode[];
}

interface Implementation<S extends Subject> {
  readonly name: string;
  /** False: the implementation cannot run here (etcd missing); its cases are skipped. */
  readonly available: boolean;
  readonly type: RegionType;
  start(): Promise<void>;
  stop(): Promise<void>;
  make(size: number): Promise<S>;
  readonly closers: readonly Closer<S>[];
  /** The region's membership where it has one (a mirrored region's replica set): closing a writer must leave it as it was. */
  membership?(subject: S): Promise<unknown>;
  /** Case title -> why it fails today. Each such case runs as test.failing. */
  readonly knownBugs: Readonly<Record<string, string>>;
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** A recognisable byte pattern over the whole region: what refused operations must leave alone. */
function pattern(length: number): Buffer {
  const bytes = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + 7) & 0xff;
  return bytes;
}

async function wordAt(region: Region, offset: number): Promise<bigint> {
  return (await region.read(offset, 8)).readBigUInt64LE(0);
}

/**
 * The error an operation was refused with. Every refusal must be a rejected promise (never a
 * synchronous throw) carrying a PmuError with a string code and a message.
 */
async function refusal(call: () => Promise<unknown>): Promise<PmuError> {
  let pending: Promise<unknown>;
  try {
    pending = call();
  } catch (error) {
    throw new Error(`threw synchronously instead of returning a rejected promise: ${String(error)}`);
  }
  const outcome = await pending.then(
    (value) => ({ resolved: value }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in outcome)) throw new Error(`resolved (with ${String(outcome.resolved)}) instead of being refused`);
  const { error } = outcome;
  if (!(error instanceof PmuError)) throw new Error(`rejected with a ${(error as Error)?.constructor?.name ?? typeof error}, not a PmuError: ${String(error)}`);
  expect(error.name).toBe('PmuError');
  expect(typeof error.code).toBe('string');
  expect(error.message.length).toBeGreaterThan(0);
  return error;
}

async function expectRefusal(call: () => Promise<unknown>, code: PmuErrorCode, names: string): Promise<PmuError> {
  const error = await refusal(call);
  expect({ code: error.code, message: error.message }).toEqual({ code, message: expect.stringContaining(names) });
  return error;
}

type Outcome = { state: 'pending' } | { state: 'resolved'; value: unknown } | { state: 'rejected'; error: unknown };

function observe(promise: Promise<unknown>): Outcome[] {
  const box: Outcome[] = [{ state: 'pending' }];
  promise.then(
    (value) => (box[0] = { state: 'resolved', value }),
    (error: unknown) => (box[0] = { state: 'rejected', error }),
  );
  return box;
}

function describeError(error: unknown): string {
  return error instanceof PmuError ? `${error.code}: ${error.message}` : `${(error as Error)?.name}: ${String(error)}`;
}

// ---------------------------------------------------------------------------------------------
// The cases

/**
 * A refusal the contract names: `call` on a region holding pattern(SIZE) must reject with `code`,
 * its message must contain `names` (default: the region's name), and the region must still hold
 * the pattern afterwards.
 */
interface Refusal {
  label: string;
  code: PmuErrorCode;
  call(region: Region): Promise<unknown>;
  names?: string;
}

const ONE = Buffer.from([0xff]);
const EIGHT = Buffer.alloc(8, 0xff);
const UNKNOWN_LEVEL = 'durable' as never;

const BOUNDS_REFUSALS: Refusal[] = [
  // One byte past the end, and offset past the end.
  { label: 'write(size - 7, 8 bytes)', code: 'EBOUNDS', call: (r) => r.write(SIZE - 7, EIGHT) },
  { label: 'read(size - 7, 8)', code: 'EBOUNDS', call: (r) => r.read(SIZE - 7, 8) },
  { label: 'flush(size - 7, 8)', code: 'EBOUNDS', call: (r) => r.flush(SIZE - 7, 8) },
  { label: 'compareAndSwap(size, …)', code: 'EBOUNDS', call: (r) => r.compareAndSwap(SIZE, 0n, 1n) },
  { label: 'read(0, size + 1)', code: 'EBOUNDS', call: (r) => r.read(0, SIZE + 1) },
  { label: 'write(size + 1, 0 bytes)', code: 'EBOUNDS', call: (r) => r.write(SIZE + 1, Buffer.alloc(0)) },
  { label: 'read(size + 1, 0)', code: 'EBOUNDS', call: (r) => r.read(SIZE + 1, 0) },
  { label: 'flush(size + 1, 0)', code: 'EBOUNDS', call: (r) => r.flush(SIZE + 1, 0) },
  { label: 'flush(size + 1) with the default length', code: 'EBOUNDS', call: (r) => r.flush(SIZE + 1) },
  { label: 'compareAndSwap(size + 8, …)', code: 'EBOUNDS', call: (r) => r.compareAndSwap(SIZE + 8, 0n, 1n) },
  // Negative, fractional, NaN, not a number, not a safe integer.
  { label: 'write(-1, 1 byte)', code: 'EINVAL', names: 'offset', call: (r) => r.write(-1, ONE) },
  { label: 'read(-1, 1)', code: 'EINVAL', names: 'offset', call: (r) => r.read(-1, 1) },
  { label: 'flush(-1, 1)', code: 'EINVAL', names: 'offset', call: (r) => r.flush(-1, 1) },
  { label: 'compareAndSwap(-8, …)', code: 'EINVAL', names: 'offset', call: (r) => r.compareAndSwap(-8, 0n, 1n) },
  { label: 'read(0, -1)', code: 'EINVAL', names: 'length', call: (r) => r.read(0, -1) },
  { label: 'flush(0, -1)', code: 'EINVAL', names: 'length', call: (r) => r.flush(0, -1) },
  { label: 'write(0.5, 1 byte)', code: 'EINVAL', names: 'offset', call: (r) => r.write(0.5, ONE) },
  { label: 'read(0, 1.5)', code: 'EINVAL', names: 'length', call: (r) => r.read(0, 1.5) },
  { label: 'flush(8, 0.5)', code: 'EINVAL', names: 'length', call: (r) => r.flush(8, 0.5) },
  { label: 'compareAndSwap(8.5, …)', code: 'EINVAL', names: 'offset', call: (r) => r.compareAndSwap(8.5, 0n, 1n) },
  { label: 'write(NaN, 1 byte)', code: 'EINVAL', names: 'offset', call: (r) => r.write(NaN, ONE) },
  { label: 'read(NaN, 1)', code: 'EINVAL', names: 'offset', call: (r) => r.read(NaN, 1) },
  { label: 'read(0, NaN)', code: 'EINVAL', names: 'length', call: (r) => r.read(0, NaN) },
  { label: 'flush(NaN)', code: 'EINVAL', names: 'offset', call: (r) => r.flush(NaN) },
  { label: 'compareAndSwap(NaN, …)', code: 'EINVAL', names: 'offset', call: (r) => r.compareAndSwap(NaN, 0n, 1n) },
  { label: 'write(Infinity, 1 byte)', code: 'EINVAL', names: 'offset', call: (r) => r.write(Infinity, ONE) },
  { label: "write('8', 1 byte)", code: 'EINVAL', names: 'offset', call: (r) => r.write('8' as never, ONE) },
  { label: 'write(8n, 1 byte)', code: 'EINVAL', names: 'offset', call: (r) => r.write(8n as never, ONE) },
  { label: 'write(2^53, 1 byte)', code: 'EINVAL', names: 'offset', call: (r) => r.write(2 ** 53, ONE) },
  // offset + length past 2^53: no wrap-around, no allocation of the asked length first.
  { label: 'write(2^53 - 1, 8 bytes)', code: 'EBOUNDS', call: (r) => r.write(MAX_SAFE, EIGHT) },
  { label: 'read(2^53 - 1, 1)', code: 'EBOUNDS', call: (r) => r.read(MAX_SAFE, 1) },
  { label: 'read(size - 8, 2^53 - 1)', code: 'EBOUNDS', call: (r) => r.read(SIZE - 8, MAX_SAFE) },
  { label: 'flush(8, 2^53 - 1)', code: 'EBOUNDS', call: (r) => r.flush(8, MAX_SAFE) },
  { label: 'compareAndSwap(2^53 - 8, …)', code: 'EBOUNDS', call: (r) => r.compareAndSwap(2 ** 53 - 8, 0n, 1n) },
];

const CAS_REFUSALS: Refusal[] = [
  { label: 'compareAndSwap(1, …)', code: 'EALIGN', call: (r) => r.compareAndSwap(1, 0n, 1n) },
  { label: 'compareAndSwap(1028, …)', code: 'EALIGN', call: (r) => r.compareAndSwap(1028, 0n, 1n) },
  { label: 'compareAndSwap(size - 12, …)', code: 'EALIGN', call: (r) => r.compareAndSwap(SIZE - 12, 0n, 1n) },
  { label: 'expected -1n', code: 'EINVAL', names: 'expected', call: (r) => r.compareAndSwap(1024, -1n, 1n) },
  { label: 'expected 2n ** 64n', code: 'EINVAL', names: 'expected', call: (r) => r.compareAndSwap(1024, 2n ** 64n, 1n) },
  { label: 'expected 1 (a number)', code: 'EINVAL', names: 'expected', call: (r) => r.compareAndSwap(1024, 1 as never, 1n) },
  { label: 'value -1n', code: 'EINVAL', names: 'value', call: (r) => r.compareAndSwap(1024, 0n, -1n) },
  { label: 'value 2n ** 64n', code: 'EINVAL', names: 'value', call: (r) => r.compareAndSwap(1024, 0n, 2n ** 64n) },
  { label: 'value 1 (a number)', code: 'EINVAL', names: 'value', call: (r) => r.compareAndSwap(1024, 0n, 1 as never) },
];

const ARGUMENT_REFUSALS: Refusal[] = [
  { label: "data 'abc' (a string)", code: 'EINVAL', names: 'data', call: (r) => r.write(0, 'abc' as never) },
  { label: 'data an ArrayBuffer', code: 'EINVAL', names: 'data', call: (r) => r.write(0, new ArrayBuffer(8) as never) },
  { label: 'data a DataView', code: 'EINVAL', names: 'data', call: (r) => r.write(0, new DataView(new ArrayBuffer(8)) as never) },
  { label: 'data a Uint16Array', code: 'EINVAL', names: 'data', call: (r) => r.write(0, new Uint16Array(4) as never) },
  { label: 'data [1, 2, 3]', code: 'EINVAL', names: 'data', call: (r) => r.write(0, [1, 2, 3] as never) },
  { label: 'data null', code: 'EINVAL', names: 'data', call: (r) => r.write(0, null as never) },
  { label: 'data undefined', code: 'EINVAL', names: 'data', call: (r) => r.write(0, undefined as never) },
  // Two things wrong: the argument checks (EINVAL) come before the range check (EBOUNDS), as
  // LocalRegion and RemoteRegion order them, so a caller learns the same code from each.
  { label: 'write(size + 1, 1 byte) at an unknown level', code: 'EINVAL', names: 'durability', call: (r) => r.write(SIZE + 1, ONE, { durability: UNKNOWN_LEVEL }) },
  { label: 'compareAndSwap(size, …) at an unknown level', code: 'EINVAL', names: 'durability', call: (r) => r.compareAndSwap(SIZE, 0n, 1n, { durability: UNKNOWN_LEVEL }) },
];

/** The fence word rows assume the pattern's word at 1024 (FENCE_AT); FENCE_EPOCH is what it holds. */
const FENCE_AT = 1024;
const FENCE_EPOCH = pattern(SIZE).readBigUInt64LE(FENCE_AT);
const fenced = (offset: number, epoch: bigint, durability?: 'mapped') => (r: Region) => r.write(2048, EIGHT, { durability, fence: { offset, epoch } });

const FENCE_REFUSALS: Refusal[] = [
  { label: 'the fence word holds another epoch', code: 'EFENCED', call: fenced(FENCE_AT, FENCE_EPOCH ^ 1n) },
  { label: "a 'mapped' write, the fence word holds another epoch", code: 'EFENCED', call: fenced(FENCE_AT, FENCE_EPOCH ^ 1n, 'mapped') },
  { label: 'fence.offset size - 4 (the word runs past the end)', code: 'EBOUNDS', call: fenced(SIZE - 4, 0n) },
  { label: 'fence.offset size', code: 'EBOUNDS', call: fenced(SIZE, 0n) },
  { label: 'fence.offset 2^53 - 1', code: 'EBOUNDS', call: fenced(MAX_SAFE, 0n) },
  { label: 'fence.offset 1028 (misaligned)', code: 'EALIGN', call: fenced(1028, 0n) },
  { label: 'fence.offset -8', code: 'EINVAL', names: 'fence.offset', call: fenced(-8, 0n) },
  { label: 'fence.offset 1.5', code: 'EINVAL', names: 'fence.offset', call: fenced(1.5, 0n) },
  { label: 'fence.epoch -1n', code: 'EINVAL', names: 'fence.epoch', call: fenced(FENCE_AT, -1n) },
  { label: 'fence.epoch 2n ** 64n', code: 'EINVAL', names: 'fence.epoch', call: fenced(FENCE_AT, 2n ** 64n) },
  { label: 'fence.epoch 5 (a number)', code: 'EINVAL', names: 'fence.epoch', call: fenced(FENCE_AT, 5 as never) },
  // The refusal must blame the fence, not the write's own (valid) range.
  { label: 'fence.offset size: the message blames the fence', code: 'EBOUNDS', names: 'fence', call: fenced(SIZE, 0n) },
  { label: 'fence.offset 1028: the message blames the fence', code: 'EALIGN', names: 'fence', call: fenced(1028, 0n) },
];

/** Durability values no level has: a prototype's name, a number, another case, null, empty. */
const UNKNOWN_LEVELS: unknown[] = ['durable', 'toString', '__proto__', 'constructor', 'FLUSHED', '', 1, null];

function describeRegionCompliance<S extends Subject>(impl: Implementation<S>): void {
  const titles = new Set<string>();
  const describeOrSkip = impl.available ? describe : describe.skip;

  describeOrSkip(impl.name, () => {
    const subjects: S[] = [];
    const fresh = async (): Promise<S> => {
      const subject = await impl.make(SIZE);
      subjects.push(subject);
      return subject;
    };

    /** A case, or test.failing when the implementation lists it among its known bugs. */
    function check(title: string, fn: () => Promise<void>, timeoutMs?: number): void {
      titles.add(title);
      (impl.knownBugs[title] && !STRICT ? test.failing : test)(title, fn, timeoutMs);
    }

    /** Refusal rows on one region holding pattern(SIZE), checked unchanged after each. */
    function refusals(rows: Refusal[]): void {
      let subject: S;
      const bytes = pattern(SIZE);
      beforeAll(async () => {
        subject = await fresh();
        await subject.region.write(0, bytes);
      });
      for (const row of rows) {
        check(`${row.label} → ${row.code}`, async () => {
          await expectRefusal(() => row.call(subject.region), row.code, row.names ?? subject.region.name);
          expect((await subject.region.read(0, SIZE)).equals(bytes)).toBe(true);
        });
      }
    }

    beforeAll(() => impl.start(), 30_000);
    afterAll(async () => {
      for (const subject of subjects.splice(0)) await subject.dispose().catch(() => undefined);
      await impl.stop();
    }, 30_000);

    describe('1. bounds', () => {
      check('at the very end: write, read, flush and compareAndSwap succeed', async () => {
        const { region } = await fresh();
        expect(region.size).toBe(SIZE);
        expect(region.context.size).toBe(SIZE);
        const last = Buffer.from('lastword');
        await region.write(SIZE - 8, last);
        expect((await region.read(SIZE - 8, 8)).equals(last)).toBe(true);
        await region.flush(SIZE - 8, 8);
        expect(await region.compareAndSwap(SIZE - 8, last.readBigUInt64LE(0), 7n)).toBe(last.readBigUInt64LE(0));
        expect(await wordAt(region, SIZE - 8)).toBe(7n);
        // Empty ranges that end exactly at the end are inside the region.
        await region.write(SIZE, Buffer.alloc(0));
        expect(await region.read(SIZE, 0)).toHaveLength(0);
        await region.flush(SIZE, 0);
        await region.flush(SIZE);
        // The whole region, as one range.
        const whole = pattern(SIZE);
        await region.write(0, whole);
        await region.flush();
        expect((await region.read(0, SIZE)).equals(whole)).toBe(true);
      });
      describe('refused, and nothing written', () => refusals(BOUNDS_REFUSALS));
    });

    describe('2. durability levels', () => {
      check(`capabilities: type ${impl.type}, the levels the table gives it`, async () => {
        const { region } = await fresh();
        expect(region.capabilities.type).toBe(impl.type);
        const fromTable = DURABILITY_LEVELS.filter((level) => (level.regionTypes as readonly RegionType[]).includes(impl.type)).map((level) => level.name);
        expect(Object.keys(region.capabilities.durabilities).sort()).toEqual([...fromTable].sort());
        expect(Object.isFrozen(region.capabilities)).toBe(true);
        expect(Object.isFrozen(region.capabilities.durabilities)).toBe(true);
      });

      for (const level of DURABILITY_LEVELS) {
        const given = (level.regionTypes as readonly RegionType[]).includes(impl.type);
        check(given ? `'${level.name}': a write and a compareAndSwap succeed and read back` : `'${level.name}': EINVAL naming the level and ${impl.type}`, async () => {
          const { region } = await fresh();
          expect(region.capabilities.durabilities[level.name] === true).toBe(given);
          const data = Buffer.from(`at level ${level.name}`);
          if (!given) {
            await expectRefusal(() => region.write(512, data, { durability: level.name }), 'EINVAL', impl.type);
            await expectRefusal(() => region.compareAndSwap(1024, 0n, 5n, { durability: level.name }), 'EINVAL', impl.type);
            expect((await region.read(512, data.length)).equals(Buffer.alloc(data.length))).toBe(true);
            expect(await wordAt(region, 1024)).toBe(0n);
            return;
          }
          await region.write(512, data, { durability: level.name });
          expect((await region.read(512, data.length)).equals(data)).toBe(true);
          expect(await region.compareAndSwap(1024, 0n, 5n, { durability: level.name })).toBe(0n);
          expect(await wordAt(region, 1024)).toBe(5n);
          // A refused swap at this level changes nothing either.
          expect(await region.compareAndSwap(1024, 0n, 6n, { durability: level.name })).toBe(5n);
          expect(await wordAt(region, 1024)).toBe(5n);
        });
      }

      check('unknown levels are EINVAL naming durability, and write and swap nothing', async () => {
        const { region } = await fresh();
        for (const durability of UNKNOWN_LEVELS) {
          const error = await expectRefusal(() => region.write(512, ONE, { durability: durability as never }), 'EINVAL', 'durability');
          expect(error.message).not.toMatch(/^\s*$/);
          await expectRefusal(() => region.compareAndSwap(1024, 0n, 5n, { durability: durability as never }), 'EINVAL', 'durability');
        }
        expect((await region.read(512, 1))[0]).toBe(0);
        expect(await wordAt(region, 1024)).toBe(0n);
      });

      check('no durability option: the default level is accepted', async () => {
        const { region } = await fresh();
        await region.write(512, Buffer.from('default'));
        await region.write(600, Buffer.from('empty options'), {});
        expect((await region.read(512, 7)).toString()).toBe('default');
        expect((await region.read(600, 13)).toString()).toBe('empty options');
        expect(await region.compareAndSwap(1024, 0n, 9n)).toBe(0n);
        expect(await region.compareAndSwap(1024, 9n, 10n, {})).toBe(9n);
        expect(await wordAt(region, 1024)).toBe(10n);
      });
    });

    describe('3. compareAndSwap', () => {
      check('an aligned swap returns the previous value; a mismatch returns the current one and swaps nothing', async () => {
        const { region } = await fresh();
        const big = 0xfedc_ba98_7654_3210n;
        expect(await region.compareAndSwap(3072, 0n, big)).toBe(0n);
        expect(await wordAt(region, 3072)).toBe(big);
        // Little-endian, 8 bytes, nothing around it touched.
        expect((await region.read(3064, 24)).equals(Buffer.concat([Buffer.alloc(8), Buffer.from('1032547698badcfe', 'hex'), Buffer.alloc(8)]))).toBe(true);
        expect(await region.compareAndSwap(3072, 1n, 2n)).toBe(big);
        expect(await wordAt(region, 3072)).toBe(big);
        expect(await region.compareAndSwap(3072, big, 2n ** 64n - 1n)).toBe(big);
        expect(await region.compareAndSwap(3072, 2n ** 64n - 1n, 0n)).toBe(2n ** 64n - 1n);
        expect(await wordAt(region, 3072)).toBe(0n);
        // A swap to the value it holds is a swap that succeeded.
        expect(await region.compareAndSwap(3072, 0n, 0n)).toBe(0n);
      });

      check('two callers swapping the same word at once: exactly one wins each round', async () => {
        const subject = await fresh();
        const [mine, theirs] = [subject.region, await subject.another()];
        let current = 0n;
        for (let round = 1n; round <= 10n; round++) {
          const [a, b] = [round * 1000n + 1n, round * 1000n + 2n];
          const [fromMine, fromTheirs] = await Promise.all([mine.compareAndSwap(3072, current, a), theirs.compareAndSwap(3072, current, b)]);
          const winners = [fromMine, fromTheirs].filter((previous) => previous === current);
          expect(winners).toHaveLength(1);
          const winner = fromMine === current ? a : b;
          expect(fromMine === current ? fromTheirs : fromMine).toBe(winner);
          expect(await wordAt(mine, 3072)).toBe(winner);
          expect(await wordAt(theirs, 3072)).toBe(winner);
          current = winner;
        }
      });

      check('two callers incrementing one word by compare-and-swap lose no increment', async () => {
        const subject = await fresh();
        const callers = [subject.region, await subject.another()];
        const each = 10;
        await Promise.all(
          callers.map(async (region) => {
            for (let done = 0; done < each; ) {
              const seen = await wordAt(region, 3072);
              if ((await region.compareAndSwap(3072, seen, seen + 1n)) === seen) done++;
            }
          }),
        );
        expect(await wordAt(subject.region, 3072)).toBe(BigInt(callers.length * each));
      });

      describe('refused, and nothing swapped', () => refusals(CAS_REFUSALS));
    });

    describe('4. errors and their codes', () => {
      describe('bad arguments', () => refusals(ARGUMENT_REFUSALS));
    });

    describe('5. close while in flight', () => {
      for (const closer of impl.closers) {
        /**
         * Writes ('flushed'), reads, a swap and a flush in flight, then `closer` without awaiting
         * them; resolves once all of them and the close settled (bounded by SETTLE_MS).
         */
        async function closeInFlight(subject: S) {
          const { region } = subject;
          const acked = Buffer.alloc(64, 0xa1);
          await region.write(0, acked, { durability: 'flushed' });
          const writes = Array.from({ length: 8 }, (_, i) => ({ offset: 64 * (i + 1), data: Buffer.alloc(64, i + 1) }));
          const ops = [
            ...writes.map((w) => ({ what: `write at ${w.offset}`, write: w, outcome: observe(region.write(w.offset, w.data, { durability: 'flushed' })) })),
            ...Array.from({ length: 4 }, (_, i) => ({ what: `read ${i}`, write: undefined, outcome: observe(region.read(0, 64)) })),
            { what: 'compareAndSwap', write: undefined, outcome: observe(region.compareAndSwap(4096, 0n, 9n)) },
            { what: 'flush', write: undefined, outcome: observe(region.flush()) },
          ];
          const closing = observe(closer.close(subject));
          await waitFor(`every operation in flight and ${closer.what} to settle`, () => [...ops.map((op) => op.outcome), closing].every((box) => box[0].state !== 'pending'), SETTLE_MS);
          return { acked, ops, closing: closing[0] };
        }

        /** After the close: every kind of operation, with arguments that are fine. */
        const afterClose = (region: Region) => [
          () => region.write(0, ONE),
          () => region.read(0, 1),
          () => region.flush(),
          () => region.compareAndSwap(4096, 0n, 1n),
        ];

        check(`${closer.what}: every operation in flight settles, later ones are ECLOSED, acknowledged writes are there after reopening`, async () => {
          const subject = await fresh();
          const { acked, ops, closing } = await closeInFlight(subject);
          expect(closing.state === 'rejected' ? describeError(closing.error) : closing.state).toBe('resolved');
          for (const op of ops) {
            if (op.outcome[0].state === 'rejected') expect({ what: op.what, error: op.outcome[0].error instanceof PmuError }).toEqual({ what: op.what, error: true });
          }
          for (const call of afterClose(subject.region)) await expectRefusal(call, 'ECLOSED', '');
          const again = await subject.reopen();
          expect((await again.read(0, 64)).equals(acked)).toBe(true);
          for (const op of ops) {
            if (op.write && op.outcome[0].state === 'resolved') expect({ [op.what]: (await again.read(op.write.offset, 64)).equals(op.write.data) }).toEqual({ [op.what]: true });
          }
        });

        check(`${closer.what}: an operation in flight rejects only with ${closer.inFlightCodes.join(' or ')}`, async () => {
          // Which operations lose the race with the close varies from run to run: a few rounds.
          for (let round = 0; round < 4; round++) {
            const subject = await fresh();
            const { ops } = await closeInFlight(subject);
            const refused = ops.flatMap((op) => (op.outcome[0].state === 'rejected' ? [`${op.what}: ${describeError(op.outcome[0].error)}`] : []));
            expect(refused.filter((line) => !closer.inFlightCodes.some((code) => line.includes(`: ${code}: `)))).toEqual([]);
            await subject.dispose();
          }
        });

        check(`${closer.what} before any operation: later operations are ECLOSED`, async () => {
          const subject = await fresh();
          await closer.close(subject);
          for (const call of afterClose(subject.region)) await expectRefusal(call, 'ECLOSED', '');
        });

        check(`${closer.what}: ECLOSED names the region`, async () => {
          const subject = await fresh();
          await subject.region.write(0, ONE);
          await closer.close(subject);
          for (const call of afterClose(subject.region)) await expectRefusal(call, 'ECLOSED', `'${subject.region.name}'`);
        });

        const membership = impl.membership?.bind(impl);
        if (membership) {
          check(`${closer.what}: the region's membership stays as it was`, async () => {
            const subject = await fresh();
            const before = await membership(subject);
            await closeInFlight(subject);
            for (const call of afterClose(subject.region)) await refusal(call);
            expect(await membership(subject)).toEqual(before);
          });
        }
      }
    });

    describe('6. fence', () => {
      check('a fenced write lands while the word holds the epoch, and is EFENCED (nothing written) once it does not', async () => {
        const { region } = await fresh();
        expect(await region.compareAndSwap(FENCE_AT, 0n, 5n)).toBe(0n);
        const first = Buffer.from('fenced, epoch 5');
        await region.write(2048, first, { fence: { offset: FENCE_AT, epoch: 5n } });
        expect((await region.read(2048, first.length)).equals(first)).toBe(true);
        await region.write(2048, first, { durability: 'mapped', fence: { offset: FENCE_AT, epoch: 5n } });
        const stale = Buffer.from('stale, epoch 4!');
        await expectRefusal(() => region.write(2048, stale, { fence: { offset: FENCE_AT, epoch: 4n } }), 'EFENCED', `'${region.name}'`);
        expect((await region.read(2048, first.length)).equals(first)).toBe(true);
        // A takeover bumps the word: the old epoch is refused, the new one lands.
        expect(await region.compareAndSwap(FENCE_AT, 5n, 6n)).toBe(5n);
        await expectRefusal(() => region.write(2048, stale, { fence: { offset: FENCE_AT, epoch: 5n } }), 'EFENCED', `'${region.name}'`);
        await expectRefusal(() => region.write(2048, stale, { durability: 'mapped', fence: { offset: FENCE_AT, epoch: 5n } }), 'EFENCED', `'${region.name}'`);
        expect((await region.read(2048, first.length)).equals(first)).toBe(true);
        const second = Buffer.from('fenced, epoch 6');
        await region.write(2048, second, { fence: { offset: FENCE_AT, epoch: 6n } });
        expect((await region.read(2048, second.length)).equals(second)).toBe(true);
        // The fence word may be the region's last word.
        expect(await region.compareAndSwap(SIZE - 8, 0n, 2n ** 64n - 1n)).toBe(0n);
        await region.write(0, Buffer.from('last word fence'), { fence: { offset: SIZE - 8, epoch: 2n ** 64n - 1n } });
        expect((await region.read(0, 15)).toString()).toBe('last word fence');
      });
      describe('refused, and nothing written', () => refusals(FENCE_REFUSALS));
    });

    test('every known bug names a case of this suite', () => {
      expect(Object.keys(impl.knownBugs).filter((title) => !titles.has(title))).toEqual([]);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// The implementations

let regionCount = 0;
const regionName = () => `compliance-${++regionCount}`;

/** Bugs every implementation shares today (one cause, in the shared validation). */
const SHARED_BUGS = {
  'flush(size + 1) with the default length → EBOUNDS':
    "the default length is size - offset = -1, checked before the range: EINVAL 'length must be an integer …, got -1', naming an argument the caller never passed; region.ts: every out-of-range access is EBOUNDS",
  'fence.offset 1028: the message blames the fence → EALIGN':
    "the EALIGN message says 'write at offset 2048 … must sit at offsets that are multiples of 8' (LocalRegion.refine): 2048 is the write's own, aligned, offset; the misaligned one is fence.offset",
};

interface LocalSubject extends Subject {
  unit: PersistentMemoryUnit;
}

const local: Implementation<LocalSubject> = {
  name: 'LocalRegion (embedded unit)',
  available: true,
  type: 'LocalRegion',
  async start() {},
  async stop() {},
  async make(size) {
    const file = path.join(tempDir('pmu-compliance-'), 'unit.pmu');
    const unit = PersistentMemoryUnit.open(file, { size: 1 << 20 });
    const name = regionName();
    const region = unit.createRegion(name, size);
    const units = [unit];
    return {
      unit,
      region,
      async another() {
        return unit.openRegion(name);
      },
      async reopen() {
        const again = PersistentMemoryUnit.open(file);
        units.push(again);
        return again.openRegion(name);
      },
      async dispose() {
        for (const each of units) if (!each.isClosed) await each.close();
      },
    };
  },
  closers: [{ what: 'unit.close()', close: (subject) => subject.unit.close(), inFlightCodes: ['ECLOSED'] }],
  knownBugs: {
    ...SHARED_BUGS,
    'read(size - 8, 2^53 - 1) → EBOUNDS':
      "LocalRegion.readSync allocates Buffer.allocUnsafe(length) before checkRange: a RangeError ERR_OUT_OF_RANGE, not a PmuError (RemoteRegion and MirroredRegion: EBOUNDS); a length below 4 GiB is allocated before it is refused",
    'fence.offset 2^53 - 1 → EBOUNDS':
      "base + fence.offset passes 2^53 and the addon answers EINVAL 'write: invalid argument' (naming neither region nor fence); RemoteRegion and MirroredRegion: EBOUNDS",
    'fence.offset size: the message blames the fence → EBOUNDS':
      "LocalRegion.refine rewrites the addon's EBOUNDS for the fence word into 'write of 8 bytes at offset 2048 is outside region …', the write's own range, which is inside",
    'unit.close(): ECLOSED names the region': "'the unit is closed; open it again with PersistentMemoryUnit.open()' names no region (RemoteRegion.close and MirroredRegion.close do)",
  },
};

interface RemoteSubject extends Subject {
  region: RemoteRegion;
  client: PmuClient;
}

let harness: Harness;
let admin: PmuClient;

const remote: Implementation<RemoteSubject> = {
  name: 'RemoteRegion (PmuServer on loopback)',
  available: true,
  type: 'RemoteRegion',
  async start() {
    harness = await startServer({ unitBytes: 16 << 20 });
    admin = await harness.connect('admin');
  },
  async stop() {
    await harness.close();
  },
  async make(size) {
    const name = regionName();
    await admin.createRegion(name, size, { owner: 'primary' });
    const client = await harness.connect('primary');
    const region = await client.openRegion(name);
    return {
      client,
      region,
      async another() {
        return (await harness.connect('primary')).openRegion(name);
      },
      async reopen() {
        return (await harness.connect('primary')).openRegion(name);
      },
      async dispose() {
        await client.close();
      },
    };
  },
  closers: [
    // client.ts: "When the connection drops, requests in flight fail with ECONNECTION (never hang)".
    { what: 'client.close()', close: (subject) => subject.client.close(), inFlightCodes: ['ECONNECTION', 'ECLOSED'] },
    { what: 'region.close()', close: (subject) => subject.region.close(), inFlightCodes: ['ECLOSED'] },
  ],
  knownBugs: {
    ...SHARED_BUGS,
    'client.close(): ECLOSED names the region': "'client for tcp://… is closed; connect again' names the client's URL, not the region",
  },
};

interface MirroredSubject extends Subject {
  region: MirroredRegion;
  pool: PmuPool;
}

let set: TestSet;

const mirrored: Implementation<MirroredSubject> = {
  name: 'MirroredRegion (2 PMUs, real etcd)',
  available: etcdAvailable(),
  type: 'MirroredRegion',
  async start() {
    set = await startSet(2, { unitBytes: 8 << 20 });
  },
  async stop() {
    await set.close();
  },
  async make(size) {
    const name = regionName();
    const pool = set.pool(1000);
    await createMirroredRegion(set.directory, pool, name, size, 2);
    const region = await MirroredRegion.open(set.directory, pool, name);
    const opened: MirroredRegion[] = [region];
    const pools = [pool];
    const openAgain = async () => {
      const freshPool = set.pool(1000);
      pools.push(freshPool);
      const again = await MirroredRegion.open(set.directory, freshPool, name);
      opened.push(again);
      return again;
    };
    return {
      region,
      pool,
      another: openAgain,
      reopen: openAgain,
      async dispose() {
        for (const each of opened) await each.close();
        for (const each of pools) await each.close();
      },
    };
  },
  closers: [
    { what: 'region.close()', close: (subject) => subject.region.close(), inFlightCodes: ['ECLOSED'] },
    // The writer's connections to the set go away under it, as PmuClient.close() does for one PMU.
    { what: 'pool.close()', close: (subject) => subject.pool.close(), inFlightCodes: ['ECONNECTION', 'ECLOSED'] },
  ],
  async membership(subject) {
    const { inSync, syncing, epoch } = await set.directory.config(subject.region.name);
    return { inSync, syncing, epoch };
  },
  knownBugs: SHARED_BUGS,
};

describeRegionCompliance(local);
describeRegionCompliance(remote);
describeRegionCompliance(mirrored);
