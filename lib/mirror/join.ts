/**
 * `pmu serve --join`: registering this PMU in its set, retried with backoff until it works.
 * A PMU that cannot register (etcd down, the set not made yet) keeps serving and keeps trying;
 * every failure goes to `onFailure` (the log, the metrics) and, where etcd answers, to the
 * agent record `pmu cluster status` shows. An error no retry can fix (a bad id or capacity)
 * is thrown at once.
 */
import type { MirrorCounters } from '../obs/counters';
import { PmuError } from '../unit/errors';
import { backoffDelay, BackoffPolicy, pause } from './backoff';
import { PmuEntry } from './config';
import { MirrorDirectory } from './directory';

export const JOIN_BACKOFF: BackoffPolicy = { initialMs: 100, maxMs: 10_000 };

export interface JoinFailure {
  error: PmuError;
  attempt: number;
  retryInMs: number;
}

export interface JoinOptions {
  backoff?: BackoffPolicy;
  counters?: MirrorCounters;
  onFailure?: (failure: JoinFailure) => void;
  /** Stops the retries: joinSet then resolves false. */
  signal?: AbortSignal;
}

/** Codes a later attempt can succeed after: etcd away, the set or a read not there yet. */
const RETRYABLE = new Set(['EETCD', 'ENOENT', 'ETIMEDOUT', 'ECONNECTION']);

/** Registers `entry`; resolves true once it is registered, false if `signal` stopped it first. */
export async function joinSet(directory: MirrorDirectory, entry: PmuEntry, options: JoinOptions = {}): Promise<boolean> {
  const policy = options.backoff ?? JOIN_BACKOFF;
  let lastCode: string | undefined;
  let inARow = 0;
  for (let attempt = 1; ; attempt++) {
    if (options.signal?.aborted) return false;
    try {
      await directory.addPmu(entry);
      if (options.counters) options.counters.joined = 1;
      await directory.setAgentState(entry.id, { pmu: entry.id, at: new Date().toISOString(), joined: true, regions: {} }).catch(() => undefined);
      return true;
    } catch (error) {
      const failure = error instanceof PmuError ? error : new PmuError('ESYS', `joining the set failed: ${String(error)}`, { cause: error });
      if (!RETRYABLE.has(failure.code)) throw failure;
      if (options.counters) options.counters.joinFailures++;
      // A new kind of failure (etcd answers now, but the set is missing) starts the backoff over.
      inARow = failure.code === lastCode ? inARow + 1 : 1;
      lastCode = failure.code;
      const retryInMs = backoffDelay(policy, inARow);
      options.onFailure?.({ error: failure, attempt, retryInMs });
      // Where etcd answers (the set is missing, say), leave a trace that status can show.
      if (failure.code !== 'EETCD') {
        await directory
          .setAgentState(entry.id, { pmu: entry.id, at: new Date().toISOString(), joined: false, join: { error: `${failure.code}: ${failure.message}`, attempts: attempt, nextRetryAt: new Date(Date.now() + retryInMs).toISOString() }, regions: {} })
          .catch(() => undefined);
      }
      if (!(await pause(retryInMs, options.signal))) return false;
    }
  }
}
