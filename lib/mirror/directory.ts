/**
 * The PMU set's directory in etcd. Layout under the set's prefix (default /pmu/sets/default):
 *
 * ```
 * <prefix>/set                      {"copies":2,"created":"..."}          made by `pmu cluster init`
 * <prefix>/pmus/<id>                {"id","url","capacity"}               one per PMU
 * <prefix>/regions/<name>           {"name","size","replicas","inSync","syncing","epoch"}
 * <prefix>/clients/<name>/<client>  {"epoch":N}  (leased)  the config epoch a writer uses
 * <prefix>/progress/<name>/<pmu>    {"copied","total","at"} resync progress, for status
 * <prefix>/agents/<pmu>             {"joined","join","regions"}            what that PMU's agent says (agent-state.ts)
 * ```
 *
 * Every change of a region's configuration is a transaction that compares the stored value
 * (which holds the epoch) and writes the next one; a lost race returns undefined and the
 * caller re-reads. Every call has a deadline (timeoutMs), watch creation and lease grant
 * included: etcd out of reach is EETCD within the deadline, never a hang. etcd3's own retry
 * (3 attempts) and per-host circuit breaker are off: with one host they stretched a 1 s deadline
 * to ~3 s, and an open breaker kept failing for 5 s after etcd came back. Callers that want to
 * try again (the agent, serve --join) back off themselves (backoff.ts).
 *
 * An etcd with authentication or TLS is reached with `etcdAuth` and `etcdTls` (etcd-login.ts);
 * a refused login is EAUTH and a denied key EACCESS (etcd-errors.ts), which no retry fixes.
 */
import { noop } from 'cockatiel';
import { Etcd3, IKeyValue, Lease, Watcher } from 'etcd3';
import { randomBytes } from 'node:crypto';
import { PmuError } from '../unit/errors';
import { AgentState, parseAgentState } from './agent-state';
import { checkCopies, checkId, parseConfig, place, PmuEntry, RegionConfig, SetInfo } from './config';
import { etcdError } from './etcd-errors';
import { checkEtcdLogin, EtcdAuth, etcdClientLogin, EtcdTls } from './etcd-login';

export interface DirectoryOptions {
  /** Set name: several sets may share one etcd. Default 'default'. */
  set?: string;
  /** Deadline of each etcd call; default 2000 ms. */
  timeoutMs?: number;
  /** etcd's user and password, for an etcd with authentication on. */
  etcdAuth?: EtcdAuth;
  /** TLS to an https:// etcd: the CA that signed its certificate (default: the system's), and a client certificate and key. */
  etcdTls?: EtcdTls;
}

export interface Progress {
  copied: number;
  total: number;
  at: string;
}

/** A writer's registration: while it holds it, changes that add a replica wait for it. */
export interface ClientRegistration {
  readonly id: string;
  /** Local time until which the lease is surely alive on the etcd server (see lease rule in docs/MIRROR.md). */
  validUntil(): number;
  publish(epoch: number): Promise<void>;
  close(): Promise<void>;
}

export class MirrorDirectory {
  readonly prefix: string;
  readonly timeoutMs: number;
  private readonly client: Etcd3;
  /** Watches have a client of their own: one whose stream holds a dead auth token is replaced (watchClient). */
  private watchEtcd: { client: Etcd3; generation: number } | undefined;
  private readonly makeClient: () => Etcd3;
  private readonly user: string | undefined;
  private readonly tls: boolean;
  private closed = false;

