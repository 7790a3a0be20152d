/** The client under failure: drops, reconnects, deadlines, a bounded queue, and the server's graceful close. */
import * as net from 'node:net';
import * as path from 'node:path';
import { PmuClient } from '../lib/client/client';
import { PmuServer } from '../lib/server/server';
import { PersistentMemoryUnit } from '../lib/unit/unit';
import { Harness, SECRETS, startServer, testUsers } from './fixtures/net-harness';
import { removeTempDirs } from './helpers/temp';
import { waitFor } from './helpers/wait';

afterAll(removeTempDirs);

/** A TCP relay that can start swallowing client-to-server bytes (a server that stopped answering). */
async function relay(target: number): Promise<{ url: string; blackhole(): void; close(): Promise<void> }> {
  let swallow = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: target });
    sockets.add(client).add(upstream);
    client.on('data', (chunk) => {
      if (!swallow) upstream.write(chunk);
    });
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `tcp://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    blackhole: () => (swallow = true),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function port(url: string): number {
  return Number(url.split(':').pop());
}

describe('reconnect', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startServer();
    const admin = await h.connect('admin');
    await admin.createRegion('r', 4 << 20, { owner: 'primary' });
  });
  afterAll(() => h.close());

  test('requests in flight when the connection drops fail with ECONNECTION; none hangs', async () => {
    const client = await h.connect('primary');
    const region = await client.openRegion('r');
    const reads = Array.from({ length: 200 }, () => region.read(0, 1 << 20));
    await reads[0];
    client.dropConnection();
    const outcomes = await Promise.allSettled(reads);
    const failures = outcomes.filter((o) => o.status === 'rejected') as PromiseRejectedResult[];
    expect(failures.length).toBeGreaterThan(0);
    for (const failure of failures) expect(failure.reason.code).toBe('ECONNECTION');
  });

  test('the next request reconnects, re-authenticates and re-opens the region with a new key', async () => {
    const client = await h.connect('primary');
    const region = await client.openRegion('r');
    await region.write(0, Buffer.from('before'));
    const oldKey = region.key;
    const accepted = h.server.stats().connectionsAccepted;
    client.dropConnection();
    await waitFor('the drop to be noticed', () => !client.connected);
    await region.write(0, Buffer.from('after!'));
    expect((await region.read(0, 6)).toString()).toBe('after!');
    expect(region.key.equals(oldKey)).toBe(false);
    expect(region.context.handle).toBeGreaterThan(0);
    expect(h.server.stats().connectionsAccepted).toBe(accepted + 1);
  });

  test('a restarted server is found again on the same socket', async () => {
    const dir = h.dir;
    const file = path.join(dir, 'restart.pmu');
    const socket = path.join(dir, 'restart.sock');
    const serve = async () => {
      const unit = PersistentMemoryUnit.open(file, { size: 4 << 20 });
      if (!unit.hasRegion('kept')) unit.createRegion('kept', 4096, { owner: 'primary' });
      const server = new PmuServer({ unit, users: testUsers(), tcp: false, socket });
      await server.listen();
      return server;
    };
    let server = await serve();
    const client = await PmuClient.connect(`unix:${socket}`, { user: 'primary', secret: SECRETS.primary, timeoutMs: 2000 });
    const region = await client.openRegion('kept');
    await region.write(0, Buffer.from('durable'));
    await server.close();
    await expect(region.read(0, 7)).rejects.toMatchObject({ code: 'ECONNECTION' });
    server = await serve();
    expect((await region.read(0, 7)).toString()).toBe('durable');
    await client.close();
    await server.close();
  });

  test('connecting to nothing fails with ECONNECTION naming the address', async () => {
    const free = net.createServer();
    await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve));
    const unused = (free.address() as net.AddressInfo).port;
    await new Promise((resolve) => free.close(resolve));
    await expect(PmuClient.connect(`tcp://127.0.0.1:${unused}`, { user: 'primary', secret: SECRETS.primary })).rejects.toMatchObject({
      code: 'ECONNECTION',
      message: expect.stringContaining(`127.0.0.1:${unused}`),
    });
  });

  test('a closed client refuses with ECLOSED', async () => {
    const client = await h.connect('primary');
    const region = await client.openRegion('r');
    await client.close();
    await expect(region.read(0, 1)).rejects.toMatchObject({ code: 'ECLOSED' });
    await expect(client.listRegions()).rejects.toMatchObject({ code: 'ECLOSED' });
  });
});

