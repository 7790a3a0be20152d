/**
 * The replica agent a PMU runs when it is part of a set (`pmu serve --join`): it looks for the
 * regions it holds a copy of but is not in sync for (it was down, stopped, cut off, or is new)
 * and resyncs them one at a time, while writes go on.
 *
 * A resync that fails is retried with per-region exponential backoff (RESYNC_BACKOFF, 500 ms
 * doubling to 30 s); a failure of this PMU's own unit (EIO: its file can no longer be trusted to
 * keep what it acks) goes straight to the longest delay: retrying every 250 ms only read the
 * source replica again and again. Each failure is reported with why and when the next attempt
 * is, and what the agent knows is written (best effort) to `<prefix>/agents/<pmu>` for
 * `pmu cluster status` (agent-state.ts).
 */
import type { MirrorCounters } from '../obs/counters';
import { PmuError } from '../unit/errors';
import { AgentState, RegionAgentState } from './agent-state';
import { backoffDelay, BackoffPolicy } from './backoff';
import { MirrorDirectory } from './directory';
import { PmuPool } from './pool';
import { resync } from './resync';

export const RESYNC_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 30_000 };

/** Failures no quick retry can fix: wait the longest delay at once. */
const SLOW_CODES = new Set(['EIO', 'ENOSPC', 'ECORRUPT']);

export interface AgentEvent {
  kind: 'resync-start' | 'resync-done' | 'resync-failed';
  region: string;
  detail?: string;
  /** resync-failed: the error's code, failures in a row, and the delay before the next attempt. */
  code?: string;
  attempts?: number;
  retryInMs?: number;
}

export interface AgentOptions {
  /** How often the directory is checked. Default 250 ms. */
  intervalMs?: number;
  chunkBytes?: number;
  /** Data bytes a resync copies per second (ResyncOptions.bytesPerSecond); default no limit. */
  resyncBytesPerSecond?: number;
  /** Backoff of a region whose resync keeps failing; default RESYNC_BACKOFF. */
  backoff?: BackoffPolicy;
  counters?: MirrorCounters;
  onEvent?: (event: AgentEvent) => void;
}

export function startReplicaAgent(directory: MirrorDirectory, pool: PmuPool, pmu: string, options: AgentOptions = {}): { stop(): Promise<void> } {
  const intervalMs = options.intervalMs ?? 250;
  const policy = options.backoff ?? RESYNC_BACKOFF;
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  /** Regions whose last resync failed: failures in a row and when to try again (local clock). */
  const failing = new Map<string, RegionAgentState & { retryAt: number }>();
  let published = '';

  const publish = async () => {
    const regions = Object.fromEntries([...failing].map(([name, { error, attempts, nextRetryAt }]) => [name, { error, attempts, nextRetryAt }]));
    const text = JSON.stringify(regions);
    if (text === published) return;
    const state: AgentState = { pmu, at: new Date().toISOString(), joined: true, regions };
    // Best effort: etcd away now is seen at the next change.
    await directory.setAgentState(pmu, state).then(() => (published = text), () => undefined);
  };

  const round = async () => {
    let configs;
    try {
      configs = await directory.regions();
    } catch {
      return; // etcd away: nothing to do until it answers.
    }
    const names = new Set(configs.map((config) => config.name));
    for (const name of failing.keys()) if (!names.has(name)) failing.delete(name);
    for (const config of configs) {
      if (controller.signal.aborted) return;
      if (!config.replicas.includes(pmu) || config.inSync.includes(pmu)) {
        failing.delete(config.name);
        continue;
      }
      const failed = failing.get(config.name);
      if (failed && Date.now() < failed.retryAt) continue;
      options.onEvent?.({ kind: 'resync-start', region: config.name });
      try {
        await resync(directory, pool, config.name, pmu, { chunkBytes: options.chunkBytes, bytesPerSecond: options.resyncBytesPerSecond, signal: controller.signal });
        failing.delete(config.name);
        options.onEvent?.({ kind: 'resync-done', region: config.name });
      } catch (error) {
        if (controller.signal.aborted) return;
        const code = error instanceof PmuError ? error.code : 'ESYS';
        const detail = error instanceof PmuError ? `${error.code}: ${error.message}` : String(error);
        const attempts = (failed?.attempts ?? 0) + 1;
        const retryInMs = SLOW_CODES.has(code) ? policy.maxMs : backoffDelay(policy, attempts);
        const retryAt = Date.now() + retryInMs;
        failing.set(config.name, { error: detail, attempts, nextRetryAt: new Date(retryAt).toISOString(), retryAt });
        if (options.counters) options.counters.resyncFailures++;
        options.onEvent?.({ kind: 'resync-failed', region: config.name, detail, code, attempts, retryInMs });
      }
    }
    await publish();
  };
  const schedule = () => {
    if (controller.signal.aborted) return;
    timer = setTimeout(() => {
      running = round().finally(() => {
        running = undefined;
        schedule();
      });
    }, intervalMs);
  };
  running = round().finally(() => {
    running = undefined;
    schedule();
  });
  return {
    async stop() {
      controller.abort();
      clearTimeout(timer);
      await running;
    },
  };
}
