/** What a PmuSaver is opened with, and the checkpoint writer options every saver derives from it. */
import type { SerializerProtocol } from '@langchain/langgraph-checkpoint';
import type { Durability } from '../unit/region.js';

export interface PmuSaverOptions {
  /** What a resolved put/putWrites guarantees: 'flushed' (default: survives power loss) or 'mapped' (survives any process crash). */
  durability?: Durability;
  /** Serializer for checkpoints, metadata and values. Default: LangGraph's JsonPlusSerializer. */
  serde?: SerializerProtocol;
  /** How long a record may wait for ring space (while a compaction clears) before the saver fails with EFULL. Default 5000 ms. */
  fullWaitMs?: number;
  /** Heartbeat period of the writer, for a standby's lease. Default 100 ms. */
  heartbeatMs?: number;
}

/** Writer options every saver uses: an append log, waiting (bounded) for a compaction to clear room. */
export function writerOptions(options: PmuSaverOptions) {
  return { mode: 'append' as const, durability: options.durability, whenFull: 'wait' as const, fullWaitMs: options.fullWaitMs ?? 5000, heartbeatMs: options.heartbeatMs };
}
