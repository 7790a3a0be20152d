/**
 * PmuServer: serves one PersistentMemoryUnit over TCP (optionally TLS) and a Unix socket.
 * It owns the listeners, the set of connections, the refusal counters and the watchWriters
 * subscriptions; each connection (server-connection.ts) does its own protocol work.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { PmuError, PmuErrorCode } from '../unit/errors';
import { PersistentMemoryUnit } from '../unit/unit';
import { checkInteger } from '../unit/validate';
import { DEFAULT_MAX_PAYLOAD_BYTES, BODY_OVERHEAD_BYTES, OP_NAMES } from './protocol';
import { ConnectionHost, ServerConnection } from './server-connection';
import { UserDirectory, UserRecord } from './users';

export const DEFAULT_PORT = 7420;
export const DEFAULT_HOST = '127.0.0.1';

export interface ServerOptions {
  unit: PersistentMemoryUnit;
  /** The users, or the path of a users file (re-read when it changes, so `pmu user add` needs no restart). */
  users: UserDirectory | string;
  /** TCP listener; default 127.0.0.1:7420. `false` for none. Port 0 picks a free port. */
  tcp?: { host?: string; port?: number } | false;
  /** Unix socket path; none by default. A stale socket file (nobody listening) is replaced. */
  socket?: string;
  /** Serve TLS instead of plain TCP on the TCP listener (the Unix socket stays plain). */
  tls?: tls.SecureContextOptions;
  /** Largest WRITE payload / READ length; default 64 MiB. */
  maxPayloadBytes?: number;
  /** A connection must authenticate this soon after connecting; default 5 s. */
  handshakeTimeoutMs?: number;
  /** A connection with no traffic either way for this long is closed; default 5 min, 0 = never. */
  idleTimeoutMs?: number;
  /** Requests in flight per connection before the server stops reading it; default 1024. */
  maxInFlightPerConnection?: number;
  /** close() waits this long for requests in flight; default 5 s. */
  closeTimeoutMs?: number;
  /** close() also closes the unit (flushes and unmaps); default true. */
  closeUnit?: boolean;
}

export interface ServerAddresses {
  /** tcp://host:port or tls://host:port */
  tcp?: string;
  /** unix:/path */
  unix?: string;
}

export interface ServerStats {
  connectionsAccepted: number;
  connectionsOpen: number;
  requests: number;
  /** Requests and request-body bytes received, per operation name (WRITE, READ, OPEN, ...). */
  requestsByOp: Record<string, number>;
  requestBytesByOp: Record<string, number>;
  /** Error replies sent, per code: every refusal (EAUTH, EKEY, EACCESS, ENOENT, ...) is counted here. */
  refusals: Partial<Record<PmuErrorCode, number>>;
}

export class PmuServer {
  private readonly unit: PersistentMemoryUnit;
  private readonly users: UsersSource;
  private readonly options: ServerOptions;
  private readonly host: ConnectionHost;
  private readonly listeners: net.Server[] = [];
  private readonly connections = new Set<ServerConnection>();
  /** handle -> subscription id -> subscribed connection */
  private readonly watchers = new Map<number, Map<number, ServerConnection>>();
  private readonly subscriptionsByConnection = new Map<ServerConnection, Map<number, number>>();
  private nextSubscription = 1;
  private readonly counters = { connectionsAccepted: 0, connectionsOpen: 0, requests: 0, refusals: {} as ServerStats['refusals'] };
  /** Indexed by opcode (one byte on the wire): a plain increment per request. */
  private readonly requestsByOp = new Array<number>(256).fill(0);
  private readonly requestBytesByOp = new Array<number>(256).fill(0);
  private closing: Promise<void> | undefined;
  private addresses: ServerAddresses | undefined;

