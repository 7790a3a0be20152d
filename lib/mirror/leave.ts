/**
 * Replicas leaving the in-sync set outside a writer (a resync that found a damaged source, a
 * scrub repair): one transaction, then the replicas left in sync record the new configuration
 * (membership.ts), so that etcd restored to one that still lists the leavers is caught.
 */
import { RegionConfig, withoutReplica } from './config';
import { MirrorDirectory } from './directory';
import { stampAll } from './membership';
import { PmuPool } from './pool';

/** Resolves with the new configuration, or undefined if the configuration changed meanwhile (nothing done). */
export async function leaveInSync(directory: MirrorDirectory, pool: PmuPool, config: RegionConfig, pmus: string[]): Promise<RegionConfig | undefined> {
  let next = config;
  for (const pmu of pmus) next = { ...withoutReplica(next, pmu), epoch: next.epoch };
  const done = await directory.transition(config, { ...next, epoch: config.epoch + 1 });
  if (done) await stampAll(pool, done);
  return done;
}
