/**
 * A region on a PMU server, behind the same Region interface as LocalRegion. Offsets are
 * relative to the region; the wire carries virtual addresses (context.base + offset) and the
 * server translates them. Arguments are checked here first, so a bad offset fails with the
 * same code and no round trip.
 *
 * After a reconnect the region is opened again on the new connection (a new key: keys are
 * bound to the connection); its watchWriters subscriptions are renewed too.
 */
import { PmuError } from '../unit/errors';
import { Durability, Region, RegionContext, Rights, WriteOptions } from '../unit/region';
import { capabilitiesOf, checkDurability, wireCodeOf } from '../unit/durability';
import { checkBytes, checkInteger, checkRange, checkU64 } from '../unit/validate';
import { ClientConnection } from './connection';
import {
  CAS_FIXED_BYTES,
  CHECKSUM_FIXED_BYTES,
  DATA_PREFIX_BYTES,
  EVENT_FLAG_FENCED_WRITER,
  EVENT_WRITER_CLOSED,
  FLAG_FENCE,
  FLUSH_FIXED_BYTES,
  KEY_BYTES,
  MAX_CHECKSUM_BYTES,
  Op,
  OPEN_REPLY_BYTES,
  READ_FIXED_BYTES,
  readSafeU64,
  RIGHTS_NONE,
  rightsBits,
  rightsName,
  WRITE_FIXED_BYTES,
  writeU64,
} from '../wire/protocol';

export interface WriterEvent {
  /** The user whose read-write connection closed the region or went away. */
  user: string;
  reason: 'closed' | 'disconnected';
  /**
   * The connection had made fenced writes on the region: it was the region's epoch writer (a
   * checkpoint primary). A resync agent, a scrubber's repair or a tool that held the region
   * read-write leaves with false; a backup takes over only on true.
   */
  fencedWriter: boolean;
}

export type WriterListener = (event: WriterEvent) => void;

/** What a region needs from its client. */
export interface RegionHost {
  readonly maxPayloadBytes: number;
  /** The current authenticated connection, reconnecting (and re-opening regions) if it dropped. */
  connection(): Promise<ClientConnection>;
  /** The current connection if it is up, else undefined (no reconnect): the write fast path. */
  current(): ClientConnection | undefined;
  /** Routes EVENT frames with this subscription id (on this connection) to `watch`. */
  routeEvents(connection: ClientConnection, subscriptionId: number, watch: Watch | undefined): void;
  forget(region: RemoteRegion): void;
}

export interface Watch {
  listener: WriterListener;
  connection?: ClientConnection;
  subscriptionId?: number;
}

interface Binding {
  connection: ClientConnection;
  handle: number;
  key: Buffer;
  base: number;
  size: number;
  rights: number;
}

const CAPABILITIES = capabilitiesOf('RemoteRegion');

export class RemoteRegion implements Region {
  readonly capabilities = CAPABILITIES;
  readonly name: string;
  private binding: Binding;
  private rebinding: Promise<Binding> | undefined;
  private readonly watches = new Set<Watch>();
  private closedError: PmuError | undefined;

  /** @internal Obtain regions from PmuClient.openRegion / createRegion. */
  constructor(
    private readonly host: RegionHost,
    name: string,
    private readonly wantedRights: Rights | undefined,
    binding: Binding,
  ) {
    this.name = name;
    this.binding = binding;
  }

  /** @internal Sends OPEN on `connection`. */
  static async bind(connection: ClientConnection, name: string, wanted: Rights | undefined): Promise<Binding> {
    const reply = await connection.request(Op.OPEN, 0, [Buffer.from([wanted ? rightsBits(wanted) : RIGHTS_NONE]), Buffer.from(name, 'utf8')]);
    if (reply.length !== OPEN_REPLY_BYTES) throw new PmuError('EPROTO', `OPEN reply of ${reply.length} bytes; expected ${OPEN_REPLY_BYTES}`);
    return {
      connection,
      handle: reply.readUInt32LE(0),
      rights: reply[4],
      base: readSafeU64(reply, 8),
      size: readSafeU64(reply, 16),
      key: Buffer.from(reply.subarray(24, 24 + KEY_BYTES)),
    };
  }

