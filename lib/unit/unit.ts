/**
 * PersistentMemoryUnit: a PMU file opened in this process (embedded mode), or the unit a
 * PmuServer serves. It is also the persistent memory manager's local face: createRegion,
 * openRegion, deleteRegion, setGrants change the address translation and protection table,
 * and each change is crash-atomic before the call returns.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RegionCounters, UnitStats } from '../obs/counters';
import { PmuError } from './errors';
import { InFlight } from './in-flight';
import { GroupCommit, LoneFlush } from './group-commit';
import { LocalRegion, UnitAccess } from './local-region';
import { addon, NativeEntry, NativeInfo, NativeUnit, STATUS_OK, statusErrorWithDetail } from './native';
import { Rights } from './region';
import { checkInteger, checkName, checkNewName } from './validate';
import { removeStaleCreatingFiles } from './creating-files';
import { placementWarnings } from './placement';
import { emitWarningOnce, OnWarning } from './warnings';

export interface OpenOptions {
  /** Bytes; creates the file at this size if it does not exist. Ignored for an existing file. */
  size?: number;
  /** Table entries, fixed when the file is created. Default 256. */
  maxRegions?: number;
  /**
   * Where the msync of a lone 'flushed' write (no other durable write waiting) runs: 'inline'
   * (default: on this thread, which saves the round trip to the libuv pool; the event loop
   * waits for the msync), 'pool', or 'auto' (inline while it is small and setOthersQuiet's
   * function says nobody else is being served). A PmuServer switches its unit to 'auto'.
   */
  loneFlush?: LoneFlush;
  /** Told what open has to say that is not an error (lib/unit/warnings.ts); default process.emitWarning once per kind. */
  onWarning?: OnWarning;
}

export interface CreateOptions {
  /** Bytes, rounded up to a page. */
  size: number;
  /** Table entries. Default 256. */
  maxRegions?: number;
  /** Called as the file is written with zeros (every 64 MiB): bytes done, bytes in all. */
  onProgress?: (done: number, total: number) => void;
  /** Told of a dead creator's temporary file removed (lib/unit/warnings.ts); default process.emitWarning once. */
  onWarning?: OnWarning;
}

export interface Grant {
  user: string;
  rights: Rights;
}

export interface RegionInfo {
  name: string;
  handle: number;
  /** Virtual base address. */
  base: number;
  size: number;
  owner: string;
  grants: Grant[];
}

export interface UnitInfo extends NativeInfo {
  /**
   * Set when open found a table update that was never acknowledged (torn by a crash, or written
   * but not committed) and opened the last acknowledged one, or found the superseded copy torn.
   * Damage to an acknowledged update is never a note: open fails with ECORRUPT.
   */
  recoveryNote: string;
}

const RIGHTS_BITS: Record<Rights, number> = { r: 1, rw: 3 };
const NAME_MAX_BYTES = 63;
export const USER_MAX_BYTES = 31;
const DEFAULT_MAX_REGIONS = 256;

export class PersistentMemoryUnit {
  private readonly access: UnitAccess;
  private readonly regionCounters = new Map<number, RegionCounters>();
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly recoveryNote: string;
  /**
   * The region table by name, read from the addon once and then kept up to date by the
   * changes made here (this object is the table's only writer: the file is locked to it).
   * Looking a name up used to list the whole table, so opening or deleting a region cost time
   * in proportion to the number of regions.
   */
  private byName: Map<string, NativeEntry> | undefined;

  private constructor(private readonly native: NativeUnit, recoveryNote: string) {
    const groupCommit = new GroupCommit(native);
    this.recoveryNote = recoveryNote;
    this.access = { native, groupCommit, inFlight: new InFlight(), file: native.info().path, assertOpen: () => this.assertOpen(), countersFor: (entry) => this.countersFor(entry) };
  }

