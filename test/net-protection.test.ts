/**
 * Every protection rule, both ways: the allowed request succeeds, the refused one fails with
 * its code and is counted in server.stats().refusals.
 */
import { PmuClient } from '../lib/client/client';
import { Op, READ_FIXED_BYTES } from '../lib/wire/protocol';
import { RemoteRegion } from '../lib/client/remote-region';
import { dataPrefix, errorCode, Harness, RawPeer, SECRETS, startServer } from './fixtures/net-harness';
import { removeTempDirs } from './helpers/temp';

let h: Harness;
let admin: PmuClient;
let primary: PmuClient;
let backup: PmuClient;
let stranger: PmuClient;

beforeAll(async () => {
  h = await startServer();
  admin = await h.connect('admin');
  primary = await h.connect('primary');
  backup = await h.connect('backup', { url: h.addresses.unix });
  stranger = await h.connect('stranger');
  await admin.createRegion('ckpt', 65536, { owner: 'primary', grants: [{ user: 'backup', rights: 'r' }] });
});
afterAll(async () => {
  await h.close();
  removeTempDirs();
});

function refusals(code: string): number {
  return (h.server.stats().refusals as Record<string, number>)[code] ?? 0;
}

async function expectRefused(promise: Promise<unknown>, code: string): Promise<void> {
  const before = refusals(code);
  await expect(promise).rejects.toMatchObject({ code });
  expect(refusals(code)).toBe(before + 1);
}

/** Reads through a raw, authenticated socket with a hand-picked handle and key. */
async function rawRead(peer: RawPeer, handle: number, key: Buffer, vaddr: number, id: number): Promise<string | undefined> {
  const body = Buffer.alloc(READ_FIXED_BYTES);
  dataPrefix(handle, key, vaddr).copy(body);
  body.writeUInt32LE(8, 28);
  peer.send(Op.READ, 0, id, body);
  const reply = await peer.next();
  return reply?.header.op === Op.OK ? 'OK' : errorCode(reply);
}

describe('persistent memory manager operations need an admin', () => {
  test('create: admin allowed, others EACCESS', async () => {
    const made = await admin.createRegion('by-admin', 4096);
    expect(made.context.rights).toBe('rw');
    await expectRefused(primary.createRegion('by-primary', 4096), 'EACCESS');
  });

  test('set grants: admin allowed, the owner (not an admin) EACCESS', async () => {
    await admin.createRegion('granted', 4096, { owner: 'primary' });
    await expect(admin.setGrants('granted', [{ user: 'backup', rights: 'r' }])).resolves.toMatchObject({ grants: [{ user: 'backup', rights: 'r' }] });
    await expectRefused(primary.setGrants('granted', [{ user: 'stranger', rights: 'rw' }]), 'EACCESS');
  });

  test('delete: admin allowed, others EACCESS', async () => {
    await admin.createRegion('doomed', 4096, { owner: 'primary' });
    await expectRefused(primary.deleteRegion('doomed'), 'EACCESS');
    await admin.deleteRegion('doomed');
    await expectRefused(primary.openRegion('doomed'), 'ENOENT');
  });

  test('list shows a user only what the user may access; an admin sees all', async () => {
    const names = (list: Array<{ name: string }>) => list.map((r) => r.name).sort();
    expect(names(await admin.listRegions())).toEqual(expect.arrayContaining(['ckpt', 'by-admin', 'granted']));
    expect(names(await backup.listRegions())).toEqual(['ckpt', 'granted']);
    expect(names(await stranger.listRegions())).toEqual([]);
    expect((await primary.listRegions()).find((r) => r.name === 'ckpt')?.rights).toBe('rw');
    expect((await backup.listRegions()).find((r) => r.name === 'ckpt')?.rights).toBe('r');
  });
});

