/**
 * pmu against etcd as its operators run it: authentication on (a pmu user whose role has
 * readwrite on the set's prefix only) and TLS with client certificates required (certificates
 * made here with openssl). The library, pmu cluster and pmu serve --join log in; every refusal
 * is a PmuError with a stable code and advice, and no password is ever printed. Bound: ~25 s.
 */
import { ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { MirrorDirectory } from '../lib/mirror/directory';
import { maskUrl } from '../lib/mirror/etcd-login';
import { isPmuError } from '../lib/unit/errors';
import { makePki, TestPki } from './helpers/certs';
import { enableAuth, etcdAvailable, EtcdHandle, startEtcd } from './helpers/etcd';
import { removeTempDirs, tempDir } from './helpers/temp';
import { waitFor, waitForExit, waitForLine } from './helpers/wait';

const PMU = path.join(__dirname, '..', 'bin', 'pmu.js');
const ROOT_PASSWORD = 'root-Pw-7f3a9c1e';
const PASSWORD = 'pmu-Pw-5b2d8e4f';
const WRONG = 'not-the-Pw-0c6a1d';
/** What no output may hold. */
const SECRETS = [ROOT_PASSWORD, PASSWORD, WRONG];
const CLEAN_ENV = { PMU_ETCD: '', PMU_ETCD_USER: '', PMU_ETCD_PASSWORD: '', PMU_ETCD_PASSWORD_FILE: '', PMU_ETCD_CA: '', PMU_ETCD_CERT: '', PMU_ETCD_KEY: '', PMU_SET: '', PMU_URL: '' };
const SET_ENV = { PMU_USER: 'mirror', PMU_SECRET: 'mirror-secret-0123456789abcdef' };

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function pmu(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [PMU, ...args], { env: { ...process.env, ...CLEAN_ENV, ...SET_ENV, ...env }, timeout: 20_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as Run;
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function expectNoSecret(run: Run): void {
  for (const secret of SECRETS) expect(run.stdout + run.stderr).not.toContain(secret);
}

function writePasswordFile(dir: string, name: string, password: string, mode = 0o600): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, `${password}\n`, { mode });
  fs.chmodSync(file, mode);
  return file;
}

test('a URL with a user part is refused, masked; a password goes over http:// to loopback only', () => {
  const refuse = (url: string, options = {}) => {
    try {
      MirrorDirectory.connect(url, options);
    } catch (error) {
      expect(isPmuError(error, 'EINVAL')).toBe(true);
      return (error as Error).message;
    }
    throw new Error(`connect(${url}) was not refused`);
  };
  const message = refuse(`http://root:${PASSWORD}@127.0.0.1:2379`);
  expect(message).toMatch(/user or password in it.*--etcd-user NAME .*--etcd-password-file FILE/);
  expect(message).toContain('http://***@127.0.0.1:2379');
  // Characters that would end a URL's user part, or split the host list, leak nothing either.
  for (const tricky of ['p/w#x', 'a,b', 'c@d']) expect(refuse(`http://root:${tricky}${PASSWORD}@h:2379`)).not.toContain(PASSWORD);
  expect(maskUrl(`https://u:${PASSWORD}@a:1,https://u:${PASSWORD}@b:2`)).toBe('https://***@b:2');
  expect(refuse('http://10.1.2.3:2379', { etcdAuth: { username: 'pmu', password: PASSWORD } })).toMatch(/clear text over http:\/\/: .* https:\/\//);
  expect(refuse('http://127.0.0.1:2379', { etcdTls: { ca: Buffer.from('x') } })).toMatch(/are for TLS.*https:\/\//);
  expect(refuse('http://127.0.0.1:2379', { etcdAuth: { username: 'pmu', password: '' } })).toMatch(/empty/);
  // From Node 26 on, an IP address cannot be a TLS server name, which gRPC would send: said up front.
  if (Number(process.versions.node.split('.')[0]) >= 26) expect(refuse('https://127.0.0.1:2379')).toMatch(/names an IP address, which Node .* refuses as a TLS server name .*use a DNS name that etcd's certificate holds, e\.g\. https:\/\/localhost:2379/);
  else expect(() => MirrorDirectory.connect('https://127.0.0.1:2379').close()).not.toThrow();
  MirrorDirectory.connect('http://[::1]:2379', { etcdAuth: { username: 'pmu', password: PASSWORD } }).close();
});

test('the command line takes no password, and a password file must be private', async () => {
  const dir = tempDir('pmu-etcd-pw-');
  const onArgv = await pmu(['cluster', 'status', '--etcd', 'http://127.0.0.1:1', '--etcd-password', PASSWORD]);
  expect(onArgv.code).toBe(2);
  expect(onArgv.stderr).toMatch(/no etcd password on the command line .*--etcd-password-file FILE/);
  expectNoSecret(onArgv);
  const open = writePasswordFile(dir, 'open', PASSWORD, 0o644);
  const tooOpen = await pmu(['cluster', 'status', '--etcd', 'http://127.0.0.1:1', '--etcd-user', 'pmu', '--etcd-password-file', open]);
  expect(tooOpen.code).toBe(1);
  expect(tooOpen.stderr).toMatch(new RegExp(`EACCESS: the etcd password file ${open} has mode 0644: .*chmod 600 ${open}`));
  expectNoSecret(tooOpen);
  const missing = await pmu(['cluster', 'status', '--etcd', 'http://127.0.0.1:1', '--etcd-user', 'pmu', '--etcd-password-file', path.join(dir, 'none')]);
  expect(missing.stderr).toMatch(/ENOENT: cannot read .*none: no such file/);
  const userOnly = await pmu(['cluster', 'status', '--etcd', 'http://127.0.0.1:1', '--etcd-user', 'pmu']);
  expect(userOnly.code).toBe(2);
  expect(userOnly.stderr).toMatch(/etcd user 'pmu' needs its password/);
  const serveFlags = await pmu(['serve', '--data', path.join(dir, 'd'), '--etcd-user', 'pmu']);
  expect(serveFlags.stderr).toMatch(/go with --join URL/);
  expect(fs.existsSync(path.join(dir, 'd'))).toBe(false);
});

const run = etcdAvailable() ? describe : describe.skip;

run('etcd with authentication on (http on loopback)', () => {
  let etcd: EtcdHandle;
  let dir: string;
  let passwordFile: string;
  const servers: ChildProcess[] = [];

  beforeAll(async () => {
    etcd = await startEtcd();
    await enableAuth(etcd, ROOT_PASSWORD, [{ name: 'pmu', password: PASSWORD, prefix: '/pmu/sets/default/' }]);
    dir = tempDir('pmu-etcd-auth-');
    passwordFile = writePasswordFile(dir, 'etcd-password', PASSWORD);
  }, 30_000);
  afterAll(async () => {
    for (const server of servers) if (server.exitCode === null) server.kill('SIGKILL');
    await Promise.all(servers.map((server) => waitForExit(server)));
    await etcd?.stop();
    removeTempDirs();
  });

  test('the library: a user whose role holds only the set prefix inits, registers, leases, watches', async () => {
    const directory = MirrorDirectory.connect(etcd.url, { timeoutMs: 2000, etcdAuth: { username: 'pmu', password: PASSWORD } });
    try {
      await directory.init(2);
      await directory.addPmu({ id: 'a', url: 'tcp://127.0.0.1:1', capacity: 1 << 24 });
      await directory.addPmu({ id: 'b', url: 'tcp://127.0.0.1:2', capacity: 1 << 24 });
      const config = await directory.planRegion('r', 1 << 20);
      await directory.recordRegion(config);
      const seen: number[] = [];
      const unwatch = await directory.watch('r', (next) => seen.push(next.epoch));
      const registration = await directory.registerClient('r');
      await registration.publish(1);
      expect([...(await directory.clientEpochs('r')).values()]).toEqual([1]);
      await directory.transition(config, { ...config, epoch: 2 });
      await registration.close();
      await unwatch();
      expect((await directory.regions()).map((region) => region.epoch)).toEqual([2]);
      expect((await directory.pmus()).map((entry) => entry.id)).toEqual(['a', 'b']);
    } finally {
      directory.close();
    }
    // Outside its prefix the same user is denied, with the grant to make.
    const other = MirrorDirectory.connect(etcd.url, { set: 'other', etcdAuth: { username: 'pmu', password: PASSWORD } });
    await expect(other.setInfo()).rejects.toMatchObject({ code: 'EACCESS', message: expect.stringMatching(/denied user 'pmu' access \(read set\): grant it a role with readwrite on the key prefix \/pmu\/sets\/other\//) });
    other.close();
  });

  test('the library: a wrong password is EAUTH, no user at all is EAUTH saying how to log in', async () => {
    const wrong = MirrorDirectory.connect(etcd.url, { etcdAuth: { username: 'pmu', password: WRONG } });
    const refused = await wrong.setInfo().catch((error: Error) => error);
    wrong.close();
    expect(refused).toMatchObject({ code: 'EAUTH', message: expect.stringMatching(/refused the login of user 'pmu' \(wrong user name or password\): check --etcd-user/) });
    expect((refused as Error).message).not.toContain(WRONG);
    const anonymous = MirrorDirectory.connect(etcd.url);
    await expect(anonymous.setInfo()).rejects.toMatchObject({ code: 'EAUTH', message: expect.stringMatching(/authentication on and pmu gave it no user \(read set\): log in with --etcd-user NAME and --etcd-password-file FILE/) });
    anonymous.close();
  });

  test('pmu cluster with --etcd-user and a password file, or PMU_ETCD_USER/PMU_ETCD_PASSWORD; refusals say what to do and print no password', async () => {
    const login = ['--etcd', etcd.url, '--etcd-user', 'pmu', '--etcd-password-file', passwordFile];
    const status = await pmu(['cluster', 'status', ...login]);
    expect(status.stdout).toMatch(/set \/pmu\/sets\/default in http:\/\/127\.0\.0\.1:\d+: 2 PMU\(s\), 1 region\(s\)/);
    const byEnv = await pmu(['cluster', 'status', '--json'], { PMU_ETCD: etcd.url, PMU_ETCD_USER: 'pmu', PMU_ETCD_PASSWORD: PASSWORD });
    expect(JSON.parse(byEnv.stdout)).toMatchObject({ set: '/pmu/sets/default', copies: 2 });
    expectNoSecret(byEnv);

    const wrong = await pmu(['cluster', 'status', '--etcd', etcd.url, '--etcd-user', 'pmu', '--etcd-password-file', writePasswordFile(dir, 'wrong', WRONG)]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^pmu cluster: EAUTH: etcd at http:\/\/127\.0\.0\.1:\d+ refused the login of user 'pmu' \(wrong user name or password\)/);
    expectNoSecret(wrong);
    const none = await pmu(['cluster', 'init', '--etcd', etcd.url]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/EAUTH: .*has authentication on and pmu gave it no user \(init\): log in with --etcd-user NAME/);
    const denied = await pmu(['cluster', 'init', ...login, '--set', 'other']);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/EACCESS: .*denied user 'pmu' access \(init\): grant it a role with readwrite on the key prefix \/pmu\/sets\/other\//);
    const inUrl = await pmu(['cluster', 'status', '--etcd', etcd.url.replace('http://', `http://pmu:${PASSWORD}@`)]);
    expect(inUrl.code).toBe(1);
    expect(inUrl.stderr).toMatch(/EINVAL: the etcd URL http:\/\/\*\*\*@127\.0\.0\.1:\d+ has a user or password in it/);
    for (const run of [status, denied, none, inUrl]) expectNoSecret(run);
  });

  test('pmu serve --join logs in and joins; with a wrong password it stops at once with EAUTH', async () => {
    const server = spawn(process.execPath, [PMU, 'serve', '--data', path.join(dir, 'pmu1'), '--port', '0', '--size', '16MiB', '--join', etcd.url, '--id', 'pmu1', '--etcd-user', 'pmu', '--etcd-password-file', passwordFile], {
      env: { ...process.env, ...CLEAN_ENV, ...SET_ENV },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    servers.push(server);
    await waitForLine(server, /joined the PMU set \/pmu\/sets\/default in .* as 'pmu1'/, 20_000);
    const status = await pmu(['cluster', 'status', '--etcd', etcd.url, '--etcd-user', 'pmu', '--etcd-password-file', passwordFile]);
    expect(status.stdout).toMatch(/pmu pmu1 +tcp:\/\/127\.0\.0\.1:\d+/);
    server.kill('SIGTERM');
    expect((await waitForExit(server)).code).toBe(0);

    const wrong = await pmu(['serve', '--data', path.join(dir, 'pmu2'), '--port', '0', '--size', '16MiB', '--join', etcd.url, '--id', 'pmu2', '--etcd-user', 'pmu', '--etcd-password-file', writePasswordFile(dir, 'wrong2', WRONG)]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/pmu serve: EAUTH: etcd at .* refused the login of user 'pmu'/);
    expectNoSecret(wrong);
  }, 40_000);
});

run('etcd over TLS with client certificates required, and authentication on', () => {
  let etcd: EtcdHandle;
  let pki: TestPki;
  let dir: string;
  let passwordFile: string;
  let tlsFlags: string[];
  const servers: ChildProcess[] = [];

  beforeAll(async () => {
    dir = tempDir('pmu-etcd-tls-');
    pki = makePki(dir);
    etcd = await startEtcd({ tls: { server: pki.server, clientCertAuth: true, client: pki.client('test-probe') } });
    await enableAuth(etcd, ROOT_PASSWORD, [
      { name: 'pmu', password: PASSWORD, prefix: '/pmu/sets/default/' },
      { name: 'pmu-cert', password: 'unused-Pw-9e8d7c6b', prefix: '/pmu/sets/default/' },
    ]);
    const cert = pki.client('pmu-host-1');
    tlsFlags = ['--etcd-ca', pki.ca, '--etcd-cert', cert.cert, '--etcd-key', cert.key];
    passwordFile = writePasswordFile(dir, 'etcd-password', PASSWORD);
  }, 40_000);
  afterAll(async () => {
    for (const server of servers) if (server.exitCode === null) server.kill('SIGKILL');
    await Promise.all(servers.map((server) => waitForExit(server)));
    await etcd?.stop();
    removeTempDirs();
  });

  test('--etcd-ca/--etcd-cert/--etcd-key with a user: init, status and serve --join work', async () => {
    const login = ['--etcd', etcd.url, ...tlsFlags, '--etcd-user', 'pmu', '--etcd-password-file', passwordFile];
    const init = await pmu(['cluster', 'init', ...login]);
    expect(init.stdout).toMatch(/made the PMU set \/pmu\/sets\/default in https:\/\/localhost:\d+/);
    const server = spawn(process.execPath, [PMU, 'serve', '--data', path.join(dir, 'pmu1'), '--port', '0', '--size', '16MiB', '--join', etcd.url, '--id', 'pmu1', ...login.slice(2)], {
      env: { ...process.env, ...CLEAN_ENV, ...SET_ENV },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    servers.push(server);
    await waitForLine(server, /joined the PMU set \/pmu\/sets\/default in https:.* as 'pmu1'/, 20_000);
    // The same through the environment.
    const status = await pmu(['cluster', 'status'], { PMU_ETCD: etcd.url, PMU_ETCD_CA: pki.ca, PMU_ETCD_CERT: tlsFlags[3], PMU_ETCD_KEY: tlsFlags[5], PMU_ETCD_USER: 'pmu', PMU_ETCD_PASSWORD_FILE: passwordFile });
    expect(status.stdout).toMatch(/1 PMU\(s\), 0 region\(s\)/);
    expect(status.stdout).toMatch(/pmu pmu1 /);
    server.kill('SIGTERM');
    expect((await waitForExit(server)).code).toBe(0);
    expectNoSecret(init);
    expectNoSecret(status);
  }, 40_000);

  test('a client certificate alone logs in as the etcd user of its common name', async () => {
    const cert = pki.client('pmu-cert');
    const status = await pmu(['cluster', 'status', '--etcd', etcd.url, '--etcd-ca', pki.ca, '--etcd-cert', cert.cert, '--etcd-key', cert.key]);
    expect(status.stdout).toMatch(/set \/pmu\/sets\/default in https:/);
    // A certificate whose name is no etcd user: denied, saying whose role to grant.
    const denied = await pmu(['cluster', 'status', '--etcd', etcd.url, ...tlsFlags]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/EACCESS: .*denied the etcd user of the client certificate \(its common name\) access/);
  });

  test('without the client certificate, without the CA, or with an expired or mismatched one: a clear refusal', async () => {
    const user = ['--etcd-user', 'pmu', '--etcd-password-file', passwordFile];
    const noCert = await pmu(['cluster', 'status', '--etcd', etcd.url, '--etcd-ca', pki.ca, ...user]);
    expect(noCert.code).toBe(1);
    expect(noCert.stderr).toMatch(/EETCD: etcd at https:\/\/localhost:\d+ did not answer .*bad certificate.*--etcd-cert\/--etcd-key are one it trusts/);
    const noCa = await pmu(['cluster', 'status', '--etcd', etcd.url, '--etcd-cert', tlsFlags[3], '--etcd-key', tlsFlags[5], ...user]);
    expect(noCa.code).toBe(1);
    expect(noCa.stderr).toMatch(/EETCD: .*unable to verify the first certificate.*that --etcd-ca is the CA that signed etcd's certificate/);
    const expired = pki.client('pmu', { days: -1 });
    const old = await pmu(['cluster', 'status', '--etcd', etcd.url, '--etcd-ca', pki.ca, '--etcd-cert', expired.cert, '--etcd-key', expired.key, ...user]);
    expect(old.code).toBe(1);
    expect(old.stderr).toMatch(/EINVAL: the etcd client certificate \(--etcd-cert, CN=pmu\) expired on .*: renew it/);
    const mismatched = await pmu(['cluster', 'status', '--etcd', etcd.url, '--etcd-ca', pki.ca, '--etcd-cert', tlsFlags[3], '--etcd-key', expired.key, ...user]);
    expect(mismatched.stderr).toMatch(/EINVAL: the etcd client key \(--etcd-key\) does not belong to the client certificate/);
    const plain = await pmu(['cluster', 'status', '--etcd', etcd.url.replace('https', 'http'), ...tlsFlags]);
    expect(plain.stderr).toMatch(/EINVAL: .*are for TLS, but http:.* use an https:\/\/ etcd URL/);
    for (const run of [noCert, noCa, old, mismatched]) expectNoSecret(run);
  });
});

run('etcd with authentication off', () => {
  let etcd: EtcdHandle;
  beforeAll(async () => {
    etcd = await startEtcd();
  }, 30_000);
  afterAll(async () => {
    await etcd?.stop();
    removeTempDirs();
  });

  test('a user given to an etcd without auth is EAUTH saying so, not a silent open door', async () => {
    const directory = MirrorDirectory.connect(etcd.url, { etcdAuth: { username: 'pmu', password: PASSWORD } });
    const refused = await directory.setInfo().catch((error: Error) => error);
    directory.close();
    expect(refused).toMatchObject({ code: 'EAUTH', message: expect.stringMatching(/has authentication off, yet pmu was given user 'pmu' .*enable authentication in etcd/) });
    expect((refused as Error).message).not.toContain(PASSWORD);
  });
});

run('etcd with authentication on, restarted', () => {
  test("a configuration watch outlives etcd's restart (which forgets every auth token): the change made after it arrives", async () => {
    const etcd = await startEtcd();
    const directory = MirrorDirectory.connect(etcd.url, { timeoutMs: 2000, etcdAuth: { username: 'pmu', password: PASSWORD } });
    try {
      await enableAuth(etcd, ROOT_PASSWORD, [{ name: 'pmu', password: PASSWORD, prefix: '/pmu/sets/default/' }]);
      await directory.init(2);
      await directory.addPmu({ id: 'a', url: 'tcp://127.0.0.1:1', capacity: 1 << 24 });
      await directory.addPmu({ id: 'b', url: 'tcp://127.0.0.1:2', capacity: 1 << 24 });
      const config = await directory.planRegion('r', 1 << 20);
      await directory.recordRegion(config);
      const seen: number[] = [];
      const unwatch = await directory.watch('r', (next) => seen.push(next.epoch));
      await directory.transition(config, { ...config, epoch: 2 });
      await waitFor('epoch 2 through the watch', () => seen.includes(2), 10_000);
      await etcd.restart();
      // Unary calls log in again by themselves; the watch must come back on its own too.
      const now = await waitFor('etcd answering the directory again', () => directory.config('r').catch(() => undefined), 15_000, 100);
      await directory.transition(now, { ...now, epoch: 3 });
      await waitFor('epoch 3 through the watch after the restart', () => seen.includes(3), 15_000, 20);
      await unwatch();
    } finally {
      directory.close();
      await etcd.stop();
    }
  }, 60_000);
});
