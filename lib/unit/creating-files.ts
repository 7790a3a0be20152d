/**
 * The temporary files of a create: native/core/pm_file.cpp builds a unit as `<file>.creating.<pid>`
 * and links it to `<file>` when it is complete. A creator killed before then (SIGKILL, a crash,
 * a power cut) leaves its temporary file behind, as big as the unit and fully allocated. The next
 * open or create of `<file>` removes those whose creator is gone; a live creator's file is left
 * alone, since it is still being written.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface StaleFile {
  /** The temporary file removed. */
  file: string;
  /** The process that was creating it (no longer running). */
  pid: number;
  /** Its size: what removing it gave back. */
  bytes: number;
}

/** The name native/core/pm_file.cpp builds `file` under in process `pid`. */
export function creatingFile(file: string, pid = process.pid): string {
  return `${path.resolve(file)}.creating.${pid}`;
}

/**
 * Removes `<file>.creating.<pid>` files whose creator is no longer running and returns them.
 * Best effort and never throws: a directory it cannot read, or a file of another user, is left
 * as it is (whoever owns it decides).
 */
export function removeStaleCreatingFiles(file: string): StaleFile[] {
  const resolved = path.resolve(file);
  const dir = path.dirname(resolved);
  const prefix = `${path.basename(resolved)}.creating.`;
  const removed: StaleFile[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || !/^\d+$/.test(name.slice(prefix.length))) continue;
    const pid = Number(name.slice(prefix.length));
    // Our own pid: a create in this process may be writing it right now.
    if (pid === process.pid) continue;
    const tmp = path.join(dir, name);
    try {
      const stat = fs.lstatSync(tmp);
      if (!stat.isFile() || stat.uid !== process.getuid?.()) continue;
      if (creatorRunning(pid, stat.uid)) continue;
      fs.unlinkSync(tmp);
      removed.push({ file: tmp, pid, bytes: stat.size });
    } catch {
      // Gone meanwhile, or not ours to remove: nothing to report.
    }
  }
  return removed;
}

/**
 * Whether `pid` is a process of user `uid`: the only kind that can be writing a temporary file
 * that user owns. A pid reused by another user's process is not the creator.
 */
function creatorRunning(pid: number, uid: number): boolean {
  if (fs.existsSync('/proc/self')) {
    try {
      return fs.statSync(`/proc/${pid}`).uid === uid;
    } catch {
      return false;
    }
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH' && (error as NodeJS.ErrnoException).code !== 'EPERM';
  }
}
