/**
 * The PMU set's directory in etcd. Layout under the set's prefix (default /pmu/sets/default):
 *
 * ```
 * <prefix>/set                      {"copies":2,"created":"..."}          made by `pmu cluster init`
 * <prefix>/pmus/<id>                {"id","url","capacity"}               one per PMU
 * <prefix>/regions/<name>           {"name","size","replicas","inSync","syncing","epoch"}
 * <prefix>/clients/<name>/<client>  {"epoch":N}  (leased)  the config epoch a writer uses
 * <prefix>/progress/<name>/<pmu>    {"copied","total","at"} resync progress, for status
 * ```
 *
 * Every change of a region's configuration is a transaction that compares the stored value
 * (which holds the epoch) and writes the next one; a lost race returns undefined and the
 * caller re-reads. Every call has a deadline: etcd out of reach is EETCD, never a hang.
 */
import { Etcd3, IKeyValue, Lease, Watcher } from 'etcd3';
import { randomBytes } from 'node:crypto';
import { PmuError } from '../unit/errors';
import { checkCopies, checkId, parseConfig, place, PmuEntry, RegionConfig, SetInfo } from './config';

export interface DirectoryOptions {
  /** Set name: several sets may share one etcd. Default 'default'. */
  set?: string;
  /** Deadline of each etcd call; default 2000 ms. */
  timeoutMs?: number;
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
  private closed = false;

  private constructor(readonly etcdUrl: string, options: DirectoryOptions) {
    const set = checkId('set name', options.set ?? 'default');
    this.prefix = `/pmu/sets/${set}`;
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.client = new Etcd3({
      hosts: etcdUrl.split(','),
      dialTimeout: this.timeoutMs,
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + this.timeoutMs }),
    });
  }

  static connect(etcdUrl: string, options: DirectoryOptions = {}): MirrorDirectory {
    if (typeof etcdUrl !== 'string' || !/^https?:\/\//.test(etcdUrl)) throw new PmuError('EINVAL', `etcd URL must look like http://127.0.0.1:2379, got ${JSON.stringify(etcdUrl)}`);
    return new MirrorDirectory(etcdUrl, options);
  }

  /** Runs one etcd call; any failure of etcd itself becomes EETCD with what to do. */
  async call<T>(what: string, run: () => PromiseLike<T>): Promise<T> {
    if (this.closed) throw new PmuError('ECLOSED', 'the mirror directory was closed');
    try {
      return await run();
    } catch (error) {
      if (error instanceof PmuError) throw error;
      throw new PmuError('EETCD', `etcd at ${this.etcdUrl} did not answer (${what}: ${(error as Error).message}); nothing was acknowledged: check that etcd runs and is reachable, then retry`, { cause: error });
    }
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

  /** Calls `listener` with every new value of the region's configuration. */
  async watch(name: string, listener: (config: RegionConfig) => void): Promise<() => Promise<void>> {
    const key = this.regionKey(name);
    const watcher: Watcher = await this.call('watch configuration', () => this.client.watch().key(key).create());
    watcher.on('put', (kv: IKeyValue) => {
      try {
        listener(parseConfig(kv.value.toString(), key));
      } catch {
        // A damaged value is reported by the next linearizable read; a watch cannot refuse it.
      }
    });
    watcher.on('error', () => undefined);
    return async () => {
      await watcher.cancel().catch(() => undefined);
    };
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
    await this.call('grant lease', () => lease.grant());
    validUntil = grantStarted + ttlSeconds * 1000 - marginMs;
    const publish = async (epoch: number) => {
      await this.call('publish client epoch', () => lease.put(key).value(JSON.stringify({ epoch })));
    };
    // Registered (epoch 0) before the caller reads the configuration: a change made after this
    // put waits for us; one made before it is in the configuration we read next.
    await publish(0);
    return {
      id,
      validUntil: () => validUntil,
      publish,
      close: async () => {
        validUntil = 0;
        await lease.revoke().catch(() => undefined);
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

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.close();
  }
}
