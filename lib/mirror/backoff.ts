/**
 * Exponential backoff for what a PMU keeps trying on its own (joining its set, resyncing a
 * region): the delay doubles from `initialMs` up to `maxMs`, with jitter so that many PMUs that
 * failed together do not retry together. Plain numbers in, a delay out: no timers here.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  /** Each delay is drawn from [delay * (1 - jitter), delay]; default 0.2. */
  jitter?: number;
}

/** The delay before attempt `failures + 1`, after `failures` (>= 1) failures in a row. */
export function backoffDelay(policy: BackoffPolicy, failures: number, random: () => number = Math.random): number {
  const base = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.max(0, Math.min(failures - 1, 30)));
  const jitter = policy.jitter ?? 0.2;
  return Math.max(1, Math.round(base * (1 - jitter * random())));
}

/** Sleeps `ms`; resolves false (early) if `signal` aborts. */
export async function pause(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return false;
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}
