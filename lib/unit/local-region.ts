/**
 * A region of a unit in this process. Writes copy from the caller's buffer straight into the
 * mapping (no allocation on the write path); reads copy out into a fresh Buffer or a caller's.
 * Async methods never block the event loop on msync (group commit on the libuv pool); the
 * `...Sync` twins msync inline and say so in their name: for the embedded fast path.
 */
import { PmuError } from './errors';
import { MAX_CHECKSUM_BYTES, NativeEntry, NativeUnit, STATUS_OK, WRITE_FENCE, WRITE_JOIN_GROUP, WRITE_SYNC, statusError } from './native';
import { RegionCounters } from '../obs/counters';
import { GroupCommit } from './group-commit';
import { InFlight } from './in-flight';
import { Durability, Region, RegionContext, WriteOptions } from './region';
import { capabilitiesOf, checkDurability } from './durability';
import { checkBytes, checkInteger, checkRange, checkU64 } from './validate';

/** What a LocalRegion needs of its unit; kept narrow so the region cannot reach past it. */
export interface UnitAccess {
  readonly native: NativeUnit;
  readonly groupCommit: GroupCommit;
  /** Checksums on the pool: close() waits for them. */
  readonly inFlight: InFlight;
  /** The PMU file's path, for error messages. */
  readonly file: string;
  assertOpen(): void;
  /** The counters of a region, shared by every LocalRegion of that table entry. */
  countersFor(entry: NativeEntry): RegionCounters;
}

const CAPABILITIES = capabilitiesOf('LocalRegion');

const RESOLVED: Promise<void> = Promise.resolve();

export class LocalRegion implements Region {
  readonly capabilities = CAPABILITIES;
  readonly name: string;
  readonly size: number;
  readonly context: RegionContext;
  private readonly handle: number;
  private readonly base: number;
  private readonly counters: RegionCounters;

  /** @internal Obtain regions from PersistentMemoryUnit.createRegion / openRegion. */
  constructor(
    private readonly unit: UnitAccess,
    entry: NativeEntry,
  ) {
    this.name = entry.name;
    this.size = entry.length;
    this.handle = entry.handle;
    this.base = entry.base;
    this.counters = unit.countersFor(entry);
    this.context = Object.freeze({ name: entry.name, handle: entry.handle, base: entry.base, size: entry.length, rights: 'rw' as const });
  }

