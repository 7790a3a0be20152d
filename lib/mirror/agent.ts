/**
 * The replica agent a PMU runs when it is part of a set (`pmu serve --join`): it looks for the
 * regions it holds a copy of but is not in sync for (it was down, stopped, cut off, or is new)
 * and resyncs them one at a time, while writes go on. A failed resync is tried again later.
 */
import { PmuError } from '../unit/errors';
import { MirrorDirectory } from './directory';
import { PmuPool } from './pool';
import { resync } from './resync';

export interface AgentEvent {
  kind: 'resync-start' | 'resync-done' | 'resync-failed';
  region: string;
  detail?: string;
}

export interface AgentOptions {
  /** How often the directory is checked. Default 250 ms. */
  intervalMs?: number;
  chunkBytes?: number;
  onEvent?: (event: AgentEvent) => void;
}

export function startReplicaAgent(directory: MirrorDirectory, pool: PmuPool, pmu: string, options: AgentOptions = {}): { stop(): Promise<void> } {
  const intervalMs = options.intervalMs ?? 250;
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  const round = async () => {
    let configs;
    try {
      configs = await directory.regions();
    } catch {
      return; // etcd away: nothing to do until it answers.
    }
    for (const config of configs) {
      if (controller.signal.aborted) return;
      if (!config.replicas.includes(pmu) || config.inSync.includes(pmu)) continue;
      options.onEvent?.({ kind: 'resync-start', region: config.name });
      try {
        await resync(directory, pool, config.name, pmu, { chunkBytes: options.chunkBytes, signal: controller.signal });
        options.onEvent?.({ kind: 'resync-done', region: config.name });
      } catch (error) {
        options.onEvent?.({ kind: 'resync-failed', region: config.name, detail: error instanceof PmuError ? `${error.code}: ${error.message}` : String(error) });
      }
    }
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
