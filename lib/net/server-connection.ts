/**
 * One client connection on the server: handshake, then requests dispatched as they arrive
 * and answered as they complete (replies matched by request id, so they may overtake each
 * other). Every data request presents (handle, key); the key is the one this connection got
 * from OPEN, derived from the region's ATT key and a salt private to this connection, so a
 * key copied to any other connection is refused with EKEY.
 *
 * Flow control: reading stops while the socket's outgoing buffer is above its high-water mark
 * (a client that does not read its replies stops being read) or while too many requests are
 * in flight; it resumes on 'drain' / completion. Nothing on this path buffers without bound.
 */
import * as crypto from 'node:crypto';
import * as net from 'node:net';
import { PmuErrorCode } from '../unit/errors';
import { LocalRegion } from '../unit/local-region';
import { NativeEntry } from '../unit/native';
import { Grant, PersistentMemoryUnit, RegionInfo, toRegionInfo } from '../unit/unit';
import { rightsFor, rightsName } from './access';
import { proof, proofsMatch, randomNonce } from './auth';
import { FrameReader } from './frame-reader';
import { FrameWriter } from './frame-writer';
import {
  CAS_FIXED_BYTES,
  DATA_PREFIX_BYTES,
  EVENT_WRITER_CLOSED,
  EVENT_WRITER_DISCONNECTED,
  FLAG_FENCE,
  FLAG_FLUSHED,
  FLUSH_FIXED_BYTES,
  FrameHeader,
  HELLO_BYTES,
  KEY_BYTES,
  NO_REQUEST,
  NONCE_BYTES,
  Op,
  OP_NAMES,
  OPEN_REPLY_BYTES,
  PRE_AUTH_MAX_BODY_BYTES,
  PROOF_BYTES,
  PROTOCOL_VERSION,
  READ_FIXED_BYTES,
  readSafeU64,
  RIGHTS_NONE,
  RIGHTS_READ,
  RIGHTS_READ_WRITE,
  WRITE_FIXED_BYTES,
  writeU64,
} from './protocol';
import { UserRecord } from './users';
import { encodeError, errorCodeOf } from './wire-error';

/** What a connection needs from its server; kept narrow so a connection cannot reach past it. */
export interface ConnectionHost {
  readonly unit: PersistentMemoryUnit;
  readonly maxBodyBytes: number;
  readonly handshakeTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxInFlight: number;
  lookupUser(name: string): UserRecord | undefined;
  countRequest(op: number, bodyBytes: number): void;
  countRefusal(code: PmuErrorCode): void;
  subscribe(connection: ServerConnection, handle: number): number;
  unsubscribe(connection: ServerConnection, subscriptionId: number): boolean;
  writerGone(connection: ServerConnection, handle: number, reason: number): void;
  connectionClosed(connection: ServerConnection): void;
}

interface Binding {
  handle: number;
  name: string;
  base: number;
  size: number;
  rights: number;
  key: Buffer;
  region: LocalRegion;
}

const EMPTY = Buffer.alloc(0);

