/**
 * The checks `pmu serve`, `pmu user` and the client commands make before they trust the data
 * directory, the users file, the admin credential or the pid file: what ssh's StrictModes and
 * gpg make of ~/.ssh and ~/.gnupg. A file or directory another user owns or may write is
 * refused with what to run, never used: a red team renamed its own users file over root's in a
 * 0777 --data directory and logged in as admin, and made root signal an unrelated process
 * through a forged pmu.pid.
 *
 * - A directory holding these files must be owned by the running user (the effective uid) and
 *   not be writable by its group or others: whoever may write it may rename anything in it.
 *   Every directory above it must not be writable by group or others either, unless it has the
 *   sticky bit (as /tmp has), or the whole directory could be renamed away and replaced. Who
 *   owns those is not checked: an owner may rearrange them anyway (as root may), and a
 *   container's volume commonly belongs to the host's user.
 * - A file must be a regular file (a symbolic link is refused: it can be pointed elsewhere
 *   between a check and a read), owned by the running user, and neither readable nor writable
 *   by group or others: it holds secrets. The checks are made on the descriptor that is then
 *   read (open O_NOFOLLOW, fstat, read), so nothing can be swapped in between.
 * - Root is not exempt: the attack was against root.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PmuError } from '../unit/errors';

/** The user whose files these must be. */
export function runningUid(): number {
  return process.geteuid ? process.geteuid() : process.getuid!();
}

/** S_ISVTX: in such a directory only a file's owner may rename or remove it. */
const STICKY = 0o1000;

const octal = (mode: number): string => '0' + (mode & 0o7777).toString(8).padStart(3, '0');

function whoMayWrite(mode: number): string {
  if ((mode & 0o022) === 0o022) return 'its group and others';
  return mode & 0o002 ? 'others' : 'its group';
}

export interface DirectoryCheck {
  /** What the directory is, for the message: 'data directory'. */
  what: string;
  /** Uids trusted to own it besides the running user (0 for a directory like /etc/pmu). */
  alsoOwnedBy?: number[];
  /** Added to the refusal: 'or choose another --data'. */
  hint?: string;
}

/**
 * Refuses (EACCESS) a directory owned by another user or writable by group or others, and one
 * under a directory anyone else may write without the sticky bit. A missing one is left to the
 * caller (ENOENT passes through as the fs error).
 */
export function checkPrivateDirectory(dir: string, check: DirectoryCheck): void {
  const resolved = path.resolve(dir);
  const uid = runningUid();
  const stat = fs.statSync(resolved);
  const or = check.hint ? `, ${check.hint}` : '';
  if (!stat.isDirectory()) throw new PmuError('EINVAL', `${check.what} ${resolved} is not a directory${or}`);
  if (stat.uid !== uid && !(check.alsoOwnedBy ?? []).includes(stat.uid)) {
    throw new PmuError(
      'EACCESS',
      `${check.what} ${resolved} is owned by uid ${stat.uid}, not you (uid ${uid}): that user may change what is in it; if you trust its contents, run: chown -R ${uid} ${resolved} && chmod 700 ${resolved}${or || ', or use another directory'}`,
    );
  }
  if (stat.mode & 0o022) {
    throw new PmuError('EACCESS', `${check.what} ${resolved} is writable by ${whoMayWrite(stat.mode)} (mode ${octal(stat.mode)}): they may replace the files in it; check them, then run: chmod 700 ${resolved}${or}`);
  }
  // Both the path as given and the one its links lead to: a link's own directory may be swapped.
  const ancestors = new Set<string>();
  for (const start of [resolved, fs.realpathSync(resolved)]) {
    for (let up = path.dirname(start); ; up = path.dirname(up)) {
      ancestors.add(up);
      if (path.dirname(up) === up) break;
    }
  }
  for (const ancestor of ancestors) {
    const above = fs.statSync(ancestor);
    if (above.mode & 0o022 && !(above.mode & STICKY)) {
      throw new PmuError(
        'EACCESS',
        `${check.what} ${resolved} is inside ${ancestor}, which is writable by ${whoMayWrite(above.mode)} (mode ${octal(above.mode)}) and not sticky: they may rename ${resolved} away and put their own in its place; run: chmod go-w ${ancestor}${or || ', or use a directory elsewhere'}`,
      );
    }
  }
}

/**
 * Reads a file that holds secrets, refusing (EACCESS) a symbolic link, anything but a regular
 * file, and a file another user owns or group or others may read or write; the checks are on
 * the descriptor the content is read from. A missing file is an fs error with code ENOENT, as
 * from fs.readFileSync; so is any other failure to open or read.
 */
export function readPrivateFile(file: string, what: string): string {
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO put in its place must not hang the open; it is refused below.
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOOP' && fs.lstatSync(file).isSymbolicLink()) {
      throw new PmuError('EACCESS', `${what} ${file} is a symbolic link, and pmu does not follow links to files holding secrets (one can be pointed elsewhere); put the file itself there: mv "$(readlink -f ${file})" ${file}`);
    }
    throw error;
  }
  try {
    checkPrivateStat(fs.fstatSync(fd), file, what);
    return fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/** The ownership and mode rules for a file holding secrets, on a stat of it (see readPrivateFile). */
export function checkPrivateStat(stat: fs.Stats, file: string, what: string): void {
  const uid = runningUid();
  if (!stat.isFile()) throw new PmuError('EACCESS', `${what} ${file} is not a regular file; move it away`);
  if (stat.uid !== uid) {
    throw new PmuError('EACCESS', `${what} ${file} is owned by uid ${stat.uid}, not you (uid ${uid}): that user may have put it there; if you trust what it holds, run: chown ${uid} ${file} && chmod 600 ${file}`);
  }
  if (stat.mode & 0o077) {
    const how = stat.mode & 0o022 ? `writable by ${whoMayWrite(stat.mode)}` : 'readable by other users';
    throw new PmuError('EACCESS', `${what} ${file} is ${how} (mode ${octal(stat.mode)}); it holds secrets: run: chmod 600 ${file}`);
  }
}