  constructor(options: ServerOptions) {
    if (!(options?.unit instanceof PersistentMemoryUnit)) throw new PmuError('EINVAL', 'options.unit must be an open PersistentMemoryUnit');
    this.options = options;
    this.unit = options.unit;
    this.users = new UsersSource(options.users);
    const maxPayload = checkInteger('maxPayloadBytes', options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES, 1, 0xffff_ffff - BODY_OVERHEAD_BYTES);
    const self = this;
    this.host = {
      unit: this.unit,
      maxBodyBytes: maxPayload + BODY_OVERHEAD_BYTES,
      handshakeTimeoutMs: checkInteger('handshakeTimeoutMs', options.handshakeTimeoutMs ?? 5000, 1),
      idleTimeoutMs: checkInteger('idleTimeoutMs', options.idleTimeoutMs ?? 300_000, 0),
      maxInFlight: checkInteger('maxInFlightPerConnection', options.maxInFlightPerConnection ?? 1024, 1),
      lookupUser: (name) => self.users.get(name),
      countRequest: (op, bodyBytes) => {
        self.counters.requests++;
        self.requestsByOp[op & 0xff]++;
        self.requestBytesByOp[op & 0xff] += bodyBytes;
      },
      countRefusal: (code) => {
        self.counters.refusals[code] = (self.counters.refusals[code] ?? 0) + 1;
      },
      subscribe: (connection, handle) => self.subscribe(connection, handle),
      unsubscribe: (connection, id) => self.unsubscribe(connection, id),
      writerGone: (connection, handle, reason) => self.writerGone(connection, handle, reason),
      connectionClosed: (connection) => self.connectionClosed(connection),
    };
  }

  /** Starts the listeners; resolves with their addresses as client URLs. */
  async listen(): Promise<ServerAddresses> {
    if (this.addresses) return this.addresses;
    if (this.closing) throw new PmuError('ECLOSED', 'the server is closed');
    const addresses: ServerAddresses = {};
    const tcp = this.options.tcp === undefined ? {} : this.options.tcp;
    if (tcp) {
      const server = this.options.tls ? tls.createServer(this.options.tls, (socket) => this.accept(socket)) : net.createServer((socket) => this.accept(socket));
      const host = tcp.host ?? DEFAULT_HOST;
      await listenOn(server, { host, port: tcp.port ?? DEFAULT_PORT }, `${host}:${tcp.port ?? DEFAULT_PORT}`);
      this.listeners.push(server);
      const bound = server.address() as net.AddressInfo;
      const shownHost = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
      addresses.tcp = `${this.options.tls ? 'tls' : 'tcp'}://${shownHost}:${bound.port}`;
    }
    if (this.options.socket) {
      const socketPath = this.options.socket;
      await removeStaleSocket(socketPath);
      const server = net.createServer((socket) => this.accept(socket));
      await listenOn(server, { path: socketPath }, socketPath);
      fs.chmodSync(socketPath, 0o600);
      this.listeners.push(server);
      addresses.unix = `unix:${socketPath}`;
    }
    this.addresses = addresses;
    return addresses;
  }

  stats(): ServerStats {
    const requestsByOp: Record<string, number> = {};
    const requestBytesByOp: Record<string, number> = {};
    this.requestsByOp.forEach((count, op) => {
      if (count === 0) return;
      const name = OP_NAMES[op] ?? `0x${op.toString(16)}`;
      requestsByOp[name] = count;
      requestBytesByOp[name] = this.requestBytesByOp[op];
    });
    return { ...this.counters, connectionsOpen: this.connections.size, refusals: { ...this.counters.refusals }, requestsByOp, requestBytesByOp };
  }

