/**
 * `pmu serve`'s create of a new unit: progress on stderr, and a Ctrl-C or SIGTERM meanwhile
 * removes the unfinished temporary file instead of leaking it (it is as big as the unit and
 * fully allocated). The zero-fill runs on the libuv pool (PersistentMemoryUnit.create), so the
 * main thread is free to take the signal. It cannot stop the pool thread, so it removes the file
 * (the thread's writes then go to an unlinked inode, freed at exit; its link() finds no file)
 * and dies of the signal again: process.exit() would wait for the pool thread to finish the
 * whole zero-fill (measured: 6 s for 8 GiB here), the signal ends the process at once.
 * A SIGKILL or a crash cannot be caught: the next start removes that file (creating-files.ts).
 */
import * as fs from 'node:fs';
import { creatingFile } from '../unit/creating-files';
import { PersistentMemoryUnit } from '../unit/unit';
import { OnWarning } from '../unit/warnings';

const mib = (bytes: number): number => Math.round(bytes / (1024 * 1024));

export async function createUnitInterruptibly(file: string, size: number, onWarning: OnWarning, undo: () => void): Promise<void> {
  const tmp = creatingFile(file);
  const interrupted = (signal: NodeJS.Signals) => {
    fs.rmSync(tmp, { force: true });
    undo();
    process.stderr.write(`pmu: ${signal} while creating ${file}: stopped; removed the unfinished ${tmp}\n`);
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    process.kill(process.pid, signal);
  };
  process.on('SIGINT', interrupted);
  process.on('SIGTERM', interrupted);
  // Every block is written with zeros (first writes then cost what rewrites do): at disk speed,
  // so a big unit shows how far it has got.
  let shown = -1;
  try {
    await PersistentMemoryUnit.create(file, {
      size,
      onWarning,
      onProgress: (done, total) => {
        const percent = Math.floor((done * 100) / total);
        // A unit made in one batch (64 MiB or less) was never long enough to show.
        if (percent === shown || (shown === -1 && done === total)) return;
        shown = percent;
        process.stderr.write(`pmu: creating ${file}: ${percent}% (${mib(done)} of ${mib(total)} MiB written with zeros)\n`);
      },
    });
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
  }
}
