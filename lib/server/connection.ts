/**
 * One client connection on the server: its life (admission, handshake, authentication, idle
 * and handshake timeouts, close), what it may make the server hold (request bodies, replies,
 * events). Requests go to their handlers through ops/op-table.ts; the handshake's checks are
 * handshake.ts; the regions it holds open, bindings.ts.
 *
 * What a connection can make the server hold, and the bound of each:
 * - request bodies: a frame that arrives whole is handed on as a view of the socket's chunk;
 *   one arriving in pieces is admitted first (admitBody: a WRITE only if this connection holds
 *   the region read-write under that key and the range fits), then kept as the pieces arrive
 *   (a large one in the server's one spare buffer when it is free: spare-body.ts). Each piece
 *   is counted against the buffered-bytes budget, per user and in total, as it arrives: a
 *   header's claim holds nothing. A body that stops moving (less than BODY_PROGRESS_BYTES in
 *   bodyStallTimeoutMs) closes its connection, which frees its budget.
 * - replies: reading stops while the socket's outgoing buffer is above its high-water mark (a
 *   client that does not read its replies stops being read) or while too many requests are
 *   in flight; it resumes on 'drain' / completion.
 * - events: written at once while the socket keeps up; while it is backed up they are
 *   coalesced (one per subscription, reason and writer), and a subscriber whose backlog passes
 *   maxEventBacklogBytes is disconnected.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { PmuErrorCode } from '../unit/errors';
import { channelBinding, randomNonce } from '../wire/auth';
import { encodeError, errorCodeOf } from '../wire/error-frame';
import { FrameReader } from '../wire/frame-reader';
import { FrameWriter } from '../wire/frame-writer';
import {
  DATA_PREFIX_BYTES,
  EVENT_WRITER_CLOSED,
  EVENT_WRITER_DISCONNECTED,
  FrameHeader,
  HEADER_BYTES,
  NO_REQUEST,
  Op,
  OP_NAMES,
  PRE_AUTH_MAX_BODY_BYTES,
  RIGHTS_READ_WRITE,
} from '../wire/protocol';
import { FrameSeal } from '../wire/seal';
import { readIntoShared } from '../wire/shared-read';
import type { SpareBody } from '../wire/spare-body';
import { Principal } from './access';
import { Admitted } from './admission';
import { BindingTable, takeLeaveReason } from './bindings';
import { Authenticated, checkAuth, helloBody } from './handshake';
import { BODY_PROGRESS_BYTES } from './limits';
import { admitWrite } from './ops/data-ops';
import { OP_TABLE } from './ops/op-table';
import type { ConnectionHost, Session } from './session';

const EMPTY = Buffer.alloc(0);
/** The parts of a frame with an empty body (every 'mapped' WRITE's OK): one array, not one per reply. */
const NO_PARTS: readonly Uint8Array[] = [];
/**
 * Idleness is checked this many times per idleTimeoutMs: a connection is closed after between
 * idleTimeoutMs and (1 + 1/IDLE_CHECKS_PER_PERIOD) × idleTimeoutMs of silence.
 */
const IDLE_CHECKS_PER_PERIOD = 4;
/** Refusals logged per connection; past this a flood of bad requests is only counted. */
const LOGGED_REFUSALS_PER_CONNECTION = 20;
let nextConnectionId = 1;

export class ServerConnection implements Session, Admitted {
  readonly peer: string;
  readonly connectionId = nextConnectionId++;
  readonly bindings = new BindingTable();
  /** Whether reads land in the server's shared buffer (onread) rather than 'data' events. */
  readonly readsIntoSharedBuffer: boolean;
  /** Set by Admission once authenticated. */
  user: string | undefined;
  private readonly reader: FrameReader;
  private readonly writer: FrameWriter;
  private readonly serverNonce = randomNonce();
  private authenticated: Authenticated | undefined;
  private handshakeTimer: NodeJS.Timeout | undefined;
  /**
   * Traffic either way bumps `activity`; the idle check compares it with what it saw last.
   * socket.setTimeout re-arms a timer on every read and write, a cost on every request.
   */
  private activity = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private readingPaused = false;
  private draining = false;
  private closed = false;
  private idleWaiters: Array<() => void> = [];
  /** Events held while the socket is backed up, coalesced by subscription, reason and writer. */
  private eventBacklog: Map<string, Buffer> | undefined;
  private eventBacklogBytes = 0;
  private refusalsLogged = 0;
  /** Budget reserved for the body being received, piece by piece (bodyPiece), returned by releaseBody. */
  private reservedBody = 0;
  /** While a body arrives in pieces: fires when it has not moved for bodyStallTimeoutMs. */
  private bodyStallTimer: NodeJS.Timeout | undefined;
  /** Bytes of that body since the stall timer was last re-armed. */
  private bodyProgress = 0;
  /** A TLS socket still in its TLS handshake: admitted and timed like any, but HELLO waits for 'secure'. */
  private tlsPending = false;