export class ServerConnection {
  readonly peer: string;
  private readonly reader: FrameReader;
  private readonly serverNonce = randomNonce();
  /** Keys handed out on this connection are HMAC(salt, ATT key | handle): worthless elsewhere. */
  private readonly keySalt = crypto.randomBytes(32);
  private readonly bindings = new Map<number, Binding>();
  private principal: { user: string; admin: boolean } | undefined;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private readonly writer: FrameWriter;
  private inFlight = 0;
  private readingPaused = false;
  private draining = false;
  private closed = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly host: ConnectionHost,
    private readonly socket: net.Socket,
  ) {
    this.peer = socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : `unix socket ${socket.localAddress ?? ''}`.trim();
    this.reader = new FrameReader(
      {
        onFrame: (header, body) => this.onFrame(header, body),
        onStreamError: (code, message, requestId) => this.fail(code, message, requestId),
      },
      PRE_AUTH_MAX_BODY_BYTES,
    );
    socket.setNoDelay(true);
    this.writer = new FrameWriter(socket);
    socket.on('data', (chunk: Buffer) => this.reader.push(chunk));
    socket.on('drain', () => this.updateReading());
    socket.on('error', () => this.socket.destroy());
    socket.on('close', () => this.onClose());
    if (host.idleTimeoutMs > 0) {
      socket.setTimeout(host.idleTimeoutMs);
      socket.on('timeout', () => this.fail('ETIMEDOUT', `connection idle for ${host.idleTimeoutMs} ms; reconnect`, NO_REQUEST));
    }
    this.handshakeTimer = setTimeout(() => this.fail('ETIMEDOUT', `no AUTH within ${host.handshakeTimeoutMs} ms of HELLO`, NO_REQUEST), host.handshakeTimeoutMs);
    this.handshakeTimer.unref();
    this.sendHello();
  }

  get user(): string | undefined {
    return this.principal?.user;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Graceful close: read nothing more, let requests in flight finish, then end the socket. */
  async drain(timeoutMs: number): Promise<void> {
    this.draining = true;
    this.reader.stop();
    this.socket.pause();
    if (this.inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        timer.unref();
        this.idleWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Pushes a watchWriters event to this (subscribed) connection. */
  pushWriterEvent(subscriptionId: number, reason: number, user: string): void {
    const userBytes = Buffer.from(user, 'utf8');
    const body = Buffer.allocUnsafe(5 + userBytes.length);
    body.writeUInt32LE(subscriptionId, 0);
    body[4] = reason;
    userBytes.copy(body, 5);
    this.send(Op.EVENT, 0, NO_REQUEST, body);
  }

  // ---- frames in --------------------------------------------------------------------------

  private onFrame(header: FrameHeader, body: Buffer): void {
    if (this.closed || this.draining) return;
    this.host.countRequest(header.op, body.length);
    if (!this.principal) {
      this.onPreAuthFrame(header, body);
      return;
    }
    try {
      this.dispatch(header, body);
    } catch (error) {
      const { code, message } = errorCodeOf(error);
      this.replyError(header.requestId, code, message);
    }
  }

  private onPreAuthFrame(header: FrameHeader, body: Buffer): void {
    if (header.op !== Op.AUTH) {
      const op = OP_NAMES[header.op] ?? `opcode 0x${header.op.toString(16)}`;
      this.fail('EAUTH', `${op} before authentication; send AUTH first`, header.requestId);
      return;
    }
    if (body.length <= NONCE_BYTES + PROOF_BYTES) {
      this.fail('EPROTO', `AUTH body of ${body.length} bytes is too short`, header.requestId);
      return;
    }
    const clientNonce = Buffer.from(body.subarray(0, NONCE_BYTES));
    const presented = body.subarray(NONCE_BYTES, NONCE_BYTES + PROOF_BYTES);
    const user = body.subarray(NONCE_BYTES + PROOF_BYTES).toString('utf8');
    const record = this.host.lookupUser(user);
    // An unknown user costs the same HMAC as a known one: timing does not reveal who exists.
    const secret = record?.secret ?? crypto.randomBytes(32).toString('hex');
    const expected = proof('client', secret, PROTOCOL_VERSION, this.serverNonce, clientNonce, user);
    if (!proofsMatch(expected, presented) || !record) {
      this.fail('EAUTH', `authentication failed for user ${JSON.stringify(user)}: unknown user or wrong secret`, header.requestId);
      return;
    }
    clearTimeout(this.handshakeTimer);
    this.handshakeTimer = undefined;
    this.principal = { user, admin: record.admin };
    this.reader.setMaxBodyBytes(this.host.maxBodyBytes);
    const reply = Buffer.allocUnsafe(PROOF_BYTES + 1);
    proof('server', record.secret, PROTOCOL_VERSION, this.serverNonce, clientNonce, user).copy(reply, 0);
    reply[PROOF_BYTES] = record.admin ? 1 : 0;
    this.send(Op.OK, 0, header.requestId, reply);
  }

  private dispatch(header: FrameHeader, body: Buffer): void {
    const id = header.requestId;
    switch (header.op) {
      case Op.WRITE:
        return this.onWrite(id, header.flags, body);
      case Op.READ:
        return this.onRead(id, body);
      case Op.FLUSH:
        return this.onFlush(id, body);
      case Op.CAS:
        return this.onCompareAndSwap(id, header.flags, body);
      case Op.PING:
        return this.send(Op.OK, 0, id, EMPTY);
      case Op.OPEN:
        return this.onOpen(id, body);
      case Op.CLOSE:
        return this.onCloseRegion(id, body);
      case Op.CREATE:
        return this.onCreate(id, body);
      case Op.DELETE:
        return this.onDelete(id, body);
      case Op.LIST:
        return this.onList(id);
      case Op.SET_GRANTS:
        return this.onSetGrants(id, body);
      case Op.WATCH:
        return this.onWatch(id, body);
      case Op.UNWATCH:
        return this.onUnwatch(id, body);
      case Op.AUTH:
        return this.replyError(id, 'EPROTO', 'this connection is already authenticated');
      default: {
        const op = OP_NAMES[header.op] ?? `unknown opcode 0x${header.op.toString(16)}`;
        return this.replyError(id, 'EPROTO', `${op} is not a request this server accepts`);
      }
    }
  }

  // ---- data operations ------------------------------------------------------------------

  private onWrite(id: number, flags: number, body: Buffer): void {
    if (!this.checkLength('WRITE', id, body, WRITE_FIXED_BYTES, false)) return;
    const binding = this.bindingFor(id, body, 'WRITE', RIGHTS_READ_WRITE);
    if (!binding) return;
    // A view of the received frame: LocalRegion.write copies it into the mapping before its first await.
    const payload = body.subarray(WRITE_FIXED_BYTES);
    const offset = this.offsetFor(id, binding, body, payload.length, 'WRITE');
    if (offset < 0) return;
    let fence: { offset: number; epoch: bigint } | undefined;
    if (flags & FLAG_FENCE) {
      const fenceAddress = readSafeU64(body, DATA_PREFIX_BYTES);
      const fenceOffset = fenceAddress - binding.base;
      if (fenceAddress < 0 || fenceOffset < 0 || fenceOffset > binding.size - 8) {
        return this.replyError(id, 'EBOUNDS', `WRITE fence address ${fenceAddress} is outside region '${binding.name}' [${binding.base}, ${binding.base + binding.size})`);
      }
      fence = { offset: fenceOffset, epoch: body.readBigUInt64LE(DATA_PREFIX_BYTES + 8) };
    }
    if (flags & FLAG_FLUSHED) {
      this.track(id, binding.region.write(offset, payload, { durability: 'flushed', fence }).then(() => EMPTY));
    } else {
      // 'mapped': the copy into the mapping is the whole job, so answer now, with no promise
      // in between. A refusal (EFENCED, EIO) throws and onFrame replies with its code.
      binding.region.writeSync(offset, payload, { durability: 'mapped', fence });
      this.send(Op.OK, 0, id, EMPTY);
    }
  }

  private onRead(id: number, body: Buffer): void {
    if (!this.checkLength('READ', id, body, READ_FIXED_BYTES, true)) return;
    const binding = this.bindingFor(id, body, 'READ', RIGHTS_READ);
    if (!binding) return;
    const length = body.readUInt32LE(DATA_PREFIX_BYTES);
    if (length > this.host.maxBodyBytes) return this.replyError(id, 'EFRAMETOOBIG', `READ of ${length} bytes exceeds the frame limit of ${this.host.maxBodyBytes}; read in pieces`);
    const offset = this.offsetFor(id, binding, body, length, 'READ');
    if (offset < 0) return;
    if (this.closed || this.socket.destroyed || !this.socket.writable) return;
    this.writer.writeFilled(Op.OK, 0, id, length, (body) => binding.region.readIntoSync(offset, body));
    if (this.socket.writableNeedDrain) this.updateReading();
  }

  private onFlush(id: number, body: Buffer): void {
    if (!this.checkLength('FLUSH', id, body, FLUSH_FIXED_BYTES, true)) return;
    const binding = this.bindingFor(id, body, 'FLUSH', RIGHTS_READ);
    if (!binding) return;
    const length = readSafeU64(body, DATA_PREFIX_BYTES);
    const offset = this.offsetFor(id, binding, body, length, 'FLUSH');
    if (offset < 0) return;
    this.track(id, binding.region.flush(offset, length).then(() => EMPTY));
  }

  private onCompareAndSwap(id: number, flags: number, body: Buffer): void {
    if (!this.checkLength('CAS', id, body, CAS_FIXED_BYTES, true)) return;
    const binding = this.bindingFor(id, body, 'CAS', RIGHTS_READ_WRITE);
    if (!binding) return;
    const offset = this.offsetFor(id, binding, body, 8, 'CAS');
    if (offset < 0) return;
    const expected = body.readBigUInt64LE(DATA_PREFIX_BYTES);
    const value = body.readBigUInt64LE(DATA_PREFIX_BYTES + 8);
    const durability = flags & FLAG_FLUSHED ? 'flushed' : 'mapped';
    this.track(
      id,
      binding.region.compareAndSwap(offset, expected, value, { durability }).then((previous) => {
        const reply = Buffer.allocUnsafe(8);
        reply.writeBigUInt64LE(previous);
        return reply;
      }),
    );
  }

  /**
   * The connection's binding for the (handle, key) at the front of a request, or undefined
   * after replying with the refusal. `body` holds at least u32 handle | key[16].
   */
  private bindingFor(id: number, body: Buffer, what: string, needed: number): Binding | undefined {
    const handle = body.readUInt32LE(0);
    const binding = this.bindings.get(handle);
    if (!binding) {
      if (this.host.unit.entryByHandle(handle)) {
        this.replyError(id, 'EKEY', `${what} on handle ${handle}: this connection has not opened that region; keys are bound to the connection that opened it`);
      } else {
        this.replyError(id, 'ENOENT', `${what} on handle ${handle}: no such region (deleted, or never existed)`);
      }
      return undefined;
    }
    const key = body.subarray(4, 4 + KEY_BYTES);
    if (!crypto.timingSafeEqual(key, binding.key)) {
      this.replyError(id, 'EKEY', `${what} on region '${binding.name}': wrong access key; use the key OPEN returned on this connection`);
      return undefined;
    }
    if ((binding.rights & needed) !== needed) {
      this.replyError(id, 'EACCESS', `${what} on region '${binding.name}': user '${this.user}' opened it read-only`);
      return undefined;
    }
    return binding;
  }

  /** The region offset for the request's address, or -1 after replying EBOUNDS. */
  private offsetFor(id: number, binding: Binding, body: Buffer, length: number, what: string): number {
    const address = readSafeU64(body, 4 + KEY_BYTES);
    const offset = address - binding.base;
    if (address < 0 || length < 0 || offset < 0 || offset > binding.size || length > binding.size - offset) {
      this.replyError(
        id,
        'EBOUNDS',
        `${what} of ${length < 0 ? 'too many' : length} bytes at address ${address < 0 ? 'beyond 2^53' : address} is outside region '${binding.name}' [${binding.base}, ${binding.base + binding.size})`,
      );
      return -1;
    }
    return offset;
  }

  private checkLength(what: string, id: number, body: Buffer, fixed: number, exact: boolean): boolean {
    if (exact ? body.length === fixed : body.length >= fixed) return true;
    this.replyError(id, 'EPROTO', `${what} body of ${body.length} bytes; expected ${exact ? '' : 'at least '}${fixed}`);
    return false;
  }

  // ---- persistent memory manager ---------------------------------------------------------

  private onOpen(id: number, body: Buffer): void {
    if (body.length < 2) return this.replyError(id, 'EPROTO', 'OPEN body must hold the wanted rights and a region name');
    const wanted = body[0];
    const name = body.subarray(1).toString('utf8');
    const entry = this.host.unit.entry(name);
    const allowed = rightsFor(this.principal!, entry);
    if (allowed === RIGHTS_NONE) return this.replyError(id, 'EACCESS', `user '${this.user}' has no rights on region '${name}'; ask an admin for a grant`);
    if (wanted !== RIGHTS_NONE && wanted !== RIGHTS_READ && wanted !== RIGHTS_READ_WRITE) return this.replyError(id, 'EPROTO', `OPEN with rights ${wanted}; expected 0, 1 or 3`);
    if (wanted === RIGHTS_READ_WRITE && allowed !== RIGHTS_READ_WRITE) return this.replyError(id, 'EACCESS', `user '${this.user}' may only read region '${name}'`);
    const rights = wanted === RIGHTS_NONE ? allowed : wanted;
    const binding = this.bind(entry, rights);
    const reply = Buffer.alloc(OPEN_REPLY_BYTES);
    reply.writeUInt32LE(binding.handle, 0);
    reply[4] = rights;
    writeU64(reply, 8, binding.base);
    writeU64(reply, 16, binding.size);
    binding.key.copy(reply, 24);
    this.send(Op.OK, 0, id, reply);
  }

  private bind(entry: NativeEntry, rights: number): Binding {
    const handleBytes = Buffer.allocUnsafe(4);
    handleBytes.writeUInt32LE(entry.handle);
    const key = crypto.createHmac('sha256', this.keySalt).update(entry.key).update(handleBytes).digest().subarray(0, KEY_BYTES);
    const binding: Binding = { handle: entry.handle, name: entry.name, base: entry.base, size: entry.length, rights, key, region: this.host.unit.regionFor(entry) };
    const previous = this.bindings.get(entry.handle);
    // Downgrading an open from rw to r is a writer leaving: watchers hear of it.
    if (previous && previous.rights === RIGHTS_READ_WRITE && rights !== RIGHTS_READ_WRITE) this.host.writerGone(this, entry.handle, EVENT_WRITER_CLOSED);
    this.bindings.set(entry.handle, binding);
    return binding;
  }

  private onCloseRegion(id: number, body: Buffer): void {
    if (!this.checkLength('CLOSE', id, body, 4 + KEY_BYTES, true)) return;
    const binding = this.bindingFor(id, body, 'CLOSE', RIGHTS_READ);
    if (!binding) return;
    this.bindings.delete(binding.handle);
    if (binding.rights === RIGHTS_READ_WRITE) this.host.writerGone(this, binding.handle, EVENT_WRITER_CLOSED);
    this.send(Op.OK, 0, id, EMPTY);
  }

  private onCreate(id: number, body: Buffer): void {
    if (!this.requireAdmin(id, 'CREATE')) return;
    const request = this.parseJson(id, body, 'CREATE') as { name?: unknown; size?: unknown; owner?: unknown; grants?: unknown } | undefined;
    if (!request) return;
    const unit = this.host.unit;
    const owner = request.owner === undefined ? this.user! : (request.owner as string);
    unit.createRegion(request.name as string, request.size as number, { owner });
    if (request.grants !== undefined) {
      try {
        unit.setGrants(request.name as string, request.grants as Grant[]);
      } catch (error) {
        // Never leave a half-made region behind: it would carry the wrong protection.
        unit.deleteRegion(request.name as string);
        throw error;
      }
    }
    this.replyJson(id, this.describe(unit.entry(request.name as string)));
  }

  private onDelete(id: number, body: Buffer): void {
    if (!this.requireAdmin(id, 'DELETE')) return;
    const name = body.toString('utf8');
    const entry = this.host.unit.entry(name);
    this.host.unit.deleteRegion(name);
    this.bindings.delete(entry.handle);
    this.send(Op.OK, 0, id, EMPTY);
  }

  private onList(id: number): void {
    const visible = this.host.unit.listRegions().filter((info) => rightsFor(this.principal!, { owner: info.owner, grants: info.grants.map((g) => ({ user: g.user, rights: g.rights === 'rw' ? 3 : 1 })) }) !== RIGHTS_NONE);
    this.replyJson(
      id,
      visible.map((info) => this.describeInfo(info)),
    );
  }

  private onSetGrants(id: number, body: Buffer): void {
    if (!this.requireAdmin(id, 'SET_GRANTS')) return;
    const request = this.parseJson(id, body, 'SET_GRANTS') as { name?: unknown; grants?: unknown } | undefined;
    if (!request) return;
    this.host.unit.setGrants(request.name as string, request.grants as Grant[]);
    this.replyJson(id, this.describe(this.host.unit.entry(request.name as string)));
  }

  private onWatch(id: number, body: Buffer): void {
    if (!this.checkLength('WATCH', id, body, 4 + KEY_BYTES, true)) return;
    const binding = this.bindingFor(id, body, 'WATCH', RIGHTS_READ);
    if (!binding) return;
    const reply = Buffer.allocUnsafe(4);
    reply.writeUInt32LE(this.host.subscribe(this, binding.handle));
    this.send(Op.OK, 0, id, reply);
  }

  private onUnwatch(id: number, body: Buffer): void {
    if (!this.checkLength('UNWATCH', id, body, 4, true)) return;
    if (!this.host.unsubscribe(this, body.readUInt32LE(0))) return this.replyError(id, 'ENOENT', `no subscription ${body.readUInt32LE(0)} on this connection`);
    this.send(Op.OK, 0, id, EMPTY);
  }

  private requireAdmin(id: number, what: string): boolean {
    if (this.principal!.admin) return true;
    this.replyError(id, 'EACCESS', `${what} needs an admin user; '${this.user}' is not one`);
    return false;
  }

  private parseJson(id: number, body: Buffer, what: string): Record<string, unknown> | undefined {
    try {
      const value = JSON.parse(body.toString('utf8'));
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) return value;
    } catch {
      // answered below
    }
    this.replyError(id, 'EPROTO', `${what} body must be a JSON object`);
    return undefined;
  }

  private describe(entry: NativeEntry): RegionInfo & { rights: string } {
    return this.describeInfo(toRegionInfo(entry));
  }

  private describeInfo(info: RegionInfo): RegionInfo & { rights: string } {
    const bits = rightsFor(this.principal!, { owner: info.owner, grants: info.grants.map((g) => ({ user: g.user, rights: g.rights === 'rw' ? 3 : 1 })) });
    return { ...info, rights: rightsName(bits) };
  }

  // ---- frames out ------------------------------------------------------------------------

  private sendHello(): void {
    const hello = Buffer.allocUnsafe(HELLO_BYTES);
    hello.writeUInt16LE(PROTOCOL_VERSION, 0);
    hello.writeUInt16LE(0, 2);
    hello.writeUInt32LE(Math.min(this.host.idleTimeoutMs, 0xffffffff), 4);
    this.serverNonce.copy(hello, 8);
    this.send(Op.HELLO, 0, NO_REQUEST, hello);
  }

  /** Sends the reply of an asynchronous request when it settles. */
  private track(id: number, work: Promise<Buffer>): void {
    this.inFlight++;
    this.updateReading();
    work.then(
      (body) => this.settle(id, undefined, body),
      (error) => this.settle(id, error, EMPTY),
    );
  }

  private settle(id: number, error: unknown, body: Buffer): void {
    this.inFlight--;
    if (error === undefined) this.send(Op.OK, 0, id, body);
    else {
      const { code, message } = errorCodeOf(error);
      this.replyError(id, code, message);
    }
    if (this.inFlight === 0 && this.idleWaiters.length > 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
    this.updateReading();
  }

  private replyJson(id: number, value: unknown): void {
    this.send(Op.OK, 0, id, Buffer.from(JSON.stringify(value), 'utf8'));
  }

  private replyError(id: number, code: PmuErrorCode, message: string): void {
    this.host.countRefusal(code);
    this.send(Op.ERROR, 0, id, encodeError(code, message));
  }

  /** Replies go out through the FrameWriter: at once when alone, in one writev when many. */
  private send(op: number, flags: number, id: number, body: Buffer): void {
    if (this.closed || this.socket.destroyed || !this.socket.writable) return;
    this.writer.write(op, flags, id, body.length > 0 ? [body] : []);
    if (this.socket.writableNeedDrain) this.updateReading();
  }

  /** Refuses with `code`, then closes: for errors after which the stream cannot be trusted. */
  private fail(code: PmuErrorCode, message: string, requestId: number): void {
    if (this.closed) return;
    this.reader.stop();
    this.replyError(requestId, code, message);
    this.socket.end();
    // A peer that never reads must not keep a half-closed socket alive.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private updateReading(): void {
    if (this.closed || this.draining) return;
    const shouldPause = this.socket.writableNeedDrain || this.inFlight >= this.host.maxInFlight;
    if (shouldPause && !this.readingPaused) {
      this.readingPaused = true;
      this.reader.pause();
      this.socket.pause();
    } else if (!shouldPause && this.readingPaused) {
      this.readingPaused = false;
      this.socket.resume();
      this.reader.resume();
    }
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.handshakeTimer);
    this.reader.stop();
    for (const binding of this.bindings.values()) {
      if (binding.rights === RIGHTS_READ_WRITE) this.host.writerGone(this, binding.handle, EVENT_WRITER_DISCONNECTED);
    }
    this.bindings.clear();
    this.host.connectionClosed(this);
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}

