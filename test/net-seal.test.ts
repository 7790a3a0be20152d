/**
 * Sessions bound to the connection (docs/PROTOCOL.md, "Sealed sessions"): a relay between
 * client and server can forward a sealed session but not alter or inject a frame; a server
 * that announces another identity than the one a client was sent to is refused before any
 * proof leaves; a TLS-terminating relay cannot pass the handshake (channel binding).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { PmuClient } from '../lib/client/client';
import { FrameReader, FrameSink } from '../lib/wire/frame-reader';
import { FrameWriter } from '../lib/wire/frame-writer';
import { encodeHeader, FrameHeader, Op } from '../lib/wire/protocol';
import { FrameSeal, TAG_BYTES } from '../lib/wire/seal';
import { memoryLog, SECRETS, startServer } from './fixtures/net-harness';
import { haveOpenssl, selfSigned } from './helpers/certs';
import { etcdAvailable } from './helpers/etcd';
import { removeTempDirs, tempDir } from './helpers/temp';
import { waitFor } from './helpers/wait';

afterAll(removeTempDirs);

const KEY = crypto.randomBytes(32);

function reference(frameNumber: number, bytes: Buffer): Buffer {
  const counter = Buffer.alloc(8);
  counter.writeUInt32LE(frameNumber % 2 ** 32, 0);
  counter.writeUInt32LE(Math.floor(frameNumber / 2 ** 32), 4);
  return crypto.createHmac('sha256', KEY).update(counter).update(bytes).digest().subarray(0, TAG_BYTES);
}

describe('FrameSeal', () => {
  test('its tag is HMAC-SHA256(key, frame number | frame) truncated to 16 bytes, on the one-shot, the large and the streaming path', () => {
    const seal = new FrameSeal(KEY);
    const frames = [Buffer.alloc(0), crypto.randomBytes(12), crypto.randomBytes(4108), crypto.randomBytes(70_000)];
    frames.forEach((frame, i) => expect(seal.next([frame.subarray(0, 5), frame.subarray(5)])).toEqual(reference(i, frame)));
    const stream = seal.stream();
    stream.update(frames[2].subarray(0, 100));
    stream.update(frames[2].subarray(100));
    expect(stream.finish()).toEqual(reference(4, frames[2]));
  });
});

/** A socket stand-in that collects what a FrameWriter writes. */
function collector(): { socket: net.Socket; bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  const socket = Object.assign(new net.Socket(), {
    write: (chunk: Uint8Array) => chunks.push(Buffer.from(chunk)) > 0,
    cork: () => undefined,
    uncork: () => undefined,
  });
  Object.defineProperty(socket, 'writableLength', { get: () => 0 });
  return { socket, bytes: () => Buffer.concat(chunks) };
}

function sealedStream(bodies: Buffer[]): Buffer {
  const out = collector();
  const writer = new FrameWriter(out.socket);
  writer.seal = new FrameSeal(KEY);
  writer.beginBatch();
  bodies.forEach((body, i) => writer.write(Op.WRITE, 0, i + 1, [body]));
  writer.endBatch();
  return out.bytes();
}

function readSealed(stream: Buffer, chunkBytes: number, sink: Partial<FrameSink> = {}) {
  const frames: Array<{ header: FrameHeader; body: Buffer }> = [];
  const errors: string[] = [];
  const reader = new FrameReader(
    {
      onFrame: (header, body) => frames.push({ header: { ...header }, body: Buffer.from(body) }),
      onStreamError: (code, message) => errors.push(`${code} ${message}`),
      ...sink,
    },
    1 << 20,
  );
  reader.setSeal(new FrameSeal(KEY));
  for (let at = 0; at < stream.length; at += chunkBytes) reader.push(stream.subarray(at, at + chunkBytes));
  return { frames, errors };
}