  private readonly socket: net.Socket;
  private whenClosed: Promise<void> | undefined;

  /**
   * `sharedReadBuffer`: read into this buffer, shared with the server's other connections
   * (shared-read.ts), when the socket allows; `accepted` must then come from a listener with
   * pauseOnConnect. Without it the socket reads with 'data' events.
   */
  constructor(
    readonly host: ConnectionHost,
    accepted: net.Socket,
    sharedReadBuffer?: Buffer,
    spareBody?: SpareBody,
  ) {
    const onChunk = (chunk: Buffer): void => this.onChunk(chunk);
    const adopted = sharedReadBuffer ? readIntoShared(accepted, sharedReadBuffer, onChunk) : undefined;
    const socket = adopted ?? accepted;
    this.socket = socket;
    this.readsIntoSharedBuffer = adopted !== undefined;
    this.peer = socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : 'unix socket';
    const self = this;
    this.reader = new FrameReader(
      {
        onFrame: (header, body) => self.onFrame(header, body),
        onStreamError: (code, message, requestId) => self.fail(code, message, requestId),
        admissionPrefixBytes: (header) => (header.op === Op.WRITE && self.authenticated ? DATA_PREFIX_BYTES : 0),
        admitBody: (header, prefix) => self.admitBody(header, prefix),
        bodyPiece: (header, bytes) => self.bodyPiece(header, bytes),
        releaseBody: () => self.releaseBody(),
      },
      PRE_AUTH_MAX_BODY_BYTES,
      this.readsIntoSharedBuffer,
      spareBody,
    );
    socket.setNoDelay(true);
    this.writer = new FrameWriter(socket);
    if (!adopted) {
      socket.on('data', onChunk);
      // A listener with pauseOnConnect hands over a socket that is not reading yet.
      socket.resume();
    }
    socket.on('drain', () => this.onDrain());
    socket.on('error', () => this.socket.destroy());
    socket.on('close', () => this.onClose());
    const limits = host.limits;
    if (limits.idleTimeoutMs > 0) this.watchIdle(limits.idleTimeoutMs);
    this.handshakeTimer = setTimeout(() => this.fail('ETIMEDOUT', `no AUTH within ${limits.handshakeTimeoutMs} ms of HELLO`, NO_REQUEST), limits.handshakeTimeoutMs);
    this.handshakeTimer.unref();
  }

  private onChunk(chunk: Buffer): void {
    this.activity++;
    // The replies to this chunk's requests leave together: the first at once, any more in one writev.
    this.writer.beginBatch();
    try {
      this.reader.push(chunk);
    } finally {
      this.writer.endBatch();
    }
  }

  /**
   * For a TLS socket: it counts as in its handshake from the TCP connect (admission, the
   * handshake deadline, eviction), and the protocol starts once the TLS handshake is done.
   */
  startAfterTls(socket: tls.TLSSocket): void {
    this.tlsPending = true;
    socket.once('secure', () => {
      this.tlsPending = false;
      if (!this.closed) this.start();
    });
  }

  /** Starts the protocol once the server has admitted the connection. */
  start(): void {
    this.send(Op.HELLO, 0, NO_REQUEST, helloBody(this.host.limits.idleTimeoutMs, this.serverNonce, this.host.identity));
  }

