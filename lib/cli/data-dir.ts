/**
 * The data directory `pmu serve` uses (./pmu-data by default): the PMU file, the users file,
 * the admin credential and the Unix socket. Everything holding a secret is mode 0600 in a
 * 0700 directory.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { addUser, UserDirectory } from '../server/users';
import { PmuError } from '../unit/errors';

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
  const existing = fs.existsSync(layout.usersFile) ? UserDirectory.load(layout.usersFile) : undefined;
  if (existing?.hasAdmin()) return false;
  const name = existing?.has('admin') ? 'pmu-admin' : 'admin';
  const secret = addUser(layout.usersFile, name, { admin: true });
  writeCredential(layout.credentialFile, { user: name, secret });
  return true;
}

/**
 * Creates the data directory itself, never a missing parent: a typo in --data should not
 * quietly build a tree somewhere. Returns true if it made the directory.
 */
export function makeDataDir(layout: DataDir): boolean {
  if (fs.existsSync(layout.dir)) {
    if (!fs.statSync(layout.dir).isDirectory()) throw new PmuError('EEXIST', `${layout.dir} exists and is not a directory: choose another --data`);
    return false;
  }
  const parent = path.dirname(layout.dir);
  if (!fs.existsSync(parent)) throw new PmuError('ENOENT', `cannot create the data directory ${layout.dir}: its parent ${parent} does not exist; create it first or choose another --data`);
  fs.mkdirSync(layout.dir, { mode: 0o700 });
  return true;
}

/** The admin credential, if the file exists; a damaged one is refused (ECORRUPT) with what to do, never ignored. */
export function readCredential(file: string): Credential | undefined {
  if (!fs.existsSync(file)) return undefined;
  let parsed: Credential | undefined;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as Credential;
  } catch (error) {
    throw new PmuError('ECORRUPT', `admin credential ${file} is not valid JSON (${(error as Error).message}); restore it, or delete it and make an admin with: pmu user add NAME --admin`);
  }
  if (typeof parsed?.user !== 'string' || typeof parsed.secret !== 'string') {
    throw new PmuError('ECORRUPT', `admin credential ${file} must hold { "user": "...", "secret": "..." }; restore it, or delete it and make an admin with: pmu user add NAME --admin`);
  }
  return parsed;
}

/** The pid of a `pmu serve` running on this data directory, if there is one. */
export function runningServer(layout: DataDir): number | undefined {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(layout.pidFile, 'utf8').trim());
    // Signal only a process that is a pmu server: a stale pid may belong to anything by now.
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (!Number.isSafeInteger(pid) || pid <= 0 || !cmdline.includes('serve') || !cmdline.some((arg) => /pmu/.test(arg))) return undefined;
  } catch {
    return undefined;
  }
  return pid;
}

export function writeCredential(file: string, credential: Credential): void {
  const temp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temp, JSON.stringify(credential, null, 2) + '\n', { mode: 0o600 });
  fs.renameSync(temp, file);
}
