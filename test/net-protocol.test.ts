import fc from 'fast-check';
import { FrameReader } from '../lib/wire/frame-reader';
import { SpareBody } from '../lib/wire/spare-body';
import { decodeHeader, encodeHeader, HEADER_BYTES, Op, PROTOCOL_VERSION, readSafeU64, writeU64 } from '../lib/wire/protocol';
import { decodeError, encodeError } from '../lib/wire/error-frame';
import { parseUrl } from '../lib/client/url';
import { PmuError } from '../lib/unit/errors';

function frame(op: number, id: number, body: Buffer): Buffer {
  return Buffer.concat([encodeHeader(op, 0, id, body.length), body]);
}

function collect(maxBody = 1 << 20) {
  const frames: Array<{ op: number; id: number; body: Buffer }> = [];
  const errors: string[] = [];
  const reader = new FrameReader(
    {
      onFrame: (header, body) => frames.push({ op: header.op, id: header.requestId, body: Buffer.from(body) }),
      onStreamError: (code) => errors.push(code),
    },
    maxBody,
  );
  return { reader, frames, errors };
}

describe('frame header', () => {
  test('round-trips every field', () => {
    const header = decodeHeader(encodeHeader(Op.WRITE, 3, 0xdeadbeef, 1234), 0);
    expect(header).toEqual({ bodyLength: 1234, version: PROTOCOL_VERSION, op: Op.WRITE, flags: 3, requestId: 0xdeadbeef });
    expect(encodeHeader(Op.OK, 0, 1, 0)).toHaveLength(HEADER_BYTES);
  });

  test('u64 fields beyond 2^53 read as -1 instead of a rounded number', () => {
    const bytes = Buffer.alloc(8);
    writeU64(bytes, 0, 2 ** 40 + 5);
    expect(readSafeU64(bytes, 0)).toBe(2 ** 40 + 5);
    bytes.writeBigUInt64LE(2n ** 60n);
    expect(readSafeU64(bytes, 0)).toBe(-1);
  });
});

