/**
 * Reads that repair: when bytes a Region returned fail the checkpoint's checks (ECORRUPT) and
 * the Region keeps several copies (Region.repair), it is asked to stop trusting the copies that
 * fail and the operation runs again, from a copy that passes. While one intact copy exists the
 * caller never sees ECORRUPT; with one copy (or none intact) the error stands.
 */
import { isPmuError } from '../unit/errors';
import { Region } from '../unit/region';

/** At most this many repairs per operation: one per copy of a three-copy set, and one spare. */
const MAX_REPAIRS = 4;

export async function withRepair<T>(region: Region, run: () => Promise<T>): Promise<T> {
  for (let repairs = 0; ; repairs++) {
    try {
      return await run();
    } catch (error) {
      if (!isPmuError(error, 'ECORRUPT') || !region.repair || repairs >= MAX_REPAIRS) throw error;
      if (!(await region.repair(error))) throw error;
    }
  }
}
