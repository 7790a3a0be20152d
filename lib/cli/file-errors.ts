/**
 * File system failures of the command line (the data directory, the users file, the credential,
 * the pid file) as a PmuError that names the file and says what to do. Node's own message for a
 * failed write is `ENOSPC: no space left on device, write`: no path, no advice.
 */
import * as fs from 'node:fs';
import { PmuError, PmuErrorCode } from '../unit/errors';

interface Errno {
  code: PmuErrorCode;
  /** What the errno means, in words. */
  meaning: string;
  /** What the user can do about it (the data directory is named by the caller's --data hint). */
  advice: string;
}

const ERRNOS: Record<string, Errno> = {
  ENOSPC: { code: 'ENOSPC', meaning: 'no space left on device', advice: 'free space on that file system' },
  EDQUOT: { code: 'ENOSPC', meaning: 'disk quota exceeded', advice: 'free space or raise the quota' },
  EACCES: { code: 'EACCESS', meaning: 'permission denied', advice: 'check the owner and mode of the file and its directory, or run as a user who may write there' },
  EPERM: { code: 'EACCESS', meaning: 'operation not permitted', advice: 'check the owner, mode and attributes (chattr) of the file and its directory' },
  EROFS: { code: 'EACCESS', meaning: 'read-only file system', advice: 'remount it read-write' },
  EIO: { code: 'EIO', meaning: 'input/output error', advice: 'the disk reported an error: check its health (dmesg, smartctl)' },
  ENOENT: { code: 'ENOENT', meaning: 'no such file or directory', advice: 'check that the directory exists' },
  ENOTDIR: { code: 'EINVAL', meaning: 'a part of the path is not a directory', advice: 'check the path' },
  EISDIR: { code: 'EINVAL', meaning: 'is a directory', advice: 'move the directory away' },
};

/** `what` the action ('write', 'read', 'create', 'remove'), `file` the path it was done to. */
export function fileError(error: unknown, what: string, file: string, hint = 'or use --data DIR'): PmuError {
  if (error instanceof PmuError) return error;
  const errno = (error as NodeJS.ErrnoException | undefined)?.code;
  const known = errno ? ERRNOS[errno] : undefined;
  const why = known ? `${known.meaning} (${errno})` : (error as Error)?.message ?? String(error);
  const advice = [known ? known.advice : 'fix that', hint].filter(Boolean).join(' ');
  return new PmuError(known?.code ?? 'ESYS', `cannot ${what} ${file}: ${why}: ${advice}`, { cause: error });
}

/** Runs `fn`; a thrown fs error becomes fileError(error, what, file). */
export function onFile<T>(what: string, file: string, fn: () => T, hint?: string): T {
  try {
    return fn();
  } catch (error) {
    throw fileError(error, what, file, hint);
  }
}

/**
 * Writes `content` to `file` (through a temporary file and a rename, so a reader never sees half
 * of it) unless the file already holds exactly that: a restart writes only what is new, and so
 * a PMU on a full disk starts as long as nothing changed. Returns true if it wrote.
 */
export function writeIfChanged(file: string, content: string, mode = 0o600): boolean {
  let current: string | undefined;
  try {
    current = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw fileError(error, 'read', file);
  }
  if (current === content) return false;
  const temp = `${file}.${process.pid}.tmp`;
  try {
    // 'wx' (O_EXCL): a link left at the temporary name is never followed.
    fs.rmSync(temp, { force: true });
    fs.writeFileSync(temp, content, { mode, flag: 'wx' });
    fs.renameSync(temp, file);
  } catch (error) {
    fs.rmSync(temp, { force: true });
    throw fileError(error, 'write', file);
  }
  return true;
}