  private constructor(readonly etcdUrl: string, hosts: string[], options: DirectoryOptions) {
    const set = checkId('set name', options.set ?? 'default');
    this.prefix = `/pmu/sets/${set}`;
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.user = options.etcdAuth?.username;
    this.tls = hosts[0].startsWith('https:');
    const login = { auth: options.etcdAuth, tls: options.etcdTls };
    this.makeClient = () =>
      new Etcd3({
        hosts,
        ...etcdClientLogin(login),
        dialTimeout: this.timeoutMs,
        defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + this.timeoutMs }),
        faultHandling: { host: () => noop, global: noop },
      });
    this.client = this.makeClient();
  }

  /** Makes no call yet: a URL or login that cannot work is EINVAL here, etcd's refusal comes with the first call. */
  static connect(etcdUrl: string, options: DirectoryOptions = {}): MirrorDirectory {
    const hosts = checkEtcdLogin(etcdUrl, { auth: options.etcdAuth, tls: options.etcdTls });
    return new MirrorDirectory(etcdUrl, hosts, options);
  }

  /**
   * Runs one etcd call under the deadline; a failure of etcd becomes EETCD, EAUTH or EACCESS with
   * what to do (etcd-errors.ts). The gRPC deadline covers unary calls; the timer here covers what has none (a stream
   * opening, a lease grant, the authenticator).
   */
  async call<T>(what: string, run: () => PromiseLike<T>): Promise<T> {
    if (this.closed) throw new PmuError('ECLOSED', 'the mirror directory was closed');
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    const running = Promise.resolve().then(run);
    running.catch(() => undefined); // a failure after the deadline is nobody's business
    try {
      return await Promise.race([running, deadline]);
    } catch (error) {
      throw etcdError(error, { url: this.etcdUrl, what, prefix: this.prefix, user: this.user, tls: this.tls });
    } finally {
      clearTimeout(timer);
    }
  }

  /** Waits for a clean-up call (a watch cancel, a lease revoke) at most timeoutMs: etcd away must not hang a close. */
  private async bounded(cleanup: Promise<unknown>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([cleanup.catch(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, this.timeoutMs)))]);
    clearTimeout(timer);
  }

  /** Creates the set; fails with EEXIST if it exists. */
  async init(copies = 2): Promise<SetInfo> {
    const info: SetInfo = { copies: checkCopies(copies), created: new Date().toISOString() };
    const key = `${this.prefix}/set`;
    const result = await this.call('init', () => this.client.if(key, 'Create', '==', 0).then(this.client.put(key).value(JSON.stringify(info))).commit());
    if (!result.succeeded) throw new PmuError('EEXIST', `the PMU set at ${this.prefix} in ${this.etcdUrl} already exists`);
    return info;
  }

  async setInfo(): Promise<SetInfo> {
    const text = await this.call('read set', () => this.client.get(`${this.prefix}/set`).string());
    if (text === null) throw new PmuError('ENOENT', `no PMU set at ${this.prefix} in ${this.etcdUrl}: run pmu cluster init --etcd ${this.etcdUrl}`);
    return JSON.parse(text) as SetInfo;
  }

  /** Adds a PMU, or updates its address and capacity if it is known (a restarted PMU re-joins). */
  async addPmu(entry: PmuEntry): Promise<void> {
    checkId('PMU id', entry.id);
    if (!Number.isSafeInteger(entry.capacity) || entry.capacity <= 0) throw new PmuError('EINVAL', `capacity must be a positive byte count, got ${entry.capacity}`);
    await this.setInfo();
    await this.call('add PMU', () => this.client.put(`${this.prefix}/pmus/${entry.id}`).value(JSON.stringify({ id: entry.id, url: entry.url, capacity: entry.capacity })));
  }

  /**
   * Removes a PMU from the set. Refused (EBUSY) while it is the only in-sync replica of a
   * region: add a PMU and let it resync first. It leaves every region's in-sync, syncing and
   * replica lists, and each region it held gets a replacement replica on the PMU with most room
   * (if one has room): that PMU's agent then resyncs it. Resolves with the replacements made.
   */
  async removePmu(id: string): Promise<Map<string, string>> {
    checkId('PMU id', id);
    const replacements = new Map<string, string>();
    for (const config of await this.regions()) {
      if (!config.replicas.includes(id)) continue;
      for (;;) {
        const current = await this.config(config.name);
        if (!current.replicas.includes(id)) break;
        const inSync = current.inSync.filter((pmu) => pmu !== id);
        if (inSync.length === 0) throw new PmuError('EBUSY', `PMU '${id}' holds the only in-sync copy of region '${current.name}': add a PMU and let it resync first`);
        const replicas = current.replicas.filter((pmu) => pmu !== id);
        let replacement: string | undefined;
        try {
          const others = (await this.pmus()).filter((pmu) => pmu.id !== id);
          [replacement] = place(others, await this.regions(), current.size, 1, current.replicas);
        } catch (error) {
          if (!(error instanceof PmuError) || error.code !== 'ENOSPC') throw error;
        }
        const next = { ...current, inSync, syncing: current.syncing.filter((pmu) => pmu !== id), replicas: replacement ? [...replicas, replacement] : replicas, epoch: current.epoch + 1 };
        if (await this.transition(current, next)) {
          if (replacement) replacements.set(current.name, replacement);
          break;
        }
      }
    }
    await this.call('remove PMU', () => this.client.delete().key(`${this.prefix}/pmus/${id}`));
    await this.call('remove agent state', () => this.client.delete().key(`${this.prefix}/agents/${id}`));
    return replacements;
  }

  async pmus(): Promise<PmuEntry[]> {
    const all = await this.call('list PMUs', () => this.client.getAll().prefix(`${this.prefix}/pmus/`).strings());
    return Object.values(all).map((text) => JSON.parse(text) as PmuEntry).sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  async pmu(id: string): Promise<PmuEntry> {
    const text = await this.call('read PMU', () => this.client.get(`${this.prefix}/pmus/${id}`).string());
    if (text === null) throw new PmuError('ENOENT', `no PMU '${id}' in the set at ${this.prefix}: add it with pmu cluster add`);
    return JSON.parse(text) as PmuEntry;
  }

  async regions(): Promise<RegionConfig[]> {
    const all = await this.call('list regions', () => this.client.getAll().prefix(`${this.prefix}/regions/`).strings());
    return Object.entries(all).map(([key, text]) => parseConfig(text, key)).sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  regionKey(name: string): string {
    return `${this.prefix}/regions/${name}`;
  }

  /** The region's configuration, read linearizably (the current value, not a cached one). */
  async config(name: string): Promise<RegionConfig> {
    const key = this.regionKey(name);
    const text = await this.call('read configuration', () => this.client.get(key).string());
    if (text === null) throw new PmuError('ENOENT', `no mirrored region '${name}' in the set at ${this.prefix}: create it with pmu cluster create`);
    return parseConfig(text, key);
  }

  /**
   * Places a new region (the PMUs with most room) and records it with every replica in sync:
   * the caller has created the (zeroed) region on each replica first (see createMirroredRegion).
   */
  async planRegion(name: string, size: number, copies?: number): Promise<RegionConfig> {
    const info = await this.setInfo();
    const pmus = await this.pmus();
    const replicas = place(pmus, await this.regions(), size, checkCopies(copies ?? info.copies));
    return { name, size, replicas, inSync: replicas, syncing: [], epoch: 1 };
  }

  /** Records a new region's configuration; EEXIST if the name is taken. */
  async recordRegion(config: RegionConfig): Promise<void> {
    const key = this.regionKey(config.name);
    const result = await this.call('record region', () => this.client.if(key, 'Create', '==', 0).then(this.client.put(key).value(JSON.stringify(config))).commit());
    if (!result.succeeded) throw new PmuError('EEXIST', `mirrored region '${config.name}' already exists in the set at ${this.prefix}`);
  }

  async forgetRegion(name: string): Promise<void> {
    await this.call('delete region', () => this.client.delete().key(this.regionKey(name)));
    await this.call('delete progress', () => this.client.delete().prefix(`${this.prefix}/progress/${name}/`));
  }

  /**
   * Moves the configuration from `from` to `to` iff etcd still holds exactly `from` (compare the
   * value, which holds the epoch, then write). Resolves with `to`, or undefined if it lost a race.
   */
  async transition(from: RegionConfig, to: RegionConfig): Promise<RegionConfig | undefined> {
    if (to.epoch !== from.epoch + 1) throw new PmuError('EINVAL', `a configuration change must move the epoch by one (${from.epoch} -> ${to.epoch})`);
    const key = this.regionKey(from.name);
    const result = await this.call('change configuration', () => this.client.if(key, 'Value', '==', JSON.stringify(from)).then(this.client.put(key).value(JSON.stringify(to))).commit());
    return result.succeeded ? to : undefined;
  }

  /**
   * Calls `listener` with every new value of the region's configuration. The first watch must
   * connect within the deadline (else EETCD). After that the watch keeps itself alive: when etcd
   * forgets the watch stream's auth token (a restart with auth on), etcd3 would retry the same
   * stream for ever, so the watch client is replaced, the watch made again (with backoff), and the
   * configuration read once so that a change made meanwhile is not missed.
   */
  async watch(name: string, listener: (config: RegionConfig) => void): Promise<() => Promise<void>> {
    const key = this.regionKey(name);
    let stopped = false;
    let reopening = false;
    let watcher: Watcher | undefined;
    const open = async (): Promise<Watcher> => {
      const { client, generation } = this.watchClient();
      // The watcher is made first (what create() does inside) so that one which does not connect
      // within the deadline can be cancelled: etcd3 would otherwise keep retrying it for ever.
      const made: Watcher = client.watch().key(key).watcher();
      try {
        await this.call('watch configuration', () => new Promise<void>((resolve, reject) => {
          made.once('connected', () => resolve());
          made.once('error', reject);
        }));
      } catch (error) {
        await this.bounded(made.cancel());
        throw error;
      }
      made.on('put', (kv: IKeyValue) => {
        try {
          listener(parseConfig(kv.value.toString(), key));
        } catch {
          // A damaged value is reported by the next linearizable read; a watch cannot refuse it.
        }
      });
      made.on('error', (error: Error) => {
        // Other errors: etcd3 reconnects by itself. One reopening at a time, for the current watcher only.
        if (stopped || reopening || made !== watcher || !isDeadToken(error)) return;
        reopening = true;
        this.renewWatchClient(generation);
        void this.bounded(made.cancel())
          .then(() => reopen())
          .finally(() => (reopening = false));
      });
      return made;
    };
    const reopen = async (): Promise<void> => {
      for (let delayMs = 100; !stopped && !this.closed; delayMs = Math.min(delayMs * 2, 2000)) {
        try {
          const again = await open();
          if (stopped) {
            await this.bounded(again.cancel());
            return;
          }
          watcher = again;
          const config = await this.config(name).catch(() => undefined);
          if (config && !stopped) listener(config);
          return;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, delayMs).unref());
        }
      }
    };
    watcher = await open();
    return async () => {
      stopped = true;
      if (watcher) await this.bounded(watcher.cancel());
    };
  }

  /** The client watches use, and its generation (so that many broken watches replace it once). */
  private watchClient(): { client: Etcd3; generation: number } {
    return (this.watchEtcd ??= { client: this.makeClient(), generation: 1 });
  }

  private renewWatchClient(generation: number): void {
    const current = this.watchEtcd;
    if (!current || current.generation !== generation || this.closed) return;
    this.watchEtcd = { client: this.makeClient(), generation: generation + 1 };
    // Its other watchers see the close as an error of their own and reopen on the new client.
    setTimeout(() => current.client.close(), this.timeoutMs).unref();
  }

  /**
   * Registers a writer of region `name` under a lease of `ttlSeconds`. Its key says which
   * configuration epoch it writes with; a change that adds a replica waits until every
   * registered writer has published that epoch or its lease expired (waitForWriters).
   */
  async registerClient(name: string, ttlSeconds = 3): Promise<ClientRegistration> {
    const id = randomBytes(8).toString('hex');
    const key = `${this.prefix}/clients/${name}/${id}`;
    const lease: Lease = this.client.lease(ttlSeconds, { autoKeepAlive: true });
    let firedAt = Date.now();
    let validUntil = 0;
    // The server expires the lease TTL after it last *received* a keepalive, which is after we
    // sent it: counting from the send time keeps our own deadline inside the server's.
    const marginMs = 200;
    lease.on('keepaliveFired', () => {
      firedAt = Date.now();
    });
    lease.on('keepaliveSucceeded', () => {
      validUntil = firedAt + ttlSeconds * 1000 - marginMs;
    });
    lease.on('lost', () => {
      validUntil = 0;
    });
    const grantStarted = Date.now();
    try {
      await this.call('grant lease', () => lease.grant());
    } catch (error) {
      // A grant that lands after the deadline is revoked; keepalives stop either way.
      lease.revoke().catch(() => undefined);
      throw error;
    }
    validUntil = grantStarted + ttlSeconds * 1000 - marginMs;
    const publish = async (epoch: number) => {
      await this.call('publish client epoch', () => lease.put(key).value(JSON.stringify({ epoch })));
    };
    // Registered (epoch 0) before the caller reads the configuration: a change made after this
    // put waits for us; one made before it is in the configuration we read next.
    await publish(0).catch((error: unknown) => {
      lease.revoke().catch(() => undefined);
      throw error;
    });
    return {
      id,
      validUntil: () => validUntil,
      publish,
      close: async () => {
        validUntil = 0;
        await this.bounded(lease.revoke());
      },
    };
  }

  /** Epochs published by the writers of region `name` that are still registered. */
  async clientEpochs(name: string): Promise<Map<string, number>> {
    const prefix = `${this.prefix}/clients/${name}/`;
    const all = await this.call('list clients', () => this.client.getAll().prefix(prefix).strings());
    return new Map(Object.entries(all).map(([key, text]) => [key.slice(prefix.length), (JSON.parse(text) as { epoch: number }).epoch]));
  }

  async setProgress(name: string, pmu: string, progress: Progress | undefined): Promise<void> {
    const key = `${this.prefix}/progress/${name}/${pmu}`;
    if (progress) await this.call('write progress', () => this.client.put(key).value(JSON.stringify(progress)));
    else await this.call('clear progress', () => this.client.delete().key(key));
  }

  async progress(name: string): Promise<Map<string, Progress>> {
    const prefix = `${this.prefix}/progress/${name}/`;
    const all = await this.call('read progress', () => this.client.getAll().prefix(prefix).strings());
    return new Map(Object.entries(all).map(([key, text]) => [key.slice(prefix.length), JSON.parse(text) as Progress]));
  }

  /** Writes what PMU `pmu`'s agent says about itself (only that PMU writes it). */
  async setAgentState(pmu: string, state: AgentState): Promise<void> {
    await this.call('write agent state', () => this.client.put(`${this.prefix}/agents/${pmu}`).value(JSON.stringify(state)));
  }

  /** What every agent said last, by PMU id; damaged records are left out. */
  async agentStates(): Promise<Map<string, AgentState>> {
    const prefix = `${this.prefix}/agents/`;
    const all = await this.call('read agent states', () => this.client.getAll().prefix(prefix).strings());
    const states = new Map<string, AgentState>();
    for (const [key, text] of Object.entries(all)) {
      const state = parseAgentState(text);
      if (state) states.set(key.slice(prefix.length), state);
    }
    return states;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.close();
    this.watchEtcd?.client.close();
  }
}

/** etcd forgot the token the watch stream was opened with (etcd3's EtcdInvalidAuthTokenError), or the stream's client was replaced. */
function isDeadToken(error: Error): boolean {
  return error?.name === 'EtcdInvalidAuthTokenError' || /invalid auth token|ClientClosedError|client.*closed/i.test(`${error?.name} ${error?.message}`);
}
