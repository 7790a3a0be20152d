/**
 * The Region interface: one shape for a region in this process (LocalRegion) and a region on
 * a PMU server (RemoteRegion), so the checkpoint protocol is written once.
 *
 * Offsets are relative to the region's start (0 .. size); the region's virtual base address
 * is in `context.base`, and the wire protocol carries base + offset. Every out-of-range
 * access fails with EBOUNDS; nothing is ever clamped.
 */

import type { Durability, RegionCapabilities } from './durability';

export type { Durability } from './durability';

export interface WriteOptions {
  durability?: Durability;
  /**
   * Refuse the write with EFENCED unless the 8-byte word at `offset` (in this region) still
   * holds `epoch`. Checked where the write lands, so a writer that was taken over learns it
   * from the PMU itself.
   */
  fence?: { offset: number; epoch: bigint };
}

export type Rights = 'r' | 'rw';

/** Context information for a region: what a requester needs to address it. */
export interface RegionContext {
  name: string;
  handle: number;
  /** Virtual base address; the region spans [base, base + size). */
  base: number;
  size: number;
  rights: Rights;
}

export interface Region {
  readonly name: string;
  readonly size: number;
  readonly context: RegionContext;
  /** What this Region type is and which durability levels it gives (lib/unit/durability.ts). */
  readonly capabilities: RegionCapabilities;
  write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void>;
  read(offset: number, length: number): Promise<Buffer>;
  /** Makes [offset, offset + length) 'flushed' (defaults: the whole region). */
  flush(offset?: number, length?: number): Promise<void>;
  /**
   * Atomically replaces the 8-byte little-endian word at `offset` (8-aligned) with `value`
   * if it holds `expected`. Returns the previous value: the swap happened iff it equals
   * `expected`.
   */
  compareAndSwap(offset: number, expected: bigint, value: bigint, options?: { durability?: Durability }): Promise<bigint>;
  /**
   * Optional (LocalRegion, RemoteRegion): the CRC32C of [offset, offset + length), computed
   * where the bytes are, so comparing copies moves no data. One call covers at most 16 MiB
   * (EINVAL beyond: split it). Needs read rights. Bytes written meanwhile may be seen in part.
   */
  checksum?(offset: number, length: number): Promise<number>;
  /**
   * Optional, for a Region that keeps several copies (MirroredRegion): bytes it returned failed
   * the caller's checks (`cause`, an ECORRUPT). It checks each copy, stops reading from the ones
   * that fail, and resolves true if the caller should read again (a copy that passes now
   * answers), false if no copy does better.
   */
  repair?(cause: Error): Promise<boolean>;
}
