/**
 * The regions one connection holds open: handle -> (key, rights, region). Every data request
 * is checked here before it touches a region, and here is where revocation lands: when grants,
 * regions or users change, revalidate() drops or downgrades what the connection may no longer
 * do, at once, so a revoked right stops working on live connections too.
 *
 * Keys handed out on a connection are HMAC(salt, ATT key | handle) with a salt private to the
 * connection: a key copied to any other connection is worthless.
 */
import * as crypto from 'node:crypto';
import { PmuErrorCode } from '../unit/errors';
import { LocalRegion } from '../unit/local-region';
import { NativeEntry } from '../unit/native';
import { PersistentMemoryUnit } from '../unit/unit';
import { Principal, rightsFor } from './access';
import { EVENT_FLAG_FENCED_WRITER, KEY_BYTES, RIGHTS_NONE, RIGHTS_READ, RIGHTS_READ_WRITE } from '../wire/protocol';

export interface Binding {
  handle: number;
  name: string;
  base: number;
  size: number;
  rights: number;
  key: Buffer;
  /** `key` as four little-endian u32 words, for the per-request comparison (keyMatches). */
  keyWords: readonly [number, number, number, number];
  /** Tells this region from a later one that reuses the handle. */
  createdGeneration: number;
  region: LocalRegion;
  /** This connection made a fenced WRITE here: it is the region's epoch writer (EVENT_FLAG_FENCED_WRITER). */
  fencedWriter: boolean;
}

export interface Refusal {
  code: PmuErrorCode;
  message: string;
}

/**
 * The EVENT reason for a read-write binding that is closing or losing its write right: with
 * EVENT_FLAG_FENCED_WRITER when it made fenced writes. It has left as a writer, so the flag is
 * cleared (a later fenced write sets it again).
 */
export function takeLeaveReason(binding: Binding, reason: number): number {
  const fenced = binding.fencedWriter;
  binding.fencedWriter = false;
  return fenced ? reason | EVENT_FLAG_FENCED_WRITER : reason;
}

export type BindingChange = { binding: Binding; change: 'dropped' | 'downgraded' };

export class BindingTable {
  private readonly salt = crypto.randomBytes(32);
  private readonly map = new Map<number, Binding>();
  /** Handles this connection held until they were revoked or deleted: for a refusal that says why. */
  private readonly revoked = new Map<number, Refusal>();

  get size(): number {
    return this.map.size;
  }

  get(handle: number): Binding | undefined {
    return this.map.get(handle);
  }

  values(): IterableIterator<Binding> {
    return this.map.values();
  }

  /** Binds (or re-binds) the region; returns the binding it replaced, if any. */
  bind(unit: PersistentMemoryUnit, entry: NativeEntry, rights: number): { binding: Binding; previous: Binding | undefined } {
    const handleBytes = Buffer.allocUnsafe(4);
    handleBytes.writeUInt32LE(entry.handle);
    const key = crypto.createHmac('sha256', this.salt).update(entry.key).update(handleBytes).digest().subarray(0, KEY_BYTES);
    const binding: Binding = {
      handle: entry.handle,
      name: entry.name,
      base: entry.base,
      size: entry.length,
      rights,
      key,
      keyWords: [key.readUInt32LE(0), key.readUInt32LE(4), key.readUInt32LE(8), key.readUInt32LE(12)],
      createdGeneration: entry.createdGeneration,
      region: unit.regionFor(entry),
      fencedWriter: false,
    };
    const previous = this.map.get(entry.handle);
    // Re-opened read-write on the same region: still the writer it was.
    if (previous && previous.createdGeneration === binding.createdGeneration && rights === RIGHTS_READ_WRITE) binding.fencedWriter = previous.fencedWriter;
    this.map.set(entry.handle, binding);
    this.revoked.delete(entry.handle);
    return { binding, previous };
  }

  delete(handle: number): Binding | undefined {
    const binding = this.map.get(handle);
    this.map.delete(handle);
    return binding;
  }

  clear(): Binding[] {
    const all = [...this.map.values()];
    this.map.clear();
    this.revoked.clear();
    return all;
  }

  /**
   * The binding for the (handle, key) at the front of a data request if it carries the
   * `needed` rights, else the refusal. `prefix` holds at least u32 handle | key[16]. A handle
   * this connection never opened gets EKEY whether or not such a region exists: a client
   * learns nothing about regions it may not open.
   */
  check(prefix: Buffer, what: string, needed: number, user: string): Binding | Refusal {
    const handle = prefix.readUInt32LE(0);
    const binding = this.map.get(handle);
    if (!binding) {
      const revoked = this.revoked.get(handle);
      if (revoked) return { code: revoked.code, message: `${what} on handle ${handle}: ${revoked.message}` };
      return { code: 'EKEY', message: `${what} on handle ${handle}: this connection has not opened that region; keys are bound to the connection that opened it` };
    }
    if (!keyMatches(prefix, binding.keyWords)) {
      return { code: 'EKEY', message: `${what} on region '${binding.name}': wrong access key; use the key OPEN returned on this connection` };
    }
    if ((binding.rights & needed) !== needed) {
      return { code: 'EACCESS', message: `${what} on region '${binding.name}': user '${user}' holds it read-only` };
    }
    return binding;
  }

  /**
   * Re-checks every binding against the table as it is now and `principal`'s rights: a region
   * deleted (or replaced under the same handle) or no longer accessible is dropped; a read-write
   * binding whose user may now only read is downgraded. Returns what changed.
   */
  revalidate(principal: Principal, entryOf: (handle: number) => NativeEntry | undefined): BindingChange[] {
    const changes: BindingChange[] = [];
    for (const binding of [...this.map.values()]) {
      const entry = entryOf(binding.handle);
      let refusal: Refusal | undefined;
      if (!entry || entry.createdGeneration !== binding.createdGeneration) {
        refusal = { code: 'ENOENT', message: `region '${binding.name}' was deleted; open or create it again` };
      } else {
        const rights = rightsFor(principal, entry);
        if (rights === RIGHTS_NONE) {
          refusal = { code: 'EACCESS', message: `user '${principal.user}' no longer has rights on region '${binding.name}' (an admin changed its grants); ask an admin for a grant` };
        } else if (binding.rights === RIGHTS_READ_WRITE && rights !== RIGHTS_READ_WRITE) {
          binding.rights = RIGHTS_READ;
          changes.push({ binding, change: 'downgraded' });
        }
      }
      if (refusal) {
        this.map.delete(binding.handle);
        this.revoked.set(binding.handle, refusal);
        changes.push({ binding, change: 'dropped' });
      }
    }
    return changes;
  }
}

/**
 * Whether the KEY_BYTES at offset 4 of `prefix` equal `words`: all 16 bytes are compared
 * whatever they hold (the differences are OR-ed, no early exit), as crypto.timingSafeEqual
 * does, without making a view of the request and calling into C++ on every data request.
 */
function keyMatches(prefix: Buffer, words: readonly [number, number, number, number]): boolean {
  const difference =
    (prefix.readUInt32LE(4) ^ words[0]) | (prefix.readUInt32LE(8) ^ words[1]) | (prefix.readUInt32LE(12) ^ words[2]) | (prefix.readUInt32LE(16) ^ words[3]);
  return difference === 0;
}
