/**
 * A byte-rate limit for background work (scrub, resync): pace(n) resolves once n more bytes fit
 * in `bytesPerSecond` since the pacer was made. It never throws; an aborted signal ends the wait
 * early, and the caller's own abort check says what happens next.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export function pacer(bytesPerSecond: number, signal?: AbortSignal): (bytes: number) => Promise<void> {
  const started = Date.now();
  let done = 0;
  return async (bytes) => {
    done += bytes;
    const due = started + (done / bytesPerSecond) * 1000 - Date.now();
    if (due > 0) await sleep(due, undefined, { signal }).catch(() => undefined);
  };
}
