/** RemoteRegion behaves like LocalRegion: writes, reads, flushes, CAS, fences, bounds; plus watchWriters and pipelining. */
import { PmuClient } from '../lib/client/client';
import { RemoteRegion, WriterEvent } from '../lib/client/remote-region';
import { Harness, startServer } from './fixtures/net-harness';
import { removeTempDirs } from './helpers/temp';
import { waitFor } from './helpers/wait';

let h: Harness;
let admin: PmuClient;

beforeAll(async () => {
  h = await startServer();
  admin = await h.connect('admin');
});
afterAll(async () => {
  await h.close();
  removeTempDirs();
});

describe.each(['tcp', 'unix'] as const)('over %s', (transport) => {
  let region: RemoteRegion;
  beforeAll(async () => {
    await admin.createRegion(`data-${transport}`, 1 << 20, { owner: 'primary', grants: [{ user: 'backup', rights: 'r' }] });
    const primary = await h.connect('primary', { url: h.addresses[transport] });
    region = await primary.openRegion(`data-${transport}`);
  });

  test('context carries name, handle, base, size and rights', () => {
    expect(region.context).toMatchObject({ name: `data-${transport}`, size: 1 << 20, rights: 'rw' });
    expect(region.context.base).toBeGreaterThan(0);
    expect(region.size).toBe(1 << 20);
  });

  test.each(['flushed', 'mapped'] as const)("a '%s' write is read back, also through the unit on the server", async (durability) => {
    const data = Buffer.from(`written ${durability}`);
    await region.write(100, data, { durability });
    expect((await region.read(100, data.length)).equals(data)).toBe(true);
    const local = h.unit.openRegion(`data-${transport}`);
    expect(local.readSync(100, data.length).equals(data)).toBe(true);
  });

  test('flush of a range and of the whole region: each runs an msync on the server; a range outside the region is EBOUNDS and runs none', async () => {
    await region.write(0, Buffer.alloc(4096, 1), { durability: 'mapped' });
    const before = h.unit.stats().flushes;
    await region.flush(0, 4096);
    expect(h.unit.stats().flushes).toBe(before + 1);
    await region.flush();
    expect(h.unit.stats().flushes).toBe(before + 2);
    await expect(region.flush(region.size - 4095, 4096)).rejects.toMatchObject({ code: 'EBOUNDS' });
    expect(h.unit.stats().flushes).toBe(before + 2);
    expect(h.unit.openRegion(`data-${transport}`).readSync(0, 4096).equals(Buffer.alloc(4096, 1))).toBe(true);
  });

  test('compareAndSwap swaps only when the word holds the expected value, with bigint values', async () => {
    const big = 0xfedc_ba98_7654_3210n;
    expect(await region.compareAndSwap(6144, 0n, big)).toBe(0n);
    expect(await region.compareAndSwap(6144, 0n, 1n)).toBe(big);
    expect(await region.compareAndSwap(6144, big, 7n, { durability: 'mapped' })).toBe(big);
    expect((await region.read(6144, 8)).readBigUInt64LE()).toBe(7n);
    await expect(region.compareAndSwap(6145, 0n, 1n)).rejects.toMatchObject({ code: 'EALIGN' });
  });

  test('a fenced write lands while the epoch matches and is EFENCED once it changed', async () => {
    const epochAt = 1024;
    await region.compareAndSwap(epochAt, (await region.read(epochAt, 8)).readBigUInt64LE(), 5n);
    await region.write(2048, Buffer.from('fenced ok'), { fence: { offset: epochAt, epoch: 5n } });
    await region.compareAndSwap(epochAt, 5n, 6n);
    await expect(region.write(2048, Buffer.from('zombie'), { fence: { offset: epochAt, epoch: 5n } })).rejects.toMatchObject({ code: 'EFENCED' });
    expect((await region.read(2048, 9)).toString()).toBe('fenced ok');
  });

  test('bad arguments fail like LocalRegion: EBOUNDS, EINVAL', async () => {
    await expect(region.write((1 << 20) - 2, Buffer.alloc(4))).rejects.toMatchObject({ code: 'EBOUNDS' });
    await expect(region.read(-1, 4)).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(region.write(0, 'text' as unknown as Buffer)).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(region.write(0, Buffer.alloc(1), { durability: 'eventually' as never })).rejects.toMatchObject({ code: 'EINVAL' });
  });

  test('a thousand pipelined writes complete, each with its own reply', async () => {
    const writes = Array.from({ length: 1000 }, (_, i) => {
      const record = Buffer.alloc(64);
      record.writeUInt32LE(i);
      return region.write(8192 + i * 64, record, { durability: i % 2 ? 'mapped' : 'flushed' });
    });
    await Promise.all(writes);
    const all = await region.read(8192, 64 * 1000);
    for (let i = 0; i < 1000; i++) expect(all.readUInt32LE(i * 64)).toBe(i);
  });
});

test('a 16 MiB checkpoint fits in one frame, and reads longer than a frame come back whole', async () => {
  await admin.createRegion('big', 24 << 20, { owner: 'primary' });
  const primary = await h.connect('primary', { maxPayloadBytes: 16 << 20 });
  const big = await primary.openRegion('big');
  const data = Buffer.alloc(16 << 20);
  for (let i = 0; i < data.length; i += 4096) data.writeUInt32LE(i, i);
  await big.write(4096, data);
  const back = await big.read(4096, data.length + 4096);
  expect(back.subarray(0, data.length).equals(data)).toBe(true);
  await expect(big.write(0, Buffer.alloc((16 << 20) + 1))).rejects.toMatchObject({ code: 'EFRAMETOOBIG' });
});

