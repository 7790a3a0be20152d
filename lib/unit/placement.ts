/**
 * Where the PMU file sits decides what msync promises. On tmpfs or ramfs msync does nothing
 * durable (the data is in RAM only); on overlayfs (a container's writable layer) the file may
 * be copied up and its durability is the upper layer's, often a tmpfs. A sparse file has holes:
 * the first write into one allocates at flush time and can fail for lack of space.
 * One warning each, never a refusal: open hands them to its onWarning (lib/unit/warnings.ts).
 */
import * as fs from 'node:fs';
import { UnitWarning } from './warnings';

/** statfs f_type magic numbers (linux/magic.h). */
const VOLATILE: Record<number, string> = {
  0x01021994: 'tmpfs',
  0x858458f6: 'ramfs',
  0x794c7630: 'overlayfs',
};

export function placementWarnings(file: string): UnitWarning[] {
  const warnings: UnitWarning[] = [];
  const kind = VOLATILE[Number(fs.statfsSync(file).type)];
  if (kind) {
    warnings.push({
      code: 'PMU_VOLATILE_FILE',
      file,
      message: `${file} is on ${kind}: msync there makes nothing durable${kind === 'overlayfs' ? ' beyond the container layer' : ' (it lives in RAM)'}, so 'flushed' does not survive a reboot; put the data directory on a disk file system such as ext4 or xfs`,
    });
  }
  const stat = fs.statSync(file);
  if (stat.blocks * 512 < stat.size) {
    warnings.push({
      code: 'PMU_SPARSE_FILE',
      file,
      message: `${file} is sparse (${stat.blocks * 512} of ${stat.size} bytes allocated): pmu allocates the holes when it opens the file and refuses with ENOSPC if they do not fit; recreate the unit (pmu serve writes every block) to be sure`,
    });
  }
  return warnings;
}
