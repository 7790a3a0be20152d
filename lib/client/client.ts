/**
 * PmuClient: a connection to a PMU server that reconnects on demand. When the connection
 * drops, requests in flight fail with ECONNECTION (never hang); the next request reconnects,
 * authenticates again and re-opens the client's regions. While any region has watchWriters
 * subscriptions the client also reconnects by itself (with back-off), so a watcher that sends
 * nothing keeps hearing events.
 */
import * as tls from 'node:tls';
import { PmuError } from '../unit/errors';
import { Grant, RegionInfo } from '../unit/unit';
import { Rights } from '../unit/region';
import { checkInteger, checkName, checkNewName } from '../unit/validate';
import { ClientConnection, ConnectionSettings, WriterEvent as WireEvent } from './connection';
import { BODY_OVERHEAD_BYTES, DEFAULT_MAX_PAYLOAD_BYTES, Op } from '../wire/protocol';
import { RegionHost, RemoteRegion, Watch } from './remote-region';
import { Endpoint, parseUrl } from './url';

export interface ClientOptions {
  /** Required: the user to log in as, and its secret (the library reads no environment; the CLI passes PMU_USER and PMU_SECRET). */
  user?: string;
  secret?: string;
  /** Deadline of every request and of connecting; default 10 s. */
  timeoutMs?: number;
  /** Requests on the wire at once; default 256. */
  maxInFlight?: number;
  /** Requests waiting behind those; default 4096 (more fail at once with EBUSY). */
  maxQueued?: number;
  /** Largest write per request / read piece; default 64 MiB (the server's default limit). */
  maxPayloadBytes?: number;
  /** For tls:// URLs: e.g. { ca: certificate } to trust a self-signed server. */
  tls?: tls.ConnectionOptions;
  /**
   * Seal the session: every frame after the handshake carries an HMAC tag keyed from the
   * handshake, so nothing between client and server can alter or inject a frame (it can still
   * read them: use tls:// for secrecy). 'auto' (default): seal plain TCP to a host other than
   * loopback. TLS sessions are bound to the handshake by channel binding instead, so this is
   * ignored for tls://. Costs 2–5 µs per small frame each way (docs/PROTOCOL.md).
   */
  seal?: boolean | 'auto';
  /** The identity the server must announce (a PMU's id in a set): anything else is EAUTH before any proof is sent. */
  identity?: string;
}

/** Loopback needs no seal by default: a relay there already runs on this host. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export interface RemoteRegionInfo extends RegionInfo {
  /** What the connected user may do with the region. */
  rights: Rights;
}

export class PmuClient {
  readonly url: string;
  private readonly endpoint: Endpoint;
  private readonly settings: ConnectionSettings;
  private current: ClientConnection | undefined;
  private connecting: Promise<ClientConnection> | undefined;
  private readonly regions = new Set<RemoteRegion>();
  private readonly routes = new Map<ClientConnection, Map<number, Watch>>();
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectDelayMs = 50;
  private readonly host: RegionHost;

  private constructor(url: string, options: ClientOptions) {
    this.url = url;
    this.endpoint = parseUrl(url);
    const { user, secret } = options;
    if (!user || !secret) throw new PmuError('EAUTH', 'no credentials: pass { user, secret } (the CLI reads them from PMU_USER and PMU_SECRET)');
    const maxPayload = checkInteger('maxPayloadBytes', options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES, 1);
    this.settings = {
      user,
      secret,
      timeoutMs: checkInteger('timeoutMs', options.timeoutMs ?? 10_000, 1),
      maxInFlight: checkInteger('maxInFlight', options.maxInFlight ?? 256, 1),
      maxQueued: checkInteger('maxQueued', options.maxQueued ?? 4096, 0),
      maxBodyBytes: maxPayload + BODY_OVERHEAD_BYTES,
      tls: options.tls,
      seal: resolveSeal(options.seal ?? 'auto', this.endpoint),
      identity: options.identity,
    };
    const self = this;
    this.host = {
      maxPayloadBytes: maxPayload,
      connection: () => self.connection(),
      current: () => (!self.closed && self.current?.alive ? self.current : undefined),
      routeEvents: (connection, id, watch) => self.route(connection, id, watch),
      forget: (region) => {
        self.regions.delete(region);
      },
    };
  }

  /** Connects and authenticates; fails with ECONNECTION, ETIMEDOUT or EAUTH. */
  static async connect(url: string, options: ClientOptions = {}): Promise<PmuClient> {
    const client = new PmuClient(url, options);
    await client.connection();
    return client;
  }

  get user(): string {
    return this.settings.user;
  }

  /** True when the server says this user is an admin (may create, delete and grant). */
  get isAdmin(): boolean {
    return this.current?.admin ?? false;
  }

  /** Whether the current session's frames carry seal tags (the `seal` option; never on TLS, which is channel-bound instead). */
  get sealed(): boolean {
    return this.current?.sealed ?? false;
  }

  get connected(): boolean {
    return this.current?.alive ?? false;
  }

