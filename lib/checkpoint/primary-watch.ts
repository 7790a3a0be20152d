/**
 * Failure detection for a backup. Two signals, whichever comes first:
 * - a lease: the writer's heartbeat word has not changed for `leaseMs`, measured by this
 *   process's own monotonic clock (no clock is ever compared across hosts);
 * - the region's own report that a writer's connection dropped, when the region offers
 *   `watchWriters(listener)` (a RemoteRegion does; a LocalRegion has no other writers). Only
 *   an event about a connection that made fenced writes counts (`fencedWriter`; an event
 *   without that field counts too): a resync agent or a tool that held the region read-write
 *   and closed it is not the primary leaving.
 * A change of epoch means someone else took over: the watch then follows the new primary.
 */
import { performance } from 'node:perf_hooks';
import { PmuError } from '../unit/errors';
import { Region } from '../unit/region';
import { decodeWord } from './format/checked-word';
import { EPOCH_OFFSET } from './format/layout';
import { withRepair } from './repair';

export interface WatchPrimaryOptions {
  /** Heartbeat silence that counts as a failed primary. Default 1000 ms. */
  leaseMs?: number;
  /** How often the heartbeat is read. Default leaseMs / 10, at least 1 ms. */
  pollMs?: number;
  signal?: AbortSignal;
}

export type PrimaryFailure =
  | { reason: 'lease'; detail: string; epoch: bigint }
  | { reason: 'disconnected'; detail: string; epoch: bigint; event: unknown };

type WatchWriters = (listener: (event: unknown) => void) => unknown;

export function watchPrimary(region: Region, options: WatchPrimaryOptions, onEpoch: (epoch: bigint) => void): Promise<PrimaryFailure> {
  const leaseMs = options.leaseMs ?? 1000;
  const pollMs = options.pollMs ?? Math.max(1, Math.floor(leaseMs / 10));
  const signal = options.signal;
  return new Promise<PrimaryFailure>((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    let unsubscribe: (() => void) | undefined;
    let epoch: bigint | undefined;
    let heartbeat: bigint | undefined;
    let lastChange = performance.now();

    const finish = (outcome: { failure?: PrimaryFailure; error?: unknown }) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      try {
        unsubscribe?.();
      } catch {
        // Unsubscribing from a region that is already closed: nothing left to undo.
      }
      if (outcome.failure) resolve(outcome.failure);
      else reject(outcome.error);
    };
    const onAbort = () => finish({ error: new PmuError('ECLOSED', 'watchPrimary aborted', { cause: signal?.reason }) });
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort);

    const watchWriters = (region as unknown as { watchWriters?: WatchWriters }).watchWriters;
    if (typeof watchWriters === 'function') {
      const onWriterGone = (event: unknown) => {
        if ((event as { fencedWriter?: unknown } | null)?.fencedWriter === false) return;
        finish({ failure: { reason: 'disconnected', detail: `the PMU reports the writer of region '${region.name}' left`, epoch: epoch ?? 0n, event } });
      };
      Promise.resolve(watchWriters.call(region, onWriterGone)).then(
        (handle) => {
          const stop = toUnsubscribe(handle);
          if (settled) stop?.();
          else unsubscribe = stop;
        },
        (error) => finish({ error }),
      );
    }

    const poll = async () => {
      try {
        // A damaged epoch word on one copy of a mirrored region is that copy's damage: read
        // from a copy that passes (withRepair), as every other reader path does.
        const words = await withRepair(region, async () => {
          const read = await region.read(EPOCH_OFFSET, 16);
          decodeWord('epoch', read.readBigUInt64LE(0), region.name, EPOCH_OFFSET);
          return read;
        });
        if (settled) return;
        const now = performance.now();
        const currentEpoch = decodeWord('epoch', words.readBigUInt64LE(0), region.name, EPOCH_OFFSET);
        const currentHeartbeat = words.readBigUInt64LE(8);
        if (currentEpoch !== epoch || currentHeartbeat !== heartbeat) {
          if (currentEpoch !== epoch) onEpoch(currentEpoch);
          epoch = currentEpoch;
          heartbeat = currentHeartbeat;
          lastChange = now;
        } else if (now - lastChange >= leaseMs) {
          return finish({ failure: { reason: 'lease', detail: `the heartbeat of region '${region.name}' has not moved for ${Math.round(now - lastChange)} ms (lease ${leaseMs} ms)`, epoch } });
        }
        timer = setTimeout(poll, pollMs);
      } catch (error) {
        finish({ error });
      }
    };
    void poll();
  });
}

/** watchWriters may hand back an unsubscribe function, or an object with close()/unsubscribe(). */
function toUnsubscribe(handle: unknown): (() => void) | undefined {
  let stop: (() => unknown) | undefined;
  if (typeof handle === 'function') stop = handle as () => unknown;
  else if (handle && typeof handle === 'object') {
    const object = handle as { close?: () => unknown; unsubscribe?: () => unknown };
    if (typeof object.unsubscribe === 'function') stop = () => object.unsubscribe!();
    else if (typeof object.close === 'function') stop = () => object.close!();
  }
  if (!stop) return undefined;
  const call = stop;
  // Unsubscribing may be async and may fail if the connection is gone; neither matters here.
  return () => void Promise.resolve().then(call).catch(() => undefined);
}