describe('sealed frames', () => {
  const bodies = [Buffer.alloc(0), Buffer.from('small'), crypto.randomBytes(4096), crypto.randomBytes(40_000)];
  const stream = sealedStream(bodies);

  test.each([1, 7, 16, 100, 4096, 1 << 20])('arrive whole, tag stripped, in chunks of %i bytes', (chunkBytes) => {
    const { frames, errors } = readSealed(stream, chunkBytes);
    expect(errors).toEqual([]);
    expect(frames.map((f) => f.body)).toEqual(bodies);
    expect(frames.map((f) => f.header.bodyLength)).toEqual(bodies.map((b) => b.length));
  });

  test('one flipped bit anywhere stops the reader with EAUTH, and the altered frame is never handed on', () => {
    for (let i = 0; i < 200; i++) {
      const bad = Buffer.from(stream);
      const at = crypto.randomInt(bad.length);
      bad[at] ^= 1 << crypto.randomInt(8);
      const { frames, errors } = readSealed(bad, [1, 100, 1 << 20][i % 3]);
      // Whatever came before the flip may pass; the frame holding it and everything after may not.
      for (const [n, frame] of frames.entries()) expect(frame.body).toEqual(bodies[n]);
      expect(frames.length).toBeLessThan(bodies.length);
      expect(errors.join()).toMatch(/^(EAUTH|EFRAMETOOBIG|EPROTO) /);
    }
  });

  test('a replayed, dropped or reordered frame fails its tag (the frame number is in it)', () => {
    const one = sealedStream([Buffer.from('a'), Buffer.from('b')]);
    const first = one.subarray(0, 12 + 1 + TAG_BYTES);
    const second = one.subarray(12 + 1 + TAG_BYTES);
    expect(readSealed(Buffer.concat([first, first]), 1 << 20).errors.join()).toMatch(/EAUTH .*seal check/);
    expect(readSealed(second, 1 << 20).errors.join()).toMatch(/EAUTH/);
    expect(readSealed(Buffer.concat([second, first]), 1 << 20).frames).toEqual([]);
  });

  test('a body the sink refuses and skips is still checked: an injected frame cannot hide behind a refusal', () => {
    const big = sealedStream([crypto.randomBytes(20_000)]);
    big[big.length - 1] ^= 1;
    const refuse = { admissionPrefixBytes: () => 28, admitBody: () => false };
    const { frames, errors } = readSealed(big, 1000, refuse);
    expect(frames).toEqual([]);
    expect(errors.join()).toMatch(/EAUTH/);
    const intact = sealedStream([crypto.randomBytes(20_000), Buffer.from('after')]);
    expect(readSealed(intact, 1000, { admissionPrefixBytes: (h) => (h.bodyLength > 100 ? 28 : 0), admitBody: (h) => h.bodyLength < 100 })).toEqual({ frames: [expect.objectContaining({ body: Buffer.from('after') })], errors: [] });
  });
});