  // Not async: a durable write is one promise step from its group flush (group commit's
  // per-write cost is what sets how close 16 writers come to 16 × one).
  write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    try {
      const durability = this.copyIn(offset, data, options, false);
      return durability === 'flushed' && data.length > 0 ? this.groupFlush('write', offset, data.length) : RESOLVED;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Like write(), but a 'flushed' write runs msync on this thread before returning. */
  writeSync(offset: number, data: Uint8Array, options?: WriteOptions): void {
    this.copyIn(offset, data, options, true);
  }

  async read(offset: number, length: number): Promise<Buffer> {
    return this.readSync(offset, length);
  }

  readSync(offset: number, length: number): Buffer {
    checkInteger('length', length);
    const target = Buffer.allocUnsafe(length);
    this.readIntoSync(offset, target);
    return target;
  }

  /** Fills all of `target` from the region at `offset`. */
  readIntoSync(offset: number, target: Uint8Array): void {
    checkInteger('offset', offset);
    checkBytes('target', target);
    this.unit.assertOpen();
    checkRange(this.name, this.size, offset, target.length, 'read');
    const status = this.unit.native.read(this.handle, this.base + offset, target);
    if (status !== STATUS_OK) throw this.error(status, 'read', offset, target.length);
    this.counters.reads++;
    this.counters.bytesRead += target.length;
  }

  /**
   * CRC32C (Castagnoli, the one of lib/checkpoint's records) of [offset, offset + length), at
   * most MAX_CHECKSUM_BYTES (16 MiB), computed on the libuv pool so the event loop is free
   * meanwhile. A write that lands while it runs may be seen in part: the value is exact only
   * for bytes nobody changes meanwhile.
   */
  checksum(offset: number, length: number): Promise<number> {
    try {
      checkInteger('offset', offset);
      checkInteger('length', length);
      this.unit.assertOpen();
      checkRange(this.name, this.size, offset, length, 'checksum');
      if (length > MAX_CHECKSUM_BYTES) throw new PmuError('EINVAL', `checksum of ${length} bytes in region '${this.name}' exceeds the ${MAX_CHECKSUM_BYTES}-byte limit of one request: checksum it in pieces of at most ${MAX_CHECKSUM_BYTES} bytes`);
    } catch (error) {
      return Promise.reject(error);
    }
    let status = STATUS_OK;
    const work = new Promise<number>((resolve, reject) => {
      status = this.unit.native.checksum(this.handle, this.base + offset, length, (done, crc) => (done === STATUS_OK ? resolve(crc) : reject(this.error(done, 'checksum', offset, length))));
    });
    if (status !== STATUS_OK) return Promise.reject(this.error(status, 'checksum', offset, length));
    return this.unit.inFlight.track(work);
  }

  async flush(offset = 0, length = this.size - offset): Promise<void> {
    this.checkFlushRange(offset, length);
    const status = this.unit.native.markForFlush(this.handle, this.base + offset, length);
    if (status !== STATUS_OK) throw this.error(status, 'flush', offset, length);
    if (length > 0) await this.groupFlush('flush', offset, length);
  }

  flushSync(offset = 0, length = this.size - offset): void {
    this.checkFlushRange(offset, length);
    const status = this.unit.native.flush(this.handle, this.base + offset, length);
    if (status !== STATUS_OK) throw this.error(status, 'flush', offset, length);
  }

  async compareAndSwap(offset: number, expected: bigint, value: bigint, options?: { durability?: Durability }): Promise<bigint> {
    const durability = checkDurability(options?.durability, CAPABILITIES);
    const previous = this.compareAndSwapSync(offset, expected, value, { durability: 'mapped' });
    if (durability === 'flushed' && previous === expected) await this.flush(offset, 8);
    return previous;
  }

  compareAndSwapSync(offset: number, expected: bigint, value: bigint, options?: { durability?: Durability }): bigint {
    checkInteger('offset', offset);
    checkU64('expected', expected);
    checkU64('value', value);
    const durability = checkDurability(options?.durability, CAPABILITIES);
    this.unit.assertOpen();
    checkRange(this.name, this.size, offset, 8, 'compareAndSwap');
    try {
      return this.unit.native.compareAndSwap(this.handle, this.base + offset, expected, value, durability === 'flushed');
    } catch (error) {
      throw this.refine(error, 'compareAndSwap', offset, 8);
    }
  }

  /** Copies into the mapping; returns the durability still owed by the caller. */
  private copyIn(offset: number, data: Uint8Array, options: WriteOptions | undefined, sync: boolean): Durability {
    checkInteger('offset', offset);
    checkBytes('data', data);
    const durability = checkDurability(options?.durability, CAPABILITIES);
    this.unit.assertOpen();
    checkRange(this.name, this.size, offset, data.length, 'write');
    let flags = durability === 'flushed' ? (sync ? WRITE_SYNC : WRITE_JOIN_GROUP) : 0;
    let status: number;
    const fence = options?.fence;
    if (fence) {
      checkInteger('fence.offset', fence.offset);
      checkU64('fence.epoch', fence.epoch);
      flags |= WRITE_FENCE;
      status = this.unit.native.write(this.handle, this.base + offset, data, flags, this.base + fence.offset, fence.epoch);
    } else {
      status = this.unit.native.write(this.handle, this.base + offset, data, flags);
    }
    if (status !== STATUS_OK) throw this.error(status, 'write', offset, data.length);
    this.counters.writes++;
    this.counters.bytesWritten += data.length;
    return durability;
  }

  /** Waits for the group flush; its error, shared by the whole batch, is told per region. */
  private groupFlush(what: string, offset: number, length: number): Promise<void> {
    return this.unit.groupCommit.wait(length).catch((error: unknown) => {
      throw this.refine(error, what, offset, length);
    });
  }

  private checkFlushRange(offset: number, length: number): void {
    checkInteger('offset', offset);
    checkInteger('length', length);
    this.unit.assertOpen();
    checkRange(this.name, this.size, offset, length, 'flush');
  }

  private error(status: number, what: string, offset: number, length: number): PmuError {
    return this.refine(statusError(status, what), what, offset, length) as PmuError;
  }

  /** Rewrites the addon's generic message into one that names this region and the range. */
  private refine(error: unknown, what: string, offset: number, length: number): unknown {
    if (!(error instanceof PmuError)) return error;
    switch (error.code) {
      case 'EBOUNDS':
        return new PmuError('EBOUNDS', `${what} of ${length} bytes at offset ${offset} is outside region '${this.name}' (${this.size} bytes): keep offset + length <= ${this.size}`);
      case 'ENOENT':
        return new PmuError('ENOENT', `region '${this.name}' was deleted; open or create it again`);
      case 'EALIGN':
        return new PmuError('EALIGN', `${what} at offset ${offset} in region '${this.name}': 8-byte words must sit at offsets that are multiples of 8`);
      case 'EFENCED':
        return new PmuError('EFENCED', `${what} to region '${this.name}' refused: another writer took over (the fence epoch changed); stop writing and hand over`);
      case 'EIO':
        return new PmuError('EIO', `${what} of ${length} bytes at offset ${offset} in region '${this.name}' of ${this.unit.file} is not acknowledged: writing to the file failed (EIO from msync, or from the pwrite of a large write), so the unit no longer accepts writes (reads still work); close it and check the disk`, { cause: error });
      default:
        return error;
    }
  }
}
