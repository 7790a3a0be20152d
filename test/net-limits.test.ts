/**
 * What one client can make the server hold is bounded by configuration: subscriptions (per
 * connection, per region), events for a subscriber that does not read (coalesced, then the
 * subscriber is disconnected), request bodies (refused from their first bytes when they could
 * not be accepted; a budget per user and in total), connections (total, per user, in their
 * handshake). Each bound is an error for that client alone: a well-behaved client is served.
 * Bounded: ~10 s.
 */
import { PmuClient } from '../lib/client/client';
import { encodeHeader, Op, WRITE_FIXED_BYTES } from '../lib/wire/protocol';
import { dataPrefix, errorCode, Harness, memoryLog, RawPeer, rawOpen, replyTo, SECRETS, startServer } from './fixtures/net-harness';
import { removeTempDirs } from './helpers/temp';
import { waitFor } from './helpers/wait';

afterAll(removeTempDirs);

function watchBody(handle: number, key: Buffer): Buffer {
  return dataPrefix(handle, key, 0).subarray(0, 20);
}

/** Sends WATCH `count` times; the codes of the replies ('OK' or the error code). */
async function watchMany(peer: RawPeer, handle: number, key: Buffer, count: number, firstId: number): Promise<string[]> {
  for (let i = 0; i < count; i++) peer.send(Op.WATCH, 0, firstId + i, watchBody(handle, key));
  const codes: string[] = [];
  for (let i = 0; i < count; i++) {
    const reply = await replyTo(peer, firstId + i);
    codes.push(reply?.header.op === Op.OK ? 'OK' : (errorCode(reply) ?? 'closed'));
  }
  return codes;
}

describe('subscriptions and events', () => {
  let h: Harness;
  const log = memoryLog();
  beforeAll(async () => {
    h = await startServer({ limits: { maxSubscriptionsPerConnection: 8, maxSubscriptionsPerRegion: 12, maxEventBacklogBytes: 100 }, log });
    const admin = await h.connect('admin');
    await admin.createRegion('watched', 1 << 20, { owner: 'primary', grants: [{ user: 'backup', rights: 'r' }] });
  });
  afterAll(() => h.close());

  test('WATCH past maxSubscriptionsPerConnection or maxSubscriptionsPerRegion is ETOOMANY; the connection keeps working', async () => {
    const first = await RawPeer.connect(h.addresses.tcp);
    await first.authenticate('backup', SECRETS.backup);
    const a = await rawOpen(first, 'watched', 2);
    const codes = await watchMany(first, a.handle, a.key, 100, 100);
    expect(codes.slice(0, 8)).toEqual(Array(8).fill('OK'));
    expect(new Set(codes.slice(8))).toEqual(new Set(['ETOOMANY']));
    const second = await RawPeer.connect(h.addresses.unix);
    await second.authenticate('backup', SECRETS.backup);
    const b = await rawOpen(second, 'watched', 2);
    // 8 on the first connection + 4 here = the region's 12.
    expect(await watchMany(second, b.handle, b.key, 6, 100)).toEqual(['OK', 'OK', 'OK', 'OK', 'ETOOMANY', 'ETOOMANY']);
    second.send(Op.PING, 0, 999);
    expect((await replyTo(second, 999))?.header.op).toBe(Op.OK);
    expect(h.server.stats().limitHits).toMatchObject({ maxSubscriptionsPerConnection: 92, maxSubscriptionsPerRegion: 2 });
    expect(log.events.some((e) => e.event === 'limit.hit' && e.limit === 'maxSubscriptionsPerConnection' && e.user === 'backup')).toBe(true);
    first.destroy();
    second.destroy();
    await waitFor('both gone', () => h.server.stats().connectionsOpen <= 1);
  });

  /** A subscriber whose socket is backed up: it asked for MiBs of READ replies and reads nothing. */
  async function stalledSubscriber(subscriptions: number): Promise<RawPeer> {
    const peer = await RawPeer.connect(h.addresses.tcp);
    await peer.authenticate('backup', SECRETS.backup);
    const { handle, key, base } = await rawOpen(peer, 'watched', 2);
    expect(await watchMany(peer, handle, key, subscriptions, 10)).toEqual(Array(subscriptions).fill('OK'));
    peer.socket.pause();
    const read = Buffer.alloc(32);
    dataPrefix(handle, key, base).copy(read);
    read.writeUInt32LE(1 << 20, 28);
    const before = h.server.stats().requests;
    for (let i = 0; i < 64; i++) peer.send(Op.READ, 0, 1000 + i, read);
    // The server stops reading it once its replies back up.
    await waitFor('the server to stop reading the peer', async () => {
      const seen = h.server.stats().requests;
      await new Promise((resolve) => setTimeout(resolve, 50));
      return h.server.stats().requests === seen && seen > before;
    });
    return peer;
  }

  async function writerCycles(cycles: number): Promise<void> {
    const writer = await h.connect('primary');
    for (let i = 0; i < cycles; i++) await (await writer.openRegion('watched')).close();
    await writer.close();
  }

  test('events for a subscriber that does not read are coalesced: one per subscription, not one per cycle', async () => {
    const peer = await stalledSubscriber(4);
    await writerCycles(50);
    expect(h.server.stats().limitHits.maxEventBacklogBytes ?? 0).toBe(0);
    // Now it reads: 64 READ replies, then 4 events (one per subscription) and no more.
    peer.socket.resume();
    let events = 0;
    let replies = 0;
    while (replies < 64 || events < 4) {
      const frame = await peer.next();
      if (!frame) throw new Error('closed');
      if (frame.header.op === Op.EVENT) events++;
      else replies++;
    }
    // A later event arrives by itself: nothing else was waiting in between.
    await writerCycles(1);
    let later = 0;
    while (later < 4) {
      const frame = await peer.next();
      expect(frame?.header.op).toBe(Op.EVENT);
      later++;
    }
    expect(events + replies).toBe(68);
    peer.destroy();
  });

  test('a subscriber whose event backlog passes maxEventBacklogBytes is disconnected; others are served', async () => {
    const hits = h.server.stats().limitHits.maxEventBacklogBytes ?? 0;
    const peer = await stalledSubscriber(8);
    await writerCycles(1);
    await waitFor('the slow subscriber to be cut off', () => (h.server.stats().limitHits.maxEventBacklogBytes ?? 0) > hits);
    peer.socket.resume();
    await peer.waitClosed();
    const reader = await (await h.connect('backup')).openRegion('watched');
    expect((await reader.read(0, 4)).length).toBe(4);
  });
});

