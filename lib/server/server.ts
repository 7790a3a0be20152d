/**
 * PmuServer: serves one PersistentMemoryUnit over TCP (optionally TLS) and a Unix socket.
 * It owns the listeners, the set of connections, admission (limits.ts, admission.ts), the
 * watchWriters subscriptions, the users and the counters; each connection
 * (connection.ts) does its own protocol work.
 *
 * Revocation: when grants or regions change through this server, or the users file changes
 * (noticed by a watch on it, by reloadUsers() — `pmu serve` calls it on SIGHUP — and checked
 * again at every login), every live connection re-checks what it holds before the next
 * request is read: a removed user is disconnected, a revoked binding is dropped.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { EventLog, rateLimited, silentLog } from '../obs/log';
import { PmuError } from '../unit/errors';
import { NativeEntry } from '../unit/native';
import { PersistentMemoryUnit } from '../unit/unit';
import { checkInteger } from '../unit/validate';
import { Admission } from './admission';
import { newSecret } from '../wire/auth';
import { maxBodyBytes, resolveLimits, ServerLimits } from './limits';
import { IDENTITY_MAX_BYTES, OP_NAMES } from '../wire/protocol';
import { ServerCounters, ServerStats } from '../obs/server-counters';
import { ServerConnection } from './connection';
import { SHARED_READ_BYTES } from '../wire/shared-read';
import { SpareBody } from '../wire/spare-body';
import { ConnectionHost } from './session';
import { SoleSender } from './sole-sender';
import { Subscriptions } from './subscriptions';
import { UserDirectory, UserRecord } from './users';

export const DEFAULT_PORT = 7420;
export const DEFAULT_HOST = '127.0.0.1';

export interface ServerOptions {
  unit: PersistentMemoryUnit;
  /** The users, or the path of a users file (reloaded when it changes, so `pmu user add` needs no restart). */
  users: UserDirectory | string;
  /** TCP listener; default 127.0.0.1:7420. `false` for none. Port 0 picks a free port. */
  tcp?: { host?: string; port?: number } | false;
  /** Unix socket path; none by default. A stale socket (nobody listening) is replaced; anything else there is refused. */
  socket?: string;
  /** Serve TLS instead of plain TCP on the TCP listener (the Unix socket stays plain). */
  tls?: tls.SecureContextOptions;
  /** Every bound on what clients can make the server hold; defaults in limits.ts and docs/PROTOCOL.md. */
  limits?: Partial<ServerLimits>;
  /** Shorthands for the limits of the same names (kept from earlier versions). */
  maxPayloadBytes?: number;
  handshakeTimeoutMs?: number;
  idleTimeoutMs?: number;
  maxInFlightPerConnection?: number;
  /** Where failed logins, refusals and limit hits go (lib/obs/log.ts); default: nowhere. */
  log?: EventLog;
  /** Log lines per second per kind of event (per limit for limit hits); the rest are counted as `suppressed`. Default 50. */
  logLinesPerSecond?: number;
  /**
   * How often the users file's stamp is checked besides the watch (which can miss a change, or
   * fire while the file is mid-write); a reload that failed is retried at the next check. Default 1000.
   */
  usersPollMs?: number;
  /**
   * The name this server announces in HELLO, covered by both proofs: its id in a PMU set, so
   * a client that dialled PMU 'p1' can tell it reached p1 (and not another PMU a forged
   * directory entry pointed it at). Printable ASCII, at most 64 bytes; default ''.
   */
  identity?: string;
  /**
   * Where a lone durable write's msync runs: 'auto' (default) on the event loop while no other
   * connection has sent a frame in the last 5 ms and the write is at most 64 KiB (no libuv
   * pool round trip: the way Redis fsyncs before it replies), else on the pool; 'pool' always
   * on the pool. See lib/unit/group-commit.ts.
   */
  loneFlush?: 'auto' | 'pool';
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

export class PmuServer {
  private readonly unit: PersistentMemoryUnit;
  private readonly users: UsersSource;
  private readonly options: ServerOptions;
  private readonly host: ConnectionHost;
  private readonly admission: Admission;
  private readonly log: EventLog;
  private readonly listeners: net.Server[] = [];
  private readonly connections = new Set<ServerConnection>();
  /** Every plain connection reads into this one buffer (shared-read.ts); TLS ones read with 'data'. */
  private readonly sharedReadBuffer = Buffer.allocUnsafeSlow(SHARED_READ_BYTES);
  /** Where large WRITE bodies arriving in pieces are assembled, one at a time (spare-body.ts). */
  private readonly spareBody = new SpareBody();
  private readonly counters = new ServerCounters();
  private closing: Promise<void> | undefined;
  private addresses: ServerAddresses | undefined;
  private sharedReadFallbackLogged = false;

