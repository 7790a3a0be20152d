/**
 * Revocation takes effect on live connections: grants changed, a region deleted, a user
 * removed from (or given a new secret in) the users file. Bounded: ~5 s.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PmuClient } from '../lib/client/client';
import { PmuServer } from '../lib/server/server';
import { addUser, removeUser, UserDirectory } from '../lib/server/users';
import { WriterEvent } from '../lib/client/remote-region';
import { PersistentMemoryUnit } from '../lib/unit/unit';
import { Harness, memoryLog, startServer } from './fixtures/net-harness';
import { removeTempDirs, tempDir } from './helpers/temp';
import { waitFor } from './helpers/wait';

afterAll(removeTempDirs);

describe('grants and regions changed through the server', () => {
  let h: Harness;
  let admin: PmuClient;
  beforeAll(async () => {
    h = await startServer();
    admin = await h.connect('admin');
  });
  afterAll(() => h.close());

  test('grants set to [] stop a live rw connection from writing and reading; the owner is unaffected', async () => {
    await admin.createRegion('revoked', 4096, { owner: 'primary', grants: [{ user: 'backup', rights: 'rw' }] });
    const backup = await (await h.connect('backup')).openRegion('revoked');
    const owner = await (await h.connect('primary')).openRegion('revoked');
    await backup.write(0, Buffer.from('before'));
    await admin.setGrants('revoked', []);
    await expect(backup.write(0, Buffer.from('after!'))).rejects.toMatchObject({ code: 'EACCESS', message: expect.stringContaining('no longer has rights') });
    await expect(backup.read(0, 6)).rejects.toMatchObject({ code: 'EACCESS' });
    expect((await owner.read(0, 6)).toString()).toBe('before');
    await owner.write(0, Buffer.from('owner!'));
    // Opening again is refused like any region the user may not open.
    await expect((await h.connect('backup')).openRegion('revoked')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  test('rw downgraded to r: writes refused at once, reads go on, watchers hear the writer leave', async () => {
    await admin.createRegion('downgraded', 4096, { owner: 'primary', grants: [{ user: 'backup', rights: 'rw' }] });
    const watcher = await (await h.connect('primary')).openRegion('downgraded');
    const events: WriterEvent[] = [];
    await watcher.watchWriters((event) => events.push(event));
    const backup = await (await h.connect('backup')).openRegion('downgraded');
    await backup.write(0, Buffer.from('rw'));
    await admin.setGrants('downgraded', [{ user: 'backup', rights: 'r' }]);
    await expect(backup.write(0, Buffer.from('no'))).rejects.toMatchObject({ code: 'EACCESS' });
    expect((await backup.read(0, 2)).toString()).toBe('rw');
    await waitFor('the writer-closed event', () => events.length === 1);
    expect(events[0]).toEqual({ user: 'backup', reason: 'closed', fencedWriter: false });
  });

  test('a revoked watcher stops hearing events', async () => {
    await admin.createRegion('unwatched', 4096, { owner: 'primary', grants: [{ user: 'backup', rights: 'r' }] });
    const watcher = await (await h.connect('backup')).openRegion('unwatched');
    const events: WriterEvent[] = [];
    await watcher.watchWriters((event) => events.push(event));
    const control = await (await h.connect('admin')).openRegion('unwatched');
    const controlEvents: WriterEvent[] = [];
    await control.watchWriters((event) => controlEvents.push(event));
    await admin.setGrants('unwatched', []);
    const writer = await h.connect('primary');
    await (await writer.openRegion('unwatched')).close();
    await waitFor('the control watcher to hear it', () => controlEvents.length === 1);
    expect(events).toEqual([]);
  });

  test('a region deleted by an admin is ENOENT on every connection that held it', async () => {
    await admin.createRegion('deleted', 4096, { owner: 'primary' });
    const held = await (await h.connect('primary')).openRegion('deleted');
    await held.write(0, Buffer.from('x'));
    await admin.deleteRegion('deleted');
    // A new region may reuse the handle; the old binding must not reach it.
    await admin.createRegion('reuser', 4096, { owner: 'primary' });
    await expect(held.write(0, Buffer.from('y'), { durability: 'mapped' })).rejects.toMatchObject({ code: 'ENOENT', message: expect.stringContaining('was deleted') });
  });

  test('grants changed on the unit directly take effect after server.revalidate()', async () => {
    await admin.createRegion('direct', 4096, { owner: 'primary', grants: [{ user: 'backup', rights: 'r' }] });
    const backup = await (await h.connect('backup')).openRegion('direct');
    await backup.read(0, 1);
    h.unit.setGrants('direct', []);
    h.server.revalidate();
    await expect(backup.read(0, 1)).rejects.toMatchObject({ code: 'EACCESS' });
  });
});

describe('users file changes', () => {
  let dir: string;
  let file: string;
  let server: PmuServer;
  let url: string;
  const log = memoryLog();
  const clients: PmuClient[] = [];
  const secrets: Record<string, string> = {};

  beforeAll(async () => {
    dir = tempDir('pmu-revoke-');
    file = path.join(dir, 'users.json');
    secrets.admin = addUser(file, 'admin', { admin: true });
    for (const name of ['gone', 'watched', 'signalled', 'rotated', 'stays', 'retried']) secrets[name] = addUser(file, name);
    const unit = PersistentMemoryUnit.open(path.join(dir, 'unit.pmu'), { size: 4 << 20 });
    server = new PmuServer({ unit, users: file, tcp: { host: '127.0.0.1', port: 0 }, log, usersPollMs: 200 });
    url = (await server.listen()).tcp!;
    const admin = await connect('admin');
    for (const name of ['gone', 'watched', 'signalled', 'rotated', 'stays', 'retried']) await admin.createRegion(`r-${name}`, 4096, { owner: name });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await server.close();
  });

  async function connect(user: string): Promise<PmuClient> {
    const client = await PmuClient.connect(url, { user, secret: secrets[user], timeoutMs: 3000 });
    clients.push(client);
    return client;
  }

  test('a user removed from users.json is disconnected at once (reloadUsers, as on SIGHUP) and cannot log in again', async () => {
    const client = await connect('gone');
    const region = await client.openRegion('r-gone');
    await region.write(0, Buffer.from('mine'));
    removeUser(file, 'gone');
    expect(server.reloadUsers()).toBe(true);
    await waitFor('the connection to close', () => !client.connected);
    await expect(connect('gone')).rejects.toMatchObject({ code: 'EAUTH' });
    expect(log.events.some((e) => e.event === 'auth.revoked' && e.user === 'gone')).toBe(true);
    // Others keep working.
    await (await (await connect('stays')).openRegion('r-stays')).write(0, Buffer.from('ok'));
  });

  test('the server watches the file: a removal is noticed without any signal', async () => {
    const client = await connect('watched');
    await (await client.openRegion('r-watched')).write(0, Buffer.from('x'));
    const reloads = server.stats().usersReloads;
    removeUser(file, 'watched');
    await waitFor('the watch to reload', () => server.stats().usersReloads > reloads, 5000);
    await waitFor('the connection to close', () => !client.connected);
  });

  test('a new secret for a user closes its live connections', async () => {
    const client = await connect('rotated');
    await client.openRegion('r-rotated');
    const directory = UserDirectory.load(file);
    directory.set('rotated', 'a-brand-new-secret-0123456789', false);
    directory.save(file);
    server.reloadUsers();
    await waitFor('the connection to close', () => !client.connected);
  });

  test('an unreadable users file keeps the users already loaded, and says so in the log and the stats', async () => {
    const before = fs.readFileSync(file, 'utf8');
    const failures = server.stats().usersReloadFailures;
    fs.writeFileSync(file, '{ half-written', { mode: 0o600 });
    expect(server.reloadUsers()).toBe(false);
    expect(log.events.some((e) => e.event === 'users.reload-failed' && e.file === file && String(e.error).includes('not valid JSON'))).toBe(true);
    expect(server.stats().usersReloadFailures).toBeGreaterThan(failures);
    await expect(connect('stays')).resolves.toBeDefined();
    fs.writeFileSync(file, before, { mode: 0o600 });
  });

  test('a reload that failed is retried: a removal whose reload hit EMFILE still closes the connection, with no new event', async () => {
    const client = await connect('retried');
    await (await client.openRegion('r-retried')).write(0, Buffer.from('x'));
    const failures = server.stats().usersReloadFailures;
    // `pmu user remove retried`, and the server's reload of it fails once (as with EMFILE):
    // the file is already as it should be, so no later change will prompt another reload.
    const directory = UserDirectory.load(file);
    directory.delete('retried');
    const realFs = require('node:fs') as typeof fs;
    // The users file is opened, checked and read through one descriptor: the open is what fails.
    const realOpen = realFs.openSync;
    let failing = true;
    const spy = jest.spyOn(realFs, 'openSync').mockImplementation(((target: fs.PathLike, flags?: fs.OpenMode, mode?: fs.Mode) => {
      if (failing && target === file) throw Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' });
      return realOpen(target, flags as fs.OpenMode, mode);
    }) as typeof fs.openSync);
    try {
      directory.save(file);
      await waitFor('the reload to fail', () => server.stats().usersReloadFailures > failures, 5000);
    } finally {
      failing = false;
      spy.mockRestore();
    }
    expect(log.events.some((e) => e.event === 'users.reload-failed' && e.file === file && String(e.error).includes('EMFILE'))).toBe(true);
    // The next poll tries again (usersPollMs 200 here): the removal takes effect.
    await waitFor('the connection to close', () => !client.connected, 3000);
    await expect(connect('retried')).rejects.toMatchObject({ code: 'EAUTH' });
  });
});