describe('request bodies', () => {
  let h: Harness;
  let admin: PmuClient;
  beforeAll(async () => {
    h = await startServer({ limits: { maxPayloadBytes: 4 << 20, maxBufferedBytesPerUser: 10 << 20, maxBufferedBytes: 13 << 20 } });
    admin = await h.connect('admin');
    await admin.createRegion('body', 8 << 20, { owner: 'primary', grants: [{ user: 'backup', rights: 'rw' }, { user: 'stranger', rights: 'r' }] });
  });
  afterAll(() => h.close());

  /** A WRITE header and its 44 fixed bytes, claiming a payload of `payload` bytes of which none follow. */
  function writeStart(handle: number, key: Buffer, vaddr: number, payload: number, id: number): Buffer {
    const fixed = Buffer.alloc(WRITE_FIXED_BYTES);
    dataPrefix(handle, key, vaddr).copy(fixed);
    return Buffer.concat([encodeHeader(Op.WRITE, 0, id, WRITE_FIXED_BYTES + payload), fixed]);
  }

  test('a WRITE the connection could not make is refused from its first bytes, before its body is buffered; the stream stays in step', async () => {
    const peer = await RawPeer.connect(h.addresses.tcp);
    await peer.authenticate('stranger', SECRETS.stranger);
    const reader = await rawOpen(peer, 'body', 2);
    const cases: Array<[number, Buffer, number, string]> = [
      [1, Buffer.alloc(16), 0, 'EKEY'], // a handle not opened here
      [reader.handle, Buffer.alloc(16), reader.base, 'EKEY'], // wrong key
      [reader.handle, reader.key, reader.base, 'EACCESS'], // opened read-only
    ];
    let id = 10;
    for (const [handle, key, vaddr, code] of cases) {
      peer.socket.write(writeStart(handle, key, vaddr, 4 << 20, ++id));
      // Answered while the body has not even started to arrive.
      expect(errorCode(await replyTo(peer, id))).toBe(code);
      expect(h.server.stats().bufferedBytes).toBe(0);
      peer.socket.write(Buffer.alloc(4 << 20));
    }
    peer.send(Op.PING, 0, 99);
    expect((await replyTo(peer, 99))?.header.op).toBe(Op.OK);
    peer.destroy();
  });

  test('out of range is refused early too (EBOUNDS)', async () => {
    const peer = await RawPeer.connect(h.addresses.tcp);
    await peer.authenticate('primary', SECRETS.primary);
    const region = await rawOpen(peer, 'body', 2);
    peer.socket.write(writeStart(region.handle, region.key, region.base + (8 << 20) - 10, 4 << 20, 3));
    expect(errorCode(await replyTo(peer, 3))).toBe('EBOUNDS');
    peer.destroy();
  });

  test('bodies arriving in pieces count the bytes received against maxBufferedBytesPerUser and maxBufferedBytes: EBUSY past them, released when done', async () => {
    const open = async (user: 'primary' | 'backup') => {
      const peer = await RawPeer.connect(h.addresses.tcp);
      await peer.authenticate(user, SECRETS[user]);
      return { peer, region: await rawOpen(peer, 'body', 2, 3) };
    };
    const started: RawPeer[] = [];
    // Each sends all of its 4 MiB WRITE but the last byte: what it holds is what it sent.
    const body = WRITE_FIXED_BYTES + (4 << 20) - 1;
    const start = async (user: 'primary' | 'backup', expected: string | undefined) => {
      const { peer, region } = await open(user);
      peer.socket.write(writeStart(region.handle, region.key, region.base, 4 << 20, 7));
      peer.socket.write(Buffer.alloc((4 << 20) - 1, 7));
      if (expected) expect(errorCode(await replyTo(peer, 7))).toBe(expected);
      else {
        const admitted = started.length + 1;
        await waitFor('the body to be admitted', () => h.server.stats().bufferedBytes === admitted * body);
        started.push(peer);
      }
    };
    await start('primary', undefined);
    await start('primary', undefined);
    await start('primary', 'EBUSY'); // 12 MiB > 10 MiB for one user
    await start('backup', undefined); // 12 MiB in total, within 13 MiB
    await start('backup', 'EBUSY'); // 16 MiB > 13 MiB in total
    expect(h.server.stats().limitHits).toMatchObject({ maxBufferedBytesPerUser: 1, maxBufferedBytes: 1 });
    expect(h.server.stats().bufferedBytes).toBe(3 * body);
    // A well-behaved client is still served: small writes arrive whole and need no budget.
    const client = await h.connect('primary');
    const region = await client.openRegion('body');
    await region.write(100, Buffer.from('served'));
    expect((await region.read(100, 6)).toString()).toBe('served');
    // A body that completes releases its share; so does a connection that drops mid-body.
    const finisher = started[0];
    finisher.socket.write(Buffer.alloc(1, 7));
    expect((await replyTo(finisher, 7))?.header.op).toBe(Op.OK);
    for (const peer of started) peer.destroy();
    await waitFor('the budget to be released', () => h.server.stats().bufferedBytes === 0);
    expect((await region.read(0, 4)).equals(Buffer.alloc(4, 7))).toBe(true);
  });

  test('a claim holds nothing: only the bytes received count', async () => {
    const peer = await RawPeer.connect(h.addresses.tcp);
    await peer.authenticate('primary', SECRETS.primary);
    const region = await rawOpen(peer, 'body', 2, 3);
    peer.socket.write(writeStart(region.handle, region.key, region.base, 4 << 20, 5));
    await waitFor('the fixed fields to count', () => h.server.stats().bufferedBytes === WRITE_FIXED_BYTES);
    peer.socket.write(Buffer.alloc(1000));
    await waitFor('the next piece to count', () => h.server.stats().bufferedBytes === WRITE_FIXED_BYTES + 1000);
    peer.destroy();
    await waitFor('the budget to be released', () => h.server.stats().bufferedBytes === 0);
  });

  test('requests other than WRITE are small: a larger one is EFRAMETOOBIG from its header', async () => {
    const peer = await RawPeer.connect(h.addresses.tcp);
    await peer.authenticate('admin', SECRETS.admin);
    peer.socket.write(encodeHeader(Op.CREATE, 0, 5, 1 << 20));
    expect(errorCode(await replyTo(peer, 5))).toBe('EFRAMETOOBIG');
    await peer.waitClosed();
  });
});

