import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { PmuClient } from '../lib/client/client';
import { encodeHeader, HELLO_BYTES, Op, PROTOCOL_VERSION } from '../lib/wire/protocol';
import { addUser, UserDirectory } from '../lib/server/users';
import { PmuServer } from '../lib/server/server';
import { PersistentMemoryUnit } from '../lib/unit/unit';
import { errorCode, Harness, RawPeer, SECRETS, startServer } from './fixtures/net-harness';
import { removeTempDirs, tempDir } from './helpers/temp';

let h: Harness;
beforeAll(async () => {
  h = await startServer({ handshakeTimeoutMs: 300 });
});
afterAll(async () => {
  await h.close();
  removeTempDirs();
});

describe('authentication', () => {
  test('a user with the right secret gets in, over TCP and over the Unix socket', async () => {
    const tcp = await h.connect('primary');
    const unix = await h.connect('backup', { url: h.addresses.unix });
    expect(tcp.connected && unix.connected).toBe(true);
    expect(tcp.isAdmin).toBe(false);
    expect((await h.connect('admin')).isAdmin).toBe(true);
  });

  test('a wrong secret is refused with EAUTH and counted', async () => {
    const before = h.server.stats().refusals.EAUTH ?? 0;
    await expect(PmuClient.connect(h.addresses.tcp, { user: 'primary', secret: SECRETS.backup })).rejects.toMatchObject({ code: 'EAUTH' });
    expect(h.server.stats().refusals.EAUTH).toBe(before + 1);
  });

  test('an unknown user is refused with EAUTH', async () => {
    await expect(PmuClient.connect(h.addresses.tcp, { user: 'nobody', secret: SECRETS.admin })).rejects.toMatchObject({ code: 'EAUTH' });
  });

  test('no credentials is refused before connecting, whatever PMU_USER / PMU_SECRET say: the library reads no environment', async () => {
    const saved = { user: process.env.PMU_USER, secret: process.env.PMU_SECRET };
    process.env.PMU_USER = 'backup';
    process.env.PMU_SECRET = SECRETS.backup;
    try {
      await expect(PmuClient.connect(h.addresses.tcp)).rejects.toMatchObject({ code: 'EAUTH', message: expect.stringMatching(/pass \{ user, secret \}/) });
    } finally {
      if (saved.user === undefined) delete process.env.PMU_USER;
      else process.env.PMU_USER = saved.user;
      if (saved.secret === undefined) delete process.env.PMU_SECRET;
      else process.env.PMU_SECRET = saved.secret;
    }
  });

  test('the secret never crosses the wire, and the server proves it knows it too', async () => {
    const peer = await RawPeer.connect(h.addresses.tcp);
    const sent: Buffer[] = [];
    const write = peer.socket.write.bind(peer.socket);
    peer.socket.write = ((chunk: Buffer, ...rest: never[]) => {
      sent.push(Buffer.from(chunk));
      return write(chunk, ...rest);
    }) as typeof peer.socket.write;
    const reply = await peer.authenticate('primary', SECRETS.primary);
    expect(reply.header.op).toBe(Op.OK);
    expect(reply.body).toHaveLength(33);
    expect(Buffer.concat(sent).includes(Buffer.from(SECRETS.primary))).toBe(false);
    peer.destroy();
  });

  test('a request before AUTH is refused with EAUTH and the connection closed', async () => {
    const before = h.server.stats().refusals.EAUTH ?? 0;
    const peer = await RawPeer.connect(h.addresses.tcp);
    expect((await peer.next())!.header.op).toBe(Op.HELLO);
    peer.send(Op.LIST, 0, 5);
    const refusal = await peer.next();
    expect(errorCode(refusal)).toBe('EAUTH');
    expect(refusal!.header.requestId).toBe(5);
    await peer.waitClosed();
    expect(h.server.stats().refusals.EAUTH).toBe(before + 1);
  });

  test('a client that connects and says nothing is closed after the handshake timeout', async () => {
    const peer = await RawPeer.connect(h.addresses.tcp);
    expect((await peer.next())!.header.op).toBe(Op.HELLO);
    const refusal = await peer.next();
    expect(errorCode(refusal)).toBe('ETIMEDOUT');
    await peer.waitClosed();
  });

  test('the client refuses a server that cannot prove the secret (mutual authentication)', async () => {
    const impostor = net.createServer((socket) => {
      const hello = Buffer.alloc(HELLO_BYTES);
      hello.writeUInt16LE(PROTOCOL_VERSION, 0);
      socket.write(Buffer.concat([encodeHeader(Op.HELLO, 0, 0, hello.length), hello]));
      socket.once('data', (chunk) => {
        // Accept anybody, with a made-up proof.
        const requestId = chunk.readUInt32LE(8);
        const body = Buffer.alloc(33, 7);
        socket.write(Buffer.concat([encodeHeader(Op.OK, 0, requestId, body.length), body]));
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
    const port = (impostor.address() as net.AddressInfo).port;
    await expect(PmuClient.connect(`tcp://127.0.0.1:${port}`, { user: 'primary', secret: SECRETS.primary })).rejects.toMatchObject({ code: 'EAUTH' });
    await new Promise((resolve) => impostor.close(resolve));
  });

  test('a peer that is not a pmu server is refused with EPROTO or ETIMEDOUT, not a hang', async () => {
    const silent = net.createServer((socket) => socket.on('error', () => undefined));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as net.AddressInfo).port;
    await expect(PmuClient.connect(`tcp://127.0.0.1:${port}`, { user: 'primary', secret: SECRETS.primary, timeoutMs: 200 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    silent.close();
  });
});

describe('users file', () => {
  test('refuses a users file others can read', () => {
    const file = path.join(tempDir(), 'users.json');
    fs.writeFileSync(file, JSON.stringify({ users: {} }), { mode: 0o644 });
    fs.chmodSync(file, 0o644);
    expect(() => UserDirectory.load(file)).toThrow(expect.objectContaining({ code: 'EACCESS' }));
  });

  test('a running server sees a user added to its users file', async () => {
    const dir = tempDir();
    const usersFile = path.join(dir, 'users.json');
    addUser(usersFile, 'admin', { admin: true, secret: SECRETS.admin });
    expect((fs.statSync(usersFile).mode & 0o777).toString(8)).toBe('600');
    const unit = PersistentMemoryUnit.open(path.join(dir, 'unit.pmu'), { size: 4 * 1024 * 1024 });
    const server = new PmuServer({ unit, users: usersFile, tcp: { port: 0 } });
    const { tcp } = await server.listen();
    await expect(PmuClient.connect(tcp!, { user: 'late', secret: 'late-secret-0123456789' })).rejects.toMatchObject({ code: 'EAUTH' });
    const secret = addUser(usersFile, 'late');
    expect(() => addUser(usersFile, 'late')).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    const client = await PmuClient.connect(tcp!, { user: 'late', secret });
    expect(client.isAdmin).toBe(false);
    await client.close();
    await server.close();
  });
});
