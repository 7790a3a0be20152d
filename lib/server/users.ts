/**
 * The users a server knows: name -> secret and whether the user is an admin (may create,
 * delete and grant regions). Kept in a JSON file, mode 0600, normally <data>/users.json:
 *   { "users": { "admin": { "secret": "<hex>", "admin": true }, "backup": { "secret": "<hex>" } } }
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PmuError } from '../unit/errors';
import { USER_MAX_BYTES } from '../unit/unit';
import { checkName } from '../unit/validate';
import { newSecret } from '../wire/auth';

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

  /** Reads a users file; refuses one that others may read, since it holds secrets. */
  static load(file: string): UserDirectory {
    let text: string;
    let mode: number;
    try {
      mode = fs.statSync(file).mode;
      text = fs.readFileSync(file, 'utf8');
    } catch (error) {
      throw new PmuError('ENOENT', `cannot read users file ${file}: ${(error as Error).message}`);
    }
    if ((mode & 0o077) !== 0) {
      throw new PmuError('EACCESS', `users file ${file} is readable by other users (mode ${(mode & 0o777).toString(8)}); run: chmod 600 ${file}`);
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
    fs.writeFileSync(temp, JSON.stringify(this.toJSON(), null, 2) + '\n', { mode: 0o600 });
    fs.renameSync(temp, file);
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