describe('connections', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startServer({ limits: { maxConnections: 12, maxConnectionsPerUser: 3, maxPendingHandshakes: 4, handshakeTimeoutMs: 60_000 } });
  });
  afterAll(() => h.close());

  test('silent connections cannot lock others out: past maxPendingHandshakes the oldest silent one is closed with EBUSY', async () => {
    const silent: RawPeer[] = [];
    for (let i = 0; i < 10; i++) silent.push(await RawPeer.connect(h.addresses.tcp));
    await waitFor('the oldest six to be evicted', () => silent.filter((p) => p.closed).length === 6);
    expect(silent.slice(0, 6).every((p) => p.closed)).toBe(true);
    const first = await silent[0].next(); // HELLO, then the refusal
    expect(first?.header.op).toBe(Op.HELLO);
    expect(errorCode(await silent[0].next())).toBe('EBUSY');
    // A well-behaved client still gets in at once (well within the 60 s handshake timeout).
    const client = await h.connect('primary');
    await expect(client.listRegions()).resolves.toEqual([]);
    for (const peer of silent) peer.destroy();
    await client.close();
    await waitFor('all closed', () => h.server.stats().connectionsOpen === 0);
  });

  test('past maxConnectionsPerUser a login is EBUSY for that user only', async () => {
    const mine = [await h.connect('primary'), await h.connect('primary'), await h.connect('primary')];
    await expect(PmuClient.connect(h.addresses.tcp, { user: 'primary', secret: SECRETS.primary })).rejects.toMatchObject({ code: 'EBUSY', message: expect.stringContaining('maxConnectionsPerUser') });
    const other = await h.connect('backup');
    await expect(other.listRegions()).resolves.toEqual([]);
    await mine[0].close();
    await waitFor('a slot to free', () => h.server.stats().connectionsOpen === 3);
    await expect(h.connect('primary')).resolves.toBeDefined();
    await Promise.all(h.clients.map((c) => c.close()));
    await waitFor('all closed', () => h.server.stats().connectionsOpen === 0);
  });

  test('past maxConnections a new connection is refused with EBUSY (request id 0), and served again once one leaves', async () => {
    const users = ['admin', 'primary', 'backup', 'stranger'] as const;
    const held: PmuClient[] = [];
    for (const user of users) for (let i = 0; i < 3; i++) held.push(await h.connect(user));
    expect(h.server.stats().connectionsOpen).toBe(12);
    const refused = await RawPeer.connect(h.addresses.tcp);
    const frame = await refused.next();
    expect(frame?.header.requestId).toBe(0);
    expect(errorCode(frame)).toBe('EBUSY');
    await refused.waitClosed();
    await held[0].close();
    await waitFor('a slot to free', () => h.server.stats().connectionsOpen === 11);
    const client = await h.connect('admin');
    await expect(client.listRegions()).resolves.toEqual([]);
  });
});

