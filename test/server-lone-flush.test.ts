/**
 * Where a server runs a lone durable writer's msync ('auto', lib/unit/group-commit.ts and
 * lib/server/sole-sender.ts): on the event loop while that writer's connection is the only one
 * talking and the write is small, on the libuv pool otherwise, so no other client waits for
 * another's msync. unit.stats().inlineFlushes tells the two apart (the strace test in
 * fault-inject.test.ts proves the inline one fails safely).
 */
import { performance } from 'node:perf_hooks';
import { PmuServer } from '../lib/server/server';
import { SoleSender } from '../lib/server/sole-sender';
import { AUTO_INLINE_MAX_BYTES } from '../lib/unit/group-commit';
import { PersistentMemoryUnit } from '../lib/unit/unit';
import { RemoteRegion } from '../lib/client/remote-region';
import { Harness, startServer, testUsers } from './fixtures/net-harness';
import { removeTempDirs, tempFile } from './helpers/temp';

afterAll(removeTempDirs);

/** Writes 'mapped' until this connection has been the only one talking for the server's window. */
async function becomeSoleSender(region: RemoteRegion): Promise<void> {
  const since = performance.now();
  while (performance.now() - since < 6) await region.write(0, Buffer.from('x'), { durability: 'mapped' });
}

describe("a server's lone durable writer", () => {
  let h: Harness;
  let region: RemoteRegion;

  beforeAll(async () => {
    h = await startServer();
    const admin = await h.connect('admin');
    await admin.createRegion('lone', 1 << 20, { owner: 'primary', grants: [{ user: 'backup', rights: 'r' }] });
    region = await (await h.connect('primary')).openRegion('lone');
  });
  afterAll(() => h.close());

  test("the unit of a server is in 'auto'", () => {
    expect(h.unit.loneFlush).toBe('auto');
  });

  test('alone, each small flushed write is flushed on the event loop, once, and read back', async () => {
    await becomeSoleSender(region);
    const before = h.unit.stats();
    for (let i = 0; i < 20; i++) await region.write(i * 4096, Buffer.alloc(4096, i + 1));
    const after = h.unit.stats();
    expect(after.flushes - before.flushes).toBe(20);
    expect(after.inlineFlushes - before.inlineFlushes).toBe(20);
    expect((await region.read(19 * 4096, 4096)).equals(Buffer.alloc(4096, 20))).toBe(true);
  });

  test('a write over the inline bound goes to the pool even alone', async () => {
    await becomeSoleSender(region);
    const before = h.unit.stats();
    await region.write(0, Buffer.alloc(AUTO_INLINE_MAX_BYTES + 1, 9));
    const after = h.unit.stats();
    expect(after.flushes - before.flushes).toBe(1);
    expect(after.inlineFlushes - before.inlineFlushes).toBe(0);
  });

  test('while another connection is talking, every flush goes to the pool', async () => {
    const reader = await (await h.connect('backup')).openRegion('lone');
    let reading = true;
    // Eight reads always in flight: the other connection never falls silent for the window.
    const readers = Array.from({ length: 8 }, async () => {
      while (reading) await reader.read(0, 64);
    });
    try {
      // The reader's frames are already arriving: wait until it has been seen (a first read back).
      await reader.read(0, 64);
      const before = h.unit.stats();
      for (let i = 0; i < 30; i++) await region.write(i * 64, Buffer.alloc(64, 3));
      const after = h.unit.stats();
      expect(after.flushes - before.flushes).toBe(30);
      expect(after.inlineFlushes - before.inlineFlushes).toBe(0);
    } finally {
      reading = false;
      await Promise.all(readers);
    }
  });

  test('concurrent durable writers share pool flushes (a batch of more than one is never inline)', async () => {
    await becomeSoleSender(region);
    const before = h.unit.stats();
    await Promise.all(Array.from({ length: 16 }, (_, i) => region.write(i * 4096, Buffer.alloc(4096, 5))));
    const after = h.unit.stats();
    expect(after.flushedWrites - before.flushedWrites).toBe(16);
    expect(after.flushes - before.flushes).toBeLessThan(16);
    // Every write but possibly the first (a batch of one on its own) was flushed on the pool.
    expect(after.inlineFlushes - before.inlineFlushes).toBeLessThanOrEqual(1);
  });
});

test("PmuServer({ loneFlush: 'pool' }) keeps every flush on the pool; another value is EINVAL", async () => {
  const h = await startServer({ loneFlush: 'pool' });
  try {
    expect(h.unit.loneFlush).toBe('pool');
    const admin = await h.connect('admin');
    await admin.createRegion('p', 1 << 16);
    const region = await admin.openRegion('p');
    await becomeSoleSender(region);
    for (let i = 0; i < 5; i++) await region.write(0, Buffer.alloc(64, i));
    expect(h.unit.stats()).toMatchObject({ flushes: 5, inlineFlushes: 0 });
  } finally {
    await h.close();
  }
  const unit = PersistentMemoryUnit.open(tempFile(), { size: 1 << 20 });
  try {
    expect(() => new PmuServer({ unit, users: testUsers(), loneFlush: 'inline' as never })).toThrow(expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining("'auto' or 'pool'") }));
  } finally {
    await unit.close();
  }
});

describe('SoleSender', () => {
  test('alone only once one sender has been the only one for the window; a second sender resets it', async () => {
    const sole = new SoleSender(20);
    const a = {};
    const b = {};
    expect(sole.alone()).toBe(true); // nobody has sent anything
    sole.note(a);
    expect(sole.alone()).toBe(false);
    const since = performance.now();
    while (performance.now() - since < 25) sole.note(a); // the same sender again and again
    expect(sole.alone()).toBe(true);
    sole.note(b);
    expect(sole.alone()).toBe(false);
    sole.forget(b);
    sole.note(b); // a closed connection's successor counts as a new sender
    expect(sole.alone()).toBe(false);
  });
});