  async openRegion(name: string, options: { rights?: Rights } = {}): Promise<RemoteRegion> {
    checkName('region name', name, 63);
    if (options.rights !== undefined && options.rights !== 'r' && options.rights !== 'rw') throw new PmuError('EINVAL', `rights must be 'r' or 'rw', got ${String(options.rights)}`);
    const connection = await this.connection();
    const binding = await RemoteRegion.bind(connection, name, options.rights);
    const region = new RemoteRegion(this.host, name, options.rights, binding);
    this.regions.add(region);
    return region;
  }

  /** Creates a region (admin only; `owner` defaults to the creating user) and opens it. */
  async createRegion(name: string, size: number, options: { owner?: string; grants?: Grant[] } = {}): Promise<RemoteRegion> {
    checkNewName('region name', name, 63);
    checkInteger('size', size, 1);
    await this.control(Op.CREATE, JSON.stringify({ name, size, owner: options.owner, grants: options.grants }));
    return this.openRegion(name);
  }

  async deleteRegion(name: string): Promise<void> {
    checkName('region name', name, 63);
    await this.control(Op.DELETE, name);
  }

  /** Regions this user may access (an admin sees all), with the user's rights on each. */
  async listRegions(): Promise<RemoteRegionInfo[]> {
    return JSON.parse((await this.control(Op.LIST, '')).toString('utf8'));
  }

  /** Replaces a region's grants (admin only). */
  async setGrants(name: string, grants: Grant[]): Promise<RemoteRegionInfo> {
    checkName('region name', name, 63);
    if (!Array.isArray(grants)) throw new PmuError('EINVAL', 'grants must be an array of { user, rights }');
    return JSON.parse((await this.control(Op.SET_GRANTS, JSON.stringify({ name, grants }))).toString('utf8'));
  }

  /** A round trip that does nothing: for health checks and latency measurement. */
  async ping(): Promise<void> {
    await (await this.connection()).request(Op.PING, 0, []);
  }

  /** Closes the connection; later calls fail with ECLOSED. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    const connection = this.current;
    this.current = undefined;
    this.regions.clear();
    this.routes.clear();
    await connection?.close();
  }

  /** @internal Drops the connection abruptly, as a network failure would (for tests). */
  dropConnection(): void {
    this.current?.destroy();
  }

  private async control(op: number, body: string): Promise<Buffer> {
    const connection = await this.connection();
    return connection.request(op, 0, [Buffer.from(body, 'utf8')]);
  }

  private connection(): Promise<ClientConnection> {
    if (this.closed) return Promise.reject(new PmuError('ECLOSED', `client for ${this.url} is closed; connect again`));
    if (this.current?.alive) return Promise.resolve(this.current);
    if (!this.connecting) {
      this.connecting = this.reconnect().finally(() => {
        this.connecting = undefined;
      });
    }
    return this.connecting;
  }

  private async reconnect(): Promise<ClientConnection> {
    const connection = await ClientConnection.open(
      this.endpoint,
      this.settings,
      (event) => this.onEvent(connection, event),
      (closed) => this.onClosed(closed),
    );
    if (this.closed) {
      await connection.close();
      throw new PmuError('ECLOSED', `client for ${this.url} was closed while connecting`);
    }
    this.current = connection;
    this.reconnectDelayMs = 50;
    // Re-open every region on the new connection; one that is gone keeps failing on its own requests.
    await Promise.all([...this.regions].map((region) => region.rebind(connection).catch(() => undefined)));
    return connection;
  }

  private onEvent(connection: ClientConnection, event: WireEvent): void {
    const watch = this.routes.get(connection)?.get(event.subscriptionId);
    if (watch) RemoteRegion.deliver(watch, event.reason, event.user);
  }

  private onClosed(connection: ClientConnection): void {
    const watched = (this.routes.get(connection)?.size ?? 0) > 0;
    this.routes.delete(connection);
    if (this.current === connection) this.current = undefined;
    if (!this.closed && watched) this.scheduleReconnect();
  }

  private route(connection: ClientConnection, id: number, watch: Watch | undefined): void {
    let routes = this.routes.get(connection);
    if (watch) {
      if (!routes) this.routes.set(connection, (routes = new Map()));
      routes.set(id, watch);
    } else {
      routes?.delete(id);
    }
  }

  private scheduleReconnect(): void {
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      this.connection().catch(() => {
        // Server still away: try again later, backing off to one attempt every 5 s.
        this.reconnectDelayMs = Math.min(this.reconnectDelayMs * 2, 5000);
        if (!this.closed) this.scheduleReconnect();
      });
    }, this.reconnectDelayMs);
    this.reconnectTimer.unref();
  }
}

function resolveSeal(seal: unknown, endpoint: Endpoint): boolean {
  if (seal === 'auto') return endpoint.kind === 'tcp' && !endpoint.tls && !isLoopback(endpoint.host);
  if (typeof seal !== 'boolean') throw new PmuError('EINVAL', `seal must be true, false or 'auto', got ${JSON.stringify(seal)}`);
  return seal;
}