  constructor(options: ServerOptions) {
    if (!(options?.unit instanceof PersistentMemoryUnit)) throw new PmuError('EINVAL', 'options.unit must be an open PersistentMemoryUnit');
    this.options = options;
    this.unit = options.unit;
    // A lone client's flush runs inline only while no other connection is talking (sole-sender.ts).
    const soleSender = new SoleSender();
    this.unit.loneFlush = checkServerLoneFlush(options.loneFlush ?? 'auto');
    this.unit.setOthersQuiet(() => soleSender.alone());
    // Hostile clients decide how often these events happen: the log is rate-limited per kind.
    this.log = rateLimited(options.log ?? silentLog, options.logLinesPerSecond ?? 50);
    const limits = resolveLimits({
      maxPayloadBytes: options.maxPayloadBytes,
      handshakeTimeoutMs: options.handshakeTimeoutMs,
      idleTimeoutMs: options.idleTimeoutMs,
      maxInFlightPerConnection: options.maxInFlightPerConnection,
      ...options.limits,
    });
    this.admission = new Admission(limits);
    this.users = new UsersSource(options.users, this.log, () => this.usersChanged(), () => this.counters.usersReloadFailures++, checkInteger('usersPollMs', options.usersPollMs ?? 1000, 1, 0x7fff_ffff));
    const self = this;
    const unitPath = this.unit.info().path;
    this.host = {
      unit: this.unit,
      limits,
      maxBodyBytes: maxBodyBytes(limits),
      log: this.log,
      admission: this.admission,
      subscriptions: new Subscriptions(limits),
      dummySecret: newSecret(),
      identity: checkIdentity(options.identity ?? ''),
      lookupUser: (name) => self.users.get(name),
      forClient: (message) => (message.includes(unitPath) ? message.split(unitPath).join("the server's PMU file") : message),
      countRequest: (op, bodyBytes, from) => {
        soleSender.note(from);
        self.counters.request(op, bodyBytes);
      },
      countRefusal: (code) => self.counters.refusal(code),
      limitHit: (limit, fields) => {
        self.counters.limitHit(limit);
        self.log.warn('limit.hit', { limit, ...fields });
      },
      accessChanged: () => self.revalidate(),
      connectionClosed: (connection) => {
        soleSender.forget(connection);
        self.connections.delete(connection as ServerConnection);
        self.admission.release(connection as ServerConnection);
        self.log.debug('connection.closed', { connection: connection.connectionId, peer: connection.peer });
      },
    };
  }

  /** Starts the listeners; resolves with their addresses as client URLs. */
  async listen(): Promise<ServerAddresses> {
    if (this.addresses) return this.addresses;
    if (this.closing) throw new PmuError('ECLOSED', 'the server is closed');
    const addresses: ServerAddresses = {};
    const tcp = this.options.tcp === undefined ? {} : this.options.tcp;
    if (this.options.socket) await checkSocketPath(this.options.socket, this.unit.info().path);
    if (tcp) {
      // TLS is layered here, not by a tls.Server, so that admission sees every socket from its
      // TCP connect: one still in its TLS handshake counts against maxPendingHandshakes and the
      // handshake deadline, and is evicted like a plain one.
      const secureContext = this.options.tls ? tls.createSecureContext(this.options.tls) : undefined;
      const server = secureContext
        ? net.createServer((socket) => this.acceptTls(socket, secureContext))
        : net.createServer({ pauseOnConnect: true }, (socket) => this.accept(socket));
      const host = tcp.host ?? DEFAULT_HOST;
      await listenOn(server, { host, port: tcp.port ?? DEFAULT_PORT }, `${host}:${tcp.port ?? DEFAULT_PORT}`);
      this.listeners.push(server);
      const bound = server.address() as net.AddressInfo;
      const shownHost = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
      addresses.tcp = `${this.options.tls ? 'tls' : 'tcp'}://${shownHost}:${bound.port}`;
    }
    if (this.options.socket) {
      const socketPath = this.options.socket;
      const server = net.createServer({ pauseOnConnect: true }, (socket) => this.accept(socket));
      // Created 0600 from the start: bind() runs inside listen(), synchronously, under this umask.
      // (A worker thread may not change the umask; there the chmod below is all there is.)
      let umask: number | undefined;
      try {
        umask = process.umask(0o177);
      } catch {
        umask = undefined;
      }
      let listening: Promise<void>;
      try {
        listening = listenOn(server, { path: socketPath }, socketPath);
      } finally {
        if (umask !== undefined) process.umask(umask);
      }
      await listening;
      fs.chmodSync(socketPath, 0o600);
      this.listeners.push(server);
      addresses.unix = `unix:${socketPath}`;
    }
    this.users.watch();
    this.addresses = addresses;
    return addresses;
  }

