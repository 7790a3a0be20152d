/**
 * Deciding between copies of one checkpoint log (the replicas of a mirrored region, or the
 * files given to pmu inspect --verify --set). Each copy is checked on its own with the rules
 * recovery applies (verify.ts); a copy is trusted only as far as its own checks, and the
 * decision is made from all of them, never from the first alone:
 *
 * - a copy whose checks fail (a damaged header word, a damaged record that a later valid
 *   record vouches for, a damaged cursor, a damaged acknowledged checkpoint) is damaged;
 * - among the copies that pass, the one holding the longest valid log is the source: a writer
 *   that died mid-append may have left its last record on some copies and not others, and a
 *   record that is torn on one copy and valid on another is damage on the first, not a torn
 *   tail (it reads as a torn tail there only because nothing after it vouches for it yet);
 * - no copy passes: the set holds no valid copy (ECORRUPT naming each copy and its problem).
 *
 * Copies that hold no checkpoint log ('raw') cannot be validated: nothing is decided for them
 * here (the scrubber compares raw bytes by majority).
 */
import { isPmuError, PmuError } from '../unit/errors';
import { Region } from '../unit/region';
import { RegionVerdict, verifyRegion } from './verify';

export interface Copy {
  /** Who holds it: a PMU id, or a file path. */
  name: string;
  region: Region;
}

export interface CopyVerdict {
  name: string;
  /** Undefined when the copy could not be read at all (see `error`). */
  verdict?: RegionVerdict;
  error?: PmuError;
  /** 'source': the copy to keep; 'behind': valid, shorter than the source; 'damaged': fails its checks. */
  role: 'source' | 'behind' | 'damaged' | 'unreadable' | 'raw';
  /** What is wrong with it, or why it is behind. */
  detail: string;
}

export interface CopiesDecision {
  kind: 'raw' | 'log';
  copies: CopyVerdict[];
  /** Index of the copy to keep (the longest valid log); undefined for raw copies or when none is valid. */
  source?: number;
}

export async function compareCopies(copies: Copy[]): Promise<CopiesDecision> {
  const verdicts = await Promise.all(
    copies.map(async (copy): Promise<CopyVerdict> => {
      try {
        const verdict = await verifyRegion(copy.region);
        return { name: copy.name, verdict, role: verdict.kind === 'raw' ? 'raw' : verdict.ok ? 'behind' : 'damaged', detail: verdict.ok ? verdict.summary : verdict.problems.join('; ') };
      } catch (error) {
        if (!isPmuError(error)) throw error;
        return { name: copy.name, error, role: 'unreadable', detail: `${error.code}: ${error.message}` };
      }
    }),
  );
  const logs = verdicts.filter((each) => each.verdict && each.verdict.kind !== 'raw');
  if (logs.length === 0) return { kind: 'raw', copies: verdicts };
  // A blank copy next to a log is behind it (never formatted there, or wiped): not a source.
  for (const each of verdicts) if (each.role === 'raw') Object.assign(each, { role: 'damaged', detail: `holds no checkpoint log where the other copies do (${each.verdict?.summary})` });
  let source: number | undefined;
  verdicts.forEach((each, index) => {
    if (each.role !== 'behind') return;
    if (source === undefined || (each.verdict!.extent ?? 0) > (verdicts[source].verdict!.extent ?? 0)) source = index;
  });
  if (source === undefined) return { kind: 'log', copies: verdicts };
  const best = verdicts[source];
  best.role = 'source';
  for (const each of verdicts) {
    if (each.role !== 'behind') continue;
    const { extent = 0, tornAt } = each.verdict!;
    const bestExtent = best.verdict!.extent ?? 0;
    if (extent === bestExtent) each.detail = 'equal to the source';
    else if (tornAt !== undefined && tornAt <= bestExtent) {
      each.role = 'damaged';
      each.detail = `record ${tornAt} is invalid here (${each.verdict!.summary}) and valid on '${best.name}': damage on this copy, not a torn tail`;
    } else each.detail = `ends at record ${extent}, the source at ${bestExtent} (a writer died mid-append)`;
  }
  return { kind: 'log', copies: verdicts, source };
}

/** ECORRUPT for a set in which no copy passes its checks: names each copy and what is wrong there. */
export function noValidCopy(regionName: string, decision: CopiesDecision): PmuError {
  const each = decision.copies.map((copy) => `'${copy.name}': ${copy.detail}`).join('; ');
  return new PmuError(
    'ECORRUPT',
    `region '${regionName}': no copy of its checkpoint log passes its checks (${each}); nothing was written. Run 'pmu inspect --verify --set' on the copies' files and restore the region from a backup`,
  );
}
