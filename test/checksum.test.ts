/**
 * CHECKSUM: the CRC32C of a range, computed where the bytes are (LocalRegion on the libuv pool,
 * RemoteRegion by one request). Equal to crc32c of the bytes read; refused like READ (key,
 * right, bounds) and above the 16 MiB cap; a hostile peer's malformed requests get error
 * replies and the server goes on serving.
 */
import * as path from 'node:path';
import { PmuClient } from '../lib/client/client';
import { RemoteRegion } from '../lib/client/remote-region';
import { crc32c, MAX_CHECKSUM_BYTES } from '../lib/unit/native';
import { PersistentMemoryUnit } from '../lib/unit/unit';
import { CHECKSUM_FIXED_BYTES, Op } from '../lib/wire/protocol';
import { dataPrefix, errorCode, Harness, rawOpen, RawPeer, replyTo, SECRETS, startServer } from './fixtures/net-harness';
import { removeTempDirs, tempDir } from './helpers/temp';

afterAll(() => removeTempDirs());

function pattern(length: number, seed: number): Buffer {
  const bytes = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + seed * 7 + (i >> 9)) & 0xff;
  return bytes;
}

describe('LocalRegion.checksum', () => {
  let unit: PersistentMemoryUnit;
  beforeAll(() => {
    unit = PersistentMemoryUnit.open(path.join(tempDir('pmu-checksum-'), 'unit.pmu'), { size: 64 * 1024 * 1024 });
  });
  afterAll(() => unit.close());

  test('equals crc32c of the bytes read, for empty, small, unaligned and 16 MiB ranges', async () => {
    const region = unit.createRegion('local', 20 * 1024 * 1024);
    await region.write(0, pattern(region.size, 1), { durability: 'mapped' });
    for (const [offset, length] of [[0, 0], [0, 1], [3, 4093], [4096, 65536], [1, MAX_CHECKSUM_BYTES], [region.size - 5, 5]]) {
      expect(await region.checksum(offset, length)).toBe(crc32c(region.readSync(offset, length)));
    }
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283); // the CRC32C check value: the same function
  });

  test('a changed byte changes the checksum; bounds, the cap and bad arguments are refused with codes', async () => {
    const region = unit.createRegion('local-args', 1 << 20);
    const before = await region.checksum(0, 4096);
    await region.write(100, Buffer.from([1]), { durability: 'mapped' });
    expect(await region.checksum(0, 4096)).not.toBe(before);
    await expect(region.checksum(region.size - 10, 11)).rejects.toMatchObject({ code: 'EBOUNDS' });
    await expect(region.checksum(region.size + 1, 0)).rejects.toMatchObject({ code: 'EBOUNDS' });
    await expect(region.checksum(-1, 4)).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(region.checksum(0, 1.5)).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(region.checksum(0, Number.MAX_SAFE_INTEGER)).rejects.toMatchObject({ code: 'EBOUNDS' });
    const big = unit.createRegion('local-big', MAX_CHECKSUM_BYTES + 4096);
    await expect(big.checksum(0, MAX_CHECKSUM_BYTES + 1)).rejects.toMatchObject({ code: 'EINVAL', message: expect.stringMatching(/in pieces/) });
  });

  test('the addon re-checks: a wrapped address or an oversized length is a status, never a read', () => {
    const native = (unit as unknown as { native: { checksum(h: number, v: number, l: number, done: () => void): number } }).native;
    const entry = unit.openRegion('local-args').context;
    const done = jest.fn();
    expect(native.checksum(entry.handle, entry.base, 2 ** 53, done)).not.toBe(0);
    expect(native.checksum(entry.handle, 2 ** 53 - 1, 16, done)).not.toBe(0);
    expect(native.checksum(entry.handle, entry.base + entry.size - 1, 2, done)).not.toBe(0);
    expect(native.checksum(entry.handle, -1, 2, done)).not.toBe(0);
    expect(native.checksum(entry.handle, entry.base, 2 ** 32 + 1, done)).not.toBe(0);
    expect(native.checksum(999999, entry.base, 2, done)).not.toBe(0);
    expect(done).not.toHaveBeenCalled();
  });

  test('close() waits for checksums in flight', async () => {
    const other = PersistentMemoryUnit.open(path.join(tempDir('pmu-checksum-'), 'unit.pmu'), { size: 32 * 1024 * 1024 });
    const region = other.createRegion('r', MAX_CHECKSUM_BYTES);
    const sums = [region.checksum(0, MAX_CHECKSUM_BYTES), region.checksum(0, MAX_CHECKSUM_BYTES)];
    expect(() => other.closeSync()).toThrow(expect.objectContaining({ code: 'EBUSY' }));
    await other.close();
    const zeros = crc32c(Buffer.alloc(MAX_CHECKSUM_BYTES));
    expect(await Promise.all(sums)).toEqual([zeros, zeros]);
  });
});