  /**
   * Graceful shutdown: stop accepting, stop reading, let requests in flight finish (up to
   * closeTimeoutMs), close every connection, then flush and close the unit.
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      const stopped = this.listeners.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
      const timeout = this.options.closeTimeoutMs ?? 5000;
      await Promise.all([...this.connections].map((connection) => connection.drain(timeout)));
      for (const connection of this.connections) connection.destroy();
      await Promise.all(stopped);
      if (this.options.closeUnit !== false && !this.unit.isClosed) await this.unit.close();
    })();
    return this.closing;
  }

  private accept(socket: net.Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.counters.connectionsAccepted++;
    this.connections.add(new ServerConnection(this.host, socket));
  }

  private connectionClosed(connection: ServerConnection): void {
    this.connections.delete(connection);
    const subscriptions = this.subscriptionsByConnection.get(connection);
    if (subscriptions) for (const id of [...subscriptions.keys()]) this.unsubscribe(connection, id);
  }

  private subscribe(connection: ServerConnection, handle: number): number {
    const id = this.nextSubscription++;
    let forHandle = this.watchers.get(handle);
    if (!forHandle) this.watchers.set(handle, (forHandle = new Map()));
    forHandle.set(id, connection);
    let mine = this.subscriptionsByConnection.get(connection);
    if (!mine) this.subscriptionsByConnection.set(connection, (mine = new Map()));
    mine.set(id, handle);
    return id;
  }

  private unsubscribe(connection: ServerConnection, id: number): boolean {
    const mine = this.subscriptionsByConnection.get(connection);
    const handle = mine?.get(id);
    if (handle === undefined || !mine) return false;
    mine.delete(id);
    if (mine.size === 0) this.subscriptionsByConnection.delete(connection);
    const forHandle = this.watchers.get(handle);
    forHandle?.delete(id);
    if (forHandle && forHandle.size === 0) this.watchers.delete(handle);
    return true;
  }

  /** A connection holding `handle` open read-write closed it or went away: tell the other subscribers. */
  private writerGone(connection: ServerConnection, handle: number, reason: number): void {
    const forHandle = this.watchers.get(handle);
    if (!forHandle) return;
    for (const [id, subscriber] of forHandle) {
      if (subscriber !== connection && !subscriber.isClosed) subscriber.pushWriterEvent(id, reason, connection.user ?? '');
    }
  }
}

/** A fixed user directory, or a users file re-read whenever its modification time changes. */
class UsersSource {
  private directory: UserDirectory;
  private readonly file: string | undefined;
  private loadedStamp = '';

  constructor(source: UserDirectory | string) {
    if (typeof source === 'string') {
      this.file = source;
      this.directory = UserDirectory.load(source);
      this.loadedStamp = this.stamp();
    } else if (source instanceof UserDirectory) {
      this.directory = source;
    } else {
      throw new PmuError('EINVAL', 'options.users must be a UserDirectory or the path of a users file');
    }
  }

  get(name: string): UserRecord | undefined {
    if (this.file) {
      const stamp = this.stamp();
      if (stamp !== this.loadedStamp) {
        try {
          this.directory = UserDirectory.load(this.file);
          this.loadedStamp = stamp;
        } catch {
          // A half-edited or unreadable file: keep serving with the users we had.
        }
      }
    }
    return this.directory.get(name);
  }

  private stamp(): string {
    try {
      const stat = fs.statSync(this.file!);
      return `${stat.mtimeMs}:${stat.size}:${stat.ino}`;
    } catch {
      return '';
    }
  }
}

function listenOn(server: net.Server, options: net.ListenOptions, where: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => reject(new PmuError('ECONNECTION', `listen on ${where} failed: ${error.code ?? ''} ${error.message}`.trim(), { cause: error }));
    server.once('error', onError);
    server.listen(options, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** Unlinks a socket file nobody listens on (left by a crashed server); refuses to steal a live one. */
async function removeStaleSocket(socketPath: string): Promise<void> {
  if (!fs.existsSync(socketPath)) return;
  const alive = await new Promise<boolean>((resolve) => {
    const probe = net.connect({ path: socketPath });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (alive) throw new PmuError('EBUSY', `another server is listening on ${socketPath}`);
  fs.unlinkSync(socketPath);
}