  /**
   * Creates a PMU file of `size` bytes on the libuv pool (EEXIST if it exists), without opening
   * it. Every block is allocated (ENOSPC at once on a full file system) and written with zeros,
   * at disk speed: about a second per 0.5-1 GiB, hence `onProgress`. A crash or an error leaves
   * no file at `file`; a process killed meanwhile leaves its `<file>.creating.<pid>`, which the
   * next create or open of `file` removes (lib/unit/creating-files.ts).
   */
  static create(file: string, options: CreateOptions): Promise<void> {
    if (typeof file !== 'string' || file.length === 0) throw new PmuError('EINVAL', 'file must be a non-empty path');
    checkInteger('size', options?.size, 1);
    const maxRegions = checkInteger('maxRegions', options.maxRegions ?? DEFAULT_MAX_REGIONS, 1, 4096);
    const onProgress = options.onProgress;
    if (onProgress !== undefined && typeof onProgress !== 'function') throw new PmuError('EINVAL', 'onProgress must be a function');
    removeStale(file, options.onWarning ?? emitWarningOnce);
    return new Promise((resolve, reject) => {
      addon().createFileAsync(
        path.resolve(file),
        options.size,
        maxRegions,
        (done, total) => onProgress?.(done, total),
        (status, detail) => (status === STATUS_OK ? resolve() : reject(statusErrorWithDetail(status, detail))),
      );
    });
  }

  /**
   * Opens the PMU file at `file`, creating it first when `options.size` is given and the file
   * does not exist (synchronously: for a big file use `create()`, which reports progress).
   * Fails with ELOCKED if another unit has it open, ECORRUPT if it is damaged, ENOSPC if it is
   * sparse and its file system cannot allocate the holes, EIO if the fsync at open fails.
   */
  static open(file: string, options: OpenOptions = {}): PersistentMemoryUnit {
    if (typeof file !== 'string' || file.length === 0) throw new PmuError('EINVAL', 'file must be a non-empty path');
    const loneFlush = checkLoneFlush(options.loneFlush ?? 'inline');
    const resolved = path.resolve(file);
    const onWarning = options.onWarning ?? emitWarningOnce;
    removeStale(resolved, onWarning);
    if (options.size !== undefined && !fs.existsSync(resolved)) {
      checkInteger('size', options.size, 1);
      const maxRegions = checkInteger('maxRegions', options.maxRegions ?? DEFAULT_MAX_REGIONS, 1, 4096);
      try {
        addon().createFile(resolved, options.size, maxRegions);
      } catch (error) {
        // Another process created it between our check and our create: open theirs.
        if (!(error instanceof PmuError && error.code === 'EEXIST')) throw error;
      }
    } else if (!fs.existsSync(resolved)) {
      throw new PmuError('ENOENT', `${resolved} does not exist; pass { size } to create it`);
    }
    const native = new (addon().NativeUnit)();
    const opened = native.open(resolved);
    for (const warning of placementWarnings(resolved)) onWarning(warning);
    const unit = new PersistentMemoryUnit(native, opened.recoveryNote);
    unit.loneFlush = loneFlush;
    return unit;
  }

  /** Where the msync of a lone 'flushed' write runs (OpenOptions.loneFlush). */
  get loneFlush(): LoneFlush {
    return this.access.groupCommit.loneFlush;
  }

  set loneFlush(mode: LoneFlush) {
    this.access.groupCommit.loneFlush = checkLoneFlush(mode);
  }