describe('deadlines and the bounded queue', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startServer();
    await (await h.connect('admin')).createRegion('slow', 4096, { owner: 'primary' });
  });
  afterAll(() => h.close());

  test('a request the server never answers fails with ETIMEDOUT at its deadline', async () => {
    const proxy = await relay(port(h.addresses.tcp));
    const client = await PmuClient.connect(proxy.url, { user: 'primary', secret: SECRETS.primary, timeoutMs: 150 });
    const region = await client.openRegion('slow');
    proxy.blackhole();
    const started = Date.now();
    await expect(region.read(0, 8)).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    await client.close();
    await proxy.close();
  });

  test('beyond maxInFlight + maxQueued requests fail at once with EBUSY; queued ones still time out', async () => {
    const proxy = await relay(port(h.addresses.tcp));
    const client = await PmuClient.connect(proxy.url, { user: 'primary', secret: SECRETS.primary, timeoutMs: 200, maxInFlight: 1, maxQueued: 2 });
    const region = await client.openRegion('slow');
    proxy.blackhole();
    const pending = [region.read(0, 8), region.read(0, 8), region.read(0, 8)];
    await expect(region.read(0, 8)).rejects.toMatchObject({ code: 'EBUSY' });
    for (const outcome of await Promise.allSettled(pending)) expect((outcome as PromiseRejectedResult).reason.code).toBe('ETIMEDOUT');
    await client.close();
    await proxy.close();
  });
});

describe('graceful close of the server', () => {
  test('writes in flight finish or fail, none hangs; acknowledged writes are in the file; the unit is closed', async () => {
    const h = await startServer({ unitBytes: 8 << 20 });
    await (await h.connect('admin')).createRegion('g', 1 << 20, { owner: 'primary' });
    const client = await h.connect('primary');
    const region = await client.openRegion('g');
    const writes = Array.from({ length: 256 }, (_, i) => {
      const record = Buffer.alloc(4096, i & 0xff);
      return region.write(i * 4096, record).then(() => i);
    });
    await writes[0];
    await h.server.close();
    expect(h.unit.isClosed).toBe(true);
    const outcomes = await Promise.allSettled(writes);
    const acked = outcomes.filter((o) => o.status === 'fulfilled').map((o) => (o as PromiseFulfilledResult<number>).value);
    for (const outcome of outcomes) if (outcome.status === 'rejected') expect(outcome.reason.code).toBe('ECONNECTION');
    expect(acked.length).toBeGreaterThan(0);
    const reopened = PersistentMemoryUnit.open(path.join(h.dir, 'unit.pmu'));
    const local = reopened.openRegion('g');
    for (const i of acked) expect(local.readSync(i * 4096, 4096).equals(Buffer.alloc(4096, i & 0xff))).toBe(true);
    await reopened.close();
    await expect(region.read(0, 1)).rejects.toMatchObject({ code: 'ECONNECTION' });
    await client.close();
  });
});

describe('replies read into one reused buffer (onread)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startServer();
    const admin = await h.connect('admin');
    await admin.createRegion('reused', 1 << 20);
    const region = await admin.openRegion('reused');
    for (let page = 0; page < 64; page++) await region.write(page * 4096, Buffer.alloc(4096, page + 1));
  });
  afterAll(() => h.close());

  for (const transport of ['tcp', 'unix'] as const) {
    test(`${transport}: a READ reply handed to the caller is its own, not overwritten by the replies read after it`, async () => {
      const client = await h.connect('admin', { url: h.addresses[transport] });
      const region = await client.openRegion('reused');
      const first = await region.read(0, 4096);
      // Many more replies, sequential and pipelined, pass through the client's read buffer.
      for (let page = 1; page < 64; page++) await region.read(page * 4096, 4096);
      const pipelined = await Promise.all(Array.from({ length: 64 }, (_, page) => region.read(page * 4096, 4096)));
      await Promise.all(Array.from({ length: 64 }, (_, page) => region.write(page * 4096 + 100, Buffer.alloc(1, page + 1))));
      expect(first.equals(Buffer.alloc(4096, 1))).toBe(true);
      pipelined.forEach((reply, page) => expect(reply.equals(Buffer.alloc(4096, page + 1))).toBe(true));
      // A small reply kept across later ones (CAS returns the previous value from its reply).
      const previous = await region.compareAndSwap(8192, 0x0303030303030303n, 0x0303030303030303n);
      await region.read(0, 4096);
      expect(previous).toBe(0x0303030303030303n);
    });
  }
});