  stats(): ServerStats {
    return this.counters.snapshot(opName, { connectionsOpen: this.connections.size, bufferedBytes: this.admission.bufferedBytes });
  }

  /** The limits in force (defaults filled in). */
  get limits(): Readonly<ServerLimits> {
    return this.host.limits;
  }

  /**
   * Reads the users file again (`pmu serve` calls this on SIGHUP). A removed user's
   * connections are closed; a user who lost admin loses it on live connections too. Returns
   * whether anything changed. A file that cannot be read keeps the users already loaded, is
   * logged (`users.reload-failed`) and counted (stats().usersReloadFailures), and is tried again
   * at the next poll.
   */
  reloadUsers(): boolean {
    return this.users.reload();
  }

  /**
   * Every live connection re-checks its user and the regions it holds against the table as it
   * is now. Runs by itself after changes made through this server; call it after changing
   * grants or deleting regions on the served unit directly (unit.setGrants in this process).
   */
  revalidate(): void {
    const entries = new Map<number, NativeEntry | undefined>();
    const entryOf = (handle: number) => {
      if (!entries.has(handle)) entries.set(handle, this.unit.isClosed ? undefined : this.unit.entryByHandle(handle));
      return entries.get(handle);
    };
    for (const connection of [...this.connections]) connection.revalidate((name) => this.users.get(name, false), entryOf);
  }

  /**
   * Graceful shutdown: stop accepting, stop reading, let requests in flight finish (up to
   * closeTimeoutMs), close every connection, then flush and close the unit.
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      this.users.unwatch();
      const stopped = this.listeners.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
      const timeout = this.options.closeTimeoutMs ?? 5000;
      await Promise.all([...this.connections].map((connection) => connection.drain(timeout)));
      for (const connection of this.connections) connection.destroy();
      // Connections reading into the shared buffer left the listener's count when accepted.
      await Promise.all([...stopped, ...[...this.connections].map((connection) => connection.untilClosed())]);
      if (this.options.closeUnit !== false && !this.unit.isClosed) await this.unit.close();
    })();
    return this.closing;
  }

  private acceptTls(raw: net.Socket, secureContext: tls.SecureContext): void {
    if (this.closing) {
      raw.destroy();
      return;
    }
    raw.on('error', () => raw.destroy());
    const socket = new tls.TLSSocket(raw, { isServer: true, secureContext });
    this.accept(socket, socket);
  }

  /** `tlsSocket`: the same socket, still in its TLS handshake; HELLO waits for it to finish. */
  private accept(socket: net.Socket, tlsSocket?: tls.TLSSocket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.counters.connectionsAccepted++;
    // A TLS socket reads with 'data' (its reads are decrypted, not the kernel's onread).
    const connection = new ServerConnection(this.host, socket, tlsSocket ? undefined : this.sharedReadBuffer, this.spareBody);
    if (tlsSocket) connection.startAfterTls(tlsSocket);
    else if (!connection.readsIntoSharedBuffer && !this.sharedReadFallbackLogged) {
      // net.Socket's private _handle is not what lib/wire/shared-read.ts expects on this Node:
      // every plain connection reads with 'data' instead (correct, a few µs slower). Said once.
      this.sharedReadFallbackLogged = true;
      this.log.warn('server.shared-read-off', { node: process.version, reason: "net.Socket's handle is not adoptable here; plain connections read with 'data' events" });
    }
    const refusal = this.admission.admit(connection);
    if (refusal) {
      this.host.limitHit('maxConnections', { connection: connection.connectionId, peer: connection.peer });
      connection.refuse('EBUSY', refusal);
      return;
    }
    this.connections.add(connection);
    this.log.debug('connection.opened', { connection: connection.connectionId, peer: connection.peer });
    if (!tlsSocket) connection.start();
  }

  private usersChanged(): void {
    this.counters.usersReloads++;
    this.revalidate();
  }
}

/**
 * The users: a fixed directory, or a users file reloaded when it changes. Changes are noticed
 * by a watch on the file's directory (the file is replaced by rename), by reload(), by a cheap
 * stat at each login and every `pollMs`; `onChange` runs after every reload that changed
 * something. A reload that fails keeps the stamp of the last good load, so every later check
 * tries again until one succeeds: a removal is never recorded as loaded when it was not.
 */
