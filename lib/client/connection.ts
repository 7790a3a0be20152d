/**
 * One authenticated connection from a client to a server. Requests are pipelined: each gets
 * a request id and a deadline, and the reply with that id settles it. At most `maxInFlight`
 * requests are on the wire; up to `maxQueued` more wait here (beyond that a request fails at
 * once with EBUSY: the queue is bounded). When the socket closes, every request in flight or
 * queued fails with ECONNECTION; nothing waits forever.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
// The module's binding, not the global: the global is an accessor that every call looks up.
import { performance } from 'node:perf_hooks';
import { PmuError, PmuErrorCode } from '../unit/errors';
import { channelBinding, proof, proofsMatch, randomNonce, sessionKeys, Transcript } from '../wire/auth';
import { FrameSeal } from '../wire/seal';
import { FrameReader } from '../wire/frame-reader';
import { FrameWriter } from '../wire/frame-writer';
import { PendingTable } from './pending-table';
import {
  AUTH_SEAL,
  FrameHeader,
  HELLO_BYTES,
  HELLO_CAN_SEAL,
  IDENTITY_MAX_BYTES,
  NO_REQUEST,
  Op,
  OP_NAMES,
  PRE_AUTH_MAX_BODY_BYTES,
  PROOF_BYTES,
  PROTOCOL_VERSION,
} from '../wire/protocol';
import { Endpoint } from './url';
import { decodeError } from '../wire/error-frame';

export interface ConnectionSettings {
  user: string;
  secret: string;
  /** Deadline of every request, and of connecting plus authenticating. */
  timeoutMs: number;
  maxInFlight: number;
  maxQueued: number;
  maxBodyBytes: number;
  /** Extra options for tls:// URLs (e.g. { ca } for a self-signed server certificate). */
  tls?: tls.ConnectionOptions;
  /** Tag every frame after the handshake, both ways (wire/seal.ts); not needed (and not done) on TLS. */
  seal: boolean;
  /** The identity the server must announce in HELLO (a PMU's id in a set); undefined: any. */
  identity?: string;
}

export interface WriterEvent {
  subscriptionId: number;
  reason: number;
  user: string;
}

interface Pending {
  /** Request id while on the wire (from PendingTable.takeId); NO_REQUEST while queued. */
  id: number;
  op: number;
  flags: number;
  parts: Uint8Array[];
  bodyLength: number;
  /** performance.now() after which the request fails with ETIMEDOUT. */
  deadline: number;
  timeoutMs: number;
  /** Called with the OK body, or with undefined when the caller asked for no body (requestNoBody). */
  resolve(body: Buffer | undefined): void;
  wantsBody: boolean;
  reject(error: PmuError): void;
}

const NO_PARTS: Uint8Array[] = [];

/** Bytes read into one buffer, reused for every read: each read is handed to `push` before the next. */
class ReadBuffer {
  static readonly BYTES = 64 * 1024;
  push: (chunk: Buffer) => void = () => undefined;
  readonly options = {
    buffer: Buffer.allocUnsafe(ReadBuffer.BYTES),
    /** true: keep reading (false would pause the socket). */
    callback: (bytes: number, buffer: Uint8Array): boolean => {
      this.push((buffer as Buffer).subarray(0, bytes));
      return true;
    },
  };
}

export class ClientConnection {
  private readonly reader: FrameReader;
  private readonly inFlight = new PendingTable<Pending>();
  private readonly queue: Pending[] = [];
  private readonly writer: FrameWriter;
  private closedError: PmuError | undefined;
  private keepAlive: NodeJS.Timeout | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private handshake: ((header: FrameHeader, body: Buffer) => void) | undefined;
  private failHandshake: ((error: PmuError) => void) | undefined;
  admin = false;
  /** Whether this session's frames carry seal tags (wire/seal.ts). */
  sealed = false;
  /** While AUTH is in flight: checks the OK's proof and turns sealing on, synchronously. */
  private authReply: ((reply: Buffer) => boolean) | undefined;

