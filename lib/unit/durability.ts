/**
 * The durability levels: one table. What an acknowledged write guarantees, the code that
 * carries the level on the wire, and which Region types can give it all come from here: the
 * API's validation, the wire encoding, the error messages and the docs' sentences. A new level
 * is one row, plus the support of the Region types it names.
 */
import { PmuError } from './errors';
import { describe } from './validate';

/** The Region types, by the names their errors use (FileRegion: `pmu inspect`'s read-only view of a file). */
export type RegionType = 'LocalRegion' | 'RemoteRegion' | 'MirroredRegion' | 'FileRegion';

export interface DurabilityLevel {
  readonly name: string;
  /** The level's code in a WRITE's or CAS's flags (bits 0-3; docs/PROTOCOL.md). */
  readonly wireCode: number;
  /** When the write is acknowledged. */
  readonly ackedWhen: string;
  /** What an acknowledged write survives: the one sentence the API, the wire docs and the README use. */
  readonly survives: string;
  /** Region types that can give this level; any other refuses it with EINVAL. */
  readonly regionTypes: readonly RegionType[];
  /** What to do when a Region type cannot give it. */
  readonly otherwise?: string;
}

export const DURABILITY_LEVELS = [
  {
    name: 'mapped',
    wireCode: 0,
    ackedWhen: "once copied into the PMU's shared mapping",
    survives: 'the crash of any process, the PMU server included; not an OS crash or power loss of its host until a flush',
    regionTypes: ['LocalRegion', 'RemoteRegion', 'MirroredRegion'],
  },
  {
    name: 'flushed',
    wireCode: 1,
    ackedWhen: "once msync'd to the PMU's file (every replica's, on a mirrored region)",
    survives: "the crash of any process, and an OS crash or power loss of the PMU's host (on storage that honours flushes)",
    regionTypes: ['LocalRegion', 'RemoteRegion', 'MirroredRegion'],
  },
] as const satisfies readonly DurabilityLevel[];

/** What an acknowledged write guarantees: a name from DURABILITY_LEVELS. */
export type Durability = (typeof DURABILITY_LEVELS)[number]['name'];

/** Writes without a durability option get this one. */
const DEFAULT_DURABILITY: Durability = 'flushed';

/** Which levels a Region type gives: true for each supported name, nothing else (no prototype). */
export type DurabilitySupport = Readonly<Partial<Record<string, true>>>;

/** What a Region type is and which levels it gives: one frozen object per type (Region.capabilities). */
export interface RegionCapabilities {
  readonly type: RegionType;
  readonly durabilities: DurabilitySupport;
  /**
   * write() has copied `data` by the time it returns, so the caller may change its buffer at
   * once (a large checkpoint record is then written from the caller's own buffer, no copy).
   * Otherwise the buffer must stay as it is until the write settles (RemoteRegion sends it).
   */
  readonly copiesOnWrite: boolean;
}

/** The Region types whose write() copies before it returns (into the mapping). */
const COPIES_ON_WRITE: readonly RegionType[] = ['LocalRegion'];

const BY_NAME: ReadonlyMap<string, DurabilityLevel> = new Map(DURABILITY_LEVELS.map((level) => [level.name, level]));
const BY_WIRE_CODE: ReadonlyArray<Durability | undefined> = (() => {
  const codes: Array<Durability | undefined> = [];
  for (const level of DURABILITY_LEVELS) codes[level.wireCode] = level.name;
  return codes;
})();

/** The capabilities of `regionType`, from the table. */
export function capabilitiesOf(regionType: RegionType): RegionCapabilities {
  const support: Record<string, true> = Object.create(null);
  for (const level of DURABILITY_LEVELS) if ((level.regionTypes as readonly RegionType[]).includes(regionType)) support[level.name] = true;
  return Object.freeze({ type: regionType, durabilities: Object.freeze(support), copiesOnWrite: COPIES_ON_WRITE.includes(regionType) });
}

/** The level's wire code (for a level the caller already checked). */
export function wireCodeOf(durability: Durability): number {
  return BY_NAME.get(durability)!.wireCode;
}

/** The level a wire code names, or undefined for a code no level has. */
export function durabilityOfWireCode(code: number): Durability | undefined {
  return BY_WIRE_CODE[code];
}

/**
 * `value` as a level the Region type gives (undefined: the default), else EINVAL naming the
 * level and the Region type. One property load on the hot path.
 */
export function checkDurability(value: unknown, capabilities: RegionCapabilities): Durability {
  if (value === undefined) return DEFAULT_DURABILITY;
  if (typeof value === 'string' && capabilities.durabilities[value] === true) return value as Durability;
  throw durabilityRefusal(value, capabilities.durabilities, capabilities.type);
}

function durabilityRefusal(value: unknown, support: DurabilitySupport, regionType: RegionType): PmuError {
  const offered = DURABILITY_LEVELS.filter((level) => support[level.name] === true).map((level) => `'${level.name}'`);
  const level = typeof value === 'string' ? BY_NAME.get(value) : undefined;
  if (!level) return new PmuError('EINVAL', `durability must be one of ${DURABILITY_LEVELS.map((l) => `'${l.name}'`).join(', ')}, got ${describe(value)}`);
  return new PmuError('EINVAL', `durability '${level.name}' is not something a ${regionType} can give (it gives ${offered.join(', ')})${level.otherwise ? `: ${level.otherwise}` : ''}`);
}
