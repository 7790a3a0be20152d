/**
 * The only file that loads the addon. It registers PmuError with it (so native errors are
 * real PmuError instances) and turns the addon's numeric statuses into PmuErrors using the
 * status table the addon itself exports: one table, defined in native/core/status.h.
 *
 * The addon loads lazily, on the first call that needs it: `pmu --help`, argument errors and
 * every client-only path work in an install whose addon is missing (`--ignore-scripts`, no
 * prebuild for this platform and no compiler). node-gyp-build looks in prebuilds/PLATFORM-ARCH/
 * (what prebuildify put in the package) and then build/Release (a source build).
 */
import * as path from 'node:path';
import { PmuError, PmuErrorCode } from './errors';

// node-gyp-build ships no types; it returns the module it loaded or throws.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const nodeGypBuild: (dir: string) => unknown = require('node-gyp-build');

/** The package root: dist/unit/ or lib/unit/ is two levels below it. */
const PACKAGE_ROOT = path.join(__dirname, '..', '..');

export interface NativeEntry {
  handle: number;
  name: string;
  base: number;
  length: number;
  physOffset: number;
  extent: number;
  createdGeneration: number;
  owner: string;
  key: Buffer;
  grants: Array<{ user: string; rights: number }>;
}

export interface NativeInfo {
  path: string;
  size: number;
  dataOffset: number;
  generation: number;
  maxRegions: number;
  regionCount: number;
  freeBytes: number;
  largestFreeExtent: number;
  uuid: string;
}

export interface NativeInspection {
  /** Sector 0: the generation of the last acknowledged table update (docs/FORMAT.md). */
  commit: { state: 'valid' | 'damaged' | 'old-format' | 'unsupported'; generation: number; problem: string };
  copies: Array<{ state: 'valid' | 'torn' | 'invalid'; generation: number; problem: string }>;
  status: string;
  problem: string;
  info?: NativeInfo;
  recoveryNote?: string;
  regions?: NativeEntry[];
}

export interface NativeUnit {
  open(path: string): NativeInfo & { recoveryNote: string };
  close(): void;
  info(): NativeInfo;
  regions(): NativeEntry[];
  createRegion(name: string, length: number, owner: string): NativeEntry;
  /** The same, its zero-fill on the libuv pool: a refusal throws now; else `done` follows (entry on OK). */
  createRegionAsync(name: string, length: number, owner: string, done: (status: number, entry: NativeEntry | undefined, detail: string) => void): void;
  deleteRegion(handle: number): void;
  setGrants(handle: number, grants: Array<{ user: string; rights: number }>): void;
  write(handle: number, vaddr: number, data: Uint8Array, flags: number, fenceVaddr?: number, fenceEpoch?: bigint): number;
  read(handle: number, vaddr: number, target: Uint8Array): number;
  flush(handle: number, vaddr: number, length: number): number;
  markForFlush(handle: number, vaddr: number, length: number): number;
  flushGroup(callback: (status: number) => void): void;
  /** The same msync on the calling thread: status. */
  flushGroupSync(): number;
  compareAndSwap(handle: number, vaddr: number, expected: bigint, desired: bigint, sync: boolean): bigint;
  /**
   * CRC32C of [vaddr, vaddr + length) (length <= MAX_CHECKSUM_BYTES), computed on the libuv
   * pool: a refusal is returned now as a status (then `done` never runs); OK means `done(OK, crc)` follows.
   */
  checksum(handle: number, vaddr: number, length: number, done: (status: number, crc: number) => void): number;
  failed(): boolean;
}

interface Addon {
  NativeUnit: new () => NativeUnit;
  registerErrorClass(errorClass: typeof PmuError): void;
  statusCodes(): Array<{ code: string; message: string }>;
  createFile(path: string, size: number, maxRegions: number): void;
  /** The same on the libuv pool; done(status, detail) once, progress(done, total) per 64 MiB. */
  createFileAsync(path: string, size: number, maxRegions: number, progress: (done: number, total: number) => void, done: (status: number, detail: string) => void): void;
  inspect(path: string): NativeInspection;
  crc32c(data: Uint8Array, seed?: number): number;
}

/** The most one checksum covers (kMaxChecksumBytes in native/core/unit.h; the wire's MAX_CHECKSUM_BYTES). */
export const MAX_CHECKSUM_BYTES = 16 * 1024 * 1024;

/** Write flags, as native/binding/unit_wrap.cpp reads them. */
export const WRITE_SYNC = 1;
export const WRITE_JOIN_GROUP = 2;
export const WRITE_FENCE = 4;

let loaded: Addon | undefined;
let loadedFrom: string | undefined;
let statusTable: Array<{ code: string; message: string }> = [];

/**
 * Runs pmu on another build of its addon instead of the packaged one: an instrumented build
 * (sanitizers, the crash recorder of native/crash). Call it before anything else of pmu runs;
 * returns the addon module, for whatever that build adds. The CLI honours PMU_ADDON_PATH.
 */
export function useAddon(path: string): Record<string, unknown> {
  if (typeof path !== 'string' || path.length === 0) throw new PmuError('EINVAL', `useAddon needs the path of a built addon (.node), got ${String(path)}`);
  if (loaded && loadedFrom !== path) throw new PmuError('EINVAL', `the pmu addon is loaded already (${loadedFrom ?? 'the packaged build'}): call useAddon before anything else of pmu`);
  return load(path) as unknown as Record<string, unknown>;
}

/** The addon, loaded on first use; a PmuError('ESYS') that says what to do when it cannot be. */
export function addon(): Addon {
  return loaded ?? load(undefined);
}

function load(path: string | undefined): Addon {
  if (loaded) return loaded;
  let candidate: Addon;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    candidate = (path ? require(path) : nodeGypBuild(PACKAGE_ROOT)) as Addon;
  } catch (error) {
    if (path) throw new PmuError('ESYS', `cannot load the pmu addon at ${path}: ${(error as Error).message.split('\n')[0]}`, { cause: error });
    throw new PmuError('ESYS', `the pmu addon is not available for ${process.platform}-${process.arch} (no prebuilt binary fits and none was built from source): install python3, make and g++, then run \`npm rebuild pmu\` (${(error as Error).message.split('\n')[0]})`, { cause: error });
  }
  candidate.registerErrorClass(PmuError);
  statusTable = candidate.statusCodes();
  loaded = candidate;
  loadedFrom = path;
  return candidate;
}

export const STATUS_OK = 0;

/** A PmuError for a numeric status and the addon's sentence about it. */
export function statusErrorWithDetail(status: number, detail: string): PmuError {
  const row = statusTable[status];
  const code = (row ? row.code : 'ESYS') as PmuErrorCode;
  return new PmuError(code, detail || (row ? row.message : `unknown native status ${status}`));
}

/** A PmuError for a numeric status from the addon; `context` says what was being done. */
export function statusError(status: number, context: string): PmuError {
  const row = statusTable[status];
  const code = (row ? row.code : 'ESYS') as PmuErrorCode;
  const message = row ? row.message : `unknown native status ${status}`;
  return new PmuError(code, `${context}: ${message}`);
}

export function crc32c(data: Uint8Array, seed = 0): number {
  return (loaded ?? addon()).crc32c(data, seed);
}