  private constructor(
    private readonly socket: net.Socket,
    private readonly endpoint: Endpoint,
    private readonly settings: ConnectionSettings,
    private readonly onEvent: (event: WriterEvent) => void,
    private readonly onClosed: (connection: ClientConnection, error: PmuError) => void,
    readBuffer: ReadBuffer | undefined,
  ) {
    this.reader = new FrameReader(
      {
        onFrame: (header, body, owned) => this.onFrame(header, body, owned),
        onStreamError: (code, message) => this.abort(code, `${endpoint.url} sent a bad frame: ${message}`),
      },
      PRE_AUTH_MAX_BODY_BYTES,
      readBuffer !== undefined,
    );
    socket.setNoDelay(true);
    this.writer = new FrameWriter(socket, true);
    const onChunk = (chunk: Buffer): void => {
      this.writer.newTurn();
      this.reader.push(chunk);
    };
    if (readBuffer !== undefined) readBuffer.push = onChunk;
    else socket.on('data', onChunk);
    socket.on('drain', () => this.pump());
    socket.on('error', (error: NodeJS.ErrnoException) => this.shutDown(new PmuError('ECONNECTION', `connection to ${endpoint.url} failed: ${error.code ?? ''} ${error.message}`.replace(/\s+/g, ' '), { cause: error })));
    socket.on('close', () => this.shutDown(new PmuError('ECONNECTION', `connection to ${endpoint.url} closed`)));
  }

  /** Connects, checks the server's HELLO, authenticates both ways. */
  static open(endpoint: Endpoint, settings: ConnectionSettings, onEvent: (event: WriterEvent) => void, onClosed: (connection: ClientConnection, error: PmuError) => void): Promise<ClientConnection> {
    // Plain sockets read into one reused buffer (onread): no buffer allocated per read and no
    // readable-stream machinery between the socket and the frame reader, several µs of every
    // round trip. TLS sockets do not offer it.
    const readBuffer = endpoint.kind === 'unix' || !endpoint.tls ? new ReadBuffer() : undefined;
    const onread = readBuffer?.options;
    const socket =
      endpoint.kind === 'unix'
        ? net.connect({ path: endpoint.path, onread })
        : endpoint.tls
          ? tls.connect({ host: endpoint.host, port: endpoint.port, ...settings.tls })
          : net.connect({ host: endpoint.host, port: endpoint.port, onread });
    const connection = new ClientConnection(socket, endpoint, settings, onEvent, onClosed, readBuffer);
    return connection.authenticate();
  }

  get alive(): boolean {
    return this.closedError === undefined;
  }

  /** Sends a request; resolves with the OK body, rejects with the server's PmuError. */
  request(op: number, flags: number, parts: Uint8Array[], timeoutMs = this.settings.timeoutMs): Promise<Buffer> {
    return this.issue(op, flags, parts, timeoutMs, true) as Promise<Buffer>;
  }

  /**
   * The same for a request whose OK carries nothing the caller needs (WRITE): resolves with
   * undefined. Resolving a promise with a Buffer makes V8 look for a `then` along the Buffer's
   * prototype chain, a cost on every acknowledged write; undefined has none.
   */
  requestNoBody(op: number, flags: number, parts: Uint8Array[], timeoutMs = this.settings.timeoutMs): Promise<void> {
    return this.issue(op, flags, parts, timeoutMs, false) as Promise<void>;
  }

  private issue(op: number, flags: number, parts: Uint8Array[], timeoutMs: number, wantsBody: boolean): Promise<Buffer | undefined> {
    if (this.closedError) return Promise.reject(this.closedError);
    if (this.inFlight.size + this.queue.length >= this.settings.maxInFlight + this.settings.maxQueued) {
      return Promise.reject(new PmuError('EBUSY', `${this.inFlight.size + this.queue.length} requests already pending on ${this.endpoint.url}; wait for some to finish`));
    }
    let bodyLength = 0;
    for (const part of parts) bodyLength += part.length;
    if (bodyLength > this.settings.maxBodyBytes) {
      return Promise.reject(new PmuError('EFRAMETOOBIG', `${OP_NAMES[op]} of ${bodyLength} bytes exceeds the frame limit of ${this.settings.maxBodyBytes}`));
    }
    return new Promise<Buffer | undefined>((resolve, reject) => {
      // The id is given when it goes on the wire (transmit): only requests in flight hold one.
      const pending: Pending = { id: NO_REQUEST, op, flags, parts, bodyLength, resolve, reject, wantsBody, deadline: performance.now() + timeoutMs, timeoutMs };
      this.armSweeper();
      if (this.inFlight.size < this.settings.maxInFlight && this.queue.length === 0 && !this.socket.writableNeedDrain) this.transmit(pending);
      else this.queue.push(pending);
    });
  }