/**
 * The red team's lockout: WRITE headers claiming the whole budget, each followed by just the
 * 28 bytes that get it admitted (two users, four connections, 224 bytes in all), held open
 * with a drip. With the budget counting bytes received, others' large WRITEs go through; a
 * body that stops moving is dropped after bodyStallTimeoutMs and its budget returns.
 */
describe('budget lockout', () => {
  const claim = 64 * 1024 * 1024 - WRITE_FIXED_BYTES; // a 64 MiB body: four fill the default 256 MiB
  /** A WRITE header claiming `payload` bytes and the 28 bytes of its data prefix, nothing more. */
  function claimOnly(handle: number, key: Buffer, vaddr: number, payload: number, id: number): Buffer {
    return Buffer.concat([encodeHeader(Op.WRITE, 0, id, WRITE_FIXED_BYTES + payload), dataPrefix(handle, key, vaddr)]);
  }
  async function attacker(h: Harness, user: 'primary' | 'backup', id: number): Promise<RawPeer> {
    const peer = await RawPeer.connect(h.addresses.tcp);
    await peer.authenticate(user, SECRETS[user]);
    const region = await rawOpen(peer, 'locked', 2, 3);
    peer.socket.write(claimOnly(region.handle, region.key, region.base, claim, id));
    return peer;
  }

  test('with attackers holding claims of the whole budget, another user\'s 16 MiB and 200 KiB WRITEs succeed', async () => {
    const h = await startServer({ unitBytes: 96 << 20 });
    try {
      const admin = await h.connect('admin');
      await admin.createRegion('locked', 64 << 20, { owner: 'primary', grants: [{ user: 'backup', rights: 'rw' }, { user: 'stranger', rights: 'rw' }] });
      const attackers = [await attacker(h, 'primary', 7), await attacker(h, 'primary', 7), await attacker(h, 'backup', 7), await attacker(h, 'backup', 7)];
      await waitFor('the claims to be admitted', () => h.server.stats().bufferedBytes >= 4 * 28);
      const victim = await (await h.connect('stranger')).openRegion('locked');
      const big = Buffer.alloc(16 << 20, 0x5a);
      await victim.write(0, big);
      await victim.write(32 << 20, Buffer.alloc(200 * 1024, 0x33));
      expect((await victim.read((16 << 20) - 4, 4)).equals(Buffer.alloc(4, 0x5a))).toBe(true);
      expect((await victim.read(32 << 20, 4)).equals(Buffer.alloc(4, 0x33))).toBe(true);
      expect(h.server.stats().limitHits.maxBufferedBytes ?? 0).toBe(0);
      // 4 × 28 bytes received: that is all they hold.
      expect(h.server.stats().bufferedBytes).toBe(4 * 28);
      expect(attackers.every((peer) => !peer.closed)).toBe(true);
      for (const peer of attackers) peer.destroy();
      await waitFor('the budget to be released', () => h.server.stats().bufferedBytes === 0);
    } finally {
      await h.close();
    }
  });

  test('a drip-fed body is dropped after bodyStallTimeoutMs (ETIMEDOUT, connection closed) and its budget returns; a moving body is not', async () => {
    const h = await startServer({ limits: { bodyStallTimeoutMs: 1000 } });
    try {
      const admin = await h.connect('admin');
      await admin.createRegion('locked', 8 << 20, { owner: 'primary', grants: [{ user: 'backup', rights: 'rw' }] });
      const dripper = await RawPeer.connect(h.addresses.tcp);
      await dripper.authenticate('primary', SECRETS.primary);
      const region = await rawOpen(dripper, 'locked', 2, 3);
      dripper.socket.write(claimOnly(region.handle, region.key, region.base, 4 << 20, 9));
      const started = Date.now();
      let dripped = 0;
      const drip = setInterval(() => {
        if (dripper.closed) return;
        dripper.socket.write(Buffer.alloc(1));
        dripped++;
      }, 100);
      try {
        await waitFor('a few drips to count', () => dripped >= 3 && h.server.stats().bufferedBytes === 28 + dripped);
        // A body that keeps moving (256 KiB every 200 ms) outlives the deadline many times over.
        const mover = await RawPeer.connect(h.addresses.tcp);
        await mover.authenticate('backup', SECRETS.backup);
        const moving = await rawOpen(mover, 'locked', 2, 3);
        const pieces = 10;
        mover.socket.write(claimOnly(moving.handle, moving.key, moving.base + (4 << 20), pieces * (256 << 10), 11));
        mover.socket.write(Buffer.alloc(16));
        for (let i = 0; i < pieces; i++) {
          await new Promise((resolve) => setTimeout(resolve, 200));
          mover.socket.write(Buffer.alloc(256 << 10, 1));
        }
        const done = await replyTo(mover, 11);
        expect(errorCode(done) ?? 'OK').toBe('OK');
        mover.destroy();
        const refusal = await replyTo(dripper, 9);
        expect(errorCode(refusal)).toBe('ETIMEDOUT');
        expect(refusal!.body.toString()).toContain('bodyStallTimeoutMs');
        await dripper.waitClosed();
      } finally {
        clearInterval(drip);
      }
      expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
      await waitFor('the budget to be released', () => h.server.stats().bufferedBytes === 0);
      expect(h.server.stats().limitHits.bodyStallTimeoutMs).toBe(1);
    } finally {
      await h.close();
    }
  });
});
