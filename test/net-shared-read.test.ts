/**
 * Plain server connections read into one buffer shared by all of them (lib/wire/shared-read.ts),
 * and large bodies arriving in pieces are assembled in one spare buffer (lib/wire/spare-body.ts).
 * These tests prove that sharing never mixes one connection's bytes into another's: many
 * clients at once with frames that fit a read and frames that span many; a connection paused
 * mid-chunk (its in-flight limit reached) while the others keep overwriting the buffer; and that
 * the shared path is the one in use, over TCP and Unix sockets.
 */
import { PmuClient } from '../lib/client/client';
import { wireCodeOf } from '../lib/unit/durability';
import { DATA_PREFIX_BYTES, HEADER_BYTES, Op, WRITE_FIXED_BYTES, encodeHeader } from '../lib/wire/protocol';
import * as net from 'node:net';
import { ServerConnection } from '../lib/server/connection';
import { readIntoShared } from '../lib/wire/shared-read';
import { Harness, RawPeer, SECRETS, dataPrefix, errorCode, rawOpen, startServer } from './fixtures/net-harness';
import { removeTempDirs } from './helpers/temp';

let h: Harness;
let admin: PmuClient;
const REGION = 32 << 20;

beforeAll(async () => {
  h = await startServer({ limits: { maxInFlightPerConnection: 4 } });
  admin = await h.connect('admin');
  await admin.createRegion('shared', REGION, { owner: 'primary' });
});
afterAll(async () => {
  await h.close();
  removeTempDirs();
});

function connectionsOf(harness: Harness): ServerConnection[] {
  return [...(harness.server as unknown as { connections: Set<ServerConnection> }).connections];
}

/** Bytes no other writer produces: the writer, the write and the position all show. */
function pattern(writer: number, write: number, size: number): Buffer {
  const bytes = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) bytes[i] = (writer * 31 + write * 7 + i) & 0xff;
  return bytes;
}

test('plain TCP and Unix connections read into the shared buffer', async () => {
  const tcp = await h.connect('primary');
  const unix = await h.connect('primary', { url: h.addresses.unix });
  await Promise.all([tcp.openRegion('shared'), unix.openRegion('shared')]);
  const connections = connectionsOf(h);
  expect(connections.length).toBeGreaterThanOrEqual(3);
  expect(connections.every((connection) => connection.readsIntoSharedBuffer)).toBe(true);
  await Promise.all([tcp.close(), unix.close()]);
});

test('a socket that is not a plain net.Socket with a handle is left as it is (it reads with data events)', () => {
  class Wrapped extends net.Socket {}
  for (const socket of [new Wrapped(), new net.Socket()]) {
    expect(readIntoShared(socket, Buffer.alloc(16), () => undefined)).toBeUndefined();
    expect(socket.destroyed).toBe(false);
    socket.destroy();
  }
});

test('16 clients at once, frames of 17 B to 300 KiB, pipelined: every byte lands where its writer put it', async () => {
  const sizes = [17, 4096, 40_000, 70_000, 300_000];
  const writers = 16;
  const span = REGION / writers;
  const clients = await Promise.all(Array.from({ length: writers }, (_, w) => h.connect('primary', { url: w % 2 ? h.addresses.unix : h.addresses.tcp })));
  const regions = await Promise.all(clients.map((client) => client.openRegion('shared')));
  const expected: Array<{ at: number; bytes: Buffer }> = [];
  await Promise.all(
    regions.map((region, w) => {
      const writes: Array<Promise<void>> = [];
      let at = w * span;
      for (let round = 0; round < 3; round++) {
        for (const [i, size] of sizes.entries()) {
          const bytes = pattern(w, round * sizes.length + i, size);
          expected.push({ at, bytes });
          writes.push(region.write(at, bytes, { durability: 'mapped' }));
          at += size;
        }
      }
      expect(at).toBeLessThanOrEqual((w + 1) * span);
      return Promise.all(writes);
    }),
  );
  const local = h.unit.openRegion('shared');
  for (const { at, bytes } of expected) expect(local.readSync(at, bytes.length).equals(bytes)).toBe(true);
  await Promise.all(clients.map((client) => client.close()));
});

test('a connection paused mid-chunk keeps its unread frames while others overwrite the shared buffer', async () => {
  // 64 'flushed' WRITEs in one chunk: the in-flight limit (4) pauses the reader after the
  // fourth, so the other 60 frames wait in the reader, not in the shared buffer.
  const peer = await RawPeer.connect(h.addresses.tcp);
  expect(errorCode(await peer.authenticate('primary', SECRETS.primary))).toBeUndefined();
  const { handle, base, key } = await rawOpen(peer, 'shared', 2);
  const count = 64;
  const size = 1000;
  const frames: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const body = Buffer.concat([dataPrefix(handle, key, base + i * size), Buffer.alloc(WRITE_FIXED_BYTES - DATA_PREFIX_BYTES), pattern(100, i, size)]);
    frames.push(encodeHeader(Op.WRITE, wireCodeOf('flushed'), 10 + i, body.length), body);
  }
  const chunk = Buffer.concat(frames);
  expect(chunk.length).toBe(count * (HEADER_BYTES + WRITE_FIXED_BYTES + size));
  peer.socket.write(chunk);
  // Meanwhile other connections fill the shared buffer with their own bytes, again and again.
  const noisy = await Promise.all([h.connect('primary'), h.connect('primary', { url: h.addresses.unix })]);
  const noisyRegions = await Promise.all(noisy.map((client) => client.openRegion('shared')));
  const noise = Buffer.alloc(60_000, 0xee);
  await Promise.all(noisyRegions.map((region, n) => Promise.all(Array.from({ length: 20 }, () => region.write((4 + n) << 20, noise, { durability: 'mapped' })))));
  const replies = new Map<number, number>();
  while (replies.size < count) {
    const frame = await peer.next();
    if (!frame) throw new Error('the server closed the connection');
    replies.set(frame.header.requestId, frame.header.op);
  }
  expect([...replies.values()].every((op) => op === Op.OK)).toBe(true);
  const local = h.unit.openRegion('shared');
  for (let i = 0; i < count; i++) expect(local.readSync(i * size, size).equals(pattern(100, i, size))).toBe(true);
  peer.destroy();
  await Promise.all(noisy.map((client) => client.close()));
});

test("on a Node whose socket handle cannot be adopted, connections read with 'data' events and the server says so once", async () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const sharedRead = require('../lib/wire/shared-read');
  const spy = jest.spyOn(sharedRead, 'readIntoShared').mockReturnValue(undefined);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { memoryLog } = require('./fixtures/net-harness');
  const log = memoryLog();
  const other = await startServer({ log });
  try {
    const clients = await Promise.all([other.connect('admin'), other.connect('admin')]);
    const region = await clients[0].createRegion('fallback', 4096);
    await region.write(0, Buffer.from('still works'));
    expect((await region.read(0, 11)).toString()).toBe('still works');
    expect(connectionsOf(other).some((connection) => connection.readsIntoSharedBuffer)).toBe(false);
    expect(log.events.filter((e: { event: string }) => e.event === 'server.shared-read-off')).toHaveLength(1);
  } finally {
    spy.mockRestore();
    await other.close();
  }
});
