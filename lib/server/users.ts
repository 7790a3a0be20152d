/**
 * The users a server knows: name -> secret and whether the user is an admin (may create,
 * delete and grant regions). Kept in a JSON file, mode 0600, normally <data>/users.json:
 *   { "users": { "admin": { "secret": "<hex>", "admin": true }, "backup": { "secret": "<hex>" } } }
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PmuError } from '../unit/errors';
import { checkPrivateDirectory, readPrivateFile } from './private-files';
import { USER_MAX_BYTES } from '../unit/unit';
import { checkName } from '../unit/validate';
import { newSecret } from '../wire/auth';

/** The users file's directory may also be root's (/etc/pmu); the data directory is checked as well where it holds it. */
const USERS_DIRECTORY = { what: "the users file's directory", alsoOwnedBy: [0] };

export interface UserRecord {
  secret: string;
  admin: boolean;
}

export class UserDirectory {
  private readonly users: Map<string, UserRecord>;

  constructor(users: Record<string, { secret: string; admin?: boolean }> = {}) {
    this.users = new Map();
    for (const [name, record] of Object.entries(users)) {
      if (record === null || typeof record !== 'object' || Array.isArray(record)) throw new PmuError('EINVAL', `user '${name}' must be an object { "secret": "...", "admin": true|false }, got ${JSON.stringify(record)}`);
      if (record.admin !== undefined && typeof record.admin !== 'boolean') throw new PmuError('EINVAL', `user '${name}': "admin" must be true or false, got ${JSON.stringify(record.admin)}`);
      this.set(name, record.secret, record.admin === true);
    }
  }

  /**
   * Reads a users file. Refuses (EACCESS) one that is a symbolic link, that another user owns
   * or that others may read or write, since it holds the secrets that let users in, and one in
   * a directory another user owns or may write (lib/server/private-files.ts).
   */
  static load(file: string): UserDirectory {
    let text: string;
    try {
      checkPrivateDirectory(path.dirname(path.resolve(file)), USERS_DIRECTORY);
      text = readPrivateFile(file, 'users file');
    } catch (error) {
      if (error instanceof PmuError) throw error;
      throw new PmuError('ENOENT', `cannot read users file ${file}: ${(error as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new PmuError('EINVAL', `users file ${file} is not valid JSON: ${(error as Error).message}`);
    }
    const users = (parsed as { users?: unknown })?.users;
    const shape = '{ "users": { NAME: { "secret": "...", "admin": true|false } } }';
    if (users === null || typeof users !== 'object' || Array.isArray(users)) throw new PmuError('EINVAL', `users file ${file} must hold ${shape}; fix it by hand (nothing was changed)`);
    try {
      return new UserDirectory(users as Record<string, { secret: string; admin?: boolean }>);
    } catch (error) {
      throw new PmuError('EINVAL', `users file ${file}: ${(error as Error).message}; fix it by hand (nothing was changed)`);
    }
  }

  set(name: string, secret: string, admin: boolean): void {
    checkName('user name', name, USER_MAX_BYTES);
    if (typeof secret !== 'string' || secret.length < 16) throw new PmuError('EINVAL', `user '${name}' needs a secret of at least 16 characters`);
    this.users.set(name, { secret, admin });
  }

  get(name: string): UserRecord | undefined {
    return this.users.get(name);
  }

  delete(name: string): boolean {
    return this.users.delete(name);
  }

  has(name: string): boolean {
    return this.users.has(name);
  }

  hasAdmin(): boolean {
    for (const record of this.users.values()) if (record.admin) return true;
    return false;
  }

  get size(): number {
    return this.users.size;
  }

  toJSON(): { users: Record<string, UserRecord> } {
    return { users: Object.fromEntries(this.users) };
  }

  /** Writes the file atomically (temp file + rename) with mode 0600. */
  save(file: string): void {
    const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
    try {
      // 'wx' (O_EXCL): a link left at the temporary name is never followed.
      fs.rmSync(temp, { force: true });
      fs.writeFileSync(temp, JSON.stringify(this.toJSON(), null, 2) + '\n', { mode: 0o600, flag: 'wx' });
      fs.renameSync(temp, file);
    } catch (error) {
      fs.rmSync(temp, { force: true }); // a full disk leaves no half-written temp file behind
      throw error;
    }
  }
}

/**
 * Adds a user to a users file (creating the file if needed) and returns the new secret.
 * A running server notices the change (it watches the file; `pmu user` also signals it).
 */
export function addUser(file: string, name: string, options: { admin?: boolean; secret?: string } = {}): string {
  const directory = fs.existsSync(file) ? UserDirectory.load(file) : new UserDirectory();
  if (directory.has(name)) throw new PmuError('EEXIST', `user '${name}' already exists in ${file}`);
  const secret = options.secret ?? newSecret();
  directory.set(name, secret, options.admin === true);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  // A new file is put only where no other user may swap it.
  checkPrivateDirectory(path.dirname(path.resolve(file)), USERS_DIRECTORY);
  directory.save(file);
  return secret;
}

/** Removes a user from a users file; a running server closes that user's connections when it reloads. */
export function removeUser(file: string, name: string): void {
  const directory = UserDirectory.load(file);
  if (!directory.has(name)) throw new PmuError('ENOENT', `no user '${name}' in ${file}`);
  directory.delete(name);
  directory.save(file);
}