describe('watchWriters', () => {
  let watcher: RemoteRegion;
  const events: WriterEvent[] = [];
  let unsubscribe: () => Promise<void>;

  beforeAll(async () => {
    await admin.createRegion('watched', 4096, { owner: 'primary', grants: [{ user: 'backup', rights: 'r' }] });
    const backup = await h.connect('backup');
    watcher = await backup.openRegion('watched');
    unsubscribe = await watcher.watchWriters((event) => events.push(event));
  });

  test("a writer that closes the region is reported as 'closed'", async () => {
    const primary = await h.connect('primary');
    const writer = await primary.openRegion('watched');
    await writer.close();
    await waitFor('closed event', () => events.length === 1);
    expect(events[0]).toEqual({ user: 'primary', reason: 'closed', fencedWriter: false });
  });

  test("a writer whose connection drops is reported as 'disconnected'", async () => {
    const primary = await h.connect('primary');
    await primary.openRegion('watched');
    primary.dropConnection();
    await waitFor('disconnected event', () => events.length === 2);
    expect(events[1]).toEqual({ user: 'primary', reason: 'disconnected', fencedWriter: false });
  });

  test('a writer that made fenced writes is reported with fencedWriter: true (a backup takes over on those only); its later plain re-open is not', async () => {
    const primary = await h.connect('primary');
    const writer = await primary.openRegion('watched');
    // Epoch word 0 holds 0: a write fenced on epoch 0 succeeds.
    await writer.write(8, Buffer.from('fenced'), { fence: { offset: 0, epoch: 0n } });
    await expect(writer.write(8, Buffer.from('x'), { fence: { offset: 0, epoch: 7n } })).rejects.toMatchObject({ code: 'EFENCED' });
    primary.dropConnection();
    await waitFor('fenced writer event', () => events.length === 3);
    expect(events[2]).toEqual({ user: 'primary', reason: 'disconnected', fencedWriter: true });
    events.pop(); // the tests below count the events from two
  });

  test('readers, and the subscriber itself, are not reported', async () => {
    const reader = await h.connect('backup');
    await (await reader.openRegion('watched')).close();
    await reader.close();
    // The admin writes (rw) and watches on the same connection: the others hear its close, it does not.
    const own = await admin.openRegion('watched');
    const ownEvents: WriterEvent[] = [];
    const stop = await own.watchWriters((event) => ownEvents.push(event));
    await own.close();
    // A writer after them proves the reader's close produced nothing.
    const primary = await h.connect('primary');
    await (await primary.openRegion('watched')).close();
    await waitFor('the later writer event', () => events.length === 4);
    expect(events.slice(2)).toEqual([
      { user: 'admin', reason: 'closed', fencedWriter: false },
      { user: 'primary', reason: 'closed', fencedWriter: false },
    ]);
    expect(ownEvents).toEqual([{ user: 'primary', reason: 'closed', fencedWriter: false }]);
    await stop();
  });

  test('after unsubscribing, no more events', async () => {
    await unsubscribe();
    const primary = await h.connect('primary');
    await (await primary.openRegion('watched')).close();
    // Another subscriber that still listens tells us when the event has gone out.
    const probe = await (await h.connect('backup')).openRegion('watched');
    const seen: WriterEvent[] = [];
    await probe.watchWriters((event) => seen.push(event));
    await (await primary.openRegion('watched')).close();
    await waitFor('probe event', () => seen.length === 1);
    expect(events).toHaveLength(4);
  });
});

test('a client that stops reading its replies is paused, not buffered without bound; others keep working', async () => {
  await admin.createRegion('flood', 1 << 20, { owner: 'primary' });
  const { RawPeer, SECRETS, dataPrefix } = await import('./fixtures/net-harness');
  const { Op, READ_FIXED_BYTES } = await import('../lib/wire/protocol');
  const slow = await RawPeer.connect(h.addresses.tcp);
  await slow.authenticate('primary', SECRETS.primary);
  slow.send(Op.OPEN, 0, 2, Buffer.concat([Buffer.from([0]), Buffer.from('flood')]));
  const open = (await slow.next())!;
  const handle = open.body.readUInt32LE(0);
  const base = Number(open.body.readBigUInt64LE(8));
  const key = Buffer.from(open.body.subarray(24, 40));
  slow.socket.pause();
  const request = Buffer.alloc(READ_FIXED_BYTES);
  dataPrefix(handle, key, base).copy(request);
  request.writeUInt32LE(1 << 20, 28);
  // 2000 reads of 1 MiB = 2 GiB of replies the peer never reads.
  for (let i = 0; i < 2000; i++) slow.send(Op.READ, 0, 10 + i, request);
  const requestsBefore = h.server.stats().requests;
  await waitFor('the server to stop reading the slow peer', async () => {
    const seen = h.server.stats().requests;
    await new Promise((resolve) => setTimeout(resolve, 50));
    return h.server.stats().requests === seen && seen > requestsBefore;
  });
  // Only what fits in the socket buffers was answered: a few MiB, not 2 GiB.
  expect(h.server.stats().requests - requestsBefore).toBeLessThan(200);
  expect(process.memoryUsage().rss).toBeLessThan(1024 ** 3);
  const other = await h.connect('primary');
  const region = await other.openRegion('flood');
  await region.write(0, Buffer.from('still served'));
  expect((await region.read(0, 12)).toString()).toBe('still served');
  slow.destroy();
});
