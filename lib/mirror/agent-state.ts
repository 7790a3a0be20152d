/**
 * What a PMU's agent says about itself in etcd, under `<prefix>/agents/<pmu>`, for
 * `pmu cluster status`: whether it has joined, and each region whose resync keeps failing
 * (why, how many attempts, when the next one is). Small, written by that PMU alone, best effort:
 * it describes, it decides nothing, and a stale one is shown with its time.
 */
export interface RegionAgentState {
  /** `CODE: message` of the last failure. */
  error: string;
  /** Failed attempts in a row. */
  attempts: number;
  nextRetryAt: string;
}

export interface AgentState {
  pmu: string;
  /** When this record was written. */
  at: string;
  joined: boolean;
  /** Set while registering keeps failing where etcd answers (e.g. the set is not made yet). */
  join?: RegionAgentState;
  /** Regions whose resync failed last time, by name; a region that resynced is removed. */
  regions: Record<string, RegionAgentState>;
}

export function parseAgentState(text: string): AgentState | undefined {
  try {
    const parsed = JSON.parse(text) as AgentState;
    if (typeof parsed?.pmu !== 'string' || typeof parsed.regions !== 'object' || parsed.regions === null) return undefined;
    return parsed;
  } catch {
    return undefined; // a damaged description is left out of status, never trusted
  }
}