  get principal(): Principal {
    return this.authenticated!;
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

  /** Resolves once the socket has closed (the server's close() waits for it). */
  untilClosed(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return (this.whenClosed ??= new Promise((resolve) => this.socket.once('close', () => resolve())));
  }

  /** Admission closes a connection still in its handshake to make room for a new one. */
  evict(reason: string): void {
    this.host.limitHit('maxPendingHandshakes', { connection: this.connectionId, peer: this.peer });
    this.fail('EBUSY', reason, NO_REQUEST);
  }

  /** Refuses the whole connection with `code` and closes it: for a user removed, a limit, a timeout. */
  refuse(code: PmuErrorCode, message: string): void {
    this.fail(code, message, NO_REQUEST);
  }

  /**
   * Users or grants changed: re-check the principal (a removed user, or one whose secret
   * changed, is disconnected) and every binding (dropped or downgraded as the new rights say).
   */
  revalidate(lookup: ConnectionHost['lookupUser'], entryOf: Parameters<BindingTable['revalidate']>[1]): void {
    const principal = this.authenticated;
    if (!principal || this.closed) return;
    const record = lookup(principal.user);
    if (!record || record.secret !== principal.secret) {
      this.host.log.warn('auth.revoked', { connection: this.connectionId, user: principal.user, peer: this.peer, reason: record ? 'secret changed' : 'user removed' });
      this.refuse('EAUTH', `user '${principal.user}' ${record ? 'has a new secret' : 'was removed from the users file'}; this connection is closed`);
      return;
    }
    principal.admin = record.admin;
    for (const { binding, change } of this.bindings.revalidate(principal, entryOf)) {
      this.host.log.info('access.revoked', { connection: this.connectionId, user: principal.user, region: binding.name, change });
      // A writer that lost its write right has left as a writer: watchers hear of it.
      if (change === 'downgraded') this.host.subscriptions.writerGone(this, principal.user, binding.handle, takeLeaveReason(binding, EVENT_WRITER_CLOSED));
      else {
        this.host.subscriptions.dropHandle(this, binding.handle);
        if (binding.rights === RIGHTS_READ_WRITE) this.host.subscriptions.writerGone(this, principal.user, binding.handle, takeLeaveReason(binding, EVENT_WRITER_DISCONNECTED));
      }
    }
  }

  // ---- Session: replies and events --------------------------------------------------------

  reply(id: number, body: Buffer): void {
    this.send(Op.OK, 0, id, body);
  }

  replyError(id: number, code: PmuErrorCode, message: string): void {
    this.host.countRefusal(code);
    if (this.refusalsLogged < LOGGED_REFUSALS_PER_CONNECTION && this.host.log.enabled('info')) {
      this.refusalsLogged++;
      const fields = { connection: this.connectionId, user: this.user, peer: this.peer, code, message, last: this.refusalsLogged === LOGGED_REFUSALS_PER_CONNECTION ? true : undefined };
      this.host.log.info('request.refused', fields);
    }
    // The log keeps the whole message for the operator; the client gets it without server paths.
    this.send(Op.ERROR, 0, id, encodeError(code, this.host.forClient(message)));
  }

  replyFilled(id: number, length: number, fill: (body: Buffer) => void): void {
    if (this.closed || this.socket.destroyed || !this.socket.writable) return;
    this.activity++;
    this.writer.writeFilled(Op.OK, 0, id, length, fill);
    if (this.socket.writableNeedDrain) this.updateReading();
  }

  track(id: number, work: Promise<Buffer>): void {
    this.inFlight++;
    this.updateReading();
    work.then(
      (body) => this.settle(id, undefined, body),
      (error) => this.settle(id, error, EMPTY),
    );
  }

  pushEvent(subscriptionId: number, reason: number, user: string): void {
    if (this.closed || this.socket.destroyed || !this.socket.writable) return;
    const userBytes = Buffer.from(user, 'utf8');
    const body = Buffer.allocUnsafe(5 + userBytes.length);
    body.writeUInt32LE(subscriptionId, 0);
    body[4] = reason;
    userBytes.copy(body, 5);
    if (!this.socket.writableNeedDrain && !this.eventBacklog) {
      this.send(Op.EVENT, 0, NO_REQUEST, body);
      return;
    }
    // Backed up: the same news twice says no more than once.
    const backlog = (this.eventBacklog ??= new Map());
    const key = `${subscriptionId}:${reason}:${user}`;
    if (backlog.has(key)) return;
    backlog.set(key, body);
    this.eventBacklogBytes += HEADER_BYTES + body.length;
    if (this.eventBacklogBytes > this.host.limits.maxEventBacklogBytes) {
      this.host.limitHit('maxEventBacklogBytes', { connection: this.connectionId, user: this.user, peer: this.peer });
      this.eventBacklog = undefined;
      // Nothing more is queued for it: after end() the socket is no longer writable.
      this.fail('EBUSY', `this connection does not read its events: ${this.eventBacklogBytes} bytes waiting (limit maxEventBacklogBytes ${this.host.limits.maxEventBacklogBytes}); disconnected`, NO_REQUEST);
    }
  }

  // ---- frames in --------------------------------------------------------------------------

  private onFrame(header: FrameHeader, body: Buffer): void {
    if (this.closed || this.draining) return;
    this.host.countRequest(header.op, body.length, this);
    if (!this.authenticated) {
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

  private dispatch(header: FrameHeader, body: Buffer): void {
    const handler = OP_TABLE[header.op];
    if (handler) return handler(this, header.requestId, header.flags, body);
    if (header.op === Op.AUTH) return this.replyError(header.requestId, 'EPROTO', 'this connection is already authenticated');
    const op = OP_NAMES[header.op] ?? `unknown opcode 0x${header.op.toString(16)}`;
    return this.replyError(header.requestId, 'EPROTO', `${op} is not a request this server accepts`);
  }

  /**
   * A body arriving in pieces: buffer it only if it could be accepted. Requests other than
   * WRITE are small; a WRITE must name a region this connection holds read-write, in range;
   * and every body must fit the buffered-bytes budget.
   */
  private admitBody(header: FrameHeader, prefix: Buffer): boolean {
    const principal = this.authenticated;
    if (!principal) return true; // pre-auth frames are at most PRE_AUTH_MAX_BODY_BYTES
    const limits = this.host.limits;
    if (header.op !== Op.WRITE && header.bodyLength > limits.maxControlBodyBytes) {
      const op = OP_NAMES[header.op] ?? `opcode 0x${header.op.toString(16)}`;
      this.fail('EFRAMETOOBIG', `${op} frame of ${header.bodyLength} bytes exceeds the limit of ${limits.maxControlBodyBytes} bytes for requests other than WRITE`, header.requestId);
      return false;
    }
    if (header.op === Op.WRITE && !admitWrite(this, header.requestId, header.bodyLength, prefix)) return false;
    this.bodyProgress = 0;
    const stallMs = limits.bodyStallTimeoutMs;
    this.bodyStallTimer = setTimeout(() => this.bodyStalled(header, stallMs), stallMs);
    this.bodyStallTimer.unref();
    return true;
  }

  /** Bytes of an admitted body arrived: reserve them (what is held, not what was claimed). */
  private bodyPiece(header: FrameHeader, bytes: number): boolean {
    const principal = this.authenticated;
    if (!principal) return true;
    const refusal = this.host.admission.reserveBody(principal.user, bytes);
    if (refusal) {
      this.host.limitHit(refusal.limit, { connection: this.connectionId, user: principal.user, peer: this.peer, bytes: this.reservedBody + bytes });
      this.replyError(header.requestId, 'EBUSY', refusal.message);
      return false;
    }
    this.reservedBody += bytes;
    this.bodyProgress += bytes;
    if (this.bodyProgress >= BODY_PROGRESS_BYTES) {
      this.bodyProgress = 0;
      this.bodyStallTimer?.refresh();
    }
    return true;
  }

  private bodyStalled(header: FrameHeader, stallMs: number): void {
    // Not the client's stall while the server itself has stopped reading (flow control).
    if (this.readingPaused || this.draining) {
      this.bodyStallTimer?.refresh();
      return;
    }
    this.bodyStallTimer = undefined;
    const op = OP_NAMES[header.op] ?? `opcode 0x${header.op.toString(16)}`;
    this.host.limitHit('bodyStallTimeoutMs', { connection: this.connectionId, user: this.user, peer: this.peer, bytes: this.reservedBody });
    this.fail('ETIMEDOUT', `the ${op} body of ${header.bodyLength} bytes stalled: ${this.reservedBody} bytes arrived, less than ${BODY_PROGRESS_BYTES} in the last ${stallMs} ms (limit bodyStallTimeoutMs); send each request's body without pausing, then reconnect`, header.requestId);
  }

  private releaseBody(): void {
    clearTimeout(this.bodyStallTimer);
    this.bodyStallTimer = undefined;
    if (this.reservedBody === 0 || !this.authenticated) return;
    this.host.admission.releaseBody(this.authenticated.user, this.reservedBody);
    this.reservedBody = 0;
  }

  // ---- authentication ---------------------------------------------------------------------

  private onPreAuthFrame(header: FrameHeader, body: Buffer): void {
    if (header.op !== Op.AUTH) {
      const op = OP_NAMES[header.op] ?? `opcode 0x${header.op.toString(16)}`;
      this.fail('EAUTH', `${op} before authentication; send AUTH first`, header.requestId);
      return;
    }
    const side = { serverNonce: this.serverNonce, identity: this.host.identity, channelBinding: channelBinding(this.socket instanceof tls.TLSSocket ? this.socket : undefined) };
    const outcome = checkAuth(body, header.flags, side, this.host.lookupUser, this.host.dummySecret);
    if (!outcome.ok) {
      if (outcome.badProof !== undefined) this.host.log.warn('auth.failed', { connection: this.connectionId, user: outcome.badProof, peer: this.peer });
      this.fail(outcome.code, outcome.message, header.requestId);
      return;
    }
    const { user } = outcome.principal;
    const refusal = this.host.admission.authenticate(this, user);
    if (refusal) {
      this.host.limitHit('maxConnectionsPerUser', { connection: this.connectionId, user, peer: this.peer });
      this.fail('EBUSY', refusal, header.requestId);
      return;
    }
    clearTimeout(this.handshakeTimer);
    this.handshakeTimer = undefined;
    this.authenticated = outcome.principal;
    this.reader.setMaxBodyBytes(this.host.maxBodyBytes);
    this.host.log.debug('auth.ok', { connection: this.connectionId, user, peer: this.peer, sealed: outcome.seal !== undefined });
    this.reply(header.requestId, outcome.reply);
    // The OK goes out bare (the client checks its proof); every frame after it, both ways, is sealed.
    if (outcome.seal) {
      this.writer.seal = new FrameSeal(outcome.seal.serverToClient);
      this.reader.setSeal(new FrameSeal(outcome.seal.clientToServer));
    }
  }

  // ---- frames out and flow control ---------------------------------------------------------

  private settle(id: number, error: unknown, body: Buffer): void {
    this.inFlight--;
    if (error === undefined) this.reply(id, body);
    else {
      const { code, message } = errorCodeOf(error);
      this.replyError(id, code, message);
    }
    if (this.inFlight === 0 && this.idleWaiters.length > 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
    this.updateReading();
  }

  /** Replies go out through the FrameWriter: at once when alone, in one writev when many. */
  private send(op: number, flags: number, id: number, body: Buffer): void {
    if (this.closed || this.socket.destroyed || !this.socket.writable) return;
    this.activity++;
    this.writer.write(op, flags, id, body.length > 0 ? [body] : NO_PARTS);
    if (this.socket.writableNeedDrain) this.updateReading();
  }

  /**
   * Closes the connection once it has seen no traffic either way (a chunk read, a frame
   * written, a 'drain') for idleTimeoutMs: checked IDLE_CHECKS_PER_PERIOD times per period.
   * Replies stuck behind a client that reads nothing are not traffic: that client is closed.
   */
  private watchIdle(idleTimeoutMs: number): void {
    const period = Math.max(1, Math.ceil(idleTimeoutMs / IDLE_CHECKS_PER_PERIOD));
    let seen = this.activity;
    let quietChecks = 0;
    this.idleTimer = setInterval(() => {
      if (this.activity !== seen) {
        seen = this.activity;
        quietChecks = 0;
      } else if (++quietChecks >= IDLE_CHECKS_PER_PERIOD) {
        clearInterval(this.idleTimer);
        this.fail('ETIMEDOUT', `connection idle for ${idleTimeoutMs} ms; reconnect`, NO_REQUEST);
      }
    }, period);
    this.idleTimer.unref();
  }

  /** Refuses with `code`, then closes: for errors after which the stream cannot be trusted. */
  private fail(code: PmuErrorCode, message: string, requestId: number): void {
    if (this.closed) return;
    this.reader.stop();
    if (this.tlsPending) {
      // Nothing can be said to a peer that has not finished its TLS handshake.
      this.host.log.info('connection.refused', { connection: this.connectionId, peer: this.peer, code, message });
      this.socket.destroy();
      return;
    }
    this.replyError(requestId, code, message);
    this.socket.end();
    // A peer that never reads must not keep a half-closed socket alive.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private onDrain(): void {
    this.activity++;
    const backlog = this.eventBacklog;
    if (backlog) {
      this.eventBacklog = undefined;
      this.eventBacklogBytes = 0;
      for (const body of backlog.values()) this.send(Op.EVENT, 0, NO_REQUEST, body);
    }
    this.updateReading();
  }

  private updateReading(): void {
    if (this.closed || this.draining) return;
    const shouldPause = this.socket.writableNeedDrain || this.inFlight >= this.host.limits.maxInFlightPerConnection;
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
    clearInterval(this.idleTimer);
    this.reader.stop();
    this.eventBacklog = undefined;
    const user = this.user ?? '';
    const held = this.bindings.clear();
    this.host.subscriptions.dropSession(this);
    for (const binding of held) {
      if (binding.rights === RIGHTS_READ_WRITE) this.host.subscriptions.writerGone(this, user, binding.handle, takeLeaveReason(binding, EVENT_WRITER_DISCONNECTED));
    }
    this.host.connectionClosed(this);
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}