describe('FrameReader', () => {
  test('yields the same frames however the stream is cut into chunks', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 12 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }), (bodies, cuts) => {
        const stream = Buffer.concat(bodies.map((body, index) => frame(Op.WRITE, index + 1, Buffer.from(body))));
        const { reader, frames, errors } = collect();
        let at = 0;
        for (let i = 0; at < stream.length; i++) {
          const size = cuts[i % cuts.length];
          reader.push(stream.subarray(at, at + size));
          at += size;
        }
        expect(errors).toEqual([]);
        expect(frames.map((f) => f.id)).toEqual(bodies.map((_, index) => index + 1));
        frames.forEach((f, index) => expect(f.body.equals(Buffer.from(bodies[index]))).toBe(true));
        expect(reader.midFrame).toBe(false);
      }),
      { numRuns: 200 },
    );
  });

  test('with transientChunks, frames stay whole when every chunk is one reused buffer, overwritten after each push (paused, split, admitted bodies)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { minLength: 1, maxLength: 12 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 7 }),
        (bodies, cuts, pauses) => {
          const stream = Buffer.concat(bodies.map((body, index) => frame(Op.WRITE, index + 1, Buffer.from(body))));
          const frames: Array<{ id: number; body: Buffer; owned: boolean }> = [];
          let pushes = 0;
          const reader = new FrameReader(
            {
              onFrame: (header, body, owned) => {
                frames.push({ id: header.requestId, body: owned ? body : Buffer.from(body), owned });
                // Pause now and then mid-chunk: the rest of the chunk is held across pushes.
                if (pauses[frames.length % pauses.length]) reader.pause();
              },
              onStreamError: () => undefined,
              // Look at 8 bytes of a split body before buffering it: pieces are kept before admission.
              admissionPrefixBytes: () => 8,
              admitBody: () => true,
            },
            1 << 20,
            true,
          );
          const reused = Buffer.alloc(64);
          let at = 0;
          for (let i = 0; at < stream.length; i++) {
            const size = Math.min(cuts[i % cuts.length], stream.length - at);
            stream.copy(reused, 0, at, at + size);
            reader.push(reused.subarray(0, size));
            pushes++;
            reused.fill(0xee); // the socket's next read lands in the same memory
            reader.resume();
            reused.fill(0xdd);
            at += size;
          }
          // Each resume hands on frames until the next pause.
          for (let i = 0; i <= bodies.length; i++) reader.resume();
          expect(frames.map((f) => f.id)).toEqual(bodies.map((_, index) => index + 1));
          frames.forEach((f, index) => expect(f.body.equals(Buffer.from(bodies[index]))).toBe(true));
          expect(pushes).toBeGreaterThan(0);
        },
      ),
      { numRuns: 200 },
    );
  });

  test('says which bodies are its own: a split body is (owned), one that arrived whole is a view (not owned)', () => {
    const seen: boolean[] = [];
    const reader = new FrameReader({ onFrame: (_h, _body, owned) => seen.push(owned), onStreamError: () => undefined }, 1024);
    const whole = frame(Op.OK, 1, Buffer.from('whole'));
    const split = frame(Op.OK, 2, Buffer.from('split body'));
    reader.push(whole);
    reader.push(split.subarray(0, HEADER_BYTES + 3));
    reader.push(split.subarray(HEADER_BYTES + 3));
    expect(seen).toEqual([false, true]);
  });

  test('with a SpareBody, large split bodies are assembled in one reused buffer, lent only during onFrame; an abandoned one gives it back', () => {
    const spare = new SpareBody();
    const seen: Array<{ id: number; owned: boolean; buffer: ArrayBufferLike; copy: Buffer }> = [];
    const reader = new FrameReader({ onFrame: (h, body, owned) => seen.push({ id: h.requestId, owned, buffer: body.buffer, copy: Buffer.from(body) }), onStreamError: () => undefined }, 1 << 22, true, spare);
    const big = (id: number, size: number) => frame(Op.WRITE, id, Buffer.alloc(size, id));
    const pushInPieces = (bytes: Buffer, piece: number) => {
      for (let at = 0; at < bytes.length; at += piece) reader.push(bytes.subarray(at, at + piece));
    };
    pushInPieces(big(1, 300_000), 65_536);
    pushInPieces(big(2, 1_000_000), 65_536);
    pushInPieces(big(3, 400_000), 65_536);
    pushInPieces(frame(Op.WRITE, 4, Buffer.alloc(1000, 4)), 100); // small: allocated as before
    expect(seen.map((f) => [f.id, f.owned])).toEqual([[1, false], [2, false], [3, false], [4, true]]);
    seen.forEach((f) => expect(f.copy.equals(Buffer.alloc(f.copy.length, f.id))).toBe(true));
    // 2 outgrew the first spare; 3 reused 2's buffer.
    expect(seen[2].buffer).toBe(seen[1].buffer);
    expect(seen[1].buffer).not.toBe(seen[0].buffer);
    // A reader stopped mid-body gives the spare back: the next reader gets the same buffer.
    const other = new FrameReader({ onFrame: () => undefined, onStreamError: () => undefined }, 1 << 22, true, spare);
    other.push(big(5, 500_000).subarray(0, 100_000));
    const meanwhile = spare.take(500_000); // held by `other`: this one is a fresh buffer
    expect(meanwhile.buffer).not.toBe(seen[1].buffer);
    other.stop();
    expect(spare.take(500_000).buffer).toBe(seen[1].buffer);
  });

  test('hands a frame that arrived whole to the sink as a view of the chunk (no copy)', () => {
    const chunk = frame(Op.WRITE, 7, Buffer.from('payload'));
    let seen: Buffer | undefined;
    const reader = new FrameReader({ onFrame: (_h, body) => (seen = body), onStreamError: () => undefined }, 1024);
    reader.push(chunk);
    expect(seen!.buffer).toBe(chunk.buffer);
    expect(seen!.byteOffset).toBe(chunk.byteOffset + HEADER_BYTES);
  });

  test('refuses an oversized frame from its header, before buffering its body', () => {
    const { reader, frames, errors } = collect(100);
    reader.push(encodeHeader(Op.WRITE, 0, 9, 101));
    expect(errors).toEqual(['EFRAMETOOBIG']);
    reader.push(Buffer.alloc(101));
    expect(frames).toEqual([]);
  });

  test('refuses a frame of another protocol version', () => {
    const { reader, errors } = collect();
    const bad = frame(Op.PING, 1, Buffer.alloc(0));
    bad[4] = 99;
    reader.push(bad);
    expect(errors).toEqual(['EPROTO']);
  });

  test('a truncated frame stays pending (midFrame) and yields nothing', () => {
    const { reader, frames } = collect();
    reader.push(frame(Op.WRITE, 1, Buffer.alloc(50)).subarray(0, 30));
    expect(frames).toEqual([]);
    expect(reader.midFrame).toBe(true);
  });
});

describe('errors on the wire', () => {
  test('a PmuError crosses with its code and message', () => {
    const error = decodeError(encodeError('EKEY', 'wrong access key'), 'peer');
    expect(error).toBeInstanceOf(PmuError);
    expect(error.code).toBe('EKEY');
    expect(error.message).toBe('wrong access key');
  });

  test('an unknown code becomes EPROTO', () => {
    const body = encodeError('EKEY', 'x');
    body.write('ZZZZ', 1, 'latin1');
    expect(decodeError(body, 'peer').code).toBe('EPROTO');
    expect(decodeError(Buffer.alloc(0), 'peer').code).toBe('EPROTO');
  });
});

describe('URLs', () => {
  test.each([
    ['tcp://127.0.0.1:7420', { kind: 'tcp', host: '127.0.0.1', port: 7420, tls: false }],
    ['tls://localhost:443', { kind: 'tcp', host: 'localhost', port: 443, tls: true }],
    ['tcp://[::1]:80', { kind: 'tcp', host: '::1', port: 80, tls: false }],
    ['unix:/tmp/pmu.sock', { kind: 'unix', path: '/tmp/pmu.sock' }],
    ['unix:///tmp/pmu.sock', { kind: 'unix', path: '/tmp/pmu.sock' }],
  ])('%s', (url, expected) => {
    expect(parseUrl(url)).toMatchObject(expected);
  });

  test.each(['http://x:1', 'tcp://host', 'tcp://h:0', 'tcp://h:70000', 'unix:', ''])('refuses %j', (url) => {
    expect(() => parseUrl(url)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });
});