describe('opening a region', () => {
  test('the owner opens read-write; a user with an r grant opens read-only; a user without a grant gets ENOENT, as for a missing region', async () => {
    expect((await primary.openRegion('ckpt')).context.rights).toBe('rw');
    expect((await backup.openRegion('ckpt')).context.rights).toBe('r');
    await expectRefused(stranger.openRegion('ckpt'), 'ENOENT');
  });

  test('asking for rw with only an r grant is EACCESS; asking for r with rw is fine', async () => {
    await expectRefused(backup.openRegion('ckpt', { rights: 'rw' }), 'EACCESS');
    expect((await primary.openRegion('ckpt', { rights: 'r' })).context.rights).toBe('r');
  });

  test('a region that does not exist is ENOENT', async () => {
    await expectRefused(primary.openRegion('missing'), 'ENOENT');
  });
});

describe('data requests', () => {
  test('write: allowed with rw, EACCESS with r (also CAS)', async () => {
    const writer = await primary.openRegion('ckpt');
    const reader = await backup.openRegion('ckpt');
    await writer.write(0, Buffer.from('primary'));
    expect((await reader.read(0, 7)).toString()).toBe('primary');
    await expectRefused(reader.write(0, Buffer.from('backup!')), 'EACCESS');
    await expectRefused(reader.compareAndSwap(8, 0n, 1n), 'EACCESS');
    expect(await writer.compareAndSwap(8, 0n, 1n)).toBe(0n);
    const readOnlyWriter = await primary.openRegion('ckpt', { rights: 'r' });
    await expectRefused(readOnlyWriter.write(0, Buffer.from('x')), 'EACCESS');
  });

  test('the right key on its own connection reads; a wrong key is EKEY', async () => {
    const peer = await RawPeer.connect(h.addresses.tcp);
    await peer.authenticate('backup', SECRETS.backup);
    const name = Buffer.from('ckpt');
    peer.send(Op.OPEN, 0, 2, Buffer.concat([Buffer.from([0]), name]));
    const open = (await peer.next())!;
    expect(open.header.op).toBe(Op.OK);
    const handle = open.body.readUInt32LE(0);
    const base = Number(open.body.readBigUInt64LE(8));
    const key = Buffer.from(open.body.subarray(24, 40));
    expect(await rawRead(peer, handle, key, base, 3)).toBe('OK');
    const before = refusals('EKEY');
    const wrong = Buffer.from(key);
    wrong[0] ^= 1;
    expect(await rawRead(peer, handle, wrong, base, 4)).toBe('EKEY');
    expect(refusals('EKEY')).toBe(before + 1);
    // Every one of the key's 128 bits is checked: each single-bit forgery is EKEY, and a
    // forged WRITE leaves the region as it was.
    const original = h.unit.openRegion('ckpt').readSync(0, 64);
    for (let bit = 0; bit < 128; bit++) {
      const forged = Buffer.from(key);
      forged[bit >> 3] ^= 1 << (bit & 7);
      const write = Buffer.concat([dataPrefix(handle, forged, base), Buffer.alloc(16), Buffer.alloc(64, 0xff)]);
      peer.send(Op.WRITE, 0, 1000 + bit, write);
      const reply = await peer.next();
      expect([reply?.header.requestId, errorCode(reply)]).toEqual([1000 + bit, 'EKEY']);
    }
    expect(h.unit.openRegion('ckpt').readSync(0, 64)).toEqual(original);
    expect(refusals('EKEY')).toBe(before + 129);
    expect(await rawRead(peer, handle, key, base, 5)).toBe('OK');
    peer.destroy();
  });

  test('a key presented on another connection is EKEY, even one of the same user that opened the region too', async () => {
    const owner = await RawPeer.connect(h.addresses.tcp);
    await owner.authenticate('backup', SECRETS.backup);
    owner.send(Op.OPEN, 0, 2, Buffer.concat([Buffer.from([0]), Buffer.from('ckpt')]));
    const open = (await owner.next())!;
    const handle = open.body.readUInt32LE(0);
    const base = Number(open.body.readBigUInt64LE(8));
    const stolenKey = Buffer.from(open.body.subarray(24, 40));

    const thief = await RawPeer.connect(h.addresses.unix);
    await thief.authenticate('backup', SECRETS.backup);
    expect(await rawRead(thief, handle, stolenKey, base, 2)).toBe('EKEY');
    // Opening it on the thief's connection yields a different key; the stolen one stays worthless.
    thief.send(Op.OPEN, 0, 3, Buffer.concat([Buffer.from([0]), Buffer.from('ckpt')]));
    const own = (await thief.next())!;
    expect(own.body.subarray(24, 40).equals(stolenKey)).toBe(false);
    expect(await rawRead(thief, handle, stolenKey, base, 4)).toBe('EKEY');
    expect(await rawRead(thief, handle, Buffer.from(own.body.subarray(24, 40)), base, 5)).toBe('OK');
    owner.destroy();
    thief.destroy();
  });

  test('a handle this connection has not opened is EKEY whether or not the region exists (nothing learned about others)', async () => {
    const peer = await RawPeer.connect(h.addresses.tcp);
    await peer.authenticate('admin', SECRETS.admin);
    expect(await rawRead(peer, 999_999, Buffer.alloc(16), 0, 2)).toBe('EKEY');
    peer.destroy();
  });

  test('an address outside the region is EBOUNDS on the server as well as in the client', async () => {
    const writer = await primary.openRegion('ckpt');
    await expect(writer.read(65530, 10)).rejects.toMatchObject({ code: 'EBOUNDS' });
    const peer = await RawPeer.connect(h.addresses.tcp);
    await peer.authenticate('primary', SECRETS.primary);
    peer.send(Op.OPEN, 0, 2, Buffer.concat([Buffer.from([0]), Buffer.from('ckpt')]));
    const open = (await peer.next())!;
    const handle = open.body.readUInt32LE(0);
    const base = Number(open.body.readBigUInt64LE(8));
    const key = Buffer.from(open.body.subarray(24, 40));
    expect(await rawRead(peer, handle, key, base - 8, 3)).toBe('EBOUNDS');
    expect(await rawRead(peer, handle, key, base + 65536 - 4, 4)).toBe('EBOUNDS');
    expect(await rawRead(peer, handle, key, base + 65536 - 8, 5)).toBe('OK');
    peer.destroy();
  });

  test('a closed region refuses further requests locally with ECLOSED', async () => {
    const region: RemoteRegion = await primary.openRegion('ckpt');
    await region.close();
    await expect(region.read(0, 1)).rejects.toMatchObject({ code: 'ECLOSED' });
  });

  test("a WRITE or CAS whose durability code names no level is EINVAL and changes nothing (version 1's fence bit is such a code)", async () => {
    const peer = await RawPeer.connect(h.addresses.tcp);
    await peer.authenticate('primary', SECRETS.primary);
    peer.send(Op.OPEN, 0, 2, Buffer.concat([Buffer.from([0]), Buffer.from('ckpt')]));
    const open = (await peer.next())!;
    const handle = open.body.readUInt32LE(0);
    const base = Number(open.body.readBigUInt64LE(8));
    const key = Buffer.from(open.body.subarray(24, 40));
    const before = h.unit.openRegion('ckpt').readSync(0, 64);
    const beforeEinval = refusals('EINVAL');
    for (const [id, flags] of [[10, 2], [11, 3], [12, 0x0f]]) {
      peer.send(Op.WRITE, flags, id, Buffer.concat([dataPrefix(handle, key, base), Buffer.alloc(16), Buffer.alloc(64, 0xee)]));
      const reply = await peer.next();
      expect([reply?.header.requestId, errorCode(reply)]).toEqual([id, 'EINVAL']);
    }
    peer.send(Op.CAS, 7, 13, Buffer.concat([dataPrefix(handle, key, base + 8), Buffer.alloc(8), Buffer.alloc(8, 1)]));
    expect(errorCode(await peer.next())).toBe('EINVAL');
    expect(h.unit.openRegion('ckpt').readSync(0, 64)).toEqual(before);
    expect(refusals('EINVAL')).toBe(beforeEinval + 4);
    peer.destroy();
  });
});
