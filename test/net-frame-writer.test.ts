/**
 * FrameWriter reuses one buffer for lone small frames. These tests prove the reuse never
 * corrupts a frame: frames written one per turn while the peer does not read (the socket
 * queues them, so the buffer must be let go) and frames corked in bursts arrive intact and
 * in order. Bounded: at most 20 MiB over loopback, about a second.
 */
import * as net from 'node:net';
import { FrameReader } from '../lib/wire/frame-reader';
import { FrameWriter } from '../lib/wire/frame-writer';
import { HEADER_BYTES, Op } from '../lib/wire/protocol';
import { waitFor } from './helpers/wait';

async function pair(): Promise<{ client: net.Socket; accepted: net.Socket; close(): Promise<void> }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const acceptedP = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve) => client.once('connect', resolve));
  const accepted = await acceptedP;
  return {
    client,
    accepted,
    close: async () => {
      client.destroy();
      accepted.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function payload(i: number, size: number): Buffer {
  const b = Buffer.alloc(size, i & 0xff);
  b.writeUInt32LE(i, 0);
  return b;
}

/** Collects the frames the peer receives: [requestId, body]. */
function collect(socket: net.Socket): Array<[number, Buffer]> {
  const frames: Array<[number, Buffer]> = [];
  const reader = new FrameReader({ onFrame: (header, body) => frames.push([header.requestId, Buffer.from(body)]), onStreamError: (code, message) => frames.push([-1, Buffer.from(`${code} ${message}`)]) }, 1 << 20);
  socket.on('data', (chunk: Buffer) => reader.push(chunk));
  return frames;
}

function expectIntact(frames: Array<[number, Buffer]>, count: number, size: number): void {
  expect(frames).toHaveLength(count);
  frames.forEach(([id, body], i) => {
    expect(id).toBe(i + 1);
    expect(body.equals(payload(i + 1, size))).toBe(true);
  });
}

describe('FrameWriter buffer reuse', () => {
  test('frames written one per turn to a peer that is not reading arrive intact and in order', async () => {
    const { client, accepted, close } = await pair();
    try {
      accepted.pause();
      const writer = new FrameWriter(client);
      const size = 4096 + 40; // past Node's pooled allocation, where the reuse matters
      // Until the kernel's buffers are full and the socket queues, then 100 frames more (at
      // most 5,000 frames, 20 MiB: loopback buffers grow to a few MiB).
      let count = 0;
      let queuedAt = 0;
      while (count < 5000 && (queuedAt === 0 || count < queuedAt + 100)) {
        const i = ++count;
        writer.write(Op.WRITE, 0, i, [payload(i, size).subarray(0, 40), payload(i, size).subarray(40)]);
        if (queuedAt === 0 && client.writableLength > 0) queuedAt = i;
        // A new turn for every frame: each is a lone frame, the case that uses the shared buffer.
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(queuedAt).toBeGreaterThan(0); // the test did exercise the queued case
      const frames = collect(accepted);
      accepted.resume();
      await waitFor('every frame', () => frames.length >= count || undefined, 10_000);
      expectIntact(frames, count, size);
      expect(HEADER_BYTES + size).toBeLessThan(16 * 1024);
    } finally {
      await close();
    }
  });

  test('bursts of frames in one turn (corked) and lone frames mixed arrive intact', async () => {
    const { client, accepted, close } = await pair();
    try {
      const frames = collect(accepted);
      const writer = new FrameWriter(client);
      const size = 5000;
      let id = 0;
      for (let burst = 0; burst < 50; burst++) {
        const n = (burst % 4) + 1;
        for (let k = 0; k < n; k++) {
          id++;
          writer.write(Op.WRITE, 0, id, [payload(id, size)]);
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
      await waitFor('every frame', () => frames.length >= id || undefined, 10_000);
      expectIntact(frames, id, size);
    } finally {
      await close();
    }
  });

  test('turns marked by reads: the first frame after a read leaves at once with no tick; a second before the next read corks until the turn ends', async () => {
    const { client, accepted, close } = await pair();
    try {
      const frames = collect(accepted);
      const writer = new FrameWriter(client, true);
      const size = 3000;
      let id = 0;
      const tickPending = (w: FrameWriter) => (w as unknown as { tickPending: boolean }).tickPending;
      for (let round = 0; round < 20; round++) {
        writer.newTurn(); // as the client's read callback does
        id++;
        writer.write(Op.WRITE, 0, id, [payload(id, size)]);
        expect(client.writableCorked).toBe(0);
        // No end-of-turn tick was scheduled for it.
        expect(tickPending(writer)).toBe(false);
        await new Promise((resolve) => setImmediate(resolve));
        if (round % 2 === 0) {
          // A second and third frame with no read in between: corked, sent together when the turn ends.
          id++;
          writer.write(Op.WRITE, 0, id, [payload(id, size)]);
          expect(client.writableCorked).toBe(1);
          expect(tickPending(writer)).toBe(true);
          id++;
          writer.write(Op.WRITE, 0, id, [payload(id, size)]);
          await new Promise((resolve) => setImmediate(resolve));
          expect(client.writableCorked).toBe(0);
        }
      }
      // Without a read, the next frame still goes out (corked only to the end of its turn).
      id++;
      writer.write(Op.WRITE, 0, id, [payload(id, size)]);
      await waitFor('every frame', () => frames.length >= id || undefined, 10_000);
      expectIntact(frames, id, size);
      expect(client.writableCorked).toBe(0);
    } finally {
      await close();
    }
  });

  test('a batch (beginBatch/endBatch): the first frame leaves at once, the rest in one uncork at endBatch; nothing stays corked', async () => {
    const { client, accepted, close } = await pair();
    try {
      const frames = collect(accepted);
      const writer = new FrameWriter(client);
      const size = 3000;
      let id = 0;
      for (let batch = 0; batch < 20; batch++) {
        const n = (batch % 3) + 1;
        writer.beginBatch();
        for (let k = 0; k < n; k++) {
          id++;
          writer.write(Op.WRITE, 0, id, [payload(id, size)]);
          // The first frame of the batch went straight out; the ones after it wait, corked.
          expect(client.writableCorked).toBe(k === 0 ? 0 : 1);
        }
        writer.endBatch();
        expect(client.writableCorked).toBe(0);
        // Frames written outside a batch, in the same turn, still group by turn.
        id++;
        writer.write(Op.WRITE, 0, id, [payload(id, size)]);
        id++;
        writer.write(Op.WRITE, 0, id, [payload(id, size)]);
        expect(client.writableCorked).toBe(1);
        await new Promise((resolve) => setImmediate(resolve));
        expect(client.writableCorked).toBe(0);
      }
      await waitFor('every frame', () => frames.length >= id || undefined, 10_000);
      expectIntact(frames, id, size);
    } finally {
      await close();
    }
  });
});
