/** TLS on the TCP listener, with a self-signed certificate made at test time by openssl (skipped, saying so, without it). */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PmuClient } from '../lib/client/client';
import { SECRETS, startServer } from './fixtures/net-harness';
import { haveOpenssl } from './helpers/certs';
import { removeTempDirs, tempDir } from './helpers/temp';

const maybe = haveOpenssl() ? test : test.skip;
if (!haveOpenssl()) console.warn('net-tls: openssl is not on this machine, so the TLS test is skipped (no certificate to test with)');

afterAll(removeTempDirs);

maybe('a client with the CA connects over tls:// and works; one without it is refused with ECONNECTION', async () => {
  const dir = tempDir('pmu-tls-');
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const h = await startServer({ tls: { key: fs.readFileSync(key), cert: fs.readFileSync(cert) } });
  try {
    expect(h.addresses.tcp).toMatch(/^tls:\/\/127\.0\.0\.1:\d+$/);
    const admin = await PmuClient.connect(h.addresses.tcp, { user: 'admin', secret: SECRETS.admin, tls: { ca: fs.readFileSync(cert) } });
    const region = await admin.createRegion('secret', 4096);
    await region.write(0, Buffer.from('over tls'));
    expect((await region.read(0, 8)).toString()).toBe('over tls');
    await admin.close();
    await expect(PmuClient.connect(h.addresses.tcp, { user: 'admin', secret: SECRETS.admin, timeoutMs: 2000 })).rejects.toMatchObject({ code: 'ECONNECTION' });
  } finally {
    await h.close();
  }
});