  /** Closes the connection; requests still pending fail with ECONNECTION. */
  close(): Promise<void> {
    if (this.socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.end();
      // A server that does not answer our FIN must not hold close() up.
      setTimeout(() => this.socket.destroy(), 1000).unref();
    });
  }

  /** Drops the connection at once (tests use it to simulate a network failure). */
  destroy(): void {
    this.socket.destroy();
  }

  private async authenticate(): Promise<ClientConnection> {
    const { user, secret, timeoutMs } = this.settings;
    const clientNonce = randomNonce();
    try {
      return await new Promise<ClientConnection>((resolve, reject) => {
        const timer = setTimeout(() => reject(new PmuError('ETIMEDOUT', `no authenticated session with ${this.endpoint.url} within ${timeoutMs} ms`)), timeoutMs);
        const fail = (error: PmuError) => {
          clearTimeout(timer);
          reject(error);
        };
        this.failHandshake = fail;
        this.handshake = (header, body) => {
          if (header.op !== Op.HELLO || body.length < HELLO_BYTES || body.length > HELLO_BYTES + IDENTITY_MAX_BYTES) return fail(new PmuError('EPROTO', `${this.endpoint.url} did not greet with a pmu HELLO`));
          const version = body.readUInt16LE(0);
          if (version !== PROTOCOL_VERSION) return fail(new PmuError('EPROTO', `${this.endpoint.url} speaks protocol version ${version}; this client speaks ${PROTOCOL_VERSION}`));
          const helloFlags = body.readUInt16LE(2);
          const idleTimeoutMs = body.readUInt32LE(4);
          const serverNonce = Buffer.from(body.subarray(8, HELLO_BYTES));
          const identity = body.subarray(HELLO_BYTES).toString('latin1');
          this.handshake = undefined;
          // Checked before anything is sent: a server that is not the one we meant gets no proof.
          if (this.settings.identity !== undefined && identity !== this.settings.identity) {
            const hint = identity === '' ? ` (a PMU started without --id announces none: run it with pmu serve --id ${this.settings.identity})` : '';
            return fail(new PmuError('EAUTH', `${this.endpoint.url} says it is ${JSON.stringify(identity)}, not the PMU ${JSON.stringify(this.settings.identity)} this client was sent to${hint}: the set's directory may name the wrong address (pmu cluster status shows it), or something relays this address`));
          }
          const tlsSocket = this.socket instanceof tls.TLSSocket ? this.socket : undefined;
          const seal = this.settings.seal && !tlsSocket;
          if (seal && !(helloFlags & HELLO_CAN_SEAL)) return fail(new PmuError('EPROTO', `${this.endpoint.url} cannot seal sessions, and this client requires it`));
          const transcript: Transcript = { version: PROTOCOL_VERSION, authFlags: seal ? AUTH_SEAL : 0, serverNonce, clientNonce, user, identity, channelBinding: channelBinding(tlsSocket) };
          const clientProof = proof('client', secret, transcript);
          let verified = false;
          this.authReply = (reply) => {
            // Runs as the OK is read, before the frames behind it in the same chunk: those are sealed.
            const expected = proof('server', secret, transcript);
            if (reply.length !== PROOF_BYTES + 1 || !proofsMatch(expected, reply.subarray(0, PROOF_BYTES))) return false;
            verified = true;
            if (seal) {
              const keys = sessionKeys(secret, transcript);
              this.writer.seal = new FrameSeal(keys.clientToServer);
              this.reader.setSeal(new FrameSeal(keys.serverToClient));
            }
            return true;
          };
          this.request(Op.AUTH, transcript.authFlags, [clientNonce, clientProof, Buffer.from(user, 'utf8')], timeoutMs).then((reply) => {
            this.authReply = undefined;
            if (!verified) {
              return fail(new PmuError('EAUTH', `${this.endpoint.url} could not prove it knows user '${user}''s secret: not the server you meant to reach`));
            }
            clearTimeout(timer);
            this.admin = reply[PROOF_BYTES] === 1;
            this.sealed = seal;
            this.reader.setMaxBodyBytes(this.settings.maxBodyBytes);
            this.startKeepAlive(idleTimeoutMs);
            resolve(this);
          }, fail);
        };
      });
    } catch (error) {
      this.socket.destroy();
      throw error;
    } finally {
      this.failHandshake = undefined;
    }
  }

  /** The server closes idle connections; a ping at half its idle timeout keeps a quiet client connected. */
  private startKeepAlive(idleTimeoutMs: number): void {
    if (idleTimeoutMs === 0) return;
    this.keepAlive = setInterval(() => {
      this.request(Op.PING, 0, []).catch(() => undefined);
    }, Math.max(10, Math.floor(idleTimeoutMs / 2)));
    this.keepAlive.unref();
  }

  /** `body` may be a view of the reused read buffer (`owned` false): whatever outlives this call is copied. */
  private onFrame(header: FrameHeader, body: Buffer, owned: boolean): void {
    if (this.handshake) {
      this.handshake(header, body);
      return;
    }
    if (header.op === Op.EVENT) {
      if (body.length >= 5) this.onEvent({ subscriptionId: body.readUInt32LE(0), reason: body[4], user: body.subarray(5).toString('utf8') });
      return;
    }
    if (header.requestId === NO_REQUEST && header.op === Op.ERROR) {
      // The server refuses the whole connection (timeout, protocol error) and is closing it.
      this.shutDown(decodeError(body, this.endpoint.url));
      return;
    }
    if (this.authReply && header.op === Op.OK && !this.authReply(body)) {
      this.abort('EAUTH', `${this.endpoint.url} could not prove it knows user '${this.settings.user}''s secret: not the server you meant to reach`);
      return;
    }
    const pending = this.inFlight.take(header.requestId);
    if (!pending) return; // its deadline passed; the late reply is dropped
    if (header.op === Op.OK) pending.resolve(pending.wantsBody ? (owned ? body : Buffer.from(body)) : undefined);
    else if (header.op === Op.ERROR) pending.reject(decodeError(body, this.endpoint.url));
    else pending.reject(new PmuError('EPROTO', `${this.endpoint.url} answered ${OP_NAMES[pending.op]} with ${OP_NAMES[header.op] ?? `opcode 0x${header.op.toString(16)}`}`));
    this.pump();
  }

  private transmit(pending: Pending): void {
    pending.id = this.inFlight.takeId();
    this.inFlight.add(pending);
    this.writer.write(pending.op, pending.flags, pending.id, pending.parts);
    // The caller's buffers are the socket's now; the request no longer holds them.
    pending.parts = NO_PARTS;
  }

  private pump(): void {
    while (this.queue.length > 0 && this.inFlight.size < this.settings.maxInFlight && !this.socket.writableNeedDrain && !this.closedError) {
      this.transmit(this.queue.shift()!);
    }
  }

  /**
   * Deadlines are enforced by one sweep per connection rather than a timer per request (a
   * timer per request costs more than the rest of the client's work for a small write). A
   * request fails within its timeout plus one sweep period.
   */
  private armSweeper(): void {
    if (this.sweeper) return;
    const period = Math.max(5, Math.min(250, Math.floor(this.settings.timeoutMs / 10)));
    this.sweeper = setInterval(() => this.sweep(), period);
    this.sweeper.unref();
  }

  private sweep(): void {
    if (this.inFlight.size === 0 && this.queue.length === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
      return;
    }
    const now = performance.now();
    for (const pending of this.inFlight.values()) if (pending.deadline <= now) this.expire(pending);
    for (const pending of [...this.queue]) if (pending.deadline <= now) this.expire(pending);
  }

  private expire(pending: Pending): void {
    const queued = this.queue.indexOf(pending);
    if (queued >= 0) this.queue.splice(queued, 1);
    else if (this.inFlight.take(pending.id) === undefined) return;
    pending.reject(new PmuError('ETIMEDOUT', `${OP_NAMES[pending.op]} to ${this.endpoint.url} got no reply within ${pending.timeoutMs} ms`));
  }

  private abort(code: PmuErrorCode, message: string): void {
    this.shutDown(new PmuError(code, message));
    this.socket.destroy();
  }

  private shutDown(error: PmuError): void {
    if (this.closedError) return;
    this.closedError = error;
    clearInterval(this.keepAlive);
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    this.reader.stop();
    this.socket.destroy();
    this.failHandshake?.(error);
    const failed = [...this.inFlight.values(), ...this.queue];
    this.inFlight.clear();
    this.queue.length = 0;
    for (const pending of failed) {
      // Whatever ended the connection, the request's fate is unknown to us: ECONNECTION, with the cause attached.
      pending.reject(new PmuError('ECONNECTION', `${OP_NAMES[pending.op]} not acknowledged: ${error.message}`, { cause: error }));
    }
    this.onClosed(this, error);
  }
}
