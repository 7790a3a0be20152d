/**
 * The data directory `pmu serve` uses (./pmu-data by default): the PMU file, the users file,
 * the admin credential and the Unix socket. Everything holding a secret is mode 0600 in a
 * 0700 directory, and is refused if another user owns it or may write it
 * (lib/server/private-files.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkPrivateDirectory, readPrivateFile, runningUid } from '../server/private-files';
import { addUser, UserDirectory } from '../server/users';
import { PmuError } from '../unit/errors';
import { onFile, writeIfChanged } from './file-errors';

const DEFAULT_DATA_DIR = 'pmu-data';

export interface DataDir {
  dir: string;
  unitFile: string;
  usersFile: string;
  credentialFile: string;
  socketPath: string;
  /** The running server's pid, so `pmu user` can tell it to reload the users file. */
  pidFile: string;
}

/** What the admin credential file holds: enough for a client on this machine to connect. */
export interface Credential {
  user: string;
  secret: string;
  /** Filled in by `pmu serve` once it listens. */
  tcp?: string;
  unix?: string;
  /** For a tls:// server with its own certificate: the file a client trusts it by. */
  tlsCa?: string;
}

export function dataDir(dir = DEFAULT_DATA_DIR): DataDir {
  const resolved = path.resolve(dir);
  return {
    dir: resolved,
    unitFile: path.join(resolved, 'unit.pmu'),
    usersFile: process.env.PMU_USERS_FILE ? path.resolve(process.env.PMU_USERS_FILE) : path.join(resolved, 'users.json'),
    credentialFile: path.join(resolved, 'admin.credential.json'),
    socketPath: path.join(resolved, 'pmu.sock'),
    pidFile: path.join(resolved, 'pmu.pid'),
  };
}

/**
 * Creates the directory, and an admin user with its credential file unless the users file
 * already has an admin (`pmu user add` may have made the file first). Returns true if it made one.
 */
export function ensureAdmin(layout: DataDir): boolean {
  makeDataDir(layout);
  const existing = present(layout.usersFile) ? UserDirectory.load(layout.usersFile) : undefined;
  if (existing?.hasAdmin()) return false;
  const name = existing?.has('admin') ? 'pmu-admin' : 'admin';
  const secret = onFile('write', layout.usersFile, () => addUser(layout.usersFile, name, { admin: true }));
  writeCredential(layout.credentialFile, { user: name, secret });
  return true;
}

/** Whether anything is at `file`, a dangling link included (fs.existsSync says no to one). */
export function present(file: string): boolean {
  try {
    fs.lstatSync(file);
    return true;
  } catch {
    return false;
  }
}

const DATA_DIRECTORY = { what: 'data directory', hint: 'or choose another --data' };

/**
 * Creates the data directory itself, never a missing parent: a typo in --data should not
 * quietly build a tree somewhere. One that is there must be the running user's and writable by
 * no one else (EACCESS otherwise, with the chmod or chown to run). Returns true if it made the
 * directory.
 */
export function makeDataDir(layout: DataDir): boolean {
  if (fs.existsSync(layout.dir)) {
    if (!fs.statSync(layout.dir).isDirectory()) throw new PmuError('EEXIST', `${layout.dir} exists and is not a directory: choose another --data`);
    checkDataDir(layout);
    return false;
  }
  const parent = path.dirname(layout.dir);
  if (!fs.existsSync(parent)) throw new PmuError('ENOENT', `cannot create the data directory ${layout.dir}: its parent ${parent} does not exist; create it first or choose another --data`);
  onFile('create', layout.dir, () => fs.mkdirSync(layout.dir, { mode: 0o700 }), 'or choose another --data');
  // Made 0700 (less under a umask); the parents above it are checked all the same, and a
  // directory refused for them is not left behind.
  try {
    checkDataDir(layout);
  } catch (error) {
    fs.rmdirSync(layout.dir);
    throw error;
  }
  return true;
}

/** Refuses (EACCESS) a data directory another user owns or may write, or one under a parent others may write. */
export function checkDataDir(layout: DataDir): void {
  onFile('check', layout.dir, () => checkPrivateDirectory(layout.dir, DATA_DIRECTORY), 'or choose another --data');
}

/**
 * The admin credential, if the file exists; a damaged one is refused (ECORRUPT) with what to do,
 * never ignored, and so is one another user owns or may read or write, or a link (EACCESS): it
 * says whom to log in as and where.
 */