class UsersSource {
  private directory: UserDirectory;
  private readonly file: string | undefined;
  private loadedStamp = '';
  private loadedText = '';
  private watcher: fs.FSWatcher | undefined;
  private poller: NodeJS.Timeout | undefined;
  private reloadQueued = false;

  constructor(
    source: UserDirectory | string,
    private readonly log: EventLog,
    private readonly onChange: () => void,
    private readonly onFailure: () => void,
    private readonly pollMs: number,
  ) {
    if (typeof source === 'string') {
      this.file = path.resolve(source);
      this.loadedStamp = this.stamp();
      this.directory = UserDirectory.load(this.file);
      this.loadedText = JSON.stringify(this.directory.toJSON());
    } else if (source instanceof UserDirectory) {
      this.directory = source;
    } else {
      throw new PmuError('EINVAL', 'options.users must be a UserDirectory or the path of a users file');
    }
  }

  /** `check`: look at the file's stamp first (at a login); revalidation reads what is loaded. */
  get(name: string, check = true): UserRecord | undefined {
    if (check && this.file && this.stamp() !== this.loadedStamp) this.reload();
    return this.directory.get(name);
  }

  reload(): boolean {
    if (!this.file) return false;
    const stamp = this.stamp();
    let loaded: UserDirectory;
    try {
      loaded = UserDirectory.load(this.file);
    } catch (error) {
      // A half-edited or unreadable file (or EMFILE): keep serving with the users we had, say
      // so, and leave the stamp as it was, so that the next check tries again.
      this.log.warn('users.reload-failed', { file: this.file, error: (error as Error).message });
      this.onFailure();
      return false;
    }
    this.loadedStamp = stamp;
    const text = JSON.stringify(loaded.toJSON());
    if (text === this.loadedText) return false;
    this.directory = loaded;
    this.loadedText = text;
    this.log.info('users.reloaded', { file: this.file, users: loaded.size });
    this.onChange();
    return true;
  }

  watch(): void {
    if (!this.file || this.watcher) return;
    if (!this.poller) {
      this.poller = setInterval(() => {
        if (this.stamp() !== this.loadedStamp) this.reload();
      }, this.pollMs);
      this.poller.unref();
    }
    try {
      const base = path.basename(this.file);
      this.watcher = fs.watch(path.dirname(this.file), { persistent: false }, (_event, name) => {
        if (name !== null && name !== base) return;
        if (this.reloadQueued) return;
        this.reloadQueued = true;
        // One reload for the burst of events a save makes (write temp, rename).
        setImmediate(() => {
          this.reloadQueued = false;
          this.reload();
        });
      });
      // The poll carries on without the watch.
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch (error) {
      this.log.warn('users.watch_failed', { file: this.file, error: (error as Error).message });
    }
  }

  unwatch(): void {
    clearInterval(this.poller);
    this.poller = undefined;
    this.watcher?.close();
    this.watcher = undefined;
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

/**
 * The socket path must be free, or a socket nobody listens on (left by a crashed server), which
 * is replaced. Anything else there — a file, the unit itself, a directory — is refused: the
 * server never deletes what it did not make.
 */
async function checkSocketPath(socketPath: string, unitFile: string): Promise<void> {
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(socketPath);
  } catch {
    return;
  }
  if (path.resolve(socketPath) === path.resolve(unitFile)) throw new PmuError('EINVAL', `the socket path ${socketPath} is the unit file itself; choose another socket path`);
  if (!stat.isSocket()) throw new PmuError('EEXIST', `${socketPath} exists and is not a socket (${describeKind(stat)}); refusing to replace it: choose another socket path or move it away`);
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

function describeKind(stat: fs.Stats): string {
  if (stat.isFile()) return `a regular file of ${stat.size} bytes`;
  if (stat.isDirectory()) return 'a directory';
  if (stat.isSymbolicLink()) return 'a symbolic link';
  return 'not a socket';
}

function opName(op: number): string {
  return OP_NAMES[op] ?? `0x${op.toString(16)}`;
}

function checkServerLoneFlush(mode: unknown): 'auto' | 'pool' {
  if (mode !== 'auto' && mode !== 'pool') throw new PmuError('EINVAL', `options.loneFlush must be 'auto' or 'pool', got ${String(mode)}`);
  return mode;
}

function checkIdentity(identity: unknown): string {
  if (typeof identity !== 'string' || identity.length > IDENTITY_MAX_BYTES || !/^[\x21-\x7e]*$/.test(identity)) {
    throw new PmuError('EINVAL', `identity must be printable ASCII without spaces, at most ${IDENTITY_MAX_BYTES} characters (a PMU id such as 'pmu1'), got ${JSON.stringify(String(identity)).slice(0, 80)}`);
  }
  return identity;
}