  /** For 'auto': whether nobody but the writer is being served (a PmuServer tells it). */
  setOthersQuiet(othersQuiet: () => boolean): void {
    this.access.groupCommit.othersQuiet = othersQuiet;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  info(): UnitInfo {
    this.assertOpen();
    return { ...this.native.info(), recoveryNote: this.recoveryNote };
  }

  /** Flushes issued by group commit since open (for benchmarks). */
  get groupFlushes(): number {
    return this.access.groupCommit.flushes;
  }

  /** Plain counters since open: group-commit flushes (msync latency, writes per flush) and per-region traffic. */
  stats(): UnitStats {
    const commit = this.access.groupCommit;
    return {
      flushes: commit.flushes,
      flushedWrites: commit.writesPerFlush.sum,
      inlineFlushes: commit.inlineFlushes,
      flushSeconds: commit.flushSeconds.snapshot(),
      writesPerFlush: commit.writesPerFlush.snapshot(),
      regions: [...this.regionCounters.values()].map((c) => ({ ...c })),
    };
  }

  createRegion(name: string, size: number, options: { owner?: string } = {}): LocalRegion {
    checkNewName('region name', name, NAME_MAX_BYTES);
    checkInteger('size', size, 1);
    const owner = options.owner === undefined ? '' : checkName('owner', options.owner, USER_MAX_BYTES);
    this.assertOpen();
    let entry: NativeEntry;
    try {
      entry = this.native.createRegion(name, size, owner);
    } catch (error) {
      this.byName = undefined;
      throw error;
    }
    this.byName?.set(entry.name, entry);
    return new LocalRegion(this.access, entry);
  }

  /**
   * createRegion without blocking the event loop for the zero-fill: the checks, and the
   * reservation of the extent and the name, happen now (a refusal rejects at once); writing
   * zeros over space a deleted region used (1–2 s per GiB) runs on the libuv pool; the table
   * commit follows on this thread. The region is in the table (listRegions, openRegion, every
   * client) only once it resolves; a crash before leaves its extent free. close() waits for it.
   */
  createRegionAsync(name: string, size: number, options: { owner?: string } = {}): Promise<LocalRegion> {
    try {
      checkNewName('region name', name, NAME_MAX_BYTES);
      checkInteger('size', size, 1);
      const owner = options.owner === undefined ? '' : checkName('owner', options.owner, USER_MAX_BYTES);
      this.assertOpen();
      const created = new Promise<NativeEntry>((resolve, reject) => {
        this.native.createRegionAsync(name, size, owner, (status, entry, detail) => {
          if (status === STATUS_OK && entry) resolve(entry);
          else reject(statusErrorWithDetail(status, detail));
        });
      });
      return this.access.inFlight.track(created).then(
        (entry) => {
          this.byName?.set(entry.name, entry);
          return new LocalRegion(this.access, entry);
        },
        (error: unknown) => {
          this.byName = undefined;
          throw error;
        },
      );
    } catch (error) {
      this.byName = undefined;
      return Promise.reject(error);
    }
  }

  openRegion(name: string): LocalRegion {
    return new LocalRegion(this.access, this.entry(name));
  }

  /** Opens the region if it exists, else creates it with `size` bytes. */
  ensureRegion(name: string, size: number, options: { owner?: string } = {}): LocalRegion {
    const existing = this.findEntry(name);
    return existing ? new LocalRegion(this.access, existing) : this.createRegion(name, size, options);
  }

  deleteRegion(name: string): void {
    const handle = this.entry(name).handle;
    try {
      this.native.deleteRegion(handle);
    } catch (error) {
      this.byName = undefined;
      throw error;
    }
    this.byName?.delete(name);
    this.regionCounters.delete(handle);
  }

  hasRegion(name: string): boolean {
    return this.findEntry(name) !== undefined;
  }

  listRegions(): RegionInfo[] {
    this.assertOpen();
    return this.native.regions().map(toRegionInfo);
  }

  setGrants(name: string, grants: Grant[]): void {
    const entry = this.entry(name);
    if (!Array.isArray(grants)) throw new PmuError('EINVAL', 'grants must be an array of { user, rights }');
    const bits = grants.map((grant) => {
      checkName('grant user', grant?.user, USER_MAX_BYTES);
      if (grant.rights !== 'r' && grant.rights !== 'rw') throw new PmuError('EINVAL', `grant rights must be 'r' or 'rw', got ${String(grant.rights)}`);
      return { user: grant.user, rights: RIGHTS_BITS[grant.rights] };
    });
    try {
      this.native.setGrants(entry.handle, bits);
    } finally {
      // The entry's grants changed: read the table again at the next lookup.
      this.byName = undefined;
    }
  }

  /** @internal The full table entry, access key included: for the server only. */
  entry(name: string): NativeEntry {
    const found = this.findEntry(name);
    if (!found) throw new PmuError('ENOENT', `no region named '${name}'; create it first, or check the name against the list of regions`);
    return found;
  }

  /** @internal */
  entryByHandle(handle: number): NativeEntry | undefined {
    this.assertOpen();
    return this.native.regions().find((e) => e.handle === handle);
  }

  private countersFor(entry: NativeEntry): RegionCounters {
    let counters = this.regionCounters.get(entry.handle);
    // A handle reused by a new region (the old one deleted elsewhere) starts from zero.
    if (!counters || counters.name !== entry.name) {
      counters = { name: entry.name, writes: 0, bytesWritten: 0, reads: 0, bytesRead: 0 };
      this.regionCounters.set(entry.handle, counters);
    }
    return counters;
  }

  /** @internal A view of a region whose reads stay out of stats(): for exporters that look at logs. */
  observerRegion(name: string): LocalRegion {
    const scratch = { name, writes: 0, bytesWritten: 0, reads: 0, bytesRead: 0 };
    return new LocalRegion({ ...this.access, countersFor: () => scratch }, this.entry(name));
  }

  /** @internal A LocalRegion for a table entry the caller already holds. */
  regionFor(entry: NativeEntry): LocalRegion {
    return new LocalRegion(this.access, entry);
  }

  /**
   * Waits for flushes in flight, flushes the whole mapping, unmaps and releases the lock.
   * Rejects with EIO (the unit is closed all the same) if that flush or any earlier one failed.
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      await this.access.groupCommit.idle();
      await this.access.inFlight.idle();
      this.closed = true;
      this.native.close();
    })();
    return this.closing;
  }

  /** Closes at once; EBUSY if a flush is still in flight (then use close()). */
  closeSync(): void {
    if (this.closed) return;
    if (this.access.groupCommit.busy) throw new PmuError('EBUSY', 'durable writes are still waiting for their flush: await close() instead of closeSync()');
    if (this.access.inFlight.busy) throw new PmuError('EBUSY', 'a checksum or a region create is still running on the libuv pool: await close() instead of closeSync()');
    this.native.close();
    this.closed = true;
  }

  private findEntry(name: string): NativeEntry | undefined {
    checkName('region name', name, NAME_MAX_BYTES);
    this.assertOpen();
    if (this.byName === undefined) this.byName = new Map(this.native.regions().map((e) => [e.name, e]));
    return this.byName.get(name);
  }

  private assertOpen(): void {
    if (this.closed || this.closing) throw new PmuError('ECLOSED', 'the unit is closed; open it again with PersistentMemoryUnit.open()');
  }
}

export function toRegionInfo(entry: NativeEntry): RegionInfo {
  return {
    name: entry.name,
    handle: entry.handle,
    base: entry.base,
    size: entry.length,
    owner: entry.owner,
    grants: entry.grants.map((g) => ({ user: g.user, rights: g.rights === 3 ? 'rw' : 'r' })),
  };
}

/** Reads a PMU file's metadata without opening it for writing (works while a server has it). */
export function inspectFile(file: string) {
  return addon().inspect(path.resolve(file));
}

/** Removes the temporary files of creators that died before finishing, and says so. */
function removeStale(file: string, onWarning: OnWarning): void {
  for (const stale of removeStaleCreatingFiles(file)) {
    onWarning({
      code: 'PMU_STALE_TEMP_FILE',
      file: stale.file,
      message: `removed ${stale.file}: an unfinished unit (${stale.bytes} bytes) left by process ${stale.pid}, which stopped before it finished creating ${path.resolve(file)}`,
    });
  }
}

function checkLoneFlush(mode: unknown): LoneFlush {
  if (mode !== 'inline' && mode !== 'pool' && mode !== 'auto') throw new PmuError('EINVAL', `loneFlush must be 'inline', 'pool' or 'auto', got ${String(mode)}`);
  return mode;
}
