/**
 * Admission sees every socket, TLS ones from their TCP connect: a socket still in its TLS
 * handshake counts against maxPendingHandshakes and is evicted like a plain one, so a flood of
 * TLS handshakes that never finish cannot lock others out. Self-signed certificate made at
 * test time by openssl (skipped, saying so, without it). Bounded: ~3 s.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { PmuClient } from '../lib/client/client';
import { SECRETS, startServer } from './fixtures/net-harness';
import { haveOpenssl } from './helpers/certs';
import { removeTempDirs, tempDir } from './helpers/temp';
import { waitFor } from './helpers/wait';

const maybe = haveOpenssl() ? test : test.skip;
if (!haveOpenssl()) console.warn('net-tls-admission: openssl is not on this machine, so the test is skipped (no certificate to test with)');

afterAll(removeTempDirs);

/** A TCP socket to the TLS port that sends `bytes` (a ClientHello's first bytes, or nothing) and then nothing. */
function silent(port: number, bytes: Buffer): Promise<{ socket: net.Socket; closed: () => boolean }> {
  return new Promise((resolve, reject) => {
    let closed = false;
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      if (bytes.length > 0) socket.write(bytes);
      resolve({ socket, closed: () => closed });
    });
    socket.on('error', reject);
    socket.on('close', () => {
      closed = true;
    });
  });
}

maybe('TLS handshakes that never finish count against maxPendingHandshakes: the oldest are evicted, a real client gets in', async () => {
  const dir = tempDir('pmu-tls-adm-');
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const h = await startServer({ tls: { key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, limits: { maxConnections: 12, maxPendingHandshakes: 4, handshakeTimeoutMs: 60_000 } });
  try {
    const port = Number(h.addresses.tcp.split(':').pop());
    // Half of them send a TLS record header (handshake, TLS 1.0) and stop; half send nothing.
    const partialHello = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]);
    const flood: Array<{ socket: net.Socket; closed: () => boolean }> = [];
    for (let i = 0; i < 10; i++) flood.push(await silent(port, i % 2 === 0 ? partialHello : Buffer.alloc(0)));
    await waitFor('the oldest six to be evicted', () => flood.filter((s) => s.closed()).length === 6, 5000);
    expect(flood.slice(0, 6).every((s) => s.closed())).toBe(true);
    expect(h.server.stats().limitHits.maxPendingHandshakes).toBe(6);
    // A client that completes its handshake is served at once, well within the 60 s deadline.
    const client = await PmuClient.connect(h.addresses.tcp, { user: 'primary', secret: SECRETS.primary, tls: { ca: fs.readFileSync(cert) }, timeoutMs: 3000 });
    await expect(client.listRegions()).resolves.toEqual([]);
    await client.close();
    for (const s of flood) s.socket.destroy();
    await waitFor('all closed', () => h.server.stats().connectionsOpen === 0);
  } finally {
    await h.close();
  }
});

maybe('a TLS handshake that does not finish within handshakeTimeoutMs is closed', async () => {
  const dir = tempDir('pmu-tls-adm-');
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const h = await startServer({ tls: { key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, limits: { handshakeTimeoutMs: 300 } });
  try {
    const port = Number(h.addresses.tcp.split(':').pop());
    const stuck = await silent(port, Buffer.alloc(0));
    await waitFor('the stuck handshake to be closed', () => stuck.closed(), 3000);
    await waitFor('nothing held', () => h.server.stats().connectionsOpen === 0);
  } finally {
    await h.close();
  }
});
