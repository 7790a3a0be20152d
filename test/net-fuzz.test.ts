/**
 * Property-based abuse of the server: random bytes, truncated frames, oversized lengths,
 * unknown opcodes, random fields in well-formed data requests (out-of-range addresses, wrong
 * keys), before and after authentication. After each case the server must still serve a
 * well-behaved client, and every reply it gave must answer a request that was sent with a
 * known error code. `npm run fuzz` runs the same properties for longer (PMU_FUZZ_RUNS).
 */
import fc from 'fast-check';
import { PmuClient } from '../lib/client/client';
import { RemoteRegion } from '../lib/client/remote-region';
import { encodeHeader, HEADER_BYTES, Op, PROTOCOL_VERSION } from '../lib/wire/protocol';
import { dataPrefix, errorCode, Harness, RawPeer, SECRETS, startServer } from './fixtures/net-harness';
import { removeTempDirs } from './helpers/temp';

const RUNS = Number(process.env.PMU_FUZZ_RUNS ?? 40);
const KNOWN = new Set(['EINVAL', 'EBOUNDS', 'ENOENT', 'EALIGN', 'EFENCED', 'EAUTH', 'EACCESS', 'EKEY', 'EPROTO', 'ETIMEDOUT', 'EFRAMETOOBIG', 'EEXIST', 'ENOSPC']);

let h: Harness;
let healthy: RemoteRegion;
let target: { handle: number; base: number; key: Buffer };
let round = 0;

beforeAll(async () => {
  h = await startServer({ handshakeTimeoutMs: 300, maxPayloadBytes: 1 << 20 });
  const admin: PmuClient = await h.connect('admin');
  await admin.createRegion('fuzz', 65536, { owner: 'primary' });
  await admin.createRegion('health', 4096);
  healthy = await admin.openRegion('health');
});
afterAll(async () => {
  await h.close();
  removeTempDirs();
});

/** The server still answers a well-behaved client correctly. */
async function expectHealthy(): Promise<void> {
  const stamp = Buffer.alloc(8);
  stamp.writeBigUInt64LE(BigInt(++round));
  await healthy.write(0, stamp, { durability: 'mapped' });
  expect((await healthy.read(0, 8)).equals(stamp)).toBe(true);
}

async function authenticatedPeer(): Promise<RawPeer> {
  const peer = await RawPeer.connect(round % 2 ? h.addresses.tcp : h.addresses.unix);
  const reply = await peer.authenticate('primary', SECRETS.primary);
  expect(reply.header.op).toBe(Op.OK);
  peer.send(Op.OPEN, 0, 2, Buffer.concat([Buffer.from([0]), Buffer.from('fuzz')]));
  const open = (await peer.next())!;
  target = { handle: open.body.readUInt32LE(0), base: Number(open.body.readBigUInt64LE(8)), key: Buffer.from(open.body.subarray(24, 40)) };
  return peer;
}

/** Reads replies until the PING sent last is answered or the server closes; checks each one. */
async function drainReplies(peer: RawPeer, sentIds: Set<number>, pingId: number): Promise<void> {
  for (;;) {
    const frame = await peer.next(5000);
    if (!frame) return;
    expect(sentIds.has(frame.header.requestId) || frame.header.requestId === 0).toBe(true);
    if (frame.header.op === Op.ERROR) expect(KNOWN).toContain(errorCode(frame));
    else expect(frame.header.op).toBe(Op.OK);
    if (frame.header.requestId === pingId) return;
  }
}

const opcode = fc.oneof(fc.constantFrom(Op.HELLO, Op.AUTH, Op.PING, Op.OPEN, Op.CLOSE, Op.CREATE, Op.DELETE, Op.LIST, Op.SET_GRANTS, Op.WRITE, Op.READ, Op.FLUSH, Op.CAS, Op.CHECKSUM, Op.WATCH, Op.UNWATCH, Op.OK, Op.ERROR, Op.EVENT), fc.integer({ min: 0, max: 255 }));

