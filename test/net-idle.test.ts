/**
 * idleTimeoutMs: a connection with no traffic either way for that long is closed with an
 * ETIMEDOUT error frame; one whose client keeps talking (requests, keep-alive pings, even a
 * WRITE whose body arrives slowly) is not. The server checks idleness a few times per period
 * rather than re-arming a timer on every read and write, so the close comes between
 * idleTimeoutMs and 1.25 × idleTimeoutMs of silence (docs/PROTOCOL.md, "Limits").
 * Bounded: ~3 s.
 */
import { PmuClient } from '../lib/client/client';
import { encodeHeader, Op, WRITE_FIXED_BYTES } from '../lib/wire/protocol';
import { dataPrefix, errorCode, Harness, RawFrame, RawPeer, rawOpen, replyTo, SECRETS, startServer } from './fixtures/net-harness';
import { removeTempDirs } from './helpers/temp';

const IDLE_MS = 200;

afterAll(removeTempDirs);

let h: Harness;
beforeAll(async () => {
  // The handshake deadline is far away: only the idle rule can close these connections.
  h = await startServer({ limits: { idleTimeoutMs: IDLE_MS, handshakeTimeoutMs: 60_000 } });
  const admin = await h.connect('admin');
  await admin.createRegion('idle', 1 << 20, { owner: 'primary' });
});
afterAll(() => h.close());

/** Resolves after `ms` of the test's own pacing (the traffic pattern under test, not a wait for an event). */
function pace(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits (bounded) for the server to close `peer`; returns the last frame it sent and when the close came. */
async function closedBy(peer: RawPeer, timeoutMs: number): Promise<{ last: RawFrame | undefined; at: number }> {
  let last: RawFrame | undefined;
  for (;;) {
    const frame = await peer.next(timeoutMs);
    if (frame === undefined) return { last, at: performance.now() };
    last = frame;
  }
}

test('a silent authenticated connection is closed with ETIMEDOUT after idleTimeoutMs, not before', async () => {
  const peer = await RawPeer.connect(h.addresses.tcp);
  expect((await peer.authenticate('primary', SECRETS.primary)).header.op).toBe(Op.OK);
  const quietFrom = performance.now();
  const { last, at } = await closedBy(peer, 10 * IDLE_MS);
  expect(errorCode(last)).toBe('ETIMEDOUT');
  expect(last!.body.toString()).toContain(`idle for ${IDLE_MS} ms`);
  // Timers may fire a little early by the clock read here; the rule is "not well before".
  expect(at - quietFrom).toBeGreaterThanOrEqual(IDLE_MS - 5);
  expect(at - quietFrom).toBeLessThan(4 * IDLE_MS);
});

test('a silent connection still in its handshake is closed too (the idle rule does not wait for AUTH)', async () => {
  const peer = await RawPeer.connect(h.addresses.unix);
  expect((await peer.next())?.header.op).toBe(Op.HELLO);
  const { last } = await closedBy(peer, 10 * IDLE_MS);
  expect(errorCode(last)).toBe('ETIMEDOUT');
});

test('a connection that keeps sending requests with gaps under idleTimeoutMs stays open, then closes once silent', async () => {
  const peer = await RawPeer.connect(h.addresses.tcp);
  await peer.authenticate('primary', SECRETS.primary);
  const started = performance.now();
  let id = 10;
  // Three idle periods of traffic, at most 0.6 × idleTimeoutMs apart.
  while (performance.now() - started < 3 * IDLE_MS) {
    peer.send(Op.PING, 0, ++id);
    const reply = await replyTo(peer, id);
    expect(reply?.header.op).toBe(Op.OK);
    await pace(0.6 * IDLE_MS);
  }
  expect(peer.closed).toBe(false);
  const { last } = await closedBy(peer, 10 * IDLE_MS);
  expect(errorCode(last)).toBe('ETIMEDOUT');
});

test('a WRITE whose body trickles in counts as traffic: the connection is not closed mid-request', async () => {
  const peer = await RawPeer.connect(h.addresses.tcp);
  await peer.authenticate('primary', SECRETS.primary);
  const { handle, key, base } = await rawOpen(peer, 'idle', 2);
  const payload = Buffer.alloc(64, 0x7e);
  const body = Buffer.concat([dataPrefix(handle, key, base), Buffer.alloc(WRITE_FIXED_BYTES - 28), payload]);
  const frame = Buffer.concat([encodeHeader(Op.WRITE, 0, 3, body.length), body]);
  // One piece every 0.4 × idleTimeoutMs: the request takes several idle periods to arrive.
  const pieces = 8;
  const step = Math.ceil(frame.length / pieces);
  for (let at = 0; at < frame.length; at += step) {
    peer.socket.write(frame.subarray(at, at + step));
    await pace(0.4 * IDLE_MS);
    expect(peer.closed).toBe(false);
  }
  const reply = await replyTo(peer, 3);
  expect(reply?.header.op).toBe(Op.OK);
  expect(h.unit.openRegion('idle').readSync(0, 64)).toEqual(payload);
  peer.destroy();
});

test("PmuClient's keep-alive pings (every idleTimeoutMs / 2, from HELLO) keep an otherwise quiet client connected", async () => {
  const client = await PmuClient.connect(h.addresses.tcp, { user: 'primary', secret: SECRETS.primary, timeoutMs: 5000 });
  try {
    const region = await client.openRegion('idle');
    const accepted = h.server.stats().connectionsAccepted;
    await pace(4 * IDLE_MS);
    // Still the same connection: no reconnect happened behind the write below.
    await region.write(0, Buffer.from('still here'), { durability: 'mapped' });
    expect(h.server.stats().connectionsAccepted).toBe(accepted);
  } finally {
    await client.close();
  }
});
