/**
 * Connections to the PMUs of a set, one PmuClient per PMU, made on first use. Every PMU of a
 * set is reached with the same user and secret (the set's user, an admin on each PMU: a
 * returning PMU may need its region made again).
 */
import type * as tls from 'node:tls';
import { PmuClient } from '../client/client';
import { RemoteRegion } from '../client/remote-region';
import { PmuError } from '../unit/errors';
import { MirrorDirectory } from './directory';

export interface PoolOptions {
  /** Required: the set's user (an admin on every PMU) and its secret. */
  user?: string;
  secret?: string;
  /** Deadline of every request to a PMU: the failure deadline of a replica. Default 1000 ms. */
  timeoutMs?: number;
  /** For PMUs at tls:// URLs: e.g. { ca } pinning the set's CA (the sessions are channel-bound either way). */
  tls?: tls.ConnectionOptions;
}

export class PmuPool {
  private readonly clients = new Map<string, Promise<PmuClient>>();
  readonly timeoutMs: number;
  private readonly user: string;
  private readonly secret: string;
  private readonly tls: tls.ConnectionOptions | undefined;
  private closed = false;

  constructor(
    private readonly directory: MirrorDirectory,
    options: PoolOptions,
  ) {
    this.timeoutMs = options.timeoutMs ?? 1000;
    const { user, secret } = options;
    if (!user || !secret) throw new PmuError('EAUTH', "no credentials for the PMU set: pass { user, secret }, the set's user (an admin on every PMU; the CLI reads them from PMU_USER and PMU_SECRET)");
    this.user = user;
    this.secret = secret;
    this.tls = options.tls;
  }

  /** The client of PMU `id`, connecting if needed (a failed connect is forgotten, so the next call retries). */
  client(id: string): Promise<PmuClient> {
    if (this.closed) return Promise.reject(new PmuError('ECLOSED', 'this PmuPool was closed; make a new PmuPool'));
    let client = this.clients.get(id);
    if (!client) {
      client = (async () => {
        const entry = await this.directory.pmu(id);
        // Sealed and named: a directory entry pointed at a relay or at another PMU gets no session
        // it can alter, and the PMU must prove it is the `id` this entry is for.
        return PmuClient.connect(entry.url, { user: this.user, secret: this.secret, timeoutMs: this.timeoutMs, maxQueued: 1024, seal: true, identity: id, tls: this.tls });
      })();
      this.clients.set(id, client);
      client.catch(() => {
        if (this.clients.get(id) === client) this.clients.delete(id);
      });
    }
    return client;
  }

  async openRegion(id: string, name: string): Promise<RemoteRegion> {
    return (await this.client(id)).openRegion(name, { rights: 'rw' });
  }

  /** True once close() was called: a closed pool makes no new connections. */
  get isClosed(): boolean {
    return this.closed;
  }

  async close(): Promise<void> {
    this.closed = true;
    const clients = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(clients.map((client) => client.then((c) => c.close()).catch(() => undefined)));
  }
}