/** A TCP relay in front of `target` that can alter or inject bytes on their way to the server. */
async function relay(target: { host: string; port: number }): Promise<{ url: string; inject(bytes: Buffer): void; tamper(fn: (chunk: Buffer) => Buffer): void; close(): Promise<void> }> {
  let upstream: net.Socket | undefined;
  let tamper = (chunk: Buffer) => chunk;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((downstream) => {
    const up = net.connect(target);
    upstream = up;
    for (const s of [up, downstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => (s === up ? downstream : up).destroy());
    }
    downstream.on('data', (chunk) => up.write(tamper(chunk)));
    up.on('data', (chunk) => downstream.write(chunk));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `tcp://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    inject: (bytes) => upstream!.write(bytes),
    tamper: (fn) => (tamper = fn),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function createFrame(name: string): Buffer {
  const body = Buffer.from(JSON.stringify({ name, size: 4096, grants: [{ user: 'stranger', rights: 'rw' }] }));
  return Buffer.concat([encodeHeader(Op.CREATE, 0, 4242, body.length), body]);
}

describe('a relay between client and server', () => {
  test('cannot inject a request into a sealed admin session: the server closes it with EAUTH and does nothing', async () => {
    const log = memoryLog();
    const h = await startServer({ log });
    const r = await relay({ host: '127.0.0.1', port: Number(h.addresses.tcp.split(':').pop()) });
    try {
      const admin = await PmuClient.connect(r.url, { user: 'admin', secret: SECRETS.admin, seal: true, timeoutMs: 3000 });
      await admin.createRegion('real', 4096);
      r.inject(createFrame('planted'));
      await expect(admin.listRegions()).rejects.toMatchObject({ code: expect.stringMatching(/EAUTH|ECONNECTION/) });
      expect(h.unit.listRegions().map((info) => info.name)).toEqual(['real']);
      await admin.close();
    } finally {
      await r.close();
      await h.close();
    }
  });

  test('an unsealed session is what the red team found: the same injection creates the region (why sets always seal)', async () => {
    const h = await startServer();
    const r = await relay({ host: '127.0.0.1', port: Number(h.addresses.tcp.split(':').pop()) });
    try {
      const admin = await PmuClient.connect(r.url, { user: 'admin', secret: SECRETS.admin, seal: false, timeoutMs: 3000 });
      await admin.createRegion('real', 4096);
      r.inject(createFrame('planted'));
      await waitFor('the planted region', () => h.unit.listRegions().some((info) => info.name === 'planted'), 5000);
      await admin.close();
    } finally {
      await r.close();
      await h.close();
    }
  });

  test('cannot alter a sealed WRITE: the server refuses the frame and the region never holds the altered bytes', async () => {
    const h = await startServer();
    const r = await relay({ host: '127.0.0.1', port: Number(h.addresses.tcp.split(':').pop()) });
    try {
      const admin = await PmuClient.connect(r.url, { user: 'admin', secret: SECRETS.admin, seal: true, timeoutMs: 3000 });
      const region = await admin.createRegion('orders', 4096);
      r.tamper((chunk) => {
        const at = chunk.indexOf('card=4111');
        if (at >= 0) chunk.write('card=6666', at);
        return chunk;
      });
      await expect(region.write(0, Buffer.from('card=4111-1111'))).rejects.toMatchObject({ code: expect.stringMatching(/EAUTH|ECONNECTION/) });
      const direct = await h.connect('admin');
      const view = await direct.openRegion('orders');
      expect((await view.read(0, 14)).equals(Buffer.alloc(14))).toBe(true);
      await admin.close();
    } finally {
      await r.close();
      await h.close();
    }
  });

  test('sealed sessions work through an honest relay, over TCP and the Unix socket, for big and small frames', async () => {
    const h = await startServer();
    const r = await relay({ host: '127.0.0.1', port: Number(h.addresses.tcp.split(':').pop()) });
    try {
      for (const url of [r.url, h.addresses.unix]) {
        const client = await PmuClient.connect(url, { user: 'admin', secret: SECRETS.admin, seal: true, timeoutMs: 5000 });
        const name = url.startsWith('unix') ? 'u' : 't';
        const region = await client.createRegion(name, 1 << 20);
        const data = crypto.randomBytes(300_000);
        await Promise.all([region.write(0, data, { durability: 'flushed' }), region.write(400_000, Buffer.from('tail'))]);
        expect((await region.read(0, data.length)).equals(data)).toBe(true);
        expect((await region.read(400_000, 4)).toString()).toBe('tail');
        await client.close();
      }
    } finally {
      await r.close();
      await h.close();
    }
  });
});

describe('server identity', () => {
  test('a client sent to PMU pmu1 refuses a server that says it is pmu2, before it sends any proof', async () => {
    const log = memoryLog();
    const h = await startServer({ identity: 'pmu2', log });
    try {
      await expect(PmuClient.connect(h.addresses.tcp, { user: 'admin', secret: SECRETS.admin, identity: 'pmu1', timeoutMs: 3000 })).rejects.toMatchObject({
        code: 'EAUTH',
        message: expect.stringMatching(/says it is "pmu2", not the PMU "pmu1"/),
      });
      // No AUTH reached the server: a rogue address learns not even a proof.
      expect(h.server.stats().requestsByOp.AUTH ?? 0).toBe(0);
      const ok = await PmuClient.connect(h.addresses.tcp, { user: 'admin', secret: SECRETS.admin, identity: 'pmu2', timeoutMs: 3000 });
      await ok.close();
      expect(h.server.stats().requestsByOp.AUTH).toBe(1);
      expect(log.events.filter((e) => e.event === 'auth.failed')).toEqual([]);
    } finally {
      await h.close();
    }
  });

  test('an identity that is not printable ASCII is refused when the server is made', async () => {
    await expect(startServer({ identity: 'pmu 1' })).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(startServer({ identity: 'x'.repeat(65) })).rejects.toMatchObject({ code: 'EINVAL' });
  });

  (etcdAvailable() ? test : test.skip)('a directory entry forged to point at another PMU of the set gets EAUTH from the pool, and no data moves', async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { startSet, SET_USER } = require('./fixtures/mirror-set');
    const set = await startSet(2);
    try {
      await set.directory.addPmu({ id: 'pmu1', url: set.pmu('pmu2').url, capacity: 16 * 1024 * 1024 });
      const pool = set.pool();
      const before = set.pmu('pmu2').server.stats().requestsByOp.AUTH ?? 0;
      await expect(pool.client('pmu1')).rejects.toMatchObject({ code: 'EAUTH', message: expect.stringMatching(/says it is "pmu2"/) });
      expect(set.pmu('pmu2').server.stats().requestsByOp.AUTH ?? 0).toBe(before);
      // The pool's sessions are sealed: the right PMU answers as itself.
      const right = await pool.client('pmu2');
      expect(right.isAdmin).toBe(SET_USER.user === 'admin');
      expect(right.sealed).toBe(true);
    } finally {
      await set.close();
    }
  }, 30_000);
});

(etcdAvailable() && haveOpenssl() ? test : test.skip)("a pool reaches a set's tls:// PMU with the set's CA pinned (and its identity), and refuses it without the CA", async () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { startEtcd } = require('./helpers/etcd');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { makePki } = require('./helpers/certs');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { MirrorDirectory } = require('../lib/mirror/directory');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { PmuPool } = require('../lib/mirror/pool');
  const pki = makePki(tempDir('pmu-set-pki-'));
  const h = await startServer({ identity: 'pmu1', tls: { key: fs.readFileSync(pki.server.key), cert: fs.readFileSync(pki.server.cert) } });
  const etcd = await startEtcd();
  const directory = MirrorDirectory.connect(etcd.url, { set: 'tls', timeoutMs: 2000 });
  const pools: Array<{ close(): Promise<void> }> = [];
  try {
    await directory.init(1);
    await directory.addPmu({ id: 'pmu1', url: h.addresses.tcp, capacity: 1 << 20 });
    const pinned = new PmuPool(directory, { user: 'admin', secret: SECRETS.admin, timeoutMs: 3000, tls: { ca: fs.readFileSync(pki.ca) } });
    pools.push(pinned);
    const client = await pinned.client('pmu1');
    expect(client.isAdmin).toBe(true);
    const unpinned = new PmuPool(directory, { user: 'admin', secret: SECRETS.admin, timeoutMs: 3000 });
    pools.push(unpinned);
    await expect(unpinned.client('pmu1')).rejects.toMatchObject({ code: 'ECONNECTION' });
  } finally {
    for (const pool of pools) await pool.close();
    directory.close();
    await etcd.stop();
    await h.close();
  }
}, 30_000);

(haveOpenssl() ? test : test.skip)('channel binding: a relay that terminates TLS, with a certificate the client trusts, cannot pass the handshake', async () => {
  const dir = tempDir('pmu-seal-tls-');
  const real = selfSigned(dir, 'server');
  const rogue = selfSigned(dir, 'relay');
  const h = await startServer({ tls: real });
  const port = Number(h.addresses.tcp.split(':').pop());
  const sockets = new Set<net.Socket>();
  const mitm = tls.createServer(rogue, (down) => {
    const up = tls.connect({ host: '127.0.0.1', port, ca: real.cert });
    for (const s of [up, down]) {
      sockets.add(s);
      s.on('error', () => undefined);
    }
    down.pipe(up).pipe(down);
  });
  await new Promise<void>((resolve) => mitm.listen(0, '127.0.0.1', resolve));
  try {
    const trustsBoth = { ca: [real.cert, rogue.cert] };
    const direct = await PmuClient.connect(h.addresses.tcp, { user: 'admin', secret: SECRETS.admin, tls: trustsBoth, timeoutMs: 3000 });
    await direct.close();
    const relayed = `tls://127.0.0.1:${(mitm.address() as net.AddressInfo).port}`;
    await expect(PmuClient.connect(relayed, { user: 'admin', secret: SECRETS.admin, tls: trustsBoth, timeoutMs: 3000 })).rejects.toMatchObject({ code: 'EAUTH' });
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => mitm.close(resolve));
    await h.close();
  }
});