/** A well-framed request with random contents; data ops often carry the real handle and key and a near-miss address. */
const frameArbitrary = fc.record({
  op: opcode,
  flags: fc.integer({ min: 0, max: 0xffff }),
  id: fc.integer({ min: 1, max: 0xfffffff0 }),
  realPrefix: fc.boolean(),
  wrongKey: fc.boolean(),
  delta: fc.oneof(fc.integer({ min: -64, max: 65600 }), fc.integer({ min: -(2 ** 40), max: 2 ** 40 })),
  rest: fc.uint8Array({ maxLength: 80 }),
});

describe('the server survives bad input and keeps serving others', () => {
  test('random bytes before authentication', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 600 }), fc.boolean(), async (bytes, validHeaderFirst) => {
        const peer = await RawPeer.connect(h.addresses.tcp);
        const head = validHeaderFirst ? encodeHeader(Op.AUTH, 0, 1, bytes.length) : Buffer.alloc(0);
        peer.socket.write(Buffer.concat([head, Buffer.from(bytes)]));
        await expectHealthy();
        peer.destroy();
      }),
      { numRuns: RUNS },
    );
  });

  test('random well-framed requests after authentication: every reply answers a request, with a known code', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(frameArbitrary, { minLength: 1, maxLength: 6 }), async (frames) => {
        const peer = await authenticatedPeer();
        const sent = new Set<number>();
        for (const frame of frames) {
          let body = Buffer.from(frame.rest);
          if (frame.realPrefix) {
            const key = frame.wrongKey ? Buffer.alloc(16, 0xaa) : target.key;
            body = Buffer.concat([dataPrefix(target.handle, key, Math.max(0, target.base + frame.delta)), body]);
          }
          sent.add(frame.id);
          peer.send(frame.op, frame.flags, frame.id, body);
        }
        const pingId = 0xfffffff5;
        sent.add(pingId);
        peer.send(Op.PING, 0, pingId);
        await drainReplies(peer, sent, pingId);
        peer.destroy();
        await expectHealthy();
      }),
      { numRuns: RUNS },
    );
  });

  test('truncated frames, then a hang-up', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 0, max: 199 }), async (bodyLength, keep) => {
        const peer = await authenticatedPeer();
        const frame = Buffer.concat([encodeHeader(Op.WRITE, 1, 9, bodyLength), Buffer.alloc(bodyLength, 3)]);
        peer.socket.write(frame.subarray(0, Math.min(keep, frame.length - 1)));
        peer.destroy();
        await expectHealthy();
      }),
      { numRuns: RUNS },
    );
  });

  test('oversized and lying lengths are refused with EFRAMETOOBIG and the connection closed', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: (1 << 20) + 65, max: 0xffffffff }), fc.integer({ min: 0, max: 255 }), async (length, op) => {
        const peer = await authenticatedPeer();
        const header = encodeHeader(op, 0, 77, length);
        peer.socket.write(header);
        const reply = await peer.next();
        expect(errorCode(reply)).toBe('EFRAMETOOBIG');
        expect(reply!.header.requestId).toBe(77);
        await peer.waitClosed();
        await expectHealthy();
      }),
      { numRuns: Math.ceil(RUNS / 2) },
    );
  });

  test('a frame of another protocol version is refused with EPROTO', async () => {
    const peer = await authenticatedPeer();
    const header = encodeHeader(Op.PING, 0, 5, 0);
    header[4] = PROTOCOL_VERSION + 1;
    peer.socket.write(header);
    expect(errorCode(await peer.next())).toBe('EPROTO');
    await peer.waitClosed();
    await expectHealthy();
    expect(HEADER_BYTES).toBe(12);
  });

  test('no connection is left behind once the peers are gone', async () => {
    await expectHealthy();
    // The fuzz peers hung up or were closed; handshake timeouts reap the silent ones.
    const { waitFor } = await import('./helpers/wait');
    await waitFor('abandoned connections to be closed', () => h.server.stats().connectionsOpen <= h.clients.length, 5000);
  });
});