export function readCredential(file: string): Credential | undefined {
  if (!present(file)) return undefined;
  let parsed: Credential | undefined;
  try {
    onFile('check', path.dirname(file), () => checkPrivateDirectory(path.dirname(file), DATA_DIRECTORY), 'or choose another --data');
    parsed = JSON.parse(onFile('read', file, () => readPrivateFile(file, 'admin credential'))) as Credential;
  } catch (error) {
    if (error instanceof PmuError) throw error;
    throw new PmuError('ECORRUPT', `admin credential ${file} is not valid JSON (${(error as Error).message}); restore it, or delete it and make an admin with: pmu user add NAME --admin`);
  }
  if (typeof parsed?.user !== 'string' || typeof parsed.secret !== 'string') {
    throw new PmuError('ECORRUPT', `admin credential ${file} must hold { "user": "...", "secret": "..." }; restore it, or delete it and make an admin with: pmu user add NAME --admin`);
  }
  return parsed;
}

/** Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot. */
export function processStartTime(pid: number): string {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is in parentheses and may hold spaces and parentheses itself.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const start = fields[22 - 3];
  if (!/^\d+$/.test(start ?? '')) throw new PmuError('ESYS', `cannot read the start time of process ${pid} from /proc/${pid}/stat`);
  return start;
}

/** What `pmu serve` writes to its pid file: its pid and its start time (see runningServer). */
export function pidFileContent(pid = process.pid): string {
  return `${pid} ${processStartTime(pid)}\n`;
}

/**
 * The pid of a `pmu serve` running on this data directory, if there is one. `distrust` hears
 * why a pid file that is there names no one to signal (not a process that is simply gone).
 *
 * A pid file leads to a signal only if
 * 1. it passes the checks of a file holding secrets (ours, a regular file, mode 0600), in a data
 *    directory that passes them too: no other user can have written it. This is what stops a
 *    forger, who could otherwise name any process, with any content;
 * 2. the process it names is ours and started when the file says (field 22 of /proc/PID/stat,
 *    written next to the pid): a server killed with -9 leaves its file behind, and its pid may
 *    be anyone's by now;
 * 3. that process runs node, and its command line is `pmu serve` of this very data directory
 *    (its --data, else ./pmu-data, resolved against /proc/PID/cwd, compared as real paths).
 * A random token in the file would add nothing to 2: only we can write the file (1), and the
 * start time already tells a reused pid apart. The file of a server from before the start time
 * was written fails 2: it is not signalled, and reloads by its watch of the users file.
 */
export function runningServer(layout: DataDir, distrust: (why: string) => void = () => undefined): number | undefined {
  if (!present(layout.pidFile)) return undefined;
  let text: string;
  try {
    checkDataDir(layout);
    text = readPrivateFile(layout.pidFile, 'pid file');
  } catch (error) {
    distrust((error as Error).message);
    return undefined;
  }
  const [pidText, startText] = text.trim().split(/\s+/);
  const pid = Number(pidText);
  if (!/^\d+$/.test(pidText ?? '') || !Number.isSafeInteger(pid) || pid <= 0) {
    distrust(`pid file ${layout.pidFile} does not hold a pid`);
    return undefined;
  }
  let start: string;
  let owner: number;
  let exe: string;
  let args: string[];
  let cwd: string;
  try {
    start = processStartTime(pid);
    owner = fs.statSync(`/proc/${pid}`).uid;
    exe = fs.readlinkSync(`/proc/${pid}/exe`);
    args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
    cwd = fs.readlinkSync(`/proc/${pid}/cwd`);
  } catch {
    return undefined; // gone: a stale file of a server that did not stop cleanly
  }
  const not = (what: string) => {
    distrust(`pid file ${layout.pidFile} names process ${pid}, ${what}`);
    return undefined;
  };
  if (start !== startText) return not('which is not the process that wrote it (its start time is not the one in the file)');
  if (owner !== runningUid()) return not(`which is uid ${owner}'s, not yours (uid ${runningUid()})`);
  if (!/^node/.test(path.basename(exe)) && exe !== process.execPath) return not(`which runs ${exe}, not node`);
  const serveAt = args.indexOf('serve');
  if (serveAt < 1 || !args.slice(1, serveAt).some((arg) => /pmu/.test(path.basename(arg)))) return not('which is not a pmu serve');
  let data = 'pmu-data';
  for (let i = serveAt + 1; i < args.length; i++) {
    if (args[i] === '--') break;
    if (args[i] === '--data' && i + 1 < args.length) data = args[++i];
    else if (args[i].startsWith('--data=')) data = args[i].slice('--data='.length);
  }
  const real = (dir: string) => {
    try {
      return fs.realpathSync(dir);
    } catch {
      return undefined;
    }
  };
  const served = real(path.resolve(cwd, data));
  if (served === undefined || served !== real(layout.dir)) return not(`which serves ${path.resolve(cwd, data)}, not ${layout.dir}`);
  return pid;
}

/** Writes the credential unless the file holds exactly it already; returns true if it wrote. */
export function writeCredential(file: string, credential: Credential): boolean {
  return writeIfChanged(file, JSON.stringify(credential, null, 2) + '\n');
}