describe('CHECKSUM over the wire', () => {
  let h: Harness;
  let region: RemoteRegion;
  let backup: PmuClient;
  beforeAll(async () => {
    h = await startServer();
    const admin = await h.connect('admin');
    await admin.createRegion('remote', 4 << 20, { owner: 'primary', grants: [{ user: 'backup', rights: 'r' }] });
    region = await (await h.connect('primary')).openRegion('remote');
    backup = await h.connect('backup');
  });
  afterAll(() => h.close());

  test('equals crc32c of the bytes read, for the writer and for a reader with r only', async () => {
    await region.write(0, pattern(region.size, 2), { durability: 'mapped' });
    const reader = await backup.openRegion('remote', { rights: 'r' });
    for (const [offset, length] of [[0, 0], [7, 1000], [0, region.size], [region.size - 3, 3]]) {
      const expected = crc32c(await region.read(offset, length));
      expect(await region.checksum(offset, length)).toBe(expected);
      expect(await reader.checksum(offset, length)).toBe(expected);
    }
    expect(await region.checksum(0, 4096)).toBe(await h.unit.openRegion('remote').checksum(0, 4096));
  });

  test('bounds, the cap and bad arguments are refused with codes', async () => {
    await expect(region.checksum(region.size - 1, 2)).rejects.toMatchObject({ code: 'EBOUNDS' });
    await expect(region.checksum(0, MAX_CHECKSUM_BYTES + 1)).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(region.checksum(-4, 4)).rejects.toMatchObject({ code: 'EINVAL' });
  });

  test('a hostile peer: wrong key, no right, bad lengths, short and long bodies get error replies; the server still serves', async () => {
    const peer = await RawPeer.connect(h.addresses.tcp);
    await peer.authenticate('backup', SECRETS.backup);
    const { handle, base, key } = await rawOpen(peer, 'remote', 2, 1);
    const ask = async (id: number, body: Buffer) => {
      peer.send(Op.CHECKSUM, 0, id, body);
      return replyTo(peer, id);
    };
    const request = (vaddr: number, length: bigint, withKey = key, withHandle = handle) => {
      const body = Buffer.alloc(CHECKSUM_FIXED_BYTES);
      dataPrefix(withHandle, withKey, vaddr).copy(body);
      body.writeBigUInt64LE(length, 28);
      return body;
    };
    const ok = await ask(3, request(base, 16n));
    expect(ok?.header.op).toBe(Op.OK);
    expect(ok?.body.readUInt32LE(0)).toBe(crc32c(await region.read(0, 16)));
    expect(errorCode(await ask(4, request(base, 0xffff_ffff_ffff_ffffn)))).toBe('EBOUNDS');
    expect(errorCode(await ask(5, request(base, 2n ** 53n - 1n)))).toBe('EBOUNDS');
    expect(errorCode(await ask(6, request(base + region.size, 1n)))).toBe('EBOUNDS');
    expect(errorCode(await ask(7, request(base - 1, 1n)))).toBe('EBOUNDS');
    expect(errorCode(await ask(8, request(base, 16n, Buffer.alloc(16, 9))))).toBe('EKEY');
    expect(errorCode(await ask(9, request(base, 16n, key, handle + 1000)))).toBe('EKEY');
    expect(errorCode(await ask(10, request(base, 16n).subarray(0, 30)))).toBe('EPROTO');
    expect(errorCode(await ask(11, Buffer.concat([request(base, 16n), Buffer.alloc(4)])))).toBe('EPROTO');
    expect(errorCode(await ask(12, Buffer.alloc(0)))).toBe('EPROTO');
    const after = await ask(13, request(base + 8, 8n));
    expect(after?.header.op).toBe(Op.OK);
    peer.destroy();
    expect(await region.checksum(0, 16)).toBe(crc32c(await region.read(0, 16)));
  });

  test('a connection whose user has no grant cannot open the region, so cannot checksum it', async () => {
    const peer = await RawPeer.connect(h.addresses.tcp);
    await peer.authenticate('stranger', SECRETS.stranger);
    await expect(rawOpen(peer, 'remote', 2)).rejects.toThrow(/ENOENT/);
    const body = Buffer.alloc(CHECKSUM_FIXED_BYTES);
    dataPrefix(region.context.handle, region.key, region.context.base).copy(body);
    body.writeBigUInt64LE(16n, 28);
    peer.send(Op.CHECKSUM, 0, 3, body);
    expect(errorCode(await replyTo(peer, 3))).toBe('EKEY');
    peer.destroy();
  });
});