  get size(): number {
    return this.binding.size;
  }

  get context(): RegionContext {
    const { handle, base, size, rights } = this.binding;
    return { name: this.name, handle, base, size, rights: rightsName(rights) };
  }

  /** The access key of the current connection (tests and diagnostics; useless on any other connection). */
  get key(): Buffer {
    return Buffer.from(this.binding.key);
  }

  /**
   * Writes `data` at `offset`. `data` is sent from the caller's buffer without a copy: do not
   * change it until the returned promise settles.
   */
  write(offset: number, data: Uint8Array, options?: WriteOptions): Promise<void> {
    // Not an async function: on the hot path the request's own promise is returned, one
    // promise and one hop fewer per write. Every refusal still arrives as a rejection.
    try {
      checkInteger('offset', offset);
      checkBytes('data', data);
      const durability = checkDurability(options?.durability, CAPABILITIES);
      const fence = options?.fence;
      if (fence) {
        checkInteger('fence.offset', fence.offset);
        checkU64('fence.epoch', fence.epoch);
      }
      if (data.length > this.host.maxPayloadBytes) {
        throw new PmuError('EFRAMETOOBIG', `write of ${data.length} bytes to region '${this.name}' exceeds the ${this.host.maxPayloadBytes}-byte frame limit; split it`);
      }
      const binding = this.readyBinding();
      if (binding === undefined) return this.bound().then((bound) => this.sendWrite(bound, offset, data, durability, fence));
      return this.sendWrite(binding, offset, data, durability, fence);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private sendWrite(binding: Binding, offset: number, data: Uint8Array, durability: Durability, fence: WriteOptions['fence']): Promise<void> {
    checkRange(this.name, binding.size, offset, data.length, 'write');
    const fixed = this.prefix(binding, offset, WRITE_FIXED_BYTES);
    let flags = wireCodeOf(durability);
    if (fence) {
      flags |= FLAG_FENCE;
      writeU64(fixed, DATA_PREFIX_BYTES, binding.base + fence.offset);
      fixed.writeBigUInt64LE(fence.epoch, DATA_PREFIX_BYTES + 8);
    } else {
      // Four stores rather than fill(): fill() is a call into C++, dearer than the zeroing.
      fixed.writeUInt32LE(0, DATA_PREFIX_BYTES);
      fixed.writeUInt32LE(0, DATA_PREFIX_BYTES + 4);
      fixed.writeUInt32LE(0, DATA_PREFIX_BYTES + 8);
      fixed.writeUInt32LE(0, DATA_PREFIX_BYTES + 12);
    }
    return binding.connection.requestNoBody(Op.WRITE, flags, [fixed, data]);
  }

  async read(offset: number, length: number): Promise<Buffer> {
    checkInteger('offset', offset);
    checkInteger('length', length);
    const binding = this.readyBinding() ?? (await this.bound());
    checkRange(this.name, binding.size, offset, length, 'read');
    const piece = this.host.maxPayloadBytes;
    if (length <= piece) return this.readPiece(binding, offset, length);
    // Longer than one frame: pipelined reads of frame-sized pieces.
    const pieces: Array<Promise<Buffer>> = [];
    for (let at = 0; at < length; at += piece) pieces.push(this.readPiece(binding, offset + at, Math.min(piece, length - at)));
    return Buffer.concat(await Promise.all(pieces), length);
  }

  async flush(offset = 0, length?: number): Promise<void> {
    checkInteger('offset', offset);
    const binding = this.readyBinding() ?? (await this.bound());
    const span = length ?? binding.size - offset;
    checkInteger('length', span);
    checkRange(this.name, binding.size, offset, span, 'flush');
    const fixed = this.prefix(binding, offset, FLUSH_FIXED_BYTES);
    writeU64(fixed, DATA_PREFIX_BYTES, span);
    await binding.connection.request(Op.FLUSH, 0, [fixed]);
  }

  async compareAndSwap(offset: number, expected: bigint, value: bigint, options?: { durability?: Durability }): Promise<bigint> {
    checkInteger('offset', offset);
    checkU64('expected', expected);
    checkU64('value', value);
    const durability = checkDurability(options?.durability, CAPABILITIES);
    const binding = this.readyBinding() ?? (await this.bound());
    checkRange(this.name, binding.size, offset, 8, 'compareAndSwap');
    const fixed = this.prefix(binding, offset, CAS_FIXED_BYTES);
    fixed.writeBigUInt64LE(expected, DATA_PREFIX_BYTES);
    fixed.writeBigUInt64LE(value, DATA_PREFIX_BYTES + 8);
    const reply = await binding.connection.request(Op.CAS, wireCodeOf(durability), [fixed]);
    if (reply.length !== 8) throw new PmuError('EPROTO', `CAS reply of ${reply.length} bytes; expected 8`);
    return reply.readBigUInt64LE(0);
  }

  /**
   * CRC32C of [offset, offset + length), computed by the PMU (one CHECKSUM request, so at most
   * MAX_CHECKSUM_BYTES, 16 MiB: EINVAL beyond, split it): comparing replicas moves 4 bytes.
   */
  async checksum(offset: number, length: number): Promise<number> {
    checkInteger('offset', offset);
    checkInteger('length', length);
    if (length > MAX_CHECKSUM_BYTES) throw new PmuError('EINVAL', `checksum of ${length} bytes in region '${this.name}' exceeds the ${MAX_CHECKSUM_BYTES}-byte limit of one request: checksum it in pieces of at most ${MAX_CHECKSUM_BYTES} bytes`);
    const binding = this.readyBinding() ?? (await this.bound());
    checkRange(this.name, binding.size, offset, length, 'checksum');
    const fixed = this.prefix(binding, offset, CHECKSUM_FIXED_BYTES);
    writeU64(fixed, DATA_PREFIX_BYTES, length);
    const reply = await binding.connection.request(Op.CHECKSUM, 0, [fixed]);
    if (reply.length !== 4) throw new PmuError('EPROTO', `CHECKSUM reply of ${reply.length} bytes; expected 4`);
    return reply.readUInt32LE(0);
  }

  /**
   * Failure detection for the checkpoint layer: calls `listener` whenever another connection
   * that holds this region open read-write closes it ('closed') or drops ('disconnected').
   * Events for this client's own connection are not reported. Resolves, once subscribed, with
   * the function that unsubscribes. Survives reconnects (events during an outage are lost).
   */
  async watchWriters(listener: WriterListener): Promise<() => Promise<void>> {
    if (typeof listener !== 'function') throw new PmuError('EINVAL', 'watchWriters needs a listener function');
    const watch: Watch = { listener };
    const binding = this.readyBinding() ?? (await this.bound());
    await this.subscribe(binding, watch);
    this.watches.add(watch);
    return async () => {
      if (!this.watches.delete(watch)) return;
      const { connection, subscriptionId } = watch;
      if (!connection || subscriptionId === undefined) return;
      this.host.routeEvents(connection, subscriptionId, undefined);
      if (!connection.alive) return;
      const body = Buffer.allocUnsafe(4);
      body.writeUInt32LE(subscriptionId);
      await connection.request(Op.UNWATCH, 0, [body]).catch((error: PmuError) => {
        if (error.code !== 'ECONNECTION' && error.code !== 'ENOENT') throw error;
      });
    };
  }

  /** Closes the region on the server (watchers of it hear 'closed' if this was a writer). */
  async close(): Promise<void> {
    if (this.closedError) return;
    this.closedError = new PmuError('ECLOSED', `region '${this.name}' was closed; open it again`);
    this.host.forget(this);
    const binding = this.binding;
    if (!binding.connection.alive) return;
    const body = Buffer.allocUnsafe(4 + KEY_BYTES);
    body.writeUInt32LE(binding.handle, 0);
    binding.key.copy(body, 4);
    await binding.connection.request(Op.CLOSE, 0, [body]).catch((error: PmuError) => {
      if (error.code !== 'ECONNECTION') throw error;
    });
  }

  /** @internal After a reconnect: opens the region on `connection` and renews its subscriptions. */
  rebind(connection: ClientConnection): Promise<Binding> {
    if (this.rebinding) return this.rebinding;
    this.rebinding = (async () => {
      try {
        const binding = await RemoteRegion.bind(connection, this.name, this.wantedRights);
        for (const watch of this.watches) await this.subscribe(binding, watch);
        this.binding = binding;
        return binding;
      } finally {
        this.rebinding = undefined;
      }
    })();
    return this.rebinding;
  }

  /** @internal Called by the client when a subscription's EVENT arrives. */
  static deliver(watch: Watch, reason: number, user: string): void {
    const fencedWriter = (reason & EVENT_FLAG_FENCED_WRITER) !== 0;
    watch.listener({ user, reason: (reason & ~EVENT_FLAG_FENCED_WRITER) === EVENT_WRITER_CLOSED ? 'closed' : 'disconnected', fencedWriter });
  }

  /**
   * The binding, when it is on the live current connection and no rebind is pending; else
   * undefined (then bound() reconnects or rebinds). Data ops take it without an await, so on
   * the hot path a request leaves within the call, and requests leave in the order of calls.
   */
  private readyBinding(): Binding | undefined {
    if (this.closedError || this.rebinding) return undefined;
    const connection = this.host.current();
    return connection !== undefined && this.binding.connection === connection ? this.binding : undefined;
  }

  private async bound(): Promise<Binding> {
    if (this.closedError) throw this.closedError;
    const connection = await this.host.connection();
    if (this.binding.connection === connection) return this.binding;
    return this.rebind(connection);
  }

  private async subscribe(binding: Binding, watch: Watch): Promise<void> {
    const body = Buffer.allocUnsafe(4 + KEY_BYTES);
    body.writeUInt32LE(binding.handle, 0);
    binding.key.copy(body, 4);
    const reply = await binding.connection.request(Op.WATCH, 0, [body]);
    if (reply.length !== 4) throw new PmuError('EPROTO', `WATCH reply of ${reply.length} bytes; expected 4`);
    watch.connection = binding.connection;
    watch.subscriptionId = reply.readUInt32LE(0);
    this.host.routeEvents(binding.connection, watch.subscriptionId, watch);
  }

  private readPiece(binding: Binding, offset: number, length: number): Promise<Buffer> {
    const fixed = this.prefix(binding, offset, READ_FIXED_BYTES);
    fixed.writeUInt32LE(length, DATA_PREFIX_BYTES);
    return binding.connection.request(Op.READ, 0, [fixed]).then((reply) => {
      if (reply.length !== length) throw new PmuError('EPROTO', `READ reply of ${reply.length} bytes; asked for ${length}`);
      return reply;
    });
  }

  /** u32 handle | key[16] | u64 vaddr, in a buffer of `total` bytes for the op's own fields. */
  private prefix(binding: Binding, offset: number, total: number): Buffer {
    const fixed = Buffer.allocUnsafe(total);
    fixed.writeUInt32LE(binding.handle, 0);
    fixed.set(binding.key, 4); // a typed-array copy in JS; Buffer.copy crosses into C++
    writeU64(fixed, 4 + KEY_BYTES, binding.base + offset);
    return fixed;
  }
}
